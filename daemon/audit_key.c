/* SPDX-License-Identifier: GPL-2.0-only */
/* Ed25519 signing keys of the audit trail (OpenSSL 3 EVP); private bytes are wiped after use. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit_key.h"
#include "fileio.h"

struct audit_key {
	EVP_PKEY *pkey;
	uint8_t seed[32];
	uint8_t pub[AUDIT_PUB_LEN];
};

static int key_from_seed(struct audit_key *k)
{
	size_t len = AUDIT_PUB_LEN;

	k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->seed, sizeof(k->seed));
	if (!k->pkey)
		return -EIO;
	if (EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &len) != 1 || len != AUDIT_PUB_LEN)
		return -EIO;
	return 0;
}

int audit_key_generate(struct audit_key **ret)
{
	struct audit_key *k = calloc(1, sizeof(*k));
	int r;

	if (!k)
		return -ENOMEM;
	if (RAND_priv_bytes(k->seed, sizeof(k->seed)) != 1) {
		audit_key_free(k);
		return -EIO;
	}
	r = key_from_seed(k);
	if (r < 0) {
		audit_key_free(k);
		return r;
	}
	*ret = k;
	return 0;
}

int audit_key_from_seed(const uint8_t seed[32], struct audit_key **ret)
{
	struct audit_key *k = calloc(1, sizeof(*k));
	int r;

	if (!k)
		return -ENOMEM;
	memcpy(k->seed, seed, sizeof(k->seed));
	r = key_from_seed(k);
	if (r < 0) {
		audit_key_free(k);
		return r;
	}
	*ret = k;
	return 0;
}

int audit_key_load(const char *path, struct audit_key **ret)
{
	struct audit_key *k = NULL;
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = fileio_read_all(path, 256, &buf, &len);
	if (r < 0)
		return r;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	k = calloc(1, sizeof(*k));
	if (!k) {
		r = -ENOMEM;
		goto out;
	}
	r = audit_unhex(buf, len, k->seed, sizeof(k->seed));
	if (r < 0)
		goto out;
	r = key_from_seed(k);
out:
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (r < 0)
		audit_key_free(k);
	else
		*ret = k;
	return r;
}

int audit_key_save(const struct audit_key *k, const char *path)
{
	char hex[2 * sizeof(k->seed) + 2];
	int r;

	audit_hex(k->seed, sizeof(k->seed), hex);
	hex[2 * sizeof(k->seed)] = '\n';
	r = fileio_write_atomic(path, hex, 2 * sizeof(k->seed) + 1, 0600, (uid_t)-1, (gid_t)-1);
	OPENSSL_cleanse(hex, sizeof(hex));
	return r;
}

void audit_key_pub(const struct audit_key *k, uint8_t ret[AUDIT_PUB_LEN])
{
	memcpy(ret, k->pub, AUDIT_PUB_LEN);
}

int audit_key_sign(const struct audit_key *k, const void *msg, size_t len,
		   uint8_t ret[AUDIT_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = AUDIT_SIG_LEN;
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, ret, &siglen, msg, len) != 1 || siglen != AUDIT_SIG_LEN)
		r = -EIO;
	EVP_MD_CTX_free(ctx);
	return r;
}

void audit_key_free(struct audit_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey); /* OpenSSL clears its own copy of the private key */
	OPENSSL_cleanse(k->seed, sizeof(k->seed));
	free(k);
}

int audit_sig_verify(const uint8_t pub[AUDIT_PUB_LEN], const void *msg, size_t len,
		     const uint8_t sig[AUDIT_SIG_LEN])
{
	EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, AUDIT_PUB_LEN);
	EVP_MD_CTX *ctx = NULL;
	int r;

	if (!pkey)
		return -EBADMSG; /* not a point on the curve: no signature of it can be valid */
	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		r = -ENOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
		r = -EIO;
		goto out;
	}
	r = EVP_DigestVerify(ctx, sig, AUDIT_SIG_LEN, msg, len) == 1 ? 0 : -EBADMSG;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return r;
}
