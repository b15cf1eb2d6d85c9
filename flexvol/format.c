#include "format.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "block.h"
#include "cleanup.h"
#include "clock.h"
#include "flexvol.h"
#include "fsopts.h"
#include "log.h"
#include "run.h"

#define MKFS_TIMEOUT_MS (20L * 60 * 1000)
#define XFS_MIN_BYTES (300ULL * 1024 * 1024)
/* How long an exclusive open waits for another holder to let go: the mkfs of
 * a driver that was just killed dies with it, but not at the same instant. */
#define EXCL_WAIT_MS 10000

/* The on-disk layout, little-endian; everything after OFF_END is zero. */
static const char MAGIC[16] = "flexvol-format\0";
enum { OFF_MAGIC = 0, OFF_VERSION = 16, OFF_FSTYPE = 24, OFF_DEVSIZE = 40, OFF_FSSIZE = 48, OFF_NONCE = 56,
       OFF_STARTED = 72, OFF_END = 80 };
#define RECORD_VERSION 1

uint64_t fv_format_record_offset(uint64_t size)
{
	/* The smallest ext4 mke2fs makes is well above 1 MiB. */
	if (size < 2 * (uint64_t)FV_FORMAT_RESERVE)
		return 0;
	return (size - FV_FORMAT_RESERVE) & ~(uint64_t)(FV_FORMAT_RECORD_SIZE - 1);
}

