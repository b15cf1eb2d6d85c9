/* gcepd: Google Compute Engine persistent disks. The controller-manager
 * attaches them to the node's instance (attach, detach, isattached,
 * expandvolume) under a deviceName derived from the PV name, so that detach,
 * which kubelet gives only the PV name, needs no stored state. The node finds
 * the disk by that name (waitforattach: udev's by-id links, else the sysfs
 * serial), formats it if blank and mounts it on the global path
 * (mountdevice), bind-mounts it into pods (mount) and grows the file system
 * (expandfs). The device name derives from a name a pod's options can
 * choose, so node-side calls also ask the compute API which disk the
 * instance has under it (confirm_disk) and hand out nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "clouddisk.h"
#include "cryptconf.h"
#include "flexvol.h"
#include "lock.h"
#include "log.h"
#include "mount.h"
#include "retry.h"
#include "gce.h"
#include "gceutil.h"
#include "gcepd.h"

#define SECTION "gcepd"
#define DEFAULT_ATTACH_TIMEOUT_S 300
#define GIB (1024ULL * 1024 * 1024)
#define POLL_FIRST_MS 250
#define POLL_MAX_MS 1000
#define IN_USE_CODE "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"
#define IN_USE_REASON "resourceInUseByAnotherResource"
/* GCE: up to 128 persistent disks per instance for most machine types, the
 * boot disk included (fewer on shared-core ones: set max-volumes there). */
#define DEFAULT_MAX_VOLUMES 128
#define MAX_ZONES 16

struct gcepd {
	struct fv_clouddisk_driver node; /* first: the core's node-side operations read it */
	struct gce_conf gce;
	struct fv_ctx *ctx;
	struct gce_client *client;
	bool confirmed;                  /* this call's disk is proven to be pdName's */
	long max_volumes;                /* disks an instance may have, the boot disk included */
	/* [gcepd] zones: where else attach looks for a disk not in the node's
	 * zone or region, to refuse it naming its zone. Empty: auto. */
	char zones[MAX_ZONES][GCE_NAME_MAX + 1];
	size_t n_zones;
};

/* zones = auto | a,b,c */
static int zones_load(const struct fv_config *c, struct gcepd *gd, struct fv_err *err)
{
	const char *v = fv_config_get(c, SECTION, "zones", "auto");
	if (!strcmp(v, "auto") || !*v)
		return 0;
	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ",");
		while (n && p[n - 1] == ' ')
			n--;
		char z[GCE_NAME_MAX + 1];
		if (n > GCE_NAME_MAX || gd->n_zones == MAX_ZONES)
			return fv_err_msg(err, EINVAL, "configuration '%s': [" SECTION "] zones: at most %d zone names",
					  fv_config_path(c), MAX_ZONES);
		snprintf(z, sizeof(z), "%.*s", (int)n, p);
		if (!gce_valid_name(z))
			return fv_err_msg(err, EINVAL,
					  "configuration '%s': [" SECTION "] zones: '%s' is not a zone name (e.g. us-central1-b)",
					  fv_config_path(c), z);
		snprintf(gd->zones[gd->n_zones++], GCE_NAME_MAX + 1, "%s", z);
		p += strcspn(p, ",");
		while (*p == ',' || *p == ' ')
			p++;
	}
	return 0;
}

static int describe_disk(const struct fv_opts *o, struct fv_clouddisk *d, struct fv_err *err);
static int confirm_disk(struct fv_ctx *ctx, const struct fv_opts *o, struct fv_err *err);

/* --- configuration --- */

static int gcepd_setup(struct fv_ctx *ctx, struct fv_err *err)
{
	struct gcepd *gd = calloc(1, sizeof(*gd));
	if (!gd)
		return fv_err_set(err, ENOMEM, "gcepd setup");
	ctx->data = gd;
	gd->ctx = ctx;
	gd->node.describe = describe_disk;
	gd->node.confirm = confirm_disk;
	const struct fv_config *c = ctx->config;
	if (gce_conf_load(c, SECTION, &gd->gce, err) < 0)
		return err->code;
	if (fv_clouddisk_conf_load(c, SECTION, DEFAULT_ATTACH_TIMEOUT_S, &gd->node.conf, err) < 0 ||
	    fv_config_get_long(c, SECTION, "max-volumes", DEFAULT_MAX_VOLUMES, 1, 4096, &gd->max_volumes, err) < 0 ||
	    zones_load(c, gd, err) < 0)
		return err->code;
	return 0;
}

static void gcepd_teardown(struct fv_ctx *ctx)
{
	struct gcepd *gd = ctx->data;
	if (!gd)
		return;
	gce_client_free(gd->client);
	gce_conf_free(&gd->gce);
	free(gd);
	ctx->data = NULL;
}

static void gcepd_capabilities(struct fv_ctx *ctx, struct fv_caps *caps)
{
	(void)ctx;
	/* Metrics: kubelet statfs()es the pod volume dir, a mount of the disk's file system. */
	*caps = (struct fv_caps){.attach = true, .selinux_relabel = true, .supports_metrics = true, .fs_group = true,
				 .requires_fs_resize = true};
}

/* The API client, made on first use so that node-side calls need no
 * credentials; all its requests end by deadline_ms. */
