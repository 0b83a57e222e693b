// SPDX-License-Identifier: Apache-2.0
#include <errno.h>

#include "agent/identity/grpc.h"

void grpc_frame_prefix(uint8_t out[GRPC_PREFIX_LEN], uint32_t len)
{
	out[0] = 0; /* not compressed */
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

int grpc_unframe(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msglen)
{
	uint32_t n;

	if (len < GRPC_PREFIX_LEN)
		return -EAGAIN;
	if (buf[0] != 0)
		return -EPROTO;
	n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (len - GRPC_PREFIX_LEN < n)
		return -EAGAIN;
	if (len - GRPC_PREFIX_LEN > n)
		return -EPROTO;
	*msg = buf + GRPC_PREFIX_LEN;
	*msglen = n;
	return 0;
}

int grpc_status_parse(const char *v, size_t n)
{
	int code = 0;

	if (n == 0 || n > 2)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		code = code * 10 + (v[i] - '0');
	}
	return code <= 16 ? code : -1;
}
