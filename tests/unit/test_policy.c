/* SPDX-License-Identifier: GPL-2.0-only */
/* The policy parser: good fixtures checked field by field, every bad fixture's exact message,
 * and the file-level refusals (too large, symlink loop, directory) made in a temp folder. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"
#include "mas_abi.h"
#include "policy.h"

/* .err files name their fixture as tests/fixtures/...; MAS_FIXTURES may put the tree elsewhere. */
#define FIXTURES_DEFAULT "tests/fixtures"

static const char *fixtures(void)
{
	const char *d = getenv("MAS_FIXTURES");

	return d && *d ? d : FIXTURES_DEFAULT;
}

static struct mas_policy *parse_good(const char *name)
{
	struct mas_policy *p = NULL;
	struct mas_error err;
	char path[PATH_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/good/%s", fixtures(), name);
	r = policy_parse_file(path, &p, &err);
	if (r < 0)
		fail_msg("%s: %s", path, err.msg);
	assert_non_null(p);
	return p;
}

static const struct mas_destination *dest(const struct mas_policy *p, const char *name)
{
	int i = policy_find_destination(p, name);

	assert_true(i >= 0);
	return &p->destinations[i];
}

static const struct mas_agent *agent(const struct mas_policy *p, const char *name)
{
	int i = policy_find_agent(p, name);

	assert_true(i >= 0);
	return &p->agents[i];
}

static void assert_cidr(const struct mas_cidr *c, int family, const char *addr, unsigned plen)
{
	uint8_t want[16] = { 0 };

	assert_int_equal(c->family, family);
	assert_int_equal(inet_pton(family, addr, want), 1);
	assert_memory_equal(c->addr, want, 16);
	assert_int_equal(c->prefixlen, plen);
}

static void test_contract_example(void **state)
{
	struct mas_policy *p = parse_good("contract.yaml");
	const struct mas_destination *d;
	const struct mas_agent *a;
	const struct mas_key_conf *k;
	size_t i;

	assert_true(strstr(p->file, "good/contract.yaml") != NULL);
	assert_int_equal(p->version, 1);
	assert_int_equal(p->mode, MAS_POLICY_ENFORCE);

	assert_int_equal(p->n_destinations, 3);
	d = &p->destinations[0];
	assert_string_equal(d->name, "openai");
	assert_int_equal(d->n_hosts, 1);
	assert_string_equal(d->hosts[0], "api.openai.com");
	assert_int_equal(d->n_cidrs, 0);
	assert_int_equal(d->n_ports, 1);
	assert_int_equal(d->ports[0].lo, 443);
	assert_int_equal(d->ports[0].hi, 443);
	assert_int_equal(d->protocols, MAS_PROTO_TCP | MAS_PROTO_UDP);
	assert_int_equal(d->class_idx, 0);
	assert_true(d->protected_);
	assert_int_equal(d->max_connections, 0);
	assert_int_equal(d->pos.line, 6);
	assert_int_equal(d->pos.col, 3);

	d = &p->destinations[1];
	assert_string_equal(d->name, "database");
	assert_int_equal(d->n_hosts, 0);
	assert_int_equal(d->n_cidrs, 2);
	assert_cidr(&d->cidrs[0], AF_INET, "10.0.5.10", 32);
	assert_cidr(&d->cidrs[1], AF_INET6, "fd00:5::10", 128);
	assert_int_equal(d->n_ports, 1);
	assert_int_equal(d->ports[0].lo, 5432);
	assert_int_equal(d->protocols, MAS_PROTO_TCP);
	assert_int_equal(d->class_idx, -1);
	assert_true(d->protected_);
	assert_int_equal(d->max_connections, 20);

	d = &p->destinations[2];
	assert_string_equal(d->name, "auth");
	assert_string_equal(d->hosts[0], "auth.internal.example");
	assert_int_equal(d->class_idx, 1);
	assert_false(d->protected_);

	assert_int_equal(p->n_rate_limits, 2);
	assert_string_equal(p->rate_limits[0].name, "ai_endpoints");
	assert_int_equal(p->rate_limits[0].requests_per_minute, 100);
	assert_int_equal(p->rate_limits[0].burst_size, 10);
	assert_int_equal(p->rate_limits[0].bytes_per_second, 0);
	assert_int_equal(p->rate_limits[0].burst_bytes, 0);
	assert_string_equal(p->rate_limits[1].name, "authentication");
	assert_int_equal(p->rate_limits[1].requests_per_minute, 20);
	assert_int_equal(p->rate_limits[1].burst_size, 5);

	assert_int_equal(p->n_permissions, 3);
	assert_string_equal(p->permissions[0].name, "ai_access");
	assert_int_equal(p->permissions[0].n_dests, 1);
	assert_int_equal(p->permissions[0].dests[0], 0);
	assert_string_equal(p->permissions[1].name, "read");
	assert_int_equal(p->permissions[1].dests[0], 1);
	assert_string_equal(p->permissions[2].name, "write");
	assert_int_equal(p->permissions[2].dests[0], 1);

	assert_int_equal(p->n_roles, 3);
	assert_string_equal(p->roles[0].name, "admin");
	assert_true(p->roles[0].all);
	assert_int_equal(p->roles[0].n_perms, 0);
	assert_string_equal(p->roles[1].name, "agent");
	assert_false(p->roles[1].all);
	assert_int_equal(p->roles[1].n_perms, 3);
	assert_int_equal(p->roles[1].perms[0], 1);
	assert_int_equal(p->roles[1].perms[1], 2);
	assert_int_equal(p->roles[1].perms[2], 0);
	assert_string_equal(p->roles[2].name, "user");
	assert_int_equal(p->roles[2].n_perms, 1);
	assert_int_equal(p->roles[2].perms[0], 1);

	assert_int_equal(p->n_agents, 2);
	a = agent(p, "copywriter");
	assert_string_equal(a->unit, "mas-agent@copywriter.service");
	assert_null(a->cgroup);
	assert_string_equal(a->user, "mas-copywriter");
	assert_int_equal(a->role, 1);
	assert_int_equal(a->n_allow, 1);
	assert_int_equal(a->allow[0], 2);
	assert_int_equal(a->mode, MAS_POLICY_AUDIT);
	a = agent(p, "dashboard");
	assert_string_equal(a->unit, "mas-dashboard.service");
	assert_null(a->user);
	assert_int_equal(a->role, 2);
	assert_int_equal(a->n_allow, 0);
	assert_int_equal(a->mode, MAS_POLICY_INHERIT);

	assert_int_equal(p->n_control, 2);
	assert_int_equal(p->control[0].role, 0);
	assert_int_equal(p->control[0].n_principals, 2);
	assert_int_equal(p->control[0].principals[0].kind, MAS_PRINCIPAL_UID);
	assert_int_equal(p->control[0].principals[0].id, 0);
	assert_string_equal(p->control[0].principals[0].text, "uid:0");
	assert_int_equal(p->control[0].principals[1].kind, MAS_PRINCIPAL_GID);
	assert_int_equal(p->control[0].principals[1].id, 0);
	assert_int_equal(p->control[1].role, 2);
	assert_int_equal(p->control[1].principals[0].kind, MAS_PRINCIPAL_UID);
	assert_int_equal(p->control[1].principals[0].id, 0);
	assert_string_equal(p->control[1].principals[0].text, "uid:root");
	assert_int_equal(p->control[1].principals[1].kind, MAS_PRINCIPAL_GID);
	assert_int_equal(p->control[1].principals[1].id, 0);

	assert_true(p->audit.present);
	assert_true(p->audit.enabled);
	assert_true(p->audit.signed_logs);
	assert_int_equal(p->audit.retention_days, 90);
	assert_int_equal(p->audit.include, MAS_AUDIT_AI_REQUESTS | MAS_AUDIT_AUTHENTICATION |
						   MAS_AUDIT_DATA_CHANGES |
						   MAS_AUDIT_AGENT_ACTIONS);
	assert_int_equal(p->audit.checkpoint_records, 256);
	assert_int_equal(p->audit.checkpoint_seconds, 5);

	assert_int_equal(p->n_keys, 2);
	k = &p->keys[policy_find_key(p, "jwt")];
	assert_int_equal(k->type, MAS_KEY_HS256);
	assert_int_equal(k->rotate_every_s, 30 * 86400);
	assert_int_equal(k->keep_previous_for_s, 7 * 86400);
	assert_int_equal(k->n_deliver_to, 1);
	assert_int_equal(k->deliver_to[0], 0);
	k = &p->keys[policy_find_key(p, "storage")];
	assert_int_equal(k->type, MAS_KEY_AES256GCM);
	assert_int_equal(k->rotate_every_s, 90 * 86400);
	assert_int_equal(k->keep_previous_for_s, 0);

	/* grants: role permissions plus allow; "all" is everything */
	i = (size_t)policy_find_agent(p, "copywriter");
	assert_true(policy_agent_granted(p, i, 0));
	assert_true(policy_agent_granted(p, i, 1));
	assert_true(policy_agent_granted(p, i, 2));
	assert_int_equal(policy_agent_mode(p, i), MAS_POLICY_AUDIT);
	i = (size_t)policy_find_agent(p, "dashboard");
	assert_false(policy_agent_granted(p, i, 0));
	assert_true(policy_agent_granted(p, i, 1));
	assert_false(policy_agent_granted(p, i, 2));
	assert_false(policy_agent_granted(p, i, 3));
	assert_false(policy_agent_granted(p, 99, 0));
	assert_int_equal(policy_agent_mode(p, i), MAS_POLICY_ENFORCE);

	assert_int_equal(policy_find_destination(p, "nosuch"), -1);
	assert_int_equal(policy_find_agent(p, "nosuch"), -1);
	assert_int_equal(policy_find_key(p, "nosuch"), -1);
	policy_free(p);
}

static void test_resolver_section(void **state)
{
	struct mas_policy *p = parse_good("resolver.yaml");
	const uint8_t want[4] = { 127, 0, 53, 1 };

	assert_true(p->resolver.has_server);
	assert_memory_equal(p->resolver.server, want, 4);
	assert_int_equal(p->resolver.port, 5353);
	assert_int_equal(p->resolver.grace_s, 120);
	assert_int_equal(p->audit.flow_interval_s, 30);
	policy_free(p);
	p = parse_good("minimal.yaml");
	assert_false(p->resolver.has_server);
	assert_int_equal(p->resolver.grace_s, 300);
	assert_int_equal(p->audit.flow_interval_s, 60);
	policy_free(p);
}

static void test_extensions(void **state)
{
	struct mas_policy *p = parse_good("extensions.yaml");
	const struct mas_destination *d;
	const struct mas_agent *a;
	const struct mas_key_conf *k;
	size_t i;

	assert_int_equal(p->mode, MAS_POLICY_AUDIT);
	d = dest(p, "mapped");
	assert_int_equal(d->n_cidrs, 5);
	/* a v4-mapped IPv6 prefix is stored as the IPv4 prefix the kernel will see */
	assert_cidr(&d->cidrs[0], AF_INET, "192.168.0.0", 16);
	assert_cidr(&d->cidrs[1], AF_INET, "10.1.2.3", 32);
	assert_cidr(&d->cidrs[2], AF_INET, "0.0.0.0", 0);
	assert_cidr(&d->cidrs[3], AF_INET6, "2001:db8::", 32);
	assert_cidr(&d->cidrs[4], AF_INET, "172.16.0.0", 12);
	assert_int_equal(d->n_ports, 4);
	assert_int_equal(d->ports[0].lo, 80);
	assert_int_equal(d->ports[0].hi, 80);
	assert_int_equal(d->ports[1].lo, 8000);
	assert_int_equal(d->ports[1].hi, 8100);
	assert_int_equal(d->ports[2].lo, 65535);
	assert_int_equal(d->ports[3].lo, 1);
	assert_int_equal(d->ports[3].hi, 1024);
	assert_int_equal(d->protocols, MAS_PROTO_UDP);
	assert_int_equal(d->class_idx, -1);

	d = dest(p, "streaming");
	assert_int_equal(d->n_hosts, 2);
	assert_string_equal(d->hosts[1], "edge_1.example.com.");
	assert_int_equal(d->n_ports, 0);
	assert_int_equal(d->max_connections, 65535);
	assert_false(d->protected_);
	assert_string_equal(p->rate_limits[d->class_idx].name, "bulk");

	assert_int_equal(p->rate_limits[0].requests_per_minute, 1000000);
	assert_int_equal(p->rate_limits[0].burst_size, 1);
	assert_int_equal(p->rate_limits[0].bytes_per_second, 1048576);
	assert_int_equal(p->rate_limits[0].burst_bytes, 4194304);
	/* burst_bytes defaults to one second's worth */
	assert_int_equal(p->rate_limits[1].bytes_per_second, 1000);
	assert_int_equal(p->rate_limits[1].burst_bytes, 1000);

	assert_int_equal(p->permissions[0].n_dests, 0);
	assert_int_equal(p->roles[0].n_perms, 0);
	assert_false(p->roles[0].all);
	assert_true(p->roles[2].all);

	a = agent(p, "reader");
	assert_null(a->unit);
	assert_string_equal(a->cgroup, "mas.slice/reader/worker");
	assert_int_equal(a->mode, MAS_POLICY_ENFORCE);
	i = (size_t)policy_find_agent(p, "reader");
	assert_int_equal(policy_agent_mode(p, i), MAS_POLICY_ENFORCE);
	assert_true(policy_agent_granted(p, i, 0));
	assert_true(policy_agent_granted(p, i, 1));

	a = agent(p, "scope");
	assert_string_equal(a->unit, "run-r1234.scope");
	assert_string_equal(a->user, "reader_1");
	i = (size_t)policy_find_agent(p, "scope");
	assert_int_equal(policy_agent_mode(p, i), MAS_POLICY_AUDIT);
	assert_true(policy_agent_granted(p, i, 0));
	assert_false(policy_agent_granted(p, i, 1));

	a = agent(p, "whole");
	assert_string_equal(a->unit, "mas-agents.slice");
	i = (size_t)policy_find_agent(p, "whole");
	assert_true(policy_agent_granted(p, i, 0));
	assert_true(policy_agent_granted(p, i, 1));

	assert_int_equal(p->n_control, 2);
	assert_int_equal(p->control[0].n_principals, 0);
	assert_int_equal(p->control[1].principals[0].id, 4294967294u);
	assert_int_equal(p->control[1].principals[1].kind, MAS_PRINCIPAL_GID);
	assert_int_equal(p->control[1].principals[1].id, 65534);

	assert_true(p->audit.present);
	assert_false(p->audit.enabled);
	assert_false(p->audit.signed_logs);
	assert_int_equal(p->audit.retention_days, 36500);
	assert_int_equal(p->audit.include, 0);
	assert_int_equal(p->audit.checkpoint_records, 1);
	assert_int_equal(p->audit.checkpoint_seconds, 3600);

	k = &p->keys[policy_find_key(p, "signing")];
	assert_int_equal(k->type, MAS_KEY_ED25519);
	assert_int_equal(k->rotate_every_s, 86400 + 12 * 3600);
	assert_int_equal(k->keep_previous_for_s, 90 * 60);
	assert_int_equal(k->deliver_to[0], (size_t)policy_find_agent(p, "scope"));
	k = &p->keys[policy_find_key(p, "manual")];
	assert_int_equal(k->rotate_every_s, 0);
	assert_int_equal(k->n_deliver_to, 0);
	k = &p->keys[policy_find_key(p, "seconds")];
	assert_int_equal(k->type, MAS_KEY_AES256GCM);
	assert_int_equal(k->rotate_every_s, 45);
	policy_free(p);
}

static void assert_defaults(const struct mas_policy *p)
{
	assert_int_equal(p->version, 1);
	assert_int_equal(p->mode, MAS_POLICY_ENFORCE);
	assert_int_equal(p->n_destinations, 0);
	assert_int_equal(p->n_rate_limits, 0);
	assert_int_equal(p->n_permissions, 0);
	assert_int_equal(p->n_roles, 0);
	assert_int_equal(p->n_agents, 0);
	assert_int_equal(p->n_control, 0);
	assert_int_equal(p->n_keys, 0);
	assert_true(p->audit.enabled);
	assert_true(p->audit.signed_logs);
	assert_int_equal(p->audit.retention_days, 90);
	assert_int_equal(p->audit.include, 0xf);
	assert_int_equal(p->audit.checkpoint_records, 256);
	assert_int_equal(p->audit.checkpoint_seconds, 5);
}

static void test_small_good_files(void **state)
{
	struct mas_policy *p = parse_good("minimal.yaml");

	assert_defaults(p);
	assert_false(p->audit.present);
	policy_free(p);
	p = parse_good("empty-sections.yaml");
	assert_defaults(p);
	assert_true(p->audit.present);
	policy_free(p);
	p = parse_good("bom-crlf.yaml");
	assert_int_equal(p->mode, MAS_POLICY_AUDIT);
	policy_free(p);
}

static char *read_text(const char *path)
{
	char *buf = NULL;
	size_t len = 0;

	if (fileio_read_all(path, 1 << 20, &buf, &len) < 0)
		return NULL;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	return buf;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every tests/fixtures/bad/NAME.yaml is refused with exactly the message in NAME.yaml.err. */
static void test_bad_fixtures(void **state)
{
	char dir[PATH_MAX], **names = NULL;
	size_t n = 0, i, failures = 0;
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/bad", fixtures());
	d = opendir(dir);
	if (!d)
		fail_msg("%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l > 5 && !strcmp(de->d_name + l - 5, ".yaml")) {
			names = realloc(names, (n + 1) * sizeof(*names));
			assert_non_null(names);
			names[n] = strdup(de->d_name);
			assert_non_null(names[n++]);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	assert_true(n >= 50);

	for (i = 0; i < n; i++) {
		char path[PATH_MAX + 300], errpath[PATH_MAX + 308], want[MAS_ERR_MAX + PATH_MAX],
			*text;
		const char *rest, *prefix = FIXTURES_DEFAULT "/";
		struct mas_policy *p = NULL;
		struct mas_error err;
		unsigned line = 0, col = 0;
		int r;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		snprintf(errpath, sizeof(errpath), "%s.err", path);
		text = read_text(errpath);
		if (!text) {
			print_error("%s: no .err file beside it\n", path);
			failures++;
			free(names[i]);
			continue;
		}
		rest = !strncmp(text, prefix, strlen(prefix)) ? text + strlen(prefix) : text;
		snprintf(want, sizeof(want), "%s/%s", fixtures(), rest);

		r = policy_parse_file(path, &p, &err);
		if (r != -EINVAL || p || strcmp(err.msg, want)) {
			print_error("%s: r=%d\n  got:  %s\n  want: %s\n", names[i], r,
				    r < 0 ? err.msg : "(accepted)", want);
			failures++;
		} else if (sscanf(err.msg + strlen(path), ":%u:%u:", &line, &col) != 2 ||
			   line != err.line || col != err.col) {
			print_error("%s: err.line/col %u:%u disagree with the message\n", names[i],
				    err.line, err.col);
			failures++;
		}
		policy_free(p);
		free(text);
		free(names[i]);
	}
	free(names);
	print_message("%zu bad fixtures checked\n", n);
	assert_int_equal(failures, 0);
}

static char tmpdir[] = "/tmp/test_policy.XXXXXX";

static int setup_tmp(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	char cmd[64 + sizeof(tmpdir)];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *head, char fill, size_t len)
{
	FILE *f = fopen(path, "w");
	size_t i;

	assert_non_null(f);
	fputs(head, f);
	for (i = strlen(head); i < len; i++)
		fputc(i % 64 == 63 ? '\n' : fill, f);
	assert_int_equal(fclose(f), 0);
}

static void expect_io_error(const char *path, int want_r, const char *what)
{
	struct mas_policy *p = (struct mas_policy *)0x1;
	struct mas_error err;
	char want[MAS_ERR_MAX];
	int r;

	r = policy_parse_file(path, &p, &err);
	assert_int_equal(r, want_r);
	assert_null(p);
	snprintf(want, sizeof(want), "%s: cannot read: %s", path, what);
	assert_string_equal(err.msg, want);
	assert_int_equal(err.line, 0);
}

static void test_too_large(void **state)
{
	char path[PATH_MAX], want[MAS_ERR_MAX];
	struct mas_policy *p = NULL;
	struct mas_error err;
	char *big;
	int r;

	/* one byte over the limit: refused before it is parsed */
	snprintf(path, sizeof(path), "%s/big.yaml", tmpdir);
	write_file(path, "version: 1\n#", '#', MAS_POLICY_MAX_BYTES + 1);
	expect_io_error(path, -EFBIG, "File too large (more than 4194304 bytes)");

	/* exactly the limit: parsed */
	write_file(path, "version: 1\n#", '#', MAS_POLICY_MAX_BYTES);
	r = policy_parse_file(path, &p, &err);
	if (r < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(p->version, 1);
	policy_free(p);

	/* the buffer API holds the same line */
	big = calloc(1, MAS_POLICY_MAX_BYTES + 2);
	assert_non_null(big);
	memset(big, '#', MAS_POLICY_MAX_BYTES + 1);
	r = policy_parse_buffer(big, MAS_POLICY_MAX_BYTES + 1, "big", &p, &err);
	assert_int_equal(r, -EINVAL);
	assert_null(p);
	snprintf(want, sizeof(want),
		 "big:1:1: policy: found %u bytes, expected at most 4194304 bytes",
		 MAS_POLICY_MAX_BYTES + 1);
	assert_string_equal(err.msg, want);
	free(big);
}

/* A file under the size limit may still hold more values than any policy needs: refused before
 * the document is built, so a small file cannot cost hundreds of megabytes. */
static void test_too_many_values(void **state)
{
	size_t n = 300000, o = 0, i, cap = 16 + 2 * n + 4;
	struct mas_policy *p = NULL;
	struct mas_error err;
	char *buf = malloc(cap);

	assert_non_null(buf);
	o += (size_t)snprintf(buf + o, cap - o, "version: 1\nx: [");
	for (i = 0; i < n; i++) {
		buf[o++] = '1';
		buf[o++] = i + 1 < n ? ',' : ']';
	}
	buf[o++] = '\n';
	assert_int_equal(policy_parse_buffer(buf, o, "many", &p, &err), -EINVAL);
	assert_null(p);
	/* five values before the list: the mapping, version, 1, x and the sequence */
	assert_string_equal(err.msg, "many:2:524283: policy: found more than 262144 values, "
				     "expected at most 262144");
	free(buf);
}

static void test_io_errors(void **state)
{
	char path[PATH_MAX], other[PATH_MAX];

	snprintf(path, sizeof(path), "%s/loop.yaml", tmpdir);
	snprintf(other, sizeof(other), "%s/loop2.yaml", tmpdir);
	assert_int_equal(symlink(other, path), 0);
	assert_int_equal(symlink(path, other), 0);
	expect_io_error(path, -ELOOP, strerror(ELOOP));

	snprintf(path, sizeof(path), "%s/self.yaml", tmpdir);
	assert_int_equal(symlink("self.yaml", path), 0);
	expect_io_error(path, -ELOOP, "Too many levels of symbolic links");

	snprintf(path, sizeof(path), "%s/missing.yaml", tmpdir);
	expect_io_error(path, -ENOENT, "No such file or directory");

	expect_io_error(tmpdir, -EISDIR, "Is a directory");

	/* a file the caller may not read: root reads everything, so only try when not root */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/secret.yaml", tmpdir);
		write_file(path, "version: 1\n", ' ', 11);
		assert_int_equal(chmod(path, 0), 0);
		expect_io_error(path, -EACCES, "Permission denied");
	}
}

static void test_buffer_api(void **state)
{
	static const char good[] = "version: 1\nmode: audit\n";
	static const char bad[] = "version: 1\nmode: loud\n";
	struct mas_policy *p = NULL;
	struct mas_error err;

	assert_int_equal(policy_parse_buffer(good, strlen(good), "inline", &p, &err), 0);
	assert_string_equal(p->file, "inline");
	assert_int_equal(p->mode, MAS_POLICY_AUDIT);
	policy_free(p);

	assert_int_equal(policy_parse_buffer(bad, strlen(bad), "inline", &p, &err), -EINVAL);
	assert_null(p);
	assert_string_equal(err.msg, "inline:2:7: mode: found \"loud\", expected enforce or audit");
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 7);

	/* err may be NULL when the caller only wants the verdict */
	assert_int_equal(policy_parse_buffer(bad, strlen(bad), "inline", &p, NULL), -EINVAL);
	policy_free(NULL);

	/* the length bounds the text, not a NUL: the second line is outside it */
	assert_int_equal(policy_parse_buffer("version: 1\nmode: loud\n", 11, "cut", &p, &err), 0);
	policy_free(p);
}

/* Every prefix of the full example is either a valid policy or one clean error in the format,
 * and nothing leaks on any error path (ASan/LSan builds). */
static void test_every_truncation(void **state)
{
	char path[PATH_MAX], *buf = NULL;
	size_t len = 0, cut, accepted = 0;

	snprintf(path, sizeof(path), "%s/good/contract.yaml", fixtures());
	assert_int_equal(fileio_read_all(path, MAS_POLICY_MAX_BYTES, &buf, &len), 0);
	for (cut = 0; cut <= len; cut++) {
		struct mas_policy *p = NULL;
		struct mas_error err;
		unsigned line, col;
		char key[128];
		int r;

		r = policy_parse_buffer(buf, cut, "t", &p, &err);
		if (r == 0) {
			accepted++;
			policy_free(p);
			continue;
		}
		assert_int_equal(r, -EINVAL);
		assert_null(p);
		if (sscanf(err.msg, "t:%u:%u: %127[^:]: found ", &line, &col, key) != 3 ||
		    !strstr(err.msg, ", expected "))
			fail_msg("cut %zu: %s", cut, err.msg);
	}
	assert_true(accepted > 0);
	free(buf);
}

/* Single-byte corruptions of the example: no crash, no leak, a result either way. */
static void test_byte_flips(void **state)
{
	static const char repl[] = { ' ', ':',	'-',  '[', '{', '"', '\'',  '&',
				     '*', '\n', '\t', '#', '0', 'a', '\xff' };
	char path[PATH_MAX], *buf = NULL;
	size_t len = 0, i, j;

	snprintf(path, sizeof(path), "%s/good/contract.yaml", fixtures());
	assert_int_equal(fileio_read_all(path, MAS_POLICY_MAX_BYTES, &buf, &len), 0);
	for (i = 0; i < len; i += 3) {
		char orig = buf[i];

		for (j = 0; j < sizeof(repl); j++) {
			struct mas_policy *p = NULL;
			struct mas_error err;
			int r;

			buf[i] = repl[j];
			r = policy_parse_buffer(buf, len, "f", &p, &err);
			if (r == 0)
				policy_free(p);
			else
				assert_true(!strncmp(err.msg, "f:", 2));
		}
		buf[i] = orig;
	}
	free(buf);
}

/* 1024 destinations (the limit) referenced in reverse and shuffled orders: every reference must
 * resolve to the destination of that name. */
static void test_many_names(void **state)
{
	size_t cap = 1 << 20, o = 0, i;
	struct mas_policy *p = NULL;
	struct mas_error err;
	char *buf = malloc(cap);
	int r;

	assert_non_null(buf);
	o += (size_t)snprintf(buf + o, cap - o, "version: 1\ndestinations:\n");
	for (i = 0; i < MAS_MAX_DESTS; i++)
		o += (size_t)snprintf(buf + o, cap - o, "  d%zu: {cidrs: [10.%zu.%zu.0/24]}\n",
				      (i * 7919) % MAS_MAX_DESTS, i / 256, i % 256);
	o += (size_t)snprintf(buf + o, cap - o, "permissions:\n  every: [");
	for (i = 0; i < MAS_MAX_DESTS; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%sd%zu", i ? ", " : "",
				      MAS_MAX_DESTS - 1 - i);
	o += (size_t)snprintf(buf + o, cap - o,
			      "]\nroles:\n  r: [every]\nagents:\n  a:\n    cgroup: x\n"
			      "    role: r\n    allow: [d5, d1023, d0]\n");
	assert_true(o < cap);

	r = policy_parse_buffer(buf, o, "many", &p, &err);
	if (r < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(p->n_destinations, MAS_MAX_DESTS);
	assert_int_equal(p->permissions[0].n_dests, MAS_MAX_DESTS);
	for (i = 0; i < MAS_MAX_DESTS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "d%zu", MAS_MAX_DESTS - 1 - i);
		assert_string_equal(p->destinations[p->permissions[0].dests[i]].name, name);
		assert_true(policy_agent_granted(p, 0, i));
	}
	assert_string_equal(p->destinations[p->agents[0].allow[0]].name, "d5");
	assert_string_equal(p->destinations[p->agents[0].allow[1]].name, "d1023");
	assert_string_equal(p->destinations[p->agents[0].allow[2]].name, "d0");
	policy_free(p);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract_example), cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_resolver_section), cmocka_unit_test(test_small_good_files),
		cmocka_unit_test(test_bad_fixtures),	 cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_too_many_values),	 cmocka_unit_test(test_io_errors),
		cmocka_unit_test(test_buffer_api),	 cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_byte_flips),	 cmocka_unit_test(test_many_names),
	};

	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
