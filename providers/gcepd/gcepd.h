/* What the gcepd driver's files share: doctor.c's checks against the cloud,
 * and the pieces of gcepd.c they use. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "flexvol.h"
#include "gce.h"

/* doctor.c: a token comes (one fetch), project and zone are known, the
 * compute endpoint answers, node's instance is found. */
void gcepd_doctor(struct fv_ctx *ctx, const char *node, struct fv_doctor *d);

/* gcepd.c, after setup(): the API client, and node's instance (its
 * self-link into desc) or -ENOENT. */
struct gce_client *gcepd_client(struct fv_ctx *ctx, int64_t deadline_ms, struct fv_err *err);
int gcepd_find_instance(struct fv_ctx *ctx, const char *node, int64_t deadline_ms, char *desc, size_t size,
			struct fv_err *err);
