/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS record headers (RFC 8446 5.1, RFC 5246 6.2.1): tells a connection
 * that carries TLS from its first bytes, so that its ciphertext is not fed
 * to the plaintext parsers and the agent can look for the library that
 * holds its plaintext. Pure: bytes in, a verdict out.
 */
#ifndef MESHTRACE_TLSREC_H
#define MESHTRACE_TLSREC_H

#include <stddef.h>
#include <stdint.h>

enum tlsrec_kind {
	TLSREC_NO = 0,		 /* not a TLS record header */
	TLSREC_CLIENT_HELLO = 1, /* a handshake record opening with a ClientHello */
	TLSREC_SERVER_HELLO = 2, /* a handshake record opening with a ServerHello */
	TLSREC_RECORD = 3,	 /* another record (a connection seen mid-life) */
};

/* What the @n bytes at @p start with; the first five bytes decide, the sixth refines. */
enum tlsrec_kind tlsrec_classify(const uint8_t *p, size_t n);

#endif /* MESHTRACE_TLSREC_H */
