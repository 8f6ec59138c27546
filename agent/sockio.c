// SPDX-License-Identifier: MIT
/* Non-blocking socket and TLS steps; see sockio.h. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "sockio.h"

/* Why a TLS call failed: the peer's certificate, OpenSSL's reason, the
 * socket's errno, or else a plain end. */
static void tls_reason(SSL *ssl, char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	long verify = SSL_get_verify_result(ssl);

	if (verify != X509_V_OK)
		snprintf(buf, len, "certificate verify failed: %s",
			 X509_verify_cert_error_string(verify));
	else if (e)
		snprintf(buf, len, "%s", ERR_reason_error_string(e) ?: "TLS error");
	else if (errno)
		snprintf(buf, len, "%s", strerror(errno));
	else
		snprintf(buf, len, "the connection closed");
}

/* A failed TLS call (rc <= 0): DT_SOCKIO_WAIT with *needs, DT_SOCKIO_EOF
 * when the peer ended the stream (eof_ok), or DT_SOCKIO_ERROR. */
static int tls_outcome(SSL *ssl, int rc, bool eof_ok, short *needs, const char *what,
		       char *err, size_t errlen)
{
	size_t off;

	switch (SSL_get_error(ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		*needs = EV_READ;
		return DT_SOCKIO_WAIT;
	case SSL_ERROR_WANT_WRITE:
		*needs = EV_WRITE;
		return DT_SOCKIO_WAIT;
	case SSL_ERROR_ZERO_RETURN:
		if (eof_ok)
			return DT_SOCKIO_EOF;
		break;
	case SSL_ERROR_SYSCALL:
		/* an end without close_notify, as a plain socket would see it */
		if (eof_ok && !ERR_peek_error() && !errno)
			return DT_SOCKIO_EOF;
		break;
	default:
		break;
	}
	off = (size_t)snprintf(err, errlen, "%s", what);
	tls_reason(ssl, err + (off < errlen ? off : errlen - 1), off < errlen ? errlen - off : 1);
	return DT_SOCKIO_ERROR;
}

/* SSL_get_error() needs an empty error queue before the call it judges;
 * it is nearly always empty already, and clearing it costs more than
 * looking. */
static void clear_errors(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
	errno = 0;
}

static bool would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

ssize_t dt_sockio_read(int fd, SSL *ssl, void *buf, size_t len, short *needs,
		       char *err, size_t errlen)
{
	ssize_t n;

	if (len > INT_MAX)
		len = INT_MAX;
	if (!ssl) {
		n = recv(fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (would_block()) {
			*needs = EV_READ;
			return DT_SOCKIO_WAIT;
		}
		snprintf(err, errlen, "recv: %s", strerror(errno));
		return DT_SOCKIO_ERROR;
	}
	clear_errors();
	n = SSL_read(ssl, buf, (int)len);
	if (n > 0)
		return n;
	return tls_outcome(ssl, (int)n, true, needs, "recv: ", err, errlen);
}

ssize_t dt_sockio_write(int fd, SSL *ssl, const void *buf, size_t len, short *needs,
			char *err, size_t errlen)
{
	ssize_t n;

	if (len > INT_MAX)
		len = INT_MAX;
	if (!ssl) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (would_block()) {
			*needs = EV_WRITE;
			return DT_SOCKIO_WAIT;
		}
		snprintf(err, errlen, "send: %s", strerror(errno));
		return DT_SOCKIO_ERROR;
	}
	clear_errors();
	n = SSL_write(ssl, buf, (int)len);
	if (n > 0)
		return n;
	return tls_outcome(ssl, (int)n, false, needs, "send: ", err, errlen);
}

int dt_sockio_handshake(SSL *ssl, short *needs, char *err, size_t errlen)
{
	int rc;

	clear_errors();
	rc = SSL_do_handshake(ssl);
	if (rc == 1)
		return 1;
	return tls_outcome(ssl, rc, false, needs, "", err, errlen);
}

void dt_sockio_want(struct event *io, short *current, short kind)
{
	if (kind == *current)
		return;
	event_del(io);
	*current = 0;
	if (!kind)
		return;
	event_assign(io, event_get_base(io), event_get_fd(io), kind | EV_PERSIST,
		     event_get_callback(io), event_get_callback_arg(io));
	if (event_add(io, NULL) == 0)
		*current = kind;
}
