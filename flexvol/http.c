#include "http.h"
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cleanup.h"
#include "clock.h"
#include "flexvol.h"
#include "log.h"

#ifndef FV_VERSION
#define FV_VERSION "dev"
#endif

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS 30000L
/* Cloud API answers are small; a runaway body is cut off, not buffered. */
#define MAX_BODY (16u << 20)
#define MAX_HEADERS 200
#define AUTH_HEADER_MAX 8192

struct fv_http {
	CURL *curl;
	struct fv_http_config cfg;
	char *ca_file, *user_agent;
	int64_t deadline_ms;
	char **secrets;
	size_t n_secrets;
	char errbuf[CURL_ERROR_SIZE];
};

static int curl_users;

struct fv_http *fv_http_new(const struct fv_http_config *cfg, struct fv_err *err)
{
	if (curl_users++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		curl_users = 0;
		fv_err_msg(err, EIO, "cannot initialise libcurl");
		return NULL;
	}
	struct fv_http *h = calloc(1, sizeof(*h));
	if (!h) {
		fv_http_free(h);
		fv_err_set(err, ENOMEM, "HTTP client");
		return NULL;
	}
	h->cfg = cfg ? *cfg : (struct fv_http_config){0};
	h->cfg.retry = fv_retry_defaults(&h->cfg.retry);
	if (h->cfg.connect_timeout_ms <= 0)
		h->cfg.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	if (h->cfg.timeout_ms <= 0)
		h->cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
	h->curl = curl_easy_init();
	if (h->cfg.ca_file)
		h->ca_file = strdup(h->cfg.ca_file);
	if (asprintf(&h->user_agent, "%s", h->cfg.user_agent ? h->cfg.user_agent : "flexvol/" FV_VERSION) < 0)
		h->user_agent = NULL;
	if (!h->curl || !h->user_agent || (h->cfg.ca_file && !h->ca_file)) {
		fv_http_free(h);
		fv_err_set(err, ENOMEM, "HTTP client");
		return NULL;
	}
	h->cfg.ca_file = h->ca_file;
	h->cfg.user_agent = h->user_agent;
	return h;
}

void fv_http_free(struct fv_http *h)
{
	if (h) {
		if (h->curl)
			curl_easy_cleanup(h->curl);
		for (size_t i = 0; i < h->n_secrets; i++) {
			explicit_bzero(h->secrets[i], strlen(h->secrets[i]));
			free(h->secrets[i]);
		}
		free(h->secrets);
		free(h->ca_file);
		free(h->user_agent);
		free(h);
	}
	if (curl_users > 0 && --curl_users == 0)
		curl_global_cleanup();
}

void fv_http_set_deadline(struct fv_http *h, int64_t deadline_ms)
{
	h->deadline_ms = deadline_ms;
}

void fv_http_add_secret(struct fv_http *h, const char *s)
{
	if (!s || !*s)
		return;
	for (size_t i = 0; i < h->n_secrets; i++)
		if (!strcmp(h->secrets[i], s))
			return;
	char **n = realloc(h->secrets, (h->n_secrets + 1) * sizeof(*n));
	if (!n)
		return;
	h->secrets = n;
	if ((h->secrets[h->n_secrets] = strdup(s)))
		h->n_secrets++;
}

/* Masks every registered secret in buf, in place: never longer than before. */
static void redact(const struct fv_http *h, char *buf)
{
	for (size_t i = 0; h && i < h->n_secrets; i++) {
		const char *s = h->secrets[i];
		size_t n = strlen(s);
		for (char *p = strstr(buf, s); p; p = strstr(p, s)) {
			if (n < 3) {
				memset(p, '*', n);
				p += n;
				continue;
			}
			memcpy(p, "***", 3);
			memmove(p + 3, p + n, strlen(p + n) + 1);
			p += 3;
		}
	}
}

/* --- response capture --- */

struct capture {
	struct fv_http_response *resp;
	size_t cap;
	bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct capture *c = ud;
	struct fv_http_response *r = c->resp;
	size_t n = size * nmemb;
	if (r->body_len + n > MAX_BODY) {
		c->too_big = true;
		return 0;
	}
	if (r->body_len + n + 1 > c->cap) {
		size_t cap = (r->body_len + n + 1) * 2;
		char *p = realloc(r->body, cap);
		if (!p)
			return 0;
		r->body = p;
		c->cap = cap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return n;
}

static void free_headers(struct fv_http_response *r)
{
	for (size_t i = 0; i < r->n_headers; i++)
		free(r->headers[i]);
	free(r->headers);
	r->headers = NULL;
	r->n_headers = 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct capture *c = ud;
	struct fv_http_response *r = c->resp;
	size_t n = size * nmemb;
	/* A new status line (100 Continue, then the real one) starts afresh. */
	if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
		free_headers(r);
		return n;
	}
	size_t len = n;
	while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (!len || !memchr(data, ':', len) || r->n_headers >= MAX_HEADERS)
		return n;
	char **p = realloc(r->headers, (r->n_headers + 1) * sizeof(*p));
	if (!p)
		return 0;
	r->headers = p;
	if (!(r->headers[r->n_headers] = strndup(data, len)))
		return 0;
	r->n_headers++;
	return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)ud, (void)dt, (void)dn, (void)ut, (void)un;
	return fv_terminated() ? 1 : 0;
}

