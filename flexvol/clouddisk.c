#include "clouddisk.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "block.h"
#include "devwait.h"
#include "log.h"
#include "mount.h"
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

/* The driver state and the call's disk, from the options. */
static int describe(struct fv_ctx *ctx, const struct fv_call *call, const struct fv_clouddisk_driver **drv,
		    struct fv_clouddisk *d, struct fv_err *err)
{
	*drv = ctx->data;
	*d = (struct fv_clouddisk){0};
	return (*drv)->describe(call->opts, d, err);
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
	return 0;
}

int fv_clouddisk_op_mountdevice(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
				struct fv_err *err)
{
	(void)res;
	struct verified v;
	if (verified_disk(ctx, call, &v, err) < 0)
		return err->code;
	return fv_block_mount_device(v.dev, call->dir, v.d.fstype, v.d.readonly, err);
}

int fv_clouddisk_op_mount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	const struct fv_clouddisk_driver *drv;
	struct fv_clouddisk d;
	if (describe(ctx, call, &drv, &d, err) < 0)
		return err->code;
	return fv_mount_pod_from_global(call->dir, d.readonly, err);
}

int fv_clouddisk_op_expandfs(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			     struct fv_err *err)
{
	(void)res;
	struct verified v;
	if (verified_disk(ctx, call, &v, err) < 0)
		return err->code;
	fv_devwait_rescan_capacity(v.drv->conf.sysfs_root, v.r.kname);
	if (fv_block_grow_fs(v.dev, call->dir, err) < 0)
		return fv_err_prefix(err, "%s", v.d.what);
	return 0;
}
