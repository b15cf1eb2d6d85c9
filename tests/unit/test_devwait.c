/* Finding a disk by serial (flexvol/devwait.c) in a fake by-id dir and a
 * fake sysfs tree, with a real block device node of this machine as the
 * target (stat only: nothing is opened or written). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "clock.h"
#include "devwait.h"
#include "tap.h"

static char tmp[] = "/tmp/fv-devwait-XXXXXX";
static char byid[256], sysfs[256];

/* Two block device nodes of this machine, e.g. /dev/loop0 and /dev/loop1. */
static int find_block_devices(char names[2][64])
{
	DIR *d = opendir("/dev");
	int n = 0;
	for (struct dirent *e; d && n < 2 && (e = readdir(d));) {
		char p[300];
		struct stat st;
		snprintf(p, sizeof(p), "/dev/%s", e->d_name);
		if (e->d_name[0] != '.' && lstat(p, &st) == 0 && S_ISBLK(st.st_mode))
			snprintf(names[n++], 64, "%s", e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

static void put(const char *path, const void *data, size_t len)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
}

static void set_serial(const char *kname, const char *serial)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/block/%s/serial", sysfs, kname);
	if (!serial) {
		unlink(p);
		return;
	}
	char line[128];
	snprintf(line, sizeof(line), "%s\n", serial);
	put(p, line, strlen(line));
}

static void link_to(const char *name, const char *target)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", byid, name);
	unlink(p);
	if (target && symlink(target, p) < 0)
		abort();
}

