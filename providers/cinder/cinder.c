/* cinder: OpenStack Cinder volumes. The controller-manager attaches them to
 * the node's Nova server (attach, detach, isattached, expandvolume); the node
 * finds the disk by its serial (waitforattach), formats it if blank and mounts
 * it on the global path (mountdevice), bind-mounts it into pods (mount) and
 * grows the file system in expandfs. Node-side calls never talk to the cloud
 * and need no credentials. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "clouddisk.h"
#include "cryptconf.h"
#include "flexvol.h"
#include "http.h"
#include "lock.h"
#include "log.h"
#include "mount.h"
#include "retry.h"
#include "openstack.h"
#include "cinder.h"

#define DEFAULT_ATTACH_TIMEOUT_S 300
#define DEFAULT_METADATA_URL "http://169.254.169.254"
#define DEFAULT_CONFIG_DRIVE "/dev/disk/by-label/config-2"
/* Where attach records the PV on the Cinder volume, so that detach (which is
 * given only the PV name) finds the volume again from any controller. */
#define PV_META_KEY "flexvol-pv-name"
#define NODE_META_KEY "flexvol-node"
#define GIB (1024ULL * 1024 * 1024)
#define EXTEND_MICROVERSION "OpenStack-API-Version: volume 3.42"
#define POLL_FIRST_MS 300
#define POLL_MAX_MS 5000
/* Nova has no fixed per-server limit; the cloud provider's
 * [BlockStorage] node-volume-attach-limit defaults to 256. */
#define DEFAULT_MAX_VOLUMES 256

enum node_lookup { LOOKUP_NOVA_NAME, LOOKUP_METADATA, LOOKUP_CONFIG_DRIVE };

struct cinder {
	struct fv_clouddisk_driver node; /* first: the core's node-side operations read it */
	struct os_conf os;
	char config_drive[PATH_MAX];
	char *metadata_url;
	enum node_lookup lookup;
	long max_volumes;       /* volumes a server may have attached */
	const char *max_key;    /* the key that set it, for the refusal */
	bool ignore_az;         /* [BlockStorage] ignore-volume-az */
	struct fv_ctx *ctx;
	struct os_client *client;
};

static int describe_disk(const struct fv_opts *o, struct fv_clouddisk *d, struct fv_err *err);

/* --- configuration --- */

/* The file holds a password or secret: refuse it if others may read it. */
static int check_conf_mode(const struct fv_config *c, struct fv_err *err)
{
	if (!fv_config_exists(c))
		return 0;
	struct stat st;
	if (stat(fv_config_path(c), &st) < 0)
		return fv_err_set(err, errno, "cannot inspect configuration '%s'", fv_config_path(c));
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return fv_err_msg(err, EPERM,
				  "configuration '%s' has mode %04o and owner %u: it holds credentials and must be "
				  "readable by root only (chown root; chmod 0600)",
				  fv_config_path(c), (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
	return 0;
}

static int cinder_setup(struct fv_ctx *ctx, struct fv_err *err)
{
	struct cinder *cd = calloc(1, sizeof(*cd));
	if (!cd)
		return fv_err_set(err, ENOMEM, "cinder setup");
	ctx->data = cd;
	cd->ctx = ctx;
	cd->node.describe = describe_disk;
	const struct fv_config *c = ctx->config;
	if (check_conf_mode(c, err) < 0 || os_conf_load(c, &cd->os, err) < 0)
		return err->code;
	if (fv_clouddisk_conf_load(c, "flexvol", DEFAULT_ATTACH_TIMEOUT_S, &cd->node.conf, err) < 0 ||
	    fv_config_get_path(c, "flexvol", "config-drive", DEFAULT_CONFIG_DRIVE, cd->config_drive,
			       sizeof(cd->config_drive), err) < 0)
		return err->code;
	/* [cinder] max-volumes, else the cloud provider's key, else its default. */
	cd->max_key = fv_config_get(c, "cinder", "max-volumes", NULL) ? "[cinder] max-volumes"
		      : fv_config_get(c, "BlockStorage", "node-volume-attach-limit", NULL)
			      ? "[BlockStorage] node-volume-attach-limit"
			      : "[cinder] max-volumes";
	if (fv_config_get_long(c, "BlockStorage", "node-volume-attach-limit", DEFAULT_MAX_VOLUMES, 1, 4096,
			       &cd->max_volumes, err) < 0 ||
	    fv_config_get_long(c, "cinder", "max-volumes", cd->max_volumes, 1, 4096, &cd->max_volumes, err) < 0 ||
	    os_conf_bool(c, "BlockStorage", "ignore-volume-az", &cd->ignore_az, err) < 0)
		return err->code;
	const char *lookup = fv_config_get(c, "flexvol", "node-lookup", "nova-name");
	if (!strcmp(lookup, "nova-name"))
		cd->lookup = LOOKUP_NOVA_NAME;
	else if (!strcmp(lookup, "metadata"))
		cd->lookup = LOOKUP_METADATA;
	else if (!strcmp(lookup, "config-drive"))
		cd->lookup = LOOKUP_CONFIG_DRIVE;
	else
		return fv_err_msg(err, EINVAL,
				  "configuration '%s': [flexvol] node-lookup must be nova-name, metadata or config-drive, "
				  "not '%s'",
				  fv_config_path(c), lookup);
	const char *murl = fv_config_get(c, "flexvol", "metadata-url", DEFAULT_METADATA_URL);
	size_t n = strlen(murl);
	while (n && murl[n - 1] == '/')
		n--;
	if (strncmp(murl, "http://", 7) && strncmp(murl, "https://", 8))
		return fv_err_msg(err, EINVAL, "configuration '%s': [flexvol] metadata-url must be an http(s) URL",
				  fv_config_path(c));
	if (!(cd->metadata_url = strndup(murl, n)))
		return fv_err_set(err, ENOMEM, "cinder setup");
	return 0;
}

static void cinder_teardown(struct fv_ctx *ctx)
{
	struct cinder *cd = ctx->data;
	if (!cd)
		return;
	os_client_free(cd->client);
	os_conf_free(&cd->os);
	free(cd->metadata_url);
	free(cd);
	ctx->data = NULL;
}

static void cinder_capabilities(struct fv_ctx *ctx, struct fv_caps *caps)
{
	(void)ctx;
	/* Metrics: kubelet statfs()es the pod volume dir, a mount of the disk's file system. */
	*caps = (struct fv_caps){.attach = true, .selinux_relabel = true, .supports_metrics = true, .fs_group = true,
				 .requires_fs_resize = true};
}

/* The API client, made on first use so that node-side calls need no credentials. */
static struct os_client *client(struct cinder *cd, int64_t deadline_ms, struct fv_err *err)
{
	if (!cd->client && !(cd->client = os_client_new(cd->ctx, &cd->os, err)))
		return NULL;
	/* The status check due at the operation's deadline may still run: the
	 * poll loop, not a refused request, then says what the volume is doing. */
	os_client_set_deadline(cd->client, deadline_ms + cd->os.http_timeout_s * 1000);
	return cd->client;
}

/* --- options --- */

struct volume {
	char id[37];        /* the Cinder volume UUID, lower case */
	struct fv_block_spec spec;     /* fsType, readwrite */
	const char *pv;     /* kubernetes.io/pvOrVolumeName */
};

static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

static int parse_volume(const struct fv_opts *o, struct volume *v, struct fv_err *err)
{
	static const char *const known[] = {"volumeID", NULL};
	if (fv_opts_check_known(o, known, fv_block_spec_keys, err) < 0)
		return err->code;
	const char *id = fv_opts_get(o, "volumeID");
	if (!id || !*id)
		return fv_err_msg(err, EINVAL, "option 'volumeID' is required (the Cinder volume's ID)");
	if (!is_uuid(id))
		return fv_err_msg(err, EINVAL, "option 'volumeID' must be a Cinder volume ID (a UUID), not '%.64s'", id);
	for (int i = 0; i < 36; i++)
		v->id[i] = (char)tolower((unsigned char)id[i]);
	v->id[36] = '\0';
	if (fv_block_spec_from_opts(o, &v->spec, err) < 0)
		return err->code;
	v->pv = fv_opts_volume_name(o);
	return 0;
}

/* --- the disk on the node (cloud-apis.md A4) --- */

/* The volume's disk on the node, for the core's node-side operations. */
static int describe_disk(const struct fv_opts *o, struct fv_clouddisk *d, struct fv_err *err)
{
	struct volume v;
	if (parse_volume(o, &v, err) < 0)
		return err->code;
	char hex[33];
	size_t h = 0;
	for (const char *p = v.id; *p; p++)
		if (*p != '-')
			hex[h++] = *p;
	hex[h] = '\0';
	/* Nova sets the disk serial to the volume ID; virtio-blk keeps 20 bytes. */
	fv_clouddisk_link(d, "virtio-%.20s", v.id);
	fv_clouddisk_link(d, "virtio-%s", v.id);
	fv_clouddisk_link(d, "scsi-0QEMU_QEMU_HARDDISK_%.20s", v.id);
	fv_clouddisk_link(d, "scsi-0QEMU_QEMU_HARDDISK_%s", v.id);
	fv_clouddisk_link(d, "wwn-0x%s", hex);
	fv_clouddisk_serial(d, "%.20s", v.id);
	fv_clouddisk_serial(d, "%s", v.id);
	snprintf(d->what, sizeof(d->what), "volume %s", v.id);
	d->spec = v.spec;
	return 0;
}

/* --- Cinder and Nova --- */

static const char *vol_status(json_t *vol)
{
	const char *s = json_string_value(json_object_get(vol, "status"));
	return s ? s : "";
}

static bool vol_attached_to(json_t *vol, const char *sid)
{
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(vol, "attachments"), i, a)
	{
		const char *s = json_string_value(json_object_get(a, "server_id"));
		if (s && !strcmp(s, sid))
			return true;
	}
	return false;
}

static const char *vol_other_server(json_t *vol, const char *sid)
{
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(vol, "attachments"), i, a)
	{
		const char *s = json_string_value(json_object_get(a, "server_id"));
		if (s && strcmp(s, sid))
			return s;
	}
	return NULL;
}

