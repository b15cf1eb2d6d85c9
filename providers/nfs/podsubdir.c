#include "podsubdir.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "cleanup.h"
#include "lock.h"

#define RECORDS "nfs-subdirs"
#define RECORD "record"
/* Deeper than any tree a pod makes on purpose; bounds the open descriptors. */
#define MAX_DEPTH 256

static const char *const policy_names[] = {"retain", "delete", "archive"};

int podsubdir_parse_policy(const char *s, enum podsubdir_policy *policy, struct fv_err *err)
{
	*policy = PODSUBDIR_RETAIN;
	if (!s || !*s)
		return 0;
	for (size_t i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++)
		if (!strcmp(s, policy_names[i])) {
			*policy = (enum podsubdir_policy)i;
			return 0;
		}
	return fv_err_msg(err, EINVAL, "option 'subDirOnUnmount' must be retain, delete or archive, not '%.32s'", s);
}

const char *podsubdir_policy_name(enum podsubdir_policy policy)
{
	return policy_names[policy];
}

/* ---- the record ---- */

int podsubdir_record_path(const char *run_dir, const char *pod_dir, char *buf, size_t size, struct fv_err *err)
{
	int w = snprintf(buf, size, "%s/" RECORDS "%s/" RECORD, run_dir, pod_dir);
	if (w < 0 || (size_t)w >= size)
		return fv_err_msg(err, ENAMETOOLONG, "the record path for '%s' is too long", pod_dir);
	return 0;
}

int podsubdir_record_write(const char *path, const struct podsubdir_record *r, struct fv_err *err)
{
	char dir[PATH_MAX], tmp[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return fv_err_msg(err, ENAMETOOLONG, "the record path '%s' is too long", path);
	*slash = '\0';
	if (fv_mkdir_p(dir, 0700, err) < 0)
		return err->code;
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "policy", policy_names[r->policy], "server", r->server,
			      "share", r->share, "dir", r->dir, "mountOptions", r->mount_options, "ino",
			      (json_int_t)r->ino);
	if (!j)
		return fv_err_set(err, ENOMEM, "building the record of '%s'", r->dir);
	int rc = json_dump_file(j, tmp, JSON_COMPACT);
	json_decref(j);
	/* rename() replaces atomically: unmount reads a whole record or none. */
	if (rc < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return fv_err_set(err, e, "cannot write the record '%s'", path);
	}
	return 0;
}

static int copy_field(json_t *j, const char *key, char *buf, size_t size)
{
	const char *v = json_string_value(json_object_get(j, key));
	if (!v || strlen(v) >= size)
		return -1;
	memcpy(buf, v, strlen(v) + 1);
	return 0;
}

int podsubdir_record_read(const char *path, struct podsubdir_record *r, struct fv_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : fv_err_set(err, errno, "cannot read '%s'", path);
	json_error_t je;
	json_t *j = json_loadfd(fd, 0, &je);
	if (!j)
		return fv_err_msg(err, EINVAL, "'%s' is not a valid record: %s", path, je.text);
	char policy[16];
	json_t *ino = json_object_get(j, "ino");
	int bad = copy_field(j, "policy", policy, sizeof(policy)) < 0 ||
		  copy_field(j, "server", r->server, sizeof(r->server)) < 0 ||
		  copy_field(j, "share", r->share, sizeof(r->share)) < 0 || copy_field(j, "dir", r->dir, sizeof(r->dir)) < 0 ||
		  copy_field(j, "mountOptions", r->mount_options, sizeof(r->mount_options)) < 0 || !json_is_integer(ino);
	if (!bad)
		r->ino = (unsigned long long)json_integer_value(ino);
	json_decref(j);
	struct fv_err e2 = {0};
	if (bad || podsubdir_parse_policy(policy, &r->policy, &e2) < 0)
		return fv_err_msg(err, EINVAL, "'%s' is not a valid record", path);
	return 1;
}

