/* SPDX-License-Identifier: GPL-2.0-only */
/* Policy compiler: destinations become LPM entries whose rule lists already hold the rules of
 * every shorter prefix that covers them, most specific first, so the kernel needs one lookup. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "compile.h"

/* One (prefix, rule) pair before grouping. */
struct pair {
	int family;
	uint8_t addr[16];
	uint8_t plen;
	struct mas_rule rule;
	size_t dest;
};

/* A distinct prefix and its own rules (indexes into the pair array). */
struct prefix {
	int family;
	uint8_t addr[16];
	uint8_t plen;
	size_t first, n; /* its pairs, contiguous after sorting */
	uint64_t hash;
};

static uint32_t fnv1a(const char *name)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		h ^= *s;
		h *= 16777619u;
	}
	return h ? h : 1;
}

uint32_t compile_agent_id(const char *name)
{
	return fnv1a(name); /* never MAS_NO_AGENT, which is 0 */
}

uint32_t compile_dest_key(const char *name)
{
	return fnv1a(name);
}

uint32_t compile_class_key(const char *name)
{
	return fnv1a(name);
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static void mask_addr(uint8_t *a, size_t len, unsigned plen)
{
	for (size_t i = 0; i < len; i++) {
		unsigned bits = plen > i * 8 ? plen - i * 8 : 0;

		if (bits >= 8)
			continue;
		a[i] &= (uint8_t)(0xff00 >> bits);
	}
}

static uint64_t prefix_hash(int family, const uint8_t *addr, unsigned plen)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)family ^ ((uint64_t)plen << 8);

	for (size_t i = 0; i < addr_len(family); i++) {
		h ^= addr[i];
		h *= 1099511628211ull;
	}
	return h;
}

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	uint32_t wx = (uint32_t)x->rule.port_hi - x->rule.port_lo;
	uint32_t wy = (uint32_t)y->rule.port_hi - y->rule.port_lo;
	int c;

	if (x->family != y->family)
		return x->family - y->family;
	if (x->plen != y->plen)
		return (int)y->plen - (int)x->plen; /* longer prefixes first */
	c = memcmp(x->addr, y->addr, 16);
	if (c)
		return c;
	if (wx != wy)
		return wx < wy ? -1 : 1; /* narrower port ranges first */
	if (x->dest != y->dest)
		return x->dest < y->dest ? -1 : 1;
	return (int)x->rule.port_lo - (int)y->rule.port_lo;
}

/* Open-addressing table of prefixes, to find the covering prefixes of each one. */
struct table {
	size_t *slots; /* prefix index + 1; 0 empty */
	size_t mask;
};

static int table_init(struct table *t, size_t n)
{
	size_t cap = 16;

	while (cap < n * 2)
		cap <<= 1;
	t->slots = calloc(cap, sizeof(*t->slots));
	t->mask = cap - 1;
	return t->slots ? 0 : -ENOMEM;
}

static void table_put(struct table *t, const struct prefix *pf, size_t idx)
{
	size_t i = pf[idx].hash & t->mask;

	while (t->slots[i])
		i = (i + 1) & t->mask;
	t->slots[i] = idx + 1;
}

static long table_get(const struct table *t, const struct prefix *pf, int family,
		      const uint8_t *addr, unsigned plen)
{
	uint64_t h = prefix_hash(family, addr, plen);

	for (size_t i = h & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
		const struct prefix *p = &pf[t->slots[i] - 1];

		if (p->hash == h && p->family == family && p->plen == plen &&
		    !memcmp(p->addr, addr, addr_len(family)))
			return (long)(t->slots[i] - 1);
	}
	return -1;
}

static int add_pairs(struct pair **pairs, size_t *n, size_t *cap, const struct mas_policy *p,
		     size_t d, const struct mas_cidr *c)
{
	const struct mas_destination *dst = &p->destinations[d];
	size_t nports = dst->n_ports ? dst->n_ports : 1;

	for (size_t i = 0; i < nports; i++) {
		struct pair *x;

		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			struct pair *np = realloc(*pairs, nc * sizeof(*np));

			if (!np)
				return -ENOMEM;
			*pairs = np;
			*cap = nc;
		}
		x = &(*pairs)[(*n)++];
		memset(x, 0, sizeof(*x));
		x->family = c->family;
		memcpy(x->addr, c->addr, addr_len(c->family));
		x->plen = c->prefixlen;
		mask_addr(x->addr, addr_len(c->family), c->prefixlen);
		x->dest = d;
		x->rule.port_lo = dst->n_ports ? dst->ports[i].lo : 0;
		x->rule.port_hi = dst->n_ports ? dst->ports[i].hi : 65535;
		x->rule.dest = (uint16_t)d;
		x->rule.class_id = dst->class_idx >= 0 ? (uint16_t)(dst->class_idx + 1) : 0;
		x->rule.protos = (uint8_t)dst->protocols;
		x->rule.flags = dst->protected_ ? MAS_RULE_PROTECTED : 0;
		x->rule.max_conn = (uint16_t)dst->max_connections;
		x->rule.dest_key = compile_dest_key(dst->name);
		x->rule.class_key = dst->class_idx >= 0 ?
					    compile_class_key(p->rate_limits[dst->class_idx].name) :
					    0;
	}
	return 0;
}