static struct gce_client *client(struct gcepd *gd, int64_t deadline_ms, struct fv_err *err)
{
	if (!gd->client && !(gd->client = gce_client_new(gd->ctx, &gd->gce, err)))
		return NULL;
	gce_client_set_deadline(gd->client, deadline_ms);
	return gd->client;
}

/* --- options --- */

struct volume {
	const char *pd;                 /* pdName: the GCE disk */
	const char *pv;                 /* kubernetes.io/pvOrVolumeName */
	char dev[GCE_NAME_MAX + 1];     /* the deviceName it is attached under */
	struct fv_block_spec spec;     /* fsType, readwrite */
};

static int parse_volume(const struct fv_opts *o, struct volume *v, struct fv_err *err)
{
	static const char *const known[] = {"pdName", NULL};
	if (fv_opts_check_known(o, known, fv_block_spec_keys, err) < 0)
		return err->code;
	v->pd = fv_opts_get(o, "pdName");
	if (!v->pd || !*v->pd)
		return fv_err_msg(err, EINVAL, "option 'pdName' is required (the name of the GCE persistent disk)");
	if (!gce_valid_name(v->pd))
		return fv_err_msg(err, EINVAL,
				  "option 'pdName' must be a GCE disk name (lower-case letters, digits and '-', "
				  "at most 63), not '%.80s'",
				  v->pd);
	if (fv_block_spec_from_opts(o, &v->spec, err) < 0)
		return err->code;
	v->pv = fv_opts_volume_name(o);
	return gce_device_name(v->pv, v->dev, sizeof(v->dev), err);
}

/* --- the disk on the node (cloud-apis.md B3) --- */

/* The volume's disk on the node, for the core's node-side operations. */
static int describe_disk(const struct fv_opts *o, struct fv_clouddisk *d, struct fv_err *err)
{
	struct volume v;
	if (parse_volume(o, &v, err) < 0)
		return err->code;
	/* udev's names for a PD; its SCSI (or NVMe) serial is the deviceName. */
	fv_clouddisk_link(d, "google-%s", v.dev);
	fv_clouddisk_link(d, "scsi-0Google_PersistentDisk_%s", v.dev);
	fv_clouddisk_serial(d, "%s", v.dev);
	snprintf(d->what, sizeof(d->what), "GCE disk %s (device name %s)", v.pd, v.dev);
	d->spec = v.spec;
	return 0;
}

/* --- instances --- */

struct target {
	char instance[GCE_NAME_MAX + 1];
	/* Copies: a new token (after a 401) replaces the strings they come from. */
	char project[128], zone[GCE_NAME_MAX + 1], region[GCE_NAME_MAX + 1];
};

static int target_of(struct gcepd *gd, const char *node, int64_t deadline_ms, struct target *t,
		     struct gce_client **c, struct fv_err *err)
{
	gce_instance_name(node, t->instance, sizeof(t->instance));
	if (!gce_valid_name(t->instance))
		return fv_err_msg(err, EINVAL, "node name '%.80s' is not a GCE instance name", node);
	if (!(*c = client(gd, deadline_ms, err)))
		return err->code;
	const char *project, *zone;
	if (gce_client_scope(*c, &project, &zone, err) < 0)
		return err->code;
	if ((size_t)snprintf(t->project, sizeof(t->project), "%s", project) >= sizeof(t->project) ||
	    (size_t)snprintf(t->zone, sizeof(t->zone), "%s", zone) >= sizeof(t->zone))
		return fv_err_msg(err, ENAMETOOLONG, "project '%s' or zone '%s' is too long", project, zone);
	gce_region_of(t->zone, t->region, sizeof(t->region));
	return 0;
}

/* GET instances/<name>: 0 and *inst (caller decrefs); -ENOENT when the
 * instance does not exist. */
static int get_instance(struct gce_client *c, const struct target *t, json_t **inst, struct fv_err *err)
{
	char path[128], what[256];
	snprintf(path, sizeof(path), "instances/%s", t->instance);
	snprintf(what, sizeof(what), "reading instance %s", t->instance);
	long status;
	if (gce_call(c, "GET", path, NULL, (const long[]){404, 0}, what, &status, inst, NULL, 0, err) < 0)
		return err->code;
	if (status == 404) {
		json_decref(*inst);
		*inst = NULL;
		return fv_err_msg(err, ENOENT,
				  "there is no instance '%s' in project %s, zone %s (the node name must be its instance's "
				  "name)",
				  t->instance, t->project, t->zone);
	}
	return 0;
}

/* For doctor.c. */
struct gce_client *gcepd_client(struct fv_ctx *ctx, int64_t deadline_ms, struct fv_err *err)
{
	return client(ctx->data, deadline_ms, err);
}

int gcepd_find_instance(struct fv_ctx *ctx, const char *node, int64_t deadline_ms, char *desc, size_t size,
			struct fv_err *err)
{
	struct target t;
	struct gce_client *c;
	json_t *inst = NULL;
	if (target_of(ctx->data, node, deadline_ms, &t, &c, err) < 0 || get_instance(c, &t, &inst, err) < 0)
		return err->code;
	snprintf(desc, size, "%s in %s/%s", t.instance, t.project, t.zone);
	json_decref(inst);
	return 0;
}

