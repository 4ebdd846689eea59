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
 *   probe [--cgroup DIR] hammer tcp|udp ADDR PORT SECS THREADS BURST PER_MIN
 *                      THREADS connectors for SECS; prints admissions and the worst excess
 *                      over burst + rate x T (+1) in any window (kernel times bracketed)
 *   probe [--cgroup DIR] pace tcp|udp ADDR PORT N USEC N connects USEC apart, counted
 *   probe [--cgroup DIR] udpmulti ADDR PORT N          N datagrams on one unconnected socket
 *   probe [--cgroup DIR] hold ADDR PORT N              open N TCP connections, print the
 *                                                      counts, hold them until killed
 *   probe [--cgroup DIR] cycles ADDR PORT BADPORT N    N open/close cycles: connected, refused
 *                                                      by the peer, closed mid-connect
 *   probe [--cgroup DIR] bulk tcp|udp ADDR PORT SECS   send as fast as possible for SECS
 *   probe [--cgroup DIR] sink tcp|udp ADDR PORT SECS   receive for SECS after the first byte;
 *                                                      print bytes and bytes per second
 * Prints "allowed", "denied" (EPERM), "rate-limited" (EAGAIN) or "capped" (EBUSY) and the
 * errno name; exits 0 allowed, 1 refused, 2 on a usage or setup error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/sock_tool.h"

/* 0 when the kernel let the call through (whatever the peer did), EPERM when refused. */
static int try_connect(int type, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = tool_addr(addr, port, &ss, &len), fd, r;

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
	int fam = tool_addr(addr, port, &ss, &len), fd, r;

	if (fam < 0)
		return -1;
	fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	r = sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
	close(fd);
	return r;
}

static const char *outcome(int r)
{
	switch (r) {
	case 0:
		return "allowed";
	case EPERM:
		return "denied";
	case EAGAIN:
		return "rate-limited";
	case EBUSY:
		return "capped";
	default:
		return "other";
	}
}

static int report(int r)
{
	if (r < 0) {
		fprintf(stderr, "probe: bad address\n");
		return 2;
	}
	printf("%s %s\n", outcome(r), r ? strerrorname_np(r) : "OK");
	return r == 0 ? 0 : 1;
}

/* Outcome tallies of the loop modes: the limit columns appear only when non-zero, so the
 * line of a test without limits stays "allowed=N denied=N other=N". */
struct tally {
	long allowed, denied, limited, capped, other;
};

static void tally_add(struct tally *t, int r)
{
	if (r == 0)
		t->allowed++;
	else if (r == EPERM)
		t->denied++;
	else if (r == EAGAIN)
		t->limited++;
	else if (r == EBUSY)
		t->capped++;
	else
		t->other++;
}

