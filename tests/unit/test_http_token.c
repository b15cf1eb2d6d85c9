/* The bearer-token cache (flexvol/tokencache.c): files, modes, expiry,
 * rejection after a 401, one fetch per miss, and the UTC time parser; a
 * client's current token and its header (flexvol/bearer.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "bearer.h"
#include "tokencache.h"
#include "tap.h"

struct fetcher {
	int calls;
	long lifetime;
	int fail;
	bool zone;     /* put a "zone" in the token's data */
};

static int fetch(void *ud, struct fv_token *out, struct fv_err *err)
{
	struct fetcher *f = ud;
	f->calls++;
	if (f->fail)
		return fv_err_msg(err, EACCES, "refused");
	char v[32];
	snprintf(v, sizeof(v), "tok-%d", f->calls);
	out->value = strdup(v);
	out->expires = time(NULL) + f->lifetime;
	out->data = json_pack("{s:s}", "compute", "http://nova");
	if (f->zone)
		json_object_set_new(out->data, "zone", json_string("us-central1-a"));
	return 0;
}

static bool has_zone(const struct fv_token *t)
{
	return json_object_get(t->data, "zone") != NULL;
}

static void rm_tree(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		abort();
}

int main(void)
{
	char run[] = "/tmp/fv-token-XXXXXX";
	if (!mkdtemp(run))
		abort();
	struct fv_err e = {0};
	struct fv_token_cache c = {.run_dir = run, .driver = "cinder", .key = "keystone|http://k/v3|user=u@d|project=p"};
	struct fv_token t = {0};
	CHECK(fv_token_load(&c, NULL, &t, &e) == 0, "empty cache: a miss");

	struct fetcher f = {.lifetime = 3600};
	bool fetched = false;
	CHECK(fv_token_get(&c, NULL, fetch, &f, &t, &fetched, &e) == 0 && fetched && f.calls == 1, "miss: fetched");
	CHECK_STR(t.value, "tok-1", "fetched token");
	fv_token_clear(&t);
	CHECK(t.value == NULL && t.data == NULL, "clear resets");

	char path[4096];
	fv_token_path(&c, path, sizeof(path));
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "file mode 0600");
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/tokens/cinder", run);
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "dir mode 0700");

	CHECK(fv_token_get(&c, NULL, fetch, &f, &t, &fetched, &e) == 0 && !fetched && f.calls == 1, "hit: no fetch");
	CHECK_STR(t.value, "tok-1", "cached token");
	CHECK_STR(json_string_value(json_object_get(t.data, "compute")), "http://nova", "data cached with it");
	fv_token_clear(&t);

	CHECK(fv_token_get(&c, "tok-1", fetch, &f, &t, &fetched, &e) == 0 && fetched && f.calls == 2,
	      "the rejected token is never handed out again");
	CHECK_STR(t.value, "tok-2", "new token after a 401");
	fv_token_clear(&t);
	CHECK(fv_token_get(&c, "tok-1", fetch, &f, &t, &fetched, &e) == 0 && !fetched,
	      "a newer token another process stored is taken");
	fv_token_clear(&t);

	struct fv_token_cache other = c;
	other.key = "keystone|http://k/v3|user=someone-else";
	CHECK(fv_token_load(&other, NULL, &t, &e) == 0, "another identity never gets this token");

	/* Expiry: a margin before the end, at most a quarter of the lifetime. */
	struct fv_token s = {.value = "short", .expires = time(NULL) + 100};
	CHECK(fv_token_store(&c, &s, &e) == 0, "store");
	CHECK(fv_token_load(&c, NULL, &t, &e) == 1, "100 s lifetime, 25 s margin: valid");
	fv_token_clear(&t);
	s.expires = time(NULL) + 20;
	fv_token_store(&c, &s, &e);
	CHECK(fv_token_load(&c, NULL, &t, &e) == 1, "20 s lifetime: a 5 s margin, not 60 s, so still valid");
	fv_token_clear(&t);
	s.expires = time(NULL) + 3600;
	fv_token_store(&c, &s, &e);
	c.margin_s = 3590;
	CHECK(fv_token_load(&c, NULL, &t, &e) == 1, "margin capped at a quarter of the lifetime");
	fv_token_clear(&t);
	c.margin_s = 0;
	s.expires = time(NULL) - 1;
	fv_token_store(&c, &s, &e);
	CHECK(fv_token_load(&c, NULL, &t, &e) == 0, "expired: a miss");

	/* A cache file others could read is not trusted. */
	s.expires = time(NULL) + 3600;
	fv_token_store(&c, &s, &e);
	chmod(path, 0644);
	CHECK(fv_token_load(&c, NULL, &t, &e) == 0, "mode 0644: ignored");
	chmod(path, 0600);
	CHECK(fv_token_load(&c, NULL, &t, &e) == 1, "mode 0600: used");
	fv_token_clear(&t);
	CHECK(fv_token_forget(&c, &e) == 0 && fv_token_load(&c, NULL, &t, &e) == 0, "forget");
	CHECK(fv_token_forget(&c, &e) == 0, "forget twice");

	/* Garbage in the file: a miss, then replaced. */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, "{not json", 9) == 9, "write garbage");
	close(fd);
	CHECK(fv_token_load(&c, NULL, &t, &e) == 0, "garbage: a miss");
	f.fail = 1;
	CHECK(fv_token_get(&c, NULL, fetch, &f, &t, &fetched, &e) == -EACCES && !strcmp(e.msg, "refused") && !t.value,
	      "a failed fetch is the caller's error");
	f.fail = 0;
	CHECK(fv_token_get(&c, NULL, fetch, &f, &t, &fetched, &e) == 0 && fetched, "then a good one");
	fv_token_clear(&t);

	/* An unwritable run dir costs an authentication per call, never the call. */
	struct fv_token_cache bad = {.run_dir = "/proc/no-such-dir", .driver = "cinder", .key = "k"};
	CHECK(fv_token_get(&bad, NULL, fetch, &f, &t, &fetched, &e) == 0 && fetched, "no cache dir: still a token");
	fv_token_clear(&t);

	CHECK(fv_parse_utc("2030-01-01T12:00:00.000000Z") == 1893499200, "Keystone expires_at");
	CHECK(fv_parse_utc("2030-01-01T12:00:00Z") == 1893499200, "no fraction");
	CHECK(fv_parse_utc("2030-01-01T12:00:00") == 1893499200, "no zone (Cinder style)");
	CHECK(fv_parse_utc("2030-01-01T12:00:00+00:00") == 1893499200, "+00:00");
	CHECK(fv_parse_utc("2030-01-01T12:00:00+02:00") == -1, "other offsets refused");
	CHECK(fv_parse_utc("2030-13-01T12:00:00Z") == -1, "bad month");
	CHECK(fv_parse_utc("soon") == -1 && fv_parse_utc(NULL) == -1, "garbage");

	/* fv_bearer: the token a client sends, and its header. */
	struct fv_http *h = fv_http_new(&(struct fv_http_config){0}, &e);
	CHECK(h != NULL, "http client: %s", e.msg);
	struct fetcher bf = {.lifetime = 3600};
	struct fv_bearer b = {.cache = {.run_dir = run, .driver = "gcepd", .key = "bearer-test"},
			      .fetch = fetch,
			      .ud = &bf,
			      .header = "Authorization: Bearer %s",
			      .http = h};
	fv_bearer_init(&b);
	char hdr[64];
	CHECK(b.auth.header(b.auth.ud, false, hdr, sizeof(hdr), &e) == 0 && bf.calls == 1, "first header fetches");
	CHECK_STR(hdr, "Authorization: Bearer tok-1", "the header carries the token");
	CHECK(b.auth.header(b.auth.ud, false, hdr, sizeof(hdr), &e) == 0 && bf.calls == 1, "then it is reused");
	CHECK(b.auth.header(b.auth.ud, true, hdr, sizeof(hdr), &e) == 0 && bf.calls == 2, "a 401 fetches anew");
	CHECK_STR(hdr, "Authorization: Bearer tok-2", "and sends the new one");
	char tiny[10];
	CHECK(b.auth.header(b.auth.ud, false, tiny, sizeof(tiny), &e) == -E2BIG, "a header that does not fit");
	fv_bearer_clear(&b);
	CHECK(b.token.value == NULL, "cleared");

	/* A cached token without the data the client needs is fetched again. */
	struct fv_bearer picky = b;
	picky.complete = has_zone;
	bf.zone = true;
	fv_bearer_init(&picky);
	CHECK(fv_bearer_ensure(&picky, false, &e) == 0 && bf.calls == 3 && json_object_get(picky.token.data, "zone"),
	      "incomplete cache entry replaced (%d fetches)", bf.calls);
	fv_bearer_clear(&picky);
	fv_http_free(h);

	rm_tree(run);
	return tap_done("test_http_token");
}
