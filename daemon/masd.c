/* SPDX-License-Identifier: GPL-2.0-only */
/* masd: options, the event loop, and systemd's notifications. The work is in daemon.c. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "cgroup.h"
#include "control.h"
#include "daemon.h"
#include "metrics.h"
#include "msgid.h"

struct loop {
	struct mas_daemon *d;
	struct mas_control *ctl;
	struct ring_buffer *rb;
	struct cgroup_watch *watch;
	sd_event *ev;
	sd_event_source *ring; /* the ring buffer's fd: woken per event while events are few */
	sd_event_source *pace; /* while a flood lasts: the ring buffer drained on a timer */
	sd_event_source *resolve; /* CLOCK_REALTIME: the resolver's next refresh or expiry */
	const char *metrics_file;
	unsigned ticks;
	bool torn_down;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: masd [OPTIONS]\n"
		"Keeps every agent in its network lane, in the kernel.\n\n"
		"  --policy FILE        policy to enforce (default /etc/masd/policy.yaml)\n"
		"  --state-dir DIR      state: active policy, audit chain, keys (default /var/lib/masd)\n"
		"  --runtime-dir DIR    control socket, delivered keys (default /run/masd)\n"
		"  --bpffs-dir DIR      where programs, links and maps are pinned\n"
		"                       (default /sys/fs/bpf/masd; a bpffs is mounted if none is)\n"
		"  --cgroup-root DIR    cgroup the programs attach to (default: the cgroup2 mount)\n"
		"  --socket PATH        control socket (default RUNTIME-DIR/control.sock)\n"
		"  --socket-mode MODE   its mode, octal (default 0660)\n"
		"  --socket-group NAME  its group (default root's)\n"
		"  --metrics-file PATH  write Prometheus textfile metrics there every 5 s\n"
		"  --journal-rate N     decision records per agent per second before the rest are\n"
		"                       counted as suppressed (default 20)\n"
		"  --audit-key-every D  rotate the audit signing key (the 'audit' keyring) this\n"
		"                       often: 1d, 12h, 90m, 45s (default 1d)\n"
		"  -v, --verbose        print every decision and record on stderr too\n"
		"  -h, --help           this text\n\n"
		"Runs in the foreground. SIGHUP re-reads the policy file; SIGTERM stops masd and\n"
		"leaves enforcement in place (masctl teardown removes it).\n");
}

static int on_ringbuf_event(void *ctx, void *data, size_t len)
{
	struct loop *l = ctx;

	if (len >= sizeof(struct mas_event))
		events_handle(l->d->events, data);
	return 0;
}

/* A flood of decisions (an agent hammering a denied host) would wake masd for every few events:
 * two thirds of its CPU went into epoll. Once a wakeup finds RING_BURST events, the ring buffer
 * (2 MiB, about 24,000 events) is drained every RING_PACE_USEC instead, until a drain finds
 * fewer; counters are exact either way, and events are only later by at most that. */
#define RING_BURST 64
#define RING_PACE_USEC 20000

static void ring_paced(struct loop *l, bool on)
{
	uint64_t now;

	if (on && sd_event_now(l->ev, CLOCK_MONOTONIC, &now) >= 0 &&
	    sd_event_source_set_time(l->pace, now + RING_PACE_USEC) >= 0 &&
	    sd_event_source_set_enabled(l->pace, SD_EVENT_ONESHOT) >= 0 &&
	    sd_event_source_set_enabled(l->ring, SD_EVENT_OFF) >= 0)
		return;
	sd_event_source_set_enabled(l->pace, SD_EVENT_OFF);
	sd_event_source_set_enabled(l->ring, SD_EVENT_ON);
}

static int on_ringbuf(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct loop *l = userdata;

	if (ring_buffer__consume(l->rb) >= RING_BURST && l->pace)
		ring_paced(l, true);
	return 0;
}

static void drain_ring(void *userdata)
{
	struct loop *l = userdata;

	ring_buffer__consume(l->rb);
}

static int on_ring_pace(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct loop *l = userdata;

	ring_paced(l, ring_buffer__consume(l->rb) >= RING_BURST);
	return 0;
}

static int on_cgroups(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct loop *l = userdata;

	if (cgroup_watch_read(l->watch) > 0)
		daemon_rescan(l->d);
	return 0;
}

static void notify_status(struct loop *l)
{
	size_t na = l->d->policy ? l->d->policy->n_agents : 0, en = 0;

	for (size_t a = 0; a < na; a++)
		en += l->d->agents[a].status == AGENT_ENROLLED;
	sd_notifyf(0, "STATUS=policy generation %llu, %zu agents, %zu enrolled",
		   (unsigned long long)enforcer_generation(l->d->enf), na, en);
}

/* Run the resolver's due work and wake again exactly when it has more (a TTL's lead time is
 * a second, so the one-second tick would be too coarse). */