static void tally_print(const struct tally *t)
{
	printf("allowed=%ld denied=%ld other=%ld", t->allowed, t->denied, t->other);
	if (t->limited)
		printf(" limited=%ld", t->limited);
	if (t->capped)
		printf(" capped=%ld", t->capped);
	printf("\n");
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* hammer: every admission with the monotonic time before and after its connect. */
struct hammer {
	int type;
	const char *addr;
	int port;
	uint64_t end;
	pthread_mutex_t lock;
	uint64_t (*adm)[2];
	size_t n, cap;
	struct tally t;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;

	while (mono_ns() < h->end) {
		uint64_t before = mono_ns();
		int r = try_connect(h->type, h->addr, h->port);
		uint64_t after = mono_ns();

		pthread_mutex_lock(&h->lock);
		tally_add(&h->t, r);
		if (r == 0 && h->n < h->cap) {
			h->adm[h->n][0] = before;
			h->adm[h->n][1] = after;
			h->n++;
		}
		pthread_mutex_unlock(&h->lock);
	}
	return NULL;
}

static int cmp_adm(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

static int hammer(int type, const char *addr, int port, int secs, int threads, long burst,
		  long per_min)
{
	struct hammer h = { .type = type, .addr = addr, .port = port, .cap = 1 << 20 };
	pthread_t tid[64];
	double worst = -1e18;
	uint64_t start;

	if (threads < 1 || threads > 64)
		return 2;
	h.adm = calloc(h.cap, sizeof(*h.adm));
	if (!h.adm)
		return 2;
	pthread_mutex_init(&h.lock, NULL);
	start = mono_ns();
	h.end = start + (uint64_t)secs * 1000000000ull;
	for (int i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, hammer_thread, &h);
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	qsort(h.adm, h.n, sizeof(*h.adm), cmp_adm);
	/* admissions i..j happened in the kernel between before_i and after_j at most: the
	 * bucket allows burst + rate x that span (+1 for rounding) */
	for (size_t i = 0; i < h.n; i++)
		for (size_t j = i; j < h.n; j++) {
			double span = (double)(h.adm[j][1] - h.adm[i][0]) / 60e9;
			double excess = (double)(j - i + 1) - (burst + per_min * span + 1);

			if (excess > worst)
				worst = excess;
		}
	printf("admitted=%zu attempts=%ld limited=%ld other=%ld bound=%.1f worst_excess=%.2f\n",
	       h.n, h.t.allowed + h.t.denied + h.t.limited + h.t.capped + h.t.other, h.t.limited,
	       h.t.other + h.t.denied + h.t.capped,
	       burst + per_min * (double)(h.end - start) / 60e9 + 1, worst);
	free(h.adm);
	return worst > 0 ? 1 : 0;
}

static int udpmulti(const char *addr, int port, long n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = tool_addr(addr, port, &ss, &len), fd;
	struct tally t = { 0 };

	if (fam < 0)
		return 2;
	fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 2;
	for (long k = 0; k < n; k++)
		tally_add(&t, sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) < 0 ? errno : 0);
	close(fd);
	tally_print(&t);
	return 0;
}

static int hold(const char *addr, int port, long n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = tool_addr(addr, port, &ss, &len);
	struct tally t = { 0 };

	if (fam < 0)
		return 2;
	for (long k = 0; k < n; k++) {
		int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

		if (fd < 0)
			return 2;
		r = connect(fd, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
		tally_add(&t, r);
		if (r) /* refused sockets are closed; the held ones stay open */
			close(fd);
	}
	tally_print(&t);
	fflush(stdout);
	for (;;)
		pause();
}

/* Open and close N sockets: a connect that succeeds, one the peer refuses (nothing listens on
 * badport), and a non-blocking one closed before it completes, in turn. */
static int cycles(const char *addr, int port, int badport, long n)
{
	struct tally t = { 0 };

	for (long k = 0; k < n; k++) {
		struct sockaddr_storage ss;
		socklen_t len;
		int kind = (int)(k % 3), fam, fd, r;

		fam = tool_addr(addr, kind == 1 ? badport : port, &ss, &len);
		if (fam < 0)
			return 2;
		fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC | (kind == 2 ? SOCK_NONBLOCK : 0), 0);
		if (fd < 0)
			return 2;
		r = connect(fd, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
		if (r == ECONNREFUSED || r == EINPROGRESS)
			r = 0;
		tally_add(&t, r);
		close(fd);
	}
	tally_print(&t);
	return t.other ? 1 : 0;
}

static volatile sig_atomic_t stop;

static void on_alarm(int sig)
{
	stop = 1;
}

static int bulk(int type, const char *addr, int port, int secs)
{
	static char buf[65536];
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = tool_addr(addr, port, &ss, &len), fd;
	long long sent = 0, errs = 0;

	if (fam < 0)
		return 2;
	fd = socket(fam, type | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		printf("%s %s\n", outcome(errno), strerrorname_np(errno));
		return 1;
	}
	signal(SIGALRM, on_alarm);
	alarm((unsigned)secs);
	while (!stop) {
		ssize_t w = send(fd, buf, type == SOCK_STREAM ? sizeof(buf) : 1400, 0);

		if (w > 0)
			sent += w;
		else
			errs++;
	}
	printf("sent=%lld errors=%lld\n", sent, errs);
	close(fd);
	return 0;
}

static int sink(int type, const char *addr, int port, int secs)
{
	static char buf[65536];
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = tool_addr(addr, port, &ss, &len), fd, one = 1, c;
	long long got = 0;
	uint64_t start = 0, end;

	if (fam < 0)
		return 2;
	fd = socket(fam, type | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	one = 8 << 20; /* the sink must not be what drops */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 16) < 0)) {
		perror("probe: sink");
		return 2;
	}
	printf("serving\n");
	fflush(stdout);
	c = type == SOCK_STREAM ? accept(fd, NULL, NULL) : fd;
	if (c < 0)
		return 2;
	for (;;) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		ssize_t r;
		uint64_t now = mono_ns();

		if (start && now >= start + (uint64_t)secs * 1000000000ull)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		r = recv(c, buf, sizeof(buf), 0);
		if (r <= 0)
			break;
		if (!start)
			start = mono_ns();
		got += r;
	}
	end = mono_ns();
	printf("bytes=%lld rate=%.0f\n", got, start ? got / ((double)(end - start) / 1e9) : 0.0);
	return 0;
}

