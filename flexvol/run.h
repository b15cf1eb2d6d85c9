/* Child programs (mkfs, fsck, resize2fs, mount.nfs): fork and exec of an
 * absolute path with an argv array, never a shell; a scrubbed environment;
 * stdin from /dev/null; stdout and stderr captured into the log (never
 * kubelet's pipe); no other file descriptor (no lock reaches a child); every
 * signal at its default disposition; killed by the kernel when the driver
 * dies (PR_SET_PDEATHSIG); its own process group, killed whole when the
 * deadline passes or SIGTERM arrives, and reaped before fv_run returns. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>
#include "err.h"

/* Finds a tool in the system directories (not $PATH, which kubelet sets).
 * Fills buf with the absolute path; -ENOENT with a message naming the
 * package hint when missing. */
int fv_tool_path(const char *name, const char *package, char *buf, size_t size, struct fv_err *err);

/* How long a SIGKILLed child may take to be reaped: killable kernel waits end
 * at once, anything longer is an uninterruptible sleep we cannot end. */
#define FV_REAP_GRACE_MS 5000

/* Runs argv (argv[0] absolute) for at most timeout_ms, all waits included
 * (a child that closes its output and goes on is killed at the deadline). Returns 0 on exit
 * status 0; otherwise an error quoting the last line of the output. When
 * output is not NULL it receives everything the child printed (caller frees). */
int fv_run(const char *const argv[], long timeout_ms, char **output, struct fv_err *err);

/* Waits until fd is readable, the deadline (fv_now_ms() time) passes, or
 * SIGTERM arrives; wakes at least every 200 ms to notice the signal. */
enum fv_wait { FV_WAIT_READY, FV_WAIT_TIMEOUT, FV_WAIT_TERMINATED, FV_WAIT_ERROR };
enum fv_wait fv_wait_readable(int fd, int64_t deadline);

/* SIGKILLs pid and its process group and reaps pid, waiting at most
 * FV_REAP_GRACE_MS; false (logged, naming what) when it is stuck in the kernel. */
bool fv_kill_and_reap(pid_t pid, int *status, const char *what);
