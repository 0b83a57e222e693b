// SPDX-License-Identifier: Apache-2.0
/* Peers: local addresses, listeners, DNS names with TTLs, bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/identity/peers.h"

#define S 1000000000ull

static void v4(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	out[12] = a, out[13] = b, out[14] = c, out[15] = d;
}

static void test_local_addrs(void **state)
{
	struct peers *p = peers__new();
	uint8_t own[1][16], a[16], v6loop[16] = {0};

	(void)state;
	assert_non_null(p);
	v4(own[0], 192, 168, 7, 7);
	peers_set_local_addrs(p, (const uint8_t(*)[16])own, 1);
	v4(a, 127, 0, 0, 53);
	assert_true(peers_is_local_addr(p, a));
	v4(a, 192, 168, 7, 7);
	assert_true(peers_is_local_addr(p, a));
	v4(a, 192, 168, 7, 8);
	assert_false(peers_is_local_addr(p, a));
	v6loop[15] = 1;
	assert_true(peers_is_local_addr(p, v6loop));
	/* The real interfaces: loopback at least. */
	assert_true(peers_refresh_local_addrs(p) >= 1);
	peers__free(p);
	peers__free(NULL);
}

static void test_listeners(void **state)
{
	struct peers *p = peers__new();
	uint8_t lo[16], lo2[16], far[16];
	uint32_t pid = 0;
	char comm[16];
	char text[64];

	(void)state;
	v4(lo, 127, 0, 0, 1);
	v4(lo2, 127, 0, 0, 2);
	v4(far, 10, 0, 0, 9);
	peers_learn_listener(p, lo, 8080, 42, "nginx", 1 * S);
	assert_true(peers_find_listener(p, lo, 8080, &pid, comm));
	assert_int_equal(pid, 42);
	assert_string_equal(comm, "nginx");
	/* Another local address, same port: the same listener. */
	assert_true(peers_find_listener(p, lo2, 8080, &pid, comm));
	/* Not another host's address, nor another port. */
	assert_false(peers_find_listener(p, far, 8080, &pid, comm));
	assert_false(peers_find_listener(p, lo, 8081, &pid, comm));
	peers_learn_listener(p, far, 5432, 43, "postgres", 1 * S);
	assert_true(peers_find_listener(p, far, 5432, &pid, comm));
	peers_forget_pid(p, 42);
	assert_false(peers_find_listener(p, lo, 8080, &pid, comm));
	/* Idle listeners go. */
	peers_expire(p, 1 * S + PEERS_LISTENER_IDLE_NS + 1);
	assert_false(peers_find_listener(p, far, 5432, &pid, comm));
	/* Bounded: many more than fit, every one placed or counted. */
	for (uint32_t i = 0; i < 4 * PEERS_LISTENERS_MAX; i++) {
		uint8_t a[16];

		v4(a, 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
		peers_learn_listener(p, a, 80, i, "x", 2 * S + i);
	}
	{
		struct peers_stats st;

		peers_stats(p, &st);
		assert_true(st.listeners <= PEERS_LISTENERS_MAX);
		assert_true(st.listeners_evicted > 0);
	}
	peers_format_addr_port(lo, 80, text, sizeof(text));
	assert_string_equal(text, "127.0.0.1:80");
	{
		uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};

		v6[15] = 1;
		peers_format_addr_port(v6, 443, text, sizeof(text));
		assert_string_equal(text, "[2001:db8::1]:443");
	}
	peers__free(p);
}

static void test_dns_names(void **state)
{
	/* shop.test A 10.7.0.10 TTL 30, as a resolver answers. */
	static const uint8_t resp[] = {
		0xab, 0xcd, 0x81, 0x80, 0,   1, 0,   1,	  0,   0,   0, 0,	    /* header */
		4,    's',  'h',  'o',	'p', 4, 't', 'e', 's', 't', 0, 0, 1,  0, 1, /* question */
		0xc0, 0x0c, 0,	  1,	0,   1, 0,   0,	  0,   30,  0, 4, 10, 7, 0, 10, /* answer */
	};
	struct peers *p = peers__new();
	struct peers_stats st;
	uint8_t a[16];

	(void)state;
	v4(a, 10, 7, 0, 10);
	assert_int_equal(peers_on_dns(p, resp, sizeof(resp), 100 * S), 1);
	assert_string_equal(peers_dns_name(p, a, 100 * S), "shop.test");
	assert_string_equal(peers_dns_name(p, a, 129 * S), "shop.test");
	/* TTL respected. */
	assert_null(peers_dns_name(p, a, 131 * S));
	/* A TTL under the floor still names the next few seconds. */
	peers_learn_name(p, a, "zero.test", 0, 200 * S);
	assert_string_equal(peers_dns_name(p, a, 204 * S), "zero.test");
	assert_null(peers_dns_name(p, a, 206 * S));
	/* Garbage is counted, not learned. */
	assert_int_equal(peers_on_dns(p, (const uint8_t *)"nope", 4, 1), -EINVAL);
	/* Bounded. */
	for (uint32_t i = 0; i < 3 * PEERS_DNS_MAX; i++) {
		uint8_t b[16];

		v4(b, 11, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
		peers_learn_name(p, b, "many.test", 60, 300 * S);
	}
	peers_expire(p, 301 * S);
	peers_stats(p, &st);
	assert_int_equal(st.dns_malformed, 1);
	assert_true(st.dns_entries <= PEERS_DNS_MAX);
	assert_true(st.dns_evicted > 0);
	peers__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_addrs),
		cmocka_unit_test(test_listeners),
		cmocka_unit_test(test_dns_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
