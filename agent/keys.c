/* SPDX-License-Identifier: MIT */
/*
 * Loading provider keys. Every buffer that held a key, or part of one, is
 * wiped before it is freed, on error paths too; messages name the source
 * and the reason only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"

#define CREDENTIALS_ENV "CREDENTIALS_DIRECTORY"
/* What is read at most: a key, then blank lines or spaces to strip. */
#define KEY_READ_MAX    (2 * DT_KEY_MAX)

/* "WHAT: reason" in err; always -1. */
__attribute__((format(printf, 4, 5)))
static int key_fail(char *err, size_t errlen, const char *what, const char *fmt, ...)
{
	va_list ap;
	int len = snprintf(err, errlen, "%s: ", what);

	if (len < 0 || (size_t)len >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + len, errlen - (size_t)len, fmt, ap);
	va_end(ap);
	return -1;
}

static void wipe_free(char *buf, size_t size)
{
	if (!buf)
		return;
	explicit_bzero(buf, size);
	free(buf);
}

/*
 * The key in buf (size bytes, holding len of them): trailing blanks and
 * line ends stripped, then 1 to DT_KEY_MAX visible ASCII characters.
 * Takes buf: it becomes *key, or is wiped and freed.
 */
static int key_finish(char *buf, size_t size, size_t len, char **key,
		      const char *what, char *err, size_t errlen)
{
	bool visible = true;

	while (len > 0 && strchr(" \t\r\n", buf[len - 1]))
		len--;
	for (size_t i = 0; i < len; i++)
		visible = visible && buf[i] >= 0x21 && buf[i] <= 0x7e;
	/* the stripped tail was blanks: nothing secret is left past the end */
	buf[len] = '\0';
	if (len > 0 && len <= DT_KEY_MAX && visible) {
		*key = buf;
		return 0;
	}
	wipe_free(buf, size);
	if (len == 0)
		return key_fail(err, errlen, what, "empty");
	if (len > DT_KEY_MAX)
		return key_fail(err, errlen, what, "longer than %d bytes: not a key", DT_KEY_MAX);
	return key_fail(err, errlen, what,
			"holds a blank, a line end or a character that is not visible ASCII: not a single key");
}

/*
 * A key file, or a credential (owner_checked false: systemd makes it the
 * service user's). Checks are made on the file opened, not on its name.
 */
static int key_file_load(const char *path, bool owner_checked, char **key,
			 const char *what, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	size_t len = 0;
	struct stat st;
	uid_t me = geteuid();
	char *buf;
	ssize_t n;

	if (fd < 0)
		return key_fail(err, errlen, what, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0) {
		key_fail(err, errlen, what, "cannot stat: %s", strerror(errno));
		goto fail_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		key_fail(err, errlen, what, "not a regular file");
		goto fail_fd;
	}
	if (owner_checked && st.st_uid != 0 && (me == 0 || st.st_uid != me)) {
		key_fail(err, errlen, what, "owned by uid %u, not by root", (unsigned)st.st_uid);
		goto fail_fd;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		key_fail(err, errlen, what, "mode %04o gives group or other access (chmod 600)",
			 (unsigned)(st.st_mode & 07777));
		goto fail_fd;
	}
	buf = malloc(KEY_READ_MAX + 1);
	if (!buf) {
		key_fail(err, errlen, what, "out of memory");
		goto fail_fd;
	}
	/* one byte more than allowed tells a file too large */
	while (len <= KEY_READ_MAX && (n = read(fd, buf + len, KEY_READ_MAX + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			key_fail(err, errlen, what, "cannot read: %s", strerror(errno));
			goto fail_buf;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > KEY_READ_MAX) {
		wipe_free(buf, KEY_READ_MAX + 1);
		return key_fail(err, errlen, what, "larger than %d bytes: not a key", KEY_READ_MAX);
	}
	return key_finish(buf, KEY_READ_MAX + 1, len, key, what, err, errlen);
fail_buf:
	wipe_free(buf, KEY_READ_MAX + 1);
fail_fd:
	close(fd);
	return -1;
}

static int key_env_load(const char *name, char **key, const char *what,
			char *err, size_t errlen)
{
	const char *value = getenv(name);
	size_t len;
	char *buf;

	if (!value)
		return key_fail(err, errlen, what, "not set");
	len = strlen(value);
	if (len > KEY_READ_MAX)
		return key_fail(err, errlen, what, "longer than %d bytes: not a key", KEY_READ_MAX);
	buf = malloc(len + 1);
	if (!buf)
		return key_fail(err, errlen, what, "out of memory");
	memcpy(buf, value, len + 1);
	return key_finish(buf, len + 1, len, key, what, err, errlen);
}

int dt_key_load(const struct dt_key_source *src, char **key, char *err, size_t errlen)
{
	char what[PATH_MAX + NAME_MAX + 64], path[PATH_MAX];
	const char *dir;

	*key = NULL;
	if (src->kind == DT_KEY_NONE || !src->ref) {
		snprintf(err, errlen, "no key source");
		return -1;
	}
	switch (src->kind) {
	case DT_KEY_FILE:
		snprintf(what, sizeof(what), "key file %s", src->ref);
		return key_file_load(src->ref, true, key, what, err, errlen);
	case DT_KEY_CREDENTIAL:
		snprintf(what, sizeof(what), "credential %s", src->ref);
		dir = getenv(CREDENTIALS_ENV);
		if (!dir || !*dir)
			return key_fail(err, errlen, what,
					"$" CREDENTIALS_ENV " is not set (LoadCredential= in the unit)");
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, src->ref) >= sizeof(path))
			return key_fail(err, errlen, what, "path too long");
		snprintf(what, sizeof(what), "credential %s (%s)", src->ref, path);
		return key_file_load(path, false, key, what, err, errlen);
	case DT_KEY_ENV:
		snprintf(what, sizeof(what), "environment variable %s", src->ref);
		return key_env_load(src->ref, key, what, err, errlen);
	case DT_KEY_NONE:
		break;
	}
	snprintf(err, errlen, "no key source");
	return -1;
}

void dt_key_free(char *key)
{
	if (key)
		wipe_free(key, strlen(key));
}
