/* SPDX-License-Identifier: MIT */
/*
 * Configuration loading. libinih splits the file into sections and
 * key = value pairs; everything else is done here:
 *
 *  - inih tells a handler neither the line of a key nor that a section
 *    began, so the file is handed to it line by line by cfg_read_line(),
 *    which counts lines, enforces the limits, strips indentation (which
 *    inih would take for a continuation line) and inline comments, and
 *    opens sections itself: an empty [provider x] is still seen.
 *  - each section has a table of keys; each kind of value has one parse
 *    function; every parse error names the file, line and key.
 *  - named sections ([provider NAME], [class NAME], [app NAME]) append an
 *    element to their array when they open; their keys fill that element.
 *  - rules that span sections (a class member's provider, which may be
 *    defined further down) are checked once the whole file is read, with
 *    the line of the key at fault.
 *  - everything allocated hangs off the struct dt_cfg being built, so a
 *    failure anywhere is cleaned up by one dt_config_free().
 *  - keys themselves never belong in the file, and error messages never
 *    repeat the value of a key source or a base URL: either may have been
 *    written with a secret in it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <mntent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "prices.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define CFG_MAX_FILE        (1024 * 1024)
#define CFG_MAX_LINE        4096  /* characters, end of line excluded */
#define CFG_MAX_SECTION_KEYS 24
#define CFG_MAX_CLASSES     256
#define CFG_MAX_MEMBERS     64    /* per class */
#define CFG_MAX_APPS        256
#define CFG_MAX_APP_CGROUPS 64    /* per application */
#define MODEL_MAX           127   /* characters of a model name */
#define HOST_MAX            253   /* RFC 1123 host name, without the final dot */
#define HOST_LABEL_MAX      63
#define UNIT_SEARCH_DEPTH   8     /* deep enough for user@.service/app.slice/x */
#define CGROUP_ROOT_ENV     "DETOUR_CGROUP_ROOT"  /* test seam, see config.h */

_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "mark is parsed as unsigned");

enum section_kind {
	SEC_NONE,       /* before the first section header */
	SEC_DETOUR,
	SEC_ENROLL,
	SEC_PROVIDER,
	SEC_CLASS,
	SEC_PROXY,
	SEC_APP,
	SEC_HEALTH,
	SEC_METRICS,
	SEC_ACCESS_LOG,
	SEC_PRICES,
	SEC_COUNT,
};

struct cfg_parser;

struct key_def {
	const char *name;
	/* Parse value into obj: the struct dt_cfg, or for a named section the
	 * element being filled (struct dt_provider_cfg, dt_class_cfg,
	 * dt_app_cfg). 0, or -1 after cfg_fail(). */
	int (*parse)(struct cfg_parser *p, const struct key_def *k,
		     const char *value, void *obj);
	size_t offset;      /* of the field in obj, for generic parsers */
	unsigned long min, max; /* range of numbers */
	bool repeats;       /* may be given more than once */
	bool prefix;        /* name is a prefix: "key." matches "key.openai" */
};

struct cfg_parser {
	struct dt_cfg *cfg;
	const char *text;   /* the whole file, NUL-terminated */
	size_t off;         /* start of the next line */
	int line;           /* line last handed to inih */
	enum section_kind section;
	void *obj;          /* what the keys of the current section fill */
	const char *key;    /* the key being parsed, as written */
	int seen[SEC_COUNT][CFG_MAX_SECTION_KEYS]; /* line each key was set at */
	uint16_t listen6_port;
	char cgroup_root[PATH_MAX]; /* empty until first needed */
	char prices_owner[256];     /* [prices NAME]: its NAME */
	char *err;
	size_t errlen;
	int err_line;       /* 0: error without a line */
	bool failed;
};

/* Record the first error only: later ones are usually consequences. */
__attribute__((format(printf, 3, 4)))
static int cfg_fail(struct cfg_parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	int len;

	if (p->failed)
		return -1;
	p->failed = true;
	p->err_line = line;
	if (line > 0)
		len = snprintf(p->err, p->errlen, "%s:%d: ", p->cfg->path, line);
	else
		len = snprintf(p->err, p->errlen, "%s: ", p->cfg->path);
	if (len < 0 || (size_t)len >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + len, p->errlen - (size_t)len, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- values -------------------------------------------------------------- */

/* Decimal, or hexadecimal with 0x: no sign, no blanks, no octal surprise
 * for a leading zero. Returns 0 or -1. */
static int number_parse(const char *s, unsigned long *out)
{
	int base = 10;
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!isxdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtoul(s, &end, base);
	return errno || *end ? -1 : 0;
}

static int parse_ranged(struct cfg_parser *p, const struct key_def *k,
			const char *value, unsigned long *out)
{
	if (number_parse(value, out) < 0 || *out < k->min || *out > k->max)
		return cfg_fail(p, p->line, "%s: expected a number from %lu to %lu, got \"%s\"",
				k->name, k->min, k->max, value);
	return 0;
}

static int parse_unsigned(struct cfg_parser *p, const struct key_def *k,
			  const char *value, void *obj)
{
	unsigned long n;

	if (parse_ranged(p, k, value, &n) < 0)
		return -1;
	*(unsigned *)((char *)obj + k->offset) = (unsigned)n;
	return 0;
}

static int parse_port(struct cfg_parser *p, const struct key_def *k,
		      const char *value, void *obj)
{
	unsigned long n;

	if (parse_ranged(p, k, value, &n) < 0)
		return -1;
	*(uint16_t *)((char *)obj + k->offset) = (uint16_t)n;
	return 0;
}

/* Dollars per million tokens with up to 6 decimals ("0.59", "15"), into
 * micro-dollars, from k->min to k->max µ$. */
static int parse_price(struct cfg_parser *p, const struct key_def *k,
		       const char *value, void *obj)
{
	uint64_t micro;

	if (dt_price_dollars(value, k->max, &micro) || micro < k->min)
		return cfg_fail(p, p->line, "%s: expected dollars per million tokens from 0 to %lu, "
				"at most 6 decimals, got \"%s\"", k->name, k->max / 1000000, value);
	*(unsigned *)((char *)obj + k->offset) = (unsigned)micro;
	return 0;
}

/* Index of value in names[], or -1 after cfg_fail(). */
static int choice_parse(struct cfg_parser *p, const struct key_def *k,
			const char *value, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(value, names[i]) == 0)
			return (int)i;
	return cfg_fail(p, p->line, "%s: unknown value \"%s\"", k->name, value);
}

static const char *const mode_names[] = {
	[DT_MODE_PROXY]    = "proxy",
	[DT_MODE_FAILOVER] = "failover",
};

static const char *const family_names[] = {
	[DT_FAMILY_OPENAI]    = "openai",
	[DT_FAMILY_ANTHROPIC] = "anthropic",
	[DT_FAMILY_GEMINI]    = "gemini",
};

static int parse_mode(struct cfg_parser *p, const struct key_def *k,
		      const char *value, void *obj)
{
	int i = choice_parse(p, k, value, mode_names, ARRAY_SIZE(mode_names));

	if (i < 0)
		return -1;
	((struct dt_cfg *)obj)->mode = (enum dt_mode)i;
	return 0;
}

static int parse_family(struct cfg_parser *p, const struct key_def *k,
			const char *value, void *obj)
{
	int i = choice_parse(p, k, value, family_names, ARRAY_SIZE(family_names));

	if (i < 0)
		return -1;
	((struct dt_provider_cfg *)obj)->family = (enum dt_family)i;
	return 0;
}

/* struct dt_class_cfg's strategy: the values of router.h's enum
 * dt_class_strategy, which config.h does not depend on. */
enum { STRATEGY_PRIORITY, STRATEGY_WEIGHTED, STRATEGY_LEAST_LATENCY, STRATEGY_CHEAPEST,
       STRATEGY_COMBINED };

static const char *const strategy_names[] = {
	[STRATEGY_PRIORITY] = "priority",
	[STRATEGY_WEIGHTED] = "weighted",
	[STRATEGY_LEAST_LATENCY] = "least_latency",
	[STRATEGY_CHEAPEST] = "cheapest",
	[STRATEGY_COMBINED] = "combined",
};

static int parse_strategy(struct cfg_parser *p, const struct key_def *k,
			  const char *value, void *obj)
{
	int i = choice_parse(p, k, value, strategy_names, ARRAY_SIZE(strategy_names));

	if (i < 0)
		return -1;
	((struct dt_class_cfg *)obj)->strategy = i;
	return 0;
}

/* struct dt_class_cfg's quality_check, in router.h's enum dt_quality_mode order. */
static const char *const quality_names[] = { "failover", "always", "off" };

static int parse_quality(struct cfg_parser *p, const struct key_def *k,
			 const char *value, void *obj)
{
	int i = choice_parse(p, k, value, quality_names, ARRAY_SIZE(quality_names));

	if (i < 0)
		return -1;
	((struct dt_class_cfg *)obj)->quality_check = i;
	return 0;
}

/* yes or no, into a bool field. */
static int parse_bool(struct cfg_parser *p, const struct key_def *k,
		      const char *value, void *obj)
{
	static const char *const names[] = { "no", "yes" };
	int i = choice_parse(p, k, value, names, ARRAY_SIZE(names));

	if (i < 0)
		return -1;
	*(bool *)((char *)obj + k->offset) = i;
	return 0;
}

/* [health] uplink: an interface name as the kernel takes them. It need not
 * exist yet: the agent says so when it attaches. */
static int parse_ifname(struct cfg_parser *p, const struct key_def *k,
			const char *value, void *obj)
{
	struct dt_cfg *cfg = obj;

	if (strlen(value) >= sizeof(cfg->uplink))
		return cfg_fail(p, p->line, "%s: interface name longer than %zu characters: \"%s\"",
				k->name, sizeof(cfg->uplink) - 1, value);
	if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0 || strpbrk(value, "/: \t"))
		return cfg_fail(p, p->line, "%s: not an interface name: \"%s\"", k->name, value);
	strcpy(cfg->uplink, value);
	return 0;
}

static const char *const xdp_mode_names[] = {
	[DT_XDP_AUTO]    = "auto",
	[DT_XDP_NATIVE]  = "native",
	[DT_XDP_GENERIC] = "generic",
};

static int parse_xdp_mode(struct cfg_parser *p, const struct key_def *k,
			  const char *value, void *obj)
{
	int i = choice_parse(p, k, value, xdp_mode_names, ARRAY_SIZE(xdp_mode_names));

	if (i < 0)
		return -1;
	((struct dt_cfg *)obj)->uplink_xdp_mode = (enum dt_xdp_mode)i;
	return 0;
}

