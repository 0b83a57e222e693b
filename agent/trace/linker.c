// SPDX-License-Identifier: Apache-2.0
#include <stdlib.h>
#include <string.h>

#include "agent/trace/linker.h"
#include "agent/common/hashtab.h"
#include "agent/common/traceparent.h"
#include "agent/common/util.h"

#define OWNER_PROBE	    8
#define DONE_CLIENT_KEEP_NS (100ull * 1000000ull)

/* The flow as its client sees it: what both ends of one TCP connection agree on. */
struct flow {
	uint8_t caddr[16];
	uint8_t saddr[16];
	uint16_t cport;
	uint16_t sport;
};

/* The kernel's context for one request (--propagate), until the request begins. */
struct xctx {
	uint64_t sock; /* 0: empty */
	uint32_t seq;
	uint8_t dir;
	uint8_t flags; /* enum mt_xctx_flags */
	uint8_t have;
	uint8_t _pad;
	uint8_t trace_id[16];
	uint8_t span_id[8];
};

/*
 * The last option of a socket's burst (--propagate): requests after it that
 * bring no context of their own derive theirs from it (mt_xopt_derive()).
 */
struct xanchor {
	uint64_t sock; /* 0: empty */
	uint32_t seq;
	uint32_t bound; /* with @bounded: requests from here on are not derived */
	uint8_t dir;
	uint8_t flags; /* of the anchoring context */
	uint8_t bounded;
	uint8_t _pad[5];
	uint8_t trace_id[16];
	uint8_t span_id[8];
};

/* One request in flight, on either side. */
struct req {
	uint64_t sock;
	uint64_t start_ns;
	uint64_t done_ns; /* client requests stay a while after completion (see on_done) */
	uint32_t seq;
	uint32_t tid;
	uint32_t pid;
	uint8_t in_use;
	uint8_t role;
	uint8_t resolved;
	uint8_t in_flow; /* hashed by flow (client requests) */
	uint8_t protocol;
	uint8_t peer_resolved; /* client: its server request on this node took its context */
	uint8_t pending;       /* client: trace and parent still to be taken from @parent */
	uint8_t sdk;	       /* server: its process's SDK reports it (see learn_sdk()) */
	uint8_t unsequenced;   /* server: TLS plaintext read without ciphertext: seq unknown */
	uint16_t children;     /* server: client requests still to take its context */
	uint32_t parent;       /* client: index of its server request, valid while pending */
	uint64_t parent_sock;  /* ... and that request's key, to know it is still the same */
	uint32_t parent_seq;
	struct flow flow;
	struct link_ids ids;
	struct xctx x; /* --propagate: the kernel's context for this request */
	char traceparent[MT_TRACEPARENT_LEN + 1]; /* server: the incoming header */
};

/* A thread or a process and the server requests it is handling. */
struct owner {
	uint32_t id; /* tid or pid; 0: empty */
	uint32_t n;
	uint32_t overflow; /* in flight beyond the list */
	uint32_t inflight[LINK_THREAD_INFLIGHT];
	uint64_t prev_sock; /* threads: the socket of the I/O before the current one */
	uint64_t last_sock;
	uint64_t used; /* linker clock at last use, for eviction */
};

/* A process that reports its own server spans, from evidence until it exits or execs. */
struct sdk_proc {
	uint32_t pid;  /* 0: empty */
	uint64_t used; /* linker clock at last use, for eviction */
};

/* A connection opened by a thread right after it read a server request. */
struct tie {
	uint64_t client_sock; /* 0: empty */
	uint64_t server_sock; /* the server request it belongs to */
	uint32_t server_seq;
};

struct linker {
	struct req *reqs;
	struct tie *ties;
	struct hashtab by_sock; /* every request, by (socket, position); owns the free slots */
	struct hashtab by_flow; /* client requests, by (flow, position) */
	struct hashtab by_seq;	/* every request, by position alone: translated flows (DNAT) */
	uint32_t cursor;	/* eviction clock hand */
	uint32_t live;		/* requests in use */
	uint32_t ties_live;	/* ties with a client socket */
	struct owner *threads;
	struct owner *procs;
	struct sdk_proc *sdk_procs;
	uint32_t sdk_live;
	struct req scratch;	 /* a freed client request's ids, while they are copied */
	struct xctx *xctx;	 /* LINK_XCTX_MAX, by (socket, seq); a newer one overwrites */
	struct xanchor *anchors; /* LINK_XANCHOR_MAX, by (socket, direction) */
	uint64_t clock;
	uint64_t rng[4];
	struct link_stats stats;
};

static uint32_t sock_hash(uint64_t sock, uint32_t seq)
{
	return hashtab_hash64(sock ^ ((uint64_t)seq << 32 | seq));
}

static uint32_t flow_hash(const struct flow *f, uint32_t seq)
{
	return hashtab_hash_bytes(f, sizeof(*f), seq);
}

