#include "block.h"
#include <blkid.h>
#include <libmount.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "cleanup.h"
#include "crypt.h"
#include "format.h"
#include "fsopts.h"
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

/* What libblkid finds in [off, off+len) of fd (len 0: to the end): 1 with
 * *type (a file system, or "" for anything else) and desc filled, 0 when
 * nothing, 2 when the signatures conflict, <0 when the probe fails.
 * thorough: superblocks with bad checksums count too. Partition tables are
 * always looked for, a GPT even without its protective MBR and, when the
 * primary header is gone, by its backup in the last sector. */
static int find_signature(int fd, uint64_t off, uint64_t len, bool thorough, char *type, size_t tsize, char *desc,
			  size_t dsize)
{
	_cleanup_probe_ blkid_probe pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, (blkid_loff_t)off, (blkid_loff_t)len) < 0)
		return -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
						      (thorough ? BLKID_SUBLKS_BADCSUM : 0));
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_FORCE_GPT);
	int rc = blkid_do_safeprobe(pr);
	if (rc == -2)
		return 2;
	if (rc < 0)
		return -EIO;
	if (rc == 1)
		return 0;
	const char *v = NULL;
	char where[64] = "";
	if (off)
		snprintf(where, sizeof(where), " at byte %llu of the device", (unsigned long long)off);
	if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0 && v) {
		const char *usage = NULL;
		blkid_probe_lookup_value(pr, "USAGE", &usage, NULL);
		snprintf(type, tsize, "%s", v);
		snprintf(desc, dsize, "a%s %s %s%s", strchr("aeiou", v[0]) ? "n" : "", v,
			 usage && !strcmp(usage, "filesystem") ? "file system" : "signature", where);
		return 1;
	}
	snprintf(type, tsize, "%s", "");
	if (blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL) == 0 && v)
		snprintf(desc, dsize, "a %s partition table%s", v, where);
	else
		snprintf(desc, dsize, "an unrecognised signature%s", where);
	return 1;
}

/* Index of the first non-zero byte of [off, off+n), -1 when all are zero,
 * or an error (not readable). */
static int64_t first_nonzero(int fd, unsigned char *buf, size_t n, uint64_t off)
{
	int r = fv_io_exact(fd, buf, n, off, false);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (buf[i])
			return (int64_t)i;
	return -1;
}

/* Where a partition at a MiB boundary would hold its signatures: the first
 * 128 KiB of these MiB offsets (ext*: +1 KiB, xfs: +0, btrfs: +64 KiB, LVM,
 * LUKS, md, swap: within the first 8 KiB). */
static const unsigned inner_mib[] = {1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128, 256, 512, 1024};
#define INNER_WINDOW (128 * 1024)

static int refuse(struct fv_err *err, const char *device, const char *what)
{
	return fv_err_msg(err, EEXIST, "device '%s' holds data (%s); refusing to format it", device, what);
}

/* The blank rule (docs/design.md): no signature (whole-device probe done by
 * the caller), first and last MiB all zero, the inner windows all zero,
 * readable to the end. */
