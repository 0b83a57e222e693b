/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event loop: one epoll over the ring buffer (or a replay), a tick timer,
 * SIGINT/SIGTERM, the HTTP listener and the OTLP exporter's transfers; no
 * threads. Events from the kernel are handed to the stage that owns them.
 */
#ifndef MESHTRACE_LOOP_H
#define MESHTRACE_LOOP_H

#include <stddef.h>

#include "agent/agent.h"

/* The capture callback (ctx: the agent): one kernel event, to the stages that take it. */
void loop_on_event(void *ctx, const void *data, size_t size);

/* Creates the signal, timer and epoll descriptors of a->capture, a->otlp, a->httpd. Returns 0 or -errno. */
int loop_setup(struct agent *a);

/* Runs until SIGINT/SIGTERM or the end of a replay. Returns 0 or -errno. */
int loop_run(struct agent *a);

/* Encodes every metric and queues it for the collector (nothing without a metrics endpoint). */
void loop_export_metrics(struct agent *a);

/* Prints the stats JSON to stderr as "meshtrace: @what stats {...}". */
void loop_print_stats(struct agent *a, const char *what);

/* Closes what loop_setup() opened. */
void loop_close(struct agent *a);

#endif /* MESHTRACE_LOOP_H */
