/* Bearer-token cache shared by the cloud drivers: every driver call is a new
 * process, so a token (Keystone, GCE metadata) lives in a file under the run
 * dir, <run_dir>/tokens/<driver>/<key>.json, mode 0600 in a 0700 dir, replaced
 * atomically (write a temporary file, rename). It is reused until `margin_s`
 * before its expiry. Concurrent processes that all miss serialise on a lock so
 * that one of them authenticates and the others read its result.
 *
 * The key names the identity the token belongs to (auth URL, user, project,
 * region: anything that would make another token) and is stored in the file
 * and compared on load, so a changed configuration never reuses a token. The
 * key is not secret and must not contain secrets: it is hashed into the file
 * name and written into the file in the clear.
 *
 *	static int fetch(void *ud, struct fv_token *out, struct fv_err *err) { ...authenticate... }
 *	struct fv_token_cache c = {.run_dir = ctx->run_dir, .driver = "cinder", .key = id};
 *	struct fv_token t = {0};
 *	if (fv_token_get(&c, NULL, fetch, ud, &t, err) < 0) return err->code;
 *	... on 401: fv_token_get(&c, t.value, fetch, ud, &fresh, err) ...
 *	fv_token_clear(&t);
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "err.h"

struct fv_token {
	char *value;       /* the bearer token (secret); wiped by fv_token_clear() */
	int64_t expires;   /* epoch seconds, local clock: not usable from then on */
	json_t *data;      /* the provider's data cached with the token (service
			    * catalog, project id, …); may be NULL; owned */
};

struct fv_token_cache {
	const char *run_dir;      /* ctx->run_dir */
	const char *driver;       /* provider name */
	const char *key;          /* identity of the credentials (not secret) */
	long margin_s;            /* refresh this long before expiry; 0: 60 s, at most a quarter of the lifetime */
	long lock_timeout_ms;     /* waiting for another process's authentication; 0: 60 s */
};

/* A token fetch: authenticate and fill out (value, expires, data). */
typedef int (*fv_token_fetch)(void *ud, struct fv_token *out, struct fv_err *err);

/* A usable token: the cached one when still valid, else a new one from fetch,
 * which is then stored. `rejected` is the token a server just answered 401
 * to (or NULL): it is never handed out again, but a newer one another process
 * stored meanwhile is. *fetched (may be NULL) tells whether fetch ran.
 * Returns 0 or <0 with err set; a cache that cannot be read or written only
 * costs an authentication (logged), never the call. */
int fv_token_get(const struct fv_token_cache *c, const char *rejected, fv_token_fetch fetch, void *ud,
		 struct fv_token *out, bool *fetched, struct fv_err *err);

/* The cached token if present, for this key, not rejected and valid for
 * margin more seconds: 1 and *out filled, 0 when there is none, <0 on error.
 * A file with a mode looser than 0600 or another owner is ignored. */
int fv_token_load(const struct fv_token_cache *c, const char *rejected, struct fv_token *out, struct fv_err *err);

/* Stores tok atomically (0600). */
int fv_token_store(const struct fv_token_cache *c, const struct fv_token *tok, struct fv_err *err);

/* Removes the cached token (the credentials were refused). */
int fv_token_forget(const struct fv_token_cache *c, struct fv_err *err);

/* The cache file of c (for tests and messages). */
int fv_token_path(const struct fv_token_cache *c, char *buf, size_t size);

/* Wipes and frees the token's contents. */
void fv_token_clear(struct fv_token *t);

/* Parses an RFC 3339 / ISO-8601 UTC time ("2030-01-01T12:00:00.000000Z",
 * fraction and "Z" optional, "+00:00" accepted) into epoch seconds; -1 if
 * malformed. Keystone's expires_at and issued_at. */
int64_t fv_parse_utc(const char *s);
