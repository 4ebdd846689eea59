/* SPDX-License-Identifier: GPL-2.0-only */
/* The audit trail's writer: every record masd writes to journald gets its place in a SHA-256
 * hash chain, checkpoints sign the chain head with an Ed25519 key that evolves forward, and the
 * chain's state lives in the state dir so that each run links to the one before. The signing key
 * is the "audit" keyring's active version (keys.c, its own instance and schedule); this file keeps
 * what only the chain knows: the key certificates (audit/keys) and the key index. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
/* Location fields (CODE_FILE, ...) would be records of our source, not of the event. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "audit.h"
#include "audit_key.h"
#include "audit_record.h"
#include "audit_verify.h"
#include "fileio.h"
#include "keys.h"
#include "msgid.h"

#define MAX_FIELDS 256
#define SPOOL_MAX (1024ULL * 1024 * 1024)
#define RECOVER_MAX (4U * 1024 * 1024)
/* Records journald accepted into its socket but may not have read yet: journald's receive buffer
 * holds a few thousand. When journald goes away they are lost with it, so the last ones sent are
 * kept to be sent again if the journal does not have them once it is back. */
#define RING_SIZE 8192
#define EARLY_MAX 64 /* keyring records from before the chain is open: a crash's leftovers */

struct ring_ent {
	uint64_t seq;
	uint8_t *buf; /* spool format */
	size_t len, cap;
};

struct early_rec {
	char *message_id, *message;
	int priority;
	char *fields; /* "NAME=value" strings, NUL-separated */
	size_t len;
};

struct mas_audit {
	struct mas_audit_options opts;
	char dir[PATH_MAX - 32];
	uint32_t n_ckpt, t_ckpt, t_rotate;
	struct mas_keys *keys; /* the "audit" keyring: where the signing key lives and turns over */
	bool chain_open; /* the chain's first record of this run is written */
	struct early_rec early[EARLY_MAX]; /* the keyring's records waiting for chain_open */
	size_t n_early;
	uint8_t chain[AUDIT_CHAIN_ID_LEN];
	char chain_hex[2 * AUDIT_CHAIN_ID_LEN + 1];
	uint64_t seq; /* the next record's */
	uint8_t head[AUDIT_HASH_LEN]; /* the last record's hash, zeros before the first */
	struct audit_key *key; /* in force: the history's last key, a version of the keyring */
	uint32_t key_index;
	uint8_t key_id[AUDIT_KEY_ID_LEN];
	char key_id_hex[2 * AUDIT_KEY_ID_LEN + 1];
	char *key_history; /* "pub" then ",pub:sig" for each key change */
	uint64_t key_since_usec;
	uint64_t since_ckpt;
	uint64_t last_ckpt_usec;
	uint64_t last_state_usec;
	uint64_t spooled;
	uint64_t spool_dropped; /* bytes of a damaged spool dropped at start, to be reported */
	uint64_t spool_bad_seq; /* the sequence number where the damage began */
	struct ring_ent *ring;
	size_t ring_next, ring_n;
	bool outage; /* a send failed: the ring's records may be lost in journald's socket */
};

