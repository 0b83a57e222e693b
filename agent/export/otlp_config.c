// SPDX-License-Identifier: Apache-2.0
/*
 * OTLP exporter configuration from the standard environment variables.
 * Spec: https://opentelemetry.io/docs/specs/otel/protocol/exporter/ (endpoint
 * URLs, headers, compression, timeout, protocol),
 * https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/
 * (OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*), and the HTTP semantic conventions
 * (OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS).
 *
 * Every bad value is an error with one line naming the variable, the value
 * (never for headers: they carry secrets) and the fix. An empty variable
 * counts as unset, as the spec asks.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/export/otlp.h"
#include "agent/common/log.h"
#include "agent/common/utf8.h"

/* The longest environment value we look at; longer ones are errors. */
#define ENV_VALUE_MAX 8192

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

/* The value of the signal-specific variable if set, else the general one; *@name says which. */
static const char *env2(const char *specific, const char *general, const char **name)
{
	const char *v = env(specific);

	*name = specific;
	if (v)
		return v;
	*name = general;
	return env(general);
}

/* Copies @v without surrounding blanks into @dst; false when it does not fit. */
static bool trimmed(char *dst, size_t cap, const char *v, size_t len)
{
	while (len && isspace((unsigned char)v[0])) {
		v++;
		len--;
	}
	while (len && isspace((unsigned char)v[len - 1]))
		len--;
	if (len >= cap)
		return false;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return true;
}

static int parse_ms(const char *name, const char *v, long min, long max, long example, long *out,
		    char *err, size_t errlen)
{
	char buf[32], *end;
	long n;

	if (!trimmed(buf, sizeof(buf), v, strlen(v)) || !buf[0] || !isdigit((unsigned char)buf[0]))
		goto out_bad;
	errno = 0;
	n = strtol(buf, &end, 10);
	if (errno || *end)
		goto out_bad;
	if (n < min || n > max)
		return mt_fail(err, errlen,
			       "%s=\"%s\": out of range; unset it or give milliseconds from %ld to "
			       "%ld, e.g. %ld",
			       name, buf, min, max, example);
	*out = n;
	return 0;

out_bad:
	return mt_fail(err, errlen,
		       "%s=\"%.64s\": not a number of milliseconds; unset it or give e.g. %ld",
		       name, v, example);
}

static int parse_count(const char *name, const char *v, unsigned min, unsigned max,
		       unsigned example, unsigned *out, char *err, size_t errlen)
{
	char buf[32], *end;
	long n;

	if (!trimmed(buf, sizeof(buf), v, strlen(v)) || !buf[0] || !isdigit((unsigned char)buf[0]))
		goto out_bad;
	errno = 0;
	n = strtol(buf, &end, 10);
	if (errno || *end)
		goto out_bad;
	if (n < (long)min || n > (long)max)
		return mt_fail(
			err, errlen,
			"%s=\"%s\": out of range; unset it or give a number from %u to %u, e.g. %u",
			name, buf, min, max, example);
	*out = (unsigned)n;
	return 0;

out_bad:
	return mt_fail(err, errlen, "%s=\"%.64s\": not a number; unset it or give e.g. %u", name, v,
		       example);
}

/*
 * Checks an OTLP/HTTP URL: http:// or https://, a host, an optional numeric
 * port. Returns the offset of the path (the length when there is none), or
 * -EINVAL with @err set.
 */
