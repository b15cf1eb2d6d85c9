/* Work that may block in the kernel for good (a stat or an unmount on a dead
 * NFS server, a mount in a private namespace) runs in a forked child that the
 * driver waits for with a deadline and kills when it passes. */
#pragma once
#include <stddef.h>
#include "err.h"

/* Runs in the child. out points to outsize zeroed bytes sent back to the
 * parent on success. Returns 0 or a negative error with err set. */
typedef int (*fv_fork_fn)(void *arg, void *out, struct fv_err *err);

/* Forks, runs fn(arg) in the child and waits at most timeout_ms for it (and
 * gives up on SIGTERM). The child has stdin and stdout on /dev/null (it must
 * never hold kubelet's pipe), is SIGKILLed if the driver dies, and may change
 * its own namespaces freely. On success out receives the child's out; on
 * failure err is the child's error, or a timeout naming what. A child that
 * outlives its deadline is SIGKILLed and reaped. */
int fv_fork_run(const char *what, fv_fork_fn fn, void *arg, void *out, size_t outsize, long timeout_ms,
		struct fv_err *err);
