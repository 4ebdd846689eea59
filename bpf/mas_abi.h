/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The ABI shared by masd's BPF programs and userspace: map keys and values, events, verdicts.
 * Every struct has explicit padding and a size assertion: both sides must agree byte for byte. */
#ifndef MAS_ABI_H
#define MAS_ABI_H

#include <linux/types.h>

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
	__u8 pad[3];
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
_Static_assert(sizeof(struct mas_rule) == 12, "mas_rule");
_Static_assert(sizeof(struct mas_prefix_val) == 8 + 12 * MAS_MAX_RULES, "mas_prefix_val");
_Static_assert(sizeof(struct mas_agent_val) == 8 + 8 * MAS_GRANT_WORDS, "mas_agent_val");
_Static_assert(sizeof(struct mas_meta) == 16, "mas_meta");
_Static_assert(sizeof(struct mas_counter_key) == 8, "mas_counter_key");
_Static_assert(sizeof(struct mas_event) == 80, "mas_event");

#endif
