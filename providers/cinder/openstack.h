/* OpenStack for the cinder driver: cloud.conf, Keystone v3 authentication
 * (password or application credential) with the token cached in the run dir,
 * endpoint selection from the catalog, and JSON calls to Nova and Cinder. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include "err.h"
#include "flexvol.h"
#include "http.h"

/* cloud.conf [Global] (keys as the Kubernetes OpenStack cloud provider reads
 * them) and [flexvol]. Strings are owned; NULL when unset. */
struct os_conf {
	char *auth_url, *username, *user_id, *password;
	char *project_id, *project_name;
	char *user_domain_id, *user_domain_name, *project_domain_id, *project_domain_name;
	char *region, *endpoint_type;
	char *app_cred_id, *app_cred_name, *app_cred_secret;
	char *ca_file, *cert_file, *key_file;  /* cert-file, key-file: TLS client certificate */
	char *trust_id, *trustee_id, *trustee_password; /* Keystone trust: a token scoped to it */
	char *clouds_file, *cloud;       /* use-clouds = true: clouds.yaml fills what is unset */
	bool tls_insecure, use_clouds;
	long http_timeout_s, http_connect_timeout_s, http_attempts;
	long token_margin_s;
};

/* Reads the configuration (values may be double-quoted, as gcfg allows).
 * Credentials are checked later, by os_client_new(). */
int os_conf_load(const struct fv_config *c, struct os_conf *conf, struct fv_err *err);
void os_conf_free(struct os_conf *conf);

/* A gcfg boolean (true/false, yes/no, 1/0, maybe double-quoted); *out kept when unset. */
int os_conf_bool(const struct fv_config *c, const char *section, const char *key, bool *out, struct fv_err *err);

enum os_service { OS_COMPUTE, OS_VOLUME };

struct os_client;

/* A client for one driver call. Authenticates lazily, on the first request
 * (or not at all when the cached token is still good). */
struct os_client *os_client_new(struct fv_ctx *ctx, const struct os_conf *conf, struct fv_err *err);
void os_client_free(struct os_client *c);

/* No request runs past this fv_now_ms() instant. */
void os_client_set_deadline(struct os_client *c, int64_t deadline_ms);

/* The underlying HTTP client (for unauthenticated calls: the metadata service). */
struct fv_http *os_client_http(struct os_client *c);

/* The catalog URL of a service (no trailing slash). */
int os_endpoint(struct os_client *c, enum os_service svc, const char **url, struct fv_err *err);

/* One JSON call: <endpoint of svc><path>. body may be NULL. Returns 0 for a
 * 2xx answer or a status listed in `accept` (0-terminated, may be NULL), with
 * *status set and *out the parsed body (NULL when empty; caller decrefs);
 * otherwise <0 with err saying "<what>: HTTP <status> (<cloud message>)".
 * headers: extra "Name: value" lines (microversions), NULL-terminated. */
int os_call(struct os_client *c, enum os_service svc, const char *method, const char *path, json_t *body,
	    const char *const *headers, const long *accept, const char *what, long *status, json_t **out,
	    struct fv_err *err);

/* How many Keystone authentications this process made (for the log). */
int os_client_auth_count(const struct os_client *c);