static int parse_log_level(struct cfg_parser *p, const struct key_def *k,
			   const char *value, void *obj)
{
	if (dt_log_level_parse(value, &((struct dt_cfg *)obj)->log_level) < 0)
		return cfg_fail(p, p->line, "%s: unknown value \"%s\" (error, warn, info or debug)",
				k->name, value);
	return 0;
}

/* An absolute path into a char[PATH_MAX] field. */
static int parse_abs_path(struct cfg_parser *p, const struct key_def *k,
			  const char *value, void *obj)
{
	if (value[0] != '/')
		return cfg_fail(p, p->line, "%s: not an absolute path: \"%s\"", k->name, value);
	if (strlen(value) >= PATH_MAX)
		return cfg_fail(p, p->line, "%s: path too long", k->name);
	strcpy((char *)obj + k->offset, value);
	return 0;
}

/*
 * "ADDR:PORT", or "[ADDR]:PORT" when bracketed (IPv6). Copies ADDR into
 * addr and parses PORT within the key's range.
 */
static int addr_port_split(struct cfg_parser *p, const struct key_def *k,
			   const char *value, bool bracketed,
			   char *addr, size_t addrlen, uint16_t *port)
{
	const char *colon = strrchr(value, ':');
	const char *start = value, *end = colon;
	unsigned long n;

	if (bracketed) {
		if (*start++ != '[' || !colon || colon[-1] != ']')
			colon = NULL;
		else
			end = colon - 1;
	}
	if (!colon || end <= start || (size_t)(end - start) >= addrlen)
		return cfg_fail(p, p->line, "%s: expected %s, got \"%s\"", k->name,
				bracketed ? "[ADDRESS]:PORT" : "ADDRESS:PORT", value);
	memcpy(addr, start, (size_t)(end - start));
	addr[end - start] = '\0';
	if (parse_ranged(p, k, colon + 1, &n) < 0)
		return -1;
	*port = (uint16_t)n;
	return 0;
}

/* The proxy must not be reachable from the network: loopback only. */
static int parse_listen4(struct cfg_parser *p, const struct key_def *k,
			 const char *value, void *obj)
{
	struct dt_cfg *cfg = obj;
	char addr[INET_ADDRSTRLEN];

	if (addr_port_split(p, k, value, false, addr, sizeof(addr), &cfg->listen_port) < 0)
		return -1;
	if (inet_pton(AF_INET, addr, &cfg->listen4) != 1 ||
	    (ntohl(cfg->listen4.s_addr) >> 24) != 127)
		return cfg_fail(p, p->line, "%s: not an IPv4 loopback address: \"%s\"",
				k->name, addr);
	return 0;
}

static int parse_listen6(struct cfg_parser *p, const struct key_def *k,
			 const char *value, void *obj)
{
	struct dt_cfg *cfg = obj;
	char addr[INET6_ADDRSTRLEN];

	if (addr_port_split(p, k, value, true, addr, sizeof(addr), &p->listen6_port) < 0)
		return -1;
	if (inet_pton(AF_INET6, addr, &cfg->listen6) != 1 ||
	    !IN6_IS_ADDR_LOOPBACK(&cfg->listen6))
		return cfg_fail(p, p->line, "%s: not the IPv6 loopback address: \"%s\"",
				k->name, addr);
	return 0;
}

/* [metrics] listen: "ADDRESS:PORT" or "[ADDRESS]:PORT"; whether it may
 * be other than loopback is checked with allow_remote, at the end. */
static int parse_metrics_listen(struct cfg_parser *p, const struct key_def *k,
				const char *value, void *obj)
{
	struct dt_metrics_cfg *m = &((struct dt_cfg *)obj)->metrics;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&m->addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&m->addr;
	char addr[INET6_ADDRSTRLEN];
	uint16_t port;

	if (addr_port_split(p, k, value, value[0] == '[', addr, sizeof(addr), &port) < 0)
		return -1;
	memset(&m->addr, 0, sizeof(m->addr));
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		m->addr_len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		m->addr_len = sizeof(*v6);
	} else {
		return cfg_fail(p, p->line, "%s: not an IP address: \"%s\"", k->name, addr);
	}
	snprintf(m->listen, sizeof(m->listen), "%s", value);
	m->on = true;
	return 0;
}

static bool metrics_loopback(const struct dt_metrics_cfg *m)
{
	if (m->addr.ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)&m->addr)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&m->addr)->sin6_addr);
}

/* ---- arrays and names ------------------------------------------------------ */

/* items (n elements of size bytes) grown by one zeroed element: the new
 * array, or NULL after cfg_fail() with items left as they were. */
static void *array_append(struct cfg_parser *p, void *items, size_t n, size_t size)
{
	char *grown = reallocarray(items, n + 1, size);

	if (!grown) {
		cfg_fail(p, p->line, "out of memory");
		return NULL;
	}
	memset(grown + n * size, 0, size);
	return grown;
}

/* A copy of s appended to the string array *v of *n. */
static int strings_append(struct cfg_parser *p, char ***v, size_t *n, const char *s)
{
	char **grown = array_append(p, *v, *n, sizeof(**v));

	if (!grown)
		return -1;
	*v = grown;
	grown[*n] = strdup(s);
	if (!grown[*n])
		return cfg_fail(p, p->line, "out of memory");
	(*n)++;
	return 0;
}

static void strings_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Names of providers, classes and applications: 1 to 31 letters, digits,
 * '-', '_' or '.'. */
static bool name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= DT_NAME_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("-_.", name[i]))
			return false;
	return true;
}

/*
 * The element named name in items (n elements of size bytes, each
 * starting with its char name[DT_NAME_LEN]), or NULL.
 */
static void *name_find(const void *items, size_t n, size_t size, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		const char *item = (const char *)items + i * size;

		if (strcmp(item, name) == 0)
			return (void *)item;
	}
	return NULL;
}

_Static_assert(offsetof(struct dt_provider_cfg, name) == 0, "name_find");
_Static_assert(offsetof(struct dt_class_cfg, name) == 0, "name_find");
_Static_assert(offsetof(struct dt_app_cfg, name) == 0, "name_find");

static struct dt_provider_cfg *provider_find(const struct dt_cfg *cfg, const char *name)
{
	return name_find(cfg->providers, cfg->n_providers, sizeof(*cfg->providers), name);
}

/* ---- key sources ------------------------------------------------------------- */

static bool env_name_valid(const char *name)
{
	bool valid = isalpha((unsigned char)name[0]) || name[0] == '_';

	for (const char *c = name; valid && *c; c++)
		valid = isalnum((unsigned char)*c) || *c == '_';
	return valid;
}

/* A file name inside $CREDENTIALS_DIRECTORY. */
static bool credential_name_valid(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0 && strlen(name) <= NAME_MAX;
}

static const char *const key_kind_names[] = {
	[DT_KEY_FILE]       = "file",
	[DT_KEY_CREDENTIAL] = "credential",
	[DT_KEY_ENV]        = "env",
};

/*
 * Check ref, where a key of kind is found, and copy it into src. The
 * messages do not repeat ref: it may be a key pasted where its source
 * belongs.
 */
static int key_source_set(struct cfg_parser *p, struct dt_key_source *src,
			  enum dt_key_kind kind, const char *ref)
{
	if (kind == DT_KEY_FILE && ref[0] != '/')
		return cfg_fail(p, p->line, "%s: not an absolute path", p->key);
	if (kind == DT_KEY_FILE && strlen(ref) >= PATH_MAX)
		return cfg_fail(p, p->line, "%s: path too long", p->key);
	if (kind == DT_KEY_CREDENTIAL && !credential_name_valid(ref))
		return cfg_fail(p, p->line, "%s: not a credential name", p->key);
	if (kind == DT_KEY_ENV && !env_name_valid(ref))
		return cfg_fail(p, p->line, "%s: not an environment variable name", p->key);
	src->ref = strdup(ref);
	if (!src->ref)
		return cfg_fail(p, p->line, "out of memory");
	src->kind = kind;
	return 0;
}

/* "file:PATH", "credential:NAME" or "env:VAR"; anything else is taken
 * for a key written into the file, and refused without being repeated. */
static int key_source_split(struct cfg_parser *p, const char *value,
			    enum dt_key_kind *kind, const char **ref)
{
	for (size_t i = DT_KEY_FILE; i < ARRAY_SIZE(key_kind_names); i++) {
		size_t len = strlen(key_kind_names[i]);

		if (strncmp(value, key_kind_names[i], len) == 0 && value[len] == ':') {
			*kind = (enum dt_key_kind)i;
			*ref = value + len + 1;
			return 0;
		}
	}
	return cfg_fail(p, p->line, "%s: keys do not belong in the configuration file: use %s",
			p->key, p->section == SEC_APP ?
			"file:PATH, credential:NAME or env:VAR" :
			"key_file=, key_credential= or key_env=");
}

/* ---- providers ------------------------------------------------------------- */

/*
 * RFC 1123 host name: dot-separated labels of letters, digits and inner
 * hyphens, 1 to 63 long, 253 in all. A last label of digits only is
 * refused: it would be read as a (malformed) address.
 */
static bool host_name_valid(const char *name)
{
	size_t label = 0, len = strlen(name);
	bool all_digits = true;

	if (len == 0 || len > HOST_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || name[i - 1] == '-')
				return false;
			if (c == '\0')
				break;
			label = 0;
			all_digits = true;
			continue;
		}
		if (!isalnum((unsigned char)c) && !(c == '-' && label > 0))
			return false;
		if (++label > HOST_LABEL_MAX)
			return false;
		all_digits = all_digits && isdigit((unsigned char)c);
	}
	return !all_digits;
}

/* Host names in lower case and address literals in their canonical form,
 * so that one host is recognised however it is spelled. */
static bool host_normalize(const char *token, char *out, size_t outlen)
{
	unsigned char addr[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, token, addr) == 1)
		return inet_ntop(AF_INET, addr, out, (socklen_t)outlen) != NULL;
	if (inet_pton(AF_INET6, token, addr) == 1)
		return inet_ntop(AF_INET6, addr, out, (socklen_t)outlen) != NULL;
	if (strlen(token) >= outlen)
		return false;
	for (size_t i = 0; (out[i] = (char)tolower((unsigned char)token[i])); i++)
		;
	return host_name_valid(out);
}

static const struct dt_provider_cfg *host_owner(const struct dt_cfg *cfg,
						const char *host)
{
	for (size_t i = 0; i < cfg->n_providers; i++)
		for (size_t j = 0; j < cfg->providers[i].n_hosts; j++)
			if (strcmp(cfg->providers[i].hosts[j], host) == 0)
				return &cfg->providers[i];
	return NULL;
}

static int provider_add_host(struct cfg_parser *p, const struct key_def *k,
			     struct dt_provider_cfg *prov, const char *token)
{
	const struct dt_provider_cfg *owner;
	char host[HOST_MAX + 1];

