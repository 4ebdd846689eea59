/* SPDX-License-Identifier: GPL-2.0-only */
/* The audit trail's verifier: parses masd's records (journal API or export format), replays the
 * hash chain, checks each checkpoint against the key of its own period, starting from the pinned
 * first public key only, and names every finding with its first bad sequence number. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-journal.h>

#include "audit_key.h"
#include "audit_verify.h"
#include "msgid.h"

#define EXPORT_LINE_MAX (1024 * 1024)
#define EXPORT_BINARY_MAX (64ULL * 1024 * 1024)
#define EXPORT_FIELDS_MAX 4096
#define EXPORT_NAME_MAX 256
#define KEYS_MAX (16 * 1024 * 1024)

/* ---- one entry ---- */

static bool kv_is(const struct audit_kv *kv, const char *name)
{
	size_t l = strlen(name);

	return kv->name_len == l && memcmp(kv->name, name, l) == 0;
}

#define KV_IS(kv, lit) \
	((kv)->name_len == sizeof(lit) - 1 && memcmp((kv)->name, lit, sizeof(lit) - 1) == 0)

static bool val_is(const struct audit_kv *kv, const char *v)
{
	size_t l = strlen(v);

	return kv->value_len == l && memcmp(kv->value, v, l) == 0;
}

static int parse_i64(const struct audit_kv *kv, int64_t *ret)
{
	uint64_t u;

	if (audit_parse_u64(kv->value, kv->value_len, &u) < 0 || u > INT64_MAX)
		return -EINVAL;
	*ret = (int64_t)u;
	return 0;
}

enum {
	F_CHAIN,
	F_SEQ,
	F_PREV,
	F_HASH,
	F_KEY_ID,
	F_TIME,
	F_SIG,
	F_REASON,
	F_INTERVAL,
	F_NEXT,
	F_KEY_INDEX,
	F_KEY_SIG,
	F_PID,
	F_FIRST,
	F_KEYS,
	F_MSGID,
	_F_MAX,
};

static const char *const integrity_names[_F_MAX] = {
	[F_CHAIN] = "MAS_CHAIN_ID",
	[F_SEQ] = "MAS_SEQ",
	[F_PREV] = "MAS_PREV",
	[F_HASH] = "MAS_HASH",
	[F_KEY_ID] = "MAS_KEY_ID",
	[F_TIME] = "MAS_TIME",
	[F_SIG] = "MAS_SIG",
	[F_REASON] = "MAS_REASON",
	[F_INTERVAL] = "MAS_INTERVAL",
	[F_NEXT] = "MAS_NEXT_KEY",
	[F_KEY_INDEX] = "MAS_KEY_INDEX",
	[F_KEY_SIG] = "MAS_KEY_SIG",
	[F_PID] = "MAS_PID",
	[F_FIRST] = "MAS_FIRST_KEY",
	[F_KEYS] = "MAS_KEYS",
	[F_MSGID] = "MESSAGE_ID",
};

void audit_entry_clear(struct audit_entry *e)
{
	free(e->keys);
	e->keys = NULL;
}

static int entry_parse(const struct audit_kv *kv, size_t n, struct audit_entry *e, bool *ret_ours,
		       bool seal_bad);

/* MAS_SEAL carries four logical fields; the record is parsed and hashed as if they were apart. */
int audit_entry_parse(const struct audit_kv *kv, size_t n, struct audit_entry *e, bool *ret_ours)
{
	struct audit_kv *x;
	size_t m = 0, seals = 0;
	bool bad = false;
	int r;

	for (size_t i = 0; i < n; i++)
		seals += kv_is(&kv[i], AUDIT_SEAL_FIELD);
	if (seals == 0)
		return entry_parse(kv, n, e, ret_ours, false);
	x = calloc(n + 4 * seals, sizeof(*x));
	if (!x)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!kv_is(&kv[i], AUDIT_SEAL_FIELD)) {
			x[m++] = kv[i];
			continue;
		}
		if (audit_seal_split(kv[i].value, kv[i].value_len, &x[m]) < 0) {
			bad = true;
			x[m++] = kv[i]; /* keep it hashed as it is: the hash cannot match */
			continue;
		}
		m += 4;
	}
	r = entry_parse(x, m, e, ret_ours, bad || seals > 1);
	free(x);
	return r;
}

