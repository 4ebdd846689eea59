/* SPDX-License-Identifier: GPL-2.0-only */
/* Socket creation by protocol: an agent's ping (ICMP datagram) sockets are refused like raw
 * sockets, because no address hook judges what they send; TCP and UDP stay allowed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mas_decide.h"

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
