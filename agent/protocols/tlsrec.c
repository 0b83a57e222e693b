// SPDX-License-Identifier: Apache-2.0
/*
 * TLS record layer header: https://www.rfc-editor.org/rfc/rfc8446#section-5.1
 *   content type (1) | legacy version 0x03 0x0x (2) | length (2, at most 2^14 + 2048)
 * Handshake type (the sixth byte of a handshake record): 1 ClientHello, 2 ServerHello.
 */
#include "agent/protocols/tlsrec.h"

#define CT_CHANGE_CIPHER_SPEC 20
#define CT_HANDSHAKE	      22
#define CT_APPLICATION_DATA   23
#define HS_CLIENT_HELLO	      1
#define HS_SERVER_HELLO	      2
#define RECORD_MAX	      ((1u << 14) + 2048)

enum tlsrec_kind tlsrec_classify(const uint8_t *p, size_t n)
{
	unsigned len;

	if (n < 5 || p[1] != 3 || p[2] > 4)
		return TLSREC_NO;
	if (p[0] < CT_CHANGE_CIPHER_SPEC || p[0] > CT_APPLICATION_DATA)
		return TLSREC_NO;
	len = (unsigned)p[3] << 8 | p[4];
	if (len == 0 || len > RECORD_MAX)
		return TLSREC_NO;
	if (p[0] == CT_HANDSHAKE && n > 5) {
		if (p[5] == HS_CLIENT_HELLO)
			return TLSREC_CLIENT_HELLO;
		if (p[5] == HS_SERVER_HELLO)
			return TLSREC_SERVER_HELLO;
	}
	return TLSREC_RECORD;
}
