// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer harness for the OTLP exporter's configuration from the
 * environment (agent/export/otlp_config.c): URLs, header and attribute lists,
 * numbers, names.
 *
 * Input: NUL-separated items, each a variable's index byte (into vars[]) then
 * its value. Every variable lives in a buffer of our own given to putenv()
 * once, so setting one costs no allocation (setenv() keeps every value it
 * was ever given); an empty value counts as unset, as the spec asks.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/export/otlp.h"

static const char *const vars[] = {
	"OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	"OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_METRICS_HEADERS",
	"OTEL_EXPORTER_OTLP_COMPRESSION",
	"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_EXPORTER_OTLP_TIMEOUT",
	"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
	"OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
	"OTEL_EXPORTER_OTLP_INSECURE",
	"OTEL_EXPORTER_OTLP_TRACES_INSECURE",
	"OTEL_SERVICE_NAME",
	"OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
	"OTEL_BSP_MAX_QUEUE_SIZE",
	"OTEL_BSP_SCHEDULE_DELAY",
	"OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
	"OTEL_BSP_EXPORT_TIMEOUT",
};
#define NVARS	  (sizeof(vars) / sizeof(vars[0]))
#define VALUE_MAX 9000 /* past the parser's limit (8191), so "too long" is reached */

static char slot[NVARS][64 + VALUE_MAX + 1];
static size_t name_len[NVARS];

static void setup(void)
{
	for (size_t i = 0; i < NVARS; i++) {
		name_len[i] = (size_t)snprintf(slot[i], sizeof(slot[i]), "%s=", vars[i]);
		if (putenv(slot[i]) != 0)
			abort();
	}
}

static void check_transport(const struct otlp_transport_config *t)
{
	if (t->n_headers > OTLP_HEADERS_MAX || t->timeout_ms < 1 ||
	    t->timeout_ms > OTLP_TIMEOUT_LIMIT_MS)
		abort();
	for (unsigned i = 0; i < t->n_headers; i++) {
		const struct otlp_header *h = &t->headers[i];

		if (!memchr(h->name, '\0', sizeof(h->name)) ||
		    !memchr(h->value, '\0', sizeof(h->value)) || !h->name[0] ||
		    strpbrk(h->name, " \t\r\n:") || strpbrk(h->value, "\r\n"))
			abort();
	}
}

static void check_url(const char *url)
{
	if (!memchr(url, '\0', OTLP_URL_MAX))
		abort();
	if (url[0] && strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static struct otlp_config cfg;
	char err[512];
	size_t pos = 0;
	int rc;

	if (!ready) {
		setup();
		ready = true;
	}
	for (size_t i = 0; i < NVARS; i++)
		slot[i][name_len[i]] = '\0';
	while (pos < size) {
		const uint8_t *end = memchr(data + pos, '\0', size - pos);
		size_t n = end ? (size_t)(end - data - pos) : size - pos;

		if (n > 0) {
			size_t v = data[pos] % NVARS, len = n - 1;

			if (len > VALUE_MAX)
				len = VALUE_MAX;
			memcpy(slot[v] + name_len[v], data + pos + 1, len);
			slot[v][name_len[v] + len] = '\0';
		}
		pos += n + 1;
	}

	memset(err, 0x55, sizeof(err));
	rc = otlp_config_from_env(&cfg, err, sizeof(err));
	if (rc != 0) {
		if (rc != -EINVAL || !memchr(err, '\0', sizeof(err)) || !err[0])
			abort();
		return 0;
	}
	check_url(cfg.traces_url);
	check_url(cfg.metrics_url);
	check_transport(&cfg.traces);
	check_transport(&cfg.metrics);
	if (cfg.batch_max < 1 || cfg.batch_max > cfg.queue_max_spans ||
	    cfg.queue_max_spans > OTLP_QUEUE_LIMIT ||
	    cfg.n_resource_attrs > OTLP_RESOURCE_ATTRS_MAX ||
	    cfg.n_known_methods > OTLP_KNOWN_METHODS_MAX ||
	    !memchr(cfg.host_name, '\0', sizeof(cfg.host_name)))
		abort();
	for (unsigned i = 0; i < cfg.n_resource_attrs; i++)
		if (!cfg.resource_attrs[i].key[0] ||
		    !memchr(cfg.resource_attrs[i].key, '\0', OTLP_ATTR_KEY_MAX) ||
		    !memchr(cfg.resource_attrs[i].value, '\0', OTLP_ATTR_VALUE_MAX))
			abort();
	for (unsigned i = 0; i < cfg.n_known_methods; i++)
		if (!cfg.known_methods[i][0] || !memchr(cfg.known_methods[i], '\0', MT_METHOD_MAX))
			abort();
	return 0;
}
