/* SPDX-License-Identifier: GPL-2.0-only */
/* Turns kernel decisions into records: a ring for masctl, and journal records with per-agent
 * flood control. The kernel's counters stay the exact truth; this is the sample. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

#include "events.h"
#include "msgid.h"

#define FLOOD_SLOTS 1024 /* agents tracked for flood control; more share slots */

struct flood {
	uint32_t agent_id;
	uint32_t sent; /* in the current window */
	uint64_t suppressed; /* in the current window */
};

struct mas_events {
	struct events_options o;
	struct mas_event_rec ring[EVENTS_RING];
	uint64_t seq;
	struct flood flood[FLOOD_SLOTS];
	uint64_t suppressed_total;
	uint64_t journaled_total;
	uint64_t rt_offset_ns; /* CLOCK_REALTIME - CLOCK_BOOTTIME, as last read */
	uint64_t rt_offset_at; /* CLOCK_BOOTTIME when it was read; 0: never */
};

static const char *const verdicts[] = { "allow", "deny", "would-deny", "rate-limited", "capped" };
static const char *const reasons[] = { "granted",	 "not-agent",	 "not-granted",
				       "no-destination", "protected",	 "raw-socket",
				       "packet-socket",	 "bucket-empty", "connection-cap",
				       "no-policy" };
static const char *const hooks[] = { "connect4", "connect6", "sendmsg4", "sendmsg6",
				     "sock_create" };

const char *events_verdict_name(uint8_t v)
{
	return v < MAS_VERDICT_MAX ? verdicts[v] : "unknown";
}

const char *events_reason_name(uint8_t r)
{
	return r < MAS_REASON_MAX ? reasons[r] : "unknown";
}

const char *events_hook_name(uint8_t h)
{
	return h < MAS_HOOK_MAX ? hooks[h] : "unknown";
}

const char *events_proto_name(uint8_t p)
{
	switch (p) {
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 1:
		return "icmp";
	case 58:
		return "icmpv6";
	case 0:
		return "ip";
	case 255:
		return "raw";
	default:
		return "other";
	}
}