static bool vol_multiattach(json_t *vol)
{
	return json_is_true(json_object_get(vol, "multiattach"));
}

static const char *vol_meta(json_t *vol, const char *key)
{
	return json_string_value(json_object_get(json_object_get(vol, "metadata"), key));
}

/* GET /volumes/<id>: 0 and *vol (the "volume" object; caller decrefs the
 * returned root), -ENOENT when Cinder does not know it. */
static int get_volume(struct os_client *c, const char *id, json_t **root, json_t **vol, struct fv_err *err)
{
	char path[128], what[128];
	snprintf(path, sizeof(path), "/volumes/%s", id);
	snprintf(what, sizeof(what), "reading Cinder volume %s", id);
	long status;
	*root = NULL;
	if (os_call(c, OS_VOLUME, "GET", path, NULL, NULL, (const long[]){404, 0}, what, &status, root, err) < 0)
		return err->code;
	if (status == 404 || !json_is_object(*vol = json_object_get(*root, "volume"))) {
		json_decref(*root);
		*root = NULL;
		if (status == 404)
			return fv_err_msg(err, ENOENT, "Cinder volume %s does not exist", id);
		return fv_err_msg(err, EPROTO, "%s: no volume in the reply", what);
	}
	return 0;
}

/* Whether Nova has a block-device mapping of the volume on the server, in
 * any state (reserved, attaching, attached, detaching): 1, 0 or <0. */
static int nova_has_attachment(struct os_client *c, const char *sid, const char *vid, struct fv_err *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/servers/%s/os-volume_attachments/%s", sid, vid);
	long status;
	_cleanup_free_ char *what = NULL;
	if (asprintf(&what, "reading the attachment of volume %s to server %s", vid, sid) < 0)
		return fv_err_set(err, ENOMEM, "Nova");
	json_t *out = NULL;
	if (os_call(c, OS_COMPUTE, "GET", path, NULL, NULL, (const long[]){404, 0}, what, &status, &out, err) < 0)
		return err->code;
	json_decref(out);
	return status == 404 ? 0 : 1;
}

/* The server's name, for messages; "" when it cannot be had. */
static void server_name(struct os_client *c, const char *sid, char *buf, size_t size)
{
	char path[128];
	snprintf(path, sizeof(path), "/servers/%s", sid);
	long status;
	json_t *out = NULL;
	struct fv_err ignored = {0};
	buf[0] = '\0';
	if (os_call(c, OS_COMPUTE, "GET", path, NULL, NULL, NULL, "reading a server", &status, &out, &ignored) == 0) {
		const char *name = json_string_value(json_object_get(json_object_get(out, "server"), "name"));
		if (name)
			snprintf(buf, size, "%s", name);
	}
	json_decref(out);
}

/* --- finding the node's server --- */