static uint64_t now_usec(const struct mas_audit *a)
{
	struct timespec ts;

	if (a->opts.clock_usec)
		return a->opts.clock_usec(a->opts.userdata);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static void crash_point(const struct mas_audit *a, const char *step)
{
	if (a->opts.crash)
		a->opts.crash(a->opts.userdata, step);
}

static int path_of(const struct mas_audit *a, const char *name, char *buf, size_t len)
{
	if (snprintf(buf, len, "%s/%s", a->dir, name) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* A record being built: "NAME=value" strings in one growing buffer, then iovecs over them. */
struct rec {
	char *buf;
	size_t len, cap;
	size_t off[MAX_FIELDS], flen[MAX_FIELDS], nlen[MAX_FIELDS];
	size_t n;
};

static int rec_addn(struct rec *r, const char *name, size_t nl, const void *value, size_t vlen)
{
	size_t need = nl + 1 + vlen;

	if (r->n >= MAX_FIELDS)
		return -E2BIG;
	if (r->len + need > r->cap) {
		size_t cap = r->cap ? r->cap : 1024;
		char *p;

		while (cap < r->len + need)
			cap *= 2;
		p = realloc(r->buf, cap);
		if (!p)
			return -ENOMEM;
		r->buf = p;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, name, nl);
	r->buf[r->len + nl] = '=';
	if (vlen)
		memcpy(r->buf + r->len + nl + 1, value, vlen);
	r->off[r->n] = r->len;
	r->flen[r->n] = need;
	r->nlen[r->n] = nl;
	r->n++;
	r->len += need;
	return 0;
}

static int rec_add(struct rec *r, const char *name, const void *value, size_t vlen)
{
	return rec_addn(r, name, strlen(name), value, vlen);
}

static int rec_adds(struct rec *r, const char *name, const char *value)
{
	return rec_add(r, name, value, strlen(value));
}

static int rec_addu(struct rec *r, const char *name, uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
	return rec_adds(r, name, b);
}

static int rec_addhex(struct rec *r, const char *name, const uint8_t *p, size_t len)
{
	char b[2 * AUDIT_SIG_LEN + 1];

	audit_hex(p, len, b);
	return rec_add(r, name, b, 2 * len);
}

static void rec_iov(const struct rec *r, struct iovec *iov, struct audit_kv *kv)
{
	for (size_t i = 0; i < r->n; i++) {
		iov[i].iov_base = r->buf + r->off[i];
		iov[i].iov_len = r->flen[i];
		if (kv) {
			kv[i].name = r->buf + r->off[i];
			kv[i].name_len = r->nlen[i];
			kv[i].value = r->buf + r->off[i] + r->nlen[i] + 1;
			kv[i].value_len = r->flen[i] - r->nlen[i] - 1;
		}
	}
}

static int sink_send(struct mas_audit *a, const struct iovec *iov, int n)
{
	if (a->opts.sink)
		return a->opts.sink(a->opts.userdata, iov, n);
	return sd_journal_sendv(iov, n);
}

/* Spool format: per record a le32 field count, then per field a le32 length and "NAME=value". */
static size_t serialized_len(const struct iovec *iov, int n)
{
	size_t total = 4;

	for (int i = 0; i < n; i++)
		total += 4 + iov[i].iov_len;
	return total;
}

static void serialize(const struct iovec *iov, int n, uint8_t *p)
{
	memcpy(p, &(uint32_t){ (uint32_t)n }, 4);
	p += 4;
	for (int i = 0; i < n; i++) {
		memcpy(p, &(uint32_t){ (uint32_t)iov[i].iov_len }, 4);
		memcpy(p + 4, iov[i].iov_base, iov[i].iov_len);
		p += 4 + iov[i].iov_len;
	}
}

/* Keep a copy of a record journald took; failing to keep one only weakens the outage repair. */
static void ring_put(struct mas_audit *a, uint64_t seq, const struct iovec *iov, int n)
{
	size_t len = serialized_len(iov, n);
	struct ring_ent *e;

	if (!a->ring) {
		a->ring = calloc(RING_SIZE, sizeof(*a->ring));
		if (!a->ring)
			return;
	}
	e = &a->ring[a->ring_next];
	if (e->cap < len) {
		uint8_t *p = realloc(e->buf, len);

		if (!p)
			return;
		e->buf = p;
		e->cap = len;
	}
	serialize(iov, n, e->buf);
	e->len = len;
	e->seq = seq;
	a->ring_next = (a->ring_next + 1) % RING_SIZE;
	if (a->ring_n < RING_SIZE)
		a->ring_n++;
}

static void ring_free(struct mas_audit *a)
{
	for (size_t i = 0; a->ring && i < RING_SIZE; i++) {
		OPENSSL_cleanse(a->ring[i].buf, a->ring[i].cap);
		free(a->ring[i].buf);
	}
	free(a->ring);
	a->ring = NULL;
	a->ring_n = a->ring_next = 0;
}

static int spool_append(struct mas_audit *a, const struct iovec *iov, int n)
{
	char path[PATH_MAX];
	size_t total = serialized_len(iov, n);
	uint8_t *buf;
	int fd, r = 0;

	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	serialize(iov, n, buf);
	r = path_of(a, "spool", path, sizeof(path));
	if (r < 0)
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (write(fd, buf, total) != (ssize_t)total)
		r = errno ? -errno : -EIO;
	else if (fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0)
		a->spooled++;
out:
	free(buf);
	return r;
}

/* Walk the spool; cb gets each record. Returns the offset after the last record cb took. */
typedef int (*spool_cb)(struct mas_audit *a, const struct iovec *iov, int n, void *ud);

static int spool_walk(struct mas_audit *a, const char *buf, size_t len, spool_cb cb, void *ud,
		      size_t *ret_done, uint64_t *ret_count)
{
	struct iovec iov[MAX_FIELDS];
	size_t off = 0;
	uint64_t count = 0;
	int r = 0;

	while (len - off >= 4) {
		uint32_t n, l;
		size_t o = off + 4;

		memcpy(&n, buf + off, 4);
		if (n == 0 || n > MAX_FIELDS)
			return -EBADMSG;
		for (uint32_t i = 0; i < n; i++) {
			if (len - o < 4)
				return -EBADMSG;
			memcpy(&l, buf + o, 4);
			if (len - o - 4 < l)
				return -EBADMSG;
			iov[i].iov_base = (void *)(buf + o + 4);
			iov[i].iov_len = l;
			o += 4 + l;
		}
		r = cb(a, iov, (int)n, ud);
		if (r < 0)
			break;
		off = o;
		count++;
	}
	*ret_done = off;
	if (ret_count)
		*ret_count = count;
	return r < 0 ? r : 0;
}

static int spool_send_one(struct mas_audit *a, const struct iovec *iov, int n, void *ud)
{
	return sink_send(a, iov, n);
}

static int ring_send_one(struct mas_audit *a, const struct iovec *iov, int n, void *ud)
{
	return sink_send(a, iov, n);
}

/* journald is back after an outage: the records it accepted just before going away may have died
 * in its socket. Send again, in order, those the journal does not hold, before the spool. */
static int outage_repair(struct mas_audit *a)
{
	size_t first = (a->ring_next + RING_SIZE - a->ring_n) % RING_SIZE;
	uint64_t first_seq;
	bool *present = NULL;
	sd_journal *j = NULL;
	char match[64];
	int r;

	if (a->ring_n == 0) {
		a->outage = false;
		return 0;
	}
	first_seq = a->ring[first].seq;
	present = calloc(a->ring_n, sizeof(*present));
	if (!present)
		return -ENOMEM;
	if (a->opts.sink) {
		/* a synchronous sink loses nothing it accepted */
		memset(present, 1, a->ring_n * sizeof(*present));
	} else if (sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY) >= 0) {
		snprintf(match, sizeof(match), "MAS_CHAIN_ID=%s", a->chain_hex);
		if (sd_journal_add_match(j, match, 0) >= 0 && sd_journal_seek_tail(j) >= 0) {
			size_t seen = 0;

			while (sd_journal_previous(j) > 0 && seen < 4 * RING_SIZE) {
				const void *d;
				size_t l;
				uint64_t seq;

				seen++;
				struct audit_kv seal[4];

				if (sd_journal_get_data(j, AUDIT_SEAL_FIELD, &d, &l) < 0 || l < 9 ||
				    audit_seal_split((const char *)d + 9, l - 9, seal) < 0 ||
				    audit_parse_u64(seal[0].value, seal[0].value_len, &seq) < 0)
					continue;
				if (seq < first_seq)
					break;
				if (seq - first_seq < a->ring_n)
					present[seq - first_seq] = true;
			}
		}
		sd_journal_close(j);
	} else {
		/* cannot tell: sending again risks duplicates, not sending risks a gap */
		memset(present, 0, a->ring_n * sizeof(*present));
	}
	r = 0;
	for (size_t i = 0; i < a->ring_n; i++) {
		struct ring_ent *e = &a->ring[(first + i) % RING_SIZE];
		size_t done = 0;

		if (present[i])
			continue;
		r = spool_walk(a, (const char *)e->buf, e->len, ring_send_one, NULL, &done, NULL);
		if (r < 0)
			break;
	}
	free(present);
	if (r == 0) {
		a->outage = false;
		a->ring_n = 0;
	}
	return r;
}

/* Send what the spool holds, in order; what journald does not take stays spooled. */
static int spool_flush(struct mas_audit *a)
{
	char path[PATH_MAX];
	char *buf = NULL;
	size_t len = 0, done = 0;
	uint64_t sent = 0;
	int r, rs;

	r = path_of(a, "spool", path, sizeof(path));
	if (r < 0)
		return r;
	if (a->outage) {
		/* fails, and is tried again, until journald takes records again */
		r = outage_repair(a);
		if (r < 0)
			return r;
	}
	r = fileio_read_all(path, SPOOL_MAX, &buf, &len);
	if (r == -ENOENT) {
		a->spooled = 0;
		return 0;
	}
	if (r < 0)
		return r;
	rs = spool_walk(a, buf, len, spool_send_one, NULL, &done, &sent);
	if (done == 0 && len > 0) {
		r = rs < 0 ? rs : -EBADMSG;
	} else if (done == len) {
		r = unlink(path) < 0 ? -errno : 0;
		if (r == 0)
			a->spooled = 0;
	} else {
		r = fileio_write_atomic(path, buf + done, len - done, 0600, (uid_t)-1, (gid_t)-1);
		if (r == 0)
			a->spooled = a->spooled > sent ? a->spooled - sent : 1;
		if (r == 0)
			r = rs < 0 ? rs : -EBADMSG;
	}
	free(buf);
	return r;
}

/* Append one chained record. time is MAS_TIME (a checkpoint signs it, so the caller picks it). */
static int chain_append(struct mas_audit *a, uint64_t t, const char *message_id,
			const char *category, int priority, const char *message,
			const struct audit_field *fields, size_t n_fields, struct rec *extra)
{
	static const char *const reserved[] = { "SYSLOG_IDENTIFIER", "MESSAGE_ID",   "MESSAGE",
						"PRIORITY",	     "MAS_CATEGORY", "MAS_CHAIN_ID",
						"MAS_SEQ",	     "MAS_PREV",     "MAS_HASH",
						"MAS_KEY_ID",	     "MAS_TIME" };
	struct rec rec = { 0 };
	struct iovec iov[MAX_FIELDS];
	struct audit_kv kv[MAX_FIELDS];
	uint8_t hash[AUDIT_HASH_LEN];
	int r;

	if (n_fields + (extra ? extra->n : 0) + 12 > MAX_FIELDS)
		return -E2BIG;
	if ((r = rec_adds(&rec, "SYSLOG_IDENTIFIER", "masd")) < 0 ||
	    (r = rec_adds(&rec, "MESSAGE_ID", message_id)) < 0 ||
	    (r = rec_addu(&rec, "PRIORITY", (uint64_t)(priority & 7))) < 0 ||
	    (r = rec_adds(&rec, "MESSAGE", message)) < 0 ||
	    (r = rec_adds(&rec, "MAS_CATEGORY", category)) < 0)
		goto out;
	for (size_t i = 0; i < n_fields; i++) {
		const char *v = fields[i].value ? fields[i].value : "";
		size_t vl = strlen(v);

		r = -EINVAL;
		if (!fields[i].name ||
		    !audit_field_name_valid(fields[i].name, strlen(fields[i].name)))
			goto out;
		for (size_t k = 0; k < sizeof(reserved) / sizeof(reserved[0]); k++)
			if (strcmp(fields[i].name, reserved[k]) == 0)
				goto out;
		if (vl > AUDIT_FIELD_MAX)
			goto out;
		r = rec_add(&rec, fields[i].name, v, vl);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; extra && i < extra->n; i++) {
		const char *f = extra->buf + extra->off[i];

		r = rec_addn(&rec, f, extra->nlen[i], f + extra->nlen[i] + 1,
			     extra->flen[i] - extra->nlen[i] - 1);
		if (r < 0)
			goto out;
	}
	if (a->opts.signed_logs) {
		char seal[24 + 2 * AUDIT_HASH_LEN + 24 + 2 * AUDIT_HASH_LEN + 4];
		char seq[24], prev[2 * AUDIT_HASH_LEN + 1], tm[24];
		int sl;

		if ((r = rec_adds(&rec, "MAS_CHAIN_ID", a->chain_hex)) < 0 ||
		    (r = rec_adds(&rec, "MAS_KEY_ID", a->key_id_hex)) < 0)
			goto out;
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)a->seq);
		audit_hex(a->head, AUDIT_HASH_LEN, prev);
		snprintf(tm, sizeof(tm), "%llu", (unsigned long long)t);
		rec_iov(&rec, iov, kv);
		kv[rec.n] = (struct audit_kv){ "MAS_SEQ", 7, seq, strlen(seq) };
		kv[rec.n + 1] = (struct audit_kv){ "MAS_PREV", 8, prev, 2 * AUDIT_HASH_LEN };
		kv[rec.n + 2] = (struct audit_kv){ "MAS_TIME", 8, tm, strlen(tm) };
		r = audit_record_hash(kv, rec.n + 3, hash);
		if (r < 0)
			goto out;
		sl = snprintf(seal, sizeof(seal), "%s %s %s ", seq, prev, tm);
		audit_hex(hash, AUDIT_HASH_LEN, seal + sl);
		r = rec_add(&rec, AUDIT_SEAL_FIELD, seal, (size_t)sl + 2 * AUDIT_HASH_LEN);
		if (r < 0)
			goto out;
	}
	rec_iov(&rec, iov, NULL);
	r = a->spooled ? -EAGAIN : sink_send(a, iov, (int)rec.n);
	if (r == 0 && a->opts.signed_logs && !a->outage)
		ring_put(a, a->seq, iov, (int)rec.n);
	if (r < 0 && !a->dir[0])
		goto out; /* plain records without a state dir: nowhere to spool, the caller knows */
	if (r < 0) {
		if (a->opts.signed_logs && a->spooled == 0)
			a->outage = true;
		r = spool_append(a, iov, (int)rec.n);
		if (r < 0)
			goto out; /* neither journald nor the spool took it: the chain does not advance */
	}
	if (a->opts.signed_logs) {
		memcpy(a->head, hash, AUDIT_HASH_LEN);
		a->seq++;
		a->since_ckpt++;
	}
	r = 0;
out:
	free(rec.buf);
	return r;
}

