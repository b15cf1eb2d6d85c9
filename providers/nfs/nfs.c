/* nfs: NFS exports mounted into pods. kubelet puts no timeout on mount and
 * unmount, so everything that talks to the server is bounded here: mount.nfs
 * runs in its own process group under mountTimeout, work on the export runs
 * in a forked child that is killed when its time is up, and nothing stats a
 * mount whose server may be gone.
 *
 * With a subDir, the export root is first mounted inside a private mount
 * namespace of a child process (so that mount vanishes with the child, even
 * if it is killed) and the subdirectory is walked there without following
 * symlinks, created when asked; then server:share/subDir is mounted straight
 * onto the pod dir, and its root is checked to be the directory walked. */
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "flexvol.h"
#include "fork.h"
#include "lock.h"
#include "log.h"
#include "mount.h"
#include "mounttab.h"
#include "nfsopts.h"
#include "path.h"
#include "run.h"

#define DEFAULT_MOUNT_TIMEOUT_S 120
#define MAX_MOUNT_TIMEOUT_S 3600
#define DEFAULT_UNMOUNT_TIMEOUT_S 30
#define DEFAULT_SUBDIR_MODE 0775
/* What the killed-child cleanup after a timeout may still take. */
#define CLEANUP_TIMEOUT_MS 10000
/* mount.nfs inside the helper child must be killed by the child's own
 * timeout, not orphaned by the child being killed: it gets less time. */
#define CHILD_MARGIN_MS 1000

struct nfs_conf {
	long unmount_timeout_ms;
	char helper_dir[PATH_MAX];  /* mount point used inside private namespaces */
	char mount_nfs[PATH_MAX];
	bool have_mount_nfs;
	struct fv_err no_mount_nfs;
};

static void nfs_capabilities(struct fv_ctx *ctx, struct fv_caps *caps)
{
	bool fsgroup = false;
	struct fv_err err = {0};
	/* init must succeed: a bad value only means the default. */
	if (ctx->config && fv_config_get_bool(ctx->config, "nfs", "fsgroup", false, &fsgroup, &err) < 0)
		fv_log(LOG_WARNING, "init: %s (fsGroup stays false)", err.msg);
	*caps = (struct fv_caps){.attach = false, .selinux_relabel = false, .supports_metrics = true,
				 .fs_group = fsgroup};
}

static int nfs_setup(struct fv_ctx *ctx, struct fv_err *err)
{
	struct nfs_conf *c = calloc(1, sizeof(*c));
	if (!c)
		return fv_err_set(err, ENOMEM, "nfs setup");
	ctx->data = c;
	long s;
	struct fv_err cerr = {0};
	/* A bad value must not keep pods from being torn down: default and say so. */
	if (fv_config_get_long(ctx->config, "nfs", "unmount-timeout", DEFAULT_UNMOUNT_TIMEOUT_S, 1, MAX_MOUNT_TIMEOUT_S,
			       &s, &cerr) < 0) {
		fv_log(LOG_WARNING, "%s (using %d s)", cerr.msg, DEFAULT_UNMOUNT_TIMEOUT_S);
		s = DEFAULT_UNMOUNT_TIMEOUT_S;
	}
	c->unmount_timeout_ms = s * 1000;
	snprintf(c->helper_dir, sizeof(c->helper_dir), "%s/nfs-root", ctx->run_dir);
	/* Missing mount.nfs fails mount only: unmount never needs it. */
	c->have_mount_nfs = fv_tool_path("mount.nfs", "nfs-common", c->mount_nfs, sizeof(c->mount_nfs),
					 &c->no_mount_nfs) == 0;
	return 0;
}

static void nfs_teardown(struct fv_ctx *ctx)
{
	free(ctx->data);
}

