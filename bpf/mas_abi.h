/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The ABI shared by masd's BPF programs and userspace: map keys and values, events, verdicts.
 * Every struct has explicit padding and a size assertion: both sides must agree byte for byte. */
#ifndef MAS_ABI_H
#define MAS_ABI_H

#include <linux/types.h>
#include <linux/bpf.h> /* struct bpf_spin_lock */

#define MAS_MAX_DESTS 1024 /* destinations in one policy */
#define MAS_GRANT_WORDS (MAS_MAX_DESTS / 64)
#define MAS_MAX_RULES 16 /* rules one prefix carries: its own and those it inherits */
#define MAS_MAX_DEPTH 16 /* cgroup levels below the enforcement root searched for an agent */
#define MAS_MAX_PREFIXES 65536 /* per address family */
#define MAS_MAX_CGROUPS 8192 /* enrolled cgroups */
#define MAS_MAX_COUNTERS 65536
#define MAS_COMM_LEN 16
#define MAS_NO_DEST 0xffff
#define MAS_NO_AGENT 0 /* agent_id of a process that is no agent */
#define MAS_MAX_FLOWS 16384 /* distinct flows per summary interval; more fold per agent */
#define MAS_MAX_CLASSES 1024 /* rate-limit classes in one policy */
#define MAS_MAX_BUCKETS 65536 /* (agent, class) buckets, and (agent, destination) counts */
#define MAS_SK_PAID 4 /* destinations an unconnected UDP socket remembers having paid for */

/* Token arithmetic is in scaled units so that refill is exact integer math: a request token is
 * 60e9 units (one token per minute at a rate of one per minute, per nanosecond); a byte is
 * 1e9 units (bytes per second, per nanosecond). */
#define MAS_REQ_SCALE 60000000000ull
#define MAS_BYTE_SCALE 1000000000ull
#define MAS_BURST_BYTES_MAX (8ull << 30) /* larger bursts are clamped: 8 GiB x 1e9 fits u64 */

/* The errno a refused connect() or sendmsg() returns, by verdict: denied is the kernel's EPERM;
 * the others are set with bpf_set_retval so an agent can tell "not yet" from "never". */
#define MAS_ERRNO_DENIED 1 /* EPERM */
#define MAS_ERRNO_RATE_LIMITED 11 /* EAGAIN: try again later */
#define MAS_ERRNO_CAPPED 16 /* EBUSY: close a connection first */

/* The two policy slots: programs read the active one, userspace fills the other, then flips. */
#define MAS_SLOTS 2

enum mas_verdict {
	MAS_VERDICT_ALLOW = 0,
	MAS_VERDICT_DENY = 1,
	MAS_VERDICT_WOULD_DENY = 2, /* audit mode: a deny reported, the traffic passed */
	MAS_VERDICT_RATE_LIMITED = 3,
	MAS_VERDICT_CAPPED = 4,
	MAS_VERDICT_MAX
};

enum mas_reason {
	MAS_REASON_GRANTED = 0, /* an agent reached a destination it is granted */
	MAS_REASON_NOT_AGENT = 1, /* no agent, destination not protected: not confined */
	MAS_REASON_NOT_GRANTED = 2, /* a known destination the agent is not granted */
	MAS_REASON_NO_DESTINATION = 3, /* an address no destination names */
	MAS_REASON_PROTECTED = 4, /* no agent, and the destination is protected */
	MAS_REASON_RAW_SOCKET = 5,
	MAS_REASON_PACKET_SOCKET = 6,
	MAS_REASON_BUCKET_EMPTY = 7,
	MAS_REASON_CONN_CAP = 8,
	MAS_REASON_NO_POLICY = 9, /* no policy loaded in the active slot */
	MAS_REASON_MAX
};

enum mas_hook {
	MAS_HOOK_CONNECT4 = 0,
	MAS_HOOK_CONNECT6 = 1,
	MAS_HOOK_SENDMSG4 = 2,
	MAS_HOOK_SENDMSG6 = 3,
	MAS_HOOK_SOCK_CREATE = 4,
	MAS_HOOK_EGRESS = 5, /* cgroup_skb/egress: bandwidth (counted, never an event) */
	MAS_HOOK_MAX
};

