/* SPDX-License-Identifier: GPL-2.0-only */
/* Local aliases: a protected destination on this host is protected at every address the
 * service may be reached at (0.0.0.0, ::, 127.0.0.0/8, ::1, the host's addresses), for a process
 * that is no agent, with the very lookup and verdict code the programs run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "compile.h"
#include "mas_decide.h"
#include "policy.h"

static struct mas_policy *parse(const char *yaml)
{
	struct mas_policy *p = NULL;
	struct mas_error err = { 0 };

	if (policy_parse_buffer(yaml, strlen(yaml), "t.yaml", &p, &err) < 0)
		fail_msg("parse: %s", err.msg);
	return p;
}

static struct mas_cidr host(const char *a)
{
	struct mas_cidr c = { 0 };

	if (inet_pton(AF_INET, a, c.addr) == 1) {
		c.family = AF_INET;
		c.prefixlen = 32;
	} else {
		assert_int_equal(inet_pton(AF_INET6, a, c.addr), 1);
		c.family = AF_INET6;
		c.prefixlen = 128;
	}
	return c;
}

static bool in_prefix(const uint8_t *addr, const uint8_t *net, unsigned plen)
{
	for (unsigned i = 0; i < plen; i++) {
		unsigned bit = 0x80 >> (i % 8);

		if ((addr[i / 8] & bit) != (net[i / 8] & bit))
			return false;
	}
	return true;
}

/* What the programs do: longest prefix, first matching rule, verdict for a process that is no
 * agent. v4-mapped addresses are IPv4, as in mas_addr_hook. */
static int verdict_nonagent(const struct mas_compiled *c, const char *addr, uint16_t port,
			    uint8_t proto)
{
	const struct mas_prefix_val *best = NULL;
	struct mas_decision d = { 0 };
	struct mas_cidr a = host(addr);
	int bestlen = -1;

	if (a.family == AF_INET6 && mas_v4mapped((const __u32 *)a.addr)) {
		memmove(a.addr, a.addr + 12, 4);
		a.family = AF_INET;
	}
	if (a.family == AF_INET) {
		for (size_t i = 0; i < c->n_v4; i++)
			if ((int)c->v4[i].key.prefixlen > bestlen &&
			    in_prefix(a.addr, c->v4[i].key.addr, c->v4[i].key.prefixlen)) {
				best = &c->v4[i].val;
				bestlen = (int)c->v4[i].key.prefixlen;
			}
	} else {
		for (size_t i = 0; i < c->n_v6; i++)
			if ((int)c->v6[i].key.prefixlen > bestlen &&
			    in_prefix(a.addr, c->v6[i].key.addr, c->v6[i].key.prefixlen)) {
				best = &c->v6[i].val;
				bestlen = (int)c->v6[i].key.prefixlen;
			}
	}
	mas_decide_addr(NULL, best ? mas_match_rule(best, port, proto) : NULL, MAS_MODE_ENFORCE,
			&d);
	return d.verdict;
}

static const char *local_policy =
	"version: 1\n"
	"destinations:\n"
	"  ai: { cidrs: [127.0.0.1/32], ports: [7000], protocols: [tcp, "
	"udp], protected: true }\n"
	"  open: { cidrs: [127.0.0.1/32], ports: [8000] }\n"
	"  remote: { cidrs: [10.0.5.10/32], ports: [5432], protected: true "
	"}\n";

static void test_loopback_aliases(void **state)
{
	struct mas_policy *p = parse(local_policy);
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(compile_policy(p, NULL, 1, 0, &c, &err), 0);
	/* the hole: a service listening on all addresses, given as 127.0.0.1 */
	assert_int_equal(verdict_nonagent(c, "127.0.0.1", 7000, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "127.0.0.2", 7000, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "127.255.255.254", 7000, MAS_PROTO_UDP),
			 MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "0.0.0.0", 7000, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "::", 7000, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "::1", 7000, MAS_PROTO_UDP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "::ffff:127.0.0.9", 7000, MAS_PROTO_TCP),
			 MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "::ffff:0.0.0.0", 7000, MAS_PROTO_TCP),
			 MAS_VERDICT_DENY);
	/* the same ports and protocols only */
	assert_int_equal(verdict_nonagent(c, "127.0.0.2", 7001, MAS_PROTO_TCP), MAS_VERDICT_ALLOW);
	assert_int_equal(verdict_nonagent(c, "::1", 7001, MAS_PROTO_TCP), MAS_VERDICT_ALLOW);
	/* a destination that is not protected gets no aliases; nor does a remote one */
	assert_int_equal(verdict_nonagent(c, "127.0.0.2", 8000, MAS_PROTO_TCP), MAS_VERDICT_ALLOW);
	assert_int_equal(verdict_nonagent(c, "10.0.5.10", 5432, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "127.0.0.1", 5432, MAS_PROTO_TCP), MAS_VERDICT_ALLOW);
	/* aliases keep the destination, so a granted agent may use them */
	for (size_t i = 0; i < c->n_v4; i++)
		if (c->v4[i].key.prefixlen == 8) {
			assert_int_equal(c->v4[i].key.addr[0], 127);
			assert_int_equal(c->v4[i].val.n_rules, 1);
			assert_int_equal(c->v4[i].val.rules[0].dest, 0);
			assert_int_equal(c->v4[i].val.rules[0].port_lo, 7000);
			assert_int_equal(c->v4[i].val.rules[0].protos,
					 MAS_PROTO_TCP | MAS_PROTO_UDP);
			assert_true(c->v4[i].val.rules[0].flags & MAS_RULE_PROTECTED);
		}
	compile_free(c);
	policy_free(p);
}

