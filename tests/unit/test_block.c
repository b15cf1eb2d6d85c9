/* The pieces of the block core that need no device: the mount policy and
 * the format record's validation (read from a plain file). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "config.h"
#include "format.h"
#include "mount.h"
#include "tap.h"

#define MIB (1024 * 1024)

static char *write_tmp(const char *text)
{
	char *p = strdup("/tmp/fv-block-XXXXXX");
	int fd = mkstemp(p);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	return p;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A device image of size bytes holding rec (4 KiB) at offset off. */
static int image_at(uint64_t size, uint64_t off, const unsigned char *rec)
{
	char path[] = "/tmp/fv-block-img-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		abort();
	unlink(path);
	if (ftruncate(fd, (off_t)size) < 0 ||
	    pwrite(fd, rec, FV_FORMAT_RECORD_SIZE, (off_t)off) != FV_FORMAT_RECORD_SIZE)
		abort();
	return fd;
}

static int image_with(uint64_t size, const unsigned char *rec)
{
	return image_at(size, fv_format_record_offset(size), rec);
}

static void make_record(unsigned char *b, const char *fstype, uint64_t size)
{
	memset(b, 0, FV_FORMAT_RECORD_SIZE);
	memcpy(b, "flexvol-format\0\0", 16);
	put64(b + 16, 1);
	memcpy(b + 24, fstype, strlen(fstype));
	put64(b + 40, size);
	put64(b + 48, fv_format_record_offset(size));
	memset(b + 56, 0xa5, 16);
	put64(b + 72, 1700000000);
}

static int read_record(uint64_t size, const unsigned char *b, struct fv_format_record *rec)
{
	int fd = image_with(size, b);
	int r = fv_format_record_read(fd, size, rec);
	close(fd);
	return r;
}

static void test_record(void)
{
	const uint64_t size = 64 * MIB;
	CHECK(fv_format_record_offset(size) == size - MIB, "record at the start of the last MiB");
	CHECK(fv_format_record_offset(64 * MIB + 1000) == 63 * MIB, "4 KiB aligned on an odd size");
	CHECK(fv_format_record_offset(MIB + 4096) == 0, "no record on a device too small to format");

	unsigned char b[FV_FORMAT_RECORD_SIZE];
	struct fv_format_record rec = {0};
	make_record(b, "xfs", size);
	CHECK(read_record(size, b, &rec) == 1 && !strcmp(rec.fstype, "xfs") && rec.fs_size == size - MIB,
	      "a record we write is valid");
	int fd = image_at(size + MIB, fv_format_record_offset(size), b);
	CHECK(fv_format_record_read(fd, size + MIB, &rec) == 0, "not found where a grown device looks for it");
	close(fd);
	make_record(b, "xfs", 32 * MIB);
	CHECK(read_record(size, b, &rec) == 2, "a record for another size is ours but not valid");
	make_record(b, "btrfs", size);
	CHECK(read_record(size, b, &rec) == 2, "a type we never format is not valid");
	make_record(b, "ext4", size);
	b[4000] = 1;
	CHECK(read_record(size, b, &rec) == 2, "anything after the fields makes it not valid");
	make_record(b, "ext4", size);
	b[1] = 'L';
	CHECK(read_record(size, b, &rec) == 0, "no magic: no record");
}

static void test_policy(void)
{
	struct fv_err e = {0};
	CHECK(fv_mount_fstype_allowed("ext4") && fv_mount_fstype_allowed("xfs") && !fv_mount_fstype_allowed("ext2"),
	      "default: ext4 and xfs only");
	char *p = write_tmp("[loop]\nallowed-fstypes = ext2, btrfs\nallow-setuid = yes\n[other]\nallowed-fstypes = vfat\n");
	struct fv_config *c = fv_config_load(p, &e);
	CHECK(c && fv_mount_policy_load(c, "loop", &e) == 0, "loads: %s", e.msg);
	CHECK(fv_mount_fstype_allowed("ext2") && fv_mount_fstype_allowed("btrfs") && fv_mount_fstype_allowed("ext4"),
	      "allowed-fstypes adds to ext4 and xfs");
	CHECK(!fv_mount_fstype_allowed("vfat") && !fv_mount_fstype_allowed("ext") && !fv_mount_fstype_allowed("2"),
	      "whole names of this driver's section only");
	fv_config_free(c);
	unlink(p);
	free(p);

	p = write_tmp("[loop]\nallowed-fstypes = ext2;rm -rf\n");
	c = fv_config_load(p, &e);
	CHECK(c && fv_mount_policy_load(c, "loop", &e) < 0 && strstr(e.msg, "allowed-fstypes"),
	      "a malformed list is refused: %s", e.msg);
	CHECK(!fv_mount_fstype_allowed("ext2"), "and widens nothing");
	fv_config_free(c);
	unlink(p);
	free(p);

	p = write_tmp("[loop]\nallow-devices = sometimes\n");
	c = fv_config_load(p, &e);
	CHECK(c && fv_mount_policy_load(c, "loop", &e) < 0 && strstr(e.msg, "allow-devices"),
	      "a bad boolean is refused: %s", e.msg);
	fv_config_free(c);
	unlink(p);
	free(p);
}

int main(void)
{
	test_record();
	test_policy();
	return tap_done("test_block");
}