static void reset_response(struct fv_http_response *r)
{
	free(r->body);
	free_headers(r);
	r->body = NULL;
	r->body_len = 0;
	r->status = 0;
}

/* --- one attempt --- */

static bool transport_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

struct slist_holder {
	struct curl_slist *list;
	char *auth_line;
};

static void slist_holder_free(struct slist_holder *s)
{
	curl_slist_free_all(s->list);
	if (s->auth_line) {
		explicit_bzero(s->auth_line, strlen(s->auth_line));
		free(s->auth_line);
	}
}

static int append(struct curl_slist **list, const char *line)
{
	struct curl_slist *n = curl_slist_append(*list, line);
	if (!n)
		return -ENOMEM;
	*list = n;
	return 0;
}

long fv_http_time_left_ms(const struct fv_http *h)
{
	if (!h->deadline_ms)
		return -1;
	int64_t left = h->deadline_ms - fv_now_ms();
	return left > 0 ? (long)left : 0;
}

/* The time one attempt may take: never 0, which libcurl reads as "no limit". */
static long attempt_ms(const struct fv_http *h)
{
	long left = fv_http_time_left_ms(h);
	if (left < 0 || left > h->cfg.timeout_ms)
		return h->cfg.timeout_ms;
	return left;
}

static CURLcode perform(struct fv_http *h, const struct fv_http_request *req, bool refresh_auth,
			struct fv_http_response *resp, struct fv_err *err, int *prep_rc)
{
	CURL *c = h->curl;
	struct slist_holder hdrs = {0};
	*prep_rc = 0;
	if (append(&hdrs.list, "Accept: application/json") < 0 || append(&hdrs.list, "Expect:") < 0)
		goto oom;
	bool has_body = req->body || !strcmp(req->method, "POST") || !strcmp(req->method, "PUT") ||
			!strcmp(req->method, "PATCH");
	if (has_body) {
		char ct[256];
		snprintf(ct, sizeof(ct), "Content-Type: %s", req->content_type ? req->content_type : "application/json");
		if (append(&hdrs.list, ct) < 0)
			goto oom;
	}
	for (const char *const *p = req->headers; p && *p; p++)
		if (append(&hdrs.list, *p) < 0)
			goto oom;
	if (req->auth) {
		hdrs.auth_line = calloc(1, AUTH_HEADER_MAX);
		if (!hdrs.auth_line)
			goto oom;
		*prep_rc = req->auth->header(req->auth->ud, refresh_auth, hdrs.auth_line, AUTH_HEADER_MAX, err);
		if (*prep_rc < 0) {
			slist_holder_free(&hdrs);
			return CURLE_OK;
		}
		if (append(&hdrs.list, hdrs.auth_line) < 0)
			goto oom;
	}