static uint32_t seq_hash(uint32_t seq)
{
	return hashtab_hash64(seq);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void linker_random_id(struct linker *l, uint8_t *out, size_t n)
{
	uint64_t *s = l->rng;

	do {
		for (size_t i = 0; i < n; i += 8) {
			uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

			s[2] ^= s[0];
			s[3] ^= s[1];
			s[1] ^= s[2];
			s[0] ^= s[3];
			s[2] ^= t;
			s[3] = rotl(s[3], 45);
			memcpy(out + i, &r, n - i < 8 ? n - i : 8);
		}
	} while (n && out[0] == 0 && !memcmp(out, out + 1, n - 1));
}

struct linker *linker__new(const uint64_t seed[4])
{
	struct linker *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->reqs = calloc(LINK_REQS_MAX, sizeof(*l->reqs));
	l->threads = calloc(LINK_THREADS_MAX, sizeof(*l->threads));
	l->procs = calloc(LINK_THREADS_MAX, sizeof(*l->procs));
	l->ties = calloc(LINK_TIES_MAX, sizeof(*l->ties));
	l->sdk_procs = calloc(LINK_SDK_PROCS_MAX, sizeof(*l->sdk_procs));
	l->xctx = calloc(LINK_XCTX_MAX, sizeof(*l->xctx));
	l->anchors = calloc(LINK_XANCHOR_MAX, sizeof(*l->anchors));
	if (!l->reqs || !l->threads || !l->procs || !l->ties || !l->sdk_procs || !l->xctx ||
	    !l->anchors || hashtab_init(&l->by_sock, LINK_REQS_MAX, 0) ||
	    hashtab_init(&l->by_flow, LINK_REQS_MAX, 0) ||
	    hashtab_init(&l->by_seq, LINK_REQS_MAX, 0)) {
		linker__free(l);
		return NULL;
	}
	memcpy(l->rng, seed, sizeof(l->rng));
	if (!(l->rng[0] | l->rng[1] | l->rng[2] | l->rng[3]))
		l->rng[0] = 0x9E3779B97F4A7C15ull;
	return l;
}

void linker__free(struct linker *l)
{
	if (!l)
		return;
	free(l->reqs);
	hashtab_fini(&l->by_sock);
	hashtab_fini(&l->by_flow);
	hashtab_fini(&l->by_seq);
	free(l->threads);
	free(l->procs);
	free(l->ties);
	free(l->sdk_procs);
	free(l->xctx);
	free(l->anchors);
	free(l);
}

const char *linker_unlinked_name(int reason)
{
	static const char *const names[LINK__MAX] = {
		[LINK_NO_SERVER_CONTEXT] = "no_server_context",
		[LINK_AMBIGUOUS_THREAD] = "ambiguous_thread",
		[LINK_AMBIGUOUS_PROCESS] = "ambiguous_process",
		[LINK_PEER_NOT_SEEN] = "peer_not_seen",
		[LINK_EXTERNAL_CALLER] = "external_caller",
		[LINK_NO_REQUEST_STAGE] = "no_request_stage",
		[LINK_TABLE_FULL] = "table_full",
	};

	return reason >= 0 && reason < LINK__MAX ? names[reason] : "unknown";
}

void linker_stats(const struct linker *l, struct link_stats *out)
{
	*out = l->stats;
	out->requests = l->live;
	out->ties = l->ties_live;
	out->instrumented_procs = l->sdk_live;
}

/* ---- processes that report their own server spans ---- */

/*
 * The slot of @pid: its own when known (@found set), else the one to take
 * (empty, or the least recently used of its window).
 */
static struct sdk_proc *sdk_slot(struct linker *l, uint32_t pid, bool *found)
{
	uint32_t h = hashtab_hash64(pid) & (LINK_SDK_PROCS_MAX - 1);
	struct sdk_proc *victim = NULL;

	*found = false;
	for (uint32_t i = 0; i < OWNER_PROBE; i++) {
		struct sdk_proc *p = &l->sdk_procs[(h + i) & (LINK_SDK_PROCS_MAX - 1)];

		if (p->pid == pid) {
			*found = true;
			return p;
		}
		if (!p->pid) {
			if (!victim || victim->pid)
				victim = p;
			continue; /* forgotten entries leave holes: look on */
		}
		if (!victim || (victim->pid && p->used < victim->used))
			victim = p;
	}
	return victim;
}

/* True when process @pid is known to report its server spans. */
static bool sdk_known(struct linker *l, uint32_t pid)
{
	bool found;
	struct sdk_proc *p = pid ? sdk_slot(l, pid, &found) : NULL;

	if (!p || !found)
		return false;
	p->used = ++l->clock;
	return true;
}

static void sdk_remember(struct linker *l, uint32_t pid)
{
	bool found;
	struct sdk_proc *p = pid ? sdk_slot(l, pid, &found) : NULL;

	if (!p)
		return;
	if (!found) {
		if (p->pid)
			l->stats.instrumented_evicted++;
		else
			l->sdk_live++;
	}
	p->pid = pid;
	p->used = ++l->clock;
}

static struct owner *owner_get(struct linker *l, struct owner *tab, uint32_t id, bool create);

void linker_forget_process(struct linker *l, uint32_t pid)
{
	bool found;
	struct sdk_proc *p = pid ? sdk_slot(l, pid, &found) : NULL;
	struct owner *o;

	if (p && found) {
		p->pid = 0;
		l->sdk_live--;
	}
	/*
	 * Its entry and its main thread's go too (a short-lived client's only
	 * thread), or they would wait for the LRU to take them back. Requests it
	 * left in flight keep their slots until they complete or expire; they
	 * never point back at an entry.
	 */
	o = owner_get(l, l->procs, pid, false);
	if (o) {
		memset(o, 0, sizeof(*o));
		l->stats.processes--;
	}
	o = owner_get(l, l->threads, pid, false);
	if (o) {
		memset(o, 0, sizeof(*o));
		l->stats.threads--;
	}
}

/*
 * Client request @x, made for server request @srv of its process, carries a
 * traceparent that @srv did not bring. When that tells the process reports
 * its server spans, @srv and the process are marked so:
 * - the same trace id with another parent id: an SDK continued the incoming
 *   context through a span of its own (the agent never writes ids on the
 *   wire, so the parent id is not one of ours);
 * - a traceparent where the request brought none: an SDK began a trace at
 *   its server span (OpenTelemetry's HTTP instrumentations hook both sides).
 * A different trace id than the one that came in tells nothing.
 */
static void learn_sdk(struct linker *l, struct req *srv, const struct conn_info *ci,
		      const struct mt_exchange *x)
{
	uint8_t in_trace[16], in_parent[8], out_trace[16], out_parent[8];

	if (!mt_traceparent_decode(x->traceparent, out_trace, out_parent, NULL))
		return;
	if (!srv->traceparent[0]) {
		l->stats.learned_new_trace++;
	} else if (mt_traceparent_decode(srv->traceparent, in_trace, in_parent, NULL) &&
		   memcmp(in_trace, out_trace, 16) == 0 && memcmp(in_parent, out_parent, 8) != 0) {
		l->stats.learned_continued++;
	} else {
		return;
	}
	srv->sdk = 1;
	sdk_remember(l, ci->pid);
}

/* ---- threads and processes ---- */

/* The entry for @id, created when @create; the least recently used in its window is reused. */
static struct owner *owner_get(struct linker *l, struct owner *tab, uint32_t id, bool create)
{
	uint32_t h = hashtab_hash64(id) & (LINK_THREADS_MAX - 1);
	struct owner *victim = NULL;

	if (!id)
		return NULL;
	for (uint32_t i = 0; i < OWNER_PROBE; i++) {
		struct owner *o = &tab[(h + i) & (LINK_THREADS_MAX - 1)];

		if (o->id == id) {
			o->used = ++l->clock;
			return o;
		}
		if (!o->id) {
			if (!victim || victim->id)
				victim = o;
			continue; /* a gone process's entry leaves a hole: look on */
		}
		if (!victim || (victim->id && o->used < victim->used))
			victim = o;
	}
	if (!create)
		return NULL;
	if (victim->id)
		l->stats.owners_evicted++;
	else if (tab == l->threads)
		l->stats.threads++;
	else
		l->stats.processes++;
	memset(victim, 0, sizeof(*victim));
	victim->id = id;
	victim->used = ++l->clock;
	return victim;
}

static void owner_add(struct owner *o, uint32_t r)
{
	if (!o)
		return;
	if (o->n < LINK_THREAD_INFLIGHT)
		o->inflight[o->n++] = r;
	else
		o->overflow++;
}

static void owner_remove(struct owner *o, uint32_t r)
{
	if (!o)
		return;
	for (uint32_t i = 0; i < o->n; i++) {
		if (o->inflight[i] == r) {
			memmove(&o->inflight[i], &o->inflight[i + 1],
				(o->n - i - 1) * sizeof(o->inflight[0]));
			o->n--;
			return;
		}
	}
	if (o->overflow)
		o->overflow--;
}

void linker_on_io(struct linker *l, uint32_t tid, uint64_t sock)
{
	struct owner *t = owner_get(l, l->threads, tid, true);

	if (!t)
		return;
	t->prev_sock = t->last_sock;
	t->last_sock = sock;
}

/* ---- requests ---- */

static struct req *find_sock(const struct linker *l, uint64_t sock, uint32_t seq);
static bool one_http1_connection(const struct linker *l, const struct owner *t);

/*
 * The server request a thread is working on: the newest, except that HTTP/1
 * requests pipelined on one connection are answered in order, so the oldest.
 */
static struct req *current_request(struct linker *l, const struct owner *t)
{
	if (!t->n)
		return NULL;
	if (one_http1_connection(l, t))
		return &l->reqs[t->inflight[0]];
	return &l->reqs[t->inflight[t->n - 1]];
}

static struct tie *tie_slot(struct linker *l, uint64_t client_sock)
{
	return &l->ties[hashtab_hash64(client_sock) & (LINK_TIES_MAX - 1)];
}

void linker_on_connect(struct linker *l, uint32_t tid, uint32_t pid, uint64_t sock)
{
	struct owner *t = owner_get(l, l->threads, tid, false);
	struct tie *tie = tie_slot(l, sock);
	struct req *s;

	(void)pid;
	if (tie->client_sock == sock) {
		tie->client_sock = 0; /* a new life of this socket */
		l->ties_live--;
	}
	if (!t || !t->n)
		return;
	s = current_request(l, t);
	if (t->last_sock != s->sock)
		return;
	/* Overwrites an older tie in the slot: a lost tie only means a fallback rule. */
	if (tie->client_sock)
		l->stats.ties_replaced++;
	else
		l->ties_live++;
	tie->client_sock = sock;
	tie->server_sock = s->sock;
	tie->server_seq = s->seq;
}

/* The server request @client_sock was tied to at connect(), consumed; or NULL. */
static struct req *take_tie(struct linker *l, uint64_t client_sock)
{
	struct tie *tie = tie_slot(l, client_sock);
	struct req *s;

	if (tie->client_sock != client_sock)
		return NULL;
	tie->client_sock = 0;
	l->ties_live--;
	s = find_sock(l, tie->server_sock, tie->server_seq);
	return s && s->role == CONN_ROLE_SERVER && !s->done_ns ? s : NULL;
}

static struct req *find_sock(const struct linker *l, uint64_t sock, uint32_t seq)
{
	uint32_t i = hashtab_first(&l->by_sock, sock_hash(sock, seq));

	while (i != NIL && (l->reqs[i].sock != sock || l->reqs[i].seq != seq))
		i = hashtab_next(&l->by_sock, i);
	return i == NIL ? NULL : &l->reqs[i];
}

static struct req *find_client_flow(const struct linker *l, const struct flow *f, uint32_t seq)
{
	uint32_t i = hashtab_first(&l->by_flow, flow_hash(f, seq));

	while (i != NIL && (l->reqs[i].seq != seq || memcmp(&l->reqs[i].flow, f, sizeof(*f)) != 0))
		i = hashtab_next(&l->by_flow, i);
	return i == NIL ? NULL : &l->reqs[i];
}

/*
 * The request on the other side of @r's call when the flows of its two ends
 * differ on the way, which the TCP sequence numbers survive (no NAT helper
 * rewrites them): the client dialled an address translated to the server's
 * (DNAT without SNAT: the server sees the client's own address), or conntrack
 * gave the call another source port, as it does when the client's port is
 * still taken in its table by an earlier translated call to the same server
 * (a port reused toward the VIP and then directly, or the reverse). Candidates
 * are requests of the other role at the same position from the same client
 * address, with another flow, not yet paired (a client) or resolved (a
 * server). NULL when there is none, or several (counted: not guessed). With
 * @count_snat, a server request that finds none counts a client request at
 * its position from another source address (the call was translated at the
 * source, SNAT or masquerade: the server never sees the client's address, so
 * nothing pairs it).
 */
static struct req *find_translated(struct linker *l, const struct req *r, bool count_snat)
{
	struct req *found = NULL;
	bool snat = false;
	uint32_t n = 0;

	for (uint32_t i = hashtab_first(&l->by_seq, seq_hash(r->seq)); i != NIL;
	     i = hashtab_next(&l->by_seq, i)) {
		struct req *q = &l->reqs[i];

		if (q == r || q->seq != r->seq || q->role == r->role)
			continue;
		if (!memcmp(&q->flow, &r->flow, sizeof(r->flow)))
			continue; /* not translated: by_flow pairs it, or it is another call */
		if (q->role == CONN_ROLE_CLIENT ? q->peer_resolved || q->ids.nat.paired
						: q->resolved)
			continue;
		if (memcmp(q->flow.caddr, r->flow.caddr, 16)) {
			snat = true;
			continue;
		}
		if (!r->seq && q->flow.cport != r->flow.cport)
			continue; /* no position known: only the client's port names the call */
		found = q;
		n++;
	}
	if (n > 1) {
		l->stats.dnat_ambiguous++;
		return NULL;
	}
	if (!found && snat && count_snat)
		l->stats.dnat_snat_unpaired++;
	return found;
}

/*
 * The client request on the other side of @r, a TLS server request whose
 * plaintext was read without moving ciphertext (the library had already
 * decrypted it: Go's handshake reads the client's first request along with its
 * Finished record), so no TCP sequence number names its position. On one
 * connection, HTTP/1.1 requests are sent one at a time: the only client request
 * of the same flow not yet taken by a server is this one. None, or several
 * (pipelined): not guessed. A scan of the requests held now (a few, but for
 * a burst), only for such requests: rare, a connection's first request.
 */
static struct req *find_client_unsequenced(struct linker *l, const struct req *r)
{
	struct req *found = NULL;
	uint32_t seen = 0;

	/* Slots past the table's high-water mark were never used; stop once every live one is seen. */
	for (uint32_t i = 0; i < l->by_sock.used && seen < l->live; i++) {
		struct req *q = &l->reqs[i];

		if (!q->in_use)
			continue;
		seen++;
		if (q->role != CONN_ROLE_CLIENT || q->peer_resolved ||
		    memcmp(&q->flow, &r->flow, sizeof(r->flow)) != 0)
			continue;
		if (found)
			return NULL;
		found = q;
	}
	return found;
}

static void req_free(struct linker *l, uint32_t i)
{
	struct req *r = &l->reqs[i];

	hashtab_unlink(&l->by_sock, sock_hash(r->sock, r->seq), i);
	if (r->in_flow)
		hashtab_unlink(&l->by_flow, flow_hash(&r->flow, r->seq), i);
	hashtab_unlink(&l->by_seq, seq_hash(r->seq), i);
	if (r->role == CONN_ROLE_SERVER && !r->done_ns) {
		owner_remove(owner_get(l, l->threads, r->tid, false), i);
		owner_remove(owner_get(l, l->procs, r->pid, false), i);
	}
	r->in_use = 0;
	l->live--;
	hashtab_slot_free(&l->by_sock, i);
}

/* A free request slot; when none is left, one goes, oldest-first by the clock hand. */
static uint32_t req_alloc(struct linker *l)
{
	uint32_t i = hashtab_slot_alloc(&l->by_sock);

	if (i == NIL) {
		/* Completed client requests go first: they are only kept for late servers. */
		uint32_t victim = NIL;

		for (uint32_t n = 0; n < 64 && victim == NIL; n++) {
			l->cursor = (l->cursor + 1) % LINK_REQS_MAX;
			if (l->reqs[l->cursor].in_use && l->reqs[l->cursor].done_ns)
				victim = l->cursor;
		}
		if (victim == NIL) {
			victim = l->cursor;
			l->stats.unlinked[LINK_TABLE_FULL]++;
		}
		l->stats.requests_evicted++;
		req_free(l, victim);
		i = hashtab_slot_alloc(&l->by_sock);
	}
	return i;
}

static void flow_of(const struct conn_info *ci, struct flow *f)
{
	memset(f, 0, sizeof(*f));
	if (ci->role == CONN_ROLE_CLIENT) {
		memcpy(f->caddr, ci->tuple.laddr, 16);
		memcpy(f->saddr, ci->tuple.raddr, 16);
		f->cport = ci->tuple.lport;
		f->sport = ci->tuple.rport;
	} else {
		memcpy(f->caddr, ci->tuple.raddr, 16);
		memcpy(f->saddr, ci->tuple.laddr, 16);
		f->cport = ci->tuple.rport;
		f->sport = ci->tuple.lport;
	}
}

static void settle(struct linker *l, struct req *c);

/* True when @a and @b name different servers: one of them dialled a translated address. */
static bool flow_server_differs(const struct flow *a, const struct flow *b)
{
	return a->sport != b->sport || memcmp(a->saddr, b->saddr, 16) != 0;
}

/* True when the client end of @f is this node as far as addresses tell (loopback, same address). */
static bool local_flow(const struct flow *f)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t v6loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

	if (memcmp(f->caddr, f->saddr, 16) == 0)
		return true;
	if (memcmp(f->caddr, v4mapped, 12) == 0 && f->caddr[12] == 127)
		return true;
	return memcmp(f->caddr, v6loop, 16) == 0;
}

