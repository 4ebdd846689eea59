/* SPDX-License-Identifier: GPL-2.0-only */
/* bypass: every way out an agent might try, one technique per command, for the bypass corpus.
 *   bypass [--cgroup DIR] TECHNIQUE ARGS...
 * Prints one line, "reached ERRNO" (the call got past the policy: the peer was reached or
 * refused on its own), "blocked ERRNO" (refused with EPERM/EACCES: the policy or the kernel's
 * permission checks), or "failed ERRNO" (the technique does not work here at all), and exits
 * 0, 1 or 3 accordingly; 2 on a usage error.
 *
 *   connect tcp|udp|mptcp ADDR PORT      connect() (udp: then send() a byte)
 *   sendto|sendmsg|sendmmsg ADDR PORT    unconnected UDP with a destination address
 *   connected-sendto|connected-sendmsg|connected-sendmmsg OKADDR OKPORT ADDR PORT
 *                                        UDP connected to an allowed address, then a datagram
 *                                        with another destination in msg_name
 *   fastopen ADDR PORT                   TCP sendto(MSG_FASTOPEN) with data, no connect()
 *   fastopen-connect ADDR PORT           TCP_FASTOPEN_CONNECT, connect(), write()
 *   uring-connect ADDR PORT              TCP connect through io_uring
 *   uring-sendmsg ADDR PORT              UDP sendmsg with msg_name through io_uring
 *   uring-send OKADDR OKPORT ADDR PORT   io_uring send on UDP connected to OK, then sendmsg to
 *                                        ADDR through io_uring
 *   fork|thread ADDR PORT                TCP connect from a child process / a new thread
 *   mkcg NAME ADDR PORT                  create a child cgroup of its own, move there, connect
 *   escape DIR                           move itself into DIR (another cgroup)
 *   fdpass udp|tcp|udp-connected OUTCG ADDR PORT
 *                                        a process in cgroup OUTCG makes the socket (tcp,
 *                                        udp-connected: connects it to ADDR) and passes it over
 *                                        a Unix socket; this one then uses it toward ADDR
 *   socket raw|raw6|packet|netlink|ping|ping6|sctp  socket creation (ping: then an echo to
 *                                        ADDR, given as a third argument)
 *   listen ADDR PORT                     bind and listen: inbound, not an outbound call
 *   udp-reply ADDR PORT                  bind, wait for a datagram, reply to its sender
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/sock_tool.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* The address, or exit: a test with a bad address is a broken test. */
static int make_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	int fam = tool_addr(addr, port, ss, len);

	if (fam < 0) {
		fprintf(stderr, "bypass: bad address %s\n", addr);
		exit(2);
	}
	return fam;
}

/* 0 reached, or the errno; a peer that refused or did not answer was reached past the policy */
static int outcome(int err)
{
	if (err == ECONNREFUSED || err == EINPROGRESS || err == ETIMEDOUT || err == EHOSTUNREACH)
		return 0;
	return err;
}

static int report(int err)
{
	const char *what = err == 0			 ? "reached" :
			   err == EPERM || err == EACCES ? "blocked" :
							   "failed";

	printf("%s %s\n", what, err ? strerrorname_np(err) : "OK");
	fflush(stdout);
	return err == 0 ? 0 : err == EPERM || err == EACCES ? 1 : 3;
}

static int do_connect(int proto, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(addr, port, &ss, &len);
	int type = proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM, fd, r = 0;

	fd = socket(fam, type | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0)
		r = errno;
	else if (proto == IPPROTO_UDP && send(fd, "x", 1, 0) < 0)
		r = errno;
	close(fd);
	return outcome(r);
}

