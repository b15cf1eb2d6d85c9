/* Per-volume exclusive locks: flock on a file in the run dir, so concurrent
 * calls for one volume serialise while different volumes run in parallel.
 * The kernel drops the lock when the process dies, so nothing goes stale. */
#pragma once
#include <stddef.h>
#include "err.h"

/* Waits at most timeout_ms (and gives up on SIGTERM). Returns the lock fd;
 * closing it releases the lock. */
int fv_lock_acquire(const char *run_dir, const char *driver, const char *key, long timeout_ms, struct fv_err *err);
/* The file name used for key: safe characters kept, others %-escaped. */
int fv_lock_file_name(const char *key, char *buf, size_t size);
/* mkdir -p with mode for each missing component. */
int fv_mkdir_p(const char *path, unsigned int mode, struct fv_err *err);
