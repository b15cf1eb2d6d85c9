#include "tokencache.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cleanup.h"
#include "lock.h"
#include "log.h"

#define DEFAULT_MARGIN_S 60
#define DEFAULT_LOCK_TIMEOUT_MS 60000L
#define MAX_FILE (1u << 20)

void fv_token_clear(struct fv_token *t)
{
	if (!t)
		return;
	if (t->value) {
		explicit_bzero(t->value, strlen(t->value));
		free(t->value);
	}
	json_decref(t->data);
	*t = (struct fv_token){0};
}

/* FNV-1a: the key only has to map to a short, stable file name; the full key
 * inside the file settles any collision. */
static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static int cache_dir(const struct fv_token_cache *c, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/tokens/%s", c->run_dir, c->driver);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int fv_token_path(const struct fv_token_cache *c, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/tokens/%s/%016llx.json", c->run_dir, c->driver,
			 (unsigned long long)hash_key(c->key));
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int64_t margin_for(const struct fv_token_cache *c, int64_t expires, int64_t stored)
{
	int64_t m = c->margin_s > 0 ? c->margin_s : DEFAULT_MARGIN_S;
	/* A short-lived token (a test cloud, a strict policy) would otherwise be
	 * stale the moment it arrives. */
	if (stored > 0 && expires > stored && (expires - stored) / 4 < m)
		m = (expires - stored) / 4;
	return m;
}

int fv_token_load(const struct fv_token_cache *c, const char *rejected, struct fv_token *out, struct fv_err *err)
{
	char path[4096];
	if (fv_token_path(c, path, sizeof(path)) < 0)
		return fv_err_msg(err, ENAMETOOLONG, "token cache path too long");
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : fv_err_set(err, errno, "cannot open token cache '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect token cache '%s'", path);
	/* Someone else's file, or one others can read, is not a cache we trust. */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		fv_log(LOG_WARNING, "ignoring token cache %s: not a private file (mode %04o, owner %u)", path,
		       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return 0;
	}
	if (st.st_size <= 0 || (size_t)st.st_size > MAX_FILE)
		return 0;
	_cleanup_free_ char *text = malloc((size_t)st.st_size + 1);
	if (!text)
		return fv_err_set(err, ENOMEM, "token cache");
	ssize_t n = pread(fd, text, (size_t)st.st_size, 0);
	if (n != st.st_size)
		return 0;
	text[n] = '\0';
	json_t *j = json_loads(text, 0, NULL);
	explicit_bzero(text, (size_t)n);
	if (!j)
		return 0;
	int found = 0;
	const char *key = json_string_value(json_object_get(j, "key"));
	const char *tok = json_string_value(json_object_get(j, "token"));
	json_t *exp = json_object_get(j, "expires"), *stored = json_object_get(j, "stored");
	if (key && tok && *tok && json_is_integer(exp) && !strcmp(key, c->key) && !(rejected && !strcmp(tok, rejected))) {
		int64_t expires = json_integer_value(exp);
		int64_t now = time(NULL);
		if (now + margin_for(c, expires, json_integer_value(stored)) < expires) {
			out->value = strdup(tok);
			out->expires = expires;
			out->data = json_incref(json_object_get(j, "data"));
			found = out->value ? 1 : fv_err_set(err, ENOMEM, "token cache");
		}
	}
	/* The token text inside the JSON tree: wipe before freeing. */
	json_t *tv = json_object_get(j, "token");
	if (json_is_string(tv))
		explicit_bzero((char *)json_string_value(tv), json_string_length(tv));
	json_decref(j);
	return found;
}