void podsubdir_record_remove(const char *run_dir, const char *path)
{
	char root[PATH_MAX], dir[PATH_MAX];
	snprintf(root, sizeof(root), "%s/" RECORDS, run_dir);
	snprintf(dir, sizeof(dir), "%s", path);
	unlink(path);
	for (char *slash; (slash = strrchr(dir, '/')) && (*slash = '\0', strlen(dir) > strlen(root));)
		if (rmdir(dir) < 0)
			break;
}

/* ---- removal ---- */

static int open_subdir(int dirfd, const char *name)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
	};
	long fd;
	while ((fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how))) < 0 && errno == EAGAIN)
		;
	if (fd >= 0 || errno != ENOSYS)
		return (int)fd;
	/* No openat2 (kernels before 5.6, valgrind): name is one component, so
	 * O_NOFOLLOW refuses a symlink, and a different mount ID means a mount
	 * was crossed. */
	int f = openat(dirfd, name, how.flags);
	struct statx a, b;
	if (f >= 0 && (statx(dirfd, "", AT_EMPTY_PATH, STATX_MNT_ID, &a) < 0 ||
		       statx(f, "", AT_EMPTY_PATH, STATX_MNT_ID, &b) < 0 || a.stx_mnt_id != b.stx_mnt_id)) {
		close(f);
		errno = EXDEV;
		return -1;
	}
	return f;
}

static void close_dir(DIR **d)
{
	if (*d)
		closedir(*d);
}

static int empty_tree(int dirfd, dev_t dev, int depth, struct fv_err *err)
{
	if (depth > MAX_DEPTH)
		return fv_err_msg(err, ELOOP, "more than %d levels of directories", MAX_DEPTH);
	int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return fv_err_set(err, errno, "cannot read a directory");
	__attribute__((cleanup(close_dir))) DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return fv_err_set(err, errno, "cannot read a directory");
	}
	/* Entries removed while reading may make readdir skip others: read
	 * again until a pass finds nothing left. */
	for (bool removed = true; removed;) {
		removed = false;
		rewinddir(d);
		struct dirent *e;
		while ((errno = 0, e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			struct stat st;
			if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;
				return fv_err_set(err, errno, "cannot inspect '%s'", e->d_name);
			}
			int flags = 0;
			if (S_ISDIR(st.st_mode)) {
				if (st.st_dev != dev)
					return fv_err_msg(err, EXDEV, "'%s' is a mount point; not crossed", e->d_name);
				/* Never through a symlink swapped in since the fstatat, never onto another mount. */
				_cleanup_close_ int sub = open_subdir(dirfd, e->d_name);
				struct stat sst;
				if (sub < 0)
					return fv_err_set(err, errno, "cannot open '%s'", e->d_name);
				if (fstat(sub, &sst) < 0 || sst.st_dev != dev)
					return fv_err_msg(err, EXDEV, "'%s' is a mount point; not crossed", e->d_name);
				if (empty_tree(sub, dev, depth + 1, err) < 0)
					return fv_err_prefix(err, "%s", e->d_name);
				flags = AT_REMOVEDIR;
			}
			/* unlinkat never follows a symlink: a planted one goes, its target stays. */
			if (unlinkat(dirfd, e->d_name, flags) < 0 && errno != ENOENT)
				return fv_err_set(err, errno, "cannot remove '%s'", e->d_name);
			removed = true;
		}
		if (errno)
			return fv_err_set(err, errno, "cannot read a directory");
	}
	return 0;
}

int podsubdir_empty_tree(int dirfd, dev_t dev, struct fv_err *err)
{
	return empty_tree(dirfd, dev, 0, err);
}

int podsubdir_archive_name(const char *name, time_t when, char *buf, size_t size, struct fv_err *err)
{
	struct tm tm;
	char stamp[32];
	if (!gmtime_r(&when, &tm) || !strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm))
		return fv_err_msg(err, EINVAL, "cannot format the time");
	int w = snprintf(buf, size, "archived-%s-%s", name, stamp);
	if (w < 0 || (size_t)w >= size || w > NAME_MAX)
		return fv_err_msg(err, ENAMETOOLONG, "'archived-%s-%s' is longer than a file name may be", name, stamp);
	return 0;
}
