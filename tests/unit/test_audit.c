/* SPDX-License-Identifier: GPL-2.0-only */
/* Unit tests of the audit trail: canonical encoding, keys, export parser, the writer into an
 * in-memory journal, and the verifier against every kind of tampering. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "audit.h"
#include "audit_key.h"
#include "audit_record.h"
#include "audit_verify.h"
#include "keys.h"
#include "../lib/audit_tamper.h"

#define T0 1700000000000000ULL
#define HOUR 3600000000ULL

static uint64_t fake_now = T0;
static struct tlog captured;
static bool sink_down;
static char state_dir[256];
/* A kill -9 inside a key change: the Nth time the writer or its keyring passes crash_step, the
 * records so far go to crash_file and the process ends on the spot. */
static const char *crash_step;
static int crash_nth;
static char crash_file[300];

static uint64_t fake_clock(void *ud)
{
	fake_now += 1000;
	return fake_now;
}

static int fake_sink(void *ud, const struct iovec *iov, int n)
{
	struct trec r = { 0 };
	char pid[24];

	if (sink_down)
		return -ECONNREFUSED;
	for (int i = 0; i < n; i++) {
		const char *s = iov[i].iov_base, *eq = memchr(s, '=', iov[i].iov_len);
		size_t vl;
		char name[128];
		struct audit_kv seal[4];

		assert_non_null(eq);
		snprintf(name, sizeof(name), "%.*s", (int)(eq - s), s);
		vl = iov[i].iov_len - (size_t)(eq - s) - 1;
		if (strcmp(name, AUDIT_SEAL_FIELD) == 0) {
			assert_int_equal(audit_seal_split(eq + 1, vl, seal), 0);
			for (int k = 0; k < 4; k++)
				trec_set(&r, seal[k].name, seal[k].value, seal[k].value_len);
			continue;
		}
		trec_set(&r, name, eq + 1, vl);
	}
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	trec_set(&r, "_PID", pid, strlen(pid));
	trec_set(&r, "_UID", "0", 1);
	tlog_push(&captured, r);
	return 0;
}

static void rm_state(void)
{
	char cmd[512];

	if (state_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
		assert_int_equal(system(cmd), 0);
	}
}

static void crash_hook(void *ud, const char *step)
{
	FILE *f;

	if (!crash_step || strcmp(step, crash_step) != 0 || --crash_nth > 0)
		return;
	f = fopen(crash_file, "we");
	if (!f || tlog_write(f, &captured) < 0 || fclose(f) != 0)
		_exit(3);
	_exit(0);
}

static int setup(void **s)
{
	snprintf(state_dir, sizeof(state_dir), "/tmp/test_audit.XXXXXX");
	assert_non_null(mkdtemp(state_dir));
	tlog_free(&captured);
	sink_down = false;
	fake_now = T0;
	return 0;
}

static int teardown(void **s)
{
	rm_state();
	tlog_free(&captured);
	return 0;
}

static struct mas_audit *open_writer(uint32_t n_ckpt)
{
	struct mas_audit_options o = {
		.state_dir = state_dir,
		.signed_logs = true,
		.checkpoint_records = n_ckpt,
		.checkpoint_seconds = 5,
		.sink = fake_sink,
		.clock_usec = fake_clock,
		.crash = crash_hook,
	};
	struct mas_audit *a = NULL;

	assert_int_equal(audit_open(&o, &a), 0);
	return a;
}

static void emit_n(struct mas_audit *a, int n)
{
	for (int i = 0; i < n; i++) {
		char msg[64], val[16];
		struct audit_field f[] = { { "MAS_AGENT", "copywriter" }, { "MAS_N", val } };

		snprintf(val, sizeof(val), "%d", i);
		snprintf(msg, sizeof(msg), "decision %d", i);
		assert_int_equal(audit_emit(a, "673b27a1fc6052449dd48a1948ba6a25",
					    MAS_CAT_AI_REQUESTS, LOG_INFO, msg, f, 2),
				 0);
	}
}

