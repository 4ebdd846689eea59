/* SPDX-License-Identifier: GPL-2.0-only */
/* Who may call masd: uid and groups from the socket mapped to the policy's control roles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "control.h"
#include "policy.h"

static struct mas_policy *policy;

static int setup(void **state)
{
	static const char yaml[] = "version: 1\n"
				   "roles: { admin: [all], user: [], agent: [] }\n"
				   "control:\n"
				   "  admin: [\"uid:1000\", \"gid:2000\"]\n"
				   "  user: [\"uid:1001\", \"gid:3000\"]\n";
	struct mas_error err = { 0 };

	return policy_parse_buffer(yaml, sizeof(yaml) - 1, "c.yaml", &policy, &err);
}

static int teardown(void **state)
{
	policy_free(policy);
	return 0;
}

static void test_roles(void **state)
{
	gid_t none[] = { 5 }, admin_group[] = { 5, 2000 }, user_group[] = { 3000 };

	assert_int_equal(control_access_of(policy, 0, NULL, 0), CONTROL_ADMIN);
	assert_int_equal(control_access_of(policy, 1000, none, 1), CONTROL_ADMIN);
	assert_int_equal(control_access_of(policy, 1001, none, 1), CONTROL_READ);
	assert_int_equal(control_access_of(policy, 1002, none, 1), CONTROL_NONE);
	assert_int_equal(control_access_of(policy, 1002, admin_group, 2), CONTROL_ADMIN);
	assert_int_equal(control_access_of(policy, 1002, user_group, 1), CONTROL_READ);
	/* the best of several grants wins */
	assert_int_equal(control_access_of(policy, 1001, admin_group, 2), CONTROL_ADMIN);
	/* a uid is not a gid: uid 2000 is nobody here */
	assert_int_equal(control_access_of(policy, 2000, NULL, 0), CONTROL_NONE);
}

static void test_bucket(void **state)
{
	struct control_bucket b = { .uid = 7, .tokens = CONTROL_FAIL_BURST, .last_usec = 1 };
	uint64_t t = 1;

	for (int i = 0; i < CONTROL_FAIL_BURST; i++)
		assert_true(control_bucket_take(&b, t));
	assert_false(control_bucket_take(&b, t)); /* burst spent */
	/* 20 per minute: one token every 3 s */
	assert_in_range(control_bucket_wait(&b), 2999999, 3000001);
	t += 2900000;
	assert_false(control_bucket_take(&b, t));
	t += 100001;
	assert_true(control_bucket_take(&b, t));
	assert_false(control_bucket_take(&b, t));
	/* a long pause refills to the burst, never beyond */
	t += 3600ull * 1000000;
	for (int i = 0; i < CONTROL_FAIL_BURST; i++)
		assert_true(control_bucket_take(&b, t));
	assert_false(control_bucket_take(&b, t));
}

static void test_self(void **state)
{
	static const char yaml[] = "version: 1\n"
				   "roles: { agent: [] }\n"
				   "agents:\n"
				   "  a: { unit: a.service, role: agent, user: nobody }\n"
				   "  b: { unit: b.service, role: agent, user: root }\n";
	struct mas_policy *p = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(policy_parse_buffer(yaml, sizeof(yaml) - 1, "s.yaml", &p, &err), 0);
	assert_int_equal(control_access_of(p, 65534, NULL, 0), CONTROL_SELF);
	assert_true(control_agent_is_uid(p, 0, 65534));
	assert_false(control_agent_is_uid(p, 1, 65534));
	assert_false(control_agent_is_uid(p, 5, 65534));
	assert_int_equal(control_access_of(p, 65533, NULL, 0), CONTROL_NONE);
	policy_free(p);
}

static void test_no_policy(void **state)
{
	assert_int_equal(control_access_of(NULL, 0, NULL, 0), CONTROL_ADMIN);
	assert_int_equal(control_access_of(NULL, 1000, NULL, 0), CONTROL_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_no_policy),
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_self),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