int main(void)
{
	char dev[2][64];
	int ndev = find_block_devices(dev);
	if (!ndev || !mkdtemp(tmp)) {
		printf("1..0 # SKIP no block device node in /dev\n");
		return 0;
	}
	snprintf(byid, sizeof(byid), "%s/by-id", tmp);
	snprintf(sysfs, sizeof(sysfs), "%s/sys", tmp);
	mkdir(byid, 0755);
	char path0[128];
	snprintf(path0, sizeof(path0), "/dev/%s", dev[0]);
	struct stat st0;
	stat(path0, &st0);

	const char *links[] = {"virtio-6edbc2f4-1507-44f8-a", "wwn-0x6edbc2f4150744f8ac0deed1d2608d38", NULL};
	const char *serials[] = {"6edbc2f4-1507-44f8-a", "6edbc2f4-1507-44f8-ac0d-eed1d2608d38", NULL};
	struct fv_devwait w = {.device_dir = byid, .links = links, .serials = serials, .sysfs_root = sysfs};
	struct fv_devwait_result r;
	struct fv_err e = {0};

	CHECK(fv_devwait_find(&w, &r, &e) == 0, "nothing there: not found");

	link_to(links[1], path0);
	CHECK(fv_devwait_find(&w, &r, &e) == 1 && r.how == FV_DEV_BY_LINK && r.devno == st0.st_rdev,
	      "found through the second candidate link");
	CHECK(strstr(r.path, links[1]) && !strcmp(r.kname, dev[0]),
	      "the stable link is the path handed on (%s, %s)", r.path, r.kname);

	set_serial(dev[0], "someone-else");
	CHECK(fv_devwait_find(&w, &r, &e) == 0, "a link to a disk with another serial is stale: skipped");
	set_serial(dev[0], serials[0]);
	CHECK(fv_devwait_find(&w, &r, &e) == 1, "the same link with the right serial counts");
	link_to(links[1], NULL);

	CHECK(fv_devwait_find(&w, &r, &e) == 1 && r.how == FV_DEV_BY_SERIAL && !strcmp(r.path, path0),
	      "no link: found by the sysfs serial scan (%s)", r.path);
	set_serial(dev[0], NULL);

	/* SCSI: VPD page 0x80, a 4-byte header then the padded serial. */
	char vpd[64] = {0x00, (char)0x80, 0x00, 12};
	memcpy(vpd + 4, " pvc-1234   ", 12);
	char p[512];
	snprintf(p, sizeof(p), "%s/block/%s/device/vpd_pg80", sysfs, dev[0]);
	put(p, vpd, 16);
	char serial[64];
	CHECK(fv_devwait_serial(sysfs, dev[0], serial, sizeof(serial)) == 1 && !strcmp(serial, "pvc-1234"),
	      "serial from vpd_pg80: '%s'", serial);
	unlink(p);
	CHECK(fv_devwait_serial(sysfs, dev[0], serial, sizeof(serial)) == 0, "no serial exposed");

	/* Waiting: the link appears 300 ms in; inotify wakes us well before
	 * the one-second safety timer would. */
	w.timeout_ms = 5000;
	pid_t child = fork();
	if (child == 0) {
		fv_sleep_ms(300);
		link_to(links[0], path0);
		_exit(0);
	}
	int64_t t0 = fv_now_ms();
	int rc = fv_devwait_wait(&w, &r, &e);
	long took = (long)(fv_now_ms() - t0);
	waitpid(child, NULL, 0);
	CHECK(rc == 0 && strstr(r.path, links[0]), "found once it appeared");
	/* Without inotify the first look after the start would be at 1000 ms. */
	CHECK(took >= 250 && took < 950, "woken by inotify after %ld ms", took);
	link_to(links[0], NULL);

	/* The by-id dir itself appears later (first disk on a node). */
	char late[300];
	snprintf(late, sizeof(late), "%s/late/by-id", tmp);
	struct fv_devwait w2 = w;
	w2.device_dir = late;
	child = fork();
	if (child == 0) {
		fv_sleep_ms(300);
		char l[400];
		snprintf(l, sizeof(l), "%s/late", tmp);
		mkdir(l, 0755);
		mkdir(late, 0755);
		snprintf(l, sizeof(l), "%s/%s", late, links[0]);
		if (symlink(path0, l) < 0)
			_exit(1);
		_exit(0);
	}
	t0 = fv_now_ms();
	rc = fv_devwait_wait(&w2, &r, &e);
	took = (long)(fv_now_ms() - t0);
	waitpid(child, NULL, 0);
	CHECK(rc == 0 && took < 1500, "a by-id dir created meanwhile is watched too (%ld ms)", took);

	/* Never appears: bounded, a clear message, a SCSI rescan on the way. */
	snprintf(p, sizeof(p), "%s/class/scsi_host/host0/scan", sysfs);
	put(p, "", 0);
	w.timeout_ms = 700;
	w.rescan_after_ms = 200;
	w.scsi_rescan = true;
	t0 = fv_now_ms();
	rc = fv_devwait_wait(&w, &r, &e);
	took = (long)(fv_now_ms() - t0);
	CHECK(rc == -ETIMEDOUT && took >= 700 && took < 1700, "times out at 700 ms (%ld ms)", took);
	CHECK(strstr(e.msg, links[0]) && strstr(e.msg, serials[1]) && strstr(e.msg, "rescanned"),
	      "the message names what was looked for: %s", e.msg);
	char buf[16] = "";
	int fd = open(p, O_RDONLY);
	CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 5 && !strcmp(buf, "- - -"), "SCSI host asked to rescan");
	close(fd);
	CHECK(fv_devwait_scsi_rescan(sysfs) == 1, "one host");

	/* Verify: the path kubelet passed must be the disk with the serial. */
	link_to(links[0], path0);
	char lp[512];
	snprintf(lp, sizeof(lp), "%s/%s", byid, links[0]);
	CHECK(fv_devwait_verify(&w, lp, &r, &e) == 0, "the link itself");
	CHECK(fv_devwait_verify(&w, path0, &r, &e) == 0, "the kernel name of the same disk");
	CHECK(fv_devwait_verify(&w, "", &r, &e) == 0 && r.devno == st0.st_rdev, "no path given: whatever is found");
	CHECK(fv_devwait_verify(&w, "/dev/null", &r, &e) == -ENODEV && strstr(e.msg, "not a block device"),
	      "a character device: %s", e.msg);
	if (ndev > 1) {
		char path1[128];
		snprintf(path1, sizeof(path1), "/dev/%s", dev[1]);
		CHECK(fv_devwait_verify(&w, path1, &r, &e) == -ENODEV && strstr(e.msg, "is not this volume's disk"),
		      "another disk: %s", e.msg);
	}
	link_to(links[0], NULL);
	CHECK(fv_devwait_verify(&w, lp, &r, &e) == -ENODEV && strstr(e.msg, "not attached to this node"),
	      "no disk: %s", e.msg);

	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		return 1;
	return tap_done("test_devwait");
}
