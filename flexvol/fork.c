#include "fork.h"
#include "run.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "flexvol.h"
#include "lock.h"
#include "log.h"

struct report {
	int rc;
	struct fv_err err;
};

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void __attribute__((noreturn)) child_main(int wfd, pid_t parent, fv_fork_fn fn, void *arg, size_t outsize)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* A child stuck in the kernel must not keep a volume locked: the locks
	 * stay the parent's alone. Its own process group, killed whole. */
	fv_lock_close_inherited();
	setpgid(0, 0);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		close(null);
	}
	struct report r = {0};
	void *out = calloc(1, outsize ? outsize : 1);
	if (!out) {
		r.rc = fv_err_set(&r.err, ENOMEM, "child");
	} else {
		r.rc = fn(arg, out, &r.err);
		if (r.rc < 0 && !r.err.msg[0])
			fv_err_set(&r.err, -r.rc, "failed");
	}
	write_all(wfd, &r, sizeof(r));
	if (r.rc == 0)
		write_all(wfd, out, outsize);
	free(out);
	_exit(r.rc == 0 ? 0 : 1);
}

/* Bounded too: a child may stop between two writes. */
static bool read_all(int fd, void *buf, size_t n, int64_t deadline)
{
	char *p = buf;
	while (n) {
		if (fv_wait_readable(fd, deadline) != FV_WAIT_READY)
			return false;
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* Waits for pid up to ms; true when it was reaped. */
static bool reap(pid_t pid, long ms, int *status)
{
	int64_t deadline = fv_now_ms() + ms;
	for (long nap = 1;; nap = nap < 50 ? nap * 2 : 50) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return r == pid;
		if (fv_now_ms() >= deadline || fv_terminated())
			return false;
		fv_sleep_ms(nap);
	}
}

int fv_fork_run(const char *what, fv_fork_fn fn, void *arg, void *out, size_t outsize, long timeout_ms,
		struct fv_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return fv_err_set(err, errno, "%s", what);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return fv_err_set(err, e, "%s: cannot fork", what);
	}
	if (pid == 0) {
		close(p[0]);
		child_main(p[1], parent, fn, arg, outsize);
	}
	close(p[1]);
	_cleanup_close_ int rd = p[0];

	/* The report arrives as the child exits; EOF without one means it died. */
	int64_t deadline = fv_now_ms() + timeout_ms;
	enum fv_wait w = fv_wait_readable(rd, deadline);
	bool ready = w == FV_WAIT_READY, timed_out = w == FV_WAIT_TIMEOUT, terminated = w == FV_WAIT_TERMINATED;
	struct report r = {.rc = -EIO};
	bool got = ready && read_all(rd, &r, sizeof(r), deadline) && (r.rc < 0 || read_all(rd, out, outsize, deadline));
	int status = 0;
	/* Even after reporting, the exit itself may block (tearing down a private
	 * namespace unmounts what is in it): it gets what is left of the time. */
	int64_t left = deadline - fv_now_ms();
	if (!got || !reap(pid, left > 0 ? (long)left : 0, &status)) {
		fv_kill_and_reap(pid, &status, what);
	}
	if (timed_out)
		return fv_err_msg(err, ETIMEDOUT, "%s did not finish within %ld s", what, (timeout_ms + 999) / 1000);
	if (terminated)
		return fv_err_msg(err, EINTR, "%s was abandoned: the driver received SIGTERM", what);
	if (!got)
		return fv_err_msg(err, EIO, "%s: the child process died (status %d)", what, status);
	if (r.rc < 0) {
		*err = r.err;
		return r.rc;
	}
	return 0;
}