int fv_token_store(const struct fv_token_cache *c, const struct fv_token *tok, struct fv_err *err)
{
	char dir[4096], path[4096], tmp[4200];
	if (cache_dir(c, dir, sizeof(dir)) < 0 || fv_token_path(c, path, sizeof(path)) < 0)
		return fv_err_msg(err, ENAMETOOLONG, "token cache path too long");
	if (fv_mkdir_p(dir, 0700, err) < 0)
		return err->code;
	json_t *j = json_pack("{s:s, s:s, s:I, s:I}", "key", c->key, "token", tok->value, "expires",
			      (json_int_t)tok->expires, "stored", (json_int_t)time(NULL));
	if (!j)
		return fv_err_set(err, ENOMEM, "token cache");
	if (tok->data)
		json_object_set(j, "data", tok->data);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return fv_err_set(err, ENOMEM, "token cache");
	snprintf(tmp, sizeof(tmp), "%s/.%016llx.XXXXXX", dir, (unsigned long long)hash_key(c->key));
	int ret = 0;
	int fd = mkostemp(tmp, O_CLOEXEC); /* 0600 */
	if (fd < 0) {
		ret = fv_err_set(err, errno, "cannot create token cache in '%s'", dir);
	} else {
		size_t len = strlen(text), done = 0;
		while (done < len) {
			ssize_t w = write(fd, text + done, len - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				ret = fv_err_set(err, w < 0 ? errno : EIO, "cannot write token cache '%s'", tmp);
				break;
			}
			done += (size_t)w;
		}
		if (close(fd) < 0 && !ret)
			ret = fv_err_set(err, errno, "cannot write token cache '%s'", tmp);
		/* rename() replaces atomically: a reader sees the old or the new file. */
		if (!ret && rename(tmp, path) < 0)
			ret = fv_err_set(err, errno, "cannot replace token cache '%s'", path);
		if (ret)
			unlink(tmp);
	}
	explicit_bzero(text, strlen(text));
	free(text);
	return ret;
}

int fv_token_forget(const struct fv_token_cache *c, struct fv_err *err)
{
	char path[4096];
	if (fv_token_path(c, path, sizeof(path)) < 0)
		return fv_err_msg(err, ENAMETOOLONG, "token cache path too long");
	if (unlink(path) < 0 && errno != ENOENT)
		return fv_err_set(err, errno, "cannot remove token cache '%s'", path);
	return 0;
}

int fv_token_get(const struct fv_token_cache *c, const char *rejected, fv_token_fetch fetch, void *ud,
		 struct fv_token *out, bool *fetched, struct fv_err *err)
{
	struct fv_err e2 = {0};
	if (fetched)
		*fetched = false;
	*out = (struct fv_token){0};
	int r = fv_token_load(c, rejected, out, &e2);
	if (r > 0)
		return 0;
	if (r < 0)
		fv_log(LOG_WARNING, "token cache: %s", e2.msg);

	/* Miss: one process authenticates, the others wait for its token. */
	char lock_key[64];
	snprintf(lock_key, sizeof(lock_key), "token-%016llx", (unsigned long long)hash_key(c->key));
	e2 = (struct fv_err){0};
	_cleanup_close_ int lock = fv_lock_acquire(c->run_dir, c->driver, lock_key,
						   c->lock_timeout_ms > 0 ? c->lock_timeout_ms : DEFAULT_LOCK_TIMEOUT_MS, &e2);
	if (lock < 0) {
		if (e2.code == -EINTR)
			return fv_err_msg(err, EINTR, "%s", e2.msg);
		fv_log(LOG_WARNING, "token cache: %s; authenticating without it", e2.msg);
	} else {
		e2 = (struct fv_err){0};
		r = fv_token_load(c, rejected, out, &e2);
		if (r > 0)
			return 0;
	}
	if (fetch(ud, out, err) < 0) {
		fv_token_clear(out);
		return err->code ? err->code : -EIO;
	}
	if (fetched)
		*fetched = true;
	e2 = (struct fv_err){0};
	if (fv_token_store(c, out, &e2) < 0)
		fv_log(LOG_WARNING, "token cache: %s", e2.msg);
	return 0;
}

int64_t fv_parse_utc(const char *s)
{
	if (!s)
		return -1;
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, used = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 || used != 19)
		return -1;
	const char *p = s + used;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p && strcmp(p, "Z") && strcmp(p, "z") && strcmp(p, "+00:00") && strcmp(p, "+0000"))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	return t == (time_t)-1 ? -1 : (int64_t)t;
}
