/* Exclusive locks: flock on a file in the run dir, <run>/locks/<driver>/,
 * so concurrent calls on one thing serialise while others run in parallel.
 * The kernel drops the lock when the process dies, so nothing goes stale.
 * The core locks the kubelet path a call changes (fv_lock_path_key);
 * providers lock their own resources ("image:<dev>:<ino>", "disk:<id>"). */
#pragma once
#include <stddef.h>
#include "err.h"

/* Waits at most timeout_ms (and gives up on SIGTERM); key may have any
 * length. Returns the lock fd (close-on-exec, and closed in fv_fork_run's
 * children); closing it releases the lock. While held, the file holds
 * "<pid>\n<key>" (the holder's pid, a newline, the key; no newline after). */
int fv_lock_acquire(const char *run_dir, const char *driver, const char *key, long timeout_ms, struct fv_err *err);
/* The file name used for key: up to 200 escaped bytes, the key with safe
 * characters kept and others %XX-escaped, then ".lock"; longer keys give
 * "~<sha256 hex of the key>~<escaped tail>.lock". */
int fv_lock_file_name(const char *key, char *buf, size_t size);
/* In a forked child: closes every lock fd the parent holds, so that the
 * child never keeps a lock alive after the parent let go of it. */
void fv_lock_close_inherited(void);
/* The lock key of a kubelet path: absolute, with repeated '/', "." and a
 * trailing '/' taken out lexically (no symlink followed); ".." is refused. */
int fv_lock_path_key(const char *path, char *buf, size_t size, struct fv_err *err);
/* mkdir -p with mode for each missing component. */
int fv_mkdir_p(const char *path, unsigned int mode, struct fv_err *err);
