/* SPDX-License-Identifier: GPL-2.0-only */
/* Policy diff by meaning, and replay verdicts computed with the kernel's own decision code. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "compile.h"
#include "diff.h"
#include "policy.h"

static const char old_text[] = "version: 1\n"
			       "destinations:\n"
			       "  ai:\n"
			       "    cidrs: [10.0.0.1/32]\n"
			       "    ports: [443]\n"
			       "    class: ai_endpoints\n"
			       "  db:\n"
			       "    cidrs: [10.0.5.0/24]\n"
			       "    ports: [5432]\n"
			       "  gone:\n"
			       "    cidrs: [10.9.9.9/32]\n"
			       "rate_limits:\n"
			       "  ai_endpoints: { requests_per_minute: 100, burst_size: 10 }\n"
			       "permissions:\n"
			       "  ai_access: [ai]\n"
			       "  read: [db]\n"
			       "roles:\n"
			       "  agent: [ai_access, read]\n"
			       "  user: [read]\n"
			       "agents:\n"
			       "  writer:\n"
			       "    unit: mas-agent@writer.service\n"
			       "    role: agent\n"
			       "    allow: [gone]\n"
			       "  old:\n"
			       "    unit: mas-agent@old.service\n"
			       "    role: user\n";

static const char new_text[] = "version: 1\n"
			       "mode: enforce\n"
			       "destinations:\n"
			       "  ai:\n"
			       "    cidrs: [10.0.0.1/32, 10.0.0.2/32]\n"
			       "    ports: [443, 8443]\n"
			       "    class: ai_endpoints\n"
			       "  db:\n"
			       "    cidrs: [10.0.5.0/24]\n"
			       "    ports: [5432]\n"
			       "rate_limits:\n"
			       "  ai_endpoints: { requests_per_minute: 50, burst_size: 10 }\n"
			       "permissions:\n"
			       "  ai_access: [ai]\n"
			       "  read: [db]\n"
			       "roles:\n"
			       "  agent: [ai_access]\n"
			       "  user: [read]\n"
			       "agents:\n"
			       "  writer:\n"
			       "    unit: mas-agent@writer.service\n"
			       "    role: agent\n"
			       "    mode: audit\n"
			       "  fresh:\n"
			       "    unit: mas-agent@fresh.service\n"
			       "    role: user\n";

static struct mas_policy *parse(const char *text)
{
	struct mas_policy *p = NULL;
	struct mas_error err = { 0 };

	if (policy_parse_buffer(text, strlen(text), "test.yaml", &p, &err) < 0)
		fail_msg("%s", err.msg);
	return p;
}

static const struct diff_item *find(const struct diff *d, enum diff_kind k, const char *subject,
				    const char *detail_part)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].kind == k && !strcmp(d->v[i].subject, subject) &&
		    (!detail_part || strstr(d->v[i].detail, detail_part)))
			return &d->v[i];
	return NULL;
}

static void test_diff_meaning(void **state)
{
	struct mas_policy *o = parse(old_text), *n = parse(new_text);
	struct diff d;

	assert_int_equal(diff_policies(o, n, &d), 0);
	assert_non_null(find(&d, DIFF_AGENT_ADDED, "fresh", "may reach: db"));
	assert_non_null(find(&d, DIFF_AGENT_REMOVED, "old", NULL));
	assert_non_null(find(&d, DIFF_GRANT_LOST, "writer", "db"));
	assert_non_null(find(&d, DIFF_GRANT_LOST, "writer", "gone"));
	assert_null(find(&d, DIFF_GRANT_LOST, "writer", "ai"));
	assert_non_null(find(&d, DIFF_AGENT_CHANGED, "writer", "mode enforce -> audit"));
	assert_non_null(find(&d, DIFF_DEST_CHANGED, "ai", "+address 10.0.0.2/32"));
	assert_non_null(find(&d, DIFF_DEST_CHANGED, "ai", "ports 443 -> 443,8443"));
	assert_non_null(find(&d, DIFF_DEST_REMOVED, "gone", NULL));
	assert_non_null(find(&d, DIFF_LIMIT_CHANGED, "ai_endpoints", "100/min burst 10 -> 50/min"));
	assert_null(find(&d, DIFF_MODE, "policy", NULL));
	diff_free(&d);

	/* and back: the mirror image */
	assert_int_equal(diff_policies(n, o, &d), 0);
	assert_non_null(find(&d, DIFF_GRANT_GAINED, "writer", "db"));
	assert_non_null(find(&d, DIFF_DEST_CHANGED, "ai", "-address 10.0.0.2/32"));
	assert_non_null(find(&d, DIFF_AGENT_ADDED, "old", NULL));
	diff_free(&d);

	/* no change, no lines */
	assert_int_equal(diff_policies(o, o, &d), 0);
	assert_int_equal(d.n, 0);
	diff_free(&d);
	policy_free(o);
	policy_free(n);
}

static uint8_t verdict(const struct mas_policy *p, const struct mas_compiled *c, const char *agent,
		       const char *addr, uint16_t port)
{
	struct diff_flow f = { .agent = agent, .port = port, .ipproto = IPPROTO_TCP };
	uint16_t dest;

	f.family = inet_pton(AF_INET, addr, f.addr) == 1 ? AF_INET : AF_INET6;
	if (f.family == AF_INET6)
		assert_int_equal(inet_pton(AF_INET6, addr, f.addr), 1);
	return diff_verdict(p, c, &f, &dest);
}

static void test_replay_verdicts(void **state)
{
	struct mas_policy *o = parse(old_text), *n = parse(new_text);
	struct mas_compiled *co = NULL, *cn = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(compile_policy(o, NULL, 1, 0, &co, &err), 0);
	assert_int_equal(compile_policy(n, NULL, 2, 0, &cn, &err), 0);
	assert_int_equal(verdict(o, co, "writer", "10.0.5.7", 5432), MAS_VERDICT_ALLOW);
	/* writer lost db, but is in audit mode under the new policy */
	assert_int_equal(verdict(n, cn, "writer", "10.0.5.7", 5432), MAS_VERDICT_WOULD_DENY);
	assert_int_equal(verdict(o, co, "old", "10.0.5.7", 5432), MAS_VERDICT_ALLOW);
	/* old is no agent under the new policy: not confined, db is not protected */
	assert_int_equal(verdict(n, cn, "old", "10.0.5.7", 5432), MAS_VERDICT_ALLOW);
	assert_int_equal(verdict(o, co, "writer", "10.0.0.2", 443), MAS_VERDICT_DENY);
	assert_int_equal(verdict(n, cn, "writer", "10.0.0.2", 443), MAS_VERDICT_ALLOW);
	assert_int_equal(verdict(n, cn, "writer", "10.0.0.2", 444), MAS_VERDICT_WOULD_DENY);
	assert_int_equal(verdict(o, co, "writer", "10.9.9.9", 1), MAS_VERDICT_ALLOW);
	assert_int_equal(verdict(n, cn, "fresh", "10.0.5.255", 5432), MAS_VERDICT_ALLOW);
	assert_int_equal(verdict(n, cn, "fresh", "10.0.6.0", 5432), MAS_VERDICT_DENY);
	assert_int_equal(verdict(n, cn, "fresh", "::1", 5432), MAS_VERDICT_DENY);
	compile_free(co);
	compile_free(cn);
	policy_free(o);
	policy_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_meaning),
		cmocka_unit_test(test_replay_verdicts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
