#include "openstack.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "cleanup.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "bearer.h"
#include "tokencache.h"
#include "clouds.h"

#define SECTION "Global"

struct os_client {
	struct fv_ctx *ctx;
	const struct os_conf *conf;
	struct fv_http *http;
	char *cache_key;
	struct fv_bearer bearer;     /* the Keystone token, as X-Auth-Token */
	int auths;
};

/* --- configuration --- */

/* gcfg lets values be double-quoted; inih keeps the quotes. */
static char *dup_value(const struct fv_config *c, const char *section, const char *key)
{
	const char *v = fv_config_get(c, section, key, NULL);
	if (!v)
		return NULL;
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	return n ? strndup(v, n) : NULL;
}

/* The first of several spellings that is set (tenant-* and project-* are synonyms). */
static char *first_of(const struct fv_config *c, const char *const keys[])
{
	for (size_t i = 0; keys[i]; i++) {
		char *v = dup_value(c, SECTION, keys[i]);
		if (v)
			return v;
	}
	return NULL;
}

static int get_long(const struct fv_config *c, const char *key, long def, long min, long max, long *out,
		    struct fv_err *err)
{
	return fv_config_get_long(c, "flexvol", key, def, min, max, out, err);
}

/* gcfg's booleans. */
static int get_bool(const struct fv_config *c, const char *section, const char *key, bool *out, struct fv_err *err)
{
	_cleanup_free_ char *v = dup_value(c, section, key);
	if (!v)
		return 0;
	if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
		*out = false;
	else
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] %s must be true or false", fv_config_path(c),
				  section, key);
	return 0;
}

int os_conf_bool(const struct fv_config *c, const char *section, const char *key, bool *out, struct fv_err *err)
{
	return get_bool(c, section, key, out, err);
}

int os_conf_load(const struct fv_config *c, struct os_conf *conf, struct fv_err *err)
{
	*conf = (struct os_conf){0};
	conf->auth_url = dup_value(c, SECTION, "auth-url");
	conf->username = dup_value(c, SECTION, "username");
	conf->user_id = dup_value(c, SECTION, "user-id");
	conf->password = dup_value(c, SECTION, "password");
	conf->project_id = first_of(c, (const char *const[]){"tenant-id", "project-id", NULL});
	conf->project_name = first_of(c, (const char *const[]){"tenant-name", "project-name", NULL});
	/* domain-* is the default for both the user's and the project's domain. */
	conf->user_domain_id = first_of(c, (const char *const[]){"user-domain-id", "domain-id", NULL});
	conf->user_domain_name = first_of(c, (const char *const[]){"user-domain-name", "domain-name", NULL});
	conf->project_domain_id =
		first_of(c, (const char *const[]){"tenant-domain-id", "project-domain-id", "domain-id", NULL});
	conf->project_domain_name =
		first_of(c, (const char *const[]){"tenant-domain-name", "project-domain-name", "domain-name", NULL});
	conf->region = dup_value(c, SECTION, "region");
	conf->endpoint_type = dup_value(c, SECTION, "os-endpoint-type");
	conf->app_cred_id = dup_value(c, SECTION, "application-credential-id");
	conf->app_cred_name = dup_value(c, SECTION, "application-credential-name");
	conf->app_cred_secret = dup_value(c, SECTION, "application-credential-secret");
	conf->ca_file = dup_value(c, SECTION, "ca-file");
	conf->cert_file = dup_value(c, SECTION, "cert-file");
	conf->key_file = dup_value(c, SECTION, "key-file");
	conf->trust_id = dup_value(c, SECTION, "trust-id");
	conf->trustee_id = dup_value(c, SECTION, "trustee-id");
	conf->trustee_password = dup_value(c, SECTION, "trustee-password");
	conf->clouds_file = dup_value(c, SECTION, "clouds-file");
	conf->cloud = dup_value(c, SECTION, "cloud");
	if (get_bool(c, SECTION, "tls-insecure", &conf->tls_insecure, err) < 0 ||
	    get_bool(c, SECTION, "use-clouds", &conf->use_clouds, err) < 0)
		return err->code;
	/* [Global] wins; clouds.yaml fills the rest (the cloud provider's order). */
	if (conf->use_clouds && os_clouds_fill(conf, conf->clouds_file, conf->cloud, err) < 0)
		return fv_err_prefix(err, "configuration '%s'", fv_config_path(c));
	if ((conf->cert_file != NULL) != (conf->key_file != NULL))
		return fv_err_msg(err, EINVAL, "configuration '%s': [Global] %s is set but not %s: a client certificate "
				  "needs both", fv_config_path(c), conf->cert_file ? "cert-file" : "key-file",
				  conf->cert_file ? "key-file" : "cert-file");
	if (conf->endpoint_type && strcmp(conf->endpoint_type, "public") && strcmp(conf->endpoint_type, "internal") &&
	    strcmp(conf->endpoint_type, "admin"))
		return fv_err_msg(err, EINVAL,
				  "configuration '%s': [Global] os-endpoint-type must be public, internal or admin",
				  fv_config_path(c));
	if (get_long(c, "http-timeout", 30, 1, 600, &conf->http_timeout_s, err) < 0 ||
	    get_long(c, "http-connect-timeout", 10, 1, 120, &conf->http_connect_timeout_s, err) < 0 ||
	    get_long(c, "http-attempts", 5, 1, 20, &conf->http_attempts, err) < 0 ||
	    get_long(c, "token-margin", 60, 0, 3600, &conf->token_margin_s, err) < 0)
		return err->code;
	return 0;
}

