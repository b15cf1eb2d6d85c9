/* hostpath: a directory of the node bind-mounted into pods. FlexVolume can be
 * used inline in any pod spec, so only directories beneath the roots the node
 * administrator allowed can be reached, and the bind is made from the handle
 * the path resolved to, so a symlink swapped in after the check cannot
 * redirect it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cleanup.h"
#include "flexvol.h"
#include "lock.h"
#include "log.h"
#include "mount.h"
#include "nfsopts.h"
#include "path.h"

#define DEFAULT_MODE 0755

static void hostpath_capabilities(struct fv_ctx *ctx, struct fv_caps *caps)
{
	(void)ctx;
	/* fsGroup false: kubelet's recursive chown must never walk a host
	 * directory. selinuxRelabel false: relabelling would change the host's
	 * labels under the host's own services. */
	*caps = (struct fv_caps){.attach = false, .selinux_relabel = false, .supports_metrics = true, .fs_group = false};
}

enum dir_type { DIRECTORY, DIRECTORY_OR_CREATE };

struct hostpath_volume {
	char path[PATH_MAX];   /* as given, trailing slashes dropped */
	enum dir_type type;
	unsigned int mode;
	bool readonly;
};

static const char *const known_options[] = {"path", "type", "mode", NULL};

static int parse_volume(const struct fv_opts *o, struct hostpath_volume *v, struct fv_err *err)
{
	if (fv_opts_check_known(o, known_options, NULL, err) < 0)
		return err->code;
	const char *path = fv_opts_get(o, "path");
	if (!path || !*path)
		return fv_err_msg(err, EINVAL, "option 'path' is required (an absolute directory on the node)");
	if (path[0] != '/')
		return fv_err_msg(err, EINVAL, "option 'path' '%.256s' must be an absolute path", path);
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= sizeof(v->path))
		return fv_err_msg(err, ENAMETOOLONG, "option 'path' is too long");
	memcpy(v->path, path, n);
	v->path[n] = '\0';
	if (n > 1 && fv_path_check_relative(v->path + 1, "option 'path'", err) < 0)
		return err->code;
	const char *type = fv_opts_get(o, "type");
	if (!type || !*type || !strcmp(type, "Directory"))
		v->type = DIRECTORY;
	else if (!strcmp(type, "DirectoryOrCreate"))
		v->type = DIRECTORY_OR_CREATE;
	else
		return fv_err_msg(err, EINVAL, "option 'type' must be Directory or DirectoryOrCreate, not '%.64s'", type);
	const char *mode = fv_opts_get(o, "mode");
	v->mode = DEFAULT_MODE;
	if (mode && v->type != DIRECTORY_OR_CREATE)
		return fv_err_msg(err, EINVAL, "option 'mode' applies only to type DirectoryOrCreate");
	if (mode && fv_parse_dir_mode(mode, "option 'mode'", &v->mode, err) < 0)
		return err->code;
	v->readonly = fv_opts_readonly(o);
	return 0;
}

/* The allowed root path lies under, longest match first, and the rest of the
 * path relative to it ("" for the root itself). */
static int find_root(const struct fv_ctx *ctx, const char *path, char *root, size_t size, const char **rel,
		     struct fv_err *err)
{
	const char *conf = fv_config_path(ctx->config);
	const char *roots = fv_config_get(ctx->config, "hostpath", "allowed-roots", NULL);
	if (!roots || !*roots)
		return fv_err_msg(err, EACCES,
				  "hostPath volumes are disabled on this node: no directory is allowed. To allow some, "
				  "set 'allowed-roots = /dir1:/dir2' in section [hostpath] of %s",
				  conf);
	size_t best = 0;
	bool found = false;
	for (const char *p = roots; *p;) {
		size_t len = strcspn(p, ":");
		const char *entry = p;
		p += len;
		if (*p == ':')
			p++;
		while (len > 1 && entry[len - 1] == '/')
			len--;
		if (!len)
			continue;
		if (entry[0] != '/')
			return fv_err_msg(err, EINVAL, "%s: [hostpath] allowed-roots entry '%.*s' is not an absolute path",
					  conf, (int)len, entry);
		bool slash_root = len == 1;
		if (!slash_root && (strncmp(path, entry, len) || (path[len] != '/' && path[len] != '\0')))
			continue;
		if (found && len <= best)
			continue;
		if (len >= size)
			return fv_err_msg(err, ENAMETOOLONG, "%s: an allowed-roots entry is too long", conf);
		memcpy(root, entry, len);
		root[len] = '\0';
		*rel = slash_root ? path + 1 : (path[len] == '/' ? path + len + 1 : path + len);
		best = len;
		found = true;
	}
	if (!found)
		return fv_err_msg(err, EACCES, "path '%.256s' is outside the allowed roots (%.512s) of this node (see %s)",
				  path, roots, conf);
	return 0;
}

