/* Block devices: probe with libblkid, format only what is blank, mount on the
 * global path. Shared by every block provider (loop, cinder, gcepd). */
#pragma once
#include <stdbool.h>
#include <sys/types.h>
#include "err.h"

enum fv_block_content { FV_BLOCK_BLANK, FV_BLOCK_FILESYSTEM };

/* Blank means: no file system or partition-table signature, readable from
 * first to last MiB, and a first MiB of zeros. Anything else with no known
 * file system is an error "device holds data". *fstype gets the found type
 * (caller frees). */
int fv_block_probe(const char *device, enum fv_block_content *content, char **fstype, struct fv_err *err);

/* mkfs for ext4 or xfs, of a device fv_block_probe() found blank. */
int fv_block_format(const char *device, const char *fstype, struct fv_err *err);

/* The mountdevice step: format if and only if blank, then mount on target
 * (rw, or ro when readonly; a blank read-only volume is refused). Already
 * mounted there from the same device: success. fstype NULL means ext4. */
int fv_block_mount_device(const char *device, const char *target, const char *fstype, bool readonly,
			  struct fv_err *err);

/* The device number behind a block device path (st_rdev). */
int fv_block_devno(const char *device, dev_t *devno, struct fv_err *err);

/* The expandfs step: grows the ext4 (online, through the device) or xfs
 * (through its mount point, mount_dir) file system on device to fill it. */
int fv_block_grow_fs(const char *device, const char *mount_dir, struct fv_err *err);
