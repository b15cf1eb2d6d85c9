/* Child programs and locks held around them: every wait bounded, children
 * start with default signal dispositions, die with the driver, and never
 * hold a lock. Real processes, no mocks. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include "clock.h"
#include "fork.h"
#include "lock.h"
#include "run.h"
#include "tap.h"

static char run_dir[] = "/tmp/flexvol-test-run.XXXXXX";

/* A process's state letter from /proc; 0 when it is gone. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' ? paren[2] : 0;
}

static bool dead(pid_t pid)
{
	char s = proc_state(pid);
	return s == 0 || s == 'Z' || s == 'X';
}

static pid_t first_child(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (pid_t)strtol(buf, NULL, 10);
}

static int lock_fd_is_closed(void *arg, void *out, struct fv_err *err)
{
	(void)out;
	int fd = *(int *)arg;
	if (fcntl(fd, F_GETFD) >= 0)
		return fv_err_msg(err, EBUSY, "the child holds lock fd %d", fd);
	return 0;
}

static void test_output_and_errors(void)
{
	struct fv_err e = {0};
	char *out = NULL;
	const char *echo[] = {"/bin/echo", "hello", NULL};
	CHECK(fv_run(echo, 5000, &out, &e) == 0 && out && !strcmp(out, "hello\n"), "output captured: %s",
	      out ? out : e.msg);
	free(out);
	const char *rel[] = {"echo", "x", NULL};
	e = (struct fv_err){0};
	CHECK(fv_run(rel, 5000, NULL, &e) == -EINVAL && strstr(e.msg, "absolute"), "a relative program is refused: %s",
	      e.msg);
	const char *missing[] = {"/nonexistent/tool", NULL};
	e = (struct fv_err){0};
	CHECK(fv_run(missing, 5000, NULL, &e) == -ENOENT && strstr(e.msg, "cannot run /nonexistent/tool"),
	      "a missing program is named: %s", e.msg);
	const char *fails[] = {"/bin/sh", "-c", "echo first; echo the reason; exit 3", NULL};
	e = (struct fv_err){0};
	CHECK(fv_run(fails, 5000, NULL, &e) == -EIO && strstr(e.msg, "exit status 3") && strstr(e.msg, "the reason"),
	      "a failure quotes the last line: %s", e.msg);
}

static void test_bounded_waits(void)
{
	struct fv_err e = {0};
	/* Closes its output and goes on: the old code waited in waitpid for it. */
	const char *quiet[] = {"/bin/sh", "-c", "exec >/dev/null 2>&1; exec /bin/sleep 30", NULL};
	int r = fv_run(quiet, 500, NULL, &e);
	CHECK(r == -ETIMEDOUT && strstr(e.msg, "did not finish"),
	      "a child that closes its output and sleeps is killed at the deadline: %d %s", r, e.msg);
	const char *stuck[] = {"/bin/sleep", "30", NULL};
	e = (struct fv_err){0};
	CHECK(fv_run(stuck, 300, NULL, &e) == -ETIMEDOUT, "a child that never ends is killed: %s", e.msg);
	/* A grandchild that keeps the output open ends with its group. */
	const char *forks[] = {"/bin/sh", "-c", "/bin/sleep 30 & exit 0", NULL};
	e = (struct fv_err){0};
	r = fv_run(forks, 500, NULL, &e);
	CHECK(r == -ETIMEDOUT, "a grandchild holding the output is killed with the group: %d %s", r, e.msg);
}

static void test_signals_start_at_default(void)
{
	/* The driver ignores SIGPIPE (fv_main); its children must not. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	const char *status[] = {"/bin/cat", "/proc/self/status", NULL};
	struct fv_err e = {0};
	char *out = NULL;
	unsigned long long ign = ~0ULL, blk = ~0ULL;
	if (fv_run(status, 5000, &out, &e) == 0) {
		const char *p = strstr(out, "SigIgn:");
		if (p)
			ign = strtoull(p + 7, NULL, 16);
		p = strstr(out, "SigBlk:");
		if (p)
			blk = strtoull(p + 7, NULL, 16);
	}
	free(out);
	CHECK(ign == 0, "the child ignores no signal (SigIgn %llx; SIGPIPE is bit %d)", ign, SIGPIPE - 1);
	CHECK(blk == 0, "the child blocks no signal (SigBlk %llx)", blk);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	signal(SIGPIPE, SIG_DFL);
}

static void test_no_lock_reaches_a_child(void)
{
	struct fv_err e = {0};
	int lock = fv_lock_acquire(run_dir, "t", "/var/lib/kubelet/pods/u/volumes/x~y/v", 1000, &e);
	CHECK(lock >= 0, "lock taken: %s", e.msg);
	e = (struct fv_err){0};
	int r = fv_fork_run("lock check", lock_fd_is_closed, &lock, NULL, 0, 5000, &e);
	CHECK(r == 0, "a forked child does not hold the parent's lock fd: %s", e.msg);
	char fdpath[64];
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", lock);
	const char *look[] = {"/usr/bin/test", "-e", fdpath, NULL};
	e = (struct fv_err){0};
	CHECK(fv_run(look, 5000, NULL, &e) == -EIO, "an exec'd child does not have it either: %s", e.msg);
	close(lock);
}

/* A driver SIGKILLed while its child runs: the child dies with it and the
 * lock is free once the kernel closed the driver's files. */
static void test_child_dies_with_the_driver(void)
{
	const char *key = "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/x/y/mounts/killed";
	pid_t driver = fork();
	if (driver == 0) {
		struct fv_err e = {0};
		if (fv_lock_acquire(run_dir, "t", key, 1000, &e) < 0)
			_exit(2);
		const char *sleeper[] = {"/bin/sleep", "1000", NULL};
		fv_run(sleeper, 600000, NULL, &e);
		_exit(1);
	}
	pid_t child = 0;
	for (int i = 0; i < 1000 && !child; i++) {
		fv_sleep_ms(10);
		pid_t c = first_child(driver);
		/* Wait for the exec: until then the child is a copy of us. */
		char exe[64], target[64] = "";
		snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)c);
		ssize_t n = c > 0 ? readlink(exe, target, sizeof(target) - 1) : -1;
		if (n > 0 && strstr(target, "sleep"))
			child = c;
	}
	CHECK(child > 0, "the driver's child runs (pid %d)", (int)child);
	kill(driver, SIGKILL);
	waitpid(driver, NULL, 0);
	bool gone = false;
	for (int i = 0; i < 500 && child > 0 && !(gone = dead(child)); i++)
		fv_sleep_ms(10);
	CHECK(gone, "the child died with the driver (state %c)", child > 0 ? proc_state(child) : '?');
	if (!gone && child > 0)
		kill(child, SIGKILL);
	struct fv_err e = {0};
	int lock = fv_lock_acquire(run_dir, "t", key, 0, &e);
	CHECK(lock >= 0, "the lock is free: %s", e.msg);
	if (lock >= 0)
		close(lock);
}

int main(void)
{
	if (!mkdtemp(run_dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_output_and_errors();
	test_bounded_waits();
	test_signals_start_at_default();
	test_no_lock_reaches_a_child();
	test_child_dies_with_the_driver();
	const char *rm[] = {"/bin/rm", "-rf", run_dir, NULL};
	struct fv_err e = {0};
	fv_run(rm, 10000, NULL, &e);
	return tap_done("test_run");
}