static char *regex_quote(const char *s)
{
	/* Nova's name filter is a regular expression (cloud-apis.md A2). */
	char *out = malloc(strlen(s) * 2 + 3), *o = out;
	if (!out)
		return NULL;
	*o++ = '^';
	for (; *s; s++) {
		if (strchr("\\.+*?()|[]{}^$", *s))
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '$';
	*o = '\0';
	return out;
}

static int server_by_name(struct os_client *c, const char *node, char *sid, size_t size, struct fv_err *err)
{
	_cleanup_free_ char *rx = regex_quote(node);
	_cleanup_free_ char *q = rx ? fv_http_escape(rx) : NULL;
	_cleanup_free_ char *path = NULL;
	if (!q || asprintf(&path, "/servers?name=%s", q) < 0)
		return fv_err_set(err, ENOMEM, "server lookup");
	long status;
	json_t *out = NULL;
	char what[320];
	snprintf(what, sizeof(what), "looking up the Nova server of node '%s'", node);
	if (os_call(c, OS_COMPUTE, "GET", path, NULL, NULL, NULL, what, &status, &out, err) < 0)
		return err->code;
	/* Exact name first; the cloud controller manager lowercases names, so
	 * a case-insensitive match is the fallback. */
	const char *found = NULL;
	int exact = 0, folded = 0;
	const char *folded_id = NULL;
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(out, "servers"), i, s)
	{
		const char *name = json_string_value(json_object_get(s, "name"));
		const char *id = json_string_value(json_object_get(s, "id"));
		if (!name || !id)
			continue;
		if (!strcmp(name, node)) {
			exact++;
			found = id;
		} else if (!strcasecmp(name, node)) {
			folded++;
			folded_id = id;
		}
	}
	int rc = 0;
	if (exact > 1 || (!exact && folded > 1))
		rc = fv_err_msg(err, EEXIST, "%d Nova servers are named '%s': cannot tell which one is the node",
				exact ? exact : folded, node);
	else if (!found && !folded_id)
		rc = fv_err_msg(err, ENOENT, "no Nova server is named '%s' (the node name; [flexvol] node-lookup = nova-name)",
				node);
	else
		snprintf(sid, size, "%s", found ? found : folded_id);
	json_decref(out);
	return rc;
}

static int uuid_from_meta_data(json_t *md, const char *node, const char *source, char *sid, size_t size,
			       struct fv_err *err)
{
	const char *uuid = json_string_value(json_object_get(md, "uuid"));
	const char *name = json_string_value(json_object_get(md, "name"));
	if (!uuid || !*uuid)
		return fv_err_msg(err, EPROTO, "invalid OpenStack metadata from %s: empty uuid", source);
	if (name && strcmp(name, node))
		fv_log(LOG_INFO, "node '%s' is Nova server '%s' (%s) according to %s", node, name, uuid, source);
	snprintf(sid, size, "%s", uuid);
	return 0;
}

static int server_from_metadata(struct cinder *cd, const char *node, char *sid, size_t size, struct fv_err *err)
{
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s/openstack/latest/meta_data.json", cd->metadata_url) < 0)
		return fv_err_set(err, ENOMEM, "metadata");
	struct fv_http_response r = {0};
	if (fv_http_request(os_client_http(cd->client),
			    &(struct fv_http_request){.method = "GET", .url = url, .what = "reading the metadata service"},
			    &r, err) < 0) {
		fv_http_response_free(&r);
		return err->code;
	}
	int rc;
	if (r.status != 200) {
		rc = fv_http_status_error(&r, "reading the metadata service", err);
	} else {
		json_t *md = fv_http_json(&r, err);
		rc = md ? uuid_from_meta_data(md, node, url, sid, size, err) : err->code;
		json_decref(md);
	}
	fv_http_response_free(&r);
	return rc;
}

/* Nova's config drive is a CD-ROM (config_drive_format's default, iso9660).
 * A Cinder volume is always attached as a disk: a tenant can put the label
 * config-2 and a forged meta_data.json on one, but cannot make it a CD-ROM.
 * So only a CD-ROM is trusted, and *dev is its /dev node. */
static int config_drive_device(struct cinder *cd, char dev[PATH_MAX], struct fv_err *err)
{
	if (!realpath(cd->config_drive, dev))
		return fv_err_set(err, errno, "no config drive at '%s'", cd->config_drive);
	struct stat st;
	if (stat(dev, &st) < 0 || !S_ISBLK(st.st_mode))
		return fv_err_msg(err, ENOTBLK, "the config drive '%s' (%s) is not a block device", cd->config_drive, dev);
	const char *kname = strrchr(dev, '/') + 1;
	char path[PATH_MAX + 64], type[16] = "";
	snprintf(path, sizeof(path), "%s/block/%s/device/type", cd->node.conf.sysfs_root, kname);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, type, sizeof(type) - 1);
	type[n > 0 ? n : 0] = '\0';
	/* SCSI peripheral type 5: CD/DVD (sr, also for ATAPI drives). */
	if (strtol(type, NULL, 10) != 5 || !type[0])
		return fv_err_msg(err, EPERM,
				  "the config drive '%s' is %s, which is not a CD-ROM: any disk can carry the label config-2 "
				  "(a tenant's volume too) with forged metadata, so only a CD-ROM is trusted; for a vfat "
				  "config drive set [flexvol] node-lookup = metadata",
				  cd->config_drive, dev);
	return 0;
}

