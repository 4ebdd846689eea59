/* SPDX-License-Identifier: GPL-2.0-only */
/* Crash-safe file writes (temp file, fsync, rename, fsync of the directory) and whole-file reads. */
#ifndef MAS_FILEIO_H
#define MAS_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Replace path with data atomically: a crash leaves the old file or the new one, never a mix.
 * mode applies to the new file; uid/gid (-1 to keep the caller's) set its owner. Returns 0 or a
 * negative errno. */
int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
			gid_t gid);

/* Read a whole regular file of at most max bytes into a NUL-terminated buffer the caller frees.
 * Returns 0, -EFBIG when larger than max, or another negative errno. */
int fileio_read_all(const char *path, size_t max, char **ret_buf, size_t *ret_len);

/* mkdir -p with the given mode for each created component. Returns 0 or a negative errno. */
int fileio_mkdir_p(const char *path, mode_t mode);

#endif
