/* SPDX-License-Identifier: GPL-2.0-only */
/* The compiler: prefixes carry their own and inherited rules, most specific first; grants,
 * modes and ids come out right; an overfull prefix is refused with its position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

static const struct mas_prefix_val *find4(const struct mas_compiled *c, const char *addr,
					  unsigned plen)
{
	uint8_t a[4];
	unsigned x[4];

	sscanf(addr, "%u.%u.%u.%u", &x[0], &x[1], &x[2], &x[3]);
	for (int i = 0; i < 4; i++)
		a[i] = (uint8_t)x[i];
	for (size_t i = 0; i < c->n_v4; i++)
		if (c->v4[i].key.prefixlen == plen && !memcmp(c->v4[i].key.addr, a, 4))
			return &c->v4[i].val;
	return NULL;
}

static void test_inheritance(void **state)
{
	struct mas_policy *p =
		parse("version: 1\n"
		      "destinations:\n"
		      "  net: { cidrs: [10.0.0.0/8] }\n"
		      "  db: { cidrs: [10.0.5.10/32], ports: [5432], protected: true }\n"
		      "  mid: { cidrs: [10.0.5.0/24], ports: [\"5000-6000\", 5432] }\n");
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };
	const struct mas_prefix_val *v;
	const struct mas_rule *r;

	assert_int_equal(compile_policy(p, NULL, 7, 3, &c, &err), 0);
	assert_int_equal(c->n_v4, 3);
	assert_int_equal(c->n_v6, 0);
	assert_int_equal(c->meta.generation, 7);
	assert_int_equal(c->meta.root_level, 3);

	v = find4(c, "10.0.5.10", 32);
	assert_non_null(v);
	/* own rule, then the /24's two (narrow port first), then the /8's */
	assert_int_equal(v->n_rules, 4);
	assert_int_equal(v->rules[0].dest, 1);
	assert_int_equal(v->rules[0].flags & MAS_RULE_PROTECTED, MAS_RULE_PROTECTED);
	assert_int_equal(v->rules[1].dest, 2);
	assert_int_equal(v->rules[1].port_lo, 5432);
	assert_int_equal(v->rules[2].dest, 2);
	assert_int_equal(v->rules[2].port_lo, 5000);
	assert_int_equal(v->rules[2].port_hi, 6000);
	assert_int_equal(v->rules[3].dest, 0);
	assert_int_equal(v->rules[3].port_lo, 0);
	assert_int_equal(v->rules[3].port_hi, 65535);

	/* the kernel's first match: most specific destination for each port */
	r = mas_match_rule(v, 5432, MAS_PROTO_TCP);
	assert_non_null(r);
	assert_int_equal(r->dest, 1);
	r = mas_match_rule(v, 5500, MAS_PROTO_TCP);
	assert_int_equal(r->dest, 2);
	r = mas_match_rule(v, 80, MAS_PROTO_TCP);
	assert_int_equal(r->dest, 0);
	assert_null(mas_match_rule(v, 80, MAS_PROTO_UDP)); /* tcp is the default */

	v = find4(c, "10.0.0.0", 8);
	assert_non_null(v);
	assert_int_equal(v->n_rules, 1);
	compile_free(c);
	policy_free(p);
}

static void test_families_and_hosts(void **state)
{
	struct mas_policy *p =
		parse("version: 1\n"
		      "destinations:\n"
		      "  a: { cidrs: [\"::ffff:192.0.2.0/120\", \"2001:db8::/32\"],\n"
		      "       protocols: [udp] }\n"
		      "  b: { hosts: [b.example] }\n");
	struct mas_cidr resolved[2] = {
		{ .family = AF_INET, .addr = { 198, 51, 100, 7 }, .prefixlen = 32 },
		{ .family = AF_INET6, .addr = { 0x20, 0x01, 0x0d, 0xb8, 0, 1 }, .prefixlen = 128 },
	};
	struct mas_dest_addrs addrs[2] = { { 0 }, { .cidrs = resolved, .n_cidrs = 2 } };
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };
	const struct mas_prefix_val *v;

	assert_int_equal(compile_policy(p, addrs, 1, 0, &c, &err), 0);
	assert_int_equal(c->n_v4, 2);
	assert_int_equal(c->n_v6, 2);
	v = find4(c, "192.0.2.0", 24); /* the v4-mapped prefix is IPv4 */
	assert_non_null(v);
	assert_int_equal(v->rules[0].protos, MAS_PROTO_UDP);
	v = find4(c, "198.51.100.7", 32);
	assert_non_null(v);
	assert_int_equal(v->rules[0].dest, 1);
	/* the resolved IPv6 host lies inside a's /32: it inherits a's rule after its own */
	for (size_t i = 0; i < c->n_v6; i++) {
		if (c->v6[i].key.prefixlen != 128)
			continue;
		assert_int_equal(c->v6[i].val.n_rules, 2);
		assert_int_equal(c->v6[i].val.rules[0].dest, 1);
		assert_int_equal(c->v6[i].val.rules[1].dest, 0);
	}
	compile_free(c);
	policy_free(p);
}

