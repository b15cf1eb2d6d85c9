#include "block.h"
#include <blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "cleanup.h"
#include "lock.h"
#include "log.h"
#include "mount.h"
#include "run.h"

#define MIB (1024 * 1024)
#define MKFS_TIMEOUT_MS (20L * 60 * 1000)

static void probe_free(blkid_probe *p)
{
	if (*p)
		blkid_free_probe(*p);
}
#define _cleanup_probe_ __attribute__((cleanup(probe_free)))

int fv_block_devno(const char *device, dev_t *devno, struct fv_err *err)
{
	struct stat st;
	if (stat(device, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect device '%s'", device);
	if (!S_ISBLK(st.st_mode))
		return fv_err_msg(err, ENOTBLK, "'%s' is not a block device", device);
	*devno = st.st_rdev;
	return 0;
}

static int read_exact(int fd, unsigned char *buf, size_t n, off_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, buf + done, n - done, off + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
	}
	return 0;
}

/* The first MiB must read back as zeros and the last MiB must be readable. */
static int check_blank(const char *device, struct fv_err *err)
{
	_cleanup_close_ int fd = open(device, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open device '%s'", device);
	uint64_t size = 0;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		return fv_err_set(err, errno, "cannot get the size of '%s'", device);
	if (size == 0)
		return fv_err_msg(err, EIO, "device '%s' has size 0 (not attached yet?)", device);
	size_t head = size < MIB ? (size_t)size : MIB;
	_cleanup_free_ unsigned char *buf = malloc(MIB);
	if (!buf)
		return fv_err_set(err, ENOMEM, "checking '%s'", device);
	int r = read_exact(fd, buf, head, 0);
	if (r < 0)
		return fv_err_set(err, -r, "device '%s' is not readable; refusing to format it", device);
	for (size_t i = 0; i < head; i++)
		if (buf[i])
			return fv_err_msg(err, EEXIST,
					  "device '%s' holds data (no known file system, but byte %zu of its first MiB "
					  "is not zero); refusing to format it",
					  device, i);
	r = read_exact(fd, buf, head, (off_t)(size - head));
	if (r < 0)
		return fv_err_set(err, -r, "the end of device '%s' is not readable; refusing to format it", device);
	return 0;
}

int fv_block_probe(const char *device, enum fv_block_content *content, char **fstype, struct fv_err *err)
{
	_cleanup_probe_ blkid_probe pr = blkid_new_probe_from_filename(device);
	if (!pr)
		return fv_err_set(err, errno ? errno : EIO, "cannot probe device '%s'", device);
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	int rc = blkid_do_safeprobe(pr);
	if (rc == -2)
		return fv_err_msg(err, EEXIST, "device '%s' holds data (several conflicting signatures); refusing to touch it",
				  device);
	if (rc < 0)
		return fv_err_msg(err, EIO, "cannot probe device '%s'; refusing to format it", device);
	const char *v = NULL;
	if (rc == 0 && blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0 && v) {
		*fstype = strdup(v);
		if (!*fstype)
			return fv_err_set(err, ENOMEM, "probing '%s'", device);
		*content = FV_BLOCK_FILESYSTEM;
		return 0;
	}
	if (rc == 0 && blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL) == 0 && v)
		return fv_err_msg(err, EEXIST, "device '%s' holds data (a %s partition table); refusing to format it",
				  device, v);
	if (rc == 0)
		return fv_err_msg(err, EEXIST, "device '%s' holds data (an unrecognised signature); refusing to format it",
				  device);
	int r = check_blank(device, err);
	if (r < 0)
		return r;
	*content = FV_BLOCK_BLANK;
	return 0;
}

int fv_block_format(const char *device, const char *fstype, struct fv_err *err)
{
	char tool[64];
	if (!strcmp(fstype, "ext4")) {
		if (fv_tool_path("mkfs.ext4", "e2fsprogs", tool, sizeof(tool), err) < 0)
			return err->code;
		/* As the kubelet's own formatter does: no reserved blocks, inode
		 * tables and journal written now rather than in the background. */
		const char *argv[] = {tool, "-q", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0", "--",
				      device, NULL};
		return fv_run(argv, MKFS_TIMEOUT_MS, NULL, err);
	}
	if (!strcmp(fstype, "xfs")) {
		if (fv_tool_path("mkfs.xfs", "xfsprogs", tool, sizeof(tool), err) < 0)
			return err->code;
		const char *argv[] = {tool, "-q", "--", device, NULL};
		return fv_run(argv, MKFS_TIMEOUT_MS, NULL, err);
	}
	return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", fstype);
}

static int check_fstype(const char *fstype, struct fv_err *err)
{
	if (strcmp(fstype, "ext4") && strcmp(fstype, "xfs"))
		return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", fstype);
	return 0;
}

/* Already mounted at target: fine if it is this device, an error otherwise. */
static int check_existing_mount(const char *device, const char *target, struct fv_err *err)
{
	dev_t want, have;
	if (fv_block_devno(device, &want, err) < 0 || fv_mounted_dev(target, &have, err) < 0)
		return err->code;
	if (want != have)
		return fv_err_msg(err, EBUSY, "'%s' already has another file system mounted (device %u:%u, not %s)",
				  target, major(have), minor(have), device);
	return 0;
}

int fv_block_mount_device(const char *device, const char *target, const char *fstype, bool readonly,
			  struct fv_err *err)
{
	const char *want = fstype ? fstype : "ext4";
	if (check_fstype(want, err) < 0)
		return err->code;
	if (fv_mkdir_p(target, 0750, err) < 0)
		return err->code;
	int m = fv_is_mountpoint(target, err);
	if (m < 0)
		return m;
	if (m)
		return check_existing_mount(device, target, err);

	enum fv_block_content content;
	_cleanup_free_ char *found = NULL;
	if (fv_block_probe(device, &content, &found, err) < 0)
		return err->code;
	if (content == FV_BLOCK_FILESYSTEM && fstype && strcmp(found, fstype))
		return fv_err_msg(err, EEXIST, "device '%s' holds a %s file system, but the volume asks for %s; "
					       "refusing to format it",
				  device, found, fstype);
	if (content == FV_BLOCK_BLANK) {
		if (readonly)
			return fv_err_msg(err, EROFS, "device '%s' is blank and the volume is read-only: not formatting it",
					  device);
		fv_log(LOG_NOTICE, "formatting blank device %s as %s", device, want);
		if (fv_block_format(device, want, err) < 0)
			return fv_err_prefix(err, "formatting '%s'", device);
	}
	return fv_mount_fs(device, target, found ? found : want, readonly ? "ro" : "rw", err);
}

int fv_block_grow_fs(const char *device, const char *mount_dir, struct fv_err *err)
{
	enum fv_block_content content;
	_cleanup_free_ char *fstype = NULL;
	if (fv_block_probe(device, &content, &fstype, err) < 0)
		return err->code;
	if (content != FV_BLOCK_FILESYSTEM)
		return fv_err_msg(err, EINVAL, "device %s has no file system to grow", device);
	char tool[64];
	if (!strcmp(fstype, "ext4")) {
		if (fv_tool_path("resize2fs", "e2fsprogs", tool, sizeof(tool), err) < 0)
			return err->code;
		/* Online: ext4 grows while mounted. */
		const char *argv[] = {tool, device, NULL};
		if (fv_run(argv, MKFS_TIMEOUT_MS, NULL, err) < 0)
			return err->code;
	} else if (!strcmp(fstype, "xfs")) {
		if (fv_tool_path("xfs_growfs", "xfsprogs", tool, sizeof(tool), err) < 0)
			return err->code;
		/* xfs grows through its mount point only. */
		int m = fv_is_mountpoint(mount_dir, err);
		if (m < 0)
			return m;
		if (!m)
			return fv_err_msg(err, EINVAL, "xfs on %s can only grow while mounted, and '%s' is not mounted",
					  device, mount_dir);
		const char *argv[] = {tool, "--", mount_dir, NULL};
		if (fv_run(argv, MKFS_TIMEOUT_MS, NULL, err) < 0)
			return err->code;
	} else {
		return fv_err_msg(err, EINVAL, "cannot grow a %s file system, only ext4 and xfs", fstype);
	}
	fv_log(LOG_NOTICE, "grew the %s file system on %s", fstype, device);
	return 0;
}