struct nfs_volume {
	const char *server;
	char share[PATH_MAX];
	char subdir[PATH_MAX];     /* expanded; "" for none */
	bool create;
	unsigned int subdir_mode;
	long timeout_ms;
	bool readonly;
	char source[2 * PATH_MAX]; /* server:share[/subdir] */
	char root_source[2 * PATH_MAX];
};

static const char *const known_options[] = {"server", "share", "subDir", "createSubDir", "subDirMode",
					    "mountOptions", "mountTimeout", NULL};

static int parse_volume(const struct fv_opts *o, struct nfs_volume *v, struct fv_err *err)
{
	if (fv_opts_check_known(o, known_options, err) < 0)
		return err->code;
	v->server = fv_opts_get(o, "server");
	if (fv_nfs_check_server(v->server, err) < 0 ||
	    fv_nfs_check_share(fv_opts_get(o, "share"), v->share, sizeof(v->share), err) < 0)
		return err->code;
	const char *sub = fv_opts_get(o, "subDir");
	v->subdir[0] = '\0';
	if (sub && *sub && fv_nfs_expand_subdir(sub, o, v->subdir, sizeof(v->subdir), err) < 0)
		return err->code;
	const char *create = fv_opts_get(o, "createSubDir");
	if (!create || !*create || !strcmp(create, "false"))
		v->create = false;
	else if (!strcmp(create, "true"))
		v->create = true;
	else
		return fv_err_msg(err, EINVAL, "option 'createSubDir' must be true or false, not '%.32s'", create);
	if (v->create && !v->subdir[0])
		return fv_err_msg(err, EINVAL, "option 'createSubDir' needs option 'subDir'");
	const char *mode = fv_opts_get(o, "subDirMode");
	v->subdir_mode = DEFAULT_SUBDIR_MODE;
	if (mode && *mode && fv_parse_dir_mode(mode, "option 'subDirMode'", &v->subdir_mode, err) < 0)
		return err->code;
	const char *t = fv_opts_get(o, "mountTimeout");
	long secs = DEFAULT_MOUNT_TIMEOUT_S;
	if (t && *t) {
		char *end;
		errno = 0;
		secs = strtol(t, &end, 10);
		if (*end || errno || t[0] == '-' || t[0] == '+' || secs < 1 || secs > MAX_MOUNT_TIMEOUT_S)
			return fv_err_msg(err, EINVAL, "option 'mountTimeout' must be a number of seconds from 1 to %d, not '%.32s'",
					  MAX_MOUNT_TIMEOUT_S, t);
	}
	v->timeout_ms = secs * 1000;
	v->readonly = fv_opts_readonly(o);
	if (fv_nfs_source(v->server, v->share, v->subdir, v->source, sizeof(v->source), err) < 0 ||
	    fv_nfs_source(v->server, v->share, NULL, v->root_source, sizeof(v->root_source), err) < 0)
		return err->code;
	return 0;
}

/* Every failure of mount.nfs names the server; a timeout says so first. */
static int server_error(struct fv_err *err, const struct nfs_volume *v, const char *what)
{
	char why[sizeof(err->msg)];
	snprintf(why, sizeof(why), "%s", err->msg);
	if (err->code == -ETIMEDOUT)
		return fv_err_msg(err, ETIMEDOUT, "NFS server %s did not answer within %ld s (mountTimeout) mounting %s: %s",
				  v->server, v->timeout_ms / 1000, what, why);
	return fv_err_msg(err, -err->code, "NFS server %s, mounting %s: %s", v->server, what, why);
}

/* ---- the subdirectory, walked in a private mount namespace ---- */

struct prepare_args {
	const struct nfs_conf *conf;
	const struct nfs_volume *vol;
	const char *options;   /* for the helper mount of the export root */
	int64_t deadline;
};

struct prepare_out {
	unsigned long long ino;
	bool created;
};

/* One component, never through a symlink. Not O_PATH: a plain open
 * triggers the automount of a nested export (NFSv4 crossmnt), so the walk
 * lands on the same root the kernel's own mount of the path would. */
