/* HTTP client for the cloud drivers, on libcurl: one connection reused for
 * every request of a call, connect and per-attempt timeouts, an overall
 * deadline, retries with backoff and jitter (flexvol/retry.h), Retry-After,
 * one re-authentication on 401, TLS with an optional CA file, no redirects,
 * http and https only, never through a proxy (http_proxy and the like in the
 * environment are ignored). A provider using it lists `libcurl` in <name>_LIBS.
 *
 * Credentials: request headers and bodies are never logged; log lines and
 * error messages show method, URL, status and the cloud's own error message,
 * with every string given to fv_http_add_secret() masked. Never put a
 * credential in a URL.
 *
 *	struct fv_http *h = fv_http_new(&(struct fv_http_config){.ca_file = ca}, err);
 *	struct fv_http_response r = {0};
 *	if (fv_http_request(h, &(struct fv_http_request){.method = "GET", .url = u, .auth = &auth}, &r, err) < 0)
 *		return err->code;                    (transport failure, after retries)
 *	if (r.status != 200)
 *		return fv_http_status_error(&r, "cannot read volume", err);
 *	json_t *j = fv_http_json(&r, err);
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "retry.h"

struct fv_http;

struct fv_http_config {
	long connect_timeout_ms;     /* TCP + TLS handshake (default 10000) */
	long timeout_ms;             /* one attempt, first byte to last (default 30000) */
	const char *ca_file;         /* PEM bundle for https; NULL: the system store */
	bool insecure;               /* skip TLS verification (cloud.conf tls-insecure) */
	const char *cert_file;       /* PEM client certificate (mTLS) and its key; NULL: none. */
	const char *key_file;        /* Not copied: they must outlive the client. */
	const char *user_agent;      /* default "flexvol/<version>" */
	struct fv_retry_policy retry;
};

/* Supplies the credential header of a request ("X-Auth-Token: …",
 * "Authorization: Bearer …"). refresh is true after the server answered 401
 * to the previous one: get a new credential (the client does this once per
 * request). The buffer is wiped after use. Returns 0 or <0 with err set. */
struct fv_http_auth {
	int (*header)(void *ud, bool refresh, char *buf, size_t size, struct fv_err *err);
	void *ud;
};

/* Decision hook for one finished exchange, for cloud-specific rules (GCE's
 * 403 rateLimitExceeded is transient). Returns FV_HTTP_RETRY, FV_HTTP_FINAL
 * or FV_HTTP_DEFAULT (use fv_retry_status()). */
enum { FV_HTTP_DEFAULT = -1, FV_HTTP_FINAL = 0, FV_HTTP_RETRY = 1 };
typedef int (*fv_http_classify)(long status, const char *body, void *ud);

struct fv_http_request {
	const char *method;                /* "GET", "POST", "PUT", "DELETE", … */
	const char *url;
	const char *const *headers;        /* NULL-terminated "Name: value" lines, or NULL */
	const char *body;                  /* NULL: no body */
	size_t body_len;                   /* 0 with a body: strlen(body) */
	const char *content_type;          /* with a body; default application/json */
	const struct fv_http_auth *auth;   /* NULL: anonymous */
	bool sensitive;                    /* the response carries a credential: never log its body */
	fv_http_classify classify;         /* NULL: fv_retry_status() */
	void *classify_ud;
	const char *what;                  /* for messages, e.g. "Keystone authentication"; default METHOD URL */
};

struct fv_http_response {
	long status;                 /* the final attempt's HTTP status */
	char *body;                  /* NUL-terminated; may be "" */
	size_t body_len;
	int attempts;                /* tries made, the first included */
	char **headers;              /* "Name: value" lines of the final response (use fv_http_header) */
	size_t n_headers;
};

/* A client; free with fv_http_free(). Initialises libcurl on first use. */
struct fv_http *fv_http_new(const struct fv_http_config *cfg, struct fv_err *err);
void fv_http_free(struct fv_http *h);

/* No attempt starts, and no backoff sleeps, past this fv_now_ms() instant;
 * attempts are cut short to end by it. 0 clears it. */
void fv_http_set_deadline(struct fv_http *h, int64_t deadline_ms);

/* What is left until the deadline: ms (0 once it passed), -1 without one.
 * Anything a request waits for (a token lock) is bounded by it. */
long fv_http_time_left_ms(const struct fv_http *h);

/* Masks s ("***") in every log line and error message the client writes.
 * Register passwords, application-credential secrets and tokens. */
void fv_http_add_secret(struct fv_http *h, const char *s);

/* Runs the request with retries. Returns 0 once any HTTP response arrived
 * (check resp->status; a retryable status that outlived the retries is
 * returned too), <0 with err set when none did (connection refused, timeout,
 * TLS failure, SIGTERM, deadline). resp is filled in either case and must be
 * released with fv_http_response_free(). */
int fv_http_request(struct fv_http *h, const struct fv_http_request *req, struct fv_http_response *resp,
		    struct fv_err *err);
void fv_http_response_free(struct fv_http_response *r);

/* A response header's value (case-insensitive name, first match), or NULL. */
const char *fv_http_header(const struct fv_http_response *r, const char *name);

/* The body parsed as JSON (caller json_decref()s); NULL with err set. */
json_t *fv_http_json(const struct fv_http_response *r, struct fv_err *err);

/* The cloud's own error text from an error body, in the shapes OpenStack
 * ({"badRequest":{"message":…}}, {"error":{"message":…}}) and Google
 * ({"error":{"message":…}}) use; else the start of the body. Empty when
 * there is nothing useful. */
void fv_http_error_text(const struct fv_http_response *r, char *buf, size_t size);

/* Sets err to "<what>: HTTP <status> (<cloud message>)[ after N attempts]"
 * and returns its code (-EIO; -ENOENT for 404, -EACCES for 401/403,
 * -EAGAIN for 409/429/5xx). */
int fv_http_status_error(const struct fv_http_response *r, const char *what, struct fv_err *err);

/* Percent-encodes s for a URL path segment or query value (caller frees). */
char *fv_http_escape(const char *s);
