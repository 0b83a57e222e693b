// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics in the Prometheus text exposition format 0.0.4, names converted per
 * the OpenTelemetry "Prometheus and OpenMetrics Compatibility" spec (see
 * metrics.h): one HELP and TYPE per family, histograms as cumulative
 * _bucket/_sum/_count, the agent's resource attributes in target_info.
 * Spec: https://prometheus.io/docs/instrumenting/exposition_formats/
 *
 * The same series in OpenMetrics 1.0 for scrapers that ask for it (Accept):
 * counter families named without _total, target_info an info metric,
 * exemplars after the latency buckets, "# EOF" at the end.
 * Spec: https://github.com/prometheus/OpenMetrics/blob/main/specification/OpenMetrics.md
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/common/utf8.h"
#include "agent/common/util.h"
#include "agent/common/version.h"
#include "agent/export/metrics_internal.h"

static void sanitize(const char *in, char *out, size_t len, bool metric)
{
	size_t o = 0;

	for (const char *c = in; *c && o + 1 < len; c++) {
		char ch = *c;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
			  (metric && ch == ':') || (o && ch >= '0' && ch <= '9');

		if (!ok)
			ch = '_';
		if (ch == '_' && o && out[o - 1] == '_')
			continue;
		out[o++] = ch;
	}
	if (!o && len > 1)
		out[o++] = '_';
	out[o] = '\0';
}

static void unit_word(const char *unit, char *out, size_t len)
{
	static const struct {
		const char *ucum;
		const char *word;
	} units[] = {
		{"s", "seconds"},      {"ms", "milliseconds"}, {"us", "microseconds"},
		{"ns", "nanoseconds"}, {"By", "bytes"},	       {"KiBy", "kibibytes"},
		{"MiBy", "mebibytes"}, {"1", "ratio"},	       {"%", "percent"},
	};
	const char *slash;

	out[0] = '\0';
	if (!unit[0] || unit[0] == '{')
		return;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcmp(unit, units[i].ucum)) {
			mt_strlcpy(out, units[i].word, len);
			return;
		}
	slash = strchr(unit, '/');
	if (slash) {
		char a[32], b[32];

		snprintf(a, sizeof(a), "%.*s", (int)(slash - unit), unit);
		unit_word(a, b, sizeof(b));
		snprintf(out, len, "%s_per_%s", b[0] ? b : a, slash + 1);
		return;
	}
	/* Annotations in braces anywhere are dropped. */
	snprintf(out, len, "%.*s", (int)strcspn(unit, "{"), unit);
}

void metrics_prometheus_name(const char *name, const char *unit, bool monotonic_sum, char *out,
			     size_t len)
{
	char base[256], u[64], su[64];
	size_t n;

	sanitize(name, base, sizeof(base), true);
	unit_word(unit, u, sizeof(u));
	if (u[0]) {
		sanitize(u, su, sizeof(su), true);
		n = strlen(su);
		/* Appended unless the name carries it already. */
		if (!strstr(base, su)) {
			size_t bl = strlen(base);

			snprintf(base + bl, sizeof(base) - bl, "_%s", su);
		}
	}
	n = strlen(base);
	if (monotonic_sum && (n < 6 || strcmp(base + n - 6, "_total") != 0))
		snprintf(out, len, "%s_total", base);
	else
		snprintf(out, len, "%s", base);
}

/* A label value: valid UTF-8, with backslash, quote and newline escaped. */
static void label_value(struct mt_buf *b, const char *v)
{
	char fixed[3 * GRAPH_NAME_MAX + 1];
	size_t n = strlen(v);

	if (!utf8_valid(v, n)) {
		if (n > GRAPH_NAME_MAX)
			n = GRAPH_NAME_MAX;
		utf8_sanitize(fixed, sizeof(fixed), v, n);
		v = fixed;
	}
	for (const char *c = v; *c; c++) {
		if (*c == '\\')
			mt_buf_puts(b, "\\\\");
		else if (*c == '"')
			mt_buf_puts(b, "\\\"");
		else if (*c == '\n')
			mt_buf_puts(b, "\\n");
		else
			mt_buf_append(b, c, 1);
	}
}