static int udp_send(int fd, const char *how, const struct sockaddr_storage *ss, socklen_t len)
{
	char b1[] = "x", b2[] = "y";
	struct iovec iov[2] = { { b1, 1 }, { b2, 1 } };
	struct mmsghdr mm[2] = { 0 };
	struct msghdr m = {
		.msg_name = (void *)ss, .msg_namelen = len, .msg_iov = iov, .msg_iovlen = 1
	};

	if (!strcmp(how, "sendto"))
		return sendto(fd, "x", 1, 0, (const struct sockaddr *)ss, len) < 0 ? errno : 0;
	if (!strcmp(how, "sendmsg"))
		return sendmsg(fd, &m, 0) < 0 ? errno : 0;
	for (int i = 0; i < 2; i++) {
		mm[i].msg_hdr.msg_name = (void *)ss;
		mm[i].msg_hdr.msg_namelen = len;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	/* sendmmsg returns how many went; an error only when the first one failed */
	int n = sendmmsg(fd, mm, 2, 0);

	if (n < 0)
		return errno;
	return n == 2 ? 0 : EPERM;
}

static int do_udp(const char *how, const char *okaddr, int okport, const char *addr, int port)
{
	struct sockaddr_storage ss, ok;
	socklen_t len, oklen;
	int fam = make_addr(addr, port, &ss, &len), fd, r;

	fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (okaddr) {
		make_addr(okaddr, okport, &ok, &oklen);
		if (connect(fd, (struct sockaddr *)&ok, oklen) < 0) {
			fprintf(stderr, "bypass: connect to the allowed address: %m\n");
			exit(3);
		}
	}
	r = udp_send(fd, how, &ss, len);
	close(fd);
	return r;
}

static int do_fastopen(const char *addr, int port, int use_connect)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(addr, port, &ss, &len), fd, one = 1, r = 0;

	fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (use_connect) {
		if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)) < 0)
			r = errno;
		else if (connect(fd, (struct sockaddr *)&ss, len) < 0)
			r = errno;
		else if (write(fd, "x", 1) < 0)
			r = errno;
	} else if (sendto(fd, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&ss, len) < 0) {
		r = errno;
	}
	close(fd);
	return outcome(r);
}

static int uring_run(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int r;

	io_uring_submit(ring);
	r = io_uring_wait_cqe(ring, &cqe);
	if (r < 0)
		return -r;
	r = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return r < 0 ? -r : 0;
}

static int do_uring(const char *what, const char *okaddr, int okport, const char *addr, int port)
{
	struct sockaddr_storage ss, ok;
	struct io_uring ring;
	struct iovec iov = { "x", 1 };
	struct msghdr m = { 0 };
	socklen_t len, oklen;
	int fam = make_addr(addr, port, &ss, &len), fd, r;
	int udp = strcmp(what, "uring-connect") != 0;

	r = io_uring_queue_init(4, &ring, 0);
	if (r < 0)
		return -r;
	fd = socket(fam, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (!udp) {
		io_uring_prep_connect(io_uring_get_sqe(&ring), fd, (struct sockaddr *)&ss, len);
		r = outcome(uring_run(&ring));
	} else {
		if (okaddr) {
			make_addr(okaddr, okport, &ok, &oklen);
			if (connect(fd, (struct sockaddr *)&ok, oklen) < 0)
				return errno;
			io_uring_prep_send(io_uring_get_sqe(&ring), fd, "x", 1, 0);
			if (uring_run(&ring))
				fprintf(stderr, "bypass: send to the allowed address failed\n");
		}
		m.msg_name = &ss;
		m.msg_namelen = len;
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		io_uring_prep_sendmsg(io_uring_get_sqe(&ring), fd, &m, 0);
		r = uring_run(&ring);
	}
	close(fd);
	io_uring_queue_exit(&ring);
	return r;
}

struct thread_arg {
	const char *addr;
	int port, r;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;

	a->r = do_connect(IPPROTO_TCP, a->addr, a->port);
	return NULL;
}

static int do_fork(const char *addr, int port)
{
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(do_connect(IPPROTO_TCP, addr, port));
	if (waitpid(pid, &st, 0) < 0)
		return errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EIO;
}

static int own_cgroup(char *buf, size_t len)
{
	char line[4096];
	FILE *f = fopen("/proc/self/cgroup", "re");
	const char *mnt = NULL;

	if (!f)
		return errno;
	/* the cgroup2 hierarchy's line, "0::/path" (v1 hierarchies have their own lines) */
	for (;;) {
		if (!fgets(line, sizeof(line), f)) {
			fclose(f);
			return EIO;
		}
		if (!strncmp(line, "0::", 3))
			break;
	}
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	/* the cgroup2 mount: the tests' harness finds it the same way */
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return errno;
	static char mline[8192];
	static char mpath[4096];
	while (fgets(mline, sizeof(mline), f)) {
		char fstype[64];
		char *sep = strstr(mline, " - ");

		if (!sep || sscanf(sep, " - %63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(mline, "%*s %*s %*s %*s %4095s", mpath) == 1) {
			mnt = mpath;
			break;
		}
	}
	fclose(f);
	if (!mnt)
		return ENOENT;
	snprintf(buf, len, "%s%s", mnt, strchr(line, '/'));
	return 0;
}

static int do_mkcg(const char *name, const char *addr, int port)
{
	char cg[4096], sub[4200];
	int r = own_cgroup(cg, sizeof(cg));

	if (r)
		return r;
	snprintf(sub, sizeof(sub), "%s/%s", cg, name);
	if (mkdir(sub, 0755) < 0 && errno != EEXIST)
		return errno;
	if ((r = tool_join_cgroup(sub))) {
		fprintf(stderr, "bypass: cannot join %s: %s\n", sub, strerror(r));
		return r;
	}
	fprintf(stderr, "bypass: now in %s\n", sub);
	return do_connect(IPPROTO_TCP, addr, port);
}

static int send_fd(int sock, int fd, char tag)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &tag, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &m, 0) < 0 ? errno : 0;
}

