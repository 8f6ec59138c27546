// SPDX-License-Identifier: MIT
/* The local CA: a root whose key is gone, one name-constrained intermediate,
 * leaves minted per SNI. The trust model is in docs/ca.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "log.h"

#define DAY_S           (24L * 60 * 60)
#define CA_DAYS         3650 /* root and intermediate */
#define CA_RENEW_DAYS   30   /* an intermediate this close to its end is re-issued */
#define LEAF_DAYS       30
#define LEAF_RENEW_DAYS 7
#define CLOCK_SKEW_S    60   /* certificates start a minute early: clients' clocks drift */
#define CN_MAX          64   /* ub-common-name, RFC 5280 */
#define DNS_NAME_MAX    253

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct leaf {
	char *host;        /* a configured host, lower case */
	SSL_CTX *ctx;      /* NULL until first asked for */
	time_t renew_at;   /* re-mint from then on */
};

struct dt_ca {
	char dir[PATH_MAX];
	char root_path[PATH_MAX];
	EVP_PKEY *inter_key;
	X509 *inter;
	EVP_PKEY *leaf_key;    /* one key for every leaf, in memory only */
	struct leaf *leaves;   /* one per host, sorted */
	size_t n_leaves;
};

/* One X.509v3 extension in OpenSSL's configuration syntax. */
struct ext_spec {
	int nid;
	const char *value;
};

/* Everything that tells a root, an intermediate and a leaf apart. */
struct cert_spec {
	const char *cn;          /* NULL: empty subject (the SAN names it) */
	X509 *issuer;            /* NULL: self-signed */
	EVP_PKEY *subject_key;   /* its public half goes in the certificate */
	EVP_PKEY *issuer_key;    /* signs it */
	long days;
	const struct ext_spec *exts;
	size_t n_exts;
};

enum ca_state { CA_ABSENT, CA_USABLE, CA_STALE };

/* "what: <OpenSSL's reason>"; the error queue is emptied so that a later
 * failure does not report this one's cause. */
static void ossl_fail(char *err, size_t errlen, const char *what)
{
	const char *reason = ERR_reason_error_string(ERR_peek_last_error());

	snprintf(err, errlen, "%s: %s", what, reason ? reason : "OpenSSL failed");
	ERR_clear_error();
}

static void sys_fail(char *err, size_t errlen, const char *what, int errnum)
{
	snprintf(err, errlen, "ca: %s: %s", what, strerror(errnum));
}

static const char *ca_file(const struct dt_ca *ca, const char *name, char path[PATH_MAX])
{
	snprintf(path, PATH_MAX, "%s/%s", ca->dir, name);
	return path;
}

/* ---- provider host names ------------------------------------------------ */

static bool is_address_literal(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* Lower-case letters, digits and inner hyphens, in labels of 1 to 63, 253
 * in all. Nothing else may reach the extension text built from a host: a
 * comma there would add a constraint of the caller's choosing. */
static bool is_dns_name(const char *host)
{
	size_t len = strlen(host), label = 0;

	if (len == 0 || len > DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = host[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || host[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* Case-insensitive, so that an SNI in any case finds its host. */
static int leaf_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct leaf *)a)->host, ((const struct leaf *)b)->host);
}

/* One leaf slot per distinct DNS host name, sorted. */
static int leaves_init(struct dt_ca *ca, const struct dt_ca_opts *o, char *err, size_t errlen)
{
	size_t kept = 0;

	ca->leaves = calloc(o->n_hosts ? o->n_hosts : 1, sizeof(*ca->leaves));
	if (!ca->leaves) {
		snprintf(err, errlen, "ca: out of memory");
		return -1;
	}
	for (size_t i = 0; i < o->n_hosts; i++) {
		const char *host = o->hosts[i];

		if (is_address_literal(host))
			continue;
		if (!is_dns_name(host)) {
			snprintf(err, errlen, "ca: provider host '%s': not a lower-case DNS name", host);
			return -1;
		}
		ca->leaves[ca->n_leaves].host = strdup(host);
		if (!ca->leaves[ca->n_leaves].host) {
			snprintf(err, errlen, "ca: out of memory");
			return -1;
		}
		ca->n_leaves++;
	}
	if (ca->n_leaves == 0) {
		/* constraints without a permitted dNSName would permit every name */
		snprintf(err, errlen, "ca: no provider host name to permit (address literals do not count)");
		return -1;
	}
	qsort(ca->leaves, ca->n_leaves, sizeof(*ca->leaves), leaf_cmp);
	for (size_t i = 0; i < ca->n_leaves; i++) {
		if (kept > 0 && leaf_cmp(&ca->leaves[i], &ca->leaves[kept - 1]) == 0)
			free(ca->leaves[i].host);
		else
			ca->leaves[kept++] = ca->leaves[i];
	}
	ca->n_leaves = kept;
	return 0;
}

/* The hosts one per line: the hosts file, and the form the intermediate's
 * permitted names are compared in. */
static char *hosts_joined(const struct dt_ca *ca)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < ca->n_leaves; i++)
		len += strlen(ca->leaves[i].host) + 1;
	s = p = malloc(len);
	if (!s)
		return NULL;
	for (size_t i = 0; i < ca->n_leaves; i++) {
		p = stpcpy(p, ca->leaves[i].host);
		*p++ = '\n';
	}
	*p = '\0';
	return s;
}

