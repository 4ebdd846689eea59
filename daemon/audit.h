/* SPDX-License-Identifier: GPL-2.0-only */
/* The audit trail: every record masd writes to journald goes through here, so the integrity
 * fields (hash chain, signed checkpoints) are added in one place. */
#ifndef MAS_AUDIT_H
#define MAS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mas_audit;

struct mas_audit_options {
	const char *state_dir; /* chain head, spool, signing keys live below it */
	bool signed_logs; /* chain and sign; false writes plain structured records */
	uint32_t checkpoint_records; /* 0: default */
	uint32_t checkpoint_seconds; /* 0: default */
};

/* A journal field; name is the full field name ("MAS_AGENT"), value is text. */
struct audit_field {
	const char *name;
	const char *value;
};

/* Categories, as the policy's audit.include names them. */
#define MAS_CAT_AI_REQUESTS "ai_requests"
#define MAS_CAT_AUTHENTICATION "authentication"
#define MAS_CAT_DATA_CHANGES "data_changes"
#define MAS_CAT_AGENT_ACTIONS "agent_actions"

int audit_open(const struct mas_audit_options *opts, struct mas_audit **ret);

/* Write one record: MESSAGE_ID, MESSAGE, PRIORITY (LOG_*), MAS_CATEGORY and the given fields,
 * with SYSLOG_IDENTIFIER=masd. Returns 0 or a negative errno (the record is then spooled if the
 * implementation spools; it is never silently dropped). */
int audit_emit(struct mas_audit *a, const char *message_id, const char *category, int priority,
	       const char *message, const struct audit_field *fields, size_t n_fields);

/* Periodic work from the event loop (checkpoints, heartbeats, spool flush). Returns the number
 * of milliseconds until it wants to be called again. */
uint64_t audit_tick(struct mas_audit *a);

/* Final checkpoint, then free. NULL is fine. */
void audit_close(struct mas_audit *a);

#endif
