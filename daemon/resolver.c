/* SPDX-License-Identifier: GPL-2.0-only */
/* The resolver: asks a DNS server (libresolv, so TTLs are known) for each host name of the
 * policy, and keeps per name the addresses allowed and when each one stops being allowed. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "fileio.h"
#include "resolver.h"

/* An address a name led to; expires_ms is 0 while it is in the answers, else the end of its
 * grace period. */
struct raddr {
	struct mas_cidr c;
	uint64_t expires_ms;
};

struct rhost {
	char *name;
	struct raddr *a;
	size_t n;
	uint64_t next_ms; /* next query */
	uint32_t retry_ms; /* grows while DNS fails */
	bool resolved; /* had a good answer once (or its state was loaded) */
	bool failing;
};

struct mas_resolver {
	struct rhost *h;
	size_t n;
	resolver_query_fn query;
	void *userdata;
};

static size_t alen(int family)
{
	return family == AF_INET ? 4 : 16;
}

static bool same_addr(const struct mas_cidr *x, const struct mas_cidr *y)
{
	return x->family == y->family && !memcmp(x->addr, y->addr, alen(x->family));
}

void resolver_format_addr(const struct mas_cidr *c, char *buf, size_t len)
{
	if (!inet_ntop(c->family, c->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

const char *resolver_change_name(enum resolver_change_kind k)
{
	static const char *const names[] = { "added", "dropped", "expired", "failed", "recovered" };

	return k <= RESOLVER_RECOVERED ? names[k] : "unknown";
}

/* ---- the DNS client ---- */

static void name_norm(char *s)
{
	size_t n = strlen(s);

	if (n > 1 && s[n - 1] == '.')
		s[n - 1] = '\0';
}

static bool in_chain(char chain[][NS_MAXDNAME], size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(chain[i], name))
			return true;
	return false;
}

#define CHAIN_MAX 16

/* The addresses of qname in an answer: follow its CNAME chain, take the A or AAAA records of
 * the names on it and nothing else, and the smallest TTL of the records used. */
static int parse_answer(const uint8_t *buf, int len, const char *qname, int family,
			struct resolver_answer *ret)
{
	char chain[CHAIN_MAX][NS_MAXDNAME];
	size_t nchain = 1;
	uint32_t ttl = UINT32_MAX;
	ns_msg msg;
	ns_rr rr;
	int count;
	bool grew = true;

	if (ns_initparse(buf, len, &msg) < 0)
		return -EBADMSG;
	count = ns_msg_count(msg, ns_s_an);
	snprintf(chain[0], sizeof(chain[0]), "%s", qname);
	name_norm(chain[0]);
	while (grew && nchain < CHAIN_MAX) {
		grew = false;
		for (int i = 0; i < count && nchain < CHAIN_MAX; i++) {
			char owner[NS_MAXDNAME], target[NS_MAXDNAME];

			if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
				return -EBADMSG;
			if (ns_rr_type(rr) != ns_t_cname)
				continue;
			snprintf(owner, sizeof(owner), "%s", ns_rr_name(rr));
			name_norm(owner);
			if (!in_chain(chain, nchain, owner))
				continue;
			if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr),
					       target, sizeof(target)) < 0)
				return -EBADMSG;
			name_norm(target);
			if (in_chain(chain, nchain, target))
				continue;
			snprintf(chain[nchain++], NS_MAXDNAME, "%s", target);
			if (ns_rr_ttl(rr) < ttl)
				ttl = ns_rr_ttl(rr);
			grew = true;
		}
	}
	ret->n = 0;
	ret->addrs = calloc((size_t)(count > 0 ? count : 1), sizeof(*ret->addrs));
	if (!ret->addrs)
		return -ENOMEM;
	for (int i = 0; i < count; i++) {
		char owner[NS_MAXDNAME];
		struct mas_cidr *c;
		bool dup = false;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return -EBADMSG;
		if (!(family == AF_INET && ns_rr_type(rr) == ns_t_a && ns_rr_rdlen(rr) == 4) &&
		    !(family == AF_INET6 && ns_rr_type(rr) == ns_t_aaaa && ns_rr_rdlen(rr) == 16))
			continue;
		snprintf(owner, sizeof(owner), "%s", ns_rr_name(rr));
		name_norm(owner);
		if (!in_chain(chain, nchain, owner) || ret->n >= RESOLVER_MAX_ADDRS)
			continue;
		c = &ret->addrs[ret->n];
		memset(c, 0, sizeof(*c));
		c->family = family;
		c->prefixlen = family == AF_INET ? 32 : 128;
		memcpy(c->addr, ns_rr_rdata(rr), alen(family));
		if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)c->addr)) {
			memmove(c->addr, c->addr + 12, 4);
			memset(c->addr + 4, 0, 12);
			c->family = AF_INET;
			c->prefixlen = 32;
		}
		for (size_t j = 0; j < ret->n; j++)
			dup = dup || same_addr(&ret->addrs[j], c);
		if (dup)
			continue;
		ret->n++;
		if (ns_rr_ttl(rr) < ttl)
			ttl = ns_rr_ttl(rr);
	}
	ret->ttl = ret->n ? ttl : 0;
	return 0;
}

