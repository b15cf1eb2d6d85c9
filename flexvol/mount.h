/* Mounts on libmount, and the checks kubelet's contract needs. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>
#include "err.h"

struct fv_config;

/* The node's mount policy, read once per call (main.c) from the driver's
 * section of its config: every fv_mount_fs and fv_mount_bind carries nosuid
 * and nodev unless allow-setuid / allow-devices = true; allowed-fstypes
 * (a,b,...) adds to ext4 and xfs the file systems a block volume with no
 * fsType may hold. Never a volume option: pod authors write those. */
int fv_mount_policy_load(const struct fv_config *c, const char *driver, struct fv_err *err);
/* ext4, xfs, or a type listed in allowed-fstypes. */
bool fv_mount_fstype_allowed(const char *fstype);

/* mount -t fstype -o options,nosuid,nodev source target (no helpers, no
 * mtab; the flags as the policy says). */
int fv_mount_fs(const char *source, const char *target, const char *fstype, const char *options, struct fv_err *err);
/* Bind source onto target with nosuid,nodev (as the policy says) and ro if
 * asked: a bind plus a remount carrying the flags, because the bind call
 * itself silently ignores them. */
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
