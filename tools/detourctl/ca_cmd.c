// SPDX-License-Identifier: MIT
/* `detourctl ca show|path|install`: the root of the local CA detourd keeps
 * in <state_dir>/ca (docs/ca.md), for operators to trust. Reads only the
 * certificates, never the intermediate's key. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <openssl/pem.h>

#include "ca.h"
#include "config.h"
#include "detourctl.h"

#define DEFAULT_TRUST_DIR "/usr/local/share/ca-certificates"
#define TRUST_FILE        "detour-root.crt" /* update-ca-certificates takes *.crt only */
#define SYSTEM_BUNDLE     "/etc/ssl/certs/ca-certificates.crt"

extern char **environ;

struct ca_args {
	const char *sub;        /* show, path or install */
	const char *trust_dir;
	bool update;            /* run update-ca-certificates */
};

static int usage_error(void)
{
	fputs("usage: detourctl [-c CONFIG] ca show|path|install [--trust-dir DIR] [--no-update]\n",
	      stderr);
	return CTL_EXIT_USAGE;
}

static int args_parse(int argc, char **argv, struct ca_args *a)
{
	static const struct option opts[] = {
		{ "trust-dir", required_argument, NULL, 't' },
		{ "no-update", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	bool install_opts = false;
	int c;

	*a = (struct ca_args){ .trust_dir = DEFAULT_TRUST_DIR, .update = true };
	optind = 0; /* glibc: restart parsing on this command's own argv */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': a->trust_dir = optarg; break;
		case 'n': a->update = false; break;
		default: return usage_error();
		}
		install_opts = true;
	}
	if (optind != argc - 1)
		return usage_error();
	a->sub = argv[optind];
	if (strcmp(a->sub, "show") && strcmp(a->sub, "path") && strcmp(a->sub, "install"))
		return usage_error();
	if (install_opts && strcmp(a->sub, "install"))
		return usage_error();
	return CTL_EXIT_OK;
}

/* <state_dir>/ca */
static int ca_dir_choose(const char *config, char out[PATH_MAX])
{
	char state_dir[PATH_MAX];
	int rc = ctl_state_dir(config, state_dir);

	if (rc == CTL_EXIT_OK)
		snprintf(out, PATH_MAX, "%s/%s", state_dir, DT_CA_SUBDIR);
	return rc;
}

static int root_locate(const char *ca_dir, char path[PATH_MAX])
{
	if (dt_ca_root_path_of(ca_dir, path, PATH_MAX) == 0)
		return CTL_EXIT_OK;
	if (errno == ENOENT) {
		fprintf(stderr, "detourctl: no CA in %s: detourd has not created it yet: "
			"start detourd once\n", ca_dir);
		return CTL_EXIT_NEVER;
	}
	fprintf(stderr, "detourctl: %s: %s\n", path, strerror(errno));
	return CTL_EXIT_FAILURE;
}

static void names_print(BIO *out, char *names)
{
	char *save = NULL;

	if (!names) {
		BIO_puts(out, "permits      (no name constraints: do not trust this root)\n");
		return;
	}
	BIO_puts(out, "permits      ");
	for (char *n = strtok_r(names, "\n", &save); n; n = strtok_r(NULL, "\n", &save))
		BIO_printf(out, "%s%s", n == names ? "" : ", ", n);
	BIO_puts(out, " (and their subdomains; no IP address)\n");
}

/* The root's PEM, then what an operator checks before trusting it. The
 * names come from the current intermediate, the only key that can sign. */
