#include "devwait.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "flexvol.h"
#include "log.h"
#include "retry.h"
#include "run.h"

#define SAFETY_POLL_MS 1000L
#define DEFAULT_RESCAN_EVERY_MS 30000L
#define UDEVADM_TIMEOUT_MS 30000L

static const char *device_dir(const struct fv_devwait *w)
{
	return w->device_dir && *w->device_dir ? w->device_dir : "/dev/disk/by-id";
}

static const char *sysfs_root(const struct fv_devwait *w)
{
	return w->sysfs_root && *w->sysfs_root ? w->sysfs_root : "/sys";
}

static const char *dev_dir(const struct fv_devwait *w)
{
	return w->dev_dir && *w->dev_dir ? w->dev_dir : "/dev";
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\0'))
		s[--n] = '\0';
	size_t lead = strspn(s, " \t");
	if (lead)
		memmove(s, s + lead, n - lead + 1);
}

static ssize_t read_small(const char *path, unsigned char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size);
	return n;
}

int fv_devwait_serial(const char *sysfs, const char *kname, char *buf, size_t size)
{
	char path[PATH_MAX];
	unsigned char raw[512];
	/* virtio-blk: block/<kname>/serial; some SCSI/NVMe drivers: device/serial. */
	static const char *const text_attrs[] = {"serial", "device/serial"};
	for (size_t i = 0; i < sizeof(text_attrs) / sizeof(text_attrs[0]); i++) {
		snprintf(path, sizeof(path), "%s/block/%s/%s", sysfs, kname, text_attrs[i]);
		ssize_t n = read_small(path, raw, sizeof(raw) - 1);
		if (n <= 0)
			continue;
		raw[n] = '\0';
		snprintf(buf, size, "%s", (char *)raw);
		trim(buf);
		if (*buf)
			return 1;
	}
	/* SCSI: VPD page 0x80 (unit serial number), 4-byte header then ASCII. */
	snprintf(path, sizeof(path), "%s/block/%s/device/vpd_pg80", sysfs, kname);
	ssize_t n = read_small(path, raw, sizeof(raw));
	if (n > 4 && raw[1] == 0x80) {
		size_t len = raw[3] < (size_t)n - 4 ? raw[3] : (size_t)n - 4;
		size_t o = 0;
		for (size_t i = 0; i < len && o + 1 < size; i++)
			buf[o++] = raw[4 + i] >= 0x20 && raw[4 + i] < 0x7f ? (char)raw[4 + i] : ' ';
		buf[o] = '\0';
		trim(buf);
		if (*buf)
			return 1;
	}
	return 0;
}

static bool serial_listed(const struct fv_devwait *w, const char *serial)
{
	for (const char *const *s = w->serials; s && *s; s++)
		if (!strcmp(*s, serial))
			return true;
	return false;
}

/* Fills r from a block device path; false when it is not a block device. */
static bool block_device(const char *path, dev_t *devno)
{
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode))
		return false;
	*devno = st.st_rdev;
	return true;
}

static int try_link(const struct fv_devwait *w, const char *name, struct fv_devwait_result *r)
{
	char link[PATH_MAX], target[PATH_MAX];
	if (snprintf(link, sizeof(link), "%s/%s", device_dir(w), name) >= (int)sizeof(link))
		return 0;
	if (!realpath(link, target))
		return 0;
	dev_t devno;
	if (!block_device(target, &devno))
		return 0;
	const char *kname = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	char serial[256];
	if (w->serials && fv_devwait_serial(sysfs_root(w), kname, serial, sizeof(serial)) > 0 &&
	    !serial_listed(w, serial)) {
		/* A link udev has not yet removed or retargeted: not our disk. */
		fv_log(LOG_WARNING, "ignoring stale link %s: %s has serial '%s'", link, target, serial);
		return 0;
	}
	snprintf(r->path, sizeof(r->path), "%s", link);
	snprintf(r->kname, sizeof(r->kname), "%s", kname);
	r->devno = devno;
	r->how = FV_DEV_BY_LINK;
	return 1;
}

