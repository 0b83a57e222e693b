// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/identity/peers.h"
#include "agent/common/hashtab.h"
#include "agent/common/util.h"

struct listener {
	uint64_t seen_ns; /* 0: empty */
	uint8_t addr[16]; /* all zero: "any local address" */
	uint16_t port;
	uint16_t _pad;
	uint32_t pid;
	char comm[16];
};

struct dns_entry {
	uint64_t expires_ns; /* 0: empty */
	uint8_t addr[16];
	char name[PEERS_NAME_MAX];
};

struct peers {
	struct listener listeners[PEERS_LISTENERS_MAX];
	struct dns_entry names[PEERS_DNS_MAX];
	uint8_t local[PEERS_LOCAL_ADDRS_MAX][16];
	unsigned nlocal;
	struct peers_stats stats;
	struct dns_msg msg; /* scratch for peers_on_dns: too big for the stack */
	uint64_t learn_now_ns;
};

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t any_addr[16];

struct peers *peers__new(void)
{
	return calloc(1, sizeof(struct peers));
}

void peers__free(struct peers *p)
{
	free(p);
}

void peers_set_local_addrs(struct peers *p, const uint8_t (*addrs)[16], unsigned n)
{
	if (n > PEERS_LOCAL_ADDRS_MAX)
		n = PEERS_LOCAL_ADDRS_MAX;
	memcpy(p->local, addrs, (size_t)n * 16);
	p->nlocal = n;
	p->stats.local_addrs = n;
}

