/* Loop devices through the kernel's loop ioctls. Every device the driver
 * binds carries LO_FLAGS_AUTOCLEAR: the kernel releases it when its last
 * user (our own fd, mkfs, the mount) lets go, so no crash can leak one. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "err.h"

/* The file a loop device is bound to, as (st_dev, st_ino). */
struct loopdev_image {
	uint64_t dev;
	uint64_t ino;
};

/* Finds the loop device bound to the image; 1 with it held open as *dev_fd
 * and its path in buf, 0 when none. */
int loopdev_find(const struct loopdev_image *img, int *dev_fd, char *buf, size_t size, struct fv_err *err);
/* Binds image_fd to a free loop device with AUTOCLEAR; the open device fd
 * (close it once something else holds the device) and its path in buf. */
int loopdev_attach(int image_fd, const char *label, char *buf, size_t size, struct fv_err *err);
/* Opens loop device devno; -EINVAL with err when it is not a loop device. */
int loopdev_open(dev_t devno, struct fv_err *err);
/* The image the open loop device is bound to; -ENXIO when it is unbound. */
int loopdev_image_of(int dev_fd, struct loopdev_image *img, struct fv_err *err);
/* Marks the device AUTOCLEAR (adopts one bound without it): released when
 * its last user closes it. */
int loopdev_autoclear(int dev_fd, struct fv_err *err);
/* The backing file of loop device devno ("" when unbound). */
int loopdev_backing_file(dev_t devno, char *buf, size_t size);
/* Waits up to timeout_ms until loop device devno no longer has backing as its
 * backing file: 0 once released (or rebound), -ETIMEDOUT. */
int loopdev_wait_released(dev_t devno, const char *backing, long timeout_ms);
/* Makes the open loop device take its backing file's current size (after the
 * image grew): the file system on it can then grow online. */
int loopdev_set_capacity(int dev_fd, struct fv_err *err);
