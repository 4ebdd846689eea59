/* SPDX-License-Identifier: GPL-2.0-only */
/* masd's core: a policy goes from text to the kernel here, agents are enrolled as their
 * cgroups come and go, and every change is an audit record. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "daemon.h"
#include "fileio.h"
#include "flows.h"
#include "hostaddr.h"
#include "msgid.h"
#include "resolver.h"

#define ACTIVE_POLICY "active-policy.yaml"
#define ACTIVE_NAME "active-policy.name"
#define RESOLVER_STATE "resolver.state"

const char *daemon_agent_status_name(enum agent_status s)
{
	switch (s) {
	case AGENT_ENROLLED:
		return "enrolled";
	case AGENT_OUTSIDE:
		return "outside-root";
	default:
		return "waiting";
	}
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
	return now_usec() / 1000;
}

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

static const char *name_of_agent(void *userdata, uint32_t id)
{
	struct mas_daemon *d = userdata;

	for (size_t i = 0; i < d->n_names; i++)
		if (d->names[i].id == id)
			return d->names[i].name;
	return NULL;
}

static const char *name_of_dest(void *userdata, uint64_t generation, uint16_t dest)
{
	struct mas_daemon *d = userdata;

	for (size_t i = 0; i < DAEMON_GENERATIONS; i++)
		if (d->gens[i].dests && d->gens[i].generation == generation && dest < d->gens[i].n)
			return d->gens[i].dests[dest];
	return NULL;
}

static const char *flow_dest_name(void *userdata, uint32_t gen32, uint16_t dest,
				  uint64_t *ret_generation, bool *ret_ai)
{
	struct mas_daemon *d = userdata;

	for (size_t i = 0; i < DAEMON_GENERATIONS; i++) {
		const struct gen_names *g = &d->gens[i];

		if (g->dests && (uint32_t)g->generation == gen32 && dest < g->n) {
			*ret_generation = g->generation;
			*ret_ai = g->ai[dest];
			return g->dests[dest];
		}
	}
	return NULL;
}

/* Flows carry the generation they were decided under, and are named from the ring of recent
 * generations: summarise them before the ring forgets the oldest generation not yet done. */
static void flows_before_generation(struct mas_daemon *d, uint64_t gen)
{
	if (d->policy && gen >= d->flows_drained_gen + DAEMON_GENERATIONS - 1)
		daemon_flows_tick(d, true);
}

