/* Mounts on libmount, and the checks kubelet's contract needs. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>
#include "err.h"

/* mount -t fstype -o options source target (no helpers, no mtab). */
int fv_mount_fs(const char *source, const char *target, const char *fstype, const char *options, struct fv_err *err);
/* Bind source onto target; read-only is a bind plus a read-only remount,
 * because MS_RDONLY on the bind call itself is silently ignored. */
int fv_mount_bind(const char *source, const char *target, bool readonly, struct fv_err *err);
/* Unmounts every mount stacked on target. Not mounted or missing: success.
 * A stale mount (ESTALE, ENOTCONN, EIO) is detached lazily. */
int fv_unmount(const char *target, struct fv_err *err);
/* 1 when path is the root of a mount, 0 when not, <0 on error. A path whose
 * stat fails with ESTALE/ENOTCONN/EIO is a corrupted mount and counts as 1.
 * Costs one statx, whatever the number of mounts on the node. */
int fv_is_mountpoint(const char *path, struct fv_err *err);
/* The device number of the file system mounted at path (st_dev). */
int fv_mounted_dev(const char *path, dev_t *dev, struct fv_err *err);
/* True when the mount is read-only. */
int fv_mount_is_readonly(const char *path, struct fv_err *err);

/* The mount step of an attachable volume: bind kubelet's global mount of the
 * volume (derived from pod_dir, see fv_path_global_from_pod_dir) onto the pod
 * volume dir, read-only if asked. Already bound from the same file system:
 * success. The global path not mounted: an error (mountdevice has not run). */
int fv_mount_pod_from_global(const char *pod_dir, bool readonly, struct fv_err *err);
