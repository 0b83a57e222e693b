/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UTF-8 checks for what exporters send: protobuf strings and JSON must be
 * valid UTF-8, and captured bytes often are not (binary, cut mid-character).
 * Spec: Unicode 15, section 3.9, Table 3-7 (well-formed byte sequences).
 */
#ifndef MESHTRACE_UTF8_H
#define MESHTRACE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The replacement character U+FFFD, encoded. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/*
 * Length (1..4) of the well-formed sequence that starts @s (@n > 0 bytes
 * available), or 0 when there is none; then *@bad gets the length of the
 * ill-formed part to replace by one U+FFFD (its maximal subpart, >= 1).
 */
size_t utf8_seq_len(const unsigned char *s, size_t n, size_t *bad);

/* Whether the @n bytes at @s are well-formed UTF-8. */
bool utf8_valid(const char *s, size_t n);

/*
 * Copies the @n bytes at @s into @dst (@cap bytes, NUL-terminated), each
 * ill-formed part replaced by U+FFFD. Stops early, on a character boundary,
 * when @dst is full. Returns the length written. 3 * @n + 1 bytes always fit.
 */
size_t utf8_sanitize(char *dst, size_t cap, const char *s, size_t n);

/* The length utf8_sanitize() writes for the @n bytes at @s when @dst has room for all of it. */
size_t utf8_repaired_len(const char *s, size_t n);

#endif /* MESHTRACE_UTF8_H */
