/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging to stderr, one line per message, "meshtrace: " first. A message
 * stays one line whatever it echoes: control characters (CR, LF, ESC, the C1
 * controls) are written escaped, so a flag or variable value cannot forge a
 * log line or drive a terminal.
 */
#ifndef MESHTRACE_LOG_H
#define MESHTRACE_LOG_H

#include <stddef.h>

enum mt_log_level {
	MT_LOG_ERROR = 0,
	MT_LOG_WARN = 1,
	MT_LOG_INFO = 2,
	MT_LOG_DEBUG = 3,
};

extern enum mt_log_level mt_log_level;

/* The most of one message written; longer ones are cut, and end in "...". */
#define MT_LOG_LINE_MAX 1024

/* The most of a user-provided value a message quotes (mt_log_value). */
#define MT_LOG_VALUE_MAX 80

/* Writes one line when @level is enabled; the level is checked before formatting. */
void mt_log(enum mt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mt_err(...)   mt_log(MT_LOG_ERROR, __VA_ARGS__)
#define mt_warn(...)  mt_log(MT_LOG_WARN, __VA_ARGS__)
#define mt_info(...)  mt_log(MT_LOG_INFO, __VA_ARGS__)
#define mt_debug(...) mt_log(MT_LOG_DEBUG, __VA_ARGS__)

/*
 * Copies @in to @out (@outlen bytes, NUL-terminated) with every control
 * character escaped: "\n", "\r", "\t", "\e" or "\xHH"; a C1 control (U+0080..
 * U+009F, two bytes in UTF-8) as "\u00HH". Returns the length written. Pure.
 */
size_t mt_log_escape(char *out, size_t outlen, const char *in);

/*
 * A user-provided value as a message quotes it: escaped, and cut to at most
 * MT_LOG_VALUE_MAX bytes with "...(N bytes)" when longer, so the rest of the
 * line (what to do) is still read. Returns @out. Pure.
 */
const char *mt_log_value(char out[MT_LOG_VALUE_MAX + 32], const char *v);

/*
 * Writes one error line (printf @fmt) into @err (@errlen bytes; nothing when NULL or 0), for a
 * caller that reports it later; returns -EINVAL. Used by the parsers of flags and variables,
 * which print nothing themselves.
 */
__attribute__((format(printf, 3, 4))) int mt_fail(char *err, size_t errlen, const char *fmt, ...);

#endif /* MESHTRACE_LOG_H */
