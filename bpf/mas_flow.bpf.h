/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow records: every address decision counted per (agent, address, port, protocol, verdict)
 * in one of two per-CPU hash maps; masd flips mas_flow_slot, waits for the programs to leave
 * the old map, and drains it, so no decision is lost between two summaries. */
#ifndef MAS_FLOW_BPF_H
#define MAS_FLOW_BPF_H

#include "mas_abi.h"
#include "mas_decide.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mas_flow_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(
		values, struct {
			__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
			__uint(max_entries, MAS_MAX_FLOWS);
			__uint(key_size, sizeof(struct mas_flow_key));
			__uint(value_size, sizeof(struct mas_flow_val));
		});
} mas_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAS_FLOW_LOST_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} mas_flow_lost SEC(".maps");

/* 0 when counted in a flow that was there; 1 when it began a flow; -1 when the map had no room
 * for it. */
static __always_inline int mas_flow_add(void *flows, const struct mas_flow_key *k, __u64 now)
{
	struct mas_flow_val init = { .count = 1, .first_ns = now, .last_ns = now }, *v;

	v = bpf_map_lookup_elem(flows, k);
	if (!v) {
		if (bpf_map_update_elem(flows, k, &init, BPF_NOEXIST) == 0)
			return 1;
		v = bpf_map_lookup_elem(flows, k); /* another CPU created it meanwhile */
		if (!v)
			return -1;
	}
	v->count++;
	/* now was read when the decision began: a decision preempted on this CPU after it may
	 * finish after a later one, so first and last only ever widen */
	if (!v->first_ns || now < v->first_ns)
		v->first_ns = now;
	if (now > v->last_ns)
		v->last_ns = now;
	return 0;
}

/* Count one address decision (now: CLOCK_BOOTTIME). Processes that are no agent are counted
 * only when refused: the rest of the host's traffic is not ours to record. 1 when the decision
 * began a flow in this interval, or could not be recorded in one: the caller reports it as an
 * event; 0 when an existing flow counted it. */
static __always_inline int mas_flow_count(__u32 agent_id, const struct mas_decision *d,
					  __u64 generation, __u64 now, __u8 family, __u8 protocol,
					  __u16 port, const void *addr, __u32 addr_len)
{
	struct mas_flow_key k = {};
	__u32 zero = 0, slot, *slotp;
	__u64 *lost;
	void *flows;
	int r;

	if (agent_id == MAS_NO_AGENT && d->verdict == MAS_VERDICT_ALLOW)
		return 0;
	slotp = bpf_map_lookup_elem(&mas_flow_slot, &zero);
	slot = slotp ? *slotp & 1 : 0;
	flows = bpf_map_lookup_elem(&mas_flows, &slot);
	k.agent_id = agent_id;
	k.verdict = d->verdict;
	k.reason = d->reason;
	k.dest = d->dest;
	k.generation = (__u32)generation;
	if (flows) {
		k.port = port;
		k.protocol = protocol;
		k.family = family;
		if (addr_len == 4)
			__builtin_memcpy(k.addr, addr, 4);
		else if (addr_len == 16)
			__builtin_memcpy(k.addr, addr, 16);
		r = mas_flow_add(flows, &k, now);
		if (r >= 0)
			return r;
		/* full: fold into the agent's flow for this verdict */
		k.port = 0;
		k.protocol = 0;
		k.family = 0;
		k.dest = MAS_NO_DEST;
		__builtin_memset(k.addr, 0, sizeof(k.addr));
		r = mas_flow_add(flows, &k, now);
		if (r >= 0)
			return r;
	}
	lost = bpf_map_lookup_elem(&mas_flow_lost, &zero);
	if (lost)
		(*lost)++;
	return 1;
}

#endif