	/* Only now: getting the credential may have run a request of its own
	 * (Keystone) on this same handle, or waited for another process's. */
	long timeout_ms = attempt_ms(h);
	if (timeout_ms <= 0) {
		slist_holder_free(&hdrs);
		snprintf(h->errbuf, sizeof(h->errbuf), "the call's deadline passed before the request was sent");
		return CURLE_OPERATION_TIMEDOUT;
	}
	curl_easy_reset(c); /* keeps the connection cache: keep-alive across requests */
	struct capture cap = {.resp = resp};
	reset_response(resp);
	h->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs.list);
	curl_easy_setopt(c, CURLOPT_USERAGENT, h->cfg.user_agent);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* A redirect would carry the custom auth header to whatever host it names. */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Cloud and metadata endpoints are reached directly: http_proxy from
	 * kubelet's environment must not see (or black-hole) credentials. */
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 h->cfg.connect_timeout_ms < timeout_ms ? h->cfg.connect_timeout_ms : timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &cap);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &cap);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	if (h->cfg.ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->cfg.ca_file);
	if (h->cfg.cert_file)
		curl_easy_setopt(c, CURLOPT_SSLCERT, h->cfg.cert_file);
	if (h->cfg.key_file)
		curl_easy_setopt(c, CURLOPT_SSLKEY, h->cfg.key_file);
	if (h->cfg.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (!strcmp(req->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
		if (has_body) {
			const char *b = req->body ? req->body : "";
			size_t n = req->body ? (req->body_len ? req->body_len : strlen(req->body)) : 0;
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, b);
		}
	}
	CURLcode rc = curl_easy_perform(c);
	/* The header list holds the credential: drop it from the handle first. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	slist_holder_free(&hdrs);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
		if (!resp->body)
			resp->body = strdup("");
		if (!resp->body)
			return CURLE_OUT_OF_MEMORY;
	} else if (rc == CURLE_WRITE_ERROR && cap.too_big) {
		snprintf(h->errbuf, sizeof(h->errbuf), "response larger than %u MiB", MAX_BODY >> 20);
	}
	return rc;
oom:
	slist_holder_free(&hdrs);
	return CURLE_OUT_OF_MEMORY;
}

static const char *what_of(const struct fv_http_request *req, char *buf, size_t size)
{
	if (req->what)
		return req->what;
	snprintf(buf, size, "%s %s", req->method, req->url);
	return buf;
}

int fv_http_request(struct fv_http *h, const struct fv_http_request *req, struct fv_http_response *resp,
		    struct fv_err *err)
{
	const struct fv_retry_policy *pol = &h->cfg.retry;
	bool refreshed = false, refresh_next = false;
	char whatbuf[512];
	const char *what = what_of(req, whatbuf, sizeof(whatbuf));
	*resp = (struct fv_http_response){0};

	for (int attempt = 1;; attempt++) {
		if (fv_terminated())
			return fv_err_msg(err, EINTR, "%s: terminated by SIGTERM", what);
		if (h->deadline_ms && fv_now_ms() >= h->deadline_ms)
			return attempt == 1 ? fv_err_msg(err, ETIMEDOUT, "%s: no time left for the request", what)
					    : fv_err_msg(err, ETIMEDOUT, "%s: no time left after %d attempt%s", what,
							 attempt - 1, attempt == 2 ? "" : "s");
		resp->attempts = attempt;
		int64_t t0 = fv_now_ms();
		int prep_rc;
		CURLcode rc = perform(h, req, refresh_next, resp, err, &prep_rc);
		long ms = (long)(fv_now_ms() - t0);
		refresh_next = false;
		if (prep_rc < 0)
			return prep_rc; /* the credential could not be had: err says why */
		char line[1024];
		long delay = -1;

		if (rc != CURLE_OK) {
			const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
			if (rc == CURLE_ABORTED_BY_CALLBACK)
				return fv_err_msg(err, EINTR, "%s: terminated by SIGTERM", what);
			if (rc == CURLE_OUT_OF_MEMORY)
				return fv_err_set(err, ENOMEM, "%s", what);
			snprintf(line, sizeof(line), "%s: %s (%ld ms)", what, why, ms);
			redact(h, line);
			if (!transport_retryable(rc) || attempt >= pol->max_attempts) {
				fv_log(LOG_WARNING, "%s; giving up after %d attempt%s", line, attempt, attempt == 1 ? "" : "s");
				int e = rc == CURLE_OPERATION_TIMEDOUT	? ETIMEDOUT
					: rc == CURLE_COULDNT_CONNECT ? ECONNREFUSED
								      : EIO;
				if (attempt > 1)
					return fv_err_msg(err, e, "%s, after %d attempts", line, attempt);
				return fv_err_msg(err, e, "%s", line);
			}
		} else {
			fv_log(LOG_DEBUG, "%s -> %ld (%ld ms, attempt %d)", what, resp->status, ms, attempt);
			if (resp->status == 401 && req->auth && !refreshed) {
				/* The token expired or was revoked: one new one, at once. */
				refreshed = refresh_next = true;
				fv_log(LOG_INFO, "%s: 401, re-authenticating", what);
				attempt--; /* re-authentication is not a retry of a failure */
				continue;
			}
			int verdict = req->classify ? req->classify(resp->status, resp->body, req->classify_ud)
						    : FV_HTTP_DEFAULT;
			bool retry = verdict == FV_HTTP_DEFAULT ? fv_retry_status(pol, resp->status) : verdict == FV_HTTP_RETRY;
			if (!retry)
				return 0;
			char text[300] = "";
			if (!req->sensitive) /* a credential endpoint's body is never logged */
				fv_http_error_text(resp, text, sizeof(text));
			snprintf(line, sizeof(line), "%s: HTTP %ld%s%s%s (%ld ms)", what, resp->status, text[0] ? " (" : "",
				 text, text[0] ? ")" : "", ms);
			redact(h, line);
			if (attempt >= pol->max_attempts) {
				fv_log(LOG_WARNING, "%s; giving up after %d attempts", line, attempt);
				return 0;
			}
			long ra = fv_retry_after_ms(fv_http_header(resp, "Retry-After"), time(NULL));
			if (ra >= 0) {
				if (ra > pol->max_retry_after_ms) {
					fv_log(LOG_WARNING, "%s; Retry-After %ld s is too long, giving up", line, ra / 1000);
					return 0;
				}
				delay = ra;
			}
		}
		if (delay < 0)
			delay = fv_retry_backoff_ms(pol, attempt);
		if (h->deadline_ms && fv_now_ms() + delay >= h->deadline_ms) {
			fv_log(LOG_WARNING, "%s; no time left for a retry", line);
			if (rc == CURLE_OK)
				return 0;
			return fv_err_msg(err, ETIMEDOUT, "%s; no time left for a retry after %d attempt%s", line, attempt,
					  attempt == 1 ? "" : "s");
		}
		fv_log(LOG_WARNING, "%s; retry %d of %d in %ld ms", line, attempt, pol->max_attempts - 1, delay);
		if (fv_sleep_checked(delay) < 0)
			return fv_err_msg(err, EINTR, "%s: terminated by SIGTERM", what);
	}
}