static int server_from_config_drive(struct cinder *cd, const char *node, char *sid, size_t size, struct fv_err *err)
{
	char dev[PATH_MAX];
	if (config_drive_device(cd, dev, err) < 0)
		return err->code;
	char dir[PATH_MAX], file[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s/cinder", cd->ctx->run_dir);
	if (fv_mkdir_p(dir, 0700, err) < 0)
		return err->code;
	snprintf(dir, sizeof(dir), "%s/cinder/config-drive.XXXXXX", cd->ctx->run_dir);
	if (!mkdtemp(dir))
		return fv_err_set(err, errno, "cannot create a mount point for the config drive");
	struct fv_err e2 = {0};
	int rc = fv_mount_fs(dev, dir, "iso9660", "ro,nosuid,nodev,noexec", &e2);
	if (rc < 0)
		rc = fv_mount_fs(dev, dir, "vfat", "ro,nosuid,nodev,noexec", err);
	if (rc == 0) {
		snprintf(file, sizeof(file), "%s/openstack/latest/meta_data.json", dir);
		json_error_t je;
		json_t *md = json_load_file(file, 0, &je);
		rc = md ? uuid_from_meta_data(md, node, dev, sid, size, err)
			: fv_err_msg(err, EPROTO, "cannot read %s on the config drive: %s", file, je.text);
		json_decref(md);
		struct fv_err e3 = {0};
		if (fv_unmount(dir, &e3) < 0)
			fv_log(LOG_WARNING, "config drive: %s", e3.msg);
	} else {
		fv_err_prefix(err, "mounting the config drive %s", dev);
	}
	rmdir(dir);
	return rc;
}

/* The Nova server ID of a Kubernetes node. */
static int find_server(struct cinder *cd, const char *node, char *sid, size_t size, struct fv_err *err)
{
	switch (cd->lookup) {
	case LOOKUP_METADATA:
		return server_from_metadata(cd, node, sid, size, err);
	case LOOKUP_CONFIG_DRIVE:
		return server_from_config_drive(cd, node, sid, size, err);
	case LOOKUP_NOVA_NAME:
		break;
	}
	return server_by_name(cd->client, node, sid, size, err);
}

/* For doctor.c. */
struct os_client *cinder_client(struct fv_ctx *ctx, int64_t deadline_ms, struct fv_err *err)
{
	return client(ctx->data, deadline_ms, err);
}

int cinder_find_server(struct fv_ctx *ctx, const char *node, char *sid, size_t size, struct fv_err *err)
{
	return find_server(ctx->data, node, sid, size, err);
}

/* --- the controller's own record of PV -> volume (a shortcut, never the
 * only source: detach falls back to the Cinder metadata) --- */

static void record_path(struct cinder *cd, const char *pv, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "%s/cinder/pv/", cd->ctx->run_dir);
	for (const unsigned char *p = (const unsigned char *)pv; *p && o + 4 < size; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || (*p == '.' && p != (const unsigned char *)pv))
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, size - o, "%%%02X", *p);
	}
	buf[o] = '\0';
}

static void record_put(struct cinder *cd, const char *pv, const char *vid)
{
	char path[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX + 16];
	struct fv_err e = {0};
	snprintf(dir, sizeof(dir), "%s/cinder/pv", cd->ctx->run_dir);
	record_path(cd, pv, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	if (fv_mkdir_p(dir, 0700, &e) < 0) {
		fv_log(LOG_WARNING, "%s", e.msg);
		return;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return;
	bool ok = write(fd, vid, strlen(vid)) == (ssize_t)strlen(vid);
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);
}

static bool record_get(struct cinder *cd, const char *pv, char *vid, size_t size)
{
	char path[PATH_MAX];
	record_path(cd, pv, path, sizeof(path));
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || size < 37)
		return false;
	ssize_t n = read(fd, vid, 36);
	if (n != 36)
		return false;
	vid[36] = '\0';
	return is_uuid(vid);
}

static void record_drop(struct cinder *cd, const char *pv)
{
	char path[PATH_MAX];
	record_path(cd, pv, path, sizeof(path));
	unlink(path);
}

/* Writes the PV name (and node) into the volume's metadata. */
static int record_on_volume(struct os_client *c, json_t *vol, const char *vid, const char *pv, const char *node,
			    struct fv_err *err)
{
	const char *have_pv = vol_meta(vol, PV_META_KEY), *have_node = vol_meta(vol, NODE_META_KEY);
	if (!pv || !*pv || (have_pv && !strcmp(have_pv, pv) && have_node && !strcmp(have_node, node)))
		return 0;
	char path[128], what[160];
	snprintf(path, sizeof(path), "/volumes/%s/metadata", vid);
	snprintf(what, sizeof(what), "recording PV %.64s on Cinder volume %s", pv, vid);
	json_t *body = json_pack("{s:{s:s, s:s}}", "metadata", PV_META_KEY, pv, NODE_META_KEY, node);
	if (!body)
		return fv_err_set(err, ENOMEM, "%s", what);
	long status;
	json_t *out = NULL;
	int rc = os_call(c, OS_VOLUME, "POST", path, body, NULL, NULL, what, &status, &out, err);
	json_decref(body);
	json_decref(out);
	return rc;
}

/* The volumes whose metadata names the PV (paginated list, filtered on our
 * side too: not every Cinder honours the metadata filter). Returns a JSON
 * array of volume IDs. */
static int volumes_of_pv(struct os_client *c, const char *pv, json_t **ids, struct fv_err *err)
{
	json_t *filter = json_pack("{s:s}", PV_META_KEY, pv);
	char *ftext = filter ? json_dumps(filter, JSON_COMPACT) : NULL;
	json_decref(filter);
	_cleanup_free_ char *fq = ftext ? fv_http_escape(ftext) : NULL;
	free(ftext);
	_cleanup_free_ char *path = NULL;
	if (!fq || asprintf(&path, "/volumes/detail?metadata=%s", fq) < 0)
		return fv_err_set(err, ENOMEM, "volume search");
	const char *base;
	if (os_endpoint(c, OS_VOLUME, &base, err) < 0)
		return err->code;
	*ids = json_array();
	for (int page = 0; path && page < 100; page++) {
		long status;
		json_t *out = NULL;
		if (os_call(c, OS_VOLUME, "GET", path, NULL, NULL, NULL, "searching Cinder volumes by PV name", &status,
			    &out, err) < 0) {
			json_decref(*ids);
			*ids = NULL;
			return err->code;
		}
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(out, "volumes"), i, v)
		{
			const char *have = vol_meta(v, PV_META_KEY);
			const char *id = json_string_value(json_object_get(v, "id"));
			if (have && id && !strcmp(have, pv))
				json_array_append_new(*ids, json_string(id));
		}
		/* Follow "next" links, relative to the endpoint we know. */
		free(path);
		path = NULL;
		json_t *link;
		json_array_foreach(json_object_get(out, "volumes_links"), i, link)
		{
			const char *rel = json_string_value(json_object_get(link, "rel"));
			const char *href = json_string_value(json_object_get(link, "href"));
			size_t bl = strlen(base);
			if (rel && href && !strcmp(rel, "next") && !strncmp(href, base, bl))
				path = strdup(href + bl);
		}
		json_decref(out);
	}
	return 0;
}

/* --- waiting for Cinder --- */

static bool status_is_error(const char *s)
{
	return !strncmp(s, "error", 5);
}