static void pinned(uint8_t pub[AUDIT_PUB_LEN])
{
	char hex[65];

	assert_int_equal(audit_first_pubkey(state_dir, hex), 0);
	assert_int_equal(audit_unhex(hex, 64, pub, AUDIT_PUB_LEN), 0);
}

static struct audit_report *verify_at(const struct tlog *l, uint64_t now, uint32_t retention)
{
	struct audit_verify_options o = { .now_usec = now, .retention_days = retention };
	struct audit_verifier *v = NULL;
	struct audit_report *rep = NULL;

	pinned(o.pinned);
	assert_int_equal(audit_verifier_new(&o, &v), 0);
	for (size_t i = 0; i < l->n; i++) {
		struct audit_kv *kv = trec_kv(&l->r[i]);

		assert_int_equal(audit_verifier_add(v, kv, l->r[i].n), 0);
		free(kv);
	}
	assert_int_equal(audit_verifier_finish(v, &rep), 0);
	audit_verifier_free(v);
	return rep;
}

static struct audit_report *verify(const struct tlog *l)
{
	return verify_at(l, fake_now + HOUR, 0);
}

static void dump(const struct audit_report *r)
{
	audit_report_print(stderr, r, false);
}

static bool has(const struct audit_report *r, enum audit_finding_kind k, uint64_t seq)
{
	for (size_t i = 0; i < r->n_findings; i++)
		if (r->findings[i].kind == k && r->findings[i].has_seq && r->findings[i].seq == seq)
			return true;
	return false;
}

static bool has_kind(const struct audit_report *r, enum audit_finding_kind k)
{
	for (size_t i = 0; i < r->n_findings; i++)
		if (r->findings[i].kind == k)
			return true;
	return false;
}

static void expect(const struct tlog *l, enum audit_finding_kind k, uint64_t seq, const char *what)
{
	struct audit_report *r = verify(l);

	if (!r->tampered || !has(r, k, seq) || !r->has_first_bad || r->first_bad_seq != seq) {
		fprintf(stderr, "%s: expected %s at %llu\n", what, audit_finding_name(k),
			(unsigned long long)seq);
		dump(r);
		fail();
	}
	audit_report_free(r);
}

static void expect_clean(const struct tlog *l)
{
	struct audit_report *r = verify(l);

	if (r->tampered || r->n_findings) {
		dump(r);
		fail();
	}
	audit_report_free(r);
}

/* ---- canonical encoding ---- */

static void test_hash_canonical(void **s)
{
	struct audit_kv a[] = { { "B", 1, "2", 1 },
				{ "A", 1, "1", 1 },
				{ "_PID", 4, "9", 1 },
				{ "MAS_HASH", 8, "x", 1 } };
	struct audit_kv b[] = { { "A", 1, "1", 1 }, { "B", 1, "2", 1 } };
	struct audit_kv c[] = { { "A", 1, "1B=2", 4 } };
	struct audit_kv d[] = { { "A", 1, "1", 1 }, { "B", 1, "3", 1 } };
	struct audit_kv e[] = { { "A", 1, "1\0x", 3 }, { "B", 1, "2", 1 } };
	uint8_t ha[32], hb[32], hc[32], hd[32], he[32];

	assert_int_equal(audit_record_hash(a, 4, ha), 0);
	assert_int_equal(audit_record_hash(b, 2, hb), 0);
	assert_int_equal(audit_record_hash(c, 1, hc), 0);
	assert_int_equal(audit_record_hash(d, 2, hd), 0);
	assert_int_equal(audit_record_hash(e, 2, he), 0);
	assert_memory_equal(ha, hb, 32); /* order, trusted fields and MAS_HASH do not count */
	assert_memory_not_equal(hb, hc, 32); /* length-prefixed: no field-boundary games */
	assert_memory_not_equal(hb, hd, 32);
	assert_memory_not_equal(hb, he, 32); /* binary-safe */
}

static void test_field_names(void **s)
{
	assert_true(audit_field_name_valid("MAS_AGENT", 9));
	assert_false(audit_field_name_valid("_PID", 4));
	assert_false(audit_field_name_valid("mas", 3));
	assert_false(audit_field_name_valid("1A", 2));
	assert_false(audit_field_name_valid("", 0));
}

