/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "prices.h"
#include "router.h"

/* Valid provider appended to texts that test other sections. */
#define PROVIDER "[provider p]\nhosts = p.example\n"
#define PROVIDER_Q "[provider q]\nhosts = q.example\n"
/* A valid class of two members, appended to texts that test classes. */
#define CLASS "[class c]\nmember = p:a\nmember = q:b\n"

/* A temporary directory per test: conf is the file loaded, root a fake
 * cgroup v2 tree that DETOUR_CGROUP_ROOT points at. */
static char tmp[PATH_MAX], conf[PATH_MAX + 16], root[PATH_MAX + 16];

static void make_dir(const char *rel)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	static const char *const tree[] = {
		"system.slice", "system.slice/app.service",
		"user.slice", "user.slice/user-1000.slice",
		"user.slice/user-1000.slice/user@1000.service",
		"user.slice/user-1000.slice/user@1000.service/app.slice",
		"user.slice/user-1000.slice/user@1000.service/app.slice/editor.service",
		"a", "a/twin.service", "b", "b/twin.service", "plain",
	};
	char resolved[PATH_MAX];

	(void)state;
	/* realpath: the loader reports resolved paths */
	if (!mkdtemp(strcpy(tmp, "/tmp/detour-test-config-XXXXXX")) || !realpath(tmp, resolved))
		return -1;
	strcpy(tmp, resolved);
	snprintf(conf, sizeof(conf), "%s/detour.conf", tmp);
	snprintf(root, sizeof(root), "%s/cgroup", tmp);
	if (mkdir(root, 0755) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++)
		make_dir(tree[i]);
	write_file(strcat(strcpy(resolved, root), "/cgroup.procs"), "", 0);
	return setenv("DETOUR_CGROUP_ROOT", root, 1);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	(void)state;
	unsetenv("DETOUR_CGROUP_ROOT");
	return nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char err[1024];

static int load_len(const char *text, size_t len, struct dt_cfg **cfg)
{
	write_file(conf, text, len);
	memset(err, 0, sizeof(err));
	*cfg = NULL;
	return dt_config_load(conf, cfg, err, sizeof(err));
}

static struct dt_cfg *load_ok(const char *text)
{
	struct dt_cfg *cfg;

	if (load_len(text, strlen(text), &cfg) < 0)
		fail_msg("unexpected error: %s", err);
	assert_non_null(cfg);
	return cfg;
}

/* err is "CONF:LINE: reason" (or "CONF: reason" for line 0) with the
 * reason containing want. */
static bool error_is(int line, const char *want)
{
	char prefix[PATH_MAX + 32];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", conf, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", conf);
	return strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err + strlen(prefix), want);
}

static bool load_fails_with(const char *text, size_t len, int line, const char *want)
{
	struct dt_cfg *cfg;

	if (load_len(text, len, &cfg) == 0) {
		dt_config_free(cfg);
		return false;
	}
	return !cfg && error_is(line, want);
}

static void load_fails_len(const char *text, size_t len, int line, const char *want)
{
	if (!load_fails_with(text, len, line, want))
		fail_msg("expected line %d: \"%s\", got \"%s\"", line, want, err);
}

static void load_fails(const char *text, int line, const char *want)
{
	load_fails_len(text, strlen(text), line, want);
}

/* ---- valid files --------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct dt_cfg *cfg = load_ok(PROVIDER);
	char addr[INET6_ADDRSTRLEN];

	(void)state;
	assert_string_equal(cfg->path, conf);
	assert_int_equal(cfg->mode, DT_MODE_PROXY);
	assert_string_equal(inet_ntop(AF_INET, &cfg->listen4, addr, sizeof(addr)), "127.0.0.1");
	assert_string_equal(inet_ntop(AF_INET6, &cfg->listen6, addr, sizeof(addr)), "::1");
	assert_int_equal(cfg->listen_port, 15001);
	assert_string_equal(cfg->pin_dir, "/sys/fs/bpf/detour");
	assert_string_equal(cfg->state_dir, "/var/lib/detour");
	assert_int_equal(cfg->log_level, DT_LOG_INFO);
	assert_int_equal(cfg->mark, 0x44540001);
	assert_int_equal(cfg->heartbeat_interval_ms, 200);
	assert_int_equal(cfg->heartbeat_ttl_ms, 1000);
	assert_int_equal(cfg->connect_timeout_ms, 1000);
	assert_int_equal(cfg->down_hold_ms, 5000);
	assert_int_equal(cfg->dns_refresh_s, 30);
	assert_int_equal(cfg->dns_grace_s, 600);
	assert_int_equal(cfg->max_connections, 4096);

	assert_int_equal(cfg->n_providers, 1);
	assert_string_equal(cfg->providers[0].name, "p");
	assert_int_equal(cfg->providers[0].n_hosts, 1);
	assert_string_equal(cfg->providers[0].hosts[0], "p.example");
	assert_int_equal(cfg->providers[0].port, 443);
	assert_int_equal(cfg->providers[0].family, DT_FAMILY_OPENAI);
	assert_int_equal(cfg->providers[0].key.kind, DT_KEY_NONE);
	assert_null(cfg->providers[0].key.ref);
	assert_string_equal(cfg->providers[0].base_url, "https://p.example/v1");
	assert_int_equal(cfg->providers[0].line, 1);

	/* no [enroll]: the whole cgroup v2 tree */
	assert_int_equal(cfg->n_enroll, 1);
	assert_string_equal(cfg->enroll[0].cgroup, root);
	assert_int_equal(cfg->enroll[0].line, 0);

	assert_int_equal(cfg->n_classes, 0);
	assert_null(cfg->classes);
	assert_int_equal(cfg->n_apps, 0);
	assert_null(cfg->apps);

	assert_string_equal(cfg->proxy.upstream_ca_bundle, "");
	assert_int_equal(cfg->proxy.max_header_bytes, 65536);
	assert_int_equal(cfg->proxy.max_headers, 100);
	assert_int_equal(cfg->proxy.max_body_bytes, 33554432);
	assert_int_equal(cfg->proxy.idle_timeout_ms, 60000);
	assert_int_equal(cfg->proxy.request_timeout_ms, 30000);
	assert_int_equal(cfg->proxy.first_byte_timeout_ms, 30000);
	assert_int_equal(cfg->proxy.stream_idle_timeout_ms, 60000);
	assert_int_equal(cfg->proxy.upstream_connect_timeout_ms, 3000);
	assert_int_equal(cfg->proxy.retry_budget_percent, 20);
	assert_int_equal(cfg->proxy.retry_budget_min, 10);
	assert_int_equal(cfg->proxy.budget_window_ms, 10000);
	assert_int_equal(cfg->proxy.provider_failures_to_eject, 3);
	assert_int_equal(cfg->proxy.provider_eject_ms, 10000);
	assert_int_equal(cfg->proxy.key_disable_ms, 300000);
	assert_true(cfg->proxy.intercept_tls);
	assert_true(cfg->probes);
	assert_int_equal(cfg->probe_timeout_ms, 10000);
	assert_true(cfg->tcp_signals);
	assert_true(cfg->netwatch);
	assert_true(cfg->providers[0].probe);
	assert_string_equal(cfg->providers[0].probe_ttft_model, "");
	assert_int_equal(cfg->providers[0].probe_ttft_per_hour, 4);
	assert_true(cfg->providers[0].ask_stream_usage);
	assert_true(cfg->proxy.hedge);
	assert_int_equal(cfg->proxy.hedge_factor_percent, 300);
	assert_int_equal(cfg->proxy.hedge_min_ms, 1000);
	assert_int_equal(cfg->proxy.hedge_max_ms, 10000);
	dt_config_free(cfg);
}

