/* SPDX-License-Identifier: GPL-2.0-only */
/* The loader and map writer: the only file that speaks bpf(). Policy slots are map-in-map
 * entries; an apply builds fresh inner maps for the idle slot, flips mas_active, then waits
 * for an RCU grace period so no program still runs on the old slot. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <time.h>

#include "cgroup.h"
#include "enforcer.h"
#include "mas_decide.h"
#include "fileio.h"
#include "masd.skel.h"

#define BPF_FS_MAGIC_ 0xcafe4a11
#define ENOTSUPP_ 524 /* the kernel's own "operation not supported" */

enum { INNER_META, INNER_AGENTS, INNER_LPM4, INNER_LPM6, INNER_CLASSES, INNER_MAX };

/* one per entry of link_names */
#define MAS_LINKS 8

/* The idle slot made ready for the next apply, in the background after each flip: first one
 * grace period, after which no program still runs on the slot just left; then fresh empty maps
 * put in it. An apply then only fills them and flips: no grace period is on its path. */
struct slot_prep {
	pthread_t thread;
	bool running;
	uint32_t slot; /* the idle slot */
	uint32_t active; /* the slot in force */
	int grace_fd; /* the meta map in force, put again to wait for a grace period; -1: none */
	int outer_fds[INNER_MAX];
	int fds[INNER_MAX]; /* the fresh maps, in the idle slot once r == 0; else -1 */
	bool graced; /* a grace period passed */
	int r;
};

struct mas_enforcer {
	struct masd *skel;
	char *bpffs_dir;
	int cgroup_fd;
	uint64_t cgroup_root_id;
	uint32_t root_level;
	uint32_t active_slot;
	uint64_t generation;
	int agents_fd; /* the agents map of the slot in force, for live enrolment; -1 if none */
	uint64_t flow_lost; /* mas_flow_lost's sum at the last drain */
	bool adopted;
	bool lsm; /* the BPF LSM program is loaded (the kernel offers BPF_PROG_TYPE_LSM) */
	struct enforcer_timing timing; /* of the last apply */
	int meta_fd; /* the meta map of the slot in force, for grace periods; -1 if none */
	bool need_grace; /* programs may still run on the idle slot (no grace period since) */
	struct slot_prep *prep; /* the idle slot, made ready in the background */
	/* held while masd runs, so a pin removed behind its back detaches nothing and can be
	 * pinned again from here (enforcer_check_pins) */
	struct bpf_link *links[MAS_LINKS];
};

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *const link_names[] = { "link_connect4",     "link_connect6",
					  "link_sendmsg4",     "link_sendmsg6",
					  "link_sock_create",  "link_lsm_socket",
					  "link_sock_release", "link_egress" };
_Static_assert(sizeof(link_names) / sizeof(link_names[0]) == MAS_LINKS, "one held link per name");

static void slot_prep_start(struct mas_enforcer *e);
static void slot_prep_stop(struct mas_enforcer *e);

static struct bpf_program *prog_at(struct mas_enforcer *e, size_t i)
{
	struct bpf_program *progs[] = {
		e->skel->progs.mas_connect4,	 e->skel->progs.mas_connect6,
		e->skel->progs.mas_sendmsg4,	 e->skel->progs.mas_sendmsg6,
		e->skel->progs.mas_sock_create,	 e->skel->progs.mas_lsm_socket,
		e->skel->progs.mas_sock_release, e->skel->progs.mas_egress
	};

	return progs[i];
}

static struct bpf_map *outer_at(struct mas_enforcer *e, int which)
{
	switch (which) {
	case INNER_META:
		return e->skel->maps.mas_meta;
	case INNER_AGENTS:
		return e->skel->maps.mas_agents;
	case INNER_LPM4:
		return e->skel->maps.mas_lpm4;
	case INNER_CLASSES:
		return e->skel->maps.mas_classes;
	default:
		return e->skel->maps.mas_lpm6;
	}
}

static bool is_bpffs(const char *path)
{
	struct statfs s;

	return statfs(path, &s) == 0 && (unsigned long)s.f_type == BPF_FS_MAGIC_;
}

/* Make sure dir is on a bpffs: mount one on its nearest existing ancestor if that is not one
 * (as systemd mounts /sys/fs/bpf at boot), then create dir. */
