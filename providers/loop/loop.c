/* loop: file-backed block volumes. An image file under image-root is bound to
 * a loop device on the node (waitforattach), formatted if blank and mounted
 * on the global path (mountdevice), and bind-mounted into pods (mount). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "block.h"
#include "cleanup.h"
#include "flexvol.h"
#include "lock.h"
#include "log.h"
#include "mount.h"
#include "path.h"
#include "loopdev.h"

#define DEFAULT_IMAGE_ROOT "/var/lib/flexvol/loop"
#define IMAGE_LOCK_TIMEOUT_MS (10L * 60 * 1000)

struct loop_conf {
	char image_root[4096];
};

static int loop_setup(struct fv_ctx *ctx, struct fv_err *err)
{
	struct loop_conf *c = calloc(1, sizeof(*c));
	if (!c)
		return fv_err_set(err, ENOMEM, "loop setup");
	const char *root = fv_config_get(ctx->config, "loop", "image-root", DEFAULT_IMAGE_ROOT);
	ctx->data = c;
	if (root[0] != '/')
		return fv_err_msg(err, EINVAL, "configuration '%s': [loop] image-root must be an absolute path",
				  fv_config_path(ctx->config));
	snprintf(c->image_root, sizeof(c->image_root), "%s", root);
	return 0;
}

static void loop_teardown(struct fv_ctx *ctx)
{
	free(ctx->data);
}

static void loop_capabilities(struct fv_ctx *ctx, struct fv_caps *caps)
{
	(void)ctx;
	*caps = (struct fv_caps){.attach = true, .selinux_relabel = true, .supports_metrics = true, .fs_group = true};
}

/* The options every loop call checks the same way. */
struct loop_volume {
	const char *image;   /* relative to image-root */
	bool has_size;
	uint64_t size;
};

static int parse_volume(const struct fv_opts *o, struct loop_volume *v, struct fv_err *err)
{
	static const char *const known[] = {"image", "size", NULL};
	if (fv_opts_check_known(o, known, err) < 0)
		return err->code;
	v->image = fv_opts_get(o, "image");
	if (!v->image)
		return fv_err_msg(err, EINVAL, "option 'image' is required (a path relative to the image root)");
	if (fv_path_check_relative(v->image, "option 'image'", err) < 0)
		return err->code;
	const char *size = fv_opts_get(o, "size");
	v->has_size = size != NULL;
	if (size && (fv_parse_bytes(size, &v->size) < 0 || v->size < 1024 * 1024))
		return fv_err_msg(err, EINVAL, "option 'size' must be at least 1Mi, in bytes or with Ki/Mi/Gi/Ti, not '%s'",
				  size);
	const char *fstype = fv_opts_fstype(o);
	if (fstype && strcmp(fstype, "ext4") && strcmp(fstype, "xfs"))
		return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", fstype);
	return 0;
}

/* Opens the image beneath image-root; symlinks may not lead out of it. With
 * create, a missing image is made sparse with the requested size. */
static int open_image(const struct loop_conf *c, const struct loop_volume *v, bool create, struct fv_err *err)
{
	if (create && fv_mkdir_p(c->image_root, 0700, err) < 0)
		return err->code;
	_cleanup_close_ int root = open(c->image_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return fv_err_set(err, errno, "cannot open image root '%s'", c->image_root);
	struct fv_err e2 = {0};
	_cleanup_close_ int fd = fv_path_open_beneath(root, v->image, O_RDWR, 0, &e2);
	if (fd < 0 && e2.code == -ENOENT && create && v->has_size) {
		fd = fv_path_open_beneath(root, v->image, O_RDWR | O_CREAT | O_EXCL, 0600, &e2);
		if (fd >= 0 && ftruncate(fd, (off_t)v->size) < 0) {
			int e = errno;
			unlinkat(root, v->image, 0);
			return fv_err_set(err, e, "cannot size image '%s'", v->image);
		}
		if (fd >= 0)
			fv_log(LOG_NOTICE, "created sparse image %s/%s of %llu bytes", c->image_root, v->image,
			       (unsigned long long)v->size);
	}
	if (fd < 0) {
		if (e2.code == -ENOENT)
			return fv_err_msg(err, ENOENT, "image '%s' does not exist under '%s'%s", v->image, c->image_root,
					  create ? " (set option 'size' to create it)" : "");
		*err = e2;
		return fv_err_prefix(err, "image under '%s'", c->image_root);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect image '%s'", v->image);
	if (!S_ISREG(st.st_mode))
		return fv_err_msg(err, EINVAL, "image '%s' is not a regular file", v->image);
	if (st.st_size == 0)
		return fv_err_msg(err, EINVAL, "image '%s' is empty", v->image);
	return fv_steal_fd(&fd);
}

static int lock_image(struct fv_ctx *ctx, const struct loop_volume *v, struct fv_err *err)
{
	char key[4200];
	snprintf(key, sizeof(key), "image:%s", v->image);
	return fv_lock_acquire(ctx->run_dir, ctx->provider->name, key, IMAGE_LOCK_TIMEOUT_MS, err);
}

/* attach, detach and isattached run in the controller-manager, away from the
 * node: nothing to do there but check the options. */
static int loop_attach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)ctx;
	(void)res;
	struct loop_volume v;
	return parse_volume(call->opts, &v, err);
}