static int scan_sysfs(const struct fv_devwait *w, struct fv_devwait_result *r)
{
	if (!w->serials || !w->serials[0])
		return 0;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/block", sysfs_root(w));
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int found = 0;
	for (struct dirent *e; !found && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char serial[256], dev[PATH_MAX];
		if (fv_devwait_serial(sysfs_root(w), e->d_name, serial, sizeof(serial)) <= 0 || !serial_listed(w, serial))
			continue;
		snprintf(dev, sizeof(dev), "%s/%s", dev_dir(w), e->d_name);
		dev_t devno;
		if (!block_device(dev, &devno))
			continue;
		snprintf(r->path, sizeof(r->path), "%s", dev);
		snprintf(r->kname, sizeof(r->kname), "%s", e->d_name);
		r->devno = devno;
		r->how = FV_DEV_BY_SERIAL;
		found = 1;
	}
	closedir(d);
	return found;
}

int fv_devwait_find(const struct fv_devwait *w, struct fv_devwait_result *r, struct fv_err *err)
{
	(void)err;
	for (const char *const *l = w->links; l && *l; l++)
		if (try_link(w, *l, r))
			return 1;
	return scan_sysfs(w, r);
}

/* "serial 'x' (or 'y') under /dev/disk/by-id (virtio-x, …) or in /sys/block" */
static void describe(const struct fv_devwait *w, char *buf, size_t size)
{
	size_t n = 0;
#define PUT(...)                                                                  \
	do {                                                                      \
		int k_ = snprintf(buf + n, n < size ? size - n : 0, __VA_ARGS__); \
		if (k_ > 0)                                                       \
			n += (size_t)k_;                                          \
	} while (0)
	PUT("a disk");
	for (const char *const *s = w->serials; s && *s; s++)
		PUT("%s '%s'", s == w->serials ? " with serial" : " or", *s);
	PUT(" (links under %s:", device_dir(w));
	for (const char *const *l = w->links; l && *l; l++)
		PUT("%s %s", l == w->links ? "" : ",", *l);
	if (w->serials && w->serials[0])
		PUT("; serials in %s/block", sysfs_root(w));
	PUT(")");
#undef PUT
	if (n >= size && size > 4)
		memcpy(buf + size - 4, "...", 4);
}

int fv_devwait_scsi_rescan(const char *sysfs)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/class/scsi_host", sysfs && *sysfs ? sysfs : "/sys");
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int asked = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char scan[PATH_MAX];
		snprintf(scan, sizeof(scan), "%s/%s/scan", path, e->d_name);
		int fd = open(scan, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			fv_log(LOG_WARNING, "cannot rescan SCSI host %s: %m", e->d_name);
			continue;
		}
		/* channel, target, lun all wildcards: what cloud-provider-openstack writes. */
		if (write(fd, "- - -", 5) != 5)
			fv_log(LOG_WARNING, "cannot rescan SCSI host %s: %m", e->d_name);
		else
			asked++;
		close(fd);
	}
	closedir(d);
	return asked;
}

static void rescan(const struct fv_devwait *w)
{
	if (w->scsi_rescan) {
		int n = fv_devwait_scsi_rescan(sysfs_root(w));
		fv_log(LOG_INFO, "disk not found yet: asked %d SCSI host%s to rescan", n, n == 1 ? "" : "s");
	}
	if (w->udevadm) {
		/* udev may have missed the event (kubernetes#7972): replay it for block devices. */
		const char *argv[] = {w->udevadm, "trigger", "--action=change", "--subsystem-match=block", NULL};
		struct fv_err e = {0};
		if (fv_run(argv, UDEVADM_TIMEOUT_MS, NULL, &e) < 0)
			fv_log(LOG_WARNING, "udevadm trigger: %s", e.msg);
	}
}

/* Watches dir, or its nearest existing ancestor (by-id may not exist before
 * the first disk shows up). Returns the watch descriptor; *exact tells
 * whether dir itself is watched. */
static int watch_dir(int ifd, const char *dir, bool *exact)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", dir);
	*exact = true;
	for (;;) {
		int wd = inotify_add_watch(ifd, path, IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE | IN_ONLYDIR);
		if (wd >= 0 || errno != ENOENT)
			return wd;
		*exact = false;
		char *slash = strrchr(path, '/');
		if (!slash || slash == path)
			return -1;
		*slash = '\0';
	}
}

