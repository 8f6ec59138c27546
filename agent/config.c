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
 *  - everything allocated hangs off the struct dt_cfg being built, so a
 *    failure anywhere is cleaned up by one dt_config_free().
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

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define CFG_MAX_FILE        (1024 * 1024)
#define CFG_MAX_LINE        4096  /* characters, end of line excluded */
#define CFG_MAX_SECTION_KEYS 16
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
	SEC_COUNT,
};

struct cfg_parser;

struct key_def {
	const char *name;
	/* Parse value into obj: the struct dt_cfg, or for [provider] the
	 * struct dt_provider_cfg being filled. 0, or -1 after cfg_fail(). */
	int (*parse)(struct cfg_parser *p, const struct key_def *k,
		     const char *value, void *obj);
	size_t offset;      /* of the field in obj, for generic parsers */
	unsigned long min, max; /* range of numbers */
	bool repeats;       /* may be given more than once */
};

struct cfg_parser {
	struct dt_cfg *cfg;
	const char *text;   /* the whole file, NUL-terminated */
	size_t off;         /* start of the next line */
	int line;           /* line last handed to inih */
	enum section_kind section;
	int seen[SEC_COUNT][CFG_MAX_SECTION_KEYS]; /* line each key was set at */
	uint16_t listen6_port;
	char cgroup_root[PATH_MAX]; /* empty until first needed */
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
	char **hosts;

	if (!host_normalize(token, host, sizeof(host)))
		return cfg_fail(p, p->line, "%s: not a valid host name or address: \"%s\"",
				k->name, token);
	owner = host_owner(p->cfg, host);
	if (owner)
		return cfg_fail(p, p->line, "%s: %s is already a host of provider %s",
				k->name, host, owner->name);
	hosts = reallocarray(prov->hosts, prov->n_hosts + 1, sizeof(*hosts));
	if (!hosts)
		return cfg_fail(p, p->line, "out of memory");
	prov->hosts = hosts;
	hosts[prov->n_hosts] = strdup(host);
	if (!hosts[prov->n_hosts])
		return cfg_fail(p, p->line, "out of memory");
	prov->n_hosts++;
	return 0;
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

static int provider_set_key(struct cfg_parser *p, const struct key_def *k,
			    struct dt_provider_cfg *prov, enum dt_key_kind kind,
			    const char *ref)
{
	if (prov->key.kind != DT_KEY_NONE)
		return cfg_fail(p, p->line, "%s: provider %s already has a key source",
				k->name, prov->name);
	prov->key.ref = strdup(ref);
	if (!prov->key.ref)
		return cfg_fail(p, p->line, "out of memory");
	prov->key.kind = kind;
	return 0;
}

static int parse_key_file(struct cfg_parser *p, const struct key_def *k,
			  const char *value, void *obj)
{
	if (value[0] != '/')
		return cfg_fail(p, p->line, "%s: not an absolute path: \"%s\"", k->name, value);
	return provider_set_key(p, k, obj, DT_KEY_FILE, value);
}

/* A file name inside $CREDENTIALS_DIRECTORY. */
static int parse_key_credential(struct cfg_parser *p, const struct key_def *k,
				const char *value, void *obj)
{
	if (!*value || strchr(value, '/') || strcmp(value, ".") == 0 ||
	    strcmp(value, "..") == 0 || strlen(value) > NAME_MAX)
		return cfg_fail(p, p->line, "%s: not a credential name: \"%s\"", k->name, value);
	return provider_set_key(p, k, obj, DT_KEY_CREDENTIAL, value);
}

static int parse_key_env(struct cfg_parser *p, const struct key_def *k,
			 const char *value, void *obj)
{
	bool valid = isalpha((unsigned char)value[0]) || value[0] == '_';

	for (const char *c = value; valid && *c; c++)
		valid = isalnum((unsigned char)*c) || *c == '_';
	if (!valid)
		return cfg_fail(p, p->line, "%s: not an environment variable name: \"%s\"",
				k->name, value);
	return provider_set_key(p, k, obj, DT_KEY_ENV, value);
}

static bool provider_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= DT_NAME_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("-_.", name[i]))
			return false;
	return true;
}

