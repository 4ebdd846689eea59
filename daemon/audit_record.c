/* SPDX-License-Identifier: GPL-2.0-only */
/* Canonical encoding and hashing of audit records; the signed messages of checkpoints and keys. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "audit_record.h"

static const char HASH_TAG[] = "masd-audit-v1"; /* with its NUL: 14 bytes */
static const char CKPT_TAG[] = "masd-audit-ckpt-v1"; /* 19 + NUL, padded to 20 */
static const char CERT_TAG[] = "masd-audit-key-v1"; /* 18 + NUL, padded to 20 */

bool audit_field_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > 64 || name[0] == '_' || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

bool audit_field_hashed(const char *name, size_t len)
{
	if (len == 0 || name[0] == '_')
		return false;
	return !(len == 8 && memcmp(name, "MAS_HASH", 8) == 0);
}

static __thread EVP_MD *sha256;
static __thread EVP_MD_CTX *hash_ctx;

static int kv_cmp(const void *x, const void *y)
{
	const struct audit_kv *a = *(const struct audit_kv *const *)x;
	const struct audit_kv *b = *(const struct audit_kv *const *)y;
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);

	if (c)
		return c;
	if (a->name_len != b->name_len)
		return a->name_len < b->name_len ? -1 : 1;
	n = a->value_len < b->value_len ? a->value_len : b->value_len;
	c = n ? memcmp(a->value, b->value, n) : 0;
	if (c)
		return c;
	if (a->value_len != b->value_len)
		return a->value_len < b->value_len ? -1 : 1;
	return 0;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, v >> 32);
	be32(p + 4, (uint32_t)v);
}

int audit_record_hash(const struct audit_kv *kv, size_t n, uint8_t ret_hash[AUDIT_HASH_LEN])
{
	const struct audit_kv *stack[64], **sorted = stack;
	size_t m = 0;
	EVP_MD_CTX *ctx = NULL;
	uint8_t b[4];
	int r = 0;

	if (n > 64) {
		sorted = calloc(n, sizeof(*sorted));
		if (!sorted)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (audit_field_hashed(kv[i].name, kv[i].name_len))
			sorted[m++] = &kv[i];
	if (m > UINT32_MAX) {
		if (sorted != stack)
			free(sorted);
		return -E2BIG;
	}
	qsort(sorted, m, sizeof(*sorted), kv_cmp);
	/* OpenSSL 3 looks the implementation up on every EVP_sha256() init; fetch it once and keep
	 * one context per thread: this runs for every record written and verified. */
	if (!sha256) {
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
		if (!sha256)
			goto fail;
	}
	if (!hash_ctx) {
		hash_ctx = EVP_MD_CTX_new();
		if (!hash_ctx) {
			r = -ENOMEM;
			goto out;
		}
	}
	ctx = hash_ctx;
	if (EVP_DigestInit_ex(ctx, sha256, NULL) != 1)
		goto fail;
	be32(b, (uint32_t)m);
	if (EVP_DigestUpdate(ctx, HASH_TAG, sizeof(HASH_TAG)) != 1 ||
	    EVP_DigestUpdate(ctx, b, 4) != 1)
		goto fail;
	for (size_t i = 0; i < m; i++) {
		uint8_t nl[4], vl[4];

		be32(nl, (uint32_t)sorted[i]->name_len);
		be32(vl, (uint32_t)sorted[i]->value_len);
		if (EVP_DigestUpdate(ctx, nl, 4) != 1 ||
		    EVP_DigestUpdate(ctx, sorted[i]->name, sorted[i]->name_len) != 1 ||
		    EVP_DigestUpdate(ctx, vl, 4) != 1 ||
		    (sorted[i]->value_len &&
		     EVP_DigestUpdate(ctx, sorted[i]->value, sorted[i]->value_len) != 1))
			goto fail;
	}
	if (EVP_DigestFinal_ex(ctx, ret_hash, NULL) != 1)
		goto fail;
	goto out;
fail:
	r = -EIO;
out:
	if (sorted != stack)
		free(sorted);
	return r;
}

void audit_ckpt_message(const uint8_t chain[AUDIT_CHAIN_ID_LEN], uint64_t seq,
			const uint8_t prev[AUDIT_HASH_LEN], uint64_t time_usec,
			const uint8_t key_id[AUDIT_KEY_ID_LEN], const char *reason, uint8_t *ret)
{
	size_t rl = strnlen(reason, AUDIT_REASON_LEN - 1);
	uint8_t *p = ret;

	memset(p, 0, 20);
	memcpy(p, CKPT_TAG, sizeof(CKPT_TAG));
	p += 20;
	memcpy(p, chain, AUDIT_CHAIN_ID_LEN);
	p += AUDIT_CHAIN_ID_LEN;
	be64(p, seq);
	p += 8;
	memcpy(p, prev, AUDIT_HASH_LEN);
	p += AUDIT_HASH_LEN;
	be64(p, time_usec);
	p += 8;
	memcpy(p, key_id, AUDIT_KEY_ID_LEN);
	p += AUDIT_KEY_ID_LEN;
	memset(p, 0, AUDIT_REASON_LEN);
	memcpy(p, reason, rl);
}

void audit_cert_message(const uint8_t chain[AUDIT_CHAIN_ID_LEN], uint32_t index,
			const uint8_t pub[AUDIT_PUB_LEN], uint8_t *ret)
{
	uint8_t *p = ret;

	memset(p, 0, 20);
	memcpy(p, CERT_TAG, sizeof(CERT_TAG));
	p += 20;
	memcpy(p, chain, AUDIT_CHAIN_ID_LEN);
	p += AUDIT_CHAIN_ID_LEN;
	be32(p, index);
	p += 4;
	memcpy(p, pub, AUDIT_PUB_LEN);
}

void audit_key_id(const uint8_t pub[AUDIT_PUB_LEN], uint8_t ret[AUDIT_KEY_ID_LEN])
{
	uint8_t h[32];
	unsigned int hl = 0;

	if (EVP_Digest(pub, AUDIT_PUB_LEN, h, &hl, EVP_sha256(), NULL) != 1)
		memset(h, 0, sizeof(h));
	memcpy(ret, h, AUDIT_KEY_ID_LEN);
}

void audit_hex(const uint8_t *p, size_t len, char *ret)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		ret[2 * i] = digits[p[i] >> 4];
		ret[2 * i + 1] = digits[p[i] & 15];
	}
	ret[2 * len] = 0;
}

static inline int unhex1(uint8_t c)
{
	if ((unsigned)(c - '0') < 10)
		return c - '0';
	c |= 0x20; /* lower case */
	if ((unsigned)(c - 'a') < 6)
		return c - 'a' + 10;
	return -1;
}

int audit_unhex(const char *s, size_t slen, uint8_t *ret, size_t len)
{
	if (!s || slen != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = unhex1((uint8_t)s[2 * i]), lo = unhex1((uint8_t)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		ret[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int audit_parse_u64(const char *s, size_t slen, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s || slen == 0 || slen > 20)
		return -EINVAL;
	for (size_t i = 0; i < slen; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

int audit_seal_split(const char *v, size_t len, struct audit_kv ret[4])
{
	static const char *const names[4] = { "MAS_SEQ", "MAS_PREV", "MAS_TIME", "MAS_HASH" };
	size_t start = 0, k = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && v[i] != ' ')
			continue;
		if (k == 4 || i == start)
			return -EBADMSG;
		ret[k] = (struct audit_kv){ names[k], strlen(names[k]), v + start, i - start };
		k++;
		start = i + 1;
	}
	return k == 4 ? 0 : -EBADMSG;
}
