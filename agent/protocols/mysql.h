/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MySQL / MariaDB client/server protocol parser: both directions of one
 * connection, pure and incremental.
 * Spec: https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html
 *       https://mariadb.com/kb/en/clientserver-protocol/
 *
 * The server speaks first (its greeting is what detection recognises). From
 * the handshake the parser learns the database asked for (db_namespace), and
 * the capabilities that shape result sets: CLIENT_DEPRECATE_EOF (no EOF packet
 * after column definitions; an OK packet ends the rows) and MariaDB's
 * MARIADB_CLIENT_CACHE_METADATA (column definitions may be left out).
 *
 * Exchanges: one per command that gets a response. COM_QUERY carries the
 * query's first keyword and its sanitised text; COM_STMT_PREPARE is named
 * "PREPARE" with the statement's text; COM_STMT_EXECUTE carries the text of
 * the statement it executes (statement id -> text, from the PREPARE's
 * response); other commands are named after themselves ("PING", "INIT_DB").
 * OK, ERR, and result sets of any number of packets (several, with
 * SERVER_MORE_RESULTS_EXISTS) end a response; ERR sets MT_X_ERROR and its
 * error number as status_text. COM_INIT_DB and "USE db" change db_namespace
 * when they succeed. A connection that turns to TLS or to the compressed
 * protocol is no longer parsed.
 *
 * Packets are framed by their length, so long rows and long queries are
 * skipped by count across uncaptured bytes.
 *
 * No I/O, no globals, no allocation: struct mysql_conn is embedded by the
 * caller and sized at compile time (about 6 KiB).
 */
#ifndef MESHTRACE_MYSQL_H
#define MESHTRACE_MYSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/protocols/l7.h"

/* Commands in flight (clients rarely pipeline); more are dropped and counted. */
#define MYSQL_PIPELINE_MAX 8
/* Prepared statements remembered (least recently prepared forgotten first). */
#define MYSQL_STMT_MAX 8
/* Bytes kept of a packet: a query text to sanitise, a handshake. */
#define MYSQL_KEEP_MAX 384
#define MYSQL_OP_MAX   32

struct mysql_dir {
	uint8_t state;
	uint8_t hdr_n;
	uint8_t seq; /* sequence id of the packet being read */
	uint8_t bits;
	uint8_t hdr[4];
	uint32_t len;  /* payload bytes in all */
	uint32_t left; /* payload bytes still to read */
	uint16_t keep_n;
	uint16_t _pad;
	uint32_t start_seq; /* TCP sequence number of the packet's first byte */
	uint64_t start_ns;
	uint64_t end_ns;
	char keep[MYSQL_KEEP_MAX];
};

/* A command waiting for its response. */
struct mysql_req {
	uint64_t start_ns;
	uint64_t end_ns;
	uint64_t resp_start_ns;
	uint32_t req_seq; /* TCP sequence number of its first byte */
	uint16_t skip_before;
	uint8_t cmd;
	uint8_t sets_ns; /* success changes db_namespace to mysql_conn.next_ns */
	char op[MYSQL_OP_MAX];
	char query[MT_QUERY_MAX];
};

struct mysql_stmt {
	uint32_t id;
	uint32_t age;
	uint8_t used;
	uint8_t _pad[7];
	char op[MYSQL_OP_MAX];
	char query[MT_QUERY_MAX];
};

struct mysql_conn {
	struct mysql_dir req;  /* client -> server */
	struct mysql_dir resp; /* server -> client */
	struct l7_lost lost;
	uint32_t prepares;
	uint32_t _pad0;
	uint64_t server_caps; /* capabilities, MariaDB's extended ones in the upper half */
	uint64_t client_caps;
	uint8_t phase;
	uint8_t deprecate_eof; /* 0 unknown, 1 no, 2 yes */
	uint8_t cache_metadata;
	uint8_t compressed; /* CLIENT_COMPRESS: not parsed after the handshake */
	uint8_t rs;	    /* where in the head command's response the server is */
	uint8_t resp_seq;   /* sequence id of the server's next packet */
	uint8_t head;
	uint8_t count;
	uint8_t _pad[2];
	uint16_t skip_tail;
	uint16_t _pad2;
	uint32_t req_counter; /* requests, when the capture gives no TCP sequence numbers */
	uint32_t _pad3;
	uint32_t cols_left;
	uint32_t params_left;
	uint32_t prep_cols;
	char db_namespace[MT_NAMESPACE_MAX];
	char next_ns[MT_NAMESPACE_MAX];
	struct mysql_req pending[MYSQL_PIPELINE_MAX];
	struct mysql_stmt stmts[MYSQL_STMT_MAX];
};

/* MySQL and MariaDB (l7.h's contract). */
L7_PARSER_DECLARE(mysql_parser, struct mysql_conn, mysql);

/*
 * Classifies the first bytes of a stream: L7_FROM_SERVER for a server
 * greeting (protocol 10), L7_FROM_CLIENT for a COM_QUERY (a connection first
 * seen after its handshake), else L7_NO.
 */
enum l7_verdict mysql_detect(const uint8_t *buf, size_t n);

#endif /* MESHTRACE_MYSQL_H */
