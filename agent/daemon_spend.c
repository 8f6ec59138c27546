// SPDX-License-Identifier: MIT
/*
 * What the answers cost, for detourctl spend (docs/cost.md): the proxy's
 * rows (spend.h) written as JSON to <state_dir>/spend.json on the
 * heartbeat after they changed, whole each time (a new file renamed over
 * the old one), so a reader never sees half of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "prices.h"
#include "proxy.h"
#include "spend.h"

static int write_whole(const char *path, const char *text, size_t len)
{
	char tmp[PATH_MAX + 8];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (size_t done = 0; done < len && rc == 0; ) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno != EINTR)
			rc = -errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (close(fd) && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

void daemon_spend_write(struct detourd *d)
{
	const struct dt_spend *s = d->proxy ? dt_proxy_spend(d->proxy) : NULL;
	char path[PATH_MAX];
	size_t len;
	char *json;
	int rc;

	if (!s || (d->spend_written && dt_spend_answers(s) == d->spend_answers))
		return;
	json = dt_spend_json(s, dt_prices_date(d->cfg->prices), &len);
	if (!json) {
		log_warn("spend: out of memory");
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", d->cfg->state_dir, DT_SPEND_FILE);
	rc = write_whole(path, json, len);
	free(json);
	/* logged once; every beat tries again */
	if (rc && !d->spend_failing)
		log_warn("spend: %s: %s", path, strerror(-rc));
	d->spend_failing = rc != 0;
	d->spend_written = rc == 0;
	d->spend_answers = dt_spend_answers(s);
}
