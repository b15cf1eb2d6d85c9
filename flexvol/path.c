#include "path.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "cleanup.h"

int fv_path_check_relative(const char *path, const char *what, struct fv_err *err)
{
	if (!*path)
		return fv_err_msg(err, EINVAL, "%s must not be empty", what);
	if (path[0] == '/')
		return fv_err_msg(err, EINVAL, "%s '%s' must be a relative path", what, path);
	if (strlen(path) >= 4096)
		return fv_err_msg(err, ENAMETOOLONG, "%s is too long", what);
	for (const char *c = path; *c;) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return fv_err_msg(err, EINVAL, "%s '%s' must not contain '..', '.' or empty components", what,
					  path);
		c += n;
		if (*c == '/')
			c++;
		if (!*c && c[-1] == '/')
			return fv_err_msg(err, EINVAL, "%s '%s' must not end with '/'", what, path);
	}
	return 0;
}

int fv_path_check_absolute(const char *path, const char *what, struct fv_err *err)
{
	if (path[0] != '/')
		return fv_err_msg(err, EINVAL, "%s '%s' is not an absolute path", what, path);
	return 0;
}

/* Kernels before 5.6 (and valgrind) lack openat2: walk the components with
 * O_NOFOLLOW instead. Stricter than RESOLVE_BENEATH: no symlink at all. The
 * path was checked to have no "..", so the walk cannot climb out of root. */
static int open_without_symlinks(int root_fd, const char *rel, int flags, mode_t mode, struct fv_err *err)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", rel) >= (int)sizeof(buf))
		return fv_err_msg(err, ENAMETOOLONG, "path too long: '%s'", rel);
	int dir = dup(root_fd);
	char *comp = buf;
	for (char *slash; dir >= 0 && (slash = strchr(comp, '/')); comp = slash + 1) {
		*slash = '\0';
		int next = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int saved = errno;
		close(dir);
		errno = saved;
		dir = next;
	}
	int fd = dir < 0 ? -1 : openat(dir, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	int saved = errno;
	if (dir >= 0)
		close(dir);
	if (fd < 0 && (saved == ELOOP || saved == ENOTDIR))
		return fv_err_msg(err, saved, "'%s' goes through a symlink, which this kernel cannot resolve safely "
					      "(no openat2)", rel);
	if (fd < 0)
		return fv_err_set(err, saved, "cannot open '%s'", rel);
	return fd;
}

int fv_path_open_beneath(int root_fd, const char *rel, int flags, mode_t mode, struct fv_err *err)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;
	/* RESOLVE_BENEATH fails with EAGAIN when a rename raced with the lookup
	 * of a "..": a retry resolves the new state, still beneath root. */
	for (int tries = 0; (fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how))) < 0 && errno == EAGAIN &&
			    tries < 64;
	     tries++)
		;
	if (fd < 0 && errno == ENOSYS)
		return open_without_symlinks(root_fd, rel, flags, mode, err);
	if (fd < 0) {
		if (errno == EXDEV)
			return fv_err_msg(err, EXDEV, "'%s' leads outside its root directory", rel);
		return fv_err_set(err, errno, "cannot open '%s'", rel);
	}
	return (int)fd;
}

int fv_path_global_from_pod_dir(const char *pod_dir, char *buf, size_t size, struct fv_err *err)
{
	/* Split off the last five components: pods/<uid>/volumes/<vendor~driver>/<name>. */
	const char *comp[5];
	size_t len[5];
	const char *end = pod_dir + strlen(pod_dir);
	while (end > pod_dir && end[-1] == '/')
		end--;
	for (int i = 4; i >= 0; i--) {
		const char *s = end;
		while (s > pod_dir && s[-1] != '/')
			s--;
		if (s == end || s == pod_dir)
			goto bad;
		comp[i] = s;
		len[i] = (size_t)(end - s);
		end = s - 1;
	}
	if (len[0] != 4 || strncmp(comp[0], "pods", 4) || len[2] != 7 || strncmp(comp[2], "volumes", 7))
		goto bad;
	const char *tilde = memchr(comp[3], '~', len[3]);
	int root_len = (int)(end - pod_dir);
	int n;
	if (tilde) {
		int vlen = (int)(tilde - comp[3]), dlen = (int)(len[3] - (size_t)vlen - 1);
		n = snprintf(buf, size, "%.*s/plugins/kubernetes.io/flexvolume/%.*s/%.*s/mounts/%.*s", root_len, pod_dir,
			     vlen, comp[3], dlen, tilde + 1, (int)len[4], comp[4]);
	} else {
		n = snprintf(buf, size, "%.*s/plugins/kubernetes.io/flexvolume/%.*s/mounts/%.*s", root_len, pod_dir,
			     (int)len[3], comp[3], (int)len[4], comp[4]);
	}
	if (n < 0 || (size_t)n >= size)
		return fv_err_msg(err, ENAMETOOLONG, "pod volume dir '%s' is too long", pod_dir);
	return 0;
bad:
	return fv_err_msg(err, EINVAL,
			  "'%s' is not a kubelet pod volume dir (<root>/pods/<uid>/volumes/<vendor>~<driver>/<name>)",
			  pod_dir);
}

int fv_path_read_line(const char *path, char *buf, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f || !fgets(buf, (int)size, f))
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}