static void labels(struct mt_buf *b, const struct point *p, const char *le)
{
	char key[128];

	mt_buf_puts(b, "{");
	for (unsigned i = 0; i < p->nattrs; i++) {
		sanitize(p->attrs[i].key, key, sizeof(key), false);
		mt_buf_printf(b, "%s=\"", key);
		if (p->attrs[i].str)
			label_value(b, p->attrs[i].str);
		else
			mt_buf_printf(b, "%" PRId64, p->attrs[i].num);
		mt_buf_puts(b, "\",");
	}
	if (p->resource) {
		mt_buf_puts(b, "service_name=\"");
		label_value(b, p->resource);
		mt_buf_puts(b, "\",");
		if (p->resource_ns && p->resource_ns[0]) {
			mt_buf_puts(b, "service_namespace=\"");
			label_value(b, p->resource_ns);
			mt_buf_puts(b, "\",");
		}
	}
	mt_buf_printf(b, "otel_scope_name=\"%s\",otel_scope_version=\"%s\"", METRICS_SCOPE_NAME,
		      MESHTRACE_VERSION);
	if (le)
		mt_buf_printf(b, ",le=\"%s\"", le);
	mt_buf_puts(b, "}");
}

/* The shortest decimal form that reads back as @v (what Go's strconv 'g', -1 writes). */
static void shortest(char *out, size_t len, double v)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, len, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static void prom_number(struct mt_buf *b, double v)
{
	char num[40];

	if (isinf(v)) {
		mt_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		mt_buf_printf(b, "%.0f", v);
		return;
	}
	shortest(num, sizeof(num), v);
	mt_buf_puts(b, num);
}

static void target_info(struct mt_buf *b, const struct metrics *m, bool om)
{
	char key[128];

	if (om) /* an info metric: the family is "target", its sample target_info */
		mt_buf_puts(b, "# HELP target Target metadata\n# TYPE target info\n");
	else
		mt_buf_puts(b, "# HELP target_info Target metadata\n# TYPE target_info gauge\n");
	mt_buf_printf(b,
		      "target_info{service_name=\"%s\",telemetry_sdk_name=\"meshtrace\","
		      "telemetry_sdk_language=\"c\",telemetry_sdk_version=\"%s\"",
		      metrics_agent_service_name(m), MESHTRACE_VERSION);
	if (m->cfg.host_name[0]) {
		mt_buf_puts(b, ",host_name=\"");
		label_value(b, m->cfg.host_name);
		mt_buf_puts(b, "\"");
	}
	for (unsigned i = 0; i < m->cfg.n_resource_attrs; i++) {
		const struct otlp_kv *kv = &m->cfg.resource_attrs[i];

		if (metrics_agent_resource_key(kv->key))
			continue;
		sanitize(kv->key, key, sizeof(key), false);
		mt_buf_printf(b, ",%s=\"", key);
		label_value(b, kv->value);
		mt_buf_puts(b, "\"");
	}
	mt_buf_puts(b, "} 1\n");
}

