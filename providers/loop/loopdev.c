#include "loopdev.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "flexvol.h"

#define LOOP_MAJOR 7

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

int loopdev_find(const struct loopdev_image *img, int *dev_fd, char *buf, size_t size, struct fv_err *err)
{
	__attribute__((cleanup(closedirp))) DIR *d = opendir("/sys/block");
	if (!d)
		return fv_err_set(err, errno, "cannot list /sys/block");
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "loop", 4))
			continue;
		char dev[sizeof(e->d_name) + 8];
		snprintf(dev, sizeof(dev), "/dev/%s", e->d_name);
		/* Kept open when it matches: what we checked is what we use. */
		_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
		struct loop_info64 info = {0};
		if (fd < 0 || ioctl(fd, LOOP_GET_STATUS64, &info) < 0)
			continue; /* unbound, or gone meanwhile */
		if (info.lo_inode == img->ino && info.lo_device == img->dev) {
			if (info.lo_offset || info.lo_sizelimit)
				return fv_err_msg(err, EBUSY, "%s maps only part of the image (set up by someone else)",
						  dev);
			snprintf(buf, size, "%s", dev);
			*dev_fd = fv_steal_fd(&fd);
			return 1;
		}
	}
	return 0;
}

int loopdev_attach(int image_fd, const char *label, char *buf, size_t size, struct fv_err *err)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return fv_err_set(err, errno, "cannot open /dev/loop-control (is the loop module loaded?)");
	/* Another process may take the free device between the two ioctls: retry. */
	for (int attempt = 0; attempt < 16; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			return fv_err_set(err, errno, "no free loop device");
		snprintf(buf, size, "/dev/loop%d", n);
		_cleanup_close_ int fd = open(buf, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return fv_err_set(err, errno, "cannot open %s", buf);
		/* AUTOCLEAR in the same ioctl that binds: there is no moment in
		 * which a crash would leave the device bound for good. */
		struct loop_config cfg = {.fd = (unsigned)image_fd, .info.lo_flags = LO_FLAGS_AUTOCLEAR};
		snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", label);
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0)
			return fv_steal_fd(&fd);
		if (errno != EBUSY)
			return fv_err_set(err, errno, "cannot bind the image to %s", buf);
	}
	return fv_err_msg(err, EBUSY, "every free loop device was taken by someone else; try again");
}

int loopdev_open(dev_t devno, struct fv_err *err)
{
	if (major(devno) != LOOP_MAJOR)
		return fv_err_msg(err, EINVAL, "device %u:%u is not a loop device", major(devno), minor(devno));
	char dev[64];
	snprintf(dev, sizeof(dev), "/dev/loop%u", minor(devno));
	_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return fv_err_set(err, errno, "cannot open %s", dev);
	if (!S_ISBLK(st.st_mode) || st.st_rdev != devno)
		return fv_err_msg(err, EINVAL, "%s is not device %u:%u", dev, major(devno), minor(devno));
	return fv_steal_fd(&fd);
}

int loopdev_image_of(int dev_fd, struct loopdev_image *img, struct fv_err *err)
{
	struct loop_info64 info = {0};
	if (ioctl(dev_fd, LOOP_GET_STATUS64, &info) < 0)
		return fv_err_set(err, errno, "cannot read the loop device's status");
	*img = (struct loopdev_image){.dev = info.lo_device, .ino = info.lo_inode};
	return 0;
}

int loopdev_autoclear(int dev_fd, struct fv_err *err)
{
	struct loop_info64 info = {0};
	if (ioctl(dev_fd, LOOP_GET_STATUS64, &info) < 0)
		return fv_err_set(err, errno, "cannot read the loop device's status");
	if (info.lo_flags & LO_FLAGS_AUTOCLEAR)
		return 0;
	info.lo_flags |= LO_FLAGS_AUTOCLEAR;
	if (ioctl(dev_fd, LOOP_SET_STATUS64, &info) < 0)
		return fv_err_set(err, errno, "cannot mark the loop device for release");
	return 0;
}

int loopdev_backing_file(dev_t devno, char *buf, size_t size)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file", major(devno), minor(devno));
	buf[0] = '\0';
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ssize_t n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return 0;
}

int loopdev_wait_released(dev_t devno, const char *backing, long timeout_ms)
{
	int64_t end = fv_now_ms() + timeout_ms;
	char now[4096];
	for (;;) {
		if (loopdev_backing_file(devno, now, sizeof(now)) < 0 || strcmp(now, backing))
			return 0;
		if (fv_now_ms() >= end || fv_terminated())
			return -ETIMEDOUT;
		fv_sleep_ms(5);
	}
}

int loopdev_set_capacity(int dev_fd, struct fv_err *err)
{
	if (ioctl(dev_fd, LOOP_SET_CAPACITY, 0) < 0)
		return fv_err_set(err, errno, "cannot refresh the loop device's size (LOOP_SET_CAPACITY)");
	return 0;
}
