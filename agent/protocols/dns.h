/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS messages: header, question, and the answers a peer map or a DNS span
 * needs (A, AAAA, CNAME with their TTLs; other types counted and skipped).
 * Spec: RFC 1035 section 4.1 (format, name compression), RFC 3596 (AAAA),
 * RFC 2181 section 8 (TTL: 32 bits, top bit set means 0).
 *
 * Pure: bytes in, a struct out; no I/O, no globals, no allocation. A message
 * captured only in part parses as far as its bytes go (dns_msg.partial).
 * DNS over TCP prefixes each message with a 2-byte length: strip it first.
 */
#ifndef MESHTRACE_DNS_H
#define MESHTRACE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN	12
#define DNS_NAME_MAX	256 /* presentation form, NUL included (names are at most 253) */
#define DNS_ANSWERS_MAX 16  /* answer records kept; more are counted in answers_skipped */
#define DNS_JUMPS_MAX	32  /* compression pointers followed per name */

enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_NS = 2,
	DNS_TYPE_CNAME = 5,
	DNS_TYPE_SOA = 6,
	DNS_TYPE_PTR = 12,
	DNS_TYPE_MX = 15,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_SRV = 33,
	DNS_TYPE_OPT = 41,
	DNS_TYPE_HTTPS = 65,
};

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
};

struct dns_answer {
	uint16_t type;		   /* enum dns_type */
	uint16_t klass;		   /* 1 = IN */
	uint32_t ttl;		   /* seconds */
	uint8_t addr[16];	   /* A (stored v4-mapped, ::ffff:a.b.c.d) or AAAA; else zero */
	char name[DNS_NAME_MAX];   /* the record's owner name */
	char target[DNS_NAME_MAX]; /* CNAME: the canonical name; else "" */
};

struct dns_msg {
	uint16_t id;
	uint16_t flags; /* the header's second 16 bits as sent */
	bool response;	/* QR */
	bool truncated; /* TC: the server cut the answer (the client retries over TCP) */
	bool partial;	/* the bytes ended before the records the header announced */
	uint8_t opcode;
	uint8_t rcode; /* enum dns_rcode (low 4 bits; EDNS extended bits not read) */
	uint16_t qdcount;
	uint16_t ancount;
	uint16_t nscount;
	uint16_t arcount;
	uint16_t qtype; /* of the first question; 0 when there is none */
	uint16_t qclass;
	/* The first question's name, lower case, no final dot; "" when the bytes end inside it. */
	char qname[DNS_NAME_MAX];
	unsigned n_answers;	  /* answers[] filled: A, AAAA and CNAME records only */
	unsigned answers_skipped; /* answer records of other types, or past DNS_ANSWERS_MAX */
	struct dns_answer answers[DNS_ANSWERS_MAX];
};

/*
 * Parses the message in @p[0..@len). Returns 0 (@m filled; m->partial when
 * @len ends before the records the header announced), or -EINVAL when the
 * bytes are not a DNS message (short header, bad name, pointer loop, more
 * than one question, counts that cannot fit). Names are lower-cased; bytes
 * outside printable ASCII become '?'.
 */
int dns_parse(const uint8_t *p, size_t len, struct dns_msg *m);

/*
 * Follows @m's CNAME chain from its question name and calls @fn for each
 * A/AAAA answer that the question name resolves to, with the smallest TTL
 * along the way. Returns the number of addresses reported. Answers that the
 * chain does not reach (unrelated records) are not reported.
 */
typedef void (*dns_addr_fn)(void *ctx, const char *qname, const uint8_t addr[16], uint32_t ttl);
unsigned dns_resolved_addrs(const struct dns_msg *m, dns_addr_fn fn, void *ctx);

/* "A", "AAAA", "CNAME", ... or "TYPE<n>" written into @buf (RFC 3597 style). */
const char *dns_type_name(uint16_t type, char *buf, size_t len);

/* "NOERROR", "NXDOMAIN", ... or "RCODE<n>" written into @buf. */
const char *dns_rcode_name(uint8_t rcode, char *buf, size_t len);

#endif /* MESHTRACE_DNS_H */