/* ---- kernel contexts (--propagate) ---- */

static struct xctx *xctx_slot(struct linker *l, uint64_t sock, uint32_t seq)
{
	return &l->xctx[sock_hash(sock, seq) & (LINK_XCTX_MAX - 1)];
}

static struct xanchor *anchor_slot(struct linker *l, uint64_t sock, uint8_t dir)
{
	return &l->anchors[hashtab_hash64(sock ^ dir) & (LINK_XANCHOR_MAX - 1)];
}

/* The burst's first context: what the requests after it derive from. */
static void anchor_set(struct linker *l, const struct mt_xctx_event *ev)
{
	struct xanchor *a = anchor_slot(l, ev->head.sock, ev->dir);

	if (a->sock && a->sock != ev->head.sock)
		l->stats.option_anchors_evicted++;
	a->sock = ev->head.sock;
	a->seq = ev->seq;
	a->dir = ev->dir;
	a->flags = ev->flags;
	a->bounded = 0;
	memcpy(a->trace_id, ev->trace_id, 16);
	memcpy(a->span_id, ev->span_id, 8);
}

void linker_on_xctx(struct linker *l, const struct mt_xctx_event *ev)
{
	struct xctx *x;

	if (ev->flags & MT_XCTX_F_BOUND) {
		struct xanchor *a = anchor_slot(l, ev->head.sock, MT_DIR_INGRESS);

		if (a->sock == ev->head.sock && a->dir == MT_DIR_INGRESS && !a->bounded) {
			a->bounded = 1;
			a->bound = ev->seq;
		}
		return;
	}
	/* Egress: every burst's first request. Ingress: a request that came with an option. */
	if (ev->dir == MT_DIR_EGRESS ||
	    (ev->flags & (MT_XCTX_F_REMOTE | MT_XCTX_F_DERIVED)) == MT_XCTX_F_REMOTE)
		anchor_set(l, ev);
	x = xctx_slot(l, ev->head.sock, ev->seq);
	if (x->sock)
		l->stats.option_evicted++;
	x->sock = ev->head.sock;
	x->seq = ev->seq;
	x->dir = ev->dir;
	x->flags = ev->flags;
	x->have = 1;
	memcpy(x->trace_id, ev->trace_id, 16);
	memcpy(x->span_id, ev->span_id, 8);
}

