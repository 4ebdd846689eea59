/* SPDX-License-Identifier: GPL-2.0-only */
/* Policy diff by meaning, and the verdict a recorded flow would get under another policy. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "diff.h"
#include "mas_decide.h"

const char *diff_kind_name(enum diff_kind k)
{
	static const char *const names[] = {
		"mode-changed",	       "agent-added", "agent-removed",	   "agent-changed",
		"grant-gained",	       "grant-lost",  "destination-added", "destination-removed",
		"destination-changed", "limit-added", "limit-removed",	   "limit-changed",
		"setting-changed",
	};

	return k < DIFF_KIND_MAX ? names[k] : "unknown";
}

static int add(struct diff *d, enum diff_kind k, const char *subject, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int add(struct diff *d, enum diff_kind k, const char *subject, const char *fmt, ...)
{
	struct diff_item *v = realloc(d->v, (d->n + 1) * sizeof(*v));
	va_list ap;

	if (!v)
		return -ENOMEM;
	d->v = v;
	v = &v[d->n++];
	v->kind = k;
	snprintf(v->subject, sizeof(v->subject), "%s", subject);
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
	return 0;
}

void diff_free(struct diff *d)
{
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

static const char *mode_name(enum mas_policy_mode m)
{
	return m == MAS_POLICY_AUDIT ? "audit" : "enforce";
}

/* Appends "sep item" to buf. */
static void cat(char *buf, size_t len, const char *sep, const char *item)
{
	size_t o = strlen(buf);

	if (o < len)
		snprintf(buf + o, len - o, "%s%s", o ? sep : "", item);
}

static void grants_of(const struct mas_policy *p, size_t a, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t d = 0; d < p->n_destinations; d++)
		if (policy_agent_granted(p, a, d))
			cat(buf, len, ", ", p->destinations[d].name);
	if (!buf[0])
		snprintf(buf, len, "nothing");
}

static void format_cidr(const struct mas_cidr *c, char *buf, size_t len)
{
	const uint8_t *a = c->addr;

	if (c->family == AF_INET) {
		snprintf(buf, len, "%u.%u.%u.%u/%u", a[0], a[1], a[2], a[3], c->prefixlen);
	} else {
		size_t o = 0;

		for (int i = 0; i < 16 && o < len; i += 2)
			o += (size_t)snprintf(buf + o, len - o, "%s%x", i ? ":" : "",
					      (unsigned)(a[i] << 8 | a[i + 1]));
		if (o < len)
			snprintf(buf + o, len - o, "/%u", c->prefixlen);
	}
}

static bool has_cidr(const struct mas_destination *d, const struct mas_cidr *c)
{
	for (size_t i = 0; i < d->n_cidrs; i++)
		if (d->cidrs[i].family == c->family && d->cidrs[i].prefixlen == c->prefixlen &&
		    !memcmp(d->cidrs[i].addr, c->addr, 16))
			return true;
	return false;
}

static bool has_host(const struct mas_destination *d, const char *h)
{
	for (size_t i = 0; i < d->n_hosts; i++)
		if (!strcasecmp(d->hosts[i], h))
			return true;
	return false;
}

static void format_ports(const struct mas_destination *d, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!d->n_ports) {
		snprintf(buf, len, "any");
		return;
	}
	for (size_t i = 0; i < d->n_ports; i++) {
		char one[16];

		if (d->ports[i].lo == d->ports[i].hi)
			snprintf(one, sizeof(one), "%u", d->ports[i].lo);
		else
			snprintf(one, sizeof(one), "%u-%u", d->ports[i].lo, d->ports[i].hi);
		cat(buf, len, ",", one);
	}
}

static const char *protos_name(unsigned p)
{
	if (p == (MAS_PROTO_TCP | MAS_PROTO_UDP))
		return "tcp,udp";
	return p == MAS_PROTO_UDP ? "udp" : "tcp";
}

static const char *class_of(const struct mas_policy *p, const struct mas_destination *d)
{
	return d->class_idx >= 0 ? p->rate_limits[d->class_idx].name : "none";
}

