/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who is at the other end of an address: beside the pipeline, like identity.
 *  - local listeners: (address, port) -> the process that accepted there,
 *    learned from server-side sockets the capture sees;
 *  - DNS: address -> the name a process on the node looked up, learned from
 *    the DNS answers the node's processes receive, kept for the answer's TTL;
 *  - the node's own addresses (and loopback), which make a peer local.
 *
 * Bounded: PEERS_LISTENERS_MAX listeners, PEERS_DNS_MAX names; each table is
 * open addressing with a probe window of PEERS_PROBE slots, and when a window
 * is full its stalest entry is replaced and counted (peers_stats).
 */
#ifndef MESHTRACE_PEERS_H
#define MESHTRACE_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/protocols/dns.h"

#define PEERS_LISTENERS_MAX   4096 /* power of two */
#define PEERS_DNS_MAX	      4096 /* power of two */
#define PEERS_PROBE	      8
#define PEERS_LOCAL_ADDRS_MAX 64
/* A TTL of 0 still names the connection made right after the lookup. */
#define PEERS_DNS_TTL_FLOOR_S 5
/* A listener not seen for this long is forgotten. */
#define PEERS_LISTENER_IDLE_NS (600ull * 1000000000ull)
#define PEERS_NAME_MAX	       DNS_NAME_MAX

struct peers_stats {
	uint64_t dns_messages;	    /* DNS datagrams handed in */
	uint64_t dns_malformed;	    /* not parsable as DNS */
	uint64_t dns_responses;	    /* answers (QR=1) parsed */
	uint64_t dns_names;	    /* address -> name mappings learned or refreshed */
	uint64_t dns_evicted;	    /* live mappings replaced because the table was full */
	uint64_t listeners;	    /* live listener entries */
	uint64_t listeners_evicted; /* replaced because the table was full */
	uint64_t dns_entries;	    /* live (unexpired) DNS entries */
	uint64_t local_addrs;
};

struct peers;

/* NULL on allocation failure. The node's addresses start empty: call peers_refresh_local_addrs. */
struct peers *peers__new(void);
void peers__free(struct peers *p);

/* Reads the node's interface addresses (getifaddrs). Returns how many, or -errno. */
int peers_refresh_local_addrs(struct peers *p);
/* Replaces the node's addresses (v4-mapped 16-byte form); for tests. */
void peers_set_local_addrs(struct peers *p, const uint8_t (*addrs)[16], unsigned n);

/* Loopback (127.0.0.0/8, ::1), unspecified, or one of the node's own addresses. */
bool peers_is_local_addr(const struct peers *p, const uint8_t addr[16]);

/* Records that process @pid (@comm) accepted a connection on @addr:@port. */
void peers_learn_listener(struct peers *p, const uint8_t addr[16], uint16_t port, uint32_t pid,
			  const char *comm, uint64_t now_ns);
/*
 * The process listening at @addr:@port: an exact match, else (for a local
 * @addr) a listener of @port on any local address. Fills @pid and @comm (16
 * bytes) and returns true when found.
 */
bool peers_find_listener(const struct peers *p, const uint8_t addr[16], uint16_t port,
			 uint32_t *pid, char comm[16]);
/* Forgets the listeners of a process that exited. */
void peers_forget_pid(struct peers *p, uint32_t pid);

/*
 * Learns from one DNS datagram (the bytes as captured): for a response,
 * every address its question resolves to is named by the question name.
 * Returns the number of names learned, or -EINVAL when it is not DNS.
 */
int peers_on_dns(struct peers *p, const uint8_t *data, size_t len, uint64_t now_ns);
/* Names @addr @name for @ttl_s seconds (at least PEERS_DNS_TTL_FLOOR_S). */
void peers_learn_name(struct peers *p, const uint8_t addr[16], const char *name, uint32_t ttl_s,
		      uint64_t now_ns);
/* The unexpired DNS name of @addr, or NULL. Valid until the next peers_* call. */
const char *peers_dns_name(const struct peers *p, const uint8_t addr[16], uint64_t now_ns);

/* Drops expired names and idle listeners; call about once a second. */
void peers_expire(struct peers *p, uint64_t now_ns);

void peers_stats(const struct peers *p, struct peers_stats *out);

/* "a.b.c.d:port" for v4-mapped addresses, "[v6]:port" otherwise. */
void peers_format_addr_port(const uint8_t addr[16], uint16_t port, char *out, size_t len);

#endif /* MESHTRACE_PEERS_H */