static int wait_attached(struct os_client *c, const char *vid, const char *sid, struct fv_poll *p,
			 struct fv_err *err)
{
	const char *last = "";
	char lastbuf[32] = "";
	for (;;) {
		json_t *root, *vol;
		if (get_volume(c, vid, &root, &vol, err) < 0)
			return err->code;
		const char *st = vol_status(vol);
		snprintf(lastbuf, sizeof(lastbuf), "%s", st);
		last = lastbuf;
		bool done = vol_attached_to(vol, sid) && !strcmp(st, "in-use");
		bool back = !strcmp(st, "available");
		json_decref(root);
		if (done)
			return 0;
		if (status_is_error(last))
			return fv_err_msg(err, EIO, "Cinder volume %s went to status '%s' while attaching to server %s", vid,
					  last, sid);
		if (back) {
			/* Available again: the attach failed unless Nova still has it in hand. */
			int has = nova_has_attachment(c, sid, vid, err);
			if (has < 0)
				return has;
			if (!has)
				return fv_err_msg(err, EIO,
						  "attaching Cinder volume %s to server %s failed: the volume is "
						  "'available' again and Nova has no attachment",
						  vid, sid);
		}
		int r = fv_poll_sleep(p);
		if (r == -EINTR)
			return fv_err_msg(err, EINTR, "terminated by SIGTERM while attaching volume %s", vid);
		if (r < 0)
			return fv_err_msg(err, ETIMEDOUT,
					  "Cinder volume %s is still '%s' after %ld s, not attached to server %s yet "
					  "([flexvol] attach-timeout); the next attach resumes waiting, a detach undoes it",
					  vid, last, fv_poll_elapsed_ms(p) / 1000, sid);
	}
}

static int wait_detached(struct os_client *c, const char *vid, const char *sid, struct fv_poll *p,
			 struct fv_err *err)
{
	char last[32] = "";
	for (;;) {
		json_t *root, *vol;
		int rc = get_volume(c, vid, &root, &vol, err);
		if (rc == -ENOENT)
			return 0; /* deleted: certainly not attached */
		if (rc < 0)
			return rc;
		snprintf(last, sizeof(last), "%s", vol_status(vol));
		bool done = !vol_attached_to(vol, sid) && (strcmp(last, "detaching") || vol_multiattach(vol));
		json_decref(root);
		if (done)
			return 0;
		if (status_is_error(last))
			return fv_err_msg(err, EIO, "Cinder volume %s went to status '%s' while detaching from server %s",
					  vid, last, sid);
		int r = fv_poll_sleep(p);
		if (r == -EINTR)
			return fv_err_msg(err, EINTR, "terminated by SIGTERM while detaching volume %s", vid);
		if (r < 0)
			return fv_err_msg(err, ETIMEDOUT,
					  "Cinder volume %s is still '%s' and attached to server %s after %ld s "
					  "([flexvol] attach-timeout)",
					  vid, last, sid, fv_poll_elapsed_ms(p) / 1000);
	}
}

/* --- attach, detach, isattached (controller-manager) --- */

/* Attach and detach of one volume, whatever the PV or spec names, take turns
 * on this machine; the wait ends with the call's deadline. Returns the lock
 * fd. */
static int lock_disk(struct fv_ctx *ctx, const char *vid, const struct fv_poll *p, struct fv_err *err)
{
	char key[64];
	snprintf(key, sizeof(key), "disk:%s", vid);
	long left = fv_poll_left_ms(p);
	int fd = fv_lock_acquire(ctx->run_dir, ctx->provider->name, key, left > 0 ? left : 1, err);
	return fd < 0 ? fv_err_prefix(err, "Cinder volume %s is busy with another attach or detach", vid) : fd;
}

static int reply_device(const struct cinder *cd, const struct volume *v, struct fv_result *res, struct fv_err *err)
{
	/* The stable name of a KVM guest's disk; waitforattach finds the real one. */
	if (asprintf(&res->device, "%s/virtio-%.20s", cd->node.conf.device_dir, v->id) < 0) {
		res->device = NULL;
		return fv_err_set(err, ENOMEM, "attach");
	}
	return 0;
}

static int post_attach(struct os_client *c, const char *sid, const char *vid, bool multi, struct fv_err *err)
{
	char path[128];
	snprintf(path, sizeof(path), "/servers/%s/os-volume_attachments", sid);
	_cleanup_free_ char *what = NULL;
	if (asprintf(&what, "attaching Cinder volume %s to server %s", vid, sid) < 0)
		return fv_err_set(err, ENOMEM, "attach");
	/* No "device": libvirt ignores it (cloud-apis.md A2). */
	json_t *body = json_pack("{s:{s:s}}", "volumeAttachment", "volumeId", vid);
	long status;
	json_t *out = NULL;
	/* Nova refuses a multiattach volume below 2.60; 2.60 keeps the 2.1 reply. */
	static const char *const mv260[] = {"OpenStack-API-Version: compute 2.60", "X-OpenStack-Nova-API-Version: 2.60",
					    NULL};
	int rc = body ? os_call(c, OS_COMPUTE, "POST", path, body, multi ? mv260 : NULL, NULL, what, &status, &out, err)
		      : fv_err_set(err, ENOMEM, "attach");
	json_decref(body);
	json_decref(out);
	return rc;
}

/* Before a new attachment: the server's volumes against max-volumes, and
 * the volume's availability zone against the server's. 1 when Nova already
 * has this volume on the server (in progress: no check applies), 0 to go
 * on, <0 refused. */
static int check_new_attachment(struct cinder *cd, struct os_client *c, const char *sid, const char *vid,
				const char *vol_az, struct fv_err *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/servers/%s/os-volume_attachments", sid);
	long status;
	json_t *out = NULL;
	if (os_call(c, OS_COMPUTE, "GET", path, NULL, NULL, NULL, "listing the volumes of a server", &status, &out,
		    err) < 0)
		return err->code;
	json_t *list = json_object_get(out, "volumeAttachments"), *a;
	size_t n = json_array_size(list), i;
	bool ours = false;
	json_array_foreach(list, i, a)
	{
		const char *id = json_string_value(json_object_get(a, "volumeId"));
		ours = ours || (id && !strcasecmp(id, vid));
	}
	json_decref(out);
	if (ours)
		return 1;
	if ((long)n >= cd->max_volumes)
		return fv_err_msg(err, EMLINK,
				  "Nova server %s already has %zu volumes attached and %s is %ld: cannot attach Cinder "
				  "volume %s; detach a volume or raise the limit",
				  sid, n, cd->max_key, cd->max_volumes, vid);
	if (cd->ignore_az || !vol_az || !*vol_az)
		return 0;
	snprintf(path, sizeof(path), "/servers/%s", sid);
	if (os_call(c, OS_COMPUTE, "GET", path, NULL, NULL, NULL, "reading the server's availability zone", &status,
		    &out, err) < 0)
		return err->code;
	const char *srv_az =
		json_string_value(json_object_get(json_object_get(out, "server"), "OS-EXT-AZ:availability_zone"));
	int rc = 0;
	if (srv_az && *srv_az && strcmp(srv_az, vol_az))
		rc = fv_err_msg(err, EXDEV,
				"Cinder volume %s is in availability zone '%s' and Nova server %s in '%s': attaching "
				"across zones is refused ([BlockStorage] ignore-volume-az = true allows it, where Nova's "
				"cross_az_attach does)",
				vid, vol_az, sid, srv_az);
	json_decref(out);
	return rc;
}