static int entry_parse(const struct audit_kv *kv, size_t n, struct audit_entry *e, bool *ret_ours,
		       bool seal_bad)
{
	const struct audit_kv *f[_F_MAX] = { 0 };
	bool ident = false, mas = false, dup = false;
	uint64_t u;
	int r;

	memset(e, 0, sizeof(*e));
	e->jpid = e->juid = e->mas_pid = -1;
	static size_t lens[_F_MAX];

	if (!lens[0])
		for (int j = 0; j < _F_MAX; j++)
			lens[j] = strlen(integrity_names[j]);
	for (size_t i = 0; i < n; i++) {
		const struct audit_kv *k = &kv[i];

		if (k->name_len > 0 && k->name[0] == '_') {
			if (KV_IS(k, "_PID"))
				(void)parse_i64(k, &e->jpid);
			else if (KV_IS(k, "_UID"))
				(void)parse_i64(k, &e->juid);
			else if (KV_IS(k, "__REALTIME_TIMESTAMP"))
				(void)audit_parse_u64(k->value, k->value_len, &e->realtime_usec);
			continue;
		}
		if (KV_IS(k, "SYSLOG_IDENTIFIER")) {
			ident |= val_is(k, "masd");
			continue;
		}
		if (k->name_len > 4 && memcmp(k->name, "MAS_", 4) == 0)
			mas = true;
		else if (!KV_IS(k, "MESSAGE_ID"))
			continue;
		for (int j = 0; j < _F_MAX; j++) {
			if (k->name_len == lens[j] &&
			    memcmp(k->name, integrity_names[j], lens[j]) == 0) {
				dup |= f[j] != NULL;
				f[j] = k;
				break;
			}
		}
	}
	*ret_ours = ident && mas;
	if (!*ret_ours)
		return 0;
	r = audit_record_hash(kv, n, e->computed);
	if (r < 0)
		return r;
	e->malformed = dup || seal_bad;
	if (f[F_MSGID]) {
		if (val_is(f[F_MSGID], MAS_MSGID_AUDIT_CHECKPOINT))
			e->type = AUDIT_REC_CHECKPOINT;
		else if (val_is(f[F_MSGID], MAS_MSGID_AUDIT_KEY_CHANGE))
			e->type = AUDIT_REC_KEY_CHANGE;
		else if (val_is(f[F_MSGID], MAS_MSGID_AUDIT_START))
			e->type = AUDIT_REC_START;
		else if (val_is(f[F_MSGID], MAS_MSGID_AUDIT_NEW_CHAIN))
			e->type = AUDIT_REC_NEW_CHAIN;
	}
	if (!f[F_CHAIN])
		return 0;
	e->chained = true;
	if (audit_unhex(f[F_CHAIN]->value, f[F_CHAIN]->value_len, e->chain, AUDIT_CHAIN_ID_LEN) <
		    0 ||
	    !f[F_SEQ] || audit_parse_u64(f[F_SEQ]->value, f[F_SEQ]->value_len, &e->seq) < 0 ||
	    !f[F_PREV] ||
	    audit_unhex(f[F_PREV]->value, f[F_PREV]->value_len, e->prev, AUDIT_HASH_LEN) < 0 ||
	    !f[F_HASH] ||
	    audit_unhex(f[F_HASH]->value, f[F_HASH]->value_len, e->hash, AUDIT_HASH_LEN) < 0 ||
	    !f[F_KEY_ID] ||
	    audit_unhex(f[F_KEY_ID]->value, f[F_KEY_ID]->value_len, e->key_id, AUDIT_KEY_ID_LEN) <
		    0 ||
	    !f[F_TIME] ||
	    audit_parse_u64(f[F_TIME]->value, f[F_TIME]->value_len, &e->time_usec) < 0)
		e->malformed = true;
	if (f[F_REASON] && f[F_REASON]->value_len < sizeof(e->reason)) {
		memcpy(e->reason, f[F_REASON]->value, f[F_REASON]->value_len);
		e->reason[f[F_REASON]->value_len] = 0;
	}
	if (f[F_PID])
		(void)parse_i64(f[F_PID], &e->mas_pid);
	switch (e->type) {
	case AUDIT_REC_CHECKPOINT:
		e->has_sig = f[F_SIG] && audit_unhex(f[F_SIG]->value, f[F_SIG]->value_len, e->sig,
						     AUDIT_SIG_LEN) == 0;
		if (f[F_INTERVAL] &&
		    audit_parse_u64(f[F_INTERVAL]->value, f[F_INTERVAL]->value_len, &u) == 0)
			e->interval = u;
		if (!e->has_sig || !f[F_REASON] || f[F_REASON]->value_len >= sizeof(e->reason))
			e->malformed = true;
		break;
	case AUDIT_REC_KEY_CHANGE:
		e->has_next = f[F_NEXT] && f[F_KEY_SIG] && f[F_KEY_INDEX] &&
			      audit_unhex(f[F_NEXT]->value, f[F_NEXT]->value_len, e->next_pub,
					  AUDIT_PUB_LEN) == 0 &&
			      audit_unhex(f[F_KEY_SIG]->value, f[F_KEY_SIG]->value_len, e->key_sig,
					  AUDIT_SIG_LEN) == 0 &&
			      audit_parse_u64(f[F_KEY_INDEX]->value, f[F_KEY_INDEX]->value_len,
					      &u) == 0 &&
			      u <= UINT32_MAX;
		if (e->has_next)
			e->key_index = (uint32_t)u;
		else
			e->malformed = true;
		break;
	case AUDIT_REC_NEW_CHAIN:
		e->has_first = f[F_FIRST] && audit_unhex(f[F_FIRST]->value, f[F_FIRST]->value_len,
							 e->first_pub, AUDIT_PUB_LEN) == 0;
		break;
	case AUDIT_REC_START:
		if (f[F_KEYS] && f[F_KEYS]->value_len < KEYS_MAX) {
			e->keys = strndup(f[F_KEYS]->value, f[F_KEYS]->value_len);
			if (!e->keys)
				return -ENOMEM;
		}
		break;
	default:
		break;
	}
	return 0;
}

int audit_journal_entry(sd_journal *j, struct audit_entry *e, bool *ret_ours)
{
	/* Reused from entry to entry: one verify reads millions of them. */
	static __thread size_t *off, cap, bcap, kcap;
	static __thread char *buf;
	static __thread struct audit_kv *kv;
	size_t n = 0, blen = 0;
	const void *d;
	size_t l;
	uint64_t rt = 0;
	int r;

	/* The data pointers are only valid until the next enumerate call: copy each field. */
	sd_journal_restart_data(j);
	while ((r = sd_journal_enumerate_data(j, &d, &l)) > 0) {
		if (n == cap) {
			size_t *p = realloc(off, (cap ? 2 * cap : 64) * sizeof(*off));

			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			off = p;
			cap = cap ? 2 * cap : 64;
		}
		if (blen + l + 1 > bcap) {
			size_t nc = bcap ? bcap : 4096;
			char *p;

			while (nc < blen + l + 1)
				nc *= 2;
			p = realloc(buf, nc);
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			buf = p;
			bcap = nc;
		}
		memcpy(buf + blen, d, l);
		off[n++] = blen;
		blen += l;
		buf[blen++] = 0; /* a separator, not part of any field */
	}
	if (r < 0)
		goto out;
	if (kcap < n || !kv) {
		struct audit_kv *p = realloc(kv, (n ? n : 1) * sizeof(*kv));

		if (!p) {
			r = -ENOMEM;
			goto out;
		}
		kv = p;
		kcap = n ? n : 1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *s = buf + off[i];
		size_t fl = (i + 1 < n ? off[i + 1] : blen) - off[i] - 1;
		const char *eq = memchr(s, '=', fl);

		if (!eq)
			eq = s + fl; /* no value: a name alone */
		kv[i].name = s;
		kv[i].name_len = (size_t)(eq - s);
		kv[i].value = eq < s + fl ? eq + 1 : eq;
		kv[i].value_len = eq < s + fl ? fl - kv[i].name_len - 1 : 0;
	}
	r = audit_entry_parse(kv, n, e, ret_ours);
	if (r == 0 && sd_journal_get_realtime_usec(j, &rt) >= 0)
		e->realtime_usec = rt;
out:
	return r;
}