#define HOSTS_TTL 60 /* /etc/hosts has no TTL: read it again about every 45 s */

/* The host's resolver looks in /etc/hosts before DNS: so does masd when the policy names no
 * server. Returns 1 when the file names the host (its addresses of family are the answer, even
 * none), 0 when it does not, or a negative errno. */
static int hosts_file_lookup(const char *path, const char *name, int family,
			     struct resolver_answer *ret)
{
	char line[1024], want[NS_MAXDNAME];
	bool named = false;
	FILE *f = fopen(path, "re");

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	snprintf(want, sizeof(want), "%s", name);
	name_norm(want);
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *addr, *tok, *hash = strchr(line, '#');
		struct mas_cidr c = { 0 };
		bool match = false;

		if (hash)
			*hash = '\0';
		addr = strtok_r(line, " \t\r\n", &save);
		if (!addr)
			continue;
		while ((tok = strtok_r(NULL, " \t\r\n", &save)))
			match = match || !strcasecmp(tok, want);
		if (!match)
			continue;
		named = true;
		if (family == AF_INET && inet_pton(AF_INET, addr, c.addr) == 1) {
			c.prefixlen = 32;
		} else if (family == AF_INET6 && inet_pton(AF_INET6, addr, c.addr) == 1) {
			c.prefixlen = 128;
		} else {
			continue;
		}
		c.family = family;
		if (ret->n < RESOLVER_MAX_ADDRS) {
			struct mas_cidr *na = realloc(ret->addrs, (ret->n + 1) * sizeof(*na));

			if (!na) {
				fclose(f);
				return -ENOMEM;
			}
			ret->addrs = na;
			ret->addrs[ret->n++] = c;
		}
	}
	fclose(f);
	ret->ttl = ret->n ? HOSTS_TTL : 0;
	return named ? 1 : 0;
}