static int open_no_symlinks(int dirfd, const char *name)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	long fd;
	while ((fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how))) < 0 && errno == EAGAIN)
		;
	return (int)fd;
}

static int walk_error(const struct nfs_volume *v, const char *prefix, int e, struct fv_err *err)
{
	if (e == ELOOP)
		return fv_err_msg(err, ELOOP, "subDir '%s': '%s' is a symlink on the server; symlinks are not followed",
				  v->subdir, prefix);
	if (e == ENOTDIR)
		return fv_err_msg(err, ENOTDIR, "subDir '%s': '%s' is not a directory", v->subdir, prefix);
	if (e == ENOENT)
		return fv_err_msg(err, ENOENT, "subDir '%s' does not exist in %s (set createSubDir to \"true\" to create it)",
				  v->subdir, v->root_source);
	return fv_err_set(err, e, "subDir '%s': cannot open '%s'", v->subdir, prefix);
}

/* Runs in the child: private namespace, export root mounted there, subDir
 * resolved one component at a time, never through a symlink. */
static int prepare_subdir(void *arg, void *outp, struct fv_err *err)
{
	const struct prepare_args *a = arg;
	const struct nfs_volume *v = a->vol;
	struct prepare_out *out = outp;
	if (unshare(CLONE_NEWNS) < 0)
		return fv_err_set(err, errno, "cannot create a private mount namespace");
	/* Nothing mounted here may propagate back to the node. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fv_err_set(err, errno, "cannot make the private mount namespace private");
	long left = (long)(a->deadline - fv_now_ms()) - CHILD_MARGIN_MS;
	if (left <= 0)
		return fv_err_msg(err, ETIMEDOUT, "no time left to mount %s", v->root_source);
	const char *argv[] = {a->conf->mount_nfs, v->root_source, a->conf->helper_dir, "-n", "-o", a->options, NULL};
	if (fv_run(argv, left, NULL, err) < 0)
		return server_error(err, v, v->root_source);
	_cleanup_close_ int cur = open(a->conf->helper_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return fv_err_set(err, errno, "cannot open the export root of %s", v->root_source);
	char prefix[PATH_MAX] = "";
	for (const char *c = v->subdir; *c;) {
		size_t n = strcspn(c, "/");
		char name[NAME_MAX + 1];
		if (n > NAME_MAX)
			return fv_err_msg(err, ENAMETOOLONG, "subDir '%s' has a component longer than %d", v->subdir, NAME_MAX);
		memcpy(name, c, n);
		name[n] = '\0';
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(c - v->subdir + (long)n), v->subdir);
		c += n;
		if (*c == '/')
			c++;
		int next = open_no_symlinks(cur, name);
		if (next < 0 && errno == ENOENT && v->create) {
			mode_t old = umask(0);
			int r = mkdirat(cur, name, v->subdir_mode);
			int e = errno;
			umask(old);
			if (r < 0 && e != EEXIST)
				return fv_err_set(err, e, "cannot create '%s' in %s", prefix, v->root_source);
			if (r == 0) {
				out->created = true;
				fv_log(LOG_NOTICE, "created %s/%s (mode %04o)", v->root_source, prefix, v->subdir_mode);
			}
			next = open_no_symlinks(cur, name);
		}
		if (next < 0)
			return walk_error(v, prefix, errno, err);
		close(cur);
		cur = next;
	}
	struct stat st;
	if (fstat(cur, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect subDir '%s'", v->subdir);
	out->ino = st.st_ino;
	return 0;
}

/* ---- bounded unmount ---- */

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

/* Unmounts dir within timeout_ms even when the server is gone: the unmount
 * runs in a child; if that hangs (the kernel tearing down a dead server's
 * mount) the child is killed, and what matters is whether dir is still in the
 * mount table, which is read, never stat'ed. */
static int bounded_unmount(const char *dir, long timeout_ms, struct fv_err *err)
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
	if (fv_fork_run("lazy unmount", detach_child, (void *)dir, NULL, 0, CLEANUP_TIMEOUT_MS, &e2) < 0)
		fv_log(LOG_WARNING, "%s: %s", dir, e2.msg);
	if ((m = fv_mounttab_find(dir, &me, err)) < 0)
		return m;
	if (m)
		return fv_err_msg(err, ETIMEDOUT, "cannot unmount '%s' (%s): %s", dir, me.source, e1.msg);
	return 0;
}