static int state_save(struct mas_audit *a, bool clean)
{
	char path[PATH_MAX], head[2 * AUDIT_HASH_LEN + 1], buf[512];
	int r, len;

	r = path_of(a, "state", path, sizeof(path));
	if (r < 0)
		return r;
	audit_hex(a->head, AUDIT_HASH_LEN, head);
	len = snprintf(buf, sizeof(buf),
		       "chain=%s\nseq=%llu\nhead=%s\nkey_index=%u\nkey_since=%llu\nclean=%d\n",
		       a->chain_hex, (unsigned long long)a->seq, head, a->key_index,
		       (unsigned long long)a->key_since_usec, clean ? 1 : 0);
	r = fileio_write_atomic(path, buf, (size_t)len, 0600, (uid_t)-1, (gid_t)-1);
	if (r == 0)
		a->last_state_usec = now_usec(a);
	return r;
}

static const char *state_get(const char *buf, const char *key, size_t *ret_len)
{
	size_t kl = strlen(key);

	for (const char *p = buf; p && *p;) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			*ret_len = (nl ? (size_t)(nl - p) : strlen(p)) - kl - 1;
			return p + kl + 1;
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static int state_load(struct mas_audit *a, bool *ret_clean)
{
	char path[PATH_MAX];
	char *buf = NULL;
	const char *v;
	size_t len, vl;
	uint64_t u;
	int r;

	r = path_of(a, "state", path, sizeof(path));
	if (r < 0)
		return r;
	r = fileio_read_all(path, 4096, &buf, &len);
	if (r < 0)
		return r;
	r = -EBADMSG;
	v = state_get(buf, "chain", &vl);
	if (!v || audit_unhex(v, vl, a->chain, AUDIT_CHAIN_ID_LEN) < 0)
		goto out;
	audit_hex(a->chain, AUDIT_CHAIN_ID_LEN, a->chain_hex);
	v = state_get(buf, "seq", &vl);
	if (!v || audit_parse_u64(v, vl, &a->seq) < 0)
		goto out;
	v = state_get(buf, "head", &vl);
	if (!v || audit_unhex(v, vl, a->head, AUDIT_HASH_LEN) < 0)
		goto out;
	v = state_get(buf, "key_index", &vl);
	if (!v || audit_parse_u64(v, vl, &u) < 0 || u > UINT32_MAX)
		goto out;
	a->key_index = (uint32_t)u;
	v = state_get(buf, "key_since", &vl);
	if (!v || audit_parse_u64(v, vl, &a->key_since_usec) < 0)
		goto out;
	v = state_get(buf, "clean", &vl);
	*ret_clean = v && vl == 1 && v[0] == '1';
	r = 0;
out:
	free(buf);
	return r;
}

static void set_key(struct mas_audit *a, struct audit_key *k)
{
	uint8_t pub[AUDIT_PUB_LEN];

	audit_key_free(a->key);
	a->key = k;
	audit_key_pub(k, pub);
	audit_key_id(pub, a->key_id);
	audit_hex(a->key_id, AUDIT_KEY_ID_LEN, a->key_id_hex);
}

static int history_save(struct mas_audit *a)
{
	char path[PATH_MAX];
	int r = path_of(a, "keys", path, sizeof(path));

	if (r < 0)
		return r;
	return fileio_write_atomic(path, a->key_history, strlen(a->key_history), 0644, (uid_t)-1,
				   (gid_t)-1);
}

static int history_load(struct mas_audit *a)
{
	char path[PATH_MAX];
	size_t len;
	int r = path_of(a, "keys", path, sizeof(path));

	if (r < 0)
		return r;
	free(a->key_history);
	a->key_history = NULL;
	r = fileio_read_all(path, 16 * 1024 * 1024, &a->key_history, &len);
	if (r < 0)
		return r;
	while (len > 0 && a->key_history[len - 1] == '\n')
		a->key_history[--len] = 0;
	return 0;
}

static int do_checkpoint(struct mas_audit *a, const char *reason)
{
	uint8_t msg[AUDIT_CKPT_MSG_LEN], sig[AUDIT_SIG_LEN];
	uint64_t t = now_usec(a);
	struct rec extra = { 0 };
	char text[128];
	int r;

	if (!a->opts.signed_logs)
		return 0;
	audit_ckpt_message(a->chain, a->seq, a->head, t, a->key_id, reason, msg);
	r = audit_key_sign(a->key, msg, sizeof(msg), sig);
	if (r < 0)
		return r;
	if ((r = rec_adds(&extra, "MAS_REASON", reason)) < 0 ||
	    (r = rec_addhex(&extra, "MAS_SIG", sig, AUDIT_SIG_LEN)) < 0 ||
	    (r = rec_addu(&extra, "MAS_INTERVAL", a->t_ckpt)) < 0)
		goto out;
	snprintf(text, sizeof(text), "audit checkpoint: records up to %llu sealed (%s)",
		 (unsigned long long)(a->seq ? a->seq - 1 : 0), reason);
	r = chain_append(a, t, MAS_MSGID_AUDIT_CHECKPOINT, "audit", LOG_INFO, text, NULL, 0,
			 &extra);
	if (r == 0) {
		a->since_ckpt = 0;
		a->last_ckpt_usec = t;
	}
out:
	free(extra.buf);
	return r;
}

int audit_checkpoint(struct mas_audit *a)
{
	return do_checkpoint(a, "request");
}

static int load_version_key(struct mas_audit *a, const char *kid, struct audit_key **ret)
{
	struct keys_material m;
	int r;

	r = keys_material_get(a->keys, MAS_AUDIT_KEY_NAME, kid, &m);
	if (r < 0)
		return r;
	r = m.len == 32 ? audit_key_from_seed(m.bytes, ret) : -EBADMSG;
	keys_material_clear(&m);
	return r;
}

/* Whether the keyring holds a live version; with kid, that one as its active version. */
static bool ring_has_version(const struct mas_audit *a, const char *active_kid)
{
	struct keys_version_info *vs = NULL;
	size_t n = 0;
	bool yes = false;

	if (keys_versions(a->keys, MAS_AUDIT_KEY_NAME, &vs, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		yes |= active_kid ?
			       vs[i].state == KEYS_ACTIVE && strcmp(vs[i].kid, active_kid) == 0 :
			       vs[i].state != KEYS_DESTROYED;
	free(vs);
	return yes;
}

/* Before this change the key lived in audit/key; it is kept only until the keyring holds the
 * key that certified its successor. Overwritten, then removed. */
static void legacy_key_drop(struct mas_audit *a)
{
	static const uint8_t zeros[64];
	char path[PATH_MAX];
	int fd;

	if (path_of(a, "key", path, sizeof(path)) < 0)
		return;
	fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, zeros, sizeof(zeros)) > 0)
			(void)fsync(fd);
		close(fd);
	}
	unlink(path);
}

