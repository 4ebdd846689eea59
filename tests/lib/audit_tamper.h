/* SPDX-License-Identifier: GPL-2.0-only */
/* Test helpers: an audit log held in memory as journal entries, and the tampering an attacker
 * with write access to the journal files would do to it (edit, delete, duplicate, swap, inject,
 * truncate, re-sign, swap keys). Shared by the unit tests and tests/integration/audit_tamper. */
#ifndef MAS_TEST_AUDIT_TAMPER_H
#define MAS_TEST_AUDIT_TAMPER_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_key.h"
#include "audit_record.h"
#include "audit_verify.h"

struct tfield {
	char *name;
	char *val;
	size_t vlen;
};

struct trec {
	struct tfield *f;
	size_t n;
};

struct tlog {
	struct trec *r;
	size_t n;
};

static inline void trec_set(struct trec *r, const char *name, const void *val, size_t vlen)
{
	struct tfield *f = NULL;

	for (size_t i = 0; i < r->n && !f; i++)
		if (strcmp(r->f[i].name, name) == 0)
			f = &r->f[i];
	if (!f) {
		r->f = realloc(r->f, (r->n + 1) * sizeof(*r->f));
		f = &r->f[r->n++];
		f->name = strdup(name);
	} else {
		free(f->val);
	}
	f->val = malloc(vlen + 1);
	memcpy(f->val, val, vlen);
	f->val[vlen] = 0;
	f->vlen = vlen;
}

static inline const char *trec_get(const struct trec *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->f[i].name, name) == 0)
			return r->f[i].val;
	return NULL;
}

static inline void trec_free(struct trec *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->f[i].name);
		free(r->f[i].val);
	}
	free(r->f);
	r->f = NULL;
	r->n = 0;
}

static inline struct trec trec_dup(const struct trec *r)
{
	struct trec d = { 0 };

	for (size_t i = 0; i < r->n; i++)
		trec_set(&d, r->f[i].name, r->f[i].val, r->f[i].vlen);
	return d;
}

static inline void tlog_push(struct tlog *l, struct trec r)
{
	l->r = realloc(l->r, (l->n + 1) * sizeof(*l->r));
	l->r[l->n++] = r;
}

static inline void tlog_free(struct tlog *l)
{
	for (size_t i = 0; i < l->n; i++)
		trec_free(&l->r[i]);
	free(l->r);
	l->r = NULL;
	l->n = 0;
}

static inline struct tlog tlog_dup(const struct tlog *l)
{
	struct tlog d = { 0 };

	for (size_t i = 0; i < l->n; i++)
		tlog_push(&d, trec_dup(&l->r[i]));
	return d;
}

static inline void tlog_insert(struct tlog *l, size_t at, struct trec r)
{
	tlog_push(l, r);
	memmove(&l->r[at + 1], &l->r[at], (l->n - 1 - at) * sizeof(*l->r));
	l->r[at] = r;
}

static inline void tlog_remove(struct tlog *l, size_t at)
{
	trec_free(&l->r[at]);
	memmove(&l->r[at], &l->r[at + 1], (l->n - at - 1) * sizeof(*l->r));
	l->n--;
}

static inline struct audit_kv *trec_kv(const struct trec *r)
{
	struct audit_kv *kv = calloc(r->n + 1, sizeof(*kv));

	for (size_t i = 0; i < r->n; i++)
		kv[i] = (struct audit_kv){ r->f[i].name, strlen(r->f[i].name), r->f[i].val,
					   r->f[i].vlen };
	return kv;
}

static inline long tlog_find(const struct tlog *l, unsigned long long seq)
{
	char want[24];

	snprintf(want, sizeof(want), "%llu", seq);
	for (size_t i = 0; i < l->n; i++) {
		const char *s = trec_get(&l->r[i], "MAS_SEQ");

		if (s && strcmp(s, want) == 0)
			return (long)i;
	}
	return -1;
}

static inline void trec_rehash(struct trec *r)
{
	struct audit_kv *kv = trec_kv(r);
	uint8_t h[AUDIT_HASH_LEN];
	char hex[2 * AUDIT_HASH_LEN + 1];

	audit_record_hash(kv, r->n, h);
	audit_hex(h, AUDIT_HASH_LEN, hex);
	trec_set(r, "MAS_HASH", hex, strlen(hex));
	free(kv);
}

