/* SPDX-License-Identifier: GPL-2.0-only */
/* What a policy change means: agents, grants, destinations, limits and modes that differ
 * between two parsed policies, and the verdict a flow would get under a policy (replay).
 * Pure: no daemon, no kernel, unit-tested. */
#ifndef MAS_DIFF_H
#define MAS_DIFF_H

#include <stddef.h>
#include <stdint.h>

#include "compile.h"
#include "policy.h"

enum diff_kind {
	DIFF_MODE, /* the global mode */
	DIFF_AGENT_ADDED,
	DIFF_AGENT_REMOVED,
	DIFF_AGENT_CHANGED, /* unit or cgroup, role, user, mode */
	DIFF_GRANT_GAINED,
	DIFF_GRANT_LOST,
	DIFF_DEST_ADDED,
	DIFF_DEST_REMOVED,
	DIFF_DEST_CHANGED, /* hosts, addresses, ports, protocols, class, protected, cap */
	DIFF_LIMIT_ADDED,
	DIFF_LIMIT_REMOVED,
	DIFF_LIMIT_CHANGED,
	DIFF_SETTING, /* resolver, flow interval, audit, control, keys */
	DIFF_KIND_MAX
};

struct diff_item {
	enum diff_kind kind;
	char subject[128]; /* the agent, destination or class; "policy" for global settings */
	char detail[768];
};

struct diff {
	struct diff_item *v;
	size_t n;
};

/* The changes from old to new, in a stable order. Returns 0 or -ENOMEM. */
int diff_policies(const struct mas_policy *old, const struct mas_policy *new, struct diff *ret);
void diff_free(struct diff *d);
const char *diff_kind_name(enum diff_kind k);

/* One flow as the journal recorded it. */
struct diff_flow {
	const char *agent; /* "(none)" for a process that is no agent */
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint16_t port;
	uint8_t ipproto; /* IPPROTO_TCP, IPPROTO_UDP */
};

/* The verdict (enum mas_verdict) the kernel would give the flow under the compiled policy p,
 * with the very decision code the BPF programs run (mas_decide.h); rate limits and
 * connection caps are not predicted. *ret_dest is the destination index or MAS_NO_DEST. */
uint8_t diff_verdict(const struct mas_policy *p, const struct mas_compiled *c,
		     const struct diff_flow *f, uint16_t *ret_dest);

#endif
