/* SPDX-License-Identifier: GPL-2.0-only */
/* Flow summaries: the kernel's per-flow counts of one interval become one journal record per
 * flow, named and categorised with the policy in force. */
#ifndef MAS_FLOWS_H
#define MAS_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "enforcer.h"
#include "policy.h"

/* The audit category of decisions about destination dest: ai_requests for a destination whose
 * rate-limit class is the AI endpoints' ("ai", or a name starting with "ai_"), agent_actions
 * otherwise. Pure. */
const char *flows_category(const struct mas_policy *p, uint16_t dest);

/* The name of an agent id, NULL when unknown. */
typedef const char *(*flows_agent_name_fn)(void *userdata, uint32_t agent_id);
/* The name of destination dest under the generation whose low 32 bits are gen32, NULL when
 * unknown; *ret_generation the full generation, *ret_ai whether its flows are ai_requests. */
typedef const char *(*flows_dest_name_fn)(void *userdata, uint32_t gen32, uint16_t dest,
					  uint64_t *ret_generation, bool *ret_ai);

struct flows_context {
	struct mas_audit *audit;
	uint64_t interval_s;
	flows_agent_name_fn agent_name;
	flows_dest_name_fn dest_name;
	void *userdata;
};

/* One FLOW_SUMMARY record per flow, and one for decisions no flow could hold. Returns the
 * number of records written. */
size_t flows_record(const struct flows_context *c, const struct mas_flow *f, size_t n,
		    uint64_t lost);

/* CLOCK_REALTIME minus CLOCK_BOOTTIME now, in ns. Read once per summary: two readings differ by
 * the time between them, and a flow's first and last times must be converted alike. */
uint64_t flows_boot_offset_ns(void);

/* CLOCK_BOOTTIME ns as CLOCK_REALTIME µs, given flows_boot_offset_ns(). */
uint64_t flows_realtime_usec(uint64_t boot_ns, uint64_t offset_ns);

#endif