int fv_io_exact(int fd, unsigned char *buf, size_t n, uint64_t off, bool write)
{
	for (size_t done = 0; done < n;) {
		ssize_t r = write ? pwrite(fd, buf + done, n - done, (off_t)(off + done))
				  : pread(fd, buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
	}
	return 0;
}

static bool known_fstype(const char *t)
{
	return !strcmp(t, "ext4") || !strcmp(t, "xfs");
}

int fv_format_record_read(int fd, uint64_t size, struct fv_format_record *rec)
{
	uint64_t off = fv_format_record_offset(size);
	if (!off)
		return 0;
	unsigned char b[FV_FORMAT_RECORD_SIZE];
	int r = fv_io_exact(fd, b, sizeof(b), off, false);
	if (r < 0)
		return r;
	if (memcmp(b + OFF_MAGIC, MAGIC, sizeof(MAGIC)))
		return 0;
	/* Every field must be one we write, and the rest of the slot zero. */
	if (fv_get_le64(b + OFF_VERSION) != RECORD_VERSION || b[OFF_FSTYPE + 15] || fv_get_le64(b + OFF_DEVSIZE) != size ||
	    fv_get_le64(b + OFF_FSSIZE) != off)
		return 2;
	for (size_t i = OFF_END; i < sizeof(b); i++)
		if (b[i])
			return 2;
	memcpy(rec->fstype, b + OFF_FSTYPE, sizeof(rec->fstype));
	size_t len = strlen(rec->fstype);
	for (size_t i = len; i < sizeof(rec->fstype); i++)
		if (rec->fstype[i])
			return 2;
	if (!known_fstype(rec->fstype))
		return 2;
	rec->device_size = size;
	rec->fs_size = off;
	memcpy(rec->nonce, b + OFF_NONCE, sizeof(rec->nonce));
	rec->started = fv_get_le64(b + OFF_STARTED);
	return 1;
}

static void nonce_hex(const unsigned char *nonce, char *out)
{
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", nonce[i]);
}

/* Opens the device for writing, exclusively: fails while it is mounted or
 * held by anyone else (after a bounded wait for a dying holder). */
static int open_device(const char *device, uint64_t *size, struct fv_err *err)
{
	int64_t deadline = fv_now_ms() + EXCL_WAIT_MS;
	int fd;
	while ((fd = open(device, O_RDWR | O_EXCL | O_CLOEXEC)) < 0 && errno == EBUSY && fv_now_ms() < deadline &&
	       !fv_terminated())
		fv_sleep_ms(100);
	if (fd < 0 && errno == EBUSY)
		return fv_err_msg(err, EBUSY, "'%s' is in use (mounted, or a mkfs or fsck is still running on it)",
				  device);
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open '%s' for writing", device);
	if (ioctl(fd, BLKGETSIZE64, size) < 0) {
		int e = errno;
		close(fd);
		return fv_err_set(err, e, "cannot get the size of '%s'", device);
	}
	return fd;
}

static int write_slot(int fd, const char *device, uint64_t off, unsigned char *b, struct fv_err *err)
{
	int r = fv_io_exact(fd, b, FV_FORMAT_RECORD_SIZE, off, true);
	if (r < 0)
		return fv_err_set(err, -r, "cannot write the format record of '%s'", device);
	if (fdatasync(fd) < 0)
		return fv_err_set(err, errno, "cannot flush the format record of '%s'", device);
	return 0;
}

static int write_record(const char *device, const char *fstype, uint64_t *fs_size, char *nonce_out,
			struct fv_err *err)
{
	uint64_t size;
	_cleanup_close_ int fd = open_device(device, &size, err);
	if (fd < 0)
		return fd;
	uint64_t off = fv_format_record_offset(size);
	if (!off)
		return fv_err_msg(err, ENOSPC, "device '%s' is too small to format (%llu bytes)", device,
				  (unsigned long long)size);
	/* Before the record: mkfs.xfs's own refusal ends in a page of usage text. */
	if (!strcmp(fstype, "xfs") && off < XFS_MIN_BYTES)
		return fv_err_msg(err, ENOSPC,
				  "device '%s' is too small for xfs: mkfs.xfs needs 300 MiB, and flexvol keeps the "
				  "device's last MiB for its format record (make the volume at least 301 MiB)",
				  device);
	unsigned char b[FV_FORMAT_RECORD_SIZE] = {0};
	memcpy(b + OFF_MAGIC, MAGIC, sizeof(MAGIC));
	fv_put_le64(b + OFF_VERSION, RECORD_VERSION);
	snprintf((char *)b + OFF_FSTYPE, 16, "%s", fstype);
	fv_put_le64(b + OFF_DEVSIZE, size);
	fv_put_le64(b + OFF_FSSIZE, off);
	if (getrandom(b + OFF_NONCE, 16, 0) != 16)
		return fv_err_set(err, errno, "cannot make a nonce for formatting '%s'", device);
	fv_put_le64(b + OFF_STARTED, (uint64_t)time(NULL));
	nonce_hex(b + OFF_NONCE, nonce_out);
	*fs_size = off;
	return write_slot(fd, device, off, b, err);
}

int fv_format_record_clear(const char *device, struct fv_err *err)
{
	uint64_t size;
	_cleanup_close_ int fd = open_device(device, &size, err);
	if (fd < 0)
		return fd;
	uint64_t off = fv_format_record_offset(size);
	if (!off)
		return 0;
	unsigned char b[FV_FORMAT_RECORD_SIZE];
	int r = fv_io_exact(fd, b, sizeof(b), off, false);
	if (r < 0)
		return fv_err_set(err, -r, "cannot read the format record of '%s'", device);
	if (memcmp(b + OFF_MAGIC, MAGIC, sizeof(MAGIC)))
		return 0;
	memset(b, 0, sizeof(b));
	if (write_slot(fd, device, off, b, err) < 0)
		return err->code;
	return 1;
}

/* Our fixed flags, then the user's checked ones (fsopts.c), then the device
 * and the size: mkfs reads the last of a repeated flag, and the user's never
 * include a device, a size or a force. */
static int run_mkfs(const char *device, const char *fstype, uint64_t fs_size, bool force, const char *mkfs_options,
		    struct fv_err *err)
{
	char tool[64];
	struct fv_mkfs_args user;
	if (fv_fsopts_mkfs_parse(fstype, mkfs_options, &user, err) < 0)
		return err->code;
	if (!strcmp(fstype, "ext4")) {
		if (fv_tool_path("mkfs.ext4", "e2fsprogs", tool, sizeof(tool), err) < 0)
			return err->code;
		char kib[32];
		snprintf(kib, sizeof(kib), "%lluk", (unsigned long long)(fs_size / 1024));
		/* As the kubelet's own formatter does: no reserved blocks, inode
		 * tables and journal written now rather than in the background.
		 * No discard: it could reach past the file system, into the record. */
		/* mke2fs keeps only the last -E: the user's settings join ours. */
		char extended[FV_MKFS_MAX_LEN + 64];
		snprintf(extended, sizeof(extended), "lazy_itable_init=0,lazy_journal_init=0,nodiscard%s%s",
			 user.extended[0] ? "," : "", user.extended);
		const char *argv[12 + FV_MKFS_MAX_ARGS] = {tool, "-q", "-m", "0", "-E", extended};
		int n = 6;
		for (int i = 0; i < user.argc; i++)
			argv[n++] = user.argv[i];
		if (force)
			argv[n++] = "-F";
		argv[n++] = "--";
		argv[n++] = device;
		argv[n++] = kib;
		return fv_run(argv, MKFS_TIMEOUT_MS, NULL, err);
	}
	if (!strcmp(fstype, "xfs")) {
		if (fv_tool_path("mkfs.xfs", "xfsprogs", tool, sizeof(tool), err) < 0)
			return err->code;
		char size[48];
		snprintf(size, sizeof(size), "size=%llu", (unsigned long long)fs_size);
		/* -K: no discard of the whole device, which would take the record. */
		const char *argv[10 + FV_MKFS_MAX_ARGS] = {tool, "-q", "-K", "-d", size};
		int n = 5;
		for (int i = 0; i < user.argc; i++)
			argv[n++] = user.argv[i];
		if (force)
			argv[n++] = "-f";
		argv[n++] = "--";
		argv[n++] = device;
		return fv_run(argv, MKFS_TIMEOUT_MS, NULL, err);
	}
	return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", fstype);
}

int fv_format_device(const char *device, const char *fstype, bool force, const char *mkfs_options,
		     struct fv_err *err)
{
	if (!known_fstype(fstype))
		return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", fstype);
	/* Checked before the record is written: a refused option changes nothing. */
	struct fv_mkfs_args user;
	if (fv_fsopts_mkfs_parse(fstype, mkfs_options, &user, err) < 0)
		return err->code;
	uint64_t fs_size = 0;
	char nonce[17];
	if (write_record(device, fstype, &fs_size, nonce, err) < 0)
		return err->code;
	fv_log(LOG_NOTICE, "formatting %s as %s (%llu bytes; format record %s written)", device, fstype,
	       (unsigned long long)fs_size, nonce);
	if (run_mkfs(device, fstype, fs_size, force, mkfs_options, err) < 0)
		return err->code;
	/* mkfs said it finished: the device must now show exactly that. */
	enum fv_block_content content;
	_cleanup_free_ char *found = NULL;
	if (fv_block_probe(device, &content, &found, err) < 0)
		return fv_err_prefix(err, "after mkfs.%s", fstype);
	if (content != FV_BLOCK_FILESYSTEM || strcmp(found, fstype))
		return fv_err_msg(err, EIO, "mkfs.%s finished, but '%s' does not show a complete %s file system", fstype,
				  device, fstype);
	if (fv_format_record_clear(device, err) < 0)
		return err->code;
	fv_log(LOG_NOTICE, "formatted %s as %s (format record %s cleared)", device, fstype, nonce);
	return 0;
}
