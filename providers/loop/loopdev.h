/* Loop devices through the kernel's loop ioctls. */
#pragma once
#include <stddef.h>
#include <sys/types.h>
#include "err.h"

/* Finds the loop device bound to the file open as image_fd; 1 and the path
 * in buf when found, 0 when none. */
int loopdev_find(int image_fd, char *buf, size_t size, struct fv_err *err);
/* Binds image_fd to a free loop device; the path goes to buf. */
int loopdev_attach(int image_fd, const char *label, char *buf, size_t size, struct fv_err *err);
/* The backing file of loop device devno ("" when unbound). */
int loopdev_backing_file(dev_t devno, char *buf, size_t size);
/* Releases the loop device devno (deferred by the kernel while it is in use). */
int loopdev_detach(dev_t devno, struct fv_err *err);
