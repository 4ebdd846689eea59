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

/* Each slot's rate-limit classes by stable key: the numbers in force for that policy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAS_SLOTS);
	__type(key, __u32);
	__array(
		values, struct {
			__uint(type, BPF_MAP_TYPE_HASH);
			__uint(max_entries, MAS_MAX_CLASSES);
			__uint(key_size, sizeof(__u32));
			__uint(value_size, sizeof(struct mas_class));
		});
} mas_classes SEC(".maps");

/* State outside the slots, keyed by stable ids, so it survives a flip: request buckets per
 * (agent, class), byte buckets per (agent, class), open sockets per (agent, destination). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAS_MAX_BUCKETS);
	__type(key, struct mas_pair_key);
	__type(value, struct mas_bucket);
} mas_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAS_MAX_BUCKETS);
	__type(key, struct mas_pair_key);
	__type(value, struct mas_bucket);
} mas_byte_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAS_MAX_BUCKETS);
	__type(key, struct mas_pair_key);
	__type(value, __u64);
} mas_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mas_sk_state);
} mas_sk SEC(".maps");

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

#define MAS_EVENTS_WAKEUP_BYTES (256 << 10)

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
				     __u64 now, __u8 hook, __u8 family, __u8 protocol,
				     __u8 sock_type, __u16 port, const void *addr, __u32 addr_len)
{
	struct mas_event *e = bpf_ringbuf_reserve(&mas_events, sizeof(*e), 0);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!e) {
		mas_stat_inc(MAS_STAT_RINGBUF_DROPS);
		return;
	}
	e->ts_ns = now;
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
	/* waking masd costs more than the whole decision (an IPI inside the connect): allowed
	 * decisions wake it only once a batch waits, refusals at once; masd also drains on a timer */
	bpf_ringbuf_submit(e, d->verdict != MAS_VERDICT_ALLOW ||
					      bpf_ringbuf_query(&mas_events, BPF_RB_AVAIL_DATA) >=
						      MAS_EVENTS_WAKEUP_BYTES ?
				      BPF_RB_FORCE_WAKEUP :
				      BPF_RB_NO_WAKEUP);
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

/* Take cost from the (agent, key) bucket of map, creating it full. 0 when it holds too little,
 * or when the map has no room (refused: a limit never fails open). */
static __always_inline int mas_bucket_charge(void *map, __u32 agent_id, __u32 key, __u64 rate,
					     __u64 cap, __u64 cost, __u64 now)
{
	struct mas_pair_key k = { .agent_id = agent_id, .key = key };
	struct mas_bucket *b;
	int ok;

	b = bpf_map_lookup_elem(map, &k);
	if (!b) {
		struct mas_bucket nb = { .tokens = cap - cost, .last_ns = now };

		if (bpf_map_update_elem(map, &k, &nb, BPF_NOEXIST) == 0)
			return 1;
		b = bpf_map_lookup_elem(map, &k); /* another core created it meanwhile */
		if (!b) {
			mas_stat_inc(MAS_STAT_BUCKET_FULL);
			return 0;
		}
	}
	bpf_spin_lock(&b->lock);
	ok = mas_bucket_take(&b->tokens, &b->last_ns, now, rate, cap, cost);
	bpf_spin_unlock(&b->lock);
	return ok;
}

/* Count one more open socket for (agent, destination) unless max are open. */
static __always_inline int mas_conn_take(__u32 agent_id, __u32 dest_key, __u32 max)
{
	struct mas_pair_key k = { .agent_id = agent_id, .key = dest_key };
	__u64 zero = 0, *n;

	n = bpf_map_lookup_elem(&mas_conns, &k);
	if (!n) {
		bpf_map_update_elem(&mas_conns, &k, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&mas_conns, &k);
		if (!n) {
			mas_stat_inc(MAS_STAT_BUCKET_FULL);
			return 0;
		}
	}
	if (__sync_fetch_and_add(n, 1) < max)
		return 1;
	__sync_fetch_and_sub(n, 1);
	return 0;
}

static __always_inline void mas_conn_put(__u32 agent_id, __u32 dest_key)
{
	struct mas_pair_key k = { .agent_id = agent_id, .key = dest_key };
	__u64 *n = bpf_map_lookup_elem(&mas_conns, &k);

	if (n)
		__sync_fetch_and_sub(n, 1);
}

/* A granted connect or datagram meets its destination's cap and its class's bucket. The cap
 * comes first because it can be given back: a call the bucket refuses is not left counted. The
 * socket remembers what it is counted against (released in mas_sock_release) and which
 * destinations an unconnected UDP socket already paid for. */
