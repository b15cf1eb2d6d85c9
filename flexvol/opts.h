/* The <json> options argument: a flat object of string values. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"

struct fv_opts;

#define FV_KEY_FSTYPE "kubernetes.io/fsType"
#define FV_KEY_READWRITE "kubernetes.io/readwrite"
#define FV_KEY_VOLUME_NAME "kubernetes.io/pvOrVolumeName"
#define FV_KEY_POD_NAME "kubernetes.io/pod.name"
#define FV_KEY_POD_NAMESPACE "kubernetes.io/pod.namespace"
#define FV_KEY_POD_UID "kubernetes.io/pod.uid"
#define FV_KEY_SERVICE_ACCOUNT "kubernetes.io/serviceAccount.name"
#define FV_KEY_FSGROUP "kubernetes.io/mounterArgs.FsGroup"
#define FV_KEY_FSGROUP_OLD "kubernetes.io/fsGroup" /* before Kubernetes 1.15 */
#define FV_KEY_SECRET_PREFIX "kubernetes.io/secret/"

/* Parses and validates; secrets are base64-decoded here, once. */
struct fv_opts *fv_opts_parse(const char *json, struct fv_err *err);
void fv_opts_free(struct fv_opts *o);

/* NULL when absent. */
const char *fv_opts_get(const struct fv_opts *o, const char *key);
/* NULL when absent or empty. */
const char *fv_opts_fstype(const struct fv_opts *o);
bool fv_opts_readonly(const struct fv_opts *o);
const char *fv_opts_volume_name(const struct fv_opts *o);
/* The pod's fsGroup from either key: 1 and *gid set, 0 when absent, <0 when malformed. */
int fv_opts_fsgroup(const struct fv_opts *o, unsigned long *gid, struct fv_err *err);

/* Refuses any key outside kubernetes.io/ that is not in known (a NULL-
 * terminated list), so that a misspelt option fails instead of being ignored. */
/* Refuses a key (outside kubernetes.io/) that is in neither list; more may
 * be NULL (a block driver passes fv_block_spec_keys there). */
int fv_opts_check_known(const struct fv_opts *o, const char *const known[], const char *const more[],
			struct fv_err *err);

/* Decoded secret value by key name (without the prefix); NULL when absent. */
const unsigned char *fv_opts_secret(const struct fv_opts *o, const char *name, size_t *len);
bool fv_opts_has_secrets(const struct fv_opts *o);
/* The options as compact JSON with every secret value "***" (caller frees;
 * NULL when out of memory). */
char *fv_opts_dump_masked(const struct fv_opts *o);
/* Replaces every secret value (raw and base64) inside s with "***", in place. */
void fv_opts_redact(const struct fv_opts *o, char *s);

/* Base64 (RFC 4648, padded standard alphabet). Returns decoded length or -1. */
long fv_base64_decode(const char *in, unsigned char *out, size_t outsize);

/* A size in bytes: plain digits or with a Ki, Mi, Gi or Ti suffix. 0 or -EINVAL/-ERANGE. */
int fv_parse_bytes(const char *s, uint64_t *out);
