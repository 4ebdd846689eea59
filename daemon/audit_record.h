/* SPDX-License-Identifier: GPL-2.0-only */
/* The audit record's canonical form: which fields a record's hash covers, how they are encoded,
 * and the signed messages of checkpoints and key changes. Shared by the writer and the verifier. */
#ifndef MAS_AUDIT_RECORD_H
#define MAS_AUDIT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_HASH_LEN 32
#define AUDIT_CHAIN_ID_LEN 16
#define AUDIT_KEY_ID_LEN 8
#define AUDIT_PUB_LEN 32
#define AUDIT_SIG_LEN 64
#define AUDIT_FIELD_MAX (64 * 1024) /* largest value the writer accepts */

/* One journal field, binary-safe: name is not NUL-terminated necessarily, value may hold NULs. */
struct audit_kv {
	const char *name;
	size_t name_len;
	const void *value;
	size_t value_len;
};

/* A field name journald keeps as sent: [A-Z0-9_], not starting with '_' or a digit, ≤ 64. */
bool audit_field_name_valid(const char *name, size_t len);

/* Whether the record hash covers this field: every field the sender chose (no leading '_',
 * which journald reserves for its trusted fields and export metadata), except MAS_HASH. */
bool audit_field_hashed(const char *name, size_t len);

/* SHA-256 over "masd-audit-v1\0", the number of covered fields, then each covered field sorted
 * by (name, value) as be32 name length, name, be32 value length, value. */
int audit_record_hash(const struct audit_kv *kv, size_t n, uint8_t ret_hash[AUDIT_HASH_LEN]);

/* The bytes a checkpoint signs: chain, its own seq, the head it seals (its MAS_PREV), its time,
 * the key id and its reason (≤ 15 bytes, zero-padded). ret holds AUDIT_CKPT_MSG_LEN bytes. */
#define AUDIT_REASON_LEN 16
#define AUDIT_CKPT_MSG_LEN \
	(20 + AUDIT_CHAIN_ID_LEN + 8 + AUDIT_HASH_LEN + 8 + AUDIT_KEY_ID_LEN + AUDIT_REASON_LEN)
void audit_ckpt_message(const uint8_t chain[AUDIT_CHAIN_ID_LEN], uint64_t seq,
			const uint8_t prev[AUDIT_HASH_LEN], uint64_t time_usec,
			const uint8_t key_id[AUDIT_KEY_ID_LEN], const char *reason, uint8_t *ret);

/* The bytes a key certificate signs: the chain, the new key's index and public key. */
#define AUDIT_CERT_MSG_LEN (20 + AUDIT_CHAIN_ID_LEN + 4 + AUDIT_PUB_LEN)
void audit_cert_message(const uint8_t chain[AUDIT_CHAIN_ID_LEN], uint32_t index,
			const uint8_t pub[AUDIT_PUB_LEN], uint8_t *ret);

/* On the wire the four fields unique to each record travel as one, because journald's cost grows
 * with the number of distinct data objects per entry:
 *   MAS_SEAL=<MAS_SEQ> <MAS_PREV> <MAS_TIME> <MAS_HASH>
 * The record's hash is defined over the four logical fields, as if they had been sent apart.
 * Split one MAS_SEAL value into them (values point into v). Returns 0 or -EBADMSG. */
#define AUDIT_SEAL_FIELD "MAS_SEAL"
int audit_seal_split(const char *v, size_t len, struct audit_kv ret[4]);

/* The key id: the first 8 bytes of SHA-256 over the public key. */
void audit_key_id(const uint8_t pub[AUDIT_PUB_LEN], uint8_t ret[AUDIT_KEY_ID_LEN]);

/* Lowercase hex; ret holds 2 * len + 1. */
void audit_hex(const uint8_t *p, size_t len, char *ret);
/* Exactly 2 * len hex digits into len bytes. Returns 0 or -EINVAL. */
int audit_unhex(const char *s, size_t slen, uint8_t *ret, size_t len);
/* A decimal u64 with no sign, no leading junk, no overflow. Returns 0 or -EINVAL. */
int audit_parse_u64(const char *s, size_t slen, uint64_t *ret);

#endif
