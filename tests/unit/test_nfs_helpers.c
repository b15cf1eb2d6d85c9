/* The core pieces the nfs driver bounds its waits with: fv_fork_run (work in
 * a child with a deadline) and fv_mounttab_find (the mount table, read
 * without touching the mounts). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "clock.h"
#include "fork.h"
#include "mounttab.h"
#include "tap.h"

struct answer {
	int value;
	pid_t pid;
	int stdout_is_null;
};

static int answer(void *arg, void *out, struct fv_err *err)
{
	(void)err;
	struct answer *a = out;
	struct stat out_st, null_st;
	a->value = *(int *)arg * 2;
	a->pid = getpid();
	a->stdout_is_null = fstat(STDOUT_FILENO, &out_st) == 0 && stat("/dev/null", &null_st) == 0 &&
			    out_st.st_rdev == null_st.st_rdev && S_ISCHR(out_st.st_mode);
	return 0;
}

static int fails(void *arg, void *out, struct fv_err *err)
{
	(void)arg, (void)out;
	return fv_err_msg(err, ENOTDIR, "the child says no");
}

static int sleeps(void *arg, void *out, struct fv_err *err)
{
	(void)arg, (void)out, (void)err;
	sleep(60);
	return 0;
}

static int dies(void *arg, void *out, struct fv_err *err)
{
	(void)arg, (void)out, (void)err;
	raise(SIGKILL);
	return 0;
}

int main(void)
{
	struct fv_err e = {0};
	int in = 21;
	struct answer a = {0};
	CHECK(fv_fork_run("answer", answer, &in, &a, sizeof(a), 5000, &e) == 0 && a.value == 42,
	      "the child's result comes back: %d", a.value);
	CHECK(a.pid != getpid() && a.pid > 0, "it ran in another process (%d)", (int)a.pid);
	CHECK(a.stdout_is_null, "the child's stdout is /dev/null, never kubelet's pipe");

	e = (struct fv_err){0};
	CHECK(fv_fork_run("refusal", fails, NULL, NULL, 0, 5000, &e) == -ENOTDIR && !strcmp(e.msg, "the child says no"),
	      "the child's error comes back as it worded it: %s", e.msg);

	e = (struct fv_err){0};
	int64_t t0 = fv_now_ms();
	int r = fv_fork_run("a nap", sleeps, NULL, NULL, 0, 300, &e);
	int64_t took = fv_now_ms() - t0;
	CHECK(r == -ETIMEDOUT && strstr(e.msg, "a nap did not finish within 1 s"), "a stuck child times out: %s", e.msg);
	CHECK(took >= 300 && took < 3000, "and is killed and reaped promptly (%lld ms)", (long long)took);

	e = (struct fv_err){0};
	CHECK(fv_fork_run("suicide", dies, NULL, NULL, 0, 5000, &e) == -EIO && strstr(e.msg, "died"),
	      "a child that dies without a report: %s", e.msg);

	struct fv_mount_entry me;
	e = (struct fv_err){0};
	CHECK(fv_mounttab_find("/proc", &me, &e) == 1 && !strcmp(me.fstype, "proc"), "/proc is a mount: %s %s",
	      me.fstype, e.msg);
	CHECK(fv_mounttab_find("/proc/", &me, &e) == 1, "a trailing slash is the same path");
	CHECK(fv_mounttab_find("/proc/self", &me, &e) == 0, "/proc/self is not a mount point");
	CHECK(fv_mounttab_find("/proc/nonexistent-entry", &me, &e) == 0, "a missing last component is looked up, not stat'ed");
	e = (struct fv_err){0};
	CHECK(fv_mounttab_find("/nonexistent-dir/x", &me, &e) == -ENOENT, "a missing parent: %s", e.msg);
	CHECK(fv_mounttab_find("relative", &me, &e) < 0, "a relative path is refused");
	return tap_done("test_nfs_helpers");
}
