/* SPDX-License-Identifier: GPL-2.0-only */
/* The control socket. Each accepted connection is its own peer-to-peer sd-bus; the caller's
 * credentials are taken from the socket at accept, never from anything the caller says. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>

#include "control.h"
#include "msgid.h"

#define MAX_GROUPS 256
#define FAIL_BUCKETS 64
#define RATE_RECORD_USEC 10000000ull /* one "rate-limited" record per uid per 10 s */

struct conn {
	struct mas_control *ctl;
	sd_bus *bus;
	struct ucred cred;
	gid_t gids[MAX_GROUPS];
	size_t n_gids;
	enum control_access access; /* as found by the last check_access() */
	struct conn *next;
};

struct mas_control {
	struct mas_daemon *d;
	sd_event *ev;
	sd_event_source *src;
	int fd;
	char *path;
	struct conn *conns;
	void (*on_teardown)(void *);
	void *userdata;
	struct control_bucket fails[FAIL_BUCKETS];
};

static void bucket_refill(struct control_bucket *b, uint64_t now_usec)
{
	double rate = CONTROL_FAIL_PER_MINUTE / 60e6; /* tokens per microsecond */

	if (now_usec > b->last_usec) {
		b->tokens += (double)(now_usec - b->last_usec) * rate;
		if (b->tokens > CONTROL_FAIL_BURST)
			b->tokens = CONTROL_FAIL_BURST;
		b->last_usec = now_usec;
	}
}