/* Which key signs on. It is the history's last key, and the keyring holds it: normally as its
 * active version; as its pending version after a crash inside a key change once the certificate
 * had reached the history (the change completes: its record may be in the journal already, and
 * the keyring activates the version on the next tick). A history one key ahead of anything the
 * keyring holds loses that certificate again. A key in the old audit/key file is used once, to
 * certify the keyring's first version. -ENOENT: no key of the history is left. */
static int adopt_key(struct mas_audit *a)
{
	struct keys_version_info *vs = NULL;
	struct audit_key *k = NULL;
	char *last, *prev = NULL, path[PATH_MAX];
	uint32_t n = 0;
	size_t n_vs = 0;
	int r;

	r = keys_versions(a->keys, MAS_AUDIT_KEY_NAME, &vs, &n_vs);
	if (r < 0)
		return r;
	for (const char *p = a->key_history; *p; p++)
		n += *p == ',';
	for (int back = 0; back < 2 && !k; back++) {
		last = strrchr(a->key_history, ',');
		last = last ? last + 1 : a->key_history;
		for (size_t i = 0; i < n_vs && !k; i++) {
			char hex[2 * AUDIT_PUB_LEN + 1];

			if (vs[i].state == KEYS_DESTROYED || !vs[i].has_public)
				continue;
			audit_hex(vs[i].public_key, AUDIT_PUB_LEN, hex);
			if (strncmp(last, hex, 2 * AUDIT_PUB_LEN) == 0) {
				r = load_version_key(a, vs[i].kid, &k);
				if (r < 0)
					goto out;
			}
		}
		if (!k && path_of(a, "key", path, sizeof(path)) == 0 &&
		    audit_key_load(path, &k) == 0) {
			uint8_t pub[AUDIT_PUB_LEN];
			char hex[2 * AUDIT_PUB_LEN + 1];

			audit_key_pub(k, pub);
			audit_hex(pub, AUDIT_PUB_LEN, hex);
			if (strncmp(last, hex, 2 * AUDIT_PUB_LEN) != 0) {
				audit_key_free(k);
				k = NULL;
			}
		}
		if (k || back == 1 || n == 0)
			break;
		prev = last - 1; /* one key ahead: drop its certificate and look again */
		*prev = 0;
	}
	r = -ENOENT;
	if (!k)
		goto out;
	set_key(a, k);
	a->key_index = prev ? n - 1 : n;
	r = prev ? history_save(a) : 0;
out:
	free(vs);
	return r;
}

