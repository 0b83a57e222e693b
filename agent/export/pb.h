/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The protobuf wire format as the OTLP encoders of agent/export/ write it,
 * by hand: otlp_encode.c (spans) and metrics_otlp.c (metrics). Shared by
 * agent/export/ only. Wire format: https://protobuf.dev/programming-guides/encoding/
 *
 * Fields go in number order with minimal varints and proto3 defaults left
 * out, as protobuf-c writes them (the tests decode with protobuf-c). Every
 * tag used here is one byte: field numbers below 16. Strings that are not
 * valid UTF-8 (protobuf requires it; a collector rejects the whole request
 * otherwise) are repaired to U+FFFD as they are written.
 */
#ifndef MESHTRACE_PB_H
#define MESHTRACE_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/common/utf8.h"

/* Bytes kept free past what a write needs: utf8_sanitize() ends its output with a NUL. */
#define PB_SLACK 16

/* Wire types, the low 3 bits of a tag. */
enum pb_wire_type {
	PB_VARINT = 0,
	PB_FIXED64 = 1,
	PB_LEN = 2, /* length-delimited: strings, bytes, messages, packed repeated */
};

#define PB_TAG(field, type) ((uint8_t)((field) << 3 | (type)))

/* Tags of the common messages (opentelemetry/proto/common/v1/common.proto). */
enum {
	PB_TAG_KV_KEY = PB_TAG(1, PB_LEN),		/* KeyValue.key */
	PB_TAG_KV_VALUE = PB_TAG(2, PB_LEN),		/* KeyValue.value */
	PB_TAG_ANY_STRING_VALUE = PB_TAG(1, PB_LEN),	/* AnyValue.string_value */
	PB_TAG_ANY_INT_VALUE = PB_TAG(3, PB_VARINT),	/* AnyValue.int_value */
	PB_TAG_SCOPE_NAME = PB_TAG(1, PB_LEN),		/* InstrumentationScope.name */
	PB_TAG_SCOPE_VERSION = PB_TAG(2, PB_LEN),	/* InstrumentationScope.version */
	PB_TAG_RESOURCE_ATTRIBUTES = PB_TAG(1, PB_LEN), /* Resource.attributes */
};

/* A string to write: its bytes, and its length once repaired if it is not UTF-8. */
struct pb_str {
	const char *s;
	size_t len;	 /* bytes at s */
	size_t wire_len; /* bytes on the wire: len, or the repaired length */
	bool repair;
};

/* One attribute, a KeyValue with a string or int AnyValue, measured. */
struct pb_attr {
	struct pb_str key;
	struct pb_str val; /* is_str */
	int64_t num;	   /* !is_str */
	bool is_str;
	size_t any_len; /* the AnyValue's body */
	size_t kv_len;	/* the KeyValue's body */
};

static inline size_t pb_varint_size(uint64_t v)
{
	unsigned top = 63 - (unsigned)__builtin_clzll(v | 1); /* index of the top bit */

	/* 7 bits per byte: 1 + top / 7, without a division */
	return (top * 9 + 73) / 64;
}

/* Bytes of a length-delimited field (tag + length + body) of @body bytes; tags are 1 byte. */
static inline size_t pb_len_field_size(size_t body)
{
	return 1 + pb_varint_size(body) + body;
}

/* A proto3 string field is left out when empty. */
static inline size_t pb_str_field_size(size_t len)
{
	return len ? pb_len_field_size(len) : 0;
}

static inline uint8_t *pb_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint8_t *pb_put_fixed64(uint8_t *p, uint64_t v)
{
	unsigned i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static inline uint8_t *pb_put_bytes(uint8_t *p, uint8_t tag, const void *b, size_t len)
{
	*p++ = tag;
	p = pb_put_varint(p, len);
	memcpy(p, b, len);
	return p + len;
}

/* Measures @s (@len bytes) for the wire: repaired when it is not UTF-8. */
static inline void pb_str_set(struct pb_str *w, const char *s, size_t len)
{
	w->s = s;
	w->len = len;
	w->repair = !utf8_valid(s, len);
	w->wire_len = w->repair ? utf8_repaired_len(s, len) : len;
}

/* The string's bytes. The byte after them must be in the buffer (PB_SLACK). */
static inline uint8_t *pb_put_str_body(uint8_t *p, const struct pb_str *w)
{
	uint8_t after;

	if (!w->repair) {
		memcpy(p, w->s, w->len);
		return p + w->len;
	}
	after = p[w->wire_len]; /* utf8_sanitize() ends with a NUL there */
	utf8_sanitize((char *)p, w->wire_len + 1, w->s, w->len);
	p[w->wire_len] = after;
	return p + w->wire_len;
}

static inline uint8_t *pb_put_str(uint8_t *p, uint8_t tag, const struct pb_str *w)
{
	*p++ = tag;
	p = pb_put_varint(p, w->wire_len);
	return pb_put_str_body(p, w);
}

/* A proto3 string field: nothing when empty. */
static inline uint8_t *pb_put_opt_str(uint8_t *p, uint8_t tag, const struct pb_str *w)
{
	return w->wire_len ? pb_put_str(p, tag, w) : p;
}

/* Sizes @wa, its key and value set. */
static inline void pb_attr_measure(struct pb_attr *wa)
{
	if (wa->is_str)
		wa->any_len = pb_len_field_size(wa->val.wire_len); /* a oneof: sent even when "" */
	else
		wa->any_len = 1 + pb_varint_size((uint64_t)wa->num);
	wa->kv_len = pb_str_field_size(wa->key.wire_len) + pb_len_field_size(wa->any_len);
}

/* Field @tag holding the KeyValue @wa measured by pb_attr_measure(). */
static inline uint8_t *pb_put_attr(uint8_t *p, uint8_t tag, const struct pb_attr *wa)
{
	*p++ = tag;
	p = pb_put_varint(p, wa->kv_len);
	p = pb_put_opt_str(p, PB_TAG_KV_KEY, &wa->key);
	*p++ = PB_TAG_KV_VALUE;
	p = pb_put_varint(p, wa->any_len);
	if (wa->is_str)
		return pb_put_str(p, PB_TAG_ANY_STRING_VALUE, &wa->val);
	*p++ = PB_TAG_ANY_INT_VALUE;
	return pb_put_varint(p, (uint64_t)wa->num);
}

#endif /* MESHTRACE_PB_H */
