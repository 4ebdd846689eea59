/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* masd's cgroup programs: who is calling (the cgroup), where to (LPM + port + protocol), the
 * verdict (mas_decide.h), an exact counter and an event. The policy lives in two slots of
 * map-in-map outer maps; mas_active names the slot in force, so a flip is one step. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "mas_abi.h"
#include "mas_decide.h"
#include "mas_flow.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mas_active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAS_SLOTS);
	__type(key, __u32);
	__array(
		values, struct {
			__uint(type, BPF_MAP_TYPE_ARRAY);
			__uint(max_entries, 1);
			__uint(key_size, sizeof(__u32));
			__uint(value_size, sizeof(struct mas_meta));
		});
} mas_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAS_SLOTS);
	__type(key, __u32);
	__array(
		values, struct {
			__uint(type, BPF_MAP_TYPE_HASH);
			__uint(max_entries, MAS_MAX_CGROUPS);
			__uint(key_size, sizeof(__u64));
			__uint(value_size, sizeof(struct mas_agent_val));
		});
} mas_agents SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAS_SLOTS);
	__type(key, __u32);
	__array(
		values, struct {
			__uint(type, BPF_MAP_TYPE_LPM_TRIE);
			__uint(max_entries, MAS_MAX_PREFIXES);
			__uint(map_flags, BPF_F_NO_PREALLOC);
			__uint(key_size, sizeof(struct mas_lpm4_key));
			__uint(value_size, sizeof(struct mas_prefix_val));
		});
} mas_lpm4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAS_SLOTS);
	__type(key, __u32);
	__array(
		values, struct {
			__uint(type, BPF_MAP_TYPE_LPM_TRIE);
			__uint(max_entries, MAS_MAX_PREFIXES);
			__uint(map_flags, BPF_F_NO_PREALLOC);
			__uint(key_size, sizeof(struct mas_lpm6_key));
			__uint(value_size, sizeof(struct mas_prefix_val));
		});
} mas_lpm6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAS_MAX_COUNTERS);
	__type(key, struct mas_counter_key);
	__type(value, __u64);
} mas_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} mas_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20);
} mas_events SEC(".maps");

static __always_inline void mas_stat_inc(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&mas_stats, &stat);

	if (v)
		(*v)++;
}

/* Per-CPU values: no atomics needed, and userspace sums the CPUs, so the count is exact. */
static __always_inline void mas_count(__u32 agent_id, const struct mas_decision *d)
{
	struct mas_counter_key k = { .agent_id = agent_id,
				     .verdict = d->verdict,
				     .reason = d->reason };
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&mas_counters, &k);
	if (v) {
		(*v)++;
		return;
	}
	if (bpf_map_update_elem(&mas_counters, &k, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&mas_counters, &k); /* another CPU created it meanwhile */
	if (v)
		(*v)++;
	else
		mas_stat_inc(MAS_STAT_COUNTER_FULL);
}

/* The agent a task belongs to: the deepest enrolled cgroup among its own and its ancestors
 * below the enforcement root. The task's cgroup, never the socket's: a socket passed in from
 * elsewhere carries no identity. */
static __always_inline const struct mas_agent_val *mas_find_agent(void *agents, __u32 root_level)
{
	const struct mas_agent_val *found = 0;
	__u64 id = bpf_get_current_cgroup_id();

	found = bpf_map_lookup_elem(agents, &id);
	if (found)
		return found;
	for (__u32 i = 1; i <= MAS_MAX_DEPTH; i++) {
		const struct mas_agent_val *a;

		id = bpf_get_current_ancestor_cgroup_id(root_level + i);
		if (!id)
			break;
		a = bpf_map_lookup_elem(agents, &id);
		if (a)
			found = a;
	}
	return found;
}

static __always_inline void mas_emit(const struct mas_decision *d, __u32 agent_id, __u64 gen,
				     __u8 hook, __u8 family, __u8 protocol, __u8 sock_type,
				     __u16 port, const void *addr, __u32 addr_len)
{
	struct mas_event *e = bpf_ringbuf_reserve(&mas_events, sizeof(*e), 0);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!e) {
		mas_stat_inc(MAS_STAT_RINGBUF_DROPS);
		return;
	}
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->generation = gen;
	e->pid = pid_tgid >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->agent_id = agent_id;
	e->dest = d->dest;
	e->port = port;
	e->verdict = d->verdict;
	e->reason = d->reason;
	e->hook = hook;
	e->family = family;
	e->protocol = protocol;
	e->sock_type = sock_type;
	e->pad[0] = 0;
	e->pad[1] = 0;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	if (addr_len == 4)
		__builtin_memcpy(e->addr, addr, 4);
	else if (addr_len == 16)
		__builtin_memcpy(e->addr, addr, 16);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

/* The slot in force, and its meta; NULL before any policy was loaded. */
static __always_inline const struct mas_meta *mas_slot(__u32 *ret_slot)
{
	__u32 zero = 0, *slotp, slot;
	void *inner;

	slotp = bpf_map_lookup_elem(&mas_active, &zero);
	if (!slotp)
		return 0;
	slot = *slotp & (MAS_SLOTS - 1);
	inner = bpf_map_lookup_elem(&mas_meta, &slot);
	if (!inner)
		return 0;
	*ret_slot = slot;
	return bpf_map_lookup_elem(inner, &zero);
}

