/* SPDX-License-Identifier: GPL-2.0-only */
/* What the socket tools of the tests share: joining a cgroup, and an address from text. */
#ifndef MAS_SOCK_TOOL_H
#define MAS_SOCK_TOOL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Move the calling process into the cgroup at dir. Returns 0 or a positive errno. */
static inline int tool_join_cgroup(const char *dir)
{
	char path[4096], pid[16];
	int fd, n;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (write(fd, pid, (size_t)n) != n) {
		n = errno;
		close(fd);
		return n;
	}
	close(fd);
	return 0;
}

/* An IPv4 or IPv6 address and port as a sockaddr. Returns the family, or -1 for text that is
 * neither. */
static inline int tool_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return AF_INET6;
	}
	return -1;
}

#endif