static int cinder_attach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	struct cinder *cd = ctx->data;
	struct volume v;
	if (parse_volume(call->opts, &v, err) < 0 || fv_clouddisk_check_name(&cd->node.conf, v.pv, err) < 0)
		return err->code;
	struct fv_poll p;
	fv_poll_start(&p, cd->node.conf.attach_timeout_s * 1000, POLL_FIRST_MS, POLL_MAX_MS);
	_cleanup_close_ int lock = lock_disk(ctx, v.id, &p, err);
	if (lock < 0)
		return err->code;
	struct os_client *c = client(cd, p.deadline_ms, err);
	if (!c)
		return err->code;
	char sid[128];
	if (find_server(cd, call->node, sid, sizeof(sid), err) < 0)
		return err->code;

	bool posted = false;
	for (;;) {
		json_t *root, *vol;
		if (get_volume(c, v.id, &root, &vol, err) < 0)
			return err->code;
		char st[32];
		snprintf(st, sizeof(st), "%s", vol_status(vol));
		bool ours = vol_attached_to(vol, sid), multi = vol_multiattach(vol);
		const char *other = vol_other_server(vol, sid);
		const char *held_by = vol_meta(vol, PV_META_KEY);
		if (v.pv && held_by && strcmp(held_by, v.pv) &&
		    (json_array_size(json_object_get(vol, "attachments")) || strcmp(st, "available"))) {
			/* detach finds a volume by the PV name recorded on it: recording a
			 * second name would let that name's detach take the volume away
			 * from under the first (an inline volume may name any volumeID). */
			fv_err_msg(err, EBUSY,
				   "Cinder volume %s is in use ('%s') as volume '%.80s', not '%.80s': one volume cannot be "
				   "attached under two names; detach '%.80s' first",
				   v.id, st, held_by, v.pv, held_by);
			json_decref(root);
			return err->code;
		}
		if (ours && !strcmp(st, "in-use")) {
			int rc = record_on_volume(c, vol, v.id, v.pv, call->node, err);
			json_decref(root);
			if (rc < 0)
				return rc;
			if (v.pv)
				record_put(cd, v.pv, v.id);
			fv_log(LOG_NOTICE, "volume %s is attached to server %s (node %s)%s in %ld ms", v.id, sid, call->node,
			       posted ? "" : " already", fv_poll_elapsed_ms(&p));
			return reply_device(cd, &v, res, err);
		}
		if (other && !multi) {
			char name[256], copy[128];
			snprintf(copy, sizeof(copy), "%s", other);
			json_decref(root);
			server_name(c, copy, name, sizeof(name));
			return fv_err_msg(err, EBUSY,
					  "Cinder volume %s is attached to another server, %s%s%s%s, and is not "
					  "multiattach: detach it there first",
					  v.id, copy, name[0] ? " (" : "", name, name[0] ? ")" : "");
		}
		if (status_is_error(st)) {
			json_decref(root);
			return fv_err_msg(err, EIO, "Cinder volume %s has status '%s'", v.id, st);
		}
		bool free_for_us = !strcmp(st, "available") || (multi && !strcmp(st, "in-use"));
		char az[128];
		snprintf(az, sizeof(az), "%s", json_string_value(json_object_get(vol, "availability_zone")) ?: "");
		/* Limits and zone first: a refused attach changes nothing. */
		int rc = free_for_us && !posted ? check_new_attachment(cd, c, sid, v.id, az, err) : 0;
		/* Written before Nova is asked, so that a detach from any controller
		 * finds the volume even if this process dies mid-attach. */
		if (rc >= 0)
			rc = free_for_us ? record_on_volume(c, vol, v.id, v.pv, call->node, err) : 0;
		json_decref(root);
		if (rc < 0)
			return rc;

		int has = nova_has_attachment(c, sid, v.id, err);
		if (has < 0)
			return has;
		if (has) {
			/* Ours, in progress: an earlier call's, or a lost response. */
			if (!posted)
				fv_log(LOG_INFO, "volume %s is '%s' on server %s: waiting for the attach in progress", v.id,
				       st, sid);
			if (wait_attached(c, v.id, sid, &p, err) < 0)
				return err->code;
			continue;
		}
		if (free_for_us && !posted) {
			struct fv_err perr = {0};
			posted = true;
			if (post_attach(c, sid, v.id, multi, &perr) < 0) {
				/* A 400 or a lost response may hide a success: look again. */
				has = nova_has_attachment(c, sid, v.id, err);
				if (has < 0)
					return has;
				if (!has) {
					*err = perr;
					return err->code;
				}
			}
			fv_log(LOG_INFO, "asked Nova to attach volume %s to server %s (node %s)", v.id, sid, call->node);
			if (wait_attached(c, v.id, sid, &p, err) < 0)
				return err->code;
			continue;
		}
		/* Busy with something else (detaching, extending, another server's
		 * attach): wait for it to settle, within the same deadline. */
		fv_log(LOG_INFO, "volume %s is '%s': waiting before attaching it to server %s", v.id, st, sid);
		int r = fv_poll_sleep(&p);
		if (r == -EINTR)
			return fv_err_msg(err, EINTR, "terminated by SIGTERM while attaching volume %s", v.id);
		if (r < 0)
			return fv_err_msg(err, ETIMEDOUT, "Cinder volume %s stayed '%s' for %ld s; cannot attach it to server %s",
					  v.id, st, fv_poll_elapsed_ms(&p) / 1000, sid);
	}
}

static int delete_attachment(struct os_client *c, const char *sid, const char *vid, long *status,
			     struct fv_err *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/servers/%s/os-volume_attachments/%s", sid, vid);
	_cleanup_free_ char *what = NULL;
	if (asprintf(&what, "detaching Cinder volume %s from server %s", vid, sid) < 0)
		return fv_err_set(err, ENOMEM, "detach");
	json_t *out = NULL;
	int rc = os_call(c, OS_COMPUTE, "DELETE", path, NULL, NULL, (const long[]){400, 404, 0}, what, status, &out, err);
	json_decref(out);
	return rc;
}