static void test_every_option(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"[detour]\n"
		"mode = failover\n"
		"listen = 127.0.0.53:16000\n"
		"listen6 = [0:0::1]:16000\n"
		"pin_dir = /sys/fs/bpf/other\n"
		"state_dir = /var/lib/other\n"
		"log_level = debug\n"
		"mark = 0xDEADBEEF\n"
		"heartbeat_interval_ms = 100\n"
		"heartbeat_ttl_ms = 201\n"
		"connect_timeout_ms = 60000\n"
		"down_hold_ms = 100\n"
		"dns_refresh_s = 86400\n"
		"dns_grace_s = 0\n"
		"max_connections = 65536\n"
		"[provider claude]\n"
		"hosts = api.anthropic.com\n"
		"port = 8443\n"
		"family = anthropic\n"
		"key_credential = anthropic-key\n"
		"[provider g]\n"
		"hosts = generativelanguage.googleapis.com\n"
		"family = gemini\n"
		"key_env = GEMINI_API_KEY\n"
		"[provider o]\n"
		"hosts = api.openai.com\n"
		"family = openai\n"
		"key_file = /etc/detour/keys/openai\n"
		"base_url = https://api.openai.com:8443/openai/v1/\n"
		"[proxy]\n"                                   /* line 30 */
		"upstream_ca_bundle = /etc/ssl/test-ca.pem\n"
		"max_header_bytes = 1048576\n"
		"max_headers = 8\n"
		"max_body_bytes = 268435456\n"
		"idle_timeout_ms = 100\n"
		"request_timeout_ms = 3600000\n"
		"first_byte_timeout_ms = 2500\n"
		"stream_idle_timeout_ms = 15000\n"
		"upstream_connect_timeout_ms = 10\n"
		"retry_budget_percent = 0\n"
		"retry_budget_min = 1000000\n"
		"budget_window_ms = 100\n"
		"provider_failures_to_eject = 1\n"
		"provider_eject_ms = 3600000\n"
		"key_disable_ms = 1000\n"
		"intercept_tls = no\n"
		"[class fast]\n"                              /* line 47 */
		"strategy = weighted\n"
		"member = o:gpt-4o-mini context=128000 weight=3\n"
		"member = claude:claude-3-5-haiku-latest  weight=1000\n"
		"member = g:gemini-2.0-flash\tcontext=100000000\n"
		"[app editor]\n"                              /* line 52 */
		"unit = editor.service\n"
		"cgroup = plain\n"
		"key.o = credential:editor-openai\n"
		"key.claude = file:/etc/detour/keys/editor-claude\n"
		"key.g = env:EDITOR_GEMINI\n");
	char addr[INET6_ADDRSTRLEN], want[PATH_MAX * 2];
	const struct dt_class_cfg *cls;
	const struct dt_app_cfg *app;

	(void)state;
	assert_int_equal(cfg->mode, DT_MODE_FAILOVER);
	assert_string_equal(inet_ntop(AF_INET, &cfg->listen4, addr, sizeof(addr)), "127.0.0.53");
	assert_string_equal(inet_ntop(AF_INET6, &cfg->listen6, addr, sizeof(addr)), "::1");
	assert_int_equal(cfg->listen_port, 16000);
	assert_string_equal(cfg->pin_dir, "/sys/fs/bpf/other");
	assert_string_equal(cfg->state_dir, "/var/lib/other");
	assert_int_equal(cfg->log_level, DT_LOG_DEBUG);
	assert_int_equal(cfg->mark, 0xdeadbeef);
	assert_int_equal(cfg->heartbeat_interval_ms, 100);
	assert_int_equal(cfg->heartbeat_ttl_ms, 201);
	assert_int_equal(cfg->connect_timeout_ms, 60000);
	assert_int_equal(cfg->down_hold_ms, 100);
	assert_int_equal(cfg->dns_refresh_s, 86400);
	assert_int_equal(cfg->dns_grace_s, 0);
	assert_int_equal(cfg->max_connections, 65536);

	assert_int_equal(cfg->n_providers, 3);
	assert_string_equal(cfg->providers[0].name, "claude");
	assert_int_equal(cfg->providers[0].port, 8443);
	assert_int_equal(cfg->providers[0].family, DT_FAMILY_ANTHROPIC);
	assert_int_equal(cfg->providers[0].key.kind, DT_KEY_CREDENTIAL);
	assert_string_equal(cfg->providers[0].key.ref, "anthropic-key");
	assert_int_equal(cfg->providers[0].line, 16);
	assert_int_equal(cfg->providers[1].family, DT_FAMILY_GEMINI);
	assert_int_equal(cfg->providers[1].key.kind, DT_KEY_ENV);
	assert_string_equal(cfg->providers[1].key.ref, "GEMINI_API_KEY");
	assert_int_equal(cfg->providers[1].line, 21);
	assert_int_equal(cfg->providers[2].family, DT_FAMILY_OPENAI);
	assert_int_equal(cfg->providers[2].key.kind, DT_KEY_FILE);
	assert_string_equal(cfg->providers[2].key.ref, "/etc/detour/keys/openai");
	/* default by family, with the port unless 443; trailing slash dropped */
	assert_string_equal(cfg->providers[0].base_url, "https://api.anthropic.com:8443/v1");
	assert_string_equal(cfg->providers[1].base_url, "https://generativelanguage.googleapis.com/v1beta");
	assert_string_equal(cfg->providers[2].base_url, "https://api.openai.com:8443/openai/v1");

	assert_string_equal(cfg->proxy.upstream_ca_bundle, "/etc/ssl/test-ca.pem");
	assert_int_equal(cfg->proxy.max_header_bytes, 1048576);
	assert_int_equal(cfg->proxy.max_headers, 8);
	assert_int_equal(cfg->proxy.max_body_bytes, 268435456);
	assert_int_equal(cfg->proxy.idle_timeout_ms, 100);
	assert_int_equal(cfg->proxy.request_timeout_ms, 3600000);
	assert_int_equal(cfg->proxy.first_byte_timeout_ms, 2500);
	assert_int_equal(cfg->proxy.stream_idle_timeout_ms, 15000);
	assert_int_equal(cfg->proxy.upstream_connect_timeout_ms, 10);
	assert_int_equal(cfg->proxy.retry_budget_percent, 0);
	assert_int_equal(cfg->proxy.retry_budget_min, 1000000);
	assert_int_equal(cfg->proxy.budget_window_ms, 100);
	assert_int_equal(cfg->proxy.provider_failures_to_eject, 1);
	assert_int_equal(cfg->proxy.provider_eject_ms, 3600000);
	assert_int_equal(cfg->proxy.key_disable_ms, 1000);
	assert_false(cfg->proxy.intercept_tls);

	assert_int_equal(cfg->n_classes, 1);
	cls = &cfg->classes[0];
	assert_string_equal(cls->name, "fast");
	assert_int_equal(cls->line, 47);
	assert_int_equal(cls->strategy, 1);
	assert_int_equal(cls->n_members, 3);
	assert_string_equal(cls->members[0].provider, "o");
	assert_string_equal(cls->members[0].model, "gpt-4o-mini");
	assert_int_equal(cls->members[0].context_tokens, 128000);
	assert_int_equal(cls->members[0].weight, 3);
	assert_int_equal(cls->members[0].line, 49);
	assert_string_equal(cls->members[1].provider, "claude");
	assert_string_equal(cls->members[1].model, "claude-3-5-haiku-latest");
	assert_int_equal(cls->members[1].context_tokens, 0);
	assert_int_equal(cls->members[1].weight, 1000);
	assert_string_equal(cls->members[2].model, "gemini-2.0-flash");
	assert_int_equal(cls->members[2].context_tokens, 100000000);
	assert_int_equal(cls->members[2].weight, 1);
	assert_int_equal(cls->members[2].line, 51);

	assert_int_equal(cfg->n_apps, 1);
	app = &cfg->apps[0];
	assert_string_equal(app->name, "editor");
	assert_int_equal(app->line, 52);
	assert_int_equal(app->n_cgroups, 2);
	snprintf(want, sizeof(want),
		 "%s/user.slice/user-1000.slice/user@1000.service/app.slice/editor.service", root);
	assert_string_equal(app->cgroups[0], want);
	snprintf(want, sizeof(want), "%s/plain", root);
	assert_string_equal(app->cgroups[1], want);
	assert_int_equal(app->n_keys, 3);
	assert_string_equal(app->keys[0].provider, "o");
	assert_int_equal(app->keys[0].key.kind, DT_KEY_CREDENTIAL);
	assert_string_equal(app->keys[0].key.ref, "editor-openai");
	assert_int_equal(app->keys[0].line, 55);
	assert_string_equal(app->keys[1].provider, "claude");
	assert_int_equal(app->keys[1].key.kind, DT_KEY_FILE);
	assert_string_equal(app->keys[1].key.ref, "/etc/detour/keys/editor-claude");
	assert_string_equal(app->keys[2].provider, "g");
	assert_int_equal(app->keys[2].key.kind, DT_KEY_ENV);
	assert_string_equal(app->keys[2].key.ref, "EDITOR_GEMINI");
	assert_int_equal(app->keys[2].line, 57);
	/* [app] cgroups are not enrolled by themselves: the root still is */
	assert_int_equal(cfg->n_enroll, 1);
	assert_string_equal(cfg->enroll[0].cgroup, root);
	dt_config_free(cfg);
}

static void test_base_url(void **state)
{
	static const struct {
		const char *value, *want;
	} cases[] = {
		{ "https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1" },
		{ "https://API.Groq.COM/openai/v1/", "https://api.groq.com/openai/v1" },
		{ "https://api.groq.com/openai/v1///", "https://api.groq.com/openai/v1" },
		{ "https://api.deepseek.com", "https://api.deepseek.com" },
		{ "https://api.deepseek.com/", "https://api.deepseek.com" },
		{ "https://api.deepseek.com:00443/x", "https://api.deepseek.com:443/x" },
		{ "https://h.example/a@b:c/V1", "https://h.example/a@b:c/V1" },
		{ "https://[2001:DB8:0::1]/v1", "https://[2001:db8::1]/v1" },
		{ "https://192.0.2.7:8443/v1", "https://192.0.2.7:8443/v1" },
		/* plain http to local models */
		{ "http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1" },
		{ "http://[0:0::1]:11434/v1/", "http://[::1]:11434/v1" },
		{ "http://LocalHost:11434/v1", "http://localhost:11434/v1" },
		{ "http://192.168.1.10:8000/v1", "http://192.168.1.10:8000/v1" },
	};
	char text[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dt_cfg *cfg;

		snprintf(text, sizeof(text), "[provider p]\nhosts = p.example\nbase_url = %s\n",
			 cases[i].value);
		cfg = load_ok(text);
		if (strcmp(cfg->providers[0].base_url, cases[i].want) != 0)
			fail_msg("case %zu: %s gave %s", i, cases[i].value, cfg->providers[0].base_url);
		dt_config_free(cfg);
	}
}

static void test_base_url_default(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"[provider a]\nhosts = 2001:db8::1, a.example\nport = 8443\nfamily = gemini\n"
		"[provider b]\nhosts = B.example\nfamily = anthropic\nport = 443\n"
		"[provider c]\nhosts = 192.0.2.1\nport = 80\n");

	(void)state;
	assert_string_equal(cfg->providers[0].base_url, "https://[2001:db8::1]:8443/v1beta");
	assert_string_equal(cfg->providers[1].base_url, "https://b.example/v1");
	assert_string_equal(cfg->providers[2].base_url, "https://192.0.2.1:80/v1");
	dt_config_free(cfg);
}

/* base_url is stored in a char[512]. */
static void test_base_url_length(void **state)
{
	char text[1024], path[600];
	struct dt_cfg *cfg;
	size_t fixed = strlen("https://p.example/");

	(void)state;
	memset(path, 'x', sizeof(path));
	snprintf(text, sizeof(text), "[provider p]\nhosts = p.example\nbase_url = https://p.example/%.*s/\n",
		 (int)(511 - fixed), path);
	cfg = load_ok(text);
	assert_int_equal(strlen(cfg->providers[0].base_url), 511);
	dt_config_free(cfg);
	snprintf(text, sizeof(text), "[provider p]\nhosts = p.example\nbase_url = https://p.example/%.*s\n",
		 (int)(512 - fixed), path);
	load_fails(text, 3, "base_url: longer than 511 characters");
}

/* key = file:PATH | credential:NAME | env:VAR, the same as key_file & co. */
static void test_provider_key_forms(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"[provider a]\nhosts = a.example\nkey = file:/etc/detour/keys/a:b\n"
		"[provider b]\nhosts = b.example\nkey = credential:b-key\n"
		"[provider c]\nhosts = c.example\nkey = env:C_KEY\n");

	(void)state;
	assert_int_equal(cfg->providers[0].key.kind, DT_KEY_FILE);
	assert_string_equal(cfg->providers[0].key.ref, "/etc/detour/keys/a:b");
	assert_int_equal(cfg->providers[1].key.kind, DT_KEY_CREDENTIAL);
	assert_string_equal(cfg->providers[1].key.ref, "b-key");
	assert_int_equal(cfg->providers[2].key.kind, DT_KEY_ENV);
	assert_string_equal(cfg->providers[2].key.ref, "C_KEY");
	dt_config_free(cfg);
}

/* Providers may come after the classes that name them; a model name may
 * hold colons; one provider may serve models of several classes. */
/* The balanced strategies, prices in micro-dollars per million tokens. */
static void test_balanced_classes(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"[class fast]\nstrategy = combined\nlatency_factor_percent = 200\n"
		"member = p:a price_in=0.59 price_out=0.79\n"
		"member = q:b price_in=15 price_out=0\n"
		"[class quick]\nstrategy = least_latency\nmember = p:c\nmember = q:d\n"
		"[class cheap]\nstrategy = cheapest\n"
		"member = p:e price_in=1000 price_out=0.000001\nmember = q:f price_in=0 price_out=0\n"
		PROVIDER PROVIDER_Q);

	(void)state;
	assert_int_equal(cfg->classes[0].strategy, DT_STRATEGY_COMBINED);
	assert_int_equal(cfg->classes[0].latency_factor_percent, 200);
	assert_int_equal(cfg->classes[0].members[0].price_in, 590000);
	assert_int_equal(cfg->classes[0].members[0].price_out, 790000);
	assert_int_equal(cfg->classes[0].members[1].price_in, 15000000);
	assert_int_equal(cfg->classes[0].members[1].price_out, 0);
	assert_int_equal(cfg->classes[1].strategy, DT_STRATEGY_LEAST_LATENCY);
	assert_int_equal(cfg->classes[1].latency_factor_percent, 0);
	assert_int_equal(cfg->classes[1].members[0].price_in, CFG_PRICE_UNSET);
	assert_int_equal(cfg->classes[2].strategy, DT_STRATEGY_CHEAPEST);
	assert_int_equal(cfg->classes[2].members[0].price_in, 1000000000);
	assert_int_equal(cfg->classes[2].members[0].price_out, 1);
	dt_config_free(cfg);
}

