/* Finding a cloud disk on the node by its serial, never by a remembered
 * /dev/sdX or /dev/vdX name (those change across reboots and re-attaches).
 *
 * A disk is looked for, in order:
 *  1. the candidate links in device_dir (udev's /dev/disk/by-id names, e.g.
 *     virtio-<id[:20]>, scsi-0QEMU_QEMU_HARDDISK_<id>, google-<name>); a link
 *     counts only if it leads to a block device whose sysfs serial, when the
 *     kernel exposes one, is in `serials` (a stale link is skipped);
 *  2. a scan of <sysfs_root>/block/<name>/ for serial, device/serial or
 *     device/vpd_pg80 equal to one of `serials` (udev may be slow, missing or
 *     have dropped the event).
 * fv_devwait_wait() repeats this, waking on inotify events in device_dir,
 * /dev and <sysfs_root>/block (with a slow timer as a safety net), and after
 * rescan_after_ms without a disk asks the kernel to look again (SCSI host
 * rescan, optionally `udevadm trigger`). It gives up at the timeout and on
 * SIGTERM (kubelet's waitforattach timeout).
 *
 * The cloud drivers differ only in the strings:
 *	cinder: links virtio-<id[:20]>, virtio-<id>, scsi-0QEMU_QEMU_HARDDISK_<id[:20]>, …, wwn-0x<hex id>;
 *		serials <id[:20]>, <id>
 *	gcepd:	links google-<dev>, scsi-0Google_PersistentDisk_<dev>; serials <dev>
 */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include "err.h"

struct fv_devwait {
	const char *device_dir;          /* by-id directory; NULL: /dev/disk/by-id */
	const char *const *links;        /* candidate names in device_dir, best first; NULL-terminated */
	const char *const *serials;      /* acceptable serials; NULL-terminated; NULL: no scan, no check */
	const char *sysfs_root;          /* NULL: /sys */
	const char *dev_dir;             /* kernel device nodes; NULL: /dev */
	long timeout_ms;                 /* fv_devwait_wait() only */
	long rescan_after_ms;            /* first rescan after this long without the disk; 0: never */
	long rescan_every_ms;            /* then again this often; 0: 30000 */
	bool scsi_rescan;                /* write "- - -" to <sysfs_root>/class/scsi_host/<host>/scan (each host) */
	const char *udevadm;             /* absolute path: run `udevadm trigger --action=add --subsystem-match=block`; NULL: don't */
};

enum fv_devwait_how { FV_DEV_BY_LINK, FV_DEV_BY_SERIAL };

struct fv_devwait_result {
	char path[PATH_MAX];             /* the stable path to hand on: the by-id link, or /dev/<kname> from the scan */
	char kname[NAME_MAX + 1];        /* kernel name, e.g. "vdb" */
	dev_t devno;                     /* st_rdev of the block device */
	enum fv_devwait_how how;
	int rescans;                     /* rescans fv_devwait_wait() triggered */
	long waited_ms;
};

/* One look, no waiting: 1 and *r filled when found, 0 when not, <0 on error. */
int fv_devwait_find(const struct fv_devwait *w, struct fv_devwait_result *r, struct fv_err *err);

/* Looks until found (0), the timeout passes (-ETIMEDOUT, with a message
 * naming what was looked for) or SIGTERM (-EINTR). */
int fv_devwait_wait(const struct fv_devwait *w, struct fv_devwait_result *r, struct fv_err *err);

/* The disk is present and `device` (a path the caller was handed, e.g. by
 * kubelet) is that same block device: 0 and *r filled; -ENODEV with a clear
 * message when the disk is absent or `device` is another device. An empty
 * device accepts whatever fv_devwait_find() finds. Use before formatting. */
int fv_devwait_verify(const struct fv_devwait *w, const char *device, struct fv_devwait_result *r,
		      struct fv_err *err);

/* The serial the kernel reports for block device kname (trailing blanks and
 * newline stripped): 1 when found, 0 when the kernel exposes none. */
int fv_devwait_serial(const char *sysfs_root, const char *kname, char *buf, size_t size);

/* Writes "- - -" to every <sysfs_root>/class/scsi_host/<host>/scan; returns the
 * number of hosts asked. Errors are logged, never fatal. */
int fv_devwait_scsi_rescan(const char *sysfs_root);

/* Asks a SCSI disk to re-read its capacity after the cloud grew it (virtio-blk
 * is told by the hypervisor). Best effort: a failure is only logged. */
void fv_devwait_rescan_capacity(const char *sysfs_root, const char *kname);