static int ensure_bpffs(const char *dir)
{
	char anc[PATH_MAX];
	struct stat st;

	if (strlen(dir) >= sizeof(anc) || dir[0] != '/')
		return -EINVAL;
	strcpy(anc, dir);
	while (stat(anc, &st) < 0) {
		char *slash = strrchr(anc, '/');

		if (errno != ENOENT)
			return -errno;
		if (!slash || slash == anc)
			return -ENOENT;
		*slash = '\0';
	}
	if (!is_bpffs(anc) &&
	    mount("bpf", anc, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
		return -errno;
	return fileio_mkdir_p(dir, 0700);
}

static int pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	return snprintf(buf, len, "%s/%s", dir, name) >= (int)len ? -ENAMETOOLONG : 0;
}

static const char *const inner_names[INNER_MAX] = { "meta", "agents", "lpm4", "lpm6" };

/* Inner maps are pinned too (slotN_NAME): a restarted masd reopens them by path, which needs
 * CAP_BPF only, where opening a map by id would need CAP_SYS_ADMIN. */
static int inner_pin_path(char *buf, size_t len, const char *dir, uint32_t slot, int which)
{
	return snprintf(buf, len, "%s/slot%u_%s", dir, slot, inner_names[which]) >= (int)len ?
		       -ENAMETOOLONG :
		       0;
}

static int open_inner(struct mas_enforcer *e, uint32_t slot, int which)
{
	char path[PATH_MAX];
	int fd;

	if (inner_pin_path(path, sizeof(path), e->bpffs_dir, slot, which) < 0)
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

/* Read which slot is in force and its generation, and keep the fd of its agents map. */
static int read_active(struct mas_enforcer *e)
{
	uint32_t zero = 0, slot = 0, id = 0;
	struct mas_meta meta;
	int fd, r;

	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.mas_active), &zero, &slot) < 0)
		return -errno;
	e->active_slot = slot & (MAS_SLOTS - 1);
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.mas_meta), &e->active_slot, &id) < 0)
		return errno == ENOENT ? 0 : -errno; /* nothing loaded yet */
	fd = open_inner(e, e->active_slot, INNER_META);
	if (fd < 0)
		return fd == -ENOENT ? -ESTALE : fd; /* a slot in force without its pin */
	r = bpf_map_lookup_elem(fd, &zero, &meta) < 0 ? -errno : 0;
	if (r < 0) {
		close(fd);
		return r;
	}
	e->meta_fd = fd;
	e->generation = meta.generation;
	fd = open_inner(e, e->active_slot, INNER_AGENTS);
	if (fd < 0)
		return fd;
	e->agents_fd = fd;
	return 0;
}

static int flows_init(struct mas_enforcer *e);

int enforcer_open(const struct enforcer_options *o, struct mas_enforcer **ret, bool *ret_adopted)
{
	struct mas_enforcer *e = calloc(1, sizeof(*e));
	struct bpf_map *map;
	char path[PATH_MAX];
	int r;

	if (!e)
		return -ENOMEM;
	e->cgroup_fd = -1;
	e->agents_fd = -1;
	e->meta_fd = -1;
	e->bpffs_dir = strdup(o->bpffs_dir);
	e->prep = calloc(1, sizeof(*e->prep));
	if (!e->bpffs_dir || !e->prep) {
		r = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < INNER_MAX; i++)
		e->prep->fds[i] = -1;
	e->prep->r = -EAGAIN;
	e->cgroup_fd = open(o->cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->cgroup_fd < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = cgroup_id(o->cgroup_root, &e->cgroup_root_id)) < 0)
		goto fail;
	if ((r = cgroup_level(o->cgroup_mount, o->cgroup_root, &e->root_level)) < 0)
		goto fail;
	if ((r = ensure_bpffs(o->bpffs_dir)) < 0)
		goto fail;

	e->skel = masd__open();
	if (!e->skel) {
		r = -errno;
		goto fail;
	}
	bpf_object__for_each_map(map, e->skel->obj)
	{
		if (bpf_map__is_internal(map))
			continue;
		if ((r = pin_path(path, sizeof(path), o->bpffs_dir, bpf_map__name(map))) < 0)
			goto fail;
		if ((r = bpf_map__set_pin_path(map, path)) < 0)
			goto fail;
	}
	/* packet sockets can only be refused through the BPF LSM; where the kernel has none,
	 * CAP_NET_RAW (which agents running as their own users lack) is what keeps them out */
	e->lsm = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_LSM, NULL) == 1;
	bpf_program__set_autoload(e->skel->progs.mas_lsm_socket, e->lsm);
	/* pinned maps are reused as they are: counters, events and the policy slots carry on */
	if ((r = masd__load(e->skel)) < 0)
		goto fail;
	if ((r = read_active(e)) < 0)
		goto fail;
	if ((r = flows_init(e)) < 0)
		goto fail;
	/* a masd before this one may have flipped just before it ended */
	e->need_grace = e->meta_fd >= 0;
	slot_prep_start(e);
	if ((r = pin_path(path, sizeof(path), o->bpffs_dir, link_names[0])) < 0)
		goto fail;
	e->adopted = access(path, F_OK) == 0;
	*ret_adopted = e->adopted;
	*ret = e;
	return 0;
fail:
	enforcer_free(e);
	return r;
}

