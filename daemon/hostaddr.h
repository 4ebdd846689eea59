/* SPDX-License-Identifier: GPL-2.0-only */
/* This host's own addresses, read at each apply: a protected local service is protected at
 * every one of them (compile_policy_local). */
#ifndef MAS_HOSTADDR_H
#define MAS_HOSTADDR_H

#include <stddef.h>

#include "policy.h"

/* Every address assigned to an interface (/32 or /128), each IPv4 broadcast address and
 * 255.255.255.255 (a datagram to them reaches a service bound to 0.0.0.0). Returns 0 with a
 * malloc'd array (free() it), or a negative errno. */
int hostaddr_list(struct mas_cidr **ret, size_t *ret_n);

#endif