static int ca_show(const char *ca_dir, const char *root_path)
{
	char err[PATH_MAX + 64], inter_path[PATH_MAX], *names = NULL;
	BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
	X509 *root = NULL, *inter = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	int rc = CTL_EXIT_FAILURE;

	snprintf(inter_path, sizeof(inter_path), "%s/%s", ca_dir, DT_CA_INTER_FILE);
	if (!(root = dt_ca_cert_load(root_path, err, sizeof(err))) ||
	    !(inter = dt_ca_cert_load(inter_path, err, sizeof(err)))) {
		fprintf(stderr, "detourctl: %s\n", err);
		goto out;
	}
	if (!out || !X509_digest(root, EVP_sha256(), md, &md_len)) {
		fputs("detourctl: out of memory\n", stderr);
		goto out;
	}
	names = dt_ca_permitted_names(inter);
	PEM_write_bio_X509(out, root);
	BIO_puts(out, "subject      ");
	X509_NAME_print_ex(out, X509_get_subject_name(root), 0, XN_FLAG_ONELINE);
	BIO_puts(out, "\nnot before   ");
	ASN1_TIME_print(out, X509_get0_notBefore(root));
	BIO_puts(out, "\nnot after    ");
	ASN1_TIME_print(out, X509_get0_notAfter(root));
	BIO_puts(out, "\nsha256       ");
	for (unsigned i = 0; i < md_len; i++)
		BIO_printf(out, "%s%02X", i ? ":" : "", md[i]);
	BIO_puts(out, "\n");
	names_print(out, names);
	rc = CTL_EXIT_OK;
out:
	free(names);
	X509_free(inter);
	X509_free(root);
	BIO_free(out);
	return rc;
}

/* update-ca-certificates links the new .crt into /etc/ssl/certs and
 * rebuilds SYSTEM_BUNDLE; its own output goes to the operator. */
static int trust_store_update(const char *dest)
{
	char *argv[] = { "update-ca-certificates", NULL };
	pid_t pid;
	int status, e;

	fflush(stdout);
	e = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (e == ENOENT) {
		fprintf(stderr, "detourctl: update-ca-certificates is missing (package ca-certificates): "
			"add %s to the system trust store by hand\n", dest);
		return CTL_EXIT_FAILURE;
	}
	if (e) {
		fprintf(stderr, "detourctl: update-ca-certificates: %s\n", strerror(e));
		return CTL_EXIT_FAILURE;
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fputs("detourctl: update-ca-certificates failed\n", stderr);
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

/* NODE_EXTRA_CA_CERTS names the installed copy: the CA dir is root's only. */
static void runtime_hints(const char *dest, bool updated)
{
	if (!updated)
		printf("update-ca-certificates not run (--no-update): %s holds the root only once it "
		       "has\n", SYSTEM_BUNDLE);
	printf("What runtimes need besides the system store (curl, wget, git use it as it is):\n"
	       "  export NODE_EXTRA_CA_CERTS=%s\t# Node.js never reads the system store\n"
	       "  export REQUESTS_CA_BUNDLE=%s\t# Python requests (else certifi's bundle)\n"
	       "  export SSL_CERT_FILE=%s\t# OpenSSL-based tools, Python ssl, ...\n"
	       "Adding a provider host to detourd's configuration makes a new root: run "
	       "`detourctl ca install` again then, and restart the applications.\n",
	       dest, SYSTEM_BUNDLE, SYSTEM_BUNDLE);
}

static int ca_install(const char *ca_dir, const struct ca_args *a)
{
	char dest[PATH_MAX], err[PATH_MAX + 64];
	int rc = CTL_EXIT_OK;

	if (snprintf(dest, sizeof(dest), "%s/%s", a->trust_dir, TRUST_FILE) >= (int)sizeof(dest)) {
		fprintf(stderr, "detourctl: %s: %s\n", a->trust_dir, strerror(ENAMETOOLONG));
		return CTL_EXIT_FAILURE;
	}
	if (dt_ca_root_copy(ca_dir, dest, err, sizeof(err))) {
		fprintf(stderr, "detourctl: %s\n", err);
		return CTL_EXIT_FAILURE;
	}
	printf("installed the detour root as %s\n", dest);
	if (a->update)
		rc = trust_store_update(dest);
	runtime_hints(dest, a->update);
	return rc;
}

int ctl_cmd_ca(const char *config, int argc, char **argv)
{
	char ca_dir[PATH_MAX], root_path[PATH_MAX];
	struct ca_args a;
	int rc;

	rc = args_parse(argc, argv, &a);
	if (rc == CTL_EXIT_OK)
		rc = ca_dir_choose(config, ca_dir);
	if (rc == CTL_EXIT_OK)
		rc = root_locate(ca_dir, root_path);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (strcmp(a.sub, "path") == 0) {
		puts(root_path);
		return CTL_EXIT_OK;
	}
	if (strcmp(a.sub, "show") == 0)
		return ca_show(ca_dir, root_path);
	return ca_install(ca_dir, &a);
}
