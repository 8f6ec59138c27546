// SPDX-License-Identifier: MIT
/* ClientHello server name; see sni.h. Every read goes through the handshake
 * stream below, which bounds it by the input, the current record and the
 * handshake message at once. */
#include <stdbool.h>
#include <string.h>

#include "sni.h"

#define TLS_RECORD_HANDSHAKE  22
#define TLS_RECORD_HEADER     5
#define TLS_RECORD_MAX        16384 /* plaintext fragment limit (RFC 8446 5.1) */
#define TLS_VERSION_MAJOR     3
#define TLS_VERSION_MINOR_MAX 4     /* record versions 3.0 (SSL 3, legacy hellos) to 3.4 */
#define TLS_HANDSHAKE_HEADER  4
#define TLS_CLIENT_HELLO      1
#define TLS_RANDOM_LEN        32
#define TLS_SESSION_ID_MAX    32
#define TLS_EXT_SERVER_NAME   0
#define SNI_HOST_NAME         0
#define DNS_LABEL_MAX         63

/* The handshake protocol's byte stream: the payloads of consecutive
 * handshake records, read as one. */
struct hs_stream {
	const uint8_t *in;
	size_t len;
	size_t pos;                 /* next input byte */
	size_t record_left;         /* payload bytes of the current record not read yet */
	size_t msg_left;            /* bytes a read may still take: the message's bound */
	bool first_record;          /* whether the input is TLS at all is still open */
	enum dt_sni_result verdict; /* why the last read stopped */
};

static bool stop(struct hs_stream *s, enum dt_sni_result verdict)
{
	s->verdict = verdict;
	return false;
}

/* Enter the next record. What part of its header has arrived is judged at
 * once, so that plain text is told apart from its very first byte. */
static bool next_record(struct hs_stream *s)
{
	const uint8_t *h = s->in + s->pos;
	size_t avail = s->len - s->pos, rec_len;
	/* after the first record it is TLS: a record of another kind (alert,
	 * early data) before the ClientHello is complete breaks it */
	enum dt_sni_result wrong = s->first_record ? DT_SNI_NOT_TLS : DT_SNI_MALFORMED;

	if ((avail > 0 && h[0] != TLS_RECORD_HANDSHAKE) ||
	    (avail > 1 && h[1] != TLS_VERSION_MAJOR) ||
	    (avail > 2 && h[2] > TLS_VERSION_MINOR_MAX))
		return stop(s, wrong);
	if (avail < TLS_RECORD_HEADER)
		return stop(s, DT_SNI_NEED_MORE);
	rec_len = (size_t)h[3] << 8 | h[4];
	/* empty handshake fragments are forbidden too (RFC 8446 5.1) */
	if (rec_len == 0 || rec_len > TLS_RECORD_MAX)
		return stop(s, DT_SNI_MALFORMED);
	s->first_record = false;
	s->pos += TLS_RECORD_HEADER;
	s->record_left = rec_len;
	return true;
}

/* Copy @n bytes of the handshake message to @dst, or skip them when @dst is
 * NULL. */
static bool take(struct hs_stream *s, void *dst, size_t n)
{
	uint8_t *to = dst;

	if (n > s->msg_left)
		return stop(s, DT_SNI_MALFORMED);
	s->msg_left -= n;
	while (n) {
		size_t step = n;

		if (s->record_left == 0) {
			if (!next_record(s))
				return false;
			continue;
		}
		if (step > s->record_left)
			step = s->record_left;
		if (step > s->len - s->pos)
			step = s->len - s->pos;
		if (step == 0)
			return stop(s, DT_SNI_NEED_MORE);
		if (to) {
			memcpy(to, s->in + s->pos, step);
			to += step;
		}
		s->pos += step;
		s->record_left -= step;
		n -= step;
	}
	return true;
}

/* A big-endian integer of @bytes (1 to 3) bytes. */
static bool take_uint(struct hs_stream *s, size_t bytes, size_t *v)
{
	uint8_t b[3];

	if (!take(s, b, bytes))
		return false;
	*v = 0;
	for (size_t i = 0; i < bytes; i++)
		*v = *v << 8 | b[i];
	return true;
}

/* Dot-separated labels of 1 to 63 letters, digits and hyphens (RFC 1123), no
 * trailing dot (RFC 6066 3); lower-cased in place. */
