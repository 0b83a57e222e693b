// SPDX-License-Identifier: Apache-2.0
/* DNS parser: answers, CNAME chains, compression, truncation, malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/protocols/dns.h"

/* A message under construction. */
struct wire {
	uint8_t b[1024];
	size_t n;
};

static void put8(struct wire *w, uint8_t v)
{
	w->b[w->n++] = v;
}

static void put16(struct wire *w, uint16_t v)
{
	put8(w, (uint8_t)(v >> 8));
	put8(w, (uint8_t)v);
}

static void put32(struct wire *w, uint32_t v)
{
	put16(w, (uint16_t)(v >> 16));
	put16(w, (uint16_t)v);
}

static void put_name(struct wire *w, const char *name)
{
	while (*name) {
		size_t l = strcspn(name, ".");

		put8(w, (uint8_t)l);
		memcpy(w->b + w->n, name, l);
		w->n += l;
		name += l;
		if (*name == '.')
			name++;
	}
	put8(w, 0);
}

static void header(struct wire *w, uint16_t flags, uint16_t qd, uint16_t an)
{
	w->n = 0;
	put16(w, 0x1234);
	put16(w, flags);
	put16(w, qd);
	put16(w, an);
	put16(w, 0);
	put16(w, 0);
}

/* shop.example.test A -> CNAME lb.example.test -> A 10.1.2.3, plus an unrelated A record. */
static void cname_response(struct wire *w)
{
	header(w, 0x8180, 1, 4);
	put_name(w, "Shop.Example.TEST");
	put16(w, DNS_TYPE_A);
	put16(w, 1);
	/* answer 1: pointer to the question name (offset 12) */
	put16(w, 0xc00c);
	put16(w, DNS_TYPE_CNAME);
	put16(w, 1);
	put32(w, 300);
	put16(w, 17);
	put_name(w, "lb.example.test"); /* 17 bytes */
	/* answer 2: lb.example.test, by pointer to the CNAME's rdata (offset 12+19+4+12=47) */
	put16(w, 0xc000 | 47);
	put16(w, DNS_TYPE_A);
	put16(w, 1);
	put32(w, 60);
	put16(w, 4);
	put8(w, 10), put8(w, 1), put8(w, 2), put8(w, 3);
	/* answer 3: unrelated */
	put_name(w, "other.test");
	put16(w, DNS_TYPE_A);
	put16(w, 1);
	put32(w, 600);
	put16(w, 4);
	put8(w, 9), put8(w, 9), put8(w, 9), put8(w, 9);
	/* answer 4: a TXT record, skipped */
	put16(w, 0xc00c);
	put16(w, DNS_TYPE_TXT);
	put16(w, 1);
	put32(w, 5);
	put16(w, 3);
	put8(w, 2), put8(w, 'h'), put8(w, 'i');
}

struct seen {
	unsigned n;
	char name[DNS_NAME_MAX];
	uint8_t addr[16];
	uint32_t ttl;
};

static void on_addr(void *ctx, const char *qname, const uint8_t addr[16], uint32_t ttl)
{
	struct seen *s = ctx;

	s->n++;
	strcpy(s->name, qname);
	memcpy(s->addr, addr, 16);
	s->ttl = ttl;
}

static void test_cname_chain(void **state)
{
	static const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
	struct dns_msg *m = malloc(sizeof(*m));
	struct seen seen = {0};
	struct wire w;

	(void)state;
	cname_response(&w);
	assert_int_equal(dns_parse(w.b, w.n, m), 0);
	assert_true(m->response);
	assert_false(m->partial);
	assert_int_equal(m->id, 0x1234);
	assert_int_equal(m->rcode, DNS_RCODE_NOERROR);
	assert_string_equal(m->qname, "shop.example.test");
	assert_int_equal(m->qtype, DNS_TYPE_A);
	assert_int_equal(m->ancount, 4);
	assert_int_equal(m->n_answers, 3);
	assert_int_equal(m->answers_skipped, 1);
	assert_string_equal(m->answers[0].target, "lb.example.test");
	assert_string_equal(m->answers[1].name, "lb.example.test");
	/* The question name, the A at the end of its chain, the chain's smallest TTL. */
	assert_int_equal(dns_resolved_addrs(m, on_addr, &seen), 1);
	assert_string_equal(seen.name, "shop.example.test");
	assert_memory_equal(seen.addr, want, 16);
	assert_int_equal(seen.ttl, 60);
	free(m);
}

static void test_aaaa_and_names(void **state)
{
	struct dns_msg *m = malloc(sizeof(*m));
	struct seen seen = {0};
	char buf[16];
	struct wire w;

	(void)state;
	header(&w, 0x8180, 1, 1);
	put_name(&w, "v6.test");
	put16(&w, DNS_TYPE_AAAA);
	put16(&w, 1);
	put16(&w, 0xc00c);
	put16(&w, DNS_TYPE_AAAA);
	put16(&w, 1);
	put32(&w, 0x80000001u); /* top bit set: RFC 2181 says 0 */
	put16(&w, 16);
	for (int i = 0; i < 16; i++)
		put8(&w, (uint8_t)(0x20 + i));
	assert_int_equal(dns_parse(w.b, w.n, m), 0);
	assert_int_equal(m->answers[0].ttl, 0);
	assert_int_equal(dns_resolved_addrs(m, on_addr, &seen), 1);
	assert_int_equal(seen.addr[0], 0x20);
	assert_string_equal(dns_type_name(DNS_TYPE_AAAA, buf, sizeof(buf)), "AAAA");
	assert_string_equal(dns_type_name(999, buf, sizeof(buf)), "TYPE999");
	assert_string_equal(dns_rcode_name(3, buf, sizeof(buf)), "NXDOMAIN");
	assert_string_equal(dns_rcode_name(11, buf, sizeof(buf)), "RCODE11");
	free(m);
}