/*
 * A request the kernel saw no start of (pipelined: sent before the client
 * read, several read at once): ids derived from its burst's first into @out,
 * by the same rule as the kernel's (bpf/sockops.bpf.h). False: none.
 */
static bool xctx_derive(struct linker *l, uint64_t sock, uint32_t seq, uint8_t dir,
			struct xctx *out)
{
	struct xanchor *a = anchor_slot(l, sock, dir);
	uint32_t off = seq - a->seq;

	if (a->sock != sock || a->dir != dir || (int32_t)off <= 0)
		return false;
	if (a->bounded && !(a->flags & MT_XCTX_F_ROOTS) && (int32_t)(seq - a->bound) >= 0) {
		/*
		 * Arrived after the server answered: maybe a new burst whose option
		 * was lost, which would put this span in the client's last trace.
		 */
		l->stats.option_past_bound++;
		return false;
	}
	memset(out, 0, sizeof(*out));
	out->sock = sock;
	out->seq = seq;
	out->dir = dir;
	out->flags = (uint8_t)(a->flags | MT_XCTX_F_DERIVED);
	out->have = 1;
	memcpy(out->trace_id, a->trace_id, 16);
	memcpy(out->span_id, a->span_id, 8);
	mt_xopt_derive(out->trace_id, out->span_id, off, !!(a->flags & MT_XCTX_F_ROOTS));
	return true;
}