/* ---- mount / unmount ---- */

static bool is_nfs(const char *fstype)
{
	return !strcmp(fstype, "nfs") || !strcmp(fstype, "nfs4");
}

static int already_mounted(const char *dir, const struct nfs_volume *v, struct fv_err *err)
{
	struct fv_mount_entry me;
	int m = fv_mounttab_find(dir, &me, err);
	if (m <= 0)
		return m;
	if (!is_nfs(me.fstype) || strcmp(me.source, v->source))
		return fv_err_msg(err, EBUSY, "'%s' already has %s (%s) mounted", dir, me.source, me.fstype);
	if (me.readonly != v->readonly)
		return fv_err_msg(err, EBUSY, "'%s' already has %s mounted %s", dir, me.source,
				  me.readonly ? "read-only" : "read-write");
	return 1;
}

static int nfs_mount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct nfs_conf *c = ctx->data;
	struct nfs_volume v;
	if (parse_volume(call->opts, &v, err) < 0)
		return err->code;
	_cleanup_free_ char *options = NULL;
	if (fv_nfs_mount_options(fv_opts_get(call->opts, "mountOptions"), v.readonly, &options, err) < 0)
		return err->code;
	if (!c->have_mount_nfs) {
		*err = c->no_mount_nfs;
		return err->code;
	}
	int64_t deadline = fv_now_ms() + v.timeout_ms;
	if (fv_mkdir_p(call->dir, 0750, err) < 0)
		return err->code;
	int m = already_mounted(call->dir, &v, err);
	if (m)
		return m < 0 ? m : 0;

	struct prepare_out prep = {0};
	if (v.subdir[0]) {
		/* The helper mount writes only when it has to create. */
		_cleanup_free_ char *helper_opts = NULL;
		if (fv_nfs_mount_options(fv_opts_get(call->opts, "mountOptions"), !v.create, &helper_opts, err) < 0)
			return err->code;
		if (mnt_optstr_append_option(&helper_opts, "noexec", NULL))
			return fv_err_set(err, ENOMEM, "building mount options");
		if (fv_mkdir_p(c->helper_dir, 0700, err) < 0)
			return err->code;
		struct prepare_args a = {.conf = c, .vol = &v, .options = helper_opts, .deadline = deadline};
		if (fv_fork_run("checking subDir", prepare_subdir, &a, &prep, sizeof(prep), v.timeout_ms, err) < 0) {
			/* The child words its own errors; only a child killed at the
			 * deadline (stuck on the server after mounting) is worded here. */
			if (err->code == -ETIMEDOUT && strncmp(err->msg, "NFS server ", 11))
				return server_error(err, &v, v.root_source);
			return err->code;
		}
	}

	long left = (long)(deadline - fv_now_ms());
	if (left < 1000)
		left = 1000;
	const char *argv[] = {c->mount_nfs, v.source, call->dir, "-n", "-o", options, NULL};
	if (fv_run(argv, left, NULL, err) < 0) {
		struct fv_err e2 = {0};
		struct fv_mount_entry me;
		/* Killed at the deadline (or on SIGTERM), mount.nfs may have got its
		 * mount in just before: nothing was mounted here when it started
		 * (the volume's lock keeps it so), so whatever is there now is undone. */
		if (fv_mounttab_find(call->dir, &me, &e2) > 0 && bounded_unmount(call->dir, CLEANUP_TIMEOUT_MS, &e2) < 0)
			fv_log(LOG_ERR, "%s: left mounted after a failed mount: %s", call->dir, e2.msg);
		return server_error(err, &v, v.source);
	}
	if (v.subdir[0]) {
		/* The kernel resolves the sub path itself and follows symlinks in it:
		 * make sure what got mounted is the directory walked above. No wire
		 * traffic: the attributes are the ones the mount just fetched. */
		struct statx sx;
		if (statx(AT_FDCWD, call->dir, AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW, STATX_INO,
			  &sx) < 0 ||
		    sx.stx_ino != prep.ino) {
			struct fv_err e2 = {0};
			if (bounded_unmount(call->dir, CLEANUP_TIMEOUT_MS, &e2) < 0)
				fv_log(LOG_ERR, "%s: %s", call->dir, e2.msg);
			return fv_err_msg(err, ESTALE,
					  "subDir '%s' on %s changed while it was being mounted (a symlink or rename "
					  "on the server?); refused",
					  v.subdir, v.root_source);
		}
	}
	fv_log(LOG_INFO, "mounted %s on %s (%s)%s", v.source, call->dir, options, prep.created ? ", subDir created" : "");
	return 0;
}