/* The disks[] entries of an instance that concern the volume. */
struct attached {
	json_t *by_device;   /* attached under our deviceName */
	json_t *by_source;   /* our disk, under whatever deviceName */
};

/* pdName in the node's zone, or pdName as a regional disk of its region
 * (the only two an instance can have attached). */
static bool is_our_disk(json_t *entry, const struct volume *v, const struct target *t)
{
	char project[128], loc[64], name[GCE_NAME_MAX + 1];
	const char *src = json_string_value(json_object_get(entry, "source"));
	if (!v)
		return false;
	if (gce_parse_link(src, "disks", project, sizeof(project), loc, sizeof(loc), name, sizeof(name)))
		return !strcmp(name, v->pd) && !strcmp(loc, t->zone) && (!project[0] || !strcmp(project, t->project));
	return gce_parse_regional_link(src, "disks", project, sizeof(project), loc, sizeof(loc), name, sizeof(name)) &&
	       !strcmp(name, v->pd) && !strcmp(loc, t->region) && (!project[0] || !strcmp(project, t->project));
}

static void find_attached(json_t *inst, const char *dev, const struct volume *v, const struct target *t,
			  struct attached *a)
{
	*a = (struct attached){0};
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(inst, "disks"), i, d)
	{
		const char *name = json_string_value(json_object_get(d, "deviceName"));
		bool ours = is_our_disk(d, v, t);
		if (name && !strcmp(name, dev)) {
			a->by_device = d;
			if (ours)
				a->by_source = d;
		} else if (ours && !a->by_source) {
			a->by_source = d;
		}
	}
}

static const char *disk_of(json_t *entry, char *buf, size_t size)
{
	const char *src = json_string_value(json_object_get(entry, "source"));
	if (!gce_parse_link(src, "disks", NULL, 0, NULL, 0, buf, size) &&
	    !gce_parse_regional_link(src, "disks", NULL, 0, NULL, 0, buf, size))
		snprintf(buf, size, "%s", src ? src : "?");
	return buf;
}

static const char *mode_of(json_t *entry)
{
	const char *m = json_string_value(json_object_get(entry, "mode"));
	return m ? m : "READ_WRITE";
}

/* --- attach, detach, isattached (controller-manager) --- */

/* Attach and detach of one disk, whatever the PV or spec names, take turns
 * on this machine; the wait ends with the call's deadline. Returns the lock
 * fd. */
static int lock_disk(struct fv_ctx *ctx, const char *disk, const struct fv_poll *p, struct fv_err *err)
{
	char key[GCE_NAME_MAX + 64];
	snprintf(key, sizeof(key), "disk:%s", disk);
	long left = fv_poll_left_ms(p);
	int fd = fv_lock_acquire(ctx->run_dir, ctx->provider->name, key, left > 0 ? left : 1, err);
	return fd < 0 ? fv_err_prefix(err, "GCE disk %s is busy with another attach or detach", disk) : fd;
}

static int reply_device(const struct gcepd *gd, const struct volume *v, struct fv_result *res, struct fv_err *err)
{
	/* udev's stable name; waitforattach checks it against the serial. */
	if (asprintf(&res->device, "%s/google-%s", gd->node.conf.device_dir, v->dev) < 0) {
		res->device = NULL;
		return fv_err_set(err, ENOMEM, "attach");
	}
	return 0;
}

/* "in use by another resource": 1 when that resource is this very instance
 * (an attach of ours still in progress, which GCE reports this way), else the
 * Failure naming the other instance. */
static int in_use(const char *message, const struct volume *v, const struct target *t, struct fv_err *err)
{
	char project[128], zone[64], name[GCE_NAME_MAX + 1];
	if (!gce_in_use_by(message, project, sizeof(project), zone, sizeof(zone), name, sizeof(name)))
		return fv_err_msg(err, EBUSY, "GCE disk %s cannot be attached to instance %s: %s", v->pd, t->instance,
				  message);
	if (!strcmp(name, t->instance) && !strcmp(zone, t->zone))
		return 1;
	return fv_err_msg(err, EBUSY,
			  "GCE disk %s is attached to another instance, %s (zone %s), and a disk in read-write use "
			  "cannot be attached to a second one: detach it there first",
			  v->pd, name, zone);
}

/* POST attachDisk and wait for its operation: 0 attached, 1 GCE says an
 * attach to this instance is in progress (look again later), <0 Failure. */
