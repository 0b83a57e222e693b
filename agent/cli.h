/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The command line and the process settings around it: flags, the one
 * environment variable the agent reads itself (the OTLP exporter reads the
 * rest), the privilege check and the CPU priority.
 */
#ifndef MESHTRACE_CLI_H
#define MESHTRACE_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/agent.h"

#include <stddef.h>
#include <stdio.h>

/* What cli_parse() asks main() to do. */
enum cli_action {
	CLI_RUN = 0, /* start the agent with the options parsed */
	CLI_HELP,    /* --help: print cli_usage() to stdout, exit 0 */
	CLI_VERSION, /* --version: print the version, exit 0 */
};

#define CLI_MAX_CONNS_MIN 16u
#define CLI_MAX_CONNS_MAX (1u << 22)

/* The options as they are with no flag given. */
void cli_defaults(struct agent_opts *o);

/*
 * Fills @o from the arguments (pointers into @argv) and the MESHTRACE_* variables (checked
 * like their flags; a flag wins). Prints nothing, exits
 * nothing, touches nothing but @o and getopt's globals, so it can be run again
 * (tests, tests/fuzz/fuzz_cli.c). Returns an enum cli_action, or -EINVAL with
 * one line in @err naming the flag, the value (escaped and cut: it is echoed)
 * and what is accepted.
 */
int cli_parse(int argc, char **argv, struct agent_opts *o, char *err, size_t errlen);

/* The --help text. */
void cli_usage(FILE *out);

/* "normal", "low" or "idle". */
const char *cli_cpu_priority_name(enum cpu_priority p);

/*
 * OTEL_METRIC_EXPORT_INTERVAL (ms): the metrics export period, or its default.
 * Returns 0, or -EINVAL with one line in @err naming the variable and the bad value.
 */
int cli_metric_interval_from_env(uint64_t *out, char *err, size_t errlen);

/*
 * OTEL_SDK_DISABLED into @out: "true" or "false" (case-insensitive, blanks around ignored);
 * unset or "" is false. Any other value is bad configuration, as for every boolean the agent
 * reads (OTEL_EXPORTER_OTLP_*INSECURE, MESHTRACE_PROPAGATE): -EINVAL with one line in @err
 * (the OTel spec only asks for a warning and false; see docs/configuration.md).
 */
int cli_sdk_disabled_from_env(bool *out, char *err, size_t errlen);

/* Lowers the agent's CPU priority as asked; a refusal is logged, not fatal. */
void cli_apply_cpu_priority(enum cpu_priority p);

/* Back to normal priority (for the final flush, bounded in time, not starved). */
void cli_restore_cpu_priority(enum cpu_priority p);

#endif /* MESHTRACE_CLI_H */
