/* The mount table, read without touching the mounted file systems: a stat of
 * a mount whose NFS server is gone blocks for good, /proc/self/mountinfo
 * never does. */
#pragma once
#include <stdbool.h>
#include "err.h"

struct fv_mount_entry {
	char source[4096];
	char fstype[64];
	bool readonly;     /* the per-mount ro flag */
};

/* Finds the topmost mount on path. The parent of path is canonicalised (it
 * is a local directory); path itself is never stat'ed. Returns 1 and fills e
 * when something is mounted there, 0 when not, <0 on error. */
int fv_mounttab_find(const char *path, struct fv_mount_entry *e, struct fv_err *err);
