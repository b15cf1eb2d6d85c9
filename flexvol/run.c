#include "run.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "flexvol.h"
#include "log.h"

int fv_tool_path(const char *name, const char *package, char *buf, size_t size, struct fv_err *err)
{
	/* FLEXVOL_TOOL_PATH (colon-separated) replaces the system directories:
	 * for nodes with programs elsewhere, and for tests. */
	const char *env = getenv("FLEXVOL_TOOL_PATH");
	const char *dirs = env && *env ? env : "/usr/sbin:/sbin:/usr/bin:/bin";
	for (const char *d = dirs; *d;) {
		size_t n = strcspn(d, ":");
		if (n && d[0] == '/' && (size_t)snprintf(buf, size, "%.*s/%s", (int)n, d, name) < size &&
		    access(buf, X_OK) == 0)
			return 0;
		d += n + (d[n] == ':');
	}
	return fv_err_msg(err, ENOENT, "%s is not installed on this node (not in %s; install the %s package)", name,
			  dirs, package);
}

struct capture {
	char *buf;
	size_t len, cap;
};

static void capture_append(struct capture *c, const char *data, size_t n)
{
	/* Keep at most 64 KiB: enough to explain a failure, bounded for a chatty child. */
	if (c->len + n > 65536)
		n = c->len < 65536 ? 65536 - c->len : 0;
	if (c->len + n + 1 > c->cap) {
		size_t cap = (c->len + n + 1) * 2;
		char *p = realloc(c->buf, cap);
		if (!p)
			return;
		c->buf = p;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	c->buf[c->len] = '\0';
}

static void log_output(const char *tool, const char *out)
{
	for (const char *line = out; line && *line;) {
		const char *nl = strchr(line, '\n');
		int n = nl ? (int)(nl - line) : (int)strlen(line);
		if (n)
			fv_log(LOG_INFO, "%s: %.*s", tool, n, line);
		line = nl ? nl + 1 : NULL;
	}
}

static const char *last_line(char *out)
{
	if (!out)
		return "";
	size_t n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	char *nl = strrchr(out, '\n');
	return nl ? nl + 1 : out;
}

enum fv_wait fv_wait_readable(int fd, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - fv_now_ms();
		if (left <= 0)
			return FV_WAIT_TIMEOUT;
		if (fv_terminated())
			return FV_WAIT_TERMINATED;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n = poll(&p, 1, left > 200 ? 200 : (int)left);
		if (n > 0)
			return FV_WAIT_READY;
		if (n < 0 && errno != EINTR)
			return FV_WAIT_ERROR;
	}
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

/* Until pid has exited, without reaping it: a zombie keeps its pid, so its
 * process group can still be killed safely by number. */
static enum fv_wait wait_exit(pid_t pid, int64_t deadline, bool honour_sigterm)
{
	for (long nap = 1;; nap = nap < 50 ? nap * 2 : 50) {
		siginfo_t si = {0};
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno == EINTR)
				continue;
			return FV_WAIT_ERROR;
		}
		if (si.si_pid == pid)
			return FV_WAIT_READY;
		if (honour_sigterm && fv_terminated())
			return FV_WAIT_TERMINATED;
		int64_t left = deadline - fv_now_ms();
		if (left <= 0)
			return FV_WAIT_TIMEOUT;
		fv_sleep_ms(left < nap ? (long)left : nap);
	}
}

bool fv_kill_and_reap(pid_t pid, int *status, const char *what)
{
	kill_group(pid);
	/* SIGKILL ends every killable wait at once; SIGTERM does not shorten this. */
	if (wait_exit(pid, fv_now_ms() + FV_REAP_GRACE_MS, false) != FV_WAIT_READY) {
		fv_log(LOG_WARNING, "%s: process %d did not exit after SIGKILL (stuck in the kernel)", what, (int)pid);
		return false;
	}
	kill(-pid, SIGKILL); /* what it forked, still in its group */
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return true;
}

