/* SPDX-License-Identifier: GPL-2.0-only */
/* Socket creation by protocol: an agent's ping (ICMP datagram) sockets are refused like raw
 * sockets, because no address hook judges what they send; TCP and UDP stay allowed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mas_decide.h"

/* The program lets a socket through without the policy when mas_socket_needs_decision() says
 * so: over every family, type (with flag bits) and protocol byte, for an agent in enforce mode,
 * that must be exactly the sockets the decision allows. */
static void test_shortcut_never_skips_a_refusal(void **state)
{
	static const __u32 families[] = { 0, 1, MAS_AF_INET, MAS_AF_INET6, MAS_AF_PACKET, 16, 44 };
	static const __u32 type_flags[] = { 0, 04000 /* SOCK_NONBLOCK */,
					    02000000 /* SOCK_CLOEXEC */, 02004000 };
	struct mas_agent_val a = { .agent_id = 7, .mode = MAS_MODE_ENFORCE };
	struct mas_decision d;
	unsigned skipped = 0, refused = 0;

	(void)state;
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
		for (__u32 type = 0; type < 16; type++)
			for (size_t fl = 0; fl < 4; fl++)
				for (__u32 proto = 0; proto < 256; proto++) {
					__u32 t = type | type_flags[fl];

					d = (struct mas_decision){ 0 };
					mas_decide_socket_proto(&a, families[f], t, proto, &d);
					if (!mas_socket_needs_decision(families[f], t, proto)) {
						skipped++;
						assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
					} else if (d.verdict != MAS_VERDICT_ALLOW) {
						refused++;
					}
				}
	assert_true(skipped > 0);
	assert_true(refused > 0);
	/* TCP and UDP sockets are the shortcut's */
	assert_false(mas_socket_needs_decision(MAS_AF_INET, MAS_SOCK_STREAM, MAS_IPPROTO_TCP));
	assert_false(mas_socket_needs_decision(MAS_AF_INET6, 2, MAS_IPPROTO_UDP));
	assert_true(mas_socket_needs_decision(MAS_AF_INET, MAS_SOCK_RAW, 0));
	assert_true(mas_socket_needs_decision(MAS_AF_INET, 2, MAS_IPPROTO_ICMP));
	assert_true(mas_socket_needs_decision(MAS_AF_PACKET, 2, 0));
}

static void test_ping_sockets(void **state)
{
	struct mas_agent_val a = { .agent_id = 7, .mode = MAS_MODE_ENFORCE };
	struct mas_decision d = { 0 };

	mas_decide_socket_proto(&a, MAS_AF_INET, 2 /* SOCK_DGRAM */, MAS_IPPROTO_ICMP, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_DENY);
	assert_int_equal(d.reason, MAS_REASON_RAW_SOCKET);
	assert_int_equal(d.allow, 0);
	mas_decide_socket_proto(&a, MAS_AF_INET6, 2, MAS_IPPROTO_ICMPV6, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_DENY);
	mas_decide_socket_proto(&a, MAS_AF_INET, 2, MAS_IPPROTO_UDP, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
	mas_decide_socket_proto(&a, MAS_AF_INET, 2, 0, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
	mas_decide_socket_proto(&a, MAS_AF_INET6, 1 /* SOCK_STREAM */, MAS_IPPROTO_TCP, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
	/* protocol 1 over IPv6 is not ICMPv6 */
	mas_decide_socket_proto(&a, MAS_AF_INET6, 2, MAS_IPPROTO_ICMP, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
	/* a process that is no agent is not confined */
	mas_decide_socket_proto(NULL, MAS_AF_INET, 2, MAS_IPPROTO_ICMP, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_ALLOW);
	/* audit mode: would-deny, let through */
	a.mode = MAS_MODE_AUDIT;
	mas_decide_socket_proto(&a, MAS_AF_INET, 2, MAS_IPPROTO_ICMP, &d);
	assert_int_equal(d.verdict, MAS_VERDICT_WOULD_DENY);
	assert_int_equal(d.allow, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_sockets),
		cmocka_unit_test(test_shortcut_never_skips_a_refusal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
