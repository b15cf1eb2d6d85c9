/* Block devices: probe with libblkid, format only what is blank, mount on the
 * global path. Shared by every block provider (loop, cinder, gcepd). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "err.h"
#include "opts.h"

/* BLANK: the blank rule holds (docs/design.md): no signature libblkid finds
 * (partition tables and backup GPTs included), first and last MiB and the
 * first 128 KiB of the inner MiB boundaries all zero, readable to the end.
 * UNFINISHED: our format record (format.h) and nothing but what an
 * interrupted mkfs of its type can have written. FILESYSTEM: a file system.
 * Anything else is an error "device holds data", naming what was found. */
enum fv_block_content { FV_BLOCK_BLANK, FV_BLOCK_FILESYSTEM, FV_BLOCK_UNFINISHED };

/* *fstype gets the found type, or for UNFINISHED the type being formatted
 * (caller frees; NULL when blank). */
int fv_block_probe(const char *device, enum fv_block_content *content, char **fstype, struct fv_err *err);

/* What a block volume's options ask of its file system, the same for every
 * block driver (loop, cinder, gcepd). */
struct fv_block_spec {
	const char *fstype; /* fsType: ext4 or xfs; NULL: ext4 (or whatever the device holds) */
	bool readonly;      /* kubernetes.io/readwrite = ro */
	/* blockopts (issue 13): what the volume asks of mkfs and mount. */
	const char *mount_options; /* mountOptions: checked here against the table of fsType (or of ext4 or
				    * xfs when none), and at mount against the file system found */
	const char *mkfs_options;  /* mkfsOptions: checked here, used only when formatting */
	unsigned partition;        /* partition: 1..128, mount that partition of the disk; 0: the disk */
	/* Encryption at rest (crypt.h, docs/encryption.md). */
	bool encrypted;       /* encrypted: "true" */
	const char *key_name; /* encryptionKeyName: a file in the node's key-dir; NULL: the volume's name */
	bool key_in_options;  /* kubernetes.io/secret/encryptionKey is in the options (refused in mountdevice) */
};

/* The core block options' --help text, printed by every block driver after
 * its own options. */
extern const char fv_block_spec_help[];

/* The volume options fv_block_spec_from_opts() reads besides kubernetes.io/
 * keys (NULL-terminated): a block driver accepts them beside its own. */
extern const char *const fv_block_spec_keys[];

/* Reads and checks a call's block options (pointers into o). */
int fv_block_spec_from_opts(const struct fv_opts *o, struct fv_block_spec *spec, struct fv_err *err);

/* The mountdevice step: format if and only if blank or unfinished (format
 * protocol, format.h; with mkfsOptions), fsck.ext4 -p when the superblock
 * asks for it, then mount on target (rw, or ro when readonly; a blank
 * read-only volume is refused) with mountOptions checked against the file
 * system found, and nouuid added for an xfs whose UUID a mounted xfs has
 * already (a clone). With spec->partition, device must be the partition
 * (fv_block_partition) and is never formatted. A file system found with fstype NULL must be ext4, xfs or in
 * allowed-fstypes. Already mounted there from the same device: success. */
int fv_block_mount_device(const char *device, const char *target, const struct fv_block_spec *spec,
			  struct fv_err *err);

/* Runs fsck.ext4 -p on device when its superblock marks it as having errors
 * or as not cleanly unmounted; an error when that leaves it unrepaired. */
int fv_block_fsck_ext4(const char *device, struct fv_err *err);

/* The device number behind a block device path (st_rdev). */
int fv_block_devno(const char *device, dev_t *devno, struct fv_err *err);

/* The partition n (1..128) of disk (a block device path), found in sysfs
 * (sysfs_root/dev/block/<maj:min>/<kname>n or <kname>pn) without udev; its
 * /dev path into buf. ENOENT with a message when the disk has no such
 * partition. */
int fv_block_partition(const char *sysfs_root, const char *disk, unsigned n, char *buf, size_t size,
		       struct fv_err *err);

/* The expandfs step: grows the ext4 (online, through the device) or xfs
 * (through its mount point, mount_dir) file system on device up to the
 * device's format record offset (format.h: its last MiB stays outside the
 * file system, as at mkfs), or to the whole device when the file system
 * already reaches past that (not formatted by flexvol). */
int fv_block_grow_fs(const char *device, const char *mount_dir, struct fv_err *err);