/* Capability tiers and stickiness. */
static void test_tiered_sticky_classes(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"[class tiered]\nsticky = yes\nsticky_ttl_ms = 60000\n"
		"member = p:a caps=tools,images,json context=200000\n"
		"member = q:b caps=text\n"
		"[class plain]\nmember = p:c\nmember = q:d\n"
		PROVIDER PROVIDER_Q);

	(void)state;
	assert_true(cfg->classes[0].sticky);
	assert_int_equal(cfg->classes[0].sticky_ttl_ms, 60000);
	assert_true(cfg->classes[0].members[0].caps_declared);
	assert_int_equal(cfg->classes[0].members[0].caps, 7);
	assert_int_equal(cfg->classes[0].members[0].context_tokens, 200000);
	assert_true(cfg->classes[0].members[1].caps_declared);
	assert_int_equal(cfg->classes[0].members[1].caps, 0);
	assert_false(cfg->classes[1].sticky);
	assert_int_equal(cfg->classes[1].sticky_ttl_ms, 0);
	assert_false(cfg->classes[1].members[0].caps_declared);
	dt_config_free(cfg);
}

/* Prices: the list file, [prices NAME] over it, a member's options over
 * both; a cheapest class priced by the table alone. */
static void test_prices(void **state)
{
	static const char good[] = "# prices\n[price_list]\ndate = 2026-11-25\n[prices p.example]\n"
		"model = a input=1 output=2\nmodel = b* input=3 cached_input=0.5 output=4\n";
	static const char bad[] = "[price_list]\ndate = 2026-11-25\n[prices p]\nmodel = a input=1\n";
	char list[PATH_MAX + 32], text[PATH_MAX + 512];
	struct dt_price price;
	struct dt_cfg *cfg;
	char *hosts[] = { "p.example" };

	(void)state;
	snprintf(list, sizeof(list), "%s/list.conf", tmp);
	write_file(list, good, strlen(good));
	snprintf(text, sizeof(text), "[detour]\nprices_file = %s\n"
		 "[prices p]\nmodel = b-mini input=0.1 output=0.2\n"
		 "[class c]\nstrategy = cheapest\nmember = p:b-large\n"
		 "member = q:z price_in=5 price_out=6 price_cached=1\n" PROVIDER PROVIDER_Q, list);
	cfg = load_ok(text);
	assert_string_equal(dt_prices_date(cfg->prices), "2026-11-25");
	/* the list, by host, a prefix; cache writes at the input price */
	assert_true(dt_prices_find(cfg->prices, "p", hosts, 1, "b-large", &price));
	assert_int_equal(price.input, 3000000);
	assert_int_equal(price.cached_input, 500000);
	assert_int_equal(price.cache_write, 3000000);
	assert_int_equal(price.output, 4000000);
	/* the configuration's section wins over the list's prefix */
	assert_true(dt_prices_find(cfg->prices, "p", hosts, 1, "b-mini", &price));
	assert_int_equal(price.input, 100000);
	assert_int_equal(price.cached_input, 100000);
	/* a member's options */
	assert_true(dt_prices_find(cfg->prices, "q", NULL, 0, "z", &price));
	assert_int_equal(price.input, 5000000);
	assert_int_equal(price.cached_input, 1000000);
	assert_int_equal(price.output, 6000000);
	assert_false(dt_prices_find(cfg->prices, "q", NULL, 0, "a", &price));
	dt_config_free(cfg);

	/* the list's errors name its own lines */
	write_file(list, bad, strlen(bad));
	assert_true(load_len(text, strlen(text), &cfg) < 0);
	snprintf(text, sizeof(text), "%s:4: model: a: input= and output= are required", list);
	assert_string_equal(err, text);
}

static void test_classes(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"[class small]\n"
		"member = openai:gpt-4o-mini context=128000\n"
		"member = ollama:llama3.1:8b\n"
		"member = groq:llama-3.1-8b-instant\n"
		"[class large]\n"
		"member = openai:gpt-4o\n"
		"member = groq:llama-3.3-70b-versatile\n"
		"quality_check = always\n"
		"[provider openai]\nhosts = api.openai.com\n"
		"[provider groq]\nhosts = api.groq.com\n"
		"[provider ollama]\nhosts = 127.0.0.1\nport = 11434\n"
		"base_url = http://127.0.0.1:11434/v1\n");

	(void)state;
	assert_int_equal(cfg->n_classes, 2);
	assert_string_equal(cfg->classes[0].name, "small");
	assert_int_equal(cfg->classes[0].strategy, 0);
	assert_int_equal(cfg->classes[0].line, 1);
	assert_int_equal(cfg->classes[0].n_members, 3);
	assert_string_equal(cfg->classes[0].members[1].provider, "ollama");
	assert_string_equal(cfg->classes[0].members[1].model, "llama3.1:8b");
	assert_int_equal(cfg->classes[0].members[1].weight, 1);
	assert_int_equal(cfg->classes[0].members[1].line, 3);
	assert_string_equal(cfg->classes[1].name, "large");
	assert_int_equal(cfg->classes[1].n_members, 2);
	assert_string_equal(cfg->classes[1].members[1].model, "llama-3.3-70b-versatile");
	assert_int_equal(cfg->classes[0].quality_check, 0); /* failover */
	assert_int_equal(cfg->classes[1].quality_check, 1);
	dt_config_free(cfg);
}

/* [health] sets the health engine's thresholds; what is not set stays 0,
 * the engine's default. */
static void test_health_section(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"[health]\n"
		"window_ms = 60000\n"
		"min_calls = 20\n"
		"failure_rate_percent = 40\n"
		"class_max_ejected_percent = 100\n"
		"probe_interval_ms = 5000\n"
		"uplink = eth0.100\n"
		"uplink_xdp_mode = generic\n"
		PROVIDER);

	(void)state;
	assert_int_equal(cfg->health.window_ms, 60000);
	assert_int_equal(cfg->health.min_calls, 20);
	assert_int_equal(cfg->health.failure_rate_percent, 40);
	assert_int_equal(cfg->health.class_max_ejected_percent, 100);
	assert_int_equal(cfg->health.probe_interval_ms, 5000);
	assert_int_equal(cfg->health.slow_ceiling_ms, 0);
	assert_string_equal(cfg->uplink, "eth0.100");
	assert_int_equal(cfg->uplink_xdp_mode, DT_XDP_GENERIC);
	dt_config_free(cfg);
	/* no uplink by default */
	cfg = load_ok(PROVIDER);
	assert_string_equal(cfg->uplink, "");
	assert_int_equal(cfg->uplink_xdp_mode, DT_XDP_AUTO);
	dt_config_free(cfg);
}

/* [metrics] and [access_log]: both off by default; /metrics on loopback
 * (IPv4 or IPv6) unless allow_remote. */
static void test_metrics_and_access_log(void **state)
{
	struct dt_cfg *cfg = load_ok(PROVIDER);
	const struct sockaddr_in6 *v6;

	(void)state;
	assert_false(cfg->metrics.on);
	assert_string_equal(cfg->access_log.path, "");
	assert_false(cfg->access_log.prompts);
	dt_config_free(cfg);
	cfg = load_ok("[metrics]\nlisten = 127.0.0.1:9464\n[access_log]\npath = /var/log/detour/access.log\n"
		      "prompts = yes\n" PROVIDER);
	assert_true(cfg->metrics.on);
	assert_int_equal(cfg->metrics.addr.ss_family, AF_INET);
	assert_int_equal(ntohs(((const struct sockaddr_in *)&cfg->metrics.addr)->sin_port), 9464);
	assert_string_equal(cfg->metrics.listen, "127.0.0.1:9464");
	assert_string_equal(cfg->access_log.path, "/var/log/detour/access.log");
	assert_true(cfg->access_log.prompts);
	dt_config_free(cfg);
	cfg = load_ok("[metrics]\nlisten = [::1]:9464\n" PROVIDER);
	v6 = (const struct sockaddr_in6 *)&cfg->metrics.addr;
	assert_int_equal(v6->sin6_family, AF_INET6);
	assert_true(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
	assert_int_equal(cfg->metrics.addr_len, sizeof(*v6));
	dt_config_free(cfg);
	/* allowed beyond loopback only when asked, whatever the order of the keys */
	cfg = load_ok("[metrics]\nlisten = 0.0.0.0:9464\nallow_remote = yes\n" PROVIDER);
	assert_true(cfg->metrics.allow_remote);
	dt_config_free(cfg);
	cfg = load_ok("[metrics]\nallow_remote = yes\nlisten = [::]:9464\n" PROVIDER);
	dt_config_free(cfg);
}

/* The signal sources: switched in [health], probes chosen per provider. */
static void test_signal_switches(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"[health]\n"
		"probes = no\n"
		"probe_timeout_ms = 2500\n"
		"probe_jitter_percent = 50\n"
		"tcp_signals = no\n"
		"netwatch = no\n"
		PROVIDER
		"probe_ttft_model = gpt-4o-mini\n"
		"probe_ttft_per_hour = 12\n"
		PROVIDER_Q
		"probe = no\n"
		"ask_stream_usage = no\n");

	(void)state;
	assert_false(cfg->probes);
	assert_int_equal(cfg->probe_timeout_ms, 2500);
	assert_int_equal(cfg->health.probe_jitter_percent, 50);
	assert_false(cfg->tcp_signals);
	assert_false(cfg->netwatch);
	assert_true(cfg->providers[0].probe);
	assert_string_equal(cfg->providers[0].probe_ttft_model, "gpt-4o-mini");
	assert_int_equal(cfg->providers[0].probe_ttft_per_hour, 12);
	assert_false(cfg->providers[1].probe);
	assert_string_equal(cfg->providers[1].probe_ttft_model, "");
	assert_true(cfg->providers[0].ask_stream_usage);
	assert_false(cfg->providers[1].ask_stream_usage);
	dt_config_free(cfg);
}

/* Model names: 1 to 127 printable characters. */
static void test_model_name_length(void **state)
{
	char model[200], text[512];
	struct dt_cfg *cfg;

	(void)state;
	memset(model, 'm', sizeof(model));
	snprintf(text, sizeof(text), "[class c]\nmember = p:%.127s\nmember = q:b\n" PROVIDER PROVIDER_Q, model);
	cfg = load_ok(text);
	assert_int_equal(strlen(cfg->classes[0].members[0].model), 127);
	dt_config_free(cfg);
	snprintf(text, sizeof(text), "[class c]\nmember = p:%.128s\nmember = q:b\n" PROVIDER PROVIDER_Q, model);
	load_fails(text, 2, "member: model name must be 1 to 127 printable characters without blanks");
}

static void test_class_limits(void **state)
{
	size_t cap = 100 * 64, len = 0;
	char *text = malloc(cap);

	(void)state;
	assert_non_null(text);
	len += (size_t)snprintf(text + len, cap - len, "[class c]\n");
	for (int i = 0; i <= 64; i++)
		len += (size_t)snprintf(text + len, cap - len, "member = p%d:m\n", i);
	/* the 65th member is on line 66 */
	load_fails(text, 66, "member: class c has more than 64 members");
	free(text);
}