int enforcer_attach(struct mas_enforcer *e)
{
	char path[PATH_MAX];
	int r;

	for (size_t i = 0; i < sizeof(link_names) / sizeof(link_names[0]); i++) {
		struct bpf_program *prog = prog_at(e, i);
		struct bpf_link *link;

		if (!bpf_program__autoload(prog))
			continue;
		if ((r = pin_path(path, sizeof(path), e->bpffs_dir, link_names[i])) < 0)
			return r;
		link = access(path, F_OK) == 0 ? bpf_link__open(path) : NULL;
		if (link) {
			struct bpf_link_info info = { 0 };
			__u32 len = sizeof(info);

			r = bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len);
			if (r == 0 && info.cgroup.cgroup_id != e->cgroup_root_id)
				r = -EEXIST; /* pinned enforcement belongs to another cgroup root */
			if (r == 0)
				r = bpf_link__update_program(link, prog);
			if (r < 0) {
				bpf_link__destroy(link); /* closes our fd; the pin keeps the link */
				return r;
			}
			bpf_link__destroy(e->links[i]);
			e->links[i] = link;
			continue;
		}
		if (access(path, F_OK) == 0)
			return -errno; /* pinned, but not a link we can open */
		link = bpf_program__attach_cgroup(prog, e->cgroup_fd);
		if (!link)
			return -errno;
		r = bpf_obj_pin(bpf_link__fd(link), path) < 0 ? -errno : 0;
		if (r < 0) {
			bpf_link__destroy(link);
			return r;
		}
		bpf_link__destroy(e->links[i]);
		e->links[i] = link;
	}
	return 0;
}

static int flow_pin_path(char *buf, size_t len, const char *dir, uint32_t slot);

int enforcer_check_pins(struct mas_enforcer *e, unsigned *ret_restored)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	unsigned n = 0;
	int r = 0;

	if (access(e->bpffs_dir, F_OK) < 0 && fileio_mkdir_p(e->bpffs_dir, 0700) < 0)
		r = -errno;
	for (size_t i = 0; i < sizeof(link_names) / sizeof(link_names[0]); i++) {
		if (!e->links[i] || pin_path(path, sizeof(path), e->bpffs_dir, link_names[i]) < 0 ||
		    access(path, F_OK) == 0)
			continue;
		if (bpf_obj_pin(bpf_link__fd(e->links[i]), path) < 0) {
			if (!r)
				r = -errno;
			continue;
		}
		n++;
	}
	bpf_object__for_each_map(map, e->skel->obj)
	{
		const char *mp = bpf_map__pin_path(map);

		if (bpf_map__is_internal(map) || !mp || access(mp, F_OK) == 0)
			continue;
		if (bpf_obj_pin(bpf_map__fd(map), mp) < 0) {
			if (!r)
				r = -errno;
			continue;
		}
		n++;
	}
	/* the inner maps of both slots and the flow maps: from the ids their outer maps hold */
	for (uint32_t slot = 0; slot < MAS_SLOTS; slot++) {
		for (int i = 0; i <= INNER_MAX; i++) {
			int outer = i < INNER_MAX ? bpf_map__fd(outer_at(e, i)) :
						    bpf_map__fd(e->skel->maps.mas_flows);
			int k = i < INNER_MAX ?
					inner_pin_path(path, sizeof(path), e->bpffs_dir, slot, i) :
					flow_pin_path(path, sizeof(path), e->bpffs_dir, slot);
			uint32_t id = 0;
			int fd;

			if (k < 0 || access(path, F_OK) == 0 ||
			    bpf_map_lookup_elem(outer, &slot, &id) < 0 || !id)
				continue;
			fd = bpf_map_get_fd_by_id(id);
			if (fd < 0 || bpf_obj_pin(fd, path) < 0) {
				if (!r)
					r = -errno;
			} else {
				n++;
			}
			if (fd >= 0)
				close(fd);
		}
	}
	*ret_restored = n;
	return r;
}

static int create_inner(int which, int *ret_fd)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	int fd;

	switch (which) {
	case INNER_META:
		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "mas_meta_in", sizeof(__u32),
				    sizeof(struct mas_meta), 1, &opts);
		break;
	case INNER_AGENTS:
		fd = bpf_map_create(BPF_MAP_TYPE_HASH, "mas_agents_in", sizeof(__u64),
				    sizeof(struct mas_agent_val), MAS_MAX_CGROUPS, &opts);
		break;
	case INNER_LPM4:
		opts.map_flags = BPF_F_NO_PREALLOC;
		fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "mas_lpm4_in",
				    sizeof(struct mas_lpm4_key), sizeof(struct mas_prefix_val),
				    MAS_MAX_PREFIXES, &opts);
		break;
	case INNER_CLASSES:
		fd = bpf_map_create(BPF_MAP_TYPE_HASH, "mas_classes_in", sizeof(__u32),
				    sizeof(struct mas_class), MAS_MAX_CLASSES, &opts);
		break;
	default:
		opts.map_flags = BPF_F_NO_PREALLOC;
		fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "mas_lpm6_in",
				    sizeof(struct mas_lpm6_key), sizeof(struct mas_prefix_val),
				    MAS_MAX_PREFIXES, &opts);
		break;
	}
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