static int check_blank(int fd, const char *device, uint64_t size, int record, struct fv_err *err)
{
	size_t head = size < MIB ? (size_t)size : MIB;
	_cleanup_free_ unsigned char *buf = malloc(MIB);
	if (!buf)
		return fv_err_set(err, ENOMEM, "checking '%s'", device);
	char type[64], desc[160], what[256];
	int64_t i = first_nonzero(fd, buf, head, 0);
	if (i < -1)
		return fv_err_set(err, (int)-i, "device '%s' is not readable; refusing to format it", device);
	if (i >= 0) {
		snprintf(what, sizeof(what), "no known signature, but byte %lld of its first MiB is not zero",
			 (long long)i);
		return refuse(err, device, what);
	}
	i = first_nonzero(fd, buf, head, size - head);
	if (i < -1)
		return fv_err_set(err, (int)-i, "the end of device '%s' is not readable; refusing to format it", device);
	if (i >= 0) {
		if (record == 2)
			snprintf(what, sizeof(what), "a flexvol format record that is not valid for a device of %llu bytes",
				 (unsigned long long)size);
		else
			snprintf(what, sizeof(what), "no known signature, but byte %lld of its last MiB is not zero",
				 (long long)i);
		return refuse(err, device, what);
	}
	for (size_t k = 0; k < sizeof(inner_mib) / sizeof(inner_mib[0]); k++) {
		uint64_t off = (uint64_t)inner_mib[k] * MIB;
		if (off + INNER_WINDOW > size - head)
			break;
		i = first_nonzero(fd, buf, INNER_WINDOW, off);
		if (i < -1)
			return fv_err_set(err, (int)-i, "device '%s' is not readable; refusing to format it", device);
		if (i < 0)
			continue;
		if (find_signature(fd, off, 0, true, type, sizeof(type), desc, sizeof(desc)) == 1)
			snprintf(what, sizeof(what), "%s: a partition whose table was wiped?", desc);
		else
			snprintf(what, sizeof(what), "no known signature, but byte %llu is not zero",
				 (unsigned long long)(off + (uint64_t)i));
		return refuse(err, device, what);
	}
	return 0;
}

/* An xfs whose primary superblock still says "mkfs in progress"
 * (sb_inprogress, byte 126): mkfs.xfs clears it as its very last write.
 * mke2fs writes the ext4 primary superblock last, so an ext4 that libblkid
 * finds is complete. */
static int fs_complete(int fd, const char *fstype)
{
	if (strcmp(fstype, "xfs"))
		return 1;
	unsigned char sb[512];
	int r = fv_io_exact(fd, sb, sizeof(sb), 0, false);
	if (r < 0)
		return r;
	return memcmp(sb, "XFSB", 4) || sb[126] == 0;
}

/* Only what an interrupted mkfs of rec->fstype can have written: no other
 * signature anywhere libblkid looks (bad checksums included), and nothing
 * after the record, where mkfs never writes. */
static int check_unfinished(int fd, const char *device, uint64_t size, const struct fv_format_record *rec,
			    struct fv_err *err)
{
	char type[64], desc[160], what[320];
	int s = find_signature(fd, 0, 0, true, type, sizeof(type), desc, sizeof(desc));
	if (s < 0)
		return fv_err_msg(err, EIO, "cannot probe device '%s'; refusing to format it", device);
	if (s == 2)
		return refuse(err, device, "several conflicting signatures, and a flexvol format record");
	if (s == 1 && strcmp(type, rec->fstype)) {
		snprintf(what, sizeof(what), "%s, over an unfinished %s format of flexvol's", desc, rec->fstype);
		return refuse(err, device, what);
	}
	uint64_t tail = rec->fs_size + FV_FORMAT_RECORD_SIZE;
	_cleanup_free_ unsigned char *buf = malloc(MIB);
	if (!buf)
		return fv_err_set(err, ENOMEM, "checking '%s'", device);
	for (uint64_t off = tail; off < size;) {
		size_t n = size - off < MIB ? (size_t)(size - off) : MIB;
		int64_t i = first_nonzero(fd, buf, n, off);
		if (i < -1)
			return fv_err_set(err, (int)-i, "the end of device '%s' is not readable; refusing to format it",
					  device);
		if (i >= 0) {
			snprintf(what, sizeof(what),
				 "an unfinished %s format of flexvol's, but byte %llu, after the file system, is not zero",
				 rec->fstype, (unsigned long long)(off + (uint64_t)i));
			return refuse(err, device, what);
		}
		off += n;
	}
	return 0;
}

struct probe {
	enum fv_block_content content;
	char fstype[64];
	bool record; /* FILESYSTEM: a valid format record of ours is still there */
};

