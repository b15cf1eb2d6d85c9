/* The pure parts of the gcepd driver: names, resource links, error and
 * operation bodies, JWT encoding. No I/O and no libcurl or OpenSSL, so
 * tests/unit/test_gcepd.c exercises them directly. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"

/* GCE names (disks, device names, instances): [a-z]([-a-z0-9]{0,61}[a-z0-9])? */
#define GCE_NAME_MAX 63
bool gce_valid_name(const char *s);

/* The deviceName a PV is attached under, from its name alone, so that
 * detach (which kubelet gives only the PV name) needs no stored state.
 * A PV name that is already a valid GCE name is used as it is (the usual
 * pvc-<uid>); any other is lower-cased, every character outside [a-z0-9-]
 * becomes '-', "pv-" goes in front unless it starts with a letter, it is cut
 * to 53 characters and "-<8 hex digits of FNV-1a 32 of the original name>" is
 * appended, which keeps distinct names distinct. This is a stable contract:
 * attachments made by one version are detached by the next.
 * buf needs GCE_NAME_MAX + 1 bytes. 0, or -EINVAL for an empty name. */
int gce_device_name(const char *pv, char *buf, size_t size, struct fv_err *err);

/* The instance behind a Kubernetes node name: the part before the first dot
 * (a node named after the instance's hostname, name.c.project.internal). */
void gce_instance_name(const char *node, char *buf, size_t size);

/* Splits a resource link, full (https://…/compute/v1/projects/P/zones/Z/disks/D)
 * or partial (projects/P/zones/Z/disks/D, zones/Z/disks/D), of the given kind
 * ("disks", "instances", "operations"). Out-parameters may be NULL; project
 * is "" in a partial link without it. true when the link has that shape. */
bool gce_parse_link(const char *link, const char *kind, char *project, size_t psize, char *zone, size_t zsize,
		    char *name, size_t nsize);

/* The same for a regional resource: [projects/P/] regions/R/<kind>/NAME. */
bool gce_parse_regional_link(const char *link, const char *kind, char *project, size_t psize, char *region,
			     size_t rsize, char *name, size_t nsize);

/* The region of a zone: us-central1-a -> us-central1 (all before the last '-'). */
void gce_region_of(const char *zone, char *buf, size_t size);

/* The zone of the metadata server's instance/zone (projects/N/zones/Z): Z. */
void gce_zone_from_metadata(const char *value, char *buf, size_t size);

/* An API error body: the first errors[].reason, else error.status
 * (RESOURCE_EXHAUSTED), else "". */
void gce_error_reason(const char *body, char *buf, size_t size);

/* A transient quota refusal: 403 rateLimitExceeded, userRateLimitExceeded
 * or RESOURCE_OPERATION_RATE_EXCEEDED, and every 429. Quotas refill per
 * minute, so they are retried with backoff like a 5xx. */
bool gce_rate_limited(long status, const char *body);

/* The instance named in an "already being used by '…/instances/NAME'"
 * message (resourceInUseByAnotherResource): true and buf set. */
bool gce_in_use_by(const char *message, char *project, size_t psize, char *zone, size_t zsize, char *name,
		   size_t nsize);

/* A zonal Operation: its status ("PENDING", "RUNNING", "DONE"; "" when absent). */
const char *gce_op_status(json_t *op);
/* A DONE operation's failure: true and code/message set from error.errors[0]
 * (code falls back to httpErrorMessage). false when it succeeded. */
bool gce_op_error(json_t *op, char *code, size_t csize, char *message, size_t msize);

/* A disk's sizeGb (an int64 sent as a JSON string, or a number): >= 0, or -1. */
long long gce_size_gb(json_t *disk);

/* RFC 4648 §5 base64url without padding (caller frees). */
char *gce_base64url(const unsigned char *data, size_t len);

/* The unsigned part of a JWT-bearer assertion: base64url(header) "."
 * base64url(claims), with header {"alg":"RS256","typ":"JWT","kid":key_id}
 * (kid omitted when NULL) and claims {"iss","scope","aud","iat","exp"} where
 * exp = iat + lifetime (Google accepts at most 3600 s). Caller frees. */
char *gce_jwt_signing_input(const char *key_id, const char *email, const char *scope, const char *audience,
			    int64_t iat, long lifetime);

/* An RFC 4122 version-4 UUID string from 16 random bytes (the requestId that
 * makes a retried POST safe): buf needs 37 bytes. */
void gce_uuid_format(const unsigned char rnd[16], char buf[37]);
