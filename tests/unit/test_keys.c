/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"

/* Every key written by these tests holds this, so that an error message
 * that repeats a key, or part of one, is caught. */
#define SECRET "sk-SECRET"

static char tmp[PATH_MAX], path[PATH_MAX + 32], err[1024];

static int setup(void **state)
{
	(void)state;
	unsetenv("CREDENTIALS_DIRECTORY");
	return mkdtemp(strcpy(tmp, "/tmp/detour-test-keys-XXXXXX")) ? 0 : -1;
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int teardown(void **state)
{
	(void)state;
	unsetenv("CREDENTIALS_DIRECTORY");
	unsetenv("DETOUR_TEST_KEY");
	return nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmp/name holding len bytes of text, with mode. */
static const char *key_file(const char *name, const char *text, size_t len, mode_t mode)
{
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static char *load_ok(enum dt_key_kind kind, const char *ref)
{
	struct dt_key_source src = { kind, (char *)ref };
	char *key = NULL;

	if (dt_key_load(&src, &key, err, sizeof(err)) < 0)
		fail_msg("unexpected error: %s", err);
	assert_non_null(key);
	return key;
}

/* Fails with a message that starts with what and holds reason, and never
 * anything of the key. */
static void load_fails(enum dt_key_kind kind, const char *ref, const char *what, const char *reason)
{
	struct dt_key_source src = { kind, (char *)ref };
	char *key = (char *)&key;

	memset(err, 0, sizeof(err));
	assert_int_equal(dt_key_load(&src, &key, err, sizeof(err)), -1);
	assert_null(key);
	if (strncmp(err, what, strlen(what)) != 0 || !strstr(err, reason))
		fail_msg("expected \"%s...%s\", got \"%s\"", what, reason, err);
	assert_null(strstr(err, "SECRET"));
	assert_null(strstr(err, "sk-"));
}

static void assert_key(char *key, const char *want)
{
	assert_string_equal(key, want);
	dt_key_free(key);
}

static void test_file(void **state)
{
	char what[PATH_MAX + 64];

	(void)state;
	/* 0600 and 0400, trailing blanks and line ends stripped */
	assert_key(load_ok(DT_KEY_FILE, key_file("a", SECRET "\n", 10, 0600)), SECRET);
	assert_key(load_ok(DT_KEY_FILE, key_file("b", SECRET, 9, 0400)), SECRET);
	assert_key(load_ok(DT_KEY_FILE, key_file("c", SECRET " \t\r\n\n", 14, 0600)), SECRET);

	key_file("d", SECRET "\n", 10, 0644);
	snprintf(what, sizeof(what), "key file %s: ", path);
	load_fails(DT_KEY_FILE, path, what, "mode 0644 gives group or other access (chmod 600)");
	key_file("e", SECRET "\n", 10, 0640);
	snprintf(what, sizeof(what), "key file %s: ", path);
	load_fails(DT_KEY_FILE, path, what, "mode 0640 gives group or other access");
	key_file("f", SECRET "\n", 10, 0602);
	load_fails(DT_KEY_FILE, path, "key file ", "mode 0602");
}

static void test_file_contents(void **state)
{
	char big[8200];

	(void)state;
	load_fails(DT_KEY_FILE, key_file("empty", "", 0, 0600), "key file ", ": empty");
	load_fails(DT_KEY_FILE, key_file("blank", " \n\r\n", 4, 0600), "key file ", ": empty");
	/* one key, visible ASCII: no header injection, no second line */
	load_fails(DT_KEY_FILE, key_file("two", SECRET "\nsk-OTHER\n", 19, 0600), "key file ",
		   "holds a blank, a line end or a character that is not visible ASCII");
	load_fails(DT_KEY_FILE, key_file("lead", " " SECRET, 10, 0600), "key file ", "not visible ASCII");
	load_fails(DT_KEY_FILE, key_file("inner", "sk-SEC RET", 10, 0600), "key file ", "not visible ASCII");
	load_fails(DT_KEY_FILE, key_file("nul", "sk-SEC\0RET", 10, 0600), "key file ", "not visible ASCII");
	load_fails(DT_KEY_FILE, key_file("utf8", "sk-SECR\xc3\xa9T", 10, 0600), "key file ", "not visible ASCII");

	/* 4096 bytes is the longest key, whatever follows it */
	memcpy(big, SECRET, strlen(SECRET));
	memset(big + strlen(SECRET), 'k', sizeof(big) - strlen(SECRET));
	big[4096] = '\n';
	{
		char *key = load_ok(DT_KEY_FILE, key_file("max", big, 4097, 0600));

		assert_int_equal(strlen(key), 4096);
		dt_key_free(key);
	}
	big[4096] = 'k';
	load_fails(DT_KEY_FILE, key_file("long", big, 4097, 0600), "key file ",
		   "longer than 4096 bytes: not a key");
	load_fails(DT_KEY_FILE, key_file("huge", big, sizeof(big), 0600), "key file ",
		   "larger than 8192 bytes: not a key");
}

static void test_file_kinds(void **state)
{
	char what[PATH_MAX + 64], link[PATH_MAX + 32];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing", tmp);
	snprintf(what, sizeof(what), "key file %s: ", path);
	load_fails(DT_KEY_FILE, path, what, "cannot open: No such file or directory");

	snprintf(what, sizeof(what), "key file %s: ", tmp);
	assert_int_equal(chmod(tmp, 0700), 0);
	load_fails(DT_KEY_FILE, tmp, what, "not a regular file");

	snprintf(path, sizeof(path), "%s/fifo", tmp);
	assert_int_equal(mkfifo(path, 0600), 0);
	load_fails(DT_KEY_FILE, path, "key file ", "not a regular file");

	/* a symbolic link is followed: the file it names is checked */
	key_file("target", SECRET "\n", 10, 0600);
	snprintf(link, sizeof(link), "%s/link", tmp);
	assert_int_equal(symlink(path, link), 0);
	assert_key(load_ok(DT_KEY_FILE, link), SECRET);
	assert_int_equal(chmod(path, 0644), 0);
	load_fails(DT_KEY_FILE, link, "key file ", "mode 0644");
}

/* Root-owned, or the current user's when not root: as root, a file of
 * another user is refused. */
static void test_file_owner(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	key_file("nobody", SECRET "\n", 10, 0600);
	assert_int_equal(chown(path, 65534, 65534), 0);
	load_fails(DT_KEY_FILE, path, "key file ", "owned by uid 65534, not by root");
}

static void test_credential(void **state)
{
	char what[PATH_MAX + 64];

	(void)state;
	load_fails(DT_KEY_CREDENTIAL, "openai", "credential openai: ",
		   "$CREDENTIALS_DIRECTORY is not set");
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", "", 1), 0);
	load_fails(DT_KEY_CREDENTIAL, "openai", "credential openai: ",
		   "$CREDENTIALS_DIRECTORY is not set");

	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", tmp, 1), 0);
	key_file("openai", SECRET "\n", 10, 0400);
	assert_key(load_ok(DT_KEY_CREDENTIAL, "openai"), SECRET);

	/* ownership is systemd's business; permissions are still checked */
	if (geteuid() == 0)
		assert_int_equal(chown(path, 65534, 65534), 0);
	assert_key(load_ok(DT_KEY_CREDENTIAL, "openai"), SECRET);
	assert_int_equal(chmod(path, 0440), 0);
	snprintf(what, sizeof(what), "credential openai (%s): ", path);
	load_fails(DT_KEY_CREDENTIAL, "openai", what, "mode 0440 gives group or other access");

	key_file("empty", "\n", 1, 0400);
	load_fails(DT_KEY_CREDENTIAL, "empty", "credential empty (", "): empty");
	load_fails(DT_KEY_CREDENTIAL, "missing", "credential missing (", "cannot open: No such file");
}

static void test_env(void **state)
{
	char big[5000];

	(void)state;
	unsetenv("DETOUR_TEST_KEY");
	load_fails(DT_KEY_ENV, "DETOUR_TEST_KEY", "environment variable DETOUR_TEST_KEY: ", "not set");
	assert_int_equal(setenv("DETOUR_TEST_KEY", SECRET "\n", 1), 0);
	assert_key(load_ok(DT_KEY_ENV, "DETOUR_TEST_KEY"), SECRET);
	assert_int_equal(setenv("DETOUR_TEST_KEY", "", 1), 0);
	load_fails(DT_KEY_ENV, "DETOUR_TEST_KEY", "environment variable DETOUR_TEST_KEY: ", "empty");
	assert_int_equal(setenv("DETOUR_TEST_KEY", SECRET "\r\nX-Injected: 1", 1), 0);
	load_fails(DT_KEY_ENV, "DETOUR_TEST_KEY", "environment variable DETOUR_TEST_KEY: ",
		   "not visible ASCII");

	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, SECRET, strlen(SECRET));
	big[4096] = '\0';
	assert_int_equal(setenv("DETOUR_TEST_KEY", big, 1), 0);
	dt_key_free(load_ok(DT_KEY_ENV, "DETOUR_TEST_KEY"));
	big[4096] = 'k';
	assert_int_equal(setenv("DETOUR_TEST_KEY", big, 1), 0);
	load_fails(DT_KEY_ENV, "DETOUR_TEST_KEY", "environment variable DETOUR_TEST_KEY: ",
		   "longer than 4096 bytes");
}

static void test_no_source(void **state)
{
	(void)state;
	load_fails(DT_KEY_NONE, NULL, "no key source", "");
	load_fails(DT_KEY_FILE, NULL, "no key source", "");
	dt_key_free(NULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_file),
		T(test_file_contents),
		T(test_file_kinds),
		T(test_file_owner),
		T(test_credential),
		T(test_env),
		T(test_no_source),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