static void free_secret(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void os_conf_free(struct os_conf *conf)
{
	char **all[] = {&conf->auth_url, &conf->username, &conf->user_id, &conf->password, &conf->project_id,
			&conf->project_name, &conf->user_domain_id, &conf->user_domain_name, &conf->project_domain_id,
			&conf->project_domain_name, &conf->region, &conf->endpoint_type, &conf->app_cred_id,
			&conf->app_cred_name, &conf->app_cred_secret, &conf->ca_file, &conf->cert_file, &conf->key_file,
			&conf->trust_id, &conf->trustee_id, &conf->trustee_password, &conf->clouds_file, &conf->cloud};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		free_secret(all[i]);
}

static const char *interface_of(const struct os_conf *c)
{
	return c->endpoint_type ? c->endpoint_type : "public";
}

/* --- Keystone --- */

static bool app_cred(const struct os_conf *c)
{
	return c->app_cred_id || c->app_cred_name;
}

/* What the configuration lacks for authentication, or NULL. */
static const char *missing_credentials(const struct os_conf *c)
{
	if (!c->auth_url)
		return "auth-url";
	if (c->trust_id) {
		/* The trustee authenticates; the trust gives the project. */
		if (c->trustee_id)
			return c->trustee_password ? NULL : "trustee-password (with trustee-id)";
		if (!c->user_id && !c->username)
			return "trustee-id, user-id or username (with trust-id)";
		if (!c->password)
			return "password";
		if (!c->user_id && !c->user_domain_id && !c->user_domain_name)
			return "user-domain-name or domain-name (with username)";
		return NULL;
	}
	if (app_cred(c)) {
		if (!c->app_cred_secret)
			return "application-credential-secret";
		if (!c->app_cred_id && !c->user_id && !c->username)
			return "user-id or username (with application-credential-name)";
		if (!c->app_cred_id && !c->user_id && !c->user_domain_id && !c->user_domain_name)
			return "user-domain-name or domain-name (with username)";
		return NULL;
	}
	if (!c->user_id && !c->username)
		return "username or user-id";
	if (!c->password)
		return "password";
	if (!c->user_id && !c->user_domain_id && !c->user_domain_name)
		return "user-domain-name or domain-name (with username)";
	if (!c->project_id && !c->project_name)
		return "tenant-id or tenant-name";
	if (!c->project_id && !c->project_domain_id && !c->project_domain_name)
		return "tenant-domain-name or domain-name (with tenant-name)";
	return NULL;
}

static json_t *domain_ref(const char *id, const char *name)
{
	return id ? json_pack("{s:s}", "id", id) : json_pack("{s:s}", "name", name);
}

static json_t *user_ref(const struct os_conf *c, const char *secret_key, const char *secret)
{
	json_t *u = c->user_id ? json_pack("{s:s}", "id", c->user_id)
			       : json_pack("{s:s, s:o}", "name", c->username, "domain",
					   domain_ref(c->user_domain_id, c->user_domain_name));
	if (u && secret_key)
		json_object_set_new(u, secret_key, json_string(secret));
	return u;
}

/* The request body of A1.1 / A1.2 (cloud-apis.md): an application
 * credential carries no scope; a password always asks for a project scope,
 * since an unscoped token has no catalog. */
static json_t *auth_body(const struct os_conf *c)
{
	json_t *identity;
	if (app_cred(c)) {
		json_t *ac = c->app_cred_id ? json_pack("{s:s, s:s}", "id", c->app_cred_id, "secret", c->app_cred_secret)
					    : json_pack("{s:s, s:s, s:o}", "name", c->app_cred_name, "secret",
							c->app_cred_secret, "user", user_ref(c, NULL, NULL));
		identity = json_pack("{s:[s], s:o}", "methods", "application_credential", "application_credential", ac);
		return json_pack("{s:{s:o}}", "auth", "identity", identity);
	}
	if (c->trust_id) {
		/* A trust-scoped token (OS-TRUST): the trustee's password, the
		 * trust as the scope; Keystone takes the project from the trust. */
		json_t *u = c->trustee_id ? json_pack("{s:s, s:s}", "id", c->trustee_id, "password", c->trustee_password)
					  : user_ref(c, "password", c->password);
		identity = json_pack("{s:[s], s:{s:o}}", "methods", "password", "password", "user", u);
		return json_pack("{s:{s:o, s:{s:{s:s}}}}", "auth", "identity", identity, "scope", "OS-TRUST:trust", "id",
				 c->trust_id);
	}
	identity = json_pack("{s:[s], s:{s:o}}", "methods", "password", "password", "user",
			     user_ref(c, "password", c->password));
	json_t *project = c->project_id ? json_pack("{s:s}", "id", c->project_id)
					: json_pack("{s:s, s:o}", "name", c->project_name, "domain",
						    domain_ref(c->project_domain_id, c->project_domain_name));
	return json_pack("{s:{s:o, s:{s:o}}}", "auth", "identity", identity, "scope", "project", project);
}

static char *auth_tokens_url(const struct os_conf *c)
{
	/* Operators write both ".../v3" and "...": the token API is under v3. */
	size_t n = strlen(c->auth_url);
	while (n && c->auth_url[n - 1] == '/')
		n--;
	bool v3 = n >= 3 && !strncmp(c->auth_url + n - 3, "/v3", 3);
	char *url;
	if (asprintf(&url, "%.*s%s/auth/tokens", (int)n, c->auth_url, v3 ? "" : "/v3") < 0)
		return NULL;
	return url;
}

static bool endpoint_matches(json_t *ep, const char *iface, const char *region)
{
	const char *i = json_string_value(json_object_get(ep, "interface"));
	if (!i || strcmp(i, iface))
		return false;
	if (!region)
		return true;
	const char *rid = json_string_value(json_object_get(ep, "region_id"));
	const char *r = json_string_value(json_object_get(ep, "region"));
	return (rid && !strcmp(rid, region)) || (r && !strcmp(r, region));
}

/* API-SIG endpoint selection: service type (in order of preference), then
 * interface, then region; the first match wins. volumev2 and volume are the
 * older APIs and are never taken. */
static char *pick_endpoint(json_t *catalog, const char *const types[], const char *iface, const char *region)
{
	for (size_t t = 0; types[t]; t++) {
		size_t i;
		json_t *svc;
		json_array_foreach(catalog, i, svc)
		{
			const char *type = json_string_value(json_object_get(svc, "type"));
			if (!type || strcmp(type, types[t]))
				continue;
			size_t k;
			json_t *ep;
			json_array_foreach(json_object_get(svc, "endpoints"), k, ep)
			{
				const char *url = json_string_value(json_object_get(ep, "url"));
				if (url && endpoint_matches(ep, iface, region)) {
					size_t n = strlen(url);
					while (n && url[n - 1] == '/')
						n--;
					return strndup(url, n);
				}
			}
		}
	}
	return NULL;
}

static const char *const compute_types[] = {"compute", NULL};
static const char *const volume_types[] = {"volumev3", "block-storage", NULL};

static int authenticate(void *ud, struct fv_token *out, struct fv_err *err)
{
	struct os_client *c = ud;
	const struct os_conf *conf = c->conf;
	const char *missing = missing_credentials(conf);
	if (missing)
		return fv_err_msg(err, EINVAL, "configuration '%s' lacks [Global] %s: cannot authenticate to Keystone",
				  fv_config_path(c->ctx->config), missing);
	_cleanup_free_ char *url = auth_tokens_url(conf);
	json_t *body = auth_body(conf);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!url || !text) {
		free(text);
		return fv_err_set(err, ENOMEM, "Keystone authentication");
	}
	struct fv_http_response r = {0};
	int64_t t0 = fv_now_ms();
	int rc = fv_http_request(c->http,
				 &(struct fv_http_request){.method = "POST", .url = url, .body = text,
							   .what = "Keystone authentication"},
				 &r, err);
	explicit_bzero(text, strlen(text)); /* it holds the password */
	free(text);
	if (rc < 0) {
		fv_http_response_free(&r);
		return rc;
	}
	c->auths++;
	if (r.status != 201 && r.status != 200) {
		rc = fv_http_status_error(&r, "Keystone authentication", err);
		if (r.status == 401)
			fv_err_prefix(err, "Keystone refused the credentials in '%s'", fv_config_path(c->ctx->config));
		fv_http_response_free(&r);
		return rc;
	}
	const char *subject = fv_http_header(&r, "X-Subject-Token");
	json_t *j = fv_http_json(&r, err);
	if (!subject || !*subject || !j) {
		json_decref(j);
		fv_http_response_free(&r);
		return j ? fv_err_msg(err, EPROTO, "Keystone authentication: no X-Subject-Token in the reply") : err->code;
	}
	out->value = strdup(subject);
	fv_http_add_secret(c->http, subject);
	explicit_bzero((char *)subject, strlen(subject)); /* the response's copy of the token */
	fv_http_response_free(&r);
	json_t *tok = json_object_get(j, "token");
	int64_t exp = fv_parse_utc(json_string_value(json_object_get(tok, "expires_at")));
	int64_t iss = fv_parse_utc(json_string_value(json_object_get(tok, "issued_at")));
	int64_t now = time(NULL);
	/* Count the lifetime on our own clock: Keystone's may be skewed. */
	out->expires = exp < 0 ? now + 300 : iss > 0 && exp > iss ? now + (exp - iss) : exp;
	json_t *catalog = json_object_get(tok, "catalog");
	const char *iface = interface_of(conf);
	_cleanup_free_ char *compute = pick_endpoint(catalog, compute_types, iface, conf->region);
	_cleanup_free_ char *volume = pick_endpoint(catalog, volume_types, iface, conf->region);
	const char *project = json_string_value(json_object_get(json_object_get(tok, "project"), "id"));
	if (!out->value || !compute || !volume) {
		json_decref(j);
		if (!out->value)
			return fv_err_set(err, ENOMEM, "Keystone authentication");
		return fv_err_msg(err, ENOENT,
				  "the Keystone catalog has no %s endpoint with interface '%s'%s%s (is [Global] region right?)",
				  compute ? "volumev3/block-storage" : "compute", iface, conf->region ? " in region " : "",
				  conf->region ? conf->region : "");
	}
	out->data = json_pack("{s:s, s:s, s:s?}", "compute", compute, "volume", volume, "project", project);
	json_decref(j);
	fv_log(LOG_INFO, "authenticated to Keystone as %s (%s) in %lld ms; token valid for %lld s",
	       conf->trust_id && conf->trustee_id ? conf->trustee_id
	       : conf->user_id			  ? conf->user_id
	       : conf->username			  ? conf->username
	       : conf->app_cred_id		  ? conf->app_cred_id
						  : "?",
	       conf->trust_id ? "trust" : app_cred(conf) ? "application credential" : "password", (long long)(fv_now_ms() - t0),
	       (long long)(out->expires - now));
	return out->data ? 0 : fv_err_set(err, ENOMEM, "Keystone authentication");
}