static int check_url(const char *name, const char *url, char *err, size_t errlen)
{
	const char *p, *host, *host_end, *port = NULL;
	size_t i;

	for (i = 0; url[i]; i++)
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
			return mt_fail(err, errlen,
				       "%s=\"%.200s\": a URL has no spaces or control characters; "
				       "give e.g. http://collector:4318",
				       name, url);
	if (!strncasecmp(url, "http://", 7))
		host = url + 7;
	else if (!strncasecmp(url, "https://", 8))
		host = url + 8;
	else
		return mt_fail(err, errlen,
			       "%s=\"%.200s\": not an http:// or https:// URL (meshtrace speaks "
			       "OTLP/HTTP); give e.g. http://collector:4318",
			       name, url);
	host_end = host + strcspn(host, "/?#");
	p = strchr(host, '@');
	if (p && p < host_end)
		host = p + 1; /* user:password@ */
	if (host[0] == '[') {
		p = memchr(host, ']', (size_t)(host_end - host));
		if (!p || p == host + 1)
			return mt_fail(err, errlen,
				       "%s=\"%.200s\": bad IPv6 host; give e.g. http://[::1]:4318",
				       name, url);
		if (p + 1 < host_end) {
			if (p[1] != ':')
				return mt_fail(
					err, errlen,
					"%s=\"%.200s\": bad IPv6 host; give e.g. http://[::1]:4318",
					name, url);
			port = p + 2;
		}
	} else {
		p = memchr(host, ':', (size_t)(host_end - host));
		if (p)
			port = p + 1;
		if ((p ? p : host_end) == host)
			return mt_fail(err, errlen,
				       "%s=\"%.200s\": the URL has no host; give e.g. "
				       "http://collector:4318",
				       name, url);
	}
	if (port) {
		long n = 0;

		if (port == host_end)
			return mt_fail(err, errlen,
				       "%s=\"%.200s\": empty port; give e.g. http://collector:4318",
				       name, url);
		for (p = port; p < host_end; p++) {
			if (!isdigit((unsigned char)*p) || n > 65535)
				break;
			n = n * 10 + (*p - '0');
		}
		if (p != host_end || n < 1 || n > 65535)
			return mt_fail(
				err, errlen,
				"%s=\"%.200s\": the port is not a number from 1 to 65535; give "
				"e.g. http://collector:4318",
				name, url);
	}
	return (int)(host_end - url);
}

/*
 * Per-signal URL from OTEL_EXPORTER_OTLP_ENDPOINT: the base URL's path with
 * "v1/<signal>" appended after exactly one '/'. http://c:4318 and
 * http://c:4318/ both give http://c:4318/v1/traces; http://c:4318/a/ and
 * http://c:4318/a give http://c:4318/a/v1/traces.
 */
static int signal_url(char *dst, size_t cap, const char *name, const char *base, const char *signal,
		      char *err, size_t errlen)
{
	size_t len = strlen(base);
	int path = check_url(name, base, err, errlen);
	int n;

	if (path < 0)
		return path;
	if (strpbrk(base + path, "?#"))
		return mt_fail(err, errlen,
			       "%s=\"%.200s\": a base URL takes no query or fragment; give e.g. "
			       "http://collector:4318 or set OTEL_EXPORTER_OTLP_%s_ENDPOINT",
			       name, base, !strcmp(signal, "traces") ? "TRACES" : "METRICS");
	if (len && base[len - 1] == '/')
		len--;
	n = snprintf(dst, cap, "%.*s/v1/%s", (int)len, base, signal);
	if (n < 0 || (size_t)n >= cap)
		return mt_fail(err, errlen, "%s: URL longer than %zu bytes; give a shorter one",
			       name, cap - 1);
	return 0;
}

