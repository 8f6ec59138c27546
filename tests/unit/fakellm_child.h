/* SPDX-License-Identifier: MIT */
/* Test side only: a fakellm child process and its admin API (blocking
 * libcurl), for the unit tests that run one (test_upstream, test_probe).
 * Include after <cmocka.h> and <curl/curl.h>, after defining BODY_MAX and
 * fakellm_admin_port(). */
#ifndef DT_TEST_FAKELLM_CHILD_H
#define DT_TEST_FAKELLM_CHILD_H

/* build/fakellm, next to build/tests/ where the test runs from. */
static void fakellm_path(char *buf, size_t len)
{
	char exe[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	assert_true(n > 0);
	exe[n] = '\0';
	for (int i = 0; i < 2; i++) {
		slash = strrchr(exe, '/');
		assert_non_null(slash);
		*slash = '\0';
	}
	snprintf(buf, len, "%s/fakellm", exe);
}

/* fakellm --listen 127.0.0.1:0 ARGS... --admin 127.0.0.1:0 --pidfile PIDFILE,
 * its output in LOG; args ends with NULL (at most 12). Returns its pid. */
static pid_t fakellm_spawn(const char *log, const char *pidfile, const char *const *args)
{
	const char *argv[24] = { NULL, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
				 "--pidfile", pidfile };
	size_t n = 7;
	char exe[600];
	pid_t pid;

	fakellm_path(exe, sizeof(exe));
	argv[0] = exe;
	while (*args && n < 22)
		argv[n++] = *args++;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* The pidfile appears once every socket is bound; the log names the ports:
 * the API's (plain or TLS) and the admin's. */
static void fakellm_wait_ready(const char *log, const char *pidfile, unsigned *port,
			       unsigned *admin_port)
{
	char line[256];
	FILE *fp;

	for (int i = 0; i < 500 && access(pidfile, F_OK); i++)
		usleep(10000);
	assert_int_equal(access(pidfile, F_OK), 0);
	fp = fopen(log, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		unsigned p;
		char kind[16];

		if (sscanf(line, "fakellm: listening on 127.0.0.1:%u (%15[a-z])", &p, kind) != 2)
			continue;
		if (strcmp(kind, "admin") == 0)
			*admin_port = p;
		else
			*port = p;
	}
	fclose(fp);
	assert_true(*port && *admin_port);
}

static size_t keep_body(char *buf, size_t size, size_t n, void *arg)
{
	char *out = arg;
	size_t have = strlen(out), len = size * n;

	if (have + len < BODY_MAX) {
		memcpy(out + have, buf, len);
		out[have + len] = '\0';
	}
	return len;
}

/* POST when json is set, else GET; the answer's body goes to out
 * (BODY_MAX bytes). */
static void admin(const char *path, const char *json, char *out)
{
	CURL *e = curl_easy_init();
	char url[128];
	long status = 0;

	out[0] = '\0';
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", fakellm_admin_port(), path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (json)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	curl_easy_cleanup(e);
}

static void set_fault(const char *json)
{
	static char out[BODY_MAX];

	admin("/fault", json, out);
}

#endif
