/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which finished spans are exported: the OpenTelemetry SDK's samplers, chosen by
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG as the SDK environment-variable
 * spec names them. The service graph, the RED metrics and the page's trace store
 * see every span; the decision only gates the exporters. Pure: no I/O, no state.
 *
 * traceidratio is the spec's TraceIdRatioBased: deterministic on the trace id
 * (its 56 least-significant bits as randomness R, kept when R >= (1 - ratio) * 2^56),
 * so every span of a trace on this node, and every node using the same rule, decides
 * alike. parentbased_* follow the sampled flag of a remote parent (an adopted W3C
 * traceparent) and use the root sampler for traces that start on this node.
 */
#ifndef MESHTRACE_SAMPLER_H
#define MESHTRACE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_SAMPLER_ACCEPTED                                                                    \
	"always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, " \
	"parentbased_traceidratio"

enum mt_sampler_root {
	MT_SAMPLE_ALWAYS_ON = 0,
	MT_SAMPLE_ALWAYS_OFF,
	MT_SAMPLE_RATIO,
};

struct mt_sampler {
	uint8_t root; /* enum mt_sampler_root: the decision for a trace without remote parent */
	bool parent_based;  /* a remote parent's sampled flag decides its trace */
	double ratio;	    /* MT_SAMPLE_RATIO: the probability, [0, 1] */
	uint64_t threshold; /* MT_SAMPLE_RATIO: kept when the id's 56 low bits are >= this */
};

/* The parent a span's trace came from, as far as sampling cares. */
enum mt_sample_parent {
	MT_PARENT_NONE = 0,	     /* a trace started on this node */
	MT_PARENT_REMOTE_SAMPLED,    /* an adopted traceparent with the sampled flag */
	MT_PARENT_REMOTE_NOT_SAMPLED /* an adopted traceparent without it */
};

/*
 * Fills @s from the two variables' values (NULL or "" is unset: always_on, ratio
 * 1.0). Names are case-insensitive, surrounding blanks ignored. Returns 0, or -1
 * with one line for the user in @err: an unsupported sampler, or an ARG that is
 * not a number in [0, 1] for the ratio samplers (ignored by the others).
 */
int mt_sampler_parse(struct mt_sampler *s, const char *sampler, const char *arg, char *err,
		     size_t err_len);

/* The same from the environment. */
int mt_sampler_from_env(struct mt_sampler *s, char *err, size_t err_len);

/* True: export the span of @trace_id whose trace came from @parent. */
bool mt_sampler_sample(const struct mt_sampler *s, const uint8_t trace_id[16],
		       enum mt_sample_parent parent);

/* The sampler's name as OTEL_TRACES_SAMPLER spells it. */
const char *mt_sampler_name(const struct mt_sampler *s);

#endif /* MESHTRACE_SAMPLER_H */
