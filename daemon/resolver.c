/* SPDX-License-Identifier: GPL-2.0-only */
/* Resolution of destination host names with the host's resolver (getaddrinfo). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "resolver.h"

static int add_cidr(struct mas_dest_addrs *d, int family, const void *addr)
{
	struct mas_cidr *c;

	for (size_t i = 0; i < d->n_cidrs; i++)
		if (d->cidrs[i].family == family &&
		    !memcmp(d->cidrs[i].addr, addr, family == AF_INET ? 4 : 16))
			return 0;
	c = realloc(d->cidrs, (d->n_cidrs + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	d->cidrs = c;
	c = &c[d->n_cidrs++];
	memset(c, 0, sizeof(*c));
	c->family = family;
	memcpy(c->addr, addr, family == AF_INET ? 4 : 16);
	c->prefixlen = family == AF_INET ? 32 : 128;
	return 0;
}

int resolver_resolve(const struct mas_policy *p, struct mas_dest_addrs **ret,
		     size_t *ret_unresolved, const char **ret_first_failed)
{
	struct mas_dest_addrs *out =
		calloc(p->n_destinations ? p->n_destinations : 1, sizeof(*out));
	size_t failed = 0;
	int r = 0;

	if (!out)
		return -ENOMEM;
	*ret_first_failed = NULL;
	for (size_t d = 0; d < p->n_destinations; d++) {
		for (size_t h = 0; h < p->destinations[d].n_hosts; h++) {
			struct addrinfo hints = { .ai_family = AF_UNSPEC,
						  .ai_socktype = SOCK_STREAM },
					*res = NULL;
			const char *name = p->destinations[d].hosts[h];

			if (getaddrinfo(name, NULL, &hints, &res) != 0) {
				if (!failed++)
					*ret_first_failed = name;
				continue;
			}
			for (struct addrinfo *ai = res; ai && r == 0; ai = ai->ai_next) {
				if (ai->ai_family == AF_INET) {
					struct sockaddr_in *s = (struct sockaddr_in *)ai->ai_addr;

					r = add_cidr(&out[d], AF_INET, &s->sin_addr);
				} else if (ai->ai_family == AF_INET6) {
					struct sockaddr_in6 *s = (struct sockaddr_in6 *)ai->ai_addr;

					if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr))
						r = add_cidr(&out[d], AF_INET,
							     &s->sin6_addr.s6_addr[12]);
					else
						r = add_cidr(&out[d], AF_INET6, &s->sin6_addr);
				}
			}
			freeaddrinfo(res);
			if (r < 0) {
				resolver_free(out, p->n_destinations);
				return r;
			}
		}
	}
	*ret = out;
	*ret_unresolved = failed;
	return 0;
}

void resolver_free(struct mas_dest_addrs *a, size_t n)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		free(a[i].cidrs);
	free(a);
}
