/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's version: in --version, the User-Agent of export requests,
 * telemetry.sdk.version and the instrumentation scope of every signal.
 * A build may set it (-DMESHTRACE_VERSION=...).
 */
#ifndef MESHTRACE_VERSION_H
#define MESHTRACE_VERSION_H

#ifndef MESHTRACE_VERSION
#define MESHTRACE_VERSION "0.1.0"
#endif

#endif /* MESHTRACE_VERSION_H */
