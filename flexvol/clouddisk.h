/* The node side of a block volume that a cloud attaches (cinder, gcepd):
 * its configuration keys and the operations waitforattach, mountdevice,
 * mount and expandfs. A driver only says, from a call's options, what its
 * disk is called (describe); finding it is devwait.c's job, formatting and
 * mounting block.c's and mount.c's. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include "config.h"
#include "block.h"
#include "err.h"
#include "flexvol.h"

/* kubelet kills waitforattach after 10 minutes: stay well inside that. */
#define FV_CLOUDDISK_MAX_WAIT_S 540
#define FV_CLOUDDISK_DEFAULT_DEVICE_DIR "/dev/disk/by-id"
#define FV_CLOUDDISK_MAX_LINKS 6
#define FV_CLOUDDISK_MAX_SERIALS 3

/* The keys every cloud driver reads from its configuration section. */
struct fv_clouddisk_conf {
	long attach_timeout_s;      /* attach-timeout: the cloud's calls; waitforattach, capped */
	long rescan_after_s;        /* rescan-after: without the disk this long, ask the kernel to look again */
	bool scsi_rescan;           /* scsi-rescan */
	char device_dir[PATH_MAX];  /* device-dir: udev's by-id links */
	char sysfs_root[PATH_MAX];  /* sysfs-root */
	char udevadm[PATH_MAX];     /* udevadm = auto | none | <path>; "" when none */
	bool allow_inline;          /* allow-inline: see fv_clouddisk_check_name() */
};

/* One volume's disk as the node sees it; filled by a driver's describe. */
struct fv_clouddisk {
	char what[160];             /* how messages name it, e.g. "volume <id>" */
	struct fv_block_spec spec;  /* the file system the options ask for */
	/* Names in device-dir (best first) and the serials the disk may show,
	 * added with fv_clouddisk_link() and fv_clouddisk_serial(); NULL-terminated. */
	const char *links[FV_CLOUDDISK_MAX_LINKS + 1];
	const char *serials[FV_CLOUDDISK_MAX_SERIALS + 1];
	char link_buf[FV_CLOUDDISK_MAX_LINKS][128];
	char serial_buf[FV_CLOUDDISK_MAX_SERIALS][64];
};

void fv_clouddisk_link(struct fv_clouddisk *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fv_clouddisk_serial(struct fv_clouddisk *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A driver's reading of a call's options: the disk, or <0 with err for bad input. */
typedef int (*fv_clouddisk_describe)(const struct fv_opts *opts, struct fv_clouddisk *d, struct fv_err *err);

/* Optional, for a driver whose disk names on the node derive from something
 * the options may forge (gcepd: the device name comes from the PV name):
 * proves from the cloud's own record of this machine's attached disks that
 * the disk found on the node under those names is the disk the options name.
 * 0: it is; 1: the cloud does not list it (yet), err says so; <0: it is
 * another disk, or the cloud could not be asked, with err. */
typedef int (*fv_clouddisk_confirm)(struct fv_ctx *ctx, const struct fv_opts *opts, struct fv_err *err);

/* The head of a cloud driver's ctx->data: the fv_clouddisk_op_* operations
 * find their configuration and the driver's hooks there. */
struct fv_clouddisk_driver {
	struct fv_clouddisk_conf conf;
	fv_clouddisk_describe describe;
	fv_clouddisk_confirm confirm; /* NULL: the names on the node are the disk's own (cinder: the volume ID) */
};

int fv_clouddisk_conf_load(const struct fv_config *c, const char *section, long default_attach_timeout_s,
			   struct fv_clouddisk_conf *conf, struct fv_err *err);

/* allow-inline = false: refuses a volume whose name a pod's inline volume
 * could have. Kubernetes cannot tell a driver whether a volume is inline or a
 * PV (the options are built alike); but an inline volume's name is a pod
 * volume name, which the API server only accepts as a DNS-1123 label
 * (a-z, 0-9, '-', at most 63), while a PV name may hold a '.'. So with
 * allow-inline = false every volume must be a PV whose name holds a '.' or is
 * longer than 63 characters; any other name is refused. Sound where the name
 * comes from kubelet's path (mountdevice, mount, expandfs); from the options
 * (attach, waitforattach) a pod can override it, and what it gets attached
 * is then never mounted. name NULL: refused too. */
int fv_clouddisk_check_name(const struct fv_clouddisk_conf *conf, const char *name, struct fv_err *err);

/* Provider operations, for a driver whose ctx->data starts with a struct
 * fv_clouddisk_driver. Where kubelet passes a path (mountdevice, mount,
 * expandfs), its last component is the volume's name as kubelet knows it,
 * and options whose kubernetes.io/pvOrVolumeName differs (a pod's options
 * override kubelet's keys) are refused. Every operation that hands out or
 * uses a disk runs the driver's confirm hook, if any, once.
 *  waitforattach: waits for the disk (attach-timeout, at most
 *	FV_CLOUDDISK_MAX_WAIT_S) and, with confirm, for the cloud to list it;
 *	replies its stable path; the path attach replied is only compared and
 *	logged;
 *  mountdevice: finds the disk again, refuses a device path that is another
 *	block device (kubelet may pass a stale one), then format-if-blank and
 *	mount on the global path; with the partition option, partition N of
 *	the disk (found in /sys), never formatted;
 *  mount: checks that the file system on the global path is on the disk the
 *	options name (an inline volume may be named like another volume on the
 *	node), then bind-mounts it into the pod dir (read-only for ro);
 *  expandfs: the same check as mountdevice (and that the path is mounted
 *	from that disk), a capacity re-read for SCSI disks, then the file
 *	system grown online on its mount point. */
int fv_clouddisk_op_waitforattach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
				  struct fv_err *err);
int fv_clouddisk_op_mountdevice(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
				struct fv_err *err);
/* unmountdevice: unmounts the global path, then closes the volume's
 * encrypted mapping if one is open (crypt.h). */
int fv_clouddisk_op_unmountdevice(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
				  struct fv_err *err);
int fv_clouddisk_op_mount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err);
int fv_clouddisk_op_expandfs(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			     struct fv_err *err);