static void test_query_and_nxdomain(void **state)
{
	struct dns_msg *m = malloc(sizeof(*m));
	struct seen seen = {0};
	struct wire w;

	(void)state;
	header(&w, 0x0100, 1, 0);
	put_name(&w, "a.test");
	put16(&w, DNS_TYPE_A);
	put16(&w, 1);
	assert_int_equal(dns_parse(w.b, w.n, m), 0);
	assert_false(m->response);
	assert_string_equal(m->qname, "a.test");

	header(&w, 0x8183, 1, 0);
	put_name(&w, "gone.test");
	put16(&w, DNS_TYPE_A);
	put16(&w, 1);
	assert_int_equal(dns_parse(w.b, w.n, m), 0);
	assert_int_equal(m->rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(dns_resolved_addrs(m, on_addr, &seen), 0);
	free(m);
}

static void test_malformed(void **state)
{
	struct dns_msg *m = malloc(sizeof(*m));
	struct wire w;

	(void)state;
	assert_int_equal(dns_parse((const uint8_t *)"short", 5, m), -EINVAL);
	/* A pointer to itself. */
	header(&w, 0x8180, 1, 0);
	put16(&w, 0xc00c);
	put16(&w, 1);
	put16(&w, 1);
	assert_int_equal(dns_parse(w.b, w.n, m), -EINVAL);
	/* Two questions: not what resolvers send. */
	header(&w, 0x8180, 2, 0);
	assert_int_equal(dns_parse(w.b, w.n, m), -EINVAL);
	/* An A record whose data is not 4 bytes. */
	header(&w, 0x8180, 1, 1);
	put_name(&w, "x.test");
	put16(&w, 1);
	put16(&w, 1);
	put16(&w, 0xc00c);
	put16(&w, DNS_TYPE_A);
	put16(&w, 1);
	put32(&w, 1);
	put16(&w, 3);
	put8(&w, 1), put8(&w, 2), put8(&w, 3);
	assert_int_equal(dns_parse(w.b, w.n, m), -EINVAL);
	free(m);
}

/* Every prefix of a good message parses without reading past it, as partial. */
static void test_every_truncation(void **state)
{
	struct dns_msg *m = malloc(sizeof(*m));
	struct wire w;

	(void)state;
	cname_response(&w);
	for (size_t n = 0; n < w.n; n++) {
		uint8_t *copy = malloc(n ? n : 1);

		memcpy(copy, w.b, n);
		if (n < DNS_HEADER_LEN) {
			assert_int_equal(dns_parse(copy, n, m), -EINVAL);
		} else {
			assert_int_equal(dns_parse(copy, n, m), 0);
			assert_true(m->partial);
		}
		free(copy);
	}
	free(m);
}

/*
 * A question name cut short leaves no name behind, not the previous message's: the struct is
 * reused (DNS over TCP), and "abc" over "www.example.com" read as "abc.example.com".
 */
static void test_cut_name_is_not_the_previous_one(void **state)
{
	struct dns_msg *m = malloc(sizeof(*m));
	struct wire w;

	(void)state;
	header(&w, 0x0100, 1, 0);
	put_name(&w, "www.example.com");
	put16(&w, DNS_TYPE_A);
	put16(&w, 1);
	assert_int_equal(dns_parse(w.b, w.n, m), 0);
	assert_string_equal(m->qname, "www.example.com");
	header(&w, 0x0100, 1, 0);
	put_name(&w, "abc.example.org");
	/* The bytes end after the first label: the name is not known. */
	assert_int_equal(dns_parse(w.b, DNS_HEADER_LEN + 4, m), 0);
	assert_true(m->partial);
	assert_string_equal(m->qname, "");
	free(m);
}

/* Random bytes: never a crash or a read out of bounds (ASan watches). */
static void test_noise(void **state)
{
	struct dns_msg *m = malloc(sizeof(*m));
	uint32_t x = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t n = 12 + (x % 200);
		uint8_t *buf = malloc(n);

		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (uint8_t)(x >> 16);
		}
		buf[4] = 0;
		buf[5] = (uint8_t)(round & 1); /* some with a question */
		buf[6] = 0;
		buf[7] = (uint8_t)(x % 5);
		(void)dns_parse(buf, n, m);
		free(buf);
	}
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cname_chain),
		cmocka_unit_test(test_aaaa_and_names),
		cmocka_unit_test(test_query_and_nxdomain),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_noise),
		cmocka_unit_test(test_cut_name_is_not_the_previous_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
