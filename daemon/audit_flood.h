/* SPDX-License-Identifier: GPL-2.0-only */
/* Flood control for decision records: a token bucket per key (an agent, or agent+destination)
 * bounds the journal rate; whatever is held back is counted exactly and reported as
 * "N suppressed" records. The kernel's counters stay the truth; this only samples them. */
#ifndef MAS_AUDIT_FLOOD_H
#define MAS_AUDIT_FLOOD_H

#include <stdbool.h>
#include <stdint.h>

struct mas_audit;
struct audit_flood;

struct audit_flood_options {
	uint32_t rate_per_sec; /* records per key per second; 0: default 20 */
	uint32_t burst; /* bucket size; 0: default 50 */
	uint32_t max_keys; /* distinct keys tracked; more share one bucket; 0: default 4096 */
};

int audit_flood_new(const struct audit_flood_options *o, struct audit_flood **ret);
void audit_flood_free(struct audit_flood *f);

/* May a record for key be written at now_usec? When not, it is counted as suppressed. */
bool audit_flood_admit(struct audit_flood *f, const char *key, uint64_t now_usec);

/* Write one MAS_MSGID_EVENTS_SUPPRESSED record (MAS_FLOOD_KEY, MAS_SUPPRESSED=N, MAS_SINCE) for
 * every key with records held back since the last call, and reset those counts. Returns the
 * number of records written or a negative errno (counts of records not written are kept). */
int audit_flood_report(struct audit_flood *f, struct mas_audit *a, uint64_t now_usec);

/* Records held back so far, in total (for metrics). */
uint64_t audit_flood_suppressed_total(const struct audit_flood *f);

#endif