static int post_attach(struct gce_client *c, const struct volume *v, const struct target *t, const char *source,
		       struct fv_poll *p, struct fv_err *err)
{
	char rid[37], path[256], what[256], reason[64];
	/* A requestId per POST: the HTTP client's retries of it (after a 5xx or
	 * a lost answer) are then the same request to GCE, never a second attach. */
	gce_request_id(rid);
	snprintf(path, sizeof(path), "instances/%s/attachDisk?requestId=%s", t->instance, rid);
	snprintf(what, sizeof(what), "attaching disk %s to instance %s", v->pd, t->instance);
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "source", source, "deviceName", v->dev, "mode",
				 v->spec.readonly ? "READ_ONLY" : "READ_WRITE", "type", "PERSISTENT", "kind",
				 "compute#attachedDisk");
	if (!body)
		return fv_err_set(err, ENOMEM, "attach");
	long status;
	json_t *op = NULL;
	int rc = gce_call(c, "POST", path, body, (const long[]){400, 0}, what, &status, &op, reason, sizeof(reason), err);
	json_decref(body);
	if (rc < 0)
		return rc;
	if (status == 400) {
		const char *msg = json_string_value(json_object_get(json_object_get(op, "error"), "message"));
		if (!strcmp(reason, IN_USE_REASON) && msg) {
			char copy[1024];
			snprintf(copy, sizeof(copy), "%s", msg);
			json_decref(op);
			return in_use(copy, v, t, err);
		}
		json_decref(op);
		return err->code; /* preset by gce_call: the 400's own message */
	}
	fv_log(LOG_INFO, "asked GCE to attach disk %s to instance %s as %s (%s, request %s)", v->pd, t->instance, v->dev,
	       v->spec.readonly ? "READ_ONLY" : "READ_WRITE", rid);
	json_t *done = NULL;
	rc = gce_wait_operation(c, op, p, what, &done, err);
	json_decref(op);
	if (rc < 0)
		return rc;
	char code[128], msg[768];
	if (gce_op_error(done, code, sizeof(code), msg, sizeof(msg))) {
		const char *name = json_string_value(json_object_get(done, "name"));
		fv_log(LOG_WARNING, "attach operation %s ended with %s: %s", name ? name : "?", code, msg);
		json_decref(done);
		if (!strcmp(code, IN_USE_CODE))
			return in_use(msg, v, t, err);
		return fv_err_msg(err, EIO, "%s failed: %s: %s", what, code, msg);
	}
	json_decref(done);
	return 0;
}

/* GET <path> of a disk: 1 found, 0 404, <0 Failure. */
static int disk_exists(struct gce_client *c, const char *path, const char *what, struct fv_err *err)
{
	long status;
	json_t *disk = NULL;
	if (gce_call(c, "GET", path, NULL, (const long[]){404, 0}, what, &status, &disk, NULL, 0, err) < 0)
		return err->code;
	json_decref(disk);
	*err = (struct fv_err){0};
	return status != 404;
}

/* Where pdName is: a zonal disk in the node's zone, else a regional disk of
 * its region (attached with the regional source). A zonal disk only attaches
 * in its own zone: one found in another of [gcepd] zones is refused naming
 * both. source gets the disk's partial URL. */
static int locate_disk(struct gcepd *gd, struct gce_client *c, const struct volume *v, const struct target *t,
		       char *source, size_t size, struct fv_err *err)
{
	char path[256], what[256];
	snprintf(what, sizeof(what), "reading disk %s", v->pd);
	snprintf(path, sizeof(path), "disks/%s", v->pd);
	int rc = disk_exists(c, path, what, err);
	if (rc < 0)
		return rc;
	if (rc) {
		snprintf(source, size, "projects/%s/zones/%s/disks/%s", t->project, t->zone, v->pd);
		return 0;
	}
	snprintf(path, sizeof(path), "/regions/%s/disks/%s", t->region, v->pd);
	if ((rc = disk_exists(c, path, what, err)) < 0)
		return rc;
	if (rc) {
		snprintf(source, size, "projects/%s/regions/%s/disks/%s", t->project, t->region, v->pd);
		return 0;
	}
	for (size_t i = 0; i < gd->n_zones; i++) {
		if (!strcmp(gd->zones[i], t->zone))
			continue;
		snprintf(path, sizeof(path), "/zones/%s/disks/%s", gd->zones[i], v->pd);
		if ((rc = disk_exists(c, path, what, err)) < 0)
			return rc;
		if (rc)
			return fv_err_msg(err, EXDEV,
					  "GCE disk %s is in zone %s and instance %s is in zone %s: a zonal disk attaches only "
					  "to instances of its own zone (a regional disk of region %s would do)",
					  v->pd, gd->zones[i], t->instance, t->zone, t->region);
	}
	return fv_err_msg(err, ENOENT,
			  "GCE disk %s does not exist in zone %s nor as a regional disk in region %s%s (project %s)",
			  v->pd, t->zone, t->region, gd->n_zones ? " nor in the other [" SECTION "] zones" : "",
			  t->project);
}

/* The instance's disks (the boot disk too) against [gcepd] max-volumes:
 * refused before GCE's own, opaque, quota error. */
static int check_limit(const struct gcepd *gd, json_t *inst, const struct volume *v, const struct target *t,
		       struct fv_err *err)
{
	size_t n = json_array_size(json_object_get(inst, "disks"));
	if ((long)n < gd->max_volumes)
		return 0;
	return fv_err_msg(err, EMLINK,
			  "instance %s already has %zu disks attached (the boot disk included) and [" SECTION
			  "] max-volumes is %ld: cannot attach GCE disk %s; detach a volume or raise max-volumes if "
			  "the machine type allows more",
			  t->instance, n, gd->max_volumes, v->pd);
}