static bool host_name_valid(char *name, size_t len)
{
	size_t label = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (ch >= 'A' && ch <= 'Z')
			name[i] = (char)(ch - 'A' + 'a');
		else if (!(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') && ch != '-')
			return false;
		if (++label > DNS_LABEL_MAX)
			return false;
	}
	return label > 0;
}

/* The server_name extension body (RFC 6066 3): a list of typed names, at
 * most one of each type; only host_name means anything today. */
static enum dt_sni_result read_server_name(struct hs_stream *s, size_t ext_len,
					   char *out, size_t outlen)
{
	enum dt_sni_result verdict = DT_SNI_ABSENT;
	char name[DT_SNI_MAX];
	size_t list_len;

	if (!take_uint(s, 2, &list_len) || list_len == 0 || list_len + 2 != ext_len)
		return DT_SNI_MALFORMED;
	while (list_len) {
		size_t type, len;

		if (list_len < 3 || !take_uint(s, 1, &type) || !take_uint(s, 2, &len) ||
		    len > list_len - 3)
			return DT_SNI_MALFORMED;
		list_len -= 3 + len;
		if (type != SNI_HOST_NAME) {
			if (!take(s, NULL, len))
				return DT_SNI_MALFORMED;
			continue;
		}
		if (verdict == DT_SNI_FOUND || len == 0 || len > DT_SNI_MAX || len >= outlen ||
		    !take(s, name, len) || !host_name_valid(name, len))
			return DT_SNI_MALFORMED;
		memcpy(out, name, len);
		out[len] = '\0';
		verdict = DT_SNI_FOUND;
	}
	return verdict;
}

/* The ClientHello body (RFC 8446 4.1.2), all of it in the input: a read
 * that falls short is a length field that lies. */
static enum dt_sni_result parse_client_hello(struct hs_stream *s, char *out, size_t outlen)
{
	enum dt_sni_result verdict = DT_SNI_ABSENT;
	bool seen_server_name = false;
	size_t sid_len, suites_len, comp_len, ext_len;

	if (!take(s, NULL, 2 + TLS_RANDOM_LEN) || /* legacy_version, random */
	    !take_uint(s, 1, &sid_len) || sid_len > TLS_SESSION_ID_MAX || !take(s, NULL, sid_len) ||
	    !take_uint(s, 2, &suites_len) || suites_len < 2 || suites_len % 2 ||
	    !take(s, NULL, suites_len) ||
	    !take_uint(s, 1, &comp_len) || comp_len < 1 || !take(s, NULL, comp_len))
		return DT_SNI_MALFORMED;
	if (s->msg_left == 0)
		return DT_SNI_ABSENT; /* a hello without extensions (TLS 1.0 era) */
	if (!take_uint(s, 2, &ext_len) || ext_len != s->msg_left)
		return DT_SNI_MALFORMED;
	while (s->msg_left) {
		size_t type, len;

		if (!take_uint(s, 2, &type) || !take_uint(s, 2, &len))
			return DT_SNI_MALFORMED;
		if (type != TLS_EXT_SERVER_NAME) {
			if (!take(s, NULL, len))
				return DT_SNI_MALFORMED;
			continue;
		}
		/* at most one extension of a type (RFC 8446 4.2) */
		if (seen_server_name)
			return DT_SNI_MALFORMED;
		seen_server_name = true;
		verdict = read_server_name(s, len, out, outlen);
		if (verdict == DT_SNI_MALFORMED)
			return verdict;
	}
	return verdict;
}

enum dt_sni_result dt_sni_parse(const uint8_t *data, size_t len, char *out, size_t outlen)
{
	struct hs_stream s = {
		.in = data, .len = len, .first_record = true, .msg_left = TLS_HANDSHAKE_HEADER,
	};
	struct hs_stream whole;
	size_t type, msg_len;

	if (!take_uint(&s, 1, &type) || !take_uint(&s, 3, &msg_len))
		return s.verdict;
	if (type != TLS_CLIENT_HELLO || msg_len > DT_SNI_MAX_HELLO)
		return DT_SNI_MALFORMED;
	s.msg_left = msg_len;
	/* the whole message first: a verdict on part of it could be wrong */
	whole = s;
	if (!take(&whole, NULL, msg_len))
		return whole.verdict;
	return parse_client_hello(&s, out, outlen);
}
