/* SPDX-License-Identifier: GPL-2.0-only */
/* Deny flood: join a cgroup, then THREADS threads connect() to one address as fast as they can
 * for SECONDS. Prints what was attempted and how the kernel answered, as one JSON object. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;
static atomic_bool stop;

struct tally {
	pthread_t thread;
	unsigned long attempts, eperm, other;
};

static void *hammer(void *arg)
{
	struct tally *t = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			t->other++;
			continue;
		}
		t->attempts++;
		if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno == EPERM)
			t->eperm++;
		else
			t->other++;
		close(fd);
	}
	return NULL;
}

static int join_cgroup(const char *dir)
{
	char path[4096], pid[24];
	int fd, n;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(pid, sizeof(pid), "%d", getpid());
	if (write(fd, pid, (size_t)n) != n) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long attempts = 0, eperm = 0, other = 0;
	struct timespec t0, t1;
	struct tally *t;
	int n, r;

	if (argc != 6) {
		fprintf(stderr, "usage: flood CGROUP_DIR SECONDS IPV4 PORT THREADS\n");
		return 2;
	}
	n = atoi(argv[5]);
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)atoi(argv[4]));
	if (n < 1 || n > 64 || inet_pton(AF_INET, argv[3], &target.sin_addr) != 1) {
		fprintf(stderr, "flood: bad address or thread count\n");
		return 2;
	}
	if ((r = join_cgroup(argv[1])) < 0) {
		fprintf(stderr, "flood: cannot join %s: %s\n", argv[1], strerror(-r));
		return 2;
	}
	t = calloc((size_t)n, sizeof(*t));
	if (!t)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i].thread, NULL, hammer, &t[i]) != 0)
			return 2;
	usleep((useconds_t)(atof(argv[2]) * 1e6));
	atomic_store(&stop, true);
	for (int i = 0; i < n; i++) {
		pthread_join(t[i].thread, NULL);
		attempts += t[i].attempts;
		eperm += t[i].eperm;
		other += t[i].other;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("{\"attempts\": %lu, \"eperm\": %lu, \"other\": %lu, \"seconds\": %.3f}\n", attempts,
	       eperm, other,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	free(t);
	return 0;
}
