/* Lock keys and lock files: kubelet paths as keys, any key length, names
 * that a chosen key cannot make collide, the holder recorded for `status`. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>
#include "lock.h"
#include "run.h"
#include "tap.h"

static char run_dir[] = "/tmp/flexvol-test-lock.XXXXXX";

static void key(const char *path, const char *want)
{
	char buf[4096];
	struct fv_err e = {0};
	int r = fv_lock_path_key(path, buf, sizeof(buf), &e);
	if (want)
		CHECK(r == 0 && !strcmp(buf, want), "'%s' locks as '%s' (%s)", path, want, r ? e.msg : buf);
	else
		CHECK(r < 0 && e.msg[0], "'%s' is refused: %s", path, e.msg);
}

int main(void)
{
	if (!mkdtemp(run_dir)) {
		perror("mkdtemp");
		return 1;
	}
	key("/var/lib/kubelet/pods/u/volumes/a~b/data", "/var/lib/kubelet/pods/u/volumes/a~b/data");
	key("//var/lib//kubelet/./pods/u/volumes/a~b/data/", "/var/lib/kubelet/pods/u/volumes/a~b/data");
	key("/", "/");
	key("/.//", "/");
	key("/var/lib/kubelet/pods/u/volumes/a~b/x/../data", NULL);
	key("var/lib/kubelet", NULL);
	key("/a/..", NULL);
	key("/a/...", "/a/...");

	char name[256], other[256];
	char long_key[300];
	memset(long_key, 'a', 253);
	long_key[253] = '\0';
	CHECK(fv_lock_file_name(long_key, name, sizeof(name)) == 0 && name[0] == '~' && strlen(name) < 256 &&
		      strstr(name, "aaaaaaaaaa.lock"),
	      "a 253-character key gets a digest name with a readable tail: %s", name);
	long_key[0] = 'b';
	CHECK(fv_lock_file_name(long_key, other, sizeof(other)) == 0 && strcmp(name, other),
	      "keys differing at the start (outside the tail) differ: %s", other);
	char path_key[512];
	snprintf(path_key, sizeof(path_key), "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/flexvol/loop/mounts/%s",
		 long_key);
	CHECK(fv_lock_file_name(path_key, name, sizeof(name)) == 0 && strlen(name) < 256, "a long path: %s", name);
	CHECK(fv_lock_file_name("~x", name, sizeof(name)) == 0 && !strcmp(name, "%7Ex.lock"),
	      "'~' is escaped in plain names, so they never look like digest names: %s", name);

	/* Any length locks, and the file names the holder. */
	static char huge[4001];
	memset(huge, 'k', sizeof(huge) - 1);
	huge[5] = '/';
	struct fv_err e = {0};
	int fd = fv_lock_acquire(run_dir, "t", huge, 1000, &e);
	CHECK(fd >= 0, "a 4000-byte key locks: %s", e.msg);
	char want[4100], got[4100] = "";
	snprintf(want, sizeof(want), "%ld\n%s", (long)getpid(), huge);
	ssize_t n = fd >= 0 ? pread(fd, got, sizeof(got) - 1, 0) : -1;
	if (n >= 0)
		got[n] = '\0';
	CHECK(!strcmp(got, want), "the lock file holds the pid and the key (%zd bytes)", n);
	e = (struct fv_err){0};
	int again = fv_lock_acquire(run_dir, "t", huge, 100, &e);
	CHECK(again == -ETIMEDOUT && strstr(e.msg, "still holds its lock"), "held: a second taker times out: %s",
	      e.msg);
	if (fd >= 0)
		close(fd);
	e = (struct fv_err){0};
	again = fv_lock_acquire(run_dir, "t", huge, 0, &e);
	CHECK(again >= 0, "released with its fd: %s", e.msg);
	if (again >= 0)
		close(again);

	const char *rm[] = {"/bin/rm", "-rf", run_dir, NULL};
	fv_run(rm, 10000, NULL, &e);
	return tap_done("test_lock");
}
