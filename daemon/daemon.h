/* SPDX-License-Identifier: GPL-2.0-only */
/* masd's state and the operations on it that the event loop and the control socket call:
 * apply a policy, reload, re-enrol cgroups, tear down. */
#ifndef MAS_DAEMON_H
#define MAS_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "compile.h"
#include "enforcer.h"
#include "events.h"
#include "keys.h"
#include "policy.h"
#include "resolver.h"

struct daemon_options {
	const char *policy_file;
	const char *state_dir;
	const char *runtime_dir;
	const char *bpffs_dir;
	const char *cgroup_root; /* NULL: the cgroup2 mount */
	unsigned journal_rate;
	uint32_t audit_key_rotate_s; /* the audit signing key's rotation period; 0: the default */
	bool verbose;
};

enum agent_status {
	AGENT_WAITING = 0, /* its cgroup does not exist (yet) */
	AGENT_ENROLLED = 1,
	AGENT_OUTSIDE = 2, /* its cgroup is not below the enforcement root */
};

struct agent_state {
	char *path;
	uint64_t cgroup_id;
	enum agent_status status;
};

/* Names of the destinations of a recent generation, for events that carry it. */
#define DAEMON_GENERATIONS 16
struct gen_names {
	uint64_t generation;
	char **dests;
	bool *ai; /* the destination's flows are ai_requests */
	size_t n;
};

struct agent_name {
	uint32_t id;
	char *name;
};

struct mas_daemon {
	struct daemon_options o;
	/* reads what the ring buffer holds now (set by masd's loop, which paces it in a flood) */
	void (*drain_events)(void *userdata);
	void *drain_userdata;
	char *cgroup_mount;
	char *cgroup_root;
	struct mas_enforcer *enf;
	struct mas_audit *audit;
	struct mas_events *events;
	struct mas_resolver *resolver;
	struct mas_policy *policy;
	char *policy_text;
	char *policy_name;
	struct mas_compiled *compiled;
	struct agent_state *agents; /* one per policy agent */
	uint64_t applied_usec;
	uint64_t apply_duration_usec; /* the last policy apply, text to flipped maps */
	size_t unresolved_hosts;
	struct gen_names gens[DAEMON_GENERATIONS];
	struct agent_name *names; /* every agent name seen in this run */
	size_t n_names;
	struct mas_keys *keys; /* the policy's keyrings; NULL when it has none */
	uint64_t flows_drained_usec; /* when the last flow summary was taken */
	uint64_t flows_drained_gen; /* the generation in force then */
	bool adopted;
};

/* Load the programs, adopt pinned enforcement or apply the policy file, then attach. */
int daemon_new(const struct daemon_options *o, struct mas_daemon **ret, struct mas_error *err);

/* Apply a policy text: parse, validate, resolve, compile, swap in, persist, record. On an
 * invalid policy returns -EINVAL with err filled, and nothing changed. */
int daemon_apply(struct mas_daemon *d, const char *text, size_t len, const char *name,
		 struct mas_error *err);

/* Re-read the policy file (SIGHUP, systemctl reload). */
int daemon_reload(struct mas_daemon *d, struct mas_error *err);

/* Re-resolve the host names that are due, end grace periods that ran out, and when the set
 * of allowed addresses changed, swap it in as a new generation. Returns when it wants to be
 * called next (CLOCK_REALTIME ms). */
uint64_t daemon_resolver_tick(struct mas_daemon *d);

/* Write the flow summaries when the policy's flow interval has passed since the last ones, or
 * now when force is set (before an apply renames destinations, at exit). */
void daemon_flows_tick(struct mas_daemon *d, bool force);

/* Look for the agents' cgroups again and enrol or release them. */
void daemon_rescan(struct mas_daemon *d);

/* Totals per agent index and verdict from the kernel's counters; agent index -1 is the
 * processes that are no agent. counts[a][v] with a in [0, n_agents]; the last row is -1. */
int daemon_agent_counts(struct mas_daemon *d, uint64_t (**ret)[MAS_VERDICT_MAX]);

/* Pins removed behind masd's back are pinned again from the fds it holds, and recorded; a pin
 * that cannot be restored is reported (once per distinct error). Called from the tick. */
void daemon_check_pins(struct mas_daemon *d);

/* Keyring work that is due (called from the event loop's timer). */
void daemon_keys_tick(struct mas_daemon *d);

int daemon_teardown(struct mas_daemon *d);
void daemon_free(struct mas_daemon *d);

const char *daemon_agent_status_name(enum agent_status s);

#endif