static void arm_resolver(struct loop *l)
{
	uint64_t next = daemon_resolver_tick(l->d);

	if (!l->resolve)
		return;
	if (next == UINT64_MAX) {
		sd_event_source_set_enabled(l->resolve, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(l->resolve, next * 1000);
	sd_event_source_set_enabled(l->resolve, SD_EVENT_ONESHOT);
}

static int on_resolve(sd_event_source *s, uint64_t usec, void *userdata)
{
	arm_resolver(userdata);
	return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct loop *l = userdata;

	arm_resolver(l);
	daemon_flows_tick(l->d, false);

	ring_buffer__consume(l->rb);
	events_tick(l->d->events);
	audit_tick(l->d->audit);
	daemon_keys_tick(l->d);
	daemon_check_pins(l->d);
	control_gc(l->ctl);
	if (l->metrics_file && l->ticks++ % 5 == 0) {
		int r = metrics_write(l->d, l->metrics_file);

		if (r < 0 && l->ticks % 60 == 1)
			fprintf(stderr, "masd: metrics file %s: %s\n", l->metrics_file,
				strerror(-r));
	}
	sd_event_source_set_time(s, usec + 1000000);
	return 0;
}

/* The programs wake masd for refusals and for full batches only (a wakeup inside every allowed
 * connect would cost more than the decision): what waits below a batch is drained here. */
#define DRAIN_USEC 100000

static int on_drain(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct loop *l = userdata;

	ring_buffer__consume(l->rb);
	sd_event_source_set_time(s, usec + DRAIN_USEC);
	return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct loop *l = userdata;
	struct mas_error err;

	sd_notify(0, "RELOADING=1");
	if (daemon_reload(l->d, &err) < 0)
		fprintf(stderr, "masd: reload failed, the policy in force stays: %s\n", err.msg);
	sd_notify(0, "READY=1");
	notify_status(l);
	return 0;
}

static void on_teardown(void *userdata)
{
	struct loop *l = userdata;

	l->torn_down = true;
	sd_event_exit(l->ev, 0);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "policy", required_argument, NULL, 'p' },
					      { "state-dir", required_argument, NULL, 's' },
					      { "runtime-dir", required_argument, NULL, 'r' },
					      { "bpffs-dir", required_argument, NULL, 'b' },
					      { "cgroup-root", required_argument, NULL, 'c' },
					      { "socket", required_argument, NULL, 'S' },
					      { "socket-mode", required_argument, NULL, 'M' },
					      { "journal-rate", required_argument, NULL, 'J' },
					      { "metrics-file", required_argument, NULL, 'm' },
					      { "socket-group", required_argument, NULL, 'G' },
					      { "audit-key-every", required_argument, NULL, 'A' },
					      { "verbose", no_argument, NULL, 'v' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	struct daemon_options o = { .policy_file = "/etc/masd/policy.yaml",
				    .state_dir = "/var/lib/masd",
				    .runtime_dir = "/run/masd",
				    .bpffs_dir = "/sys/fs/bpf/masd" };
	struct control_options co = { .mode = 0660, .gid = (gid_t)-1 };
	struct loop l = { 0 };
	sd_event_source *tick = NULL, *drain = NULL;
	char *sock = NULL;
	struct mas_error err;
	uint64_t now;
	int c, r;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) >= 0) {
		switch (c) {
		case 'p':
			o.policy_file = optarg;
			break;
		case 's':
			o.state_dir = optarg;
			break;
		case 'r':
			o.runtime_dir = optarg;
			break;
		case 'b':
			o.bpffs_dir = optarg;
			break;
		case 'c':
			o.cgroup_root = optarg;
			break;
		case 'S':
			co.path = optarg;
			break;
		case 'M':
			co.mode = (mode_t)strtoul(optarg, NULL, 8);
			break;
		case 'J':
			o.journal_rate = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			l.metrics_file = optarg;
			break;
		case 'G': {
			struct group *g = getgrnam(optarg);

			if (!g) {
				fprintf(stderr, "masd: --socket-group: no group '%s'\n", optarg);
				return 2;
			}
			co.gid = g->gr_gid;
			break;
		}
		case 'A': {
			uint64_t s;

			if (!policy_parse_duration(optarg, &s) || s > UINT32_MAX) {
				fprintf(stderr,
					"masd: --audit-key-every: a duration such as 1d, "
					"12h, 90m or 45s, not '%s'\n",
					optarg);
				return 2;
			}
			o.audit_key_rotate_s = (uint32_t)s;
			break;
		}
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "masd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	libbpf_set_print(libbpf_print);
	signal(SIGPIPE, SIG_IGN);
	/* Blocked before daemon_new starts any thread: a thread inherits its creator's mask, and a
	 * process-directed signal goes to any thread that does not block it. A SIGHUP taken by a
	 * thread started unmasked would end masd (its default action) instead of reloading it.
	 * Signals that come before the event loop wait for it. */
	{
		sigset_t ss;

		sigemptyset(&ss);
		sigaddset(&ss, SIGTERM);
		sigaddset(&ss, SIGINT);
		sigaddset(&ss, SIGHUP);
		sigprocmask(SIG_BLOCK, &ss, NULL);
	}

	r = daemon_new(&o, &l.d, &err);
	if (r < 0) {
		fprintf(stderr, "masd: %s\n", err.msg[0] ? err.msg : strerror(-r));
		sd_notifyf(0, "STATUS=failed: %s\nERRNO=%d", err.msg, -r);
		return r == -EINVAL ? 3 : 1;
	}
	if (!co.path) {
		if (asprintf(&sock, "%s/control.sock", o.runtime_dir) < 0)
			return 1;
		co.path = sock;
	}
	r = sd_event_default(&l.ev);
	if (r >= 0)
		r = sd_event_add_signal(l.ev, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(l.ev, NULL, SIGINT, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(l.ev, NULL, SIGHUP, on_hup, &l);
	if (r >= 0) {
		l.rb = ring_buffer__new(enforcer_events_fd(l.d->enf), on_ringbuf_event, &l, NULL);
		r = l.rb ? sd_event_add_io(l.ev, &l.ring, ring_buffer__epoll_fd(l.rb), EPOLLIN,
					   on_ringbuf, &l) :
			   -errno;
		if (r >= 0)
			/* 1 ms accuracy: 0 would mean sd-event's default, 250 ms */
			r = sd_event_add_time(l.ev, &l.pace, CLOCK_MONOTONIC, 0, 1000, on_ring_pace,
					      &l);
		if (r >= 0)
			r = sd_event_source_set_enabled(l.pace, SD_EVENT_OFF);
		l.d->drain_events = drain_ring;
		l.d->drain_userdata = &l;
	}
	if (r >= 0) {
		r = cgroup_watch_new(l.d->cgroup_root, &l.watch);
		if (r >= 0)
			r = sd_event_add_io(l.ev, NULL, cgroup_watch_fd(l.watch), EPOLLIN,
					    on_cgroups, &l);
	}
	if (r >= 0) {
		r = sd_event_now(l.ev, CLOCK_MONOTONIC, &now);
		if (r >= 0)
			r = sd_event_add_time(l.ev, &tick, CLOCK_MONOTONIC, now + 1000000, 0,
					      on_tick, &l);
		if (r >= 0)
			r = sd_event_source_set_enabled(tick, SD_EVENT_ON);
		if (r >= 0)
			r = sd_event_add_time(l.ev, &drain, CLOCK_MONOTONIC, now + DRAIN_USEC, 0,
					      on_drain, &l);
		if (r >= 0)
			r = sd_event_source_set_enabled(drain, SD_EVENT_ON);
	}
	if (r >= 0)
		r = sd_event_add_time(l.ev, &l.resolve, CLOCK_REALTIME, 0, 0, on_resolve, &l);
	if (r >= 0) {
		mkdir(o.runtime_dir, 0755);
		r = control_new(l.d, l.ev, &co, on_teardown, &l, &l.ctl);
		if (r < 0)
			fprintf(stderr, "masd: control socket %s: %s\n", co.path, strerror(-r));
	}
	if (r >= 0)
		r = sd_event_set_watchdog(l.ev, 1);
	if (r < 0) {
		fprintf(stderr, "masd: cannot start: %s\n", strerror(-r));
		r = 1;
		goto out;
	}
	/* a cgroup may have appeared between the apply's scan and the watch */
	daemon_rescan(l.d);
	{
		char pid[16];
		const struct audit_field f[] = {
			{ "MAS_PID", pid },
			{ "MAS_CGROUP_ROOT", l.d->cgroup_root },
			{ "MAS_PACKET_SOCKETS",
			  enforcer_has_lsm(l.d->enf) ? "bpf-lsm" : "cap-net-raw" },
		};

		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		audit_emit(l.d->audit, MAS_MSGID_DAEMON_STARTED, MAS_CAT_AGENT_ACTIONS, LOG_INFO,
			   l.d->adopted ? "masd started, adopted the pinned enforcement" :
					  "masd started, enforcement attached",
			   f, 2);
		fprintf(stderr, "masd: enforcing policy generation %llu on %s (%s)\n",
			(unsigned long long)enforcer_generation(l.d->enf), l.d->cgroup_root,
			l.d->adopted ? "adopted pinned enforcement" : "attached");
	}
	sd_notify(0, "READY=1");
	notify_status(&l);
	r = sd_event_loop(l.ev);
	r = r < 0 ? 1 : 0;
	sd_notify(0, "STOPPING=1");
	ring_buffer__consume(l.rb);
	events_tick(l.d->events);
	daemon_flows_tick(l.d, true);
	audit_emit(l.d->audit, MAS_MSGID_DAEMON_STOPPED, MAS_CAT_AGENT_ACTIONS, LOG_INFO,
		   l.torn_down ? "masd stopped after teardown; nothing is enforced" :
				 "masd stopped; enforcement stays in the kernel",
		   NULL, 0);
out:
	control_free(l.ctl);
	sd_event_source_unref(tick);
	sd_event_source_unref(l.resolve);
	sd_event_source_unref(l.pace);
	sd_event_source_unref(l.ring);
	sd_event_source_unref(drain);
	cgroup_watch_free(l.watch);
	ring_buffer__free(l.rb);
	sd_event_unref(l.ev);
	daemon_free(l.d);
	free(sock);
	return r;
}
