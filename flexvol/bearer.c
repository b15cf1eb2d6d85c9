#include "bearer.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cleanup.h"
#include "log.h"

int fv_bearer_ensure(struct fv_bearer *b, bool refresh, struct fv_err *err)
{
	if (b->token.value && !refresh)
		return 0;
	_cleanup_free_ char *rejected = refresh && b->token.value ? strdup(b->token.value) : NULL;
	struct fv_token fresh = {0};
	bool fetched = false;
	/* Waiting for another process's authentication ends with the call. */
	struct fv_token_cache cache = b->cache;
	long left = fv_http_time_left_ms(b->http);
	if (left == 0)
		return fv_err_msg(err, ETIMEDOUT, "no time left to authenticate");
	if (left > 0 && (cache.lock_timeout_ms <= 0 || cache.lock_timeout_ms > left))
		cache.lock_timeout_ms = left;
	int rc = fv_token_get(&cache, rejected, b->fetch, b->ud, &fresh, &fetched, err);
	if (rejected)
		explicit_bzero(rejected, strlen(rejected));
	if (rc < 0)
		return rc;
	if (!fetched && b->complete && !b->complete(&fresh)) {
		/* A cache entry without the client's data (an older format): start over. */
		fv_token_clear(&fresh);
		struct fv_err ignored = {0};
		fv_token_forget(&b->cache, &ignored);
		if (fv_token_get(&b->cache, NULL, b->fetch, b->ud, &fresh, &fetched, err) < 0)
			return err->code;
	}
	fv_token_clear(&b->token);
	b->token = fresh;
	fv_http_add_secret(b->http, b->token.value);
	if (!fetched)
		fv_log(LOG_DEBUG, "using the cached token (valid for %lld s)", (long long)(b->token.expires - time(NULL)));
	return 0;
}

static int auth_header(void *ud, bool refresh, char *buf, size_t size, struct fv_err *err)
{
	struct fv_bearer *b = ud;
	if (fv_bearer_ensure(b, refresh, err) < 0)
		return err->code;
	if ((size_t)snprintf(buf, size, b->header, b->token.value) >= size)
		return fv_err_msg(err, E2BIG, "the token is too long for a header");
	return 0;
}

void fv_bearer_init(struct fv_bearer *b)
{
	b->auth = (struct fv_http_auth){.header = auth_header, .ud = b};
}

void fv_bearer_clear(struct fv_bearer *b)
{
	fv_token_clear(&b->token);
}
