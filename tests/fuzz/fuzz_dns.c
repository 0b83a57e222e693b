// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer harness for the DNS message parser (agent/protocols/dns.c).
 *
 * Input: the first message's size (2 bytes, little-endian), the first
 * message, then the second (the rest). The second is parsed twice: into a fresh struct, and into the struct the
 * first one filled (DNS over TCP reuses its struct). Both must say the same:
 * nothing of an earlier message may leak into a later one. Each message is
 * copied to a buffer of exactly its size, so ASan sees any read past it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/protocols/dns.h"
#include "tests/fuzz/fuzz_check.h"

static unsigned addrs;

static void on_addr(void *ctx, const char *qname, const uint8_t addr[16], uint32_t ttl)
{
	(void)ctx;
	(void)addr;
	(void)ttl;
	if (strlen(qname) >= DNS_NAME_MAX)
		abort();
	addrs++;
}

static void check_name(const char *s)
{
	if (!memchr(s, '\0', DNS_NAME_MAX))
		abort();
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e ||
		    (*s >= 'A' && *s <= 'Z'))
			abort();
}

static int parse(const uint8_t *p, size_t n, struct dns_msg *m)
{
	uint8_t *copy = malloc(n ? n : 1);
	char buf[16];
	int rc;

	if (!copy)
		abort();
	memcpy(copy, p, n);
	rc = dns_parse(copy, n, m);
	free(copy);
	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc)
		return rc;
	check_name(m->qname);
	if (m->n_answers > DNS_ANSWERS_MAX || m->n_answers + m->answers_skipped > m->ancount)
		abort();
	for (unsigned i = 0; i < m->n_answers; i++) {
		check_name(m->answers[i].name);
		check_name(m->answers[i].target);
	}
	addrs = 0;
	if (dns_resolved_addrs(m, on_addr, NULL) != addrs)
		abort();
	if (strlen(dns_type_name(m->qtype, buf, sizeof(buf))) >= sizeof(buf) ||
	    strlen(dns_rcode_name(m->rcode, buf, sizeof(buf))) >= sizeof(buf))
		abort();
	return 0;
}

static bool same(const struct dns_msg *a, const struct dns_msg *b)
{
	if (a->id != b->id || a->flags != b->flags || a->partial != b->partial ||
	    a->qtype != b->qtype || a->qclass != b->qclass || strcmp(a->qname, b->qname) != 0 ||
	    a->n_answers != b->n_answers || a->answers_skipped != b->answers_skipped)
		return false;
	for (unsigned i = 0; i < a->n_answers; i++) {
		const struct dns_answer *x = &a->answers[i], *y = &b->answers[i];

		if (x->type != y->type || x->klass != y->klass || x->ttl != y->ttl ||
		    memcmp(x->addr, y->addr, sizeof(x->addr)) != 0 ||
		    strcmp(x->name, y->name) != 0 || strcmp(x->target, y->target) != 0)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_msg reused, fresh;
	const uint8_t *first = data + 2, *second;
	size_t n1, n2;
	int rc;

	if (size < 2 || size > 65535)
		return 0;
	n1 = (size_t)data[0] | (size_t)data[1] << 8;
	if (n1 > size - 2)
		n1 = size - 2;
	second = first + n1;
	n2 = size - 2 - n1;
	memset(&reused, 0, sizeof(reused));
	memset(&fresh, 0, sizeof(fresh));
	(void)parse(first, n1, &reused);
	rc = parse(second, n2, &reused);
	if (parse(second, n2, &fresh) != rc)
		abort();
	if (rc == 0 && !same(&reused, &fresh))
		abort();
	return 0;
}
