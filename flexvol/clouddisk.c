#include "clouddisk.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include "block.h"
#include "crypt.h"
#include "dmcrypt.h"
#include "devwait.h"
#include "log.h"
#include "mount.h"
#include "path.h"
#include "retry.h"
#include "run.h"

#define DEFAULT_RESCAN_AFTER_S 10

int fv_clouddisk_conf_load(const struct fv_config *c, const char *section, long default_attach_timeout_s,
			   struct fv_clouddisk_conf *conf, struct fv_err *err)
{
	if (fv_config_get_long(c, section, "attach-timeout", default_attach_timeout_s, 1, 3600, &conf->attach_timeout_s,
			       err) < 0 ||
	    fv_config_get_long(c, section, "rescan-after", DEFAULT_RESCAN_AFTER_S, 0, 600, &conf->rescan_after_s, err) <
		    0 ||
	    fv_config_get_bool(c, section, "scsi-rescan", true, &conf->scsi_rescan, err) < 0 ||
	    fv_config_get_bool(c, section, "allow-inline", true, &conf->allow_inline, err) < 0 ||
	    fv_config_get_path(c, section, "device-dir", FV_CLOUDDISK_DEFAULT_DEVICE_DIR, conf->device_dir, sizeof(conf->device_dir),
			       err) < 0 ||
	    fv_config_get_path(c, section, "sysfs-root", "/sys", conf->sysfs_root, sizeof(conf->sysfs_root), err) < 0)
		return err->code;
	const char *udevadm = fv_config_get(c, section, "udevadm", "auto");
	conf->udevadm[0] = '\0';
	if (!strcmp(udevadm, "auto")) {
		/* Optional: without udevadm the rescan is the SCSI one alone. */
		struct fv_err ignored = {0};
		if (fv_tool_path("udevadm", "udev", conf->udevadm, sizeof(conf->udevadm), &ignored) < 0)
			conf->udevadm[0] = '\0';
	} else if (strcmp(udevadm, "none") && *udevadm &&
		   fv_config_get_path(c, section, "udevadm", NULL, conf->udevadm, sizeof(conf->udevadm), err) < 0) {
		return err->code;
	}
	return 0;
}

