// SPDX-License-Identifier: Apache-2.0
/*
 * bench/writeloop: the cost of the agent to a process it does not trace.
 * A tight loop of write(2) calls of SIZE bytes to a regular file (the file
 * position goes back to 0 every 1024 writes, so the file stays small and in
 * the page cache; those lseek(2) calls are inside the timing). Prints one
 * JSON object: nanoseconds per write, median and minimum of REPS repetitions.
 *
 * Usage: writeloop -f FILE [-n CALLS_PER_REP] [-s SIZE] [-r REPS]
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"

#define WL_REPS_MAX	64
#define WL_REWIND_EVERY 1024

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Returns ns per write over @calls writes, or a negative number on error. */
static double one_rep(int fd, const char *buf, size_t size, uint64_t calls)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < calls; i++) {
		if (write(fd, buf, size) != (ssize_t)size)
			return -1;
		if (i % WL_REWIND_EVERY == WL_REWIND_EVERY - 1 && lseek(fd, 0, SEEK_SET) != 0)
			return -1;
	}
	return (double)(bench_now_ns() - t0) / (double)calls;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	uint64_t calls = 200000, size = 64, reps = 5;
	double ns[WL_REPS_MAX];
	char buf[4096];
	int opt, fd;

	while ((opt = getopt(argc, argv, "f:n:s:r:")) != -1) {
		switch (opt) {
		case 'f':
			path = optarg;
			break;
		case 'n':
			if (bench_parse_u64(optarg, 1000, 1000000000, &calls))
				goto out_usage;
			break;
		case 's':
			if (bench_parse_u64(optarg, 1, sizeof(buf), &size))
				goto out_usage;
			break;
		case 'r':
			if (bench_parse_u64(optarg, 1, WL_REPS_MAX, &reps))
				goto out_usage;
			break;
		default:
			goto out_usage;
		}
	}
	if (!path)
		goto out_usage;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	memset(buf, 'w', sizeof(buf));
	if (one_rep(fd, buf, size, calls / 4) < 0) /* warm-up: page cache, caches */
		goto out_write;
	for (uint64_t r = 0; r < reps; r++) {
		ns[r] = one_rep(fd, buf, size, calls);
		if (ns[r] < 0)
			goto out_write;
	}
	close(fd);
	qsort(ns, reps, sizeof(ns[0]), cmp_double);
	printf("{\"size\":%" PRIu64 ",\"calls\":%" PRIu64 ",\"reps\":%" PRIu64
	       ",\"ns_per_call\":%.2f,\"ns_per_call_min\":%.2f}\n",
	       size, calls, reps, ns[reps / 2], ns[0]);
	return 0;

out_write:
	perror("write");
	close(fd);
	return 1;
out_usage:
	fprintf(stderr, "usage: writeloop -f FILE [-n CALLS_PER_REP] [-s SIZE] [-r REPS]\n");
	return 2;
}
