/* A cloud client's current bearer token: taken from the token cache
 * (tokencache.h) on first use, replaced after a 401, and turned into the
 * request header through the HTTP client's auth callback (http.h). Each
 * token is registered as a secret with the HTTP client, so no log line or
 * message ever shows it.
 *
 *	c->bearer = (struct fv_bearer){.cache = {...}, .fetch = authenticate, .ud = c,
 *				      .header = "X-Auth-Token: %s", .http = c->http};
 *	fv_bearer_init(&c->bearer);
 *	... fv_http_request(c->http, &(struct fv_http_request){.auth = &c->bearer.auth, ...}, ...)
 *	fv_bearer_clear(&c->bearer);
 */
#pragma once
#include <stdbool.h>
#include "err.h"
#include "http.h"
#include "tokencache.h"

struct fv_bearer {
	struct fv_token_cache cache;
	fv_token_fetch fetch;
	void *ud;
	/* Optional: whether a cached token carries all the data the client
	 * needs; one that does not is forgotten and fetched anew. */
	bool (*complete)(const struct fv_token *t);
	const char *header;        /* a format with one %s, the token */
	struct fv_http *http;
	struct fv_token token;     /* the current one; value NULL before the first request */
	struct fv_http_auth auth;  /* set by fv_bearer_init() */
};

void fv_bearer_init(struct fv_bearer *b);

/* b->token holds a usable token: 0, or <0 with err. refresh: the current
 * one was just refused. */
int fv_bearer_ensure(struct fv_bearer *b, bool refresh, struct fv_err *err);

/* Wipes the current token. */
void fv_bearer_clear(struct fv_bearer *b);
