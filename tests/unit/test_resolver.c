/* SPDX-License-Identifier: GPL-2.0-only */
/* The resolver's bookkeeping with a scripted DNS: refresh ahead of the TTL, grace for dropped
 * addresses, the last good set kept while DNS fails, fail closed, state across restarts. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"
#include "resolver.h"

/* What the fake server answers for api.test (A only); fail makes it time out. */
struct script {
	const char *addrs[4];
	uint32_t ttl;
	bool fail;
	unsigned queries;
};

static int fake_query(void *userdata, const struct mas_resolver_conf *conf, const char *name,
		      int family, struct resolver_answer *ret)
{
	struct script *s = userdata;

	memset(ret, 0, sizeof(*ret));
	if (family == AF_INET)
		s->queries++;
	if (s->fail)
		return -ETIMEDOUT;
	if (family != AF_INET || strcmp(name, "api.test"))
		return 0;
	ret->addrs = calloc(4, sizeof(*ret->addrs));
	for (size_t i = 0; i < 4 && s->addrs[i]; i++) {
		ret->addrs[i].family = AF_INET;
		ret->addrs[i].prefixlen = 32;
		inet_pton(AF_INET, s->addrs[i], ret->addrs[i].addr);
		ret->n++;
	}
	ret->ttl = s->ttl;
	return 0;
}

static const char policy_text[] = "version: 1\n"
				  "resolver:\n"
				  "  grace: 10s\n"
				  "destinations:\n"
				  "  ai:\n"
				  "    hosts: [api.test, never.test]\n";

static struct mas_policy *policy(void)
{
	struct mas_policy *p = NULL;
	struct mas_error err = { 0 };

	assert_int_equal(policy_parse_buffer(policy_text, strlen(policy_text), "t.yaml", &p, &err),
			 0);
	return p;
}

/* The allowed addresses of destination 0 as "a,b,c". */
static void allowed(struct mas_resolver *r, const struct mas_policy *p, char *buf, size_t len)
{
	struct mas_dest_addrs *a = NULL;
	size_t unresolved = 0;
	const char *first = NULL;

	assert_int_equal(resolver_addrs(r, p, &a, &unresolved, &first), 0);
	buf[0] = '\0';
	for (size_t i = 0; i < a[0].n_cidrs; i++) {
		char s[64];

		resolver_format_addr(&a[0].cidrs[i], s, sizeof(s));
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "", s);
	}
	assert_int_equal(unresolved, 1); /* never.test: fail closed */
	assert_string_equal(first, "never.test");
	resolver_addrs_free(a, p->n_destinations);
}

static void test_lifecycle(void **state)
{
	struct script s = { .addrs = { "192.0.2.1", "192.0.2.2" }, .ttl = 8 };
	struct mas_policy *p = policy();
	struct mas_resolver *r = NULL;
	struct resolver_changes ch = { 0 };
	char buf[256], path[] = "/tmp/masd-resolver-XXXXXX";
	uint64_t t = 1000000;
	int fd;

	assert_int_equal(resolver_new(&r), 0);
	resolver_set_query(r, fake_query, &s);
	assert_int_equal(resolver_update(r, p, t, &ch), 0);
	assert_true(ch.set_changed);
	assert_int_equal(ch.n, 2);
	assert_int_equal(ch.v[0].kind, RESOLVER_ADDED);
	resolver_changes_free(&ch);
	allowed(r, p, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1,192.0.2.2");
	/* TTL 8 s: asked again 2 s before it runs out */
	assert_int_equal(resolver_next_ms(r), t + 6000);
	assert_int_equal(resolver_update(r, p, t + 5999, &ch), 0);
	assert_int_equal(ch.n, 0);
	assert_int_equal(s.queries, 2); /* api.test and never.test once each */

	/* .2 leaves the answer: allowed through the grace period, then not */
	s.addrs[1] = "192.0.2.3";
	t += 6000;
	assert_int_equal(resolver_update(r, p, t, &ch), 0);
	assert_int_equal(ch.n, 2);
	assert_int_equal(ch.v[0].kind, RESOLVER_DROPPED);
	assert_int_equal(ch.v[0].until_ms, t + 10000);
	assert_int_equal(ch.v[1].kind, RESOLVER_ADDED);
	resolver_changes_free(&ch);
	allowed(r, p, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1,192.0.2.2,192.0.2.3");

	/* DNS fails: the set stays, reported once, retried soon */
	s.fail = true;
	t += 6000;
	assert_int_equal(resolver_update(r, p, t, &ch), 0);
	assert_int_equal(ch.v[0].kind, RESOLVER_FAILED);
	assert_int_equal(ch.v[0].kept, 3);
	assert_false(ch.set_changed);
	resolver_changes_free(&ch);
	assert_int_equal(resolver_next_ms(r), t + RESOLVER_RETRY_MS);

	/* the grace period ends even while DNS fails; the last good answer stays */
	t += 4000;
	assert_int_equal(resolver_update(r, p, t, &ch), 0);
	assert_true(ch.set_changed);
	assert_int_equal(ch.v[ch.n - 1].kind, RESOLVER_EXPIRED);
	resolver_changes_free(&ch);
	allowed(r, p, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1,192.0.2.3");

	/* a restart: the state file brings the set back before any answer */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(resolver_save(r, path), 0);
	resolver_free(r);
	assert_int_equal(resolver_new(&r), 0);
	resolver_set_query(r, fake_query, &s);
	assert_int_equal(resolver_load(r, path, t), 0);
	allowed(r, p, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1,192.0.2.3");
	assert_int_equal(resolver_update(r, p, t, &ch), 0); /* due at once, DNS still down */
	assert_false(ch.set_changed);
	resolver_changes_free(&ch);
	allowed(r, p, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1,192.0.2.3");

	/* DNS back */
	s.fail = false;
	t += 60000;
	assert_int_equal(resolver_update(r, p, t, &ch), 0);
	assert_int_equal(ch.v[0].kind, RESOLVER_RECOVERED);
	resolver_changes_free(&ch);
	unlink(path);
	resolver_free(r);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