/* The intermediate's constraints: every host permitted (with its
 * subdomains: X.509 has no exact match), every IPv4 and IPv6 address
 * excluded, since without an iPAddress subtree IP SANs are unconstrained. */
static char *name_constraints(const struct dt_ca *ca)
{
	size_t len = 0;
	char *s = NULL;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	fputs("critical", f);
	for (size_t i = 0; i < ca->n_leaves; i++)
		fprintf(f, ",permitted;DNS:%s", ca->leaves[i].host);
	fputs(",excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::", f);
	if (fclose(f)) {
		free(s);
		return NULL;
	}
	return s;
}

char *dt_ca_permitted_names(const X509 *cert)
{
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(cert, NID_name_constraints, NULL, NULL);
	size_t len = 0;
	char *s = NULL;
	FILE *f;

	if (!nc)
		return NULL;
	f = open_memstream(&s, &len);
	if (f) {
		for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
			const GENERAL_NAME *base = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base;

			if (base->type == GEN_DNS)
				fprintf(f, "%.*s\n", ASN1_STRING_length(base->d.dNSName),
					(const char *)ASN1_STRING_get0_data(base->d.dNSName));
		}
		if (fclose(f) || len == 0) {
			free(s);
			s = NULL;
		}
	}
	NAME_CONSTRAINTS_free(nc);
	return s;
}

/* ---- certificates ------------------------------------------------------- */

static EVP_PKEY *key_new(char *err, size_t errlen)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");

	if (!key)
		ossl_fail(err, errlen, "ca: P-256 key generation");
	return key;
}

/* "<what> (<this machine's name>) <UTC time>", the machine's name cut to
 * fit a common name: operators must tell detour roots apart in a store. */
static void ca_subject_cn(char cn[CN_MAX + 1], const char *what)
{
	char host[HOST_NAME_MAX + 1], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	int room;

	if (gethostname(host, sizeof(host)))
		snprintf(host, sizeof(host), "unknown host");
	host[HOST_NAME_MAX] = '\0';
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%SZ", gmtime_r(&now, &tm));
	room = CN_MAX - (int)(strlen(what) + strlen(stamp) + 4);
	snprintf(cn, CN_MAX + 1, "%s (%.*s) %s", what, room, host, stamp);
}

/* 128 random bits: serials must be unpredictable, and unique per issuer. */
static int serial_set(X509 *x)
{
	BIGNUM *bn = BN_new();
	int ok = bn && BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
		 BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));

	BN_free(bn);
	return ok ? 0 : -1;
}

static int exts_add(X509 *x, const struct cert_spec *s)
{
	X509V3_CTX v3;

	/* the issuer's SKI becomes the AKI; a self-signed cert is its own issuer */
	X509V3_set_ctx(&v3, s->issuer ? s->issuer : x, x, NULL, NULL, 0);
	for (size_t i = 0; i < s->n_exts; i++) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, s->exts[i].nid, s->exts[i].value);
		int ok = ext && X509_add_ext(x, ext, -1);

		X509_EXTENSION_free(ext);
		if (!ok)
			return -1;
	}
	return 0;
}