/* The kernel's context for the request at (@sock, @seq) into @out, consumed; false: none. */
static bool xctx_take(struct linker *l, uint64_t sock, uint32_t seq, uint8_t dir, struct xctx *out)
{
	struct xctx *x = xctx_slot(l, sock, seq);

	if (x->sock != sock || x->seq != seq || x->dir != dir) {
		if (!xctx_derive(l, sock, seq, dir, out))
			return false;
		l->stats.option_derived++;
		return true;
	}
	*out = *x;
	x->sock = 0;
	if (x->flags & MT_XCTX_F_DERIVED)
		l->stats.option_derived++;
	return true;
}

/*
 * A server request's context is fixed on first need: when it completes, or
 * when a client request it made completes or is looked up by its own server.
 * By then the client's request, which the server could only read after it
 * was sent, has been seen: the sender's tracepoint fires when its send()
 * returns, which on loopback can be after the receiver has read the bytes and
 * even made its own calls, but not after those calls have been answered.
 */
static void resolve_server(struct linker *l, struct req *r)
{
	struct req *c;

	if (r->resolved)
		return;
	r->resolved = 1;
	r->ids.emit = true;
	c = find_client_flow(l, &r->flow, r->seq);
	if (!c && r->unsequenced) {
		c = find_client_unsequenced(l, r);
		if (c)
			l->stats.linked_tls_unsequenced++;
	}
	if (!c) {
		c = find_translated(l, r, true);
		if (c && c->flow.cport != r->flow.cport) {
			l->stats.linked_port_remapped++;
			r->ids.nat.client_port = c->flow.cport;
		}
		if (c && flow_server_differs(&c->flow, &r->flow)) {
			struct link_nat *nat = &r->ids.nat;

			memcpy(nat->vip, c->flow.saddr, 16);
			nat->vip_port = c->flow.sport;
			memcpy(nat->server, r->flow.saddr, 16);
			nat->server_port = r->flow.sport;
			nat->paired = true;
			c->ids.nat = *nat;
			c->ids.nat.client_port = 0;
			l->stats.linked_dnat++;
		}
	}
	if (c)
		settle(l, c);
	if (c) {
		/* The client request is only kept for this: done, it can go now. */
		c->peer_resolved = 1;
		if (c->done_ns) {
			struct link_ids ids = c->ids;

			req_free(l, (uint32_t)(c - l->reqs));
			c = &l->scratch;
			c->ids = ids;
		}
	}
	if (c && c->ids.emit) {
		memcpy(r->ids.trace_id, c->ids.trace_id, 16);
		memcpy(r->ids.parent_span_id, c->ids.span_id, 8);
		r->ids.remote = c->ids.remote;
		r->ids.trace_flags = c->ids.trace_flags;
		l->stats.linked_peer++;
	} else if (r->x.have && (r->x.flags & MT_XCTX_F_REMOTE)) {
		/*
		 * A client span on another node, named in the TCP option of the first
		 * segment. The option carries no trace-flags: the trace is sampled as one
		 * that starts here, on its id, as the other node's agent did (remote stays
		 * false: its flags are unknown, not "not sampled").
		 */
		memcpy(r->ids.trace_id, r->x.trace_id, 16);
		memcpy(r->ids.parent_span_id, r->x.span_id, 8);
		r->ids.remote = false;
		r->ids.trace_flags = 0;
		r->ids.local_root = true;
		l->stats.linked_option++;
	} else if (r->traceparent[0] &&
		   mt_traceparent_decode(r->traceparent, r->ids.trace_id, r->ids.parent_span_id,
					 &r->ids.trace_flags)) {
		r->ids.remote = true;
		r->ids.local_root = true;
		l->stats.linked_traceparent++;
	} else if (c) {
		/* An instrumented client: its own span id travelled as its request's parent. */
		r->ids.local_root = true; /* that parent is its SDK's, not ours */
		memcpy(r->ids.trace_id, c->ids.trace_id, 16);
		memcpy(r->ids.parent_span_id, c->ids.span_id, 8);
		r->ids.remote = c->ids.remote;
		r->ids.trace_flags = c->ids.trace_flags;
		l->stats.linked_peer++;
	} else {
		/* The kernel's new trace id, when there is one: the thread's calls carry it. */
		if (r->x.have)
			memcpy(r->ids.trace_id, r->x.trace_id, 16);
		else
			linker_random_id(l, r->ids.trace_id, 16);
		r->ids.trace_flags = 0; /* a failed decode may have written it */
		r->ids.local_root = true;
		l->stats.unlinked[local_flow(&r->flow) ? LINK_PEER_NOT_SEEN
						       : LINK_EXTERNAL_CALLER]++;
	}
	if (r->sdk) {
		/*
		 * Its SDK reports this span under an id that never travels back:
		 * calls the agent reports for it hang under its parent instead.
		 */
		memcpy(r->ids.span_id, r->ids.parent_span_id, 8);
		return;
	}
	linker_random_id(l, r->ids.span_id, 8);
}