/* Local aliases: the addresses at which a service of this host may be reached whatever the
 * host's interfaces are (v4-mapped IPv6 is IPv4 to the programs, so ::ffff:127.0.0.0/104 is
 * 127.0.0.0/8 here). */
static const struct mas_cidr local_always[] = {
	{ .family = AF_INET, .addr = { 0, 0, 0, 0 }, .prefixlen = 32 },
	{ .family = AF_INET, .addr = { 127, 0, 0, 0 }, .prefixlen = 8 },
	{ .family = AF_INET6, .addr = { 0 }, .prefixlen = 128 },
	{ .family = AF_INET6, .addr = { [15] = 1 }, .prefixlen = 128 },
};

/* Whether two prefixes share an address: the shorter one covers the longer. */
static bool cidr_overlap(const struct mas_cidr *a, const struct mas_cidr *b)
{
	uint8_t x[16] = { 0 }, y[16] = { 0 };
	unsigned plen = a->prefixlen < b->prefixlen ? a->prefixlen : b->prefixlen;
	size_t len = addr_len(a->family);

	if (a->family != b->family)
		return false;
	memcpy(x, a->addr, len);
	memcpy(y, b->addr, len);
	mask_addr(x, len, plen);
	mask_addr(y, len, plen);
	return !memcmp(x, y, len);
}

/* Whether a covers all of b. */
static bool cidr_covers(const struct mas_cidr *a, const struct mas_cidr *b)
{
	return a->prefixlen <= b->prefixlen && cidr_overlap(a, b);
}

static const struct mas_cidr *local_at(const struct mas_cidr *local, size_t i)
{
	size_t n = sizeof(local_always) / sizeof(local_always[0]);

	return i < n ? &local_always[i] : &local[i - n];
}

/* The local aliases of destination d when it is protected and includes a local address, minus
 * those its own prefixes already cover. */
static int add_local_aliases(struct pair **pairs, size_t *n, size_t *cap,
			     const struct mas_policy *p, size_t d,
			     const struct mas_dest_addrs *addrs, const struct mas_cidr *local,
			     size_t n_local)
{
	const struct mas_destination *dst = &p->destinations[d];
	size_t total = sizeof(local_always) / sizeof(local_always[0]) + n_local;
	size_t n_own = dst->n_cidrs + (addrs ? addrs[d].n_cidrs : 0);
	bool local_dest = false;
	int r;

	if (!dst->protected_)
		return 0;
	for (size_t i = 0; i < n_own && !local_dest; i++) {
		const struct mas_cidr *own =
			i < dst->n_cidrs ? &dst->cidrs[i] : &addrs[d].cidrs[i - dst->n_cidrs];

		for (size_t k = 0; k < total && !local_dest; k++)
			local_dest = cidr_overlap(own, local_at(local, k));
	}
	if (!local_dest)
		return 0;
	for (size_t k = 0; k < total; k++) {
		const struct mas_cidr *l = local_at(local, k);
		bool covered = false;

		for (size_t i = 0; i < n_own && !covered; i++)
			covered = cidr_covers(i < dst->n_cidrs ? &dst->cidrs[i] :
								 &addrs[d].cidrs[i - dst->n_cidrs],
					      l);
		if (!covered && (r = add_pairs(pairs, n, cap, p, d, l)) < 0)
			return r;
	}
	return 0;
}

static void format_prefix(char *buf, size_t len, const struct prefix *pf)
{
	if (pf->family == AF_INET)
		snprintf(buf, len, "%u.%u.%u.%u/%u", pf->addr[0], pf->addr[1], pf->addr[2],
			 pf->addr[3], pf->plen);
	else
		snprintf(buf, len, "an IPv6 /%u prefix", pf->plen);
}

int compile_policy(const struct mas_policy *p, const struct mas_dest_addrs *addrs,
		   uint64_t generation, uint32_t root_level, struct mas_compiled **ret,
		   struct mas_error *err)
{
	return compile_policy_local(p, addrs, NULL, 0, generation, root_level, ret, err);
}