	if (!host_normalize(token, host, sizeof(host)))
		return cfg_fail(p, p->line, "%s: not a valid host name or address: \"%s\"",
				k->name, token);
	owner = host_owner(p->cfg, host);
	if (owner)
		return cfg_fail(p, p->line, "%s: %s is already a host of provider %s",
				k->name, host, owner->name);
	return strings_append(p, &prov->hosts, &prov->n_hosts, host);
}

/* Comma- and/or blank-separated list; the key may repeat. */
static int parse_hosts(struct cfg_parser *p, const struct key_def *k,
		       const char *value, void *obj)
{
	char *list = strdup(value), *cursor = list, *token;
	int rc = 0;

	if (!list)
		return cfg_fail(p, p->line, "out of memory");
	while (rc == 0 && (token = strsep(&cursor, ", \t")))
		if (*token)
			rc = provider_add_host(p, k, obj, token);
	free(list);
	return rc;
}

static int provider_key(struct cfg_parser *p, struct dt_provider_cfg *prov,
			enum dt_key_kind kind, const char *ref)
{
	if (prov->key.kind != DT_KEY_NONE)
		return cfg_fail(p, p->line, "%s: provider %s already has a key source",
				p->key, prov->name);
	return key_source_set(p, &prov->key, kind, ref);
}

/* key = file:PATH | credential:NAME | env:VAR */
static int parse_key(struct cfg_parser *p, const struct key_def *k,
		     const char *value, void *obj)
{
	enum dt_key_kind kind;
	const char *ref;

	(void)k;
	if (key_source_split(p, value, &kind, &ref) < 0)
		return -1;
	return provider_key(p, obj, kind, ref);
}

/* The older spellings: key_file = PATH, key_credential = NAME, key_env = VAR. */
static int parse_key_file(struct cfg_parser *p, const struct key_def *k,
			  const char *value, void *obj)
{
	(void)k;
	return provider_key(p, obj, DT_KEY_FILE, value);
}

static int parse_key_credential(struct cfg_parser *p, const struct key_def *k,
				const char *value, void *obj)
{
	(void)k;
	return provider_key(p, obj, DT_KEY_CREDENTIAL, value);
}

static int parse_key_env(struct cfg_parser *p, const struct key_def *k,
			 const char *value, void *obj)
{
	(void)k;
	return provider_key(p, obj, DT_KEY_ENV, value);
}

/* Path of a provider's API under its base URL, by family. */
static const char *const family_api_path[] = {
	[DT_FAMILY_OPENAI]    = "/v1",
	[DT_FAMILY_ANTHROPIC] = "/v1",
	[DT_FAMILY_GEMINI]    = "/v1beta",
};

_Static_assert(ARRAY_SIZE(family_api_path) == ARRAY_SIZE(family_names), "a path per family");

/* Writes "[host]" for an IPv6 address, host otherwise. */
static int url_host_print(char *out, size_t outlen, const char *host)
{
	return snprintf(out, outlen, strchr(host, ':') ? "[%s]" : "%s", host);
}

/*
 * base_url = http[s]://HOST[:PORT][/PATH]: stored with HOST normalized
 * like hosts=, PORT in decimal and no trailing slash. Plain http only to
 * a local model: localhost or an address literal. Errors do not repeat
 * the value: URLs can carry keys too (?key=).
 */
static int parse_base_url(struct cfg_parser *p, const struct key_def *k,
			  const char *value, void *obj)
{
	struct dt_provider_cfg *prov = obj;
	bool https = strncmp(value, "https://", 8) == 0, bracketed, literal;
	const char *host, *host_end, *port = NULL, *path;
	char token[HOST_MAX + 1], canon[HOST_MAX + 1], shown[HOST_MAX + 3], port_text[8] = "";
	unsigned char addr[sizeof(struct in6_addr)];
	size_t path_len;

	if (!https && strncmp(value, "http://", 7) != 0)
		return cfg_fail(p, p->line, "%s: expected https://HOST[:PORT][/PATH]", k->name);
	for (const char *c = value; *c; c++)
		if (!isgraph((unsigned char)*c))
			return cfg_fail(p, p->line, "%s: blank or control character in the URL", k->name);
	if (strpbrk(value, "?#"))
		return cfg_fail(p, p->line, "%s: no query (?) or fragment (#) allowed", k->name);
	host = value + (https ? 8 : 7);
	path = host + strcspn(host, "/");
	if (memchr(host, '@', (size_t)(path - host)))
		return cfg_fail(p, p->line, "%s: no user information (USER@) allowed", k->name);

	/* HOST, [IPV6], then :PORT or nothing */
	bracketed = *host == '[';
	host += bracketed;
	host_end = memchr(host, bracketed ? ']' : ':', (size_t)(path - host));
	if (!bracketed && !host_end)
		host_end = path;
	if (host_end && host_end != path) {
		const char *after = host_end + bracketed;

		if (after != path && *after != ':')
			host_end = NULL;
		else if (after != path)
			port = after + 1;
	}
	if (!host_end || (size_t)(host_end - host) >= sizeof(token))
		return cfg_fail(p, p->line, "%s: not a valid host", k->name);
	memcpy(token, host, (size_t)(host_end - host));
	token[host_end - host] = '\0';
	if (bracketed != (inet_pton(AF_INET6, token, addr) == 1) ||
	    !host_normalize(token, canon, sizeof(canon)))
		return cfg_fail(p, p->line, "%s: not a valid host", k->name);
	literal = inet_pton(AF_INET, canon, addr) == 1 || bracketed;
	if (!https && !literal && strcmp(canon, "localhost") != 0)
		return cfg_fail(p, p->line, "%s: http:// only to localhost or an address literal (a local model); use https://",
				k->name);
	if (port) {
		char digits[6] = "";
		unsigned long n;

		if ((size_t)(path - port) < sizeof(digits))
			memcpy(digits, port, (size_t)(path - port));
		if (number_parse(digits, &n) < 0 || n < 1 || n > 65535)
			return cfg_fail(p, p->line, "%s: port: expected a number from 1 to 65535", k->name);
		snprintf(port_text, sizeof(port_text), ":%lu", n);
	}
	path_len = strlen(path);
	while (path_len > 0 && path[path_len - 1] == '/')
		path_len--;
	url_host_print(shown, sizeof(shown), canon);
	if ((size_t)snprintf(prov->base_url, sizeof(prov->base_url), "%s://%s%s%.*s",
			     https ? "https" : "http", shown, port_text,
			     (int)path_len, path) >= sizeof(prov->base_url))
		return cfg_fail(p, p->line, "%s: longer than %zu characters", k->name,
				sizeof(prov->base_url) - 1);
	return 0;
}

/* https://FIRST-HOST[:PORT]/v1 or /v1beta, once the hosts are known. */
static void provider_default_base_url(struct dt_provider_cfg *prov)
{
	char shown[HOST_MAX + 3], port[8] = "";

	url_host_print(shown, sizeof(shown), prov->hosts[0]);
	if (prov->port != 443)
		snprintf(port, sizeof(port), ":%u", prov->port);
	snprintf(prov->base_url, sizeof(prov->base_url), "https://%s%s%s",
		 shown, port, family_api_path[prov->family]);
}

static int provider_open(struct cfg_parser *p, const char *name)
{
	struct dt_cfg *cfg = p->cfg;
	const struct dt_provider_cfg *dup = provider_find(cfg, name);
	struct dt_provider_cfg *prov;

	if (dup)
		return cfg_fail(p, p->line, "provider %s already defined at line %d",
				name, dup->line);
	if (cfg->n_providers == DT_MAX_PROVIDERS)
		return cfg_fail(p, p->line, "more than %d providers", DT_MAX_PROVIDERS);
	prov = array_append(p, cfg->providers, cfg->n_providers, sizeof(*prov));
	if (!prov)
		return -1;
	cfg->providers = prov;
	prov += cfg->n_providers++;
	strcpy(prov->name, name);
	prov->port = 443;
	prov->family = DT_FAMILY_OPENAI;
	prov->probe = true;
	prov->probe_ttft_per_hour = 4;
	prov->ask_stream_usage = true;
	prov->line = p->line;
	p->obj = prov;
	return 0;
}

/* ---- classes ------------------------------------------------------------------ */

/* caps=: router.h's DT_CAP_* bits by name; "text" is what every model
 * serves, so that a member serving nothing more can say so. */
static const struct { const char *name; unsigned bit; } cap_names[] = {
	{ "text", 0 }, { "tools", 1u << 0 }, { "images", 1u << 1 }, { "json", 1u << 2 },
};

/* caps=NAME[,NAME...] */
static int parse_caps(struct cfg_parser *p, const struct key_def *k,
		      const char *value, void *obj)
{
	struct dt_member_cfg *m = obj;
	char *list = strdup(value), *cursor = list, *word;
	bool seen[ARRAY_SIZE(cap_names)] = { false };
	int rc = 0;

	if (!list)
		return cfg_fail(p, p->line, "out of memory");
	m->caps_declared = true;
	while (rc == 0 && (word = strsep(&cursor, ","))) {
		size_t i = 0;

		while (i < ARRAY_SIZE(cap_names) && strcmp(word, cap_names[i].name) != 0)
			i++;
		if (i == ARRAY_SIZE(cap_names))
			rc = cfg_fail(p, p->line, "%s: unknown capability \"%s\" (text, tools, images or json)",
				      k->name, word);
		else if (seen[i])
			rc = cfg_fail(p, p->line, "%s: %s given twice", k->name, word);
		else {
			seen[i] = true;
			m->caps |= cap_names[i].bit;
		}
	}
	free(list);
	return rc;
}

/* Options after PROVIDER:MODEL, as NAME=VALUE, into a struct dt_member_cfg. */
static const struct key_def member_options[] = {
	{ "context", parse_unsigned, offsetof(struct dt_member_cfg, context_tokens), 1, 100000000, false, false },
	{ "weight",  parse_unsigned, offsetof(struct dt_member_cfg, weight), 1, 1000, false, false },
	{ "price_in",  parse_price, offsetof(struct dt_member_cfg, price_in), 0, 1000000000, false, false },
	{ "price_out", parse_price, offsetof(struct dt_member_cfg, price_out), 0, 1000000000, false, false },
	{ "caps", parse_caps, 0, 0, 0, false, false },
	{ "price_cached", parse_price, offsetof(struct dt_member_cfg, price_cached), 0, 1000000000, false, false },
};

_Static_assert(sizeof(((struct dt_member_cfg *)0)->context_tokens) == sizeof(unsigned),
	       "context_tokens is parsed as unsigned");

static bool model_valid(const char *model)
{
	size_t len = strlen(model);

	if (len == 0 || len > MODEL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isgraph((unsigned char)model[i]))
			return false;
	return true;
}