/* Two applications, a unit and a cgroup; [enroll] covers both. */
static void test_apps(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"[enroll]\n"
		"cgroup = user.slice\n"
		"unit = app.service\n"
		"[app editor]\n"
		"unit = editor.service\n"
		"key.p = file:/etc/detour/keys/editor-p\n"
		"[app web]\n"
		"cgroup = system.slice/app.service\n"
		"key.q = env:WEB_Q\n"
		"key.p = credential:web-p\n"
		PROVIDER PROVIDER_Q);
	char want[PATH_MAX * 2];

	(void)state;
	assert_int_equal(cfg->n_enroll, 2);
	assert_int_equal(cfg->n_apps, 2);
	assert_string_equal(cfg->apps[0].name, "editor");
	assert_int_equal(cfg->apps[0].line, 4);
	assert_int_equal(cfg->apps[0].n_cgroups, 1);
	snprintf(want, sizeof(want),
		 "%s/user.slice/user-1000.slice/user@1000.service/app.slice/editor.service", root);
	assert_string_equal(cfg->apps[0].cgroups[0], want);
	assert_int_equal(cfg->apps[0].n_keys, 1);
	assert_string_equal(cfg->apps[1].name, "web");
	snprintf(want, sizeof(want), "%s/system.slice/app.service", root);
	assert_string_equal(cfg->apps[1].cgroups[0], want);
	assert_int_equal(cfg->apps[1].n_keys, 2);
	assert_string_equal(cfg->apps[1].keys[0].provider, "q");
	assert_int_equal(cfg->apps[1].keys[0].line, 9);
	assert_string_equal(cfg->apps[1].keys[1].provider, "p");
	assert_int_equal(cfg->apps[1].keys[1].key.kind, DT_KEY_CREDENTIAL);
	assert_string_equal(cfg->apps[1].keys[1].key.ref, "web-p");
	dt_config_free(cfg);
}

/* Rate limits: a provider's rpm, tpm and pacing; applications' shares,
 * which stand without a key of their own. */
static void test_rate_limits(void **state)
{
	struct dt_cfg *cfg = load_ok(
		PROVIDER
		"rpm = 500\n"
		"tpm = 200000\n"
		"pace = yes\n"
		"pace_max_wait_ms = 1500\n"
		"pace_max_queue = 20\n"
		PROVIDER_Q
		"[app chat]\n"
		"unit = editor.service\n"
		"share.p = 30%\n"
		"share.q = 100\n"
		"[app batch]\n"
		"unit = app.service\n"
		"share.p = 70%\n"
		"key.q = env:BATCH_Q\n"
		"rpm.q = 60\n"
		"tpm.q = 90000\n");

	(void)state;
	assert_int_equal(cfg->providers[0].rpm, 500);
	assert_int_equal(cfg->providers[0].tpm, 200000);
	assert_true(cfg->providers[0].pace);
	assert_int_equal(cfg->providers[0].pace_max_wait_ms, 1500);
	assert_int_equal(cfg->providers[0].pace_max_queue, 20);
	assert_int_equal(cfg->providers[1].rpm, 0);
	assert_false(cfg->providers[1].pace);
	assert_int_equal(cfg->apps[0].n_keys, 0);
	assert_int_equal(cfg->apps[0].shares.n, 2);
	assert_string_equal(cfg->apps[0].shares.v[0].provider, "p");
	assert_int_equal(cfg->apps[0].shares.v[0].value, 30);
	assert_int_equal(cfg->apps[0].shares.v[0].line, 12);
	assert_int_equal(cfg->apps[0].shares.v[1].value, 100);
	assert_int_equal(cfg->apps[1].shares.v[0].value, 70);
	assert_int_equal(cfg->apps[1].rpm.n, 1);
	assert_string_equal(cfg->apps[1].rpm.v[0].provider, "q");
	assert_int_equal(cfg->apps[1].rpm.v[0].value, 60);
	assert_int_equal(cfg->apps[1].tpm.v[0].value, 90000);
	assert_int_equal(cfg->apps[0].rpm.n, 0);
	dt_config_free(cfg);
}

/* Whatever was written where a key source or a URL belongs, the error
 * does not repeat it: it may be a key. */
static void test_errors_never_repeat_secrets(void **state)
{
	static const char *const texts[] = {
		"[provider p]\nhosts = p.example\nkey = sk-SECRET123\n",
		"[provider p]\nhosts = p.example\nkey = Bearer sk-SECRET123\n",
		"[provider p]\nhosts = p.example\nkey_file = sk-SECRET123\n",
		"[provider p]\nhosts = p.example\nkey_env = sk-SECRET123\n",
		"[provider p]\nhosts = p.example\nkey_credential = ../sk-SECRET123\n",
		"[provider p]\nhosts = p.example\nkey = file:sk-SECRET123\n",
		"[provider p]\nhosts = p.example\nkey = env:sk-SECRET123\n",
		"[provider p]\nhosts = p.example\nbase_url = https://p.example/v1?key=SECRET123\n",
		"[provider p]\nhosts = p.example\nbase_url = https://u:SECRET123@p.example/v1\n",
		"[provider p]\nhosts = p.example\nbase_url = SECRET123\n",
		"[app a]\nunit = app.service\nkey.p = sk-SECRET123\n" PROVIDER,
		"[app a]\nunit = app.service\nkey.p = file:SECRET123\n" PROVIDER,
		"[app a]\nunit = app.service\nkey.p = env:SECRET-123\n" PROVIDER,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct dt_cfg *cfg;

		assert_int_equal(load_len(texts[i], strlen(texts[i]), &cfg), -1);
		assert_true(error_is(3, ""));
		if (strstr(err, "SECRET"))
			fail_msg("case %zu repeats the value: %s", i, err);
	}
}
static void test_hosts_repeat_and_normalize(void **state)
{
	static const char *const want[] = {
		"a.example", "b.example", "c.example", "192.0.2.1", "2001:db8::1",
		"d-1.example", "xn--bcher-kva.example",
	};
	struct dt_cfg *cfg = load_ok(
		"[provider p]\n"
		"hosts = A.Example, b.example\tc.example,,\n"
		"hosts = 192.0.2.1 2001:DB8:0::1\n"
		"hosts = d-1.example,xn--bcher-kva.example\n"
		"[provider q]\n"
		"hosts = q.example\n");

	(void)state;
	assert_int_equal(cfg->providers[0].n_hosts, 7);
	for (size_t i = 0; i < 7; i++)
		assert_string_equal(cfg->providers[0].hosts[i], want[i]);
	assert_int_equal(cfg->providers[1].n_hosts, 1);
	assert_int_equal(cfg->providers[1].line, 5);
	dt_config_free(cfg);
}

static void test_comments_and_layout(void **state)
{
	struct dt_cfg *cfg = load_ok(
		"\xEF\xBB\xBF# byte order mark, then comments of both kinds\r\n"
		"; a comment\r\n"
		"\r\n"
		"  [detour]   ; indented header, trailing comment\r\n"
		"\tmode = failover # inline hash comment\r\n"
		"    log_level=warn\t; tab before the comment\r\n"
		"[provider p]\r\n"
		"    hosts = p.example ; indented key: not a continuation line\r\n"
		"    port = 444\r\n"
		"    key_file = /etc/keys/a#b;c\r\n");

	(void)state;
	assert_int_equal(cfg->mode, DT_MODE_FAILOVER);
	assert_int_equal(cfg->log_level, DT_LOG_WARN);
	assert_int_equal(cfg->providers[0].n_hosts, 1);
	assert_string_equal(cfg->providers[0].hosts[0], "p.example");
	assert_int_equal(cfg->providers[0].port, 444);
	assert_int_equal(cfg->providers[0].line, 7);
	/* '#' and ';' not preceded by a blank are part of the value */
	assert_string_equal(cfg->providers[0].key.ref, "/etc/keys/a#b;c");
	dt_config_free(cfg);
}

static void test_log_level_comment(void **state)
{
	/* "warn;x": ';' without a blank before it is not a comment */
	(void)state;
	load_fails("[detour]\nlog_level = warn;x\n" PROVIDER, 2, "log_level: unknown value \"warn;x\"");
}

static void test_enroll_repeats(void **state)
{
	struct dt_cfg *cfg;
	char text[2048], want[PATH_MAX * 2];

	(void)state;
	snprintf(text, sizeof(text),
		 "[enroll]\n"
		 "cgroup = %s/plain\n"
		 "cgroup = a/twin.service\n"
		 "unit = app.service\n"
		 "\n"
		 "[enroll]\n"
		 "unit = editor.service\n"
		 "cgroup = %s/b/../b/twin.service/\n"
		 PROVIDER, root, root);
	cfg = load_ok(text);
	assert_int_equal(cfg->n_enroll, 5);
	snprintf(want, sizeof(want), "%s/plain", root);
	assert_string_equal(cfg->enroll[0].cgroup, want);
	assert_int_equal(cfg->enroll[0].line, 2);
	snprintf(want, sizeof(want), "%s/a/twin.service", root);
	assert_string_equal(cfg->enroll[1].cgroup, want);
	assert_int_equal(cfg->enroll[1].line, 3);
	snprintf(want, sizeof(want), "%s/system.slice/app.service", root);
	assert_string_equal(cfg->enroll[2].cgroup, want);
	assert_int_equal(cfg->enroll[2].line, 4);
	snprintf(want, sizeof(want),
		 "%s/user.slice/user-1000.slice/user@1000.service/app.slice/editor.service", root);
	assert_string_equal(cfg->enroll[3].cgroup, want);
	assert_int_equal(cfg->enroll[3].line, 7);
	snprintf(want, sizeof(want), "%s/b/twin.service", root);
	assert_string_equal(cfg->enroll[4].cgroup, want);
	assert_int_equal(cfg->enroll[4].line, 8);
	dt_config_free(cfg);
}

/* system.slice/NAME wins over a same-named cgroup elsewhere. */
static void test_enroll_unit_prefers_system_slice(void **state)
{
	struct dt_cfg *cfg;
	char want[PATH_MAX * 2];

	(void)state;
	make_dir("plain/app.service");
	cfg = load_ok("[enroll]\nunit = app.service\n" PROVIDER);
	snprintf(want, sizeof(want), "%s/system.slice/app.service", root);
	assert_string_equal(cfg->enroll[0].cgroup, want);
	dt_config_free(cfg);
}