bool control_bucket_take(struct control_bucket *b, uint64_t now_usec)
{
	bucket_refill(b, now_usec);
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

uint64_t control_bucket_wait(const struct control_bucket *b)
{
	double rate = CONTROL_FAIL_PER_MINUTE / 60e6;

	return b->tokens >= 1.0 ? 0 : (uint64_t)((1.0 - b->tokens) / rate) + 1;
}

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

/* The bucket of a uid, the least recently used one taken over for a new uid. */
static struct control_bucket *fail_bucket(struct mas_control *ctl, uid_t uid, uint64_t now)
{
	struct control_bucket *old = &ctl->fails[0];

	for (size_t i = 0; i < FAIL_BUCKETS; i++) {
		if (ctl->fails[i].last_usec && ctl->fails[i].uid == uid)
			return &ctl->fails[i];
		if (ctl->fails[i].last_usec < old->last_usec)
			old = &ctl->fails[i];
	}
	*old = (struct control_bucket){ .uid = uid,
					.tokens = CONTROL_FAIL_BURST,
					.last_usec = now };
	return old;
}

bool control_agent_is_uid(const struct mas_policy *p, size_t a, uid_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (!p || a >= p->n_agents || !p->agents[a].user)
		return false;
	if (getpwnam_r(p->agents[a].user, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return false;
	return pw.pw_uid == uid;
}

enum control_access control_access_of(const struct mas_policy *p, uid_t uid, const gid_t *gids,
				      size_t n_gids)
{
	enum control_access best = CONTROL_NONE;

	if (uid == 0)
		return CONTROL_ADMIN;
	if (!p)
		return CONTROL_NONE;
	for (size_t i = 0; i < p->n_control; i++) {
		const struct mas_control_grant *g = &p->control[i];
		bool match = false;

		for (size_t j = 0; j < g->n_principals && !match; j++) {
			const struct mas_principal *pr = &g->principals[j];

			if (pr->kind == MAS_PRINCIPAL_UID)
				match = pr->id == uid;
			else
				for (size_t k = 0; k < n_gids && !match; k++)
					match = pr->id == gids[k];
		}
		if (!match)
			continue;
		if (g->role < p->n_roles && p->roles[g->role].all)
			return CONTROL_ADMIN;
		best = CONTROL_READ;
	}
	for (size_t a = 0; best == CONTROL_NONE && a < p->n_agents; a++)
		if (control_agent_is_uid(p, a, uid))
			best = CONTROL_SELF;
	return best;
}

static const char *access_name(enum control_access a)
{
	switch (a) {
	case CONTROL_SELF:
		return "only its own agent's status";
	case CONTROL_READ:
		return "a read-only role";
	case CONTROL_ADMIN:
		return "the admin role";
	default:
		return "no role";
	}
}

/* Whether the caller may run method; refused calls are audited, and a uid refused too often is
 * refused outright, and told so, until its bucket refills. */
static int check_access(struct conn *c, enum control_access need, const char *method,
			sd_bus_error *error)
{
	struct mas_daemon *d = c->ctl->d;
	uint64_t now = mono_usec();
	struct control_bucket *b = NULL;
	enum control_access have;
	char uid[16], pid[16], msg[256];
	const struct audit_field f[] = { { "MAS_UID", uid },
					 { "MAS_PID", pid },
					 { "MAS_METHOD", method },
					 { "MAS_RATE_LIMITED", "1" } };

	snprintf(uid, sizeof(uid), "%u", (unsigned)c->cred.uid);
	snprintf(pid, sizeof(pid), "%d", (int)c->cred.pid);
	for (size_t i = 0; c->cred.uid && i < FAIL_BUCKETS; i++)
		if (c->ctl->fails[i].last_usec && c->ctl->fails[i].uid == c->cred.uid)
			b = &c->ctl->fails[i];
	if (b) {
		bucket_refill(b, now); /* only refusals spend tokens */
		if (b->tokens < 1.0) {
			uint64_t wait = control_bucket_wait(b);

			if (!b->last_record_usec || now - b->last_record_usec >= RATE_RECORD_USEC) {
				b->last_record_usec = now;
				snprintf(
					msg, sizeof(msg),
					"control requests from uid %s are rate-limited after repeated "
					"refusals (%d per minute, burst %d)",
					uid, CONTROL_FAIL_PER_MINUTE, CONTROL_FAIL_BURST);
				audit_emit(d->audit, MAS_MSGID_CONTROL_REFUSED,
					   MAS_CAT_AUTHENTICATION, LOG_WARNING, msg, f, 4);
			}
			return sd_bus_error_setf(error, MAS_ERR_RATE_LIMITED,
						 "too many refused requests from uid %u: retry in "
						 "%llu s",
						 (unsigned)c->cred.uid,
						 (unsigned long long)(wait + 999999) / 1000000);
		}
	}
	have = control_access_of(d->policy, c->cred.uid, c->gids, c->n_gids);
	c->access = have;
	if (have >= need)
		return 0;
	if (!b)
		b = fail_bucket(c->ctl, c->cred.uid, now);
	control_bucket_take(b, now);
	snprintf(msg, sizeof(msg), "control request %s refused for uid %s (pid %s): %s", method,
		 uid, pid, access_name(have));
	audit_emit(d->audit, MAS_MSGID_CONTROL_REFUSED, MAS_CAT_AUTHENTICATION, LOG_WARNING, msg, f,
		   3);
	return sd_bus_error_setf(error, MAS_ERR_ACCESS_DENIED, "permission denied (uid %u has %s)",
				 (unsigned)c->cred.uid, access_name(have));
}

static int method_apply(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct conn *c = userdata;
	const char *name, *text;
	struct mas_error err;
	int r;

	if ((r = check_access(c, CONTROL_ADMIN, "Apply", error)) < 0)
		return r;
	if ((r = sd_bus_message_read(m, "ss", &name, &text)) < 0)
		return r;
	r = daemon_apply(c->ctl->d, text, strlen(text), name, &err);
	if (r == -EINVAL && err.msg[0])
		return sd_bus_error_set(error, MAS_ERR_INVALID_POLICY, err.msg);
	if (r < 0)
		return sd_bus_error_setf(error, MAS_ERR_FAILED, "%s",
					 err.msg[0] ? err.msg : strerror(-r));
	return sd_bus_reply_method_return(m, "t", enforcer_generation(c->ctl->d->enf));
}

static int method_show(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct conn *c = userdata;
	struct mas_daemon *d = c->ctl->d;
	int r;

	if ((r = check_access(c, CONTROL_READ, "Show", error)) < 0)
		return r;
	return sd_bus_reply_method_return(m, "sst", d->policy_name ? d->policy_name : "",
					  d->policy_text ? d->policy_text : "",
					  enforcer_generation(d->enf));
}

static int method_status(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct conn *c = userdata;
	struct mas_daemon *d = c->ctl->d;
	uint64_t(*counts)[MAS_VERDICT_MAX] = NULL, drops = 0, totals[MAS_VERDICT_MAX] = { 0 };
	sd_bus_message *reply = NULL;
	size_t na = d->policy ? d->policy->n_agents : 0;
	uint32_t enrolled = 0;
	int r;

	if ((r = check_access(c, CONTROL_READ, "Status", error)) < 0)
		return r;
	if (d->drain_events) /* what the kernel decided before the call, not up to 20 ms later */
		d->drain_events(d->drain_userdata);
	if ((r = daemon_agent_counts(d, &counts)) < 0)
		return r;
	for (size_t a = 0; a <= na; a++)
		for (int v = 0; v < MAS_VERDICT_MAX; v++)
			totals[v] += counts[a][v];
	free(counts);
	for (size_t a = 0; a < na; a++)
		enrolled += d->agents[a].status == AGENT_ENROLLED;
	enforcer_stat(d->enf, MAS_STAT_RINGBUF_DROPS, &drops);

	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "sttuuttssb", "1", enforcer_generation(d->enf),
					  d->applied_usec, (uint32_t)na, enrolled, drops,
					  events_suppressed_total(d->events), d->cgroup_root,
					  d->o.bpffs_dir, (int)d->adopted);
	/* what the policy says that the kernel does not enforce yet */
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "s");
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(st)");
	for (int v = 0; r >= 0 && v < MAS_VERDICT_MAX; v++)
		r = sd_bus_message_append(reply, "(st)", events_verdict_name((uint8_t)v),
					  totals[v]);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_message_append(
			reply, "utt",
			(uint32_t)((d->keys ? keys_overdue(d->keys, (uint64_t)time(NULL)) : 0) +
				   (audit_keys(d->audit) ? keys_overdue(audit_keys(d->audit),
									(uint64_t)time(NULL)) :
							   0)),
			d->apply_duration_usec, audit_next_seq(d->audit));
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int method_keys_list(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct conn *c = userdata;
	struct mas_daemon *d = c->ctl->d;
	const struct mas_keys *rings[2] = { audit_keys(d->audit), d->keys };
	struct keys_list_entry *e = NULL, *one = NULL;
	sd_bus_message *reply = NULL;
	size_t n = 0, n_one = 0;
	int r;

	if ((r = check_access(c, CONTROL_READ, "KeysList", error)) < 0)
		return r;
	/* masd's own audit signing keyring first, then the policy's */
	for (size_t k = 0; k < 2; k++) {
		struct keys_list_entry *p;

		if (!rings[k])
			continue;
		r = keys_list(rings[k], (uint64_t)time(NULL), &one, &n_one);
		if (r < 0)
			goto out;
		p = realloc(e, (n + n_one + 1) * sizeof(*e));
		if (!p) {
			r = -ENOMEM;
			goto out;
		}
		e = p;
		memcpy(e + n, one, n_one * sizeof(*e));
		n += n_one;
		free(one);
		one = NULL;
	}
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(ssssttttttb)");
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = sd_bus_message_append(
			reply, "(ssssttttttb)", e[i].name, keys_type_name(e[i].type),
			e[i].active_kid, e[i].pending_kid, e[i].active_since, e[i].age_s,
			e[i].next_rotation, e[i].rotate_every_s, e[i].keep_previous_for_s,
			(uint64_t)e[i].n_versions, (int)e[i].overdue);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
out:
	sd_bus_message_unref(reply);
	free(one);
	free(e);
	return r;
}

static int method_keys_rotate(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct conn *c = userdata;
	struct mas_daemon *d = c->ctl->d;
	const char *name;
	uint32_t flags;
	int r;

	if ((r = check_access(c, CONTROL_ADMIN, "KeysRotate", error)) < 0)
		return r;
	if ((r = sd_bus_message_read(m, "su", &name, &flags)) < 0)
		return r;
	if (strcmp(name, MAS_AUDIT_KEY_NAME) == 0 && audit_keys(d->audit))
		r = audit_rotate_key(d->audit); /* at once: a pending audit key has no use */
	else
		r = d->keys ? keys_rotate(d->keys, name, (uint64_t)time(NULL),
					  flags & (KEYS_ROTATE_IMMEDIATE | KEYS_ROTATE_REVOKE)) :
			      -ENOENT;
	if (r == -ENOENT)
		return sd_bus_error_setf(error, MAS_ERR_FAILED, "no key named '%s' in the policy",
					 name);
	if (r == -EBUSY)
		return sd_bus_error_setf(error, MAS_ERR_FAILED,
					 "key '%s' already has a pending version (use --now to "
					 "activate it)",
					 name);
	if (r < 0)
		return sd_bus_error_setf(error, MAS_ERR_FAILED, "rotating '%s': %s", name,
					 strerror(-r));
	return sd_bus_reply_method_return(m, "");
}

static int method_agents(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct conn *c = userdata;
	struct mas_daemon *d = c->ctl->d;
	uint64_t(*counts)[MAS_VERDICT_MAX] = NULL;
	sd_bus_message *reply = NULL;
	size_t na = d->policy ? d->policy->n_agents : 0;
	int r;

	if ((r = check_access(c, CONTROL_SELF, "Agents", error)) < 0)
		return r;
	if ((r = daemon_agent_counts(d, &counts)) < 0)
		return r;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sssssttttt)");
	for (size_t a = 0; r >= 0 && a < na; a++) {
		const struct mas_agent *ag = &d->policy->agents[a];

		/* an agent's own user sees its own agent and nothing else */
		if (c->access == CONTROL_SELF && !control_agent_is_uid(d->policy, a, c->cred.uid))
			continue;
		r = sd_bus_message_append(
			reply, "(sssssttttt)", ag->name, d->policy->roles[ag->role].name,
			policy_agent_mode(d->policy, a) == MAS_POLICY_AUDIT ? "audit" : "enforce",
			daemon_agent_status_name(d->agents[a].status),
			d->agents[a].path ? d->agents[a].path : (ag->unit ? ag->unit : ag->cgroup),
			counts[a][MAS_VERDICT_ALLOW], counts[a][MAS_VERDICT_DENY],
			counts[a][MAS_VERDICT_WOULD_DENY], counts[a][MAS_VERDICT_RATE_LIMITED],
			counts[a][MAS_VERDICT_CAPPED]);
	}
	/* processes that are no agent: what they were refused */
	if (r >= 0 && c->access != CONTROL_SELF)
		r = sd_bus_message_append(
			reply, "(sssssttttt)", "(none)", "-", "-", "-", "-",
			counts[na][MAS_VERDICT_ALLOW], counts[na][MAS_VERDICT_DENY],
			counts[na][MAS_VERDICT_WOULD_DENY], counts[na][MAS_VERDICT_RATE_LIMITED],
			counts[na][MAS_VERDICT_CAPPED]);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	free(counts);
	return r;
}

/* Per agent, the state of its limits: for each class of a destination it is granted, the
 * tokens left (and bytes, with a budget); for each granted destination with a cap, the sockets
 * it holds open. */
static int method_limits(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct conn *c = userdata;
	struct mas_daemon *d = c->ctl->d;
	const struct mas_policy *p = d->policy;
	sd_bus_message *reply = NULL;
	size_t na = p ? p->n_agents : 0;
	bool *seen = NULL;
	int r;

	if ((r = check_access(c, CONTROL_SELF, "Limits", error)) < 0)
		return r;
	if (p && !(seen = calloc(p->n_rate_limits + 1, sizeof(*seen))))
		return -ENOMEM;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(ssstttt)");
	for (size_t a = 0; r >= 0 && a < na; a++) {
		uint32_t id = d->compiled->agents[a].agent_id;

		/* an agent's own user sees its own agent's limits and nothing else */
		if (c->access == CONTROL_SELF && !control_agent_is_uid(p, a, c->cred.uid))
			continue;
		memset(seen, 0, (p->n_rate_limits + 1) * sizeof(*seen));
		for (size_t i = 0; r >= 0 && i < p->n_destinations; i++) {
			const struct mas_destination *dst = &p->destinations[i];
			uint64_t left = 0, bytes = 0, open = 0;

			if (!policy_agent_granted(p, a, i))
				continue;
			if (dst->max_connections) {
				enforcer_open_conns(d->enf, id, compile_dest_key(dst->name), &open);
				r = sd_bus_message_append(reply, "(ssstttt)", p->agents[a].name,
							  "cap", dst->name, open,
							  (uint64_t)dst->max_connections,
							  (uint64_t)0, (uint64_t)0);
			}
			if (r < 0 || dst->class_idx < 0 || seen[dst->class_idx])
				continue;
			seen[dst->class_idx] = true;
			{
				const struct mas_class *k = &d->compiled->classes[dst->class_idx];

				enforcer_tokens(d->enf, id, k, false, &left);
				if (k->bytes_per_second)
					enforcer_tokens(d->enf, id, k, true, &bytes);
				r = sd_bus_message_append(
					reply, "(ssstttt)", p->agents[a].name, "class",
					p->rate_limits[dst->class_idx].name, left,
					(uint64_t)k->burst, bytes, k->burst_bytes);
			}
		}
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	free(seen);
	return r;
}

#define EVENTS_MAX_REPLY 1024

static int method_events(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct conn *c = userdata;
	struct mas_daemon *d = c->ctl->d;
	struct mas_event_rec *recs;
	sd_bus_message *reply = NULL;
	uint64_t since;
	uint32_t max;
	size_t n;
	int r;

	if ((r = check_access(c, CONTROL_READ, "Events", error)) < 0)
		return r;
	if (d->drain_events) /* what the kernel decided before the call, not up to 20 ms later */
		d->drain_events(d->drain_userdata);
	if ((r = sd_bus_message_read(m, "tu", &since, &max)) < 0)
		return r;
	if (max == 0 || max > EVENTS_MAX_REPLY)
		max = EVENTS_MAX_REPLY;
	recs = calloc(max, sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	n = events_since(d->events, since, recs, max);
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "t", n ? recs[n - 1].seq : since);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(ttssssssqsuust)");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		const struct mas_event *e = &recs[i].e;
		char addr[64], comm[MAS_COMM_LEN + 1];

		events_format_addr(e, addr, sizeof(addr));
		memcpy(comm, e->comm, MAS_COMM_LEN);
		comm[MAS_COMM_LEN] = '\0';
		r = sd_bus_message_append(reply, "(ttssssssqsuust)", recs[i].seq,
					  recs[i].realtime_usec, recs[i].agent,
					  events_verdict_name(e->verdict),
					  events_reason_name(e->reason), events_hook_name(e->hook),
					  events_proto_name(e->protocol), addr, e->port,
					  recs[i].dest, e->pid, e->uid, comm, e->generation);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	free(recs);
	return r;
}

static int method_teardown(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct conn *c = userdata;
	int r;

	if ((r = check_access(c, CONTROL_ADMIN, "Teardown", error)) < 0)
		return r;
	r = daemon_teardown(c->ctl->d);
	if (r < 0)
		return sd_bus_error_setf(error, MAS_ERR_FAILED, "teardown: %s", strerror(-r));
	r = sd_bus_reply_method_return(m, "");
	if (c->ctl->on_teardown)
		c->ctl->on_teardown(c->ctl->userdata);
	return r;
}

static const sd_bus_vtable control_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("Apply", "ss", "t", method_apply, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Show", "", "sst", method_show, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Status", "", "sttuuttssbasa(st)utt", method_status,
		      SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("KeysList", "", "a(ssssttttttb)", method_keys_list,
		      SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("KeysRotate", "su", "", method_keys_rotate, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Agents", "", "a(sssssttttt)", method_agents, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Limits", "", "a(ssstttt)", method_limits, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Events", "tu", "ta(ttssssssqsuust)", method_events,
		      SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Teardown", "", "", method_teardown, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END
};

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	sd_bus_flush_close_unref(c->bus);
	free(c);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct mas_control *ctl = userdata;
	socklen_t len = sizeof(struct ucred);
	struct conn *c;
	sd_id128_t id;
	int cfd, r;

	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return 0;
	}
	c->ctl = ctl;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0)
		goto fail;
	len = sizeof(c->gids);
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERGROUPS, c->gids, &len) == 0)
		c->n_gids = len / sizeof(gid_t);
	r = sd_bus_new(&c->bus);
	if (r < 0)
		goto fail;
	if (sd_bus_set_fd(c->bus, cfd, cfd) < 0)
		goto fail_bus;
	cfd = -1; /* the bus owns it now */
	if (sd_id128_randomize(&id) < 0 || sd_bus_set_server(c->bus, 1, id) < 0 ||
	    sd_bus_add_object_vtable(c->bus, NULL, MAS_CONTROL_PATH, MAS_CONTROL_IFACE,
				     control_vtable, c) < 0 ||
	    sd_bus_start(c->bus) < 0 || sd_bus_attach_event(c->bus, ctl->ev, 0) < 0)
		goto fail_bus;
	c->next = ctl->conns;
	ctl->conns = c;
	return 0;