static int gcepd_attach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	struct gcepd *gd = ctx->data;
	struct volume v;
	if (parse_volume(call->opts, &v, err) < 0 || fv_clouddisk_check_name(&gd->node.conf, v.pv, err) < 0)
		return err->code;
	struct fv_poll p;
	fv_poll_start(&p, gd->node.conf.attach_timeout_s * 1000, POLL_FIRST_MS, POLL_MAX_MS);
	_cleanup_close_ int lock = lock_disk(ctx, v.pd, &p, err);
	if (lock < 0)
		return err->code;
	struct gce_client *c;
	struct target t;
	if (target_of(gd, call->node, p.deadline_ms, &t, &c, err) < 0)
		return err->code;
	bool posted = false;
	char source[512] = "";
	for (;;) {
		json_t *inst;
		if (get_instance(c, &t, &inst, err) < 0)
			return err->code;
		struct attached a;
		find_attached(inst, v.dev, &v, &t, &a);
		char other[GCE_NAME_MAX + 64];
		int rc = 0;
		if (a.by_device && a.by_device != a.by_source) {
			rc = fv_err_msg(err, EEXIST,
					"instance %s already has a disk attached as '%s' (GCE disk %s), the device name of "
					"PV %s: a PV name reused for another disk? Detach it first",
					t.instance, v.dev, disk_of(a.by_device, other, sizeof(other)), v.pv);
		} else if (a.by_device && !v.spec.readonly && !strcmp(mode_of(a.by_device), "READ_ONLY")) {
			rc = fv_err_msg(err, EROFS,
					"GCE disk %s is attached to instance %s read-only, and the volume is read-write: "
					"detach it first",
					v.pd, t.instance);
		} else if (a.by_device) {
			json_decref(inst);
			fv_log(LOG_NOTICE, "disk %s is attached to instance %s as %s%s in %ld ms", v.pd, t.instance, v.dev,
			       posted ? "" : " already", fv_poll_elapsed_ms(&p));
			return reply_device(gd, &v, res, err);
		} else if (a.by_source) {
			rc = fv_err_msg(err, EEXIST,
					"GCE disk %s is attached to instance %s as '%s', not as '%s' (the device name of PV "
					"%s): it was attached outside this driver; detach it first",
					v.pd, t.instance, json_string_value(json_object_get(a.by_source, "deviceName")), v.dev,
					v.pv);
		}
		if (rc == 0 && !posted)
			rc = check_limit(gd, inst, &v, &t, err);
		json_decref(inst);
		if (rc < 0)
			return rc;
		if (!source[0] && locate_disk(gd, c, &v, &t, source, sizeof(source), err) < 0)
			return err->code;
		rc = post_attach(c, &v, &t, source, &p, err);
		if (rc < 0)
			return rc;
		posted = true;
		if (rc == 0) {
			fv_log(LOG_NOTICE, "attached disk %s to instance %s as %s in %ld ms", v.pd, t.instance, v.dev,
			       fv_poll_elapsed_ms(&p));
			return reply_device(gd, &v, res, err);
		}
		/* An attach to this instance is in progress (an earlier call's, or
		 * a lost answer's): wait for it within the same deadline. */
		fv_log(LOG_INFO, "disk %s is being attached to instance %s by another operation: waiting", v.pd,
		       t.instance);
		int r = fv_poll_sleep(&p);
		if (r == -EINTR)
			return fv_err_msg(err, EINTR, "terminated by SIGTERM while attaching disk %s", v.pd);
		if (r < 0)
			return fv_err_msg(err, ETIMEDOUT,
					  "GCE disk %s is still being attached to instance %s by another operation after "
					  "%ld s ([" SECTION "] attach-timeout)",
					  v.pd, t.instance, fv_poll_elapsed_ms(&p) / 1000);
	}
}

/* A detach that lost a race: the device is already gone (another detach
 * won), or the disk is busy with another operation. Look again. */
static bool detach_race(const char *reason, const char *message)
{
	return !strcmp(reason, "resourceNotReady") || !strcmp(reason, "RESOURCE_NOT_READY") ||
	       (message && strstr(message, "No attached disk"));
}

/* POST detachDisk and wait for its operation: 0 detached, 1 lost a race
 * (look again), <0 Failure. */
static int post_detach(struct gce_client *c, const char *dev, const char *disk, const struct target *t,
		       struct fv_poll *p, struct fv_err *err)
{
	char rid[37], path[256], what[256], reason[64];
	gce_request_id(rid);
	snprintf(path, sizeof(path), "instances/%s/detachDisk?deviceName=%s&requestId=%s", t->instance, dev, rid);
	snprintf(what, sizeof(what), "detaching disk %s (%s) from instance %s", disk, dev, t->instance);
	long status;
	json_t *op = NULL;
	int rc = gce_call(c, "POST", path, NULL, (const long[]){400, 0}, what, &status, &op, reason, sizeof(reason), err);
	if (rc < 0)
		return rc;
	if (status == 400) {
		const char *msg = json_string_value(json_object_get(json_object_get(op, "error"), "message"));
		bool race = detach_race(reason, msg);
		json_decref(op);
		return race ? 1 : err->code; /* err: preset by gce_call */
	}
	fv_log(LOG_INFO, "asked GCE to detach %s (disk %s) from instance %s (request %s)", dev, disk, t->instance, rid);
	json_t *done = NULL;
	rc = gce_wait_operation(c, op, p, what, &done, err);
	json_decref(op);
	if (rc < 0)
		return rc;
	char code[128], msg[768];
	bool failed = gce_op_error(done, code, sizeof(code), msg, sizeof(msg));
	const char *name = json_string_value(json_object_get(done, "name"));
	if (failed)
		fv_log(LOG_WARNING, "detach operation %s ended with %s: %s", name ? name : "?", code, msg);
	json_decref(done);
	if (!failed)
		return 0;
	fv_err_msg(err, EIO, "%s failed: %s: %s", what, code, msg);
	return detach_race(code, msg) ? 1 : err->code;
}