int resolver_query_dns(void *userdata, const struct mas_resolver_conf *conf, const char *name,
		       int family, struct resolver_answer *ret)
{
	struct __res_state st;
	uint8_t *buf;
	int len, r;

	memset(ret, 0, sizeof(*ret));
	if (!conf || !conf->has_server) {
		r = hosts_file_lookup("/etc/hosts", name, family, ret);
		if (r != 0) {
			if (r < 0) {
				free(ret->addrs);
				memset(ret, 0, sizeof(*ret));
			}
			return r < 0 ? r : 0;
		}
	}
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) < 0)
		return -EIO;
	if (conf && conf->has_server) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(conf->port) };

		memcpy(&sa.sin_addr, conf->server, 4);
		st.nscount = 1;
		st.nsaddr_list[0] = sa;
	}
	/* masd must not stall on a dead server: one try of one second */
	st.retrans = 1;
	st.retry = 1;
	st.options |= RES_USE_EDNS0;
	st.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	buf = malloc(65536);
	if (!buf) {
		res_nclose(&st);
		return -ENOMEM;
	}
	len = res_nquery(&st, name, ns_c_in, family == AF_INET ? ns_t_a : ns_t_aaaa, buf, 65536);
	if (len < 0) {
		/* no such name, or no such address: an answer, just an empty one */
		if (st.res_h_errno == HOST_NOT_FOUND || st.res_h_errno == NO_DATA)
			r = 0;
		else
			r = st.res_h_errno == TRY_AGAIN ? -ETIMEDOUT : -EIO;
		ret->addrs = NULL;
		ret->n = 0;
	} else {
		r = parse_answer(buf, len, name, family, ret);
	}
	if (r < 0) {
		free(ret->addrs);
		ret->addrs = NULL;
		ret->n = 0;
	}
	free(buf);
	res_nclose(&st);
	return r;
}

int resolver_lookup(const struct mas_resolver_conf *conf, const char *name, struct mas_cidr **ret,
		    size_t *ret_n)
{
	struct resolver_answer a4, a6;
	int r4 = resolver_query_dns(NULL, conf, name, AF_INET, &a4);
	int r6 = resolver_query_dns(NULL, conf, name, AF_INET6, &a6);
	struct mas_cidr *all;

	if (r4 < 0 && r6 < 0)
		return r4;
	all = calloc(a4.n + a6.n + 1, sizeof(*all));
	if (!all) {
		free(a4.addrs);
		free(a6.addrs);
		return -ENOMEM;
	}
	if (a4.n)
		memcpy(all, a4.addrs, a4.n * sizeof(*all));
	if (a6.n)
		memcpy(all + a4.n, a6.addrs, a6.n * sizeof(*all));
	*ret_n = a4.n + a6.n;
	*ret = all;
	free(a4.addrs);
	free(a6.addrs);
	return 0;
}

/* ---- the state ---- */

int resolver_new(struct mas_resolver **ret)
{
	struct mas_resolver *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->query = resolver_query_dns;
	*ret = r;
	return 0;
}

void resolver_set_query(struct mas_resolver *r, resolver_query_fn fn, void *userdata)
{
	r->query = fn ? fn : resolver_query_dns;
	r->userdata = userdata;
}

static void host_free(struct rhost *h)
{
	free(h->name);
	free(h->a);
}

void resolver_free(struct mas_resolver *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		host_free(&r->h[i]);
	free(r->h);
	free(r);
}

static struct rhost *find_host(const struct mas_resolver *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcasecmp(r->h[i].name, name))
			return &r->h[i];
	return NULL;
}

static struct rhost *add_host(struct mas_resolver *r, const char *name)
{
	struct rhost *h = realloc(r->h, (r->n + 1) * sizeof(*h));

	if (!h)
		return NULL;
	r->h = h;
	h = &h[r->n];
	memset(h, 0, sizeof(*h));
	h->name = strdup(name);
	if (!h->name)
		return NULL;
	r->n++;
	return h;
}