static int diff_dest(struct diff *out, const struct mas_policy *po, const struct mas_destination *o,
		     const struct mas_policy *pn, const struct mas_destination *n)
{
	char buf[768] = "", a[64], b[320];

	for (size_t i = 0; i < n->n_hosts; i++)
		if (!has_host(o, n->hosts[i])) {
			snprintf(b, sizeof(b), "+host %s", n->hosts[i]);
			cat(buf, sizeof(buf), "; ", b);
		}
	for (size_t i = 0; i < o->n_hosts; i++)
		if (!has_host(n, o->hosts[i])) {
			snprintf(b, sizeof(b), "-host %s", o->hosts[i]);
			cat(buf, sizeof(buf), "; ", b);
		}
	for (size_t i = 0; i < n->n_cidrs; i++)
		if (!has_cidr(o, &n->cidrs[i])) {
			format_cidr(&n->cidrs[i], a, sizeof(a));
			snprintf(b, sizeof(b), "+address %s", a);
			cat(buf, sizeof(buf), "; ", b);
		}
	for (size_t i = 0; i < o->n_cidrs; i++)
		if (!has_cidr(n, &o->cidrs[i])) {
			format_cidr(&o->cidrs[i], a, sizeof(a));
			snprintf(b, sizeof(b), "-address %s", a);
			cat(buf, sizeof(buf), "; ", b);
		}
	{
		char po_[128], pn_[128];

		format_ports(o, po_, sizeof(po_));
		format_ports(n, pn_, sizeof(pn_));
		if (strcmp(po_, pn_)) {
			snprintf(b, sizeof(b), "ports %s -> %s", po_, pn_);
			cat(buf, sizeof(buf), "; ", b);
		}
	}
	if (o->protocols != n->protocols) {
		snprintf(b, sizeof(b), "protocols %s -> %s", protos_name(o->protocols),
			 protos_name(n->protocols));
		cat(buf, sizeof(buf), "; ", b);
	}
	if (strcmp(class_of(po, o), class_of(pn, n))) {
		snprintf(b, sizeof(b), "class %s -> %s", class_of(po, o), class_of(pn, n));
		cat(buf, sizeof(buf), "; ", b);
	}
	if (o->protected_ != n->protected_) {
		snprintf(b, sizeof(b), "protected %s -> %s", o->protected_ ? "true" : "false",
			 n->protected_ ? "true" : "false");
		cat(buf, sizeof(buf), "; ", b);
	}
	if (o->max_connections != n->max_connections) {
		snprintf(b, sizeof(b), "max_connections %u -> %u", o->max_connections,
			 n->max_connections);
		cat(buf, sizeof(buf), "; ", b);
	}
	return buf[0] ? add(out, DIFF_DEST_CHANGED, n->name, "%s", buf) : 0;
}

static const char *agent_where(const struct mas_agent *a)
{
	return a->unit ? a->unit : a->cgroup;
}