static int remember_names(struct mas_daemon *d, const struct mas_policy *p, uint64_t gen)
{
	struct gen_names *g = &d->gens[gen % DAEMON_GENERATIONS];

	for (size_t a = 0; a < p->n_agents; a++) {
		uint32_t id = compile_agent_id(p->agents[a].name);
		struct agent_name *nn;

		if (name_of_agent(d, id))
			continue;
		nn = realloc(d->names, (d->n_names + 1) * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		d->names = nn;
		nn[d->n_names].id = id;
		nn[d->n_names].name = strdup(p->agents[a].name);
		if (!nn[d->n_names].name)
			return -ENOMEM;
		d->n_names++;
	}
	for (size_t i = 0; i < g->n; i++)
		free(g->dests[i]);
	free(g->dests);
	free(g->ai);
	g->dests = calloc(p->n_destinations ? p->n_destinations : 1, sizeof(char *));
	g->ai = calloc(p->n_destinations ? p->n_destinations : 1, sizeof(bool));
	g->n = 0;
	if (!g->dests || !g->ai)
		return -ENOMEM;
	g->generation = gen;
	for (size_t i = 0; i < p->n_destinations; i++) {
		g->dests[i] = strdup(p->destinations[i].name);
		if (!g->dests[i])
			return -ENOMEM;
		g->ai[i] = !strcmp(flows_category(p, (uint16_t)i), MAS_CAT_AI_REQUESTS);
		g->n++;
	}
	return 0;
}

static void record(struct mas_daemon *d, const char *msgid, const char *cat, int prio,
		   const struct audit_field *f, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

static void record(struct mas_daemon *d, const char *msgid, const char *cat, int prio,
		   const struct audit_field *f, size_t n, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (audit_emit(d->audit, msgid, cat, prio, msg, f, n) < 0 || d->o.verbose)
		fprintf(stderr, "masd: %s\n", msg);
}

/* Each resolver change as a record: the addresses a host name allows, and DNS failures. */
static void record_resolver_changes(struct mas_daemon *d, const struct resolver_changes *ch)
{
	char gen[24];

	snprintf(gen, sizeof(gen), "%llu", (unsigned long long)enforcer_generation(d->enf));
	for (size_t i = 0; i < ch->n; i++) {
		const struct resolver_change *c = &ch->v[i];
		char addr[64] = "", ttl[16], until[24], err[64], kept[16];
		const struct audit_field f[] = {
			{ "MAS_HOST", c->host },
			{ "MAS_CHANGE", resolver_change_name(c->kind) },
			{ "MAS_ADDR", addr },
			{ "MAS_TTL", ttl },
			{ "MAS_GRACE_UNTIL", until },
			{ "MAS_GENERATION", gen },
			{ "MAS_ERROR", err },
			{ "MAS_KEPT", kept },
		};

		if (c->kind <= RESOLVER_EXPIRED)
			resolver_format_addr(&c->addr, addr, sizeof(addr));
		snprintf(ttl, sizeof(ttl), "%u", c->ttl);
		snprintf(until, sizeof(until), "%llu", (unsigned long long)c->until_ms * 1000);
		snprintf(err, sizeof(err), "%s", c->error ? strerror(-c->error) : "");
		snprintf(kept, sizeof(kept), "%zu", c->kept);
		switch (c->kind) {
		case RESOLVER_ADDED:
			record(d, MAS_MSGID_RESOLVER_CHANGE, MAS_CAT_DATA_CHANGES, LOG_INFO, f, 6,
			       "host %s: address %s added (TTL %us), generation %s", c->host, addr,
			       c->ttl, gen);
			break;
		case RESOLVER_DROPPED:
			record(d, MAS_MSGID_RESOLVER_CHANGE, MAS_CAT_DATA_CHANGES, LOG_INFO, f, 6,
			       "host %s: address %s left the answers, allowed for its grace period",
			       c->host, addr);
			break;
		case RESOLVER_EXPIRED:
			record(d, MAS_MSGID_RESOLVER_CHANGE, MAS_CAT_DATA_CHANGES, LOG_NOTICE, f, 6,
			       "host %s: address %s no longer allowed (grace period over), "
			       "generation %s",
			       c->host, addr, gen);
			break;
		case RESOLVER_FAILED:
			record(d, MAS_MSGID_RESOLVER_FAILURE, MAS_CAT_DATA_CHANGES, LOG_WARNING, f,
			       8,
			       "host %s: DNS failed (%s); the last good set of %zu addresses stays",
			       c->host, err, c->kept);
			break;
		case RESOLVER_RECOVERED:
			record(d, MAS_MSGID_RESOLVER_CHANGE, MAS_CAT_DATA_CHANGES, LOG_INFO, f, 6,
			       "host %s: DNS answers again", c->host);
			break;
		}
	}
}

static void save_resolver(struct mas_daemon *d)
{
	char path[PATH_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/%s", d->o.state_dir, RESOLVER_STATE);
	if ((r = resolver_save(d->resolver, path)) < 0)
		record(d, MAS_MSGID_RESOLVER_FAILURE, MAS_CAT_DATA_CHANGES, LOG_ERR, NULL, 0,
		       "cannot save the resolver state in %s: %s", path, strerror(-r));
}

/* Where an agent's cgroup is, and whether it exists below the enforcement root; unit_path is
 * where the unit's cgroup was found (taken over), NULL if it was not. */
static void locate_agent(struct mas_daemon *d, const struct mas_agent *a, char *unit_path,
			 struct agent_state *st)
{
	char *path = NULL;
	uint32_t lvl;

	free(st->path);
	st->path = NULL;
	st->cgroup_id = 0;
	st->status = AGENT_WAITING;
	if (a->unit) {
		if (!unit_path)
			return;
		path = unit_path;
	} else if (asprintf(&path, "%s/%s", d->cgroup_mount, a->cgroup) < 0) {
		return;
	}
	st->path = path;
	if (cgroup_id(path, &st->cgroup_id) < 0) {
		st->cgroup_id = 0;
		return;
	}
	/* a unit was found by walking below the root, so it is below it: no realpath() needed */
	if (!a->unit && (cgroup_level(d->cgroup_root, path, &lvl) < 0 || lvl == 0)) {
		st->status = AGENT_OUTSIDE;
		return;
	}
	st->status = AGENT_ENROLLED;
}

/* Every agent of p located with one walk of the cgroup tree. st[i] must be zeroed or valid. */
static int locate_agents(struct mas_daemon *d, const struct mas_policy *p, struct agent_state *st)
{
	const char **units = calloc(p->n_agents ? p->n_agents : 1, sizeof(*units));
	char **paths = calloc(p->n_agents ? p->n_agents : 1, sizeof(*paths));
	size_t n = 0;
	int r = -ENOMEM;

	if (!units || !paths)
		goto out;
	for (size_t a = 0; a < p->n_agents; a++)
		if (p->agents[a].unit)
			units[n++] = p->agents[a].unit;
	if ((r = cgroup_find_units(d->cgroup_root, units, n, paths)) < 0)
		goto out;
	n = 0;
	for (size_t a = 0; a < p->n_agents; a++)
		locate_agent(d, &p->agents[a], p->agents[a].unit ? paths[n++] : NULL, &st[a]);
out:
	free(units);
	free(paths);
	return r;
}

static void free_agents(struct agent_state *s, size_t n)
{
	if (!s)
		return;
	for (size_t i = 0; i < n; i++)
		free(s[i].path);
	free(s);
}

static int keys_audit(void *userdata, const char *message_id, int priority, const char *message,
		      const struct audit_field *fields, size_t n_fields)
{
	struct mas_daemon *d = userdata;

	return audit_emit(d->audit, message_id, MAS_CAT_DATA_CHANGES, priority, message, fields,
			  n_fields);
}

/* Keyrings follow the policy in force: reopened on every apply (state on disk carries their
 * schedules over), caught up at once. */
static int open_keys(struct mas_daemon *d, struct mas_error *err)
{
	struct keys_options ko = { .state_dir = d->o.state_dir,
				   .runtime_dir = d->o.runtime_dir,
				   .keys = d->policy->keys,
				   .n_keys = d->policy->n_keys,
				   .agents = d->policy->agents,
				   .n_agents = d->policy->n_agents,
				   .audit = keys_audit,
				   .audit_userdata = d };
	int r;

	keys_close(d->keys);
	d->keys = NULL;
	if (!d->policy->n_keys)
		return 0;
	r = keys_open(&ko, (uint64_t)time(NULL), &d->keys, err);
	if (r < 0)
		return r;
	r = keys_tick(d->keys, (uint64_t)time(NULL));
	return r < 0 ? r : 0;
}

void daemon_keys_tick(struct mas_daemon *d)
{
	uint64_t now = (uint64_t)time(NULL);

	if (d->keys && keys_next_due(d->keys, now) <= now)
		keys_tick(d->keys, now);
}

void daemon_check_pins(struct mas_daemon *d)
{
	static int last_error;
	unsigned restored = 0;
	int r = enforcer_check_pins(d->enf, &restored);

	if (restored)
		record(d, MAS_MSGID_PINS_RESTORED, MAS_CAT_DATA_CHANGES, LOG_WARNING, NULL, 0,
		       "%u pins in %s were removed behind masd's back; pinned again (enforcement "
		       "never stopped: masd holds the links)",
		       restored, d->o.bpffs_dir);
	if (r < 0 && r != last_error)
		record(d, MAS_MSGID_PINS_RESTORED, MAS_CAT_DATA_CHANGES, LOG_ERR, NULL, 0,
		       "pins in %s are missing and cannot be restored: %s; enforcement continues "
		       "while masd runs, a restart would not adopt it",
		       d->o.bpffs_dir, strerror(-r));
	last_error = r;
}

static int persist_policy(struct mas_daemon *d, const char *text, size_t len, const char *name)
{
	char path[PATH_MAX];
	int r;

	if ((r = fileio_mkdir_p(d->o.state_dir, 0700)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/%s", d->o.state_dir, ACTIVE_POLICY);
	if ((r = fileio_write_atomic(path, text, len, 0600, (uid_t)-1, (gid_t)-1)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/%s", d->o.state_dir, ACTIVE_NAME);
	return fileio_write_atomic(path, name, strlen(name), 0600, (uid_t)-1, (gid_t)-1);
}

/* compile_policy told this host's addresses (read now), so a protected local service is
 * protected at each of them; without them, loopback and the wildcards are still aliases. */
static int compile_here(struct mas_daemon *d, const struct mas_policy *p,
			const struct mas_dest_addrs *addrs, uint64_t generation,
			struct mas_compiled **ret, struct mas_error *err)
{
	struct mas_cidr *local = NULL;
	size_t n_local = 0;
	int r;

	if (hostaddr_list(&local, &n_local) < 0)
		n_local = 0;
	r = compile_policy_local(p, addrs, local, n_local, generation, enforcer_root_level(d->enf),
				 ret, err);
	free(local);
	return r;
}

int daemon_apply(struct mas_daemon *d, const char *text, size_t len, const char *name,
		 struct mas_error *err)
{
	struct mas_policy *p = NULL;
	struct mas_dest_addrs *addrs = NULL;
	struct resolver_changes ch = { 0 };
	struct mas_compiled *c = NULL;
	struct agent_state *st = NULL;
	struct mas_enrolment *en = NULL;
	const char *failed_host = NULL;
	char *ntext = NULL, *nname = NULL, gen[24];
	size_t n_en = 0, unresolved = 0;
	uint64_t generation = enforcer_generation(d->enf) + 1, t0 = mono_usec();
	int r;

	memset(err, 0, sizeof(*err));
	r = policy_parse_buffer(text, len, name, &p, err);
	if (r < 0)
		goto refused;
	r = resolver_update(d->resolver, p, now_ms(), &ch);
	if (r == 0)
		r = resolver_addrs(d->resolver, p, &addrs, &unresolved, &failed_host);
	if (r < 0)
		goto out;
	r = compile_here(d, p, addrs, generation, &c, err);
	if (r < 0)
		goto refused;
	st = calloc(p->n_agents ? p->n_agents : 1, sizeof(*st));
	en = calloc(p->n_agents ? p->n_agents : 1, sizeof(*en));
	ntext = malloc(len + 1);
	nname = strdup(name);
	if (!st || !en || !ntext || !nname) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(ntext, text, len);
	ntext[len] = '\0';
	if ((r = locate_agents(d, p, st)) < 0)
		goto out;
	for (size_t a = 0; a < p->n_agents; a++) {
		if (st[a].status == AGENT_ENROLLED)
			en[n_en++] =
				(struct mas_enrolment){ .cgroup_id = st[a].cgroup_id, .agent = a };
	}
	if ((r = remember_names(d, p, generation)) < 0)
		goto out;
	flows_before_generation(d, generation);
	r = enforcer_apply(d->enf, c, en, n_en);
	d->apply_duration_usec = mono_usec() - t0;
	if (r < 0) {
		snprintf(err->msg, sizeof(err->msg), "%s: the kernel refused the policy: %s", name,
			 strerror(-r));
		goto out;
	}
	/* in force from here: keep it, so a restart adopts what the kernel enforces */
	if ((r = persist_policy(d, ntext, len, nname)) < 0) {
		snprintf(gen, sizeof(gen), "%d", -r);
		record(d, MAS_MSGID_POLICY_APPLIED, MAS_CAT_DATA_CHANGES, LOG_ERR, NULL, 0,
		       "policy generation %llu is enforced but could not be saved in %s: %s",
		       (unsigned long long)generation, d->o.state_dir, strerror(-r));
		r = 0;
	}
	free_agents(d->agents, d->policy ? d->policy->n_agents : 0);
	policy_free(d->policy);
	compile_free(d->compiled);
	free(d->policy_text);
	free(d->policy_name);
	/* the kernel holds the prefixes now; the rest of c stays for enrolment and counters */
	free(c->v4);
	free(c->v6);
	c->v4 = NULL;
	c->v6 = NULL;
	d->policy = p;
	d->compiled = c;
	d->agents = st;
	d->policy_text = ntext;
	d->policy_name = nname;
	d->applied_usec = now_usec();
	d->unresolved_hosts = unresolved;
	p = NULL;
	c = NULL;
	st = NULL;
	ntext = nname = NULL;
	{
		struct mas_error kerr = { 0 };
		int kr = open_keys(d, &kerr);

		if (kr < 0)
			record(d, MAS_MSGID_KEY_OVERDUE, MAS_CAT_DATA_CHANGES, LOG_ERR, NULL, 0,
			       "keyrings could not be opened, keys are not rotated: %s",
			       kerr.msg[0] ? kerr.msg : strerror(-kr));
	}

	snprintf(gen, sizeof(gen), "%llu", (unsigned long long)generation);
	{
		char na[16], ne[16], n4[16], n6[16], tu[24], tw[24], tf[24], tl[24];
		struct enforcer_timing et = enforcer_last_timing(d->enf);
		/* where the apply spent its time, request to flipped maps (docs/performance.md) */
		const struct audit_field f[] = {
			{ "MAS_GENERATION", gen },     { "MAS_POLICY_FILE", d->policy_name },
			{ "MAS_AGENTS", na },	       { "MAS_ENROLLED", ne },
			{ "MAS_PREFIXES4", n4 },       { "MAS_PREFIXES6", n6 },
			{ "MAS_APPLY_USEC", tu },      { "MAS_APPLY_WAIT_USEC", tw },
			{ "MAS_APPLY_FILL_USEC", tf }, { "MAS_APPLY_FLIP_USEC", tl },
		};

		snprintf(na, sizeof(na), "%zu", d->policy->n_agents);
		snprintf(ne, sizeof(ne), "%zu", n_en);
		snprintf(n4, sizeof(n4), "%zu", d->compiled->n_v4);
		snprintf(n6, sizeof(n6), "%zu", d->compiled->n_v6);
		snprintf(tu, sizeof(tu), "%llu", (unsigned long long)d->apply_duration_usec);
		snprintf(tw, sizeof(tw), "%llu", (unsigned long long)et.wait_usec);
		snprintf(tf, sizeof(tf), "%llu", (unsigned long long)et.fill_usec);
		snprintf(tl, sizeof(tl), "%llu", (unsigned long long)et.flip_usec);
		record(d, MAS_MSGID_POLICY_APPLIED, MAS_CAT_DATA_CHANGES, LOG_NOTICE, f, 10,
		       "policy %s applied as generation %s: %zu agents (%zu enrolled), %zu+%zu "
		       "prefixes",
		       d->policy_name, gen, d->policy->n_agents, n_en, d->compiled->n_v4,
		       d->compiled->n_v6);
	}
	/* the state file changes only with the addresses: no fsync for an apply that keeps them */
	if (resolver_retain(d->resolver, d->policy) || ch.n)
		save_resolver(d);
	record_resolver_changes(d, &ch);
	if (unresolved)
		record(d, MAS_MSGID_RESOLVER_FAILURE, MAS_CAT_DATA_CHANGES, LOG_WARNING, NULL, 0,
		       "%zu host names did not resolve (first: %s); they allow nothing", unresolved,
		       failed_host);
	for (size_t a = 0; a < d->policy->n_agents; a++) {
		const struct audit_field f[] = {
			{ "MAS_AGENT", d->policy->agents[a].name },
			{ "MAS_AGENT_STATE", daemon_agent_status_name(d->agents[a].status) },
			{ "MAS_CGROUP", d->agents[a].path ? d->agents[a].path : "" },
			{ "MAS_GENERATION", gen },
		};

		record(d,
		       d->agents[a].status == AGENT_ENROLLED ? MAS_MSGID_AGENT_ENROLLED :
							       MAS_MSGID_AGENT_WAITING,
		       MAS_CAT_AGENT_ACTIONS, LOG_INFO, f, 4, "agent %s: %s%s%s",
		       d->policy->agents[a].name, daemon_agent_status_name(d->agents[a].status),
		       d->agents[a].path ? " at " : "", d->agents[a].path ? d->agents[a].path : "");
	}
	/* parsing and compiling a large policy leaves megabytes free in the heap: give them back */
	malloc_trim(0);
	r = 0;
	goto out;
refused : {
	const struct audit_field f[] = { { "MAS_POLICY_FILE", name }, { "MAS_ERROR", err->msg } };

	record(d, MAS_MSGID_POLICY_REFUSED, MAS_CAT_DATA_CHANGES, LOG_ERR, f, 2,
	       "policy refused, the one in force stays: %s", err->msg);
}
out:
	free(en);
	free_agents(st, p ? p->n_agents : 0);
	free(ntext);
	free(nname);
	compile_free(c);
	resolver_addrs_free(addrs, p ? p->n_destinations : 0);
	resolver_changes_free(&ch);
	policy_free(p);
	return r;
}

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The policy file as one version: replaced by rename, any read is whole; written in place, a
 * read could see half of it, so a file changed in the last 100 ms is given time to settle and
 * a read during which the file changed is repeated. -EAGAIN if it never held still. */
static int read_policy_file(const char *path, char **ret, size_t *ret_len)
{
	for (int tries = 0; tries < 10; tries++) {
		struct stat before, after;
		struct timespec now;
		char *text = NULL;
		size_t len = 0;
		int64_t age_ms;
		int r;

		if (stat(path, &before) < 0)
			return -errno;
		clock_gettime(CLOCK_REALTIME, &now);
		age_ms = (int64_t)(now.tv_sec - before.st_mtim.tv_sec) * 1000 +
			 (now.tv_nsec - before.st_mtim.tv_nsec) / 1000000;
		if (age_ms >= 0 && age_ms < 100) {
			usleep(50000);
			continue;
		}
		if ((r = fileio_read_all(path, MAS_POLICY_MAX_BYTES, &text, &len)) < 0)
			return r;
		if (stat(path, &after) == 0 && same_file_state(&before, &after)) {
			*ret = text;
			*ret_len = len;
			return 0;
		}
		free(text);
	}
	return -EAGAIN;
}

/* The same policy with the resolver's new address set: a new generation through the same
 * two-slot flip as an apply, so each connect sees the old set or the new one, never a mix. */
static int swap_addresses(struct mas_daemon *d)
{
	struct mas_dest_addrs *addrs = NULL;
	struct mas_enrolment *en = NULL;
	struct mas_compiled *c = NULL;
	const char *failed = NULL;
	uint64_t generation = enforcer_generation(d->enf) + 1;
	size_t unresolved = 0, n_en = 0;
	struct mas_error err = { 0 };
	int r;

	r = resolver_addrs(d->resolver, d->policy, &addrs, &unresolved, &failed);
	if (r == 0)
		r = compile_here(d, d->policy, addrs, generation, &c, &err);
	if (r < 0)
		goto out;
	en = calloc(d->policy->n_agents ? d->policy->n_agents : 1, sizeof(*en));
	if (!en) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t a = 0; a < d->policy->n_agents; a++)
		if (d->agents[a].status == AGENT_ENROLLED)
			en[n_en++] = (struct mas_enrolment){ .cgroup_id = d->agents[a].cgroup_id,
							     .agent = a };
	flows_before_generation(d, generation);
	if ((r = remember_names(d, d->policy, generation)) < 0)
		goto out;
	if ((r = enforcer_apply(d->enf, c, en, n_en)) < 0)
		goto out;
	compile_free(d->compiled);
	d->compiled = c;
	c = NULL;
	d->unresolved_hosts = unresolved;
out:
	if (r < 0)
		record(d, MAS_MSGID_RESOLVER_FAILURE, MAS_CAT_DATA_CHANGES, LOG_ERR, NULL, 0,
		       "new addresses could not be swapped in, the old set stays: %s",
		       err.msg[0] ? err.msg : strerror(-r));
	free(en);
	compile_free(c);
	resolver_addrs_free(addrs, d->policy->n_destinations);
	return r;
}

void daemon_flows_tick(struct mas_daemon *d, bool force)
{
	uint64_t now = now_usec(), interval = d->policy ? d->policy->audit.flow_interval_s : 60;
	struct mas_flow *f = NULL;
	size_t n = 0;
	uint64_t lost = 0;
	int r;

	if (!d->flows_drained_usec)
		d->flows_drained_usec = now;
	/* the tick comes about once a second, never exactly: a summary due within half a tick is
	 * done now, or an interval of 1 s would often be 2 */
	if (!force && now - d->flows_drained_usec + 500000 < interval * 1000000)
		return;
	d->flows_drained_usec = now;
	d->flows_drained_gen = enforcer_generation(d->enf);
	r = enforcer_flows_drain(d->enf, &f, &n, &lost);
	if (r < 0) {
		record(d, MAS_MSGID_FLOW_SUMMARY, MAS_CAT_AGENT_ACTIONS, LOG_ERR, NULL, 0,
		       "cannot read the flow map: %s", strerror(-r));
		return;
	}
	{
		const struct flows_context c = { .audit = d->audit,
						 .interval_s = interval,
						 .agent_name = name_of_agent,
						 .dest_name = flow_dest_name,
						 .userdata = d };

		flows_record(&c, f, n, lost);
	}
	free(f);
}

uint64_t daemon_resolver_tick(struct mas_daemon *d)
{
	struct resolver_changes ch = { 0 };
	uint64_t now = now_ms();
	int r;

	if (!d->policy)
		return UINT64_MAX;
	if (resolver_next_ms(d->resolver) > now)
		return resolver_next_ms(d->resolver);
	r = resolver_update(d->resolver, d->policy, now, &ch);
	if (r == 0 && ch.set_changed)
		swap_addresses(d);
	if (ch.n) {
		record_resolver_changes(d, &ch);
		save_resolver(d);
	}
	resolver_changes_free(&ch);
	return resolver_next_ms(d->resolver);
}

int daemon_reload(struct mas_daemon *d, struct mas_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	memset(err, 0, sizeof(*err));
	r = read_policy_file(d->o.policy_file, &text, &len);
	if (r == -EAGAIN) {
		snprintf(err->msg, sizeof(err->msg),
			 "%s: kept changing while being read; the policy in force stays",
			 d->o.policy_file);
		return r;
	}
	if (r < 0) {
		snprintf(err->msg, sizeof(err->msg), "%s: cannot read: %s", d->o.policy_file,
			 strerror(-r));
		return r;
	}
	r = daemon_apply(d, text, len, d->o.policy_file, err);
	free(text);
	return r;
}

void daemon_rescan(struct mas_daemon *d)
{
	struct agent_state *found;
	char gen[24];

	if (!d->policy)
		return;
	found = calloc(d->policy->n_agents ? d->policy->n_agents : 1, sizeof(*found));
	if (!found)
		return; /* the next cgroup event retries */
	if (locate_agents(d, d->policy, found) < 0) {
		free_agents(found, d->policy->n_agents);
		return;
	}
	snprintf(gen, sizeof(gen), "%llu", (unsigned long long)enforcer_generation(d->enf));
	for (size_t a = 0; a < d->policy->n_agents; a++) {
		struct agent_state now = found[a], *st = &d->agents[a];
		int r = 0;

		found[a].path = NULL;
		if (now.status == st->status && now.cgroup_id == st->cgroup_id) {
			free(now.path);
			continue;
		}
		if (st->status == AGENT_ENROLLED)
			enforcer_unenrol(d->enf, st->cgroup_id);
		if (now.status == AGENT_ENROLLED)
			r = enforcer_enrol(d->enf, now.cgroup_id, &d->compiled->agents[a]);
		if (r < 0)
			now.status = AGENT_WAITING;
		free(st->path);
		*st = now;
		{
			const struct audit_field f[] = {
				{ "MAS_AGENT", d->policy->agents[a].name },
				{ "MAS_AGENT_STATE", daemon_agent_status_name(st->status) },
				{ "MAS_CGROUP", st->path ? st->path : "" },
				{ "MAS_GENERATION", gen },
			};

			record(d,
			       st->status == AGENT_ENROLLED ? MAS_MSGID_AGENT_ENROLLED :
							      MAS_MSGID_AGENT_WAITING,
			       MAS_CAT_AGENT_ACTIONS, LOG_INFO, f, 4, "agent %s: %s%s%s",
			       d->policy->agents[a].name, daemon_agent_status_name(st->status),
			       st->path ? " at " : "", st->path ? st->path : "");
		}
	}
	free(found);
}

int daemon_agent_counts(struct mas_daemon *d, uint64_t (**ret)[MAS_VERDICT_MAX])
{
	size_t na = d->policy ? d->policy->n_agents : 0;
	uint64_t(*counts)[MAS_VERDICT_MAX] = calloc(na + 1, sizeof(*counts));
	struct mas_counter *cs = NULL;
	size_t n = 0;
	int r;

	if (!counts)
		return -ENOMEM;
	r = enforcer_counters(d->enf, &cs, &n);
	if (r < 0) {
		free(counts);
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		size_t row = na;

		if (cs[i].verdict >= MAS_VERDICT_MAX)
			continue;
		if (cs[i].agent_id != MAS_NO_AGENT) {
			for (row = 0; row < na; row++)
				if (d->compiled->agents[row].agent_id == cs[i].agent_id)
					break;
			if (row == na)
				continue; /* an agent of an earlier policy */
		}
		counts[row][cs[i].verdict] += cs[i].count;
	}
	free(cs);
	*ret = counts;
	return 0;
}

static int load_initial(struct mas_daemon *d, struct mas_error *err)
{
	char path[PATH_MAX], *text = NULL, *name = NULL;
	size_t len = 0;
	int r;

	if (d->adopted) {
		/* enforcement survived us: carry on with what the kernel enforces */
		snprintf(path, sizeof(path), "%s/%s", d->o.state_dir, ACTIVE_POLICY);
		if (fileio_read_all(path, MAS_POLICY_MAX_BYTES, &text, &len) == 0) {
			snprintf(path, sizeof(path), "%s/%s", d->o.state_dir, ACTIVE_NAME);
			if (fileio_read_all(path, PATH_MAX, &name, NULL) < 0)
				name = strdup(ACTIVE_POLICY);
			r = name ? daemon_apply(d, text, len, name, err) : -ENOMEM;
			free(text);
			free(name);
			if (r == 0)
				return 0;
			snprintf(path, sizeof(path), "%s/%s", d->o.state_dir, ACTIVE_POLICY);
			record(d, MAS_MSGID_POLICY_REFUSED, MAS_CAT_DATA_CHANGES, LOG_ERR, NULL, 0,
			       "the saved copy of the policy in force, %s, is unusable (%s); "
			       "reading %s instead",
			       path, err->msg[0] ? err->msg : strerror(-r), d->o.policy_file);
		}
	}
	return daemon_reload(d, err);
}

int daemon_new(const struct daemon_options *o, struct mas_daemon **ret, struct mas_error *err)
{
	struct mas_daemon *d = calloc(1, sizeof(*d));
	struct mas_audit_options ao = { .state_dir = o->state_dir,
					.signed_logs = true,
					.key_rotate_seconds = o->audit_key_rotate_s };
	struct events_options eo = { .journal_rate = o->journal_rate, .verbose = o->verbose };
	struct enforcer_options fo;
	int r;

	memset(err, 0, sizeof(*err));
	if (!d)
		return -ENOMEM;
	d->o = *o;
	if ((r = cgroup_find_mount(&d->cgroup_mount)) < 0) {
		snprintf(err->msg, sizeof(err->msg), "no cgroup2 mount in /proc/self/mountinfo");
		goto fail;
	}
	d->cgroup_root = strdup(o->cgroup_root ? o->cgroup_root : d->cgroup_mount);
	if (!d->cgroup_root) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = fileio_mkdir_p(o->state_dir, 0700)) < 0) {
		snprintf(err->msg, sizeof(err->msg), "%s: %s", o->state_dir, strerror(-r));
		goto fail;
	}
	if ((r = audit_open(&ao, &d->audit)) < 0) {
		snprintf(err->msg, sizeof(err->msg), "audit trail in %s: %s", o->state_dir,
			 strerror(-r));
		goto fail;
	}
	eo.audit = d->audit;
	eo.names = (struct events_names){ .agent = name_of_agent,
					  .dest = name_of_dest,
					  .userdata = d };
	if ((r = events_new(&eo, &d->events)) < 0)
		goto fail;
	fo = (struct enforcer_options){ .bpffs_dir = o->bpffs_dir,
					.cgroup_root = d->cgroup_root,
					.cgroup_mount = d->cgroup_mount };
	if ((r = enforcer_open(&fo, &d->enf, &d->adopted)) < 0) {
		snprintf(err->msg, sizeof(err->msg),
			 "cannot load the BPF programs (bpffs %s, cgroup %s): %s", o->bpffs_dir,
			 d->cgroup_root, strerror(-r));
		goto fail;
	}
	if ((r = resolver_new(&d->resolver)) < 0)
		goto fail;
	{
		char path[PATH_MAX];

		/* the addresses the pinned maps hold stay allowed while masd asks again */
		snprintf(path, sizeof(path), "%s/%s", o->state_dir, RESOLVER_STATE);
		if (d->adopted && (r = resolver_load(d->resolver, path, now_ms())) < 0)
			fprintf(stderr, "masd: %s: %s (names are resolved afresh)\n", path,
				strerror(-r));
	}
	if ((r = load_initial(d, err)) < 0)
		goto fail;
	if ((r = enforcer_attach(d->enf)) < 0) {
		snprintf(err->msg, sizeof(err->msg), "cannot attach to %s: %s%s", d->cgroup_root,
			 strerror(-r),
			 r == -EEXIST ? " (pinned enforcement belongs to another cgroup root: "
					"masctl teardown first)" :
					"");
		goto fail;
	}
	*ret = d;
	return 0;
fail:
	daemon_free(d);
	return r;
}

int daemon_teardown(struct mas_daemon *d)
{
	int r = enforcer_teardown(d->enf);
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", d->o.state_dir, ACTIVE_POLICY);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", d->o.state_dir, ACTIVE_NAME);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", d->o.state_dir, RESOLVER_STATE);
	unlink(path);
	record(d, MAS_MSGID_TEARDOWN, MAS_CAT_DATA_CHANGES, LOG_WARNING, NULL, 0,
	       "enforcement removed from %s%s", d->cgroup_root, r < 0 ? " (with errors)" : "");
	return r;
}

void daemon_free(struct mas_daemon *d)
{
	if (!d)
		return;
	free_agents(d->agents, d->policy ? d->policy->n_agents : 0);
	policy_free(d->policy);
	compile_free(d->compiled);
	free(d->policy_text);
	free(d->policy_name);
	for (size_t i = 0; i < DAEMON_GENERATIONS; i++) {
		for (size_t j = 0; j < d->gens[i].n; j++)
			free(d->gens[i].dests[j]);
		free(d->gens[i].dests);
		free(d->gens[i].ai);
	}
	for (size_t i = 0; i < d->n_names; i++)
		free(d->names[i].name);
	free(d->names);
	keys_close(d->keys);
	enforcer_free(d->enf);
	resolver_free(d->resolver);
	events_free(d->events);
	audit_close(d->audit);
	free(d->cgroup_root);
	free(d->cgroup_mount);
	free(d);
}
