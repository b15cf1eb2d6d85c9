/* Retry and polling policy shared by the cloud drivers (cinder, gcepd):
 * exponential backoff with jitter, Retry-After, and deadline-bounded polling
 * that gives up on SIGTERM. No libcurl here, so the arithmetic is unit-tested
 * on its own; flexvol/http.c applies it to HTTP requests. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* How one HTTP request is retried. Zero fields take the defaults below, so
 * `(struct fv_retry_policy){0}` is a sensible policy. */
struct fv_retry_policy {
	int max_attempts;         /* tries in all, the first included (default 5) */
	long base_ms;             /* backoff before the first retry (default 500) */
	long cap_ms;              /* longest backoff (default 10000) */
	long max_retry_after_ms;  /* a longer Retry-After ends the retries (default 60000) */
	bool retry_conflict;      /* 409 is transient (Nova: instance locked or busy) */
};

#define FV_RETRY_DEFAULT_ATTEMPTS 5
#define FV_RETRY_DEFAULT_BASE_MS 500L
#define FV_RETRY_DEFAULT_CAP_MS 10000L
#define FV_RETRY_DEFAULT_MAX_RETRY_AFTER_MS 60000L

/* The policy with every zero field replaced by its default. */
struct fv_retry_policy fv_retry_defaults(const struct fv_retry_policy *p);

/* The wait before retry number `retry` (1 = the first retry):
 * d = min(cap, base * 2^(retry-1)), returned as d/2 + random[0, d/2] ("equal
 * jitter": it never collapses to zero, and parallel drivers spread out). */
long fv_retry_backoff_ms(const struct fv_retry_policy *p, int retry);

/* Parses a Retry-After value: delta-seconds or an IMF-fixdate HTTP-date
 * (relative to now, epoch seconds). Milliseconds >= 0, or -1 when absent or
 * unparseable. */
long fv_retry_after_ms(const char *value, time_t now);

/* The default decision for a finished HTTP exchange: 5xx, 429, and 409 when
 * the policy says so. Every other 4xx is final; 401 is not retried here, it
 * makes the HTTP client re-authenticate once (see fv_http_auth). */
bool fv_retry_status(const struct fv_retry_policy *p, long status);

/* Sleeps ms in short slices and returns -EINTR as soon as SIGTERM arrived
 * (fv_terminated()), else 0. */
int fv_sleep_checked(long ms);

/* Polling a cloud for a state change ("volume in-use", "operation DONE"):
 * growing intervals, one overall deadline.
 *
 *	struct fv_poll p;
 *	fv_poll_start(&p, timeout_ms, 250, 5000);
 *	do {
 *		... check; break when done ...
 *	} while (fv_poll_sleep(&p) == 0);
 */
struct fv_poll {
	int64_t start_ms, deadline_ms;   /* fv_now_ms() clock */
	long next_ms, max_ms;
	int rounds;
};

void fv_poll_start(struct fv_poll *p, long timeout_ms, long first_ms, long max_ms);
/* Sleeps the next interval (x1.5, capped at max_ms, never past the
 * deadline). 0 when another check is due; -ETIMEDOUT once the deadline has
 * passed; -EINTR on SIGTERM. */
int fv_poll_sleep(struct fv_poll *p);
/* Milliseconds left before the deadline (0 once passed). */
long fv_poll_left_ms(const struct fv_poll *p);
/* Milliseconds since fv_poll_start(). */
long fv_poll_elapsed_ms(const struct fv_poll *p);
