/* SPDX-License-Identifier: GPL-2.0-only */
/* Host names of a policy's destinations into addresses, kept right over time: A and AAAA
 * through CNAME chains, refreshed before each answer's TTL runs out, a grace period for
 * addresses that drop out, the last good set kept while DNS fails, state kept across restarts. */
#ifndef MAS_RESOLVER_H
#define MAS_RESOLVER_H

#include <stdbool.h>
#include <stdint.h>

#include "compile.h"
#include "policy.h"

#define RESOLVER_HOST_MAX 254
#define RESOLVER_MAX_ADDRS 1024 /* per name and family: more in one answer are ignored */
#define RESOLVER_RETRY_MS 2000 /* after a failed query */
#define RESOLVER_EMPTY_MS 10000 /* after an answer without addresses */
#define RESOLVER_MAX_REFRESH_MS 3600000
#define RESOLVER_BUDGET_MS 1500 /* of blocking queries per resolver_update */

/* One answer: addresses and the smallest TTL of the records that led to them. */
struct resolver_answer {
	struct mas_cidr *addrs;
	size_t n;
	uint32_t ttl;
};

/* How masd asks: 0 with the answer (n may be 0: the name has no such address), or a negative
 * errno when the server could not be asked or could not answer (-EAGAIN, -ETIMEDOUT, ...). */
typedef int (*resolver_query_fn)(void *userdata, const struct mas_resolver_conf *conf,
				 const char *name, int family, struct resolver_answer *ret);

enum resolver_change_kind {
	RESOLVER_ADDED = 0, /* a new address is allowed */
	RESOLVER_DROPPED = 1, /* it left the answers: allowed until the grace period ends */
	RESOLVER_EXPIRED = 2, /* the grace period ended: no longer allowed */
	RESOLVER_FAILED = 3, /* DNS failed: the last good set stays */
	RESOLVER_RECOVERED = 4, /* DNS answers again */
};

struct resolver_change {
	enum resolver_change_kind kind;
	char host[RESOLVER_HOST_MAX];
	struct mas_cidr addr; /* ADDED, DROPPED, EXPIRED */
	uint32_t ttl; /* ADDED */
	uint64_t until_ms; /* DROPPED: end of the grace period (CLOCK_REALTIME ms) */
	int error; /* FAILED: negative errno */
	size_t kept; /* FAILED: addresses still allowed */
};

struct resolver_changes {
	struct resolver_change *v;
	size_t n;
	bool set_changed; /* the addresses allowed changed: the maps need the new set */
};

struct mas_resolver;

int resolver_new(struct mas_resolver **ret);
void resolver_free(struct mas_resolver *r);

/* Replace the DNS client (unit tests); NULL restores the real one. */
void resolver_set_query(struct mas_resolver *r, resolver_query_fn fn, void *userdata);

/* Query the host names of p that are new or due at now_ms (CLOCK_REALTIME ms), as many as
 * RESOLVER_BUDGET_MS allows (the rest stay due), and end the grace periods that ran out; what
 * changed is appended to ch. */
int resolver_update(struct mas_resolver *r, const struct mas_policy *p, uint64_t now_ms,
		    struct resolver_changes *ch);

/* Forget the names p does not use (after p was applied); returns how many were forgotten. */
size_t resolver_retain(struct mas_resolver *r, const struct mas_policy *p);

/* The addresses allowed now, one set per destination of p. A name that never resolved adds
 * none (fail closed): their count in *ret_unresolved, the first in *ret_first_failed. */
int resolver_addrs(const struct mas_resolver *r, const struct mas_policy *p,
		   struct mas_dest_addrs **ret, size_t *ret_unresolved,
		   const char **ret_first_failed);

/* When resolver_update has work next (CLOCK_REALTIME ms); UINT64_MAX for never. */
uint64_t resolver_next_ms(const struct mas_resolver *r);

/* State across restarts: the addresses and their grace periods, written crash-safely. A loaded
 * name counts as resolved (its last good set is allowed) and is due at once. */
int resolver_save(const struct mas_resolver *r, const char *path);
int resolver_load(struct mas_resolver *r, const char *path, uint64_t now_ms);

/* One lookup of A and AAAA with the policy's server, for masctl; the caller frees *ret. */
int resolver_lookup(const struct mas_resolver_conf *conf, const char *name, struct mas_cidr **ret,
		    size_t *ret_n);

/* The DNS client itself (libresolv), exposed for the lookup above and for tests. */
int resolver_query_dns(void *userdata, const struct mas_resolver_conf *conf, const char *name,
		       int family, struct resolver_answer *ret);

const char *resolver_change_name(enum resolver_change_kind k);
void resolver_changes_free(struct resolver_changes *ch);
void resolver_addrs_free(struct mas_dest_addrs *a, size_t n);
void resolver_format_addr(const struct mas_cidr *c, char *buf, size_t len);

#endif
