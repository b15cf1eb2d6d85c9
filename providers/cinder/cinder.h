/* What the cinder driver's files share: doctor.c's checks against the cloud,
 * and the two pieces of cinder.c they use. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "flexvol.h"
#include "openstack.h"

/* doctor.c: Keystone takes the credentials (one authentication), the compute
 * and volume endpoints answer, node is found (node-lookup). */
void cinder_doctor(struct fv_ctx *ctx, const char *node, struct fv_doctor *d);

/* cinder.c, after setup(): the API client, and the Nova server of a node. */
struct os_client *cinder_client(struct fv_ctx *ctx, int64_t deadline_ms, struct fv_err *err);
int cinder_find_server(struct fv_ctx *ctx, const char *node, char *sid, size_t size, struct fv_err *err);
