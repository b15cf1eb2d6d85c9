#include "lock.h"
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cleanup.h"
#include "flexvol.h"
#include "clock.h"

/* Escaped keys up to this long are the file name itself; longer ones get a
 * digest (file names stop at 255 bytes). */
#define PLAIN_MAX 200
/* The readable tail shown in a digest name. */
#define TAIL_MAX 80

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

static bool plain_char(const unsigned char *p, const char *key)
{
	return (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
	       *p == '_' || (*p == '.' && p != (const unsigned char *)key);
}

/* The escaped form of key[from..]: safe characters kept, others %XX. Returns
 * its length, or -ENAMETOOLONG when it does not fit size - 1. */
static int escape(const char *key, const char *from, char *buf, size_t size)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)from; *p; p++) {
		int n = plain_char(p, key) ? snprintf(buf + o, size - o, "%c", *p)
					   : snprintf(buf + o, size - o, "%%%02X", *p);
		if (n < 0 || (size_t)n >= size - o)
			return -ENAMETOOLONG;
		o += (size_t)n;
	}
	return (int)o;
}

int fv_lock_file_name(const char *key, char *buf, size_t size)
{
	char plain[PLAIN_MAX + 1];
	if (escape(key, key, plain, sizeof(plain)) >= 0)
		return snprintf(buf, size, "%s.lock", plain) < (int)size ? 0 : -ENAMETOOLONG;
	/* Long: "~<SHA-256 of the key>~<escaped tail>.lock". '~' is always escaped
	 * in the plain form, so the two forms never meet, and a digest name
	 * cannot be matched by a chosen key short of a SHA-256 collision. */
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct sha256_ctx sha;
	sha256_init(&sha);
	sha256_update(&sha, strlen(key), (const uint8_t *)key);
	sha256_digest(&sha, sizeof(digest), digest);
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	/* The last characters, as readable as the plain form, whole escapes only. */
	const char *tail = key + strlen(key);
	char t[TAIL_MAX + 1] = "";
	while (tail > key && escape(key, tail - 1, t, sizeof(t)) >= 0)
		tail--;
	escape(key, tail, t, sizeof(t));
	return snprintf(buf, size, "~%s~%s.lock", hex, t) < (int)size ? 0 : -ENAMETOOLONG;
}

int fv_lock_path_key(const char *path, char *buf, size_t size, struct fv_err *err)
{
	if (path[0] != '/')
		return fv_err_msg(err, EINVAL, "path '%s' is not absolute", path);
	/* Lexical only: following a symlink could lead anywhere the link's
	 * owner likes. kubelet never sends "..", and ".." after a symlink is
	 * not what it looks like, so it is refused rather than guessed at. */
	size_t o = 0;
	for (const char *c = path; *c;) {
		while (*c == '/')
			c++;
		size_t n = strcspn(c, "/");
		if (!n)
			break;
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return fv_err_msg(err, EINVAL, "path '%s' must not contain '..'", path);
		if (!(n == 1 && c[0] == '.')) {
			if (o + 1 + n + 1 > size)
				return fv_err_msg(err, ENAMETOOLONG, "path '%.64s…' is too long", path);
			buf[o++] = '/';
			memcpy(buf + o, c, n);
			o += n;
		}
		c += n;
	}
	if (!o) {
		if (size < 2)
			return fv_err_msg(err, ENAMETOOLONG, "path '%s' is too long", path);
		buf[o++] = '/';
	}
	buf[o] = '\0';
	return 0;
}

/* The locks this process holds, for fv_lock_close_inherited(). The inode
 * tells a lock fd from a later file that got its number after a close. */
static struct held {
	int fd;
	dev_t dev;
	ino_t ino;
} held[16];
static size_t n_held;

static void remember(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return;
	held[n_held++ % (sizeof(held) / sizeof(held[0]))] = (struct held){fd, st.st_dev, st.st_ino};
}

void fv_lock_close_inherited(void)
{
	size_t n = n_held < sizeof(held) / sizeof(held[0]) ? n_held : sizeof(held) / sizeof(held[0]);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (fstat(held[i].fd, &st) == 0 && st.st_dev == held[i].dev && st.st_ino == held[i].ino)
			close(held[i].fd);
	}
}

/* "<pid>\n<key>" for `status`; only true while the file is locked. */
static void record_holder(int fd, const char *key)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "%ld\n", (long)getpid());
	size_t klen = strlen(key);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, head, (size_t)n, 0) != n ||
	    pwrite(fd, key, klen, n) != (ssize_t)klen)
		return; /* only information: a full disk must not fail the call */
}

/* Messages show at most the last 200 bytes of a key (the end of a path says
 * the most), starting on a character. */
static const char *shown(const char *key, const char **ellipsis)
{
	size_t len = strlen(key);
	*ellipsis = "";
	if (len <= 200)
		return key;
	const char *p = key + len - 200;
	while (((unsigned char)*p & 0xC0) == 0x80)
		p++;
	*ellipsis = "…";
	return p;
}

int fv_lock_acquire(const char *run_dir, const char *driver, const char *key, long timeout_ms, struct fv_err *err)
{
	char dir[4096], name[256], path[4096 + 256];
	snprintf(dir, sizeof(dir), "%s/locks/%s", run_dir, driver);
	const char *dots, *tail = shown(key, &dots);
	if (fv_lock_file_name(key, name, sizeof(name)) < 0)
		return fv_err_msg(err, ENAMETOOLONG, "no lock file name for '%s%s'", dots, tail);
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
	int64_t deadline = fv_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	long nap_ms = 5;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return fv_err_set(err, errno, "cannot lock '%s'", path);
		if (fv_terminated())
			return fv_err_msg(err, EINTR, "terminated while waiting for the lock of '%s%s'", dots, tail);
		int64_t left = deadline - fv_now_ms();
		if (left <= 0)
			return fv_err_msg(err, ETIMEDOUT, "another operation on '%s%s' still holds its lock after %ld s",
					  dots, tail, (timeout_ms + 999) / 1000);
		fv_sleep_ms(nap_ms < left ? nap_ms : (long)left);
		if (nap_ms < 100)
			nap_ms *= 2;
	}
	record_holder(fd, key);
	remember(fd);
	return fv_steal_fd(&fd);
}