/* Everything that selects a different token; no secret in it. */
static char *cache_key(const struct os_conf *c)
{
	char *k;
	if (asprintf(&k, "keystone|%s|user=%s@%s|project=%s@%s|appcred=%s|trust=%s/%s|region=%s|iface=%s",
		     c->auth_url ? c->auth_url : "", c->user_id ? c->user_id : c->username ? c->username : "",
		     c->user_domain_id ? c->user_domain_id : c->user_domain_name ? c->user_domain_name : "",
		     c->project_id ? c->project_id : c->project_name ? c->project_name : "",
		     c->project_domain_id ? c->project_domain_id : c->project_domain_name ? c->project_domain_name : "",
		     c->app_cred_id ? c->app_cred_id : c->app_cred_name ? c->app_cred_name : "",
		     c->trust_id ? c->trust_id : "", c->trustee_id ? c->trustee_id : "", c->region ? c->region : "",
		     interface_of(c)) < 0)
		return NULL;
	return k;
}

struct os_client *os_client_new(struct fv_ctx *ctx, const struct os_conf *conf, struct fv_err *err)
{
	struct os_client *c = calloc(1, sizeof(*c));
	if (!c) {
		fv_err_set(err, ENOMEM, "OpenStack client");
		return NULL;
	}
	c->ctx = ctx;
	c->conf = conf;
	struct fv_http_config hc = {
		.connect_timeout_ms = conf->http_connect_timeout_s * 1000,
		.timeout_ms = conf->http_timeout_s * 1000,
		.ca_file = conf->ca_file,
		.cert_file = conf->cert_file,
		.key_file = conf->key_file,
		.insecure = conf->tls_insecure,
		.user_agent = "flexvol-cinder",
		/* Nova answers 409 while the instance is locked or busy with another task. */
		.retry = {.max_attempts = (int)conf->http_attempts, .retry_conflict = true},
	};
	c->http = fv_http_new(&hc, err);
	c->cache_key = cache_key(conf);
	if (!c->http || !c->cache_key) {
		if (c->http && !c->cache_key)
			fv_err_set(err, ENOMEM, "OpenStack client");
		os_client_free(c);
		return NULL;
	}
	fv_http_add_secret(c->http, conf->password);
	fv_http_add_secret(c->http, conf->app_cred_secret);
	fv_http_add_secret(c->http, conf->trustee_password);
	if (conf->tls_insecure)
		fv_log(LOG_WARNING, "tls-insecure = true: TLS certificates of the cloud are not verified");
	c->bearer = (struct fv_bearer){
		.cache = {.run_dir = ctx->run_dir, .driver = ctx->provider->name, .key = c->cache_key,
			  .margin_s = conf->token_margin_s},
		.fetch = authenticate,
		.ud = c,
		.header = "X-Auth-Token: %s",
		.http = c->http,
	};
	fv_bearer_init(&c->bearer);
	return c;
}