/* The one certificate factory: root, intermediate and leaves differ only
 * in their cert_spec. */
static X509 *cert_make(const struct cert_spec *s, char *err, size_t errlen)
{
	X509 *x = X509_new();
	X509_NAME *subject = x ? X509_get_subject_name(x) : NULL;

	if (!x || !X509_set_version(x, X509_VERSION_3) || serial_set(x) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -CLOCK_SKEW_S) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), s->days, 0, NULL) ||
	    (s->cn && !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
						  (const unsigned char *)s->cn, -1, -1, 0)) ||
	    !X509_set_issuer_name(x, s->issuer ? X509_get_subject_name(s->issuer) : subject) ||
	    !X509_set_pubkey(x, s->subject_key) || exts_add(x, s) ||
	    !X509_sign(x, s->issuer_key, EVP_sha256())) {
		ossl_fail(err, errlen, "ca: making a certificate");
		X509_free(x);
		return NULL;
	}
	return x;
}

/* ---- files -------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Replace path with data: a temporary file created with mode (whatever the
 * umask), synced, renamed over path. Readers see the old content or the
 * new, never a part; a key never exists with a looser mode. */
static int file_write_atomic(const char *path, mode_t mode, const void *data, size_t len,
			     char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	int fd = -1, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		sys_fail(err, errlen, path, ENAMETOOLONG);
		errno = ENAMETOOLONG;
		return -1;
	}
	if (unlink(tmp) && errno != ENOENT)
		goto fail;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0 || fchmod(fd, mode) || write_all(fd, data, len) || fsync(fd))
		goto fail;
	saved = close(fd);
	fd = -1;
	if (saved || rename(tmp, path))
		goto fail;
	return 0;
fail:
	saved = errno;
	sys_fail(err, errlen, path, saved);
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

/* A certificate (0644: public) or, when key is given, that key (0600). The
 * PEM is built in a buffer that is cleared when freed. */
static int pem_store(const char *path, X509 *cert, EVP_PKEY *key, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data;
	long len;
	int rc = -1;

	if (!bio || !(key ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
			  : PEM_write_bio_X509(bio, cert))) {
		ossl_fail(err, errlen, "ca: PEM encoding");
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	rc = file_write_atomic(path, key ? 0600 : 0644, data, (size_t)len, err, errlen);
out:
	BIO_free(bio);
	return rc;
}

/* The renames above are durable once the directory is synced. */
static int dir_sync(const char *dir, char *err, size_t errlen)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd < 0 ? -1 : fsync(fd);

	if (rc)
		sys_fail(err, errlen, dir, errno);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int dir_ensure(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0) {
		if (chmod(dir, 0700)) /* the umask may have taken more */
			goto fail;
		return 0;
	}
	if (errno != EEXIST || stat(dir, &st))
		goto fail;
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "ca: %s: not a directory", dir);
		return -1;
	}
	return 0;
fail:
	sys_fail(err, errlen, dir, errno);
	return -1;
}

/* 0, -errno, or -EBADMSG when the file holds no PEM certificate. */
static int cert_read(const char *path, X509 **out)
{
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	*out = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (*out)
		return 0;
	ERR_clear_error();
	return -EBADMSG;
}

X509 *dt_ca_cert_load(const char *path, char *err, size_t errlen)
{
	X509 *cert = NULL;
	int rc = cert_read(path, &cert);

	if (rc) {
		snprintf(err, errlen, "%s: %s", path,
			 rc == -EBADMSG ? "no PEM certificate in it" : strerror(-rc));
		errno = -rc;
	}
	return cert;
}

/* The intermediate's key: 0, -errno, -EBADMSG (no PEM key in it), or
 * -EPERM with err set when others could have read or replaced it. */