/* One inner map put in the idle slot of its outer map. The kernel waits for an RCU grace period
 * (several ms) after every map-in-map update; run side by side, the waits share grace periods. */
struct slot_put {
	pthread_t thread;
	bool started;
	int outer_fd;
	uint32_t slot;
	int inner_fd;
	int r;
};

/* A helper thread with every signal blocked: signals are the event loop's, and a thread that
 * could take one would take its default action for the whole process (SIGHUP ends it). */
static bool thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r == 0;
}

static void *slot_put_run(void *arg)
{
	struct slot_put *s = arg;

	s->r = bpf_map_update_elem(s->outer_fd, &s->slot, &s->inner_fd, BPF_ANY) < 0 ? -errno : 0;
	return NULL;
}

static void slot_put_start(struct slot_put *s)
{
	s->started = thread_start(&s->thread, slot_put_run, s);
	if (!s->started)
		slot_put_run(s); /* no thread: the same update, waited for here */
}

static int slot_put_join(struct slot_put *s)
{
	if (s->started)
		pthread_join(s->thread, NULL);
	s->started = false;
	return s->r;
}

static void *slot_prep_run(void *arg)
{
	struct slot_prep *p = arg;
	struct slot_put puts[INNER_MAX] = { 0 };

	p->r = 0;
	p->graced = false;
	/* putting the slot in force's own meta map again changes nothing a program sees, and the
	 * update returns after a grace period */
	if (p->grace_fd >= 0 &&
	    bpf_map_update_elem(p->outer_fds[INNER_META], &p->active, &p->grace_fd, BPF_ANY) < 0) {
		p->r = -errno;
		return NULL;
	}
	p->graced = p->grace_fd >= 0;
	for (int i = 0; i < INNER_MAX && p->r == 0; i++)
		p->r = create_inner(i, &p->fds[i]);
	for (int i = 0; i < INNER_MAX && p->r == 0; i++) {
		puts[i] = (struct slot_put){ .outer_fd = p->outer_fds[i],
					     .slot = p->slot,
					     .inner_fd = p->fds[i] };
		slot_put_start(&puts[i]);
	}
	for (int i = 0; i < INNER_MAX; i++) {
		int r = slot_put_join(&puts[i]);

		if (r < 0 && p->r == 0)
			p->r = r;
	}
	if (p->r < 0)
		for (int i = 0; i < INNER_MAX; i++) {
			if (p->fds[i] >= 0)
				close(p->fds[i]);
			p->fds[i] = -1;
		}
	return NULL;
}

static void slot_prep_join(struct mas_enforcer *e)
{
	if (e->prep && e->prep->running) {
		pthread_join(e->prep->thread, NULL);
		e->prep->running = false;
	}
	if (e->prep && e->prep->graced)
		e->need_grace = false;
}

static void slot_prep_init(struct slot_prep *p, struct mas_enforcer *e, bool grace)
{
	p->active = e->active_slot;
	p->slot = e->active_slot ^ 1;
	p->grace_fd = grace && e->meta_fd >= 0 ? e->meta_fd : -1;
	p->graced = false;
	p->r = -EAGAIN; /* not ready until slot_prep_run() says so */
	for (int i = 0; i < INNER_MAX; i++)
		p->outer_fds[i] = bpf_map__fd(outer_at(e, i));
}

static void slot_prep_discard(struct slot_prep *p)
{
	for (int i = 0; i < INNER_MAX; i++) {
		if (p->fds[i] >= 0)
			close(p->fds[i]);
		p->fds[i] = -1;
	}
}

static void slot_prep_stop(struct mas_enforcer *e)
{
	if (!e->prep)
		return;
	slot_prep_join(e);
	slot_prep_discard(e->prep);
}

/* Start making the idle slot ready, after a grace period if programs may still run on it (it
 * was in force until a flip, or until masd started). Without a thread, the next apply does it. */
static void slot_prep_start(struct mas_enforcer *e)
{
	struct slot_prep *p = e->prep;

	slot_prep_join(e);
	slot_prep_discard(p);
	slot_prep_init(p, e, e->need_grace);
	p->running = thread_start(&p->thread, slot_prep_run, p);
}

/* The idle slot's fresh maps, waiting for the background preparation, or preparing them here
 * when it failed or never ran. The maps are the caller's to close. */
