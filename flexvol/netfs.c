#include "netfs.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "cleanup.h"
#include "config.h"
#include "flexvol.h"
#include "fork.h"
#include "log.h"
#include "mount.h"
#include "mounttab.h"
#include "nfsopts.h"
#include "opts.h"

/* What a lazy detach after a hung unmount may still take. */
#define DETACH_TIMEOUT_MS 10000

/* One component, never through a symlink. Not O_PATH: a plain open
 * triggers the automount of a nested export (NFSv4 crossmnt), so the walk
 * lands on the same root the kernel's own mount of the path would. Without
 * openat2, O_NOFOLLOW refuses a symlink as the last (only) component. */
static int open_no_symlinks(int dirfd, const char *name)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	long fd;
	while ((fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how))) < 0 && errno == EAGAIN)
		;
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return (int)fd;
}

int fv_subdir_error(const struct fv_subdir_walk *w, const char *prefix, int e, struct fv_err *err)
{
	if (e == ELOOP)
		return fv_err_msg(err, ELOOP, "subDir '%s': '%s' is a symlink on the server; symlinks are not followed",
				  w->subdir, prefix);
	if (e == ENOTDIR)
		return fv_err_msg(err, ENOTDIR, "subDir '%s': '%s' is not a directory", w->subdir, prefix);
	if (e == ENOENT)
		return fv_err_msg(err, ENOENT, "subDir '%s' does not exist in %s (set createSubDir to \"true\" to create it)",
				  w->subdir, w->where);
	return fv_err_set(err, e, "subDir '%s': cannot open '%s'", w->subdir, prefix);
}