/* A server request done: freed, unless client requests it made still need its context. */
static void server_done(struct linker *l, struct req *r)
{
	if (!r->children) {
		req_free(l, (uint32_t)(r - l->reqs));
		return;
	}
	/* Out of its thread's and process's lists now; kept for its children only. */
	owner_remove(owner_get(l, l->threads, r->tid, false), (uint32_t)(r - l->reqs));
	owner_remove(owner_get(l, l->procs, r->pid, false), (uint32_t)(r - l->reqs));
	r->done_ns = 1;
}

/*
 * Gives client request @c the trace and parent of the server request it was
 * made for, resolving that one first (see resolve_server()).
 */
static void settle(struct linker *l, struct req *c)
{
	struct req *p;

	if (!c->pending)
		return;
	c->pending = 0;
	p = &l->reqs[c->parent];
	if (!p->in_use || p->sock != c->parent_sock || p->seq != c->parent_seq ||
	    p->role != CONN_ROLE_SERVER) {
		/* Its server request was evicted first (table full or TTL): a root. */
		linker_random_id(l, c->ids.trace_id, 16);
		c->ids.local_root = true;
		l->stats.unlinked[LINK_TABLE_FULL]++;
		return;
	}
	resolve_server(l, p);
	if (c->x.have && memcmp(c->x.trace_id, p->ids.trace_id, 16) != 0)
		l->stats.option_mismatch++; /* its option carried another trace: counted */
	memcpy(c->ids.trace_id, p->ids.trace_id, 16);
	memcpy(c->ids.parent_span_id, p->ids.span_id, 8);
	c->ids.remote = p->ids.remote;
	c->ids.trace_flags = p->ids.trace_flags;
	if (p->children && --p->children == 0 && p->done_ns)
		req_free(l, (uint32_t)(p - l->reqs));
}