/* The announcement of the keyring's next version in the chain, signed by the key in force:
 * checkpoint, certificate in the history (the commit point: from here on a crash completes the
 * change), key-change record, then the next key signs. The keyring erases the old one after. */
static int key_change(struct mas_audit *a, const struct keys_version_info *next_v)
{
	uint8_t pub[AUDIT_PUB_LEN], msg[AUDIT_CERT_MSG_LEN], sig[AUDIT_SIG_LEN];
	char pubhex[2 * AUDIT_PUB_LEN + 1], sighex[2 * AUDIT_SIG_LEN + 1];
	char text[160], *hist = NULL;
	struct audit_key *next = NULL;
	struct rec extra = { 0 };
	int r;

	r = load_version_key(a, next_v->kid, &next);
	if (r < 0)
		return r;
	audit_key_pub(next, pub);
	if (!next_v->has_public || memcmp(pub, next_v->public_key, AUDIT_PUB_LEN) != 0) {
		r = -EBADMSG;
		goto out;
	}
	r = do_checkpoint(a, "key-change");
	if (r < 0)
		goto out;
	crash_point(a, "audit:checkpoint");
	audit_cert_message(a->chain, a->key_index + 1, pub, msg);
	r = audit_key_sign(a->key, msg, sizeof(msg), sig);
	if (r < 0)
		goto out;
	audit_hex(pub, AUDIT_PUB_LEN, pubhex);
	audit_hex(sig, AUDIT_SIG_LEN, sighex);
	if (asprintf(&hist, "%s,%s:%s", a->key_history, pubhex, sighex) < 0) {
		hist = NULL;
		r = -ENOMEM;
		goto out;
	}
	{
		char *old = a->key_history;

		a->key_history = hist;
		r = history_save(a);
		a->key_history = old;
		if (r < 0)
			goto out;
	}
	free(a->key_history);
	a->key_history = hist;
	hist = NULL;
	crash_point(a, "audit:history");
	if ((r = rec_adds(&extra, "MAS_NEXT_KEY", pubhex)) < 0 ||
	    (r = rec_addu(&extra, "MAS_KEY_INDEX", a->key_index + 1)) < 0 ||
	    (r = rec_adds(&extra, "MAS_KEY_SIG", sighex)) < 0 ||
	    (r = rec_adds(&extra, "MAS_KEY_NAME", MAS_AUDIT_KEY_NAME)) < 0 ||
	    (r = rec_adds(&extra, "MAS_KEY_OLD_KID", a->key_id_hex)) < 0 ||
	    (r = rec_adds(&extra, "MAS_KEY_NEW_KID", next_v->kid)) < 0 ||
	    (r = rec_adds(&extra, "MAS_KEY_FINGERPRINT", next_v->fingerprint)) < 0)
		goto switch_key;
	snprintf(text, sizeof(text), "audit signing key %u replaced by key %u (%.16s…)",
		 a->key_index, a->key_index + 1, pubhex);
	/* Whatever becomes of the record, the change is committed: the start record of the next
	 * run carries the certificate in its key history. */
	(void)chain_append(a, now_usec(a), MAS_MSGID_AUDIT_KEY_CHANGE, "audit", LOG_NOTICE, text,
			   NULL, 0, &extra);
	crash_point(a, "audit:record");
switch_key:
	set_key(a, next);
	next = NULL;
	a->key_index++;
	a->key_since_usec = now_usec(a);
	(void)state_save(a, false);
	crash_point(a, "audit:switched");
	r = 0;
out:
	OPENSSL_cleanse(msg, sizeof(msg));
	audit_key_free(next);
	free(hist);
	free(extra.buf);
	return r;
}

/* The keyring's before-activate hook: a version is about to become the active one. */
static int on_key_activate(void *userdata, const char *name, const struct keys_version_info *old_v,
			   const struct keys_version_info *new_v)
{
	struct mas_audit *a = userdata;

	if (!a->chain_open || !a->key)
		return 0; /* opening: a new chain takes the version that ends up active */
	if (strcmp(a->key_id_hex, new_v->kid) == 0)
		return 0; /* the chain switched already (a key change completed after a crash) */
	return key_change(a, new_v);
}

/* The keyring's clock: seconds of the writer's clock (a fake one in tests). */
static uint64_t keys_now(const struct mas_audit *a)
{
	return now_usec(a) / 1000000ULL;
}

int audit_rotate_key(struct mas_audit *a)
{
	if (!a || !a->opts.signed_logs || !a->keys)
		return 0;
	return keys_rotate(a->keys, MAS_AUDIT_KEY_NAME, keys_now(a), KEYS_ROTATE_IMMEDIATE);
}

/* journald reads every client's datagrams from one socket, in order: once a marker sent now is
 * in the journal, so is everything the crashed run sent before. Best effort, at most 2 s. */
static void journal_barrier(void)
{
	char marker[64], id[2 * 8 + 1];
	uint8_t rnd[8];
	struct iovec iov[4];
	sd_journal *j = NULL;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return;
	audit_hex(rnd, sizeof(rnd), id);
	snprintf(marker, sizeof(marker), "MASD_BARRIER=%s", id);
	iov[0] = (struct iovec){ "SYSLOG_IDENTIFIER=masd", 22 };
	iov[1] = (struct iovec){ "PRIORITY=7", 10 };
	iov[2] =
		(struct iovec){ "MESSAGE=audit: waiting for journald to store the run before", 59 };
	iov[3] = (struct iovec){ marker, strlen(marker) };
	if (sd_journal_sendv(iov, 4) < 0 || sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY) < 0)
		return;
	if (sd_journal_add_match(j, marker, 0) >= 0) {
		for (int i = 0; i < 20; i++) {
			if (sd_journal_seek_head(j) >= 0 && sd_journal_next(j) > 0)
				break;
			(void)sd_journal_wait(j, 100000);
		}
	}
	sd_journal_close(j);
}

/* After a crash the journal may hold records after the head the state file knows. Adopt the
 * longest run of them that links, hash by hash, to that head. */
