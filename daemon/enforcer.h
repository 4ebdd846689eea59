/* SPDX-License-Identifier: GPL-2.0-only */
/* The kernel side as masd drives it: load and pin the programs and maps, adopt pinned state,
 * swap a compiled policy in atomically, enrol cgroups, read counters, tear down. */
#ifndef MAS_ENFORCER_H
#define MAS_ENFORCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compile.h"

struct mas_enforcer;

struct enforcer_options {
	const char *bpffs_dir; /* pins live here; a bpffs is mounted where none is */
	const char *cgroup_root; /* programs attach here */
	const char *cgroup_mount; /* the cgroup2 mount, to compute the root's level */
};

/* One enrolled cgroup: which agent (index into the compiled agents) it is. */
struct mas_enrolment {
	uint64_t cgroup_id;
	size_t agent;
};

struct mas_counter {
	uint32_t agent_id;
	uint8_t verdict;
	uint8_t reason;
	uint64_t count; /* summed over CPUs */
};

/* Where the last enforcer_apply() spent its time, in µs of CLOCK_MONOTONIC: waiting for the
 * idle slot's fresh maps (made ready in the background after the flip before, a grace period
 * and the map-in-map updates), filling and pinning them, and the flip. */
struct enforcer_timing {
	uint64_t wait_usec;
	uint64_t fill_usec;
	uint64_t flip_usec;
};

/* Loads the programs (reusing pinned maps). Nothing is attached yet; *ret_adopted tells
 * whether pinned enforcement was found, which enforcer_attach() will then take over. */
int enforcer_open(const struct enforcer_options *o, struct mas_enforcer **ret, bool *ret_adopted);

/* Attach every program to the cgroup root and pin its link, or, for links already pinned,
 * replace their program in place (no moment without enforcement). */
int enforcer_attach(struct mas_enforcer *e);

/* Fill the inactive slot with c and the enrolments and flip to it. Programs that began before
 * the flip may finish on the old slot; the next apply fills it only after a grace period. */
int enforcer_apply(struct mas_enforcer *e, const struct mas_compiled *c,
		   const struct mas_enrolment *en, size_t n_en);

/* Change the enrolment of the slot in force, one cgroup at a time (a cgroup that appeared or
 * went while the policy stays). */
int enforcer_enrol(struct mas_enforcer *e, uint64_t cgroup_id, const struct mas_agent_val *v);
int enforcer_unenrol(struct mas_enforcer *e, uint64_t cgroup_id);

/* Whether packet sockets are refused by the BPF LSM (else only CAP_NET_RAW keeps agents out). */
bool enforcer_has_lsm(const struct mas_enforcer *e);

struct enforcer_timing enforcer_last_timing(const struct mas_enforcer *e);

/* The generation in force (0 when none), and the cgroup root's level. */
uint64_t enforcer_generation(const struct mas_enforcer *e);
uint32_t enforcer_root_level(const struct mas_enforcer *e);

/* Every counter, summed over CPUs; the caller frees *ret. */
int enforcer_counters(struct mas_enforcer *e, struct mas_counter **ret, size_t *ret_n);
int enforcer_stat(struct mas_enforcer *e, uint32_t stat, uint64_t *ret);

/* Whole tokens (requests, or bytes when bytes) left now in agent's bucket of class cls. */
int enforcer_tokens(struct mas_enforcer *e, uint32_t agent_id, const struct mas_class *cls,
		    bool bytes, uint64_t *ret);

/* The sockets agent holds open to the destination with key dest_key. */
int enforcer_open_conns(struct mas_enforcer *e, uint32_t agent_id, uint32_t dest_key,
			uint64_t *ret);

int enforcer_events_fd(const struct mas_enforcer *e);

/* One flow since the last drain, summed over CPUs. */
struct mas_flow {
	struct mas_flow_key k;
	uint64_t count;
	uint64_t first_ns; /* CLOCK_BOOTTIME */
	uint64_t last_ns;
};

/* Take every flow counted since the last drain: flip the programs to the other flow map, wait
 * until none still writes the old one, read it and put an empty one in its place. *ret_lost
 * is the number of decisions since the last drain that no flow could hold. */
int enforcer_flows_drain(struct mas_enforcer *e, struct mas_flow **ret, size_t *ret_n,
			 uint64_t *ret_lost);

/* Pin again every link and map whose pin was removed behind masd's back (from the fds masd
 * holds, so enforcement never stopped); *ret_restored counts them. 0 or the first error. */
int enforcer_check_pins(struct mas_enforcer *e, unsigned *ret_restored);

/* Detach every program and remove every pin. */
int enforcer_teardown(struct mas_enforcer *e);

void enforcer_free(struct mas_enforcer *e);

#endif
