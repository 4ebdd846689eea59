/* SPDX-License-Identifier: GPL-2.0-only */
/* The control socket: the one door masctl uses. sd-bus in peer-to-peer mode; the caller's
 * uid and groups come from the kernel (SO_PEERCRED, SO_PEERGROUPS) and map to policy roles. */
#ifndef MAS_CONTROL_H
#define MAS_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "daemon.h"

#define MAS_CONTROL_PATH "/org/masd/control"
#define MAS_CONTROL_IFACE "org.masd.Control1"
#define MAS_ERR_INVALID_POLICY "org.masd.Error.InvalidPolicy"
#define MAS_ERR_ACCESS_DENIED "org.masd.Error.AccessDenied"
#define MAS_ERR_FAILED "org.masd.Error.Failed"
#define MAS_ERR_RATE_LIMITED "org.masd.Error.RateLimited"

struct mas_control;

struct control_options {
	const char *path;
	mode_t mode;
	gid_t gid; /* (gid_t)-1: root's */
};

/* Refused requests per uid are rate-limited like the threat model's authentication class:
 * 20 per minute, burst 5. A uid whose bucket is empty is refused before its request is
 * looked at, and told when to retry. */
#define CONTROL_FAIL_PER_MINUTE 20
#define CONTROL_FAIL_BURST 5

struct control_bucket {
	uint32_t uid;
	double tokens;
	uint64_t last_usec;
	uint64_t last_record_usec; /* the last "rate-limited" audit record for this uid */
};

/* Refill to now; returns true (and takes a token) when there was one. */
bool control_bucket_take(struct control_bucket *b, uint64_t now_usec);
/* Microseconds until the bucket holds a whole token again. */
uint64_t control_bucket_wait(const struct control_bucket *b);

/* Listen on path; requests run against d. on_teardown is called after a teardown reply. */
int control_new(struct mas_daemon *d, sd_event *ev, const struct control_options *o,
		void (*on_teardown)(void *), void *userdata, struct mas_control **ret);
/* Free connections whose peer has gone; call now and then. */
void control_gc(struct mas_control *c);
void control_free(struct mas_control *c);

/* Whether a caller may run a command: admin (a role with "all", or uid 0) may do everything,
 * any other role granted in the policy's control section may read. Pure, for unit tests. */
enum control_access {
	CONTROL_NONE = 0,
	CONTROL_SELF = 1, /* an agent's own service user: its own agent's status only */
	CONTROL_READ = 2,
	CONTROL_ADMIN = 3,
};
enum control_access control_access_of(const struct mas_policy *p, uid_t uid, const gid_t *gids,
				      size_t n_gids);

/* Whether agent a runs as uid (its policy `user`, looked up in the user database). */
bool control_agent_is_uid(const struct mas_policy *p, size_t a, uid_t uid);

#endif
