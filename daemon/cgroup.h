/* SPDX-License-Identifier: GPL-2.0-only */
/* The cgroup2 tree: where it is mounted, cgroup ids and levels, finding an agent's unit in it,
 * and noticing when cgroups appear or go (inotify). */
#ifndef MAS_CGROUP_H
#define MAS_CGROUP_H

#include <stdint.h>

/* The cgroup2 mount point from /proc/self/mountinfo. Returns 0 or -ENOENT. */
int cgroup_find_mount(char **ret_path);

/* The kernel's id of the cgroup at path (what bpf_get_current_cgroup_id() returns). */
int cgroup_id(const char *path, uint64_t *ret_id);

/* The level of path in the hierarchy: the mount is level 0. */
int cgroup_level(const char *mount, const char *path, uint32_t *ret_level);

/* Find the cgroup directory of a systemd unit below root: breadth first, the shallowest match.
 * A slice "a-b.slice" is also found under "a.slice". Returns 0, -ENOENT, or another error. */
int cgroup_find_unit(const char *root, const char *unit, char **ret_path);

/* The same for n units in one walk: ret_paths[i] is unit i's directory (the caller frees it)
 * or NULL when not found. Returns 0 or a negative errno (then every ret_paths[i] is NULL). */
int cgroup_find_units(const char *root, const char *const *units, size_t n, char **ret_paths);

/* Watches root and every directory below it; cgroup_watch_read() drains the inotify fd and
 * returns > 0 when a cgroup appeared or went since the last call. */
struct cgroup_watch;
int cgroup_watch_new(const char *root, struct cgroup_watch **ret);
int cgroup_watch_fd(const struct cgroup_watch *w);
int cgroup_watch_read(struct cgroup_watch *w);
void cgroup_watch_free(struct cgroup_watch *w);

#endif
