// SPDX-License-Identifier: Apache-2.0
/*
 * The protocol parsers the connection stage tries, cheapest rejection first.
 * A parser is added here and nowhere else.
 */
#include <stddef.h>

#include "agent/protocols/l7.h"
#include "agent/protocols/dnstcp.h"
#include "agent/protocols/http1.h"
#include "agent/protocols/http2.h"
#include "agent/protocols/memcached.h"
#include "agent/protocols/mysql.h"
#include "agent/protocols/postgres.h"
#include "agent/protocols/redis.h"

const struct l7_parser *const l7_parsers[] = {
	&http1_parser,
	&http2_parser,
	&postgres_parser,  /* binary: a startup code or a typed message, from the first 8 bytes */
	&mysql_parser,	   /* binary: a greeting (server first) or a COM_QUERY */
	&redis_parser,	   /* '*' or an upper-case inline command */
	&memcached_parser, /* a lower-case command word and its line */
	&dnstcp_parser,	   /* a length, then a standard query header: 14 bytes checked */
	NULL,
};

const struct l7_parser *l7_parser_for(uint8_t protocol)
{
	for (size_t i = 0; l7_parsers[i]; i++)
		if (l7_parsers[i]->protocol == protocol)
			return l7_parsers[i];
	return NULL;
}

const char *l7_protocol_name(uint8_t protocol)
{
	static const char *const names[MT_PROTO__MAX] = {
		[MT_PROTO_UNKNOWN] = "tcp", [MT_PROTO_HTTP1] = "http",
		[MT_PROTO_HTTP2] = "http2", [MT_PROTO_GRPC] = "grpc",
		[MT_PROTO_REDIS] = "redis", [MT_PROTO_POSTGRES] = "postgresql",
		[MT_PROTO_MYSQL] = "mysql", [MT_PROTO_MEMCACHED] = "memcached",
		[MT_PROTO_DNS] = "dns",
	};

	if (protocol >= MT_PROTO__MAX || !names[protocol])
		return "tcp";
	return names[protocol];
}
