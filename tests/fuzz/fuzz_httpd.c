// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer harness for the agent's HTTP listener's request parsing
 * (agent/serve/httpd.c): the bytes arrive as reads fill the head buffer, the
 * head is complete at a blank line, then httpd_parse_request() reads it.
 *
 * Input: one byte giving the size of each read (0: all at once), then the
 * bytes a client sends.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/serve/httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char head[HTTPD_HEAD_MAX];
	struct httpd_request req;
	size_t step, len = 0, pos = 1;
	bool complete = false;

	if (size < 1)
		return 0;
	step = data[0] ? data[0] : HTTPD_HEAD_MAX;
	/* As on_readable(): reads append, the head stays NUL-terminated. */
	while (pos < size && len < sizeof(head) - 1) {
		size_t n = size - pos;

		if (n > step)
			n = step;
		if (n > sizeof(head) - 1 - len)
			n = sizeof(head) - 1 - len;
		memcpy(head + len, data + pos, n);
		len += n;
		pos += n;
		head[len] = '\0';
		if (strstr(head, "\r\n\r\n") || strstr(head, "\n\n")) {
			complete = true;
			break;
		}
	}
	if (!complete)
		return 0;
	memset(&req, 0xaa, sizeof(req));
	if (httpd_parse_request(head, &req) != 0)
		return 0;
	if (!memchr(req.method, '\0', sizeof(req.method)) ||
	    !memchr(req.target, '\0', sizeof(req.target)) || req.target[0] != '/' || !req.method[0])
		abort();
	if (req.query != req.target + strlen(req.target) + 1 && strcmp(req.query, "") != 0)
		abort();
	if (strchr(req.target, '?'))
		abort();
	for (const char *s = req.target; *s; s++)
		if (isspace((unsigned char)*s))
			abort();
	return 0;
}