static __always_inline int mas_addr_hook(struct bpf_sock_addr *ctx, __u8 hook, int v6)
{
	const struct mas_prefix_val *pv = 0;
	const struct mas_agent_val *agent = 0;
	const struct mas_rule *rule = 0;
	const struct mas_meta *meta;
	struct mas_decision d = {};
	__u32 slot = 0, w[4];
	__u8 proto, family;
	__u16 port;
	void *agents;

	meta = mas_slot(&slot);
	if (!meta) {
		mas_stat_inc(MAS_STAT_NO_POLICY);
		return 1;
	}
	agents = bpf_map_lookup_elem(&mas_agents, &slot);
	if (agents)
		agent = mas_find_agent(agents, meta->root_level);

	proto = mas_proto_bit(ctx->protocol);
	port = bpf_ntohs(ctx->user_port);
	if (v6) {
		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
	} else {
		w[0] = ctx->user_ip4;
	}
	if (v6 && mas_v4mapped(w)) {
		w[0] = w[3];
		v6 = 0;
	}
	if (v6) {
		struct mas_lpm6_key k = { .prefixlen = 128 };
		void *lpm = bpf_map_lookup_elem(&mas_lpm6, &slot);

		__builtin_memcpy(k.addr, w, 16);
		if (lpm)
			pv = bpf_map_lookup_elem(lpm, &k);
		family = MAS_AF_INET6;
	} else {
		struct mas_lpm4_key k = { .prefixlen = 32 };
		void *lpm = bpf_map_lookup_elem(&mas_lpm4, &slot);

		__builtin_memcpy(k.addr, w, 4);
		if (lpm)
			pv = bpf_map_lookup_elem(lpm, &k);
		family = MAS_AF_INET;
	}
	if (pv)
		rule = mas_match_rule(pv, port, proto);

	mas_decide_addr(agent, rule, meta->mode, &d);
	mas_count(agent ? agent->agent_id : MAS_NO_AGENT, &d);
	mas_flow_count(agent ? agent->agent_id : MAS_NO_AGENT, &d, meta->generation, family,
		       (__u8)ctx->protocol, port, w, v6 ? 16 : 4);
	if (agent || d.verdict != MAS_VERDICT_ALLOW)
		mas_emit(&d, agent ? agent->agent_id : MAS_NO_AGENT, meta->generation, hook, family,
			 (__u8)ctx->protocol, (__u8)ctx->type, port, w, v6 ? 16 : 4);
	return d.allow;
}

SEC("cgroup/connect4")
int mas_connect4(struct bpf_sock_addr *ctx)
{
	return mas_addr_hook(ctx, MAS_HOOK_CONNECT4, 0);
}

SEC("cgroup/connect6")
int mas_connect6(struct bpf_sock_addr *ctx)
{
	return mas_addr_hook(ctx, MAS_HOOK_CONNECT6, 1);
}

SEC("cgroup/sendmsg4")
int mas_sendmsg4(struct bpf_sock_addr *ctx)
{
	return mas_addr_hook(ctx, MAS_HOOK_SENDMSG4, 0);
}

SEC("cgroup/sendmsg6")
int mas_sendmsg6(struct bpf_sock_addr *ctx)
{
	return mas_addr_hook(ctx, MAS_HOOK_SENDMSG6, 1);
}

/* Packet sockets never reach cgroup/sock_create (it runs for inet families only): the LSM
 * hook, attached to the same cgroup, sees every family. Sockets the kernel makes for itself
 * are not the agent's. */
SEC("lsm_cgroup/socket_create")
int mas_lsm_socket(unsigned long long *ctx)
{
	int family = (int)ctx[0], type = (int)ctx[1], protocol = (int)ctx[2], kern = (int)ctx[3];
	const struct mas_agent_val *agent = 0;
	const struct mas_meta *meta;
	struct mas_decision d = {};
	__u32 slot = 0;
	void *agents;

	if (kern || family != MAS_AF_PACKET)
		return 1; /* inet families are cgroup/sock_create's */
	meta = mas_slot(&slot);
	if (!meta)
		return 1;
	agents = bpf_map_lookup_elem(&mas_agents, &slot);
	if (agents)
		agent = mas_find_agent(agents, meta->root_level);
	if (!agent)
		return 1;
	mas_decide_socket(agent, (__u32)family, (__u32)type, &d);
	if (d.verdict == MAS_VERDICT_ALLOW)
		return 1;
	mas_count(agent->agent_id, &d);
	mas_emit(&d, agent->agent_id, meta->generation, MAS_HOOK_SOCK_CREATE, (__u8)family,
		 (__u8)protocol, (__u8)type, 0, 0, 0);
	return d.allow;
}

SEC("cgroup/sock_create")
int mas_sock_create(struct bpf_sock *ctx)
{
	const struct mas_agent_val *agent = 0;
	const struct mas_meta *meta;
	struct mas_decision d = {};
	__u32 slot = 0;
	void *agents;

	meta = mas_slot(&slot);
	if (!meta)
		return 1;
	agents = bpf_map_lookup_elem(&mas_agents, &slot);
	if (agents)
		agent = mas_find_agent(agents, meta->root_level);
	if (!agent)
		return 1; /* processes that are no agent are not confined here, nor counted */
	mas_decide_socket_proto(agent, ctx->family, ctx->type, ctx->protocol, &d);
	if (d.verdict == MAS_VERDICT_ALLOW)
		return 1; /* ordinary sockets are counted when they connect or send */
	mas_count(agent->agent_id, &d);
	mas_emit(&d, agent->agent_id, meta->generation, MAS_HOOK_SOCK_CREATE, (__u8)ctx->family,
		 (__u8)ctx->protocol, (__u8)ctx->type, 0, 0, 0);
	return d.allow;
}
