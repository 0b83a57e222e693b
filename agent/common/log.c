// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdio.h>

#include "agent/common/log.h"

enum mt_log_level mt_log_level = MT_LOG_INFO;

void mt_log(enum mt_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level > mt_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "meshtrace: %s\n", line);
}