enum mas_mode {
	MAS_MODE_ENFORCE = 0,
	MAS_MODE_AUDIT = 1,
};

#define MAS_PROTO_TCP 0x1
#define MAS_PROTO_UDP 0x2

#define MAS_RULE_PROTECTED 0x1

/* Slot indexes of mas_stats. */
enum mas_stat {
	MAS_STAT_RINGBUF_DROPS = 0, /* events the ring buffer could not take */
	MAS_STAT_COUNTER_FULL = 1, /* decisions the counter map had no room for */
	MAS_STAT_NO_POLICY = 2,
	MAS_STAT_BUCKET_FULL = 3, /* buckets or counts the maps had no room for: refused */
	MAS_STAT_EGRESS_DROPS = 4, /* packets dropped over a bandwidth budget */
	MAS_STAT_EGRESS_BYTES_DROPPED = 5,
	MAS_STAT_MAX = 8
};

/* LPM keys: prefixlen counts the significant bits of addr (network byte order). */
struct mas_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct mas_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* One (destination, port range, protocols) a prefix leads to. */
struct mas_rule {
	__u16 port_lo; /* host byte order, inclusive; 0-65535 is any port */
	__u16 port_hi;
	__u16 dest; /* destination index in the policy */
	__u16 class_id; /* rate-limit class index + 1; 0 for none */
	__u8 protos; /* MAS_PROTO_* */
	__u8 flags; /* MAS_RULE_* */
	__u16 max_conn; /* concurrent connections per agent; 0 for no cap */
	__u32 dest_key; /* stable id of the destination (FNV-1a of its name): keys the counts */
	__u32 class_key; /* stable id of the class (FNV-1a of its name), 0 for none */
};

/* The value of an LPM entry: its own rules first, then those inherited from shorter prefixes,
 * so one lookup finds the most specific rule for any port. */
struct mas_prefix_val {
	__u32 n_rules;
	__u32 pad;
	struct mas_rule rules[MAS_MAX_RULES];
};

/* An enrolled cgroup: which agent it is and what the agent may reach. */
struct mas_agent_val {
	__u32 agent_id; /* stable across policies: FNV-1a of the agent's name, never 0 */
	__u16 index; /* the agent's index in the policy */
	__u8 mode; /* enum mas_mode, the agent's own or the global one */
	__u8 pad;
	__u64 grants[MAS_GRANT_WORDS]; /* bit n: destination n is granted */
};

/* Per-slot facts about the policy in that slot. */
struct mas_meta {
	__u64 generation;
	__u32 root_level; /* cgroup level of the enforcement root */
	__u8 mode; /* enum mas_mode: the global mode, for processes that are no agent */
	__u8 flags; /* MAS_META_* */
	__u8 pad[2];
};
/* mas_meta.flags: every allowed decision of an agent is an event (audit.allowed_events: all),
 * not only the first of each flow in the flow interval. */
#define MAS_META_ALLOWED_EVENTS_ALL 0x1

/* A rate-limit class as one policy slot states it, keyed by its stable key in the slot's table.
 * The numbers live in the slot, the bucket state outside it: a flip rescales, never refills. */
struct mas_class {
	__u32 key; /* stable id (FNV-1a of the class name), 0 for an unused entry */
	__u32 per_minute; /* requests_per_minute: the refill, in MAS_REQ_SCALE units per ns */
	__u32 burst; /* burst_size: capacity in tokens */
	__u32 pad;
	__u64 bytes_per_second; /* 0: no bandwidth budget */
	__u64 burst_bytes; /* at most MAS_BURST_BYTES_MAX */
};

/* Keys of the state that outlives policy slots: buckets per (agent, class), open connections
 * per (agent, destination). */
struct mas_pair_key {
	__u32 agent_id;
	__u32 key; /* class key or destination key */
};

/* A token bucket: tokens in scaled units (MAS_REQ_SCALE or MAS_BYTE_SCALE per token), refilled
 * lazily at the time of a call, under the lock so both cores see one sequence. */
struct mas_bucket {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 tokens;
	__u64 last_ns; /* CLOCK_BOOTTIME of the last refill */
};

