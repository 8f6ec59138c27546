/* SPDX-License-Identifier: MIT */
/*
 * Provider keys: read from where the configuration says they are
 * (struct dt_key_source), held in memory that is wiped when freed. A key
 * never appears in an error message, a log line or anything else this
 * module writes.
 */
#ifndef DT_KEYS_H
#define DT_KEYS_H

#include <stddef.h>

#include "config.h"

#define DT_KEY_MAX 4096 /* bytes of a key, trailing blanks excluded */

/*
 * Read the key a source names:
 *  - DT_KEY_FILE: a regular file owned by root (or by the current user
 *    when not root, for tests) with no group or other permission bits;
 *  - DT_KEY_CREDENTIAL: $CREDENTIALS_DIRECTORY/NAME, the same checks but
 *    ownership (systemd makes it the service's);
 *  - DT_KEY_ENV: an environment variable.
 * Trailing blanks and line ends are stripped; what remains must be 1 to
 * DT_KEY_MAX visible ASCII characters (a key goes into an HTTP header).
 *
 * Returns 0 with *key set (free it with dt_key_free()), or -1 with err
 * saying which source and why, never what the source holds.
 */
int dt_key_load(const struct dt_key_source *src, char **key, char *err, size_t errlen);

/* Wipe (explicit_bzero) and free; NULL is ignored. */
void dt_key_free(char *key);

#endif /* DT_KEYS_H */