static void test_hex_u64(void **s)
{
	uint8_t b[2];
	uint64_t u;

	assert_int_equal(audit_unhex("aB09", 4, b, 2), 0);
	assert_int_equal(b[0], 0xab);
	assert_int_equal(audit_unhex("ab0", 3, b, 2), -EINVAL);
	assert_int_equal(audit_unhex("zz00", 4, b, 2), -EINVAL);
	assert_int_equal(audit_parse_u64("18446744073709551615", 20, &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(audit_parse_u64("18446744073709551616", 20, &u), -EINVAL);
	assert_int_equal(audit_parse_u64("-1", 2, &u), -EINVAL);
	assert_int_equal(audit_parse_u64("", 0, &u), -EINVAL);
}

static void test_keys(void **s)
{
	struct audit_key *k = NULL, *k2 = NULL, *k3 = NULL;
	uint8_t pub[32], pub2[32], sig[64];
	char path[300];

	assert_int_equal(audit_key_generate(&k), 0);
	assert_int_equal(audit_key_generate(&k2), 0);
	audit_key_pub(k, pub);
	audit_key_pub(k2, pub2);
	assert_int_equal(audit_key_sign(k, "hello", 5, sig), 0);
	assert_int_equal(audit_sig_verify(pub, "hello", 5, sig), 0);
	assert_int_equal(audit_sig_verify(pub, "hellp", 5, sig), -EBADMSG);
	assert_int_equal(audit_sig_verify(pub2, "hello", 5, sig), -EBADMSG);
	sig[3] ^= 1;
	assert_int_equal(audit_sig_verify(pub, "hello", 5, sig), -EBADMSG);
	snprintf(path, sizeof(path), "%s/k", state_dir);
	assert_int_equal(audit_key_save(k, path), 0);
	assert_int_equal(audit_key_load(path, &k3), 0);
	audit_key_pub(k3, pub2);
	assert_memory_equal(pub, pub2, 32);
	audit_key_free(k);
	audit_key_free(k2);
	audit_key_free(k3);
}

/* ---- export format ---- */

struct collect {
	int entries;
	int fields;
	char last[64];
	size_t last_len;
};

static int collect_cb(void *ud, const struct audit_kv *kv, size_t n)
{
	struct collect *c = ud;

	c->entries++;
	c->fields += (int)n;
	if (n) {
		c->last_len = kv[n - 1].value_len < 64 ? kv[n - 1].value_len : 64;
		memcpy(c->last, kv[n - 1].value, c->last_len);
	}
	return 0;
}

static int parse_mem(const char *buf, size_t len, struct collect *c)
{
	FILE *f = fmemopen((void *)buf, len, "r");
	int r;

	memset(c, 0, sizeof(*c));
	assert_non_null(f);
	r = audit_export_parse(f, collect_cb, c, NULL);
	fclose(f);
	return r;
}

static void test_export_parse(void **s)
{
	static const char ok[] = "__CURSOR=s=1\nA=1\nBIN\n\x03\0\0\0\0\0\0\0a\nb\n\nC=2\n\n";
	static const char badname[] = "A B=1\n\n";
	static const char cut_len[] = "BIN\n\x03\0\0";
	static const char cut_data[] = "BIN\n\x09\0\0\0\0\0\0\0ab";
	static const char no_nl[] = "BIN\n\x01\0\0\0\0\0\0\0ax\n";
	static const char huge[] = "BIN\n\xff\xff\xff\xff\xff\xff\xff\x7f";
	static const char mid[] = "A=1\n\nB=2\n";
	static const char empty_name[] = "=x\n\n";
	struct collect c;

	assert_int_equal(parse_mem(ok, sizeof(ok) - 1, &c), 0);
	assert_int_equal(c.entries, 2);
	assert_int_equal(c.fields, 4);
	assert_int_equal(parse_mem(ok, 40, &c), -ENODATA);
	assert_int_equal(parse_mem(badname, sizeof(badname) - 1, &c), -EBADMSG);
	assert_int_equal(parse_mem(cut_len, sizeof(cut_len) - 1, &c), -ENODATA);
	assert_int_equal(parse_mem(cut_data, sizeof(cut_data) - 1, &c), -ENODATA);
	assert_int_equal(parse_mem(no_nl, sizeof(no_nl) - 1, &c), -EBADMSG);
	assert_int_equal(parse_mem(huge, sizeof(huge) - 1, &c), -E2BIG);
	assert_int_equal(parse_mem(mid, sizeof(mid) - 1, &c), -ENODATA);
	assert_int_equal(c.entries, 1); /* the entries before the cut are delivered */
	assert_int_equal(parse_mem(empty_name, sizeof(empty_name) - 1, &c), -EBADMSG);
	assert_int_equal(parse_mem("", 0, &c), 0);
	assert_int_equal(c.entries, 0);
}

static void test_export_roundtrip(void **s)
{
	struct audit_kv kv[] = { { "A", 1, "x\ny\0z", 5 }, { "B", 1, "plain", 5 } };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct collect c;

	assert_int_equal(audit_export_write(f, kv, 2), 0);
	assert_int_equal(audit_export_write(f, kv, 1), 0);
	fclose(f);
	assert_int_equal(parse_mem(buf, len, &c), 0);
	assert_int_equal(c.entries, 2);
	assert_int_equal(c.last_len, 5);
	assert_memory_equal(c.last, "x\ny\0z", 5);
	free(buf);
}

/* Random bytes must never crash the parser (run under ASan in `make check`). */
static void test_export_garbage(void **s)
{
	char buf[512];
	struct collect c;

	srand(1);
	for (int i = 0; i < 2000; i++) {
		size_t len = (size_t)(rand() % (int)sizeof(buf));

		for (size_t k = 0; k < len; k++) {
			int x = rand() % 8;

			buf[k] = x == 0 ? '\n' : x == 1 ? '=' : x == 2 ? 'A' : (char)rand();
		}
		(void)parse_mem(buf, len, &c);
	}
}

/* ---- writer and verifier ---- */

/* The signing key in force, as a thief of the "audit" keyring's active version would hold it. */
static struct audit_key *active_key(struct mas_audit *a)
{
	struct keys_material m;
	struct audit_key *k = NULL;

	assert_int_equal(keys_material_get(audit_keys(a), MAS_AUDIT_KEY_NAME, NULL, &m), 0);
	assert_int_equal(m.len, 32);
	assert_int_equal(audit_key_from_seed(m.bytes, &k), 0);
	keys_material_clear(&m);
	return k;
}

/* A chain with every kind of record: start, events, count checkpoints, a key change, a clean
 * shutdown, a restart, a second key change, a shutdown. Returns the retired first key. */
static struct audit_key *write_corpus(uint64_t *ret_kc1)
{
	struct audit_key *retired = NULL;
	struct mas_audit *a = open_writer(8);

	emit_n(a, 20);
	retired = active_key(a);
	assert_int_equal(audit_rotate_key(a), 0);
	*ret_kc1 = audit_next_seq(a) - 1;
	emit_n(a, 12);
	audit_close(a);
	a = open_writer(8);
	emit_n(a, 10);
	assert_int_equal(audit_rotate_key(a), 0);
	emit_n(a, 3);
	audit_close(a);
	return retired;
}

static void test_clean_chain(void **s)
{
	uint64_t kc;
	struct audit_key *retired = write_corpus(&kc);
	struct audit_report *r;

	expect_clean(&captured);
	r = verify(&captured);
	assert_int_equal(r->records, captured.n);
	assert_int_equal(r->key_changes, 2);
	assert_int_equal(r->runs, 2);
	assert_true(r->sealed && r->sealed_seq == r->last_seq);
	audit_report_free(r);
	audit_key_free(retired);
}

static void test_many_clean_runs(void **s)
{
	for (int run = 0; run < 12; run++) {
		struct mas_audit *a = open_writer(1 + (uint32_t)run % 5);

		emit_n(a, run * 3);
		if (run % 3 == 1)
			assert_int_equal(audit_rotate_key(a), 0);
		fake_now += 6000000; /* an idle period: the tick writes a heartbeat */
		audit_tick(a);
		emit_n(a, run % 4);
		audit_close(a);
		expect_clean(&captured);
	}
}

static void test_tamper_corpus(void **s)
{
	static const char *const ops[] = { "modify", "delete", "duplicate", "swap", "inject" };
	static const enum audit_finding_kind kinds[] = { AUDIT_F_MODIFIED, AUDIT_F_DELETED,
							 AUDIT_F_DUPLICATED, AUDIT_F_REORDERED,
							 AUDIT_F_INJECTED };
	uint64_t kc1, n_cases = 0;
	struct audit_key *retired = write_corpus(&kc1), *mallory = NULL;
	uint64_t last = captured.n - 1;

	assert_int_equal(audit_key_generate(&mallory), 0);
	for (uint64_t seq = 0; seq <= last; seq++) {
		for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
			struct tlog t = tlog_dup(&captured);
			char what[64];
			enum audit_finding_kind k = kinds[o];

			if (strcmp(ops[o], "swap") == 0 && seq == last) {
				tlog_free(&t);
				continue;
			}
			assert_int_equal(tamper_apply(&t, ops[o], seq), 0);
			snprintf(what, sizeof(what), "%s %llu", ops[o], (unsigned long long)seq);
			if (strcmp(ops[o], "delete") == 0 && seq == last)
				k = AUDIT_F_TRUNCATED; /* nothing after it shows the gap */
			if (strcmp(ops[o], "delete") == 0 && seq == 0) {
				/* only the retention promise shows a missing head */
				struct audit_report *r = verify_at(&t, fake_now + HOUR, 90);

				assert_true(r->tampered && has(r, AUDIT_F_SHORT_HISTORY, 0));
				assert_int_equal(r->first_bad_seq, 0);
				audit_report_free(r);
			} else {
				expect(&t, k, seq, what);
			}
			n_cases++;
			tlog_free(&t);
		}
		/* truncated tail: seq and everything after it gone. Cut right after a clean
		 * shutdown it looks like masd was stopped for good: a documented limit. */
		if (seq > 0 &&
		    strcmp(trec_get(&captured.r[tlog_find(&captured, seq - 1)], "MAS_REASON") ?: "",
			   "shutdown") != 0) {
			struct tlog t = tlog_dup(&captured);

			assert_int_equal(tamper_apply(&t, "truncate", seq), 0);
			expect(&t, AUDIT_F_TRUNCATED, seq, "truncate");
			n_cases++;
			tlog_free(&t);
		}
	}
	for (uint64_t seq = 0; seq <= last; seq++) {
		long i = tlog_find(&captured, seq);
		const char *type = trec_get(&captured.r[i], "MESSAGE_ID");
		struct tlog t;

		if (strcmp(type, "ceb3ac4182c65890a6543be716b9b837") == 0) {
			t = tlog_dup(&captured);
			assert_int_equal(tamper_resign(&t, seq, mallory), 0);
			expect(&t, AUDIT_F_FORGED_CHECKPOINT, seq, "forged checkpoint");
			tlog_free(&t);
			n_cases++;
			if (seq > kc1) {
				t = tlog_dup(&captured);
				assert_int_equal(tamper_resign(&t, seq, retired), 0);
				expect(&t, AUDIT_F_RETIRED_KEY, seq, "retired key");
				tlog_free(&t);
				n_cases++;
			}
		} else if (strcmp(type, "44999778e5ce55cb834e41ebed5ae7b7") == 0) {
			t = tlog_dup(&captured);
			assert_int_equal(tamper_foreign_key(&t, seq, mallory), 0);
			expect(&t, AUDIT_F_FOREIGN_KEY, seq, "foreign key");
			tlog_free(&t);
			n_cases++;
		}
	}
	fprintf(stderr, "tamper corpus: %llu cases over %llu records, all caught\n",
		(unsigned long long)n_cases, (unsigned long long)captured.n);
	audit_key_free(retired);
	audit_key_free(mallory);
}

static void test_tail(void **s)
{
	struct mas_audit *a = open_writer(100);
	struct audit_report *r;
	uint64_t t_last;

	emit_n(a, 5);
	t_last = fake_now;
	/* masd still running: the tail is unsealed but young */
	r = verify_at(&captured, t_last + 1000000, 0);
	assert_false(r->tampered);
	assert_true(has(r, AUDIT_F_UNSEALED_TAIL, 0));
	audit_report_free(r);
	/* nothing for a minute, no shutdown: heartbeats were due */
	r = verify_at(&captured, t_last + 60 * 1000000ULL, 0);
	assert_true(r->tampered);
	assert_true(has(r, AUDIT_F_TRUNCATED, 6));
	audit_report_free(r);
	/* records keep coming but nothing seals them any more */
	{
		struct tlog t = tlog_dup(&captured);
		long i = tlog_find(&t, 5);
		char tm[24];

		snprintf(tm, sizeof(tm), "%llu", (unsigned long long)(t_last + 59 * 1000000ULL));
		trec_set(&t.r[i], "MAS_TIME", tm, strlen(tm));
		trec_rehash(&t.r[i]);
		r = verify_at(&t, t_last + 60 * 1000000ULL, 0);
		assert_true(has(r, AUDIT_F_STALE_TAIL, 0));
		audit_report_free(r);
		tlog_free(&t);
	}
	audit_close(a);
}

static void test_spool(void **s)
{
	struct mas_audit *a = open_writer(4);

	emit_n(a, 3);
	sink_down = true;
	emit_n(a, 10);
	assert_true(audit_spooled(a) > 0);
	audit_tick(a);
	assert_true(audit_spooled(a) > 0);
	sink_down = false;
	audit_tick(a);
	assert_int_equal(audit_spooled(a), 0);
	emit_n(a, 2);
	audit_close(a);
	expect_clean(&captured);
	/* in order, no seq missing */
	for (size_t i = 0; i < captured.n; i++)
		assert_int_equal(strtoull(trec_get(&captured.r[i], "MAS_SEQ"), NULL, 10), i);
}

static void test_spool_across_restart(void **s)
{
	struct mas_audit *a = open_writer(4);

	emit_n(a, 3);
	sink_down = true;
	emit_n(a, 5);
	audit_close(a); /* journald still gone: the shutdown checkpoint is spooled too */
	sink_down = false;
	a = open_writer(4);
	emit_n(a, 2);
	audit_close(a);
	expect_clean(&captured);
}

static void test_lost_state(void **s)
{
	struct mas_audit *a = open_writer(4);
	uint8_t old[32];
	struct audit_report *r;
	char cmd[300];
	size_t i;

	emit_n(a, 5);
	audit_close(a);
	pinned(old);
	snprintf(cmd, sizeof(cmd), "rm -f '%s/audit/state'", state_dir);
	assert_int_equal(system(cmd), 0);
	a = open_writer(4);
	emit_n(a, 2);
	audit_close(a);
	/* the new chain says so loudly (its first record: seq 0 again) */
	for (i = captured.n; i-- > 0;)
		if (trec_get(&captured.r[i], "MAS_SEQ") &&
		    strcmp(trec_get(&captured.r[i], "MAS_SEQ"), "0") == 0)
			break;
	assert_true(i > 0);
	assert_string_equal(trec_get(&captured.r[i], "MAS_REASON"), "state-lost");
	assert_string_equal(trec_get(&captured.r[i], "PRIORITY"), "2");
	/* with the new pinned key, the old chain is foreign; either way it is reported */
	r = verify(&captured);
	assert_true(r->tampered);
	assert_true(r->n_findings == 1 && r->findings[0].kind == AUDIT_F_FOREIGN_CHAIN);
	audit_report_free(r);
	(void)old;
}

/* A crash inside a key change, after the certificate reached the history but before the next
 * key replaced the key file: the next start drops the uncommitted key and the chain verifies. */
static void test_crash_in_key_change(void **s)
{
	struct mas_audit *a = open_writer(4);
	char path[300], cmd[700];

	emit_n(a, 5);
	assert_int_equal(audit_rotate_key(a), 0);
	emit_n(a, 3);
	audit_close(a);
	snprintf(path, sizeof(path), "%s/audit/keys", state_dir);
	snprintf(cmd, sizeof(cmd), "printf ',%%064d:%%0128d' 7 7 >> '%s'", path);
	assert_int_equal(system(cmd), 0);
	a = open_writer(4);
	emit_n(a, 3);
	assert_int_equal(audit_rotate_key(a), 0);
	emit_n(a, 2);
	audit_close(a);
	expect_clean(&captured);
}

/* kill -9 at each step of a key change, the keyring's steps included: the next start either
 * drops the change or completes it, the old key ends up erased either way, and the journal
 * verifies clean through the crash, the restart and another key change. */
static void test_crash_at_each_key_change_step(void **s)
{
	static const struct {
		const char *step;
		int nth;
	} points[] = {
		{ "create:secret", 1 }, /* the next version's secret written, not committed */
		{ "create:state", 1 }, /* committed as pending */
		{ "flush:audited", 1 }, /* its records marked */
		{ "audit:checkpoint", 1 }, /* the key-change checkpoint written */
		{ "audit:history", 1 }, /* the certificate committed: the change must complete */
		{ "audit:record", 1 }, /* the key-change record written */
		{ "audit:switched", 1 }, /* the next key signs */
		{ "promote:state", 1 }, /* the keyring committed the activation */
		{ "flush:audited", 2 }, /* its records marked */
		{ "destroy:state", 1 }, /* the old version committed as destroyed */
		{ "flush:wiped", 1 }, /* its secret wiped */
	};

	for (size_t p = 0; p < sizeof(points) / sizeof(points[0]); p++) {
		struct keys_version_info *vs = NULL;
		struct mas_audit *a;
		struct tlog l = { 0 };
		size_t n = 0, live = 0;
		int status = 0;
		pid_t pid;
		FILE *f;

		rm_state();
		assert_int_equal(mkdir(state_dir, 0700), 0);
		tlog_free(&captured);
		a = open_writer(4);
		emit_n(a, 5);
		audit_close(a);
		snprintf(crash_file, sizeof(crash_file), "%s.crash", state_dir);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			crash_step = points[p].step;
			crash_nth = points[p].nth;
			a = open_writer(4);
			emit_n(a, 3);
			(void)audit_rotate_key(a);
			_exit(2); /* the step was never reached */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("crash at %s #%d: child status %d", points[p].step, points[p].nth,
				 status);
		f = fopen(crash_file, "re");
		assert_non_null(f);
		assert_int_equal(audit_export_parse(f, tlog_parse_cb, &l, NULL), 0);
		fclose(f);
		unlink(crash_file);
		tlog_free(&captured);
		captured = l;
		/* Without a journal to read back, the next start cannot find the records the crashed
		 * run wrote after its last state save: here they died in journald's socket. (With a
		 * real journald, test_audit_journal.sh kills at the same steps and keeps them.) */
		{
			char path[300], *buf = NULL, *v;
			unsigned long long seq;

			snprintf(path, sizeof(path), "%s/audit/state", state_dir);
			f = fopen(path, "re");
			assert_non_null(f);
			assert_true(getdelim(&buf, &n, 0, f) > 0);
			fclose(f);
			v = strstr(buf, "\nseq=");
			assert_non_null(v);
			seq = strtoull(v + 5, NULL, 10);
			free(buf);
			n = 0;
			while (captured.n > 0 &&
			       strtoull(trec_get(&captured.r[captured.n - 1], "MAS_SEQ"), NULL,
					10) >= seq)
				tlog_remove(&captured, captured.n - 1);
		}
		fake_now += 2000000;

		a = open_writer(4);
		emit_n(a, 2);
		assert_int_equal(audit_rotate_key(a), 0);
		emit_n(a, 2);
		assert_int_equal(keys_versions(audit_keys(a), MAS_AUDIT_KEY_NAME, &vs, &n), 0);
		for (size_t i = 0; i < n; i++)
			live += vs[i].state != KEYS_DESTROYED;
		free(vs);
		audit_close(a);
		if (live != 1)
			fail_msg("crash at %s #%d: %zu live audit key versions", points[p].step,
				 points[p].nth, live);
		print_message("crash at %s #%d\n", points[p].step, points[p].nth);
		expect_clean(&captured);
	}
}

/* A state dir from before the key moved onto the keyring: the key in audit/key, no keyring. The
 * old key certifies the keyring's first version (a key change in the chain), then is erased. */
static void test_legacy_key_file(void **s)
{
	struct mas_audit *a = open_writer(4);
	struct audit_key *k;
	struct audit_report *r;
	char path[300], cmd[700];

	emit_n(a, 5);
	k = active_key(a);
	audit_close(a);
	snprintf(path, sizeof(path), "%s/audit/key", state_dir);
	assert_int_equal(audit_key_save(k, path), 0);
	audit_key_free(k);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/keys'", state_dir);
	assert_int_equal(system(cmd), 0);

	a = open_writer(4);
	emit_n(a, 3);
	audit_close(a);
	assert_int_equal(access(path, F_OK), -1);
	expect_clean(&captured);
	r = verify(&captured);
	assert_int_equal(r->key_changes, 1);
	assert_int_equal(r->runs, 2);
	audit_report_free(r);
}

static void test_emit_rejects(void **s)
{
	struct mas_audit *a = open_writer(4);
	struct audit_field bad1[] = { { "MAS_SEQ", "1" } };
	struct audit_field bad2[] = { { "lower", "1" } };
	struct audit_field bad3[] = { { "_PID", "1" } };

	assert_int_equal(audit_emit(a, "x", "c", LOG_INFO, "m", bad1, 1), -EINVAL);
	assert_int_equal(audit_emit(a, "x", "c", LOG_INFO, "m", bad2, 1), -EINVAL);
	assert_int_equal(audit_emit(a, "x", "c", LOG_INFO, "m", bad3, 1), -EINVAL);
	audit_close(a);
	expect_clean(&captured);
}

static void test_unchained_injection(void **s)
{
	struct mas_audit *a = open_writer(4);
	struct trec r = { 0 };
	struct audit_report *rep;

	emit_n(a, 3);
	audit_close(a);
	trec_set(&r, "SYSLOG_IDENTIFIER", "masd", 4);
	trec_set(&r, "MESSAGE", "policy applied", 14);
	trec_set(&r, "MAS_AGENT", "x", 1);
	tlog_push(&captured, r);
	rep = verify(&captured);
	assert_true(rep->tampered);
	assert_int_equal(rep->findings[rep->n_findings - 1].kind, AUDIT_F_INJECTED);
	audit_report_free(rep);
}

static void test_wrong_pinned_key(void **s)
{
	struct mas_audit *a = open_writer(4);
	struct audit_verify_options o = { .now_usec = fake_now + HOUR };
	struct audit_verifier *v = NULL;
	struct audit_report *rep = NULL;

	emit_n(a, 3);
	audit_close(a);
	memset(o.pinned, 7, sizeof(o.pinned));
	assert_int_equal(audit_verifier_new(&o, &v), 0);
	for (size_t i = 0; i < captured.n; i++) {
		struct audit_kv *kv = trec_kv(&captured.r[i]);

		assert_int_equal(audit_verifier_add(v, kv, captured.r[i].n), 0);
		free(kv);
	}
	assert_int_equal(audit_verifier_finish(v, &rep), 0);
	assert_true(rep->tampered);
	assert_true(has_kind(rep, AUDIT_F_NO_CHAIN));
	audit_report_free(rep);
	audit_verifier_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_canonical),
		cmocka_unit_test(test_field_names),
		cmocka_unit_test(test_hex_u64),
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test(test_export_parse),
		cmocka_unit_test(test_export_roundtrip),
		cmocka_unit_test(test_export_garbage),
		cmocka_unit_test_setup_teardown(test_clean_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_clean_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_corpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_across_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_in_key_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_at_each_key_change_step, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_legacy_key_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emit_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unchained_injection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_pinned_key, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