/* What a socket remembers (socket-local storage): the agent and class its traffic is billed to,
 * the (agent, destination) it is counted against, and the destinations an unconnected UDP
 * socket already paid a token for. */
struct mas_sk_state {
	__u32 agent_id; /* who connected it: the egress budget's agent */
	__u32 class_key; /* the class of its last connect or datagram, 0 for none */
	__u32 conn_agent; /* counted in mas_conns under (conn_agent, conn_dest); 0: not counted */
	__u32 conn_dest;
	__u32 paid[MAS_SK_PAID]; /* destination keys already charged for datagrams */
	__u8 paid_next;
	__u8 pad[7];
};

struct mas_counter_key {
	__u32 agent_id;
	__u8 verdict; /* enum mas_verdict */
	__u8 reason; /* enum mas_reason */
	__u16 pad;
};

/* One decision, as the ring buffer carries it to masd. */
struct mas_event {
	__u64 ts_ns; /* CLOCK_BOOTTIME */
	__u64 cgroup_id;
	__u64 generation;
	__u32 pid; /* thread group id */
	__u32 uid;
	__u32 agent_id;
	__u16 dest; /* destination index, MAS_NO_DEST for none */
	__u16 port; /* host byte order */
	__u8 verdict;
	__u8 reason;
	__u8 hook; /* enum mas_hook */
	__u8 family; /* AF_INET, AF_INET6 (a v4-mapped address is reported as AF_INET) */
	__u8 protocol; /* IPPROTO_*; for sock_create, the socket type in the high nibble unused */
	__u8 sock_type;
	__u8 pad[2];
	__u8 addr[16]; /* network byte order; IPv4 in the first 4 bytes */
	char comm[MAS_COMM_LEN];
};

/* A flow: decisions aggregated per (agent, address, port, protocol, verdict). A flow that
 * finds the map full is counted under its agent and verdict with a zero address and port. */
struct mas_flow_key {
	__u32 agent_id;
	__u16 port; /* host byte order */
	__u16 dest; /* destination index in the policy in force, MAS_NO_DEST for none */
	__u8 verdict; /* enum mas_verdict */
	__u8 reason; /* enum mas_reason */
	__u8 protocol; /* IPPROTO_* */
	__u8 family; /* AF_INET, AF_INET6; 0 for the folded flow */
	__u8 addr[16]; /* network byte order; IPv4 in the first 4 bytes */
	__u32 generation; /* low 32 bits of the generation whose policy decided: names dest */
};

/* Per CPU; userspace sums the counts and takes the earliest first and latest last. */
struct mas_flow_val {
	__u64 count;
	__u64 first_ns; /* CLOCK_BOOTTIME */
	__u64 last_ns;
};

/* Slot indexes of mas_flow_lost: decisions no flow could take (map full even for the fold). */
#define MAS_FLOW_LOST_SLOTS 1

_Static_assert(sizeof(struct mas_flow_key) == 32, "mas_flow_key");
_Static_assert(sizeof(struct mas_flow_val) == 24, "mas_flow_val");
_Static_assert(sizeof(struct mas_lpm4_key) == 8, "mas_lpm4_key");
_Static_assert(sizeof(struct mas_lpm6_key) == 20, "mas_lpm6_key");
_Static_assert(sizeof(struct mas_rule) == 20, "mas_rule");
_Static_assert(sizeof(struct mas_prefix_val) == 8 + 20 * MAS_MAX_RULES, "mas_prefix_val");
_Static_assert(sizeof(struct mas_class) == 32, "mas_class");
_Static_assert(sizeof(struct mas_pair_key) == 8, "mas_pair_key");
_Static_assert(sizeof(struct mas_bucket) == 24, "mas_bucket");
_Static_assert(sizeof(struct mas_sk_state) == 40, "mas_sk_state");
_Static_assert(sizeof(struct mas_agent_val) == 8 + 8 * MAS_GRANT_WORDS, "mas_agent_val");
_Static_assert(sizeof(struct mas_meta) == 16, "mas_meta");
_Static_assert(sizeof(struct mas_counter_key) == 8, "mas_counter_key");
_Static_assert(sizeof(struct mas_event) == 80, "mas_event");

#endif
