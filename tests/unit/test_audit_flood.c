/* SPDX-License-Identifier: GPL-2.0-only */
/* Flood control: a bounded rate per key, exact counts of what was held back, "N suppressed"
 * records that add up. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "audit.h"
#include "audit_flood.h"

static uint64_t reported;
static int summaries;

static int sink(void *ud, const struct iovec *iov, int n)
{
	for (int i = 0; i < n; i++)
		if (iov[i].iov_len > 15 && memcmp(iov[i].iov_base, "MAS_SUPPRESSED=", 15) == 0) {
			reported += strtoull((const char *)iov[i].iov_base + 15, NULL, 10);
			summaries++;
		}
	return 0;
}

static void test_flood(void **s)
{
	struct audit_flood_options o = { .rate_per_sec = 100, .burst = 10 };
	struct mas_audit_options ao = { .signed_logs = false, .sink = sink };
	struct audit_flood *f = NULL;
	struct mas_audit *a = NULL;
	uint64_t t = 1000000000, admitted = 0, other = 0, total = 100000;

	assert_int_equal(audit_flood_new(&o, &f), 0);
	assert_int_equal(audit_open(&ao, &a), 0);
	/* one agent hammers for one second: 100 000 attempts */
	for (uint64_t i = 0; i < total; i++) {
		admitted += audit_flood_admit(f, "copywriter", t + i * 10);
		/* a quiet agent is not starved by the noisy one */
		if (i % 1000 == 0)
			other += audit_flood_admit(f, "analyst", t + i * 10);
	}
	assert_true(admitted >= 100 && admitted <= 111); /* burst + one second of rate */
	assert_int_equal(other, 100);
	assert_int_equal(audit_flood_suppressed_total(f), total - admitted);
	assert_int_equal(audit_flood_report(f, a, t + total * 10), 1);
	assert_int_equal(reported, total - admitted); /* exact */
	assert_int_equal(audit_flood_report(f, a, t + total * 10), 0); /* reset */
	audit_close(a);
	audit_flood_free(f);
}

static void test_many_keys(void **s)
{
	struct audit_flood_options o = { .rate_per_sec = 1, .burst = 1, .max_keys = 8 };
	struct audit_flood *f = NULL;
	char key[32];
	uint64_t admitted = 0;

	assert_int_equal(audit_flood_new(&o, &f), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "agent%d", i);
		admitted += audit_flood_admit(f, key, 1000);
	}
	/* 6 keys of their own (3/4 of 8), then everything shares the overflow bucket */
	assert_int_equal(admitted, 7);
	assert_int_equal(audit_flood_suppressed_total(f), 1000 - admitted);
	audit_flood_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flood),
		cmocka_unit_test(test_many_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