int diff_policies(const struct mas_policy *old, const struct mas_policy *new, struct diff *out)
{
	char buf[768];
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (old->mode != new->mode)
		r = add(out, DIFF_MODE, "policy", "mode %s -> %s", mode_name(old->mode),
			mode_name(new->mode));
	/* destinations */
	for (size_t i = 0; i < new->n_destinations &&r == 0; i++) {
		const struct mas_destination *n = &new->destinations[i];
		int o = policy_find_destination(old, n->name);

		if (o < 0) {
			char ports[128];

			format_ports(n, ports, sizeof(ports));
			r = add(out, DIFF_DEST_ADDED, n->name,
				"%zu hosts, %zu address ranges, ports %s, %s%s", n->n_hosts,
				n->n_cidrs, ports, protos_name(n->protocols),
				n->protected_ ? ", protected" : "");
		} else {
			r = diff_dest(out, old, &old->destinations[o], new, n);
		}
	}
	for (size_t i = 0; i < old->n_destinations && r == 0; i++)
		if (policy_find_destination(new, old->destinations[i].name) < 0)
			r = add(out, DIFF_DEST_REMOVED, old->destinations[i].name,
				"no longer a destination");
	/* rate limits */
	for (size_t i = 0; i < new->n_rate_limits &&r == 0; i++) {
		const struct mas_rate_class *n = &new->rate_limits[i];
		const struct mas_rate_class *o = NULL;

		for (size_t j = 0; j < old->n_rate_limits; j++)
			if (!strcmp(old->rate_limits[j].name, n->name))
				o = &old->rate_limits[j];
		if (!o)
			r = add(out, DIFF_LIMIT_ADDED, n->name, "%u/min burst %u",
				n->requests_per_minute, n->burst_size);
		else if (o->requests_per_minute != n->requests_per_minute ||
			 o->burst_size != n->burst_size ||
			 o->bytes_per_second != n->bytes_per_second ||
			 o->burst_bytes != n->burst_bytes)
			r = add(out, DIFF_LIMIT_CHANGED, n->name,
				"%u/min burst %u -> %u/min burst %u%s", o->requests_per_minute,
				o->burst_size, n->requests_per_minute, n->burst_size,
				o->bytes_per_second != n->bytes_per_second ||
						o->burst_bytes != n->burst_bytes ?
					"; bandwidth budget changed" :
					"");
	}
	for (size_t i = 0; i < old->n_rate_limits && r == 0; i++) {
		bool found = false;

		for (size_t j = 0; j < new->n_rate_limits; j++)
			found = found ||
				!strcmp(old->rate_limits[i].name, new->rate_limits[j].name);
		if (!found)
			r = add(out, DIFF_LIMIT_REMOVED, old->rate_limits[i].name,
				"no longer limited");
	}
	/* agents, their grants and modes */
	for (size_t a = 0; a < new->n_agents &&r == 0; a++) {
		const struct mas_agent *n = &new->agents[a];
		int o = policy_find_agent(old, n->name);

		if (o < 0) {
			grants_of(new, a, buf, sizeof(buf));
			r = add(out, DIFF_AGENT_ADDED, n->name,
				"%s, role %s, mode %s, may reach: %s", agent_where(n),
				new->roles[n->role].name, mode_name(policy_agent_mode(new, a)),
				buf);
			continue;
		}
		buf[0] = '\0';
		{
			const struct mas_agent *oa = &old->agents[o];
			char b[400];

			if (strcmp(agent_where(oa), agent_where(n))) {
				snprintf(b, sizeof(b), "cgroup %s -> %s", agent_where(oa),
					 agent_where(n));
				cat(buf, sizeof(buf), "; ", b);
			}
			if (strcmp(old->roles[oa->role].name, new->roles[n->role].name)) {
				snprintf(b, sizeof(b), "role %s -> %s", old->roles[oa->role].name,
					 new->roles[n->role].name);
				cat(buf, sizeof(buf), "; ", b);
			}
			if (policy_agent_mode(old, (size_t)o) != policy_agent_mode(new, a)) {
				snprintf(b, sizeof(b), "mode %s -> %s",
					 mode_name(policy_agent_mode(old, (size_t)o)),
					 mode_name(policy_agent_mode(new, a)));
				cat(buf, sizeof(buf), "; ", b);
			}
			if ((oa->user || n->user) &&
			    (!oa->user || !n->user || strcmp(oa->user, n->user))) {
				snprintf(b, sizeof(b), "user %s -> %s",
					 oa->user ? oa->user : "none", n->user ? n->user : "none");
				cat(buf, sizeof(buf), "; ", b);
			}
		}
		if (buf[0] && (r = add(out, DIFF_AGENT_CHANGED, n->name, "%s", buf)) < 0)
			break;
		for (size_t d = 0; d < new->n_destinations &&r == 0; d++) {
			int od = policy_find_destination(old, new->destinations[d].name);
			bool was = od >= 0 && policy_agent_granted(old, (size_t)o, (size_t)od);

			if (!was && policy_agent_granted(new, a, d))
				r = add(out, DIFF_GRANT_GAINED, n->name, "may now reach %s",
					new->destinations[d].name);
		}
		for (size_t d = 0; d < old->n_destinations && r == 0; d++) {
			int nd = policy_find_destination(new, old->destinations[d].name);
			bool is = nd >= 0 && policy_agent_granted(new, a, (size_t)nd);

			if (policy_agent_granted(old, (size_t)o, d) && !is)
				r = add(out, DIFF_GRANT_LOST, n->name, "may no longer reach %s",
					old->destinations[d].name);
		}
	}
	for (size_t a = 0; a < old->n_agents && r == 0; a++)
		if (policy_find_agent(new, old->agents[a].name) < 0)
			r = add(out, DIFF_AGENT_REMOVED, old->agents[a].name,
				"no longer confined (its processes are no agent)");
	/* settings */
	if (r == 0 && (old->resolver.has_server != new->resolver.has_server ||
		       memcmp(old->resolver.server, new->resolver.server, 4) ||
		       old->resolver.port != new->resolver.port))
		r = add(out, DIFF_SETTING, "resolver.server", "DNS server changed");
	if (r == 0 && old->resolver.grace_s != new->resolver.grace_s)
		r = add(out, DIFF_SETTING, "resolver.grace", "%llus -> %llus",
			(unsigned long long)old->resolver.grace_s,
			(unsigned long long)new->resolver.grace_s);
	if (r == 0 && old->audit.flow_interval_s != new->audit.flow_interval_s)
		r = add(out, DIFF_SETTING, "audit.flow_interval", "%llus -> %llus",
			(unsigned long long)old->audit.flow_interval_s,
			(unsigned long long)new->audit.flow_interval_s);
	if (r == 0 && (old->audit.enabled != new->audit.enabled ||
		       old->audit.signed_logs != new->audit.signed_logs ||
		       old->audit.include != new->audit.include ||
		       old->audit.retention_days != new->audit.retention_days))
		r = add(out, DIFF_SETTING, "audit", "audit settings changed");
	if (r == 0 && old->n_control != new->n_control)
		r = add(out, DIFF_SETTING, "control", "%zu -> %zu roles may use the control socket",
			old->n_control, new->n_control);
	if (r == 0 && old->n_keys != new->n_keys)
		r = add(out, DIFF_SETTING, "keys", "%zu -> %zu keys", old->n_keys, new->n_keys);
	if (r < 0)
		diff_free(out);
	return r;
}

