// SPDX-License-Identifier: Apache-2.0
/*
 * OTLP/gRPC on the wire, the parts libcurl does not know: the 5-byte message
 * prefix, the grpc-status / grpc-message / grpc-status-details-bin trailers
 * (or headers, in a Trailers-Only answer), google.rpc.RetryInfo, grpc-timeout,
 * and which status codes OTLP retries. Pure functions, no I/O.
 * Specs: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md
 *        https://opentelemetry.io/docs/specs/otlp/#failures (OTLP/gRPC retries)
 *        https://opentelemetry.io/docs/specs/otlp/#otlpgrpc-throttling
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "otlp.pb-c.h"
#include "agent/export/otlp_internal.h"

#define RETRY_INFO_TYPE "type.googleapis.com/google.rpc.RetryInfo"

void otlp_grpc_prefix(uint8_t out[OTLP_GRPC_PREFIX], bool compressed, uint32_t len)
{
	out[0] = compressed ? 1 : 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

int otlp_grpc_unframe(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msglen,
		      bool *compressed)
{
	uint32_t n;

	if (len < OTLP_GRPC_PREFIX || buf[0] > 1)
		return -EBADMSG;
	n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (n != len - OTLP_GRPC_PREFIX)
		return -EBADMSG; /* truncated (response larger than we keep), or several messages */
	*msg = buf + OTLP_GRPC_PREFIX;
	*msglen = n;
	*compressed = buf[0] == 1;
	return 0;
}

const char *otlp_grpc_code_name(int code)
{
	static const char *const names[] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};

	if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
		return "?";
	return names[code];
}

bool otlp_grpc_retryable(int code, long retry_delay_ms)
{
	switch (code) {
	case OTLP_GRPC_CANCELLED:
	case OTLP_GRPC_DEADLINE_EXCEEDED:
	case OTLP_GRPC_ABORTED:
	case OTLP_GRPC_OUT_OF_RANGE:
	case OTLP_GRPC_UNAVAILABLE:
	case OTLP_GRPC_DATA_LOSS:
		return true;
	case OTLP_GRPC_RESOURCE_EXHAUSTED:
		/* Only when the server says it can recover (OTLP spec, failures). */
		return retry_delay_ms >= 0;
	default:
		return false;
	}
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

ssize_t otlp_base64_decode(const char *src, size_t len, uint8_t *dst, size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i, o = 0;

	/* gRPC sends -bin values unpadded but must accept padding. */
	while (len && src[len - 1] == '=')
		len--;
	for (i = 0; i < len; i++) {
		int v = b64_value((unsigned char)src[i]);

		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -E2BIG;
			dst[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6)
		return -EINVAL; /* a lone character: not base64 */
	return (ssize_t)o;
}

long otlp_grpc_retry_delay_ms(const uint8_t *status_pb, size_t len)
{
	Meshtrace__Otlp__RpcStatus *st = meshtrace__otlp__rpc_status__unpack(NULL, len, status_pb);
	long delay = -1;
	size_t i;

	if (!st)
		return -1;
	for (i = 0; i < st->n_details && delay < 0; i++) {
		Meshtrace__Otlp__ProtobufAny *any = st->details[i];
		Meshtrace__Otlp__RpcRetryInfo *ri;

		if (!any->type_url || strcmp(any->type_url, RETRY_INFO_TYPE))
			continue;
		ri = meshtrace__otlp__rpc_retry_info__unpack(NULL, any->value.len, any->value.data);
		if (!ri)
			continue;
		if (ri->retry_delay) {
			int64_t s = ri->retry_delay->seconds;
			int32_t ns = ri->retry_delay->nanos;

			if (s < 0 || ns < 0)
				delay = 0;
			else if (s >= OTLP_RETRY_AFTER_MAX_MS / 1000)
				delay = OTLP_RETRY_AFTER_MAX_MS;
			else
				delay = (long)(s * 1000 + ns / 1000000);
		} else {
			delay = 0; /* RetryInfo without a delay: retry, with our backoff floor */
		}
		meshtrace__otlp__rpc_retry_info__free_unpacked(ri, NULL);
	}
	meshtrace__otlp__rpc_status__free_unpacked(st, NULL);
	return delay;
}

void otlp_grpc_status_reset(struct otlp_grpc_status *st)
{
	st->code = -1;
	st->retry_delay_ms = -1;
	st->message[0] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* grpc-message is percent-encoded UTF-8; a bad escape is kept as it is. */
static void percent_decode(char *dst, size_t cap, const char *v, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 1 < cap; i++) {
		char c = v[i];

		if (c == '%' && i + 2 < len && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
			c = (char)(hexval(v[i + 1]) << 4 | hexval(v[i + 2]));
			i += 2;
		}
		/* One printable line in logs. */
		if ((unsigned char)c < ' ' || c == 0x7f)
			c = ' ';
		dst[o++] = c;
	}
	dst[o] = '\0';
}

/* The value of header line @line if its name is @name: trimmed, *@vlen set. */
static const char *header_value(const char *line, size_t len, const char *name, size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) || line[n] != ':')
		return NULL;
	line += n + 1;
	len -= n + 1;
	while (len && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' ' ||
		       line[len - 1] == '\t'))
		len--;
	*vlen = len;
	return line;
}

bool otlp_grpc_header(struct otlp_grpc_status *st, const char *line, size_t len)
{
	uint8_t details[OTLP_GRPC_DETAILS_MAX];
	const char *v;
	size_t vlen;

	v = header_value(line, len, "grpc-status", &vlen);
	if (v) {
		int code = 0;
		size_t i;

		for (i = 0; i < vlen && i < 6; i++) {
			if (v[i] < '0' || v[i] > '9')
				break;
			code = code * 10 + (v[i] - '0');
		}
		/* Not a number: UNKNOWN, as gRPC clients read it. */
		st->code = (i == vlen && vlen) ? code : OTLP_GRPC_UNKNOWN;
		return true;
	}
	v = header_value(line, len, "grpc-message", &vlen);
	if (v) {
		percent_decode(st->message, sizeof(st->message), v, vlen);
		return true;
	}
	v = header_value(line, len, "grpc-status-details-bin", &vlen);
	if (v) {
		ssize_t n = otlp_base64_decode(v, vlen, details, sizeof(details));

		if (n >= 0)
			st->retry_delay_ms = otlp_grpc_retry_delay_ms(details, (size_t)n);
		return true;
	}
	return false;
}