fail_bus:
	conn_free(c);
	if (cfd >= 0)
		close(cfd);
	return 0;
fail:
	close(cfd);
	free(c);
	return 0;
}

int control_new(struct mas_daemon *d, sd_event *ev, const struct control_options *o,
		void (*on_teardown)(void *), void *userdata, struct mas_control **ret)
{
	struct mas_control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int r;

	if (!ctl)
		return -ENOMEM;
	ctl->fd = -1;
	ctl->d = d;
	ctl->ev = ev;
	ctl->on_teardown = on_teardown;
	ctl->userdata = userdata;
	if (strlen(o->path) >= sizeof(sa.sun_path)) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	strcpy(sa.sun_path, o->path);
	ctl->path = strdup(o->path);
	if (!ctl->path) {
		r = -ENOMEM;
		goto fail;
	}
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0)
		goto fail_errno;
	unlink(o->path);
	old = umask(0777 & ~o->mode); /* never a moment with a wider mode */
	r = bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		goto fail_errno;
	if (chmod(o->path, o->mode) < 0)
		goto fail_errno;
	if (o->gid != (gid_t)-1 && chown(o->path, 0, o->gid) < 0)
		goto fail_errno;
	if (listen(ctl->fd, 64) < 0)
		goto fail_errno;
	r = sd_event_add_io(ev, &ctl->src, ctl->fd, EPOLLIN, on_accept, ctl);
	if (r < 0)
		goto fail;
	*ret = ctl;
	return 0;
fail_errno:
	r = -errno;
fail:
	control_free(ctl);
	return r;
}

void control_gc(struct mas_control *ctl)
{
	struct conn **pp = &ctl->conns;

	while (*pp) {
		struct conn *c = *pp;

		if (sd_bus_is_open(c->bus) > 0) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		conn_free(c);
	}
}

void control_free(struct mas_control *ctl)
{
	if (!ctl)
		return;
	while (ctl->conns) {
		struct conn *c = ctl->conns;

		ctl->conns = c->next;
		conn_free(c);
	}
	sd_event_source_unref(ctl->src);
	if (ctl->fd >= 0)
		close(ctl->fd);
	if (ctl->path)
		unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