static int recover_from_journal(struct mas_audit *a, uint64_t *ret_recovered)
{
	struct audit_entry *found = NULL;
	size_t n = 0, cap = 0;
	sd_journal *j = NULL;
	char match[64];
	uint64_t recovered = 0;
	bool progress = true;
	int r;

	*ret_recovered = 0;
	journal_barrier();
	r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
	if (r < 0)
		return r;
	snprintf(match, sizeof(match), "MAS_CHAIN_ID=%s", a->chain_hex);
	r = sd_journal_add_match(j, match, 0);
	if (r < 0)
		goto out;
	r = sd_journal_seek_tail(j);
	if (r < 0)
		goto out;
	while ((r = sd_journal_previous(j)) > 0 && n < RECOVER_MAX) {
		struct audit_entry e;
		bool ours;

		r = audit_journal_entry(j, &e, &ours);
		if (r < 0)
			goto out;
		free(e.keys);
		e.keys = NULL;
		if (!ours || !e.chained || e.malformed)
			continue;
		if (e.seq < a->seq)
			break;
		if (e.juid >= 0 && e.juid != (int64_t)getuid())
			continue; /* masd's records come from masd's user */
		if (n == cap) {
			struct audit_entry *p;

			cap = cap ? 2 * cap : 256;
			p = realloc(found, cap * sizeof(*found));
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			found = p;
		}
		found[n++] = e;
	}
	if (r < 0)
		goto out;
	while (progress) {
		progress = false;
		for (size_t i = n; i-- > 0;) {
			struct audit_entry *e = &found[i];

			if (e->seq == a->seq && memcmp(e->prev, a->head, AUDIT_HASH_LEN) == 0 &&
			    memcmp(e->hash, e->computed, AUDIT_HASH_LEN) == 0) {
				memcpy(a->head, e->hash, AUDIT_HASH_LEN);
				a->seq++;
				recovered++;
				progress = true;
			}
		}
	}
	*ret_recovered = recovered;
	r = 0;
out:
	free(found);
	sd_journal_close(j);
	return r;
}

static int recover_spool_cb(struct mas_audit *a, const struct iovec *iov, int n, void *ud)
{
	struct audit_kv kv[MAX_FIELDS];
	struct audit_entry e;
	bool *linked = ud;
	bool ours;
	int r;

	for (int i = 0; i < n; i++) {
		const char *s = iov[i].iov_base, *eq = memchr(s, '=', iov[i].iov_len);

		if (!eq)
			return -EBADMSG;
		kv[i] = (struct audit_kv){ s, (size_t)(eq - s), eq + 1,
					   iov[i].iov_len - (size_t)(eq - s) - 1 };
	}
	r = audit_entry_parse(kv, (size_t)n, &e, &ours);
	if (r < 0)
		return r;
	free(e.keys);
	if (!ours || !e.chained)
		return 0;
	/* a spooled record is trusted only if it is what was written and, after the first (the
	 * state file may lag the journal by a checkpoint), links to the one before: from the
	 * first one that is not, the rest of the spool is damaged */
	if (e.malformed || memcmp(e.computed, e.hash, AUDIT_HASH_LEN)) {
		a->spool_bad_seq = *linked || e.malformed ? a->seq : e.seq;
		return -ESTALE;
	}
	if (!*linked && e.seq < a->seq)
		return 0; /* in the chain already */
	if (*linked && (memcmp(e.prev, a->head, AUDIT_HASH_LEN) || e.seq != a->seq)) {
		a->spool_bad_seq = a->seq;
		return -ESTALE;
	}
	*linked = true;
	a->seq = e.seq + 1;
	memcpy(a->head, e.hash, AUDIT_HASH_LEN);
	return 0;
}

/* Records spooled by the run before are part of the chain already: the head moves past them. */
static int recover_from_spool(struct mas_audit *a)
{
	char path[PATH_MAX];
	char *buf = NULL;
	size_t len = 0, done = 0;
	uint64_t count = 0;
	bool linked = false;
	int r;

	r = path_of(a, "spool", path, sizeof(path));
	if (r < 0)
		return r;
	r = fileio_read_all(path, SPOOL_MAX, &buf, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	a->spool_bad_seq = a->seq;
	r = spool_walk(a, buf, len, recover_spool_cb, &linked, &done, &count);
	a->spooled = count;
	if (r != -ENOMEM && (r < 0 || done < len)) {
		/* keep the good records, drop the damage; the next record takes the dropped one's
		 * sequence number, so the chain stays whole, and the drop is reported once open */
		a->spool_dropped = len - done;
		r = fileio_write_atomic(path, buf, done, 0600, (uid_t)-1, (gid_t)-1);
	}
	free(buf);
	return r;
}

/* The state of the chain before us is gone (or there never was one): a new chain, loudly when
 * there was one. */
/* Whether the journal holds another chain of masd's: then the state dir was lost, not new. */
static bool previous_chain(char ret_chain[2 * AUDIT_CHAIN_ID_LEN + 1], uint64_t *ret_seq)
{
	sd_journal *j = NULL;
	const void *d;
	size_t l;
	bool found = false;

	if (sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY) < 0)
		return false;
	if (sd_journal_add_match(j, "SYSLOG_IDENTIFIER=masd", 0) >= 0 &&
	    sd_journal_add_match(j, "MESSAGE_ID=" MAS_MSGID_AUDIT_CHECKPOINT, 0) >= 0 &&
	    sd_journal_seek_tail(j) >= 0 && sd_journal_previous(j) > 0 &&
	    sd_journal_get_data(j, "MAS_CHAIN_ID", &d, &l) >= 0 &&
	    l == 13 + 2 * AUDIT_CHAIN_ID_LEN) {
		struct audit_kv seal[4];

		memcpy(ret_chain, (const char *)d + 13, 2 * AUDIT_CHAIN_ID_LEN);
		ret_chain[2 * AUDIT_CHAIN_ID_LEN] = 0;
		*ret_seq = 0;
		if (sd_journal_get_data(j, AUDIT_SEAL_FIELD, &d, &l) >= 0 && l > 9 &&
		    audit_seal_split((const char *)d + 9, l - 9, seal) == 0)
			(void)audit_parse_u64(seal[0].value, seal[0].value_len, ret_seq);
		found = true;
	}
	sd_journal_close(j);
	return found;
}

