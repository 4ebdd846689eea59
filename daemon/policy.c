/* SPDX-License-Identifier: GPL-2.0-only */
/* The policy parser and validator: CONTRACT.md's YAML read with libyaml into struct mas_policy,
 * every error reported as "FILE:LINE:COL: KEY: found X, expected Y". No logging, no side
 * effects. */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yaml.h>

#include "fileio.h"
#include "mas_abi.h"
#include "policy.h"

#define MAS_POLICY_MAX_DEPTH 16 /* mappings and sequences inside each other */
#define MAS_POLICY_MAX_NODES (1u << 18) /* values of any kind: bounds the memory a file can cost */
#define MAS_NAME_MAX 63
#define MAS_USER_NAME_MAX 32
#define MAS_UNIT_NAME_MAX 255
#define MAS_CGROUP_PATH_MAX 4095
#define MAS_HOST_NAME_MAX 253
#define MAS_MAX_LIST 1024 /* entries of any other mapping or sequence */
#define MAS_MAX_CIDRS 65536 /* per destination, as many as an LPM trie holds */
#define MAS_RATE_MAX 1000000u
#define MAS_BYTES_MAX (1ull << 40)
#define MAS_RETENTION_MAX 36500u
#define MAS_DURATION_MAX (36500ull * 86400ull)
#define MAS_FOUND_MAX 48 /* characters of a scalar quoted in a message */
#define MAS_PATH_MAX 256

/* A finished section's names, sorted: references are looked up in O(log n), so a 4 MiB file of
 * references costs milliseconds, not seconds. */
struct name_index {
	const char **names; /* sorted */
	size_t *pos; /* pos[i]: the index of names[i] in its section */
	size_t n;
};

enum { IX_DESTS, IX_CLASSES, IX_PERMS, IX_ROLES, IX_AGENTS, IX_N };

struct ctx {
	struct name_index ix[IX_N];
	yaml_document_t *doc;
	const char *file;
	struct mas_error *err;
	struct mas_policy *p;
	char path[MAS_PATH_MAX];
	size_t plen;
};

/* A key a mapping may hold, and what the mapping held under it. */
struct field {
	const char *key;
	yaml_node_t *val;
	yaml_node_t *keynode;
};

static const char *const section_keys[] = { "version",	   "mode",  "destinations", "rate_limits",
					    "permissions", "roles", "agents",	    "control",
					    "audit",	   "keys",  "resolver" };

/* ---- messages ---- */

static void quote(char *buf, size_t size, const char *s, size_t len)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; i < len && o + 8 < size; i++) {
		unsigned char ch = (unsigned char)s[i];

		/* cut long scalars, but never inside a UTF-8 sequence */
		if (i >= MAS_FOUND_MAX && (ch & 0xc0) != 0x80) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n || n->type == YAML_NO_NODE)
		return true;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static void describe(const yaml_node_t *n, char *buf, size_t size)
{
	if (is_null(n))
		snprintf(buf, size, "nothing");
	else if (n->type == YAML_MAPPING_NODE)
		snprintf(buf, size, "a mapping");
	else if (n->type == YAML_SEQUENCE_NODE)
		snprintf(buf, size, "a sequence");
	else
		quote(buf, size, (const char *)n->data.scalar.value, n->data.scalar.length);
}

static void set_error(struct mas_error *err, unsigned line, unsigned col, const char *prefix,
		      const char *found, const char *fmt, va_list ap)
	__attribute__((format(printf, 6, 0)));

static void set_error(struct mas_error *err, unsigned line, unsigned col, const char *prefix,
		      const char *found, const char *fmt, va_list ap)
{
	int n;

	err->line = line;
	err->col = col;
	n = snprintf(err->msg, sizeof(err->msg), "%s: found %s, expected ", prefix, found);
	if (n > 0 && (size_t)n < sizeof(err->msg))
		vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
}

