/* SPDX-License-Identifier: Apache-2.0 */
/* Logging to stderr, one line per message, "meshtrace: " first. */
#ifndef MESHTRACE_LOG_H
#define MESHTRACE_LOG_H

enum mt_log_level {
	MT_LOG_ERROR = 0,
	MT_LOG_WARN = 1,
	MT_LOG_INFO = 2,
	MT_LOG_DEBUG = 3,
};

extern enum mt_log_level mt_log_level;

/* Writes one line when @level is enabled; the level is checked before formatting. */
void mt_log(enum mt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mt_err(...)   mt_log(MT_LOG_ERROR, __VA_ARGS__)
#define mt_warn(...)  mt_log(MT_LOG_WARN, __VA_ARGS__)
#define mt_info(...)  mt_log(MT_LOG_INFO, __VA_ARGS__)
#define mt_debug(...) mt_log(MT_LOG_DEBUG, __VA_ARGS__)

#endif /* MESHTRACE_LOG_H */
