// SPDX-License-Identifier: MIT
/* libFuzzer harness for the configuration parser: any bytes must give either
 * a configuration or a "FILE[:LINE]: reason" error, never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

static char root[] = "/tmp/detour-fuzz-cgroup-XXXXXX";

static void remove_root(void)
{
	rmdir(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* cgroup lookups go to an empty private tree, not the host's */
	if (!mkdtemp(root))
		abort();
	atexit(remove_root);
	setenv("DETOUR_CGROUP_ROOT", root, 1);
	dt_log_level = DT_LOG_ERROR;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[1024];
	struct dt_cfg *cfg = NULL;
	int fd = memfd_create("fuzz.conf", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		err[0] = '\0';
		if (dt_config_load(path, &cfg, err, sizeof(err)) == 0)
			dt_config_free(cfg);
		else if (strncmp(err, path, strlen(path)) != 0)
			abort(); /* every error names the file */
	}
	close(fd);
	return 0;
}
