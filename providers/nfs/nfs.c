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
 * onto the pod dir, and its root is checked to be the directory walked.
 *
 * Pod authors choose every option: the server must be in the node's
 * allowed-servers, and mountTimeout (which the pod dir's lock is held for)
 * is capped by max-mount-timeout. A per-pod directory the walk created is
 * recorded in the run dir so that unmount can apply subDirOnUnmount. */
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
#include "netfs.h"
#include "nfsopts.h"
#include "path.h"
#include "podsubdir.h"
#include "run.h"

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
	fv_netfs_capabilities(ctx, "nfs", caps);
}

static int nfs_setup(struct fv_ctx *ctx, struct fv_err *err)
{
	struct nfs_conf *c = calloc(1, sizeof(*c));
	if (!c)
		return fv_err_set(err, ENOMEM, "nfs setup");
	ctx->data = c;
	c->unmount_timeout_ms = fv_netfs_unmount_timeout_ms(ctx->config, "nfs");
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
	long subdir_uid, subdir_gid;  /* -1: unchanged */
	enum podsubdir_policy on_unmount;
	size_t per_pod_depth;      /* components of subdir making the per-pod directory; 0: none */
	const char *mount_options; /* as the volume gave them; NULL for none */
	long timeout_ms;
	bool readonly;
	char source[2 * PATH_MAX]; /* server:share[/subdir] */
	char root_source[2 * PATH_MAX];
};

static const char *const known_options[] = {"server",		"share",      "subDir",	      "createSubDir",
					    "subDirMode",	"subDirUid",  "subDirGid",    "subDirOnUnmount",
					    "mountOptions", "mountTimeout", NULL};

static int parse_owner(const struct fv_opts *o, const char *key, bool create, long *id, struct fv_err *err)
{
	const char *s = fv_opts_get(o, key);
	unsigned int n;
	char what[32];
	*id = -1;
	if (!s || !*s)
		return 0;
	snprintf(what, sizeof(what), "option '%s'", key);
	if (fv_nfs_parse_id(s, what, &n, err) < 0)
		return err->code;
	if (!create)
		return fv_err_msg(err, EINVAL, "option '%s' needs createSubDir \"true\" (it sets the owner of created directories)",
				  key);
	*id = n;
	return 0;
}

/* max_s: [nfs] max-mount-timeout, the longest mountTimeout a volume may ask for. */
static int parse_volume(const struct fv_opts *o, long max_s, struct nfs_volume *v, struct fv_err *err)
{
	if (fv_opts_check_known(o, known_options, NULL, err) < 0)
		return err->code;
	v->server = fv_opts_get(o, "server");
	if (fv_nfs_check_server(v->server, err) < 0 ||
	    fv_nfs_check_share(fv_opts_get(o, "share"), v->share, sizeof(v->share), err) < 0)
		return err->code;
	if (fv_netfs_parse_subdir(o, v->subdir, sizeof(v->subdir), &v->create, &v->subdir_mode, err) < 0)
		return err->code;
	if (parse_owner(o, "subDirUid", v->create, &v->subdir_uid, err) < 0 ||
	    parse_owner(o, "subDirGid", v->create, &v->subdir_gid, err) < 0 ||
	    podsubdir_parse_policy(fv_opts_get(o, "subDirOnUnmount"), &v->on_unmount, err) < 0)
		return err->code;
	v->per_pod_depth = 0;
	if (v->on_unmount != PODSUBDIR_RETAIN) {
		/* Only what belongs to one pod: never a directory other pods share. */
		if (!v->create)
			return fv_err_msg(err, EINVAL,
					  "option 'subDirOnUnmount' needs createSubDir \"true\" (it applies to directories "
					  "the driver created)");
		v->per_pod_depth = fv_nfs_per_pod_depth(fv_opts_get(o, "subDir"));
		if (!v->per_pod_depth)
			return fv_err_msg(err, EINVAL,
					  "option 'subDirOnUnmount' %s applies only to a per-pod subDir, one whose template "
					  "uses ${pod.uid} or ${pod.name}; '%.256s' may be shared",
					  podsubdir_policy_name(v->on_unmount), fv_opts_get(o, "subDir"));
	}
	v->mount_options = fv_opts_get(o, "mountOptions");
	if (fv_netfs_parse_mount_timeout(o, "nfs", max_s, &v->timeout_ms, err) < 0)
		return err->code;
	v->readonly = fv_opts_readonly(o);
	if (fv_nfs_source(v->server, v->share, v->subdir, v->source, sizeof(v->source), err) < 0 ||
	    fv_nfs_source(v->server, v->share, NULL, v->root_source, sizeof(v->root_source), err) < 0)
		return err->code;
	return 0;
}