static int slot_prep_take(struct mas_enforcer *e, int fds[INNER_MAX])
{
	struct slot_prep *p = e->prep;

	slot_prep_join(e);
	if (p->r < 0 || p->slot != (e->active_slot ^ 1)) {
		slot_prep_discard(p);
		slot_prep_init(p, e, e->need_grace);
		slot_prep_run(p);
		if (p->graced)
			e->need_grace = false;
		if (p->r < 0)
			return p->r;
	}
	for (int i = 0; i < INNER_MAX; i++) {
		fds[i] = p->fds[i];
		p->fds[i] = -1;
	}
	p->r = -EAGAIN;
	return 0;
}

/* An entry of the agents map: an enrolled cgroup and its agent. */
struct enrolled_entry {
	__u64 cgroup_id;
	struct mas_agent_val val;
};

/* Fill a map with n entries in one bpf() call: 10,000 prefixes go in about twice as fast as
 * with one call each. keys and vals are copied out of n records of stride bytes; kernels
 * without batch updates for the map type get one call per entry. */
static int fill_map(int fd, const void *records, size_t n, size_t stride, size_t key_off,
		    size_t key_size, size_t val_off, size_t val_size)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	const char *rec = records;
	char *keys, *vals;
	__u32 count = (__u32)n;
	int r = 0;

	if (n == 0)
		return 0;
	keys = malloc(n * key_size);
	vals = malloc(n * val_size);
	if (keys && vals) {
		for (size_t i = 0; i < n; i++) {
			memcpy(keys + i * key_size, rec + i * stride + key_off, key_size);
			memcpy(vals + i * val_size, rec + i * stride + val_off, val_size);
		}
		r = bpf_map_update_batch(fd, keys, vals, &count, &opts) < 0 ? -errno : 0;
	}
	free(keys);
	free(vals);
	if (keys && vals && r != -EINVAL && r != -ENOTSUPP_ && r != -EOPNOTSUPP)
		return r;
	for (size_t i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, rec + i * stride + key_off, rec + i * stride + val_off,
					BPF_ANY) < 0)
			return -errno;
	return 0;
}

static bool class_known(const struct mas_compiled *c, uint32_t key)
{
	for (size_t i = 0; i < c->n_classes; i++)
		if (c->classes[i].key == key)
			return true;
	return false;
}

static bool agent_known(const struct mas_compiled *c, uint32_t id)
{
	for (size_t i = 0; i < c->n_agents; i++)
		if (c->agents[i].agent_id == id)
			return true;
	return false;
}

/* Delete the buckets whose class or agent the policy in force no longer has. A class that
 * comes back later starts full, as a new one does. Open-connection counts stay: their sockets
 * give them back as they close. A program that began before the flip may still take from such
 * a bucket, so when there is one to delete, a grace period is waited for first (only then: an
 * apply that removes no class or agent waits for none). */
static void prune_buckets(struct mas_enforcer *e, const struct mas_compiled *c)
{
	int fds[] = { bpf_map__fd(e->skel->maps.mas_buckets),
		      bpf_map__fd(e->skel->maps.mas_byte_buckets) };
	bool waited = !e->need_grace;

	for (size_t m = 0; m < sizeof(fds) / sizeof(fds[0]); m++) {
		struct mas_pair_key key, next, *prev = NULL;

		while (bpf_map_get_next_key(fds[m], prev, &next) == 0) {
			key = next;
			if (!class_known(c, key.key) || !agent_known(c, key.agent_id)) {
				if (!waited && e->meta_fd >= 0 &&
				    bpf_map_update_elem(bpf_map__fd(e->skel->maps.mas_meta),
							&e->active_slot, &e->meta_fd, BPF_ANY) == 0)
					e->need_grace = false; /* the slot left is free too */
				waited = true;
				if (bpf_map_delete_elem(fds[m], &key) == 0) {
					prev = NULL; /* restart: the walk's position went */
					continue;
				}
			}
			prev = &key;
		}
	}
}

