/* Per-pod sub-directories (subDirOnUnmount): kubelet's unmount gets only the
 * pod dir, so mount leaves a record in the run dir, keyed by that pod dir,
 * of the directory it created on the server and what to do with it; unmount
 * reads it back. Also the removal walk itself, run on the export root in the
 * private namespace of a child. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "err.h"

enum podsubdir_policy { PODSUBDIR_RETAIN, PODSUBDIR_DELETE, PODSUBDIR_ARCHIVE };

/* "retain", "delete" or "archive" (NULL or "" is retain). */
int podsubdir_parse_policy(const char *s, enum podsubdir_policy *policy, struct fv_err *err);
const char *podsubdir_policy_name(enum podsubdir_policy policy);

struct podsubdir_record {
	enum podsubdir_policy policy;
	char server[256];
	char share[PATH_MAX];
	char dir[PATH_MAX];            /* the per-pod directory, relative to share */
	char mount_options[1025];      /* the volume's mountOptions, "" for none */
	unsigned long long ino;        /* of dir when it was created */
};

/* <run_dir>/nfs-subdirs<pod_dir>/record: the pod dir's own path mirrored,
 * so any pod dir kubelet may pass has a place, whatever its length. */
int podsubdir_record_path(const char *run_dir, const char *pod_dir, char *buf, size_t size, struct fv_err *err);
/* Written atomically (a temporary file renamed over it). */
int podsubdir_record_write(const char *path, const struct podsubdir_record *r, struct fv_err *err);
/* 1 with *r filled, 0 when there is no record, <0 on a broken one. */
int podsubdir_record_read(const char *path, struct podsubdir_record *r, struct fv_err *err);
/* Removes the record and the directories left empty up to the records' root. */
void podsubdir_record_remove(const char *run_dir, const char *path);

/* Removes everything inside the directory dirfd (not the directory itself):
 * symlinks are removed, never followed; a directory on another device (a
 * mount) is never entered, and the removal fails there. */
int podsubdir_empty_tree(int dirfd, dev_t dev, struct fv_err *err);

/* "archived-<name>-<UTC time>" into buf. */
int podsubdir_archive_name(const char *name, time_t when, char *buf, size_t size, struct fv_err *err);
