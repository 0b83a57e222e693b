# SPDX-License-Identifier: Apache-2.0
"""Figures a test wants in the closing note: printed in a 'meshtrace figures' section at the end
of the pytest run (even when everything passes) and written to build/integration-figures.txt."""

FIGURES = []


def figure(request, text):
    FIGURES.append((request.node.name, text))
    print(text)
