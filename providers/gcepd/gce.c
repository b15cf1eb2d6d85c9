#include "gce.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "config.h"
#include "gceutil.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "bearer.h"
#include "tokencache.h"

#define JWT_GRANT "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
#define MAX_KEY_FILE (64u << 10)

/* A service-account JSON key; private_key is the secret. */
struct sa_key {
	char *email, *key_id, *private_key, *token_uri, *project;
};

struct gce_client {
	struct fv_ctx *ctx;
	const struct gce_conf *conf;
	struct fv_http *http;
	struct sa_key key;            /* with a credentials file */
	bool has_key;
	char *cache_key;
	struct fv_bearer bearer;      /* the access token, as Authorization: Bearer */
	int fetches;
};

/* --- configuration --- */

static void free_secret(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* An http(s) URL without trailing slashes (caller frees). */
static int url_conf(const struct fv_config *c, const char *section, const char *key, const char *value, char **out,
		    struct fv_err *err)
{
	size_t n = strlen(value);
	while (n && value[n - 1] == '/')
		n--;
	size_t scheme = !strncmp(value, "https://", 8) ? 8 : !strncmp(value, "http://", 7) ? 7 : 0;
	if (!scheme || n <= scheme)
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] %s must be an http:// or https:// URL, not '%s'",
				  fv_config_path(c), section, key, value);
	if (!(*out = strndup(value, n)))
		return fv_err_set(err, ENOMEM, "configuration");
	return 0;
}

static char *dup_set(const struct fv_config *c, const char *section, const char *key)
{
	const char *v = fv_config_get(c, section, key, NULL);
	return v && *v ? strdup(v) : NULL;
}

int gce_conf_load(const struct fv_config *c, const char *section, struct gce_conf *conf, struct fv_err *err)
{
	*conf = (struct gce_conf){0};
	conf->project = dup_set(c, section, "project");
	conf->zone = dup_set(c, section, "zone");
	conf->credentials_file = dup_set(c, section, "credentials-file");
	conf->ca_file = dup_set(c, section, "ca-file");
	if (conf->zone && !gce_valid_name(conf->zone))
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] zone '%s' is not a zone name (e.g. us-central1-a)",
				  fv_config_path(c), section, conf->zone);
	if (conf->credentials_file && conf->credentials_file[0] != '/')
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] credentials-file must be an absolute path",
				  fv_config_path(c), section);
	/* The Go metadata library's override (host[:port]) is honoured too, below
	 * the configuration. */
	char env_url[512] = "";
	const char *host = getenv("GCE_METADATA_HOST");
	if (host && *host && strlen(host) < 256)
		snprintf(env_url, sizeof(env_url), "http://%s", host);
	const char *murl = fv_config_get(c, section, "metadata-url", env_url[0] ? env_url : GCE_DEFAULT_METADATA_URL);
	const char *curl = fv_config_get(c, section, "compute-endpoint", GCE_DEFAULT_COMPUTE_ENDPOINT);
	if (url_conf(c, section, "metadata-url", murl, &conf->metadata_url, err) < 0 ||
	    url_conf(c, section, "compute-endpoint", curl, &conf->compute_endpoint, err) < 0)
		return err->code;
	if (fv_config_get_long(c, section, "http-timeout", 30, 1, 600, &conf->http_timeout_s, err) < 0 ||
	    fv_config_get_long(c, section, "http-connect-timeout", 10, 1, 120, &conf->http_connect_timeout_s, err) < 0 ||
	    fv_config_get_long(c, section, "http-attempts", 5, 1, 20, &conf->http_attempts, err) < 0 ||
	    fv_config_get_long(c, section, "token-margin", 60, 0, 3600, &conf->token_margin_s, err) < 0)
		return err->code;
	return 0;
}

void gce_conf_free(struct gce_conf *conf)
{
	char **all[] = {&conf->project, &conf->zone, &conf->credentials_file, &conf->metadata_url,
			&conf->compute_endpoint, &conf->ca_file};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		free_secret(all[i]);
}

/* --- the service-account key --- */

static void key_free(struct sa_key *k)
{
	free_secret(&k->private_key);
	free(k->email);
	free(k->key_id);
	free(k->token_uri);
	free(k->project);
	*k = (struct sa_key){0};
}

static char *json_dup(json_t *o, const char *name)
{
	const char *v = json_string_value(json_object_get(o, name));
	return v && *v ? strdup(v) : NULL;
}

