/* Child programs (mkfs, fsck, resize2fs, mount.nfs): posix_spawn with an argv
 * array and an absolute path, never a shell; a scrubbed environment; stdin
 * from /dev/null; stdout and stderr captured into the log (never kubelet's
 * pipe); its own process group, killed whole when the deadline passes. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "err.h"

/* Finds a tool in the system directories (not $PATH, which kubelet sets).
 * Fills buf with the absolute path; -ENOENT with a message naming the
 * package hint when missing. */
int fv_tool_path(const char *name, const char *package, char *buf, size_t size, struct fv_err *err);

/* Runs argv (argv[0] absolute) for at most timeout_ms. Returns 0 on exit
 * status 0; otherwise an error quoting the last line of the output. When
 * output is not NULL it receives everything the child printed (caller frees). */
int fv_run(const char *const argv[], long timeout_ms, char **output, struct fv_err *err);

/* Waits until fd is readable, the deadline (fv_now_ms() time) passes, or
 * SIGTERM arrives; wakes at least every 200 ms to notice the signal. */
enum fv_wait { FV_WAIT_READY, FV_WAIT_TIMEOUT, FV_WAIT_TERMINATED, FV_WAIT_ERROR };
enum fv_wait fv_wait_readable(int fd, int64_t deadline);