static void test_host_addresses(void **state)
{
	/* given as the host's LAN address, reachable at loopback and at its other addresses */
	struct mas_policy *p =
		parse("version: 1\n"
		      "destinations:\n"
		      "  db: { cidrs: [192.0.2.7/32], ports: [5432], protected: true "
		      "}\n");
	struct mas_cidr local[] = {
		host("192.0.2.7"), host("198.51.100.3"), host("2001:db8::7"),
		host("fe80::1"),   host("192.0.2.255"),	 host("255.255.255.255")
	};
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(compile_policy_local(p, NULL, local, 6, 1, 0, &c, &err), 0);
	for (size_t i = 0; i < 6; i++) {
		char buf[64];

		inet_ntop(local[i].family, local[i].addr, buf, sizeof(buf));
		assert_int_equal(verdict_nonagent(c, buf, 5432, MAS_PROTO_TCP), MAS_VERDICT_DENY);
		assert_int_equal(verdict_nonagent(c, buf, 5433, MAS_PROTO_TCP), MAS_VERDICT_ALLOW);
	}
	assert_int_equal(verdict_nonagent(c, "127.0.0.1", 5432, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "::", 5432, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "192.0.2.8", 5432, MAS_PROTO_TCP), MAS_VERDICT_ALLOW);
	compile_free(c);

	/* without the host's addresses it is a remote destination: no aliases */
	assert_int_equal(compile_policy(p, NULL, 1, 0, &c, &err), 0);
	assert_int_equal(c->n_v4, 1);
	assert_int_equal(c->n_v6, 0);
	assert_int_equal(verdict_nonagent(c, "127.0.0.1", 5432, MAS_PROTO_TCP), MAS_VERDICT_ALLOW);
	compile_free(c);
	policy_free(p);
}

static void test_v6_and_resolved(void **state)
{
	/* ::1 brings in the IPv4 aliases too; a host name resolved to loopback counts */
	struct mas_policy *p =
		parse("version: 1\n"
		      "destinations:\n"
		      "  a: { cidrs: [\"::1/128\"], ports: [9000], protected: true }\n"
		      "  b: { hosts: [localhost], ports: [9100], protected: true }\n");
	struct mas_cidr lo = host("127.0.0.1");
	struct mas_dest_addrs addrs[2] = { { 0 }, { .cidrs = &lo, .n_cidrs = 1 } };
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(compile_policy(p, addrs, 1, 0, &c, &err), 0);
	assert_int_equal(verdict_nonagent(c, "127.3.2.1", 9000, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "0.0.0.0", 9000, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "127.3.2.1", 9100, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	assert_int_equal(verdict_nonagent(c, "::", 9100, MAS_PROTO_TCP), MAS_VERDICT_DENY);
	/* ::1 is a's own prefix: one rule there, not a duplicate alias */
	for (size_t i = 0; i < c->n_v6; i++)
		if (c->v6[i].key.addr[15] == 1)
			assert_int_equal(c->v6[i].val.n_rules, 2); /* a's own, b's alias */
	compile_free(c);
	policy_free(p);
}

static void test_covering_destination(void **state)
{
	/* a protected 127.0.0.0/8 already covers the loopback alias: no second /8 rule */
	struct mas_policy *p =
		parse("version: 1\n"
		      "destinations:\n"
		      "  lo: { cidrs: [127.0.0.0/8], ports: [22], protected: true }\n");
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(compile_policy(p, NULL, 1, 0, &c, &err), 0);
	for (size_t i = 0; i < c->n_v4; i++)
		assert_int_equal(c->v4[i].val.n_rules, 1);
	assert_int_equal(c->n_v4, 2); /* 127.0.0.0/8 and 0.0.0.0/32 */
	assert_int_equal(c->n_v6, 2); /* :: and ::1 */
	compile_free(c);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback_aliases),
		cmocka_unit_test(test_host_addresses),
		cmocka_unit_test(test_v6_and_resolved),
		cmocka_unit_test(test_covering_destination),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
