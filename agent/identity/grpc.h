/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gRPC's message framing over HTTP/2 DATA frames, the part the CRI client
 * needs: a 1-byte compressed flag and a 4-byte big-endian length before each
 * message (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md,
 * "Length-Prefixed-Message"). Pure: no I/O.
 */
#ifndef MESHTRACE_GRPC_H
#define MESHTRACE_GRPC_H

#include <stddef.h>
#include <stdint.h>

#define GRPC_PREFIX_LEN 5

/* Writes the prefix of an uncompressed message of @len bytes into @out. */
void grpc_frame_prefix(uint8_t out[GRPC_PREFIX_LEN], uint32_t len);

/*
 * The single message of a unary response body @buf (@len bytes). Returns 0
 * with *@msg, *@msglen set; -EAGAIN when @buf holds less than a whole message
 * (the stream ended early); -EPROTO when the message is compressed (we never
 * ask for compression) or followed by more bytes than it declares.
 */
int grpc_unframe(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msglen);

/*
 * The grpc-status trailer's value @v (@n bytes) as a number; -1 when it is
 * not a decimal number in [0, 16].
 */
int grpc_status_parse(const char *v, size_t n);

#endif /* MESHTRACE_GRPC_H */
