#include "lock.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cleanup.h"
#include "flexvol.h"
#include "clock.h"

int fv_mkdir_p(const char *path, unsigned int mode, struct fv_err *err)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return fv_err_msg(err, ENAMETOOLONG, "path too long: '%s'", path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return fv_err_set(err, errno, "cannot create directory '%s'", buf);
		*p = c;
		if (!c)
			return 0;
	}
}

int fv_lock_file_name(const char *key, char *buf, size_t size)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			     *p == '-' || *p == '_' || (*p == '.' && p != (const unsigned char *)key);
		int n = plain ? snprintf(buf + o, size - o, "%c", *p) : snprintf(buf + o, size - o, "%%%02X", *p);
		if (n < 0 || (size_t)n >= size - o)
			return -ENAMETOOLONG;
		o += (size_t)n;
	}
	if (snprintf(buf + o, size - o, ".lock") >= (int)(size - o))
		return -ENAMETOOLONG;
	return 0;
}

int fv_lock_acquire(const char *run_dir, const char *driver, const char *key, long timeout_ms, struct fv_err *err)
{
	char dir[4096], name[256], path[4096 + 256];
	snprintf(dir, sizeof(dir), "%s/locks/%s", run_dir, driver);
	if (fv_lock_file_name(key, name, sizeof(name)) < 0)
		return fv_err_msg(err, ENAMETOOLONG, "volume name too long for a lock: '%.64s…'", key);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	/* The lock directory exists after the first call: create it only then. */
	if (fd < 0 && errno == ENOENT) {
		if (fv_mkdir_p(dir, 0700, err) < 0)
			return err->code;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open lock '%s'", path);
	/* Polling with a short sleep keeps the wait bounded without signals. */
	int64_t deadline = fv_now_ms() + timeout_ms;
	long nap_ms = 5;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return fv_err_set(err, errno, "cannot lock '%s'", path);
		if (fv_terminated())
			return fv_err_msg(err, EINTR, "terminated while waiting for the lock of volume '%s'", key);
		if (fv_now_ms() >= deadline)
			return fv_err_msg(err, ETIMEDOUT,
					  "another operation on volume '%s' still holds its lock after %ld s", key,
					  timeout_ms / 1000);
		fv_sleep_ms(nap_ms);
		if (nap_ms < 100)
			nap_ms *= 2;
	}
	return fv_steal_fd(&fd);
}
