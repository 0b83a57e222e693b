// SPDX-License-Identifier: Apache-2.0
/*
 * An exec storm: N processes, each exec'ing PROGRAM with no argument and
 * exiting at once (no socket: none makes a span), at most PARALLEL alive at a
 * time. Run by test_short_lived.py to check that the identities the agent
 * records at every exec stay bounded and their evictions are counted.
 * Prints how many were started. Usage: peer_exec_storm N PARALLEL PROGRAM
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
	long n, parallel, started = 0, alive = 0;
	char *child_argv[2];

	if (argc != 4)
		return 2;
	n = strtol(argv[1], NULL, 10);
	parallel = strtol(argv[2], NULL, 10);
	child_argv[0] = argv[3];
	child_argv[1] = NULL;
	while (started < n || alive > 0) {
		pid_t pid;
		int status;

		if (started < n && alive < parallel) {
			if (posix_spawn(&pid, argv[3], NULL, NULL, child_argv, environ) != 0)
				return 1;
			started++;
			alive++;
			continue;
		}
		if (wait(&status) > 0)
			alive--;
		else
			return 1;
	}
	printf("%ld\n", started);
	return 0;
}