/* A name the API server accepts for a pod's volume (IsDNS1123Label). */
static bool dns_label(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

int fv_clouddisk_check_name(const struct fv_clouddisk_conf *conf, const char *name, struct fv_err *err)
{
	if (conf->allow_inline)
		return 0;
	if (!name || !*name)
		return fv_err_msg(err, EPERM,
				  "the volume has no name, so it may be a pod's inline volume, and allow-inline is false");
	if (dns_label(name))
		return fv_err_msg(err, EPERM,
				  "volume '%.80s' may be a pod's inline volume (its name is one a pod's volume can have) and "
				  "allow-inline is false: name the PV with a '.' in it (e.g. 'db.%.60s'), which no inline volume "
				  "can have",
				  name, name);
	return 0;
}

/* Appends a printf-formatted name to a NULL-terminated list whose strings live
 * in buf, max slots of width bytes each. */
static void add_name(const char **list, char *buf, size_t width, int max, const char *fmt, va_list ap)
{
	int n = 0;
	while (n < max && list[n])
		n++;
	if (n == max)
		return; /* a driver bug, caught by its tests: the name is not looked for */
	char *slot = buf + (size_t)n * width;
	vsnprintf(slot, width, fmt, ap);
	list[n] = slot;
	list[n + 1] = NULL;
}

void fv_clouddisk_link(struct fv_clouddisk *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_name(d->links, d->link_buf[0], sizeof(d->link_buf[0]), FV_CLOUDDISK_MAX_LINKS, fmt, ap);
	va_end(ap);
}

void fv_clouddisk_serial(struct fv_clouddisk *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_name(d->serials, d->serial_buf[0], sizeof(d->serial_buf[0]), FV_CLOUDDISK_MAX_SERIALS, fmt, ap);
	va_end(ap);
}

static struct fv_devwait devwait_for(const struct fv_clouddisk_conf *conf, const struct fv_clouddisk *d,
				     long timeout_ms)
{
	return (struct fv_devwait){
		.device_dir = conf->device_dir,
		.links = d->links,
		.serials = d->serials,
		.sysfs_root = conf->sysfs_root,
		.timeout_ms = timeout_ms,
		.rescan_after_ms = conf->rescan_after_s * 1000,
		.scsi_rescan = conf->scsi_rescan,
		.udevadm = conf->udevadm[0] ? conf->udevadm : NULL,
	};
}

/* The name kubelet gave the volume: the last component of the path it
 * passed (global path or pod volume dir); NULL when the call has none. */
static const char *path_name(const char *dir, char *buf, size_t size)
{
	if (!dir || !*dir)
		return NULL;
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	size_t b = n;
	while (b && dir[b - 1] != '/')
		b--;
	if (n - b >= size)
		return NULL;
	memcpy(buf, dir + b, n - b);
	buf[n - b] = '\0';
	return buf;
}

/* The driver state and the call's disk, from the options. A pod's options
 * override kubelet's own keys: the name that selects a disk must be the one
 * in kubelet's path, which no volume spec can change. */
static int describe(struct fv_ctx *ctx, const struct fv_call *call, const struct fv_clouddisk_driver **drv,
		    struct fv_clouddisk *d, struct fv_err *err)
{
	*drv = ctx->data;
	*d = (struct fv_clouddisk){0};
	char buf[NAME_MAX + 1];
	const char *kubelet_name = path_name(call->dir, buf, sizeof(buf));
	const char *name = fv_opts_volume_name(call->opts);
	if (kubelet_name && name && strcmp(name, kubelet_name))
		return fv_err_msg(err, EPERM,
				  "option 'kubernetes.io/pvOrVolumeName' is '%.80s', but kubelet's path names the volume "
				  "'%.80s': volume options may not override it",
				  name, kubelet_name);
	if (fv_clouddisk_check_name(&(*drv)->conf, kubelet_name ? kubelet_name : name, err) < 0)
		return err->code;
	return (*drv)->describe(call->opts, d, err);
}

/* The driver's confirm hook, once: 0 confirmed (or no hook), <0 refused. */
static int confirm(struct fv_ctx *ctx, const struct fv_call *call, const struct fv_clouddisk_driver *drv,
		   const struct fv_clouddisk *d, struct fv_err *err)
{
	if (!drv->confirm)
		return 0;
	int rc = drv->confirm(ctx, call->opts, err);
	if (rc == 1)
		rc = err->code < 0 ? err->code : -ENODEV;
	return rc < 0 ? fv_err_prefix(err, "%s", d->what) : 0;
}

int fv_clouddisk_op_waitforattach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
				  struct fv_err *err)
{
	const struct fv_clouddisk_driver *drv;
	struct fv_clouddisk d;
	if (describe(ctx, call, &drv, &d, err) < 0)
		return err->code;
	long timeout_s = drv->conf.attach_timeout_s < FV_CLOUDDISK_MAX_WAIT_S ? drv->conf.attach_timeout_s
									     : FV_CLOUDDISK_MAX_WAIT_S;
	struct fv_devwait w = devwait_for(&drv->conf, &d, timeout_s * 1000);
	if (w.rescan_after_ms > timeout_s * 500)
		w.rescan_after_ms = timeout_s * 500; /* a short timeout still gets one rescan */
	struct fv_devwait_result r;
	if (fv_devwait_wait(&w, &r, err) < 0)
		return fv_err_prefix(err, "%s", d.what);
	if (drv->confirm) {
		/* The disk can show up on the node before the cloud's operation is
		 * done and lists it: wait for that within the same timeout. */
		struct fv_poll p;
		long left_ms = timeout_s * 1000 - r.waited_ms;
		fv_poll_start(&p, left_ms > 1000 ? left_ms : 1000, 250, 2000);
		int rc;
		while ((rc = drv->confirm(ctx, call->opts, err)) == 1) {
			struct fv_err last = *err;
			int s = fv_poll_sleep(&p);
			if (s == -EINTR)
				return fv_err_msg(err, EINTR, "%s: terminated by SIGTERM", d.what);
			if (s < 0) {
				*err = last;
				return fv_err_prefix(err, "%s: %s is on the node, but after %ld s", d.what, r.path,
						     timeout_s);
			}
		}
		if (rc < 0)
			return fv_err_prefix(err, "%s", d.what);
	}
	if (call->device && *call->device && strcmp(call->device, r.path))
		fv_log(LOG_INFO, "%s: attach suggested %s, the disk is %s", d.what, call->device, r.path);
	res->device = strdup(r.path);
	return res->device ? 0 : fv_err_set(err, ENOMEM, "waitforattach");
}

/* The call's disk, found again and checked against the device path kubelet
 * passed: a stale path must never be formatted or mounted. */
struct verified {
	const struct fv_clouddisk_driver *drv;
	struct fv_clouddisk d;
	struct fv_devwait_result r;
	char dev[PATH_MAX]; /* /dev/<kname> */
};

static int verified_disk(struct fv_ctx *ctx, const struct fv_call *call, struct verified *v, struct fv_err *err)
{
	if (describe(ctx, call, &v->drv, &v->d, err) < 0)
		return err->code;
	struct fv_devwait w = devwait_for(&v->drv->conf, &v->d, 0);
	if (fv_devwait_verify(&w, call->device, &v->r, err) < 0)
		return fv_err_prefix(err, "%s", v->d.what);
	if (!realpath(v->r.path, v->dev))
		return fv_err_set(err, errno, "cannot resolve '%s'", v->r.path);
	return confirm(ctx, call, v->drv, &v->d, err);
}

