// SPDX-License-Identifier: Apache-2.0
/*
 * A process that lives a few milliseconds: one HTTP/1.1 GET to 127.0.0.1:PORT,
 * then, after DELAY_US microseconds, exit. Run by test_short_lived.py with
 * OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES set, as a CLI or a cron job is.
 * Prints how long it ran, from main() to exit, in microseconds.
 * Usage: peer_short_client PORT DELAY_US
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static const char req[] =
		"GET /short HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timespec t0, t1;
	char buf[4096];
	long port, delay;
	ssize_t n;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (argc != 3)
		return 2;
	port = strtol(argv[1], NULL, 10);
	delay = strtol(argv[2], NULL, 10);
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return 1;
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
		return 1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	if (delay > 0)
		usleep((useconds_t)delay);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%ld\n",
	       (long)((t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000));
	return 0;
}
