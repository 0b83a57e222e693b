// SPDX-License-Identifier: Apache-2.0
/*
 * DNS message parser. Spec: https://www.rfc-editor.org/rfc/rfc1035#section-4.1
 * (AAAA: RFC 3596; TTL semantics: RFC 2181 section 8).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/protocols/dns.h"

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Reads the name at @off into @out (presentation form, lower case). Sets
 * *@next to the offset after the name as it sits at @off (after its first
 * pointer, if any). Returns 0, -EAGAIN when the bytes end inside the name,
 * -EINVAL when it is malformed; on an error @out holds what was read so far,
 * not NUL-terminated.
 */
static int read_name(const uint8_t *p, size_t len, size_t off, char *out, size_t *next)
{
	size_t o = 0, pos = off;
	unsigned jumps = 0;
	bool jumped = false;

	for (;;) {
		uint8_t l;

		if (pos >= len)
			return -EAGAIN;
		l = p[pos];
		if ((l & 0xc0) == 0xc0) {
			size_t target;

			if (pos + 1 >= len)
				return -EAGAIN;
			target = (size_t)(l & 0x3f) << 8 | p[pos + 1];
			if (!jumped)
				*next = pos + 2;
			jumped = true;
			/* Pointers go back to earlier names; a loop or a forward jump is an error. */
			if (++jumps > DNS_JUMPS_MAX || target >= pos)
				return -EINVAL;
			pos = target;
			continue;
		}
		if (l & 0xc0) /* 0x40, 0x80: extended label types, obsolete */
			return -EINVAL;
		if (l == 0) {
			if (!jumped)
				*next = pos + 1;
			break;
		}
		if (pos + 1 + l > len)
			return -EAGAIN;
		/* The name's wire form is at most 255 bytes, so its text fits DNS_NAME_MAX. */
		if (o + l + 1 >= DNS_NAME_MAX)
			return -EINVAL;
		if (o)
			out[o++] = '.';
		for (unsigned i = 0; i < l; i++) {
			uint8_t c = p[pos + 1 + i];

			if (c >= 'A' && c <= 'Z')
				c = (uint8_t)(c - 'A' + 'a');
			else if (c < 0x21 || c > 0x7e)
				c = '?';
			out[o++] = (char)c;
		}
		pos += 1 + l;
	}
	out[o] = '\0';
	return 0;
}

int dns_parse(const uint8_t *p, size_t len, struct dns_msg *m)
{
	size_t off = DNS_HEADER_LEN;
	unsigned total;
	int err;

	m->n_answers = 0;
	m->answers_skipped = 0;
	m->qname[0] = '\0';
	m->qtype = m->qclass = 0;
	m->partial = false;
	if (len < DNS_HEADER_LEN)
		return -EINVAL;
	m->id = rd16(p);
	m->flags = rd16(p + 2);
	m->response = (m->flags & 0x8000) != 0;
	m->opcode = (uint8_t)((m->flags >> 11) & 0xf);
	m->truncated = (m->flags & 0x0200) != 0;
	m->rcode = (uint8_t)(m->flags & 0xf);
	m->qdcount = rd16(p + 4);
	m->ancount = rd16(p + 6);
	m->nscount = rd16(p + 8);
	m->arcount = rd16(p + 10);
	/* In practice every query has exactly one question (RFC 9619). */
	if (m->qdcount > 1 || m->opcode > 6 || (m->flags & 0x0040))
		return -EINVAL;
	/* Every record takes at least 11 bytes: counts beyond 64 KiB of them are not DNS. */
	total = (unsigned)m->qdcount + m->ancount + m->nscount + m->arcount;
	if (total * 11u > 65535u)
		return -EINVAL;

	if (m->qdcount) {
		err = read_name(p, len, off, m->qname, &off);
		if (err == -EAGAIN || (!err && off + 4 > len)) {
			/* A name cut short is not the name asked for: none, not its first labels. */
			if (err)
				m->qname[0] = '\0';
			m->partial = true;
			return 0;
		}
		if (err)
			return err;
		m->qtype = rd16(p + off);
		m->qclass = rd16(p + off + 2);
		off += 4;
	}

	for (unsigned i = 0; i < m->ancount; i++) {
		struct dns_answer *a =
			m->n_answers < DNS_ANSWERS_MAX ? &m->answers[m->n_answers] : NULL;
		char scratch[DNS_NAME_MAX];
		uint16_t type, rdlen;
		size_t rdata;

		err = read_name(p, len, off, a ? a->name : scratch, &off);
		if (err == -EAGAIN || (!err && off + 10 > len)) {
			m->partial = true;
			return 0;
		}
		if (err)
			return err;
		type = rd16(p + off);
		rdlen = rd16(p + off + 8);
		rdata = off + 10;
		if (rdata + rdlen > len) {
			m->partial = true;
			return 0;
		}
		if (!a || (type != DNS_TYPE_A && type != DNS_TYPE_AAAA && type != DNS_TYPE_CNAME)) {
			m->answers_skipped++;
			off = rdata + rdlen;
			continue;
		}
		a->type = type;
		a->klass = rd16(p + off + 2);
		a->ttl = rd32(p + off + 4);
		if (a->ttl & 0x80000000u) /* RFC 2181 8: treat as zero */
			a->ttl = 0;
		memset(a->addr, 0, sizeof(a->addr));
		a->target[0] = '\0';
		if (type == DNS_TYPE_A) {
			if (rdlen != 4)
				return -EINVAL;
			a->addr[10] = a->addr[11] = 0xff;
			memcpy(&a->addr[12], p + rdata, 4);
		} else if (type == DNS_TYPE_AAAA) {
			if (rdlen != 16)
				return -EINVAL;
			memcpy(a->addr, p + rdata, 16);
		} else {
			size_t end;

			err = read_name(p, rdata + rdlen, rdata, a->target, &end);
			if (err)
				return -EINVAL;
		}
		m->n_answers++;
		off = rdata + rdlen;
	}
	return 0;
}

