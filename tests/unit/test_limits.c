/* SPDX-License-Identifier: GPL-2.0-only */
/* The bucket arithmetic and the rate-limit verdicts the BPF programs run (mas_decide.h), on a
 * fake clock; and the compiler's stable keys and class table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compile.h"
#include "mas_decide.h"

#define SEC_NS 1000000000ull
#define MIN_NS (60 * SEC_NS)

/* A request bucket of the given numbers, new and full at time 0. */
struct fake {
	__u64 tokens, last, rate, cap;
};

static void fake_init(struct fake *f, __u64 per_minute, __u64 burst)
{
	f->rate = per_minute;
	f->cap = burst * MAS_REQ_SCALE;
	f->tokens = f->cap;
	f->last = 0;
}

static int take(struct fake *f, __u64 now)
{
	return mas_bucket_take(&f->tokens, &f->last, now, f->rate, f->cap, MAS_REQ_SCALE);
}

static void test_burst_then_refill(void **state)
{
	struct fake f;
	int n = 0;

	fake_init(&f, 100, 10); /* the threat model's AI endpoints: 100/min, burst 10 */
	for (int i = 0; i < 50; i++)
		n += take(&f, 0);
	assert_int_equal(n, 10);
	/* one token per 0.6 s: not yet at 0.599 s, then exactly at 0.6 s */
	assert_false(take(&f, 599999999ull));
	assert_true(take(&f, 600000000ull));
	assert_false(take(&f, 600000000ull));
}

/* Over any window T, admissions never exceed burst + rate x T; a caller that stays under the
 * rate is never refused. */
static void test_bound_and_under_rate(void **state)
{
	struct fake f;
	__u64 t = 0;
	int admitted = 0;

	fake_init(&f, 20, 5); /* authentication: 20/min, burst 5 */
	for (t = 0; t <= 10 * MIN_NS; t += 7777777ull) /* hammering every 7.8 ms for 10 min */
		admitted += take(&f, t);
	assert_true(admitted <= 5 + 20 * 10);
	assert_true(admitted >= 5 + 20 * 10 - 1);

	fake_init(&f, 20, 5);
	for (int i = 0; i < 1000; i++) /* 1000 calls spaced exactly at the rate: all pass */
		assert_true(take(&f, 1 * SEC_NS + (__u64)i * 3 * SEC_NS));
}

static void test_clock_behind_and_idle(void **state)
{
	struct fake f;

	fake_init(&f, 60, 2);
	f.last = 10 * SEC_NS;
	assert_true(take(&f, 10 * SEC_NS));
	assert_true(take(&f, 9 * SEC_NS)); /* another core read the clock earlier: no refill */
	assert_false(take(&f, 9 * SEC_NS));
	assert_int_equal(f.last, 10 * SEC_NS); /* never moves backwards */
	/* idle for years: full, not overflowed */
	assert_true(take(&f, 10 * SEC_NS + 100ull * 365 * 24 * 3600 * SEC_NS));
	assert_int_equal(f.tokens, f.cap - MAS_REQ_SCALE);
}

/* New numbers rescale, never refill: tokens are kept, clamped to a smaller capacity. */
static void test_rescale(void **state)
{
	struct fake f;

	fake_init(&f, 6, 5);
	for (int i = 0; i < 5; i++)
		assert_true(take(&f, 0));
	f.rate = 60; /* a larger rate and burst: still empty */
	f.cap = 8 * MAS_REQ_SCALE;
	assert_false(take(&f, 0));
	assert_true(take(&f, SEC_NS)); /* the new rate from now on */
	fake_init(&f, 6, 5);
	assert_true(take(&f, 0)); /* 4 left */
	f.cap = 2 * MAS_REQ_SCALE;
	assert_true(take(&f, 0));
	assert_true(take(&f, 0));
	assert_false(take(&f, 0));
}

