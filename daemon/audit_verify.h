/* SPDX-License-Identifier: GPL-2.0-only */
/* The audit trail's verifier: reads masd's records from the live journal, a journal directory or
 * `journalctl -o export` output, and reports every place the chain was tampered with. */
#ifndef MAS_AUDIT_VERIFY_H
#define MAS_AUDIT_VERIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "audit_record.h"

enum audit_rec_type {
	AUDIT_REC_EVENT,
	AUDIT_REC_CHECKPOINT,
	AUDIT_REC_KEY_CHANGE,
	AUDIT_REC_START,
	AUDIT_REC_NEW_CHAIN,
};

/* What the verifier keeps of one journal entry: the integrity fields, parsed, and the hash it
 * recomputes over the entry's canonical form. */
struct audit_entry {
	size_t pos; /* order in the input */
	bool chained; /* has MAS_CHAIN_ID */
	bool malformed; /* an integrity field present but unparsable or repeated */
	enum audit_rec_type type;
	uint8_t chain[AUDIT_CHAIN_ID_LEN];
	uint64_t seq;
	uint8_t prev[AUDIT_HASH_LEN];
	uint8_t hash[AUDIT_HASH_LEN]; /* MAS_HASH as written */
	uint8_t computed[AUDIT_HASH_LEN]; /* over the canonical form as read */
	uint8_t key_id[AUDIT_KEY_ID_LEN];
	uint64_t time_usec; /* MAS_TIME */
	uint64_t realtime_usec; /* journald's receive time, 0 if unknown */
	int64_t jpid, juid; /* journald's trusted _PID/_UID, -1 when absent */
	/* checkpoints */
	bool has_sig;
	uint8_t sig[AUDIT_SIG_LEN];
	char reason[16];
	uint64_t interval;
	/* key changes */
	bool has_next;
	uint32_t key_index;
	uint8_t next_pub[AUDIT_PUB_LEN];
	uint8_t key_sig[AUDIT_SIG_LEN];
	/* start and new-chain records */
	int64_t mas_pid;
	bool has_first;
	uint8_t first_pub[AUDIT_PUB_LEN];
	char *keys; /* MAS_KEYS: the key history, malloc'd */
};

/* Fill e from one entry's fields (integrity and trusted fields); false when the entry is not an
 * audit record of masd (no MAS_ field, or another SYSLOG_IDENTIFIER). */
int audit_entry_parse(const struct audit_kv *kv, size_t n, struct audit_entry *e, bool *ret_ours);
void audit_entry_clear(struct audit_entry *e);

/* The journal entry j points at, parsed as above (sd_journal from <systemd/sd-journal.h>). */
struct sd_journal;
int audit_journal_entry(struct sd_journal *j, struct audit_entry *e, bool *ret_ours);

/* `journalctl -o export` parser, binary-safe and bounds-checked. cb gets each entry's fields;
 * a non-zero return from cb stops the parse with that value. Returns 0, -EBADMSG on malformed
 * input (*ret_line set), -ENODATA when the input ended inside an entry (the entries before it
 * were delivered), -E2BIG when a limit was hit, or cb's value. */
typedef int (*audit_export_cb)(void *userdata, const struct audit_kv *kv, size_t n);
int audit_export_parse(FILE *f, audit_export_cb cb, void *userdata, uint64_t *ret_line);
/* Write one entry in export format (text form when the value allows it, binary otherwise). */
int audit_export_write(FILE *f, const struct audit_kv *kv, size_t n);

enum audit_finding_kind {
	AUDIT_F_MODIFIED,
	AUDIT_F_DELETED,
	AUDIT_F_DUPLICATED,
	AUDIT_F_FORKED,
	AUDIT_F_REORDERED,
	AUDIT_F_INJECTED,
	AUDIT_F_FORGED_CHECKPOINT,
	AUDIT_F_RETIRED_KEY,
	AUDIT_F_FOREIGN_KEY,
	AUDIT_F_FOREIGN_CHAIN,
	AUDIT_F_TRUNCATED,
	AUDIT_F_STALE_TAIL,
	AUDIT_F_SHORT_HISTORY,
	AUDIT_F_NO_CHAIN,
	/* not tampering by themselves */
	AUDIT_F_UNSEALED_TAIL,
	AUDIT_F_HEAD_TRIMMED,
	AUDIT_F_NEW_CHAIN,
	_AUDIT_F_MAX,
};

struct audit_finding {
	enum audit_finding_kind kind;
	bool has_seq;
	uint64_t seq; /* first bad sequence number */
	uint64_t count; /* records concerned */
	uint64_t time_usec; /* MAS_TIME (or journald's time) of the first bad record, 0 unknown */
	char detail[192];
};

struct audit_report {
	struct audit_finding *findings;
	size_t n_findings;
	bool tampered;
	bool has_chain;
	char chain[2 * AUDIT_CHAIN_ID_LEN + 1];
	uint64_t records, checkpoints, key_changes, runs;
	uint64_t first_seq, last_seq,
		sealed_seq; /* sealed_seq: last record a valid signature covers */
	bool sealed;
	uint64_t first_time, last_time;
	uint64_t first_bad_seq;
	bool has_first_bad;
};

struct audit_verify_options {
	uint8_t pinned[AUDIT_PUB_LEN]; /* the chain's first public key, the only trust anchor */
	uint64_t now_usec; /* 0: the clock */
	uint32_t retention_days; /* 0: not checked */
	uint32_t grace_seconds; /* a heartbeat is late after 2 intervals plus this; 0: default 2 */
};

struct audit_verifier;

int audit_verifier_new(const struct audit_verify_options *o, struct audit_verifier **ret);
void audit_verifier_free(struct audit_verifier *v);
/* One journal entry, all its fields (trusted ones too); entries of other programs are ignored. */
int audit_verifier_add(struct audit_verifier *v, const struct audit_kv *kv, size_t n);
/* The input ended inside an entry (a truncated export). */
void audit_verifier_input_truncated(struct audit_verifier *v);
/* Read export format from f. Returns 0 or a negative errno; a truncated input is a finding. */
int audit_verifier_add_export(struct audit_verifier *v, FILE *f, uint64_t *ret_line);
/* Read the live journal (dir NULL) or a journal directory, masd's records only. */
int audit_verifier_add_journal(struct audit_verifier *v, const char *dir);
int audit_verifier_finish(struct audit_verifier *v, struct audit_report **ret);
void audit_report_free(struct audit_report *r);

const char *audit_finding_name(enum audit_finding_kind k);
bool audit_finding_is_tampering(enum audit_finding_kind k);
void audit_report_print(FILE *f, const struct audit_report *r, bool json);

#endif