int fv_devwait_wait(const struct fv_devwait *w, struct fv_devwait_result *r, struct fv_err *err)
{
	int64_t start = fv_now_ms(), deadline = start + w->timeout_ms;
	long every = w->rescan_every_ms > 0 ? w->rescan_every_ms : DEFAULT_RESCAN_EVERY_MS;
	int64_t next_rescan = w->rescan_after_ms > 0 ? start + w->rescan_after_ms : 0;
	_cleanup_close_ int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	bool byid_exact = false, dummy;
	char block[PATH_MAX];
	snprintf(block, sizeof(block), "%s/block", sysfs_root(w));
	if (ifd >= 0) {
		/* Set the watches before the first look, so nothing falls between. */
		watch_dir(ifd, device_dir(w), &byid_exact);
		watch_dir(ifd, dev_dir(w), &dummy);
		/* Real sysfs sends no events; a test's fake tree does. */
		watch_dir(ifd, block, &dummy);
	} else {
		fv_log(LOG_WARNING, "inotify unavailable (%m): polling for the disk");
	}
	*r = (struct fv_devwait_result){0};
	int rescans = 0, wakeups = 0;
	for (;;) {
		int f = fv_devwait_find(w, r, err);
		if (f < 0)
			return f;
		if (f > 0) {
			r->rescans = rescans;
			r->waited_ms = (long)(fv_now_ms() - start);
			fv_log(LOG_INFO, "found %s (%s) after %ld ms, %d wakeup%s, %d rescan%s", r->path, r->kname,
			       r->waited_ms, wakeups, wakeups == 1 ? "" : "s", rescans, rescans == 1 ? "" : "s");
			return 0;
		}
		if (fv_terminated())
			return fv_err_msg(err, EINTR, "terminated by SIGTERM while waiting for the disk");
		int64_t now = fv_now_ms();
		if (now >= deadline) {
			char what[1024];
			describe(w, what, sizeof(what));
			return fv_err_msg(err, ETIMEDOUT, "no disk appeared within %ld s: looked for %s%s",
					  w->timeout_ms / 1000, what, rescans ? ", rescanned" : "");
		}
		if (next_rescan && now >= next_rescan) {
			rescan(w);
			rescans++;
			next_rescan = now + every;
			continue;
		}
		int64_t wake = deadline;
		if (next_rescan && next_rescan < wake)
			wake = next_rescan;
		if (now + SAFETY_POLL_MS < wake)
			wake = now + SAFETY_POLL_MS;
		if (ifd < 0) {
			fv_sleep_checked((long)(wake - now));
			continue;
		}
		struct pollfd p = {.fd = ifd, .events = POLLIN};
		int n = poll(&p, 1, (int)(wake - now));
		if (n > 0) {
			char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
			while (read(ifd, buf, sizeof(buf)) > 0)
				;
			wakeups++;
			if (!byid_exact)
				watch_dir(ifd, device_dir(w), &byid_exact);
		}
	}
}

int fv_devwait_verify(const struct fv_devwait *w, const char *device, struct fv_devwait_result *r,
		      struct fv_err *err)
{
	*r = (struct fv_devwait_result){0};
	int f = fv_devwait_find(w, r, err);
	if (f < 0)
		return f;
	if (!f) {
		char what[1024];
		describe(w, what, sizeof(what));
		return fv_err_msg(err, ENODEV, "the disk is not attached to this node: no %s", what);
	}
	if (!device || !*device)
		return 0;
	dev_t devno;
	if (!block_device(device, &devno))
		return fv_err_msg(err, ENODEV, "'%s' is not a block device (the disk is %s)", device, r->path);
	if (devno != r->devno)
		return fv_err_msg(err, ENODEV, "'%s' (%u:%u) is not this volume's disk, which is %s (%s, %u:%u)", device,
				  major(devno), minor(devno), r->path, r->kname, major(r->devno), minor(r->devno));
	return 0;
}

void fv_devwait_rescan_capacity(const char *sysfs_root, const char *kname)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/block/%s/device/rescan", sysfs_root ? sysfs_root : "/sys", kname);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) != 1)
		fv_log(LOG_WARNING, "cannot rescan the capacity of %s: %m", kname);
	close(fd);
}