static int recv_fd(int sock, char *tag)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { tag, 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd = -1;

	if (recvmsg(sock, &m, 0) <= 0)
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The socket is made in OUTCG by a child process, then passed to this one, in the agent's
 * cgroup (joined by --cgroup before). */
static int do_fdpass(const char *kind, const char *outcg, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(addr, port, &ss, &len), sv[2], fd, r, st;
	int udp = strncmp(kind, "udp", 3) == 0, pre_connect = strcmp(kind, "udp") != 0;
	char tag = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return errno;
	pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		close(sv[0]);
		if ((r = tool_join_cgroup(outcg)))
			_exit(2);
		fd = socket(fam, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
		if (fd < 0)
			_exit(2);
		if (pre_connect && connect(fd, (struct sockaddr *)&ss, len) < 0) {
			fprintf(stderr, "bypass: the outside process could not connect: %m\n");
			send_fd(sv[1], -1, errno == EPERM ? 'D' : 'F');
			_exit(0);
		}
		send_fd(sv[1], fd, 'S');
		_exit(0);
	}
	close(sv[1]);
	fd = recv_fd(sv[0], &tag);
	waitpid(pid, &st, 0);
	if (fd < 0) {
		fprintf(stderr, "bypass: no socket passed (%c)\n", tag);
		return tag == 'D' ? EPERM : EIO;
	}
	if (!pre_connect)
		r = sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
	else
		r = send(fd, "x", 1, MSG_NOSIGNAL) < 0 ? errno : 0;
	close(fd);
	return outcome(r);
}

static int do_socket(const char *kind, const char *addr)
{
	int fd, r = 0;

	if (!strcmp(kind, "raw"))
		fd = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
	else if (!strcmp(kind, "raw6"))
		fd = socket(AF_INET6, SOCK_RAW, IPPROTO_UDP);
	else if (!strcmp(kind, "packet"))
		fd = socket(AF_PACKET, SOCK_RAW, htons(0x0003));
	else if (!strcmp(kind, "netlink"))
		fd = socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */);
	else if (!strcmp(kind, "ping"))
		fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	else if (!strcmp(kind, "ping6"))
		fd = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
	else if (!strcmp(kind, "sctp"))
		fd = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
	else
		return -1;
	if (fd < 0)
		return errno;
	if (addr && (!strcmp(kind, "ping") || !strcmp(kind, "ping6"))) {
		struct sockaddr_storage ss;
		socklen_t len;
		struct icmphdr h = { .type = ICMP_ECHO };

		if (!strcmp(kind, "ping6"))
			h.type = 128; /* ICMPV6_ECHO_REQUEST */
		make_addr(addr, 0, &ss, &len);
		r = sendto(fd, &h, sizeof(h), 0, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
	}
	close(fd);
	return r;
}

static int do_listen(const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(addr, port, &ss, &len), fd, r = 0, one = 1;

	fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 8) < 0)
		r = errno;
	close(fd);
	return r;
}

