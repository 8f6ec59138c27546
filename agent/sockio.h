/* SPDX-License-Identifier: MIT */
/*
 * One step of non-blocking I/O on a connected socket, over TLS (ssl given)
 * or not (ssl NULL), for connections that run on the event loop themselves
 * (the own upstream client, the downstream HTTP server). A step that cannot
 * go on says what it waits for (EV_READ or EV_WRITE: a TLS read may need to
 * write and a TLS write to read); errors come with a line of text.
 */
#ifndef DT_SOCKIO_H
#define DT_SOCKIO_H

#include <stddef.h>
#include <sys/types.h>
#include <openssl/ssl.h>

struct event;

/* dt_sockio_read/_write/_handshake results besides a byte count */
#define DT_SOCKIO_EOF   0       /* the peer ended its stream (read only) */
#define DT_SOCKIO_WAIT  (-1)    /* blocked: *needs is what to wait for */
#define DT_SOCKIO_ERROR (-2)    /* broken: err says why */

/* Bytes read (> 0), DT_SOCKIO_EOF, _WAIT or _ERROR ("recv: ..."). */
ssize_t dt_sockio_read(int fd, SSL *ssl, void *buf, size_t len, short *needs,
		       char *err, size_t errlen);
/* Bytes written (> 0; TLS: at most one record's worth at a time with
 * SSL_MODE_ENABLE_PARTIAL_WRITE), _WAIT or _ERROR ("send: ..."). */
ssize_t dt_sockio_write(int fd, SSL *ssl, const void *buf, size_t len, short *needs,
			char *err, size_t errlen);
/* One step of the TLS handshake, either side (the SSL's accept or connect
 * state): 1 done, _WAIT or _ERROR (err: the reason only). */
int dt_sockio_handshake(SSL *ssl, short *needs, char *err, size_t errlen);

/* From now on the persistent event io (made with its socket, callback and
 * argument) waits for kind: EV_READ, EV_WRITE, both, or nothing (0); *current
 * is what it waits for. Only a change touches it, each being an epoll_ctl. */
void dt_sockio_want(struct event *io, short *current, short kind);

#endif
