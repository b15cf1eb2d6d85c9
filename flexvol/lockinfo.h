/* Who holds the driver's locks right now: the lock files under
 * <run dir>/locks/<driver>/ matched by inode against the kernel's
 * /proc/locks (for `doctor` and `status`; nothing is locked or changed). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fv_lock_info {
	char key[512];        /* the lock file's name, unescaped */
	char file[4352];
	char recorded[256];   /* what the holder wrote into the file (first line), if anything */
	pid_t pid;            /* holder, 0 when free */
	char comm[64];        /* the holder's command name */
	long age_s;           /* how long the holder process has been running; -1 unknown */
	int waiters;          /* processes blocked on it (a polling waiter does not show) */
};

struct fv_lock_scan {
	int files;            /* lock files in the directory */
	bool dir_exists;
	char odd[512];        /* an entry that is not a regular file, or a bad mode, if any */
	int dir_errno;        /* opening the directory failed (not ENOENT) */
};

typedef void (*fv_lock_fn)(const struct fv_lock_info *l, void *ud);

/* Calls fn for every held lock. */
void fv_locks_scan(const char *run_dir, const char *driver, fv_lock_fn fn, void *ud, struct fv_lock_scan *scan);