static int do_udp_reply(const char *addr, int port)
{
	struct sockaddr_storage ss, from;
	socklen_t len, flen = sizeof(from);
	int fam = make_addr(addr, port, &ss, &len), fd, one = 1;
	struct pollfd pfd;
	char buf[64];

	fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return errno;
	printf("listening\n");
	fflush(stdout);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 10000) != 1)
		return ETIMEDOUT;
	if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen) < 0)
		return errno;
	return sendto(fd, "r", 1, 0, (struct sockaddr *)&from, flen) < 0 ? errno : 0;
}

int main(int argc, char **argv)
{
	int i = 1, n;
	const char *t;

	if (argc > 2 && !strcmp(argv[1], "--cgroup")) {
		int r = tool_join_cgroup(argv[2]);

		if (r) {
			fprintf(stderr, "bypass: cannot join %s: %s\n", argv[2], strerror(r));
			return 2;
		}
		i = 3;
	}
	if (i >= argc)
		goto usage;
	t = argv[i];
	n = argc - i - 1;
	if (!strcmp(t, "connect") && n == 3)
		return report(do_connect(!strcmp(argv[i + 1], "udp")   ? IPPROTO_UDP :
					 !strcmp(argv[i + 1], "mptcp") ? IPPROTO_MPTCP :
									 IPPROTO_TCP,
					 argv[i + 2], atoi(argv[i + 3])));
	if ((!strcmp(t, "sendto") || !strcmp(t, "sendmsg") || !strcmp(t, "sendmmsg")) && n == 2)
		return report(do_udp(t, NULL, 0, argv[i + 1], atoi(argv[i + 2])));
	if (!strncmp(t, "connected-", 10) && n == 4)
		return report(do_udp(t + 10, argv[i + 1], atoi(argv[i + 2]), argv[i + 3],
				     atoi(argv[i + 4])));
	if (!strcmp(t, "fastopen") && n == 2)
		return report(do_fastopen(argv[i + 1], atoi(argv[i + 2]), 0));
	if (!strcmp(t, "fastopen-connect") && n == 2)
		return report(do_fastopen(argv[i + 1], atoi(argv[i + 2]), 1));
	if ((!strcmp(t, "uring-connect") || !strcmp(t, "uring-sendmsg")) && n == 2)
		return report(do_uring(t, NULL, 0, argv[i + 1], atoi(argv[i + 2])));
	if (!strcmp(t, "uring-send") && n == 4)
		return report(do_uring(t, argv[i + 1], atoi(argv[i + 2]), argv[i + 3],
				       atoi(argv[i + 4])));
	if (!strcmp(t, "fork") && n == 2)
		return report(do_fork(argv[i + 1], atoi(argv[i + 2])));
	if (!strcmp(t, "thread") && n == 2) {
		struct thread_arg a = { argv[i + 1], atoi(argv[i + 2]), 0 };
		pthread_t th;

		if (pthread_create(&th, NULL, thread_main, &a))
			return 3;
		pthread_join(th, NULL);
		return report(a.r);
	}
	if (!strcmp(t, "mkcg") && n == 3)
		return report(do_mkcg(argv[i + 1], argv[i + 2], atoi(argv[i + 3])));
	if (!strcmp(t, "escape") && n == 1)
		return report(tool_join_cgroup(argv[i + 1]));
	if (!strcmp(t, "fdpass") && n == 4)
		return report(do_fdpass(argv[i + 1], argv[i + 2], argv[i + 3], atoi(argv[i + 4])));
	if (!strcmp(t, "socket") && (n == 1 || n == 2)) {
		int r = do_socket(argv[i + 1], n == 2 ? argv[i + 2] : NULL);

		if (r < 0)
			goto usage;
		return report(r);
	}
	if (!strcmp(t, "listen") && n == 2)
		return report(do_listen(argv[i + 1], atoi(argv[i + 2])));
	if (!strcmp(t, "udp-reply") && n == 2)
		return report(do_udp_reply(argv[i + 1], atoi(argv[i + 2])));
	if (!strcmp(t, "exec") && n >= 1) {
		execvp(argv[i + 1], &argv[i + 1]);
		perror("bypass: exec");
		return 2;
	}
usage:
	fprintf(stderr, "usage: see the comment at the top of tests/bypass/bypass.c\n");
	return 2;
}
