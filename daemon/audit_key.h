/* SPDX-License-Identifier: GPL-2.0-only */
/* The audit trail's Ed25519 signing key in memory: made from a seed the "audit" keyring holds
 * (keys.c), or generated, loaded and saved by tests and tools; sign, verify, wipe. */
#ifndef MAS_AUDIT_KEY_H
#define MAS_AUDIT_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "audit_record.h"

struct audit_key;

int audit_key_generate(struct audit_key **ret);
/* From the 32-byte private seed (a keyring version's material); the caller wipes its copy. */
int audit_key_from_seed(const uint8_t seed[32], struct audit_key **ret);
/* The file holds the 32-byte private seed as 64 hex digits. */
int audit_key_load(const char *path, struct audit_key **ret);
int audit_key_save(const struct audit_key *k, const char *path);
void audit_key_pub(const struct audit_key *k, uint8_t ret[AUDIT_PUB_LEN]);
int audit_key_sign(const struct audit_key *k, const void *msg, size_t len,
		   uint8_t ret[AUDIT_SIG_LEN]);
/* Wipes the private key (OPENSSL_cleanse) and frees it. NULL is fine. */
void audit_key_free(struct audit_key *k);

/* 0 when sig is pub's signature of msg, -EBADMSG when not, another negative errno on failure. */
int audit_sig_verify(const uint8_t pub[AUDIT_PUB_LEN], const void *msg, size_t len,
		     const uint8_t sig[AUDIT_SIG_LEN]);

#endif
