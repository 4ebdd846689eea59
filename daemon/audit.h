/* SPDX-License-Identifier: GPL-2.0-only */
/* The audit trail: every record masd writes to journald goes through here, so the integrity
 * fields (hash chain, signed checkpoints) are added in one place. */
#ifndef MAS_AUDIT_H
#define MAS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mas_audit;
struct mas_keys;

struct mas_audit_options {
	const char *state_dir; /* chain head, spool, signing keys live below it */
	bool signed_logs; /* chain and sign; false writes plain structured records */
	uint32_t checkpoint_records; /* 0: default */
	uint32_t checkpoint_seconds; /* 0: default */
	/* Additions; zero/NULL keeps the default. */
	uint32_t key_rotate_seconds; /* the "audit" keyring's rotate_every: the signing key
				      * evolves this often; 0: default (1 day) */
	/* Where records go: NULL is sd_journal_sendv. Returns 0 or a negative errno; a failure
	 * spools the record in the state dir until the sink takes records again. */
	int (*sink)(void *userdata, const struct iovec *iov, int n);
	uint64_t (*clock_usec)(void *userdata); /* NULL: CLOCK_REALTIME */
	void *userdata;
	bool no_journal_recovery; /* after a crash, do not read the journal for the true head */
	/* Tests: called (with userdata) at each point of a key change where a kill -9 is
	 * interesting, the keyring's own steps included; NULL outside tests. */
	void (*crash)(void *userdata, const char *step);
};

#define AUDIT_DEFAULT_CHECKPOINT_RECORDS 1000
#define AUDIT_DEFAULT_CHECKPOINT_SECONDS 5
#define AUDIT_DEFAULT_KEY_ROTATE_SECONDS 86400
/* Below state_dir: the pinned first public key an auditor stores off-host. */
#define AUDIT_FIRST_PUB_PATH "audit/first.pub"

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

/* A signed checkpoint now (reason "request"). Returns 0 or a negative errno. */
int audit_checkpoint(struct mas_audit *a);

/* Evolve the signing key now (masctl keys rotate audit): the "audit" keyring makes a new version
 * and, before activating it, the writer checkpoints and writes the key-change record carrying
 * the next public key signed by the current one; the keyring then erases the old private key. */
int audit_rotate_key(struct mas_audit *a);

/* The keyring holding the signing key (STATE/keys/audit), for masctl keys list; NULL without
 * signed logs. Its schedule is the writer's: audit_tick() runs it. */
const struct mas_keys *audit_keys(const struct mas_audit *a);

/* Records waiting in the spool for journald. */
uint64_t audit_spooled(const struct mas_audit *a);

/* The sequence number the next record gets. */
uint64_t audit_next_seq(const struct mas_audit *a);

/* The pinned first public key of the chain in state_dir, as 64 hex digits and a NUL. */
int audit_first_pubkey(const char *state_dir, char ret[65]);

#endif