static void test_example_config(void **state)
{
	char example[PATH_MAX];
	struct dt_cfg *cfg = NULL;

	(void)state;
	/* __FILE__ is tests/unit/test_config.c, relative to the top directory */
	snprintf(example, sizeof(example), "%.*ssystemd/detour.conf.example",
		 (int)(strlen(__FILE__) - strlen("tests/unit/test_config.c")), __FILE__);
	if (dt_config_load(example, &cfg, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(cfg->mode, DT_MODE_PROXY);
	assert_int_equal(cfg->n_providers, 4);
	assert_string_equal(cfg->providers[0].name, "openai");
	assert_string_equal(cfg->providers[0].hosts[0], "api.openai.com");
	assert_int_equal(cfg->providers[0].family, DT_FAMILY_OPENAI);
	assert_int_equal(cfg->providers[0].key.kind, DT_KEY_FILE);
	assert_string_equal(cfg->providers[0].key.ref, "/etc/detour/keys/openai");
	assert_string_equal(cfg->providers[0].base_url, "https://api.openai.com/v1");
	assert_string_equal(cfg->providers[1].name, "anthropic");
	assert_string_equal(cfg->providers[1].hosts[0], "api.anthropic.com");
	assert_int_equal(cfg->providers[1].family, DT_FAMILY_ANTHROPIC);
	assert_int_equal(cfg->providers[1].key.kind, DT_KEY_FILE);
	assert_string_equal(cfg->providers[1].key.ref, "/etc/detour/keys/anthropic");
	assert_string_equal(cfg->providers[2].name, "groq");
	assert_string_equal(cfg->providers[2].base_url, "https://api.groq.com/openai/v1");
	assert_string_equal(cfg->providers[3].name, "deepseek");
	assert_int_equal(cfg->n_enroll, 1);
	assert_string_equal(cfg->enroll[0].cgroup, root);
	assert_int_equal(cfg->n_classes, 1);
	assert_int_equal(cfg->classes[0].n_members, 3);
	assert_string_equal(cfg->classes[0].members[0].provider, "openai");
	assert_string_equal(cfg->classes[0].members[1].provider, "groq");
	assert_string_equal(cfg->classes[0].members[2].model, "deepseek-chat");
	assert_int_equal(cfg->n_apps, 0);
	assert_true(cfg->proxy.intercept_tls);
	dt_config_free(cfg);
}

/* Without the seam the root is the machine's cgroup v2 mount. */
static void test_discovered_root(void **state)
{
	char mount[PATH_MAX], resolved[PATH_MAX];
	struct dt_cfg *cfg;

	(void)state;
	unsetenv("DETOUR_CGROUP_ROOT");
	if (dt_cgroup2_mount("/proc/mounts", mount, sizeof(mount)) < 0)
		skip();
	assert_non_null(realpath(mount, resolved));
	cfg = load_ok(PROVIDER);
	assert_string_equal(cfg->enroll[0].cgroup, resolved);
	dt_config_free(cfg);
}

/* ---- errors ------------------------------------------------------------------ */

struct bad_case {
	const char *text;
	int line;
	const char *reason;
};

static const struct bad_case bad_cases[] = {
	/* structure */
	{ "[bogus]\n" PROVIDER, 1, "unknown section [bogus]" },
	{ "[detour extra]\n" PROVIDER, 1, "unknown section [detour extra]" },
	{ "[detour]\n\nfoo = 1\n" PROVIDER, 3, "unknown key \"foo\" in [detour]" },
	{ "mode = proxy\n" PROVIDER, 1, "key \"mode\" outside of any section" },
	{ "[detour]\nnot a pair\n" PROVIDER, 2, "syntax error" },
	{ "[detour\nmode = proxy\n" PROVIDER, 1, "syntax error" },
	{ "[detour] x\n" PROVIDER, 1, "text after section header" },
	{ "[detour]\nmode = proxy\nmode = failover\n" PROVIDER, 3, "mode already set at line 2" },
	{ "[detour]\nmode =\n" PROVIDER, 2, "mode: empty value" },
	/* the first error wins, syntax or not */
	{ "[detour]\nbad line\nmode = x\n" PROVIDER, 2, "syntax error" },
	{ "[detour]\nmode = x\nbad line\n" PROVIDER, 2, "mode: unknown value \"x\"" },
	/* [detour] values */
	{ "[detour]\nmode = bogus\n" PROVIDER, 2, "mode: unknown value \"bogus\"" },
	{ "[detour]\nlisten = 10.0.0.1:15001\n" PROVIDER, 2, "not an IPv4 loopback address" },
	{ "[detour]\nlisten = localhost:15001\n" PROVIDER, 2, "not an IPv4 loopback address" },
	{ "[detour]\nlisten = 127.0.0.1\n" PROVIDER, 2, "expected ADDRESS:PORT" },
	{ "[detour]\nlisten = 127.0.0.1:0\n" PROVIDER, 2, "listen: expected a number from 1 to 65535, got \"0\"" },
	{ "[detour]\nlisten = 127.0.0.1:65536\n" PROVIDER, 2, "from 1 to 65535" },
	{ "[detour]\nlisten = 127.0.0.1:\n" PROVIDER, 2, "from 1 to 65535" },
	{ "[detour]\nlisten6 = [2001:db8::1]:15001\n" PROVIDER, 2, "not the IPv6 loopback address" },
	{ "[detour]\nlisten6 = ::1:15001\n" PROVIDER, 2, "expected [ADDRESS]:PORT" },
	{ "[detour]\nlisten6 = [::1]\n" PROVIDER, 2, "expected [ADDRESS]:PORT" },
	{ "[detour]\nlisten6 = []:15001\n" PROVIDER, 2, "expected [ADDRESS]:PORT" },
	{ "[detour]\nlisten = 127.0.0.1:15002\nlisten6 = [::1]:15001\n" PROVIDER, 3,
	  "listen6: port 15001 differs from the listen port 15002" },
	{ "[detour]\nlisten6 = [::1]:16000\nlisten = 127.0.0.1:15001\n" PROVIDER, 2, "differs" },
	{ "[detour]\nlisten6 = [::1]:16000\n" PROVIDER, 2, "differs from the listen port 15001" },
	{ "[detour]\npin_dir = sys/fs/bpf\n" PROVIDER, 2, "pin_dir: not an absolute path" },
	{ "[detour]\nstate_dir = \"/var\"\n" PROVIDER, 2, "state_dir: not an absolute path" },
	{ "[detour]\nlog_level = loud\n" PROVIDER, 2, "log_level: unknown value \"loud\"" },
	{ "[detour]\nlog_level = INFO\n" PROVIDER, 2, "log_level: unknown value" },
	{ "[detour]\nmark = 0\n" PROVIDER, 2, "mark: expected a number from 1 to 4294967295" },
	{ "[detour]\nmark = 0x100000000\n" PROVIDER, 2, "mark: expected" },
	{ "[detour]\nmark = 0x\n" PROVIDER, 2, "mark: expected" },
	{ "[detour]\nheartbeat_interval_ms = abc\n" PROVIDER, 2, "heartbeat_interval_ms: expected a number from 10 to 10000, got \"abc\"" },
	{ "[detour]\nheartbeat_interval_ms = -5\n" PROVIDER, 2, "heartbeat_interval_ms: expected" },
	{ "[detour]\nheartbeat_interval_ms = +50\n" PROVIDER, 2, "heartbeat_interval_ms: expected" },
	{ "[detour]\nheartbeat_interval_ms = 50ms\n" PROVIDER, 2, "heartbeat_interval_ms: expected" },
	{ "[detour]\nheartbeat_interval_ms = 9\n" PROVIDER, 2, "heartbeat_interval_ms: expected" },
	{ "[detour]\nheartbeat_interval_ms = 99999999999999999999999\n" PROVIDER, 2, "heartbeat_interval_ms: expected" },
	{ "[detour]\nheartbeat_ttl_ms = 60001\n" PROVIDER, 2, "heartbeat_ttl_ms: expected a number from 25 to 60000" },
	{ "[detour]\nconnect_timeout_ms = 5\n" PROVIDER, 2, "connect_timeout_ms: expected a number from 10 to 60000" },
	{ "[detour]\ndown_hold_ms = 3600001\n" PROVIDER, 2, "down_hold_ms: expected a number from 100 to 3600000" },
	{ "[detour]\ndns_refresh_s = 0\n" PROVIDER, 2, "dns_refresh_s: expected a number from 1 to 86400" },
	{ "[detour]\ndns_grace_s = 604801\n" PROVIDER, 2, "dns_grace_s: expected a number from 0 to 604800" },
	{ "[detour]\nmax_connections = 65537\n" PROVIDER, 2, "max_connections: expected a number from 1 to 65536" },
	/* heartbeat: the ttl must cover two missed beats */
	{ "[detour]\nheartbeat_interval_ms = 500\n" PROVIDER, 2,
	  "heartbeat_ttl_ms (1000) must be more than twice heartbeat_interval_ms (500)" },
	{ "[detour]\nheartbeat_interval_ms = 100\nheartbeat_ttl_ms = 200\n" PROVIDER, 3, "must be more than twice" },
	{ "[detour]\nheartbeat_ttl_ms = 400\n" PROVIDER, 2, "heartbeat_ttl_ms (400)" },
	/* providers */
	{ "[provider]\nhosts = a.example\n", 1, "expected [provider NAME], got [provider]" },
	{ "[provider a b]\nhosts = a.example\n", 1, "expected [provider NAME]" },
	{ "[provider bad/name]\nhosts = a.example\n", 1, "provider name must be 1 to 31" },
	{ "[provider abcdefghijklmnopqrstuvwxyz012345]\nhosts = a.example\n", 1, "provider name" },
	{ PROVIDER "[provider p]\nhosts = b.example\n", 3, "provider p already defined at line 1" },
	{ PROVIDER "[provider q]\nport = 443\n", 3, "provider q has no hosts" },
	{ PROVIDER "[provider q]\n", 3, "provider q has no hosts" },
	{ PROVIDER "[provider q]\nport = 1\nhosts = x.example, P.EXAMPLE\n", 5,
	  "hosts: p.example is already a host of provider p" },
	{ "[provider p]\nhosts = a.example\nhosts = a.example\n", 3, "a.example is already a host of provider p" },
	{ "[provider p]\nhosts = 192.0.2.1\n[provider q]\nhosts = 192.0.2.01\n", 4, "hosts: not a valid host name" },
	{ "[provider p]\nhosts = 2001:db8::1\n[provider q]\nhosts = 2001:db8:0:0::1\n", 4,
	  "2001:db8::1 is already a host of provider p" },
	{ "[provider p]\nhosts = -a.example\n", 2, "hosts: not a valid host name or address: \"-a.example\"" },
	{ "[provider p]\nhosts = a-.example\n", 2, "not a valid host name" },
	{ "[provider p]\nhosts = a..example\n", 2, "not a valid host name" },
	{ "[provider p]\nhosts = .a.example\n", 2, "not a valid host name" },
	{ "[provider p]\nhosts = a.example.\n", 2, "not a valid host name" },
	{ "[provider p]\nhosts = under_score.example\n", 2, "not a valid host name" },
	{ "[provider p]\nhosts = https://a.example\n", 2, "not a valid host name" },
	{ "[provider p]\nhosts = 1.2.3\n", 2, "not a valid host name" },
	{ "[provider p]\nhosts = [2001:db8::1]\n", 2, "not a valid host name" },
	{ "[provider p]\nhosts = a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.0123456789.x\n"
	  "hosts = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\n", 3,
	  "not a valid host name" },
	{ "[provider p]\nhosts = p.example\nport = 0\n", 3, "port: expected a number from 1 to 65535" },
	{ "[provider p]\nhosts = p.example\nport = 70000\n", 3, "port: expected" },
	{ "[provider p]\nhosts = p.example\nport = 443\nport = 443\n", 4, "port already set at line 3" },
	{ "[provider p]\nhosts = p.example\nfamily = mistral\n", 3, "family: unknown value \"mistral\"" },
	{ "[provider p]\nhosts = p.example\nfamily = OpenAI\n", 3, "family: unknown value" },
	{ "[provider p]\nhosts = p.example\nkey_file = keys/p\n", 3, "key_file: not an absolute path" },
	{ "[provider p]\nhosts = p.example\nkey_credential = a/b\n", 3, "key_credential: not a credential name" },
	{ "[provider p]\nhosts = p.example\nkey_credential = ..\n", 3, "not a credential name" },
	{ "[provider p]\nhosts = p.example\nkey_env = 1KEY\n", 3, "key_env: not an environment variable name" },
	{ "[provider p]\nhosts = p.example\nkey_env = MY-KEY\n", 3, "not an environment variable name" },
	{ "[provider p]\nhosts = p.example\nkey_file = /k\nkey_env = K\n", 4,
	  "key_env: provider p already has a key source" },
	{ "[provider p]\nkey_credential = k\nhosts = p.example\nkey_file = /k\n", 4, "already has a key source" },
	{ "[provider p]\nhosts = p.example\nbogus = 1\n", 3, "unknown key \"bogus\" in [provider]" },
	{ "[detour]\n", 0, "no [provider NAME] section" },
	{ "", 0, "no [provider NAME] section" },
	/* enrollment */
	{ "[enroll]\ncgroup = missing\n" PROVIDER, 2, "No such file or directory" },
	{ "[enroll]\ncgroup = /\n" PROVIDER, 2, "is not a cgroup under the cgroup v2 mount" },
	{ "[enroll]\ncgroup = ../\n" PROVIDER, 2, "is not a cgroup under the cgroup v2 mount" },
	{ "[enroll]\ncgroup = cgroup.procs\n" PROVIDER, 2, "is not a cgroup under" },
	{ "[enroll]\nunit = nope.service\n" PROVIDER, 2, "unit: no cgroup of unit nope.service under" },
	{ "[enroll]\nunit = twin.service\n" PROVIDER, 2, "unit: unit twin.service is ambiguous" },
	{ "[enroll]\nunit = a/twin.service\n" PROVIDER, 2, "unit: not a unit name" },
	{ "[enroll]\nunit = ..\n" PROVIDER, 2, "unit: not a unit name" },
	{ "[enroll]\ncgroup = system.slice/app.service\n\nunit = app.service\n" PROVIDER, 4,
	  "system.slice/app.service already enrolled at line 2" },
	{ "[enroll]\nslice = x\n" PROVIDER, 2, "unknown key \"slice\" in [enroll]" },
	/* [provider] base_url */
#define BASE_URL(v) "[provider p]\nhosts = p.example\nbase_url = " v "\n"
	{ BASE_URL("ftp://p.example"), 3, "base_url: expected https://HOST[:PORT][/PATH]" },
	{ BASE_URL("p.example/v1"), 3, "base_url: expected https://" },
	{ BASE_URL("HTTPS://p.example/v1"), 3, "base_url: expected https://" },
	{ BASE_URL("http://p.example/v1"), 3,
	  "base_url: http:// only to localhost or an address literal (a local model); use https://" },
	{ BASE_URL("https://p.example/v1?x=1"), 3, "base_url: no query (?) or fragment (#) allowed" },
	{ BASE_URL("https://p.example/v1#top"), 3, "base_url: no query (?) or fragment (#) allowed" },
	{ BASE_URL("https://user:pw@p.example/v1"), 3, "base_url: no user information (USER@) allowed" },
	{ BASE_URL("https://p.example/a\x01b"), 3, "base_url: blank or control character in the URL" },
	{ BASE_URL("https://p.example:0/v1"), 3, "base_url: port: expected a number from 1 to 65535" },
	{ BASE_URL("https://p.example:65536/v1"), 3, "base_url: port: expected" },
	{ BASE_URL("https://p.example:/v1"), 3, "base_url: port: expected" },
	{ BASE_URL("https://p.example:443x/v1"), 3, "base_url: port: expected" },
	{ BASE_URL("https://p.example:1234567/v1"), 3, "base_url: port: expected" },
	{ BASE_URL("https:///v1"), 3, "base_url: not a valid host" },
	{ BASE_URL("https://"), 3, "base_url: not a valid host" },
	{ BASE_URL("https://bad_host.example/v1"), 3, "base_url: not a valid host" },
	{ BASE_URL("https://[p.example]/v1"), 3, "base_url: not a valid host" },
	{ BASE_URL("https://[192.0.2.1]/v1"), 3, "base_url: not a valid host" },
	{ BASE_URL("https://[2001:db8::1/v1"), 3, "base_url: not a valid host" },
	{ BASE_URL("https://[2001:db8::1]x/v1"), 3, "base_url: not a valid host" },
	{ BASE_URL("https://2001:db8::1/v1"), 3, "base_url: not a valid host" },
	{ BASE_URL("https://a.example") "base_url = https://b.example\n", 4, "base_url already set at line 3" },
#undef BASE_URL
	/* [provider] key: sources only, never a key */
	{ "[provider p]\nhosts = p.example\nkey = sk-abc\n", 3,
	  "key: keys do not belong in the configuration file: use key_file=, key_credential= or key_env=" },
	{ "[provider p]\nhosts = p.example\nkey = FILE:/k\n", 3, "key: keys do not belong in the configuration file" },
	{ "[provider p]\nhosts = p.example\nkey = file:keys/p\n", 3, "key: not an absolute path" },
	{ "[provider p]\nhosts = p.example\nkey = file:\n", 3, "key: not an absolute path" },
	{ "[provider p]\nhosts = p.example\nkey = credential:..\n", 3, "key: not a credential name" },
	{ "[provider p]\nhosts = p.example\nkey = env:MY-KEY\n", 3, "key: not an environment variable name" },
	{ "[provider p]\nhosts = p.example\nkey = env:K\nkey_file = /k\n", 4,
	  "key_file: provider p already has a key source" },
	{ "[provider p]\nhosts = p.example\nkey_env = K\nkey = file:/k\n", 4,
	  "key: provider p already has a key source" },
	{ "[provider p]\nhosts = p.example\nkey = env:K\nkey = env:L\n", 4, "key already set at line 3" },
	/* [class NAME] */
	{ "[class]\n" PROVIDER, 1, "expected [class NAME], got [class]" },
	{ "[class c d]\n" PROVIDER, 1, "expected [class NAME], got [class c d]" },
	{ "[class bad/name]\n" PROVIDER, 1, "class name must be 1 to 31 letters, digits" },
	{ CLASS "[class c]\n" PROVIDER PROVIDER_Q, 4, "class c already defined at line 1" },
	{ "[class c]\nmember = p\n" PROVIDER, 2,
	  "member: expected PROVIDER:MODEL [context=N] [weight=N] [price_in=$ price_out=$ [price_cached=$]] [caps=LIST], got \"p\"" },
	{ "[class c]\nmember = p:\n" PROVIDER, 2,
	  "member: model name must be 1 to 127 printable characters without blanks" },
	{ "[class c]\nmember = p:a\x7f\n" PROVIDER, 2, "member: model name must be" },
	{ "[class c]\nmember = :m\n" PROVIDER, 2, "member: not a provider name: \"\"" },
	{ "[class c]\nmember = bad/p:m\n" PROVIDER, 2, "member: not a provider name: \"bad/p\"" },
	{ "[class c]\nmember = p:m context=0\n" PROVIDER, 2,
	  "context: expected a number from 1 to 100000000, got \"0\"" },
	{ "[class c]\nmember = p:m context=100000001\n" PROVIDER, 2, "context: expected" },
	{ "[class c]\nmember = p:m context=\n" PROVIDER, 2, "context: expected" },
	{ "[class c]\nmember = p:m context=1 context=2\n" PROVIDER, 2, "member: context= given twice" },
	{ "[class c]\nstrategy = weighted\nmember = p:m weight=0\n" PROVIDER, 3,
	  "weight: expected a number from 1 to 1000, got \"0\"" },
	{ "[class c]\nmember = p:m weight=1001\n" PROVIDER, 2, "weight: expected" },
	{ "[class c]\nmember = p:m size=3\n" PROVIDER, 2,
	  "member: unknown option \"size=3\" (context=N, weight=N, price_in=$, price_out=$, price_cached=$ or caps=LIST)" },
	{ "[class c]\nmember = p:m caps=tools,audio\n" PROVIDER, 2,
	  "caps: unknown capability \"audio\" (text, tools, images or json)" },
	{ "[class c]\nmember = p:m caps=\n" PROVIDER, 2, "caps: unknown capability \"\"" },
	{ "[class c]\nmember = p:m caps=tools,,json\n" PROVIDER, 2, "caps: unknown capability \"\"" },
	{ "[class c]\nmember = p:m caps=Tools\n" PROVIDER, 2, "caps: unknown capability \"Tools\"" },
	{ "[class c]\nmember = p:m caps=json,tools,json\n" PROVIDER, 2, "caps: json given twice" },
	{ "[class c]\nmember = p:m caps=json caps=tools\n" PROVIDER, 2, "member: caps= given twice" },
	{ "[class c]\nmember = p:a caps=tools\nmember = q:b\n" PROVIDER PROVIDER_Q, 3,
	  "member: caps= missing, but given on the member at line 2 of class c: give it on every member or none" },
	{ "[class c]\nmember = p:a\n\nmember = q:b caps=json\n" PROVIDER PROVIDER_Q, 4,
	  "member: caps= given, but not on the member at line 2 of class c: give it on every member or none" },
	{ "[class c]\nsticky = maybe\n" PROVIDER, 2, "sticky: unknown value \"maybe\"" },
	{ "[class c]\nsticky_ttl_ms = 999\n" PROVIDER, 2,
	  "sticky_ttl_ms: expected a number from 1000 to 86400000, got \"999\"" },
	{ "[class c]\nmember = p:m context\n" PROVIDER, 2, "member: unknown option \"context\"" },
	{ "[class c]\nstrategy = cheapest\nmember = p:m price_in=1.2345678 price_out=1\n" PROVIDER, 3,
	  "price_in: expected dollars per million tokens from 0 to 1000, at most 6 decimals, got \"1.2345678\"" },
	{ "[class c]\nmember = p:m price_in=1000.000001\n" PROVIDER, 2, "price_in: expected dollars" },
	{ "[class c]\nmember = p:m price_out=-1\n" PROVIDER, 2, "price_out: expected dollars" },
	{ "[class c]\nmember = p:m price_out=.5\n" PROVIDER, 2, "price_out: expected dollars" },
	{ "[class c]\nmember = p:m price_out=5.\n" PROVIDER, 2, "price_out: expected dollars" },
	{ "[class c]\nmember = p:m price_out=1.2.3\n" PROVIDER, 2, "price_out: expected dollars" },
	{ "[class c]\nmember = p:m price_out=99999999999999999999\n" PROVIDER, 2, "price_out: expected dollars" },
	{ "[class c]\nmember = p:m price_out=\n" PROVIDER, 2, "price_out: expected dollars" },
	{ "[class c]\nmember = p:a price_in=1\nmember = q:b\n" PROVIDER PROVIDER_Q, 2,
	  "member: price_in= and price_out= go together" },
	{ "[class c]\nmember = p:a price_cached=1\nmember = q:b\n" PROVIDER PROVIDER_Q, 2,
	  "member: price_cached= needs price_in= and price_out=" },
	{ "[class c]\nstrategy = combined\nmember = p:a price_in=1 price_out=2\nmember = q:b price_in=1\n"
	  PROVIDER PROVIDER_Q, 4, "member: price_in= and price_out= go together" },
	{ "[class c]\nstrategy = combined\nmember = p:a price_in=1 price_out=2\nmember = q:b\n"
	  PROVIDER PROVIDER_Q, 4, "member: strategy combined in class c needs the price of q:b: "
	  "price_in= and price_out=, or a model line in [prices q]" },
	/* [prices NAME] */
	{ "[prices p]\nmodel = a\n" PROVIDER, 2, "model: a: input= and output= are required" },
	{ "[prices p]\nmodel =\n" PROVIDER, 2, "model: empty value" },
	{ "[prices p]\nmodel = a input=1 output=2\nmodel = a input=1 output=3\n" PROVIDER, 3,
	  "model: a is priced for p already (line 2)" },
	{ "[prices p]\nmodel = a input=x output=1\n" PROVIDER, 2,
	  "model: input: expected dollars per million tokens from 0 to 1000, at most 6 decimals, got \"x\"" },
	{ "[prices p]\nmodel = a input=1 output=1 extra=2\n" PROVIDER, 2, "model: unknown option \"extra\"" },
	{ "[prices p]\nmodel = a* input=1 output=1 input=2\n" PROVIDER, 2, "model: input= given twice" },
	{ "[prices p]\nmodel = a*b input=1 output=1\n" PROVIDER, 2, "'*' only last" },
	{ "[prices p]\nweight = 1\n" PROVIDER, 2, "unknown key \"weight\" in [prices]" },
	{ "[prices]\n" PROVIDER, 1, "expected [prices NAME], got [prices]" },
	{ "[prices a/b]\n" PROVIDER, 1, "prices name must be 1 to 253 letters" },
	{ "[detour]\nprices_file = /nonexistent/prices.conf\n" PROVIDER, 2,
	  "prices_file /nonexistent/prices.conf: cannot open: No such file or directory" },
	{ "[detour]\nprices_file = prices.conf\n" PROVIDER, 2, "prices_file: not an absolute path" },
	{ "[class c]\nstrategy = fastest\n" PROVIDER, 2, "strategy: unknown value \"fastest\"" },
	{ "[class c]\nlatency_factor_percent = 99\n" PROVIDER, 2,
	  "latency_factor_percent: expected a number from 100 to 1000, got \"99\"" },
	{ "[class c]\nmember = p:m\nmember = p:m\n" PROVIDER, 3,
	  "member: p:m is already a member of class c at line 2" },
	{ CLASS "[class d]\nmember = q:x\n\nmember = p:a\n" PROVIDER PROVIDER_Q, 7,
	  "member: p:a is already a member of class c at line 2" },
	{ "[class c]\nmember = p:a\nmember = q:b\nmember = p:c\n" PROVIDER PROVIDER_Q, 4,
	  "member: provider p is already a member of class c at line 2" },
	/* providers are looked up at the end, with the member's line */
	{ "[class c]\nmember = p:a\nmember = zz:b\n" PROVIDER, 3, "member: no [provider zz]" },
	{ "[class c]\nmember = p:a\n" PROVIDER, 1, "class c needs at least 2 members, has 1" },
	{ "[class c]\nstrategy = weighted\n" PROVIDER, 1, "class c needs at least 2 members, has 0" },
	{ "[class c]\nstrategy = random\n" PROVIDER, 2, "strategy: unknown value \"random\"" },
	{ "[class c]\nquality_check = sometimes\n" PROVIDER, 2, "quality_check: unknown value \"sometimes\"" },
	{ "[health]\nfailure_rate_percent = 0\n" PROVIDER, 2, "failure_rate_percent: expected a number from 1 to 100" },
	{ "[health]\nmin_calls = 5\nmin_calls = 6\n" PROVIDER, 3, "min_calls already set at line 2" },
	{ "[health]\nconsecutive_failures = 5\n" PROVIDER, 2, "unknown key \"consecutive_failures\" in [health]" },
	{ "[health]\nprobes = off\n" PROVIDER, 2, "probes: unknown value \"off\"" },
	{ "[health]\nprobe_timeout_ms = 50\n" PROVIDER, 2, "probe_timeout_ms: expected a number from 100 to 600000" },
	{ PROVIDER "probe_ttft_model = two words\n", 3, "probe_ttft_model: model name must be 1 to 127 printable characters" },
	{ PROVIDER "probe_ttft_per_hour = 0\n", 3, "probe_ttft_per_hour: expected a number from 1 to 60" },
	{ "[health]\nuplink = averyveryverylong0\n" PROVIDER, 2,
	  "uplink: interface name longer than 15 characters: \"averyveryverylong0\"" },
	{ "[health]\nuplink = ../eth0\n" PROVIDER, 2, "uplink: not an interface name: \"../eth0\"" },
	{ "[health]\nuplink = eth0 eth1\n" PROVIDER, 2, "uplink: not an interface name: \"eth0 eth1\"" },
	{ "[health]\nuplink_xdp_mode = offload\n" PROVIDER, 2, "uplink_xdp_mode: unknown value \"offload\"" },
	{ "[class c]\nstrategy = priority\nstrategy = weighted\n" PROVIDER, 3, "strategy already set at line 2" },
	{ "[class c]\nmember = p:a weight=2\nmember = q:b\n" PROVIDER PROVIDER_Q, 2,
	  "member: weight= needs strategy = weighted in class c" },
	{ "[class c]\nmember = p:a\nmember = q:b weight=2\nstrategy = priority\n" PROVIDER PROVIDER_Q, 3,
	  "member: weight= needs strategy = weighted" },
	{ "[class c]\nmembers = p:a\n" PROVIDER, 2, "unknown key \"members\" in [class]" },
	{ "[class c]\nmember =\n" PROVIDER, 2, "member: empty value" },
	/* [proxy] */
	{ "[proxy extra]\n" PROVIDER, 1, "unknown section [proxy extra]" },
	{ "[proxy]\nbogus = 1\n" PROVIDER, 2, "unknown key \"bogus\" in [proxy]" },
	{ "[proxy]\nupstream_ca_bundle = ca.pem\n" PROVIDER, 2, "upstream_ca_bundle: not an absolute path" },
	{ "[proxy]\nmax_header_bytes = 1023\n" PROVIDER, 2, "max_header_bytes: expected a number from 1024 to 1048576, got \"1023\"" },
	{ "[proxy]\nmax_header_bytes = 1048577\n" PROVIDER, 2, "max_header_bytes: expected" },
	{ "[proxy]\nmax_headers = 7\n" PROVIDER, 2, "max_headers: expected a number from 8 to 1000" },
	{ "[proxy]\nmax_headers = 1001\n" PROVIDER, 2, "max_headers: expected" },
	{ "[proxy]\nmax_body_bytes = 1023\n" PROVIDER, 2, "max_body_bytes: expected a number from 1024 to 268435456" },
	{ "[proxy]\nmax_body_bytes = 268435457\n" PROVIDER, 2, "max_body_bytes: expected" },
	{ "[proxy]\nidle_timeout_ms = 99\n" PROVIDER, 2, "idle_timeout_ms: expected a number from 100 to 3600000" },
	{ "[proxy]\nrequest_timeout_ms = 3600001\n" PROVIDER, 2, "request_timeout_ms: expected a number from 100 to 3600000" },
	{ "[proxy]\nfirst_byte_timeout_ms = 99\n" PROVIDER, 2, "first_byte_timeout_ms: expected a number from 100 to 3600000" },
	{ "[proxy]\nstream_idle_timeout_ms = 99\n" PROVIDER, 2, "stream_idle_timeout_ms: expected a number from 100 to 3600000" },
	{ "[proxy]\nupstream_connect_timeout_ms = 9\n" PROVIDER, 2, "upstream_connect_timeout_ms: expected a number from 10 to 60000" },
	{ "[proxy]\nretry_budget_percent = 101\n" PROVIDER, 2, "retry_budget_percent: expected a number from 0 to 100" },
	{ "[proxy]\nretry_budget_min = 1000001\n" PROVIDER, 2, "retry_budget_min: expected a number from 0 to 1000000" },
	{ "[proxy]\nbudget_window_ms = 99\n" PROVIDER, 2, "budget_window_ms: expected a number from 100 to 3600000" },
	{ "[proxy]\nprovider_failures_to_eject = 0\n" PROVIDER, 2, "provider_failures_to_eject: expected a number from 1 to 1000" },
	{ "[proxy]\nprovider_eject_ms = 3600001\n" PROVIDER, 2, "provider_eject_ms: expected a number from 100 to 3600000" },
	{ "[proxy]\nkey_disable_ms = 999\n" PROVIDER, 2, "key_disable_ms: expected a number from 1000 to 86400000" },
	{ "[proxy]\nintercept_tls = maybe\n" PROVIDER, 2, "intercept_tls: unknown value \"maybe\"" },
	{ "[proxy]\nintercept_tls = Yes\n" PROVIDER, 2, "intercept_tls: unknown value" },
	{ "[proxy]\nhedge = on\n" PROVIDER, 2, "hedge: unknown value \"on\"" },
	{ "[proxy]\nhedge_factor_percent = 99\n" PROVIDER, 2, "hedge_factor_percent: expected a number from 100 to 100000" },
	{ "[proxy]\nhedge_min_ms = 9\n" PROVIDER, 2, "hedge_min_ms: expected a number from 10 to 3600000" },
	{ "[proxy]\nhedge_max_ms = 3600001\n" PROVIDER, 2, "hedge_max_ms: expected a number from 10 to 3600000" },
	{ "[proxy]\nhedge_min_ms = 2000\nhedge_max_ms = 1000\n" PROVIDER, 2,
	  "hedge_min_ms (2000) must not be more than hedge_max_ms (1000)" },
	{ "[proxy]\nhedge_max_ms = 400\n" PROVIDER, 2, "hedge_min_ms (1000) must not be more than hedge_max_ms (400)" },
	{ "[proxy]\nmax_headers = 8\n[proxy]\nmax_headers = 9\n" PROVIDER, 4, "max_headers already set at line 2" },
	/* [metrics], [access_log] */
	{ "[metrics]\nlisten = 10.1.2.3:9464\n" PROVIDER, 2,
	  "listen: 10.1.2.3:9464 is not a loopback address (set allow_remote = yes" },
	{ "[metrics]\nlisten = [::]:9464\n" PROVIDER, 2, "listen: [::]:9464 is not a loopback address" },
	{ "[metrics]\nlisten = localhost:9464\n" PROVIDER, 2, "listen: not an IP address: \"localhost\"" },
	{ "[metrics]\nlisten = 127.0.0.1\n" PROVIDER, 2, "listen: expected ADDRESS:PORT" },
	{ "[metrics]\nlisten = 127.0.0.1:0\n" PROVIDER, 2, "listen: expected a number from 1 to 65535" },
	{ "[metrics]\nlisten = [::1:9464\n" PROVIDER, 2, "listen: expected [ADDRESS]:PORT" },
	{ "[metrics]\nallow_remote = sure\n" PROVIDER, 2, "allow_remote: unknown value \"sure\"" },
	{ "[metrics]\nport = 1\n" PROVIDER, 2, "unknown key \"port\" in [metrics]" },
	{ "[access_log]\npath = access.log\n" PROVIDER, 2, "path: not an absolute path" },
	{ "[access_log]\nprompts = 1\n" PROVIDER, 2, "prompts: unknown value \"1\"" },
	/* [app NAME] */
#define APP "[app a]\nunit = app.service\n"
	{ "[app]\n" PROVIDER, 1, "expected [app NAME], got [app]" },
	{ "[app bad/x]\n" PROVIDER, 1, "app name must be 1 to 31 letters" },
	{ APP "key.p = env:K\n[app a]\n" PROVIDER, 4, "app a already defined at line 1" },
	{ "[app a]\nkey.p = env:K\n" PROVIDER, 1, "app a has no cgroup or unit" },
	{ APP PROVIDER, 1, "app a has no key.PROVIDER or share.PROVIDER" },
	{ APP "share.zz = 10%\n" PROVIDER, 3, "share.zz: no [provider zz]" },
	{ APP "share.p = 0%\n" PROVIDER, 3, "share.p: expected a share in % from 1 to 100, got \"0%\"" },
	{ APP "share.p = 101%\n" PROVIDER, 3, "share.p: expected a share in % from 1 to 100" },
	{ APP "share.p = %\n" PROVIDER, 3, "share.p: expected a share in % from 1 to 100" },
	{ APP "share.p = 30%%\n" PROVIDER, 3, "share.p: expected a share in % from 1 to 100" },
	{ APP "share.p = 3 0\n" PROVIDER, 3, "share.p: expected a share in % from 1 to 100" },
	{ APP "key.p = env:K\nrpm.p = 0\n" PROVIDER, 4, "rpm.p: expected a number from 1 to 100000000, got \"0\"" },
	{ APP "key.p = env:K\ntpm.p = x\n" PROVIDER, 4, "tpm.p: expected a number from 1 to 4000000000" },
	{ APP "key.p = env:K\nrpm.p = 5\nrpm.p = 6\n" PROVIDER, 5, "rpm.p already set at line 4" },
	{ APP "share.p = 5\nrpm.p = 5\n" PROVIDER, 4, "rpm.p: the limits of app a's own key, which has no key.p" },
	{ APP "key.p = env:K\ntpm.q = 5\n" PROVIDER PROVIDER_Q, 4, "tpm.q: the limits of app a's own key, which has no key.q" },
	{ APP "share.p = 10\nshare.p = 20\n" PROVIDER, 4, "share.p already set at line 3" },
	{ APP "share.p = 60%\n[app b]\ncgroup = user.slice\nshare.p = 50%\n" PROVIDER, 6,
	  "share.p: the applications' shares of p add up to 110%, more than 100%" },
	{ PROVIDER "rpm = 0\n", 3, "rpm: expected a number from 1 to 100000000" },
	{ PROVIDER "tpm = 4000000001\n", 3, "tpm: expected a number from 1 to 4000000000" },
	{ PROVIDER "pace = sometimes\n", 3, "pace: unknown value" },
	{ PROVIDER "pace_max_wait_ms = 0\n", 3, "pace_max_wait_ms: expected a number from 1 to 600000" },
	{ PROVIDER "pace_max_queue = 100001\n", 3, "pace_max_queue: expected a number from 1 to 100000" },
	{ APP "key.zz = env:K\n" PROVIDER, 3, "key.zz: no [provider zz]" },
	{ APP "key.p = env:K\nkey.zz = env:K\n" PROVIDER, 4, "key.zz: no [provider zz]" },
	{ APP "key.p = sk-abc\n" PROVIDER, 3,
	  "key.p: keys do not belong in the configuration file: use file:PATH, credential:NAME or env:VAR" },
	{ APP "key.p = file:rel\n" PROVIDER, 3, "key.p: not an absolute path" },
	{ APP "key.p = credential:a/b\n" PROVIDER, 3, "key.p: not a credential name" },
	{ APP "key.p = env:1X\n" PROVIDER, 3, "key.p: not an environment variable name" },
	{ APP "key.p = env:\n" PROVIDER, 3, "key.p: not an environment variable name" },
	{ APP "key.p = env:A\n\nkey.p = env:B\n" PROVIDER, 5, "key.p already set at line 3" },
	{ APP "key.bad/x = env:A\n" PROVIDER, 3, "key.bad/x: not a provider name: \"bad/x\"" },
	{ APP "key. = env:A\n" PROVIDER, 3, "unknown key \"key.\" in [app]" },
	{ APP "key = env:A\n" PROVIDER, 3, "unknown key \"key\" in [app]" },
	{ APP "key.p =\n" PROVIDER, 3, "key.p: empty value" },
	{ "[app a]\ncgroup = missing\n" PROVIDER, 2, "cgroup: " },
	{ "[app a]\nunit = nope.service\n" PROVIDER, 2, "unit: no cgroup of unit nope.service under" },
	{ "[app a]\nunit = app.service\ncgroup = system.slice/app.service\n" PROVIDER, 3,
	  "system.slice/app.service already belongs to app a (line 1)" },
	{ APP "key.p = env:K\n[app b]\ncgroup = system.slice/app.service\nkey.p = env:K\n" PROVIDER, 5,
	  "system.slice/app.service already belongs to app a (line 1)" },
	{ "[enroll]\nunit = app.service\n[app a]\nunit = editor.service\nkey.p = env:K\n" PROVIDER, 3,
	  "app a: cgroup " },
	{ "[enroll]\nunit = app.service\n[app a]\nunit = editor.service\nkey.p = env:K\n" PROVIDER, 3,
	  "editor.service is not enrolled (under no [enroll] cgroup)" },
#undef APP
};

static void test_bad_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];

		if (!load_fails_with(c->text, strlen(c->text), c->line, c->reason))
			fail_msg("case %zu: expected line %d: \"%s\", got \"%s\"",
				 i, c->line, c->reason, err);
	}
}