/* Reads the key file: root's own, readable by nobody else. */
static int key_load(const char *path, struct sa_key *k, struct fv_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open the credentials file '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fv_err_set(err, errno, "cannot inspect the credentials file '%s'", path);
	if (!S_ISREG(st.st_mode))
		return fv_err_msg(err, EINVAL, "the credentials file '%s' is not a regular file", path);
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return fv_err_msg(err, EPERM,
				  "the credentials file '%s' has mode %04o and owner %u: it holds a private key and must "
				  "be readable by root only (chown root; chmod 0600)",
				  path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
	if (st.st_size <= 0 || (size_t)st.st_size > MAX_KEY_FILE)
		return fv_err_msg(err, EINVAL, "the credentials file '%s' is empty or too large for a key", path);
	char *text = malloc((size_t)st.st_size + 1);
	if (!text)
		return fv_err_set(err, ENOMEM, "credentials file");
	ssize_t n = pread(fd, text, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		free(text);
		return fv_err_set(err, n < 0 ? errno : EIO, "cannot read the credentials file '%s'", path);
	}
	text[n] = '\0';
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	explicit_bzero(text, (size_t)n);
	free(text);
	if (!j)
		/* Not je.text: it quotes the text near the error, which may be key material. */
		return fv_err_msg(err, EINVAL, "the credentials file '%s' is not JSON (error at line %d, column %d)", path,
				  je.line, je.column);
	const char *type = json_string_value(json_object_get(j, "type"));
	int rc = 0;
	if (!type || strcmp(type, "service_account")) {
		rc = fv_err_msg(err, EINVAL, "the credentials file '%s' is not a service-account key (type '%s')", path,
				type ? type : "");
	} else {
		k->email = json_dup(j, "client_email");
		k->key_id = json_dup(j, "private_key_id");
		k->private_key = json_dup(j, "private_key");
		k->token_uri = json_dup(j, "token_uri");
		k->project = json_dup(j, "project_id");
		if (!k->token_uri)
			k->token_uri = strdup(GCE_DEFAULT_TOKEN_URI);
		if (!k->email || !k->private_key)
			rc = fv_err_msg(err, EINVAL, "the credentials file '%s' lacks %s", path,
					k->email ? "private_key" : "client_email");
		else if (strncmp(k->token_uri, "https://", 8) && strncmp(k->token_uri, "http://", 7))
			rc = fv_err_msg(err, EINVAL, "the credentials file '%s' has a token_uri that is not an http(s) URL",
					path);
	}
	json_t *pk = json_object_get(j, "private_key");
	if (json_is_string(pk))
		explicit_bzero((char *)json_string_value(pk), json_string_length(pk));
	json_decref(j);
	if (rc < 0)
		key_free(k);
	return rc;
}

/* --- metadata server --- */

/* GET <metadata>/computeMetadata/v1/<path>: the body (caller frees; wipe it
 * when sensitive). */
static int metadata_get(struct gce_client *c, const char *path, bool sensitive, char **out, struct fv_err *err)
{
	_cleanup_free_ char *url = NULL, *what = NULL;
	*out = NULL;
	if (asprintf(&url, "%s/computeMetadata/v1/%s", c->conf->metadata_url, path) < 0 ||
	    asprintf(&what, "reading %s from the metadata server %s", path, c->conf->metadata_url) < 0)
		return fv_err_set(err, ENOMEM, "metadata");
	static const char *const headers[] = {"Metadata-Flavor: Google", NULL};
	struct fv_http_response r = {0};
	int rc = fv_http_request(c->http,
				 &(struct fv_http_request){.method = "GET", .url = url, .headers = headers,
							   .sensitive = sensitive, .what = what},
				 &r, err);
	if (rc == 0 && r.status != 200) {
		/* A token answer's body is not quoted, whatever it holds. */
		struct fv_http_response bare = r;
		if (sensitive)
			bare.body_len = 0;
		rc = fv_http_status_error(&bare, what, err);
	} else if (rc == 0) {
		/* The real server says so on every answer: anything else is not it. */
		const char *flavor = fv_http_header(&r, "Metadata-Flavor");
		if (!flavor || strcmp(flavor, "Google"))
			rc = fv_err_msg(err, EPROTO, "%s: the answer lacks 'Metadata-Flavor: Google' (not a GCE metadata server)",
					what);
		else
			*out = strdup(r.body);
		if (rc == 0 && !*out)
			rc = fv_err_set(err, ENOMEM, "metadata");
	}
	if (r.body && sensitive)
		explicit_bzero(r.body, r.body_len);
	fv_http_response_free(&r);
	return rc;
}

/* The token answer shared by the metadata server and the OAuth endpoint. */
static int parse_token(struct gce_client *c, const struct fv_http_response *r, const char *what, struct fv_token *out,
		       struct fv_err *err)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
	const char *tok = json_string_value(json_object_get(j, "access_token"));
	json_t *exp = json_object_get(j, "expires_in");
	int rc = 0;
	if (!tok || !*tok || !json_is_integer(exp) || json_integer_value(exp) <= 0) {
		rc = fv_err_msg(err, EPROTO, "%s: the answer has no access_token and expires_in", what);
	} else {
		out->value = strdup(tok);
		out->expires = (int64_t)time(NULL) + json_integer_value(exp);
		if (!out->value)
			rc = fv_err_set(err, ENOMEM, "%s", what);
		else
			fv_http_add_secret(c->http, out->value);
	}
	json_t *tv = json_object_get(j, "access_token");
	if (json_is_string(tv))
		explicit_bzero((char *)json_string_value(tv), json_string_length(tv));
	json_decref(j);
	return rc;
}

