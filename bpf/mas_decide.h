/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The verdict logic, free of helper calls, so host unit tests compile and test the very code
 * the BPF programs run. */
#ifndef MAS_DECIDE_H
#define MAS_DECIDE_H

#include "mas_abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define MAS_AF_INET 2
#define MAS_AF_INET6 10
#define MAS_AF_PACKET 17
#define MAS_SOCK_STREAM 1
#define MAS_SOCK_RAW 3
#define MAS_SOL_SOCKET 1
#define MAS_SO_MAX_PACING_RATE 47
#define MAS_IPPROTO_TCP 6
#define MAS_IPPROTO_UDP 17
#define MAS_IPPROTO_ICMP 1
#define MAS_IPPROTO_ICMPV6 58

struct mas_decision {
	__u8 verdict; /* enum mas_verdict */
	__u8 reason; /* enum mas_reason */
	__u16 dest; /* MAS_NO_DEST when no rule matched */
	int allow; /* what the hook returns: 1 lets the call through */
};

static __always_inline __u8 mas_proto_bit(__u32 protocol)
{
	if (protocol == MAS_IPPROTO_TCP)
		return MAS_PROTO_TCP;
	if (protocol == MAS_IPPROTO_UDP)
		return MAS_PROTO_UDP;
	return 0;
}

/* The first rule of a prefix that covers port and protocol; rules are stored most specific
 * first, so the first match is the best one. NULL when none does. */
static __always_inline const struct mas_rule *mas_match_rule(const struct mas_prefix_val *v,
							     __u16 port, __u8 proto_bit)
{
	__u32 n = v->n_rules;

	if (n > MAS_MAX_RULES)
		n = MAS_MAX_RULES;
	for (__u32 i = 0; i < MAS_MAX_RULES; i++) {
		const struct mas_rule *r = &v->rules[i];

		if (i >= n)
			break;
		if (!(r->protos & proto_bit))
			continue;
		if (port < r->port_lo || port > r->port_hi)
			continue;
		return r;
	}
	return 0;
}

static __always_inline int mas_granted(const struct mas_agent_val *a, __u16 dest)
{
	__u32 d = dest & (MAS_MAX_DESTS - 1);

	if (dest >= MAS_MAX_DESTS)
		return 0;
	return (a->grants[d / 64] >> (d % 64)) & 1;
}

/* Audit mode turns a deny into an allow that is reported as would-deny: in this one place. */
static __always_inline void mas_finish(struct mas_decision *d, __u8 mode)
{
	if (d->verdict == MAS_VERDICT_ALLOW) {
		d->allow = 1;
	} else if (mode == MAS_MODE_AUDIT) {
		d->verdict = MAS_VERDICT_WOULD_DENY;
		d->allow = 1;
	} else {
		d->allow = 0;
	}
}

/* A connect or a datagram: agent is NULL for a process that is no agent; rule is the matched
 * rule or NULL; global_mode applies to processes that are no agent. */
static __always_inline void mas_decide_addr(const struct mas_agent_val *agent,
					    const struct mas_rule *rule, __u8 global_mode,
					    struct mas_decision *d)
{
	d->dest = rule ? rule->dest : MAS_NO_DEST;
	if (!agent) {
		if (rule && (rule->flags & MAS_RULE_PROTECTED)) {
			d->verdict = MAS_VERDICT_DENY;
			d->reason = MAS_REASON_PROTECTED;
		} else {
			d->verdict = MAS_VERDICT_ALLOW;
			d->reason = MAS_REASON_NOT_AGENT;
		}
		mas_finish(d, global_mode);
		return;
	}
	if (!rule) {
		d->verdict = MAS_VERDICT_DENY;
		d->reason = MAS_REASON_NO_DESTINATION;
	} else if (!mas_granted(agent, rule->dest)) {
		d->verdict = MAS_VERDICT_DENY;
		d->reason = MAS_REASON_NOT_GRANTED;
	} else {
		d->verdict = MAS_VERDICT_ALLOW;
		d->reason = MAS_REASON_GRANTED;
	}
	mas_finish(d, agent->mode);
}

/* A rate limit or a cap refuses what the policy granted: the verdict is rewritten before
 * mas_finish, so audit mode still turns it into would-deny in one place. */
static __always_inline void mas_refuse(struct mas_decision *d, __u8 verdict, __u8 reason, __u8 mode)
{
	d->verdict = verdict;
	d->reason = reason;
	mas_finish(d, mode);
}