/* Detaches vid from sid and waits until Cinder agrees. */
static int detach_volume(struct os_client *c, const char *vid, const char *sid, struct fv_poll *p, struct fv_err *err)
{
	for (;;) {
		long status;
		if (delete_attachment(c, sid, vid, &status, err) < 0)
			return err->code;
		if (status == 404)
			return 0; /* not attached (any more) */
		if (status != 400)
			return wait_detached(c, vid, sid, p, err);
		/* 400: not in a state Nova can detach from (attaching, detaching). */
		json_t *root, *vol;
		int rc = get_volume(c, vid, &root, &vol, err);
		if (rc == -ENOENT)
			return 0;
		if (rc < 0)
			return rc;
		char st[32];
		snprintf(st, sizeof(st), "%s", vol_status(vol));
		json_decref(root);
		if (!strcmp(st, "detaching"))
			return wait_detached(c, vid, sid, p, err);
		int has = nova_has_attachment(c, sid, vid, err);
		if (has <= 0)
			return has;
		fv_log(LOG_INFO, "volume %s is '%s' on server %s: waiting before detaching it", vid, st, sid);
		int r = fv_poll_sleep(p);
		if (r == -EINTR)
			return fv_err_msg(err, EINTR, "terminated by SIGTERM while detaching volume %s", vid);
		if (r < 0)
			return fv_err_msg(err, ETIMEDOUT,
					  "Cinder volume %s stayed '%s' on server %s for %ld s; Nova cannot detach it yet",
					  vid, st, sid, fv_poll_elapsed_ms(p) / 1000);
	}
}

static int cinder_detach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct cinder *cd = ctx->data;
	const char *pv = call->volume_name;
	struct fv_poll p;
	fv_poll_start(&p, cd->node.conf.attach_timeout_s * 1000, POLL_FIRST_MS, POLL_MAX_MS);
	struct os_client *c = client(cd, p.deadline_ms, err);
	if (!c)
		return err->code;

	char sid[128];
	int rc = find_server(cd, call->node, sid, sizeof(sid), err);
	if (rc == -ENOENT) {
		/* The node's server is gone, and with it every attachment. */
		fv_log(LOG_WARNING, "detach of PV %s: %s; treating it as detached", pv, err->msg);
		record_drop(cd, pv);
		*err = (struct fv_err){0};
		return 0;
	}
	if (rc < 0)
		return rc;

	/* Which volume: this controller's record, if it leads to a volume that
	 * names the PV and is attached to the node; else the PV name recorded
	 * on the volumes themselves (works after a restart or failover). */
	char target[40] = "";
	if (record_get(cd, pv, target, sizeof(target))) {
		json_t *root, *vol;
		rc = get_volume(c, target, &root, &vol, err);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		const char *have = rc == 0 ? vol_meta(vol, PV_META_KEY) : NULL;
		bool names_pv = have && !strcmp(have, pv);
		json_decref(root);
		int has = names_pv ? nova_has_attachment(c, sid, target, err) : 0;
		if (has < 0)
			return has;
		if (!has)
			target[0] = '\0';
	}
	if (!target[0]) {
		json_t *ids = NULL;
		if (volumes_of_pv(c, pv, &ids, err) < 0)
			return err->code;
		size_t i;
		json_t *id;
		json_array_foreach(ids, i, id)
		{
			const char *cand = json_string_value(id);
			int has = nova_has_attachment(c, sid, cand, err);
			if (has < 0) {
				json_decref(ids);
				return has;
			}
			if (!has)
				continue;
			if (target[0]) {
				fv_err_msg(err, EEXIST, "Cinder volumes %s and %s both record PV %s and are attached to server %s",
					   target, cand, pv, sid);
				json_decref(ids);
				return err->code;
			}
			snprintf(target, sizeof(target), "%s", cand);
		}
		json_decref(ids);
	}
	if (!target[0]) {
		record_drop(cd, pv);
		fv_log(LOG_INFO, "no Cinder volume of PV %s is attached to server %s (node %s): nothing to detach", pv, sid,
		       call->node);
		return 0;
	}
	_cleanup_close_ int lock = lock_disk(ctx, target, &p, err);
	if (lock < 0 || detach_volume(c, target, sid, &p, err) < 0)
		return err->code;
	record_drop(cd, pv);
	fv_log(LOG_NOTICE, "detached volume %s (PV %s) from server %s (node %s) in %ld ms", target, pv, sid, call->node,
	       fv_poll_elapsed_ms(&p));
	return 0;
}

static int cinder_isattached(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			     struct fv_err *err)
{
	struct cinder *cd = ctx->data;
	struct volume v;
	if (parse_volume(call->opts, &v, err) < 0)
		return err->code;
	struct os_client *c = client(cd, fv_now_ms() + cd->node.conf.attach_timeout_s * 1000, err);
	if (!c)
		return err->code;
	char sid[128];
	int rc = find_server(cd, call->node, sid, sizeof(sid), err);
	if (rc == -ENOENT) {
		*err = (struct fv_err){0};
		res->attached = false;
		return 0;
	}
	if (rc < 0)
		return rc;
	json_t *root, *vol;
	rc = get_volume(c, v.id, &root, &vol, err);
	if (rc == -ENOENT) {
		*err = (struct fv_err){0};
		res->attached = false;
		return 0;
	}
	if (rc < 0)
		return rc;
	res->attached = vol_attached_to(vol, sid);
	json_decref(root);
	return 0;
}

/* --- the node --- */

/* --- resizing --- */

static int cinder_expandvolume(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			       struct fv_err *err)
{
	struct cinder *cd = ctx->data;
	struct volume v;
	if (parse_volume(call->opts, &v, err) < 0)
		return err->code;
	uint64_t want = (call->new_size + GIB - 1) / GIB; /* Cinder sizes are whole GiB */
	if (!want)
		return fv_err_msg(err, EINVAL, "new size %llu is not a size", (unsigned long long)call->new_size);
	struct fv_poll p;
	fv_poll_start(&p, cd->node.conf.attach_timeout_s * 1000, POLL_FIRST_MS, POLL_MAX_MS);
	struct os_client *c = client(cd, p.deadline_ms, err);
	if (!c)
		return err->code;
	bool asked = false;
	for (;;) {
		json_t *root, *vol;
		if (get_volume(c, v.id, &root, &vol, err) < 0)
			return err->code;
		char st[32];
		snprintf(st, sizeof(st), "%s", vol_status(vol));
		json_int_t size = json_integer_value(json_object_get(vol, "size"));
		json_decref(root);
		if ((uint64_t)size >= want && strcmp(st, "extending")) {
			res->new_size = (uint64_t)size * GIB;
			if (asked)
				fv_log(LOG_NOTICE, "extended volume %s to %lld GiB in %ld ms", v.id, (long long)size,
				       fv_poll_elapsed_ms(&p));
			return 0;
		}
		if (status_is_error(st))
			return fv_err_msg(err, EIO, "Cinder volume %s has status '%s'%s", v.id, st,
					  asked ? " after the extend request" : "");
		if (!asked && (!strcmp(st, "available") || !strcmp(st, "in-use"))) {
			char path[128], what[128];
			snprintf(path, sizeof(path), "/volumes/%s/action", v.id);
			snprintf(what, sizeof(what), "extending Cinder volume %s to %llu GiB", v.id, (unsigned long long)want);
			json_t *body = json_pack("{s:{s:I}}", "os-extend", "new_size", (json_int_t)want);
			long status;
			json_t *out = NULL;
			/* 3.42: an in-use volume may be extended online. */
			int rc = body ? os_call(c, OS_VOLUME, "POST", path, body, (const char *const[]){EXTEND_MICROVERSION, NULL},
						NULL, what, &status, &out, err)
				      : fv_err_set(err, ENOMEM, "expand");
			json_decref(body);
			json_decref(out);
			if (rc < 0)
				return rc;
			asked = true;
			continue;
		}
		int r = fv_poll_sleep(&p);
		if (r == -EINTR)
			return fv_err_msg(err, EINTR, "terminated by SIGTERM while extending volume %s", v.id);
		if (r < 0)
			return fv_err_msg(err, ETIMEDOUT, "Cinder volume %s is still '%s' at %lld GiB after %ld s", v.id, st,
					  (long long)size, fv_poll_elapsed_ms(&p) / 1000);
	}
}

