/* SPDX-License-Identifier: MIT */
/*
 * The local CA of the re-signing proxy (docs/ca.md).
 *
 * A self-signed root signs one intermediate whose critical nameConstraints
 * permit only the configured provider host names (and exclude every IP
 * address); the root's key is freed right after, never written. The
 * intermediate's key, kept in the CA dir (0600), signs one leaf per SNI, all
 * with one leaf key that lives in memory only.
 *
 * Files in the CA dir: root.pem (the certificate clients trust),
 * intermediate.pem, intermediate.key, hosts (the names permitted, one a line,
 * for operators: detour reads them back from the certificate itself).
 */
#ifndef DT_CA_H
#define DT_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define DT_CA_SUBDIR     "ca"               /* the CA dir is <state_dir>/ca */
#define DT_CA_ROOT_FILE  "root.pem"
#define DT_CA_INTER_FILE "intermediate.pem"
#define DT_CA_KEY_FILE   "intermediate.key"
#define DT_CA_HOSTS_FILE "hosts"

struct dt_ca;

struct dt_ca_opts {
	const char *dir;                 /* e.g. <state_dir>/ca; created 0700 */
	const char *const *hosts;        /* configured provider host names (lower case) */
	size_t n_hosts;
};

/*
 * Load the CA kept in dir, or create it. When the stored constraints differ
 * from hosts (a host added or removed), a new root and intermediate are made
 * and *reissued is set (the caller logs that clients must re-trust the root).
 * A stored CA that is incomplete or inconsistent (a crash while writing it),
 * or whose intermediate expires within 30 days, is re-issued the same way.
 *
 * Address literals among hosts are skipped: clients send no SNI for them and
 * the constraints exclude every IP address. Any other host must be a valid
 * lower-case DNS name, and at least one must remain. An intermediate.key
 * readable by group or others, or not owned by the caller, is refused.
 */
struct dt_ca *dt_ca_open(const struct dt_ca_opts *o, bool *reissued, char *err, size_t errlen);

/*
 * A server SSL_CTX presenting a leaf for sni (+ the intermediate), minted on
 * first use and cached (re-minted when near expiry). NULL when sni is not one
 * of the hosts (err says why). Borrowed: valid until dt_ca_free.
 *
 * TLS >= 1.2; ALPN selects "http/1.1" when the client offers it, and nothing
 * otherwise. Meant to be switched to from a servername callback with
 * SSL_set_SSL_CTX(); a re-mint replaces the certificate inside the same
 * SSL_CTX, so the pointer stays valid and connections already set up keep
 * theirs.
 */
SSL_CTX *dt_ca_server_ctx(struct dt_ca *ca, const char *sni, char *err, size_t errlen);

const char *dt_ca_root_path(const struct dt_ca *ca);   /* PEM of the root to trust */
void dt_ca_free(struct dt_ca *ca);

/* For detourctl: path of the root in a CA dir without loading the keys.
 * Returns 0, or -1 with errno set (ENOENT: no CA there yet). */
int dt_ca_root_path_of(const char *dir, char *out, size_t outlen);

/* For detourctl: a certificate from a PEM file, or NULL with err set. */
X509 *dt_ca_cert_load(const char *path, char *err, size_t errlen);

/* The dNSNames permitted by cert's nameConstraints, one per line ("a\nb\n"),
 * or NULL when it has none (or out of memory). free() it. */
char *dt_ca_permitted_names(const X509 *cert);

/* Copy the root of the CA in dir to dest (0644, atomically), for a trust
 * store. Returns 0, or -1 with errno set (ENOENT: no CA) and err. */
int dt_ca_root_copy(const char *dir, const char *dest, char *err, size_t errlen);

#endif /* DT_CA_H */