/* An attach to the instance that GCE has not finished yet (one whose call
 * timed out, say) would attach the disk after a detach that found nothing:
 * wait for such operations (whatever disk they are for: an Operation does not
 * name it) within p. 1: waited for some, look at the instance again; 0: none;
 * <0 Failure. */
static int wait_unfinished_attaches(struct gce_client *c, const struct target *t, const char *instance_id,
				    struct fv_poll *p, struct fv_err *err)
{
	json_t *ops;
	if (gce_unfinished_operations(c, "attachDisk", instance_id, &ops, err) < 0)
		return err->code;
	size_t n = json_array_size(ops), i;
	if (n)
		fv_log(LOG_INFO, "instance %s has %zu unfinished attach operation%s: waiting for %s before detaching",
		       t->instance, n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
	char what[256];
	snprintf(what, sizeof(what), "waiting for an attach to instance %s to finish before detaching", t->instance);
	json_t *op;
	json_array_foreach(ops, i, op)
	{
		json_t *done = NULL;
		int rc = gce_wait_operation(c, op, p, what, &done, err);
		json_decref(done);
		if (rc < 0) {
			json_decref(ops);
			return rc;
		}
	}
	json_decref(ops);
	return n ? 1 : 0;
}

static int gcepd_detach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct gcepd *gd = ctx->data;
	char dev[GCE_NAME_MAX + 1];
	if (gce_device_name(call->volume_name, dev, sizeof(dev), err) < 0)
		return err->code;
	struct fv_poll p;
	fv_poll_start(&p, gd->node.conf.attach_timeout_s * 1000, POLL_FIRST_MS, POLL_MAX_MS);
	struct gce_client *c;
	struct target t;
	if (target_of(gd, call->node, p.deadline_ms, &t, &c, err) < 0)
		return err->code;
	bool posted = false, waited = false;
	_cleanup_close_ int lock = -1;
	for (;;) {
		json_t *inst;
		int rc = get_instance(c, &t, &inst, err);
		if (rc == -ENOENT) {
			/* The instance is gone, and with it every attachment. */
			fv_log(LOG_WARNING, "detach of PV %s: %s; treating it as detached", call->volume_name, err->msg);
			*err = (struct fv_err){0};
			return 0;
		}
		if (rc < 0)
			return rc;
		struct attached a;
		find_attached(inst, dev, NULL, &t, &a);
		char disk[GCE_NAME_MAX + 64], instance_id[32];
		if (a.by_device)
			disk_of(a.by_device, disk, sizeof(disk));
		snprintf(instance_id, sizeof(instance_id), "%s", json_string_value(json_object_get(inst, "id")) ?: "");
		json_decref(inst);
		if (a.by_device && lock < 0) {
			/* The disk is known now: lock it, then look again under the lock. */
			if ((lock = lock_disk(ctx, disk, &p, err)) < 0)
				return err->code;
			continue;
		}
		if (!a.by_device && !posted && !waited && instance_id[0]) {
			waited = true;
			rc = wait_unfinished_attaches(c, &t, instance_id, &p, err);
			if (rc < 0)
				return rc;
			if (rc > 0)
				continue;
		}
		if (!a.by_device) {
			if (posted)
				fv_log(LOG_NOTICE, "detached %s (PV %s) from instance %s in %ld ms", dev, call->volume_name,
				       t.instance, fv_poll_elapsed_ms(&p));
			else
				fv_log(LOG_INFO, "nothing is attached as %s (PV %s) to instance %s: nothing to detach", dev,
				       call->volume_name, t.instance);
			*err = (struct fv_err){0};
			return 0;
		}
		rc = post_detach(c, dev, disk, &t, &p, err);
		if (rc < 0)
			return rc;
		posted = true;
		if (rc == 0) {
			fv_log(LOG_NOTICE, "detached disk %s (%s, PV %s) from instance %s in %ld ms", disk, dev,
			       call->volume_name, t.instance, fv_poll_elapsed_ms(&p));
			return 0;
		}
		struct fv_err last = *err;
		int r = fv_poll_sleep(&p);
		if (r == -EINTR)
			return fv_err_msg(err, EINTR, "terminated by SIGTERM while detaching disk %s", disk);
		if (r < 0) {
			*err = last;
			return fv_err_prefix(err, "GCE disk %s is still attached to instance %s after %ld s", disk,
					     t.instance, fv_poll_elapsed_ms(&p) / 1000);
		}
	}
}

