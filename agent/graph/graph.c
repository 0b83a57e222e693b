// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/graph/graph.h"
#include "agent/protocols/l7.h"
#include "agent/protocols/tlsrec.h"
#include "agent/common/clock.h"
#include "agent/common/hashtab.h"
#include "agent/common/util.h"
#include "agent/identity/k8s.h"
#include "agent/identity/k8s_pods.h"
/* graph_on_span's cost is timed on one span in this many. */
#define COST_SAMPLE 64

const double graph_latency_bounds[GRAPH_LATENCY_BOUNDS] = {
	0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15,
};

const double graph_connect_bounds[GRAPH_CONNECT_BOUNDS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1,
};

enum sock_role {
	ROLE_UNKNOWN = 0,
	ROLE_CLIENT = 1,
	ROLE_SERVER = 2,
};

/* What the graph knows of one socket on this node. */
struct gsock {
	uint64_t sock;
	uint64_t first_ns;
	uint64_t last_ns;
	uint32_t pid;
	uint32_t edge;	    /* where its TCP counts go, once decided */
	uint32_t span_edge; /* the edge of its spans (cache) */
	uint8_t in_use;
	uint8_t role;	    /* enum sock_role */
	uint8_t decided;    /* its TCP counts have an edge (or none: not counted) */
	uint8_t counts;	    /* this side counts bytes and connects */
	uint8_t proto;	    /* from its spans; 0 until one */
	uint8_t hashed;	    /* in the tuple hash */
	uint8_t learned;    /* its listener was recorded */
	uint8_t connected;  /* connect (client) or accept (server) seen */
	uint8_t peer_local; /* for spans: the far end is on this node */
	uint8_t nat;	    /* its spans said the call went through a translated address */
	uint8_t tls;	    /* its bytes are TLS records */
	uint8_t closed;	    /* closed, kept GRAPH_LINGER_NS to name its peer's late spans */
	uint8_t by_addr;    /* in the address hash (a closed one leaves it at its reuse) */
	uint16_t nat_port;
	/* A server's: its client's own source port, which conntrack changed on the way (0: not). */
	uint16_t remap_port;
	char comm[16];
	struct mt_tuple tuple;
	/*
	 * With nat: a client's real server, a server's address its client
	 * dialled (the VIP): where the other side's tuple differs from ours.
	 */
	uint8_t nat_addr[16];
	/* Counts waiting for the decision. */
	uint64_t bytes_out;
	uint64_t bytes_in;
	uint64_t connect_ns;
	uint32_t retransmits;
	uint32_t _pad2;
	uint64_t closed_ns;
};

struct graph {
	struct identity *id;
	struct peers *peers;
	int64_t clock_offset_ns;
	uint64_t start_ns;
	uint32_t self_pid;	 /* the agent: named as a server, but its side is never traced */
	uint16_t eph_lo, eph_hi; /* the ephemeral port range, for sockets of unknown side */

	struct graph_node *nodes;
	uint32_t nnodes;
	struct hashtab node_by_name;

	struct graph_edge *edges;
	uint32_t nedges;
	struct hashtab edge_by_key;

	struct gsock *socks;
	struct hashtab sock_by_addr;  /* by struct sock address; owns the free slots */
	struct hashtab sock_by_tuple; /* by 4-tuple, once both ports are known */
	/* Closed sockets still in the tuple hash, oldest first (a ring of GRAPH_SOCKS_MAX). */
	uint32_t *linger;
	uint32_t linger_head, linger_n;

	struct graph_stats stats;
};

static void read_ephemeral_range(struct graph *g)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	unsigned lo = 32768, hi = 60999;

	if (f) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2 || lo > 65535 || hi > 65535 || lo > hi) {
			lo = 32768;
			hi = 60999;
		}
		fclose(f);
	}
	g->eph_lo = (uint16_t)lo;
	g->eph_hi = (uint16_t)hi;
}

struct graph *graph__new(struct identity *id, struct peers *peers)
{
	struct graph *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->id = id;
	g->peers = peers;
	g->start_ns = mt_now_mono_ns();
	g->self_pid = (uint32_t)getpid();
	g->nodes = calloc(GRAPH_NODES_MAX, sizeof(*g->nodes));
	g->edges = calloc(GRAPH_EDGES_MAX, sizeof(*g->edges));
	g->socks = calloc(GRAPH_SOCKS_MAX, sizeof(*g->socks));
	g->linger = calloc(GRAPH_SOCKS_MAX, sizeof(*g->linger));
	if (!g->nodes || !g->edges || !g->socks || !g->linger ||
	    hashtab_init(&g->node_by_name, GRAPH_NODES_MAX, 0) ||
	    hashtab_init(&g->edge_by_key, GRAPH_EDGES_MAX, 0) ||
	    hashtab_init(&g->sock_by_addr, GRAPH_SOCKS_MAX, 0) ||
	    hashtab_init(&g->sock_by_tuple, GRAPH_SOCKS_MAX, 0)) {
		graph__free(g);
		return NULL;
	}
	read_ephemeral_range(g);
	return g;
}

void graph__free(struct graph *g)
{
	if (!g)
		return;
	hashtab_fini(&g->node_by_name);
	free(g->nodes);
	hashtab_fini(&g->edge_by_key);
	free(g->edges);
	hashtab_fini(&g->sock_by_addr);
	hashtab_fini(&g->sock_by_tuple);
	free(g->socks);
	free(g->linger);
	free(g);
}

