/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's health: one table of every counter and gauge the stages keep,
 * each with where it appears in the stats JSON (/api/stats and the stats
 * lines on stderr) and under which metric and attribute in /metrics and the
 * OTLP metrics. A counter is added to the table once and shows in both.
 */
#ifndef MESHTRACE_HEALTH_H
#define MESHTRACE_HEALTH_H

#include "agent/agent.h"
#include "agent/common/buf.h"

/* Fills a->health from the table, for metrics_write_prometheus() and metrics_encode_otlp(). */
void health_collect(struct agent *a);

/* Appends the stats JSON object (one line, no newline). Returns 0 or -ENOMEM. */
int health_write_json(struct agent *a, struct mt_buf *b);

#endif /* MESHTRACE_HEALTH_H */