static int new_chain(struct mas_audit *a, bool lost)
{
	char old_chain[2 * AUDIT_CHAIN_ID_LEN + 1] = "";
	uint64_t old_seq = 0;

	uint8_t pub[AUDIT_PUB_LEN];
	char pubhex[2 * AUDIT_PUB_LEN + 2], path[PATH_MAX], text[PATH_MAX + 512];
	struct audit_key *k = NULL;
	struct rec extra = { 0 };
	int r;

	if (!a->opts.sink && previous_chain(old_chain, &old_seq))
		lost = true;
	if (RAND_bytes(a->chain, AUDIT_CHAIN_ID_LEN) != 1)
		return -EIO;
	audit_hex(a->chain, AUDIT_CHAIN_ID_LEN, a->chain_hex);
	a->seq = 0;
	memset(a->head, 0, sizeof(a->head));
	a->key_index = 0;
	/* key 0 is a fresh version of the keyring: a key of the chain before must not be one of
	 * this chain's too (the pinned key tells the chains apart) */
	r = ring_has_version(a, NULL) ?
		    keys_rotate(a->keys, MAS_AUDIT_KEY_NAME, keys_now(a), KEYS_ROTATE_IMMEDIATE) :
		    keys_tick(a->keys, keys_now(a));
	if (r >= 0)
		r = load_version_key(a, NULL, &k);
	if (r < 0)
		return r;
	set_key(a, k);
	legacy_key_drop(a);
	audit_key_pub(k, pub);
	audit_hex(pub, AUDIT_PUB_LEN, pubhex);
	free(a->key_history);
	a->key_history = strdup(pubhex);
	if (!a->key_history)
		return -ENOMEM;
	a->key_since_usec = now_usec(a);
	/* Stale spool of a chain we cannot continue: it is not ours to send any more. */
	if (path_of(a, "spool", path, sizeof(path)) == 0)
		unlink(path);
	a->spooled = 0;
	if ((r = history_save(a)) < 0)
		return r;
	pubhex[2 * AUDIT_PUB_LEN] = '\n';
	if ((r = path_of(a, "first.pub", path, sizeof(path))) < 0 ||
	    (r = fileio_write_atomic(path, pubhex, 2 * AUDIT_PUB_LEN + 1, 0644, (uid_t)-1,
				     (gid_t)-1)) < 0)
		return r;
	pubhex[2 * AUDIT_PUB_LEN] = 0;
	if ((r = rec_adds(&extra, "MAS_FIRST_KEY", pubhex)) < 0 ||
	    (r = rec_addu(&extra, "MAS_PID", (uint64_t)getpid())) < 0 ||
	    (r = rec_adds(&extra, "MAS_REASON", lost ? "state-lost" : "first-start")) < 0)
		goto out;
	if (old_chain[0] && ((r = rec_adds(&extra, "MAS_LOST_CHAIN_ID", old_chain)) < 0 ||
			     (r = rec_addu(&extra, "MAS_LOST_SEQ", old_seq)) < 0))
		goto out;
	if (lost)
		snprintf(text, sizeof(text),
			 "AUDIT STATE LOST: the state of the audit chain in %s is missing or "
			 "damaged%s%s%s; a new chain %s starts here and does not link to the "
			 "records before it. Pin its first public key %s",
			 a->dir, old_chain[0] ? " (the journal's last chain is " : "", old_chain,
			 old_chain[0] ? ")" : "", a->chain_hex, pubhex);
	else
		snprintf(text, sizeof(text), "audit chain %s starts; first public key %s",
			 a->chain_hex, pubhex);
	r = chain_append(a, now_usec(a), MAS_MSGID_AUDIT_NEW_CHAIN, "audit",
			 lost ? LOG_CRIT : LOG_NOTICE, text, NULL, 0, &extra);
out:
	free(extra.buf);
	return r;
}

static int start_record(struct mas_audit *a, bool clean, uint64_t recovered)
{
	struct rec extra = { 0 };
	char head[2 * AUDIT_HASH_LEN + 1], text[200];
	uint64_t last = a->seq - 1;
	int r;

	audit_hex(a->head, AUDIT_HASH_LEN, head);
	if ((r = rec_addu(&extra, "MAS_PID", (uint64_t)getpid())) < 0 ||
	    (r = rec_addu(&extra, "MAS_LAST_SEQ", last)) < 0 ||
	    (r = rec_adds(&extra, "MAS_LAST_HASH", head)) < 0 ||
	    (r = rec_adds(&extra, "MAS_REASON", clean ? "clean" : "crash")) < 0 ||
	    (r = rec_addu(&extra, "MAS_RECOVERED", recovered)) < 0 ||
	    (r = rec_adds(&extra, "MAS_KEYS", a->key_history)) < 0)
		goto out;
	snprintf(text, sizeof(text), "audit chain %s continues after seq %llu (%s)", a->chain_hex,
		 (unsigned long long)last,
		 clean ? "clean shutdown before" : "the run before did not shut down cleanly");
	r = chain_append(a, now_usec(a), MAS_MSGID_AUDIT_START, "audit",
			 clean ? LOG_INFO : LOG_WARNING, text, NULL, 0, &extra);
out:
	free(extra.buf);
	return r;
}

/* Records of the keyring (rotated, destroyed, overdue) go into the chain like any other. Those
 * keys_open() finishes after a crash come before the chain is open: they wait for it. */
static int keys_record(void *userdata, const char *message_id, int priority, const char *message,
		       const struct audit_field *fields, size_t n_fields)
{
	struct mas_audit *a = userdata;
	struct early_rec *e;
	FILE *f;
	bool ok;

	/* the chain's own key-change and new-chain records are this keyring's rotation records */
	if (strcmp(message_id, MAS_MSGID_KEY_ROTATED) == 0)
		return 0;
	if (a->chain_open)
		return audit_emit(a, message_id, MAS_CAT_DATA_CHANGES, priority, message, fields,
				  n_fields);
	if (a->n_early == EARLY_MAX)
		return -ENOBUFS;
	e = &a->early[a->n_early];
	*e = (struct early_rec){ .priority = priority };
	f = open_memstream(&e->fields, &e->len);
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < n_fields; i++) {
		fprintf(f, "%s=%s", fields[i].name, fields[i].value ? fields[i].value : "");
		fputc(0, f);
	}
	ok = fclose(f) == 0;
	e->message_id = strdup(message_id);
	e->message = strdup(message);
	if (!ok || !e->message_id || !e->message) {
		free(e->fields);
		free(e->message_id);
		free(e->message);
		return -ENOMEM;
	}
	a->n_early++;
	return 0;
}

static void early_flush(struct mas_audit *a, bool emit)
{
	for (size_t i = 0; i < a->n_early; i++) {
		struct early_rec *e = &a->early[i];
		struct audit_field f[16];
		size_t n = 0;

		for (char *p = e->fields; emit && p && p < e->fields + e->len && n < 16;) {
			char *eq = strchr(p, '=');

			if (!eq)
				break;
			*eq = 0;
			f[n++] = (struct audit_field){ p, eq + 1 };
			p = eq + 1 + strlen(eq + 1) + 1;
		}
		if (emit)
			(void)audit_emit(a, e->message_id, MAS_CAT_DATA_CHANGES, e->priority,
					 e->message, f, n);
		free(e->fields);
		free(e->message_id);
		free(e->message);
	}
	a->n_early = 0;
}

/* The audit key's own keyring instance: one Ed25519 key in STATE/keys/audit, delivered to nobody,
 * rotated on the writer's schedule, the previous version erased as soon as it is replaced. */
static int open_keyring(struct mas_audit *a)
{
	struct mas_key_conf conf = { .name = (char *)MAS_AUDIT_KEY_NAME,
				     .type = MAS_KEY_ED25519,
				     .rotate_every_s = a->t_rotate,
				     .keep_previous_for_s = 0 };
	struct keys_options ko = { .state_dir = a->opts.state_dir,
				   .keys = &conf,
				   .n_keys = 1,
				   .audit = keys_record,
				   .audit_userdata = a,
				   .crash = a->opts.crash,
				   .crash_userdata = a->opts.userdata };
	struct mas_error err;
	int r;

	r = keys_open(&ko, keys_now(a), &a->keys, &err);
	if (r < 0)
		return r;
	keys_set_before_activate(a->keys, on_key_activate, a);
	return 0;
}

