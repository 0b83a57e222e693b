// SPDX-License-Identifier: Apache-2.0
/*
 * Connection churn for test_faults.py: PROCS processes, each opening CONNS
 * connections to 127.0.0.1:PORT one after the other, sending REQS HTTP/1.1
 * GETs of PATH on each (the last with "Connection: close"), reading every
 * answer to its end, then closing. A request counts when its answer (any
 * status: the tests ask for paths nginx answers 404, to tell phases apart)
 * arrived whole, head and Content-Length body.
 * Prints "requests R connections C failed F seconds S" (totals of all processes).
 * Usage: peer_churn PORT PROCS CONNS REQS PATH
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct totals {
	long requests, connections, failed;
};

/* Reads one HTTP/1.1 answer with a Content-Length body; 0 when it came whole. */
static int read_answer(int fd, char *buf, size_t cap)
{
	size_t have = 0, need = 0;
	char *end = NULL, *cl;
	ssize_t n;

	for (;;) {
		if (end && have >= need)
			return 0;
		if (have == cap - 1)
			return -1;
		n = read(fd, buf + have, cap - 1 - have);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if (end)
			continue;
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(buf, "\r\nContent-Length:");
		if (strncmp(buf, "HTTP/1.1 ", 9) != 0 || !cl)
			return -1;
		need = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
		if (need > cap - 1)
			return -1;
	}
}

static void one_conn(const struct sockaddr_in *sa, long reqs, const char *path, struct totals *t)
{
	char req[512], buf[65536];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	long i;

	t->connections++;
	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		t->failed += reqs;
		if (fd >= 0)
			close(fd);
		return;
	}
	for (i = 0; i < reqs; i++) {
		int len = snprintf(req, sizeof(req),
				   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: %s\r\n\r\n",
				   path, i + 1 == reqs ? "close" : "keep-alive");

		if (write(fd, req, (size_t)len) != len || read_answer(fd, buf, sizeof(buf))) {
			t->failed += reqs - i;
			break;
		}
		t->requests++;
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct totals *all, sum = {0, 0, 0};
	struct timespec t0, t1;
	long procs, conns, reqs, p, c;

	if (argc != 6)
		return 2;
	sa.sin_port = htons((unsigned short)strtol(argv[1], NULL, 10));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	procs = strtol(argv[2], NULL, 10);
	conns = strtol(argv[3], NULL, 10);
	reqs = strtol(argv[4], NULL, 10);
	if (procs < 1 || procs > 64 || conns < 1 || reqs < 1)
		return 2;
	all = mmap(NULL, sizeof(*all) * (size_t)procs, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (all == MAP_FAILED)
		return 1;
	memset(all, 0, sizeof(*all) * (size_t)procs);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (p = 0; p < procs; p++) {
		if (fork() == 0) {
			for (c = 0; c < conns; c++)
				one_conn(&sa, reqs, argv[5], &all[p]);
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (p = 0; p < procs; p++) {
		sum.requests += all[p].requests;
		sum.connections += all[p].connections;
		sum.failed += all[p].failed;
	}
	printf("requests %ld connections %ld failed %ld seconds %.3f\n", sum.requests,
	       sum.connections, sum.failed,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