/* probe_ttft_model = MODEL: the model of a provider's opt-in TTFT probe. */
static int parse_probe_model(struct cfg_parser *p, const struct key_def *k,
			     const char *value, void *obj)
{
	struct dt_provider_cfg *prov = obj;

	if (!model_valid(value))
		return cfg_fail(p, p->line, "%s: model name must be 1 to %d printable characters without blanks",
				k->name, MODEL_MAX);
	snprintf(prov->probe_ttft_model, sizeof(prov->probe_ttft_model), "%s", value);
	return 0;
}

/* The class that has provider's model among its members, with the member. */
static const struct dt_class_cfg *member_owner(const struct dt_cfg *cfg, const char *provider,
					       const char *model, const struct dt_member_cfg **member)
{
	for (size_t i = 0; i < cfg->n_classes; i++) {
		for (size_t j = 0; j < cfg->classes[i].n_members; j++) {
			*member = &cfg->classes[i].members[j];
			if (strcmp((*member)->provider, provider) == 0 &&
			    strcmp((*member)->model, model) == 0)
				return &cfg->classes[i];
		}
	}
	return NULL;
}

/* "PROVIDER:MODEL" into m. The model may hold colons (llama3:70b). */
static int member_name_parse(struct cfg_parser *p, const struct key_def *k,
			     char *token, struct dt_member_cfg *m)
{
	char *colon = strchr(token, ':');

	if (!colon)
		return cfg_fail(p, p->line, "%s: expected PROVIDER:MODEL [context=N] [weight=N] [price_in=$ price_out=$ [price_cached=$]] [caps=LIST], got \"%s\"",
				k->name, token);
	*colon = '\0';
	if (!name_valid(token))
		return cfg_fail(p, p->line, "%s: not a provider name: \"%s\"", k->name, token);
	if (!model_valid(colon + 1))
		return cfg_fail(p, p->line, "%s: model name must be 1 to %d printable characters without blanks",
				k->name, MODEL_MAX);
	strcpy(m->provider, token);
	strcpy(m->model, colon + 1);
	return 0;
}

/* "NAME=VALUE", one of member_options[] given at most once. */
static int member_option_parse(struct cfg_parser *p, const struct key_def *k, char *token,
			       bool seen[], struct dt_member_cfg *m)
{
	char *eq = strchr(token, '=');

	if (eq)
		*eq = '\0';
	for (size_t i = 0; eq && i < ARRAY_SIZE(member_options); i++) {
		if (strcmp(token, member_options[i].name) != 0)
			continue;
		if (seen[i])
			return cfg_fail(p, p->line, "%s: %s= given twice", k->name, token);
		seen[i] = true;
		return member_options[i].parse(p, &member_options[i], eq + 1, m);
	}
	if (eq)
		*eq = '=';
	return cfg_fail(p, p->line, "%s: unknown option \"%s\" (context=N, weight=N, price_in=$, price_out=$, price_cached=$ or caps=LIST)",
			k->name, token);
}

/* member = PROVIDER:MODEL [context=N] [weight=N] [price_in=$ price_out=$ [price_cached=$]] [caps=LIST];
 * the key repeats. The
 * provider is looked up once the file is read: it may come later. */
static int parse_member(struct cfg_parser *p, const struct key_def *k,
			const char *value, void *obj)
{
	struct dt_class_cfg *cls = obj;
	struct dt_member_cfg m = { .line = p->line, .price_in = CFG_PRICE_UNSET,
				   .price_out = CFG_PRICE_UNSET, .price_cached = CFG_PRICE_UNSET }, *members;
	const struct dt_member_cfg *other;
	const struct dt_class_cfg *owner;
	bool seen[ARRAY_SIZE(member_options)] = { false };
	char *list = strdup(value), *cursor = list, *token;
	int rc = 0, n = 0;

	if (!list)
		return cfg_fail(p, p->line, "out of memory");
	while (rc == 0 && (token = strsep(&cursor, " \t")))
		if (*token)
			rc = n++ == 0 ? member_name_parse(p, k, token, &m) :
					member_option_parse(p, k, token, seen, &m);
	free(list);
	if (rc < 0)
		return -1;
	owner = member_owner(p->cfg, m.provider, m.model, &other);
	if (owner)
		return cfg_fail(p, p->line, "%s: %s:%s is already a member of class %s at line %d",
				k->name, m.provider, m.model, owner->name, other->line);
	/* one model per provider: the others could not be told apart */
	for (size_t i = 0; i < cls->n_members; i++)
		if (strcmp(cls->members[i].provider, m.provider) == 0)
			return cfg_fail(p, p->line, "%s: provider %s is already a member of class %s at line %d",
					k->name, m.provider, cls->name, cls->members[i].line);
	if (cls->n_members == CFG_MAX_MEMBERS)
		return cfg_fail(p, p->line, "%s: class %s has more than %d members",
				k->name, cls->name, CFG_MAX_MEMBERS);
	members = array_append(p, cls->members, cls->n_members, sizeof(m));
	if (!members)
		return -1;
	cls->members = members;
	members[cls->n_members++] = m;
	return 0;
}

static int class_open(struct cfg_parser *p, const char *name)
{
	struct dt_cfg *cfg = p->cfg;
	const struct dt_class_cfg *dup = name_find(cfg->classes, cfg->n_classes,
						   sizeof(*cfg->classes), name);
	struct dt_class_cfg *cls;

	if (dup)
		return cfg_fail(p, p->line, "class %s already defined at line %d", name, dup->line);
	if (cfg->n_classes == CFG_MAX_CLASSES)
		return cfg_fail(p, p->line, "more than %d classes", CFG_MAX_CLASSES);
	cls = array_append(p, cfg->classes, cfg->n_classes, sizeof(*cls));
	if (!cls)
		return -1;
	cfg->classes = cls;
	cls += cfg->n_classes++;
	strcpy(cls->name, name);
	cls->strategy = STRATEGY_PRIORITY;
	cls->line = p->line;
	p->obj = cls;
	return 0;
}

/* ---- cgroups ---------------------------------------------------------------- */