static int token_from_metadata(struct gce_client *c, struct fv_token *out, struct fv_err *err)
{
	char *body = NULL;
	if (metadata_get(c, "instance/service-accounts/default/token", true, &body, err) < 0)
		return fv_err_prefix(err, "no [gcepd] credentials-file configured");
	struct fv_http_response r = {.status = 200, .body = body, .body_len = strlen(body)};
	int rc = parse_token(c, &r, "the metadata server's token", out, err);
	explicit_bzero(body, r.body_len);
	free(body);
	return rc;
}

/* OAuth's own error shape: {"error": "invalid_grant", "error_description": "…"}. */
static void oauth_error(const struct fv_http_response *r, char *buf, size_t size)
{
	json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *d = json_string_value(json_object_get(j, "error_description"));
	if (e)
		snprintf(buf, size, "%s%s%s", e, d ? ": " : "", d ? d : "");
	else
		fv_http_error_text(r, buf, size);
	json_decref(j);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

static int token_from_key(struct gce_client *c, struct fv_token *out, struct fv_err *err)
{
	const struct sa_key *k = &c->key;
	char *jwt = NULL;
	if (gce_jwt_assertion(k->private_key, k->key_id, k->email, GCE_SCOPE, k->token_uri, (int64_t)time(NULL), &jwt,
			      err) < 0)
		return fv_err_prefix(err, "credentials file '%s'", c->conf->credentials_file);
	char *body = NULL;
	int rc = asprintf(&body, "grant_type=%s&assertion=%s", JWT_GRANT, jwt) < 0 ? -ENOMEM : 0;
	explicit_bzero(jwt, strlen(jwt));
	free(jwt);
	if (rc < 0)
		return fv_err_set(err, ENOMEM, "OAuth token request");
	char what[512];
	snprintf(what, sizeof(what), "OAuth token request for %s to %s", k->email, k->token_uri);
	struct fv_http_response r = {0};
	rc = fv_http_request(c->http,
			     &(struct fv_http_request){.method = "POST", .url = k->token_uri, .body = body,
						       .content_type = "application/x-www-form-urlencoded",
						       .sensitive = true, .what = what},
			     &r, err);
	explicit_bzero(body, strlen(body)); /* it holds the signed assertion */
	free(body);
	if (rc == 0 && r.status != 200) {
		char text[512];
		oauth_error(&r, text, sizeof(text));
		rc = fv_err_msg(err, r.status == 400 || r.status == 401 || r.status == 403 ? EACCES : EIO,
				"%s: HTTP %ld (%s)%s", what, r.status, text,
				r.status == 400 ? ": the credentials file's key was refused" : "");
	} else if (rc == 0) {
		rc = parse_token(c, &r, what, out, err);
	}
	if (r.body)
		explicit_bzero(r.body, r.body_len);
	fv_http_response_free(&r);
	return rc;
}

/* Authenticates and resolves project and zone, which are cached with the
 * token (so that a cached token costs no metadata request either). */
static int fetch_token(void *ud, struct fv_token *out, struct fv_err *err)
{
	struct gce_client *c = ud;
	const struct gce_conf *conf = c->conf;
	int64_t t0 = fv_now_ms();
	_cleanup_free_ char *project = NULL, *zone = NULL;
	if (conf->project)
		project = strdup(conf->project);
	else if (c->has_key && c->key.project)
		project = strdup(c->key.project);
	else if (metadata_get(c, "project/project-id", false, &project, err) < 0)
		return fv_err_prefix(err, "no [gcepd] project configured");
	if (conf->zone) {
		zone = strdup(conf->zone);
	} else {
		_cleanup_free_ char *z = NULL;
		if (metadata_get(c, "instance/zone", false, &z, err) < 0)
			return fv_err_prefix(err, "no [gcepd] zone configured");
		char buf[128];
		gce_zone_from_metadata(z, buf, sizeof(buf));
		zone = strdup(buf);
	}
	if (!project || !zone)
		return fv_err_set(err, ENOMEM, "authentication");
	/* The metadata server's text answers may end in a newline. */
	project[strcspn(project, " \t\r\n")] = '\0';
	if (!*project || !gce_valid_name(zone))
		return fv_err_msg(err, EPROTO, "the metadata server gave project '%s' and zone '%s'", project, zone);
	int rc = c->has_key ? token_from_key(c, out, err) : token_from_metadata(c, out, err);
	if (rc < 0)
		return rc;
	c->fetches++;
	out->data = json_pack("{s:s, s:s}", "project", project, "zone", zone);
	if (!out->data)
		return fv_err_set(err, ENOMEM, "authentication");
	fv_log(LOG_INFO, "got a token for %s from %s in %lld ms (valid for %lld s); project %s, zone %s",
	       c->has_key ? c->key.email : "the instance's service account",
	       c->has_key ? "the OAuth endpoint" : "the metadata server", (long long)(fv_now_ms() - t0),
	       (long long)(out->expires - time(NULL)), project, zone);
	return 0;
}

/* A token cached with the project and zone it was resolved with. */
static bool has_scope(const struct fv_token *t)
{
	return json_string_value(json_object_get(t->data, "project")) &&
	       json_string_value(json_object_get(t->data, "zone"));
}

/* Everything that selects a different token, project or zone; no secret in it. */
static char *cache_key(const struct gce_client *c)
{
	const struct gce_conf *conf = c->conf;
	char *k;
	int n;
	if (c->has_key)
		n = asprintf(&k, "gce-jwt|%s|%s|%s|project=%s|zone=%s|metadata=%s", c->key.token_uri, c->key.email,
			     c->key.key_id ? c->key.key_id : "", conf->project ? conf->project : "",
			     conf->zone ? conf->zone : "", conf->metadata_url);
	else
		n = asprintf(&k, "gce-metadata|%s|project=%s|zone=%s", conf->metadata_url, conf->project ? conf->project : "",
			     conf->zone ? conf->zone : "");
	return n < 0 ? NULL : k;
}

/* GCE's 403 rateLimitExceeded is a transient refusal, unlike other 403s. */
static int classify(long status, const char *body, void *ud)
{
	(void)ud;
	return gce_rate_limited(status, body) ? FV_HTTP_RETRY : FV_HTTP_DEFAULT;
}

struct gce_client *gce_client_new(struct fv_ctx *ctx, const struct gce_conf *conf, struct fv_err *err)
{
	struct gce_client *c = calloc(1, sizeof(*c));
	if (!c) {
		fv_err_set(err, ENOMEM, "GCE client");
		return NULL;
	}
	c->ctx = ctx;
	c->conf = conf;
	struct fv_http_config hc = {
		.connect_timeout_ms = conf->http_connect_timeout_s * 1000,
		.timeout_ms = conf->http_timeout_s * 1000,
		.ca_file = conf->ca_file,
		.user_agent = "flexvol-gcepd",
		.retry = {.max_attempts = (int)conf->http_attempts},
	};
	if (conf->credentials_file) {
		if (key_load(conf->credentials_file, &c->key, err) < 0) {
			gce_client_free(c);
			return NULL;
		}
		c->has_key = true;
	}
	c->http = fv_http_new(&hc, err);
	if (!c->http) {
		gce_client_free(c);
		return NULL;
	}
	if (c->has_key)
		fv_http_add_secret(c->http, c->key.private_key);
	if (!(c->cache_key = cache_key(c))) {
		fv_err_set(err, ENOMEM, "GCE client");
		gce_client_free(c);
		return NULL;
	}
	c->bearer = (struct fv_bearer){
		.cache = {.run_dir = ctx->run_dir, .driver = ctx->provider->name, .key = c->cache_key,
			  .margin_s = conf->token_margin_s},
		.fetch = fetch_token,
		.ud = c,
		.complete = has_scope,
		.header = "Authorization: Bearer %s",
		.http = c->http,
	};
	fv_bearer_init(&c->bearer);
	return c;
}

void gce_client_free(struct gce_client *c)
{
	if (!c)
		return;
	fv_bearer_clear(&c->bearer);
	fv_http_free(c->http);
	key_free(&c->key);
	free(c->cache_key);
	free(c);
}

void gce_client_set_deadline(struct gce_client *c, int64_t deadline_ms)
{
	fv_http_set_deadline(c->http, deadline_ms);
}

int gce_client_token_fetches(const struct gce_client *c)
{
	return c->fetches;
}

int gce_client_scope(struct gce_client *c, const char **project, const char **zone, struct fv_err *err)
{
	if (fv_bearer_ensure(&c->bearer, false, err) < 0)
		return err->code;
	*project = json_string_value(json_object_get(c->bearer.token.data, "project"));
	*zone = json_string_value(json_object_get(c->bearer.token.data, "zone"));
	return 0;
}

int gce_client_instance(struct gce_client *c, char *buf, size_t size, struct fv_err *err)
{
	_cleanup_free_ char *name = NULL;
	if (metadata_get(c, "instance/name", false, &name, err) < 0)
		return fv_err_prefix(err, "cannot tell which instance this machine is");
	name[strcspn(name, " \t\r\n")] = '\0';
	if (!gce_valid_name(name))
		return fv_err_msg(err, EPROTO, "the metadata server gave instance name '%.80s'", name);
	snprintf(buf, size, "%s", name);
	return 0;
}

/* --- compute --- */

int gce_call(struct gce_client *c, const char *method, const char *path, json_t *body, const long *accept,
	     const char *what, long *status, json_t **out, char *reason, size_t rsize, struct fv_err *err)
{
	const char *project, *zone;
	if (out)
		*out = NULL;
	if (reason && rsize)
		reason[0] = '\0';
	*status = 0;
	if (gce_client_scope(c, &project, &zone, err) < 0)
		return err->code;
	_cleanup_free_ char *p = fv_http_escape(project), *z = fv_http_escape(zone), *url = NULL;
	if (!p || !z ||
	    (path[0] == '/' ? asprintf(&url, "%s/projects/%s%s", c->conf->compute_endpoint, p, path)
			    : asprintf(&url, "%s/projects/%s/zones/%s/%s", c->conf->compute_endpoint, p, z, path)) < 0)
		return fv_err_set(err, ENOMEM, "%s", what);
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (body && !text)
		return fv_err_set(err, ENOMEM, "%s", what);
	struct fv_http_response r = {0};
	int rc = fv_http_request(c->http,
				 &(struct fv_http_request){.method = method, .url = url, .body = text, .auth = &c->bearer.auth,
							   .classify = classify, .what = what},
				 &r, err);
	if (rc < 0) {
		fv_http_response_free(&r);
		return rc;
	}
	*status = r.status;
	bool ok = r.status >= 200 && r.status <= 299, accepted = false;
	for (const long *a = accept; !ok && a && *a; a++)
		accepted = r.status == *a;
	if (!ok) {
		if (reason && rsize)
			gce_error_reason(r.body, reason, rsize);
		rc = fv_http_status_error(&r, what, err);
		if (accepted) {
			rc = 0;
			if (out && r.body_len)
				*out = json_loadb(r.body, r.body_len, 0, NULL);
		}
		fv_http_response_free(&r);
		return rc;
	}
	if (out && r.body_len) {
		*out = fv_http_json(&r, err);
		if (!*out) {
			fv_err_prefix(err, "%s", what);
			fv_http_response_free(&r);
			return err->code;
		}
	}
	fv_http_response_free(&r);
	return 0;
}

int gce_wait_operation(struct gce_client *c, json_t *op, struct fv_poll *p, const char *what, json_t **done,
		       struct fv_err *err)
{
	*done = NULL;
	const char *n = json_string_value(json_object_get(op, "name"));
	if (!n || !*n)
		return fv_err_msg(err, EPROTO, "%s: the answer is not an Operation (no name)", what);
	_cleanup_free_ char *name = strdup(n), *esc = fv_http_escape(n), *path = NULL;
	if (!name || !esc || asprintf(&path, "operations/%s", esc) < 0)
		return fv_err_set(err, ENOMEM, "%s", what);
	json_t *cur = json_incref(op);
	char last[16];
	for (;;) {
		snprintf(last, sizeof(last), "%s", gce_op_status(cur));
		if (!strcmp(last, "DONE")) {
			*done = cur;
			return 0;
		}
		json_decref(cur);
		cur = NULL;
		int r = fv_poll_sleep(p);
		if (r == -EINTR)
			return fv_err_msg(err, EINTR, "terminated by SIGTERM while waiting for %s (operation %s)", what, name);
		if (r < 0)
			return fv_err_msg(err, ETIMEDOUT, "%s: operation %s is still %s after %ld s", what, name,
					  last[0] ? last : "pending", fv_poll_elapsed_ms(p) / 1000);
		long status;
		char opwhat[512];
		snprintf(opwhat, sizeof(opwhat), "%s: reading operation %s", what, name);
		if (gce_call(c, "GET", path, NULL, NULL, opwhat, &status, &cur, NULL, 0, err) < 0) {
			if (err->code == -ETIMEDOUT && fv_poll_left_ms(p) == 0)
				return fv_err_msg(err, ETIMEDOUT, "%s: operation %s is still %s after %ld s", what, name,
						  last[0] ? last : "pending", fv_poll_elapsed_ms(p) / 1000);
			return err->code;
		}
	}
}

/* Pages of zoneOperations.list read at most: ours filters to unfinished
 * operations, which GCE keeps few of. */
#define MAX_LIST_PAGES 20

static int list_unfinished(struct gce_client *c, const char *op_type, const char *target_id, json_t *found,
			   struct fv_err *err)
{
	char filter[256], what[128];
	/* AIP-160 expressions, each in parentheses, are ANDed. */
	snprintf(filter, sizeof(filter), "(operationType = \"%s\") (status != \"DONE\") (targetId = %s)", op_type,
		 target_id);
	snprintf(what, sizeof(what), "listing unfinished %s operations", op_type);
	_cleanup_free_ char *esc = fv_http_escape(filter), *token = NULL;
	if (!esc)
		return fv_err_set(err, ENOMEM, "%s", what);
	for (int page = 0; page < MAX_LIST_PAGES; page++) {
		_cleanup_free_ char *path = NULL, *tok = token ? fv_http_escape(token) : NULL;
		if ((token && !tok) || asprintf(&path, "operations?filter=%s%s%s", esc, tok ? "&pageToken=" : "",
						tok ? tok : "") < 0)
			return fv_err_set(err, ENOMEM, "%s", what);
		long status;
		json_t *list = NULL;
		if (gce_call(c, "GET", path, NULL, NULL, what, &status, &list, NULL, 0, err) < 0)
			return err->code;
		size_t i;
		json_t *op;
		/* Checked here too: the filter narrows the answer, the driver decides. */
		json_array_foreach(json_object_get(list, "items"), i, op)
		{
			const char *type = json_string_value(json_object_get(op, "operationType"));
			const char *target = json_string_value(json_object_get(op, "targetId"));
			if (type && !strcmp(type, op_type) && target && !strcmp(target, target_id) &&
			    strcmp(gce_op_status(op), "DONE"))
				json_array_append(found, op);
		}
		free(token);
		const char *next = json_string_value(json_object_get(list, "nextPageToken"));
		token = next && *next ? strdup(next) : NULL;
		json_decref(list);
		if (!token)
			return 0;
	}
	fv_log(LOG_WARNING, "%s: more than %d pages, read the first ones only", what, MAX_LIST_PAGES);
	return 0;
}

int gce_unfinished_operations(struct gce_client *c, const char *op_type, const char *target_id, json_t **ops,
			      struct fv_err *err)
{
	*ops = json_array();
	if (!*ops)
		return fv_err_set(err, ENOMEM, "listing operations");
	if (list_unfinished(c, op_type, target_id, *ops, err) < 0) {
		json_decref(*ops);
		*ops = NULL;
		return err->code;
	}
	return 0;
}

void gce_request_id(char buf[37])
{
	unsigned char rnd[16];
	size_t got = 0;
	while (got < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof(rnd)) {
		/* No entropy source: unique enough for de-duplication, never a secret. */
		uint64_t a = (uint64_t)fv_now_ms() ^ ((uint64_t)getpid() << 32), b = (uint64_t)time(NULL) ^ (uint64_t)&got;
		memcpy(rnd, &a, 8);
		memcpy(rnd + 8, &b, 8);
	}
	gce_uuid_format(rnd, buf);
}
