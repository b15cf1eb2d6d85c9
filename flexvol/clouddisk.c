#include "clouddisk.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "block.h"
#include "devwait.h"
#include "log.h"
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

int fv_clouddisk_wait(const struct fv_clouddisk_conf *conf, const struct fv_clouddisk *d, const char *suggested,
		      struct fv_result *res, struct fv_err *err)
{
	long timeout_s = conf->attach_timeout_s < FV_CLOUDDISK_MAX_WAIT_S ? conf->attach_timeout_s
									 : FV_CLOUDDISK_MAX_WAIT_S;
	struct fv_devwait w = devwait_for(conf, d, timeout_s * 1000);
	if (w.rescan_after_ms > timeout_s * 500)
		w.rescan_after_ms = timeout_s * 500; /* a short timeout still gets one rescan */
	struct fv_devwait_result r;
	if (fv_devwait_wait(&w, &r, err) < 0)
		return fv_err_prefix(err, "%s", d->what);
	if (suggested && *suggested && strcmp(suggested, r.path))
		fv_log(LOG_INFO, "%s: attach suggested %s, the disk is %s", d->what, suggested, r.path);
	res->device = strdup(r.path);
	return res->device ? 0 : fv_err_set(err, ENOMEM, "waitforattach");
}

/* The disk, found again and checked against the path kubelet passed: a
 * stale path must never be formatted or mounted. dev: its /dev/<kname>. */
static int verified_disk(const struct fv_clouddisk_conf *conf, const struct fv_clouddisk *d, const char *device,
			 char dev[PATH_MAX], struct fv_devwait_result *r, struct fv_err *err)
{
	struct fv_devwait w = devwait_for(conf, d, 0);
	if (fv_devwait_verify(&w, device, r, err) < 0)
		return fv_err_prefix(err, "%s", d->what);
	if (!realpath(r->path, dev))
		return fv_err_set(err, errno, "cannot resolve '%s'", r->path);
	return 0;
}

int fv_clouddisk_mount(const struct fv_clouddisk_conf *conf, const struct fv_clouddisk *d, const char *device,
		       const char *dir, const char *fstype, bool readonly, struct fv_err *err)
{
	char dev[PATH_MAX];
	struct fv_devwait_result r;
	if (verified_disk(conf, d, device, dev, &r, err) < 0)
		return err->code;
	return fv_block_mount_device(dev, dir, fstype, readonly, err);
}

int fv_clouddisk_grow_fs(const struct fv_clouddisk_conf *conf, const struct fv_clouddisk *d, const char *device,
			 const char *mountpoint, struct fv_err *err)
{
	char dev[PATH_MAX];
	struct fv_devwait_result r;
	if (verified_disk(conf, d, device, dev, &r, err) < 0)
		return err->code;
	fv_devwait_rescan_capacity(conf->sysfs_root, r.kname);
	if (fv_block_grow_fs(dev, mountpoint, err) < 0)
		return fv_err_prefix(err, "%s", d->what);
	return 0;
}
