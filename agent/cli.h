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

/*
 * Fills @o from the arguments. Returns 0, 1 when the program should exit 0
 * (--help, --version: already printed), or -EINVAL after one line naming the bad flag.
 */
int cli_parse(int argc, char **argv, struct agent_opts *o);

/* "normal", "low" or "idle". */
const char *cli_cpu_priority_name(enum cpu_priority p);

/*
 * OTEL_METRIC_EXPORT_INTERVAL (ms): the metrics export period, or its default.
 * Returns 0, or 2 (the exit code) after one line naming the bad value.
 */
int cli_metric_interval_from_env(uint64_t *out);

/*
 * OTEL_SDK_DISABLED as the SDK environment spec reads a boolean: "true"
 * (case-insensitive) is true; unset, "" and "false" are false; any other value
 * is false with a warning naming it.
 */
bool cli_sdk_disabled_from_env(void);

/* Lowers the agent's CPU priority as asked; a refusal is logged, not fatal. */
void cli_apply_cpu_priority(enum cpu_priority p);

/* Back to normal priority (for the final flush, bounded in time, not starved). */
void cli_restore_cpu_priority(enum cpu_priority p);

#endif /* MESHTRACE_CLI_H */
