#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make check-deps: the include graph of agent/ and bpf/ points one way, downstream.

Two rules, each violation one line:
  1. no cycle between files: no header includes, through any chain, itself, and (with --objs)
     no two .c files call into each other, directly or through others;
  2. no upstream include: a file of a stage includes only its own stage, earlier stages and
     common/ (the order below is the pipeline's, see docs/architecture.md).
With --objs DIR (make check-deps passes build/obj), the same two rules are checked on what the
compiled files call: file A depends on file B when A's object uses a symbol B's object defines
(nm), which sees what includes cannot (a header declared in one file and defined in two).
Includes are the quoted ones, written from the repository root ("agent/conn/conn.h"); a quoted
include that is no file of the tree (generated headers: skeletons, .pb-c.h, assets) is ignored.
Exit 0 when clean, 1 with the violations listed.
"""
import os
import re
import subprocess
import sys

# The pipeline's order. bpf/ is the kernel side and its contract; agent/*.c at the top level is
# the composition root, allowed to include every stage.
STAGES = ["bpf", "common", "capture", "protocols", "conn", "identity", "trace", "graph",
          "export", "serve", "app"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def stage_of(path):
    parts = path.split("/")
    if parts[0] == "bpf":
        return "bpf"
    if parts[0] == "agent":
        return parts[1] if len(parts) > 2 else "app"
    return None


def link_edges(objdir, files):
    """{source file: set of source files whose symbols it uses}, from nm on the objects."""
    defined, used = {}, {}
    for f in files:
        if not f.endswith(".c"):
            continue
        obj = os.path.join(objdir, f[:-2] + ".o")
        if not os.path.exists(obj):
            continue
        out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "U":
                used.setdefault(f, set()).add(parts[1])
            elif len(parts) == 3 and parts[1] in "TDBRVW":
                defined.setdefault(parts[2], f)
    edges = {}
    for f, syms in used.items():
        for sym in syms:
            g = defined.get(sym)
            if g and g != f:
                edges.setdefault(f, set()).add(g)
    return edges


def cycles(edges):
    """Tarjan's strongly connected components: each one of two or more nodes is a cycle."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return out


def main():
    objdir = None
    if len(sys.argv) == 3 and sys.argv[1] == "--objs":
        objdir = os.path.abspath(sys.argv[2])
    elif len(sys.argv) != 1:
        print("usage: check_deps.py [--objs BUILD/obj]", file=sys.stderr)
        return 2
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.chdir(root)
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                            "agent", "bpf"], capture_output=True, text=True,
                           check=True).stdout.split()
    files = [f for f in files if f.endswith((".c", ".h")) and os.path.exists(f)]
    known = set(files)
    problems = []
    edges = {}
    for f in files:
        src = stage_of(f)
        if src not in STAGES:
            problems.append(f"{f}: not in a stage folder ({', '.join(STAGES[1:-1])})")
            continue
        text = open(f, encoding="utf-8", errors="replace").read()
        for inc in INCLUDE.findall(text):
            if inc not in known:
                local = os.path.normpath(os.path.join(os.path.dirname(f), inc))
                if local in known:
                    problems.append(f"{f}: includes \"{inc}\" relative to its folder; "
                                    f"write \"{local}\"")
                continue
            dst = stage_of(inc)
            if STAGES.index(dst) > STAGES.index(src):
                problems.append(f"{f}: upstream include of {inc} ({src} may not depend on {dst})")
            edges.setdefault(f, set()).add(inc)

    out = cycles(edges)
    for comp in out:
        problems.append("cycle between files (includes): " + " <-> ".join(comp))

    nlink = 0
    if objdir:
        ledges = link_edges(objdir, files)
        nlink = sum(len(v) for v in ledges.values())
        for f, deps in sorted(ledges.items()):
            for g in sorted(deps):
                if STAGES.index(stage_of(g)) > STAGES.index(stage_of(f)):
                    problems.append(f"{f}: calls into {g} (upstream: {stage_of(f)} may not "
                                    f"depend on {stage_of(g)})")
        for comp in cycles(ledges):
            problems.append("cycle between files (calls): " + " <-> ".join(comp))

    for p in problems:
        print("check-deps: " + p)
    nmods = len(files)
    if problems:
        print(f"check-deps: {len(problems)} problem(s) in {nmods} files")
        return 1
    print(f"check-deps: {nmods} files, {sum(len(v) for v in edges.values())} include edges, "
          f"{nlink} call edges{'' if objdir else ' (not checked: no --objs)'}: "
          "no cycle, no upstream dependency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
