/* loop: file-backed block volumes. An image file under image-root is bound to
 * a loop device on the node (waitforattach), formatted if blank and mounted
 * on the global path (mountdevice), and bind-mounted into pods (mount). */
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "block.h"
#include "cleanup.h"
#include "crypt.h"
#include "cryptconf.h"
#include "dmcrypt.h"
#include "flexvol.h"
#include "lock.h"
#include "log.h"
#include "mount.h"
#include "path.h"
#include "loopdev.h"

#define DEFAULT_IMAGE_ROOT "/var/lib/flexvol/loop"
#define DEFAULT_MAX_SIZE "1Ti"
#define IMAGE_LOCK_TIMEOUT_MS (10L * 60 * 1000)
#define RELEASE_WAIT_MS 2000

struct loop_conf {
	char image_root[4096];
	uint64_t max_size;  /* the largest 'size' a volume may ask for */
	bool per_namespace; /* pods reach only images under image-root/<namespace>/ */
};

static int loop_setup(struct fv_ctx *ctx, struct fv_err *err)
{
	struct loop_conf *c = calloc(1, sizeof(*c));
	if (!c)
		return fv_err_set(err, ENOMEM, "loop setup");
	ctx->data = c;
	const char *root = fv_config_get(ctx->config, "loop", "image-root", DEFAULT_IMAGE_ROOT);
	if (root[0] != '/')
		return fv_err_msg(err, EINVAL, "configuration '%s': [loop] image-root must be an absolute path",
				  fv_config_path(ctx->config));
	snprintf(c->image_root, sizeof(c->image_root), "%s", root);
	const char *max = fv_config_get(ctx->config, "loop", "max-size", DEFAULT_MAX_SIZE);
	if (fv_parse_bytes(max, &c->max_size) < 0)
		return fv_err_msg(err, EINVAL, "configuration '%s': [loop] max-size must be bytes or with Ki/Mi/Gi/Ti, not '%s'",
				  fv_config_path(ctx->config), max);
	return fv_config_get_bool(ctx->config, "loop", "per-namespace", false, &c->per_namespace, err);
}

static void loop_teardown(struct fv_ctx *ctx)
{
	free(ctx->data);
}

static void loop_capabilities(struct fv_ctx *ctx, struct fv_caps *caps)
{
	(void)ctx;
	/* requiresFSResize: kubelet calls expandfs (the image, the device and the file system grow there). */
	*caps = (struct fv_caps){.attach = true, .selinux_relabel = true, .supports_metrics = true, .fs_group = true,
				 .requires_fs_resize = true};
}

/* The options every loop call checks the same way. */
struct loop_volume {
	const char *image;   /* relative to image-root */
	bool has_size;
	uint64_t size;
	struct fv_block_spec spec; /* fsType, readwrite */
};

static int parse_volume(const struct loop_conf *c, const struct fv_opts *o, struct loop_volume *v,
			struct fv_err *err)
{
	static const char *const known[] = {"image", "size", NULL};
	if (fv_opts_check_known(o, known, fv_block_spec_keys, err) < 0)
		return err->code;
	v->image = fv_opts_get(o, "image");
	if (!v->image)
		return fv_err_msg(err, EINVAL, "option 'image' is required (a path relative to the image root)");
	if (fv_path_check_relative(v->image, "option 'image'", err) < 0)
		return err->code;
	if (fv_block_spec_from_opts(o, &v->spec, err) < 0)
		return err->code;
	const char *size = fv_opts_get(o, "size");
	v->has_size = size != NULL;
	if (size && (fv_parse_bytes(size, &v->size) < 0 || v->size < 1024 * 1024))
		return fv_err_msg(err, EINVAL, "option 'size' must be at least 1Mi, in bytes or with Ki/Mi/Gi/Ti, not '%s'",
				  size);
	if (size && v->size > c->max_size)
		return fv_err_msg(err, EFBIG, "option 'size' (%s) is over this node's limit ([loop] max-size = %llu bytes)",
				  size, (unsigned long long)c->max_size);
	const char *fstype = fv_opts_fstype(o);
	if (fstype && strcmp(fstype, "ext4") && strcmp(fstype, "xfs"))
		return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", fstype);
	/* The loop devices are bound without partition scanning. */
	if (v->spec.partition)
		return fv_err_msg(err, EINVAL, "option 'partition' is for cloud disks; a loop volume is a whole image");
	return 0;
}

