// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer harness for the SQL sanitiser (agent/protocols/sql_sanitize.c).
 *
 * Input: one option byte (bit 0: the dialect, bits 1-7: the output size),
 * then the SQL text. The text is copied to a buffer of exactly its size and
 * the output is a buffer of exactly the size given, so ASan sees any access
 * past either. The returned length is the string's, and below the size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/protocols/sql_sanitize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum sql_dialect d;
	size_t cap, n, len;
	char *sql, *out;

	if (size < 1 || size > (1 << 16))
		return 0;
	d = (data[0] & 1) ? SQL_MYSQL : SQL_POSTGRES;
	/* The parsers' size (MT_QUERY_MAX), or small ones that cut the text. */
	cap = (data[0] >> 1) ? (size_t)(data[0] >> 1) : 256;
	len = size - 1;
	sql = malloc(len ? len : 1);
	out = malloc(cap);
	if (!sql || !out)
		abort();
	memcpy(sql, data + 1, len);

	n = sql_sanitize(sql, len, d, out, cap);
	if (n >= cap || strlen(out) != n)
		abort();
	n = sql_operation(sql, len, d, out, cap);
	if (n >= cap || strlen(out) != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((out[i] >= 'A' && out[i] <= 'Z') || (out[i] >= '0' && out[i] <= '9') ||
		      out[i] == '_'))
			abort();
	free(sql);
	free(out);
	return 0;
}
