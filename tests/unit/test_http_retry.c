/* The retry policy and polling (flexvol/retry.c) and the response helpers
 * (flexvol/http_util.c) the cloud drivers share. The transport itself
 * (http.c, libcurl) is exercised against the fake clouds in tests/integration. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include "clock.h"
#include "http.h"
#include "retry.h"
#include "tap.h"

static void test_backoff(void)
{
	struct fv_retry_policy d = fv_retry_defaults(NULL);
	CHECK(d.max_attempts == 5 && d.base_ms == 500 && d.cap_ms == 10000 && d.max_retry_after_ms == 60000,
	      "zero policy takes the defaults");
	struct fv_retry_policy p = {.base_ms = 400, .cap_ms = 3000};
	bool in_range = true, varies = false;
	long first = -1;
	for (int retry = 1; retry <= 8; retry++) {
		long want = 400L << (retry - 1);
		if (want > 3000)
			want = 3000;
		for (int i = 0; i < 200; i++) {
			long b = fv_retry_backoff_ms(&p, retry);
			if (b < want - want / 2 || b > want)
				in_range = false;
			if (retry == 1 && first >= 0 && b != first)
				varies = true;
			if (retry == 1)
				first = b;
		}
	}
	CHECK(in_range, "backoff n lies in [d/2, d] with d = min(cap, base*2^(n-1))");
	CHECK(varies, "backoff is jittered");
	CHECK(fv_retry_backoff_ms(&p, 60) <= 3000, "a large retry number stays capped (no overflow)");
}

static void test_retry_after(void)
{
	time_t now = 1700000000;
	CHECK(fv_retry_after_ms("2", now) == 2000, "delta-seconds");
	CHECK(fv_retry_after_ms(" 10 \r\n", now) == 10000, "blanks around delta-seconds");
	CHECK(fv_retry_after_ms("0", now) == 0, "zero");
	CHECK(fv_retry_after_ms(NULL, now) == -1, "absent");
	CHECK(fv_retry_after_ms("soon", now) == -1, "garbage");
	CHECK(fv_retry_after_ms("-5", now) == -1, "negative");
	CHECK(fv_retry_after_ms("12abc", now) == -1, "trailing garbage");
	/* 1700000000 = Tue, 14 Nov 2023 22:13:20 GMT */
	CHECK(fv_retry_after_ms("Tue, 14 Nov 2023 22:13:50 GMT", now) == 30000, "HTTP-date 30 s ahead");
	CHECK(fv_retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0, "HTTP-date in the past: now");
	CHECK(fv_retry_after_ms("Tue, 14 Nov 2023 22:13:50 CET", now) == -1, "only GMT dates");
	CHECK(fv_retry_after_ms("99999999", now) == 86400L * 1000, "clamped to a day");
}

static void test_status(void)
{
	struct fv_retry_policy p = {0}, nova = {.retry_conflict = true};
	CHECK(fv_retry_status(&p, 500) && fv_retry_status(&p, 502) && fv_retry_status(&p, 503) &&
		      fv_retry_status(&p, 504),
	      "5xx are transient");
	CHECK(fv_retry_status(&p, 429), "429 is transient");
	CHECK(!fv_retry_status(&p, 409) && fv_retry_status(&nova, 409), "409 only when the policy says so");
	CHECK(!fv_retry_status(&p, 400) && !fv_retry_status(&p, 401) && !fv_retry_status(&p, 403) &&
		      !fv_retry_status(&p, 404) && !fv_retry_status(&p, 413),
	      "other 4xx are final (401 is re-authentication, not a retry)");
	CHECK(!fv_retry_status(&p, 200) && !fv_retry_status(&p, 202), "2xx are final");
}

static void test_poll(void)
{
	struct fv_poll p;
	int64_t t0 = fv_now_ms();
	fv_poll_start(&p, 300, 40, 100);
	int checks = 1, r;
	while ((r = fv_poll_sleep(&p)) == 0)
		checks++;
	long took = (long)(fv_now_ms() - t0);
	CHECK(r == -ETIMEDOUT, "ends with -ETIMEDOUT");
	CHECK(took >= 300 && took < 450, "ends at the deadline (%ld ms)", took);
	CHECK(checks >= 4 && checks <= 8, "intervals grow from 40 ms to at most 100 ms (%d checks)", checks);
	CHECK(fv_poll_left_ms(&p) == 0, "no time left");
	fv_poll_start(&p, 1000, 10, 10);
	CHECK(fv_poll_left_ms(&p) > 900 && fv_poll_elapsed_ms(&p) < 100, "left and elapsed");
}

