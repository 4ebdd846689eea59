/* SPDX-License-Identifier: GPL-2.0-only */
/* probe: makes the socket calls the integration tests judge, from inside a cgroup.
 *   probe [--cgroup DIR] connect tcp|udp ADDR PORT     one connect()
 *   probe [--cgroup DIR] sendto ADDR PORT              one unconnected UDP datagram
 *   probe [--cgroup DIR] socket raw|raw6|packet        socket creation
 *   probe [--cgroup DIR] loop tcp|udp ADDR PORT N      N connects, counts by outcome
 *   probe [--cgroup DIR] loopfor tcp|udp ADDR PORT SECS connects for SECS seconds, counted
 *   probe [--cgroup DIR] alternate A1 P1 A2 P2 N USEC  N pairs of TCP connects, USEC apart, a
 *                                                      line each: "AD" = first allowed, second
 *                                                      denied
 *   probe [--cgroup DIR] serve tcp|udp ADDR PORT       listen until killed
 *   probe [--cgroup DIR] exec CMD...                   run CMD in the cgroup
 * Prints "allowed" or "denied" (EPERM) and the errno name; exits 0 allowed, 1 denied, 2 on
 * a usage or setup error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int join_cgroup(const char *dir)
{
	char path[4096], pid[16];
	int fd, n;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (write(fd, pid, (size_t)n) != n) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	return 0;
}

static int make_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
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

/* 0 when the kernel let the call through (whatever the peer did), EPERM when refused. */
static int try_connect(int type, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(addr, port, &ss, &len), fd, r;

	if (fam < 0)
		return -1;
	fd = socket(fam, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	r = connect(fd, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
	close(fd);
	if (r == ECONNREFUSED || r == EINPROGRESS)
		r = 0;
	return r;
}

static int try_sendto(const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(addr, port, &ss, &len), fd, r;

	if (fam < 0)
		return -1;
	fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	r = sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
	close(fd);
	return r;
}

static int report(int r)
{
	if (r < 0) {
		fprintf(stderr, "probe: bad address\n");
		return 2;
	}
	printf("%s %s\n", r == EPERM ? "denied" : "allowed", r ? strerrorname_np(r) : "OK");
	return r == EPERM ? 1 : 0;
}

static int serve(int type, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(addr, port, &ss, &len), fd, one = 1;

	if (fam < 0)
		return 2;
	fd = socket(fam, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 2;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 512) < 0)) {
		perror("probe: serve");
		return 2;
	}
	printf("serving\n");
	fflush(stdout);
	for (;;) {
		char buf[2048];

		if (type == SOCK_STREAM) {
			int c = accept(fd, NULL, NULL);

			if (c >= 0)
				close(c);
		} else if (recv(fd, buf, sizeof(buf), 0) < 0) {
			return 2;
		}
	}
}

int main(int argc, char **argv)
{
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--cgroup")) {
		int r = join_cgroup(argv[2]);

		if (r < 0) {
			fprintf(stderr, "probe: cannot join %s: %s\n", argv[2], strerror(-r));
			return 2;
		}
		i = 3;
	}
	if (i >= argc)
		goto usage;
	if (!strcmp(argv[i], "connect") && argc - i == 4)
		return report(try_connect(strcmp(argv[i + 1], "udp") ? SOCK_STREAM : SOCK_DGRAM,
					  argv[i + 2], atoi(argv[i + 3])));
	if (!strcmp(argv[i], "sendto") && argc - i == 3)
		return report(try_sendto(argv[i + 1], atoi(argv[i + 2])));
	if (!strcmp(argv[i], "socket") && argc - i == 2) {
		int fd;

		if (!strcmp(argv[i + 1], "raw"))
			fd = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
		else if (!strcmp(argv[i + 1], "raw6"))
			fd = socket(AF_INET6, SOCK_RAW, IPPROTO_UDP);
		else if (!strcmp(argv[i + 1], "packet"))
			fd = socket(AF_PACKET, SOCK_RAW, htons(0x0003));
		else
			goto usage;
		if (fd >= 0)
			close(fd);
		return report(fd < 0 ? errno : 0);
	}
	if (!strcmp(argv[i], "loop") && argc - i == 5) {
		int type = strcmp(argv[i + 1], "udp") ? SOCK_STREAM : SOCK_DGRAM;
		long n = atol(argv[i + 4]), allowed = 0, denied = 0, other = 0;

		for (long k = 0; k < n; k++) {
			int r = try_connect(type, argv[i + 2], atoi(argv[i + 3]));

			if (r == 0)
				allowed++;
			else if (r == EPERM)
				denied++;
			else
				other++;
		}
		printf("allowed=%ld denied=%ld other=%ld\n", allowed, denied, other);
		return other ? 2 : 0;
	}
	if (!strcmp(argv[i], "loopfor") && argc - i == 5) {
		int type = strcmp(argv[i + 1], "udp") ? SOCK_STREAM : SOCK_DGRAM;
		long allowed = 0, denied = 0, other = 0;
		time_t end = time(NULL) + atoi(argv[i + 4]);

		while (time(NULL) < end) {
			int r = try_connect(type, argv[i + 2], atoi(argv[i + 3]));

			if (r == 0)
				allowed++;
			else if (r == EPERM)
				denied++;
			else
				other++;
		}
		printf("allowed=%ld denied=%ld other=%ld\n", allowed, denied, other);
		return 0;
	}
	if (!strcmp(argv[i], "alternate") && argc - i == 7) {
		long n = atol(argv[i + 5]), pause = atol(argv[i + 6]);

		for (long k = 0; k < n; k++) {
			if (pause > 0)
				usleep((useconds_t)pause);
			int a = try_connect(SOCK_STREAM, argv[i + 1], atoi(argv[i + 2]));
			int b = try_connect(SOCK_STREAM, argv[i + 3], atoi(argv[i + 4]));

			printf("%c%c\n",
			       a == EPERM ? 'D' :
			       a	  ? '?' :
					    'A',
			       b == EPERM ? 'D' :
			       b	  ? '?' :
					    'A');
		}
		return 0;
	}
	if (!strcmp(argv[i], "serve") && argc - i == 4)
		return serve(strcmp(argv[i + 1], "udp") ? SOCK_STREAM : SOCK_DGRAM, argv[i + 2],
			     atoi(argv[i + 3]));
	if (!strcmp(argv[i], "exec") && argc - i >= 2) {
		execvp(argv[i + 1], &argv[i + 1]);
		perror("probe: exec");
		return 2;
	}
usage:
	fprintf(stderr, "usage: see the comment at the top of tests/integration/probe.c\n");
	return 2;
}