/* ---- export format ---- */

static bool export_name_valid(const char *s, size_t l)
{
	if (l == 0 || l > EXPORT_NAME_MAX)
		return false;
	for (size_t i = 0; i < l; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

struct arena {
	char *buf;
	size_t len, cap;
	size_t name_off[EXPORT_FIELDS_MAX], name_len[EXPORT_FIELDS_MAX];
	size_t val_off[EXPORT_FIELDS_MAX], val_len[EXPORT_FIELDS_MAX];
	size_t n;
};

static int arena_put(struct arena *a, const void *p, size_t l, size_t *ret_off)
{
	if (a->len + l + 1 > a->cap) {
		size_t nc = a->cap ? a->cap : 4096;
		char *q;

		while (nc < a->len + l + 1)
			nc *= 2;
		q = realloc(a->buf, nc);
		if (!q)
			return -ENOMEM;
		a->buf = q;
		a->cap = nc;
	}
	if (l)
		memcpy(a->buf + a->len, p, l);
	*ret_off = a->len;
	a->len += l;
	a->buf[a->len++] = 0;
	return 0;
}

static int arena_deliver(struct arena *a, audit_export_cb cb, void *ud)
{
	struct audit_kv *kv = calloc(a->n ? a->n : 1, sizeof(*kv));
	int r;

	if (!kv)
		return -ENOMEM;
	for (size_t i = 0; i < a->n; i++)
		kv[i] = (struct audit_kv){ a->buf + a->name_off[i], a->name_len[i],
					   a->buf + a->val_off[i], a->val_len[i] };
	r = cb(ud, kv, a->n);
	free(kv);
	a->n = 0;
	a->len = 0;
	return r;
}

int audit_export_parse(FILE *f, audit_export_cb cb, void *userdata, uint64_t *ret_line)
{
	struct arena *a = calloc(1, sizeof(*a));
	char *line = NULL;
	size_t lcap = 0;
	uint64_t lineno = 0;
	int r = 0;

	if (!a)
		return -ENOMEM;
	for (;;) {
		ssize_t l;
		const char *eq;
		size_t no, vo;

		errno = 0;
		l = getline(&line, &lcap, f);
		if (l < 0) {
			if (errno && errno != EINVAL)
				r = -errno;
			else if (a->n > 0)
				r = -ENODATA; /* the last entry has no end: the input was cut */
			break;
		}
		lineno++;
		if (l > EXPORT_LINE_MAX) {
			r = -E2BIG;
			break;
		}
		if (l == 1 && line[0] == '\n') {
			if (a->n > 0) {
				r = arena_deliver(a, cb, userdata);
				if (r)
					break;
			}
			continue;
		}
		if (line[l - 1] != '\n') {
			r = -ENODATA;
			break;
		}
		l--;
		if (a->n >= EXPORT_FIELDS_MAX) {
			r = -E2BIG;
			break;
		}
		eq = memchr(line, '=', (size_t)l);
		if (eq) {
			size_t nl = (size_t)(eq - line);

			if (!export_name_valid(line, nl)) {
				r = -EBADMSG;
				break;
			}
			if ((r = arena_put(a, line, nl, &no)) < 0 ||
			    (r = arena_put(a, eq + 1, (size_t)l - nl - 1, &vo)) < 0)
				break;
			a->name_off[a->n] = no;
			a->name_len[a->n] = nl;
			a->val_off[a->n] = vo;
			a->val_len[a->n] = (size_t)l - nl - 1;
			a->n++;
		} else {
			uint8_t le[8];
			uint64_t vl = 0;
			int c;

			if (!export_name_valid(line, (size_t)l)) {
				r = -EBADMSG;
				break;
			}
			if ((r = arena_put(a, line, (size_t)l, &no)) < 0)
				break;
			if (fread(le, 1, 8, f) != 8) {
				r = -ENODATA;
				break;
			}
			for (int i = 7; i >= 0; i--)
				vl = vl << 8 | le[i];
			if (vl > EXPORT_BINARY_MAX) {
				r = -E2BIG;
				break;
			}
			if (a->len + vl + 1 > a->cap) {
				size_t nc = a->cap ? a->cap : 4096;
				char *q;

				while (nc < a->len + vl + 1)
					nc *= 2;
				q = realloc(a->buf, nc);
				if (!q) {
					r = -ENOMEM;
					break;
				}
				a->buf = q;
				a->cap = nc;
			}
			if (fread(a->buf + a->len, 1, vl, f) != vl) {
				r = -ENODATA;
				break;
			}
			vo = a->len;
			a->len += vl;
			a->buf[a->len++] = 0;
			c = fgetc(f);
			if (c == EOF) {
				r = -ENODATA;
				break;
			}
			if (c != '\n') {
				r = -EBADMSG;
				break;
			}
			a->name_off[a->n] = no;
			a->name_len[a->n] = (size_t)l;
			a->val_off[a->n] = vo;
			a->val_len[a->n] = vl;
			a->n++;
			/* lines are counted for errors only; a binary field spans one "line" */
		}
	}
	if (ret_line)
		*ret_line = lineno;
	free(line);
	free(a->buf);
	free(a);
	return r;
}

int audit_export_write(FILE *f, const struct audit_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const unsigned char *v = kv[i].value;
		bool binary = false;

		for (size_t k = 0; k < kv[i].value_len && !binary; k++)
			binary = v[k] < 0x20 && v[k] != '\t';
		if (!binary) {
			if (fprintf(f, "%.*s=", (int)kv[i].name_len, kv[i].name) < 0 ||
			    fwrite(v, 1, kv[i].value_len, f) != kv[i].value_len ||
			    fputc('\n', f) < 0)
				return -EIO;
		} else {
			uint8_t le[8];
			uint64_t vl = kv[i].value_len;

			for (int k = 0; k < 8; k++)
				le[k] = (uint8_t)(vl >> (8 * k));
			if (fprintf(f, "%.*s\n", (int)kv[i].name_len, kv[i].name) < 0 ||
			    fwrite(le, 1, 8, f) != 8 || fwrite(v, 1, vl, f) != vl ||
			    fputc('\n', f) < 0)
				return -EIO;
		}
	}
	return fputc('\n', f) < 0 ? -EIO : 0;
}

/* ---- the verifier ---- */

struct audit_verifier {
	struct audit_verify_options o;
	struct audit_entry *e;
	size_t n, cap, pos;
	bool input_truncated;
};

int audit_verifier_new(const struct audit_verify_options *o, struct audit_verifier **ret)
{
	struct audit_verifier *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->o = *o;
	*ret = v;
	return 0;
}

void audit_verifier_free(struct audit_verifier *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		audit_entry_clear(&v->e[i]);
	free(v->e);
	free(v);
}

static int verifier_push(struct audit_verifier *v, struct audit_entry *e)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? 2 * v->cap : 1024;
		struct audit_entry *p = realloc(v->e, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		v->e = p;
		v->cap = nc;
	}
	e->pos = v->pos++;
	v->e[v->n++] = *e;
	return 0;
}

