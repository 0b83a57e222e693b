// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer harness for the --replay file reader (agent/capture/capture.c):
 * the records of a recording are read with capture_read_record() and handed,
 * as agent/main.c's on_event() hands ring-buffer events, to the stages that
 * consume them: the connection table (detection, every protocol parser), the
 * DNS spans and the peer names. The pacing of a replay (timestamps) is not
 * fuzzed: it only decides when a record is handed over.
 *
 * Input: a recording (4-byte length, the record, padding to 8).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/capture/capture.h"
#include "agent/conn/conn.h"
#include "agent/identity/peers.h"
#include "agent/trace/dnsspans.h"
#include "tests/fuzz/fuzz_check.h"

/* tests/fuzz/seeds.py packs events with these sizes. */
_Static_assert(sizeof(struct mt_data_event) == 112, "seeds.py packs mt_data_event");
_Static_assert(sizeof(struct mt_conn_event) == 104, "seeds.py packs mt_conn_event");

static void on_exchange(void *ctx, const struct conn_info *ci, const struct mt_exchange *x)
{
	(void)ctx;
	(void)ci;
	fuzz_check_exchange(x, x->protocol == MT_PROTO_GRPC ? MT_PROTO_HTTP2 : x->protocol);
	if (x->protocol == MT_PROTO_UNKNOWN || x->protocol >= MT_PROTO__MAX)
		abort();
}

/* The DNS stages, made at the first DNS event (their tables cost megabytes to clear). */
static struct dnsspans *dns;
static struct peers *peers;

/* As agent/main.c's on_event(), for the stages a fuzzer can run. */
static void on_event(struct conn_table *conns, const void *data, size_t size)
{
	const struct mt_event_head *head = data;

	if (size < sizeof(*head))
		return;
	if (head->kind == MT_EV_DATA) {
		const struct mt_data_event *ev = data;

		if (size < sizeof(*ev) || ev->captured > size - sizeof(*ev) ||
		    ev->captured > ev->bytes)
			return;
		conn_table_on_data(conns, ev);
	} else if (head->kind == MT_EV_CONN && size >= sizeof(struct mt_conn_event)) {
		conn_table_on_conn(conns, data);
	} else if (head->kind == MT_EV_DNS && size >= sizeof(struct mt_data_event)) {
		const struct mt_data_event *ev = data;

		if (ev->captured > size - sizeof(*ev))
			return;
		if (!dns && (!(dns = dnsspans__new(on_exchange, NULL)) || !(peers = peers__new())))
			abort();
		if (ev->captured)
			peers_on_dns(peers, ev->data, ev->captured, head->ts_ns);
		dnsspans_on_event(dns, ev);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *buf;
	struct conn_table *conns;
	uint64_t last_ts = 0;
	FILE *f;
	int n;

	if (size == 0 || size > (1 << 20))
		return 0;
	if (!buf && !(buf = malloc(CAPTURE_RECORD_MAX)))
		abort();
	f = fmemopen((void *)data, size, "r");
	conns = conn_table__new(64, 0, on_exchange, NULL);
	if (!f || !conns)
		abort();
	while ((n = capture_read_record(f, buf)) > 0) {
		uint8_t *rec;

		if ((unsigned)n > CAPTURE_RECORD_MAX)
			abort();
		/* Exactly the record's size, so a read past it is seen. */
		rec = malloc((size_t)n);
		if (!rec)
			abort();
		memcpy(rec, buf, (size_t)n);
		on_event(conns, rec, (size_t)n);
		if ((size_t)n >= sizeof(struct mt_event_head))
			last_ts = ((struct mt_event_head *)rec)->ts_ns;
		free(rec);
	}
	if (n != 0 && n != -EBADMSG && n != -ENODATA)
		abort();
	conn_table_expire(conns, last_ts + (700ull * 1000000000ull));
	if (dns) {
		dnsspans_expire(dns, last_ts + (700ull * 1000000000ull));
		peers__free(peers);
		dnsspans__free(dns);
		dns = NULL;
		peers = NULL;
	}
	conn_table__free(conns);
	fclose(f);
	return 0;
}