/* Makes the image at its full size under no name (O_TMPFILE), then links it
 * in: a crash leaves either no image or a whole one, never an empty file.
 * -EEXIST without err when another call linked it first. */
static int create_image(int root, const char *rel, uint64_t size, struct fv_err *err)
{
	const char *slash = strrchr(rel, '/');
	_cleanup_close_ int sub = -1;
	int dir = root;
	if (slash) {
		char parent[4096];
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - rel), rel);
		if ((sub = fv_path_open_beneath(root, parent, O_PATH | O_DIRECTORY, 0, err)) < 0)
			return sub;
		dir = sub;
	}
	_cleanup_close_ int fd = openat(dir, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return fv_err_set(err, errno, "cannot create image '%s' (its directory must support O_TMPFILE)", rel);
	if (ftruncate(fd, (off_t)size) < 0)
		return fv_err_set(err, errno, "cannot size image '%s'", rel);
	if (linkat(fd, "", dir, slash ? slash + 1 : rel, AT_EMPTY_PATH) < 0)
		return errno == EEXIST ? -EEXIST : fv_err_set(err, errno, "cannot create image '%s'", rel);
	return fv_steal_fd(&fd);
}

/* Opens the image beneath root_path; symlinks may not lead out of it. With
 * create, a missing image is made sparse with the requested size. */
