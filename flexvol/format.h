/* The format protocol (docs/design.md, "Formatting"): a record of our own,
 * written to the device before mkfs and cleared after it, lets the next
 * mountdevice finish a format that we started and that was interrupted,
 * without ever formatting anything else. */
#pragma once
#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "err.h"

/* The device's last MiB (or a little more, to end the file system on a 4 KiB
 * boundary) is left out of the file system: the record lives at its start. */
#define FV_FORMAT_RESERVE (1024 * 1024)
#define FV_FORMAT_RECORD_SIZE 4096

struct fv_format_record {
	char fstype[16];
	uint64_t device_size, fs_size;
	unsigned char nonce[16];
	uint64_t started; /* Unix time */
};

/* n bytes at off, all of them, retrying short transfers and EINTR: 0 or -errno
 * (-EIO at the end of the device). The block core reads devices with it too. */
int fv_io_exact(int fd, unsigned char *buf, size_t n, uint64_t off, bool write);

/* On-disk records (ours and crypt.c's marker) store integers little-endian. */
static inline void fv_put_le64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint64_t fv_get_le64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* Where the record of a device of size bytes lives (= the size given to
 * mkfs); 0 when the device is too small to hold a file system and a record. */
uint64_t fv_format_record_offset(uint64_t size);

/* Reads the record slot of fd (a device of size bytes). Returns 1 with rec
 * filled when it holds a valid record for a device of exactly this size, 2
 * when it holds our magic but not a valid record for this device, 0 when it
 * holds no record (whatever else is there), <0 on a read error. */
int fv_format_record_read(int fd, uint64_t size, struct fv_format_record *rec);

/* Writes a record, runs mkfs for fstype (ext4 or xfs) on the first
 * record-offset bytes, checks that the device now shows that file system and
 * clears the record. force: the device holds an unfinished format of ours
 * (mkfs -F / -f, which mkfs.xfs needs over its own partial signature). The
 * caller has checked the device (blank, or unfinished) under its lock.
 * mkfs_options: the volume's mkfsOptions (fsopts.h), added to our fixed
 * flags; never what would change where mkfs writes (the size stays ours). */
int fv_format_device(const char *device, const char *fstype, bool force, const char *mkfs_options,
		     struct fv_err *err);

/* Zeroes the record slot when it holds our magic (a format that finished
 * before its record was cleared). Returns 1 when it cleared one, 0 when there
 * was none. */
int fv_format_record_clear(const char *device, struct fv_err *err);
