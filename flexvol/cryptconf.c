#include "cryptconf.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cleanup.h"

struct fv_crypt_conf fv_crypt_conf = {
	.cipher = FV_CRYPT_DEFAULT_CIPHER,
	.key_bits = 512,
	.pbkdf_memory_kib = FV_CRYPT_DEFAULT_PBKDF_MEMORY_KIB,
	.pbkdf_time_ms = FV_CRYPT_DEFAULT_PBKDF_TIME_MS,
};

static bool cipher_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n >= sizeof(fv_crypt_conf.cipher) || !strchr(s, '-'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || strchr("-:_", s[i])))
			return false;
	return true;
}

int fv_crypt_conf_load(const struct fv_config *c, const char *driver, struct fv_err *err)
{
	struct fv_crypt_conf n = {0};
	long mem, time_ms, iter, bits;
	if ((fv_config_get(c, driver, "key-dir", NULL) &&
	     fv_config_get_path(c, driver, "key-dir", NULL, n.key_dir, sizeof(n.key_dir), err) < 0) ||
	    fv_config_get_long(c, driver, "key-size", 512, 128, 512, &bits, err) < 0 ||
	    /* Bounded: every unlock allocates this much, and a node has other work. */
	    fv_config_get_long(c, driver, "pbkdf-memory", FV_CRYPT_DEFAULT_PBKDF_MEMORY_KIB, 8192, 1048576, &mem, err) <
		    0 ||
	    fv_config_get_long(c, driver, "pbkdf-time", FV_CRYPT_DEFAULT_PBKDF_TIME_MS, 100, 10000, &time_ms, err) < 0 ||
	    fv_config_get_long(c, driver, "pbkdf-iterations", 0, 0, 32, &iter, err) < 0 ||
	    fv_config_get_bool(c, driver, "allow-discards", false, &n.allow_discards, err) < 0)
		return err->code;
	const char *cipher = fv_config_get(c, driver, "cipher", FV_CRYPT_DEFAULT_CIPHER);
	if (!cipher_ok(cipher))
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] cipher must be <cipher>-<mode> (such as %s), not '%s'",
				  fv_config_path(c), driver, FV_CRYPT_DEFAULT_CIPHER, cipher);
	if (bits % 8)
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] key-size must be a multiple of 8 bits",
				  fv_config_path(c), driver);
	snprintf(n.cipher, sizeof(n.cipher), "%s", cipher);
	n.key_bits = (unsigned)bits;
	n.pbkdf_memory_kib = (unsigned)mem;
	n.pbkdf_time_ms = (unsigned)time_ms;
	n.pbkdf_iterations = (unsigned)iter;
	fv_crypt_conf = n;
	return 0;
}

bool fv_crypt_key_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (!n || n > 128 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || strchr("._-", name[i])))
			return false;
	return true;
}

void fv_crypt_key_free(unsigned char *key, size_t len)
{
	if (!key)
		return;
	explicit_bzero(key, len);
	free(key);
}

int fv_crypt_key_read(const char *name, unsigned char **key, size_t *len, struct fv_err *err)
{
	*key = NULL;
	*len = 0;
	const char *dir = fv_crypt_conf.key_dir;
	if (!*dir)
		return fv_err_msg(err, ENOKEY,
				  "the volume is encrypted, but this node has no key directory (set key-dir in the driver's "
				  "section of its configuration; docs/encryption.md)");
	if (!fv_crypt_key_name_ok(name))
		return fv_err_msg(err, EINVAL,
				  "encryption key name '%.64s' is not one file name ([A-Za-z0-9._-], not starting with '.', "
				  "at most 128 bytes)",
				  name);
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (dfd < 0)
		return fv_err_set(err, errno, "cannot open the key directory '%s'", dir);
	if (fstat(dfd, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect the key directory '%s'", dir);
	if (st.st_uid != 0 || (st.st_mode & 022))
		return fv_err_msg(err, EPERM,
				  "the key directory '%s' must be owned by root and writable by no one else (it is uid %u, "
				  "mode %04o): refusing its keys",
				  dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return fv_err_msg(err, ENOKEY, "encryption key '%s' is not in the key directory '%s'", name, dir);
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open encryption key '%s' in '%s' (a symlink is refused)", name, dir);
	if (fstat(fd, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect encryption key '%s'", name);
	if (!S_ISREG(st.st_mode))
		return fv_err_msg(err, EPERM, "encryption key '%s' in '%s' is not a regular file", name, dir);
	if (st.st_uid != 0 || (st.st_mode & 0177))
		return fv_err_msg(err, EPERM,
				  "encryption key '%s' in '%s' must be owned by root with mode 0600 or 0400 (it is uid %u, "
				  "mode %04o): refused",
				  name, dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	if (st.st_size < FV_CRYPT_KEY_MIN || st.st_size > FV_CRYPT_KEY_MAX)
		return fv_err_msg(err, EINVAL, "encryption key '%s' in '%s' must hold %d to %d bytes, not %lld", name, dir,
				  FV_CRYPT_KEY_MIN, FV_CRYPT_KEY_MAX, (long long)st.st_size);
	unsigned char *buf = malloc((size_t)st.st_size);
	if (!buf)
		return fv_err_set(err, ENOMEM, "reading encryption key '%s'", name);
	size_t n = 0;
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			fv_crypt_key_free(buf, (size_t)st.st_size);
			return fv_err_set(err, e, "cannot read encryption key '%s'", name);
		}
		n += (size_t)r;
	}
	*key = buf;
	*len = n;
	return 0;
}