int audit_verifier_add(struct audit_verifier *v, const struct audit_kv *kv, size_t n)
{
	struct audit_entry e;
	bool ours;
	int r = audit_entry_parse(kv, n, &e, &ours);

	if (r < 0)
		return r;
	if (!ours)
		return 0;
	r = verifier_push(v, &e);
	if (r < 0)
		audit_entry_clear(&e);
	return r;
}

void audit_verifier_input_truncated(struct audit_verifier *v)
{
	v->input_truncated = true;
}

static int export_cb(void *ud, const struct audit_kv *kv, size_t n)
{
	return audit_verifier_add(ud, kv, n);
}

int audit_verifier_add_export(struct audit_verifier *v, FILE *f, uint64_t *ret_line)
{
	int r = audit_export_parse(f, export_cb, v, ret_line);

	if (r == -ENODATA) {
		v->input_truncated = true;
		r = 0;
	}
	return r;
}

int audit_verifier_add_journal(struct audit_verifier *v, const char *dir)
{
	sd_journal *j = NULL;
	int r;

	r = dir ? sd_journal_open_directory(&j, dir, 0) :
		  sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
	if (r < 0)
		return r;
	(void)sd_journal_set_data_threshold(j, 0);
	r = sd_journal_add_match(j, "SYSLOG_IDENTIFIER=masd", 0);
	if (r < 0)
		goto out;
	while ((r = sd_journal_next(j)) > 0) {
		struct audit_entry e;
		bool ours;

		r = audit_journal_entry(j, &e, &ours);
		if (r < 0)
			goto out;
		if (!ours)
			continue;
		r = verifier_push(v, &e);
		if (r < 0) {
			audit_entry_clear(&e);
			goto out;
		}
	}
out:
	sd_journal_close(j);
	return r;
}

/* ---- analysis ---- */

struct ctx {
	struct audit_verifier *v;
	struct audit_report *rep;
	size_t cap;
	int err;
};