static void test_bytes(void **state)
{
	__u64 cap = 65536ull * MAS_BYTE_SCALE, tokens = cap, last = 0, sent = 0;
	__u64 rate = 1000000; /* 1 MB/s */

	/* 1500-byte packets offered every 100 us (15 MB/s) for 10 s: 1 MB/s plus the burst */
	for (__u64 t = 0; t < 10 * SEC_NS; t += 100000)
		if (mas_bucket_take(&tokens, &last, t, rate, cap, 1500 * MAS_BYTE_SCALE))
			sent += 1500;
	assert_true(sent <= 10 * rate + 65536);
	assert_true(sent >= 10 * rate + 65536 - 3000);
	/* the largest values the policy allows do not overflow */
	cap = MAS_BURST_BYTES_MAX * MAS_BYTE_SCALE;
	tokens = 0;
	last = 0;
	assert_true(mas_bucket_take(&tokens, &last, SEC_NS, 1ull << 40, cap, cap));
	tokens = 0;
	last = 0;
	assert_false(mas_bucket_take(&tokens, &last, 1, 1, cap, MAS_BYTE_SCALE));
}

static void test_refuse_and_udp_memory(void **state)
{
	struct mas_decision d = { .verdict = MAS_VERDICT_ALLOW };
	__u32 paid[MAS_SK_PAID] = { 0 };
	__u8 next = 0;

	mas_refuse(&d, MAS_VERDICT_RATE_LIMITED, MAS_REASON_BUCKET_EMPTY, MAS_MODE_ENFORCE);
	assert_int_equal(d.verdict, MAS_VERDICT_RATE_LIMITED);
	assert_int_equal(d.allow, 0);
	d.verdict = MAS_VERDICT_ALLOW;
	mas_refuse(&d, MAS_VERDICT_CAPPED, MAS_REASON_CONN_CAP, MAS_MODE_AUDIT);
	assert_int_equal(d.verdict, MAS_VERDICT_WOULD_DENY);
	assert_int_equal(d.reason, MAS_REASON_CONN_CAP);
	assert_int_equal(d.allow, 1);

	assert_false(mas_sk_paid(paid, 7));
	mas_sk_remember(paid, &next, 7);
	assert_true(mas_sk_paid(paid, 7));
	for (__u32 k = 100; k < 100 + MAS_SK_PAID; k++)
		mas_sk_remember(paid, &next, k);
	assert_false(mas_sk_paid(paid, 7)); /* the oldest went */
	assert_true(mas_sk_paid(paid, 100 + MAS_SK_PAID - 1));
}

static void test_compile_keys(void **state)
{
	static const char yaml[] =
		"version: 1\n"
		"destinations:\n"
		"  ai: { cidrs: [10.0.0.1/32], class: ai_endpoints }\n"
		"  db: { cidrs: [10.0.5.10/32], max_connections: 20 }\n"
		"rate_limits:\n"
		"  ai_endpoints: { requests_per_minute: 100, burst_size: 10 }\n"
		"  authentication: { requests_per_minute: 20, burst_size: 5,\n"
		"                    bytes_per_second: 1000, burst_bytes: 99999999999 }\n"
		"permissions: { p: [ai, db] }\n"
		"roles: { r: [p] }\n"
		"agents: { a: { unit: a.service, role: r } }\n";
	struct mas_policy *p = NULL;
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(policy_parse_buffer(yaml, sizeof(yaml) - 1, "t.yaml", &p, &err), 0);
	assert_int_equal(compile_policy(p, NULL, 1, 0, &c, &err), 0);
	assert_int_equal(c->n_classes, 2);
	assert_int_equal(c->classes[0].key, compile_class_key("ai_endpoints"));
	assert_int_equal(c->classes[0].per_minute, 100);
	assert_int_equal(c->classes[0].burst, 10);
	assert_int_equal(c->classes[1].burst_bytes, MAS_BURST_BYTES_MAX);
	assert_int_equal(c->n_v4, 2);
	for (size_t i = 0; i < c->n_v4; i++) {
		const struct mas_rule *r = &c->v4[i].val.rules[0];

		if (r->max_conn) {
			assert_int_equal(r->max_conn, 20);
			assert_int_equal(r->dest_key, compile_dest_key("db"));
			assert_int_equal(r->class_key, 0);
		} else {
			assert_int_equal(r->class_key, compile_class_key("ai_endpoints"));
			assert_int_equal(r->dest_key, compile_dest_key("ai"));
		}
	}
	assert_int_not_equal(compile_class_key("ai_endpoints"),
			     compile_class_key("authentication"));
	compile_free(c);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refill),
		cmocka_unit_test(test_bound_and_under_rate),
		cmocka_unit_test(test_clock_behind_and_idle),
		cmocka_unit_test(test_rescale),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_refuse_and_udp_memory),
		cmocka_unit_test(test_compile_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
