/* What a volume may ask of the ext4 and xfs file systems the block drivers
 * make and mount: the mountOptions allow-lists (mountopts.h tables) and the
 * mkfsOptions allow-list, parsed into an argv (never a shell). */
#pragma once
#include <stddef.h>
#include "err.h"
#include "mountopts.h"

/* The mountOptions table of fstype (ext4 or xfs); NULL for any other. */
const struct fv_mountopt_table *fv_fsopts_mount_table(const char *fstype);

#define FV_MKFS_MAX_ARGS 24
#define FV_MKFS_MAX_LEN 512

/* The user's mkfs flags, checked: argv[0..argc) point into buf. For ext4 the
 * -E values go to extended (merged by format.c into its own -E, since
 * mke2fs keeps only the last -E). */
struct fv_mkfs_args {
	const char *argv[FV_MKFS_MAX_ARGS + 1];
	int argc;
	char extended[FV_MKFS_MAX_LEN + 1];
	char buf[FV_MKFS_MAX_LEN + FV_MKFS_MAX_ARGS + 1];
};

/* Checks mkfsOptions (whitespace-separated flags, each flag's value its next
 * word) for fstype (ext4 or xfs) against the allow-list; user NULL or empty:
 * none. Never -F/-f, a device, a size or anything that changes where mkfs
 * writes; each flag at most once. */
int fv_fsopts_mkfs_parse(const char *fstype, const char *user, struct fv_mkfs_args *out, struct fv_err *err);