/* True when every in-flight request of @t came on one HTTP/1 connection. */
static bool one_http1_connection(const struct linker *l, const struct owner *t)
{
	const struct req *first = &l->reqs[t->inflight[0]];

	if (t->overflow || first->protocol != MT_PROTO_HTTP1)
		return false;
	for (uint32_t i = 1; i < t->n; i++)
		if (l->reqs[t->inflight[i]].sock != first->sock)
			return false;
	return true;
}

/*
 * The server request a client request on @sock, made by @tid of @pid,
 * belongs to, or NULL with @reason set. The rules are in linker.h.
 */
static struct req *choose_parent(struct linker *l, uint64_t sock, uint32_t tid, uint32_t pid,
				 int *reason)
{
	struct owner *t = owner_get(l, l->threads, tid, false);
	struct req *tied = take_tie(l, sock);
	struct owner *p;

	if (tied)
		return tied;
	if (t && t->n == 1 && !t->overflow)
		return &l->reqs[t->inflight[0]];
	if (t && t->n + t->overflow > 1) {
		struct req *cur = current_request(l, t);

		if (cur && one_http1_connection(l, t))
			return cur; /* pipelined on one connection: answered in order */
		/* An event loop: the call was made in the turn that read this request. */
		if (cur && !t->overflow && t->prev_sock == cur->sock)
			return cur;
		*reason = LINK_AMBIGUOUS_THREAD;
		return NULL;
	}
	if (t && t->overflow) {
		/* One in flight, known only as a count (its list overflowed): not guessed. */
		*reason = LINK_AMBIGUOUS_THREAD;
		return NULL;
	}
	p = owner_get(l, l->procs, pid, false);
	if (p && p->n == 1 && !p->overflow)
		return &l->reqs[p->inflight[0]];
	*reason = p && (p->n + p->overflow > 1 || p->overflow) ? LINK_AMBIGUOUS_PROCESS
							       : LINK_NO_SERVER_CONTEXT;
	return NULL;
}