int dt_cgroup2_mount(const char *proc_mounts, char *out, size_t outlen)
{
	struct mntent ent;
	char buf[4096];
	bool found = false;
	FILE *f = setmntent(proc_mounts, "re");

	if (!f)
		return -1;
	while (!found && getmntent_r(f, &ent, buf, sizeof(buf)))
		found = strcmp(ent.mnt_type, "cgroup2") == 0;
	endmntent(f);
	if (!found) {
		errno = ENOENT;
		return -1;
	}
	if (strlen(ent.mnt_dir) >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(out, ent.mnt_dir);
	return 0;
}

/* The directory cgroups are looked up under, found on first use. NULL
 * after cfg_fail(). */
static const char *cgroup_root(struct cfg_parser *p)
{
	const char *seam = getenv(CGROUP_ROOT_ENV);
	char mount[PATH_MAX];

	if (p->cgroup_root[0])
		return p->cgroup_root;
	if (!seam) {
		if (dt_cgroup2_mount("/proc/mounts", mount, sizeof(mount)) < 0) {
			cfg_fail(p, p->line, "no cgroup v2 mount in /proc/mounts: %s",
				 strerror(errno));
			return NULL;
		}
		seam = mount;
	}
	/* Resolved like the cgroups compared with it. */
	if (!realpath(seam, p->cgroup_root)) {
		cfg_fail(p, p->line, "cgroup v2 mount %s: %s", seam, strerror(errno));
		p->cgroup_root[0] = '\0';
		return NULL;
	}
	return p->cgroup_root;
}

static int enroll_add(struct cfg_parser *p, const char *dir)
{
	struct dt_cfg *cfg = p->cfg;
	struct dt_enroll_cfg *enroll;

	for (size_t i = 0; i < cfg->n_enroll; i++)
		if (strcmp(cfg->enroll[i].cgroup, dir) == 0)
			return cfg_fail(p, p->line, "cgroup %s already enrolled at line %d",
					dir, cfg->enroll[i].line);
	enroll = array_append(p, cfg->enroll, cfg->n_enroll, sizeof(*enroll));
	if (!enroll)
		return -1;
	cfg->enroll = enroll;
	enroll[cfg->n_enroll].line = p->line;
	enroll[cfg->n_enroll].cgroup = strdup(dir);
	if (!enroll[cfg->n_enroll].cgroup)
		return cfg_fail(p, p->line, "out of memory");
	cfg->n_enroll++;
	return 0;
}

/* The application a cgroup belongs to (one at most), or NULL. */
static const struct dt_app_cfg *cgroup_app(const struct dt_cfg *cfg, const char *dir)
{
	for (size_t i = 0; i < cfg->n_apps; i++)
		for (size_t j = 0; j < cfg->apps[i].n_cgroups; j++)
			if (strcmp(cfg->apps[i].cgroups[j], dir) == 0)
				return &cfg->apps[i];
	return NULL;
}

static int app_add_cgroup(struct cfg_parser *p, struct dt_app_cfg *app, const char *dir)
{
	const struct dt_app_cfg *owner = cgroup_app(p->cfg, dir);

	if (owner)
		return cfg_fail(p, p->line, "cgroup %s already belongs to app %s (line %d)",
				dir, owner->name, owner->line);
	if (app->n_cgroups == CFG_MAX_APP_CGROUPS)
		return cfg_fail(p, p->line, "app %s has more than %d cgroups",
				app->name, CFG_MAX_APP_CGROUPS);
	return strings_append(p, &app->cgroups, &app->n_cgroups, dir);
}

/* A resolved cgroup from a cgroup or unit key: [enroll] enrolls it,
 * [app NAME] (obj) gives it that application's keys. */
static int cgroup_add(struct cfg_parser *p, void *obj, const char *dir)
{
	return p->section == SEC_APP ? app_add_cgroup(p, obj, dir) : enroll_add(p, dir);
}

/* path is inside dir (or is dir), both resolved. */
static bool path_is_under(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

/* Absolute, or relative to the cgroup v2 mount. */
static int parse_cgroup(struct cfg_parser *p, const struct key_def *k,
			const char *value, void *obj)
{
	const char *root = cgroup_root(p);
	char joined[PATH_MAX], resolved[PATH_MAX];
	struct stat st;

	if (!root)
		return -1;
	if (value[0] != '/') {
		if ((size_t)snprintf(joined, sizeof(joined), "%s/%s", root, value) >= sizeof(joined))
			return cfg_fail(p, p->line, "%s: path too long", k->name);
		value = joined;
	}
	if (!realpath(value, resolved) || stat(resolved, &st) < 0)
		return cfg_fail(p, p->line, "%s: %s: %s", k->name, value, strerror(errno));
	if (!S_ISDIR(st.st_mode) || !path_is_under(resolved, root))
		return cfg_fail(p, p->line, "%s: %s is not a cgroup under the cgroup v2 mount %s",
				k->name, value, root);
	return cgroup_add(p, obj, resolved);
}

struct unit_search {
	const char *unit;
	char found[2][PATH_MAX]; /* two are enough to call it ambiguous */
	int n_found;
};

static bool dirent_is_dir(DIR *d, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	return fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* Depth-first over path (a PATH_MAX buffer holding len characters). */
static void unit_search_tree(struct unit_search *s, char *path, size_t len, int depth)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t sublen = len + 1 + strlen(de->d_name);

		/* Hidden entries and "." and "..": never a unit. */
		if (de->d_name[0] == '.' || sublen >= PATH_MAX || !dirent_is_dir(d, de))
			continue;
		sprintf(path + len, "/%s", de->d_name);
		if (strcmp(de->d_name, s->unit) == 0) {
			if (s->n_found < (int)ARRAY_SIZE(s->found))
				strcpy(s->found[s->n_found], path);
			s->n_found++;
		} else if (depth > 1) {
			unit_search_tree(s, path, sublen, depth - 1);
		}
		path[len] = '\0';
	}
	closedir(d);
}

/* A systemd unit's cgroup: <root>/system.slice/UNIT, or else the only
 * directory of that name in the tree (a user unit, a nested slice). */
static int parse_unit(struct cfg_parser *p, const struct key_def *k,
		      const char *value, void *obj)
{
	const char *root = cgroup_root(p);
	struct unit_search s = { .unit = value };
	char path[PATH_MAX];
	struct stat st;

	if (!root)
		return -1;
	if (value[0] == '.' || strchr(value, '/') || strlen(value) > NAME_MAX)
		return cfg_fail(p, p->line, "%s: not a unit name: \"%s\"", k->name, value);
	if ((size_t)snprintf(path, sizeof(path), "%s/system.slice/%s", root, value) < sizeof(path) &&
	    stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return cgroup_add(p, obj, path);

	strcpy(path, root);
	unit_search_tree(&s, path, strlen(path), UNIT_SEARCH_DEPTH);
	if (s.n_found == 0)
		return cfg_fail(p, p->line, "%s: no cgroup of unit %s under %s",
				k->name, value, root);
	if (s.n_found > 1)
		return cfg_fail(p, p->line, "%s: unit %s is ambiguous: %s and %s",
				k->name, value, s.found[0], s.found[1]);
	return cgroup_add(p, obj, s.found[0]);
}

/* ---- applications --------------------------------------------------------------- */

static int app_open(struct cfg_parser *p, const char *name)
{
	struct dt_cfg *cfg = p->cfg;
	const struct dt_app_cfg *dup = name_find(cfg->apps, cfg->n_apps, sizeof(*cfg->apps), name);
	struct dt_app_cfg *app;

	if (dup)
		return cfg_fail(p, p->line, "app %s already defined at line %d", name, dup->line);
	if (cfg->n_apps == CFG_MAX_APPS)
		return cfg_fail(p, p->line, "more than %d apps", CFG_MAX_APPS);
	app = array_append(p, cfg->apps, cfg->n_apps, sizeof(*app));
	if (!app)
		return -1;
	cfg->apps = app;
	app += cfg->n_apps++;
	strcpy(app->name, name);
	app->line = p->line;
	p->obj = app;
	return 0;
}

/* The PROVIDER of a "NAME.PROVIDER" key: a provider's name, not yet given
 * among the n items of that key (each item of `size` bytes, the provider's
 * name first, its line at line_at). NULL after cfg_fail(). */
static const char *suffix_provider(struct cfg_parser *p, const struct key_def *k,
				   const void *items, size_t n, size_t size, size_t line_at)
{
	const char *provider = p->key + strlen(k->name);
	const char *dup;

	if (!name_valid(provider)) {
		cfg_fail(p, p->line, "%s: not a provider name: \"%s\"", p->key, provider);
		return NULL;
	}
	dup = name_find(items, n, size, provider);
	if (dup) {
		cfg_fail(p, p->line, "%s already set at line %d", p->key, *(const int *)(dup + line_at));
		return NULL;
	}
	return provider;
}

_Static_assert(offsetof(struct dt_app_key_cfg, provider) == 0, "suffix_provider");
_Static_assert(offsetof(struct dt_app_number_cfg, provider) == 0, "suffix_provider");

/* key.PROVIDER = file:PATH | credential:NAME | env:VAR, once per provider;
 * the provider is looked up once the file is read. */
static int parse_app_key(struct cfg_parser *p, const struct key_def *k,
			 const char *value, void *obj)
{
	struct dt_app_cfg *app = obj;
	const char *provider = suffix_provider(p, k, app->keys, app->n_keys, sizeof(*app->keys),
					       offsetof(struct dt_app_key_cfg, line)), *ref;
	struct dt_app_key_cfg *keys;
	enum dt_key_kind kind;

	if (!provider || key_source_split(p, value, &kind, &ref) < 0)
		return -1;
	keys = array_append(p, app->keys, app->n_keys, sizeof(*keys));
	if (!keys)
		return -1;
	app->keys = keys;
	keys += app->n_keys++;
	strcpy(keys->provider, provider);
	keys->line = p->line;
	return key_source_set(p, &keys->key, kind, ref);
}

/* NAME.PROVIDER = N into the list of application numbers at k->offset,
 * once per provider: n already read (from k->min to k->max), or -1 with
 * `expected` said. */
static int app_number_add(struct cfg_parser *p, const struct key_def *k, struct dt_app_cfg *app,
			  const char *digits, const char *value, const char *expected)
{
	struct dt_app_numbers *list = (struct dt_app_numbers *)((char *)app + k->offset);
	const char *provider = suffix_provider(p, k, list->v, list->n, sizeof(*list->v),
					       offsetof(struct dt_app_number_cfg, line));
	struct dt_app_number_cfg *v;
	unsigned long n;

	if (!provider)
		return -1;
	if (!digits || number_parse(digits, &n) < 0 || n < k->min || n > k->max)
		return cfg_fail(p, p->line, "%s: expected %s from %lu to %lu, got \"%s\"",
				p->key, expected, k->min, k->max, value);
	v = array_append(p, list->v, list->n, sizeof(*v));
	if (!v)
		return -1;
	list->v = v;
	v += list->n++;
	strcpy(v->provider, provider);
	v->value = (unsigned)n;
	v->line = p->line;
	return 0;
}

/* share.PROVIDER = 30% (the sign may be left out). */
static int parse_app_share(struct cfg_parser *p, const struct key_def *k,
			   const char *value, void *obj)
{
	size_t len = strlen(value);
	char digits[8];

	if (len && value[len - 1] == '%')
		len--;
	if (len < sizeof(digits)) {
		memcpy(digits, value, len);
		digits[len] = '\0';
	}
	return app_number_add(p, k, obj, len && len < sizeof(digits) ? digits : NULL, value,
			      "a share in %");
}

/* rpm.PROVIDER = N, tpm.PROVIDER = N. */
static int parse_app_limit(struct cfg_parser *p, const struct key_def *k,
			   const char *value, void *obj)
{
	return app_number_add(p, k, obj, value, value, "a number");
}

/* ---- sections and keys --------------------------------------------------------- */

#define KEY_UNSIGNED(name, field, min, max) \
	{ name, parse_unsigned, offsetof(struct dt_cfg, field), min, max, false, false }

static const struct key_def detour_keys[] = {
	{ "mode",      parse_mode,      0, 0, 0, false, false },
	{ "listen",    parse_listen4,   0, 1, 65535, false, false },
	{ "listen6",   parse_listen6,   0, 1, 65535, false, false },
	{ "pin_dir",   parse_abs_path,  offsetof(struct dt_cfg, pin_dir), 0, 0, false, false },
	{ "state_dir", parse_abs_path,  offsetof(struct dt_cfg, state_dir), 0, 0, false, false },
	{ "prices_file", parse_abs_path, offsetof(struct dt_cfg, prices_file), 0, 0, false, false },
	{ "log_level", parse_log_level, 0, 0, 0, false, false },
	/* 0 would leave the proxy's own connections unmarked: loops. */
	KEY_UNSIGNED("mark", mark, 1, UINT32_MAX),
	KEY_UNSIGNED("heartbeat_interval_ms", heartbeat_interval_ms, 10, 10000),
	KEY_UNSIGNED("heartbeat_ttl_ms", heartbeat_ttl_ms, 25, 60000),
	KEY_UNSIGNED("connect_timeout_ms", connect_timeout_ms, 10, 60000),
	KEY_UNSIGNED("down_hold_ms", down_hold_ms, 100, 3600000),
	KEY_UNSIGNED("dns_refresh_s", dns_refresh_s, 1, 86400),
	KEY_UNSIGNED("dns_grace_s", dns_grace_s, 0, 604800),
	/* Every connection in flight holds an entry of the redirects map. */
	KEY_UNSIGNED("max_connections", max_connections, 1, DT_MAX_REDIRECTS),
};

static const struct key_def enroll_keys[] = {
	{ "cgroup", parse_cgroup, 0, 0, 0, true, false },
	{ "unit",   parse_unit,   0, 0, 0, true, false },
};

static const struct key_def provider_keys[] = {
	{ "hosts",          parse_hosts,          0, 0, 0, true, false },
	{ "port",           parse_port, offsetof(struct dt_provider_cfg, port), 1, 65535, false, false },
	{ "family",         parse_family,         0, 0, 0, false, false },
	{ "base_url",       parse_base_url,       0, 0, 0, false, false },
	{ "key",            parse_key,            0, 0, 0, false, false },
	{ "key_file",       parse_key_file,       0, 0, 0, false, false },
	{ "key_credential", parse_key_credential, 0, 0, 0, false, false },
	{ "key_env",        parse_key_env,        0, 0, 0, false, false },
	{ "probe", parse_bool, offsetof(struct dt_provider_cfg, probe), 0, 0, false, false },
	{ "probe_ttft_model", parse_probe_model, 0, 0, 0, false, false },
	/* spaced evenly: one every 60 s at most */
	{ "probe_ttft_per_hour", parse_unsigned,
	  offsetof(struct dt_provider_cfg, probe_ttft_per_hour), 1, 60, false, false },
	{ "rpm", parse_unsigned, offsetof(struct dt_provider_cfg, rpm), 1, 100000000, false, false },
	{ "tpm", parse_unsigned, offsetof(struct dt_provider_cfg, tpm), 1, 4000000000u, false, false },
	{ "pace", parse_bool, offsetof(struct dt_provider_cfg, pace), 0, 0, false, false },
	{ "pace_max_wait_ms", parse_unsigned,
	  offsetof(struct dt_provider_cfg, pace_max_wait_ms), 1, 600000, false, false },
	{ "pace_max_queue", parse_unsigned,
	  offsetof(struct dt_provider_cfg, pace_max_queue), 1, 100000, false, false },
	{ "ask_stream_usage", parse_bool,
	  offsetof(struct dt_provider_cfg, ask_stream_usage), 0, 0, false, false },
};

static const struct key_def class_keys[] = {
	{ "member",   parse_member,   0, 0, 0, true, false },
	{ "strategy", parse_strategy, 0, 0, 0, false, false },
	{ "quality_check", parse_quality, 0, 0, 0, false, false },
	{ "latency_factor_percent", parse_unsigned,
	  offsetof(struct dt_class_cfg, latency_factor_percent), 100, 1000, false, false },
	{ "sticky", parse_bool, offsetof(struct dt_class_cfg, sticky), 0, 0, false, false },
	{ "sticky_ttl_ms", parse_unsigned,
	  offsetof(struct dt_class_cfg, sticky_ttl_ms), 1000, 86400000, false, false },
};

static const struct key_def proxy_keys[] = {
	{ "upstream_ca_bundle", parse_abs_path,
	  offsetof(struct dt_cfg, proxy.upstream_ca_bundle), 0, 0, false, false },
	KEY_UNSIGNED("max_header_bytes", proxy.max_header_bytes, 1024, 1048576),
	KEY_UNSIGNED("max_headers", proxy.max_headers, 8, 1000),
	KEY_UNSIGNED("max_body_bytes", proxy.max_body_bytes, 1024, 268435456),
	KEY_UNSIGNED("idle_timeout_ms", proxy.idle_timeout_ms, 100, 3600000),
	KEY_UNSIGNED("request_timeout_ms", proxy.request_timeout_ms, 100, 3600000),
	KEY_UNSIGNED("first_byte_timeout_ms", proxy.first_byte_timeout_ms, 100, 3600000),
	KEY_UNSIGNED("stream_idle_timeout_ms", proxy.stream_idle_timeout_ms, 100, 3600000),
	KEY_UNSIGNED("upstream_connect_timeout_ms", proxy.upstream_connect_timeout_ms, 10, 60000),
	{ "upstream_http2", parse_bool, offsetof(struct dt_cfg, proxy.upstream_http2), 0, 0, false, false },
	KEY_UNSIGNED("retry_budget_percent", proxy.retry_budget_percent, 0, 100),
	KEY_UNSIGNED("retry_budget_min", proxy.retry_budget_min, 0, 1000000),
	KEY_UNSIGNED("budget_window_ms", proxy.budget_window_ms, 100, 3600000),
	KEY_UNSIGNED("provider_failures_to_eject", proxy.provider_failures_to_eject, 1, 1000),
	KEY_UNSIGNED("provider_eject_ms", proxy.provider_eject_ms, 100, 3600000),
	KEY_UNSIGNED("key_disable_ms", proxy.key_disable_ms, 1000, 86400000),
	{ "intercept_tls", parse_bool, offsetof(struct dt_cfg, proxy.intercept_tls), 0, 0, false, false },
	{ "hedge", parse_bool, offsetof(struct dt_cfg, proxy.hedge), 0, 0, false, false },
	KEY_UNSIGNED("hedge_factor_percent", proxy.hedge_factor_percent, 100, 100000),
	KEY_UNSIGNED("hedge_min_ms", proxy.hedge_min_ms, 10, 3600000),
	KEY_UNSIGNED("hedge_max_ms", proxy.hedge_max_ms, 10, 3600000),
};

static const struct key_def app_keys[] = {
	{ "cgroup", parse_cgroup,  0, 0, 0, true, false },
	{ "unit",   parse_unit,    0, 0, 0, true, false },
	{ "key.",   parse_app_key, 0, 0, 0, true, true },
	{ "share.", parse_app_share, offsetof(struct dt_app_cfg, shares), 1, 100, true, true },
	{ "rpm.", parse_app_limit, offsetof(struct dt_app_cfg, rpm), 1, 100000000, true, true },
	{ "tpm.", parse_app_limit, offsetof(struct dt_app_cfg, tpm), 1, 4000000000u, true, true },
};

static const struct key_def health_keys[] = {
	KEY_UNSIGNED("window_ms", health.window_ms, 1000, 3600000),
	KEY_UNSIGNED("min_calls", health.min_calls, 1, 1000000000),
	KEY_UNSIGNED("failure_rate_percent", health.failure_rate_percent, 1, 100),
	KEY_UNSIGNED("slow_rate_percent", health.slow_rate_percent, 1, 100),
	KEY_UNSIGNED("poor_rate_percent", health.poor_rate_percent, 1, 100),
	KEY_UNSIGNED("slow_factor_percent", health.slow_factor_percent, 100, 100000),
	KEY_UNSIGNED("slow_min_ms", health.slow_min_ms, 1, 3600000),
	KEY_UNSIGNED("slow_ceiling_ms", health.slow_ceiling_ms, 1, 3600000),
	KEY_UNSIGNED("eject_max_ms", health.eject_max_ms, 100, 86400000),
	KEY_UNSIGNED("eject_decay_ms", health.eject_decay_ms, 100, 86400000),
	KEY_UNSIGNED("trial_requests", health.trial_requests, 1, 1000),
	KEY_UNSIGNED("trial_success_percent", health.trial_success_percent, 1, 100),
	KEY_UNSIGNED("class_max_ejected_percent", health.class_max_ejected_percent, 1, 100),
	KEY_UNSIGNED("rate_limit_default_ms", health.rate_limit_default_ms, 1, 3600000),
	KEY_UNSIGNED("probe_interval_ms", health.probe_interval_ms, 100, 86400000),
	KEY_UNSIGNED("probe_interval_down_ms", health.probe_interval_down_ms, 100, 86400000),
	KEY_UNSIGNED("probe_interval_max_ms", health.probe_interval_max_ms, 100, 86400000),
	KEY_UNSIGNED("probe_jitter_percent", health.probe_jitter_percent, 1, 100),
	KEY_UNSIGNED("probe_timeout_ms", probe_timeout_ms, 100, 600000),
	{ "probes",      parse_bool, offsetof(struct dt_cfg, probes), 0, 0, false, false },
	{ "tcp_signals", parse_bool, offsetof(struct dt_cfg, tcp_signals), 0, 0, false, false },
	{ "netwatch",    parse_bool, offsetof(struct dt_cfg, netwatch), 0, 0, false, false },
	{ "uplink", parse_ifname, 0, 0, 0, false, false },
	{ "uplink_xdp_mode", parse_xdp_mode, 0, 0, 0, false, false },
};

static const struct key_def metrics_keys[] = {
	{ "listen", parse_metrics_listen, 0, 1, 65535, false, false },
	{ "allow_remote", parse_bool, offsetof(struct dt_cfg, metrics.allow_remote), 0, 0, false, false },
};

static const struct key_def access_log_keys[] = {
	{ "path", parse_abs_path, offsetof(struct dt_cfg, access_log.path), 0, 0, false, false },
	{ "prompts", parse_bool, offsetof(struct dt_cfg, access_log.prompts), 0, 0, false, false },
};

/* [prices NAME]: NAME is a provider's name or a host, longer than names. */
static int prices_open(struct cfg_parser *p, const char *name)
{
	snprintf(p->prices_owner, sizeof(p->prices_owner), "%s", name);
	p->obj = p->cfg;
	return 0;
}

/* model = MODEL input=$ [cached_input=$] [cache_write=$] output=$ */
static int parse_prices_model(struct cfg_parser *p, const struct key_def *k,
			      const char *value, void *obj)
{
	char why[256];

	(void)obj;
	if (dt_prices_add_line(p->cfg->prices, p->prices_owner, value, DT_PRICE_CONFIG, p->line,
			       why, sizeof(why)))
		return cfg_fail(p, p->line, "%s: %s", k->name, why);
	return 0;
}

static const struct key_def prices_keys[] = {
	{ "model", parse_prices_model, 0, 0, 0, true, false },
};

static const struct {
	const char *name;
	const struct key_def *keys;
	size_t n_keys;
	/* Named sections ([provider NAME]): adds the element their keys
	 * fill and points p->obj at it. Without, keys fill the struct dt_cfg. */
	int (*open)(struct cfg_parser *p, const char *name);
} sections[SEC_COUNT] = {
	[SEC_NONE]     = { NULL, NULL, 0, NULL },
	[SEC_DETOUR]   = { "detour",   detour_keys,   ARRAY_SIZE(detour_keys),   NULL },
	[SEC_ENROLL]   = { "enroll",   enroll_keys,   ARRAY_SIZE(enroll_keys),   NULL },
	[SEC_PROVIDER] = { "provider", provider_keys, ARRAY_SIZE(provider_keys), provider_open },
	[SEC_CLASS]    = { "class",    class_keys,    ARRAY_SIZE(class_keys),    class_open },
	[SEC_PROXY]    = { "proxy",    proxy_keys,    ARRAY_SIZE(proxy_keys),    NULL },
	[SEC_APP]      = { "app",      app_keys,      ARRAY_SIZE(app_keys),      app_open },
	[SEC_HEALTH]   = { "health",   health_keys,   ARRAY_SIZE(health_keys),   NULL },
	[SEC_METRICS]  = { "metrics",  metrics_keys,  ARRAY_SIZE(metrics_keys),  NULL },
	[SEC_ACCESS_LOG] = { "access_log", access_log_keys, ARRAY_SIZE(access_log_keys), NULL },
	[SEC_PRICES]   = { "prices",   prices_keys,   ARRAY_SIZE(prices_keys),   prices_open },
};

_Static_assert(ARRAY_SIZE(detour_keys) <= CFG_MAX_SECTION_KEYS, "seen[] too small");
_Static_assert(ARRAY_SIZE(provider_keys) <= CFG_MAX_SECTION_KEYS, "seen[] too small");
_Static_assert(ARRAY_SIZE(proxy_keys) <= CFG_MAX_SECTION_KEYS, "seen[] too small");
_Static_assert(ARRAY_SIZE(health_keys) <= CFG_MAX_SECTION_KEYS, "seen[] too small");

/* header: what is between the brackets of "[detour]" or "[provider NAME]". */
static int section_open(struct cfg_parser *p, char *header)
{
	char shown[64], *word[3], *w;
	size_t n = 0;
	int s;

	snprintf(shown, sizeof(shown), "%s", header);
	while (n < ARRAY_SIZE(word) && (w = strsep(&header, " \t")))
		if (*w)
			word[n++] = w;

	for (s = SEC_DETOUR; n > 0 && s < SEC_COUNT; s++)
		if (strcmp(word[0], sections[s].name) == 0)
			break;
	if (n == 0 || s == SEC_COUNT || (!sections[s].open && n != 1))
		return cfg_fail(p, p->line, "unknown section [%s]", shown);
	p->section = (enum section_kind)s;
	if (!sections[s].open) {
		p->obj = p->cfg;
		return 0;
	}
	if (n != 2)
		return cfg_fail(p, p->line, "expected [%s NAME], got [%s]", word[0], shown);
	if (s == SEC_PRICES ? !dt_prices_owner_valid(word[1]) : !name_valid(word[1]))
		return cfg_fail(p, p->line, "%s name must be 1 to %d letters, digits, '-', '_' or '.': \"%s\"",
				word[0], s == SEC_PRICES ? DT_PRICES_OWNER_MAX : DT_NAME_LEN - 1,
				word[1]);
	/* each [provider NAME] has its own keys */
	memset(p->seen[s], 0, sizeof(p->seen[s]));
	return sections[s].open(p, word[1]);
}

/* "key.openai" is the key "key." followed by a name. */
static bool key_matches(const struct key_def *k, const char *name)
{
	size_t len = strlen(k->name);

	if (k->prefix)
		return strncmp(name, k->name, len) == 0 && name[len] != '\0';
	return strcmp(name, k->name) == 0;
}

static int cfg_key(struct cfg_parser *p, const char *name, const char *value)
{
	const struct key_def *keys = sections[p->section].keys;
	size_t n_keys = sections[p->section].n_keys, i;

	if (p->section == SEC_NONE)
		return cfg_fail(p, p->line, "key \"%s\" outside of any section", name);
	for (i = 0; i < n_keys && !key_matches(&keys[i], name); i++)
		;
	if (i == n_keys)
		return cfg_fail(p, p->line, "unknown key \"%s\" in [%s]", name,
				sections[p->section].name);
	if (!keys[i].repeats && p->seen[p->section][i])
		return cfg_fail(p, p->line, "%s already set at line %d", name,
				p->seen[p->section][i]);
	p->seen[p->section][i] = p->line;
	if (!*value)
		return cfg_fail(p, p->line, "%s: empty value", name);
	p->key = name;
	return keys[i].parse(p, &keys[i], value, p->obj);
}

/* inih's handler, non-zero on success. The section is known already: see
 * cfg_read_line(). */
static int cfg_on_key(void *user, const char *section, const char *name,
		      const char *value)
{
	struct cfg_parser *p = user;

	(void)section;
	return !p->failed && cfg_key(p, name, value) == 0;
}

/* Cut a comment starting with ';' or '#' after a blank (or at the start),
 * as inih does for ';' only. */
static void comment_strip(char *line)
{
	for (char *c = line; *c; c++) {
		if ((*c == ';' || *c == '#') && (c == line || isblank((unsigned char)c[-1]))) {
			*c = '\0';
			return;
		}
	}
}

/*
 * inih's reader: one line of the file into buf (size bytes, of which inih
 * needs 3 for "\r\n\0"). Returns NULL at the end or after an error.
 */
static char *cfg_read_line(char *buf, int size, void *stream)
{
	struct cfg_parser *p = stream;
	const char *start = p->text + p->off, *end;
	size_t len;

	if (p->failed || !*start)
		return NULL;
	end = start + strcspn(start, "\n");
	p->off = (size_t)(end - p->text) + (*end == '\n');
	p->line++;

	if (p->line == 1 && strncmp(start, "\xEF\xBB\xBF", 3) == 0)
		start += 3; /* UTF-8 byte order mark */
	if (end > start && end[-1] == '\r')
		end--; /* CRLF: the end of line is not counted */
	/* Indented lines would be inih continuation lines: unindent. */
	while (start < end && isblank((unsigned char)*start))
		start++;
	len = (size_t)(end - start);
	if (len + 3 > (size_t)size) {
		cfg_fail(p, p->line, "line longer than %d characters", size - 3);
		return NULL;
	}
	memcpy(buf, start, len);
	buf[len] = '\0';
	comment_strip(buf);

	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		/* Without "]" inih reports the syntax error itself. Otherwise the
		 * section is opened here and inih is given a blank line. */
		if (close) {
			if (close[1 + strspn(close + 1, " \t\r")] != '\0') {
				cfg_fail(p, p->line, "text after section header");
				return NULL;
			}
			*close = '\0';
			if (section_open(p, buf + 1) < 0)
				return NULL;
			buf[0] = '\0';
		}
	}
	return buf;
}

/* ---- file, defaults, checks ----------------------------------------------------- */

/* The whole file at path, NUL-terminated, in *text (its length in *len).
 * Returns 0, or -1 with the reason in why. */
static int text_read(const char *path, char **text, size_t *len, char *why, size_t whylen)
{
	ssize_t n;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*len = 0;
	if (fd < 0) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return -1;
	}
	buf = malloc(CFG_MAX_FILE + 1);
	if (!buf) {
		close(fd);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	/* One byte more than allowed tells a file too large. */
	while (*len <= CFG_MAX_FILE &&
	       (n = read(fd, buf + *len, CFG_MAX_FILE + 1 - *len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, whylen, "cannot read: %s", strerror(errno));
			goto fail;
		}
		*len += (size_t)n;
	}
	if (*len > CFG_MAX_FILE) {
		snprintf(why, whylen, "larger than %d bytes", CFG_MAX_FILE);
		goto fail;
	}
	if (memchr(buf, '\0', *len)) {
		snprintf(why, whylen, "contains a NUL byte: not a text file");
		goto fail;
	}
	buf[*len] = '\0';
	close(fd);
	*text = buf;
	return 0;
fail:
	close(fd);
	free(buf);
	return -1;
}

static int cfg_read_file(struct cfg_parser *p, char **text)
{
	char why[256];
	size_t len;

	if (text_read(p->cfg->path, text, &len, why, sizeof(why)))
		return cfg_fail(p, 0, "%s", why);
	return 0;
}

static void cfg_set_defaults(struct dt_cfg *cfg)
{
	cfg->mode = DT_MODE_PROXY;
	cfg->listen4.s_addr = htonl(INADDR_LOOPBACK);
	cfg->listen6 = in6addr_loopback;
	cfg->listen_port = 15001;
	strcpy(cfg->pin_dir, "/sys/fs/bpf/detour");
	strcpy(cfg->state_dir, "/var/lib/detour");
	cfg->log_level = DT_LOG_INFO;
	cfg->mark = 0x44540001; /* "DT" 0001 */
	cfg->heartbeat_interval_ms = 200;
	cfg->heartbeat_ttl_ms = 1000;
	cfg->connect_timeout_ms = 1000;
	cfg->down_hold_ms = 5000;
	cfg->dns_refresh_s = 30;
	cfg->dns_grace_s = 600;
	cfg->max_connections = 4096;
	cfg->proxy.max_header_bytes = 65536;
	cfg->proxy.max_headers = 100;
	cfg->proxy.max_body_bytes = 32 * 1024 * 1024;
	cfg->proxy.idle_timeout_ms = 60000;
	cfg->proxy.request_timeout_ms = 30000;
	cfg->proxy.first_byte_timeout_ms = 30000;
	cfg->proxy.stream_idle_timeout_ms = 60000;
	cfg->proxy.upstream_connect_timeout_ms = 3000;
	cfg->proxy.upstream_http2 = true;
	cfg->proxy.retry_budget_percent = 20;
	cfg->proxy.retry_budget_min = 10;
	cfg->proxy.budget_window_ms = 10000;
	cfg->proxy.provider_failures_to_eject = 3;
	cfg->proxy.provider_eject_ms = 10000;
	cfg->proxy.key_disable_ms = 300000;
	cfg->proxy.intercept_tls = true;
	cfg->probes = true;
	cfg->probe_timeout_ms = 10000;
	cfg->tcp_signals = true;
	cfg->netwatch = true;
	cfg->proxy.hedge = true;
	cfg->proxy.hedge_factor_percent = 300;
	cfg->proxy.hedge_min_ms = 1000;
	cfg->proxy.hedge_max_ms = 10000;
}

/* Line a key of an unnamed section was set at, 0 if it was not. */
static int key_line(const struct cfg_parser *p, enum section_kind s, const char *name)
{
	for (size_t i = 0; i < sections[s].n_keys; i++)
		if (strcmp(sections[s].keys[i].name, name) == 0)
			return p->seen[s][i];
	return 0;
}

static int check_providers(struct cfg_parser *p)
{
	struct dt_cfg *cfg = p->cfg;

	if (cfg->n_providers == 0)
		return cfg_fail(p, 0, "no [provider NAME] section");
	for (size_t i = 0; i < cfg->n_providers; i++) {
		struct dt_provider_cfg *prov = &cfg->providers[i];

		if (prov->n_hosts == 0)
			return cfg_fail(p, prov->line, "provider %s has no hosts", prov->name);
		if (!prov->base_url[0])
			provider_default_base_url(prov);
	}
	return 0;
}

/* caps= on every member of a class or on none: a member left out would
 * otherwise be taken for one serving everything, or nothing. */
static int check_caps_declared(struct cfg_parser *p, const struct dt_class_cfg *cls)
{
	for (size_t j = 1; j < cls->n_members; j++) {
		const struct dt_member_cfg *m = &cls->members[j], *first = &cls->members[0];

		if (m->caps_declared != first->caps_declared)
			return cfg_fail(p, m->line, "member: caps= %s, but %s on the member at line %d of class %s: give it on every member or none",
					m->caps_declared ? "given" : "missing",
					m->caps_declared ? "not" : "given", first->line, cls->name);
	}
	return 0;
}

/* A member's price options go in the price table, above the others. */
static int member_prices(struct cfg_parser *p, const struct dt_member_cfg *m)
{
	struct dt_price price;

	if ((m->price_in == CFG_PRICE_UNSET) != (m->price_out == CFG_PRICE_UNSET))
		return cfg_fail(p, m->line, "member: price_in= and price_out= go together");
	if (m->price_in == CFG_PRICE_UNSET) {
		if (m->price_cached != CFG_PRICE_UNSET)
			return cfg_fail(p, m->line, "member: price_cached= needs price_in= and price_out=");
		return 0;
	}
	price = (struct dt_price){
		.input = m->price_in, .output = m->price_out, .cache_write = m->price_in,
		.cached_input = m->price_cached != CFG_PRICE_UNSET ? m->price_cached : m->price_in,
	};
	if (dt_prices_add(p->cfg->prices, m->provider, m->model, &price, DT_PRICE_MEMBER))
		return cfg_fail(p, m->line, "out of memory");
	return 0;
}

static bool member_priced(const struct dt_cfg *cfg, const struct dt_member_cfg *m)
{
	const struct dt_provider_cfg *prov = provider_find(cfg, m->provider);
	struct dt_price price;

	return dt_prices_find(cfg->prices, prov->name, prov->hosts, prov->n_hosts, m->model, &price);
}

/* The price list: prices_file, else prices.conf next to the configuration
 * file when there is one. Its errors name its own lines. */
static int load_price_list(struct cfg_parser *p)
{
	struct dt_cfg *cfg = p->cfg;
	int line = key_line(p, SEC_DETOUR, "prices_file");
	char path[PATH_MAX], why[512], *text;
	const char *slash = strrchr(cfg->path, '/');
	size_t len;

	if (cfg->prices_file[0])
		snprintf(path, sizeof(path), "%s", cfg->prices_file);
	else if (slash)
		snprintf(path, sizeof(path), "%.*s/prices.conf", (int)(slash - cfg->path), cfg->path);
	else
		snprintf(path, sizeof(path), "prices.conf");
	if (!cfg->prices_file[0] && access(path, F_OK) != 0)
		return 0;
	if (text_read(path, &text, &len, why, sizeof(why)))
		return cfg_fail(p, line, "prices_file %s: %s", path, why);
	if (dt_prices_parse(cfg->prices, text, len, path, why, sizeof(why))) {
		free(text);
		/* the list's own FILE:LINE */
		snprintf(p->err, p->errlen, "%s", why);
		p->failed = true;
		return -1;
	}
	free(text);
	return 0;
}

/* Members name providers, which may be defined after the class. */
static int check_classes(struct cfg_parser *p)
{
	for (size_t i = 0; i < p->cfg->n_classes; i++) {
		struct dt_class_cfg *cls = &p->cfg->classes[i];
		bool priced = cls->strategy == STRATEGY_CHEAPEST || cls->strategy == STRATEGY_COMBINED;

		for (size_t j = 0; j < cls->n_members; j++) {
			struct dt_member_cfg *m = &cls->members[j];

			if (!provider_find(p->cfg, m->provider))
				return cfg_fail(p, m->line, "member: no [provider %s]", m->provider);
			if (m->weight && cls->strategy != STRATEGY_WEIGHTED)
				return cfg_fail(p, m->line, "member: weight= needs strategy = weighted in class %s",
						cls->name);
			if (!m->weight)
				m->weight = 1;
			if (member_prices(p, m) < 0)
				return -1;
			if (priced && !member_priced(p->cfg, m))
				return cfg_fail(p, m->line, "member: strategy %s in class %s needs the price of %s:%s: "
						"price_in= and price_out=, or a model line in [prices %s]",
						strategy_names[cls->strategy], cls->name, m->provider,
						m->model, m->provider);
		}
		if (check_caps_declared(p, cls) < 0)
			return -1;
		if (cls->n_members < 2)
			return cfg_fail(p, cls->line, "class %s needs at least 2 members, has %zu",
					cls->name, cls->n_members);
	}
	return 0;
}

/* Share j of application i: its provider exists, and the shares of that
 * provider given so far (by applications 0..i) add up to 100% at most. */
static int check_share(struct cfg_parser *p, size_t i, size_t j)
{
	const struct dt_cfg *cfg = p->cfg;
	const struct dt_app_number_cfg *sh = &cfg->apps[i].shares.v[j];
	unsigned total = 0;

	if (!provider_find(cfg, sh->provider))
		return cfg_fail(p, sh->line, "share.%s: no [provider %s]", sh->provider, sh->provider);
	for (size_t a = 0; a <= i; a++)
		for (size_t k = 0; k < cfg->apps[a].shares.n; k++)
			if (strcmp(cfg->apps[a].shares.v[k].provider, sh->provider) == 0)
				total += cfg->apps[a].shares.v[k].value;
	if (total > 100)
		return cfg_fail(p, sh->line, "share.%s: the applications' shares of %s add up to %u%%, more than 100%%",
				sh->provider, sh->provider, total);
	return 0;
}

/* An application's rpm.PROVIDER or tpm.PROVIDER (what) are its own key's
 * limits: it has a key.PROVIDER (which names a provider). */
static int check_key_limits(struct cfg_parser *p, const struct dt_app_cfg *app,
			    const struct dt_app_numbers *limits, const char *what)
{
	for (size_t j = 0; j < limits->n; j++) {
		const struct dt_app_number_cfg *l = &limits->v[j];

		if (!name_find(app->keys, app->n_keys, sizeof(*app->keys), l->provider))
			return cfg_fail(p, l->line, "%s.%s: the limits of app %s's own key, which has no key.%s",
					what, l->provider, app->name, l->provider);
	}
	return 0;
}

/* Once enrollment is known: an application's cgroups must be enrolled,
 * or its connections never reach the proxy. */
static int check_apps(struct cfg_parser *p)
{
	const struct dt_cfg *cfg = p->cfg;

	for (size_t i = 0; i < cfg->n_apps; i++) {
		const struct dt_app_cfg *app = &cfg->apps[i];

		for (size_t j = 0; j < app->n_keys; j++)
			if (!provider_find(cfg, app->keys[j].provider))
				return cfg_fail(p, app->keys[j].line, "key.%s: no [provider %s]",
						app->keys[j].provider, app->keys[j].provider);
		for (size_t j = 0; j < app->shares.n; j++)
			if (check_share(p, i, j) < 0)
				return -1;
		if (check_key_limits(p, app, &app->rpm, "rpm") < 0 ||
		    check_key_limits(p, app, &app->tpm, "tpm") < 0)
			return -1;
		if (app->n_cgroups == 0)
			return cfg_fail(p, app->line, "app %s has no cgroup or unit", app->name);
		if (app->n_keys == 0 && app->shares.n == 0)
			return cfg_fail(p, app->line, "app %s has no key.PROVIDER or share.PROVIDER", app->name);
		for (size_t j = 0; j < app->n_cgroups; j++) {
			size_t e = 0;

			while (e < cfg->n_enroll && !path_is_under(app->cgroups[j], cfg->enroll[e].cgroup))
				e++;
			if (e == cfg->n_enroll)
				return cfg_fail(p, app->line, "app %s: cgroup %s is not enrolled (under no [enroll] cgroup)",
						app->name, app->cgroups[j]);
		}
	}
	return 0;
}

/* Rules that involve several keys, checked once the whole file is read. */
static int cfg_check(struct cfg_parser *p)
{
	struct dt_cfg *cfg = p->cfg;
	int line;

	p->line = 0; /* errors from here on name their line explicitly */
	line = key_line(p, SEC_DETOUR, "listen6");
	if (line && p->listen6_port != cfg->listen_port)
		return cfg_fail(p, line, "listen6: port %u differs from the listen port %u",
				p->listen6_port, cfg->listen_port);
	/* The agent must be able to miss a beat without the hook failing open. */
	if (cfg->heartbeat_ttl_ms <= 2 * cfg->heartbeat_interval_ms) {
		line = key_line(p, SEC_DETOUR, "heartbeat_ttl_ms");
		if (!line)
			line = key_line(p, SEC_DETOUR, "heartbeat_interval_ms");
		return cfg_fail(p, line, "heartbeat_ttl_ms (%u) must be more than twice heartbeat_interval_ms (%u)",
				cfg->heartbeat_ttl_ms, cfg->heartbeat_interval_ms);
	}
	if (cfg->proxy.hedge_min_ms > cfg->proxy.hedge_max_ms) {
		line = key_line(p, SEC_PROXY, "hedge_min_ms");
		if (!line)
			line = key_line(p, SEC_PROXY, "hedge_max_ms");
		return cfg_fail(p, line, "hedge_min_ms (%u) must not be more than hedge_max_ms (%u)",
				cfg->proxy.hedge_min_ms, cfg->proxy.hedge_max_ms);
	}
	/* /metrics tells who uses which provider, and costs a render per scrape */
	if (cfg->metrics.on && !cfg->metrics.allow_remote && !metrics_loopback(&cfg->metrics))
		return cfg_fail(p, key_line(p, SEC_METRICS, "listen"),
				"listen: %s is not a loopback address (set allow_remote = yes to serve metrics beyond this host)",
				cfg->metrics.listen);
	if (check_providers(p) < 0 || load_price_list(p) < 0 || check_classes(p) < 0)
		return -1;
	if (cfg->n_enroll == 0) {
		const char *root = cgroup_root(p);

		if (!root || enroll_add(p, root) < 0)
			return -1;
	}
	return check_apps(p);
}

int dt_config_load(const char *path, struct dt_cfg **out, char *err, size_t errlen)
{
	struct cfg_parser p = { .err = err, .errlen = errlen };
	char *text = NULL;
	int rc;

	p.cfg = calloc(1, sizeof(*p.cfg));
	if (!p.cfg || !(p.cfg->path = strdup(path))) {
		snprintf(err, errlen, "%s: out of memory", path);
		dt_config_free(p.cfg);
		return -1;
	}
	cfg_set_defaults(p.cfg);
	p.cfg->prices = dt_prices_new();
	if (!p.cfg->prices) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (cfg_read_file(&p, &text) < 0)
		goto fail;

	p.text = text;
	/* Debian's libinih makes its line buffer size a run-time setting; its
	 * default (200) is too short for a 253-character host name. Lines
	 * longer than the buffer inih really uses are refused by
	 * cfg_read_line(), with that size in the message. */
	if (ini_max_line < CFG_MAX_LINE + 3)
		ini_max_line = CFG_MAX_LINE + 3;
	rc = ini_parse_stream(cfg_read_line, &p, cfg_on_key, &p);
	/* a key may have been written into the file, against the rules */
	explicit_bzero(text, strlen(text));
	free(text);
	/* inih goes on after a syntax error: the first error wins. */
	if (rc > 0 && (!p.failed || rc < p.err_line)) {
		p.failed = false; /* replace the error of a later line */
		cfg_fail(&p, rc, "syntax error: expected [section] or key = value");
	} else if (rc < 0) {
		cfg_fail(&p, 0, "out of memory");
	}
	if (p.failed || cfg_check(&p) < 0)
		goto fail;
	*out = p.cfg;
	return 0;
fail:
	dt_config_free(p.cfg);
	return -1;
}

void dt_config_free(struct dt_cfg *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_providers; i++) {
		strings_free(cfg->providers[i].hosts, cfg->providers[i].n_hosts);
		free(cfg->providers[i].key.ref);
	}
	free(cfg->providers);
	for (size_t i = 0; i < cfg->n_enroll; i++)
		free(cfg->enroll[i].cgroup);
	free(cfg->enroll);
	for (size_t i = 0; i < cfg->n_classes; i++)
		free(cfg->classes[i].members);
	free(cfg->classes);
	for (size_t i = 0; i < cfg->n_apps; i++) {
		strings_free(cfg->apps[i].cgroups, cfg->apps[i].n_cgroups);
		for (size_t j = 0; j < cfg->apps[i].n_keys; j++)
			free(cfg->apps[i].keys[j].key.ref);
		free(cfg->apps[i].keys);
		free(cfg->apps[i].shares.v);
		free(cfg->apps[i].rpm.v);
		free(cfg->apps[i].tpm.v);
	}
	free(cfg->apps);
	dt_prices_put(cfg->prices);
	free(cfg->path);
	free(cfg);
}