/* The whole-document errors: before the tree exists there is no key path. */
static int doc_fail(struct mas_error *err, const char *file, unsigned line, unsigned col,
		    const char *found, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int doc_fail(struct mas_error *err, const char *file, unsigned line, unsigned col,
		    const char *found, const char *fmt, ...)
{
	char prefix[MAS_ERR_MAX];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s:%u:%u: policy", file, line, col);
	va_start(ap, fmt);
	set_error(err, line, col, prefix, found, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int fail_mark(struct ctx *c, yaml_mark_t m, const char *found, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_mark(struct ctx *c, yaml_mark_t m, const char *found, const char *fmt, ...)
{
	char prefix[MAS_ERR_MAX];
	unsigned line = (unsigned)m.line + 1, col = (unsigned)m.column + 1;
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s:%u:%u: %s", c->file, line, col,
		 c->plen ? c->path : "policy");
	va_start(ap, fmt);
	set_error(c->err, line, col, prefix, found, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* An error about node n: what was found is n itself. */
static int fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	char prefix[MAS_ERR_MAX], found[MAS_FOUND_MAX * 4 + 16];
	unsigned line = (unsigned)n->start_mark.line + 1, col = (unsigned)n->start_mark.column + 1;
	va_list ap;

	describe(n, found, sizeof(found));
	snprintf(prefix, sizeof(prefix), "%s:%u:%u: %s", c->file, line, col,
		 c->plen ? c->path : "policy");
	va_start(ap, fmt);
	set_error(c->err, line, col, prefix, found, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int fail_oom(struct ctx *c)
{
	snprintf(c->err->msg, sizeof(c->err->msg), "%s: out of memory", c->file);
	c->err->line = c->err->col = 0;
	return -ENOMEM;
}

static size_t path_key(struct ctx *c, const char *key)
{
	size_t old = c->plen;
	int n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s", c->plen ? "." : "",
			 key);

	if (n > 0)
		c->plen = c->plen + (size_t)n < sizeof(c->path) ? c->plen + (size_t)n :
								  sizeof(c->path) - 1;
	return old;
}

static size_t path_index(struct ctx *c, size_t i)
{
	size_t old = c->plen;
	int n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%zu]", i);

	if (n > 0)
		c->plen = c->plen + (size_t)n < sizeof(c->path) ? c->plen + (size_t)n :
								  sizeof(c->path) - 1;
	return old;
}

static void path_pop(struct ctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

/* ---- node access ---- */

static yaml_node_t *node_at(struct ctx *c, int idx)
{
	return yaml_document_get_node(c->doc, idx);
}

static size_t map_len(const yaml_node_t *n)
{
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* A scalar that is text: present, and no NUL smuggled in through an escape. */
static bool is_text(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && !is_null(n) &&
	       strlen(scalar(n)) == n->data.scalar.length;
}

static int want_map(struct ctx *c, const yaml_node_t *n, size_t max)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail(c, n, "a mapping");
	if (map_len(n) > max) {
		char found[64];

		snprintf(found, sizeof(found), "%zu entries", map_len(n));
		return fail_mark(c, n->start_mark, found, "at most %zu entries", max);
	}
	return 0;
}

static int want_seq(struct ctx *c, const yaml_node_t *n, size_t min, size_t max, const char *what)
{
	char found[64];

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "a sequence of %s", what);
	if (seq_len(n) < min)
		return fail_mark(c, n->start_mark, "an empty sequence",
				 "a non-empty sequence of %s", what);
	if (seq_len(n) > max) {
		snprintf(found, sizeof(found), "%zu entries", seq_len(n));
		return fail_mark(c, n->start_mark, found, "at most %zu %s", max, what);
	}
	return 0;
}

static bool valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	/* not "." or "..", nor hidden: names may become file names (delivered keys) */
	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* A key naming a new entry of a section. */
static int want_name_key(struct ctx *c, const yaml_node_t *k)
{
	if (!is_text(k) || !valid_name(scalar(k), MAS_NAME_MAX))
		return fail(
			c, k,
			"a name of [A-Za-z0-9_.-] not starting with . or -, at most %d characters",
			MAS_NAME_MAX);
	return 0;
}

static int dup_key(struct ctx *c, const yaml_node_t *k)
{
	char found[MAS_FOUND_MAX * 4 + 32];
	size_t n;

	describe(k, found, sizeof(found));
	n = strlen(found);
	snprintf(found + n, sizeof(found) - n, " a second time");
	return fail_mark(c, k->start_mark, found, "each key once");
}

/* Sort a fixed-key mapping's values into fields[]; unknown and repeated keys are errors. */
static int take_fields(struct ctx *c, const yaml_node_t *map, struct field *f, size_t nf)
{
	yaml_node_pair_t *pair;
	char expected[256];
	size_t i, o = 0;
	int r;

	/* no size limit here: a key beyond the known ones is reported by name below */
	r = want_map(c, map, SIZE_MAX);
	if (r < 0)
		return r;
	for (i = 0; i < nf; i++) {
		f[i].val = NULL;
		f[i].keynode = NULL;
	}
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = node_at(c, pair->key);

		for (i = 0; i < nf; i++)
			if (is_text(k) && !strcmp(scalar(k), f[i].key))
				break;
		if (i < nf && f[i].keynode)
			return dup_key(c, k);
		if (i == nf) {
			char found[MAS_FOUND_MAX * 4 + 32], q[MAS_FOUND_MAX * 4 + 16];

			for (i = 0; i < nf && o < sizeof(expected); i++)
				o += (size_t)snprintf(expected + o, sizeof(expected) - o, "%s%s",
						      i ? ", " : "", f[i].key);
			describe(k, q, sizeof(q));
			if (k->type == YAML_SCALAR_NODE && !is_null(k))
				snprintf(found, sizeof(found), "unknown key %s", q);
			else
				snprintf(found, sizeof(found), "%s as a key", q);
			return fail_mark(c, k->start_mark, found, "one of %s", expected);
		}
		f[i].keynode = k;
		f[i].val = node_at(c, pair->value);
	}
	return 0;
}

/* ---- scalars ---- */

/* A decimal integer without sign or leading zeros; false on overflow or anything else. */
static bool parse_u64(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return true;
}

static int get_uint(struct ctx *c, const yaml_node_t *n, uint64_t lo, uint64_t hi, uint64_t *ret)
{
	uint64_t v;

	if (!is_text(n) || !parse_u64(scalar(n), n->data.scalar.length, &v) || v < lo || v > hi)
		return fail(c, n, "an integer from %llu to %llu", (unsigned long long)lo,
			    (unsigned long long)hi);
	*ret = v;
	return 0;
}

static int get_u32(struct ctx *c, const yaml_node_t *n, uint32_t lo, uint32_t hi, uint32_t *ret)
{
	uint64_t v;
	int r = get_uint(c, n, lo, hi, &v);

	if (r == 0)
		*ret = (uint32_t)v;
	return r;
}

static int get_bool(struct ctx *c, const yaml_node_t *n, bool *ret)
{
	if (is_text(n) && !strcmp(scalar(n), "true"))
		*ret = true;
	else if (is_text(n) && !strcmp(scalar(n), "false"))
		*ret = false;
	else
		return fail(c, n, "true or false");
	return 0;
}

static int get_mode(struct ctx *c, const yaml_node_t *n, enum mas_policy_mode *ret)
{
	if (is_text(n) && !strcmp(scalar(n), "enforce"))
		*ret = MAS_POLICY_ENFORCE;
	else if (is_text(n) && !strcmp(scalar(n), "audit"))
		*ret = MAS_POLICY_AUDIT;
	else
		return fail(c, n, "enforce or audit");
	return 0;
}

/* "30d", "12h", "90m", "45s", or several of them: "1d12h". */
static bool parse_duration(const char *s, uint64_t *ret)
{
	uint64_t total = 0;

	if (!*s)
		return false;
	while (*s) {
		uint64_t v = 0, unit;
		const char *d = s;

		while (*s >= '0' && *s <= '9') {
			if (v > MAS_DURATION_MAX)
				return false;
			v = v * 10 + (uint64_t)(*s - '0');
			s++;
		}
		if (s == d)
			return false;
		switch (*s) {
		case 'd':
			unit = 86400;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'm':
			unit = 60;
			break;
		case 's':
			unit = 1;
			break;
		default:
			return false;
		}
		s++;
		if (v > MAS_DURATION_MAX / unit)
			return false;
		total += v * unit;
		if (total > MAS_DURATION_MAX)
			return false;
	}
	*ret = total;
	return total >= 1;
}

bool policy_parse_duration(const char *s, uint64_t *ret)
{
	return s && parse_duration(s, ret);
}

static int get_duration(struct ctx *c, const yaml_node_t *n, uint64_t *ret)
{
	if (!is_text(n) || !parse_duration(scalar(n), ret))
		return fail(c, n, "a duration such as 30d, 12h, 90m or 45s, at most 36500d");
	return 0;
}

static int dup_str(struct ctx *c, const yaml_node_t *n, char **ret)
{
	*ret = strdup(scalar(n));
	return *ret ? 0 : fail_oom(c);
}

/* ---- name lookups ---- */

/* Every named entry of the policy starts with its name: one lookup serves them all. */
_Static_assert(offsetof(struct mas_destination, name) == 0, "name first");
_Static_assert(offsetof(struct mas_rate_class, name) == 0, "name first");
_Static_assert(offsetof(struct mas_permission, name) == 0, "name first");
_Static_assert(offsetof(struct mas_role, name) == 0, "name first");
_Static_assert(offsetof(struct mas_agent, name) == 0, "name first");
_Static_assert(offsetof(struct mas_key_conf, name) == 0, "name first");

static int find_name(const void *arr, size_t n, size_t size, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *const *entry = (char *const *)((const char *)arr + i * size);

		if (!strcmp(*entry, name))
			return (int)i;
	}
	return -1;
}

#define FIND_BY_NAME(arr, n, name) find_name((arr), (n), sizeof(*(arr)), (name))

int policy_find_destination(const struct mas_policy *p, const char *name)
{
	return FIND_BY_NAME(p->destinations, p->n_destinations, name);
}

int policy_find_agent(const struct mas_policy *p, const char *name)
{
	return FIND_BY_NAME(p->agents, p->n_agents, name);
}

int policy_find_key(const struct mas_policy *p, const char *name)
{
	return FIND_BY_NAME(p->keys, p->n_keys, name);
}

static int find_class(const struct mas_policy *p, const char *name)
{
	return FIND_BY_NAME(p->rate_limits, p->n_rate_limits, name);
}

static int find_permission(const struct mas_policy *p, const char *name)
{
	return FIND_BY_NAME(p->permissions, p->n_permissions, name);
}

static int find_role(const struct mas_policy *p, const char *name)
{
	return FIND_BY_NAME(p->roles, p->n_roles, name);
}

static int name_order(const void *a, const void *b, void *arg)
{
	const char **names = arg;

	return strcmp(names[*(const size_t *)a], names[*(const size_t *)b]);
}

/* Index the n entries of a finished section (each starts with its name). */
static int index_build(struct ctx *c, int which, const void *arr, size_t n, size_t size)
{
	struct name_index *ix = &c->ix[which];
	const char **unsorted;
	size_t i;

	unsorted = calloc(n + 1, sizeof(*unsorted));
	ix->names = calloc(n + 1, sizeof(*ix->names));
	ix->pos = calloc(n + 1, sizeof(*ix->pos));
	if (!unsorted || !ix->names || !ix->pos) {
		free(unsorted);
		return fail_oom(c);
	}
	for (i = 0; i < n; i++) {
		unsorted[i] = *(char *const *)((const char *)arr + i * size);
		ix->pos[i] = i;
	}
	qsort_r(ix->pos, n, sizeof(*ix->pos), name_order, unsorted);
	for (i = 0; i < n; i++)
		ix->names[i] = unsorted[ix->pos[i]];
	ix->n = n;
	free(unsorted);
	return 0;
}

/* The section index of name in a finished section, -1 when absent. */
static int index_find(const struct ctx *c, int which, const char *name)
{
	const struct name_index *ix = &c->ix[which];
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(name, ix->names[mid]);

		if (cmp == 0)
			return (int)ix->pos[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static void index_free(struct ctx *c)
{
	size_t i;

	for (i = 0; i < IX_N; i++) {
		free(c->ix[i].names);
		free(c->ix[i].pos);
	}
}

/* A sequence of names of a finished section resolved to indexes; each name once. */
static int get_refs(struct ctx *c, const yaml_node_t *seq, const char *plural, const char *what,
		    int which, size_t **ret, size_t *ret_n)
{
	yaml_node_item_t *it;
	bool *seen;
	size_t n = 0;
	int r;

	r = want_seq(c, seq, 0, MAS_MAX_LIST, plural);
	if (r < 0)
		return r;
	*ret = calloc(seq_len(seq) + 1, sizeof(**ret));
	if (!*ret)
		return fail_oom(c);
	seen = calloc(c->ix[which].n + 1, sizeof(*seen));
	if (!seen)
		return fail_oom(c);
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++, n++) {
		yaml_node_t *e = node_at(c, *it);
		size_t old = path_index(c, n);
		int idx = is_text(e) ? index_find(c, which, scalar(e)) : -1;

		if (idx < 0 || seen[idx]) {
			free(seen);
			return idx < 0 ? fail(c, e, "%s", what) : fail(c, e, "each name once");
		}
		seen[idx] = true;
		(*ret)[n] = (size_t)idx;
		*ret_n = n + 1;
		path_pop(c, old);
	}
	free(seen);
	return 0;
}

/* ---- destinations ---- */

static bool valid_host(const char *s)
{
	size_t n = strlen(s), label = 0, i;
	unsigned char buf[16];

	if (n == 0 || n > MAS_HOST_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
		if (label == 0 && ch == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return s[n - 1] != '-';
}

static bool parse_prefixlen(const char *s, unsigned max, unsigned *ret)
{
	uint64_t v;

	if (!parse_u64(s, strlen(s), &v) || v > max)
		return false;
	*ret = (unsigned)v;
	return true;
}

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int get_cidr(struct ctx *c, const yaml_node_t *n, struct mas_cidr *ret)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, canon[INET6_ADDRSTRLEN + 8];
	struct mas_cidr cidr = { 0 };
	unsigned plen, i;
	bool has_len;

	if (!is_text(n) || n->data.scalar.length >= sizeof(buf))
		return fail(c, n, "an address or prefix such as 10.0.5.0/24 or fd00:5::/64");
	memcpy(buf, scalar(n), n->data.scalar.length + 1);
	slash = strchr(buf, '/');
	has_len = slash != NULL;
	if (slash)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, cidr.addr) == 1) {
		cidr.family = AF_INET;
		plen = 32;
		if (has_len && !parse_prefixlen(slash, 32, &plen))
			return fail(c, n, "an IPv4 prefix length from 0 to 32");
	} else if (inet_pton(AF_INET6, buf, cidr.addr) == 1) {
		cidr.family = AF_INET6;
		plen = 128;
		if (has_len && !parse_prefixlen(slash, 128, &plen))
			return fail(c, n, "an IPv6 prefix length from 0 to 128");
	} else {
		return fail(c, n, "an address or prefix such as 10.0.5.0/24 or fd00:5::/64");
	}
	cidr.prefixlen = (uint8_t)plen;

	/* Host bits set means the author meant another network than the one that would match. */
	for (i = 0; i < 16; i++) {
		unsigned bits = plen > i * 8 ? plen - i * 8 : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

		if (cidr.addr[i] & ~mask) {
			struct mas_cidr net = cidr;
			size_t j;

			for (j = i; j < 16; j++) {
				unsigned b = plen > j * 8 ? plen - j * 8 : 0;

				net.addr[j] &= b >= 8 ? 0xff : (uint8_t)(0xff << (8 - b));
			}
			inet_ntop(cidr.family, net.addr, canon, sizeof(canon));
			return fail(c, n, "a network address such as %s/%u", canon, plen);
		}
	}

	/* The kernel sees a v4-mapped peer as IPv4: store such a prefix where it will match. */
	if (cidr.family == AF_INET6 && plen >= 96 && !memcmp(cidr.addr, v4mapped, 12)) {
		memmove(cidr.addr, cidr.addr + 12, 4);
		memset(cidr.addr + 4, 0, 12);
		cidr.family = AF_INET;
		cidr.prefixlen = (uint8_t)(plen - 96);
	}
	*ret = cidr;
	return 0;
}

static int get_port(struct ctx *c, const yaml_node_t *n, struct mas_port_range *ret)
{
	const char *s, *dash;
	uint64_t lo, hi;

	if (!is_text(n))
		goto bad;
	s = scalar(n);
	dash = strchr(s, '-');
	if (dash) {
		if (!parse_u64(s, (size_t)(dash - s), &lo) ||
		    !parse_u64(dash + 1, strlen(dash + 1), &hi))
			goto bad;
	} else {
		if (!parse_u64(s, strlen(s), &lo))
			goto bad;
		hi = lo;
	}
	if (lo < 1 || hi > 65535 || lo > hi)
		goto bad;
	ret->lo = (uint16_t)lo;
	ret->hi = (uint16_t)hi;
	return 0;
bad:
	return fail(c, n, "a port from 1 to 65535 or a range \"LO-HI\" with LO <= HI");
}

static int parse_destination(struct ctx *c, struct mas_destination *d, const yaml_node_t *map)
{
	enum { D_HOSTS, D_CIDRS, D_PORTS, D_PROTOCOLS, D_CLASS, D_PROTECTED, D_MAX_CONN, D_N };
	struct field f[D_N] = {
		[D_HOSTS] = { .key = "hosts" },
		[D_CIDRS] = { .key = "cidrs" },
		[D_PORTS] = { .key = "ports" },
		[D_PROTOCOLS] = { .key = "protocols" },
		[D_CLASS] = { .key = "class" },
		[D_PROTECTED] = { .key = "protected" },
		[D_MAX_CONN] = { .key = "max_connections" },
	};
	yaml_node_item_t *it;
	size_t i, old;
	int r;

	r = take_fields(c, map, f, D_N);
	if (r < 0)
		return r;
	d->protocols = MAS_PROTO_TCP;
	d->class_idx = -1;

	if (f[D_HOSTS].val) {
		old = path_key(c, "hosts");
		r = want_seq(c, f[D_HOSTS].val, 1, MAS_MAX_LIST, "host names");
		if (r < 0)
			return r;
		d->hosts = calloc(seq_len(f[D_HOSTS].val), sizeof(*d->hosts));
		if (!d->hosts)
			return fail_oom(c);
		i = 0;
		for (it = f[D_HOSTS].val->data.sequence.items.start;
		     it < f[D_HOSTS].val->data.sequence.items.top; it++, i++) {
			yaml_node_t *e = node_at(c, *it);
			size_t o = path_index(c, i);

			if (!is_text(e) || !valid_host(scalar(e)))
				return fail(c, e, "a host name (addresses belong in cidrs)");
			r = dup_str(c, e, &d->hosts[i]);
			if (r < 0)
				return r;
			d->n_hosts = i + 1;
			path_pop(c, o);
		}
		path_pop(c, old);
	}
	if (f[D_CIDRS].val) {
		old = path_key(c, "cidrs");
		r = want_seq(c, f[D_CIDRS].val, 1, MAS_MAX_CIDRS, "addresses or prefixes");
		if (r < 0)
			return r;
		d->cidrs = calloc(seq_len(f[D_CIDRS].val), sizeof(*d->cidrs));
		if (!d->cidrs)
			return fail_oom(c);
		i = 0;
		for (it = f[D_CIDRS].val->data.sequence.items.start;
		     it < f[D_CIDRS].val->data.sequence.items.top; it++, i++) {
			size_t o = path_index(c, i);

			r = get_cidr(c, node_at(c, *it), &d->cidrs[i]);
			if (r < 0)
				return r;
			d->n_cidrs = i + 1;
			path_pop(c, o);
		}
		path_pop(c, old);
	}
	if (!f[D_HOSTS].val && !f[D_CIDRS].val)
		return fail_mark(c, map->start_mark, "neither hosts nor cidrs",
				 "hosts, cidrs or both");
	if (f[D_PORTS].val) {
		old = path_key(c, "ports");
		r = want_seq(c, f[D_PORTS].val, 1, MAS_MAX_RULES, "ports");
		if (r < 0)
			return r;
		d->ports = calloc(seq_len(f[D_PORTS].val), sizeof(*d->ports));
		if (!d->ports)
			return fail_oom(c);
		i = 0;
		for (it = f[D_PORTS].val->data.sequence.items.start;
		     it < f[D_PORTS].val->data.sequence.items.top; it++, i++) {
			size_t o = path_index(c, i);

			r = get_port(c, node_at(c, *it), &d->ports[i]);
			if (r < 0)
				return r;
			d->n_ports = i + 1;
			path_pop(c, o);
		}
		path_pop(c, old);
	}
	if (f[D_PROTOCOLS].val) {
		old = path_key(c, "protocols");
		r = want_seq(c, f[D_PROTOCOLS].val, 1, MAS_MAX_LIST, "protocols");
		if (r < 0)
			return r;
		d->protocols = 0;
		i = 0;
		for (it = f[D_PROTOCOLS].val->data.sequence.items.start;
		     it < f[D_PROTOCOLS].val->data.sequence.items.top; it++, i++) {
			yaml_node_t *e = node_at(c, *it);
			size_t o = path_index(c, i);

			if (is_text(e) && !strcmp(scalar(e), "tcp"))
				d->protocols |= MAS_PROTO_TCP;
			else if (is_text(e) && !strcmp(scalar(e), "udp"))
				d->protocols |= MAS_PROTO_UDP;
			else
				return fail(c, e, "tcp or udp");
			path_pop(c, o);
		}
		path_pop(c, old);
	}
	if (f[D_CLASS].val) {
		old = path_key(c, "class");
		d->class_idx = is_text(f[D_CLASS].val) ?
				       index_find(c, IX_CLASSES, scalar(f[D_CLASS].val)) :
				       -1;
		if (d->class_idx < 0)
			return fail(c, f[D_CLASS].val, "a class named in rate_limits");
		path_pop(c, old);
	}
	if (f[D_PROTECTED].val) {
		old = path_key(c, "protected");
		r = get_bool(c, f[D_PROTECTED].val, &d->protected_);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[D_MAX_CONN].val) {
		old = path_key(c, "max_connections");
		r = get_u32(c, f[D_MAX_CONN].val, 1, 65535, &d->max_connections);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	return 0;
}

/* ---- the name-keyed sections ---- */

/* Each named section: a mapping of name -> entry, parsed into an array of struct with a name. */
#define FOR_EACH_PAIR(pair, map)                                                               \
	for ((pair) = (map)->data.mapping.pairs.start; (pair) < (map)->data.mapping.pairs.top; \
	     (pair)++)

static int parse_destinations(struct ctx *c, const yaml_node_t *map)
{
	struct mas_policy *p = c->p;
	yaml_node_pair_t *pair;
	int r;

	r = want_map(c, map, MAS_MAX_DESTS);
	if (r < 0)
		return r;
	p->destinations = calloc(map_len(map) + 1, sizeof(*p->destinations));
	if (!p->destinations)
		return fail_oom(c);
	FOR_EACH_PAIR(pair, map)
	{
		yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
		struct mas_destination *d = &p->destinations[p->n_destinations];
		size_t old;

		r = want_name_key(c, k);
		if (r < 0)
			return r;
		if (policy_find_destination(p, scalar(k)) >= 0)
			return dup_key(c, k);
		r = dup_str(c, k, &d->name);
		if (r < 0)
			return r;
		d->pos.line = (unsigned)k->start_mark.line + 1;
		d->pos.col = (unsigned)k->start_mark.column + 1;
		p->n_destinations++;
		old = path_key(c, d->name);
		r = parse_destination(c, d, v);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	return index_build(c, IX_DESTS, p->destinations, p->n_destinations,
			   sizeof(*p->destinations));
}

static int parse_rate_limits(struct ctx *c, const yaml_node_t *map)
{
	struct mas_policy *p = c->p;
	yaml_node_pair_t *pair;
	int r;

	r = want_map(c, map, MAS_MAX_LIST);
	if (r < 0)
		return r;
	p->rate_limits = calloc(map_len(map) + 1, sizeof(*p->rate_limits));
	if (!p->rate_limits)
		return fail_oom(c);
	FOR_EACH_PAIR(pair, map)
	{
		enum { R_RPM, R_BURST, R_BPS, R_BURST_BYTES, R_N };
		struct field f[R_N] = {
			[R_RPM] = { .key = "requests_per_minute" },
			[R_BURST] = { .key = "burst_size" },
			[R_BPS] = { .key = "bytes_per_second" },
			[R_BURST_BYTES] = { .key = "burst_bytes" },
		};
		yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
		struct mas_rate_class *rc = &p->rate_limits[p->n_rate_limits];
		size_t old, o;

		r = want_name_key(c, k);
		if (r < 0)
			return r;
		if (find_class(p, scalar(k)) >= 0)
			return dup_key(c, k);
		r = dup_str(c, k, &rc->name);
		if (r < 0)
			return r;
		rc->pos.line = (unsigned)k->start_mark.line + 1;
		rc->pos.col = (unsigned)k->start_mark.column + 1;
		p->n_rate_limits++;
		old = path_key(c, rc->name);
		r = take_fields(c, v, f, R_N);
		if (r < 0)
			return r;
		if (!f[R_RPM].val) {
			path_key(c, "requests_per_minute");
			return fail_mark(c, v->start_mark, "nothing", "an integer from 1 to %u",
					 MAS_RATE_MAX);
		}
		if (!f[R_BURST].val) {
			path_key(c, "burst_size");
			return fail_mark(c, v->start_mark, "nothing", "an integer from 1 to %u",
					 MAS_RATE_MAX);
		}
		o = path_key(c, "requests_per_minute");
		r = get_u32(c, f[R_RPM].val, 1, MAS_RATE_MAX, &rc->requests_per_minute);
		if (r < 0)
			return r;
		path_pop(c, o);
		o = path_key(c, "burst_size");
		r = get_u32(c, f[R_BURST].val, 1, MAS_RATE_MAX, &rc->burst_size);
		if (r < 0)
			return r;
		path_pop(c, o);
		if (f[R_BPS].val) {
			o = path_key(c, "bytes_per_second");
			r = get_uint(c, f[R_BPS].val, 1, MAS_BYTES_MAX, &rc->bytes_per_second);
			if (r < 0)
				return r;
			path_pop(c, o);
			rc->burst_bytes = rc->bytes_per_second;
		}
		if (f[R_BURST_BYTES].val) {
			o = path_key(c, "burst_bytes");
			if (!f[R_BPS].val)
				return fail(c, f[R_BURST_BYTES].val,
					    "bytes_per_second beside burst_bytes");
			r = get_uint(c, f[R_BURST_BYTES].val, 1, MAS_BYTES_MAX, &rc->burst_bytes);
			if (r < 0)
				return r;
			path_pop(c, o);
		}
		path_pop(c, old);
	}
	return index_build(c, IX_CLASSES, p->rate_limits, p->n_rate_limits,
			   sizeof(*p->rate_limits));
}

static int parse_permissions(struct ctx *c, const yaml_node_t *map)
{
	struct mas_policy *p = c->p;
	yaml_node_pair_t *pair;
	int r;

	r = want_map(c, map, MAS_MAX_LIST);
	if (r < 0)
		return r;
	p->permissions = calloc(map_len(map) + 1, sizeof(*p->permissions));
	if (!p->permissions)
		return fail_oom(c);
	FOR_EACH_PAIR(pair, map)
	{
		yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
		struct mas_permission *pm = &p->permissions[p->n_permissions];
		size_t old;

		r = want_name_key(c, k);
		if (r < 0)
			return r;
		if (!strcmp(scalar(k), "all"))
			return fail(c, k, "a name other than \"all\", which roles reserve");
		if (find_permission(p, scalar(k)) >= 0)
			return dup_key(c, k);
		r = dup_str(c, k, &pm->name);
		if (r < 0)
			return r;
		pm->pos.line = (unsigned)k->start_mark.line + 1;
		pm->pos.col = (unsigned)k->start_mark.column + 1;
		p->n_permissions++;
		old = path_key(c, pm->name);
		r = get_refs(c, v, "destination names", "a destination named in destinations",
			     IX_DESTS, &pm->dests, &pm->n_dests);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	return index_build(c, IX_PERMS, p->permissions, p->n_permissions, sizeof(*p->permissions));
}

/* seen: one flag per permission, for the role being read */
static int parse_roles_seen(struct ctx *c, const yaml_node_t *map, bool *seen)
{
	struct mas_policy *p = c->p;
	yaml_node_pair_t *pair;
	int r;

	r = want_map(c, map, MAS_MAX_LIST);
	if (r < 0)
		return r;
	p->roles = calloc(map_len(map) + 1, sizeof(*p->roles));
	if (!p->roles)
		return fail_oom(c);
	FOR_EACH_PAIR(pair, map)
	{
		const char *what = "\"all\" or a permission named in permissions";
		yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
		struct mas_role *ro = &p->roles[p->n_roles];
		yaml_node_item_t *it;
		size_t old, i = 0;

		r = want_name_key(c, k);
		if (r < 0)
			return r;
		if (find_role(p, scalar(k)) >= 0)
			return dup_key(c, k);
		r = dup_str(c, k, &ro->name);
		if (r < 0)
			return r;
		ro->pos.line = (unsigned)k->start_mark.line + 1;
		ro->pos.col = (unsigned)k->start_mark.column + 1;
		p->n_roles++;
		old = path_key(c, ro->name);
		r = want_seq(c, v, 0, MAS_MAX_LIST, "permissions");
		if (r < 0)
			return r;
		ro->perms = calloc(seq_len(v) + 1, sizeof(*ro->perms));
		if (!ro->perms)
			return fail_oom(c);
		memset(seen, 0, (p->n_permissions + 1) * sizeof(*seen));
		for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
		     it++, i++) {
			yaml_node_t *e = node_at(c, *it);
			size_t o = path_index(c, i);
			int idx;

			if (is_text(e) && !strcmp(scalar(e), "all")) {
				if (ro->all)
					return fail(c, e, "each name once");
				ro->all = true;
				path_pop(c, o);
				continue;
			}
			idx = is_text(e) ? index_find(c, IX_PERMS, scalar(e)) : -1;
			if (idx < 0)
				return fail(c, e, "%s", what);
			if (seen[idx])
				return fail(c, e, "each name once");
			seen[idx] = true;
			ro->perms[ro->n_perms++] = (size_t)idx;
			path_pop(c, o);
		}
		path_pop(c, old);
	}
	return index_build(c, IX_ROLES, p->roles, p->n_roles, sizeof(*p->roles));
}

static int parse_roles(struct ctx *c, const yaml_node_t *map)
{
	bool *seen = calloc(c->p->n_permissions + 1, sizeof(*seen));
	int r;

	if (!seen)
		return fail_oom(c);
	r = parse_roles_seen(c, map, seen);
	free(seen);
	return r;
}

/* A systemd unit name an agent can run as: name.service, name@instance.service, .scope, .slice. */
static bool valid_unit(const char *s)
{
	static const char *const suffixes[] = { ".service", ".scope", ".slice" };
	size_t n = strlen(s), i, base = 0;
	const char *at;

	if (n == 0 || n > MAS_UNIT_NAME_MAX)
		return false;
	if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:-_.\\@") != n)
		return false;
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = strlen(suffixes[i]);

		if (n > sl && !strcmp(s + n - sl, suffixes[i])) {
			base = n - sl;
			break;
		}
	}
	if (base == 0 || s[0] == '@' || s[0] == '.')
		return false;
	at = strchr(s, '@');
	if (at) {
		/* a template needs its instance: "mas-agent@.service" names no unit */
		if (strchr(at + 1, '@') || (size_t)(at - s) + 1 >= base)
			return false;
	}
	return true;
}

/* Relative to the cgroup2 mount, never climbing out of it. */
static bool valid_cgroup(const char *s)
{
	size_t n = strlen(s), i;
	const char *comp = s;

	if (n == 0 || n > MAS_CGROUP_PATH_MAX || s[0] == '/')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	for (;;) {
		const char *end = strchrnul(comp, '/');
		size_t len = (size_t)(end - comp);

		if (len == 0 || (len == 1 && comp[0] == '.') ||
		    (len == 2 && comp[0] == '.' && comp[1] == '.'))
			return false;
		if (!*end)
			return true;
		comp = end + 1;
	}
}

static int parse_agent(struct ctx *c, struct mas_agent *a, const yaml_node_t *map)
{
	enum { A_UNIT, A_CGROUP, A_USER, A_ROLE, A_ALLOW, A_MODE, A_N };
	struct field f[A_N] = {
		[A_UNIT] = { .key = "unit" },	[A_CGROUP] = { .key = "cgroup" },
		[A_USER] = { .key = "user" },	[A_ROLE] = { .key = "role" },
		[A_ALLOW] = { .key = "allow" }, [A_MODE] = { .key = "mode" },
	};
	struct mas_policy *p = c->p;
	size_t old, i;
	int r;

	r = take_fields(c, map, f, A_N);
	if (r < 0)
		return r;
	a->mode = MAS_POLICY_INHERIT;
	if (f[A_UNIT].val && f[A_CGROUP].val) {
		old = path_key(c, "cgroup");
		return fail_mark(c, f[A_CGROUP].keynode->start_mark, "both unit and cgroup",
				 "either unit or cgroup");
	}
	if (!f[A_UNIT].val && !f[A_CGROUP].val)
		return fail_mark(c, map->start_mark, "neither unit nor cgroup",
				 "either unit or cgroup");
	if (f[A_UNIT].val) {
		old = path_key(c, "unit");
		if (!is_text(f[A_UNIT].val) || !valid_unit(scalar(f[A_UNIT].val)))
			return fail(c, f[A_UNIT].val,
				    "a systemd unit name ending in .service, .scope or .slice");
		for (i = 0; i + 1 < p->n_agents; i++)
			if (p->agents[i].unit && !strcmp(p->agents[i].unit, scalar(f[A_UNIT].val)))
				return fail(c, f[A_UNIT].val, "a unit no other agent has");
		r = dup_str(c, f[A_UNIT].val, &a->unit);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[A_CGROUP].val) {
		old = path_key(c, "cgroup");
		if (!is_text(f[A_CGROUP].val) || !valid_cgroup(scalar(f[A_CGROUP].val)))
			return fail(c, f[A_CGROUP].val,
				    "a path relative to the cgroup2 mount, "
				    "without empty, . or .. components");
		for (i = 0; i + 1 < p->n_agents; i++)
			if (p->agents[i].cgroup &&
			    !strcmp(p->agents[i].cgroup, scalar(f[A_CGROUP].val)))
				return fail(c, f[A_CGROUP].val, "a cgroup no other agent has");
		r = dup_str(c, f[A_CGROUP].val, &a->cgroup);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[A_USER].val) {
		old = path_key(c, "user");
		if (!is_text(f[A_USER].val) ||
		    !valid_name(scalar(f[A_USER].val), MAS_USER_NAME_MAX))
			return fail(c, f[A_USER].val,
				    "a user name of [A-Za-z0-9_.-] not starting with . or -, "
				    "at most %d characters",
				    MAS_USER_NAME_MAX);
		r = dup_str(c, f[A_USER].val, &a->user);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	old = path_key(c, "role");
	if (!f[A_ROLE].val)
		return fail_mark(c, map->start_mark, "nothing", "a role named in roles");
	r = is_text(f[A_ROLE].val) ? index_find(c, IX_ROLES, scalar(f[A_ROLE].val)) : -1;
	if (r < 0)
		return fail(c, f[A_ROLE].val, "a role named in roles");
	a->role = (size_t)r;
	path_pop(c, old);
	if (f[A_ALLOW].val) {
		old = path_key(c, "allow");
		r = get_refs(c, f[A_ALLOW].val, "destination names",
			     "a destination named in destinations", IX_DESTS, &a->allow,
			     &a->n_allow);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[A_MODE].val) {
		old = path_key(c, "mode");
		r = get_mode(c, f[A_MODE].val, &a->mode);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	return 0;
}

static int parse_agents(struct ctx *c, const yaml_node_t *map)
{
	struct mas_policy *p = c->p;
	yaml_node_pair_t *pair;
	int r;

	r = want_map(c, map, MAS_MAX_LIST);
	if (r < 0)
		return r;
	p->agents = calloc(map_len(map) + 1, sizeof(*p->agents));
	if (!p->agents)
		return fail_oom(c);
	FOR_EACH_PAIR(pair, map)
	{
		yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
		struct mas_agent *a = &p->agents[p->n_agents];
		size_t old;

		r = want_name_key(c, k);
		if (r < 0)
			return r;
		if (policy_find_agent(p, scalar(k)) >= 0)
			return dup_key(c, k);
		r = dup_str(c, k, &a->name);
		if (r < 0)
			return r;
		a->pos.line = (unsigned)k->start_mark.line + 1;
		a->pos.col = (unsigned)k->start_mark.column + 1;
		p->n_agents++;
		old = path_key(c, a->name);
		r = parse_agent(c, a, v);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	return index_build(c, IX_AGENTS, p->agents, p->n_agents, sizeof(*p->agents));
}

/* ---- control ---- */

static int lookup_user(const char *name, uint32_t *ret)
{
	struct passwd pw, *res = NULL;
	size_t size = 16384;
	char *buf;
	int r;

	for (;;) {
		buf = malloc(size);
		if (!buf)
			return -ENOMEM;
		r = getpwnam_r(name, &pw, buf, size, &res);
		if (r != ERANGE || size >= (1u << 20))
			break;
		free(buf);
		size *= 2;
	}
	if (r == 0 && res)
		*ret = (uint32_t)res->pw_uid;
	free(buf);
	return r == 0 && res ? 0 : -ENOENT;
}

static int lookup_group(const char *name, uint32_t *ret)
{
	struct group gr, *res = NULL;
	size_t size = 16384;
	char *buf;
	int r;

	for (;;) {
		buf = malloc(size);
		if (!buf)
			return -ENOMEM;
		r = getgrnam_r(name, &gr, buf, size, &res);
		if (r != ERANGE || size >= (1u << 20))
			break;
		free(buf);
		size *= 2;
	}
	if (r == 0 && res)
		*ret = (uint32_t)res->gr_gid;
	free(buf);
	return r == 0 && res ? 0 : -ENOENT;
}

static int get_principal(struct ctx *c, const yaml_node_t *n, struct mas_principal *pr)
{
	const char *s, *arg;
	uint64_t id;
	int r;

	if (!is_text(n))
		goto bad;
	s = scalar(n);
	if (!strncmp(s, "uid:", 4)) {
		arg = s + 4;
		pr->kind = MAS_PRINCIPAL_UID;
		if (parse_u64(arg, strlen(arg), &id)) {
			if (id >= UINT32_MAX)
				return fail(c, n, "a uid from 0 to 4294967294");
			pr->id = (uint32_t)id;
		} else {
			if (!valid_name(arg, MAS_USER_NAME_MAX))
				goto bad;
			r = lookup_user(arg, &pr->id);
			if (r == -ENOMEM)
				return fail_oom(c);
			if (r < 0)
				return fail(c, n, "a user that exists on this host");
		}
	} else if (!strncmp(s, "gid:", 4)) {
		arg = s + 4;
		pr->kind = MAS_PRINCIPAL_GID;
		if (!parse_u64(arg, strlen(arg), &id))
			goto bad;
		if (id >= UINT32_MAX)
			return fail(c, n, "a gid from 0 to 4294967294");
		pr->id = (uint32_t)id;
	} else if (!strncmp(s, "group:", 6)) {
		arg = s + 6;
		pr->kind = MAS_PRINCIPAL_GID;
		if (!valid_name(arg, MAS_USER_NAME_MAX))
			goto bad;
		r = lookup_group(arg, &pr->id);
		if (r == -ENOMEM)
			return fail_oom(c);
		if (r < 0)
			return fail(c, n, "a group that exists on this host");
	} else {
		goto bad;
	}
	return dup_str(c, n, &pr->text);
bad:
	return fail(c, n, "\"uid:N\", \"uid:NAME\", \"gid:N\" or \"group:NAME\"");
}

static int parse_control(struct ctx *c, const yaml_node_t *map)
{
	struct mas_policy *p = c->p;
	yaml_node_pair_t *pair;
	int r;

	r = want_map(c, map, MAS_MAX_LIST);
	if (r < 0)
		return r;
	p->control = calloc(map_len(map) + 1, sizeof(*p->control));
	if (!p->control)
		return fail_oom(c);
	FOR_EACH_PAIR(pair, map)
	{
		yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
		struct mas_control_grant *g = &p->control[p->n_control];
		yaml_node_item_t *it;
		size_t old, i = 0, j;
		int role;

		r = want_name_key(c, k);
		if (r < 0)
			return r;
		role = index_find(c, IX_ROLES, scalar(k));
		if (role < 0)
			return fail(c, k, "a role named in roles");
		for (j = 0; j < p->n_control; j++)
			if (p->control[j].role == (size_t)role)
				return dup_key(c, k);
		g->role = (size_t)role;
		g->pos.line = (unsigned)k->start_mark.line + 1;
		g->pos.col = (unsigned)k->start_mark.column + 1;
		p->n_control++;
		old = path_key(c, scalar(k));
		r = want_seq(c, v, 0, MAS_MAX_LIST, "principals");
		if (r < 0)
			return r;
		g->principals = calloc(seq_len(v) + 1, sizeof(*g->principals));
		if (!g->principals)
			return fail_oom(c);
		for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
		     it++, i++) {
			size_t o = path_index(c, i);

			r = get_principal(c, node_at(c, *it), &g->principals[i]);
			if (r < 0)
				return r;
			g->n_principals = i + 1;
			path_pop(c, o);
		}
		path_pop(c, old);
	}
	return 0;
}

/* ---- audit ---- */

static int parse_audit(struct ctx *c, const yaml_node_t *map)
{
	static const char *const cats[] = { "ai_requests", "authentication", "data_changes",
					    "agent_actions" };
	enum {
		AU_ENABLED,
		AU_SIGNED,
		AU_RETENTION,
		AU_INCLUDE,
		AU_CP_RECORDS,
		AU_CP_SECONDS,
		AU_FLOW_INTERVAL,
		AU_ALLOWED_EVENTS,
		AU_N
	};
	struct field f[AU_N] = {
		[AU_ENABLED] = { .key = "enabled" },
		[AU_SIGNED] = { .key = "signed_logs" },
		[AU_RETENTION] = { .key = "retention_days" },
		[AU_INCLUDE] = { .key = "include" },
		[AU_CP_RECORDS] = { .key = "checkpoint_records" },
		[AU_CP_SECONDS] = { .key = "checkpoint_seconds" },
		[AU_FLOW_INTERVAL] = { .key = "flow_interval" },
		[AU_ALLOWED_EVENTS] = { .key = "allowed_events" },
	};
	struct mas_audit_conf *a = &c->p->audit;
	yaml_node_item_t *it;
	size_t old, i = 0, j;
	int r;

	r = take_fields(c, map, f, AU_N);
	if (r < 0)
		return r;
	a->present = true;
	if (f[AU_ENABLED].val) {
		old = path_key(c, "enabled");
		r = get_bool(c, f[AU_ENABLED].val, &a->enabled);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[AU_SIGNED].val) {
		old = path_key(c, "signed_logs");
		r = get_bool(c, f[AU_SIGNED].val, &a->signed_logs);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[AU_RETENTION].val) {
		old = path_key(c, "retention_days");
		r = get_u32(c, f[AU_RETENTION].val, 1, MAS_RETENTION_MAX, &a->retention_days);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[AU_INCLUDE].val) {
		old = path_key(c, "include");
		r = want_seq(c, f[AU_INCLUDE].val, 0, MAS_MAX_LIST, "audit categories");
		if (r < 0)
			return r;
		a->include = 0;
		for (it = f[AU_INCLUDE].val->data.sequence.items.start;
		     it < f[AU_INCLUDE].val->data.sequence.items.top; it++, i++) {
			yaml_node_t *e = node_at(c, *it);
			size_t o = path_index(c, i);

			for (j = 0; j < 4; j++)
				if (is_text(e) && !strcmp(scalar(e), cats[j]))
					break;
			if (j == 4)
				return fail(c, e,
					    "ai_requests, authentication, data_changes "
					    "or agent_actions");
			if (a->include & (1u << j))
				return fail(c, e, "each category once");
			a->include |= 1u << j;
			path_pop(c, o);
		}
		path_pop(c, old);
	}
	if (f[AU_CP_RECORDS].val) {
		old = path_key(c, "checkpoint_records");
		r = get_u32(c, f[AU_CP_RECORDS].val, 1, MAS_RATE_MAX, &a->checkpoint_records);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[AU_CP_SECONDS].val) {
		old = path_key(c, "checkpoint_seconds");
		r = get_u32(c, f[AU_CP_SECONDS].val, 1, 3600, &a->checkpoint_seconds);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[AU_FLOW_INTERVAL].val) {
		old = path_key(c, "flow_interval");
		r = get_duration(c, f[AU_FLOW_INTERVAL].val, &a->flow_interval_s);
		if (r < 0)
			return r;
		if (a->flow_interval_s > 86400)
			return fail(c, f[AU_FLOW_INTERVAL].val, "a duration from 1s to 1d");
		path_pop(c, old);
	}
	if (f[AU_ALLOWED_EVENTS].val) {
		yaml_node_t *v = f[AU_ALLOWED_EVENTS].val;

		old = path_key(c, "allowed_events");
		if (is_text(v) && !strcmp(scalar(v), "all"))
			a->allowed_events_all = true;
		else if (is_text(v) && !strcmp(scalar(v), "new_flows"))
			a->allowed_events_all = false;
		else
			return fail(c, v, "all or new_flows");
		path_pop(c, old);
	}
	return 0;
}

/* ---- resolver ---- */

/* "192.0.2.53" or "192.0.2.53:5353". */
static bool parse_server(const char *s, uint8_t addr[4], uint16_t *port)
{
	char buf[32];
	const char *colon = strchr(s, ':');
	uint64_t v = 53;
	size_t n = colon ? (size_t)(colon - s) : strlen(s);

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, addr) != 1)
		return false;
	if (colon && (!parse_u64(colon + 1, strlen(colon + 1), &v) || v < 1 || v > 65535))
		return false;
	*port = (uint16_t)v;
	return true;
}

static int parse_resolver(struct ctx *c, const yaml_node_t *map)
{
	enum { R_SERVER, R_GRACE, R_N };
	struct field f[R_N] = {
		[R_SERVER] = { .key = "server" },
		[R_GRACE] = { .key = "grace" },
	};
	struct mas_resolver_conf *rc = &c->p->resolver;
	size_t old;
	int r;

	r = take_fields(c, map, f, R_N);
	if (r < 0)
		return r;
	if (f[R_SERVER].val) {
		old = path_key(c, "server");
		if (!is_text(f[R_SERVER].val) ||
		    !parse_server(scalar(f[R_SERVER].val), rc->server, &rc->port))
			return fail(c, f[R_SERVER].val, "an IPv4 address, optionally with :PORT");
		rc->has_server = true;
		path_pop(c, old);
	}
	if (f[R_GRACE].val) {
		old = path_key(c, "grace");
		r = get_duration(c, f[R_GRACE].val, &rc->grace_s);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	return 0;
}

/* ---- keys ---- */

static int parse_key(struct ctx *c, struct mas_key_conf *k, const yaml_node_t *map)
{
	enum { K_TYPE, K_ROTATE, K_KEEP, K_DELIVER, K_N };
	struct field f[K_N] = {
		[K_TYPE] = { .key = "type" },
		[K_ROTATE] = { .key = "rotate_every" },
		[K_KEEP] = { .key = "keep_previous_for" },
		[K_DELIVER] = { .key = "deliver_to" },
	};
	const char *types = "hs256, aes-256-gcm or ed25519";
	size_t old, i;
	int r;

	r = take_fields(c, map, f, K_N);
	if (r < 0)
		return r;
	old = path_key(c, "type");
	if (!f[K_TYPE].val)
		return fail_mark(c, map->start_mark, "nothing", "%s", types);
	if (is_text(f[K_TYPE].val) && !strcmp(scalar(f[K_TYPE].val), "hs256"))
		k->type = MAS_KEY_HS256;
	else if (is_text(f[K_TYPE].val) && !strcmp(scalar(f[K_TYPE].val), "aes-256-gcm"))
		k->type = MAS_KEY_AES256GCM;
	else if (is_text(f[K_TYPE].val) && !strcmp(scalar(f[K_TYPE].val), "ed25519"))
		k->type = MAS_KEY_ED25519;
	else
		return fail(c, f[K_TYPE].val, "%s", types);
	path_pop(c, old);
	if (f[K_ROTATE].val) {
		old = path_key(c, "rotate_every");
		r = get_duration(c, f[K_ROTATE].val, &k->rotate_every_s);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[K_KEEP].val) {
		old = path_key(c, "keep_previous_for");
		r = get_duration(c, f[K_KEEP].val, &k->keep_previous_for_s);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	if (f[K_DELIVER].val) {
		old = path_key(c, "deliver_to");
		r = get_refs(c, f[K_DELIVER].val, "agent names", "an agent named in agents",
			     IX_AGENTS, &k->deliver_to, &k->n_deliver_to);
		if (r < 0)
			return r;
		/* delivered secrets are owned by the agent's user: without one nobody could be */
		for (i = 0; i < k->n_deliver_to; i++) {
			if (!c->p->agents[k->deliver_to[i]].user) {
				path_index(c, i);
				return fail(
					c,
					node_at(c, f[K_DELIVER].val->data.sequence.items.start[i]),
					"an agent with a user to own the key");
			}
		}
		path_pop(c, old);
	}
	return 0;
}

static int parse_keys(struct ctx *c, const yaml_node_t *map)
{
	struct mas_policy *p = c->p;
	yaml_node_pair_t *pair;
	int r;

	r = want_map(c, map, MAS_MAX_LIST);
	if (r < 0)
		return r;
	p->keys = calloc(map_len(map) + 1, sizeof(*p->keys));
	if (!p->keys)
		return fail_oom(c);
	FOR_EACH_PAIR(pair, map)
	{
		yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
		struct mas_key_conf *kc = &p->keys[p->n_keys];
		size_t old;

		r = want_name_key(c, k);
		if (r < 0)
			return r;
		if (policy_find_key(p, scalar(k)) >= 0)
			return dup_key(c, k);
		if (strcmp(scalar(k), MAS_AUDIT_KEY_NAME) == 0)
			return fail(c, k,
				    "another key name ('" MAS_AUDIT_KEY_NAME
				    "' is masd's own audit signing key)");
		r = dup_str(c, k, &kc->name);
		if (r < 0)
			return r;
		kc->pos.line = (unsigned)k->start_mark.line + 1;
		kc->pos.col = (unsigned)k->start_mark.column + 1;
		p->n_keys++;
		old = path_key(c, kc->name);
		r = parse_key(c, kc, v);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	return 0;
}

/* ---- the document ---- */

static int parse_root(struct ctx *c, const yaml_node_t *root)
{
	enum {
		F_VERSION,
		F_MODE,
		F_DESTS,
		F_RATES,
		F_PERMS,
		F_ROLES,
		F_AGENTS,
		F_CONTROL,
		F_AUDIT,
		F_KEYS,
		F_RESOLVER,
		F_N
	};
	struct field f[F_N];
	struct mas_policy *p = c->p;
	uint64_t version;
	size_t i, old;
	int r;

	for (i = 0; i < F_N; i++)
		f[i].key = section_keys[i];
	if (is_null(root) || root->type != YAML_MAPPING_NODE)
		return fail(c, root, "a mapping with version: 1");
	r = take_fields(c, root, f, F_N);
	if (r < 0)
		return r;

	old = path_key(c, "version");
	if (!f[F_VERSION].val)
		return fail_mark(c, root->start_mark, "nothing", "1");
	if (!is_text(f[F_VERSION].val) ||
	    !parse_u64(scalar(f[F_VERSION].val), f[F_VERSION].val->data.scalar.length, &version) ||
	    version != 1)
		return fail(c, f[F_VERSION].val, "1");
	p->version = 1;
	path_pop(c, old);

	p->mode = MAS_POLICY_ENFORCE;
	if (f[F_MODE].val) {
		old = path_key(c, "mode");
		r = get_mode(c, f[F_MODE].val, &p->mode);
		if (r < 0)
			return r;
		path_pop(c, old);
	}

	/* Sections in the order their references need: a name is known before it is used. */
	static const struct {
		int field;
		int (*parse)(struct ctx *, const yaml_node_t *);
	} order[] = {
		{ F_RATES, parse_rate_limits }, { F_DESTS, parse_destinations },
		{ F_PERMS, parse_permissions }, { F_ROLES, parse_roles },
		{ F_AGENTS, parse_agents },	{ F_CONTROL, parse_control },
		{ F_AUDIT, parse_audit },	{ F_KEYS, parse_keys },
		{ F_RESOLVER, parse_resolver },
	};
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		struct field *fi = &f[order[i].field];

		if (!fi->val)
			continue;
		old = path_key(c, fi->key);
		r = order[i].parse(c, fi->val);
		if (r < 0)
			return r;
		path_pop(c, old);
	}
	return 0;
}

/* Where byte off of buf stands, counted the way libyaml counts: lines, then characters. */
static void offset_pos(const char *buf, size_t off, unsigned *line, unsigned *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch == '\n' || (ch == '\r' && buf[i + 1] != '\n')) {
			(*line)++;
			*col = 1;
		} else if ((ch & 0xc0) != 0x80 && ch != '\r') {
			(*col)++;
		}
	}
}

/* Strict UTF-8 (no overlong forms, no surrogates) and no control characters but tab and breaks.
 * Returns the offset of the first bad byte, or len. */
static size_t check_text(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char ch = s[i];
		size_t n, k;
		uint32_t cp;

		if (ch < 0x80) {
			if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7f)
				return i;
			i++;
			continue;
		}
		if (ch >= 0xc2 && ch <= 0xdf) {
			n = 1;
			cp = ch & 0x1f;
		} else if (ch >= 0xe0 && ch <= 0xef) {
			n = 2;
			cp = ch & 0x0f;
		} else if (ch >= 0xf0 && ch <= 0xf4) {
			n = 3;
			cp = ch & 0x07;
		} else {
			return i;
		}
		for (k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
			return i;
		i += n + 1;
	}
	return len;
}

static int yaml_fail(struct mas_error *err, const char *file, const yaml_parser_t *yp,
		     const char *buf)
{
	char found[MAS_ERR_MAX / 2];
	unsigned line, col;

	if (yp->error == YAML_READER_ERROR) {
		offset_pos(buf, yp->problem_offset, &line, &col);
	} else {
		line = (unsigned)yp->problem_mark.line + 1;
		col = (unsigned)yp->problem_mark.column + 1;
	}
	if (yp->context)
		snprintf(found, sizeof(found), "a syntax error (%s %s at %u:%u)", yp->problem,
			 yp->context, (unsigned)yp->context_mark.line + 1,
			 (unsigned)yp->context_mark.column + 1);
	else
		snprintf(found, sizeof(found), "a syntax error (%s)",
			 yp->problem ? yp->problem : "unknown");
	return doc_fail(err, file, line, col, found, "well-formed YAML");
}

/* A first pass over the events: one document, nothing nested too deep, no anchors or aliases
 * (an alias makes a tree a graph, and a billion laughs out of a few lines). */
static int check_events(const char *buf, size_t len, const char *file, struct mas_error *err)
{
	yaml_parser_t yp;
	yaml_event_t ev;
	unsigned depth = 0, docs = 0, nodes = 0;
	int r = 0;
	bool done = false;

	if (!yaml_parser_initialize(&yp))
		return -ENOMEM;
	yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
	while (!done && r == 0) {
		const unsigned char *anchor = NULL, *tag = NULL;
		char found[MAS_FOUND_MAX * 4 + 32], q[MAS_FOUND_MAX * 4 + 16];
		unsigned line, col;

		if (!yaml_parser_parse(&yp, &ev)) {
			r = yp.error == YAML_MEMORY_ERROR ? -ENOMEM :
							    yaml_fail(err, file, &yp, buf);
			break;
		}
		line = (unsigned)ev.start_mark.line + 1;
		col = (unsigned)ev.start_mark.column + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			if (docs == 0)
				r = doc_fail(err, file, 1, 1, "nothing",
					     "a mapping with version: 1");
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				r = doc_fail(err, file, line, col, "a second document",
					     "exactly one YAML document");
			break;
		case YAML_ALIAS_EVENT:
			quote(q, sizeof(q), (const char *)ev.data.alias.anchor,
			      strlen((const char *)ev.data.alias.anchor));
			snprintf(found, sizeof(found), "an alias %s", q);
			r = doc_fail(err, file, line, col, found, "no anchors or aliases");
			break;
		case YAML_SCALAR_EVENT:
			nodes++;
			anchor = ev.data.scalar.anchor;
			tag = ev.data.scalar.tag;
			break;
		case YAML_SEQUENCE_START_EVENT:
			nodes++;
			anchor = ev.data.sequence_start.anchor;
			tag = ev.data.sequence_start.tag;
			depth++;
			break;
		case YAML_MAPPING_START_EVENT:
			nodes++;
			anchor = ev.data.mapping_start.anchor;
			tag = ev.data.mapping_start.tag;
			depth++;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		if (r == 0 && anchor) {
			quote(q, sizeof(q), (const char *)anchor, strlen((const char *)anchor));
			snprintf(found, sizeof(found), "an anchor %s", q);
			r = doc_fail(err, file, line, col, found, "no anchors or aliases");
		}
		/* a type is what the key says it is, never what a tag claims */
		if (r == 0 && tag) {
			quote(q, sizeof(q), (const char *)tag, strlen((const char *)tag));
			snprintf(found, sizeof(found), "a tag %s", q);
			r = doc_fail(err, file, line, col, found, "no tags");
		}
		if (r == 0 && nodes > MAS_POLICY_MAX_NODES) {
			snprintf(found, sizeof(found), "more than %u values", MAS_POLICY_MAX_NODES);
			r = doc_fail(err, file, line, col, found, "at most %u",
				     MAS_POLICY_MAX_NODES);
		}
		if (r == 0 && depth > MAS_POLICY_MAX_DEPTH) {
			snprintf(found, sizeof(found), "nesting deeper than %d levels",
				 MAS_POLICY_MAX_DEPTH);
			r = doc_fail(err, file, line, col, found, "at most %d",
				     MAS_POLICY_MAX_DEPTH);
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&yp);
	return r;
}

int policy_parse_buffer(const char *buf, size_t len, const char *name,
			struct mas_policy **ret_policy, struct mas_error *err)
{
	struct mas_error scratch;
	struct mas_policy *p = NULL;
	yaml_document_t doc;
	yaml_parser_t yp;
	struct ctx c;
	size_t bad;
	int r;

	if (!err)
		err = &scratch;
	memset(err, 0, sizeof(*err));
	*ret_policy = NULL;
	if (!name)
		name = "<policy>";
	if (len > MAS_POLICY_MAX_BYTES) {
		char found[64];

		snprintf(found, sizeof(found), "%zu bytes", len);
		return doc_fail(err, name, 1, 1, found, "at most %u bytes", MAS_POLICY_MAX_BYTES);
	}
	bad = check_text((const unsigned char *)buf, len);
	if (bad < len) {
		char found[64];
		unsigned line, col;

		offset_pos(buf, bad, &line, &col);
		snprintf(found, sizeof(found), "byte 0x%02x", (unsigned char)buf[bad]);
		return doc_fail(err, name, line, col, found,
				"UTF-8 text without control characters");
	}
	r = check_events(buf, len, name, err);
	if (r == -ENOMEM)
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
	if (r < 0)
		return r;

	if (!yaml_parser_initialize(&yp)) {
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&yp, &doc)) {
		r = yp.error == YAML_MEMORY_ERROR ? -ENOMEM : yaml_fail(err, name, &yp, buf);
		if (r == -ENOMEM)
			snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
		yaml_parser_delete(&yp);
		return r;
	}
	yaml_parser_delete(&yp);

	memset(&c, 0, sizeof(c));
	c.doc = &doc;
	c.file = name;
	c.err = err;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->file = strdup(name))) {
		r = fail_oom(&c);
		goto out;
	}
	c.p = p;
	p->audit.enabled = true;
	p->audit.signed_logs = true;
	p->audit.retention_days = 90;
	p->audit.include = MAS_AUDIT_AI_REQUESTS | MAS_AUDIT_AUTHENTICATION |
			   MAS_AUDIT_DATA_CHANGES | MAS_AUDIT_AGENT_ACTIONS;
	p->audit.checkpoint_records = 256;
	p->audit.checkpoint_seconds = 5;
	p->audit.flow_interval_s = 60;
	p->resolver.port = 53;
	p->resolver.grace_s = 300;

	{
		yaml_node_t *root = yaml_document_get_root_node(&doc);

		if (!root)
			r = doc_fail(err, name, 1, 1, "nothing", "a mapping with version: 1");
		else
			r = parse_root(&c, root);
	}
out:
	index_free(&c);
	yaml_document_delete(&doc);
	if (r < 0) {
		policy_free(p);
		return r;
	}
	*ret_policy = p;
	return 0;
}