void events_format_addr(const struct mas_event *e, char *buf, size_t len)
{
	if (e->hook == MAS_HOOK_SOCK_CREATE)
		snprintf(buf, len, "-");
	else if (!inet_ntop(e->family == 10 ? AF_INET6 : AF_INET, e->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

int events_new(const struct events_options *o, struct mas_events **ret)
{
	struct mas_events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	ev->o = *o;
	if (!ev->o.journal_rate)
		ev->o.journal_rate = 20;
	*ret = ev;
	return 0;
}

/* An event's boot time as wall-clock µs. The offset between the clocks is read again at most
 * every 100 ms of event time: two clock reads per event were a tenth of a flood's cost. */
static uint64_t realtime_of(struct mas_events *ev, uint64_t boot_ns)
{
	struct timespec rt, bt;
	uint64_t rt_ns, bt_ns;

	if (!ev->rt_offset_at || boot_ns < ev->rt_offset_at ||
	    boot_ns - ev->rt_offset_at > 100000000ull) {
		clock_gettime(CLOCK_REALTIME, &rt);
		clock_gettime(CLOCK_BOOTTIME, &bt);
		rt_ns = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
		bt_ns = (uint64_t)bt.tv_sec * 1000000000ull + (uint64_t)bt.tv_nsec;
		ev->rt_offset_ns = rt_ns - bt_ns;
		ev->rt_offset_at = bt_ns;
	}
	return (boot_ns + ev->rt_offset_ns) / 1000;
}

static void copy_name(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *agent_name(const struct mas_events *ev, uint32_t id)
{
	const char *n = NULL;

	if (id == MAS_NO_AGENT)
		return "(none)";
	if (ev->o.names.agent)
		n = ev->o.names.agent(ev->o.names.userdata, id);
	return n ? n : "(unknown)";
}

static const char *dest_name(const struct mas_events *ev, const struct mas_event *e)
{
	const char *n = NULL;

	if (e->dest == MAS_NO_DEST)
		return "-";
	if (ev->o.names.dest)
		n = ev->o.names.dest(ev->o.names.userdata, e->generation, e->dest);
	return n ? n : "(unknown)";
}

static const char *msgid_of(uint8_t verdict)
{
	switch (verdict) {
	case MAS_VERDICT_ALLOW:
		return MAS_MSGID_DECISION_ALLOW;
	case MAS_VERDICT_WOULD_DENY:
		return MAS_MSGID_DECISION_WOULD_DENY;
	case MAS_VERDICT_RATE_LIMITED:
		return MAS_MSGID_DECISION_RATE_LIMITED;
	case MAS_VERDICT_CAPPED:
		return MAS_MSGID_DECISION_CAPPED;
	default:
		return MAS_MSGID_DECISION_DENY;
	}
}

static void journal_event(struct mas_events *ev, const struct mas_event_rec *rec)
{
	const struct mas_event *e = &rec->e;
	char addr[64], port[8], pid[16], uid[16], cg[24], gen[24], comm[MAS_COMM_LEN + 1], msg[512];
	const char *agent = rec->agent, *dest = rec->dest;

	events_format_addr(e, addr, sizeof(addr));
	snprintf(port, sizeof(port), "%u", e->port);
	snprintf(pid, sizeof(pid), "%u", e->pid);
	snprintf(uid, sizeof(uid), "%u", e->uid);
	snprintf(cg, sizeof(cg), "%llu", (unsigned long long)e->cgroup_id);
	snprintf(gen, sizeof(gen), "%llu", (unsigned long long)e->generation);
	memcpy(comm, e->comm, MAS_COMM_LEN);
	comm[MAS_COMM_LEN] = '\0';
	if (e->hook == MAS_HOOK_SOCK_CREATE)
		snprintf(msg, sizeof(msg), "agent %s (%s[%u]): socket: %s (%s)", agent, comm,
			 e->pid, events_verdict_name(e->verdict), events_reason_name(e->reason));
	else
		snprintf(msg, sizeof(msg), "agent %s (%s[%u]) -> %s%s%s:%u/%s (%s): %s (%s)", agent,
			 comm, e->pid, e->family == 10 ? "[" : "", addr, e->family == 10 ? "]" : "",
			 e->port, events_proto_name(e->protocol), dest,
			 events_verdict_name(e->verdict), events_reason_name(e->reason));
	if (ev->o.verbose)
		fprintf(stderr, "%s\n", msg);
	if (!ev->o.audit)
		return;
	{
		const struct audit_field f[] = {
			{ "MAS_AGENT", agent },
			{ "MAS_VERDICT", events_verdict_name(e->verdict) },
			{ "MAS_REASON", events_reason_name(e->reason) },
			{ "MAS_HOOK", events_hook_name(e->hook) },
			{ "MAS_PROTO", events_proto_name(e->protocol) },
			{ "MAS_ADDR", addr },
			{ "MAS_PORT", port },
			{ "MAS_DEST", dest },
			{ "MAS_PID", pid },
			{ "MAS_UID", uid },
			{ "MAS_COMM", comm },
			{ "MAS_CGROUP_ID", cg },
			{ "MAS_GENERATION", gen },
		};
		int prio = e->verdict == MAS_VERDICT_ALLOW ? LOG_INFO : LOG_WARNING;

		if (audit_emit(ev->o.audit, msgid_of(e->verdict), MAS_CAT_AGENT_ACTIONS, prio, msg,
			       f, sizeof(f) / sizeof(f[0])) == 0)
			ev->journaled_total++;
	}
}

void events_handle(struct mas_events *ev, const struct mas_event *e)
{
	struct mas_event_rec *rec = &ev->ring[ev->seq % EVENTS_RING];
	struct flood *fl = &ev->flood[e->agent_id % FLOOD_SLOTS];

	rec->seq = ++ev->seq;
	rec->realtime_usec = realtime_of(ev, e->ts_ns);
	rec->e = *e;
	copy_name(rec->agent, sizeof(rec->agent), agent_name(ev, e->agent_id));
	copy_name(rec->dest, sizeof(rec->dest), dest_name(ev, e));
	if (fl->agent_id != e->agent_id && fl->sent == 0 && fl->suppressed == 0)
		fl->agent_id = e->agent_id;
	if (fl->sent >= ev->o.journal_rate) {
		fl->suppressed++;
		ev->suppressed_total++;
		return;
	}
	fl->sent++;
	journal_event(ev, rec);
}

void events_tick(struct mas_events *ev)
{
	for (size_t i = 0; i < FLOOD_SLOTS; i++) {
		struct flood *fl = &ev->flood[i];

		if (fl->suppressed && ev->o.audit) {
			char n[24], msg[160];
			const char *agent = agent_name(ev, fl->agent_id);
			const struct audit_field f[] = { { "MAS_AGENT", agent },
							 { "MAS_SUPPRESSED", n } };

			snprintf(n, sizeof(n), "%llu", (unsigned long long)fl->suppressed);
			snprintf(
				msg, sizeof(msg),
				"agent %s: %llu decisions not journaled (flood control); the counters "
				"hold them all",
				agent, (unsigned long long)fl->suppressed);
			audit_emit(ev->o.audit, MAS_MSGID_EVENTS_SUPPRESSED, MAS_CAT_AGENT_ACTIONS,
				   LOG_WARNING, msg, f, 2);
		}
		fl->sent = 0;
		fl->suppressed = 0;
	}
}

size_t events_since(const struct mas_events *ev, uint64_t since, struct mas_event_rec *out,
		    size_t max)
{
	uint64_t first = ev->seq > EVENTS_RING ? ev->seq - EVENTS_RING + 1 : 1;
	size_t n = 0;

	if (since + 1 > first)
		first = since + 1;
	for (uint64_t s = first; s <= ev->seq && n < max; s++)
		out[n++] = ev->ring[(s - 1) % EVENTS_RING];
	return n;
}

uint64_t events_last_seq(const struct mas_events *ev)
{
	return ev->seq;
}

uint64_t events_suppressed_total(const struct mas_events *ev)
{
	return ev->suppressed_total;
}

uint64_t events_journaled_total(const struct mas_events *ev)
{
	return ev->journaled_total;
}

void events_free(struct mas_events *ev)
{
	free(ev);
}
