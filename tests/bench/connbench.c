/* SPDX-License-Identifier: GPL-2.0-only */
/* connbench: connect() latency from inside a cgroup and a network namespace.
 *   connbench [--cgroup DIR] [--netns PATH] ADDR PORT N
 * Listens on ADDR:PORT (a thread accepts and closes), then makes N blocking TCP connects to it,
 * each timed alone and closed with a reset (no TIME_WAIT to run out of ports). Prints
 * "median_ns=M p99_ns=P mean_ns=A refused=R". The cgroup is joined before the namespace is
 * entered: the cgroup2 mount is only reachable from the original view. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int lfd;

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(lfd, NULL, NULL);

		if (c >= 0)
			close(c);
	}
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *cg = NULL, *ns = NULL;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	uint64_t *lat, sum = 0;
	long n, ok = 0, refused = 0;
	pthread_t t;
	int i = 1, one = 1;

	while (i + 1 < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--cgroup"))
			cg = argv[i + 1];
		else if (!strcmp(argv[i], "--netns"))
			ns = argv[i + 1];
		else
			break;
		i += 2;
	}
	if (argc - i != 3) {
		fprintf(stderr, "usage: connbench [--cgroup DIR] [--netns PATH] ADDR PORT N\n");
		return 2;
	}
	if (cg) {
		char path[4096], pid[16];
		int fd, len;

		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		fd = open(path, O_WRONLY);
		len = snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (fd < 0 || write(fd, pid, (size_t)len) != len) {
			perror("connbench: cgroup");
			return 2;
		}
		close(fd);
	}
	if (ns) {
		int fd = open(ns, O_RDONLY);

		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			perror("connbench: netns");
			return 2;
		}
		close(fd);
	}
	inet_pton(AF_INET, argv[i], &sa.sin_addr);
	sa.sin_port = htons((uint16_t)atoi(argv[i + 1]));
	n = atol(argv[i + 2]);
	lat = calloc((size_t)n, sizeof(*lat));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!lat || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
		perror("connbench: listen");
		return 2;
	}
	pthread_create(&t, NULL, acceptor, NULL);
	for (long k = 0; k < n; k++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		uint64_t t0, t1;
		int r;

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		t0 = now_ns();
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		t1 = now_ns();
		close(fd);
		if (r < 0) {
			refused++;
			continue;
		}
		lat[ok++] = t1 - t0;
		sum += t1 - t0;
	}
	if (!ok) {
		printf("median_ns=0 p99_ns=0 mean_ns=0 refused=%ld\n", refused);
		return 1;
	}
	qsort(lat, (size_t)ok, sizeof(*lat), cmp_u64);
	printf("median_ns=%llu p99_ns=%llu mean_ns=%llu refused=%ld\n",
	       (unsigned long long)lat[ok / 2], (unsigned long long)lat[ok * 99 / 100],
	       (unsigned long long)(sum / (uint64_t)ok), refused);
	return 0;
}
