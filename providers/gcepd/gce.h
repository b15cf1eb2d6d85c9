/* Google Compute Engine for the gcepd driver: configuration, credentials
 * (the metadata server's service-account token, or a service-account JSON
 * key and the JWT-bearer flow), the token cached in the run dir, and JSON
 * calls to compute v1 with zonal operations polled to DONE. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "err.h"
#include "flexvol.h"
#include "retry.h"

#define GCE_DEFAULT_METADATA_URL "http://metadata.google.internal"
#define GCE_DEFAULT_COMPUTE_ENDPOINT "https://compute.googleapis.com/compute/v1"
#define GCE_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCE_SCOPE "https://www.googleapis.com/auth/compute"

/* [gcepd] of gcepd.conf. Strings are owned; NULL when unset. */
struct gce_conf {
	char *project, *zone;            /* NULL: from the metadata server (project also from the key) */
	char *credentials_file;          /* NULL: the metadata server's token */
	char *metadata_url;              /* no trailing slash; GCE_METADATA_HOST is honoured */
	char *compute_endpoint;          /* no trailing slash */
	char *ca_file;
	long http_timeout_s, http_connect_timeout_s, http_attempts, token_margin_s;
};

int gce_conf_load(const struct fv_config *c, const char *section, struct gce_conf *conf, struct fv_err *err);
void gce_conf_free(struct gce_conf *conf);

struct gce_client;

/* A client for one driver call. With a credentials file the key is read
 * (and its mode checked) here; the token, project and zone come on first
 * use, from the cache in the run dir when it still holds a good token. */
struct gce_client *gce_client_new(struct fv_ctx *ctx, const struct gce_conf *conf, struct fv_err *err);
void gce_client_free(struct gce_client *c);

/* No request runs past this fv_now_ms() instant. */
void gce_client_set_deadline(struct gce_client *c, int64_t deadline_ms);

/* The project and zone calls go to (configuration, else key file, else
 * metadata server; cached with the token). The strings belong to the current
 * token: copy them, a 401 on any later request replaces it. */
int gce_client_scope(struct gce_client *c, const char **project, const char **zone, struct fv_err *err);

/* The name of the instance this machine is, from the metadata server (which
 * answers only the machine itself): one request. */
int gce_client_instance(struct gce_client *c, char *buf, size_t size, struct fv_err *err);

/* One compute call on <endpoint>/projects/<p>/zones/<z>/<path>, or on
 * <endpoint>/projects/<p><path> when path starts with '/' (another zone, a
 * region); path segments already escaped. 2xx: 0, *out the parsed body. A status listed in accept
 * (0-terminated, may be NULL): 0 as well, with *out the error body (may be
 * NULL), reason its errors[].reason, and err preset to the message a caller
 * that gives up returns. Anything else: <0, err "<what>: HTTP <status>
 * (<message>)". 403 rateLimitExceeded, 429 and 5xx are retried with backoff;
 * a 401 gets one new token. *status is always set when a response came. */
int gce_call(struct gce_client *c, const char *method, const char *path, json_t *body, const long *accept,
	     const char *what, long *status, json_t **out, char *reason, size_t rsize, struct fv_err *err);

/* Polls the zonal operation op (as the POST returned it) until DONE, within
 * p's deadline; *done is the final Operation (caller decrefs). Check it with
 * gce_op_error(). -ETIMEDOUT names the operation and its last status. */
int gce_wait_operation(struct gce_client *c, json_t *op, struct fv_poll *p, const char *what, json_t **done,
		       struct fv_err *err);

/* The zone's operations of type op_type on the resource with numeric ID
 * target_id that are not DONE yet, as a JSON array (caller decrefs). */
int gce_unfinished_operations(struct gce_client *c, const char *op_type, const char *target_id, json_t **ops,
			      struct fv_err *err);

/* A fresh requestId (a version-4 UUID). */
void gce_request_id(char buf[37]);

/* Token fetches (metadata or OAuth) this process made. */
int gce_client_token_fetches(const struct gce_client *c);