static int serve(int type, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = tool_addr(addr, port, &ss, &len), fd, one = 1;

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
		int r = tool_join_cgroup(argv[2]);

		if (r) {
			fprintf(stderr, "probe: cannot join %s: %s\n", argv[2], strerror(r));
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
		long n = atol(argv[i + 4]);
		struct tally t = { 0 };

		for (long k = 0; k < n; k++)
			tally_add(&t, try_connect(type, argv[i + 2], atoi(argv[i + 3])));
		tally_print(&t);
		return t.other ? 2 : 0;
	}
	if (!strcmp(argv[i], "loopfor") && argc - i == 5) {
		int type = strcmp(argv[i + 1], "udp") ? SOCK_STREAM : SOCK_DGRAM;
		time_t end = time(NULL) + atoi(argv[i + 4]);
		struct tally t = { 0 };

		while (time(NULL) < end)
			tally_add(&t, try_connect(type, argv[i + 2], atoi(argv[i + 3])));
		tally_print(&t);
		return 0;
	}
	if (!strcmp(argv[i], "pace") && argc - i == 6) {
		int type = strcmp(argv[i + 1], "udp") ? SOCK_STREAM : SOCK_DGRAM;
		long n = atol(argv[i + 4]), pause_us = atol(argv[i + 5]);
		struct tally t = { 0 };

		for (long k = 0; k < n; k++) {
			if (k)
				usleep((useconds_t)pause_us);
			tally_add(&t, try_connect(type, argv[i + 2], atoi(argv[i + 3])));
		}
		tally_print(&t);
		return 0;
	}
	if (!strcmp(argv[i], "hammer") && argc - i == 8)
		return hammer(strcmp(argv[i + 1], "udp") ? SOCK_STREAM : SOCK_DGRAM, argv[i + 2],
			      atoi(argv[i + 3]), atoi(argv[i + 4]), atoi(argv[i + 5]),
			      atol(argv[i + 6]), atol(argv[i + 7]));
	if (!strcmp(argv[i], "udpmulti") && argc - i == 4)
		return udpmulti(argv[i + 1], atoi(argv[i + 2]), atol(argv[i + 3]));
	if (!strcmp(argv[i], "hold") && argc - i == 4)
		return hold(argv[i + 1], atoi(argv[i + 2]), atol(argv[i + 3]));
	if (!strcmp(argv[i], "cycles") && argc - i == 5)
		return cycles(argv[i + 1], atoi(argv[i + 2]), atoi(argv[i + 3]), atol(argv[i + 4]));
	if (!strcmp(argv[i], "bulk") && argc - i == 5)
		return bulk(strcmp(argv[i + 1], "udp") ? SOCK_STREAM : SOCK_DGRAM, argv[i + 2],
			    atoi(argv[i + 3]), atoi(argv[i + 4]));
	if (!strcmp(argv[i], "sink") && argc - i == 5)
		return sink(strcmp(argv[i + 1], "udp") ? SOCK_STREAM : SOCK_DGRAM, argv[i + 2],
			    atoi(argv[i + 3]), atoi(argv[i + 4]));
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
