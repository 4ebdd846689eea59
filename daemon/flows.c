/* SPDX-License-Identifier: GPL-2.0-only */
/* Flow summaries: one record per (agent, address, port, protocol, verdict) per interval, with
 * the count and the first and last time, so the journal holds who talked to what, bounded. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

#include "events.h"
#include "flows.h"
#include "msgid.h"

const char *flows_category(const struct mas_policy *p, uint16_t dest)
{
	const char *cls;

	if (!p || dest >= p->n_destinations || p->destinations[dest].class_idx < 0)
		return MAS_CAT_AGENT_ACTIONS;
	cls = p->rate_limits[p->destinations[dest].class_idx].name;
	if (!strcmp(cls, "ai") || !strncmp(cls, "ai_", 3))
		return MAS_CAT_AI_REQUESTS;
	return MAS_CAT_AGENT_ACTIONS;
}

uint64_t flows_boot_offset_ns(void)
{
	struct timespec rt, bt;
	uint64_t rt_ns, bt_ns;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	rt_ns = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
	bt_ns = (uint64_t)bt.tv_sec * 1000000000ull + (uint64_t)bt.tv_nsec;
	return rt_ns > bt_ns ? rt_ns - bt_ns : 0;
}

uint64_t flows_realtime_usec(uint64_t boot_ns, uint64_t offset_ns)
{
	return (boot_ns + offset_ns) / 1000;
}

static void format_addr(const struct mas_flow_key *k, char *buf, size_t len)
{
	if (!k->family)
		snprintf(buf, len, "*");
	else if (!inet_ntop(k->family == 10 ? AF_INET6 : AF_INET, k->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

size_t flows_record(const struct flows_context *c, const struct mas_flow *f, size_t n,
		    uint64_t lost)
{
	uint64_t offset = flows_boot_offset_ns();
	char gen[24], interval[24];
	size_t written = 0;

	snprintf(interval, sizeof(interval), "%llu", (unsigned long long)c->interval_s);
	for (size_t i = 0; i < n; i++) {
		const struct mas_flow_key *k = &f[i].k;
		const char *agent = k->agent_id == MAS_NO_AGENT ? "(none)" : NULL;
		const char *dest = "-";
		char addr[64], port[8], count[24], first[24], last[24], msg[512];
		uint64_t generation = k->generation;
		bool ai = false;

		if (!agent && c->agent_name)
			agent = c->agent_name(c->userdata, k->agent_id);
		if (!agent)
			agent = "(unknown)";
		if (k->dest != MAS_NO_DEST) {
			dest = c->dest_name ? c->dest_name(c->userdata, k->generation, k->dest,
							   &generation, &ai) :
					      NULL;
			if (!dest)
				dest = "(unknown)";
		}
		snprintf(gen, sizeof(gen), "%llu", (unsigned long long)generation);
		format_addr(k, addr, sizeof(addr));
		snprintf(port, sizeof(port), "%u", k->port);
		snprintf(count, sizeof(count), "%llu", (unsigned long long)f[i].count);
		snprintf(first, sizeof(first), "%llu",
			 (unsigned long long)flows_realtime_usec(f[i].first_ns, offset));
		snprintf(last, sizeof(last), "%llu",
			 (unsigned long long)flows_realtime_usec(f[i].last_ns, offset));
		snprintf(msg, sizeof(msg), "flow: agent %s -> %s%s%s:%u/%s (%s): %llu %s (%s)",
			 agent, k->family == 10 ? "[" : "", addr, k->family == 10 ? "]" : "",
			 k->port, events_proto_name(k->protocol), dest,
			 (unsigned long long)f[i].count, events_verdict_name(k->verdict),
			 events_reason_name(k->reason));
		{
			const struct audit_field fl[] = {
				{ "MAS_AGENT", agent },
				{ "MAS_ADDR", addr },
				{ "MAS_PORT", port },
				{ "MAS_PROTO", events_proto_name(k->protocol) },
				{ "MAS_VERDICT", events_verdict_name(k->verdict) },
				{ "MAS_REASON", events_reason_name(k->reason) },
				{ "MAS_DEST", dest },
				{ "MAS_COUNT", count },
				{ "MAS_FIRST_USEC", first },
				{ "MAS_LAST_USEC", last },
				{ "MAS_INTERVAL_SEC", interval },
				{ "MAS_GENERATION", gen },
			};

			if (c->audit &&
			    audit_emit(c->audit, MAS_MSGID_FLOW_SUMMARY,
				       ai ? MAS_CAT_AI_REQUESTS : MAS_CAT_AGENT_ACTIONS,
				       k->verdict == MAS_VERDICT_ALLOW ? LOG_INFO : LOG_NOTICE, msg,
				       fl, sizeof(fl) / sizeof(fl[0])) == 0)
				written++;
		}
	}
	if (lost && c->audit) {
		char nl[24], msg[160];
		const struct audit_field fl[] = { { "MAS_COUNT", nl }, { "MAS_AGENT", "(any)" } };

		snprintf(nl, sizeof(nl), "%llu", (unsigned long long)lost);
		snprintf(
			msg, sizeof(msg),
			"flow: %llu decisions found no room in the flow map; the counters hold them",
			(unsigned long long)lost);
		if (audit_emit(c->audit, MAS_MSGID_FLOW_SUMMARY, MAS_CAT_AGENT_ACTIONS, LOG_WARNING,
			       msg, fl, 2) == 0)
			written++;
	}
	return written;
}