int policy_parse_file(const char *path, struct mas_policy **ret_policy, struct mas_error *err)
{
	struct mas_error scratch;
	size_t len = 0;
	char *buf = NULL;
	int r;

	if (!err)
		err = &scratch;
	memset(err, 0, sizeof(*err));
	*ret_policy = NULL;
	r = fileio_read_all(path, MAS_POLICY_MAX_BYTES, &buf, &len);
	if (r == -EFBIG) {
		snprintf(err->msg, sizeof(err->msg), "%s: cannot read: %s (more than %u bytes)",
			 path, strerror(-r), MAS_POLICY_MAX_BYTES);
		return r;
	}
	if (r < 0) {
		snprintf(err->msg, sizeof(err->msg), "%s: cannot read: %s", path, strerror(-r));
		return r;
	}
	r = policy_parse_buffer(buf, len, path, ret_policy, err);
	free(buf);
	return r;
}

void policy_free(struct mas_policy *p)
{
	size_t i, j;

	if (!p)
		return;
	for (i = 0; i < p->n_destinations; i++) {
		struct mas_destination *d = &p->destinations[i];

		for (j = 0; j < d->n_hosts; j++)
			free(d->hosts[j]);
		free(d->hosts);
		free(d->cidrs);
		free(d->ports);
		free(d->name);
	}
	free(p->destinations);
	for (i = 0; i < p->n_rate_limits; i++)
		free(p->rate_limits[i].name);
	free(p->rate_limits);
	for (i = 0; i < p->n_permissions; i++) {
		free(p->permissions[i].name);
		free(p->permissions[i].dests);
	}
	free(p->permissions);
	for (i = 0; i < p->n_roles; i++) {
		free(p->roles[i].name);
		free(p->roles[i].perms);
	}
	free(p->roles);
	for (i = 0; i < p->n_agents; i++) {
		struct mas_agent *a = &p->agents[i];

		free(a->name);
		free(a->unit);
		free(a->cgroup);
		free(a->user);
		free(a->allow);
	}
	free(p->agents);
	for (i = 0; i < p->n_control; i++) {
		for (j = 0; j < p->control[i].n_principals; j++)
			free(p->control[i].principals[j].text);
		free(p->control[i].principals);
	}
	free(p->control);
	for (i = 0; i < p->n_keys; i++) {
		free(p->keys[i].name);
		free(p->keys[i].deliver_to);
	}
	free(p->keys);
	free(p->file);
	free(p);
}

bool policy_agent_granted(const struct mas_policy *p, size_t a, size_t d)
{
	const struct mas_agent *ag;
	const struct mas_role *ro;
	size_t i, j;

	if (a >= p->n_agents || d >= p->n_destinations)
		return false;
	ag = &p->agents[a];
	ro = &p->roles[ag->role];
	if (ro->all)
		return true;
	for (i = 0; i < ro->n_perms; i++) {
		const struct mas_permission *pm = &p->permissions[ro->perms[i]];

		for (j = 0; j < pm->n_dests; j++)
			if (pm->dests[j] == d)
				return true;
	}
	for (i = 0; i < ag->n_allow; i++)
		if (ag->allow[i] == d)
			return true;
	return false;
}

enum mas_policy_mode policy_agent_mode(const struct mas_policy *p, size_t a)
{
	if (a < p->n_agents && p->agents[a].mode != MAS_POLICY_INHERIT)
		return p->agents[a].mode;
	return p->mode;
}