static int add_change(struct resolver_changes *ch, enum resolver_change_kind k,
		      const struct rhost *h, const struct mas_cidr *c)
{
	struct resolver_change *v = realloc(ch->v, (ch->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	ch->v = v;
	v = &v[ch->n++];
	memset(v, 0, sizeof(*v));
	v->kind = k;
	snprintf(v->host, sizeof(v->host), "%s", h->name);
	if (c)
		v->addr = *c;
	if (k == RESOLVER_ADDED || k == RESOLVER_EXPIRED)
		ch->set_changed = true;
	return 0;
}

static int add_addr(struct rhost *h, const struct mas_cidr *c)
{
	struct raddr *a = realloc(h->a, (h->n + 1) * sizeof(*a));

	if (!a)
		return -ENOMEM;
	h->a = a;
	a[h->n].c = *c;
	a[h->n].expires_ms = 0;
	h->n++;
	return 0;
}

/* Refresh ahead of the TTL: a quarter of it early, at least a second, so the new set is in
 * the maps before a client that asked at the same time as masd can have it from its cache. */
static uint64_t refresh_ms(uint32_t ttl)
{
	uint64_t t = (uint64_t)ttl * 1000, lead = t / 4;

	if (lead < 1000)
		lead = 1000;
	t = t > lead ? t - lead : 0;
	if (t < 1000)
		t = 1000;
	return t > RESOLVER_MAX_REFRESH_MS ? RESOLVER_MAX_REFRESH_MS : t;
}

/* A family's good answer: what left it starts its grace period, what is new is allowed. */
static int merge(struct rhost *h, int family, const struct resolver_answer *ans, uint64_t now_ms,
		 uint64_t grace_ms, struct resolver_changes *ch)
{
	int r;

	for (size_t i = 0; i < h->n; i++) {
		struct raddr *a = &h->a[i];
		bool present = false;

		if (a->c.family != family)
			continue;
		for (size_t j = 0; j < ans->n && !present; j++)
			present = same_addr(&a->c, &ans->addrs[j]);
		if (present || a->expires_ms)
			continue;
		a->expires_ms = now_ms + grace_ms;
		if ((r = add_change(ch, RESOLVER_DROPPED, h, &a->c)) < 0)
			return r;
		ch->v[ch->n - 1].until_ms = a->expires_ms;
	}
	for (size_t j = 0; j < ans->n; j++) {
		struct raddr *found = NULL;

		for (size_t i = 0; i < h->n && !found; i++)
			if (same_addr(&h->a[i].c, &ans->addrs[j]))
				found = &h->a[i];
		if (found) {
			found->expires_ms = 0; /* back in the answers */
			continue;
		}
		if ((r = add_addr(h, &ans->addrs[j])) < 0)
			return r;
		if ((r = add_change(ch, RESOLVER_ADDED, h, &ans->addrs[j])) < 0)
			return r;
		ch->v[ch->n - 1].ttl = ans->ttl;
	}
	return 0;
}

static size_t allowed_count(const struct rhost *h)
{
	return h->n;
}

static int query_host(struct mas_resolver *r, const struct mas_policy *p, struct rhost *h,
		      uint64_t now_ms, struct resolver_changes *ch)
{
	static const int families[2] = { AF_INET, AF_INET6 };
	struct resolver_answer ans[2];
	int qr[2], rr = 0, err = 0;
	uint32_t ttl = UINT32_MAX;
	bool any_ok = false;

	for (int f = 0; f < 2; f++) {
		/* the server did not answer for A: it will not for AAAA either, do not wait twice */
		qr[f] = f && qr[0] == -ETIMEDOUT ?
				-ETIMEDOUT :
				r->query(r->userdata, &p->resolver, h->name, families[f], &ans[f]);
		if (qr[f] < 0) {
			err = qr[f];
			continue;
		}
		any_ok = true;
		if (ans[f].n && ans[f].ttl < ttl)
			ttl = ans[f].ttl;
	}
	if (!any_ok) {
		if (!h->failing && (rr = add_change(ch, RESOLVER_FAILED, h, NULL)) == 0) {
			ch->v[ch->n - 1].error = err;
			ch->v[ch->n - 1].kept = allowed_count(h);
		}
		h->failing = true;
		h->retry_ms = h->retry_ms ? h->retry_ms * 2 : RESOLVER_RETRY_MS;
		if (h->retry_ms > 30000)
			h->retry_ms = 30000;
		h->next_ms = now_ms + h->retry_ms;
		return rr;
	}
	if (h->failing)
		rr = add_change(ch, RESOLVER_RECOVERED, h, NULL);
	h->failing = false;
	h->retry_ms = 0;
	for (int f = 0; f < 2 && rr == 0; f++)
		if (qr[f] == 0)
			rr = merge(h, families[f], &ans[f], now_ms, p->resolver.grace_s * 1000, ch);
	h->resolved = true;
	h->next_ms = now_ms + (ttl == UINT32_MAX ? RESOLVER_EMPTY_MS : refresh_ms(ttl));
	/* one family failed: ask again soon for it, the other's addresses are in */
	if (qr[0] < 0 || qr[1] < 0)
		if (h->next_ms > now_ms + RESOLVER_RETRY_MS)
			h->next_ms = now_ms + RESOLVER_RETRY_MS;
	for (int f = 0; f < 2; f++)
		if (qr[f] == 0)
			free(ans[f].addrs);
	return rr;
}

static int expire(struct rhost *h, uint64_t now_ms, struct resolver_changes *ch)
{
	size_t o = 0;
	int r = 0;

	for (size_t i = 0; i < h->n; i++) {
		if (h->a[i].expires_ms && h->a[i].expires_ms <= now_ms) {
			if (r == 0)
				r = add_change(ch, RESOLVER_EXPIRED, h, &h->a[i].c);
			continue;
		}
		h->a[o++] = h->a[i];
	}
	h->n = o;
	return r;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int resolver_update(struct mas_resolver *r, const struct mas_policy *p, uint64_t now_ms,
		    struct resolver_changes *ch)
{
	uint64_t start = mono_ms();
	int rr;

	for (size_t d = 0; d < p->n_destinations; d++) {
		for (size_t i = 0; i < p->destinations[d].n_hosts; i++) {
			const char *name = p->destinations[d].hosts[i];
			struct rhost *h = find_host(r, name);

			if (!h) {
				h = add_host(r, name);
				if (!h)
					return -ENOMEM;
			}
			if (h->next_ms > now_ms)
				continue;
			/* the queries block: leave the rest for the next call, which comes at once,
			 * rather than hold up the event loop (and the watchdog) behind a dead server */
			if (mono_ms() - start >= RESOLVER_BUDGET_MS)
				break;
			if ((rr = query_host(r, p, h, now_ms, ch)) < 0)
				return rr;
		}
	}
	for (size_t i = 0; i < r->n; i++)
		if ((rr = expire(&r->h[i], now_ms, ch)) < 0)
			return rr;
	return 0;
}

static bool policy_has_host(const struct mas_policy *p, const char *name)
{
	for (size_t d = 0; d < p->n_destinations; d++)
		for (size_t i = 0; i < p->destinations[d].n_hosts; i++)
			if (!strcasecmp(p->destinations[d].hosts[i], name))
				return true;
	return false;
}

size_t resolver_retain(struct mas_resolver *r, const struct mas_policy *p)
{
	size_t o = 0, gone;

	for (size_t i = 0; i < r->n; i++) {
		if (!policy_has_host(p, r->h[i].name)) {
			host_free(&r->h[i]);
			continue;
		}
		r->h[o++] = r->h[i];
	}
	gone = r->n - o;
	r->n = o;
	return gone;
}

int resolver_addrs(const struct mas_resolver *r, const struct mas_policy *p,
		   struct mas_dest_addrs **ret, size_t *ret_unresolved,
		   const char **ret_first_failed)
{
	struct mas_dest_addrs *out =
		calloc(p->n_destinations ? p->n_destinations : 1, sizeof(*out));
	size_t unresolved = 0;

	if (!out)
		return -ENOMEM;
	*ret_first_failed = NULL;
	for (size_t d = 0; d < p->n_destinations; d++) {
		const struct mas_destination *dst = &p->destinations[d];
		size_t total = 0, k = 0;

		for (size_t i = 0; i < dst->n_hosts; i++) {
			const struct rhost *h = find_host(r, dst->hosts[i]);

			if (!h || !h->n) {
				if (!unresolved++)
					*ret_first_failed = dst->hosts[i];
				continue;
			}
			total += h->n;
		}
		if (!total)
			continue;
		out[d].cidrs = calloc(total, sizeof(*out[d].cidrs));
		if (!out[d].cidrs) {
			resolver_addrs_free(out, p->n_destinations);
			return -ENOMEM;
		}
		for (size_t i = 0; i < dst->n_hosts; i++) {
			const struct rhost *h = find_host(r, dst->hosts[i]);

			for (size_t j = 0; h && j < h->n; j++) {
				bool dup = false;

				for (size_t m = 0; m < k && !dup; m++)
					dup = same_addr(&out[d].cidrs[m], &h->a[j].c);
				if (!dup)
					out[d].cidrs[k++] = h->a[j].c;
			}
		}
		out[d].n_cidrs = k;
	}
	*ret = out;
	*ret_unresolved = unresolved;
	return 0;
}

uint64_t resolver_next_ms(const struct mas_resolver *r)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < r->n; i++) {
		if (r->h[i].next_ms < next)
			next = r->h[i].next_ms;
		for (size_t j = 0; j < r->h[i].n; j++)
			if (r->h[i].a[j].expires_ms && r->h[i].a[j].expires_ms < next)
				next = r->h[i].a[j].expires_ms;
	}
	return next;
}

/* One line per address: "NAME ADDRESS EXPIRES_MS" (0: in the last good answer). */
int resolver_save(const struct mas_resolver *r, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rr;

	if (!f)
		return -ENOMEM;
	fprintf(f, "# masd resolver state v1: name address grace-ends-ms (0: in the answers)\n");
	for (size_t i = 0; i < r->n; i++) {
		for (size_t j = 0; j < r->h[i].n; j++) {
			char a[INET6_ADDRSTRLEN];

			resolver_format_addr(&r->h[i].a[j].c, a, sizeof(a));
			fprintf(f, "%s %s %llu\n", r->h[i].name, a,
				(unsigned long long)r->h[i].a[j].expires_ms);
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	rr = fileio_write_atomic(path, buf, len, 0600, (uid_t)-1, (gid_t)-1);
	free(buf);
	return rr;
}

int resolver_load(struct mas_resolver *r, const char *path, uint64_t now_ms)
{
	char *buf = NULL, *line, *save = NULL;
	int rr = fileio_read_all(path, 64u << 20, &buf, NULL);

	if (rr < 0)
		return rr == -ENOENT ? 0 : rr;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[RESOLVER_HOST_MAX], addr[INET6_ADDRSTRLEN];
		unsigned long long exp;
		struct mas_cidr c = { 0 };
		struct rhost *h;

		if (line[0] == '#' || sscanf(line, "%253s %45s %llu", name, addr, &exp) != 3)
			continue;
		if (inet_pton(AF_INET, addr, c.addr) == 1) {
			c.family = AF_INET;
			c.prefixlen = 32;
		} else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
			c.family = AF_INET6;
			c.prefixlen = 128;
		} else {
			continue;
		}
		if (exp && exp <= now_ms)
			continue;
		h = find_host(r, name);
		if (!h && !(h = add_host(r, name))) {
			rr = -ENOMEM;
			break;
		}
		h->resolved = true;
		h->next_ms = 0; /* due at once; the loaded set stays until an answer replaces it */
		if ((rr = add_addr(h, &c)) < 0)
			break;
		h->a[h->n - 1].expires_ms = exp;
	}
	free(buf);
	return rr;
}

void resolver_changes_free(struct resolver_changes *ch)
{
	free(ch->v);
	memset(ch, 0, sizeof(*ch));
}

void resolver_addrs_free(struct mas_dest_addrs *a, size_t n)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		free(a[i].cidrs);
	free(a);
}