/* What a careful forger does after changing record at: every later record relinked, rehashed. */
static inline void tlog_rechain(struct tlog *l, size_t at)
{
	for (size_t i = at; i < l->n; i++) {
		if (!trec_get(&l->r[i], "MAS_CHAIN_ID"))
			continue;
		if (i > at && trec_get(&l->r[i - 1], "MAS_HASH")) {
			const char *h = trec_get(&l->r[i - 1], "MAS_HASH");

			trec_set(&l->r[i], "MAS_PREV", h, strlen(h));
		}
		trec_rehash(&l->r[i]);
	}
}

static inline int tlog_parse_cb(void *ud, const struct audit_kv *kv, size_t n)
{
	struct tlog *l = ud;
	struct trec r = { 0 };

	for (size_t i = 0; i < n; i++) {
		char name[300];
		struct audit_kv seal[4];

		/* the four fields MAS_SEAL carries are handled as the logical fields they are */
		if (kv[i].name_len == 8 && memcmp(kv[i].name, AUDIT_SEAL_FIELD, 8) == 0 &&
		    audit_seal_split(kv[i].value, kv[i].value_len, seal) == 0) {
			for (int k = 0; k < 4; k++)
				trec_set(&r, seal[k].name, seal[k].value, seal[k].value_len);
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)kv[i].name_len, kv[i].name);
		/* a name may repeat in the journal; keep every copy */
		r.f = realloc(r.f, (r.n + 1) * sizeof(*r.f));
		r.f[r.n].name = strdup(name);
		r.f[r.n].val = malloc(kv[i].value_len + 1);
		memcpy(r.f[r.n].val, kv[i].value, kv[i].value_len);
		r.f[r.n].val[kv[i].value_len] = 0;
		r.f[r.n].vlen = kv[i].value_len;
		r.n++;
	}
	tlog_push(l, r);
	return 0;
}

/* The record as journald holds it: MAS_SEQ, MAS_PREV, MAS_TIME, MAS_HASH packed in MAS_SEAL. */
static inline struct trec trec_wire(const struct trec *r)
{
	static const char *const packed[4] = { "MAS_SEQ", "MAS_PREV", "MAS_TIME", "MAS_HASH" };
	struct trec w = { 0 };
	char seal[256] = "";
	bool all = true;

	for (int k = 0; k < 4; k++)
		all = all && trec_get(r, packed[k]);
	for (size_t i = 0; i < r->n; i++) {
		bool skip = false;

		for (int k = 0; k < 4 && all; k++)
			skip = skip || strcmp(r->f[i].name, packed[k]) == 0;
		if (!skip)
			trec_set(&w, r->f[i].name, r->f[i].val, r->f[i].vlen);
	}
	if (all) {
		snprintf(seal, sizeof(seal), "%s %s %s %s", trec_get(r, "MAS_SEQ") ?: "",
			 trec_get(r, "MAS_PREV") ?: "", trec_get(r, "MAS_TIME") ?: "",
			 trec_get(r, "MAS_HASH") ?: "");
		trec_set(&w, AUDIT_SEAL_FIELD, seal, strlen(seal));
	}
	return w;
}