/* The node's [nfs] allowed-servers names the server, or the mount is refused:
 * inline volumes let any pod author pick a server, and the node's kernel
 * then talks to it (and trusts what it serves) from inside the cluster. */
static int check_server_allowed(const struct fv_ctx *ctx, const struct nfs_volume *v, struct fv_err *err)
{
	return fv_netfs_check_server_allowed(ctx->config, "nfs", "NFS", "nfs.example.com", v->server, err);
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

struct cleanup_args {
	struct prepare_args prep;
	enum podsubdir_policy policy;
	unsigned long long ino;
};

/* In the child: a private mount namespace with the export root mounted in
 * it, noexec,nosuid,nodev; returns a descriptor of that root. */
static int enter_export(const struct prepare_args *a, struct fv_err *err)
{
	const struct nfs_volume *v = a->vol;
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
	int root = open(a->conf->helper_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return fv_err_set(err, errno, "cannot open the export root of %s", v->root_source);
	return root;
}

/* The volume as the core's subDir walk (flexvol/netfs.c) takes it. */
static struct fv_subdir_walk walk_of(const struct nfs_volume *v)
{
	return (struct fv_subdir_walk){.subdir = v->subdir, .where = v->root_source, .create = v->create,
				       .mode = v->subdir_mode, .uid = v->subdir_uid, .gid = v->subdir_gid,
				       .per_pod_depth = v->per_pod_depth};
}

static int walk(int root, const struct nfs_volume *v, size_t ncomp, struct fv_subdir_found *out, struct fv_err *err)
{
	struct fv_subdir_walk w = walk_of(v);
	return fv_subdir_walk(root, &w, ncomp, out, err);
}

static int walk_error(const struct nfs_volume *v, const char *prefix, int e, struct fv_err *err)
{
	struct fv_subdir_walk w = walk_of(v);
	return fv_subdir_error(&w, prefix, e, err);
}

/* Runs in the child: export root mounted in a private namespace, subDir
 * resolved (and created) there. */
static int prepare_subdir(void *arg, void *outp, struct fv_err *err)
{
	const struct prepare_args *a = arg;
	struct fv_subdir_found *out = outp;
	_cleanup_close_ int root = enter_export(a, err);
	if (root < 0)
		return root;
	_cleanup_close_ int cur = walk(root, a->vol, SIZE_MAX, out, err);
	return cur < 0 ? cur : 0;
}

/* Runs in the child at unmount: the per-pod directory the record names is
 * removed or archived, if it is still the directory that was created. */
static int cleanup_subdir(void *arg, void *outp, struct fv_err *err)
{
	(void)outp;
	const struct cleanup_args *ca = arg;
	const struct nfs_volume *v = ca->prep.vol;
	_cleanup_close_ int root = enter_export(&ca->prep, err);
	if (root < 0)
		return root;
	const char *slash = strrchr(v->subdir, '/');
	const char *name = slash ? slash + 1 : v->subdir;
	size_t depth = 1;
	for (const char *c = v->subdir; *c; c++)
		depth += *c == '/';
	struct fv_subdir_found ignored = {0};
	_cleanup_close_ int parent = walk(root, v, depth - 1, &ignored, err);
	if (parent < 0)
		return parent;
	struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV};
	_cleanup_close_ int dir = (int)syscall(SYS_openat2, parent, name, &how, sizeof(how));
	struct stat st;
	if (dir < 0)
		return errno == ENOENT ? 0 : walk_error(v, v->subdir, errno, err);
	if (fstat(dir, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect '%s'", v->subdir);
	if (st.st_ino != ca->ino)
		return fv_err_msg(err, ESTALE, "'%s' is no longer the directory created at mount; left alone", v->subdir);
	if (ca->policy == PODSUBDIR_ARCHIVE) {
		char archived[NAME_MAX + 1];
		if (podsubdir_archive_name(name, time(NULL), archived, sizeof(archived), err) < 0)
			return err->code;
		if (renameat(parent, name, parent, archived) < 0)
			return fv_err_set(err, errno, "cannot rename '%s' to '%s'", v->subdir, archived);
		fv_log(LOG_NOTICE, "archived %s/%s as %s", v->root_source, v->subdir, archived);
		return 0;
	}
	if (podsubdir_empty_tree(dir, st.st_dev, err) < 0)
		return fv_err_prefix(err, "emptying '%s'", v->subdir);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return fv_err_set(err, errno, "cannot remove '%s'", v->subdir);
	fv_log(LOG_NOTICE, "deleted %s/%s", v->root_source, v->subdir);
	return 0;
}

/* ---- bounded unmount ---- */

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

/* The per-pod directory this mount created, for unmount to find
 * (subDirOnUnmount). Written before mount.nfs runs: if the mount then fails,
 * kubelet's retry finds the directory there (not created again) and the
 * record already written. */
static void remember_subdir(const struct fv_ctx *ctx, const char *pod_dir, const struct nfs_volume *v,
			    unsigned long long ino)
{
	struct podsubdir_record r = {.policy = v->on_unmount, .ino = ino};
	char path[PATH_MAX];
	struct fv_err err = {0};
	const char *c = v->subdir;
	for (size_t depth = 0; *c && depth < v->per_pod_depth; depth++) {
		c += strcspn(c, "/");
		if (depth + 1 < v->per_pod_depth && *c == '/')
			c++;
	}
	snprintf(r.server, sizeof(r.server), "%s", v->server);
	snprintf(r.share, sizeof(r.share), "%s", v->share);
	snprintf(r.dir, sizeof(r.dir), "%.*s", (int)(c - v->subdir), v->subdir);
	snprintf(r.mount_options, sizeof(r.mount_options), "%s", v->mount_options ? v->mount_options : "");
	if (podsubdir_record_path(ctx->run_dir, pod_dir, path, sizeof(path), &err) < 0 ||
	    podsubdir_record_write(path, &r, &err) < 0)
		fv_log(LOG_ERR, "%s: %s; subDirOnUnmount=%s will not apply to %s", pod_dir, err.msg,
		       podsubdir_policy_name(v->on_unmount), r.dir);
}

/* Applies a record's subDirOnUnmount in a bounded child. The record is the
 * run dir's own, but every value in it is checked again as at mount, the
 * server against today's allowed-servers. */
static int apply_record(const struct fv_ctx *ctx, const struct podsubdir_record *r, struct fv_err *err)
{
	const struct nfs_conf *c = ctx->data;
	struct nfs_volume v = {.server = r->server, .timeout_ms = c->unmount_timeout_ms, .subdir_uid = -1,
			       .subdir_gid = -1};
	if (fv_nfs_check_server(r->server, err) < 0 || fv_nfs_check_share(r->share, v.share, sizeof(v.share), err) < 0 ||
	    fv_path_check_relative(r->dir, "the recorded subDir", err) < 0 || check_server_allowed(ctx, &v, err) < 0)
		return err->code;
	snprintf(v.subdir, sizeof(v.subdir), "%s", r->dir);
	_cleanup_free_ char *options = NULL;
	if (fv_nfs_source(v.server, v.share, NULL, v.root_source, sizeof(v.root_source), err) < 0 ||
	    fv_nfs_mount_options(r->mount_options, false, &options, err) < 0)
		return err->code;
	if (mnt_optstr_append_option(&options, "noexec", NULL))
		return fv_err_set(err, ENOMEM, "building mount options");
	if (!c->have_mount_nfs) {
		*err = c->no_mount_nfs;
		return err->code;
	}
	if (fv_mkdir_p(c->helper_dir, 0700, err) < 0)
		return err->code;
	struct cleanup_args a = {
		.prep = {.conf = c, .vol = &v, .options = options, .deadline = fv_now_ms() + v.timeout_ms},
		.policy = r->policy,
		.ino = r->ino,
	};
	return fv_fork_run("subDirOnUnmount", cleanup_subdir, &a, NULL, 0, v.timeout_ms, err);
}

/* After the pod dir is unmounted: the per-pod directory its mount created
 * is retained, deleted or archived, once. A failure leaves the directory on
 * the server (logged): the pod's teardown never waits on it. */
static void forget_subdir(const struct fv_ctx *ctx, const char *pod_dir)
{
	char path[PATH_MAX];
	struct podsubdir_record r;
	struct fv_err err = {0};
	if (podsubdir_record_path(ctx->run_dir, pod_dir, path, sizeof(path), &err) < 0)
		return;
	int found = podsubdir_record_read(path, &r, &err);
	if (found < 0)
		fv_log(LOG_WARNING, "%s: %s", pod_dir, err.msg);
	else if (found && r.policy != PODSUBDIR_RETAIN && apply_record(ctx, &r, &err) < 0)
		fv_log(LOG_WARNING, "%s: subDirOnUnmount=%s of %s:%s/%s not done, the directory stays: %s", pod_dir,
		       podsubdir_policy_name(r.policy), r.server, r.share, r.dir, err.msg);
	if (found)
		podsubdir_record_remove(ctx->run_dir, path);
}

static int nfs_mount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct nfs_conf *c = ctx->data;
	struct nfs_volume v;
	long max_s;
	if (fv_netfs_max_mount_timeout(ctx->config, "nfs", &max_s, err) < 0)
		return err->code;
	if (parse_volume(call->opts, max_s, &v, err) < 0 || check_server_allowed(ctx, &v, err) < 0)
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

	struct fv_subdir_found prep = {0};
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
		if (prep.per_pod_created)
			remember_subdir(ctx, call->dir, &v, prep.per_pod_ino);
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
		if (fv_mounttab_find(call->dir, &me, &e2) > 0 && fv_unmount_bounded(call->dir, CLEANUP_TIMEOUT_MS, &e2) < 0)
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
			if (fv_unmount_bounded(call->dir, CLEANUP_TIMEOUT_MS, &e2) < 0)
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
	if (m < 0 && err->code != -ENOENT)
		return m;
	if (m > 0 && fv_unmount_bounded(call->dir, c->unmount_timeout_ms, err) < 0)
		return err->code;
	forget_subdir(ctx, call->dir);
	return 0;
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
		"  subDirUid, subDirGid  numeric owner and group of created directories\n"
		"                (default: as the server creates them); need createSubDir\n"
		"  subDirOnUnmount  retain (default), delete or archive: what unmount does with\n"
		"                the per-pod directory (up to the first component using\n"
		"                ${pod.uid} or ${pod.name}) when this mount created it; delete\n"
		"                never follows a symlink nor crosses a mount, archive renames\n"
		"                it archived-<name>-<UTC time>\n"
		"  mountOptions  comma-separated NFS options (nfs(5)), each checked with its value,\n"
		"                e.g. vers=4.1,hard,timeo=600; ro/rw come from readOnly, and the\n"
		"                driver always adds nosuid,nodev\n"
		"  mountTimeout  seconds the whole mount may take (default 120, at most\n"
		"                max-mount-timeout); then mount.nfs is killed and the call fails\n"
		"                naming the server\n"
		"  readOnly      (the volume's readOnly flag) mounts read-only\n"
		"Configuration ([nfs] in nfs.conf):\n"
		"  allowed-servers = nfs1.example.com, 10.0.0.0/24, fd00::/64\n"
		"                           servers volumes may name (host names matched as\n"
		"                           written, never resolved; addresses and prefixes match\n"
		"                           servers written as addresses; * allows any); with\n"
		"                           none set, every mount is refused\n"
		"  max-mount-timeout = 120  the largest mountTimeout a volume may ask for (1-3600)\n"
		"  fsgroup = false          true lets kubelet chown the volume to the pod's fsGroup\n"
		"  unmount-timeout = 30     seconds an unmount may take before a lazy detach\n"
		"Needs mount.nfs on the node (package nfs-common).\n"
		"Capabilities: attach false, selinuxRelabel false, fsGroup per config, supportsMetrics true.\n",
	.capabilities = nfs_capabilities,
	.setup = nfs_setup,
	.teardown = nfs_teardown,
	.mount = nfs_mount,
	.unmount = nfs_unmount,
	.config_keys = (const char *const[]){"nfs.fsgroup", "nfs.unmount-timeout", "nfs.allowed-servers", "nfs.max-mount-timeout", NULL},
	.programs = (const struct fv_program[]){{"mount.nfs", "nfs-common"}, {NULL}},
	.filesystems = (const char *const[]){"nfs", "nfs4", NULL},
};

int main(int argc, char **argv)
{
	return fv_main(&nfs_provider, argc, argv);
}