static void hex(struct mt_buf *b, const uint8_t *id, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char out[32];

	for (size_t i = 0; i < n && 2 * i + 1 < sizeof(out); i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	mt_buf_append(b, out, 2 * n);
}

/* An OpenMetrics exemplar after a bucket's value: " # {trace_id=..,span_id=..} value ts". */
static void exemplar(struct mt_buf *b, const struct graph_exemplar *ex)
{
	mt_buf_puts(b, " # {trace_id=\"");
	hex(b, ex->trace_id, sizeof(ex->trace_id));
	mt_buf_puts(b, "\",span_id=\"");
	hex(b, ex->span_id, sizeof(ex->span_id));
	mt_buf_puts(b, "\"} ");
	prom_number(b, ex->value);
	mt_buf_printf(b, " %" PRIu64 ".%03" PRIu64, ex->unix_ns / 1000000000u,
		      ex->unix_ns / 1000000u % 1000u);
}

static int write_text(struct metrics *m, const struct graph *g, const struct metrics_health *h,
		      struct mt_buf *b, bool om)
{
	struct series_list l;
	int err = metrics_list_build(&l, m, g, h);

	if (err)
		goto out;
	m->stats.scrapes++;
	if (l.n) /* qsort(NULL, 0, ...) is undefined */
		qsort(l.pts, l.n, sizeof(*l.pts), metrics_cmp_family);
	target_info(b, m, om);
	for (size_t i = 0; i < l.n;) {
		const struct family *f = &metrics_families[l.pts[i].family];
		size_t j = i, flen;
		char name[256];

		metrics_prometheus_name(f->name, f->unit, f->type == T_SUM, name, sizeof(name));
		flen = strlen(name);
		/* OpenMetrics names a counter family without the _total of its sample. */
		if (om && f->type == T_SUM)
			flen -= strlen("_total");
		mt_buf_printf(b, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)flen, name, f->help,
			      (int)flen, name,
			      f->type == T_SUM	   ? "counter"
			      : f->type == T_GAUGE ? "gauge"
						   : "histogram");
		for (; j < l.n && l.pts[j].family == l.pts[i].family; j++) {
			const struct point *p = &l.pts[j];

			if (f->type != T_HIST) {
				mt_buf_puts(b, name);
				labels(b, p, NULL);
				mt_buf_puts(b, " ");
				prom_number(b, p->value);
				mt_buf_puts(b, "\n");
				continue;
			}
			{
				uint64_t cum = 0;
				char le[32];

				for (unsigned k = 0; k <= f->nbounds; k++) {
					cum += p->buckets[k];
					if (k < f->nbounds)
						shortest(le, sizeof(le), f->bounds[k]);
					else
						snprintf(le, sizeof(le), "+Inf");
					mt_buf_printf(b, "%s_bucket", name);
					labels(b, p, le);
					mt_buf_printf(b, " %" PRIu64, cum);
					if (om && p->exemplars && p->exemplars[k].unix_ns)
						exemplar(b, &p->exemplars[k]);
					mt_buf_puts(b, "\n");
				}
				mt_buf_printf(b, "%s_sum", name);
				labels(b, p, NULL);
				mt_buf_puts(b, " ");
				prom_number(b, p->sum);
				mt_buf_printf(b, "\n%s_count", name);
				labels(b, p, NULL);
				mt_buf_printf(b, " %" PRIu64 "\n", p->count);
			}
		}
		i = j;
	}
	if (om)
		mt_buf_puts(b, "# EOF\n");
	if (b->overflow)
		err = -ENOMEM;
out:
	if (err)
		m->stats.encode_failures++;
	metrics_list_free(&l);
	return err;
}

int metrics_write_prometheus(struct metrics *m, const struct graph *g,
			     const struct metrics_health *h, struct mt_buf *b)
{
	return write_text(m, g, h, b, false);
}

int metrics_write_openmetrics(struct metrics *m, const struct graph *g,
			      const struct metrics_health *h, struct mt_buf *b)
{
	return write_text(m, g, h, b, true);
}

/* The q-value of one media range's parameters ("; q=0.5"): 1 when absent, -1 when bad. */
static double accept_q(const char *params, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		const char *p = params + i;
		char num[8], *end;
		size_t n = 0;
		double q;

		if (p[0] != ';')
			continue;
		p++;
		while (p < params + len && (*p == ' ' || *p == '\t'))
			p++;
		if (p + 2 > params + len || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
			continue;
		p += 2;
		while (p + n < params + len && n + 1 < sizeof(num) && p[n] != ';' && p[n] != ' ')
			n++;
		memcpy(num, p, n);
		num[n] = '\0';
		q = strtod(num, &end);
		return end == num || *end || q < 0 || q > 1 ? -1 : q;
	}
	return 1;
}

bool metrics_accepts_openmetrics(const char *accept)
{
	double om = -1, text = -1;

	if (!accept)
		return false;
	while (*accept) {
		size_t len = strcspn(accept, ","), tlen;
		const char *t = accept;
		double q;

		while (len && (*t == ' ' || *t == '\t')) {
			t++;
			len--;
		}
		tlen = strcspn(t, ";,");
		while (tlen && (t[tlen - 1] == ' ' || t[tlen - 1] == '\t'))
			tlen--;
		q = accept_q(t, len);
		if (tlen == strlen("application/openmetrics-text") &&
		    !strncasecmp(t, "application/openmetrics-text", tlen)) {
			if (q > om)
				om = q;
		} else if ((tlen == strlen("text/plain") && !strncasecmp(t, "text/plain", tlen)) ||
			   (tlen == 3 && !strncmp(t, "*/*", 3)) ||
			   (tlen == 6 && !strncasecmp(t, "text/*", 6))) {
			if (q > text)
				text = q;
		}
		accept += (size_t)(t - accept) + len;
		if (*accept == ',')
			accept++;
	}
	return om > 0 && om >= text;
}
