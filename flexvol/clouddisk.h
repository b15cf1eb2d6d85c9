/* The node side of a block volume that a cloud attaches (cinder, gcepd):
 * its configuration keys, waitforattach, mountdevice and expandfs. A driver
 * says only what its disk is called; finding it is devwait.c's job,
 * formatting and mounting block.c's. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include "config.h"
#include "err.h"
#include "flexvol.h"

/* kubelet kills waitforattach after 10 minutes: stay well inside that. */
#define FV_CLOUDDISK_MAX_WAIT_S 540
#define FV_CLOUDDISK_DEFAULT_DEVICE_DIR "/dev/disk/by-id"

/* The keys every cloud driver reads from its configuration section. */
struct fv_clouddisk_conf {
	long attach_timeout_s;      /* attach-timeout: the cloud's calls; waitforattach, capped */
	long rescan_after_s;        /* rescan-after: without the disk this long, ask the kernel to look again */
	bool scsi_rescan;           /* scsi-rescan */
	char device_dir[PATH_MAX];  /* device-dir: udev's by-id links */
	char sysfs_root[PATH_MAX];  /* sysfs-root */
	char udevadm[PATH_MAX];     /* udevadm = auto | none | <path>; "" when none */
};

/* What one disk is called on the node. */
struct fv_clouddisk {
	const char *const *links;   /* names in device-dir, best first; NULL-terminated */
	const char *const *serials; /* the serials it may show; NULL-terminated */
	const char *what;           /* how messages name it, e.g. "volume <id>" */
};

int fv_clouddisk_conf_load(const struct fv_config *c, const char *section, long default_attach_timeout_s,
			   struct fv_clouddisk_conf *conf, struct fv_err *err);

/* waitforattach: waits for the disk (attach-timeout, at most
 * FV_CLOUDDISK_MAX_WAIT_S) and puts its stable path in res->device.
 * suggested: the path attach replied, only compared and logged. */
int fv_clouddisk_wait(const struct fv_clouddisk_conf *conf, const struct fv_clouddisk *d, const char *suggested,
		      struct fv_result *res, struct fv_err *err);

/* mountdevice: finds the disk again, refuses a `device` that is another block
 * device (kubelet may pass a stale path), then format-if-blank and mount. */
int fv_clouddisk_mount(const struct fv_clouddisk_conf *conf, const struct fv_clouddisk *d, const char *device,
		       const char *dir, const char *fstype, bool readonly, struct fv_err *err);

/* expandfs: the same check, a capacity re-read for SCSI disks, then the file
 * system grown online on its mount point. */
int fv_clouddisk_grow_fs(const struct fv_clouddisk_conf *conf, const struct fv_clouddisk *d, const char *device,
			 const char *mountpoint, struct fv_err *err);
