/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS over TCP (RFC 1035 4.2.2, RFC 7766): each message behind a two-byte
 * length; queries matched to responses by id. Pure and bounded: per
 * connection DNSTCP_INFLIGHT queries and DNSTCP_KEEP bytes of each message.
 */
#ifndef MESHTRACE_DNSTCP_H
#define MESHTRACE_DNSTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/protocols/l7.h"
#include "agent/protocols/dns.h"

#define DNSTCP_INFLIGHT 8
#define DNSTCP_KEEP	512 /* the header and question are within it; answers past it are skipped */

struct dnstcp_dir {
	uint8_t need_len; /* at a message boundary: reading the length */
	uint8_t len_have;
	uint8_t lost;	 /* framing lost in uncaptured bytes */
	uint8_t started; /* a message was framed in this direction */
	uint8_t len_buf[2];
	uint32_t msg_len;
	uint32_t remaining; /* bytes of the current message still to come */
	uint16_t keep_len;
	uint16_t _pad;
	uint32_t start_seq;
	uint64_t start_ns;
	uint64_t end_ns;
	uint8_t keep[DNSTCP_KEEP];
};

struct dnstcp_query {
	uint8_t in_use;
	uint16_t id;
	struct mt_exchange x;
};

struct dnstcp_conn {
	struct dnstcp_dir req;
	struct dnstcp_dir resp;
	struct dnstcp_query q[DNSTCP_INFLIGHT];
	struct dns_msg scratch;
};

/* DNS over TCP: queries still unanswered at close get MT_X_NO_RESPONSE (l7.h's contract). */
L7_PARSER_DECLARE(dnstcp_parser, struct dnstcp_conn, dnstcp);

/* L7_FROM_CLIENT when @buf starts like a DNS query over TCP (a length, then a query header). */
enum l7_verdict dnstcp_detect(const uint8_t *buf, size_t n);

#endif /* MESHTRACE_DNSTCP_H */