int fv_subdir_walk(int root, const struct fv_subdir_walk *w, size_t ncomp, struct fv_subdir_found *out,
		   struct fv_err *err)
{
	_cleanup_close_ int cur = fcntl(root, F_DUPFD_CLOEXEC, 0);
	if (cur < 0)
		return fv_err_set(err, errno, "cannot open the root of %s", w->where);
	char prefix[PATH_MAX] = "";
	size_t depth = 0;
	for (const char *c = w->subdir; *c && depth < ncomp;) {
		size_t n = strcspn(c, "/");
		char name[NAME_MAX + 1];
		if (n > NAME_MAX)
			return fv_err_msg(err, ENAMETOOLONG, "subDir '%s' has a component longer than %d", w->subdir, NAME_MAX);
		memcpy(name, c, n);
		name[n] = '\0';
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(c - w->subdir + (long)n), w->subdir);
		c += n;
		if (*c == '/')
			c++;
		depth++;
		bool made = false;
		int next = open_no_symlinks(cur, name);
		if (next < 0 && errno == ENOENT && w->create) {
			mode_t old = umask(0);
			int r = mkdirat(cur, name, w->mode);
			int e = errno;
			umask(old);
			if (r < 0 && e != EEXIST)
				return fv_err_set(err, e, "cannot create '%s' in %s", prefix, w->where);
			made = r == 0;
			next = open_no_symlinks(cur, name);
		}
		if (next < 0)
			return fv_subdir_error(w, prefix, errno, err);
		/* On the descriptor of the directory just made, never a path.
		 * chown may drop mode bits: the mode is set again after it. */
		if (made && (w->uid >= 0 || w->gid >= 0) &&
		    (fchown(next, (uid_t)w->uid, (gid_t)w->gid) < 0 || fchmod(next, w->mode) < 0)) {
			int e = errno;
			close(next);
			/* Not left half made: kubelet's retry must meet the same refusal,
			 * not an existing directory it would take as it is. */
			unlinkat(cur, name, AT_REMOVEDIR);
			return fv_err_set(err, e, "cannot set the owner of '%s' in %s to %ld:%ld (root squashed?)", prefix,
					  w->where, w->uid, w->gid);
		}
		close(cur);
		cur = next;
		if (made) {
			out->created = true;
			fv_log(LOG_NOTICE, "created %s/%s (mode %04o, owner %ld:%ld)", w->where, prefix, w->mode, w->uid,
			       w->gid);
		}
		if (depth == w->per_pod_depth) {
			struct stat st;
			if (fstat(cur, &st) < 0)
				return fv_err_set(err, errno, "cannot inspect '%s'", prefix);
			out->per_pod_ino = st.st_ino;
			out->per_pod_created = made;
		}
	}
	struct stat st;
	if (fstat(cur, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect subDir '%s'", w->subdir);
	out->ino = st.st_ino;
	return fv_steal_fd(&cur);
}

static int unmount_child(void *arg, void *out, struct fv_err *err)
{
	(void)out;
	return fv_unmount(arg, err);
}

static int detach_child(void *arg, void *out, struct fv_err *err)
{
	(void)out;
	if (umount2(arg, UMOUNT_NOFOLLOW | MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return fv_err_set(err, errno, "cannot detach '%s'", (const char *)arg);
	return 0;
}

int fv_unmount_bounded(const char *dir, long timeout_ms, struct fv_err *err)
{
	struct fv_err e1 = {0}, e2 = {0};
	struct fv_mount_entry me;
	int rc = fv_fork_run("unmount", unmount_child, (void *)dir, NULL, 0, timeout_ms, &e1);
	if (rc == 0)
		return 0;
	int m = fv_mounttab_find(dir, &me, err);
	if (m < 0)
		return m;
	if (!m) {
		fv_log(LOG_WARNING, "%s: %s; the mount is gone from the mount table all the same", dir, e1.msg);
		return 0;
	}
	if (e1.code != -ETIMEDOUT) {
		*err = e1;
		return rc;
	}
	fv_log(LOG_WARNING, "%s: %s; detaching it lazily", dir, e1.msg);
	if (fv_fork_run("lazy unmount", detach_child, (void *)dir, NULL, 0, DETACH_TIMEOUT_MS, &e2) < 0)
		fv_log(LOG_WARNING, "%s: %s", dir, e2.msg);
	if ((m = fv_mounttab_find(dir, &me, err)) < 0)
		return m;
	if (m)
		return fv_err_msg(err, ETIMEDOUT, "cannot unmount '%s' (%s): %s", dir, me.source, e1.msg);
	return 0;
}

/* ---- what nfs and smb read the same way ---- */

void fv_netfs_capabilities(struct fv_ctx *ctx, const char *section, struct fv_caps *caps)
{
	bool fsgroup = false;
	struct fv_err err = {0};
	if (ctx->config && fv_config_get_bool(ctx->config, section, "fsgroup", false, &fsgroup, &err) < 0)
		fv_log(LOG_WARNING, "init: %s (fsGroup stays false)", err.msg);
	*caps = (struct fv_caps){.attach = false, .selinux_relabel = false, .supports_metrics = true,
				 .fs_group = fsgroup};
}

long fv_netfs_unmount_timeout_ms(const struct fv_config *c, const char *section)
{
	long s;
	struct fv_err err = {0};
	if (fv_config_get_long(c, section, "unmount-timeout", FV_NETFS_DEFAULT_UNMOUNT_TIMEOUT_S, 1,
			       FV_NETFS_MAX_MOUNT_TIMEOUT_S, &s, &err) < 0) {
		fv_log(LOG_WARNING, "%s (using %d s)", err.msg, FV_NETFS_DEFAULT_UNMOUNT_TIMEOUT_S);
		s = FV_NETFS_DEFAULT_UNMOUNT_TIMEOUT_S;
	}
	return s * 1000;
}

int fv_netfs_max_mount_timeout(const struct fv_config *c, const char *section, long *max_s, struct fv_err *err)
{
	return fv_config_get_long(c, section, "max-mount-timeout", FV_NETFS_DEFAULT_MOUNT_TIMEOUT_S, 1,
				  FV_NETFS_MAX_MOUNT_TIMEOUT_S, max_s, err);
}

int fv_netfs_parse_subdir(const struct fv_opts *o, char *subdir, size_t size, bool *create, unsigned int *mode,
			  struct fv_err *err)
{
	const char *sub = fv_opts_get(o, "subDir");
	subdir[0] = '\0';
	if (sub && *sub && fv_nfs_expand_subdir(sub, o, subdir, size, err) < 0)
		return err->code;
	const char *c = fv_opts_get(o, "createSubDir");
	if (!c || !*c || !strcmp(c, "false"))
		*create = false;
	else if (!strcmp(c, "true"))
		*create = true;
	else
		return fv_err_msg(err, EINVAL, "option 'createSubDir' must be true or false, not '%.32s'", c);
	if (*create && !subdir[0])
		return fv_err_msg(err, EINVAL, "option 'createSubDir' needs option 'subDir'");
	const char *m = fv_opts_get(o, "subDirMode");
	*mode = FV_NETFS_DEFAULT_SUBDIR_MODE;
	if (m && *m && fv_parse_dir_mode(m, "option 'subDirMode'", mode, err) < 0)
		return err->code;
	return 0;
}

int fv_netfs_parse_mount_timeout(const struct fv_opts *o, const char *section, long max_s, long *timeout_ms,
				 struct fv_err *err)
{
	const char *t = fv_opts_get(o, "mountTimeout");
	long secs = FV_NETFS_DEFAULT_MOUNT_TIMEOUT_S < max_s ? FV_NETFS_DEFAULT_MOUNT_TIMEOUT_S : max_s;
	if (t && *t) {
		char *end;
		errno = 0;
		secs = strtol(t, &end, 10);
		if (*end || errno || t[0] == '-' || t[0] == '+' || secs < 1)
			return fv_err_msg(err, EINVAL, "option 'mountTimeout' must be a number of seconds from 1 to %ld, not '%.32s'",
					  max_s, t);
		/* The mount holds the pod dir's lock that long: the node decides the cap. */
		if (secs > max_s)
			return fv_err_msg(err, EINVAL,
					  "option 'mountTimeout' %ld is above this node's limit of %ld s ([%s] "
					  "max-mount-timeout)",
					  secs, max_s, section);
	}
	*timeout_ms = secs * 1000;
	return 0;
}

int fv_netfs_check_server_allowed(const struct fv_config *c, const char *section, const char *kind,
				  const char *example, const char *server, struct fv_err *err)
{
	const char *conf = fv_config_path(c);
	const char *list = fv_config_get(c, section, "allowed-servers", NULL);
	if (!list || !list[strspn(list, ", \t")])
		return fv_err_msg(err, EACCES,
				  "%s volumes are disabled on this node: no server is allowed. To allow some, set "
				  "'allowed-servers = %s, 10.0.0.0/24' in section [%s] of %s",
				  kind, example, section, conf);
	int r = fv_nfs_server_allowed(server, list, err);
	if (r < 0)
		return fv_err_prefix(err, "%s: [%s] allowed-servers", conf, section);
	if (!r)
		return fv_err_msg(err, EACCES,
				  "%s server '%s' is not among the allowed servers of this node ([%s] allowed-servers = "
				  "%.400s in %s); names are matched as written, never resolved",
				  kind, server, section, list, conf);
	return 0;
}
