/* SPDX-License-Identifier: MIT */
/* Test side only: bring up lo, for the unit tests that run in a network
 * namespace of their own (test_tcpsig, test_sockdiag). Needs <errno.h>,
 * <net/if.h>, <sys/ioctl.h>, <sys/socket.h>, <unistd.h>. */
#ifndef DT_TEST_LO_UP_H
#define DT_TEST_LO_UP_H

static int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		rc = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!rc && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

#endif
