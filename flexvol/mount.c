#include "mount.h"
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include "cleanup.h"
#include "flexvol.h"
#include "lock.h"
#include "path.h"

/* The node's mount policy for this call (fv_mount_policy_load). The defaults
 * are the safe ones, so a caller that never loads a policy (unit tests,
 * tools) still gets nosuid,nodev and only ext4/xfs. */
static struct {
	bool allow_setuid, allow_devices;
	char extra_fstypes[256]; /* ",a,b," or "" */
} policy;

int fv_mount_policy_load(const struct fv_config *c, const char *driver, struct fv_err *err)
{
	policy.extra_fstypes[0] = '\0';
	if (fv_config_get_bool(c, driver, "allow-setuid", false, &policy.allow_setuid, err) < 0 ||
	    fv_config_get_bool(c, driver, "allow-devices", false, &policy.allow_devices, err) < 0)
		return err->code;
	const char *list = fv_config_get(c, driver, "allowed-fstypes", NULL);
	if (!list)
		return 0;
	/* Stored as ",a,b," so that a lookup is one strstr of ",type,". */
	size_t n = 0;
	policy.extra_fstypes[n++] = ',';
	for (const char *p = list; *p; p++) {
		if (*p == ' ' || *p == '\t')
			continue;
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == ',' || *p == '_' || *p == '.';
		if (!ok || n + 2 >= sizeof(policy.extra_fstypes)) {
			policy.extra_fstypes[0] = '\0';
			return fv_err_msg(err, EINVAL,
					  "configuration '%s': [%s] allowed-fstypes must be a short comma-separated list "
					  "of file system types (such as ext2,btrfs), not '%s'",
					  fv_config_path(c), driver, list);
		}
		policy.extra_fstypes[n++] = *p;
	}
	policy.extra_fstypes[n++] = ',';
	policy.extra_fstypes[n] = '\0';
	return 0;
}

bool fv_mount_fstype_allowed(const char *fstype)
{
	if (!strcmp(fstype, "ext4") || !strcmp(fstype, "xfs"))
		return true;
	char key[72];
	if (snprintf(key, sizeof(key), ",%s,", fstype) >= (int)sizeof(key))
		return false;
	return strstr(policy.extra_fstypes, key) != NULL;
}

/* options plus the policy's nosuid,nodev; caller frees. */
static char *with_policy(const char *options)
{
	char *s = strdup(options ? options : "");
	if (!s)
		return NULL;
	if ((!policy.allow_setuid && mnt_optstr_append_option(&s, "nosuid", NULL)) ||
	    (!policy.allow_devices && mnt_optstr_append_option(&s, "nodev", NULL))) {
		free(s);
		return NULL;
	}
	return s;
}

static void context_free(struct libmnt_context **c)
{
	mnt_free_context(*c);
}
#define _cleanup_mnt_context_ __attribute__((cleanup(context_free)))

/* A context that does exactly the syscall: no helper programs, no mtab or
 * utab, no canonicalisation (which would resolve /proc/self/fd sources). */
static struct libmnt_context *new_context(const char *source, const char *target, const char *fstype,
					  const char *options)
{
	struct libmnt_context *c = mnt_new_context();
	if (!c)
		return NULL;
	if (mnt_context_disable_helpers(c, 1) || mnt_context_disable_mtab(c, 1) || mnt_context_disable_canonicalize(c, 1) ||
	    mnt_context_disable_swapmatch(c, 1) || (source && mnt_context_set_source(c, source)) ||
	    mnt_context_set_target(c, target) || (fstype && mnt_context_set_fstype(c, fstype)) ||
	    (options && mnt_context_set_options(c, options))) {
		mnt_free_context(c);
		return NULL;
	}
	return c;
}

static int run_mount(struct libmnt_context *c, const char *what, const char *target, struct fv_err *err)
{
	if (!c)
		return fv_err_set(err, ENOMEM, "cannot mount %s on '%s'", what, target);
	int rc = mnt_context_mount(c);
	if (rc == 0 && mnt_context_get_status(c) == 1)
		return 0;
	char buf[512] = "";
	int syserr = mnt_context_get_syscall_errno(c);
	mnt_context_get_excode(c, rc, buf, sizeof(buf));
	return fv_err_msg(err, syserr ? syserr : EIO, "cannot mount %s on '%s': %s", what, target,
			  *buf ? buf : strerror(syserr ? syserr : EIO));
}

int fv_mount_fs(const char *source, const char *target, const char *fstype, const char *options, struct fv_err *err)
{
	_cleanup_free_ char *opts = with_policy(options);
	_cleanup_mnt_context_ struct libmnt_context *c = opts ? new_context(source, target, fstype, opts) : NULL;
	return run_mount(c, source, target, err);
}

/* The bind as one step: a detached copy of the source gets its flags, then is
 * attached. A bind followed by a remount (the old way) leaves a bind without
 * its flags when the remount fails or the driver dies between the two, and
 * kubelet's retry then skips the driver because the pod dir is a mount point:
 * a read-only pod would keep a writable bind. -ENOSYS: the kernel (or
 * valgrind) lacks the new mount API. */