unsigned dns_resolved_addrs(const struct dns_msg *m, dns_addr_fn fn, void *ctx)
{
	char name[DNS_NAME_MAX];
	uint32_t ttl = UINT32_MAX;
	unsigned reported = 0;

	if (!m->response || m->rcode != DNS_RCODE_NOERROR || !m->qname[0])
		return 0;
	memcpy(name, m->qname, sizeof(name));
	/* At most one CNAME hop per answer: a chain cannot be longer than the answers. */
	for (unsigned hop = 0; hop <= m->n_answers; hop++) {
		const char *next = NULL;

		for (unsigned i = 0; i < m->n_answers; i++) {
			const struct dns_answer *a = &m->answers[i];

			if (strcmp(a->name, name) != 0)
				continue;
			if (a->type == DNS_TYPE_CNAME) {
				if (!next) {
					next = a->target;
					if (a->ttl < ttl)
						ttl = a->ttl;
				}
			} else if (a->type == m->qtype || m->qtype == 255 /* ANY */) {
				fn(ctx, m->qname, a->addr, a->ttl < ttl ? a->ttl : ttl);
				reported++;
			}
		}
		if (reported || !next)
			break;
		memmove(name, next, strlen(next) + 1);
	}
	return reported;
}

const char *dns_type_name(uint16_t type, char *buf, size_t len)
{
	static const struct {
		uint16_t type;
		const char *name;
	} names[] = {
		{DNS_TYPE_A, "A"},     {DNS_TYPE_NS, "NS"},	  {DNS_TYPE_CNAME, "CNAME"},
		{DNS_TYPE_SOA, "SOA"}, {DNS_TYPE_PTR, "PTR"},	  {DNS_TYPE_MX, "MX"},
		{DNS_TYPE_TXT, "TXT"}, {DNS_TYPE_AAAA, "AAAA"},	  {DNS_TYPE_SRV, "SRV"},
		{DNS_TYPE_OPT, "OPT"}, {DNS_TYPE_HTTPS, "HTTPS"}, {255, "ANY"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].type == type)
			return names[i].name;
	snprintf(buf, len, "TYPE%u", type);
	return buf;
}

const char *dns_rcode_name(uint8_t rcode, char *buf, size_t len)
{
	static const char *const names[] = {"NOERROR",	"FORMERR", "SERVFAIL",
					    "NXDOMAIN", "NOTIMP",  "REFUSED"};

	if (rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	snprintf(buf, len, "RCODE%u", rcode);
	return buf;
}