static int open_chain(struct mas_audit *a)
{
	static const char *const ours[] = { "state", "keys", "first.pub" };
	char path[PATH_MAX];
	uint64_t recovered = 0;
	bool clean = false;
	int r;

	r = fileio_mkdir_p(a->dir, 0700);
	if (r < 0)
		return r;
	/* the key's path is tested below even when the state file is missing */
	if (path_of(a, "key", path, sizeof(path)) < 0)
		path[0] = '\0';
	r = state_load(a, &clean);
	if (r == 0)
		r = history_load(a);
	if (r == 0)
		r = adopt_key(a);
	if (r == -ENOENT || r == -EBADMSG || r == -EINVAL) {
		/* lost rather than new when anything of a chain is left */
		bool lost = r != -ENOENT;

		for (size_t i = 0; !lost && i < sizeof(ours) / sizeof(ours[0]); i++)
			lost = path_of(a, ours[i], path, sizeof(path)) == 0 &&
			       access(path, F_OK) == 0;
		r = new_chain(a, lost);
	} else if (r == 0) {
		if (!clean) {
			r = recover_from_spool(a);
			if (r == 0 && !a->opts.no_journal_recovery && !a->opts.sink)
				(void)recover_from_journal(a, &recovered);
		} else {
			r = recover_from_spool(a);
		}
		if (r == 0 && a->spooled)
			(void)spool_flush(a);
		if (r == 0)
			r = start_record(a, clean, recovered);
	}
	if (r < 0)
		return r;
	a->last_ckpt_usec = now_usec(a);
	r = state_save(a, false);
	if (r < 0)
		return r;
	a->chain_open = true;
	early_flush(a, true);
	if (a->spool_dropped) {
		char seq[24], bytes[24], msg[200];
		const struct audit_field f[] = { { "MAS_SPOOL_SEQ", seq },
						 { "MAS_SPOOL_DROPPED_BYTES", bytes } };

		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)a->spool_bad_seq);
		snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)a->spool_dropped);
		snprintf(
			msg, sizeof(msg),
			"audit spool damaged from seq %s on: %s bytes dropped, the chain continues "
			"from the last good record",
			seq, bytes);
		a->spool_dropped = 0;
		(void)audit_emit(a, MAS_MSGID_AUDIT_SPOOL_DAMAGED, MAS_CAT_DATA_CHANGES, LOG_CRIT,
				 msg, f, 2);
	}
	/* what the schedule has due (a key change is announced in the chain now), and the end of a
	 * key change a crash interrupted */
	(void)keys_tick(a->keys, keys_now(a));
	if (ring_has_version(a, a->key_id_hex))
		legacy_key_drop(a);
	return 0;
}

int audit_open(const struct mas_audit_options *opts, struct mas_audit **ret)
{
	struct mas_audit *a;
	int r;

	if (!opts || !ret || (opts->signed_logs && !opts->state_dir))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->opts = *opts;
	a->n_ckpt = opts->checkpoint_records ?: AUDIT_DEFAULT_CHECKPOINT_RECORDS;
	a->t_ckpt = opts->checkpoint_seconds ?: AUDIT_DEFAULT_CHECKPOINT_SECONDS;
	a->t_rotate = opts->key_rotate_seconds ?: AUDIT_DEFAULT_KEY_ROTATE_SECONDS;
	if (opts->signed_logs) {
		if (snprintf(a->dir, sizeof(a->dir), "%s/audit", opts->state_dir) >=
		    (int)sizeof(a->dir)) {
			r = -ENAMETOOLONG;
			goto fail;
		}
		r = open_keyring(a);
		if (r == 0)
			r = open_chain(a);
		if (r < 0)
			goto fail;
	}
	a->opts.state_dir = NULL; /* not ours to keep */
	*ret = a;
	return 0;
fail:
	early_flush(a, false);
	keys_close(a->keys);
	audit_key_free(a->key);
	free(a->key_history);
	ring_free(a);
	free(a);
	return r;
}

int audit_emit(struct mas_audit *a, const char *message_id, const char *category, int priority,
	       const char *message, const struct audit_field *fields, size_t n_fields)
{
	int r;

	if (!a || !message_id || !category || !message || (n_fields && !fields))
		return -EINVAL;
	r = chain_append(a, now_usec(a), message_id, category, priority, message, fields, n_fields,
			 NULL);
	if (r < 0)
		return r;
	if (a->opts.signed_logs && a->since_ckpt >= a->n_ckpt)
		(void)do_checkpoint(a, "count"); /* the next tick retries a failed one */
	return 0;
}

uint64_t audit_tick(struct mas_audit *a)
{
	uint64_t now, next_ckpt, due, wait;

	if (!a || !a->opts.signed_logs)
		return 60000;
	if (a->spooled)
		(void)spool_flush(a);
	now = now_usec(a);
	if (keys_next_due(a->keys, now / 1000000ULL) <= now / 1000000ULL)
		(void)keys_tick(a->keys, now / 1000000ULL); /* a failure is retried after 60 s */
	if (now >= a->last_ckpt_usec + (uint64_t)a->t_ckpt * 1000000ULL ||
	    a->since_ckpt >= a->n_ckpt) {
		if (do_checkpoint(a, a->since_ckpt ? "time" : "heartbeat") == 0)
			(void)state_save(a, false);
	}
	now = now_usec(a);
	next_ckpt = a->last_ckpt_usec + (uint64_t)a->t_ckpt * 1000000ULL;
	due = keys_next_due(a->keys, now / 1000000ULL);
	if (due < UINT64_MAX / 1000000ULL && due * 1000000ULL < next_ckpt)
		next_ckpt = due * 1000000ULL;
	wait = next_ckpt > now ? (next_ckpt - now + 999) / 1000 : 1;
	if (a->spooled && wait > 500)
		wait = 500;
	return wait;
}

void audit_close(struct mas_audit *a)
{
	if (!a)
		return;
	if (a->opts.signed_logs && a->key) {
		if (a->spooled)
			(void)spool_flush(a);
		if (do_checkpoint(a, "shutdown") == 0)
			(void)state_save(a, a->spooled == 0);
		else
			(void)state_save(a, false);
	}
	early_flush(a, false);
	keys_close(a->keys);
	audit_key_free(a->key);
	free(a->key_history);
	ring_free(a);
	free(a);
}

const struct mas_keys *audit_keys(const struct mas_audit *a)
{
	return a ? a->keys : NULL;
}

uint64_t audit_spooled(const struct mas_audit *a)
{
	return a ? a->spooled : 0;
}

uint64_t audit_next_seq(const struct mas_audit *a)
{
	return a ? a->seq : 0;
}

int audit_first_pubkey(const char *state_dir, char ret[65])
{
	char path[PATH_MAX], *buf = NULL;
	uint8_t pub[AUDIT_PUB_LEN];
	size_t len;
	int r;

	if (snprintf(path, sizeof(path), "%s/%s", state_dir, AUDIT_FIRST_PUB_PATH) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	r = fileio_read_all(path, 1024, &buf, &len);
	if (r < 0)
		return r;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\r'))
		len--;
	r = audit_unhex(buf, len, pub, sizeof(pub));
	if (r == 0)
		audit_hex(pub, sizeof(pub), ret);
	free(buf);
	return r;
}