int enforcer_apply(struct mas_enforcer *e, const struct mas_compiled *c,
		   const struct mas_enrolment *en, size_t n_en)
{
	int fds[INNER_MAX] = { -1, -1, -1, -1, -1 };
	uint32_t zero = 0, idle = e->active_slot ^ 1;
	struct mas_meta meta = c->meta;
	struct enrolled_entry *enrolled = NULL;
	uint64_t t0 = mono_usec(), t1, t2;
	int r = 0;

	/* fresh maps already in the idle slot, where no program reads */
	if ((r = slot_prep_take(e, fds)) < 0)
		goto out;
	t1 = mono_usec();
	meta.root_level = e->root_level;
	if (bpf_map_update_elem(fds[INNER_META], &zero, &meta, BPF_ANY) < 0)
		goto fail_errno;
	r = fill_map(fds[INNER_LPM4], c->v4, c->n_v4, sizeof(*c->v4),
		     offsetof(struct mas_lpm4_entry, key), sizeof(c->v4->key),
		     offsetof(struct mas_lpm4_entry, val), sizeof(c->v4->val));
	if (r == 0)
		r = fill_map(fds[INNER_LPM6], c->v6, c->n_v6, sizeof(*c->v6),
			     offsetof(struct mas_lpm6_entry, key), sizeof(c->v6->key),
			     offsetof(struct mas_lpm6_entry, val), sizeof(c->v6->val));
	if (r < 0)
		goto out;
	for (size_t i = 0; i < c->n_classes && r == 0; i++)
		if (bpf_map_update_elem(fds[INNER_CLASSES], &c->classes[i].key, &c->classes[i],
					BPF_ANY) < 0)
			r = -errno;
	if (r < 0)
		goto out;
	enrolled = calloc(n_en ? n_en : 1, sizeof(*enrolled));
	if (!enrolled) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_en; i++) {
		if (en[i].agent >= c->n_agents) {
			r = -EINVAL;
			goto out;
		}
		enrolled[i].cgroup_id = en[i].cgroup_id;
		enrolled[i].val = c->agents[en[i].agent];
	}
	r = fill_map(fds[INNER_AGENTS], enrolled, n_en, sizeof(*enrolled),
		     offsetof(struct enrolled_entry, cgroup_id), sizeof(enrolled->cgroup_id),
		     offsetof(struct enrolled_entry, val), sizeof(enrolled->val));
	if (r < 0)
		goto out;
	/* pinned before the flip, so a crash at any point leaves the slot in force reopenable */
	for (int i = 0; i < INNER_MAX; i++) {
		char path[PATH_MAX];

		if ((r = inner_pin_path(path, sizeof(path), e->bpffs_dir, idle, i)) < 0)
			goto out;
		if (unlink(path) < 0 && errno != ENOENT)
			goto fail_errno;
		if (bpf_obj_pin(fds[i], path) < 0)
			goto fail_errno;
	}
	t2 = mono_usec();
	/* the flip: one store that every program reads first */
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.mas_active), &zero, &idle, BPF_ANY) < 0)
		goto fail_errno;
	e->need_grace = true;
	e->active_slot = idle;
	e->generation = meta.generation;
	e->timing.wait_usec = t1 - t0;
	e->timing.fill_usec = t2 - t1;
	e->timing.flip_usec = mono_usec() - t2;
	if (e->agents_fd >= 0)
		close(e->agents_fd);
	e->agents_fd = fds[INNER_AGENTS];
	fds[INNER_AGENTS] = -1;
	if (e->meta_fd >= 0)
		close(e->meta_fd);
	e->meta_fd = fds[INNER_META];
	fds[INNER_META] = -1;
	/* the old slot is out of use: buckets of classes and agents it alone knew can go */
	prune_buckets(e, c);
	goto out;
fail_errno:
	r = -errno;
out:
	free(enrolled);
	for (int i = 0; i < INNER_MAX; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	/* programs that began before the flip may still run on the slot just left: the next apply
	 * may fill it only after a grace period, which passes in the background */
	slot_prep_start(e);
	return r;
}

int enforcer_enrol(struct mas_enforcer *e, uint64_t cgroup_id, const struct mas_agent_val *v)
{
	if (e->agents_fd < 0)
		return -ENOENT;
	return bpf_map_update_elem(e->agents_fd, &cgroup_id, v, BPF_ANY) < 0 ? -errno : 0;
}

int enforcer_unenrol(struct mas_enforcer *e, uint64_t cgroup_id)
{
	if (e->agents_fd < 0)
		return -ENOENT;
	if (bpf_map_delete_elem(e->agents_fd, &cgroup_id) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

bool enforcer_has_lsm(const struct mas_enforcer *e)
{
	return e->lsm;
}

struct enforcer_timing enforcer_last_timing(const struct mas_enforcer *e)
{
	return e->timing;
}

uint64_t enforcer_generation(const struct mas_enforcer *e)
{
	return e->generation;
}

uint32_t enforcer_root_level(const struct mas_enforcer *e)
{
	return e->root_level;
}

int enforcer_counters(struct mas_enforcer *e, struct mas_counter **ret, size_t *ret_n)
{
	int fd = bpf_map__fd(e->skel->maps.mas_counters), ncpu = libbpf_num_possible_cpus();
	struct mas_counter_key key, next, *prev = NULL;
	struct mas_counter *out = NULL;
	size_t n = 0, cap = 0;
	__u64 *vals;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		uint64_t sum = 0;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, vals) < 0)
			continue;
		for (int i = 0; i < ncpu; i++)
			sum += vals[i];
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct mas_counter *no = realloc(out, nc * sizeof(*out));

			if (!no) {
				free(out);
				free(vals);
				return -ENOMEM;
			}
			out = no;
			cap = nc;
		}
		out[n++] = (struct mas_counter){ .agent_id = key.agent_id,
						 .verdict = key.verdict,
						 .reason = key.reason,
						 .count = sum };
	}
	free(vals);
	*ret = out;
	*ret_n = n;
	return 0;
}

