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
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