/* Opens rel beneath root as a directory (O_PATH), symlinks allowed only while
 * they stay beneath root. With create, missing components are made one at a
 * time inside the directory the previous one resolved to. */
static int open_dir(int root, const char *rel, bool create, unsigned int mode, const char *path, struct fv_err *err)
{
	if (!*rel) {
		int fd = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		return fd >= 0 ? fd : fv_err_set(err, errno, "cannot open '%s'", path);
	}
	struct fv_err e2 = {0};
	int fd = fv_path_open_beneath(root, rel, O_PATH | O_DIRECTORY, 0, &e2);
	if (fd >= 0 || e2.code != -ENOENT || !create) {
		if (fd >= 0)
			return fd;
		if (e2.code == -EXDEV || e2.code == -ELOOP)
			return fv_err_msg(err, EACCES, "path '%.256s' leads outside its allowed root through a symlink",
					  path);
		if (e2.code == -ENOENT)
			return fv_err_msg(err, ENOENT,
					  "directory '%.256s' does not exist (type DirectoryOrCreate creates it)", path);
		if (e2.code == -ENOTDIR)
			return fv_err_msg(err, ENOTDIR, "'%.256s' is not a directory", path);
		*err = e2;
		return fv_err_prefix(err, "path '%.256s'", path);
	}
	/* Walk: every existing prefix is resolved beneath root; a missing
	 * component is created with mkdirat in the directory fd just resolved,
	 * so nothing is ever created through a symlink. */
	char prefix[PATH_MAX];
	_cleanup_close_ int cur = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return fv_err_set(err, errno, "cannot open the root of '%s'", path);
	for (const char *c = rel; *c;) {
		size_t n = strcspn(c, "/");
		size_t plen = (size_t)(c - rel) + n;
		memcpy(prefix, rel, plen);
		prefix[plen] = '\0';
		char name[NAME_MAX + 1];
		if (n > NAME_MAX)
			return fv_err_msg(err, ENAMETOOLONG, "a component of '%.256s' is too long", path);
		memcpy(name, c, n);
		name[n] = '\0';
		c += n;
		if (*c == '/')
			c++;
		e2 = (struct fv_err){0};
		int next = fv_path_open_beneath(root, prefix, O_PATH | O_DIRECTORY, 0, &e2);
		if (next < 0 && e2.code == -ENOENT) {
			mode_t old = umask(0);
			int r = mkdirat(cur, name, mode);
			int e = errno;
			umask(old);
			if (r < 0 && e != EEXIST)
				return fv_err_set(err, e, "cannot create directory '%.256s'", path);
			if (r == 0)
				fv_log(LOG_NOTICE, "created '%s' beneath the allowed root of '%s' (mode %04o)", prefix,
				       path, mode);
			e2 = (struct fv_err){0};
			next = fv_path_open_beneath(root, prefix, O_PATH | O_DIRECTORY, 0, &e2);
		}
		if (next < 0) {
			if (e2.code == -EXDEV || e2.code == -ELOOP)
				return fv_err_msg(err, EACCES,
						  "path '%.256s' leads outside its allowed root through a symlink", path);
			if (e2.code == -ENOTDIR)
				return fv_err_msg(err, ENOTDIR, "'%.256s' is not a directory", path);
			*err = e2;
			return fv_err_prefix(err, "path '%.256s'", path);
		}
		close(cur);
		cur = next;
	}
	return fv_steal_fd(&cur);
}