void graph_set_clock(struct graph *g, int64_t offset_ns)
{
	g->clock_offset_ns = offset_ns;
}

/* ---- histograms and the window ---- */

static unsigned bucket_of(const double *bounds, unsigned n, double v)
{
	unsigned lo = 0, hi = n;

	/* The first bound >= v (Prometheus' "le"); n when above them all. */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (bounds[mid] >= v)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static unsigned hist_add(struct graph_hist *h, const double *bounds, unsigned n, double v)
{
	unsigned b = bucket_of(bounds, n, v);

	h->buckets[b]++;
	h->count++;
	h->sum += v;
	return b;
}

static struct graph_slot *slot_now(struct graph_slot *slots, uint64_t now_ns)
{
	uint64_t epoch = now_ns / GRAPH_SLOT_NS;
	struct graph_slot *s = &slots[epoch % GRAPH_WINDOW_SLOTS];

	if (s->epoch != epoch) {
		memset(s, 0, sizeof(*s));
		s->epoch = epoch;
	}
	return s;
}

double graph_window(const struct graph *g, const struct graph_slot *slots, uint64_t now_ns,
		    struct graph_slot *out)
{
	uint64_t epoch = now_ns / GRAPH_SLOT_NS;
	double window;

	memset(out, 0, sizeof(*out));
	out->epoch = epoch;
	for (unsigned i = 0; i < GRAPH_WINDOW_SLOTS; i++) {
		const struct graph_slot *s = &slots[i];

		if (s->epoch + GRAPH_WINDOW_SLOTS <= epoch || s->epoch > epoch)
			continue;
		out->requests += s->requests;
		out->failed += s->failed;
		for (unsigned b = 0; b <= GRAPH_LATENCY_BOUNDS; b++) {
			out->client[b] += s->client[b];
			out->server[b] += s->server[b];
		}
		for (unsigned b = 0; b <= GRAPH_CONNECT_BOUNDS; b++)
			out->connect[b] += s->connect[b];
	}
	window = (double)((GRAPH_WINDOW_SLOTS - 1) * GRAPH_SLOT_NS + now_ns % GRAPH_SLOT_NS) / 1e9;
	if (now_ns > g->start_ns && (double)(now_ns - g->start_ns) / 1e9 < window)
		window = (double)(now_ns - g->start_ns) / 1e9;
	return window > 0.001 ? window : 0.001;
}

static double quantile(const double *bounds, unsigned n, const uint64_t *buckets, double q)
{
	uint64_t total = 0, seen = 0;
	double rank;

	for (unsigned i = 0; i <= n; i++)
		total += buckets[i];
	if (!total)
		return 0;
	rank = q * (double)total;
	for (unsigned i = 0; i <= n; i++) {
		double lo = i ? bounds[i - 1] : 0, hi;

		if ((double)(seen + buckets[i]) < rank || !buckets[i]) {
			seen += buckets[i];
			continue;
		}
		if (i == n) /* above the last bound: the bound is all we know */
			return bounds[n - 1];
		hi = bounds[i];
		return lo + (hi - lo) * (rank - (double)seen) / (double)buckets[i];
	}
	return bounds[n - 1];
}

double graph_quantile64(const double *bounds, unsigned n, const uint64_t *buckets, double q)
{
	return quantile(bounds, n, buckets, q);
}

double graph_quantile(const double *bounds, unsigned n, const uint32_t *buckets, double q)
{
	uint64_t wide[GRAPH_LATENCY_BOUNDS + 1];

	if (n > GRAPH_LATENCY_BOUNDS)
		return 0;
	for (unsigned i = 0; i <= n; i++)
		wide[i] = buckets[i];
	return quantile(bounds, n, wide, q);
}

/* ---- nodes and edges ---- */

/* A free slot of @t, or NIL counted in @full. */
static uint32_t slot_take(struct hashtab *t, uint64_t *full)
{
	uint32_t i = hashtab_slot_alloc(t);

	if (i == NIL)
		(*full)++;
	return i;
}

static uint32_t node_get_ns(struct graph *g, const char *ns, const char *name, uint8_t kind)
{
	uint32_t h = hashtab_hash_str(name, hashtab_hash_str(ns, 0));
	struct graph_node *n;
	uint32_t i;

	for (i = hashtab_first(&g->node_by_name, h); i != NIL;
	     i = hashtab_next(&g->node_by_name, i))
		if (strcmp(g->nodes[i].name, name) == 0 &&
		    strcmp(g->nodes[i].namespace_name, ns) == 0) {
			/* A name some process carries is a service, however it was first seen. */
			if (kind == GRAPH_NODE_SERVICE)
				g->nodes[i].kind = GRAPH_NODE_SERVICE;
			return i;
		}
	i = slot_take(&g->node_by_name, &g->stats.nodes_full);
	if (i == NIL)
		return NIL;
	n = &g->nodes[i];
	mt_strlcpy(n->name, name, sizeof(n->name));
	mt_strlcpy(n->namespace_name, ns, sizeof(n->namespace_name));
	n->workload[0] = '\0';
	n->kind = kind;
	hashtab_link(&g->node_by_name, h, i);
	g->stats.nodes = ++g->nnodes;
	return i;
}

/* A node outside any namespace: peers, users, services outside Kubernetes. */
static uint32_t node_get(struct graph *g, const char *name, uint8_t kind)
{
	return node_get_ns(g, "", name, kind);
}

static void node_add_pid(struct graph_node *n, uint32_t pid)
{
	if (!pid || n->kind != GRAPH_NODE_SERVICE)
		return;
	for (unsigned i = 0; i < n->npids; i++)
		if (n->pids[i] == pid)
			return;
	if (n->npids < GRAPH_SERVICE_PIDS)
		n->pids[n->npids++] = pid;
}

static bool is_database(uint8_t proto)
{
	return proto == MT_PROTO_REDIS || proto == MT_PROTO_POSTGRES || proto == MT_PROTO_MYSQL ||
	       proto == MT_PROTO_MEMCACHED;
}

static uint32_t edge_hash(uint32_t client, uint32_t server, uint8_t proto)
{
	return hashtab_hash64((uint64_t)client << 40 ^ (uint64_t)server << 8 ^ proto);
}

static uint32_t edge_find(const struct graph *g, uint32_t client, uint32_t server, uint8_t proto)
{
	uint32_t i;

	for (i = hashtab_first(&g->edge_by_key, edge_hash(client, server, proto)); i != NIL;
	     i = hashtab_next(&g->edge_by_key, i)) {
		const struct graph_edge *e = &g->edges[i];

		if (e->client == client && e->server == server && e->protocol == proto)
			return i;
	}
	return NIL;
}

static uint32_t edge_get(struct graph *g, uint32_t client, uint32_t server, uint8_t proto)
{
	struct graph_edge *e;
	uint32_t i;

	if (client == NIL || server == NIL)
		return NIL;
	i = edge_find(g, client, server, proto);
	if (i != NIL)
		return i;
	i = slot_take(&g->edge_by_key, &g->stats.edges_full);
	if (i == NIL)
		return NIL;
	e = &g->edges[i];
	e->client = client;
	e->server = server;
	e->protocol = proto;
	if (is_database(proto))
		e->connection_type = GRAPH_CT_DATABASE;
	else if (g->nodes[client].kind != GRAPH_NODE_SERVICE ||
		 g->nodes[server].kind != GRAPH_NODE_SERVICE)
		e->connection_type = GRAPH_CT_VIRTUAL_NODE;
	hashtab_link(&g->edge_by_key, edge_hash(client, server, proto), i);
	g->stats.edges = ++g->nedges;
	return i;
}

/* The pair's edge of a parsed protocol, if one exists. */
static uint8_t pair_protocol(const struct graph *g, uint32_t client, uint32_t server)
{
	for (uint8_t p = 1; p < MT_PROTO__MAX; p++)
		if (edge_find(g, client, server, p) != NIL)
			return p;
	return MT_PROTO_UNKNOWN;
}

/* ---- sockets ---- */

static uint32_t hash_sock(uint64_t sock)
{
	return hashtab_hash64(sock);
}

/* Hash of the connection as seen from its client: (client addr:port, server addr:port). */
static uint32_t hash_conn(const uint8_t a[16], uint16_t ap, const uint8_t b[16], uint16_t bp)
{
	return hashtab_hash_bytes(b, 16, hashtab_hash_bytes(a, 16, (uint32_t)ap << 16 | bp));
}

/* The socket at kernel address @sock, a closed one still kept included. */
static uint32_t sock_find(const struct graph *g, uint64_t sock)
{
	uint32_t i;

	for (i = hashtab_first(&g->sock_by_addr, hash_sock(sock)); i != NIL;
	     i = hashtab_next(&g->sock_by_addr, i))
		if (g->socks[i].sock == sock)
			return i;
	return NIL;
}

/*
 * The open socket at @sock, for kernel events: a closed one found there is an
 * earlier life of a reused address, which leaves the address hash (it stays in
 * the tuple hash for its peer's late spans until its linger ends).
 */
static uint32_t sock_find_open(struct graph *g, uint64_t sock)
{
	uint32_t i = sock_find(g, sock);

	if (i == NIL || !g->socks[i].closed)
		return i;
	hashtab_unlink(&g->sock_by_addr, hash_sock(sock), i);
	g->socks[i].by_addr = 0;
	return NIL;
}

static void tuple_unhash(struct graph *g, uint32_t i)
{
	struct gsock *s = &g->socks[i];

	if (!s->hashed)
		return;
	hashtab_unlink(&g->sock_by_tuple,
		       hash_conn(s->tuple.laddr, s->tuple.lport, s->tuple.raddr, s->tuple.rport),
		       i);
	s->hashed = 0;
}

static void tuple_hash(struct graph *g, uint32_t i)
{
	struct gsock *s = &g->socks[i];

	if (s->hashed || !s->tuple.lport || !s->tuple.rport)
		return;
	hashtab_link(&g->sock_by_tuple,
		     hash_conn(s->tuple.laddr, s->tuple.lport, s->tuple.raddr, s->tuple.rport), i);
	s->hashed = 1;
}

static void set_tuple(struct graph *g, uint32_t i, const struct mt_tuple *t)
{
	struct gsock *s = &g->socks[i];

	if (s->hashed && !memcmp(&s->tuple, t, sizeof(*t)))
		return;
	tuple_unhash(g, i);
	s->tuple = *t;
	tuple_hash(g, i);
}

/*
 * The socket at the other end of @s's connection, when it is on this node.
 * Through a translated address (nat), the other side's tuple names the real
 * server where a client's names the VIP: a client looks for the real server,
 * a server for the VIP as its client's far end.
 */
static struct gsock *peer_sock(const struct graph *g, const struct gsock *s)
{
	const uint8_t *far = s->tuple.raddr, *near = s->tuple.laddr;
	uint16_t far_port = s->tuple.rport, near_port = s->tuple.lport;
	struct gsock *closed = NULL;
	uint32_t i;

	if (s->nat && s->role == ROLE_CLIENT) {
		far = s->nat_addr;
		far_port = s->nat_port;
	} else if (s->nat && s->role == ROLE_SERVER) {
		near = s->nat_addr;
		near_port = s->nat_port;
	}
	if (s->remap_port && s->role == ROLE_SERVER)
		far_port = s->remap_port;
	i = hashtab_first(&g->sock_by_tuple, hash_conn(far, far_port, near, near_port));
	for (; i != NIL; i = hashtab_next(&g->sock_by_tuple, i)) {
		const struct gsock *p = &g->socks[i];

		if (p->tuple.lport != far_port || p->tuple.rport != near_port ||
		    memcmp(p->tuple.laddr, far, 16) || memcmp(p->tuple.raddr, near, 16) || p == s)
			continue;
		if (!p->closed)
			return &g->socks[i];
		if (!closed) /* the same 4-tuple's open socket, if any, is the peer */
			closed = &g->socks[i];
	}
	return closed;
}

/* Gives socket @i's slot back: out of both hashes. */
static void sock_release(struct graph *g, uint32_t i)
{
	struct gsock *s = &g->socks[i];

	tuple_unhash(g, i);
	if (s->by_addr)
		hashtab_unlink(&g->sock_by_addr, hash_sock(s->sock), i);
	s->in_use = 0;
	hashtab_slot_free(&g->sock_by_addr, i);
}

static void decide(struct graph *g, uint32_t i, uint64_t now_ns);

/* Releases the socket closed longest ago, decided first if no span came. */
static void linger_pop(struct graph *g)
{
	uint32_t i = g->linger[g->linger_head];

	g->linger_head = (g->linger_head + 1) % GRAPH_SOCKS_MAX;
	g->linger_n--;
	g->stats.sockets_closed--;
	decide(g, i, g->socks[i].closed_ns);
	sock_release(g, i);
}

static uint32_t sock_new(struct graph *g, uint64_t sock, uint64_t now_ns)
{
	uint32_t i = hashtab_slot_alloc(&g->sock_by_addr);
	struct gsock *s;

	if (i == NIL && g->linger_n) { /* a closed socket's moment is cut short */
		g->stats.linger_cut++;
		linger_pop(g);
		i = hashtab_slot_alloc(&g->sock_by_addr);
	}
	if (i == NIL) {
		g->stats.sockets_full++;
		return NIL;
	}
	s = &g->socks[i];
	memset(s, 0, sizeof(*s));
	s->sock = sock;
	s->in_use = 1;
	s->by_addr = 1;
	s->first_ns = s->last_ns = now_ns;
	s->edge = s->span_edge = NIL;
	hashtab_link(&g->sock_by_addr, hash_sock(sock), i);
	g->stats.sockets++;
	return i;
}

/* An open socket is gone at once (a failed connect, idleness: no span will name it). */
static void sock_free(struct graph *g, uint32_t i)
{
	sock_release(g, i);
	g->stats.sockets--;
}

/* A closed socket is kept if its tuple can find it and its process can name a peer. */
static bool sock_lingers(const struct gsock *s)
{
	return s->hashed && s->pid;
}

/*
 * An open socket closed: kept GRAPH_LINGER_NS in the tuple hash, where its
 * peer's spans still find it (the ring buffer orders events by the end of
 * their syscalls: a server's send can come after its client read the answer
 * and closed). Not counted in stats.sockets any more.
 */
static void sock_close(struct graph *g, uint32_t i, uint64_t now_ns)
{
	struct gsock *s = &g->socks[i];

	g->stats.sockets--;
	if (!sock_lingers(s)) {
		sock_release(g, i);
		return;
	}
	s->closed = 1;
	s->closed_ns = now_ns;
	g->linger[(g->linger_head + g->linger_n) % GRAPH_SOCKS_MAX] = i;
	g->linger_n++;
	g->stats.sockets_closed++;
}

static bool in_ephemeral(const struct graph *g, uint16_t port)
{
	return port >= g->eph_lo && port <= g->eph_hi;
}

/* The side of a socket first seen mid-life: listeners first, then the port ranges. */
static uint8_t guess_role(const struct graph *g, const struct gsock *s)
{
	uint32_t pid;
	char comm[16];

	if (peers_find_listener(g->peers, s->tuple.laddr, s->tuple.lport, &pid, comm) &&
	    pid == s->pid)
		return ROLE_SERVER;
	if (peers_find_listener(g->peers, s->tuple.raddr, s->tuple.rport, &pid, comm))
		return ROLE_CLIENT;
	if (in_ephemeral(g, s->tuple.lport) && !in_ephemeral(g, s->tuple.rport))
		return ROLE_CLIENT;
	if (in_ephemeral(g, s->tuple.rport) && !in_ephemeral(g, s->tuple.lport))
		return ROLE_SERVER;
	return ROLE_UNKNOWN;
}

/* ---- naming ---- */

/* Node @n's workload, when one is known and it has none yet. */
static void node_set_workload(struct graph *g, uint32_t n, uint8_t kind, const char *name)
{
	struct graph_node *node;

	if (n == NIL || kind == K8S_WL_NONE || !name[0])
		return;
	node = &g->nodes[n];
	if (node->workload[0])
		return;
	snprintf(node->workload, sizeof(node->workload), "%s/%s",
		 k8s_workload_kind((enum k8s_workload)kind), name);
}

static uint32_t service_node(struct graph *g, uint32_t pid, const char *comm, uint64_t now_ns)
{
	const struct mt_resource *r = identity_lookup(g->id, pid, comm, now_ns);
	uint32_t n = node_get_ns(g, r->service_namespace, r->service_name, GRAPH_NODE_SERVICE);
	const struct k8s_meta *m;

	if (n == NIL)
		return n;
	node_add_pid(&g->nodes[n], pid);
	if (r->k8s && !g->nodes[n].workload[0]) {
		m = k8s_get(identity_k8s(g->id), r->k8s, r->k8s_gen);
		if (m)
			node_set_workload(g, n, m->workload, m->workload_name);
	}
	return n;
}

/* The pod of this node at @addr (k8s_pods.h): its (namespace, service) node, else NIL. */
static uint32_t pod_node(struct graph *g, const uint8_t addr[16], uint64_t now_ns)
{
	struct k8s_pods *pods = k8s_pods_of(identity_k8s(g->id));
	const struct k8s_pod *pod;
	uint16_t h, gen = 0;
	uint32_t n;

	h = k8s_pods_find(pods, addr, now_ns, &gen);
	pod = h ? k8s_pods_get(pods, h, gen) : NULL;
	if (!pod || !pod->service_name[0])
		return NIL;
	n = node_get_ns(g, pod->namespace_name, pod->service_name, GRAPH_NODE_SERVICE);
	if (n != NIL)
		node_set_workload(g, n, pod->workload, pod->workload_name);
	return n;
}

/* The server at the far end of client socket @s; *@local: a process on this node. */
static uint32_t server_node(struct graph *g, const struct gsock *s, uint64_t now_ns, bool *local)
{
	const struct gsock *p = peer_sock(g, s);
	char name[GRAPH_NAME_MAX];
	const char *dns;
	uint32_t pid, n;
	char comm[16];

	*local = true;
	if (p && p->pid)
		return service_node(g, p->pid, p->comm, now_ns);
	if (s->nat && peers_find_listener(g->peers, s->nat_addr, s->nat_port, &pid, comm))
		return service_node(g, pid, comm, now_ns);
	if (peers_find_listener(g->peers, s->tuple.raddr, s->tuple.rport, &pid, comm)) {
		/* The agent's own side is never seen: its clients' spans count its requests. */
		*local = pid != g->self_pid;
		return service_node(g, pid, comm, now_ns);
	}
	/*
	 * A pod of this node whose process the capture has not seen (yet): named
	 * by its workload, counted as a peer outside (its own spans, if any come,
	 * are not assumed).
	 */
	*local = false;
	n = pod_node(g, s->tuple.raddr, now_ns);
	if (n != NIL)
		return n;
	dns = peers_dns_name(g->peers, s->tuple.raddr, now_ns);
	if (dns)
		return node_get(g, dns, GRAPH_NODE_EXTERNAL);
	peers_format_addr_port(s->tuple.raddr, s->tuple.rport, name, sizeof(name));
	return node_get(g, name, GRAPH_NODE_EXTERNAL);
}

/* The client at the far end of server socket @s; *@local: on this node. */
static uint32_t client_node(struct graph *g, const struct gsock *s, uint64_t now_ns, bool *local)
{
	const struct gsock *p = peer_sock(g, s);
	const char *dns;
	uint32_t n;

	if (p && p->pid) {
		*local = true;
		return service_node(g, p->pid, p->comm, now_ns);
	}
	*local = p || peers_is_local_addr(g->peers, s->tuple.raddr);
	n = pod_node(g, s->tuple.raddr, now_ns);
	if (n != NIL)
		return n;
	dns = peers_dns_name(g->peers, s->tuple.raddr, now_ns);
	if (dns)
		return node_get(g, dns, GRAPH_NODE_EXTERNAL);
	return node_get(g, "user", GRAPH_NODE_USER);
}

/* The server process of server socket @s (pid may be unknown before its first I/O). */
static uint32_t own_server_node(struct graph *g, const struct gsock *s, uint64_t now_ns)
{
	uint32_t pid;
	char comm[16];

	if (s->pid)
		return service_node(g, s->pid, s->comm, now_ns);
	if (peers_find_listener(g->peers, s->tuple.laddr, s->tuple.lport, &pid, comm))
		return service_node(g, pid, comm, now_ns);
	return NIL;
}

/* ---- TCP counts ---- */

static void add_bytes(struct graph_edge *e, uint8_t role, uint8_t dir, uint64_t n)
{
	bool to_server = (role == ROLE_CLIENT) == (dir == MT_DIR_EGRESS);

	if (to_server)
		e->bytes_sent += n;
	else
		e->bytes_received += n;
}

static void add_connect(struct graph *g, struct graph_edge *e, const struct gsock *s,
			uint64_t now_ns)
{
	e->connects++;
	e->last_ns = now_ns;
	if (s->role == ROLE_CLIENT && s->connect_ns) {
		unsigned b = hist_add(&e->connect_latency, graph_connect_bounds,
				      GRAPH_CONNECT_BOUNDS, (double)s->connect_ns / 1e9);

		slot_now(e->slots, now_ns)->connect[b]++;
	}
	(void)g;
}

/* Gives socket @i's TCP counts an edge (or none), and hands over what waited. */
static void decide(struct graph *g, uint32_t i, uint64_t now_ns)
{
	struct gsock *s = &g->socks[i];
	uint32_t client, server;
	struct graph_edge *e;
	bool local;
	uint8_t proto;

	if (s->decided)
		return;
	s->decided = 1;
	if (s->role == ROLE_UNKNOWN)
		s->role = guess_role(g, s);
	if (s->role == ROLE_UNKNOWN) {
		g->stats.role_unknown++;
		return;
	}
	if (s->role == ROLE_CLIENT) {
		if (!s->pid)
			return;
		client = service_node(g, s->pid, s->comm, now_ns);
		server = server_node(g, s, now_ns, &local);
		s->counts = 1;
	} else {
		server = own_server_node(g, s, now_ns);
		client = client_node(g, s, now_ns, &local);
		s->counts = !local;
	}
	if (client == NIL || server == NIL)
		return;
	proto = s->proto ? s->proto : pair_protocol(g, client, server);
	s->edge = edge_get(g, client, server, proto);
	if (s->edge == NIL)
		return;
	e = &g->edges[s->edge];
	/* TLS no probe decrypted: a TCP edge, marked as TLS (its requests are unseen). */
	if (proto == MT_PROTO_UNKNOWN && s->tls && e->connection_type == GRAPH_CT_NONE)
		e->connection_type = GRAPH_CT_TLS;
	e->retransmits += s->retransmits;
	if (!s->counts)
		return;
	add_bytes(e, s->role, MT_DIR_EGRESS, s->bytes_out);
	add_bytes(e, s->role, MT_DIR_INGRESS, s->bytes_in);
	if (s->connected)
		add_connect(g, e, s, now_ns);
	e->last_ns = now_ns;
}

/* Its far end is a socket or a listener on this node: no span can name it otherwise. */
static bool far_end_known(const struct graph *g, const struct gsock *s)
{
	uint32_t pid;
	char comm[16];

	if (s->role == ROLE_UNKNOWN || peer_sock(g, s))
		return true;
	return s->role == ROLE_CLIENT &&
	       peers_find_listener(g->peers, s->tuple.raddr, s->tuple.rport, &pid, comm);
}

/*
 * A socket's life ended (close, or a new life at its address): kept a moment.
 * Decided now if a span came or its far end is known here; else when a span
 * comes or its moment ends: a span can come after its close (its own, or its
 * peer's), and only a span tells that a VIP its client dialled took the call
 * to a server on this node.
 */
static void finish(struct graph *g, uint32_t i, uint64_t now_ns)
{
	const struct gsock *s = &g->socks[i];

	if (s->proto || !sock_lingers(s) || far_end_known(g, s))
		decide(g, i, now_ns);
	sock_close(g, i, now_ns);
}

void graph_on_data(struct graph *g, const struct mt_data_event *ev)
{
	uint64_t now = ev->head.ts_ns;
	uint32_t i = sock_find_open(g, ev->head.sock);
	struct gsock *s;

	if (i == NIL) {
		i = sock_new(g, ev->head.sock, now);
		if (i == NIL)
			return;
		s = &g->socks[i];
		s->pid = ev->pid;
		memcpy(s->comm, ev->comm, sizeof(s->comm));
		set_tuple(g, i, &ev->tuple);
		s->role = guess_role(g, s);
	}
	s = &g->socks[i];
	s->last_ns = now;
	if (!s->pid || s->pid != ev->pid) {
		s->pid = ev->pid;
		memcpy(s->comm, ev->comm, sizeof(s->comm));
	}
	if (!s->hashed)
		set_tuple(g, i, &ev->tuple);
	/* TLS: its first bytes are a TLS record, or a probed library moved them. */
	if (!s->tls && ((ev->flags & MT_DATA_F_TLS_WIRE) ||
			(!s->decided && !s->bytes_in && !s->bytes_out &&
			 tlsrec_classify(ev->data, ev->captured) != TLSREC_NO)))
		s->tls = 1;
	if (s->role == ROLE_SERVER && !s->learned) {
		peers_learn_listener(g->peers, s->tuple.laddr, s->tuple.lport, s->pid, s->comm,
				     now);
		s->learned = 1;
	}
	if (!s->decided) {
		if (ev->dir == MT_DIR_EGRESS)
			s->bytes_out += ev->bytes;
		else
			s->bytes_in += ev->bytes;
	} else if (s->counts && s->edge != NIL) {
		add_bytes(&g->edges[s->edge], s->role, ev->dir, ev->bytes);
	}
}

void graph_on_conn(struct graph *g, const struct mt_conn_event *ev)
{
	uint64_t now = ev->head.ts_ns;
	uint32_t i = sock_find_open(g, ev->head.sock);
	struct gsock *s;

	switch (ev->op) {
	case MT_CONN_CONNECT:
	case MT_CONN_ACCEPTED:
		if (i != NIL)
			finish(g, i, now);
		i = sock_new(g, ev->head.sock, now);
		if (i == NIL)
			return;
		s = &g->socks[i];
		s->role = ev->op == MT_CONN_CONNECT ? ROLE_CLIENT : ROLE_SERVER;
		s->pid = ev->pid;
		memcpy(s->comm, ev->comm, sizeof(s->comm));
		set_tuple(g, i, &ev->tuple);
		if (ev->op == MT_CONN_ACCEPTED)
			s->connected = 1;
		break;
	case MT_CONN_ESTABLISHED:
		if (i == NIL)
			return;
		s = &g->socks[i];
		set_tuple(g, i, &ev->tuple); /* the local port is final only now */
		s->connected = 1;
		s->connect_ns = ev->duration_ns;
		s->last_ns = now;
		break;
	case MT_CONN_FAILED:
		if (i == NIL) {
			g->stats.unattributed++;
			return;
		}
		s = &g->socks[i];
		s->role = ROLE_CLIENT;
		set_tuple(g, i, &ev->tuple);
		decide(g, i, now);
		if (s->edge != NIL) {
			g->edges[s->edge].connect_failures++;
			g->edges[s->edge].last_ns = now;
		}
		sock_free(g, i);
		break;
	case MT_CONN_CLOSED:
		if (i != NIL)
			finish(g, i, now);
		break;
	case MT_CONN_RETRANSMIT:
		if (i == NIL) {
			g->stats.unattributed++;
			return;
		}
		s = &g->socks[i];
		if (!s->decided)
			s->retransmits++;
		else if (s->edge != NIL)
			g->edges[s->edge].retransmits++;
		break;
	default:
		break;
	}
}

void graph_on_exit(struct graph *g, uint32_t pid)
{
	for (uint32_t n = 0; n < g->nnodes; n++) {
		struct graph_node *node = &g->nodes[n];

		for (unsigned k = 0; k < node->npids; k++) {
			if (node->pids[k] != pid)
				continue;
			node->pids[k] = node->pids[--node->npids];
			break;
		}
	}
}

/* ---- spans ---- */

static uint32_t span_sock(struct graph *g, const struct mt_span *s, uint64_t now_ns)
{
	uint32_t i = s->sock ? sock_find(g, s->sock) : NIL;
	struct gsock *gs;

	if (i != NIL || !s->sock)
		return i;
	/* Evicted, or never seen as an event: rebuild what the span tells. */
	i = sock_new(g, s->sock, now_ns);
	if (i == NIL)
		return NIL;
	gs = &g->socks[i];
	gs->pid = s->resource.pid;
	snprintf(gs->comm, sizeof(gs->comm), "%.15s", s->resource.exe_name);
	set_tuple(g, i, &s->tuple);
	return i;
}

void graph_exemplar_set(struct graph_exemplar *ex, const struct mt_span *s, double value)
{
	memcpy(ex->trace_id, s->trace_id, sizeof(ex->trace_id));
	memcpy(ex->span_id, s->span_id, sizeof(ex->span_id));
	ex->unix_ns = s->end_unix_ns ? s->end_unix_ns : 1;
	ex->value = value;
}

void graph_on_span(struct graph *g, const struct mt_span *s)
{
	graph_on_span_exemplar(g, s, false);
}

void graph_on_span_exemplar(struct graph *g, const struct mt_span *s, bool exemplar)
{
	bool server = s->kind == MT_SPAN_SERVER;
	bool err = s->status == MT_STATUS_ERROR;
	uint64_t now = (uint64_t)((int64_t)s->end_unix_ns - g->clock_offset_ns);
	uint64_t t0 = 0;
	struct graph_slot *slot;
	struct graph_edge *e;
	struct gsock *gs = NULL;
	uint32_t i, edge = NIL;
	bool peer_local = false;
	double dur;
	unsigned b;

	if ((g->stats.spans++ % COST_SAMPLE) == 0)
		t0 = mt_now_mono_ns();
	i = span_sock(g, s, now);
	if (i != NIL) {
		gs = &g->socks[i];
		gs->last_ns = now;
		if (gs->role == ROLE_UNKNOWN)
			gs->role = server ? ROLE_SERVER : ROLE_CLIENT;
		if (s->nat_paired && !gs->nat) {
			/* Its far end is known now: the span edge is named again. */
			gs->nat = 1;
			memcpy(gs->nat_addr, server ? s->vip_addr : s->nat_server_addr, 16);
			gs->nat_port = server ? s->vip_port : s->nat_server_port;
			gs->span_edge = NIL;
		}
		if (server && s->nat_client_port && gs->remap_port != s->nat_client_port) {
			/* Its client's socket has another port than it sees: named again. */
			gs->remap_port = s->nat_client_port;
			gs->span_edge = NIL;
		}
		if (!gs->proto)
			gs->proto = s->protocol;
		if (server && !gs->learned) {
			peers_learn_listener(g->peers, gs->tuple.laddr, gs->tuple.lport,
					     s->resource.pid, s->resource.exe_name, now);
			gs->learned = 1;
		}
		decide(g, i, now);
		edge = gs->span_edge;
		peer_local = gs->peer_local;
	}
	if (edge == NIL) {
		const struct gsock *ref = gs;
		struct gsock tmp;
		uint32_t self;

		if (!ref) { /* no socket known: name the far end from the span's tuple alone */
			memset(&tmp, 0, sizeof(tmp));
			tmp.tuple = s->tuple;
			ref = &tmp;
		}
		self = node_get_ns(g, s->resource.service_namespace, s->resource.service_name,
				   GRAPH_NODE_SERVICE);
		if (self != NIL)
			node_add_pid(&g->nodes[self], s->resource.pid);
		if (server)
			edge = edge_get(g, client_node(g, ref, now, &peer_local), self,
					s->protocol);
		else
			edge = edge_get(g, self, server_node(g, ref, now, &peer_local),
					s->protocol);
		if (gs) {
			const struct gsock *p = peer_sock(g, gs);

			gs->span_edge = edge;
			gs->peer_local = peer_local;
			if (p && p->closed)
				g->stats.late_peer_spans++;
		}
		if (edge == NIL)
			goto out;
	}
	e = &g->edges[edge];
	e->last_ns = now;
	if (s->nat_paired)
		peers_format_addr_port(s->vip_addr, s->vip_port, e->vip, sizeof(e->vip));
	slot = slot_now(e->slots, now);
	dur = s->end_unix_ns > s->start_unix_ns ? (double)(s->end_unix_ns - s->start_unix_ns) / 1e9
						: 0;
	if (server) {
		struct graph_node *n = &g->nodes[e->server];
		struct graph_slot *ns;

		e->requests++;
		slot->requests++;
		if (err && !peer_local) {
			e->failed++;
			slot->failed++;
		}
		b = hist_add(&e->server_latency, graph_latency_bounds, GRAPH_LATENCY_BOUNDS, dur);
		slot->server[b]++;
		if (exemplar)
			graph_exemplar_set(&e->server_exemplars[b], s, dur);
		n->served++;
		n->last_ns = now;
		ns = slot_now(n->slots, now);
		ns->requests++;
		ns->server[b]++;
		hist_add(&n->served_latency, graph_latency_bounds, GRAPH_LATENCY_BOUNDS, dur);
		if (err) {
			n->served_failed++;
			ns->failed++;
		}
	} else {
		if (!peer_local) {
			e->requests++;
			slot->requests++;
		}
		if (err) {
			e->failed++;
			slot->failed++;
		}
		b = hist_add(&e->client_latency, graph_latency_bounds, GRAPH_LATENCY_BOUNDS, dur);
		slot->client[b]++;
		if (exemplar)
			graph_exemplar_set(&e->client_exemplars[b], s, dur);
	}
out:
	if (t0) {
		g->stats.update_ns_sum += mt_now_mono_ns() - t0;
		g->stats.update_ns_count++;
	}
}

void graph_tick(struct graph *g, uint64_t now_ns)
{
	while (g->linger_n &&
	       g->socks[g->linger[g->linger_head]].closed_ns + GRAPH_LINGER_NS < now_ns)
		linger_pop(g);
	for (uint32_t i = 0; i < g->sock_by_addr.used; i++) {
		struct gsock *s = &g->socks[i];

		if (!s->in_use || s->closed)
			continue;
		if (s->last_ns + GRAPH_SOCK_IDLE_NS < now_ns) {
			g->stats.sockets_idle++;
			decide(g, i, now_ns);
			sock_free(g, i);
		} else if (!s->decided && s->first_ns + GRAPH_DECIDE_NS < now_ns) {
			decide(g, i, now_ns);
		}
	}
}

void graph_flush(struct graph *g, uint64_t now_ns)
{
	for (uint32_t i = 0; i < g->sock_by_addr.used; i++)
		if (g->socks[i].in_use && !g->socks[i].decided)
			decide(g, i, now_ns);
}

/* ---- read access ---- */

uint32_t graph_node_count(const struct graph *g)
{
	return g->nnodes;
}

uint32_t graph_edge_count(const struct graph *g)
{
	return g->nedges;
}

const struct graph_node *graph_node_at(const struct graph *g, uint32_t i)
{
	return i < g->nnodes ? &g->nodes[i] : NULL;
}

const struct graph_edge *graph_edge_at(const struct graph *g, uint32_t i)
{
	return i < g->nedges ? &g->edges[i] : NULL;
}

const char *graph_conn_type_name(uint8_t connection_type)
{
	switch (connection_type) {
	case GRAPH_CT_DATABASE:
		return "database";
	case GRAPH_CT_MESSAGING:
		return "messaging_system";
	case GRAPH_CT_VIRTUAL_NODE:
		return "virtual_node";
	case GRAPH_CT_TLS:
		return "tls";
	default:
		return "";
	}
}

const char *graph_node_kind_name(uint8_t kind)
{
	switch (kind) {
	case GRAPH_NODE_EXTERNAL:
		return "external";
	case GRAPH_NODE_USER:
		return "user";
	default:
		return "service";
	}
}

void graph_stats(const struct graph *g, struct graph_stats *out)
{
	*out = g->stats;
}