/* The child between fork and exec: only async-signal-safe calls. */
static void __attribute__((noreturn)) exec_child(const char *const argv[], int out, int errpipe, pid_t parent)
{
	static char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
	/* Dies with the driver, and so never runs on unsupervised (a killed
	 * driver's mkfs must not go on writing after the lock is gone). The
	 * re-check covers a driver that died before prctl. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	/* Own process group: a timeout kills the child and everything it forked. */
	setpgid(0, 0);
	/* Every signal at its default (the driver ignores SIGPIPE: a tool that
	 * inherited that would spin on a closed pipe), none blocked. */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	for (int s = 1; s < NSIG; s++) {
		/* glibc refuses its two reserved real-time signals (EINVAL), yet
		 * one ignored by our parent would stay ignored across exec: ask the
		 * kernel directly. */
		struct kernel_sigaction {
			void (*handler)(int);
			unsigned long flags;
			void (*restorer)(void);
			uint64_t mask;
		} kdfl = {.handler = SIG_DFL};
		if (sigaction(s, &dfl, NULL) < 0 && errno == EINVAL && s != SIGKILL && s != SIGSTOP)
			syscall(SYS_rt_sigaction, s, &kdfl, NULL, sizeof(kdfl.mask));
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
		goto fail;
	/* Nothing else reaches the program: no lock, no socket, whatever the
	 * flags they were opened with (errpipe closes on exec, so it stays). */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	execve(argv[0], (char *const *)argv, env);
fail:;
	int e = errno;
	ssize_t n = write(errpipe, &e, sizeof(e));
	(void)n;
	_exit(127);
}

int fv_run(const char *const argv[], long timeout_ms, char **output, struct fv_err *err)
{
	const char *tool = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (argv[0][0] != '/')
		return fv_err_msg(err, EINVAL, "cannot run %s: not an absolute path", argv[0]);
	int64_t deadline = fv_now_ms() + timeout_ms;
	int pipefd[2], errfd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fv_err_set(err, errno, "cannot run %s", tool);
	if (pipe2(errfd, O_CLOEXEC) < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return fv_err_set(err, e, "cannot run %s", tool);
	}
	_cleanup_close_ int rd = pipefd[0];
	_cleanup_close_ int errrd = errfd[0];
	pid_t parent = getpid();
	/* fork, not posix_spawn: only a child of our own can set PR_SET_PDEATHSIG. */
	pid_t pid = fork();
	if (pid == 0)
		exec_child(argv, pipefd[1], errfd[1], parent);
	int fork_errno = errno;
	close(pipefd[1]);
	close(errfd[1]);
	if (pid < 0)
		return fv_err_set(err, fork_errno, "cannot run %s", tool);

	/* Did exec work? The error pipe closes on exec or brings its errno. */
	enum fv_wait w = fv_wait_readable(errrd, deadline);
	bool timed_out = w == FV_WAIT_TIMEOUT, terminated = w == FV_WAIT_TERMINATED;
	int exec_errno = 0;
	if (w == FV_WAIT_READY) {
		ssize_t n;
		while ((n = read(errrd, &exec_errno, sizeof(exec_errno))) < 0 && errno == EINTR)
			;
		if (n != (ssize_t)sizeof(exec_errno))
			exec_errno = 0;
	}

	struct capture out = {0};
	for (bool open = !exec_errno && w == FV_WAIT_READY; open;) {
		w = fv_wait_readable(rd, deadline);
		timed_out = w == FV_WAIT_TIMEOUT;
		terminated = w == FV_WAIT_TERMINATED;
		if (w != FV_WAIT_READY)
			break;
		char chunk[4096];
		ssize_t r = read(rd, chunk, sizeof(chunk));
		if (r > 0)
			capture_append(&out, chunk, (size_t)r);
		else if (r == 0 || errno != EINTR)
			open = false;
	}
	/* Its output closed: the exit itself gets what is left of the time (a
	 * child may close its output and go on, or be stuck in the kernel). */
	if (!timed_out && !terminated) {
		w = wait_exit(pid, deadline, true);
		timed_out = w == FV_WAIT_TIMEOUT;
		terminated = w == FV_WAIT_TERMINATED;
	}
	int status = 0;
	bool reaped = fv_kill_and_reap(pid, &status, tool);
	log_output(tool, out.buf);

	int ret = 0;
	if (exec_errno)
		ret = fv_err_set(err, exec_errno, "cannot run %s", argv[0]);
	else if (timed_out)
		ret = fv_err_msg(err, ETIMEDOUT, "%s did not finish within %ld s and was killed", tool,
				 timeout_ms / 1000);
	else if (terminated)
		ret = fv_err_msg(err, EINTR, "%s was killed: the driver received SIGTERM", tool);
	else if (!reaped)
		ret = fv_err_msg(err, EIO, "%s could not be waited for", tool);
	else if (WIFSIGNALED(status))
		ret = fv_err_msg(err, EIO, "%s was killed by signal %d", tool, WTERMSIG(status));
	else if (WEXITSTATUS(status))
		ret = fv_err_msg(err, EIO, "%s failed (exit status %d): %s", tool, WEXITSTATUS(status),
				 last_line(out.buf));
	if (output && ret == 0)
		*output = fv_steal_ptr(&out.buf);
	free(out.buf);
	return ret;
}
