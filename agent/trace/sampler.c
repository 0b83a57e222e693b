// SPDX-License-Identifier: Apache-2.0
#include "agent/trace/sampler.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TWO_56 72057594037927936.0 /* 2^56 */

static const struct {
	const char *name;
	uint8_t root;
	bool parent_based;
} samplers[] = {
	{"always_on", MT_SAMPLE_ALWAYS_ON, false},
	{"always_off", MT_SAMPLE_ALWAYS_OFF, false},
	{"traceidratio", MT_SAMPLE_RATIO, false},
	{"parentbased_always_on", MT_SAMPLE_ALWAYS_ON, true},
	{"parentbased_always_off", MT_SAMPLE_ALWAYS_OFF, true},
	{"parentbased_traceidratio", MT_SAMPLE_RATIO, true},
};

/* @v without surrounding blanks into @out; false when it does not fit. */
static bool trimmed(const char *v, char *out, size_t len)
{
	size_t n;

	while (*v && isspace((unsigned char)*v))
		v++;
	n = strlen(v);
	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	if (n >= len)
		return false;
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

/* A plain decimal number in [0, 1]: no hex, inf or nan that strtod would take. */
static bool parse_ratio(const char *v, double *out)
{
	char *end;
	double d;

	for (const char *p = v; *p; p++)
		if (!isdigit((unsigned char)*p) && !strchr(".eE+-", *p))
			return false;
	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !(d >= 0.0 && d <= 1.0))
		return false;
	*out = d;
	return true;
}

int mt_sampler_parse(struct mt_sampler *s, const char *sampler, const char *arg, char *err,
		     size_t err_len)
{
	char name[64], num[64];
	size_t i;

	memset(s, 0, sizeof(*s));
	s->root = MT_SAMPLE_ALWAYS_ON;
	s->ratio = 1.0;
	if (!sampler)
		return 0;
	if (!trimmed(sampler, name, sizeof(name)))
		goto bad_sampler;
	if (!name[0])
		return 0; /* empty is unset: the default */
	for (i = 0; i < sizeof(samplers) / sizeof(samplers[0]); i++)
		if (strcasecmp(name, samplers[i].name) == 0)
			break;
	if (i == sizeof(samplers) / sizeof(samplers[0]))
		goto bad_sampler;
	s->root = samplers[i].root;
	s->parent_based = samplers[i].parent_based;
	if (s->root != MT_SAMPLE_RATIO)
		return 0; /* the spec gives the others no argument: ignored */
	if (arg && *arg) {
		if (!trimmed(arg, num, sizeof(num)) || !parse_ratio(num, &s->ratio)) {
			snprintf(
				err, err_len,
				"OTEL_TRACES_SAMPLER_ARG='%.64s': give the sampling ratio of %s, a "
				"number from 0 to 1",
				arg, samplers[i].name);
			return -1;
		}
	}
	/* The spec's threshold: (1 - ratio) * 2^56, kept when the id's randomness is >= it. */
	s->threshold = (uint64_t)llround((1.0 - s->ratio) * TWO_56);
	return 0;

bad_sampler:
	snprintf(err, err_len, "OTEL_TRACES_SAMPLER='%.64s': not supported; give one of %s",
		 sampler, MT_SAMPLER_ACCEPTED);
	return -1;
}

int mt_sampler_from_env(struct mt_sampler *s, char *err, size_t err_len)
{
	return mt_sampler_parse(s, getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG"),
				err, err_len);
}

bool mt_sampler_sample(const struct mt_sampler *s, const uint8_t trace_id[16],
		       enum mt_sample_parent parent)
{
	uint64_t r = 0;

	if (s->parent_based && parent != MT_PARENT_NONE)
		return parent == MT_PARENT_REMOTE_SAMPLED;
	switch (s->root) {
	case MT_SAMPLE_ALWAYS_ON:
		return true;
	case MT_SAMPLE_ALWAYS_OFF:
		return false;
	default:
		/* The randomness: the trace id's 7 last bytes, big-endian (W3C Trace Context 2). */
		for (int i = 9; i < 16; i++)
			r = (r << 8) | trace_id[i];
		return r >= s->threshold;
	}
}

const char *mt_sampler_name(const struct mt_sampler *s)
{
	for (size_t i = 0; i < sizeof(samplers) / sizeof(samplers[0]); i++)
		if (samplers[i].root == s->root && samplers[i].parent_based == s->parent_based)
			return samplers[i].name;
	return "always_on";
}