int compile_policy_local(const struct mas_policy *p, const struct mas_dest_addrs *addrs,
			 const struct mas_cidr *local, size_t n_local, uint64_t generation,
			 uint32_t root_level, struct mas_compiled **ret, struct mas_error *err)
{
	struct mas_compiled *c = calloc(1, sizeof(*c));
	struct pair *pairs = NULL;
	struct prefix *pf = NULL;
	struct table t = { 0 };
	size_t n = 0, cap = 0, npf = 0;
	bool lens[2][129] = { { 0 } };
	int r = -ENOMEM;

	if (!c)
		return -ENOMEM;
	for (size_t d = 0; d < p->n_destinations; d++) {
		const struct mas_destination *dst = &p->destinations[d];

		for (size_t i = 0; i < dst->n_cidrs; i++)
			if ((r = add_pairs(&pairs, &n, &cap, p, d, &dst->cidrs[i])) < 0)
				goto out;
		for (size_t i = 0; addrs && i < addrs[d].n_cidrs; i++)
			if ((r = add_pairs(&pairs, &n, &cap, p, d, &addrs[d].cidrs[i])) < 0)
				goto out;
		if ((r = add_local_aliases(&pairs, &n, &cap, p, d, addrs, local, n_local)) < 0)
			goto out;
	}
	r = -ENOMEM;
	if (n)
		qsort(pairs, n, sizeof(*pairs), pair_cmp);

	/* group equal prefixes */
	pf = calloc(n ? n : 1, sizeof(*pf));
	if (!pf)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct prefix *last = npf ? &pf[npf - 1] : NULL;

		if (last && last->family == pairs[i].family && last->plen == pairs[i].plen &&
		    !memcmp(last->addr, pairs[i].addr, 16)) {
			last->n++;
			continue;
		}
		last = &pf[npf++];
		last->family = pairs[i].family;
		memcpy(last->addr, pairs[i].addr, 16);
		last->plen = pairs[i].plen;
		last->first = i;
		last->n = 1;
		last->hash = prefix_hash(last->family, last->addr, last->plen);
		lens[last->family == AF_INET6][last->plen] = true;
	}
	if ((r = table_init(&t, npf)) < 0)
		goto out;
	for (size_t i = 0; i < npf; i++)
		table_put(&t, pf, i);

	r = -ENOMEM;
	for (size_t i = 0; i < npf; i++) {
		if (pf[i].family == AF_INET)
			c->n_v4++;
		else
			c->n_v6++;
	}
	c->v4 = calloc(c->n_v4 ? c->n_v4 : 1, sizeof(*c->v4));
	c->v6 = calloc(c->n_v6 ? c->n_v6 : 1, sizeof(*c->v6));
	if (!c->v4 || !c->v6)
		goto out;
	c->n_v4 = c->n_v6 = 0;
	for (size_t i = 0; i < npf; i++) {
		const struct prefix *x = &pf[i];
		int v6 = x->family == AF_INET6;
		size_t alen = addr_len(x->family);
		struct mas_prefix_val *val;
		uint8_t a[16];

		if (v6) {
			struct mas_lpm6_entry *e = &c->v6[c->n_v6++];

			e->key.prefixlen = x->plen;
			memcpy(e->key.addr, x->addr, 16);
			val = &e->val;
		} else {
			struct mas_lpm4_entry *e = &c->v4[c->n_v4++];

			e->key.prefixlen = x->plen;
			memcpy(e->key.addr, x->addr, 4);
			val = &e->val;
		}
		/* own rules, then those of each covering prefix from the longest down */
		for (int len = x->plen; len >= 0; len--) {
			const struct prefix *cov;
			long k;

			if (!lens[v6][len])
				continue;
			memcpy(a, x->addr, alen);
			mask_addr(a, alen, (unsigned)len);
			k = table_get(&t, pf, x->family, a, (unsigned)len);
			if (k < 0)
				continue;
			cov = &pf[k];
			for (size_t j = 0; j < cov->n; j++) {
				if (val->n_rules == MAS_MAX_RULES) {
					char buf[64];
					const struct mas_destination *dst =
						&p->destinations[pairs[cov->first + j].dest];

					format_prefix(buf, sizeof(buf), x);
					snprintf(
						err->msg, sizeof(err->msg),
						"%s:%u:%u: destinations.%s: found more than %d rules "
						"(ports of all destinations) covering %s, expected at "
						"most %d",
						p->file ? p->file : "policy", dst->pos.line,
						dst->pos.col, dst->name, MAS_MAX_RULES, buf,
						MAS_MAX_RULES);
					err->line = dst->pos.line;
					err->col = dst->pos.col;
					r = -EINVAL;
					goto out;
				}
				val->rules[val->n_rules++] = pairs[cov->first + j].rule;
			}
		}
	}

	c->agents = calloc(p->n_agents ? p->n_agents : 1, sizeof(*c->agents));
	if (!c->agents)
		goto out;
	c->n_agents = p->n_agents;
	for (size_t a = 0; a < p->n_agents; a++) {
		struct mas_agent_val *v = &c->agents[a];

		v->agent_id = compile_agent_id(p->agents[a].name);
		v->index = (uint16_t)a;
		v->mode = policy_agent_mode(p, a) == MAS_POLICY_AUDIT ? MAS_MODE_AUDIT :
									MAS_MODE_ENFORCE;
		for (size_t d = 0; d < p->n_destinations && d < MAS_MAX_DESTS; d++)
			if (policy_agent_granted(p, a, d))
				v->grants[d / 64] |= 1ull << (d % 64);
		for (size_t b = 0; b < a; b++) {
			if (c->agents[b].agent_id != v->agent_id)
				continue;
			snprintf(err->msg, sizeof(err->msg),
				 "%s:%u:%u: agents.%s: found an id equal to agent %s's, expected "
				 "names whose hashes differ (rename one)",
				 p->file ? p->file : "policy", p->agents[a].pos.line,
				 p->agents[a].pos.col, p->agents[a].name, p->agents[b].name);
			r = -EINVAL;
			goto out;
		}
	}
	if (p->n_rate_limits > MAS_MAX_CLASSES) {
		snprintf(err->msg, sizeof(err->msg),
			 "%s: rate_limits: found %zu classes, expected at most %d",
			 p->file ? p->file : "policy", p->n_rate_limits, MAS_MAX_CLASSES);
		r = -EINVAL;
		goto out;
	}
	/* caps are counted by destination key: two names with one key would share a count */
	for (size_t i = 0; i < p->n_destinations; i++) {
		uint32_t ki = compile_dest_key(p->destinations[i].name);

		for (size_t j = 0; j < i; j++) {
			if (compile_dest_key(p->destinations[j].name) != ki)
				continue;
			snprintf(
				err->msg, sizeof(err->msg),
				"%s:%u:%u: destinations.%s: found a key equal to destination %s's, "
				"expected names whose hashes differ (rename one)",
				p->file ? p->file : "policy", p->destinations[i].pos.line,
				p->destinations[i].pos.col, p->destinations[i].name,
				p->destinations[j].name);
			r = -EINVAL;
			goto out;
		}
	}
	c->classes = calloc(p->n_rate_limits ? p->n_rate_limits : 1, sizeof(*c->classes));
	if (!c->classes) {
		r = -ENOMEM;
		goto out;
	}
	c->n_classes = p->n_rate_limits;
	for (size_t i = 0; i < p->n_rate_limits; i++) {
		const struct mas_rate_class *rc = &p->rate_limits[i];
		struct mas_class *k = &c->classes[i];

		k->key = compile_class_key(rc->name);
		k->per_minute = rc->requests_per_minute;
		k->burst = rc->burst_size;
		k->bytes_per_second = rc->bytes_per_second;
		k->burst_bytes = rc->burst_bytes < MAS_BURST_BYTES_MAX ? rc->burst_bytes :
									 MAS_BURST_BYTES_MAX;
		for (size_t b = 0; b < i; b++) {
			if (c->classes[b].key != k->key)
				continue;
			snprintf(err->msg, sizeof(err->msg),
				 "%s:%u:%u: rate_limits.%s: found a key equal to class %s's, "
				 "expected names whose hashes differ (rename one)",
				 p->file ? p->file : "policy", rc->pos.line, rc->pos.col, rc->name,
				 p->rate_limits[b].name);
			r = -EINVAL;
			goto out;
		}
	}
	c->meta.generation = generation;
	c->meta.root_level = root_level;
	c->meta.mode = p->mode == MAS_POLICY_AUDIT ? MAS_MODE_AUDIT : MAS_MODE_ENFORCE;
	c->meta.flags = p->audit.allowed_events_all ? MAS_META_ALLOWED_EVENTS_ALL : 0;
	*ret = c;
	c = NULL;
	r = 0;
out:
	free(t.slots);
	free(pf);
	free(pairs);
	compile_free(c);
	return r;
}

void compile_free(struct mas_compiled *c)
{
	if (!c)
		return;
	free(c->v4);
	free(c->v6);
	free(c->agents);
	free(c->classes);
	free(c);
}