static const struct fv_provider cinder_provider = {
	.name = "cinder",
	.summary = "OpenStack Cinder volumes, attached through Nova and found on the node by serial.",
	.help = "Options (flexVolume.options):\n"
		"  volumeID  required; the Cinder volume's ID (a UUID)\n"
		"  fsType    ext4 (default) or xfs; a blank volume is formatted on first mount\n"
		"Configuration (cinder.conf, mode 0600, owned by root):\n"
		"  [Global]   as for the Kubernetes OpenStack cloud provider: auth-url, username or\n"
		"             user-id, password, tenant-id or tenant-name, domain-name, user-domain-*,\n"
		"             tenant-domain-*, region, os-endpoint-type, application-credential-id,\n"
		"             -name and -secret, ca-file, tls-insecure, cert-file and key-file (a TLS\n"
		"             client certificate), trust-id with trustee-id and trustee-password (a token\n"
		"             scoped to a Keystone trust), use-clouds = true with clouds-file and cloud\n"
		"             (clouds.yaml fills what [Global] leaves unset; mode 0600, owned by root)\n"
		"  [BlockStorage] ignore-volume-az = false (true attaches across availability zones),\n"
		"             node-volume-attach-limit = 256\n"
		"  [flexvol]  attach-timeout = 300 (s), device-dir = " FV_CLOUDDISK_DEFAULT_DEVICE_DIR ",\n"
		"             sysfs-root = /sys, node-lookup = nova-name | metadata | config-drive,\n"
		"             metadata-url = " DEFAULT_METADATA_URL ", config-drive = " DEFAULT_CONFIG_DRIVE "\n"
		"             (trusted only if it is a CD-ROM: any disk can carry the label config-2),\n"
		"             allow-inline = true (false refuses every volume whose name a pod's inline\n"
		"             volume could have, a DNS-1123 label: PVs must then have a '.' in their name),\n"
		"             scsi-rescan = true, rescan-after = 10 (s), udevadm = auto | none | <path>,\n"
		"             http-timeout = 30 (s), http-connect-timeout = 10 (s), http-attempts = 5,\n"
		"             token-margin = 60 (s)\n"
		"  [cinder]   max-volumes = node-volume-attach-limit: volumes a server may have; attach\n"
		"             refuses one more before asking Nova\n"
		"             allow-setuid = false, allow-devices = false (true drops nosuid / nodev),\n"
		"             allowed-fstypes = ext2,btrfs (mounted with no fsType, besides ext4 and xfs)\n"
		"See docs/cinder.md.\n",
	.help_core = fv_block_spec_help,
	.capabilities = cinder_capabilities,
	.setup = cinder_setup,
	.teardown = cinder_teardown,
	.attach = cinder_attach,
	.detach = cinder_detach,
	.isattached = cinder_isattached,
	.waitforattach = fv_clouddisk_op_waitforattach,
	.mountdevice = fv_clouddisk_op_mountdevice,
	.unmountdevice = fv_clouddisk_op_unmountdevice,
	.mount = fv_clouddisk_op_mount,
	.unmount = fv_op_unmount,
	.expandvolume = cinder_expandvolume,
	.expandfs = fv_clouddisk_op_expandfs,
	.config_keys = (const char *const[]){"Global.auth-url", "Global.username", "Global.user-id", "Global.password",
		"Global.tenant-id", "Global.project-id", "Global.tenant-name", "Global.project-name", "Global.domain-id",
		"Global.domain-name", "Global.user-domain-id", "Global.user-domain-name", "Global.tenant-domain-id",
		"Global.project-domain-id", "Global.tenant-domain-name", "Global.project-domain-name", "Global.region",
		"Global.os-endpoint-type", "Global.application-credential-id", "Global.application-credential-name",
		"Global.application-credential-secret", "Global.ca-file", "Global.tls-insecure", "Global.cert-file",
		"Global.key-file", "Global.trust-id", "Global.trustee-id", "Global.trustee-password", "Global.use-clouds",
		"Global.clouds-file", "Global.cloud", "BlockStorage.ignore-volume-az",
		"BlockStorage.node-volume-attach-limit", "cinder.max-volumes", "flexvol.attach-timeout",
		"flexvol.rescan-after", "flexvol.scsi-rescan", "flexvol.device-dir", "flexvol.sysfs-root",
		"flexvol.udevadm", "flexvol.config-drive", "flexvol.node-lookup", "flexvol.metadata-url",
		"flexvol.http-timeout", "flexvol.http-connect-timeout", "flexvol.http-attempts", "flexvol.token-margin",
		"flexvol.allow-inline",
		"cinder.allow-setuid", "cinder.allow-devices", "cinder.allowed-fstypes", FV_CRYPT_CONFIG_KEYS("cinder"), NULL},
	.config_private = true,
	.programs = (const struct fv_program[]){{"mkfs.ext4", "e2fsprogs"}, {"mkfs.xfs", "xfsprogs"},
		{"resize2fs", "e2fsprogs"}, {"xfs_growfs", "xfsprogs"}, {"udevadm", "udev", true}, {NULL}},
	.filesystems = (const char *const[]){"ext4", "xfs", NULL},
	.doctor = cinder_doctor,
};

int main(int argc, char **argv)
{
	return fv_main(&cinder_provider, argc, argv);
}