static __always_inline void mas_limit(struct bpf_sock_addr *ctx, const struct mas_agent_val *agent,
				      const struct mas_rule *rule, __u32 slot, int datagram,
				      __u64 now, struct mas_decision *d)
{
	const struct mas_class *cls = 0;
	struct mas_sk_state *st;
	int counted = 0;

	if (!rule->class_key && !rule->max_conn)
		return;
	if (rule->class_key) {
		void *classes = bpf_map_lookup_elem(&mas_classes, &slot);
		__u32 key = rule->class_key;

		if (classes)
			cls = bpf_map_lookup_elem(classes, &key);
	}
	/* a TCP connect with a class and neither cap nor budget needs no memory of its socket:
	 * the socket-local storage (an allocation) is made only where something is remembered */
	if (!rule->max_conn && !datagram && (!cls || !cls->bytes_per_second)) {
		if (cls &&
		    !mas_bucket_charge(&mas_buckets, agent->agent_id, cls->key, cls->per_minute,
				       (__u64)cls->burst * MAS_REQ_SCALE, MAS_REQ_SCALE, now))
			mas_refuse(d, MAS_VERDICT_RATE_LIMITED, MAS_REASON_BUCKET_EMPTY,
				   agent->mode);
		return;
	}
	st = bpf_sk_storage_get(&mas_sk, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		mas_stat_inc(MAS_STAT_BUCKET_FULL);
		mas_refuse(d, MAS_VERDICT_CAPPED, MAS_REASON_CONN_CAP, agent->mode);
		return;
	}
	if (rule->max_conn &&
	    !(st->conn_agent == agent->agent_id && st->conn_dest == rule->dest_key)) {
		if (!mas_conn_take(agent->agent_id, rule->dest_key, rule->max_conn)) {
			mas_refuse(d, MAS_VERDICT_CAPPED, MAS_REASON_CONN_CAP, agent->mode);
			return;
		}
		if (st->conn_agent)
			mas_conn_put(st->conn_agent, st->conn_dest);
		st->conn_agent = agent->agent_id;
		st->conn_dest = rule->dest_key;
		counted = 1;
	}
	if (!cls)
		return;
	st->agent_id = agent->agent_id;
	st->class_key = cls->key;
	/* TCP backs off badly from drops (nothing follows a dropped packet to trigger a fast
	 * retransmit): pace the socket at the budget, and let egress police what pacing misses,
	 * such as several sockets of one agent together */
	if (cls->bytes_per_second && ctx->type == MAS_SOCK_STREAM) {
		__u64 bps = cls->bytes_per_second - cls->bytes_per_second / 32; /* headers */
		__u32 pace = bps < 0xfffffffeull ? (__u32)bps :
						   0xfffffffe; /* an int, as for setsockopt */

		bpf_setsockopt(ctx, MAS_SOL_SOCKET, MAS_SO_MAX_PACING_RATE, &pace, sizeof(pace));
	}
	if (datagram && mas_sk_paid(st->paid, rule->dest_key))
		return;
	if (!mas_bucket_charge(&mas_buckets, agent->agent_id, cls->key, cls->per_minute,
			       (__u64)cls->burst * MAS_REQ_SCALE, MAS_REQ_SCALE, now)) {
		if (counted) {
			mas_conn_put(agent->agent_id, rule->dest_key);
			st->conn_agent = 0;
			st->conn_dest = 0;
		}
		mas_refuse(d, MAS_VERDICT_RATE_LIMITED, MAS_REASON_BUCKET_EMPTY, agent->mode);
		return;
	}
	mas_sk_remember(st->paid, &st->paid_next, rule->dest_key);
}