static bool prefix_match(const uint8_t *key, const uint8_t *addr, unsigned plen)
{
	unsigned full = plen / 8, rest = plen % 8;

	if (memcmp(key, addr, full))
		return false;
	return !rest || ((key[full] ^ addr[full]) & (uint8_t)(0xff00 >> rest)) == 0;
}

uint8_t diff_verdict(const struct mas_policy *p, const struct mas_compiled *c,
		     const struct diff_flow *f, uint16_t *ret_dest)
{
	const struct mas_prefix_val *pv = NULL;
	const struct mas_agent_val *agent = NULL;
	const struct mas_rule *rule = NULL;
	struct mas_decision d = { 0 };
	int a = strcmp(f->agent, "(none)") ? policy_find_agent(p, f->agent) : -1;
	int best = -1;

	if (a >= 0 && (size_t)a < c->n_agents)
		agent = &c->agents[a];
	if (f->family == AF_INET) {
		for (size_t i = 0; i < c->n_v4; i++)
			if ((int)c->v4[i].key.prefixlen > best &&
			    prefix_match(c->v4[i].key.addr, f->addr, c->v4[i].key.prefixlen)) {
				best = (int)c->v4[i].key.prefixlen;
				pv = &c->v4[i].val;
			}
	} else {
		for (size_t i = 0; i < c->n_v6; i++)
			if ((int)c->v6[i].key.prefixlen > best &&
			    prefix_match(c->v6[i].key.addr, f->addr, c->v6[i].key.prefixlen)) {
				best = (int)c->v6[i].key.prefixlen;
				pv = &c->v6[i].val;
			}
	}
	if (pv)
		rule = mas_match_rule(pv, f->port, mas_proto_bit(f->ipproto));
	mas_decide_addr(agent, rule, c->meta.mode, &d);
	*ret_dest = d.dest;
	return d.verdict;
}