/* 253 characters in all is the longest host name. */
static void test_host_name_length(void **state)
{
	char name[300], text[400];
	struct dt_cfg *cfg;

	(void)state;
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	snprintf(name, sizeof(name), "%063d.%063d.%063d.a%060d", 0, 0, 0, 0);
	assert_int_equal(strlen(name), 253);
	snprintf(text, sizeof(text), "[provider p]\nhosts = %s\n", name);
	cfg = load_ok(text);
	assert_string_equal(cfg->providers[0].hosts[0], name);
	dt_config_free(cfg);

	snprintf(text, sizeof(text), "[provider p]\nhosts = a%s\n", name);
	load_fails(text, 2, "not a valid host name");
}

static void test_cgroup_outside_root(void **state)
{
	char text[1024];

	(void)state;
	/* exists, but is not under the cgroup v2 mount */
	snprintf(text, sizeof(text), "[enroll]\ncgroup = %s\n" PROVIDER, tmp);
	load_fails(text, 2, "is not a cgroup under the cgroup v2 mount");
}

static void test_too_many_providers(void **state)
{
	size_t cap = (DT_MAX_PROVIDERS + 1) * 64, len = 0;
	char *text = malloc(cap);

	(void)state;
	assert_non_null(text);
	for (int i = 0; i <= DT_MAX_PROVIDERS; i++)
		len += (size_t)snprintf(text + len, cap - len,
					"[provider p%d]\nhosts = p%d.example\n", i, i);
	/* the 257th section header is on line 2 * 256 + 1 */
	load_fails(text, 2 * DT_MAX_PROVIDERS + 1, "more than 256 providers");
	free(text);
}

