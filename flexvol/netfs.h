/* What the network file system drivers (nfs, smb) share: the symlink-safe
 * walk that finds (and creates) a volume's subDir below a share's root, and
 * an unmount that stays bounded when the server is gone. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

struct fv_subdir_walk {
	const char *subdir;   /* relative, checked (fv_path_check_relative) */
	const char *where;    /* the share's root, for messages ("//srv/share") */
	bool create;          /* create missing components */
	unsigned int mode;    /* of created directories */
	long uid, gid;        /* owner of created directories; -1: as the server makes them */
	size_t per_pod_depth; /* components making the per-pod directory; 0: none */
};

struct fv_subdir_found {
	unsigned long long ino;         /* of the last directory reached */
	bool created;                   /* some component was created */
	unsigned long long per_pod_ino;
	bool per_pod_created;
};

/* Walks the first ncomp components (SIZE_MAX: all) of w->subdir from the
 * directory root, one at a time, never through a symlink, creating missing
 * ones when w->create (with w's mode and owner). Returns a descriptor of the
 * last directory reached, with out filled in. */
int fv_subdir_walk(int root, const struct fv_subdir_walk *w, size_t ncomp, struct fv_subdir_found *out,
		   struct fv_err *err);

/* The walk's message for errno e met at prefix (a symlink, not a
 * directory, missing: "set createSubDir"). */
int fv_subdir_error(const struct fv_subdir_walk *w, const char *prefix, int e, struct fv_err *err);

/* Unmounts dir within timeout_ms even when its server is gone: the unmount
 * runs in a child; if that hangs, the child is killed and dir is detached
 * lazily (MNT_DETACH). Whether dir is still mounted is read from the mount
 * table, never stat'ed. */
int fv_unmount_bounded(const char *dir, long timeout_ms, struct fv_err *err);
