// SPDX-License-Identifier: Apache-2.0
/*
 * The exporter's two ways of saying something went wrong: a log line on
 * stderr, at most one per kind of trouble per minute, and the last error
 * kept in the stats for /api/stats.
 */
#include <stdarg.h>
#include <stdio.h>

#include "agent/export/otlp_internal.h"

void otlp_log_limited(struct otlp_ratelimit *rl, uint64_t now, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (now < rl->next_ms) {
		rl->suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (rl->suppressed)
		fprintf(stderr, OTLP_LOG_PREFIX "%s (%llu more like this in the last minute)\n",
			line, (unsigned long long)rl->suppressed);
	else
		fprintf(stderr, OTLP_LOG_PREFIX "%s\n", line);
	rl->suppressed = 0;
	rl->next_ms = now + OTLP_LOG_INTERVAL_MS;
}

void otlp_set_error(struct otlp_exporter *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->stats.last_error, sizeof(x->stats.last_error), fmt, ap);
	va_end(ap);
}
