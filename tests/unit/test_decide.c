/* SPDX-License-Identifier: GPL-2.0-only */
/* The verdict logic the BPF programs run, compiled on the host: every branch of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "mas_decide.h"

static const struct mas_rule ai = { .port_lo = 443,
				    .port_hi = 443,
				    .dest = 3,
				    .protos = MAS_PROTO_TCP,
				    .flags = MAS_RULE_PROTECTED };
static const struct mas_rule web = { .port_lo = 0,
				     .port_hi = 65535,
				     .dest = 70,
				     .protos = MAS_PROTO_TCP | MAS_PROTO_UDP };

static struct mas_agent_val agent(__u8 mode)
{
	struct mas_agent_val a = { .agent_id = 42, .mode = mode };

	a.grants[0] = 1ull << 3; /* ai */
	return a;
}

static void test_agent(void **state)
{
	struct mas_agent_val a = agent(MAS_MODE_ENFORCE);
	struct mas_decision d;

	mas_decide_addr(&a, &ai, MAS_MODE_ENFORCE, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
	assert_int_equal(d.reason, MAS_REASON_GRANTED);
	assert_int_equal(d.allow, 1);
	assert_int_equal(d.dest, 3);

	mas_decide_addr(&a, &web, MAS_MODE_ENFORCE, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_DENY);
	assert_int_equal(d.reason, MAS_REASON_NOT_GRANTED);
	assert_int_equal(d.allow, 0);
	assert_int_equal(d.dest, 70);

	mas_decide_addr(&a, NULL, MAS_MODE_ENFORCE, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_DENY);
	assert_int_equal(d.reason, MAS_REASON_NO_DESTINATION);
	assert_int_equal(d.dest, MAS_NO_DEST);
	assert_int_equal(d.allow, 0);

	a.grants[1] = 1ull << (70 - 64);
	mas_decide_addr(&a, &web, MAS_MODE_ENFORCE, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
}

static void test_audit_mode(void **state)
{
	struct mas_agent_val a = agent(MAS_MODE_AUDIT);
	struct mas_decision d;

	/* the agent's own mode decides, not the global one */
	mas_decide_addr(&a, &web, MAS_MODE_ENFORCE, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_WOULD_DENY);
	assert_int_equal(d.reason, MAS_REASON_NOT_GRANTED);
	assert_int_equal(d.allow, 1);
	mas_decide_addr(&a, &ai, MAS_MODE_ENFORCE, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
	a.mode = MAS_MODE_ENFORCE;
	mas_decide_addr(&a, &web, MAS_MODE_AUDIT, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_DENY);
}

static void test_no_agent(void **state)
{
	struct mas_decision d;

	mas_decide_addr(NULL, &ai, MAS_MODE_ENFORCE, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_DENY);
	assert_int_equal(d.reason, MAS_REASON_PROTECTED);
	assert_int_equal(d.allow, 0);
	mas_decide_addr(NULL, &web, MAS_MODE_ENFORCE, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
	assert_int_equal(d.reason, MAS_REASON_NOT_AGENT);
	mas_decide_addr(NULL, NULL, MAS_MODE_ENFORCE, &d);
	assert_int_equal(d.allow, 1);
	mas_decide_addr(NULL, &ai, MAS_MODE_AUDIT, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_WOULD_DENY);
	assert_int_equal(d.allow, 1);
}

static void test_grant_bounds(void **state)
{
	struct mas_agent_val a = agent(MAS_MODE_ENFORCE);

	memset(a.grants, 0xff, sizeof(a.grants));
	assert_true(mas_granted(&a, MAS_MAX_DESTS - 1));
	assert_false(mas_granted(&a, MAS_MAX_DESTS));
	assert_false(mas_granted(&a, MAS_NO_DEST));
}

static void test_socket(void **state)
{
	struct mas_agent_val a = agent(MAS_MODE_ENFORCE);
	struct mas_decision d;

	mas_decide_socket(&a, MAS_AF_INET, 1 /* SOCK_STREAM */, &d);
	assert_int_equal(d.allow, 1);
	mas_decide_socket(&a, MAS_AF_INET, MAS_SOCK_RAW | 02000000 /* SOCK_CLOEXEC */, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_DENY);
	assert_int_equal(d.reason, MAS_REASON_RAW_SOCKET);
	mas_decide_socket(&a, MAS_AF_PACKET, 2 /* SOCK_DGRAM */, &d);
	assert_int_equal(d.reason, MAS_REASON_PACKET_SOCKET);
	assert_int_equal(d.allow, 0);
	mas_decide_socket(NULL, MAS_AF_PACKET, MAS_SOCK_RAW, &d);
	assert_int_equal(d.allow, 1);
	a.mode = MAS_MODE_AUDIT;
	mas_decide_socket(&a, MAS_AF_INET6, MAS_SOCK_RAW, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_WOULD_DENY);
	assert_int_equal(d.allow, 1);
}

static void test_rules(void **state)
{
	struct mas_prefix_val v = { .n_rules = 2, .rules = { ai, web } };

	assert_int_equal(mas_match_rule(&v, 443, MAS_PROTO_TCP)->dest, 3);
	assert_int_equal(mas_match_rule(&v, 444, MAS_PROTO_TCP)->dest, 70);
	assert_int_equal(mas_match_rule(&v, 443, MAS_PROTO_UDP)->dest, 70);
	assert_null(mas_match_rule(&v, 443, 0));
	v.n_rules = 1;
	assert_null(mas_match_rule(&v, 444, MAS_PROTO_TCP));
	v.n_rules = 1000; /* a corrupt count is bounded */
	assert_non_null(mas_match_rule(&v, 443, MAS_PROTO_TCP));
	assert_int_equal(mas_proto_bit(6), MAS_PROTO_TCP);
	assert_int_equal(mas_proto_bit(17), MAS_PROTO_UDP);
	assert_int_equal(mas_proto_bit(1), 0);
}

static void test_v4mapped(void **state)
{
	struct in6_addr a;

	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a);
	assert_true(mas_v4mapped((const __u32 *)&a));
	inet_pton(AF_INET6, "::1", &a);
	assert_false(mas_v4mapped((const __u32 *)&a));
	inet_pton(AF_INET6, "::127.0.0.1", &a); /* v4-compatible, not mapped */
	assert_false(mas_v4mapped((const __u32 *)&a));
	inet_pton(AF_INET6, "64:ff9b::127.0.0.1", &a);
	assert_false(mas_v4mapped((const __u32 *)&a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent),	 cmocka_unit_test(test_audit_mode),
		cmocka_unit_test(test_no_agent), cmocka_unit_test(test_grant_bounds),
		cmocka_unit_test(test_socket),	 cmocka_unit_test(test_rules),
		cmocka_unit_test(test_v4mapped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