static struct fv_http_response resp(long status, const char *body)
{
	struct fv_http_response r = {.status = status, .body = strdup(body), .body_len = strlen(body), .attempts = 1};
	return r;
}

static void test_response_helpers(void)
{
	char text[256];
	struct fv_err e = {0};
	struct fv_http_response r = resp(400, "{\"badRequest\": {\"code\": 400, \"message\": \"Invalid volume: in-use\"}}");
	fv_http_error_text(&r, text, sizeof(text));
	CHECK_STR(text, "Invalid volume: in-use", "Nova fault body");
	fv_http_response_free(&r);

	r = resp(401, "{\"error\": {\"code\": 401, \"title\": \"Unauthorized\", \"message\": \"The request you have made "
		      "requires authentication.\"}}");
	fv_http_error_text(&r, text, sizeof(text));
	CHECK_STR(text, "The request you have made requires authentication.", "Keystone error body");
	CHECK(fv_http_status_error(&r, "reading", &e) == -EACCES, "401 is -EACCES");
	fv_http_response_free(&r);

	r = resp(403, "{\"error\": {\"code\": 403, \"message\": \"Rate Limit Exceeded\", \"errors\": [{\"reason\": "
		      "\"rateLimitExceeded\"}]}}");
	fv_http_error_text(&r, text, sizeof(text));
	CHECK_STR(text, "Rate Limit Exceeded", "Google error body");
	fv_http_response_free(&r);

	r = resp(502, "<html><body>\nBad gateway\n</body></html>");
	fv_http_error_text(&r, text, sizeof(text));
	CHECK_STR(text, "<html><body> Bad gateway </body></html>", "HTML on one line");
	r.attempts = 5;
	CHECK(fv_http_status_error(&r, "attaching volume v", &e) == -EAGAIN, "5xx is -EAGAIN");
	CHECK_STR(e.msg, "attaching volume v: HTTP 502 (<html><body> Bad gateway </body></html>) after 5 attempts",
		  "status error message");
	fv_http_response_free(&r);

	r = resp(404, "");
	CHECK(fv_http_status_error(&r, "reading volume v", &e) == -ENOENT, "404 is -ENOENT");
	CHECK_STR(e.msg, "reading volume v: HTTP 404", "no body, no parentheses");
	fv_http_response_free(&r);

	r = resp(429, "{\"overLimit\": {\"code\": 429, \"message\": \"slow down\"}}");
	char *lines[] = {strdup("Content-Type: application/json"), strdup("retry-after:  30")};
	r.headers = malloc(sizeof(lines));
	memcpy(r.headers, lines, sizeof(lines));
	r.n_headers = 2;
	CHECK_STR(fv_http_header(&r, "Retry-After"), "30", "header lookup ignores case and leading blanks");
	CHECK(fv_http_header(&r, "Retry") == NULL, "no prefix matches");
	fv_http_status_error(&r, "attaching", &e);
	CHECK_STR(e.msg, "attaching: HTTP 429 (slow down); Retry-After 30", "429 names its Retry-After");
	fv_http_response_free(&r);
	CHECK(r.body == NULL && r.headers == NULL && r.n_headers == 0, "freed response is reset");

	r = resp(200, "{\"a\": 1}");
	json_t *j = fv_http_json(&r, &e);
	CHECK(j && json_integer_value(json_object_get(j, "a")) == 1, "JSON body");
	json_decref(j);
	fv_http_response_free(&r);
	r = resp(200, "{\"a\": 1, \"a\": 2}");
	CHECK(fv_http_json(&r, &e) == NULL && strstr(e.msg, "not JSON"), "duplicate keys refused: %s", e.msg);
	fv_http_response_free(&r);

	char *q = fv_http_escape("^node-1.example$ {\"k\":\"v\"}/~");
	CHECK_STR(q, "%5Enode-1.example%24%20%7B%22k%22%3A%22v%22%7D%2F~", "percent-encoding keeps unreserved only");
	free(q);
}

int main(void)
{
	test_backoff();
	test_retry_after();
	test_status();
	test_poll();
	test_response_helpers();
	return tap_done("test_http_retry");
}