static int probe_device(const char *device, struct probe *p, struct fv_err *err)
{
	_cleanup_close_ int fd = open(device, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open device '%s'", device);
	uint64_t size = 0;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		return fv_err_set(err, errno, "cannot get the size of '%s'", device);
	if (size == 0)
		return fv_err_msg(err, EIO, "device '%s' has size 0 (not attached yet?)", device);
	struct fv_format_record rec = {0};
	int record = fv_format_record_read(fd, size, &rec);
	if (record < 0)
		return fv_err_set(err, -record, "the end of device '%s' is not readable", device);

	char type[64], desc[160];
	int s = find_signature(fd, 0, 0, false, type, sizeof(type), desc, sizeof(desc));
	if (s < 0)
		return fv_err_msg(err, EIO, "cannot probe device '%s'; refusing to format it", device);
	if (s == 2)
		return fv_err_msg(err, EEXIST,
				  "device '%s' holds data (several conflicting signatures); refusing to touch it", device);
	if (s == 1 && !*type)
		return refuse(err, device, desc);
	if (s == 1) {
		int complete = fs_complete(fd, type);
		if (complete < 0)
			return fv_err_set(err, -complete, "cannot read device '%s'", device);
		if (complete || record != 1 || strcmp(type, rec.fstype)) {
			p->content = FV_BLOCK_FILESYSTEM;
			snprintf(p->fstype, sizeof(p->fstype), "%s", type);
			/* Only a valid record is ours to clear: it lies where our
			 * file system ends, outside it. */
			p->record = record == 1;
			return 0;
		}
	}
	if (record == 1) {
		if (check_unfinished(fd, device, size, &rec, err) < 0)
			return err->code;
		p->content = FV_BLOCK_UNFINISHED;
		snprintf(p->fstype, sizeof(p->fstype), "%s", rec.fstype);
		return 0;
	}
	if (check_blank(fd, device, size, record, err) < 0)
		return err->code;
	p->content = FV_BLOCK_BLANK;
	return 0;
}

int fv_block_probe(const char *device, enum fv_block_content *content, char **fstype, struct fv_err *err)
{
	struct probe p = {0};
	if (probe_device(device, &p, err) < 0)
		return err->code;
	*content = p.content;
	if (p.content != FV_BLOCK_BLANK && !(*fstype = strdup(p.fstype)))
		return fv_err_set(err, ENOMEM, "probing '%s'", device);
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

/* The ext4 superblock fields fsck is decided on (docs/design.md, "fsck"). */
#define EXT4_SB_OFFSET 1024
#define EXT4_VALID_FS 0x0001
#define EXT4_ERROR_FS 0x0002

static int ext4_state(const char *device, unsigned *state, struct fv_err *err)
{
	_cleanup_close_ int fd = open(device, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open device '%s'", device);
	unsigned char sb[1024];
	int r = fv_io_exact(fd, sb, sizeof(sb), EXT4_SB_OFFSET, false);
	if (r < 0)
		return fv_err_set(err, -r, "cannot read the ext4 superblock of '%s'", device);
	if (sb[0x38] != 0x53 || sb[0x39] != 0xef)
		return fv_err_msg(err, EIO, "'%s' has no ext4 superblock", device);
	*state = (unsigned)sb[0x3a] | (unsigned)sb[0x3b] << 8;
	return 0;
}

static const char *ext4_state_name(unsigned state)
{
	if (state & EXT4_ERROR_FS)
		return "as having errors";
	return "as not cleanly unmounted";
}

/* Before a read-write mount: fsck.ext4 -p (preen: only the repairs that are
 * always safe) when the superblock says the file system has errors, or was
 * not cleanly unmounted with no journal to replay. A clean file system, or one
 * whose journal the kernel replays at mount, is left alone. */
int fv_block_fsck_ext4(const char *device, struct fv_err *err)
{
	unsigned state;
	if (ext4_state(device, &state, err) < 0)
		return err->code;
	if ((state & EXT4_VALID_FS) && !(state & EXT4_ERROR_FS))
		return 0;
	char tool[64];
	if (fv_tool_path("fsck.ext4", "e2fsprogs", tool, sizeof(tool), err) < 0)
		return err->code;
	const char *why = ext4_state_name(state);
	fv_log(LOG_WARNING, "the ext4 superblock of %s marks it %s: running fsck.ext4 -p", device, why);
	const char *argv[] = {tool, "-p", "--", device, NULL};
	struct fv_err ferr = {0};
	int rc = fv_run(argv, MKFS_TIMEOUT_MS, NULL, &ferr);
	/* Exit 1 (repaired) and 2 (repaired, reboot suggested) leave a clean
	 * superblock; 4 and above (left unrepaired, or failed) do not. The
	 * superblock is what decides. */
	if (ext4_state(device, &state, err) < 0)
		return err->code;
	if ((state & EXT4_VALID_FS) && !(state & EXT4_ERROR_FS)) {
		fv_log(LOG_NOTICE, "fsck.ext4 -p checked %s: the file system is clean now%s%s", device, rc ? "; " : "",
		       rc ? ferr.msg : "");
		return 0;
	}
	return fv_err_msg(err, EUCLEAN,
			  "the ext4 file system on '%s' is marked %s and fsck.ext4 -p did not repair it (%s); "
			  "repair it by hand (fsck.ext4 %s) before using the volume",
			  device, why, rc ? ferr.msg : "it exited 0", device);
}

/* The xfs UUID (sb_uuid, bytes 32-47 of the primary superblock): 1 when read. */
static int xfs_uuid(const char *device, unsigned char uuid[16])
{
	_cleanup_close_ int fd = open(device, O_RDONLY | O_CLOEXEC);
	unsigned char sb[48];
	if (fd < 0 || fv_io_exact(fd, sb, sizeof(sb), 0, false) < 0 || memcmp(sb, "XFSB", 4))
		return 0;
	memcpy(uuid, sb + 32, 16);
	return 1;
}

/* True when an xfs with device's UUID is mounted on the node from another
 * device: a clone of a snapshot (or a copied image), which the kernel
 * refuses to mount beside its origin without nouuid. */
static bool xfs_uuid_mounted(const char *device)
{
	unsigned char want[16], have[16];
	dev_t self;
	if (!xfs_uuid(device, want) || fv_block_devno(device, &self, &(struct fv_err){0}) < 0)
		return false;
	struct libmnt_table *t = mnt_new_table_from_file("/proc/self/mountinfo");
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	bool found = false;
	while (t && it && !found && mnt_table_next_fs(t, it, &fs) == 0) {
		const char *src = mnt_fs_get_srcpath(fs);
		const char *type = mnt_fs_get_fstype(fs);
		struct stat st;
		if (!src || !type || strcmp(type, "xfs") || mnt_fs_get_devno(fs) == self || stat(src, &st) < 0 ||
		    !S_ISBLK(st.st_mode) || st.st_rdev != mnt_fs_get_devno(fs))
			continue;
		found = xfs_uuid(src, have) && !memcmp(want, have, 16);
	}
	mnt_free_iter(it);
	mnt_unref_table(t);
	return found;
}

/* "rw"/"ro", the volume's mountOptions checked against the file system
 * found, and nouuid for an xfs clone. Caller frees *out. */
static int mount_options_for(const char *device, const char *found, const struct fv_block_spec *spec, char **out,
			     struct fv_err *err)
{
	*out = NULL;
	_cleanup_free_ char *user = NULL;
	const struct fv_mountopt_table *t = fv_fsopts_mount_table(found);
	if (spec->mount_options && !t)
		return fv_err_msg(err, EINVAL, "option 'mountOptions' is only for ext4 and xfs, and '%s' holds %s",
				  device, found);
	if (t && fv_mountopts_check(t, "mountOptions", spec->mount_options, &user, err) < 0)
		return fv_err_prefix(err, "mountOptions for the %s file system on '%s'", found, device);
	char *opts = strdup(spec->readonly ? "ro" : "rw");
	if (!opts || (user && mnt_optstr_append_option(&opts, user, NULL))) {
		free(opts);
		return fv_err_set(err, ENOMEM, "building mount options");
	}
	char *v = NULL;
	size_t n = 0;
	if (!strcmp(found, "xfs") && mnt_optstr_get_option(opts, "nouuid", &v, &n) != 0 && xfs_uuid_mounted(device)) {
		fv_log(LOG_NOTICE, "%s: an xfs with the same UUID is mounted (a clone?): mounting with nouuid", device);
		if (mnt_optstr_append_option(&opts, "nouuid", NULL)) {
			free(opts);
			return fv_err_set(err, ENOMEM, "building mount options");
		}
	}
	*out = opts;
	return 0;
}

/* Mounts the file system found (or just made) on device at target. */
static int mount_found(const char *device, const char *target, const char *found, const struct fv_block_spec *spec,
		       struct fv_err *err)
{
	_cleanup_free_ char *opts = NULL;
	if (mount_options_for(device, found, spec, &opts, err) < 0)
		return err->code;
	if (!strcmp(found, "ext4") && !spec->readonly && fv_block_fsck_ext4(device, err) < 0)
		return err->code;
	int rc = fv_mount_fs(device, target, found, opts, err);
	/* Clones mounted at once: none saw the others in the mount table before
	 * its mount (the kernel holds the UUID from early in a mount that is not
	 * listed yet), and the kernel refused the later ones with EINVAL, its
	 * answer to a duplicate UUID. Once more with nouuid: any other EINVAL
	 * comes back the same. */
	char *v = NULL;
	size_t n = 0;
	if (rc == -EINVAL && !strcmp(found, "xfs") && mnt_optstr_get_option(opts, "nouuid", &v, &n) != 0 &&
	    !mnt_optstr_append_option(&opts, "nouuid", NULL)) {
		fv_log(LOG_NOTICE, "%s: the kernel refused the xfs (a clone mounted meanwhile?): mounting with nouuid",
		       device);
		*err = (struct fv_err){0};
		rc = fv_mount_fs(device, target, found, opts, err);
	}
	if (rc < 0) {
		if (err->code == -EUCLEAN)
			return fv_err_msg(err, EUCLEAN,
					  "cannot mount the %s file system on '%s': Structure needs cleaning (it is damaged); "
					  "repair it with %s %s",
					  found, device, !strcmp(found, "xfs") ? "xfs_repair" : "fsck.ext4", device);
		return err->code;
	}
	return 0;
}

int fv_block_mount_device(const char *device, const char *target, const struct fv_block_spec *spec,
			  struct fv_err *err)
{
	/* Encryption at rest (crypt.h): the file system lives in the LUKS
	 * container on device, opened as /dev/mapper/flexvol-<volume>; a plain
	 * volume may not use an encrypted volume's disk. */
	if (spec->encrypted) {
		char mapped[256];
		if (fv_crypt_open(device, target, spec, mapped, sizeof(mapped), err) < 0)
			return err->code;
		struct fv_block_spec inner = *spec;
		inner.encrypted = false;
		if (fv_block_mount_device(mapped, target, &inner, err) < 0) {
			struct fv_err ignored = {0};
			fv_crypt_close(target, &ignored);
			return err->code;
		}
		return 0;
	}
	if (fv_crypt_refuse_luks(device, err) < 0)
		return err->code;

	const char *fstype = spec->fstype;
	bool readonly = spec->readonly;
	const char *want = fstype ? fstype : "ext4";
	if (strcmp(want, "ext4") && strcmp(want, "xfs"))
		return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", want);
	if (fv_mkdir_p(target, 0750, err) < 0)
		return err->code;
	int m = fv_is_mountpoint(target, err);
	if (m < 0)
		return m;
	if (m)
		return check_existing_mount(device, target, err);

	struct probe p = {0};
	if (probe_device(device, &p, err) < 0)
		return err->code;
	const char *found = p.fstype;
	if (p.content == FV_BLOCK_FILESYSTEM) {
		if (fstype && strcmp(found, fstype))
			return fv_err_msg(err, EEXIST, "device '%s' holds a %s file system, but the volume asks for %s; "
						       "refusing to format it",
					  device, found, fstype);
		if (!fv_mount_fstype_allowed(found))
			return fv_err_msg(err, EPERM, "device '%s' holds a %s file system, which this node does not mount "
						      "(only ext4 and xfs unless the driver's allowed-fstypes config key "
						      "lists %s)",
					  device, found, found);
		/* A format of ours that finished just before its record was cleared. */
		if (p.record && !readonly) {
			int c = fv_format_record_clear(device, err);
			if (c < 0)
				return err->code;
			if (c)
				fv_log(LOG_NOTICE, "%s: cleared the format record of a finished %s format", device, found);
		}
	} else {
		/* Partitions are the user's: format-if-blank is for whole disks only. */
		if (spec->partition)
			return fv_err_msg(err, ENOENT,
					  "partition %u ('%s') is %s: flexvol never formats a partition (make the file "
					  "system yourself, or use the whole disk without 'partition')",
					  spec->partition, device, p.content == FV_BLOCK_BLANK ? "blank" : "partly formatted");
		if (readonly)
			return fv_err_msg(err, EROFS, "device '%s' is %s and the volume is read-only: not formatting it",
					  device, p.content == FV_BLOCK_BLANK ? "blank" : "partly formatted");
		/* The options are checked before anything is written. */
		_cleanup_free_ char *opts = NULL;
		if (mount_options_for(device, want, spec, &opts, err) < 0)
			return err->code;
		if (p.content == FV_BLOCK_UNFINISHED)
			fv_log(LOG_WARNING, "%s holds an unfinished %s format of ours (mkfs was interrupted): formatting "
					    "it again",
			       device, found);
		if (fv_format_device(device, want, p.content == FV_BLOCK_UNFINISHED, spec->mkfs_options, err) < 0)
			return fv_err_prefix(err, "formatting '%s'", device);
		found = want;
	}
	return mount_found(device, target, found, spec, err);
}

int fv_block_partition(const char *sysfs_root, const char *disk, unsigned n, char *buf, size_t size,
		       struct fv_err *err)
{
	dev_t devno;
	if (fv_block_devno(disk, &devno, err) < 0)
		return err->code;
	char dir[4096], kname[256];
	snprintf(dir, sizeof(dir), "%s/dev/block/%u:%u", sysfs_root, major(devno), minor(devno));
	char real[4096];
	if (!realpath(dir, real))
		return fv_err_set(err, errno, "cannot find '%s' (%s) in sysfs", disk, dir);
	const char *base = strrchr(real, '/');
	snprintf(kname, sizeof(kname), "%s", base ? base + 1 : real);
	/* sda1, but nvme0n1p1 and loop0p1: a "p" when the disk's name ends in a digit. */
	for (int with_p = 0; with_p < 2; with_p++) {
		char part[300], devfile[4400], sysdev[32] = "";
		snprintf(part, sizeof(part), "%s%s%u", kname, with_p ? "p" : "", n);
		snprintf(devfile, sizeof(devfile), "%s/%s/dev", real, part);
		_cleanup_close_ int fd = open(devfile, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, sysdev, sizeof(sysdev) - 1);
		unsigned maj, min;
		if (r <= 0 || sscanf(sysdev, "%u:%u", &maj, &min) != 2)
			return fv_err_msg(err, EIO, "cannot read '%s'", devfile);
		/* The node devtmpfs made; it must be that device, not a leftover. */
		snprintf(buf, size, "/dev/%s", part);
		struct stat st;
		if (stat(buf, &st) < 0)
			return fv_err_set(err, errno, "partition %u of '%s' is %s in sysfs, but '%s' is missing", n, disk,
					  part, buf);
		if (!S_ISBLK(st.st_mode) || st.st_rdev != makedev(maj, min))
			return fv_err_msg(err, EIO, "'%s' is not the device of partition %s (%u:%u)", buf, part, maj, min);
		return 0;
	}
	return fv_err_msg(err, ENOENT, "'%s' (%s) has no partition %u (flexvol never creates partitions)", disk, kname,
			  n);
}

/* The size in bytes of the ext4 or xfs file system on device, from its
 * superblock (read through the device, which shares its cache with the
 * mounted file system). */
static int fs_bytes(const char *device, const char *fstype, uint64_t *bytes, struct fv_err *err)
{
	_cleanup_close_ int fd = open(device, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open device '%s'", device);
	unsigned char sb[1024];
	bool ext4 = !strcmp(fstype, "ext4");
	int r = fv_io_exact(fd, sb, sizeof(sb), ext4 ? EXT4_SB_OFFSET : 0, false);
	if (r < 0)
		return fv_err_set(err, -r, "cannot read the superblock of '%s'", device);
	if (ext4) {
		uint64_t blocks = (uint64_t)sb[4] | (uint64_t)sb[5] << 8 | (uint64_t)sb[6] << 16 | (uint64_t)sb[7] << 24;
		uint32_t incompat = (uint32_t)sb[0x60] | (uint32_t)sb[0x61] << 8 | (uint32_t)sb[0x62] << 16 |
				    (uint32_t)sb[0x63] << 24;
		if (incompat & 0x80) /* 64bit: s_blocks_count_hi */
			blocks |= ((uint64_t)sb[0x150] | (uint64_t)sb[0x151] << 8 | (uint64_t)sb[0x152] << 16 |
				   (uint64_t)sb[0x153] << 24)
				  << 32;
		unsigned log = sb[0x18];
		*bytes = blocks << (10 + log);
		return 0;
	}
	uint32_t bsize = (uint32_t)sb[4] << 24 | (uint32_t)sb[5] << 16 | (uint32_t)sb[6] << 8 | sb[7];
	uint64_t dblocks = 0;
	for (int i = 8; i < 16; i++)
		dblocks = dblocks << 8 | sb[i];
	*bytes = dblocks * bsize;
	return 0;
}

/* Where the file system should end: at the format record offset, so that the
 * device's last MiB stays out of it as at mkfs (probe_device reads a record
 * there, which must never be a file's data); 0: the whole device (a file
 * system that already reaches past it). */
static int grow_target(const char *device, const char *fstype, uint64_t *target, struct fv_err *err)
{
	_cleanup_close_ int fd = open(device, O_RDONLY | O_CLOEXEC);
	uint64_t size = 0, have = 0;
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open device '%s'", device);
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		return fv_err_set(err, errno, "cannot get the size of '%s'", device);
	if (fs_bytes(device, fstype, &have, err) < 0)
		return err->code;
	uint64_t off = fv_format_record_offset(size);
	*target = have <= off ? off : 0;
	return 0;
}

int fv_block_grow_fs(const char *device, const char *mount_dir, struct fv_err *err)
{
	/* Encryption at rest (crypt.h): the mapping grows first, then the file
	 * system in it. */
	char mapped[256];
	int c = fv_crypt_grow(device, mount_dir, mapped, sizeof(mapped), err);
	if (c < 0)
		return err->code;
	if (c)
		device = mapped;

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
		uint64_t target;
		if (grow_target(device, fstype, &target, err) < 0)
			return err->code;
		char kib[32];
		snprintf(kib, sizeof(kib), "%lluK", (unsigned long long)(target / 1024));
		/* Online: ext4 grows while mounted. */
		const char *argv[] = {tool, device, target ? kib : NULL, NULL};
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
		uint64_t target;
		struct statvfs sv;
		if (grow_target(device, fstype, &target, err) < 0)
			return err->code;
		if (statvfs(mount_dir, &sv) < 0)
			return fv_err_set(err, errno, "cannot inspect '%s'", mount_dir);
		/* -D counts file system blocks. */
		char blocks[32];
		snprintf(blocks, sizeof(blocks), "%llu", (unsigned long long)(target / (sv.f_frsize ? sv.f_frsize : 4096)));
		const char *argv[] = {tool, target ? "-D" : "--", target ? blocks : mount_dir, target ? "--" : NULL,
				      mount_dir, NULL};
		if (fv_run(argv, MKFS_TIMEOUT_MS, NULL, err) < 0)
			return err->code;
	} else {
		return fv_err_msg(err, EINVAL, "cannot grow a %s file system, only ext4 and xfs", fstype);
	}
	fv_log(LOG_NOTICE, "grew the %s file system on %s", fstype, device);
	return 0;
}