static int gcepd_isattached(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			    struct fv_err *err)
{
	struct gcepd *gd = ctx->data;
	struct volume v;
	if (parse_volume(call->opts, &v, err) < 0)
		return err->code;
	struct gce_client *c;
	struct target t;
	if (target_of(gd, call->node, fv_now_ms() + gd->node.conf.attach_timeout_s * 1000, &t, &c, err) < 0)
		return err->code;
	json_t *inst;
	int rc = get_instance(c, &t, &inst, err);
	if (rc == -ENOENT) {
		*err = (struct fv_err){0};
		res->attached = false;
		return 0;
	}
	if (rc < 0)
		return rc;
	struct attached a;
	find_attached(inst, v.dev, &v, &t, &a);
	/* Only under our device name: anything else waitforattach would not find. */
	res->attached = a.by_device && a.by_device == a.by_source;
	json_decref(inst);
	return 0;
}

/* --- the node --- */

/* The disk found on the node under the device name is pdName's: the
 * instance's own list of attached disks (compute API, instances.get of the
 * instance the metadata server says this machine is) maps the device name to
 * its source disk. The device name comes from the PV or volume name, which a
 * pod's options can choose; the compute API's answer no volume spec can. One
 * request per call once the disk is listed. */
static int confirm_disk(struct fv_ctx *ctx, const struct fv_opts *o, struct fv_err *err)
{
	struct gcepd *gd = ctx->data;
	if (gd->confirmed)
		return 0;
	struct volume v;
	if (parse_volume(o, &v, err) < 0)
		return err->code;
	int64_t deadline_ms = fv_now_ms() + gd->node.conf.attach_timeout_s * 1000;
	struct gce_client *c = client(gd, deadline_ms, err);
	char self[GCE_NAME_MAX + 1];
	struct target t;
	if (!c || gce_client_instance(c, self, sizeof(self), err) < 0 ||
	    target_of(gd, self, deadline_ms, &t, &c, err) < 0)
		return err->code;
	json_t *inst;
	if (get_instance(c, &t, &inst, err) < 0)
		return err->code;
	struct attached a;
	find_attached(inst, v.dev, &v, &t, &a);
	char other[GCE_NAME_MAX + 64];
	int rc = 0;
	if (!a.by_device) {
		fv_err_msg(err, ENODEV, "instance %s lists no disk attached as '%s'", t.instance, v.dev);
		rc = 1;
	} else if (a.by_device != a.by_source)
		rc = fv_err_msg(err, EPERM,
				"the disk attached to instance %s as '%s' is GCE disk %s, not %s (pdName): another volume's "
				"disk, refused",
				t.instance, v.dev, disk_of(a.by_device, other, sizeof(other)), v.pd);
	json_decref(inst);
	gd->confirmed = rc == 0;
	return rc;
}

/* --- resizing --- */

static int gcepd_expandvolume(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			      struct fv_err *err)
{
	struct gcepd *gd = ctx->data;
	struct volume v;
	if (parse_volume(call->opts, &v, err) < 0)
		return err->code;
	/* PD sizes are whole GB, and GCE's GB is 2^30 bytes. */
	unsigned long long want = (call->new_size + GIB - 1) / GIB;
	if (!want)
		return fv_err_msg(err, EINVAL, "new size %llu is not a size", (unsigned long long)call->new_size);
	struct fv_poll p;
	fv_poll_start(&p, gd->node.conf.attach_timeout_s * 1000, POLL_FIRST_MS, POLL_MAX_MS);
	struct gce_client *c = client(gd, p.deadline_ms, err);
	if (!c)
		return err->code;
	char path[256], what[256];
	snprintf(path, sizeof(path), "disks/%s", v.pd);
	snprintf(what, sizeof(what), "reading disk %s", v.pd);
	for (bool asked = false;; asked = true) {
		long status;
		json_t *disk = NULL;
		if (gce_call(c, "GET", path, NULL, (const long[]){404, 0}, what, &status, &disk, NULL, 0, err) < 0)
			return err->code;
		long long size = gce_size_gb(disk);
		json_decref(disk);
		if (status == 404)
			return fv_err_msg(err, ENOENT, "GCE disk %s does not exist", v.pd);
		if (size < 0)
			return fv_err_msg(err, EPROTO, "%s: no sizeGb in the answer", what);
		if ((unsigned long long)size >= want) {
			res->new_size = (uint64_t)size * GIB;
			if (asked)
				fv_log(LOG_NOTICE, "resized disk %s to %lld GB in %ld ms", v.pd, size, fv_poll_elapsed_ms(&p));
			return 0;
		}
		if (asked)
			return fv_err_msg(err, EIO, "GCE disk %s is still %lld GB after resizing it to %llu GB", v.pd, size,
					  want);
		char rid[37], rpath[256], rwhat[256], sz[32], code[128], msg[768];
		gce_request_id(rid);
		snprintf(rpath, sizeof(rpath), "disks/%s/resize?requestId=%s", v.pd, rid);
		snprintf(rwhat, sizeof(rwhat), "resizing disk %s from %lld to %llu GB", v.pd, size, want);
		snprintf(sz, sizeof(sz), "%llu", want); /* an int64 travels as a string */
		json_t *body = json_pack("{s:s}", "sizeGb", sz);
		json_t *op = NULL, *done = NULL;
		int rc = body ? gce_call(c, "POST", rpath, body, NULL, rwhat, &status, &op, NULL, 0, err)
			      : fv_err_set(err, ENOMEM, "expandvolume");
		json_decref(body);
		if (rc == 0)
			rc = gce_wait_operation(c, op, &p, rwhat, &done, err);
		json_decref(op);
		if (rc < 0)
			return rc;
		bool failed = gce_op_error(done, code, sizeof(code), msg, sizeof(msg));
		json_decref(done);
		if (failed)
			return fv_err_msg(err, EIO, "%s failed: %s: %s", rwhat, code, msg);
	}
}