int enforcer_stat(struct mas_enforcer *e, uint32_t stat, uint64_t *ret)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;
	uint64_t sum = 0;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.mas_stats), &stat, vals) < 0) {
		free(vals);
		return -errno;
	}
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	free(vals);
	*ret = sum;
	return 0;
}

int enforcer_tokens(struct mas_enforcer *e, uint32_t agent_id, const struct mas_class *cls,
		    bool bytes, uint64_t *ret)
{
	struct mas_pair_key k = { .agent_id = agent_id, .key = cls->key };
	uint64_t cap =
		bytes ? cls->burst_bytes * MAS_BYTE_SCALE : (uint64_t)cls->burst * MAS_REQ_SCALE;
	uint64_t rate = bytes ? cls->bytes_per_second : cls->per_minute;
	uint64_t scale = bytes ? MAS_BYTE_SCALE : MAS_REQ_SCALE;
	struct mas_bucket b;
	struct timespec ts;

	if (bpf_map_lookup_elem(
		    bpf_map__fd(bytes ? e->skel->maps.mas_byte_buckets : e->skel->maps.mas_buckets),
		    &k, &b) < 0) {
		if (errno != ENOENT)
			return -errno;
		*ret = bytes ? cls->burst_bytes : cls->burst; /* untouched: full */
		return 0;
	}
	/* the kernel refills lazily: show what the next call would find (cost 0 takes nothing) */
	clock_gettime(CLOCK_BOOTTIME, &ts); /* the programs' bpf_ktime_get_boot_ns() */
	mas_bucket_take(&b.tokens, &b.last_ns,
			(uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, rate, cap, 0);
	*ret = b.tokens / scale;
	return 0;
}

int enforcer_open_conns(struct mas_enforcer *e, uint32_t agent_id, uint32_t dest_key, uint64_t *ret)
{
	struct mas_pair_key k = { .agent_id = agent_id, .key = dest_key };
	uint64_t n = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.mas_conns), &k, &n) < 0 &&
	    errno != ENOENT)
		return -errno;
	*ret = n;
	return 0;
}

int enforcer_events_fd(const struct mas_enforcer *e)
{
	return bpf_map__fd(e->skel->maps.mas_events);
}

static int create_flow_map(void)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "mas_flows_in",
				sizeof(struct mas_flow_key), sizeof(struct mas_flow_val),
				MAS_MAX_FLOWS, NULL);

	return fd < 0 ? -errno : fd;
}

/* Flow maps are pinned as flowsN beside the slot maps, and reopened by path (CAP_BPF). */
static int flow_pin_path(char *buf, size_t len, const char *dir, uint32_t slot)
{
	return snprintf(buf, len, "%s/flows%u", dir, slot) >= (int)len ? -ENAMETOOLONG : 0;
}

