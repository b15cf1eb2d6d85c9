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

/* ---- what nfs and smb read the same way, from a volume and from [section] ---- */

struct fv_ctx;
struct fv_caps;
struct fv_config;
struct fv_opts;

/* kubelet gives up waiting for a pod's volumes after 2 min 3 s
 * (podAttachAndMountTimeout) and retries the pod: a mount that waits longer
 * only holds the pod dir's lock for a pod that already failed once. The
 * node may allow more (max-mount-timeout, up to the maximum). */
#define FV_NETFS_DEFAULT_MOUNT_TIMEOUT_S 120
#define FV_NETFS_MAX_MOUNT_TIMEOUT_S 3600
#define FV_NETFS_DEFAULT_UNMOUNT_TIMEOUT_S 30
#define FV_NETFS_DEFAULT_SUBDIR_MODE 0775

/* init's answer: no attach, metrics, fsGroup as [section] fsgroup says
 * (false, with a warning, when the value is bad: init must succeed). */
void fv_netfs_capabilities(struct fv_ctx *ctx, const char *section, struct fv_caps *caps);

/* [section] unmount-timeout in ms; a bad value means the default, with a
 * warning: it must never keep a pod from being torn down. */
long fv_netfs_unmount_timeout_ms(const struct fv_config *c, const char *section);

/* [section] max-mount-timeout: the longest mountTimeout a volume may ask for. */
int fv_netfs_max_mount_timeout(const struct fv_config *c, const char *section, long *max_s, struct fv_err *err);

/* The volume's subDir (expanded into subdir, "" for none), createSubDir and
 * subDirMode. */
int fv_netfs_parse_subdir(const struct fv_opts *o, char *subdir, size_t size, bool *create, unsigned int *mode,
			  struct fv_err *err);

/* The volume's mountTimeout, capped by max_s ([section] max-mount-timeout). */
int fv_netfs_parse_mount_timeout(const struct fv_opts *o, const char *section, long max_s, long *timeout_ms,
				 struct fv_err *err);

/* [section] allowed-servers must name server (matched as written, never
 * resolved), or the mount is refused: inline volumes let any pod author pick
 * a server, and the node's kernel then talks to it and trusts what it serves.
 * kind ("NFS") and example ("nfs.example.com") make the messages. */
int fv_netfs_check_server_allowed(const struct fv_config *c, const char *section, const char *kind,
				  const char *example, const char *server, struct fv_err *err);