static int bind_with_flags(const char *source, const char *target, bool readonly, struct fv_err *err)
{
	_cleanup_close_ int tree = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return errno == ENOSYS ? -ENOSYS : fv_err_set(err, errno, "cannot bind '%s' on '%s'", source, target);
	struct mount_attr attr = {
		.attr_set = (readonly ? MOUNT_ATTR_RDONLY : 0) | (policy.allow_setuid ? 0 : MOUNT_ATTR_NOSUID) |
			    (policy.allow_devices ? 0 : MOUNT_ATTR_NODEV),
	};
	if (attr.attr_set && mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		return errno == ENOSYS ? -ENOSYS
				       : fv_err_set(err, errno, "cannot set the flags of the bind of '%s'", source);
	if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return fv_err_set(err, errno, "cannot bind '%s' on '%s'", source, target);
	return 0;
}

int fv_mount_bind(const char *source, const char *target, bool readonly, struct fv_err *err)
{
	int r = bind_with_flags(source, target, readonly, err);
	if (r != -ENOSYS)
		return r;
	/* libmount turns "bind,ro,nosuid,nodev" into the bind plus a remount
	 * carrying the flags: the bind call itself ignores them. */
	_cleanup_free_ char *opts = with_policy(readonly ? "bind,ro" : "bind");
	_cleanup_mnt_context_ struct libmnt_context *c = opts ? new_context(source, target, NULL, opts) : NULL;
	int before = fv_is_mountpoint(target, &(struct fv_err){0});
	if (run_mount(c, source, target, err) == 0)
		return 0;
	/* The bind may be in place without its flags (the remount failed): take it away. */
	if (before == 0 && fv_is_mountpoint(target, &(struct fv_err){0}) == 1)
		umount2(target, UMOUNT_NOFOLLOW | MNT_DETACH);
	return err->code;
}

int fv_is_mountpoint(const char *path, struct fv_err *err)
{
	struct statx sx;
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS | STATX_MNT_ID, &sx) < 0) {
		if (errno == ESTALE || errno == ENOTCONN || errno == EIO)
			return 1;
		return fv_err_set(err, errno, "cannot inspect '%s'", path);
	}
	if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
		return !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
	/* Older kernels: a mount root has a different mount ID than its parent. */
	char parent[4096];
	struct statx px;
	snprintf(parent, sizeof(parent), "%s/..", path);
	if (statx(AT_FDCWD, parent, AT_NO_AUTOMOUNT, STATX_MNT_ID, &px) < 0)
		return fv_err_set(err, errno, "cannot inspect '%s'", parent);
	return sx.stx_mnt_id != px.stx_mnt_id || sx.stx_dev_major != px.stx_dev_major ||
	       sx.stx_dev_minor != px.stx_dev_minor;
}

int fv_mounted_dev(const char *path, dev_t *dev, struct fv_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect '%s'", path);
	*dev = st.st_dev;
	return 0;
}

int fv_mount_is_readonly(const char *path, struct fv_err *err)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return fv_err_set(err, errno, "cannot inspect '%s'", path);
	return !!(sv.f_flag & ST_RDONLY);
}

int fv_unmount(const char *target, struct fv_err *err)
{
	/* umount2 directly rather than libmount's context: that one reads the
	 * whole mount table (slow with thousands of mounts) and stats the target,
	 * which blocks forever on a dead NFS server. Bounded: at most 16 stacked
	 * mounts. */
	for (int i = 0; i < 16; i++) {
		if (umount2(target, UMOUNT_NOFOLLOW) == 0)
			continue;
		switch (errno) {
		case EINVAL: /* not (or no longer) a mount point */
		case ENOENT:
			return 0;
		case ESTALE:
		case ENOTCONN:
		case EIO:
			if (umount2(target, UMOUNT_NOFOLLOW | MNT_DETACH) == 0)
				continue;
			return fv_err_set(err, errno, "cannot detach stale mount '%s'", target);
		default:
			return fv_err_set(err, errno, "cannot unmount '%s'", target);
		}
	}
	return fv_err_msg(err, EBUSY, "'%s' still has mounts stacked on it after 16 unmounts", target);
}

int fv_mount_pod_from_global(const char *pod_dir, bool readonly, struct fv_err *err)
{
	char global[4096];
	if (fv_path_global_from_pod_dir(pod_dir, global, sizeof(global), err) < 0)
		return err->code;
	int m = fv_is_mountpoint(global, err);
	if (m < 0 && err->code != -ENOENT)
		return m;
	if (m <= 0)
		return fv_err_msg(err, ENOENT, "the volume is not mounted on its global path '%s' (mountdevice has not run)",
				  global);
	if (fv_mkdir_p(pod_dir, 0750, err) < 0)
		return err->code;
	if ((m = fv_is_mountpoint(pod_dir, err)) < 0)
		return m;
	if (!m)
		return fv_mount_bind(global, pod_dir, readonly, err);
	dev_t have = 0, want = 0;
	if (fv_mounted_dev(pod_dir, &have, err) < 0 || fv_mounted_dev(global, &want, err) < 0)
		return err->code;
	if (have != want)
		return fv_err_msg(err, EBUSY, "'%s' already has another file system mounted", pod_dir);
	return 0;
}

int fv_op_unmount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)ctx, (void)res;
	return fv_unmount(call->dir, err);
}