void os_client_free(struct os_client *c)
{
	if (!c)
		return;
	fv_bearer_clear(&c->bearer);
	fv_http_free(c->http);
	free(c->cache_key);
	free(c);
}

void os_client_set_deadline(struct os_client *c, int64_t deadline_ms)
{
	fv_http_set_deadline(c->http, deadline_ms);
}

struct fv_http *os_client_http(struct os_client *c)
{
	return c->http;
}

int os_client_auth_count(const struct os_client *c)
{
	return c->auths;
}

int os_endpoint(struct os_client *c, enum os_service svc, const char **url, struct fv_err *err)
{
	if (fv_bearer_ensure(&c->bearer, false, err) < 0)
		return err->code;
	const char *u = json_string_value(json_object_get(c->bearer.token.data, svc == OS_COMPUTE ? "compute" : "volume"));
	if (!u) {
		/* A cache entry from an older driver without endpoints: authenticate. */
		if (fv_bearer_ensure(&c->bearer, true, err) < 0)
			return err->code;
		u = json_string_value(json_object_get(c->bearer.token.data, svc == OS_COMPUTE ? "compute" : "volume"));
		if (!u)
			return fv_err_msg(err, ENOENT, "no %s endpoint known", svc == OS_COMPUTE ? "compute" : "volume");
	}
	*url = u;
	return 0;
}

int os_call(struct os_client *c, enum os_service svc, const char *method, const char *path, json_t *body,
	    const char *const *headers, const long *accept, const char *what, long *status, json_t **out,
	    struct fv_err *err)
{
	const char *base;
	if (out)
		*out = NULL;
	if (os_endpoint(c, svc, &base, err) < 0)
		return err->code;
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s%s", base, path) < 0)
		return fv_err_set(err, ENOMEM, "%s", what);
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (body && !text)
		return fv_err_set(err, ENOMEM, "%s", what);
	struct fv_http_response r = {0};
	int rc = fv_http_request(c->http,
				 &(struct fv_http_request){.method = method, .url = url, .body = text, .headers = headers,
							   .auth = &c->bearer.auth, .what = what},
				 &r, err);
	if (rc < 0) {
		fv_http_response_free(&r);
		return rc;
	}
	*status = r.status;
	bool ok = r.status >= 200 && r.status <= 299;
	for (const long *a = accept; !ok && a && *a; a++)
		ok = r.status == *a;
	if (!ok) {
		rc = fv_http_status_error(&r, what, err);
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