int peers_refresh_local_addrs(struct peers *p)
{
	uint8_t addrs[PEERS_LOCAL_ADDRS_MAX][16];
	struct ifaddrs *ifa, *i;
	unsigned n = 0;

	if (getifaddrs(&ifa) != 0)
		return -errno;
	for (i = ifa; i && n < PEERS_LOCAL_ADDRS_MAX; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			memcpy(addrs[n], v4mapped, 12);
			memcpy(&addrs[n][12], &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
			n++;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			memcpy(addrs[n], &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
			n++;
		}
	}
	freeifaddrs(ifa);
	peers_set_local_addrs(p, (const uint8_t(*)[16])addrs, n);
	return (int)n;
}

bool peers_is_local_addr(const struct peers *p, const uint8_t addr[16])
{
	static const uint8_t v6loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

	if (memcmp(addr, v4mapped, 12) == 0 && (addr[12] == 127 || !memcmp(addr + 12, any_addr, 4)))
		return true;
	if (!memcmp(addr, v6loop, 16) || !memcmp(addr, any_addr, 16))
		return true;
	for (unsigned i = 0; i < p->nlocal; i++)
		if (!memcmp(addr, p->local[i], 16))
			return true;
	return false;
}

static struct listener *listener_slot(struct peers *p, const uint8_t addr[16], uint16_t port,
				      uint64_t now_ns)
{
	uint32_t h = hashtab_hash_bytes(addr, 16, port) & (PEERS_LISTENERS_MAX - 1);
	struct listener *empty = NULL, *oldest = NULL;

	for (unsigned i = 0; i < PEERS_PROBE; i++) {
		struct listener *l = &p->listeners[(h + i) & (PEERS_LISTENERS_MAX - 1)];

		if (l->seen_ns && l->port == port && !memcmp(l->addr, addr, 16))
			return l;
		if (!l->seen_ns || l->seen_ns + PEERS_LISTENER_IDLE_NS < now_ns) {
			if (!empty)
				empty = l;
		} else if (!oldest || l->seen_ns < oldest->seen_ns) {
			oldest = l;
		}
	}
	if (empty) {
		if (!empty->seen_ns)
			p->stats.listeners++;
		return empty;
	}
	p->stats.listeners_evicted++;
	return oldest;
}

static void listener_put(struct peers *p, const uint8_t addr[16], uint16_t port, uint32_t pid,
			 const char *comm, uint64_t now_ns)
{
	struct listener *l = listener_slot(p, addr, port, now_ns);

	memcpy(l->addr, addr, 16);
	l->port = port;
	l->pid = pid;
	l->seen_ns = now_ns ? now_ns : 1;
	snprintf(l->comm, sizeof(l->comm), "%.15s", comm ? comm : "");
}

void peers_learn_listener(struct peers *p, const uint8_t addr[16], uint16_t port, uint32_t pid,
			  const char *comm, uint64_t now_ns)
{
	listener_put(p, addr, port, pid, comm, now_ns);
	/* A listener on a local address answers for that port on every local address. */
	if (peers_is_local_addr(p, addr))
		listener_put(p, any_addr, port, pid, comm, now_ns);
}

static const struct listener *listener_find(const struct peers *p, const uint8_t addr[16],
					    uint16_t port)
{
	uint32_t h = hashtab_hash_bytes(addr, 16, port) & (PEERS_LISTENERS_MAX - 1);

	for (unsigned i = 0; i < PEERS_PROBE; i++) {
		const struct listener *l = &p->listeners[(h + i) & (PEERS_LISTENERS_MAX - 1)];

		if (l->seen_ns && l->port == port && !memcmp(l->addr, addr, 16))
			return l;
	}
	return NULL;
}

bool peers_find_listener(const struct peers *p, const uint8_t addr[16], uint16_t port,
			 uint32_t *pid, char comm[16])
{
	const struct listener *l = listener_find(p, addr, port);

	if (!l && peers_is_local_addr(p, addr))
		l = listener_find(p, any_addr, port);
	if (!l)
		return false;
	*pid = l->pid;
	memcpy(comm, l->comm, 16);
	return true;
}

void peers_forget_pid(struct peers *p, uint32_t pid)
{
	for (unsigned i = 0; i < PEERS_LISTENERS_MAX; i++) {
		struct listener *l = &p->listeners[i];

		if (l->seen_ns && l->pid == pid) {
			l->seen_ns = 0;
			p->stats.listeners--;
		}
	}
}

void peers_learn_name(struct peers *p, const uint8_t addr[16], const char *name, uint32_t ttl_s,
		      uint64_t now_ns)
{
	uint32_t h = hashtab_hash_bytes(addr, 16, 0) & (PEERS_DNS_MAX - 1);
	struct dns_entry *slot = NULL, *soonest = NULL;

	if (ttl_s < PEERS_DNS_TTL_FLOOR_S)
		ttl_s = PEERS_DNS_TTL_FLOOR_S;
	for (unsigned i = 0; i < PEERS_PROBE; i++) {
		struct dns_entry *e = &p->names[(h + i) & (PEERS_DNS_MAX - 1)];

		if (e->expires_ns && !memcmp(e->addr, addr, 16)) {
			slot = e;
			break;
		}
		if (!e->expires_ns || e->expires_ns <= now_ns) {
			if (!slot)
				slot = e;
		} else if (!soonest || e->expires_ns < soonest->expires_ns) {
			soonest = e;
		}
	}
	if (!slot) {
		slot = soonest;
		p->stats.dns_evicted++;
	}
	memcpy(slot->addr, addr, 16);
	mt_strlcpy(slot->name, name, sizeof(slot->name));
	slot->expires_ns = now_ns + (uint64_t)ttl_s * 1000000000ull;
	p->stats.dns_names++;
}

const char *peers_dns_name(const struct peers *p, const uint8_t addr[16], uint64_t now_ns)
{
	uint32_t h = hashtab_hash_bytes(addr, 16, 0) & (PEERS_DNS_MAX - 1);

	for (unsigned i = 0; i < PEERS_PROBE; i++) {
		const struct dns_entry *e = &p->names[(h + i) & (PEERS_DNS_MAX - 1)];

		if (e->expires_ns > now_ns && !memcmp(e->addr, addr, 16))
			return e->name;
	}
	return NULL;
}

static void on_resolved(void *ctx, const char *qname, const uint8_t addr[16], uint32_t ttl)
{
	struct peers *p = ctx;

	peers_learn_name(p, addr, qname, ttl, p->learn_now_ns);
}

int peers_on_dns(struct peers *p, const uint8_t *data, size_t len, uint64_t now_ns)
{
	p->stats.dns_messages++;
	if (dns_parse(data, len, &p->msg) != 0) {
		p->stats.dns_malformed++;
		return -EINVAL;
	}
	if (!p->msg.response)
		return 0;
	p->stats.dns_responses++;
	p->learn_now_ns = now_ns;
	return (int)dns_resolved_addrs(&p->msg, on_resolved, p);
}

void peers_expire(struct peers *p, uint64_t now_ns)
{
	uint64_t live = 0;

	for (unsigned i = 0; i < PEERS_DNS_MAX; i++) {
		if (p->names[i].expires_ns && p->names[i].expires_ns <= now_ns)
			p->names[i].expires_ns = 0;
		else if (p->names[i].expires_ns)
			live++;
	}
	p->stats.dns_entries = live;
	for (unsigned i = 0; i < PEERS_LISTENERS_MAX; i++) {
		struct listener *l = &p->listeners[i];

		if (l->seen_ns && l->seen_ns + PEERS_LISTENER_IDLE_NS < now_ns) {
			l->seen_ns = 0;
			p->stats.listeners--;
		}
	}
}

void peers_stats(const struct peers *p, struct peers_stats *out)
{
	*out = p->stats;
}

void peers_format_addr_port(const uint8_t addr[16], uint16_t port, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (memcmp(addr, v4mapped, 12) == 0) {
		snprintf(out, len, "%u.%u.%u.%u:%u", addr[12], addr[13], addr[14], addr[15], port);
		return;
	}
	if (!inet_ntop(AF_INET6, addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(out, len, "[%s]:%u", a, port);
}