static int hostpath_mount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct hostpath_volume v;
	char root_path[PATH_MAX];
	const char *rel = "";
	if (parse_volume(call->opts, &v, err) < 0 || find_root(ctx, v.path, root_path, sizeof(root_path), &rel, err) < 0)
		return err->code;
	/* The root comes from the administrator: following symlinks in it is theirs to decide. */
	_cleanup_close_ int root = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return fv_err_set(err, errno, "cannot open allowed root '%s'", root_path);
	_cleanup_close_ int dir = open_dir(root, rel, v.type == DIRECTORY_OR_CREATE, v.mode, v.path, err);
	if (dir < 0)
		return dir;
	struct stat want;
	if (fstat(dir, &want) < 0)
		return fv_err_set(err, errno, "cannot inspect '%s'", v.path);

	if (fv_mkdir_p(call->dir, 0750, err) < 0)
		return err->code;
	/* kubelet cannot see a same-file-system bind (IsLikelyNotMountPoint) and
	 * may call mount again: an existing bind of the same directory is success. */
	int m = fv_is_mountpoint(call->dir, err);
	if (m < 0)
		return m;
	if (m) {
		struct stat have;
		if (stat(call->dir, &have) < 0)
			return fv_err_set(err, errno, "cannot inspect '%s'", call->dir);
		if (have.st_dev != want.st_dev || have.st_ino != want.st_ino)
			return fv_err_msg(err, EBUSY, "'%s' already has something else mounted", call->dir);
		int ro = fv_mount_is_readonly(call->dir, err);
		if (ro < 0)
			return ro;
		if (ro != v.readonly)
			return fv_err_msg(err, EBUSY, "'%s' is already mounted %s", call->dir,
					  ro ? "read-only" : "read-write");
		return 0;
	}
	/* Bind the handle, not the path: /proc/self/fd/N is the very directory
	 * resolved above, whatever happens to the path meanwhile. */
	char source[64];
	snprintf(source, sizeof(source), "/proc/self/fd/%d", dir);
	if (fv_mount_bind(source, call->dir, v.readonly, err) < 0)
		return fv_err_prefix(err, "binding '%s'", v.path);
	fv_log(LOG_INFO, "bound %s%s onto %s", v.path, v.readonly ? " (read-only)" : "", call->dir);
	return 0;
}

static const struct fv_provider hostpath_provider = {
	.name = "hostpath",
	.summary = "Directories of the node bind-mounted into pods, confined to allowed roots.",
	.help = "Options (flexVolume.options):\n"
		"  path      required; an absolute directory on the node, beneath one of allowed-roots\n"
		"            (symlinks are followed only while they stay beneath that root)\n"
		"  type      Directory (default; must exist) or DirectoryOrCreate (missing\n"
		"            directories are created)\n"
		"  mode      DirectoryOrCreate only: octal mode of created directories (default 0755)\n"
		"  readOnly  (the volume's readOnly flag) gives a read-only bind\n"
		"Configuration ([hostpath] in hostpath.conf):\n"
		"  allowed-roots = /srv:/data   colon-separated directories pods may use; with none\n"
		"                               set, every path is refused\n"
		"  allow-setuid = false, allow-devices = false   true drops nosuid / nodev from the binds\n"
		"Capabilities: attach false, selinuxRelabel false, fsGroup false, supportsMetrics true.\n",
	.capabilities = hostpath_capabilities,
	.mount = hostpath_mount,
	.unmount = fv_op_unmount,
	.config_keys = (const char *const[]){"hostpath.allowed-roots", "hostpath.allow-setuid", "hostpath.allow-devices",
					     NULL},
};

int main(int argc, char **argv)
{
	return fv_main(&hostpath_provider, argc, argv);
}