/* Lines are limited to 4096 characters, end of line excluded. */
static void test_line_length(void **state)
{
	static const char key[] = "pin_dir = /";
	char text[8192];
	struct dt_cfg *cfg;

	(void)state;
	snprintf(text, sizeof(text), "[detour]\n; fine\n%s%0*d\r\n" PROVIDER,
		 key, (int)(4096 - strlen(key)), 0);
	cfg = load_ok(text);
	assert_int_equal(strlen(cfg->pin_dir), 4096 - strlen(key) + 1);
	dt_config_free(cfg);

	snprintf(text, sizeof(text), "[detour]\n; fine\n%s%0*d\n" PROVIDER,
		 key, (int)(4097 - strlen(key)), 0);
	load_fails(text, 3, "line longer than 4096 characters");
}

static void test_file_too_large(void **state)
{
	size_t len = 1024 * 1024 + 1;
	char *text = malloc(len);
	struct dt_cfg *cfg;

	(void)state;
	assert_non_null(text);
	memset(text, '\n', len);
	load_fails_len(text, len, 0, "larger than 1048576 bytes");
	/* exactly the limit is fine */
	memcpy(text, PROVIDER, strlen(PROVIDER));
	assert_int_equal(load_len(text, len - 1, &cfg), 0);
	dt_config_free(cfg);
	free(text);
}