static struct req *request_begin(struct linker *l, const struct conn_info *ci,
				 const struct mt_exchange *x)
{
	uint32_t i = req_alloc(l);
	struct req *r = &l->reqs[i];

	memset(r, 0, sizeof(*r));
	r->in_use = 1;
	l->live++;
	r->sock = ci->sock;
	r->seq = x->req_seq;
	r->tid = ci->tid;
	r->pid = ci->pid;
	r->role = ci->role;
	r->protocol = x->protocol;
	r->start_ns = x->req_start_ns;
	flow_of(ci, &r->flow);
	hashtab_link(&l->by_sock, sock_hash(r->sock, r->seq), i);
	hashtab_link(&l->by_seq, seq_hash(r->seq), i);

	xctx_take(l, r->sock, r->seq, ci->role == CONN_ROLE_SERVER ? MT_DIR_INGRESS : MT_DIR_EGRESS,
		  &r->x);
	if (ci->role == CONN_ROLE_SERVER) {
		/* TLS plaintext the library had decrypted before the call: no sequence number. */
		r->unsequenced = ci->tls && x->req_seq == 0;
		mt_strlcpy(r->traceparent, x->traceparent, sizeof(r->traceparent));
		r->sdk = sdk_known(l, ci->pid);
		owner_add(owner_get(l, l->threads, ci->tid, true), i);
		owner_add(owner_get(l, l->procs, ci->pid, true), i);
		return r;
	}

	/* A client request: its context is decided now, before the server reads it. */
	{
		int reason = LINK_NO_SERVER_CONTEXT;
		struct req *parent = choose_parent(l, ci->sock, ci->tid, ci->pid, &reason);

		r->resolved = 1;
		r->ids.emit = true;
		if (x->traceparent[0] &&
		    (!parent || strcmp(parent->traceparent, x->traceparent) != 0) &&
		    mt_traceparent_decode(x->traceparent, r->ids.trace_id, r->ids.span_id,
					  &r->ids.trace_flags)) {
			/* The client put its own context on the wire: its span is its own. */
			r->ids.emit = false;
			r->ids.remote = true;
			l->stats.skipped_instrumented++;
			if (parent)
				learn_sdk(l, parent, ci, x);
		} else if (parent) {
			/* Its trace is the server request's, taken when first needed (settle()). */
			r->pending = 1;
			r->parent = (uint32_t)(parent - l->reqs);
			r->parent_sock = parent->sock;
			r->parent_seq = parent->seq;
			if (parent->children < UINT16_MAX)
				parent->children++;
			linker_random_id(l, r->ids.span_id, 8);
			l->stats.linked_in_process++;
		} else {
			/* With a kernel context, its trace id: the one its option carried. */
			if (r->x.have)
				memcpy(r->ids.trace_id, r->x.trace_id, 16);
			else
				linker_random_id(l, r->ids.trace_id, 16);
			linker_random_id(l, r->ids.span_id, 8);
			r->ids.trace_flags = 0;
			r->ids.local_root = true;
			l->stats.unlinked[reason]++;
		}
		/* The span id its option carried: the other node's server names it as parent. */
		if (r->x.have && r->ids.emit)
			memcpy(r->ids.span_id, r->x.span_id, 8);
		hashtab_link(&l->by_flow, flow_hash(&r->flow, r->seq), i);
		r->in_flow = 1;
	}
	return r;
}

void linker_on_request(struct linker *l, const struct conn_info *ci, const struct mt_exchange *x)
{
	struct req *old = find_sock(l, ci->sock, x->req_seq);

	if (ci->role == CONN_ROLE_UNKNOWN)
		return;
	if (old) /* the same position again: a new life of the socket */
		req_free(l, (uint32_t)(old - l->reqs));
	request_begin(l, ci, x);
}

void linker_on_done(struct linker *l, const struct conn_info *ci, const struct mt_exchange *x,
		    struct link_ids *out)
{
	struct req *r = find_sock(l, ci->sock, x->req_seq);

	if (!r) {
		l->stats.unlinked[LINK_NO_REQUEST_STAGE]++;
		r = request_begin(l, ci, x);
	}
	if (r->role == CONN_ROLE_SERVER) {
		/* Learned from another request since this one began: it counts too. */
		if (!r->sdk && sdk_known(l, ci->pid))
			r->sdk = 1;
		resolve_server(l, r);
		if (r->sdk) {
			r->ids.emit = false;
			l->stats.skipped_instrumented_server++;
		}
	} else {
		settle(l, r);
		if (!r->peer_resolved && !r->ids.nat.paired) {
			/*
			 * Its server on this node, reached through a translated
			 * address, may not have needed its context yet: it takes
			 * it now, so that this span names the server it reached.
			 */
			struct req *s = find_translated(l, r, false);

			if (s)
				resolve_server(l, s);
		}
	}
	*out = r->ids;
	if (r->role == CONN_ROLE_SERVER) {
		server_done(l, r);
	} else if (r->peer_resolved) {
		/* Its server on this node has already taken its context. */
		req_free(l, (uint32_t)(r - l->reqs));
	} else {
		/*
		 * Kept a little: the server may finish reading after the client
		 * has its answer, when the two run on different CPUs.
		 */
		r->done_ns = x->resp_end_ns ? x->resp_end_ns : x->req_end_ns;
		if (!r->done_ns)
			r->done_ns = 1;
	}
}

void linker_expire(struct linker *l, uint64_t now_ns)
{
	for (uint32_t i = 0; i < l->by_sock.used; i++) {
		struct req *r = &l->reqs[i];

		if (!r->in_use)
			continue;
		if ((r->done_ns && r->done_ns + DONE_CLIENT_KEEP_NS < now_ns) ||
		    r->start_ns + LINK_REQ_TTL_NS < now_ns)
			req_free(l, i);
	}
}