static inline int tlog_write(FILE *f, const struct tlog *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct trec w = trec_wire(&l->r[i]);
		struct audit_kv *kv = trec_kv(&w);
		int r = audit_export_write(f, kv, w.n);

		free(kv);
		trec_free(&w);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Re-sign checkpoint seq with key k (as an attacker holding k would), then rechain. */
static inline int tamper_resign(struct tlog *l, unsigned long long seq, const struct audit_key *k)
{
	long i = tlog_find(l, seq);
	struct trec *r;
	uint8_t chain[AUDIT_CHAIN_ID_LEN], prev[AUDIT_HASH_LEN], pub[AUDIT_PUB_LEN];
	uint8_t id[AUDIT_KEY_ID_LEN], msg[AUDIT_CKPT_MSG_LEN], sig[AUDIT_SIG_LEN];
	char hex[2 * AUDIT_SIG_LEN + 1];
	const char *c, *p, *t, *reason;

	if (i < 0)
		return -ENOENT;
	r = &l->r[i];
	c = trec_get(r, "MAS_CHAIN_ID");
	p = trec_get(r, "MAS_PREV");
	t = trec_get(r, "MAS_TIME");
	reason = trec_get(r, "MAS_REASON");
	if (!c || !p || !t || !reason || !trec_get(r, "MAS_SIG"))
		return -EINVAL;
	audit_unhex(c, strlen(c), chain, sizeof(chain));
	audit_unhex(p, strlen(p), prev, sizeof(prev));
	audit_key_pub(k, pub);
	audit_key_id(pub, id);
	audit_ckpt_message(chain, seq, prev, strtoull(t, NULL, 10), id, reason, msg);
	audit_key_sign(k, msg, sizeof(msg), sig);
	audit_hex(id, sizeof(id), hex);
	trec_set(r, "MAS_KEY_ID", hex, strlen(hex));
	audit_hex(sig, sizeof(sig), hex);
	trec_set(r, "MAS_SIG", hex, strlen(hex));
	tlog_rechain(l, (size_t)i);
	return 0;
}

/* Replace the next key in key-change record seq with k's, certified by k itself, rechain. */
static inline int tamper_foreign_key(struct tlog *l, unsigned long long seq,
				     const struct audit_key *k)
{
	long i = tlog_find(l, seq);
	struct trec *r;
	uint8_t chain[AUDIT_CHAIN_ID_LEN], pub[AUDIT_PUB_LEN], msg[AUDIT_CERT_MSG_LEN];
	uint8_t sig[AUDIT_SIG_LEN];
	char hex[2 * AUDIT_SIG_LEN + 1];
	const char *c, *idx;

	if (i < 0)
		return -ENOENT;
	r = &l->r[i];
	c = trec_get(r, "MAS_CHAIN_ID");
	idx = trec_get(r, "MAS_KEY_INDEX");
	if (!c || !idx || !trec_get(r, "MAS_NEXT_KEY"))
		return -EINVAL;
	audit_unhex(c, strlen(c), chain, sizeof(chain));
	audit_key_pub(k, pub);
	audit_cert_message(chain, (uint32_t)strtoul(idx, NULL, 10), pub, msg);
	audit_key_sign(k, msg, sizeof(msg), sig);
	audit_hex(pub, sizeof(pub), hex);
	trec_set(r, "MAS_NEXT_KEY", hex, strlen(hex));
	audit_hex(sig, sizeof(sig), hex);
	trec_set(r, "MAS_KEY_SIG", hex, strlen(hex));
	tlog_rechain(l, (size_t)i);
	return 0;
}

/* The simple ones. Each returns 0 or -ENOENT when seq is not in the log. */
static inline int tamper_apply(struct tlog *l, const char *op, unsigned long long seq)
{
	long i = tlog_find(l, seq);

	if (i < 0)
		return -ENOENT;
	if (strcmp(op, "modify") == 0) {
		const char *m = trec_get(&l->r[i], "MESSAGE");
		char buf[4096];

		snprintf(buf, sizeof(buf), "%s (edited)", m ? m : "");
		trec_set(&l->r[i], "MESSAGE", buf, strlen(buf));
	} else if (strcmp(op, "delete") == 0) {
		tlog_remove(l, (size_t)i);
	} else if (strcmp(op, "duplicate") == 0) {
		tlog_insert(l, (size_t)i + 1, trec_dup(&l->r[i]));
	} else if (strcmp(op, "swap") == 0) {
		long j = tlog_find(l, seq + 1);
		struct trec t;

		if (j < 0)
			return -ENOENT;
		t = l->r[i];
		l->r[i] = l->r[j];
		l->r[j] = t;
	} else if (strcmp(op, "inject") == 0) {
		/* the same record again, sent by another process, later */
		struct trec d = trec_dup(&l->r[i]);

		trec_set(&d, "_PID", "999999", 6);
		tlog_push(l, d);
	} else if (strcmp(op, "truncate") == 0) {
		while (l->n > (size_t)i)
			tlog_remove(l, l->n - 1);
	} else {
		return -EINVAL;
	}
	return 0;
}

#endif
