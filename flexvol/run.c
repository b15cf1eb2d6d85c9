#include "run.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int fv_run(const char *const argv[], long timeout_ms, char **output, struct fv_err *err)
{
	static char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
	const char *tool = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fv_err_set(err, errno, "cannot run %s", tool);
	_cleanup_close_ int rd = pipefd[0];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
	posix_spawnattr_init(&attr);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &none);
	/* Own process group: a timeout kills the child and everything it forked. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pipefd[1]);
	if (rc)
		return fv_err_set(err, rc, "cannot run %s", argv[0]);

	struct capture out = {0};
	int64_t deadline = fv_now_ms() + timeout_ms;
	bool timed_out = false, terminated = false;
	for (bool open = true; open;) {
		enum fv_wait w = fv_wait_readable(rd, deadline);
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
	if (timed_out || terminated)
		kill_group(pid);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* A grandchild may still hold the pipe after the child exits: kill the group. */
	kill(-pid, SIGKILL);
	log_output(tool, out.buf);

	int ret = 0;
	if (timed_out)
		ret = fv_err_msg(err, ETIMEDOUT, "%s did not finish within %ld s and was killed", tool,
				 timeout_ms / 1000);
	else if (terminated)
		ret = fv_err_msg(err, EINTR, "%s was killed: the driver received SIGTERM", tool);
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