static int provider_open(struct cfg_parser *p, const char *name)
{
	struct dt_cfg *cfg = p->cfg;
	struct dt_provider_cfg *prov;

	if (!provider_name_valid(name))
		return cfg_fail(p, p->line, "provider name must be 1 to %d letters, digits, '-', '_' or '.': \"%s\"",
				DT_NAME_LEN - 1, name);
	for (size_t i = 0; i < cfg->n_providers; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return cfg_fail(p, p->line, "provider %s already defined at line %d",
					name, cfg->providers[i].line);
	if (cfg->n_providers == DT_MAX_PROVIDERS)
		return cfg_fail(p, p->line, "more than %d providers", DT_MAX_PROVIDERS);

	prov = reallocarray(cfg->providers, cfg->n_providers + 1, sizeof(*prov));
	if (!prov)
		return cfg_fail(p, p->line, "out of memory");
	cfg->providers = prov;
	prov += cfg->n_providers++;
	memset(prov, 0, sizeof(*prov));
	strcpy(prov->name, name);
	prov->port = 443;
	prov->family = DT_FAMILY_OPENAI;
	prov->line = p->line;
	memset(p->seen[SEC_PROVIDER], 0, sizeof(p->seen[SEC_PROVIDER]));
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
	enroll = reallocarray(cfg->enroll, cfg->n_enroll + 1, sizeof(*enroll));
	if (!enroll)
		return cfg_fail(p, p->line, "out of memory");
	cfg->enroll = enroll;
	enroll[cfg->n_enroll].line = p->line;
	enroll[cfg->n_enroll].cgroup = strdup(dir);
	if (!enroll[cfg->n_enroll].cgroup)
		return cfg_fail(p, p->line, "out of memory");
	cfg->n_enroll++;
	return 0;
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

	(void)obj;
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
	return enroll_add(p, resolved);
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

	(void)obj;
	if (!root)
		return -1;
	if (value[0] == '.' || strchr(value, '/') || strlen(value) > NAME_MAX)
		return cfg_fail(p, p->line, "%s: not a unit name: \"%s\"", k->name, value);
	if ((size_t)snprintf(path, sizeof(path), "%s/system.slice/%s", root, value) < sizeof(path) &&
	    stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return enroll_add(p, path);

	strcpy(path, root);
	unit_search_tree(&s, path, strlen(path), UNIT_SEARCH_DEPTH);
	if (s.n_found == 0)
		return cfg_fail(p, p->line, "%s: no cgroup of unit %s under %s",
				k->name, value, root);
	if (s.n_found > 1)
		return cfg_fail(p, p->line, "%s: unit %s is ambiguous: %s and %s",
				k->name, value, s.found[0], s.found[1]);
	return enroll_add(p, s.found[0]);
}

/* ---- sections and keys --------------------------------------------------------- */

#define KEY_UNSIGNED(name, field, min, max) \
	{ name, parse_unsigned, offsetof(struct dt_cfg, field), min, max, false }

static const struct key_def detour_keys[] = {
	{ "mode",      parse_mode,      0, 0, 0, false },
	{ "listen",    parse_listen4,   0, 1, 65535, false },
	{ "listen6",   parse_listen6,   0, 1, 65535, false },
	{ "pin_dir",   parse_abs_path,  offsetof(struct dt_cfg, pin_dir), 0, 0, false },
	{ "state_dir", parse_abs_path,  offsetof(struct dt_cfg, state_dir), 0, 0, false },
	{ "log_level", parse_log_level, 0, 0, 0, false },
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
	{ "cgroup", parse_cgroup, 0, 0, 0, true },
	{ "unit",   parse_unit,   0, 0, 0, true },
};

static const struct key_def provider_keys[] = {
	{ "hosts",          parse_hosts,          0, 0, 0, true },
	{ "port",           parse_port, offsetof(struct dt_provider_cfg, port), 1, 65535, false },
	{ "family",         parse_family,         0, 0, 0, false },
	{ "key_file",       parse_key_file,       0, 0, 0, false },
	{ "key_credential", parse_key_credential, 0, 0, 0, false },
	{ "key_env",        parse_key_env,        0, 0, 0, false },
};

static const struct {
	const char *name;
	const struct key_def *keys;
	size_t n_keys;
} sections[SEC_COUNT] = {
	[SEC_NONE]     = { NULL, NULL, 0 },
	[SEC_DETOUR]   = { "detour",   detour_keys,   ARRAY_SIZE(detour_keys) },
	[SEC_ENROLL]   = { "enroll",   enroll_keys,   ARRAY_SIZE(enroll_keys) },
	[SEC_PROVIDER] = { "provider", provider_keys, ARRAY_SIZE(provider_keys) },
};

_Static_assert(ARRAY_SIZE(detour_keys) <= CFG_MAX_SECTION_KEYS, "seen[] too small");
_Static_assert(ARRAY_SIZE(provider_keys) <= CFG_MAX_SECTION_KEYS, "seen[] too small");

/* header: what is between the brackets of "[detour]", "[enroll]" or
 * "[provider NAME]". */
static int section_open(struct cfg_parser *p, char *header)
{
	char shown[64], *word[3], *w;
	size_t n = 0;

	snprintf(shown, sizeof(shown), "%s", header);
	while (n < ARRAY_SIZE(word) && (w = strsep(&header, " \t")))
		if (*w)
			word[n++] = w;

	if (n > 0 && strcmp(word[0], "provider") == 0) {
		if (n != 2)
			return cfg_fail(p, p->line, "expected [provider NAME], got [%s]", shown);
		p->section = SEC_PROVIDER;
		return provider_open(p, word[1]);
	}
	for (int s = SEC_DETOUR; n == 1 && s < SEC_COUNT; s++) {
		if (strcmp(word[0], sections[s].name) == 0) {
			p->section = (enum section_kind)s;
			return 0;
		}
	}
	return cfg_fail(p, p->line, "unknown section [%s]", shown);
}

static int cfg_key(struct cfg_parser *p, const char *name, const char *value)
{
	const struct key_def *keys = sections[p->section].keys;
	size_t n_keys = sections[p->section].n_keys, i;
	struct dt_cfg *cfg = p->cfg;
	void *obj = cfg;

	if (p->section == SEC_NONE)
		return cfg_fail(p, p->line, "key \"%s\" outside of any section", name);
	for (i = 0; i < n_keys && strcmp(keys[i].name, name) != 0; i++)
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
	if (p->section == SEC_PROVIDER)
		obj = &cfg->providers[cfg->n_providers - 1];
	return keys[i].parse(p, &keys[i], value, obj);
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

/* The whole file, NUL-terminated, in *text. */
static int cfg_read_file(struct cfg_parser *p, char **text)
{
	size_t len = 0;
	ssize_t n;
	char *buf;
	int fd = open(p->cfg->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return cfg_fail(p, 0, "cannot open: %s", strerror(errno));
	buf = malloc(CFG_MAX_FILE + 1);
	if (!buf) {
		close(fd);
		return cfg_fail(p, 0, "out of memory");
	}
	/* One byte more than allowed tells a file too large. */
	while (len <= CFG_MAX_FILE &&
	       (n = read(fd, buf + len, CFG_MAX_FILE + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cfg_fail(p, 0, "cannot read: %s", strerror(errno));
			goto fail;
		}
		len += (size_t)n;
	}
	if (len > CFG_MAX_FILE) {
		cfg_fail(p, 0, "larger than %d bytes", CFG_MAX_FILE);
		goto fail;
	}
	if (memchr(buf, '\0', len)) {
		cfg_fail(p, 0, "contains a NUL byte: not a text file");
		goto fail;
	}
	buf[len] = '\0';
	close(fd);
	*text = buf;
	return 0;
fail:
	close(fd);
	free(buf);
	return -1;
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
}

/* Line a [detour] key was set at, 0 if it was not. */
static int detour_key_line(const struct cfg_parser *p, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(detour_keys); i++)
		if (strcmp(detour_keys[i].name, name) == 0)
			return p->seen[SEC_DETOUR][i];
	return 0;
}

/* Rules that involve several keys, checked once the whole file is read. */
static int cfg_check(struct cfg_parser *p)
{
	struct dt_cfg *cfg = p->cfg;
	int line;

	p->line = 0; /* errors from here on name their line explicitly */
	line = detour_key_line(p, "listen6");
	if (line && p->listen6_port != cfg->listen_port)
		return cfg_fail(p, line, "listen6: port %u differs from the listen port %u",
				p->listen6_port, cfg->listen_port);
	/* The agent must be able to miss a beat without the hook failing open. */
	if (cfg->heartbeat_ttl_ms <= 2 * cfg->heartbeat_interval_ms) {
		line = detour_key_line(p, "heartbeat_ttl_ms");
		if (!line)
			line = detour_key_line(p, "heartbeat_interval_ms");
		return cfg_fail(p, line, "heartbeat_ttl_ms (%u) must be more than twice heartbeat_interval_ms (%u)",
				cfg->heartbeat_ttl_ms, cfg->heartbeat_interval_ms);
	}
	if (cfg->n_providers == 0)
		return cfg_fail(p, 0, "no [provider NAME] section");
	for (size_t i = 0; i < cfg->n_providers; i++)
		if (cfg->providers[i].n_hosts == 0)
			return cfg_fail(p, cfg->providers[i].line, "provider %s has no hosts",
					cfg->providers[i].name);
	if (cfg->n_enroll == 0) {
		const char *root = cgroup_root(p);

		if (!root)
			return -1;
		return enroll_add(p, root);
	}
	return 0;
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
		for (size_t j = 0; j < cfg->providers[i].n_hosts; j++)
			free(cfg->providers[i].hosts[j]);
		free(cfg->providers[i].hosts);
		free(cfg->providers[i].key.ref);
	}
	free(cfg->providers);
	for (size_t i = 0; i < cfg->n_enroll; i++)
		free(cfg->enroll[i].cgroup);
	free(cfg->enroll);
	free(cfg->path);
	free(cfg);
}