/* The errno a refused call returns: rate-limited and capped are told apart from denied. */
static __always_inline void mas_set_errno(const struct mas_decision *d)
{
	if (d->allow)
		return;
	if (d->verdict == MAS_VERDICT_RATE_LIMITED)
		bpf_set_retval(-MAS_ERRNO_RATE_LIMITED);
	else if (d->verdict == MAS_VERDICT_CAPPED)
		bpf_set_retval(-MAS_ERRNO_CAPPED);
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
	int new_flow;
	__u64 now;

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
	if (!agent && d.verdict == MAS_VERDICT_ALLOW) {
		/* the host's own traffic: counted, nothing more (no clock read, flow or event) */
		mas_count(MAS_NO_AGENT, &d);
		return 1;
	}
	/* one clock reading per decision: the bucket, the flow and the event share it */
	now = bpf_ktime_get_boot_ns();
	if (agent && rule && d.verdict == MAS_VERDICT_ALLOW)
		mas_limit(ctx, agent, rule, slot, hook >= MAS_HOOK_SENDMSG4, now, &d);
	mas_set_errno(&d);
	mas_count(agent ? agent->agent_id : MAS_NO_AGENT, &d);
	new_flow = mas_flow_count(agent ? agent->agent_id : MAS_NO_AGENT, &d, meta->generation, now,
				  family, (__u8)ctx->protocol, port, w, v6 ? 16 : 4);
	/* Every decision is counted (above); the event stream carries every refusal, and of an
	 * agent's allowed decisions the first of each flow in the flow interval, unless the policy
	 * asks for all of them: the event is most of a decision's cost (docs/performance.md). */
	if (d.verdict != MAS_VERDICT_ALLOW ||
	    (agent && (new_flow || (meta->flags & MAS_META_ALLOWED_EVENTS_ALL))))
		mas_emit(&d, agent ? agent->agent_id : MAS_NO_AGENT, meta->generation, now, hook,
			 family, (__u8)ctx->protocol, (__u8)ctx->type, port, w, v6 ? 16 : 4);
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

/* A socket counted against a cap is given back when it goes, however it goes: close, a failed
 * connect's close, exit, kill -9. */
SEC("cgroup/sock_release")
int mas_sock_release(struct bpf_sock *ctx)
{
	struct mas_sk_state *st = bpf_sk_storage_get(&mas_sk, ctx, 0, 0);

	if (st && st->conn_agent) {
		mas_conn_put(st->conn_agent, st->conn_dest);
		st->conn_agent = 0;
	}
	return 1;
}

/* Bandwidth: a byte bucket per (agent, class) polices what the agent's sockets send. The
 * socket carries the agent and class its connect or datagram was decided under; the numbers
 * come from the slot in force. Over budget the packet is dropped with congestion notification,
 * so TCP backs off instead of waiting for a retransmission timer. */
SEC("cgroup_skb/egress")
int mas_egress(struct __sk_buff *skb)
{
	const struct mas_class *cls;
	struct mas_sk_state *st;
	struct bpf_sock *sk = skb->sk;
	__u32 zero = 0, *slotp, slot, key;
	__u64 cap, cost;
	void *classes;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	st = bpf_sk_storage_get(&mas_sk, sk, 0, 0);
	if (!st || !st->class_key)
		return 1;
	slotp = bpf_map_lookup_elem(&mas_active, &zero);
	if (!slotp)
		return 1;
	slot = *slotp & (MAS_SLOTS - 1);
	classes = bpf_map_lookup_elem(&mas_classes, &slot);
	if (!classes)
		return 1;
	key = st->class_key;
	cls = bpf_map_lookup_elem(classes, &key);
	if (!cls || !cls->bytes_per_second)
		return 1;
	cap = cls->burst_bytes * MAS_BYTE_SCALE;
	cost = (__u64)skb->len * MAS_BYTE_SCALE;
	if (cost > cap)
		cost = cap; /* a packet larger than the burst takes the whole bucket */
	if (mas_bucket_charge(&mas_byte_buckets, st->agent_id, key, cls->bytes_per_second, cap,
			      cost, bpf_ktime_get_boot_ns()))
		return 1;
	mas_stat_inc(MAS_STAT_EGRESS_DROPS);
	{
		__u32 stat = MAS_STAT_EGRESS_BYTES_DROPPED;
		__u64 *v = bpf_map_lookup_elem(&mas_stats, &stat);

		if (v)
			*v += skb->len;
	}
	return 2;
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
	mas_emit(&d, agent->agent_id, meta->generation, bpf_ktime_get_boot_ns(),
		 MAS_HOOK_SOCK_CREATE, (__u8)family, (__u8)protocol, (__u8)type, 0, 0, 0);
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

	if (!mas_socket_needs_decision(ctx->family, ctx->type, ctx->protocol))
		return 1; /* allowed to anyone: no lookups for the sockets agents make all day */
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
	mas_emit(&d, agent->agent_id, meta->generation, bpf_ktime_get_boot_ns(),
		 MAS_HOOK_SOCK_CREATE, (__u8)ctx->family, (__u8)ctx->protocol, (__u8)ctx->type, 0,
		 0, 0);
	return d.allow;
}