static int pin_flow(struct mas_enforcer *e, uint32_t slot, int fd)
{
	char path[PATH_MAX];
	int r;

	if ((r = flow_pin_path(path, sizeof(path), e->bpffs_dir, slot)) < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return bpf_obj_pin(fd, path) < 0 ? -errno : 0;
}

static int flow_inner_fd(struct mas_enforcer *e, uint32_t slot)
{
	uint32_t id = 0;
	char path[PATH_MAX];
	int fd, r;

	if ((r = flow_pin_path(path, sizeof(path), e->bpffs_dir, slot)) < 0)
		return r;
	fd = bpf_obj_get(path);
	if (fd >= 0)
		return fd;
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.mas_flows), &slot, &id) < 0)
		return -errno; /* ENOENT: none yet */
	/* an outer entry without its pin (pins of an older masd): by id, which needs
	 * CAP_SYS_ADMIN, then pinned so that this is the last time */
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	if ((r = pin_flow(e, slot, fd)) < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Both flow maps exist from the start (a pinned outer map keeps the ones it has). */
static int flows_init(struct mas_enforcer *e)
{
	for (uint32_t slot = 0; slot < 2; slot++) {
		int fd = flow_inner_fd(e, slot), r = 0;

		if (fd >= 0) {
			close(fd);
			continue;
		}
		if (fd != -ENOENT)
			return fd;
		if ((fd = create_flow_map()) < 0)
			return fd;
		r = pin_flow(e, slot, fd);
		if (r == 0 && bpf_map_update_elem(bpf_map__fd(e->skel->maps.mas_flows), &slot, &fd,
						  BPF_ANY) < 0)
			r = -errno;
		close(fd);
		if (r < 0)
			return r;
	}
	return 0;
}

static int flows_read(int fd, struct mas_flow **ret, size_t *ret_n)
{
	int ncpu = libbpf_num_possible_cpus();
	struct mas_flow_val *vals;
	struct mas_flow_key key, next, *prev = NULL;
	struct mas_flow *out = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct mas_flow *f;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, vals) < 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct mas_flow *no = realloc(out, nc * sizeof(*no));

			if (!no) {
				r = -ENOMEM;
				break;
			}
			out = no;
			cap = nc;
		}
		f = &out[n];
		memset(f, 0, sizeof(*f));
		f->k = key;
		for (int c = 0; c < ncpu; c++) {
			if (!vals[c].count)
				continue;
			f->count += vals[c].count;
			if (!f->first_ns || vals[c].first_ns < f->first_ns)
				f->first_ns = vals[c].first_ns;
			if (vals[c].last_ns > f->last_ns)
				f->last_ns = vals[c].last_ns;
		}
		if (f->count)
			n++;
	}
	free(vals);
	if (r < 0) {
		free(out);
		return r;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

int enforcer_flows_drain(struct mas_enforcer *e, struct mas_flow **ret, size_t *ret_n,
			 uint64_t *ret_lost)
{
	int outer = bpf_map__fd(e->skel->maps.mas_flows), ncpu = libbpf_num_possible_cpus();
	uint32_t zero = 0, cur = 0, nxt;
	int old_fd = -1, nxt_fd = -1, fresh = -1, r;
	uint64_t *lost = NULL, sum = 0;

	*ret = NULL;
	*ret_n = 0;
	*ret_lost = 0;
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.mas_flow_slot), &zero, &cur) < 0)
		return -errno;
	cur &= 1;
	nxt = cur ^ 1;
	if ((nxt_fd = flow_inner_fd(e, nxt)) < 0)
		return nxt_fd;
	if ((old_fd = flow_inner_fd(e, cur)) < 0) {
		r = old_fd;
		goto out;
	}
	if ((fresh = create_flow_map()) < 0) {
		r = fresh;
		goto out;
	}
	if ((r = pin_flow(e, cur, fresh)) < 0)
		goto out;
	/* the flip, then an update of the outer map: it returns after an RCU grace period, when
	 * no program still counts into the old map */
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.mas_flow_slot), &zero, &nxt, BPF_ANY) <
		    0 ||
	    bpf_map_update_elem(outer, &nxt, &nxt_fd, BPF_ANY) < 0 ||
	    bpf_map_update_elem(outer, &cur, &fresh, BPF_ANY) < 0) {
		r = -errno;
		goto out;
	}
	r = flows_read(old_fd, ret, ret_n);
	if (ncpu > 0 && (lost = calloc((size_t)ncpu, sizeof(*lost))) &&
	    bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.mas_flow_lost), &zero, lost) == 0) {
		for (int c = 0; c < ncpu; c++)
			sum += lost[c];
		*ret_lost = sum - e->flow_lost;
		e->flow_lost = sum;
	}
	free(lost);
out:
	if (nxt_fd >= 0)
		close(nxt_fd);
	if (old_fd >= 0)
		close(old_fd);
	if (fresh >= 0)
		close(fresh);
	return r;
}

int enforcer_teardown(struct mas_enforcer *e)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int r = 0;

	slot_prep_stop(e);
	for (size_t i = 0; i < sizeof(link_names) / sizeof(link_names[0]); i++) {
		struct bpf_link *link = e->links[i];

		e->links[i] = NULL;
		if (pin_path(path, sizeof(path), e->bpffs_dir, link_names[i]) < 0)
			continue;
		if (!link && access(path, F_OK) == 0)
			link = bpf_link__open(path);
		if (!link)
			continue;
		if (bpf_link__detach(link) < 0 && !r)
			r = -errno;
		bpf_link__destroy(link);
		if (unlink(path) < 0 && errno != ENOENT && !r)
			r = -errno;
	}
	bpf_object__for_each_map(map, e->skel->obj)
	{
		if (!bpf_map__is_internal(map) && bpf_map__is_pinned(map))
			bpf_map__unpin(map, NULL);
	}
	for (uint32_t slot = 0; slot < MAS_SLOTS; slot++) {
		for (int i = 0; i < INNER_MAX; i++)
			if (inner_pin_path(path, sizeof(path), e->bpffs_dir, slot, i) == 0)
				unlink(path);
		if (flow_pin_path(path, sizeof(path), e->bpffs_dir, slot) == 0)
			unlink(path);
	}
	if (rmdir(e->bpffs_dir) < 0 && errno != ENOENT && errno != EBUSY && !r)
		r = -errno;
	return r;
}

void enforcer_free(struct mas_enforcer *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < sizeof(e->links) / sizeof(e->links[0]); i++)
		bpf_link__destroy(e->links[i]); /* closes our fds; the pins keep the links */
	slot_prep_stop(e);
	free(e->prep);
	if (e->meta_fd >= 0)
		close(e->meta_fd);
	if (e->agents_fd >= 0)
		close(e->agents_fd);
	if (e->cgroup_fd >= 0)
		close(e->cgroup_fd);
	masd__destroy(e->skel);
	free(e->bpffs_dir);
	free(e);
}