static void add_finding(struct ctx *c, enum audit_finding_kind k, bool has_seq, uint64_t seq,
			uint64_t count, uint64_t t, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

static void add_finding(struct ctx *c, enum audit_finding_kind k, bool has_seq, uint64_t seq,
			uint64_t count, uint64_t t, const char *fmt, ...)
{
	struct audit_report *r = c->rep;
	struct audit_finding *f;
	va_list ap;

	if (r->n_findings == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 16;
		struct audit_finding *p = realloc(r->findings, nc * sizeof(*p));

		if (!p) {
			c->err = -ENOMEM;
			return;
		}
		r->findings = p;
		c->cap = nc;
	}
	f = &r->findings[r->n_findings++];
	memset(f, 0, sizeof(*f));
	f->kind = k;
	f->has_seq = has_seq;
	f->seq = seq;
	f->count = count;
	f->time_usec = t;
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
}

static uint64_t etime(const struct audit_entry *e)
{
	return e->time_usec ? e->time_usec : e->realtime_usec;
}

static bool hash_ok(const struct audit_entry *e)
{
	return !e->malformed && memcmp(e->hash, e->computed, AUDIT_HASH_LEN) == 0;
}

static int cmp_seq(const void *x, const void *y)
{
	const struct audit_entry *a = *(const struct audit_entry *const *)x;
	const struct audit_entry *b = *(const struct audit_entry *const *)y;

	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int cmp_finding(const void *x, const void *y)
{
	const struct audit_finding *a = x, *b = y;

	if (a->has_seq != b->has_seq)
		return a->has_seq ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return (int)a->kind - (int)b->kind;
}

/* The signing keys, as far as the verifier has followed them from the pinned one. */
struct keys {
	bool known;
	uint8_t cur[AUDIT_PUB_LEN];
	uint8_t cur_id[AUDIT_KEY_ID_LEN];
	uint32_t index;
	uint8_t (*retired)[AUDIT_PUB_LEN];
	size_t n_retired;
};

static int keys_advance(struct keys *k, const uint8_t next[AUDIT_PUB_LEN], uint32_t index)
{
	if (k->known) {
		uint8_t(*p)[AUDIT_PUB_LEN] =
			realloc(k->retired, (k->n_retired + 1) * sizeof(*k->retired));
		if (!p)
			return -ENOMEM;
		k->retired = p;
		memcpy(k->retired[k->n_retired++], k->cur, AUDIT_PUB_LEN);
	}
	memcpy(k->cur, next, AUDIT_PUB_LEN);
	audit_key_id(next, k->cur_id);
	k->index = index;
	k->known = true;
	return 0;
}

/* MAS_KEYS: "pub0,pub1:sig1,...", each key certified by the one before, pub0 the pinned key.
 * Returns the number of keys, or -EBADMSG when the history does not hold. */
static int keys_history(const char *s, const uint8_t chain[AUDIT_CHAIN_ID_LEN],
			const uint8_t pinned[AUDIT_PUB_LEN], uint8_t (**ret)[AUDIT_PUB_LEN])
{
	uint8_t(*list)[AUDIT_PUB_LEN] = NULL;
	size_t n = 0;
	const char *p = s;

	while (p && *p) {
		const char *end = strchr(p, ','), *colon;
		size_t l = end ? (size_t)(end - p) : strlen(p);
		uint8_t pub[AUDIT_PUB_LEN], sig[AUDIT_SIG_LEN], msg[AUDIT_CERT_MSG_LEN];
		void *q;

		colon = memchr(p, ':', l);
		if (n == 0) {
			if (colon || audit_unhex(p, l, pub, AUDIT_PUB_LEN) < 0 ||
			    memcmp(pub, pinned, AUDIT_PUB_LEN) != 0)
				goto bad;
		} else {
			if (!colon || audit_unhex(p, (size_t)(colon - p), pub, AUDIT_PUB_LEN) < 0 ||
			    audit_unhex(colon + 1, l - (size_t)(colon - p) - 1, sig,
					AUDIT_SIG_LEN) < 0)
				goto bad;
			audit_cert_message(chain, (uint32_t)n, pub, msg);
			if (audit_sig_verify(list[n - 1], msg, sizeof(msg), sig) < 0)
				goto bad;
		}
		if (n >= 1000000)
			goto bad;
		q = realloc(list, (n + 1) * sizeof(*list));
		if (!q) {
			free(list);
			return -ENOMEM;
		}
		list = q;
		memcpy(list[n++], pub, AUDIT_PUB_LEN);
		p = end ? end + 1 : NULL;
	}
	if (n == 0)
		goto bad;
	*ret = list;
	return (int)n;
bad:
	free(list);
	return -EBADMSG;
}

static bool is_trusted_chain(const struct audit_entry *e, const uint8_t pinned[AUDIT_PUB_LEN])
{
	char hex[2 * AUDIT_PUB_LEN + 1];

	if (!e->chained || e->malformed || !hash_ok(e))
		return false;
	if (e->type == AUDIT_REC_NEW_CHAIN && e->has_first && e->seq == 0)
		return memcmp(e->first_pub, pinned, AUDIT_PUB_LEN) == 0;
	if (e->type == AUDIT_REC_START && e->keys) {
		audit_hex(pinned, AUDIT_PUB_LEN, hex);
		return strncmp(e->keys, hex, 2 * AUDIT_PUB_LEN) == 0;
	}
	return false;
}

static void check_checkpoint(struct ctx *c, struct keys *k, const struct audit_entry *e,
			     uint64_t *sealed, bool *has_sealed, uint64_t *unverifiable)
{
	uint8_t msg[AUDIT_CKPT_MSG_LEN];

	if (!k->known) {
		(*unverifiable)++;
		return;
	}
	audit_ckpt_message(e->chain, e->seq, e->prev, e->time_usec, e->key_id, e->reason, msg);
	if (memcmp(e->key_id, k->cur_id, AUDIT_KEY_ID_LEN) == 0 &&
	    audit_sig_verify(k->cur, msg, sizeof(msg), e->sig) == 0) {
		*sealed = e->seq;
		*has_sealed = true;
		return;
	}
	for (size_t i = 0; i < k->n_retired; i++) {
		uint8_t id[AUDIT_KEY_ID_LEN];

		audit_key_id(k->retired[i], id);
		if (memcmp(id, e->key_id, AUDIT_KEY_ID_LEN) == 0 &&
		    audit_sig_verify(k->retired[i], msg, sizeof(msg), e->sig) == 0) {
			add_finding(c, AUDIT_F_RETIRED_KEY, true, e->seq, 1, etime(e),
				    "checkpoint signed by retired key %zu; key %u was in force", i,
				    k->index);
			return;
		}
	}
	add_finding(c, AUDIT_F_FORGED_CHECKPOINT, true, e->seq, 1, etime(e),
		    "checkpoint signature does not verify with key %u of its period", k->index);
}

static void check_key_change(struct ctx *c, struct keys *k, const struct audit_entry *e)
{
	uint8_t msg[AUDIT_CERT_MSG_LEN];

	if (!k->known)
		return;
	audit_cert_message(e->chain, e->key_index, e->next_pub, msg);
	if (e->key_index != k->index + 1 ||
	    audit_sig_verify(k->cur, msg, sizeof(msg), e->key_sig) < 0) {
		add_finding(c, AUDIT_F_FOREIGN_KEY, true, e->seq, 1, etime(e),
			    "key change to key %u is not signed by key %u in force", e->key_index,
			    k->index);
		return;
	}
	c->err = keys_advance(k, e->next_pub, e->key_index);
}

static void check_start(struct ctx *c, struct keys *k, const struct audit_entry *e)
{
	uint8_t(*list)[AUDIT_PUB_LEN] = NULL;
	int n;
	size_t at;

	if (!e->keys)
		return;
	n = keys_history(e->keys, e->chain, c->v->o.pinned, &list);
	if (n == -ENOMEM) {
		c->err = n;
		return;
	}
	if (n < 0) {
		add_finding(c, AUDIT_F_FOREIGN_KEY, true, e->seq, 1, etime(e),
			    "start record's key history does not lead from the pinned key");
		return;
	}
	if (!k->known) {
		/* the head was trimmed: the history re-establishes the keys */
		for (int i = 0; i < n; i++)
			c->err = c->err ?: keys_advance(k, list[i], (uint32_t)i);
	} else {
		at = (size_t)n;
		for (int i = 0; i < n; i++)
			if (memcmp(list[i], k->cur, AUDIT_PUB_LEN) == 0)
				at = (size_t)i;
		if (at == (size_t)n || at != k->index)
			add_finding(c, AUDIT_F_FOREIGN_KEY, true, e->seq, 1, etime(e),
				    "start record's key history does not hold key %u in force",
				    k->index);
		else /* a key changed on disk and the run ended before its record */
			for (size_t i = at + 1; i < (size_t)n; i++)
				c->err = c->err ?: keys_advance(k, list[i], (uint32_t)i);
	}
	free(list);
}

static uint64_t now_usec(const struct audit_verify_options *o)
{
	struct timespec ts;

	if (o->now_usec)
		return o->now_usec;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

int audit_verifier_finish(struct audit_verifier *v, struct audit_report **ret)
{
	struct audit_report *rep = calloc(1, sizeof(*rep));
	struct ctx c = { .v = v, .rep = rep };
	struct audit_entry **s = NULL, *trusted = NULL, *last = NULL, *prev = NULL;
	struct keys k = { 0 };
	int64_t *pids = NULL, uid = -1;
	size_t n_pids = 0, m = 0;
	uint64_t sealed = 0, unverifiable = 0, interval = 0, now = now_usec(&v->o);
	uint64_t max_seq = 0, grace = (v->o.grace_seconds ?: 2) * 1000000ULL, due;
	bool has_sealed = false, any_max = false;
	uint8_t chain[AUDIT_CHAIN_ID_LEN];

	if (!rep)
		return -ENOMEM;
	s = calloc(v->n ? v->n : 1, sizeof(*s));
	pids = calloc(v->n ? v->n : 1, sizeof(*pids));
	if (!s || !pids) {
		c.err = -ENOMEM;
		goto out;
	}

	/* Which chain: the one whose first record (or a start record's key history) carries the
	 * pinned key. Without one, the most recent chain is checked for consistency only. */
	for (size_t i = 0; i < v->n && !trusted; i++)
		if (is_trusted_chain(&v->e[i], v->o.pinned))
			trusted = &v->e[i];
	for (size_t i = v->n; !trusted && i-- > 0;)
		if (v->e[i].chained)
			trusted = &v->e[i];
	if (!trusted) {
		add_finding(&c, AUDIT_F_NO_CHAIN, false, 0, 0, 0,
			    "no chained audit record of masd in the input");
	} else {
		memcpy(chain, trusted->chain, AUDIT_CHAIN_ID_LEN);
		rep->has_chain = true;
		audit_hex(chain, AUDIT_CHAIN_ID_LEN, rep->chain);
		if (!is_trusted_chain(trusted, v->o.pinned))
			add_finding(&c, AUDIT_F_NO_CHAIN, false, 0, 0, 0,
				    "no record links chain %s to the pinned key", rep->chain);
	}

	/* Records of masd's identity outside the chain, and other chains. */
	for (size_t i = 0; i < v->n; i++) {
		struct audit_entry *e = &v->e[i];

		if (!e->chained) {
			add_finding(&c, AUDIT_F_INJECTED, false, 0, 1, etime(e),
				    "masd record without integrity fields (input position %zu)",
				    e->pos);
			continue;
		}
		if (!trusted || memcmp(e->chain, chain, AUDIT_CHAIN_ID_LEN) != 0) {
			size_t count = 0;
			bool seen = false;
			char hex[2 * AUDIT_CHAIN_ID_LEN + 1];

			for (size_t j = 0; j < i && !seen; j++)
				seen = v->e[j].chained &&
				       memcmp(v->e[j].chain, e->chain, AUDIT_CHAIN_ID_LEN) == 0;
			if (seen || !trusted)
				continue;
			for (size_t j = i; j < v->n; j++)
				count += v->e[j].chained &&
					 memcmp(v->e[j].chain, e->chain, AUDIT_CHAIN_ID_LEN) == 0;
			audit_hex(e->chain, AUDIT_CHAIN_ID_LEN, hex);
			{
				bool lost = e->type == AUDIT_REC_NEW_CHAIN &&
					    strcmp(e->reason, "state-lost") == 0;

				add_finding(&c, lost ? AUDIT_F_NEW_CHAIN : AUDIT_F_FOREIGN_CHAIN,
					    false, 0, count, etime(e),
					    "%zu records of chain %s that the pinned key does not "
					    "anchor%s",
					    count, hex,
					    lost ? " (masd lost its audit state and started it)" :
						   "");
			}
			continue;
		}
		s[m++] = e;
	}

	/* masd's own processes: the start records name them, journald vouches for them. */
	for (size_t i = 0; i < m; i++) {
		struct audit_entry *e = s[i];

		/* a start record whose hash fails is reported as modified; its MAS_PID still
		 * says which process the run was, so the run's records are not also "injected" */
		if ((e->type == AUDIT_REC_START || e->type == AUDIT_REC_NEW_CHAIN) &&
		    e->mas_pid >= 0 && (e->jpid < 0 || e->jpid == e->mas_pid)) {
			pids[n_pids++] = e->mas_pid;
			if (uid < 0)
				uid = e->juid;
		}
	}
	for (size_t i = 0; i < m; i++) {
		struct audit_entry *e = s[i];
		bool known = n_pids == 0 || e->jpid < 0;

		for (size_t j = 0; j < n_pids && !known; j++)
			known = pids[j] == e->jpid;
		if (!known || (uid >= 0 && e->juid >= 0 && e->juid != uid)) {
			add_finding(&c, AUDIT_F_INJECTED, true, e->seq, 1, etime(e),
				    "sent by _PID=%lld _UID=%lld, not by a masd run of this chain",
				    (long long)e->jpid, (long long)e->juid);
			s[i] = NULL;
		}
	}
	{
		size_t w = 0;

		for (size_t i = 0; i < m; i++)
			if (s[i])
				s[w++] = s[i];
		m = w;
	}

	/* Input order: a record that comes after a later one was moved. */
	for (size_t i = 0; i < m; i++) {
		struct audit_entry *e = s[i];

		if (any_max && e->seq < max_seq) {
			bool dup = false;

			for (size_t j = 0; j < i && !dup; j++)
				dup = s[j]->seq == e->seq;
			if (!dup)
				add_finding(&c, AUDIT_F_REORDERED, true, e->seq, 1, etime(e),
					    "appears after seq %llu", (unsigned long long)max_seq);
		}
		if (!any_max || e->seq > max_seq)
			max_seq = e->seq;
		any_max = true;
	}

	/* Sequence order: duplicates and forks, then the chain itself. */
	qsort(s, m, sizeof(*s), cmp_seq);
	{
		size_t w = 0;

		for (size_t i = 0; i < m; i++) {
			if (w > 0 && s[w - 1]->seq == s[i]->seq) {
				bool same =
					memcmp(s[w - 1]->hash, s[i]->hash, AUDIT_HASH_LEN) == 0 &&
					memcmp(s[w - 1]->computed, s[i]->computed,
					       AUDIT_HASH_LEN) == 0;

				add_finding(&c, same ? AUDIT_F_DUPLICATED : AUDIT_F_FORKED, true,
					    s[i]->seq, 1, etime(s[i]),
					    same ? "the same record appears again" :
						   "a second, different record claims this seq");
				continue;
			}
			s[w++] = s[i];
		}
		m = w;
	}
	/* Key 0 is the pinned key by definition: the chain's first record only repeats it. */
	if (m > 0 && s[0]->seq == 0 && is_trusted_chain(trusted, v->o.pinned))
		c.err = keys_advance(&k, v->o.pinned, 0);
	if (m > 0 && s[0]->seq != 0) {
		add_finding(&c, AUDIT_F_HEAD_TRIMMED, true, s[0]->seq, s[0]->seq, etime(s[0]),
			    "the chain's first %llu records are gone (journal retention?)",
			    (unsigned long long)s[0]->seq);
		if (v->o.retention_days &&
		    etime(s[0]) + (uint64_t)v->o.retention_days * 86400ULL * 1000000ULL > now)
			add_finding(&c, AUDIT_F_SHORT_HISTORY, true, 0, s[0]->seq, etime(s[0]),
				    "records 0..%llu are gone but the oldest left is younger than "
				    "retention_days=%u",
				    (unsigned long long)(s[0]->seq - 1), v->o.retention_days);
	}
	for (size_t i = 0; i < m && !c.err; i++) {
		struct audit_entry *e = s[i];
		bool ok = hash_ok(e);

		if (!ok)
			add_finding(&c, AUDIT_F_MODIFIED, true, e->seq, 1, etime(e),
				    e->malformed ? "integrity fields damaged" :
						   "content does not match its hash");
		if (prev && e->seq != prev->seq + 1) {
			add_finding(&c, AUDIT_F_DELETED, true, prev->seq + 1,
				    e->seq - prev->seq - 1, etime(prev),
				    "%llu records missing before seq %llu",
				    (unsigned long long)(e->seq - prev->seq - 1),
				    (unsigned long long)e->seq);
		} else if (prev && memcmp(e->prev, prev->hash, AUDIT_HASH_LEN) != 0 &&
			   hash_ok(prev)) {
			add_finding(
				&c, AUDIT_F_MODIFIED, true, prev->seq, 1, etime(prev),
				"seq %llu does not link to this record (rewritten and rehashed)",
				(unsigned long long)e->seq);
		} else if (!prev && e->seq == 0) {
			static const uint8_t zero[AUDIT_HASH_LEN];

			if (memcmp(e->prev, zero, AUDIT_HASH_LEN) != 0 && ok)
				add_finding(&c, AUDIT_F_MODIFIED, true, 0, 1, etime(e),
					    "the first record links to something before it");
		}
		rep->records++;
		if (ok) {
			switch (e->type) {
			case AUDIT_REC_CHECKPOINT:
				rep->checkpoints++;
				if (e->interval)
					interval = e->interval;
				check_checkpoint(&c, &k, e, &sealed, &has_sealed, &unverifiable);
				break;
			case AUDIT_REC_KEY_CHANGE:
				rep->key_changes++;
				check_key_change(&c, &k, e);
				break;
			case AUDIT_REC_START:
				rep->runs++;
				check_start(&c, &k, e);
				break;
			case AUDIT_REC_NEW_CHAIN:
				rep->runs++;
				break;
			default:
				break;
			}
		}
		prev = e;
		last = e;
	}
	if (c.err)
		goto out;
	if (unverifiable)
		add_finding(&c, AUDIT_F_HEAD_TRIMMED, false, 0, unverifiable, 0,
			    "%llu checkpoints before the first key history could not be checked",
			    (unsigned long long)unverifiable);

	/* The tail: what no signature covers yet, and whether the writer went quiet. */
	if (last) {
		bool clean_end = last->type == AUDIT_REC_CHECKPOINT && has_sealed &&
				 sealed == last->seq && strcmp(last->reason, "shutdown") == 0;
		uint64_t first_unsealed = has_sealed ? sealed + 1 : s[0]->seq;

		rep->first_seq = s[0]->seq;
		rep->last_seq = last->seq;
		rep->first_time = etime(s[0]);
		rep->last_time = etime(last);
		rep->sealed = has_sealed;
		rep->sealed_seq = sealed;
		bool cut;

		due = 2 * (interval ?: 5) * 1000000ULL + grace;
		cut = !clean_end && etime(last) + due < now;
		if (cut)
			add_finding(
				&c, AUDIT_F_TRUNCATED, true, last->seq + 1, 0, etime(last),
				"nothing after seq %llu and no clean shutdown; a heartbeat was due "
				"every %llus",
				(unsigned long long)last->seq, (unsigned long long)(interval ?: 5));
		if (!clean_end && first_unsealed <= last->seq) {
			struct audit_entry *fu = NULL;

			for (size_t i = 0; i < m && !fu; i++)
				if (s[i]->seq >= first_unsealed)
					fu = s[i];
			/* A stale tail is one that keeps growing unsealed: records arrive but no
			 * checkpoint does. When the whole tail went quiet, "truncated" says it. */
			if (fu && !cut && etime(fu) + due < now)
				add_finding(&c, AUDIT_F_STALE_TAIL, true, first_unsealed,
					    last->seq - first_unsealed + 1, etime(fu),
					    "%llu records never sealed, the oldest %llus old",
					    (unsigned long long)(last->seq - first_unsealed + 1),
					    (unsigned long long)((now - etime(fu)) / 1000000ULL));
			else if (fu)
				add_finding(&c, AUDIT_F_UNSEALED_TAIL, true, first_unsealed,
					    last->seq - first_unsealed + 1, etime(fu),
					    "%llu records not sealed yet, the oldest %llus old",
					    (unsigned long long)(last->seq - first_unsealed + 1),
					    (unsigned long long)(now > etime(fu) ?
									 (now - etime(fu)) /
										 1000000ULL :
									 0));
		}
	}
	if (v->input_truncated)
		add_finding(&c, AUDIT_F_TRUNCATED, last != NULL, last ? last->seq + 1 : 0, 0, 0,
			    "the input ends inside an entry");
	if (c.err)
		goto out;
	if (rep->n_findings)
		qsort(rep->findings, rep->n_findings, sizeof(*rep->findings), cmp_finding);
	for (size_t i = 0; i < rep->n_findings; i++) {
		const struct audit_finding *f = &rep->findings[i];

		if (!audit_finding_is_tampering(f->kind))
			continue;
		rep->tampered = true;
		if (f->has_seq && (!rep->has_first_bad || f->seq < rep->first_bad_seq)) {
			rep->first_bad_seq = f->seq;
			rep->has_first_bad = true;
		}
	}
out:
	free(k.retired);
	free(pids);
	free(s);
	if (c.err) {
		audit_report_free(rep);
		return c.err;
	}
	*ret = rep;
	return 0;
}

void audit_report_free(struct audit_report *r)
{
	if (!r)
		return;
	free(r->findings);
	free(r);
}

static const char *const finding_names[_AUDIT_F_MAX] = {
	[AUDIT_F_MODIFIED] = "modified",
	[AUDIT_F_DELETED] = "deleted",
	[AUDIT_F_DUPLICATED] = "duplicated",
	[AUDIT_F_FORKED] = "forked",
	[AUDIT_F_REORDERED] = "reordered",
	[AUDIT_F_INJECTED] = "injected",
	[AUDIT_F_FORGED_CHECKPOINT] = "forged-checkpoint",
	[AUDIT_F_RETIRED_KEY] = "retired-key",
	[AUDIT_F_FOREIGN_KEY] = "foreign-key",
	[AUDIT_F_FOREIGN_CHAIN] = "foreign-chain",
	[AUDIT_F_TRUNCATED] = "truncated",
	[AUDIT_F_STALE_TAIL] = "stale-tail",
	[AUDIT_F_SHORT_HISTORY] = "short-history",
	[AUDIT_F_NO_CHAIN] = "no-chain",
	[AUDIT_F_UNSEALED_TAIL] = "unsealed-tail",
	[AUDIT_F_HEAD_TRIMMED] = "head-trimmed",
	[AUDIT_F_NEW_CHAIN] = "new-chain",
};

const char *audit_finding_name(enum audit_finding_kind k)
{
	return k < _AUDIT_F_MAX ? finding_names[k] : "unknown";
}

bool audit_finding_is_tampering(enum audit_finding_kind k)
{
	return k != AUDIT_F_UNSEALED_TAIL && k != AUDIT_F_HEAD_TRIMMED;
}

static void fmt_time(uint64_t usec, char *buf, size_t len)
{
	time_t t = (time_t)(usec / 1000000ULL);
	struct tm tm;

	if (!usec || !gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "-");
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void audit_report_print(FILE *f, const struct audit_report *r, bool json)
{
	char t1[32], t2[32];

	if (json) {
		fprintf(f, "{\"chain\":");
		json_str(f, r->has_chain ? r->chain : "");
		fprintf(f,
			",\"records\":%llu,\"checkpoints\":%llu,\"key_changes\":%llu,\"runs\":%llu,"
			"\"first_seq\":%llu,\"last_seq\":%llu,",
			(unsigned long long)r->records, (unsigned long long)r->checkpoints,
			(unsigned long long)r->key_changes, (unsigned long long)r->runs,
			(unsigned long long)r->first_seq, (unsigned long long)r->last_seq);
		if (r->sealed)
			fprintf(f, "\"sealed_seq\":%llu,", (unsigned long long)r->sealed_seq);
		else
			fprintf(f, "\"sealed_seq\":null,");
		fmt_time(r->first_time, t1, sizeof(t1));
		fmt_time(r->last_time, t2, sizeof(t2));
		fprintf(f, "\"first_time\":\"%s\",\"last_time\":\"%s\",\"tampered\":%s,", t1, t2,
			r->tampered ? "true" : "false");
		if (r->has_first_bad)
			fprintf(f, "\"first_bad_seq\":%llu,", (unsigned long long)r->first_bad_seq);
		else
			fprintf(f, "\"first_bad_seq\":null,");
		fprintf(f, "\"findings\":[");
		for (size_t i = 0; i < r->n_findings; i++) {
			const struct audit_finding *x = &r->findings[i];

			fmt_time(x->time_usec, t1, sizeof(t1));
			fprintf(f, "%s{\"kind\":\"%s\",\"tampering\":%s,", i ? "," : "",
				audit_finding_name(x->kind),
				audit_finding_is_tampering(x->kind) ? "true" : "false");
			if (x->has_seq)
				fprintf(f, "\"seq\":%llu,", (unsigned long long)x->seq);
			else
				fprintf(f, "\"seq\":null,");
			fprintf(f, "\"count\":%llu,\"time\":\"%s\",\"time_usec\":%llu,\"detail\":",
				(unsigned long long)x->count, t1, (unsigned long long)x->time_usec);
			json_str(f, x->detail);
			fputc('}', f);
		}
		fprintf(f, "]}\n");
		return;
	}
	fmt_time(r->first_time, t1, sizeof(t1));
	fmt_time(r->last_time, t2, sizeof(t2));
	fprintf(f,
		"chain %s: %llu records, seq %llu..%llu (%s .. %s), %llu checkpoints, "
		"%llu key changes, %llu runs\n",
		r->has_chain ? r->chain : "-", (unsigned long long)r->records,
		(unsigned long long)r->first_seq, (unsigned long long)r->last_seq, t1, t2,
		(unsigned long long)r->checkpoints, (unsigned long long)r->key_changes,
		(unsigned long long)r->runs);
	if (r->sealed)
		fprintf(f, "sealed up to seq %llu\n", (unsigned long long)r->sealed_seq);
	for (size_t i = 0; i < r->n_findings; i++) {
		const struct audit_finding *x = &r->findings[i];
		char seq[24] = "-";

		if (x->has_seq)
			snprintf(seq, sizeof(seq), "%llu", (unsigned long long)x->seq);
		fmt_time(x->time_usec, t1, sizeof(t1));
		fprintf(f, "%s %s seq=%s count=%llu time=%s: %s\n",
			audit_finding_is_tampering(x->kind) ? "TAMPERING" : "note",
			audit_finding_name(x->kind), seq, (unsigned long long)x->count, t1,
			x->detail);
	}
	if (r->tampered)
		fprintf(f, "result: TAMPERED%s", r->has_first_bad ? "" : "\n");
	else
		fprintf(f, "result: intact\n");
	if (r->tampered && r->has_first_bad)
		fprintf(f, ", first bad seq %llu\n", (unsigned long long)r->first_bad_seq);
}
