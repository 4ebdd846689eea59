/* SPDX-License-Identifier: GPL-2.0-only */
/* This host's own addresses, from getifaddrs(3). */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hostaddr.h"

static int push(struct mas_cidr **v, size_t *n, size_t *cap, const struct sockaddr *sa)
{
	struct mas_cidr c = { 0 };

	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		c.family = AF_INET;
		memcpy(c.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		c.prefixlen = 32;
	} else if (sa->sa_family == AF_INET6) {
		c.family = AF_INET6;
		memcpy(c.addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		c.prefixlen = 128;
	} else {
		return 0;
	}
	for (size_t i = 0; i < *n; i++)
		if (!memcmp(&(*v)[i], &c, sizeof(c)))
			return 0;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct mas_cidr *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = c;
	return 0;
}

int hostaddr_list(struct mas_cidr **ret, size_t *ret_n)
{
	struct sockaddr_in all = { .sin_family = AF_INET, .sin_addr.s_addr = INADDR_BROADCAST };
	struct ifaddrs *ifa = NULL;
	struct mas_cidr *v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (struct ifaddrs *i = ifa; i && r == 0; i = i->ifa_next) {
		r = push(&v, &n, &cap, i->ifa_addr);
		if (r == 0 && (i->ifa_flags & IFF_BROADCAST) && i->ifa_addr &&
		    i->ifa_addr->sa_family == AF_INET)
			r = push(&v, &n, &cap, i->ifa_broadaddr);
	}
	if (r == 0)
		r = push(&v, &n, &cap, (const struct sockaddr *)&all);
	freeifaddrs(ifa);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
