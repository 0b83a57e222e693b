// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer harness for the command line (agent/cli.c, cli_parse()) and the
 * log's escaping of the values it echoes (agent/common/log.c).
 *
 * Input: NUL-separated arguments, after an argv[0] of our own (at most
 * ARGS_MAX). Whatever they are, cli_parse() returns an action or -EINVAL with
 * one printable line, and the options it fills are within their bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli.h"
#include "agent/common/log.h"

#define ARGS_MAX  64
#define INPUT_MAX 65536

static char input[INPUT_MAX + 1];

/* The line holds no control character: nothing in it can end it or drive a terminal. */
static void check_one_line(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			abort();
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			abort();
	}
}

static void check_opts(const struct agent_opts *o)
{
	if (o->capture.capture_bytes > MT_CAPTURE_MAX)
		abort();
	if (o->max_conns < CLI_MAX_CONNS_MIN || o->max_conns > CLI_MAX_CONNS_MAX)
		abort();
	if ((unsigned)o->priority >= CPU_PRIORITY__MAX || o->stats_interval_s > 86400)
		abort();
	if (o->record_path && o->replay_path)
		abort();
	if ((o->record_path && !o->record_path[0]) || (o->replay_path && !o->replay_path[0]) ||
	    (o->jsonl_path && !o->jsonl_path[0]))
		abort();
	if (o->log_level != -1 && o->log_level != MT_LOG_DEBUG && o->log_level != MT_LOG_ERROR)
		abort();
}

static void check_escape(const char *s)
{
	char out[MT_LOG_VALUE_MAX + 32];
	char line[256];

	mt_log_value(out, s);
	if (strlen(out) >= sizeof(out))
		abort();
	check_one_line(out);
	mt_log_escape(line, sizeof(line), s);
	check_one_line(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[ARGS_MAX + 2];
	char prog[] = "meshtrace";
	struct agent_opts o;
	char err[512];
	int argc = 1, ret;
	size_t i = 0;

	if (size > INPUT_MAX)
		size = INPUT_MAX;
	memcpy(input, data, size);
	input[size] = '\0';
	argv[0] = prog;
	while (i <= size && argc <= ARGS_MAX && size) {
		argv[argc++] = input + i;
		i += strlen(input + i) + 1;
	}
	argv[argc] = NULL;

	ret = cli_parse(argc, argv, &o, err, sizeof(err));
	if (ret == -EINVAL) {
		if (!err[0] || strlen(err) >= sizeof(err))
			abort();
		check_one_line(err);
	} else if (ret == CLI_RUN) {
		check_opts(&o);
	} else if (ret != CLI_HELP && ret != CLI_VERSION) {
		abort();
	}
	for (int k = 1; k < argc; k++)
		check_escape(argv[k]);
	return 0;
}