static const struct fv_provider gcepd_provider = {
	.name = "gcepd",
	.summary = "Google Compute Engine persistent disks, attached under a device name derived from the PV name.",
	.help = "Options (flexVolume.options):\n"
		"  pdName    required; the GCE persistent disk's name: a zonal disk of the node's zone,\n"
		"            else a regional disk of its region\n"
		"  fsType    ext4 (default) or xfs; a blank disk is formatted on first mount\n"
		"Node-side calls (waitforattach, mountdevice, mount, expandfs) ask the compute API\n"
		"(instances.get of the instance the metadata server names) which disk is attached\n"
		"under the volume's device name, and refuse any but pdName: the node's credentials\n"
		"need compute read access.\n"
		"Configuration ([" SECTION "] in gcepd.conf):\n"
		"  project, zone      default: from the metadata server (project also from the key file)\n"
		"  zones = auto       or a,b,c: other zones where attach looks for a disk not found in\n"
		"                     the node's zone or region, to refuse it naming both zones\n"
		"  max-volumes = 128  disks an instance may have, the boot disk included; attach refuses\n"
		"                     one more before asking GCE\n"
		"  credentials-file   a service-account JSON key (mode 0600; JWT-bearer flow);\n"
		"                     default: the metadata server's service-account token\n"
		"  metadata-url = " GCE_DEFAULT_METADATA_URL " (or $GCE_METADATA_HOST)\n"
		"  compute-endpoint = " GCE_DEFAULT_COMPUTE_ENDPOINT "\n"
		"  allow-inline = true: false refuses every volume whose name a pod's inline volume\n"
		"                     could have (a DNS-1123 label); PVs must then have a '.' in their name\n"
		"  attach-timeout = 300 (s), device-dir = " FV_CLOUDDISK_DEFAULT_DEVICE_DIR ", sysfs-root = /sys,\n"
		"  scsi-rescan = true, rescan-after = 10 (s), udevadm = auto | none | <path>,\n"
		"  ca-file, http-timeout = 30 (s), http-connect-timeout = 10 (s), http-attempts = 5,\n"
		"  token-margin = 60 (s)\n"
		"  allow-setuid = false, allow-devices = false (true drops nosuid / nodev from the mounts),\n"
		"  allowed-fstypes = ext2,btrfs (mounted from a disk with no fsType, besides ext4 and xfs)\n"
		"See docs/gcepd.md.\n",
	.help_core = fv_block_spec_help,
	.capabilities = gcepd_capabilities,
	.setup = gcepd_setup,
	.teardown = gcepd_teardown,
	.attach = gcepd_attach,
	.detach = gcepd_detach,
	.isattached = gcepd_isattached,
	.waitforattach = fv_clouddisk_op_waitforattach,
	.mountdevice = fv_clouddisk_op_mountdevice,
	.unmountdevice = fv_clouddisk_op_unmountdevice,
	.mount = fv_clouddisk_op_mount,
	.unmount = fv_op_unmount,
	.expandvolume = gcepd_expandvolume,
	.expandfs = fv_clouddisk_op_expandfs,
	.config_keys = (const char *const[]){SECTION ".project", SECTION ".zone", SECTION ".credentials-file",
		SECTION ".ca-file", SECTION ".metadata-url", SECTION ".compute-endpoint", SECTION ".http-timeout",
		SECTION ".http-connect-timeout", SECTION ".http-attempts", SECTION ".token-margin",
		SECTION ".attach-timeout", SECTION ".rescan-after", SECTION ".scsi-rescan", SECTION ".device-dir",
		SECTION ".sysfs-root", SECTION ".udevadm", SECTION ".allow-setuid", SECTION ".allow-devices",
		SECTION ".allowed-fstypes", SECTION ".allow-inline", SECTION ".max-volumes", SECTION ".zones",
		FV_CRYPT_CONFIG_KEYS(SECTION), NULL},
	.programs = (const struct fv_program[]){{"mkfs.ext4", "e2fsprogs"}, {"mkfs.xfs", "xfsprogs"},
		{"resize2fs", "e2fsprogs"}, {"xfs_growfs", "xfsprogs"}, {"udevadm", "udev", true}, {NULL}},
	.filesystems = (const char *const[]){"ext4", "xfs", NULL},
	.doctor = gcepd_doctor,
};

int main(int argc, char **argv)
{
	return fv_main(&gcepd_provider, argc, argv);
}
