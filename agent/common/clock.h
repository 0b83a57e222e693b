/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's clocks. Kernel timestamps are CLOCK_MONOTONIC, so every timer
 * and age in user space is too; unix time is monotonic + mt_clock_offset_ns().
 */
#ifndef MESHTRACE_CLOCK_H
#define MESHTRACE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds of CLOCK_MONOTONIC (the kernel's bpf_ktime_get_ns()). */
static inline uint64_t mt_now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Milliseconds of CLOCK_MONOTONIC. */
static inline uint64_t mt_now_mono_ms(void)
{
	return mt_now_mono_ns() / 1000000;
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, read as tightly as two calls allow. */
static inline int64_t mt_clock_offset_ns(void)
{
	struct timespec m1, r, m2;
	int64_t mono;

	clock_gettime(CLOCK_MONOTONIC, &m1);
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m2);
	mono = ((int64_t)m1.tv_sec * 1000000000 + m1.tv_nsec + (int64_t)m2.tv_sec * 1000000000 +
		m2.tv_nsec) /
	       2;
	return (int64_t)r.tv_sec * 1000000000 + r.tv_nsec - mono;
}

#endif /* MESHTRACE_CLOCK_H */