/* The block device the volume's file system is on: the disk (dev, its /dev
 * path), or with the partition option that partition of it, found in the
 * kernel's /sys (sysfs-root only fakes serials in tests; a partition is the
 * kernel's own). */
static int volume_device(const struct fv_clouddisk *d, const char *dev, char *out, size_t size, struct fv_err *err)
{
	if (!d->spec.partition) {
		snprintf(out, size, "%s", dev);
		return 0;
	}
	if (fv_block_partition("/sys", dev, d->spec.partition, out, size, err) < 0)
		return fv_err_prefix(err, "%s", d->what);
	return 0;
}

/* The file system on path, when path is a mount point, is on the volume's
 * device: the disk *r, or its partition. */
static int mounted_from(const char *path, const struct fv_clouddisk *d, const struct fv_devwait_result *r,
			struct fv_err *err)
{
	int m = fv_is_mountpoint(path, err);
	if (m <= 0)
		return m;
	dev_t have, want = r->devno;
	char disk[PATH_MAX], part[PATH_MAX];
	if (d->spec.partition) {
		if (!realpath(r->path, disk))
			return fv_err_set(err, errno, "cannot resolve '%s'", r->path);
		if (volume_device(d, disk, part, sizeof(part), err) < 0 || fv_block_devno(part, &want, err) < 0)
			return err->code;
	}
	if (fv_mounted_dev(path, &have, err) < 0)
		return err->code;
	fv_dmcrypt_lower(have, &have); /* encrypted: the disk is under the mapping */
	if (have != want)
		return fv_err_msg(err, EPERM,
				  "'%s' holds a file system on device %u:%u, not on %s (%s%s, %u:%u): another volume's "
				  "mount, refused",
				  path, major(have), minor(have), d->what, r->kname, d->spec.partition ? " partition" : "",
				  major(want), minor(want));
	return 0;
}

int fv_clouddisk_op_mountdevice(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
				struct fv_err *err)
{
	(void)res;
	struct verified v;
	char dev[PATH_MAX];
	if (verified_disk(ctx, call, &v, err) < 0 || volume_device(&v.d, v.dev, dev, sizeof(dev), err) < 0)
		return err->code;
	return fv_block_mount_device(dev, call->dir, &v.d.spec, err);
}

int fv_clouddisk_op_mount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	const struct fv_clouddisk_driver *drv;
	struct fv_clouddisk d;
	if (describe(ctx, call, &drv, &d, err) < 0)
		return err->code;
	/* kubelet binds the global path of the volume's name; a pod may name its
	 * inline volume like another volume on this node, whose disk is mounted
	 * there. Only the disk the options name may be handed on. */
	char global[PATH_MAX];
	if (fv_path_global_from_pod_dir(call->dir, global, sizeof(global), err) < 0)
		return err->code;
	int m = fv_is_mountpoint(global, err);
	if (m < 0 && err->code != -ENOENT)
		return m;
	if (m > 0) {
		struct fv_devwait w = devwait_for(&drv->conf, &d, 0);
		struct fv_devwait_result r;
		int found = fv_devwait_find(&w, &r, err);
		if (found < 0)
			return fv_err_prefix(err, "%s", d.what);
		if (!found)
			return fv_err_msg(err, ENODEV, "%s is not attached to this node, yet '%s' is mounted: refused", d.what,
					  global);
		if (mounted_from(global, &d, &r, err) < 0 || confirm(ctx, call, drv, &d, err) < 0)
			return err->code;
	}
	*err = (struct fv_err){0};
	return fv_mount_pod_from_global(call->dir, d.spec.readonly, err);
}

int fv_clouddisk_op_expandfs(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			     struct fv_err *err)
{
	(void)res;
	struct verified v;
	if (verified_disk(ctx, call, &v, err) < 0 || mounted_from(call->dir, &v.d, &v.r, err) < 0)
		return err->code;
	fv_devwait_rescan_capacity(v.drv->conf.sysfs_root, v.r.kname);
	/* With a partition, its file system grows to the partition's end only:
	 * flexvol never changes a partition table. */
	char dev[PATH_MAX];
	if (volume_device(&v.d, v.dev, dev, sizeof(dev), err) < 0)
		return err->code;
	if (fv_block_grow_fs(dev, call->dir, err) < 0)
		return fv_err_prefix(err, "%s", v.d.what);
	return 0;
}

/* Encryption at rest (crypt.h): unmounts, then closes the volume's mapping,
 * also when an earlier call was killed between the two. */
int fv_clouddisk_op_unmountdevice(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
				  struct fv_err *err)
{
	if (fv_op_unmount(ctx, call, res, err) < 0)
		return err->code;
	return fv_crypt_close(call->dir, err);
}
