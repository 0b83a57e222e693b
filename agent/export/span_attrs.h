/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attributes of an HTTP span, per the stable HTTP semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/http/http-spans/): one list
 * that every exporter writes, so OTLP and JSON lines say the same thing.
 */
#ifndef MESHTRACE_SPAN_ATTRS_H
#define MESHTRACE_SPAN_ATTRS_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/trace/span.h"

/* 22 of the span (with meshtrace.vip.*) + 4 of its peer pod (k8s_span_peer_attrs) */
#define SPAN_ATTRS_MAX 26

enum span_attr_type {
	SPAN_ATTR_STR = 0,
	SPAN_ATTR_INT = 1,
};

struct span_attr {
	const char *key;
	uint32_t key_len; /* strlen(key): keys are literals, measured at compile time */
	const char *str;  /* SPAN_ATTR_STR: NUL-terminated, not checked for UTF-8 */
	int64_t num;	  /* SPAN_ATTR_INT */
	uint8_t type;	  /* enum span_attr_type */
	bool local;	  /* str points into the struct span_attrs that holds it */
};

struct span_attrs {
	unsigned n;
	unsigned dropped; /* past SPAN_ATTRS_MAX: none expected, kept visible for tests */
	struct span_attr attr[SPAN_ATTRS_MAX];
	char error_type[8];
	char protocol_version[8];
	char dns_type[16]; /* dns.question.type of a DNS span: "AAAA", "TYPE65" */
	/* url.full of a client span: scheme "://" host ":" port path "?" query */
	char url_full[sizeof(((struct mt_span *)0)->scheme) + 3 + 2 + MT_HOST_MAX + 6 +
		      2 * MT_TARGET_MAX + 1];
};

/*
 * Fills @out with the attributes of @s. String values point into @s, into
 * @out (marked local), or at constants. @known lists the methods kept as
 * http.request.method (@n_known 0: RFC 9110 + PATCH, the semconv default);
 * any other becomes "_OTHER" with http.request.method_original.
 */
void span_attrs_build(struct span_attrs *out, const struct mt_span *s,
		      const char (*known)[MT_METHOD_MAX], unsigned n_known);

/* Whether @method is in @known (or the default list when @n_known is 0). */
bool span_attrs_method_known(const char *method, const char (*known)[MT_METHOD_MAX],
			     unsigned n_known);

/* Copies @src into @dst, making sure every string of the copy ends within its array. */
void span_attrs_copy_span(struct mt_span *dst, const struct mt_span *src);

/* The hex form of an id: @n bytes into 2 * @n lowercase digits and a NUL. */
void span_attrs_hex(char *dst, const uint8_t *id, size_t n);

#endif /* MESHTRACE_SPAN_ATTRS_H */
