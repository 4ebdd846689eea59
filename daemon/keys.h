/* SPDX-License-Identifier: GPL-2.0-only */
/* Keyrings: the secrets masd keeps, rotates on a schedule and delivers to agents (issue 5).
 * Time is always passed in (seconds since the epoch) so the schedule is testable with a fake
 * clock; nothing here logs: changes are reported through the audit sink, errors as -errno. */
#ifndef MAS_KEYS_H
#define MAS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "audit.h"
#include "policy.h"

#define KEYS_KID_LEN 16 /* hex characters */
#define KEYS_FPR_LEN 32 /* hex characters */
#define KEYS_SECRET_MAX 32 /* bytes of material: 256-bit secrets, Ed25519 seeds */
#define KEYS_DEFAULT_LEAD_S 3600u
#define KEYS_NEVER UINT64_MAX

struct mas_keys;

enum keys_state {
	KEYS_PENDING, /* delivered, verify-only: consumers accept it, nobody signs with it yet */
	KEYS_ACTIVE, /* the one to sign/encrypt with */
	KEYS_RETIRING, /* verify/decrypt only, until not_after */
	KEYS_DESTROYED, /* committed as gone; files are being wiped */
};

/* The audit sink. masd passes a function calling audit_emit(a, message_id, MAS_CAT_DATA_CHANGES,
 * priority, message, fields, n_fields); unit tests record in memory. Fields are MAS_KEY_NAME,
 * MAS_KEY_TYPE, MAS_KEY_OLD_KID, MAS_KEY_NEW_KID, MAS_KEY_KID, MAS_KEY_FINGERPRINT, MAS_AGENT,
 * MAS_KEY_REASON: never material. A negative return is passed back to the caller of tick/rotate;
 * the record is then retried on the next call (records are at-least-once). */
typedef int (*keys_audit_fn)(void *userdata, const char *message_id, int priority,
			     const char *message, const struct audit_field *fields,
			     size_t n_fields);

struct keys_version_info;

/* Called before a keyring's active version changes, so a user of the key (the audit writer) can
 * checkpoint and sign the announcement of new_v (its kid and, for Ed25519, its public key) with
 * the old key, which keys_material_get(k, name, old_v->kid, ...) still returns, as it returns
 * new_v's material by its kid. old_v is NULL for a first version. A negative return aborts that transition; it is retried after 60 s. Do not
 * call keys_tick/keys_rotate from it. */
typedef int (*keys_before_activate_fn)(void *userdata, const char *key_name,
				       const struct keys_version_info *old_v,
				       const struct keys_version_info *new_v);

/* Test hook: called with a step name at each point a kill -9 is interesting (see keys.c). */
typedef void (*keys_crash_fn)(void *userdata, const char *step);

struct keys_options {
	const char *state_dir; /* masd's state dir; keys live in STATE/keys/NAME/ (0700 root) */
	const char *runtime_dir; /* masd's runtime dir; delivery in RUNTIME/keys/AGENT/; NULL:
				  * nothing is delivered (no agents: masd's own audit key) */
	const struct mas_key_conf *keys; /* the policy's keys plus masd's own (audit signing) */
	size_t n_keys;
	const struct mas_agent *agents; /* what deliver_to indexes */
	size_t n_agents;
	uint64_t lead_s; /* a new version is delivered this long before it becomes active;
			  * 0: KEYS_DEFAULT_LEAD_S; clamped to rotate_every/2; no lead for a key
			  * delivered to nobody (masd alone uses it) */
	keys_audit_fn audit;
	void *audit_userdata;
	keys_crash_fn crash; /* NULL outside tests */
	void *crash_userdata;
};

/* Open the keyrings: create missing state, reconcile what a crash left (temp files, orphaned or
 * missing secrets, unfinished destructions, unaudited changes) and resync deliveries. No schedule
 * work: call keys_tick(now) next. A malformed state file is refused (-EBADMSG) with err->msg
 * naming the file and line; nothing is changed then. Returns 0 or a negative errno. */
