/* SPDX-License-Identifier: GPL-2.0-only */
/* Host names of a policy's destinations into addresses (at apply; refresh comes later). */
#ifndef MAS_RESOLVER_H
#define MAS_RESOLVER_H

#include "compile.h"
#include "policy.h"

/* One mas_dest_addrs per destination in *ret (NULL-safe to free with resolver_free). A name
 * that does not resolve adds no address: it allows nothing (fail closed); its count is
 * returned in *ret_unresolved, and the first such name in *ret_first_failed (not owned). */
int resolver_resolve(const struct mas_policy *p, struct mas_dest_addrs **ret,
		     size_t *ret_unresolved, const char **ret_first_failed);
void resolver_free(struct mas_dest_addrs *a, size_t n);

#endif
