/* SPDX-License-Identifier: GPL-2.0-only */
/* The cgroup2 tree as masd sees it: mount discovery, ids, unit lookup and inotify watches. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

#define CGROUP_MAX_DEPTH 12
#define CGROUP_MAX_WATCHES 65536

int cgroup_find_mount(char **ret_path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char mnt[PATH_MAX], *sep;

		/* id parent maj:min root mountpoint options ... - fstype source superopts */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		*ret_path = strdup(mnt);
		r = *ret_path ? 0 : -ENOMEM;
		break;
	}
	free(line);
	fclose(f);
	return r;
}

int cgroup_id(const char *path, uint64_t *ret_id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mnt;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mnt, 0) < 0)
		return -errno;
	if (h.fh.handle_bytes != sizeof(uint64_t))
		return -EINVAL;
	*ret_id = h.id;
	return 0;
}

int cgroup_level(const char *mount, const char *path, uint32_t *ret_level)
{
	char rm[PATH_MAX], rp[PATH_MAX];
	size_t n;
	uint32_t level = 0;

	if (!realpath(mount, rm) || !realpath(path, rp))
		return -errno;
	n = strlen(rm);
	if (strncmp(rm, rp, n) || (rp[n] && rp[n] != '/'))
		return -EINVAL;
	for (const char *s = rp + n; *s; s++)
		if (*s == '/' && s[1])
			level++;
	*ret_level = level;
	return 0;
}

/* Which of the sorted names equal name: the first index, or n when none does. */
static size_t find_name(const char *const *sorted, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(sorted[mid], name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !strcmp(sorted[lo], name) ? lo : n;
}

static int cmp_index(const void *x, const void *y, void *names)
{
	const char *const *u = names;

	return strcmp(u[*(const size_t *)x], u[*(const size_t *)y]);
}

/* One breadth-first walk below root for all the units at once: an apply with a thousand agents
 * reads the tree once, not a thousand times. The first match in walk order wins, as a walk per
 * unit would find it. */
int cgroup_find_units(const char *root, const char *const *units, size_t n, char **ret_paths)
{
	char **queue = NULL;
	const char **sorted = NULL;
	size_t head = 0, tail = 0, cap = 64, *order = NULL, left = n;
	int *depth = NULL, r = 0;

	for (size_t i = 0; i < n; i++)
		ret_paths[i] = NULL;
	if (n == 0)
		return 0;
	queue = malloc(sizeof(*queue) * cap);
	depth = malloc(sizeof(*depth) * cap);
	order = malloc(sizeof(*order) * n);
	sorted = malloc(sizeof(*sorted) * n);
	if (!queue || !depth || !order || !sorted) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), cmp_index, (void *)units);
	for (size_t i = 0; i < n; i++)
		sorted[i] = units[order[i]];
	queue[tail] = strdup(root);
	depth[tail++] = 0;
	while (head < tail && left > 0) {
		char *dir = queue[head];
		int dep = depth[head++];
		DIR *d;
		struct dirent *de;

		if (!dir) {
			r = -ENOMEM;
			goto out;
		}
		if (dep >= CGROUP_MAX_DEPTH)
			continue;
		d = opendir(dir);
		if (!d)
			continue; /* went away meanwhile */
		while ((de = readdir(d))) {
			char *sub;
			size_t k;

			if (de->d_type != DT_DIR || de->d_name[0] == '.')
				continue;
			if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0) {
				closedir(d);
				r = -ENOMEM;
				goto out;
			}
			/* every unit of that name (two agents may name one unit) */
			for (k = find_name(sorted, n, de->d_name);
			     k < n && !strcmp(sorted[k], de->d_name); k++) {
				if (ret_paths[order[k]])
					continue;
				ret_paths[order[k]] = strdup(sub);
				if (!ret_paths[order[k]]) {
					free(sub);
					closedir(d);
					r = -ENOMEM;
					goto out;
				}
				left--;
			}
			if (tail == cap) {
				char **nq = realloc(queue, sizeof(*queue) * cap * 2);
				int *nd;

				if (nq)
					queue = nq;
				nd = nq ? realloc(depth, sizeof(*depth) * cap * 2) : NULL;
				if (!nd) {
					free(sub);
					closedir(d);
					r = -ENOMEM;
					goto out;
				}
				depth = nd;
				cap *= 2;
			}
			queue[tail] = sub;
			depth[tail++] = dep + 1;
		}
		closedir(d);
	}
out:
	if (r < 0)
		for (size_t i = 0; i < n; i++) {
			free(ret_paths[i]);
			ret_paths[i] = NULL;
		}
	for (size_t i = 0; i < tail; i++)
		free(queue[i]);
	free(queue);
	free(depth);
	free(order);
	free(sorted);
	return r;
}

int cgroup_find_unit(const char *root, const char *unit, char **ret_path)
{
	char *path;
	int r = cgroup_find_units(root, &unit, 1, &path);

	if (r < 0)
		return r;
	if (!path)
		return -ENOENT;
	*ret_path = path;
	return 0;
}

struct cgroup_watch {
	int fd;
	size_t n_watches;
	char *root;
};

static int watch_tree(struct cgroup_watch *w, const char *dir, int depth)
{
	DIR *d;
	struct dirent *de;

	if (depth > CGROUP_MAX_DEPTH || w->n_watches >= CGROUP_MAX_WATCHES)
		return 0;
	if (inotify_add_watch(w->fd, dir,
			      IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR |
				      IN_DELETE_SELF) < 0)
		return errno == ENOENT ? 0 : -errno;
	w->n_watches++;
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *sub;
		int r;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0) {
			closedir(d);
			return -ENOMEM;
		}
		r = watch_tree(w, sub, depth + 1);
		free(sub);
		if (r < 0) {
			closedir(d);
			return r;
		}
	}
	closedir(d);
	return 0;
}

int cgroup_watch_new(const char *root, struct cgroup_watch **ret)
{
	struct cgroup_watch *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	w->root = strdup(root);
	r = w->root ? watch_tree(w, root, 0) : -ENOMEM;
	if (r < 0) {
		cgroup_watch_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

int cgroup_watch_fd(const struct cgroup_watch *w)
{
	return w->fd;
}

/* After a change the tree is walked again: new directories (and whatever was made below them
 * before their watch existed) get watches; adding a watch twice is harmless. */
int cgroup_watch_read(struct cgroup_watch *w)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int changed = 0;

	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				changed = 1;
			if (!(ev->mask & IN_ISDIR))
				continue;
			changed = 1;
		}
	}
	if (changed) {
		int r;

		w->n_watches = 0;
		r = watch_tree(w, w->root, 0);
		if (r < 0)
			return r;
	}
	return changed;
}

void cgroup_watch_free(struct cgroup_watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->root);
	free(w);
}
