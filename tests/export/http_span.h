/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An HTTP span as the metrics stage receives it, for the tests of
 * agent/export/metrics*.c (tests/export/test_metrics.c and the metrics tests
 * of tests/graph/test_graph.c): service @svc, @method, answered @status
 * after @dur ns, to shop.test:8080 over http. Failed as the semantic
 * conventions say: 5xx, and 4xx at a client.
 */
#ifndef MESHTRACE_TESTS_HTTP_SPAN_H
#define MESHTRACE_TESTS_HTTP_SPAN_H

#include <stdio.h>
#include <string.h>

#include "agent/trace/span.h"

static inline struct mt_span http_span(uint8_t kind, uint8_t protocol, const char *svc,
				       const char *method, uint16_t status, uint64_t dur)
{
	struct mt_span s;

	memset(&s, 0, sizeof(s));
	s.kind = kind;
	s.protocol = protocol;
	s.http_minor = 1;
	s.http_status = status;
	if (status >= 500 || (kind == MT_SPAN_CLIENT && status >= 400))
		s.status = MT_STATUS_ERROR;
	s.start_unix_ns = 1000;
	s.end_unix_ns = 1000 + dur;
	snprintf(s.resource.service_name, sizeof(s.resource.service_name), "%s", svc);
	snprintf(s.method, sizeof(s.method), "%s", method);
	snprintf(s.scheme, sizeof(s.scheme), "http");
	snprintf(s.server_address, sizeof(s.server_address), "shop.test");
	s.server_port = 8080;
	return s;
}

#endif /* MESHTRACE_TESTS_HTTP_SPAN_H */