static void test_nul_byte(void **state)
{
	static const char text[] = "[detour]\nmode = proxy\0x\n" PROVIDER;

	(void)state;
	load_fails_len(text, sizeof(text) - 1, 0, "contains a NUL byte");
}

static void test_unreadable_files(void **state)
{
	struct dt_cfg *cfg = (struct dt_cfg *)&cfg;
	char missing[PATH_MAX * 2], expect[PATH_MAX * 3];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/nope.conf", tmp);
	assert_int_equal(dt_config_load(missing, &cfg, err, sizeof(err)), -1);
	snprintf(expect, sizeof(expect), "%s: cannot open: No such file or directory", missing);
	assert_string_equal(err, expect);

	assert_int_equal(dt_config_load(tmp, &cfg, err, sizeof(err)), -1);
	snprintf(expect, sizeof(expect), "%s: cannot read: Is a directory", tmp);
	assert_string_equal(err, expect);
}

static void test_small_error_buffer(void **state)
{
	struct dt_cfg *cfg;
	char small[8];

	(void)state;
	write_file(conf, "[bogus]\n", 8);
	memset(small, 'x', sizeof(small));
	assert_int_equal(dt_config_load(conf, &cfg, small, sizeof(small)), -1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* ---- cgroup v2 mount discovery ---------------------------------------------- */

static int mount_of(const char *mounts, char *out, size_t outlen)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/mounts", tmp);
	write_file(path, mounts, strlen(mounts));
	return dt_cgroup2_mount(path, out, outlen);
}

static void test_cgroup2_mount(void **state)
{
	char out[PATH_MAX], tiny[8];

	(void)state;
	/* hybrid layout, as on this project's CI machine */
	assert_int_equal(mount_of(
		"sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
		"tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
		"cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n"
		"cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n"
		"cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n",
		out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");

	/* unified layout: the first cgroup2 mount */
	assert_int_equal(mount_of(
		"proc /proc proc rw 0 0\n"
		"cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n"
		"cgroup2 /run/other cgroup2 rw 0 0\n",
		out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup");

	/* octal escapes of /proc/mounts are decoded */
	assert_int_equal(mount_of("none /my\\040cgroups cgroup2 rw 0 0\n", out, sizeof(out)), 0);
	assert_string_equal(out, "/my cgroups");

	errno = 0;
	assert_int_equal(mount_of("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n", out, sizeof(out)), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_int_equal(mount_of("", out, sizeof(out)), -1);
	assert_int_equal(errno, ENOENT);

	errno = 0;
	assert_int_equal(mount_of("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n", tiny, sizeof(tiny)), -1);
	assert_int_equal(errno, ENAMETOOLONG);

	errno = 0;
	assert_int_equal(dt_cgroup2_mount("/nonexistent/mounts", out, sizeof(out)), -1);
	assert_int_equal(errno, ENOENT);
}

/* A mounts file without cgroup2: the error names the mount, no line for
 * the default enrollment, the line of the key otherwise. */
static void test_no_cgroup2_mount(void **state)
{
	(void)state;
	assert_int_equal(setenv("DETOUR_CGROUP_ROOT", "/nonexistent/cgroup", 1), 0);
	load_fails(PROVIDER, 0, "cgroup v2 mount /nonexistent/cgroup: No such file or directory");
	load_fails("[enroll]\nunit = app.service\n" PROVIDER, 2, "cgroup v2 mount /nonexistent/cgroup");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_every_option),
		T(test_base_url),
		T(test_base_url_default),
		T(test_base_url_length),
		T(test_provider_key_forms),
		T(test_classes),
		T(test_balanced_classes),
		T(test_tiered_sticky_classes),
		T(test_prices),
		T(test_health_section),
		T(test_signal_switches),
		T(test_metrics_and_access_log),
		T(test_model_name_length),
		T(test_class_limits),
		T(test_apps),
		T(test_rate_limits),
		T(test_errors_never_repeat_secrets),
		T(test_hosts_repeat_and_normalize),
		T(test_comments_and_layout),
		T(test_log_level_comment),
		T(test_enroll_repeats),
		T(test_enroll_unit_prefers_system_slice),
		T(test_example_config),
		T(test_discovered_root),
		T(test_bad_values),
		T(test_host_name_length),
		T(test_cgroup_outside_root),
		T(test_too_many_providers),
		T(test_line_length),
		T(test_file_too_large),
		T(test_nul_byte),
		T(test_unreadable_files),
		T(test_small_error_buffer),
		T(test_cgroup2_mount),
		T(test_no_cgroup2_mount),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
