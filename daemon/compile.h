/* SPDX-License-Identifier: GPL-2.0-only */
/* Compile a policy into the map entries the BPF programs read. Pure: policy and resolved
 * addresses in, entries out; no file descriptors, so it is unit-tested without a kernel. */
#ifndef MAS_COMPILE_H
#define MAS_COMPILE_H

#include <stddef.h>
#include <stdint.h>

#include "mas_abi.h"
#include "policy.h"

/* The addresses a destination's host names resolved to, one set per destination. */
struct mas_dest_addrs {
	struct mas_cidr *cidrs;
	size_t n_cidrs;
};

struct mas_lpm4_entry {
	struct mas_lpm4_key key;
	struct mas_prefix_val val;
};

struct mas_lpm6_entry {
	struct mas_lpm6_key key;
	struct mas_prefix_val val;
};

/* masd frees v4 and v6 (keeping their counts) once the kernel holds them. */
struct mas_compiled {
	struct mas_lpm4_entry *v4;
	size_t n_v4;
	struct mas_lpm6_entry *v6;
	size_t n_v6;
	struct mas_agent_val *agents; /* by the agent's index in the policy */
	size_t n_agents;
	struct mas_class *classes; /* by the class's index in the policy */
	size_t n_classes;
	struct mas_meta meta;
};

/* addrs has one entry per destination (or is NULL when no destination has host names).
 * Returns 0, or -EINVAL with err naming the destination whose prefix carries too many rules,
 * or -ENOMEM. A protected destination that includes an address of this host is protected at
 * every other address of this host too (its local aliases): see compile_policy_local. */
int compile_policy(const struct mas_policy *p, const struct mas_dest_addrs *addrs,
		   uint64_t generation, uint32_t root_level, struct mas_compiled **ret,
		   struct mas_error *err);

/* compile_policy, told this host's own addresses (each a /32 or /128; broadcast addresses
 * may be among them). A service listening on all addresses is reachable at any of them, at
 * 0.0.0.0, ::, and anywhere in 127.0.0.0/8 and ::1: a protected destination that includes any
 * of those addresses gets the same rule (ports, protocols, class) at all of them. */
int compile_policy_local(const struct mas_policy *p, const struct mas_dest_addrs *addrs,
			 const struct mas_cidr *local, size_t n_local, uint64_t generation,
			 uint32_t root_level, struct mas_compiled **ret, struct mas_error *err);
void compile_free(struct mas_compiled *c);

/* The stable id of an agent name (FNV-1a, never MAS_NO_AGENT). */
uint32_t compile_agent_id(const char *name);

/* The stable keys of a destination and of a rate-limit class: FNV-1a of the name, never 0.
 * The state the kernel keeps for them outside the policy slots is found by these. */
uint32_t compile_dest_key(const char *name);
uint32_t compile_class_key(const char *name);

#endif
