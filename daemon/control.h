/* SPDX-License-Identifier: GPL-2.0-only */
/* The control socket: the one door masctl uses. sd-bus in peer-to-peer mode; the caller's
 * uid and groups come from the kernel (SO_PEERCRED, SO_PEERGROUPS) and map to policy roles. */
#ifndef MAS_CONTROL_H
#define MAS_CONTROL_H

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "daemon.h"

#define MAS_CONTROL_PATH "/org/masd/control"
#define MAS_CONTROL_IFACE "org.masd.Control1"
#define MAS_ERR_INVALID_POLICY "org.masd.Error.InvalidPolicy"
#define MAS_ERR_ACCESS_DENIED "org.masd.Error.AccessDenied"
#define MAS_ERR_FAILED "org.masd.Error.Failed"

struct mas_control;

struct control_options {
	const char *path;
	mode_t mode;
	gid_t gid; /* (gid_t)-1: root's */
};

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
	CONTROL_READ = 1,
	CONTROL_ADMIN = 2,
};
enum control_access control_access_of(const struct mas_policy *p, uid_t uid, const gid_t *gids,
				      size_t n_gids);

#endif
