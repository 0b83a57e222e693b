// SPDX-License-Identifier: Apache-2.0
/*
 * A MySQL/MariaDB client for tests/integration/test_databases.py, on the real
 * client library (MariaDB Connector/C, built by the test with mariadb_config):
 * text queries (COM_QUERY) and prepared statements (COM_STMT_PREPARE, EXECUTE,
 * CLOSE). Reads one command per line on stdin:
 *   Q <sql>            run a text query, fetch every row
 *   P <sql>            prepare; prints the statement number
 *   E <n> [int]...     execute prepared statement n with integer parameters
 *   C <n>              close prepared statement n
 * Prints "ready" once connected, then "ok", "err <errno>", "stmt <n>" or
 * "rows <n>" per result.
 * Usage: peer_mysql HOST PORT USER PASSWORD DB
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_MAX  16
#define PARAM_MAX 8

static void drain(MYSQL *m)
{
	do {
		MYSQL_RES *res = mysql_store_result(m);
		if (res) {
			printf("rows %llu\n", (unsigned long long)mysql_num_rows(res));
			mysql_free_result(res);
		} else if (mysql_field_count(m) == 0) {
			printf("ok\n");
		}
	} while (mysql_next_result(m) == 0);
}

int main(int argc, char **argv)
{
	MYSQL_STMT *stmts[STMT_MAX] = {0};
	int nstmts = 0;
	char line[4096];
	MYSQL *m;

	if (argc != 6) {
		fprintf(stderr, "usage: peer_mysql HOST PORT USER PASSWORD DB\n");
		return 2;
	}
	m = mysql_init(NULL);
	if (!mysql_real_connect(m, argv[1], argv[3], argv[4], argv[5],
				(unsigned)strtoul(argv[2], NULL, 10), NULL,
				CLIENT_MULTI_STATEMENTS)) {
		fprintf(stderr, "connect: %s\n", mysql_error(m));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'Q') {
			if (mysql_query(m, line + 2))
				printf("err %u\n", mysql_errno(m));
			else
				drain(m);
		} else if (line[0] == 'P') {
			MYSQL_STMT *st = mysql_stmt_init(m);
			if (nstmts >= STMT_MAX ||
			    mysql_stmt_prepare(st, line + 2, strlen(line + 2))) {
				printf("err %u\n", mysql_stmt_errno(st));
				mysql_stmt_close(st);
			} else {
				stmts[nstmts] = st;
				printf("stmt %d\n", nstmts++);
			}
		} else if (line[0] == 'E') {
			MYSQL_BIND bind[PARAM_MAX];
			long long vals[PARAM_MAX];
			char *p = line + 2, *end;
			int n = (int)strtol(p, &end, 10), np = 0;
			MYSQL_STMT *st = n >= 0 && n < nstmts ? stmts[n] : NULL;

			memset(bind, 0, sizeof(bind));
			for (p = end; np < PARAM_MAX; np++) {
				vals[np] = strtoll(p, &end, 10);
				if (end == p)
					break;
				p = end;
				bind[np].buffer_type = MYSQL_TYPE_LONGLONG;
				bind[np].buffer = &vals[np];
			}
			if (!st || (np && mysql_stmt_bind_param(st, bind)) ||
			    mysql_stmt_execute(st)) {
				printf("err %u\n", st ? mysql_stmt_errno(st) : 0);
			} else if (mysql_stmt_field_count(st) > 0) {
				unsigned long long rows = 0;
				mysql_stmt_store_result(st);
				while (mysql_stmt_fetch(st) == 0)
					rows++;
				mysql_stmt_free_result(st);
				printf("rows %llu\n", rows);
			} else {
				printf("ok\n");
			}
		} else if (line[0] == 'C') {
			int n = (int)strtol(line + 2, NULL, 10);
			if (n >= 0 && n < nstmts && stmts[n]) {
				mysql_stmt_close(stmts[n]);
				stmts[n] = NULL;
			}
			printf("ok\n");
		}
		fflush(stdout);
	}
	mysql_close(m);
	return 0;
}