static int key_read(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;
	struct stat st;
	FILE *f;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "ca: %s: readable by group or others (mode %04o): refusing a key "
			 "that may have leaked; remove the CA dir to make a new CA",
			 path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "ca: %s: owned by uid %u, not by uid %u: refusing it",
			 path, (unsigned)st.st_uid, (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	f = fdopen(fd, "r");
	if (!f) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*out = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (*out)
		return 0;
	ERR_clear_error();
	return -EBADMSG;
}

/* ---- the CA ------------------------------------------------------------- */

/* Whether the stored intermediate may go on serving these hosts; NULL when
 * it may, else why not. */
static const char *inter_stale_reason(X509 *inter, EVP_PKEY *key, X509 *root, const char *wanted)
{
	time_t soon = time(NULL) + CA_RENEW_DAYS * DAY_S;
	const char *why = NULL;
	char *permitted;

	if (X509_check_private_key(inter, key) != 1)
		why = DT_CA_KEY_FILE " does not belong to " DT_CA_INTER_FILE;
	else if (X509_verify(inter, X509_get0_pubkey(root)) != 1)
		why = DT_CA_INTER_FILE " is not signed by " DT_CA_ROOT_FILE;
	else if (X509_cmp_time(X509_get0_notAfter(inter), &soon) < 0)
		why = "the intermediate expires within 30 days";
	ERR_clear_error();
	if (why)
		return why;
	permitted = dt_ca_permitted_names(inter);
	if (!permitted || strcmp(permitted, wanted) != 0)
		why = "the provider hosts changed";
	free(permitted);
	return why;
}

/* What the CA dir holds: CA_USABLE (ca takes the intermediate and its key),
 * CA_ABSENT, or CA_STALE (why says why: incomplete, inconsistent, expiring,
 * other hosts); -1 when it cannot be read or must not be used (err). */
static int ca_load(struct dt_ca *ca, char *why, size_t whylen, char *err, size_t errlen)
{
	char path[PATH_MAX], *wanted = hosts_joined(ca);
	EVP_PKEY *key = NULL;
	X509 *inter = NULL, *root = NULL;
	const char *reason;
	int rc = -1, r;

	if (!wanted) {
		snprintf(err, errlen, "ca: out of memory");
		return -1;
	}
	r = key_read(ca_file(ca, DT_CA_KEY_FILE, path), &key, err, errlen);
	if (r == -ENOENT && access(ca->root_path, F_OK) && errno == ENOENT) {
		rc = CA_ABSENT;
		goto out;
	}
	if (r == 0)
		r = cert_read(ca_file(ca, DT_CA_INTER_FILE, path), &inter);
	if (r == 0)
		r = cert_read(ca_file(ca, DT_CA_ROOT_FILE, path), &root);
	if (r == -ENOENT || r == -EBADMSG) {
		/* what a crash between two renames leaves */
		snprintf(why, whylen, "%s %s", strrchr(path, '/') + 1,
			 r == -ENOENT ? "is missing" : "is not PEM");
		rc = CA_STALE;
		goto out;
	}
	if (r) {
		if (r != -EPERM)
			sys_fail(err, errlen, path, -r);
		goto out;
	}
	reason = inter_stale_reason(inter, key, root, wanted);
	if (reason) {
		snprintf(why, whylen, "%s", reason);
		rc = CA_STALE;
		goto out;
	}
	ca->inter_key = key;
	ca->inter = inter;
	key = NULL;
	inter = NULL;
	rc = CA_USABLE;
out:
	EVP_PKEY_free(key);
	X509_free(inter);
	X509_free(root);
	free(wanted);
	return rc;
}

/* Write what a new CA consists of; the key first, so that a crash leaves
 * an inconsistent set that the next start re-issues. */
static int ca_store(const struct dt_ca *ca, X509 *root, X509 *inter, EVP_PKEY *inter_key,
		    char *err, size_t errlen)
{
	char path[PATH_MAX], *hosts = hosts_joined(ca);
	int rc = -1;

	if (!hosts) {
		snprintf(err, errlen, "ca: out of memory");
		return -1;
	}
	if (!pem_store(ca_file(ca, DT_CA_KEY_FILE, path), inter, inter_key, err, errlen) &&
	    !pem_store(ca_file(ca, DT_CA_INTER_FILE, path), inter, NULL, err, errlen) &&
	    !pem_store(ca_file(ca, DT_CA_ROOT_FILE, path), root, NULL, err, errlen) &&
	    !file_write_atomic(ca_file(ca, DT_CA_HOSTS_FILE, path), 0644, hosts, strlen(hosts),
			       err, errlen))
		rc = dir_sync(ca->dir, err, errlen);
	free(hosts);
	return rc;
}

/* A new root signs a new intermediate for the hosts. The root's key is
 * freed (OpenSSL clears it) before anything is written: from then on
 * nothing can sign under this root but the constrained intermediate. */
static int ca_create(struct dt_ca *ca, char *err, size_t errlen)
{
	static const struct ext_spec root_exts[] = {
		{ NID_basic_constraints, "critical,CA:TRUE,pathlen:1" },
		{ NID_key_usage, "critical,keyCertSign,cRLSign" },
		{ NID_subject_key_identifier, "hash" },
	};
	char root_cn[CN_MAX + 1], inter_cn[CN_MAX + 1], *nc = name_constraints(ca);
	const struct ext_spec inter_exts[] = {
		{ NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
		{ NID_key_usage, "critical,keyCertSign" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
		{ NID_name_constraints, nc },
	};
	EVP_PKEY *root_key = NULL, *inter_key = NULL;
	X509 *root = NULL, *inter = NULL;
	int rc = -1;

	if (!nc) {
		snprintf(err, errlen, "ca: out of memory");
		return -1;
	}
	ca_subject_cn(root_cn, "detour local root");
	ca_subject_cn(inter_cn, "detour intermediate");
	root_key = key_new(err, errlen);
	inter_key = root_key ? key_new(err, errlen) : NULL;
	if (!inter_key)
		goto out;
	root = cert_make(&(struct cert_spec){ .cn = root_cn, .subject_key = root_key,
					     .issuer_key = root_key, .days = CA_DAYS,
					     .exts = root_exts, .n_exts = ARRAY_SIZE(root_exts) },
			 err, errlen);
	if (root)
		inter = cert_make(&(struct cert_spec){ .cn = inter_cn, .issuer = root,
						      .subject_key = inter_key,
						      .issuer_key = root_key, .days = CA_DAYS,
						      .exts = inter_exts,
						      .n_exts = ARRAY_SIZE(inter_exts) },
				  err, errlen);
	EVP_PKEY_free(root_key);
	root_key = NULL;
	if (!inter || ca_store(ca, root, inter, inter_key, err, errlen))
		goto out;
	ca->inter_key = inter_key;
	ca->inter = inter;
	inter_key = NULL;
	inter = NULL;
	rc = 0;
out:
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(inter_key);
	X509_free(root);
	X509_free(inter);
	free(nc);
	return rc;
}

struct dt_ca *dt_ca_open(const struct dt_ca_opts *o, bool *reissued, char *err, size_t errlen)
{
	char why[PATH_MAX + 64];
	struct dt_ca *ca = calloc(1, sizeof(*ca));
	int state;

	*reissued = false;
	if (!ca) {
		snprintf(err, errlen, "ca: out of memory");
		return NULL;
	}
	/* room for "/intermediate.key.tmp" */
	if (strlen(o->dir) + 32 >= sizeof(ca->dir)) {
		sys_fail(err, errlen, o->dir, ENAMETOOLONG);
		goto fail;
	}
	snprintf(ca->dir, sizeof(ca->dir), "%s", o->dir);
	ca_file(ca, DT_CA_ROOT_FILE, ca->root_path);
	if (leaves_init(ca, o, err, errlen) || dir_ensure(ca->dir, err, errlen))
		goto fail;
	ca->leaf_key = key_new(err, errlen);
	if (!ca->leaf_key)
		goto fail;
	state = ca_load(ca, why, sizeof(why), err, errlen);
	if (state < 0 || (state != CA_USABLE && ca_create(ca, err, errlen)))
		goto fail;
	if (state == CA_STALE) {
		*reissued = true;
		log_warn("ca: %s: %s: made a new root and intermediate; clients must trust the new root "
			 "(detourctl ca install)", ca->dir, why);
	}
	return ca;
fail:
	dt_ca_free(ca);
	return NULL;
}

/* ---- leaves ------------------------------------------------------------- */

/* The proxy speaks HTTP/1.1 to applications: choose it when offered, and
 * negotiate nothing otherwise (never h2, which it could not serve). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char http11[] = "\x08http/1.1";
	unsigned char *chosen;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&chosen, outlen, http11, sizeof(http11) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = chosen;
	return SSL_TLSEXT_ERR_OK;
}

/* A server context with the leaf key and the intermediate as chain; the
 * leaf certificate is set (and later replaced) by leaf_mint. The key goes
 * first: it selects the EC slot the chain is attached to. */
static SSL_CTX *leaf_ctx_new(const struct dt_ca *ca, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_use_PrivateKey(ctx, ca->leaf_key) || !SSL_CTX_add1_chain_cert(ctx, ca->inter)) {
		ossl_fail(err, errlen, "ca: server TLS context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/* an idle keep-alive or a slow stream holds no 34 KiB of TLS buffers */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	return ctx;
}

/* Mint lf's certificate into its context. Replacing the certificate of the
 * same SSL_CTX keeps borrowed pointers valid; SSL objects made earlier hold
 * their own copy of the old one. */
static int leaf_mint(struct dt_ca *ca, struct leaf *lf, char *err, size_t errlen)
{
	/* a host too long for a CN goes in the SAN only, which must then be critical */
	bool cn_fits = strlen(lf->host) <= CN_MAX;
	char san[DNS_NAME_MAX + 16];
	const struct ext_spec exts[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature" },
		{ NID_ext_key_usage, "serverAuth" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
		{ NID_subject_alt_name, san },
	};
	X509 *cert;
	int rc = -1;

	snprintf(san, sizeof(san), "%sDNS:%s", cn_fits ? "" : "critical,", lf->host);
	cert = cert_make(&(struct cert_spec){ .cn = cn_fits ? lf->host : NULL, .issuer = ca->inter,
					     .subject_key = ca->leaf_key,
					     .issuer_key = ca->inter_key, .days = LEAF_DAYS,
					     .exts = exts, .n_exts = ARRAY_SIZE(exts) },
			 err, errlen);
	if (!cert)
		return -1;
	if (!lf->ctx && !(lf->ctx = leaf_ctx_new(ca, err, errlen)))
		goto out;
	if (!SSL_CTX_use_certificate(lf->ctx, cert)) {
		ossl_fail(err, errlen, "ca: server TLS context");
		goto out;
	}
	lf->renew_at = time(NULL) + (LEAF_DAYS - LEAF_RENEW_DAYS) * DAY_S;
	rc = 0;
out:
	X509_free(cert);
	return rc;
}

SSL_CTX *dt_ca_server_ctx(struct dt_ca *ca, const char *sni, char *err, size_t errlen)
{
	struct leaf key = { .host = (char *)sni }, *lf;

	if (!sni) {
		snprintf(err, errlen, "ca: no server name (SNI) to mint a certificate for");
		return NULL;
	}
	lf = bsearch(&key, ca->leaves, ca->n_leaves, sizeof(*lf), leaf_cmp);
	if (!lf) {
		snprintf(err, errlen, "ca: %.*s: not a configured provider host", DNS_NAME_MAX, sni);
		return NULL;
	}
	if ((!lf->ctx || time(NULL) >= lf->renew_at) && leaf_mint(ca, lf, err, errlen))
		return NULL;
	return lf->ctx;
}

const char *dt_ca_root_path(const struct dt_ca *ca)
{
	return ca->root_path;
}

void dt_ca_free(struct dt_ca *ca)
{
	if (!ca)
		return;
	for (size_t i = 0; i < ca->n_leaves; i++) {
		free(ca->leaves[i].host);
		SSL_CTX_free(ca->leaves[i].ctx);
	}
	free(ca->leaves);
	EVP_PKEY_free(ca->leaf_key);
	EVP_PKEY_free(ca->inter_key);
	X509_free(ca->inter);
	free(ca);
}

/* ---- for detourctl ------------------------------------------------------ */

int dt_ca_root_path_of(const char *dir, char *out, size_t outlen)
{
	if (snprintf(out, outlen, "%s/%s", dir, DT_CA_ROOT_FILE) >= (int)outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return access(out, F_OK);
}

int dt_ca_root_copy(const char *dir, const char *dest, char *err, size_t errlen)
{
	char path[PATH_MAX];
	X509 *root;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, DT_CA_ROOT_FILE);
	root = dt_ca_cert_load(path, err, errlen);
	if (!root)
		return -1;
	rc = pem_store(dest, root, NULL, err, errlen);
	X509_free(root);
	return rc;
}