int keys_open(const struct keys_options *opts, uint64_t now, struct mas_keys **ret,
	      struct mas_error *err);

/* Perform every transition due at now: first versions, pending → active, retiring → destroyed,
 * the next pending version. Catches up after downtime without bursts. Returns the number of
 * transitions (>= 0) or a negative errno (the first failure; other keyrings still advance). */
int keys_tick(struct mas_keys *k, uint64_t now);

/* When keys_tick must run next: an absolute time, <= now means at once, KEYS_NEVER for never. */
uint64_t keys_next_due(const struct mas_keys *k, uint64_t now);

#define KEYS_ROTATE_IMMEDIATE 0x1 /* activate the new version now, skipping the lead */
#define KEYS_ROTATE_REVOKE 0x2 /* destroy every previous version now (compromise) */

/* On demand (masctl keys rotate NAME). Without flags: a pending version is created and
 * activates after the lead; -EBUSY if one is already pending. With IMMEDIATE, a pending version
 * is promoted at once (or a new one created and promoted). -ENOENT for an unknown name. */
int keys_rotate(struct mas_keys *k, const char *name, uint64_t now, unsigned flags);

void keys_close(struct mas_keys *k);

/* Register the callback run before each activation (the audit writer's checkpoint). */
void keys_set_before_activate(struct mas_keys *k, keys_before_activate_fn fn, void *userdata);

/* ---- reading keys ---- */

struct keys_version_info {
	char kid[KEYS_KID_LEN + 1];
	enum keys_state state;
	uint64_t created;
	uint64_t not_before; /* when it became (or becomes) active */
	uint64_t not_after; /* end of verification validity; 0: open-ended */
	char fingerprint[KEYS_FPR_LEN + 1];
	bool has_public;
	uint8_t public_key[32]; /* Ed25519 only */
};

/* Versions of one keyring, oldest first. *ret is freed by the caller with free(). */
int keys_versions(const struct mas_keys *k, const char *name, struct keys_version_info **ret,
		  size_t *ret_n);

/* Material of one version (kid NULL: the active one). The caller wipes it with
 * keys_material_clear() right after use. */
struct keys_material {
	char kid[KEYS_KID_LEN + 1];
	enum mas_key_type type;
	size_t len;
	uint8_t bytes[KEYS_SECRET_MAX]; /* HS256/AES: the key; Ed25519: the 32-byte private seed */
};
int keys_material_get(const struct mas_keys *k, const char *name, const char *kid,
		      struct keys_material *ret);
void keys_material_clear(struct keys_material *m);

/* ---- masctl keys list ---- */

struct keys_list_entry {
	char name[65];
	enum mas_key_type type;
	char active_kid[KEYS_KID_LEN + 1];
	char pending_kid[KEYS_KID_LEN + 1]; /* "" when none */
	uint64_t active_since; /* not_before of the active version */
	uint64_t age_s; /* now - active_since */
	uint64_t next_rotation; /* when the next version becomes active; KEYS_NEVER */
	uint64_t rotate_every_s;
	uint64_t keep_previous_for_s;
	size_t n_versions; /* not destroyed */
	bool overdue; /* the active version is older than rotate_every */
};

int keys_list(const struct mas_keys *k, uint64_t now, struct keys_list_entry **ret, size_t *ret_n);

#define KEYS_FORMAT_JSON 0x1
/* Print a keys_list() result as an aligned table, or as one JSON document (CONTRACT --json). */
int keys_cli_format(FILE *out, const struct keys_list_entry *e, size_t n, uint64_t now,
		    unsigned flags);

/* How many keyrings are overdue (masctl status, the journal warning): see keys_list_entry. */
size_t keys_overdue(const struct mas_keys *k, uint64_t now);

const char *keys_type_name(enum mas_key_type t); /* "hs256", "aes-256-gcm", "ed25519" */
const char *keys_state_name(enum keys_state s);

#endif