static int exact_url(char *dst, size_t cap, const char *name, const char *url, char *err,
		     size_t errlen)
{
	int path = check_url(name, url, err, errlen);

	if (path < 0)
		return path;
	if (strlen(url) >= cap)
		return mt_fail(err, errlen, "%s: URL longer than %zu bytes; give a shorter one",
			       name, cap - 1);
	snprintf(dst, cap, "%s", url);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes @len bytes of @s into @dst; false on a bad escape or when it does not fit. */
static bool percent_decode(char *dst, size_t cap, const char *s, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return false;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return false; /* bad escape, or a NUL */
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return true;
}

/* RFC 9110 token characters, what a header name is made of. */
static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
			return false;
	return true;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < ' ' && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

typedef int (*pair_fn)(void *ctx, const char *name, unsigned item, const char *key,
		       const char *value, char *err, size_t errlen);

/*
 * Splits a W3C-baggage-like list "k1=v1,k2=v2" (blanks around items, keys
 * and values ignored; keys and values percent-decoded; empty items skipped)
 * and hands each pair to @fn. @secret: never print values.
 */
static int parse_pairs(const char *name, const char *v, bool secret, pair_fn fn, void *ctx,
		       char *err, size_t errlen)
{
	char item[ENV_VALUE_MAX], key[OTLP_HEADER_VALUE_MAX], val[OTLP_HEADER_VALUE_MAX];
	char dkey[OTLP_HEADER_VALUE_MAX], dval[OTLP_HEADER_VALUE_MAX];
	unsigned n = 0;
	int ret;

	if (strlen(v) >= ENV_VALUE_MAX)
		return mt_fail(err, errlen, "%s: longer than %d bytes; shorten it", name,
			       ENV_VALUE_MAX - 1);
	while (*v) {
		size_t len = strcspn(v, ",");
		char *eq;

		n++;
		if (!trimmed(item, sizeof(item), v, len))
			return mt_fail(err, errlen, "%s: item %u too long", name, n);
		v += len + (v[len] == ',');
		if (!item[0])
			continue;
		eq = strchr(item, '=');
		if (!eq)
			return mt_fail(err, errlen,
				       "%s: item %u (\"%.64s\") is not key=value; give e.g. "
				       "key1=value1,key2=value2",
				       name, n, secret ? "..." : item);
		if (!trimmed(key, sizeof(key), item, (size_t)(eq - item)) ||
		    !trimmed(val, sizeof(val), eq + 1, strlen(eq + 1)))
			return mt_fail(err, errlen,
				       "%s: item %u too long; at most %d bytes a key or value",
				       name, n, OTLP_HEADER_VALUE_MAX - 1);
		if (!percent_decode(dkey, sizeof(dkey), key, strlen(key)) ||
		    !percent_decode(dval, sizeof(dval), val, strlen(val)))
			return mt_fail(
				err, errlen,
				"%s: item %u (key \"%.64s\"): bad %%-escape or too long; write "
				"a literal %% as %%25, ',' as %%2C",
				name, n, key);
		if (!dkey[0])
			return mt_fail(err, errlen,
				       "%s: item %u has an empty key; give e.g. key1=value1", name,
				       n);
		ret = fn(ctx, name, n, dkey, dval, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Where @key goes among the *@n entries of @size bytes at @base, each starting
 * with its key as a string: the entry with that key (compared ignoring case
 * when @nocase), else a new one at the end (*@n grows). NULL when @max are
 * in use. A later item with the same key replaces the earlier one.
 */
static void *entry_for(void *base, size_t size, unsigned *n, unsigned max, const char *key,
		       bool nocase)
{
	char *e = base;
	unsigned i;

	for (i = 0; i < *n; i++, e += size)
		if (nocase ? !strcasecmp(e, key) : !strcmp(e, key))
			return e;
	if (*n == max)
		return NULL;
	(*n)++;
	return e;
}

_Static_assert(offsetof(struct otlp_header, name) == 0, "entry_for() reads the key first");
_Static_assert(offsetof(struct otlp_kv, key) == 0, "entry_for() reads the key first");

static int add_header(void *ctx, const char *name, unsigned item, const char *key,
		      const char *value, char *err, size_t errlen)
{
	struct otlp_transport_config *t = ctx;
	struct otlp_header *h;

	if (!is_token(key) || strlen(key) >= OTLP_HEADER_NAME_MAX)
		return mt_fail(
			err, errlen,
			"%s: item %u: \"%.64s\" is not an HTTP header name (letters, digits, "
			"-, at most %d bytes); fix the name",
			name, item, key, OTLP_HEADER_NAME_MAX - 1);
	if (!strcasecmp(key, "content-type") || !strcasecmp(key, "content-encoding") ||
	    !strcasecmp(key, "content-length"))
		return mt_fail(
			err, errlen,
			"%s: item %u: meshtrace sets %s itself; remove it (for compression use "
			"OTEL_EXPORTER_OTLP_COMPRESSION)",
			name, item, key);
	if (has_ctl(value))
		return mt_fail(err, errlen,
			       "%s: item %u (header %s): the value holds control characters (CR, "
			       "LF...); remove them",
			       name, item, key);
	h = entry_for(t->headers, sizeof(*h), &t->n_headers, OTLP_HEADERS_MAX, key, true);
	if (!h)
		return mt_fail(err, errlen, "%s: more than %d headers; send fewer", name,
			       OTLP_HEADERS_MAX);
	snprintf(h->name, sizeof(h->name), "%s", key);
	snprintf(h->value, sizeof(h->value), "%s", value);
	return 0;
}

static int add_resource_attr(void *ctx, const char *name, unsigned item, const char *key,
			     const char *value, char *err, size_t errlen)
{
	struct otlp_config *cfg = ctx;
	struct otlp_kv *kv;

	if (strlen(key) >= OTLP_ATTR_KEY_MAX || strlen(value) >= OTLP_ATTR_VALUE_MAX)
		return mt_fail(
			err, errlen,
			"%s: item %u (key \"%.64s\"): at most %d bytes a key and %d a value; "
			"shorten it",
			name, item, key, OTLP_ATTR_KEY_MAX - 1, OTLP_ATTR_VALUE_MAX - 1);
	if (!utf8_valid(key, strlen(key)) || !utf8_valid(value, strlen(value)))
		return mt_fail(
			err, errlen,
			"%s: item %u (key \"%.64s\"): not UTF-8 once %%-decoded; fix the escapes",
			name, item, key);
	if (!strcmp(key, "host.name")) {
		snprintf(cfg->host_name, sizeof(cfg->host_name), "%s", value);
		return 0;
	}
	kv = entry_for(cfg->resource_attrs, sizeof(*kv), &cfg->n_resource_attrs,
		       OTLP_RESOURCE_ATTRS_MAX, key, false);
	if (!kv)
		return mt_fail(err, errlen, "%s: more than %d attributes; give fewer", name,
			       OTLP_RESOURCE_ATTRS_MAX);
	snprintf(kv->key, sizeof(kv->key), "%s", key);
	snprintf(kv->value, sizeof(kv->value), "%s", value);
	return 0;
}

void otlp_config_defaults(struct otlp_config *cfg)
{
	*cfg = (struct otlp_config){
		.traces = {.gzip = true, .timeout_ms = OTLP_DEFAULT_TIMEOUT_MS},
		.metrics = {.gzip = true, .timeout_ms = OTLP_DEFAULT_TIMEOUT_MS},
		.batch_max = OTLP_DEFAULT_BATCH_MAX,
		.schedule_delay_ms = OTLP_DEFAULT_SCHEDULE_DELAY_MS,
		.queue_max_spans = OTLP_DEFAULT_QUEUE_MAX,
		.export_timeout_ms = OTLP_DEFAULT_EXPORT_TIMEOUT_MS,
		.retry_base_ms = OTLP_RETRY_BASE_MS,
		.retry_max_ms = OTLP_RETRY_MAX_MS,
	};
	if (gethostname(cfg->host_name, sizeof(cfg->host_name)) ||
	    !utf8_valid(cfg->host_name, strnlen(cfg->host_name, sizeof(cfg->host_name))))
		cfg->host_name[0] = '\0';
	cfg->host_name[sizeof(cfg->host_name) - 1] = '\0';
}

static int transport_from_env(struct otlp_transport_config *t, const char *sig, char *err,
			      size_t errlen)
{
	char specific[64];
	const char *name, *v;
	int ret;

	/*
	 * The signal's headers replace the general ones whole, like every other
	 * option ("overridable by a signal specific option"; the Java, Python and
	 * Go SDKs do so): a header of the general list can then be left out.
	 */
	snprintf(specific, sizeof(specific), "OTEL_EXPORTER_OTLP_%s_HEADERS", sig);
	v = env2(specific, "OTEL_EXPORTER_OTLP_HEADERS", &name);
	if (v) {
		ret = parse_pairs(name, v, true, add_header, t, err, errlen);
		if (ret)
			return ret;
	}

	snprintf(specific, sizeof(specific), "OTEL_EXPORTER_OTLP_%s_COMPRESSION", sig);
	v = env2(specific, "OTEL_EXPORTER_OTLP_COMPRESSION", &name);
	if (v) {
		char buf[16];

		if (trimmed(buf, sizeof(buf), v, strlen(v)) && !strcasecmp(buf, "gzip"))
			t->gzip = true;
		else if (trimmed(buf, sizeof(buf), v, strlen(v)) && !strcasecmp(buf, "none"))
			t->gzip = false;
		else
			return mt_fail(
				err, errlen,
				"%s=\"%.64s\": unknown compression; give gzip (the default) or "
				"none",
				name, v);
	}

	snprintf(specific, sizeof(specific), "OTEL_EXPORTER_OTLP_%s_TIMEOUT", sig);
	v = env2(specific, "OTEL_EXPORTER_OTLP_TIMEOUT", &name);
	if (v) {
		ret = parse_ms(name, v, 1, OTLP_TIMEOUT_LIMIT_MS, OTLP_DEFAULT_TIMEOUT_MS,
			       &t->timeout_ms, err, errlen);
		if (ret)
			return ret;
	}

	return 0;
}

/* OTEL_EXPORTER_OTLP_{,<SIG>_}PROTOCOL: http/protobuf (the default) or grpc. */
static int protocol_from_env(struct otlp_transport_config *t, const char *sig, char *err,
			     size_t errlen)
{
	char specific[64], buf[32];
	const char *name, *v;

	snprintf(specific, sizeof(specific), "OTEL_EXPORTER_OTLP_%s_PROTOCOL", sig);
	v = env2(specific, "OTEL_EXPORTER_OTLP_PROTOCOL", &name);
	if (!v)
		return 0;
	if (trimmed(buf, sizeof(buf), v, strlen(v)) && !strcmp(buf, "http/protobuf")) {
		t->protocol = OTLP_HTTP_PROTOBUF;
		return 0;
	}
	if (!strcmp(buf, "grpc")) {
		t->protocol = OTLP_GRPC;
		return 0;
	}
	if (!strcmp(buf, "http/json"))
		return mt_fail(err, errlen,
			       "%s=\"%s\": meshtrace does not export OTLP as JSON; give "
			       "http/protobuf (collector port 4318) or grpc (port 4317)",
			       name, buf);
	return mt_fail(err, errlen,
		       "%s=\"%.64s\": unknown protocol; unset it or give http/protobuf or grpc",
		       name, v);
}

/* OTEL_EXPORTER_OTLP_{,<SIG>_}INSECURE: true or false (the default). */
static int insecure_from_env(bool *insecure, const char *sig, char *err, size_t errlen)
{
	char specific[64], buf[16];
	const char *name, *v;

	snprintf(specific, sizeof(specific), "OTEL_EXPORTER_OTLP_%s_INSECURE", sig);
	v = env2(specific, "OTEL_EXPORTER_OTLP_INSECURE", &name);
	*insecure = false;
	if (!v)
		return 0;
	if (trimmed(buf, sizeof(buf), v, strlen(v)) && !strcasecmp(buf, "true"))
		*insecure = true;
	else if (strcasecmp(buf, "false"))
		return mt_fail(err, errlen, "%s=\"%.64s\": give true or false", name, v);
	return 0;
}

/*
 * The gRPC method's URL from an OTLP/gRPC endpoint, used as is (the spec: no
 * per-signal path): http[s]://host[:port] with no path but "/", or host:port
 * with no scheme (https, or http when @insecure; port 4317 when none).
 */
static int grpc_url(char *dst, size_t cap, const char *name, const char *v, const char *method,
		    bool insecure, char *err, size_t errlen)
{
	char url[OTLP_URL_MAX];
	int path, n;

	if (strstr(v, "://")) {
		n = snprintf(url, sizeof(url), "%s", v);
	} else {
		const char *colon = strrchr(v, ':');
		bool has_port = colon && (v[0] != '[' || colon > strchr(v, ']'));

		n = snprintf(url, sizeof(url), "%s://%s%s", insecure ? "http" : "https", v,
			     has_port ? "" : ":4317");
	}
	if (n < 0 || (size_t)n >= sizeof(url))
		return mt_fail(err, errlen, "%s: URL longer than %zu bytes; give a shorter one",
			       name, sizeof(url) - 1);
	path = check_url(name, url, err, errlen);
	if (path < 0)
		return path;
	if (url[path] && strcmp(url + path, "/"))
		return mt_fail(err, errlen,
			       "%s=\"%.200s\": an OTLP/gRPC endpoint has no path (the call goes to "
			       "%s); give e.g. http://collector:4317",
			       name, v, method);
	url[path] = '\0';
	n = snprintf(dst, cap, "%s%s", url, method);
	if (n < 0 || (size_t)n >= cap)
		return mt_fail(err, errlen, "%s: URL longer than %zu bytes; give a shorter one",
			       name, cap - 1);
	return 0;
}

/* One signal's endpoint: the specific variable as is, else the general one per protocol. */
static int endpoint_from_env(char *dst, size_t cap, const struct otlp_transport_config *t,
			     const char *sig, const char *signal, const char *method, char *err,
			     size_t errlen)
{
	char specific[64];
	const char *name, *v;
	bool insecure;
	int ret;

	snprintf(specific, sizeof(specific), "OTEL_EXPORTER_OTLP_%s_ENDPOINT", sig);
	v = env2(specific, "OTEL_EXPORTER_OTLP_ENDPOINT", &name);
	if (!v)
		return 0;
	if (t->protocol == OTLP_GRPC) {
		ret = insecure_from_env(&insecure, sig, err, errlen);
		if (ret)
			return ret;
		return grpc_url(dst, cap, name, v, method, insecure, err, errlen);
	}
	if (name == specific)
		return exact_url(dst, cap, name, v, err, errlen);
	return signal_url(dst, cap, name, v, signal, err, errlen);
}

/* A PEM file the agent can read, or one line saying why not. */
static int pem_file(char *dst, size_t cap, const char *name, const char *v, char *err,
		    size_t errlen)
{
	char head[4096];
	size_t n;
	FILE *f;

	if (strlen(v) >= cap)
		return mt_fail(err, errlen, "%s: path longer than %zu bytes; give a shorter one",
			       name, cap - 1);
	f = fopen(v, "re");
	if (!f)
		return mt_fail(
			err, errlen,
			"%s=\"%.200s\": cannot read it (%s); give the path of a PEM file the "
			"agent can read",
			name, v, strerror(errno));
	n = fread(head, 1, sizeof(head) - 1, f);
	fclose(f);
	head[n] = '\0';
	if (!strstr(head, "-----BEGIN "))
		return mt_fail(err, errlen,
			       "%s=\"%.200s\": not a PEM file (no -----BEGIN line); give a PEM "
			       "certificate or key",
			       name, v);
	snprintf(dst, cap, "%s", v);
	return 0;
}

/* OTEL_EXPORTER_OTLP_{,<SIG>_}{CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY}. */
static int tls_from_env(struct otlp_transport_config *t, const char *sig, char *err, size_t errlen)
{
	static const char *const what[] = {"CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"};
	char *dst[] = {t->ca_file, t->client_cert, t->client_key};
	const char *cert_name = NULL, *key_name = NULL;
	char specific[3][64], general[3][64];
	const char *name, *v;
	unsigned i;
	int ret;

	for (i = 0; i < 3; i++) {
		snprintf(specific[i], sizeof(specific[i]), "OTEL_EXPORTER_OTLP_%s_%s", sig,
			 what[i]);
		snprintf(general[i], sizeof(general[i]), "OTEL_EXPORTER_OTLP_%s", what[i]);
		v = env2(specific[i], general[i], &name);
		if (!v)
			continue;
		ret = pem_file(dst[i], OTLP_PATH_MAX, name, v, err, errlen);
		if (ret)
			return ret;
		if (i == 1)
			cert_name = name;
		if (i == 2)
			key_name = name;
	}
	if (!cert_name != !key_name)
		return mt_fail(err, errlen,
			       "%s is set but not %s (or %s): a client certificate needs its key "
			       "(mutual TLS); set both or neither",
			       cert_name ? cert_name : key_name,
			       cert_name ? general[2] : general[1],
			       cert_name ? specific[2] : specific[1]);
	return 0;
}

static int bsp_from_env(struct otlp_config *cfg, char *err, size_t errlen)
{
	const char *v;
	long ms;
	int ret;

	v = env("OTEL_BSP_SCHEDULE_DELAY");
	if (v) {
		ret = parse_ms("OTEL_BSP_SCHEDULE_DELAY", v, 0, OTLP_TIMEOUT_LIMIT_MS,
			       OTLP_DEFAULT_SCHEDULE_DELAY_MS, &ms, err, errlen);
		if (ret)
			return ret;
		cfg->schedule_delay_ms = (unsigned)ms;
	}
	v = env("OTEL_BSP_EXPORT_TIMEOUT");
	if (v) {
		ret = parse_ms("OTEL_BSP_EXPORT_TIMEOUT", v, 1, OTLP_TIMEOUT_LIMIT_MS,
			       OTLP_DEFAULT_EXPORT_TIMEOUT_MS, &ms, err, errlen);
		if (ret)
			return ret;
		cfg->export_timeout_ms = (unsigned)ms;
	}
	v = env("OTEL_BSP_MAX_QUEUE_SIZE");
	if (v) {
		ret = parse_count("OTEL_BSP_MAX_QUEUE_SIZE", v, 1, OTLP_QUEUE_LIMIT,
				  OTLP_DEFAULT_QUEUE_MAX, &cfg->queue_max_spans, err, errlen);
		if (ret)
			return ret;
	}
	v = env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
	if (v) {
		ret = parse_count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", v, 1, OTLP_BATCH_LIMIT,
				  OTLP_DEFAULT_BATCH_MAX, &cfg->batch_max, err, errlen);
		if (ret)
			return ret;
	}
	if (cfg->batch_max > cfg->queue_max_spans)
		return mt_fail(
			err, errlen,
			"OTEL_BSP_MAX_EXPORT_BATCH_SIZE=%u is larger than "
			"OTEL_BSP_MAX_QUEUE_SIZE=%u; give a batch size at most the queue size",
			cfg->batch_max, cfg->queue_max_spans);
	return 0;
}

static int known_methods_from_env(struct otlp_config *cfg, char *err, size_t errlen)
{
	static const char name[] = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS";
	const char *v = env(name);
	char m[MT_METHOD_MAX];

	if (!v)
		return 0;
	while (*v) {
		size_t len = strcspn(v, ",");

		if (!trimmed(m, sizeof(m), v, len) || (m[0] && !is_token(m)))
			return mt_fail(err, errlen,
				       "%s: \"%.*s\" is not an HTTP method (a token of at most %d "
				       "characters); fix the list, e.g. GET,POST,PURGE",
				       name, (int)(len < 64 ? len : 64), v, MT_METHOD_MAX - 1);
		v += len + (v[len] == ',');
		if (!m[0])
			continue;
		if (cfg->n_known_methods == OTLP_KNOWN_METHODS_MAX)
			return mt_fail(err, errlen, "%s: more than %d methods; give fewer", name,
				       OTLP_KNOWN_METHODS_MAX);
		snprintf(cfg->known_methods[cfg->n_known_methods++], MT_METHOD_MAX, "%s", m);
	}
	if (!cfg->n_known_methods)
		return mt_fail(err, errlen, "%s: lists no method; unset it or give e.g. GET,POST",
			       name);
	return 0;
}

/* The agent's own service.name: OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES' (parsed before). */
static int service_name_from_env(struct otlp_config *cfg, char *err, size_t errlen)
{
	const char *v = env("OTEL_SERVICE_NAME");

	if (!v) {
		for (unsigned i = 0; i < cfg->n_resource_attrs; i++)
			if (!strcmp(cfg->resource_attrs[i].key, "service.name"))
				snprintf(cfg->service_name, sizeof(cfg->service_name), "%s",
					 cfg->resource_attrs[i].value);
		return 0;
	}
	if (!utf8_valid(v, strlen(v)))
		return mt_fail(
			err, errlen,
			"OTEL_SERVICE_NAME: not UTF-8; give a UTF-8 name, e.g. meshtrace-node");
	if (strlen(v) >= sizeof(cfg->service_name))
		return mt_fail(
			err, errlen,
			"OTEL_SERVICE_NAME=\"%.64s...\": longer than %zu bytes; give a shorter "
			"name, e.g. meshtrace-node",
			v, sizeof(cfg->service_name) - 1);
	snprintf(cfg->service_name, sizeof(cfg->service_name), "%s", v);
	return 0;
}

int otlp_config_from_env(struct otlp_config *cfg, char *err, size_t errlen)
{
	const char *v;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	otlp_config_defaults(cfg);

	/* The protocol first: it decides what the endpoint means. */
	ret = protocol_from_env(&cfg->traces, "TRACES", err, errlen);
	if (ret)
		return ret;
	ret = protocol_from_env(&cfg->metrics, "METRICS", err, errlen);
	if (ret)
		return ret;
	ret = endpoint_from_env(cfg->traces_url, sizeof(cfg->traces_url), &cfg->traces, "TRACES",
				"traces", OTLP_GRPC_TRACES_METHOD, err, errlen);
	if (ret)
		return ret;
	ret = endpoint_from_env(cfg->metrics_url, sizeof(cfg->metrics_url), &cfg->metrics,
				"METRICS", "metrics", OTLP_GRPC_METRICS_METHOD, err, errlen);
	if (ret)
		return ret;
	ret = tls_from_env(&cfg->traces, "TRACES", err, errlen);
	if (ret)
		return ret;
	ret = tls_from_env(&cfg->metrics, "METRICS", err, errlen);
	if (ret)
		return ret;

	ret = transport_from_env(&cfg->traces, "TRACES", err, errlen);
	if (ret)
		return ret;
	ret = transport_from_env(&cfg->metrics, "METRICS", err, errlen);
	if (ret)
		return ret;
	ret = bsp_from_env(cfg, err, errlen);
	if (ret)
		return ret;

	v = env("OTEL_RESOURCE_ATTRIBUTES");
	if (v) {
		ret = parse_pairs("OTEL_RESOURCE_ATTRIBUTES", v, false, add_resource_attr, cfg, err,
				  errlen);
		if (ret)
			return ret;
	}
	ret = service_name_from_env(cfg, err, errlen);
	if (ret)
		return ret;
	return known_methods_from_env(cfg, err, errlen);
}