/* Refill a bucket to now and take cost from it: 1 when taken, 0 when the bucket holds less.
 * tokens and cap are scaled units, rate is units per nanosecond. Tokens above cap (the capacity
 * shrank) are clamped; a clock that reads earlier than the last refill (another core refilled
 * with a later reading) adds nothing. Pure integer math: nothing is lost to rounding, so a caller
 * that stays under its rate is never refused. Overflow-free for cap + rate < 2^64. */
static __always_inline int mas_bucket_take(__u64 *tokens, __u64 *last_ns, __u64 now, __u64 rate,
					   __u64 cap, __u64 cost)
{
	__u64 t = *tokens;

	if (t > cap)
		t = cap;
	if (now > *last_ns) {
		__u64 elapsed = now - *last_ns;

		if (rate == 0 || elapsed > (cap - t) / rate)
			t = cap;
		else
			t += elapsed * rate;
		*last_ns = now;
	}
	if (t < cost) {
		*tokens = t;
		return 0;
	}
	*tokens = t - cost;
	return 1;
}

/* Whether an unconnected UDP socket already paid for a datagram to dest_key. */
static __always_inline int mas_sk_paid(const __u32 *paid, __u32 dest_key)
{
	for (int i = 0; i < MAS_SK_PAID; i++)
		if (paid[i] == dest_key)
			return 1;
	return 0;
}

/* Remember a paid destination, replacing the oldest of MAS_SK_PAID. */
static __always_inline void mas_sk_remember(__u32 *paid, __u8 *next, __u32 dest_key)
{
	paid[*next & (MAS_SK_PAID - 1)] = dest_key;
	*next = (__u8)((*next + 1) & (MAS_SK_PAID - 1));
}

/* Socket creation: agents may not open raw or packet sockets. */
static __always_inline void mas_decide_socket(const struct mas_agent_val *agent, __u32 family,
					      __u32 type, struct mas_decision *d)
{
	d->dest = MAS_NO_DEST;
	d->verdict = MAS_VERDICT_ALLOW;
	d->reason = agent ? MAS_REASON_GRANTED : MAS_REASON_NOT_AGENT;
	if (agent && family == MAS_AF_PACKET) {
		d->verdict = MAS_VERDICT_DENY;
		d->reason = MAS_REASON_PACKET_SOCKET;
	} else if (agent && (type & 0xf) == MAS_SOCK_RAW) {
		d->verdict = MAS_VERDICT_DENY;
		d->reason = MAS_REASON_RAW_SOCKET;
	}
	mas_finish(d, agent ? agent->mode : MAS_MODE_ENFORCE);
}

/* Socket creation knowing the protocol: ping sockets (ICMP datagram sockets, open to users in
 * net.ipv4.ping_group_range) carry data to any host and no address hook judges their
 * datagrams, so to an agent they are raw sockets. */
static __always_inline void mas_decide_socket_proto(const struct mas_agent_val *agent, __u32 family,
						    __u32 type, __u32 protocol,
						    struct mas_decision *d)
{
	if ((family == MAS_AF_INET && protocol == MAS_IPPROTO_ICMP) ||
	    (family == MAS_AF_INET6 && protocol == MAS_IPPROTO_ICMPV6))
		type = MAS_SOCK_RAW;
	mas_decide_socket(agent, family, type, d);
}

/* Whether socket creation needs the policy at all: 0 when mas_decide_socket_proto allows it for
 * every caller, agent or not, in any mode (TCP and UDP sockets, most of what agents make), so
 * the program can let it through before looking up the slot and the agent. */
static __always_inline int mas_socket_needs_decision(__u32 family, __u32 type, __u32 protocol)
{
	if (family == MAS_AF_PACKET || (type & 0xf) == MAS_SOCK_RAW)
		return 1;
	return (family == MAS_AF_INET && protocol == MAS_IPPROTO_ICMP) ||
	       (family == MAS_AF_INET6 && protocol == MAS_IPPROTO_ICMPV6);
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d), given as four 32-bit words in network order. */
static __always_inline int mas_v4mapped(const __u32 w[4])
{
	/* 0x0000ffff in network byte order, whatever the host's */
	const __u8 *b = (const __u8 *)&w[2];

	return w[0] == 0 && w[1] == 0 && b[0] == 0 && b[1] == 0 && b[2] == 0xff && b[3] == 0xff;
}

#endif
