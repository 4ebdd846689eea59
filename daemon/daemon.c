/* SPDX-License-Identifier: GPL-2.0-only */
/* masd's core: a policy goes from text to the kernel here, agents are enrolled as their
 * cgroups come and go, and every change is an audit record. */
#include <errno.h>
#include <limits.h>
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
#include "msgid.h"
#include "hostaddr.h"
#include "resolver.h"

#define ACTIVE_POLICY "active-policy.yaml"
#define ACTIVE_NAME "active-policy.name"

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
	g->dests = calloc(p->n_destinations ? p->n_destinations : 1, sizeof(char *));
	g->n = 0;
	if (!g->dests)
		return -ENOMEM;
	g->generation = gen;
	for (size_t i = 0; i < p->n_destinations; i++) {
		g->dests[i] = strdup(p->destinations[i].name);
		if (!g->dests[i])
			return -ENOMEM;
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

/* Where an agent's cgroup is, and whether it exists below the enforcement root. */
static void locate_agent(struct mas_daemon *d, const struct mas_agent *a, struct agent_state *st)
{
	char *path = NULL;
	uint32_t lvl;

	free(st->path);
	st->path = NULL;
	st->cgroup_id = 0;
	st->status = AGENT_WAITING;
	if (a->unit) {
		if (cgroup_find_unit(d->cgroup_root, a->unit, &path) < 0)
			return;
	} else if (asprintf(&path, "%s/%s", d->cgroup_mount, a->cgroup) < 0) {
		return;
	}
	st->path = path;
	if (cgroup_id(path, &st->cgroup_id) < 0) {
		st->cgroup_id = 0;
		return;
	}
	if (cgroup_level(d->cgroup_root, path, &lvl) < 0 || lvl == 0) {
		st->status = AGENT_OUTSIDE;
		return;
	}
	st->status = AGENT_ENROLLED;
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

int daemon_apply(struct mas_daemon *d, const char *text, size_t len, const char *name,
		 struct mas_error *err)
{
	struct mas_policy *p = NULL;
	struct mas_dest_addrs *addrs = NULL;
	struct mas_compiled *c = NULL;
	struct agent_state *st = NULL;
	struct mas_enrolment *en = NULL;
	const char *failed_host = NULL;
	char *ntext = NULL, *nname = NULL, gen[24];
	size_t n_en = 0, unresolved = 0;
	uint64_t generation = enforcer_generation(d->enf) + 1;
	int r;

	memset(err, 0, sizeof(*err));
	r = policy_parse_buffer(text, len, name, &p, err);
	if (r < 0)
		goto refused;
	r = resolver_resolve(p, &addrs, &unresolved, &failed_host);
	if (r < 0)
		goto out;
	{
		/* without the host's addresses, loopback and the wildcards are still aliases */
		struct mas_cidr *local = NULL;
		size_t n_local = 0;

		if (hostaddr_list(&local, &n_local) < 0)
			n_local = 0;
		r = compile_policy_local(p, addrs, local, n_local, generation,
					 enforcer_root_level(d->enf), &c, err);
		free(local);
	}
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
	for (size_t a = 0; a < p->n_agents; a++) {
		locate_agent(d, &p->agents[a], &st[a]);
		if (st[a].status == AGENT_ENROLLED)
			en[n_en++] =
				(struct mas_enrolment){ .cgroup_id = st[a].cgroup_id, .agent = a };
	}
	if ((r = remember_names(d, p, generation)) < 0)
		goto out;
	r = enforcer_apply(d->enf, c, en, n_en);
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
		char na[16], ne[16], n4[16], n6[16];
		const struct audit_field f[] = {
			{ "MAS_GENERATION", gen }, { "MAS_POLICY_FILE", d->policy_name },
			{ "MAS_AGENTS", na },	   { "MAS_ENROLLED", ne },
			{ "MAS_PREFIXES4", n4 },   { "MAS_PREFIXES6", n6 },
		};

		snprintf(na, sizeof(na), "%zu", d->policy->n_agents);
		snprintf(ne, sizeof(ne), "%zu", n_en);
		snprintf(n4, sizeof(n4), "%zu", d->compiled->n_v4);
		snprintf(n6, sizeof(n6), "%zu", d->compiled->n_v6);
		record(d, MAS_MSGID_POLICY_APPLIED, MAS_CAT_DATA_CHANGES, LOG_NOTICE, f, 6,
		       "policy %s applied as generation %s: %zu agents (%zu enrolled), %zu+%zu "
		       "prefixes",
		       d->policy_name, gen, d->policy->n_agents, n_en, d->compiled->n_v4,
		       d->compiled->n_v6);
	}
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
	resolver_free(addrs, p ? p->n_destinations : 0);
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
	char gen[24];

	if (!d->policy)
		return;
	snprintf(gen, sizeof(gen), "%llu", (unsigned long long)enforcer_generation(d->enf));
	for (size_t a = 0; a < d->policy->n_agents; a++) {
		struct agent_state now = { 0 }, *st = &d->agents[a];
		int r = 0;

		locate_agent(d, &d->policy->agents[a], &now);
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
	struct mas_audit_options ao = { .state_dir = o->state_dir, .signed_logs = true };
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
	}
	for (size_t i = 0; i < d->n_names; i++)
		free(d->names[i].name);
	free(d->names);
	keys_close(d->keys);
	enforcer_free(d->enf);
	events_free(d->events);
	audit_close(d->audit);
	free(d->cgroup_root);
	free(d->cgroup_mount);
	free(d);
}