static int open_image(const char *root_path, const struct loop_volume *v, const char *rel, bool create,
		      struct fv_err *err)
{
	if (create && fv_mkdir_p(root_path, 0700, err) < 0)
		return err->code;
	_cleanup_close_ int root = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return fv_err_set(err, errno, "cannot open image root '%s'", root_path);
	struct fv_err e2 = {0};
	_cleanup_close_ int fd = fv_path_open_beneath(root, rel, O_RDWR, 0, &e2);
	if (fd < 0 && e2.code == -ENOENT && create && v->has_size) {
		fd = create_image(root, rel, v->size, err);
		if (fd >= 0)
			fv_log(LOG_NOTICE, "created sparse image %s/%s of %llu bytes", root_path, v->image,
			       (unsigned long long)v->size);
		else if (fd != -EEXIST)
			return fd;
		else
			fd = fv_path_open_beneath(root, rel, O_RDWR, 0, &e2);
	}
	if (fd < 0) {
		if (e2.code == -ENOENT)
			return fv_err_msg(err, ENOENT, "image '%s' does not exist under '%s'%s", rel, root_path,
					  create ? " (set option 'size' to create it)" : "");
		*err = e2;
		return fv_err_prefix(err, "image under '%s'", root_path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect image '%s'", v->image);
	if (!S_ISREG(st.st_mode))
		return fv_err_msg(err, EINVAL, "image '%s' is not a regular file", v->image);
	return fv_steal_fd(&fd);
}

/* Two names of one file (a symlink inside image-root) share one lock. */
static int lock_image(struct fv_ctx *ctx, const struct loopdev_image *id, struct fv_err *err)
{
	char key[64];
	snprintf(key, sizeof(key), "image:%llu:%llu", (unsigned long long)id->dev, (unsigned long long)id->ino);
	return fv_lock_acquire(ctx->run_dir, ctx->provider->name, key, IMAGE_LOCK_TIMEOUT_MS, err);
}

/* Opens the volume's image and locks it; the lock fd goes to *lock. An empty
 * image (left by a version that created images in two steps) is sized when
 * the volume has a size; it held nothing to lose. */
static int open_locked_image(struct fv_ctx *ctx, const struct loop_volume *v, bool create, int *lock,
			     struct loopdev_image *id, struct fv_err *err)
{
	const struct loop_conf *c = ctx->data;
	_cleanup_close_ int img = open_image(c->image_root, v, v->image, create, err);
	struct stat st;
	if (img < 0)
		return img;
	if (fstat(img, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect image '%s'", v->image);
	*id = (struct loopdev_image){.dev = st.st_dev, .ino = st.st_ino};
	if ((*lock = lock_image(ctx, id, err)) < 0)
		return *lock;
	if (fstat(img, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect image '%s'", v->image);
	if (st.st_size == 0 && create && v->has_size) {
		if (ftruncate(img, (off_t)v->size) < 0)
			return fv_err_set(err, errno, "cannot size empty image '%s'", v->image);
		fv_log(LOG_NOTICE, "sized empty image %s/%s to %llu bytes", c->image_root, v->image,
		       (unsigned long long)v->size);
	} else if (st.st_size == 0) {
		return fv_err_msg(err, EINVAL, "image '%s' is empty", v->image);
	}
	return fv_steal_fd(&img);
}

/* attach, detach and isattached run in the controller-manager, away from the
 * node: nothing to do there but check the options. */
static int loop_attach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct loop_volume v;
	return parse_volume(ctx->data, call->opts, &v, err);
}

static int loop_detach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)ctx, (void)call, (void)res, (void)err;
	return 0;
}

static int loop_isattached(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	struct loop_volume v;
	if (parse_volume(ctx->data, call->opts, &v, err) < 0)
		return err->code;
	res->attached = true;
	return 0;
}

/* Adopts a loop device bound to the image without AUTOCLEAR (by an older
 * version of this driver): released now if nothing uses it, else when its
 * last user goes. */
static int adopt_device(int dev_fd, const char *dev, struct fv_err *err)
{
	return loopdev_autoclear(dev_fd, err) < 0 ? fv_err_prefix(err, "%s", dev) : 0;
}

/* Binds nothing: a device bound here would be freed by AUTOCLEAR as soon as
 * this call exits (kubelet only hands the reply to mountdevice). It checks
 * the options, creates a missing image, and replies with the image's path. */
static int loop_waitforattach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			      struct fv_err *err)
{
	struct loop_conf *c = ctx->data;
	struct loop_volume v;
	if (parse_volume(c, call->opts, &v, err) < 0)
		return err->code;
	_cleanup_close_ int lock = -1;
	struct loopdev_image id;
	_cleanup_close_ int img = open_locked_image(ctx, &v, true, &lock, &id, err);
	if (img < 0)
		return img;
	_cleanup_close_ int dev_fd = -1;
	char dev[64];
	int found = loopdev_find(&id, &dev_fd, dev, sizeof(dev), err);
	if (found < 0 || (found && adopt_device(dev_fd, dev, err) < 0))
		return err->code;
	if (asprintf(&res->device, "%s/%s", c->image_root, v.image) < 0) {
		res->device = NULL;
		return fv_err_set(err, ENOMEM, "waitforattach");
	}
	return 0;
}

/* True when the open loop device is bound to an image under image-root:
 * only those are ours to release. */
static bool is_our_loop(const struct loop_conf *c, int dev_fd)
{
	struct stat st;
	char backing[4096];
	char root[4096];
	if (fstat(dev_fd, &st) < 0 || loopdev_backing_file(st.st_rdev, backing, sizeof(backing)) < 0 || !backing[0])
		return false;
	if (!realpath(c->image_root, root))
		return false;
	size_t n = strlen(root);
	return !strncmp(backing, root, n) && backing[n] == '/';
}

/* dir is mounted: fine if from the image's loop device, an error otherwise. */
static int check_mounted_image(const char *dir, const struct loopdev_image *id, const char *image,
			       struct fv_err *err)
{
	dev_t devno;
	if (fv_mounted_dev(dir, &devno, err) < 0)
		return err->code;
	fv_dmcrypt_lower(devno, &devno); /* encrypted: the loop device is under the mapping */
	struct fv_err e2 = {0};
	_cleanup_close_ int dev_fd = loopdev_open(devno, &e2);
	struct loopdev_image have = {0};
	if (dev_fd >= 0 && loopdev_image_of(dev_fd, &have, &e2) == 0 && have.dev == id->dev && have.ino == id->ino)
		return 0;
	return fv_err_msg(err, EBUSY, "'%s' has another file system mounted (device %u:%u, not image '%s')", dir,
			  major(devno), minor(devno), image);
}

/* Closes our fd of a device no longer mounted where we used it, and waits a
 * little for the kernel to release it: a transient opener (blkid, udev,
 * another call scanning the devices) delays AUTOCLEAR to its own close, and
 * the reply should find the device gone. A device still mounted elsewhere
 * (another volume naming the same image) stays, and is not waited for. */
static void release_device(int *dev_fd)
{
	struct stat st;
	char backing[4096];
	if (fstat(*dev_fd, &st) < 0 || loopdev_backing_file(st.st_rdev, backing, sizeof(backing)) < 0 || !backing[0])
		return;
	close(fv_steal_fd(dev_fd));
	struct libmnt_table *t = mnt_new_table_from_file("/proc/self/mountinfo");
	bool mounted = !t || mnt_table_find_devno(t, st.st_rdev, MNT_ITER_FORWARD);
	mnt_unref_table(t);
	if (!mounted && loopdev_wait_released(st.st_rdev, backing, RELEASE_WAIT_MS) < 0)
		fv_log(LOG_NOTICE, "/dev/loop%u is still open; the kernel releases it when its last user closes it",
		       minor(st.st_rdev));
}

/* Binds the image here, not in waitforattach: this call holds the device
 * open from the bind to the mount, and if it dies or the mount is refused,
 * the kernel's AUTOCLEAR frees the device with its last fd. The device
 * kubelet passes is not used: the image comes from the options. */
static int loop_mountdevice(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct loop_volume v;
	if (parse_volume(ctx->data, call->opts, &v, err) < 0)
		return err->code;
	_cleanup_close_ int lock = -1;
	struct loopdev_image id;
	_cleanup_close_ int img = open_locked_image(ctx, &v, false, &lock, &id, err);
	if (img < 0)
		return img;
	int m = fv_is_mountpoint(call->dir, err);
	if (m < 0 && err->code != -ENOENT)
		return m;
	if (m > 0)
		return check_mounted_image(call->dir, &id, v.image, err);
	*err = (struct fv_err){0};
	_cleanup_close_ int dev_fd = -1;
	char dev[64];
	int found = loopdev_find(&id, &dev_fd, dev, sizeof(dev), err);
	if (found < 0 || (found && adopt_device(dev_fd, dev, err) < 0))
		return err->code;
	if (!found) {
		if ((dev_fd = loopdev_attach(img, v.image, dev, sizeof(dev), err)) < 0)
			return dev_fd;
		fv_log(LOG_NOTICE, "bound image %s to %s", v.image, dev);
	}
	if (fv_block_mount_device(dev, call->dir, &v.spec, err) < 0) {
		release_device(&dev_fd);
		return err->code;
	}
	return 0;
}

/* Unmounting releases the device: it is AUTOCLEAR, and the mount was its
 * last user. When the path is no longer mounted, whoever unmounted it has
 * released the device the same way: there is nothing left to do. */
static int loop_unmountdevice(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			      struct fv_err *err)
{
	(void)res;
	int m = fv_is_mountpoint(call->dir, err);
	if (m < 0 && m != -ENOENT)
		return m;
	/* Encrypted: the mapping may outlive the mount (a call killed between the two). */
	if (m <= 0)
		return (*err = (struct fv_err){0}, fv_crypt_close(call->dir, err));
	dev_t devno;
	if (fv_mounted_dev(call->dir, &devno, err) < 0)
		return err->code;
	fv_dmcrypt_lower(devno, &devno); /* encrypted: the loop device is under the mapping */
	struct fv_err ignored = {0};
	_cleanup_close_ int dev_fd = loopdev_open(devno, &ignored);
	_cleanup_close_ int lock = -1;
	if (dev_fd >= 0 && !is_our_loop(ctx->data, dev_fd))
		close(fv_steal_fd(&dev_fd)); /* not ours: unmount only */
	if (dev_fd >= 0) {
		struct loopdev_image id;
		if (loopdev_image_of(dev_fd, &id, err) < 0 || (lock = lock_image(ctx, &id, err)) < 0 ||
		    loopdev_autoclear(dev_fd, err) < 0)
			return err->code;
	}
	if (fv_unmount(call->dir, err) < 0 || fv_crypt_close(call->dir, err) < 0)
		return err->code;
	if (dev_fd >= 0) {
		release_device(&dev_fd);
		fv_log(LOG_NOTICE, "unmounted /dev/loop%u", minor(devno));
	}
	return 0;
}

/* Binds the global mount into the pod once it is shown to be the image the
 * options name: an inline volume named like another (same global path)
 * cannot borrow its file system. With per-namespace, that image must lie
 * under image-root/<the pod's namespace>/. */
static int loop_mount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	const struct loop_conf *c = ctx->data;
	struct loop_volume v;
	if (parse_volume(c, call->opts, &v, err) < 0)
		return err->code;
	char root[sizeof(c->image_root) + 256];
	const char *rel = v.image;
	snprintf(root, sizeof(root), "%s", c->image_root);
	if (c->per_namespace) {
		const char *ns = fv_opts_get(call->opts, FV_KEY_POD_NAMESPACE);
		size_t n = ns ? strlen(ns) : 0;
		if (!n || strchr(ns, '/') || ns[0] == '.')
			return fv_err_msg(err, EINVAL, "the pod's namespace is missing or invalid ([loop] per-namespace = true)");
		if (strncmp(v.image, ns, n) || v.image[n] != '/')
			return fv_err_msg(err, EACCES, "image '%s' is not under '%s/', the directory of namespace %s "
						       "([loop] per-namespace = true)",
					  v.image, ns, ns);
		snprintf(root, sizeof(root), "%s/%s", c->image_root, ns);
		rel = v.image + n + 1;
	}
	_cleanup_close_ int img = open_image(root, &v, rel, false, err);
	struct stat st;
	if (img < 0)
		return img;
	if (fstat(img, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect image '%s'", v.image);
	char global[4096];
	if (fv_path_global_from_pod_dir(call->dir, global, sizeof(global), err) < 0)
		return err->code;
	int m = fv_is_mountpoint(global, err);
	if (m < 0 && err->code != -ENOENT)
		return m;
	*err = (struct fv_err){0};
	struct loopdev_image id = {.dev = st.st_dev, .ino = st.st_ino};
	if (m > 0 && check_mounted_image(global, &id, v.image, err) < 0)
		return err->code;
	return fv_mount_pod_from_global(call->dir, fv_opts_readonly(call->opts), err);
}

/* expandfs: kubelet passes the PV's new capacity (new_size) and the pod
 * volume dir (or the global path). The image grows to new_size (sparse; never
 * shrinks, at most max-size), the loop device takes the new size
 * (LOOP_SET_CAPACITY) and the file system grows online to the format record
 * offset of the new size (block.c). Idempotent: a second call finds the
 * image, the device and the file system already grown. */
static int loop_expandfs(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	const struct loop_conf *c = ctx->data;
	struct loop_volume v;
	if (parse_volume(c, call->opts, &v, err) < 0)
		return err->code;
	if (call->new_size > c->max_size)
		return fv_err_msg(err, EFBIG, "the new size (%llu bytes) is over this node's limit ([loop] max-size = %llu "
					      "bytes)",
				  (unsigned long long)call->new_size, (unsigned long long)c->max_size);
	_cleanup_close_ int lock = -1;
	struct loopdev_image id;
	_cleanup_close_ int img = open_locked_image(ctx, &v, false, &lock, &id, err);
	if (img < 0)
		return img;
	int m = fv_is_mountpoint(call->dir, err);
	if (m < 0 && err->code != -ENOENT)
		return m;
	if (m <= 0)
		return fv_err_msg(err, EINVAL, "'%s' is not mounted: a loop volume grows online only", call->dir);
	if (check_mounted_image(call->dir, &id, v.image, err) < 0)
		return err->code;
	_cleanup_close_ int dev_fd = -1;
	char dev[64];
	int found = loopdev_find(&id, &dev_fd, dev, sizeof(dev), err);
	if (found < 0)
		return err->code;
	if (!found)
		return fv_err_msg(err, ENXIO, "image '%s' is not bound to a loop device", v.image);
	struct stat st;
	if (fstat(img, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect image '%s'", v.image);
	if ((uint64_t)st.st_size < call->new_size) {
		if (ftruncate(img, (off_t)call->new_size) < 0)
			return fv_err_set(err, errno, "cannot grow image '%s' to %llu bytes", v.image,
					  (unsigned long long)call->new_size);
		fv_log(LOG_NOTICE, "grew image %s/%s from %llu to %llu bytes", c->image_root, v.image,
		       (unsigned long long)st.st_size, (unsigned long long)call->new_size);
	}
	if (loopdev_set_capacity(dev_fd, err) < 0)
		return fv_err_prefix(err, "%s", dev);
	return fv_block_grow_fs(dev, call->dir, err);
}

/* For status: the loop devices backed by files under image-root are ours. */
static const char *loop_image_root(struct fv_ctx *ctx)
{
	return ((const struct loop_conf *)ctx->data)->image_root;
}

static const struct fv_provider loop_provider = {
	.name = "loop",
	.summary = "Block volumes backed by image files on the node (loop devices), formatted if blank.",
	.help = "Options (flexVolume.options):\n"
		"  image   required; the image file, relative to image-root ('..', absolute paths and\n"
		"          symlinks leading outside image-root are refused)\n"
		"  size    optional; creates a sparse image of this size when it does not exist yet\n"
		"          (bytes, or with a Ki/Mi/Gi/Ti suffix; at least 1Mi, at most max-size)\n"
		"Configuration ([loop] in loop.conf):\n"
		"  image-root = " DEFAULT_IMAGE_ROOT "\n"
		"  allow-setuid = false, allow-devices = false   true drops nosuid / nodev from the mounts\n"
		"  allowed-fstypes = ext2,btrfs   mounted from an image with no fsType, besides ext4 and xfs\n"
		"  max-size = " DEFAULT_MAX_SIZE "          the largest 'size' a volume may ask for\n"
		"  per-namespace = false   true: a pod is given only images under\n"
		"                          image-root/<its namespace>/ (checked in mount)\n"
		"waitforattach replies with the image's path; mountdevice binds the loop device\n"
		"(auto-cleared by the kernel: it lives as long as the mount). expandfs grows the image to\n"
		"the new size, the loop device and the file system online (docs/loop.md, Resizing).\n",
	.help_core = fv_block_spec_help,
	.capabilities = loop_capabilities,
	.setup = loop_setup,
	.teardown = loop_teardown,
	.attach = loop_attach,
	.detach = loop_detach,
	.isattached = loop_isattached,
	.waitforattach = loop_waitforattach,
	.mountdevice = loop_mountdevice,
	.unmountdevice = loop_unmountdevice,
	.mount = loop_mount,
	.unmount = fv_op_unmount,
	.expandfs = loop_expandfs,
	.config_keys = (const char *const[]){"loop.image-root", "loop.allow-setuid", "loop.allow-devices",
					     "loop.allowed-fstypes", "loop.max-size", "loop.per-namespace",
					     FV_CRYPT_CONFIG_KEYS("loop"), NULL},
	.programs = (const struct fv_program[]){{"mkfs.ext4", "e2fsprogs"}, {"mkfs.xfs", "xfsprogs"}, {NULL}},
	.filesystems = (const char *const[]){"ext4", "xfs", NULL},
	.needs_loop = true,
	.loop_image_root = loop_image_root,
};

int main(int argc, char **argv)
{
	return fv_main(&loop_provider, argc, argv);
}