static int nfs_unmount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct nfs_conf *c = ctx->data;
	struct fv_mount_entry me;
	/* Read the mount table instead of asking the (maybe dead) mount itself. */
	int m = fv_mounttab_find(call->dir, &me, err);
	if (m < 0)
		return err->code == -ENOENT ? 0 : m;
	if (!m)
		return 0;
	return bounded_unmount(call->dir, c->unmount_timeout_ms, err);
}

static const struct fv_provider nfs_provider = {
	.name = "nfs",
	.summary = "NFS exports (or a per-volume subdirectory of one) mounted into pods with mount.nfs.",
	.help = "Options (flexVolume.options):\n"
		"  server        required; host name, IPv4 address or [IPv6] address\n"
		"  share         required; absolute path of the export on the server\n"
		"  subDir        optional; a directory below share, relative, no '..'; may use\n"
		"                ${pv.name} ${pod.namespace} ${pod.name} ${pod.uid}\n"
		"                ${serviceAccount.name}; symlinks on the server are never followed\n"
		"  createSubDir  true or false (default); create missing subDir directories\n"
		"  subDirMode    octal mode of created directories (default 0775)\n"
		"  mountOptions  comma-separated NFS options (nfs(5)), each checked with its value,\n"
		"                e.g. vers=4.1,hard,timeo=600; ro/rw come from readOnly, and the\n"
		"                driver always adds nosuid,nodev\n"
		"  mountTimeout  seconds the whole mount may take (default 120); then mount.nfs is\n"
		"                killed and the call fails naming the server\n"
		"  readOnly      (the volume's readOnly flag) mounts read-only\n"
		"Configuration ([nfs] in nfs.conf):\n"
		"  fsgroup = false          true lets kubelet chown the volume to the pod's fsGroup\n"
		"  unmount-timeout = 30     seconds an unmount may take before a lazy detach\n"
		"Needs mount.nfs on the node (package nfs-common).\n"
		"Capabilities: attach false, selinuxRelabel false, fsGroup per config, supportsMetrics true.\n",
	.capabilities = nfs_capabilities,
	.setup = nfs_setup,
	.teardown = nfs_teardown,
	.mount = nfs_mount,
	.unmount = nfs_unmount,
	.config_keys = (const char *const[]){"nfs.fsgroup", "nfs.unmount-timeout", NULL},
	.programs = (const struct fv_program[]){{"mount.nfs", "nfs-common"}, {NULL}},
	.filesystems = (const char *const[]){"nfs", "nfs4", NULL},
};

int main(int argc, char **argv)
{
	return fv_main(&nfs_provider, argc, argv);
}