static void test_agents(void **state)
{
	struct mas_policy *p =
		parse("version: 1\n"
		      "mode: audit\n"
		      "destinations:\n"
		      "  ai: { cidrs: [10.1.0.1/32] }\n"
		      "  db: { cidrs: [10.1.0.2/32] }\n"
		      "  auth: { cidrs: [10.1.0.3/32] }\n"
		      "permissions: { ai_access: [ai], read: [db] }\n"
		      "roles: { admin: [all], agent: [ai_access], user: [read] }\n"
		      "agents:\n"
		      "  copywriter: { unit: a.service, role: agent, allow: [auth],\n"
		      "                mode: enforce }\n"
		      "  boss: { unit: b.service, role: admin }\n"
		      "  viewer: { unit: c.service, role: user }\n");
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(compile_policy(p, NULL, 1, 0, &c, &err), 0);
	assert_int_equal(c->n_agents, 3);
	assert_int_equal(c->agents[0].grants[0], 0x5); /* ai + auth */
	assert_int_equal(c->agents[1].grants[0], 0x7); /* all */
	assert_int_equal(c->agents[2].grants[0], 0x2); /* db */
	assert_int_equal(c->agents[0].mode, MAS_MODE_ENFORCE);
	assert_int_equal(c->agents[1].mode, MAS_MODE_AUDIT); /* inherits the global mode */
	assert_int_equal(c->meta.mode, MAS_MODE_AUDIT);
	assert_int_equal(c->agents[0].agent_id, compile_agent_id("copywriter"));
	assert_int_not_equal(c->agents[0].agent_id, c->agents[1].agent_id);
	assert_int_equal(c->agents[2].index, 2);
	compile_free(c);
	policy_free(p);
}

static void test_agent_id(void **state)
{
	/* FNV-1a: stable across runs and versions, never the id of "no agent" */
	assert_int_equal(compile_agent_id(""), 2166136261u);
	assert_int_equal(compile_agent_id("a"), 0xe40c292cu);
	assert_int_not_equal(compile_agent_id("copywriter"), MAS_NO_AGENT);
}

static void test_too_many_rules(void **state)
{
	char yaml[8192];
	size_t n = 0;
	struct mas_policy *p;
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };

	/* 17 destinations on one /32, one port each: more than a prefix can carry */
	n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "version: 1\ndestinations:\n");
	for (int i = 0; i <= MAS_MAX_RULES; i++)
		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
				      "  d%d: { cidrs: [10.9.9.9/32], ports: [%d] }\n", i,
				      1000 + i);
	p = parse(yaml);
	assert_int_equal(compile_policy(p, NULL, 1, 0, &c, &err), -EINVAL);
	assert_null(c);
	assert_string_equal(err.msg,
			    "t.yaml:19:3: destinations.d16: found more than 16 rules (ports "
			    "of all destinations) covering 10.9.9.9/32, expected at most 16");
	policy_free(p);
}

static void test_empty(void **state)
{
	struct mas_policy *p = parse("version: 1\n");
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(compile_policy(p, NULL, 1, 0, &c, &err), 0);
	assert_int_equal(c->n_v4 + c->n_v6 + c->n_agents, 0);
	compile_free(c);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inheritance),    cmocka_unit_test(test_families_and_hosts),
		cmocka_unit_test(test_agents),	       cmocka_unit_test(test_agent_id),
		cmocka_unit_test(test_too_many_rules), cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
