#include "mounttab.h"
#include <errno.h>
#include <libmount.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cleanup.h"

static void table_free(struct libmnt_table **t)
{
	mnt_unref_table(*t);
}
#define _cleanup_mnt_table_ __attribute__((cleanup(table_free)))

/* realpath(dirname(path)) + "/" + basename(path): the form the kernel shows. */
static int canonical(const char *path, char *buf, size_t size, struct fv_err *err)
{
	char copy[PATH_MAX];
	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return fv_err_msg(err, ENAMETOOLONG, "path too long: '%s'", path);
	size_t n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	char *slash = strrchr(copy, '/');
	if (!slash || !slash[1])
		return fv_err_msg(err, EINVAL, "'%s' is not an absolute path below /", path);
	*slash = '\0';
	char parent[PATH_MAX];
	if (!realpath(slash == copy ? "/" : copy, parent))
		return fv_err_set(err, errno, "cannot resolve '%s'", slash == copy ? "/" : copy);
	int w = snprintf(buf, size, "%s/%s", strcmp(parent, "/") ? parent : "", slash + 1);
	if (w < 0 || (size_t)w >= size)
		return fv_err_msg(err, ENAMETOOLONG, "path too long: '%s'", path);
	return 0;
}

int fv_mounttab_find(const char *path, struct fv_mount_entry *e, struct fv_err *err)
{
	char target[PATH_MAX];
	if (canonical(path, target, sizeof(target), err) < 0)
		return err->code;
	_cleanup_mnt_table_ struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	if (!tb)
		return fv_err_msg(err, EIO, "cannot read /proc/self/mountinfo");
	/* No cache: an exact string match, with no realpath() of the target. */
	struct libmnt_fs *fs = mnt_table_find_target(tb, target, MNT_ITER_BACKWARD);
	if (!fs)
		return 0;
	const char *src = mnt_fs_get_source(fs), *type = mnt_fs_get_fstype(fs), *vfs = mnt_fs_get_vfs_options(fs);
	snprintf(e->source, sizeof(e->source), "%s", src ? src : "");
	snprintf(e->fstype, sizeof(e->fstype), "%s", type ? type : "");
	e->readonly = vfs && mnt_optstr_get_option(vfs, "ro", NULL, NULL) == 0;
	return 1;
}
