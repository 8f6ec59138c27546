/* SPDX-License-Identifier: MIT */
/*
 * The server name of a TLS ClientHello, read from the first bytes of a
 * connection (peeked, not consumed): it decides whether the proxy
 * terminates the TLS connection or relays it untouched.
 */
#ifndef DT_SNI_H
#define DT_SNI_H

#include <stddef.h>
#include <stdint.h>

/* Longest host name (RFC 1035); an output buffer of DT_SNI_MAX + 1 bytes
 * holds any name dt_sni_parse() accepts. */
#define DT_SNI_MAX 253
/* Largest ClientHello reassembled (post-quantum key shares make them
 * well over one 16 KiB record). */
#define DT_SNI_MAX_HELLO (64 * 1024)

enum dt_sni_result {
	DT_SNI_FOUND,      /* a ClientHello with a server_name host_name: copied to out */
	DT_SNI_ABSENT,     /* a complete ClientHello without SNI */
	DT_SNI_NEED_MORE,  /* a TLS handshake record so far, but not complete yet */
	DT_SNI_NOT_TLS,    /* first bytes are not a TLS handshake (e.g. plain HTTP) */
	DT_SNI_MALFORMED,  /* TLS, but the ClientHello is broken (or the name is invalid / too long) */
};

/*
 * Parse the ClientHello at the start of @data, which may be fragmented over
 * several handshake records. The verdict needs the whole ClientHello: a
 * prefix of a valid one is always DT_SNI_NEED_MORE. On DT_SNI_FOUND, @out
 * holds the host name, lower-cased and NUL-terminated; a name longer than
 * @outlen - 1 is DT_SNI_MALFORMED.
 */
enum dt_sni_result dt_sni_parse(const uint8_t *data, size_t len, char *out, size_t outlen);

#endif