static int loop_detach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)ctx, (void)call, (void)res, (void)err;
	return 0;
}

static int loop_isattached(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)ctx;
	struct loop_volume v;
	if (parse_volume(call->opts, &v, err) < 0)
		return err->code;
	res->attached = true;
	return 0;
}

static int loop_waitforattach(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			      struct fv_err *err)
{
	struct loop_conf *c = ctx->data;
	struct loop_volume v;
	if (parse_volume(call->opts, &v, err) < 0)
		return err->code;
	_cleanup_close_ int lock = lock_image(ctx, &v, err);
	if (lock < 0)
		return lock;
	_cleanup_close_ int img = open_image(c, &v, true, err);
	if (img < 0)
		return img;
	char dev[64];
	int found = loopdev_find(img, dev, sizeof(dev), err);
	if (found < 0)
		return found;
	if (!found && loopdev_attach(img, v.image, dev, sizeof(dev), err) < 0)
		return err->code;
	if (!found)
		fv_log(LOG_NOTICE, "bound image %s to %s", v.image, dev);
	res->device = strdup(dev);
	return res->device ? 0 : fv_err_set(err, ENOMEM, "waitforattach");
}

/* The loop device of the volume's image, checked against the device kubelet
 * passed: a stale device name must never be formatted or mounted. */
static int verified_device(struct fv_ctx *ctx, const struct fv_call *call, char *dev, size_t size, struct fv_err *err)
{
	struct loop_volume v;
	if (parse_volume(call->opts, &v, err) < 0)
		return err->code;
	_cleanup_close_ int img = open_image(ctx->data, &v, false, err);
	if (img < 0)
		return img;
	int found = loopdev_find(img, dev, size, err);
	if (found < 0)
		return found;
	if (!found)
		return fv_err_msg(err, ENODEV, "image '%s' is not bound to a loop device (waitforattach has not run)",
				  v.image);
	if (strcmp(dev, call->device))
		return fv_err_msg(err, ENODEV, "device '%s' is not the loop device of image '%s' (that is %s)",
				  call->device, v.image, dev);
	return 0;
}

static int loop_mountdevice(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	char dev[64];
	if (verified_device(ctx, call, dev, sizeof(dev), err) < 0)
		return err->code;
	return fv_block_mount_device(dev, call->dir, fv_opts_fstype(call->opts), fv_opts_readonly(call->opts), err);
}

/* True when the loop device's backing file lies under image-root: only those
 * are ours to release. */
static bool is_our_loop(const struct loop_conf *c, dev_t devno)
{
	char backing[4096];
	char root[4096];
	if (major(devno) != 7 || loopdev_backing_file(devno, backing, sizeof(backing)) < 0 || !backing[0])
		return false;
	if (!realpath(c->image_root, root))
		return false;
	size_t n = strlen(root);
	return !strncmp(backing, root, n) && backing[n] == '/';
}

static int loop_unmountdevice(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res,
			      struct fv_err *err)
{
	(void)res;
	int m = fv_is_mountpoint(call->dir, err);
	if (m <= 0)
		return m == -ENOENT ? 0 : m;
	dev_t devno;
	if (fv_mounted_dev(call->dir, &devno, err) < 0)
		return err->code;
	if (fv_unmount(call->dir, err) < 0)
		return err->code;
	if (!is_our_loop(ctx->data, devno))
		return 0;
	if (loopdev_detach(devno, err) < 0)
		return err->code;
	fv_log(LOG_NOTICE, "released /dev/loop%u", minor(devno));
	return 0;
}

static int loop_mount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)ctx, (void)res;
	struct loop_volume v;
	if (parse_volume(call->opts, &v, err) < 0)
		return err->code;
	return fv_mount_pod_from_global(call->dir, fv_opts_readonly(call->opts), err);
}

static const struct fv_provider loop_provider = {
	.name = "loop",
	.summary = "Block volumes backed by image files on the node (loop devices), formatted if blank.",
	.help = "Options (flexVolume.options):\n"
		"  image   required; the image file, relative to image-root ('..', absolute paths and\n"
		"          symlinks leading outside image-root are refused)\n"
		"  size    optional; creates a sparse image of this size when it does not exist yet\n"
		"          (bytes, or with a Ki/Mi/Gi/Ti suffix; at least 1Mi)\n"
		"  fsType  ext4 (default) or xfs; a blank image is formatted on first mount\n"
		"Configuration ([loop] in loop.conf):\n"
		"  image-root = " DEFAULT_IMAGE_ROOT "\n"
		"  allow-setuid = false, allow-devices = false   true drops nosuid / nodev from the mounts\n"
		"  allowed-fstypes = ext2,btrfs   mounted from an image with no fsType, besides ext4 and xfs\n",
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
};

int main(int argc, char **argv)
{
	return fv_main(&loop_provider, argc, argv);
}
