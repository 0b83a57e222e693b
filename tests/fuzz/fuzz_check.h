/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every parser's output must satisfy, whatever the bytes: the checks the
 * fuzz harnesses share. A broken invariant aborts, and libFuzzer keeps the input.
 */
#ifndef MESHTRACE_TESTS_FUZZ_CHECK_H
#define MESHTRACE_TESTS_FUZZ_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "agent/protocols/l7.h"

/* A string field ends inside its array. */
#define FUZZ_STR(field)                                    \
	do {                                               \
		if (!memchr((field), '\0', sizeof(field))) \
			abort();                           \
	} while (0)

/* An exchange as a parser of @protocol may emit it. */
static inline void fuzz_check_exchange(const struct mt_exchange *x, uint8_t protocol)
{
	const uint32_t known = MT_X_NO_RESPONSE | MT_X_REQ_TRUNCATED | MT_X_RESP_TRUNCATED |
			       MT_X_END_GUESSED | MT_X_ABORTED | MT_X_ERROR | MT_X_CLIENT_ERROR |
			       MT_X_TCP;
	size_t tp;

	FUZZ_STR(x->method);
	FUZZ_STR(x->target);
	FUZZ_STR(x->host);
	FUZZ_STR(x->traceparent);
	FUZZ_STR(x->tracestate);
	FUZZ_STR(x->operation);
	FUZZ_STR(x->db_namespace);
	FUZZ_STR(x->query_text);
	FUZZ_STR(x->status_text);
	tp = strlen(x->traceparent);
	if (tp != 0 && tp != MT_TRACEPARENT_LEN)
		abort();
	if (x->stage != MT_STAGE_DONE && x->stage != MT_STAGE_REQUEST)
		abort();
	if (x->flags & ~known)
		abort();
	if (x->protocol != protocol &&
	    !(protocol == MT_PROTO_HTTP2 && x->protocol == MT_PROTO_GRPC))
		abort();
}

#endif /* MESHTRACE_TESTS_FUZZ_CHECK_H */
