/* gcepd's `doctor` checks against the cloud. The core runs them on a
 * scratch run dir, so the token below is a fresh one. */
#include <stdio.h>
#include <string.h>
#include "clock.h"
#include "doctor.h"
#include "gcepd.h"

#define DOCTOR_TIMEOUT_MS (30L * 1000)

void gcepd_doctor(struct fv_ctx *ctx, const char *node, struct fv_doctor *d)
{
	int64_t deadline = fv_now_ms() + DOCTOR_TIMEOUT_MS;
	struct fv_err err = {0};
	struct gce_client *c = gcepd_client(ctx, deadline, &err);
	const char *project, *zone;
	if (!c || gce_client_scope(c, &project, &zone, &err) < 0) {
		fv_doctor_add(d, FV_CHECK_FAIL, "cloud-auth", "%s: check credentials-file (or the node's service account "
			      "and its scopes), metadata-url, project and zone", err.msg);
		return;
	}
	fv_doctor_add(d, FV_CHECK_OK, "cloud-auth", "got a token (%d fetch); project %s, zone %s",
		      gce_client_token_fetches(c), project, zone);
	long status = 0;
	json_t *out = NULL;
	int rc = gce_call(c, "GET", "operations?maxResults=1", NULL, NULL, "listing the zone's operations", &status,
			  &out, NULL, 0, &err);
	json_decref(out);
	if (rc < 0)
		fv_doctor_add(d, FV_CHECK_FAIL, "compute-endpoint", "%s: check compute-endpoint and that this node "
			      "reaches it", err.msg);
	else
		fv_doctor_add(d, FV_CHECK_OK, "compute-endpoint", "compute answers (HTTP %ld)", status);
	char desc[512];
	if (gcepd_find_instance(ctx, node, deadline, desc, sizeof(desc), &err) < 0)
		fv_doctor_add(d, FV_CHECK_FAIL, "node-lookup", "%s (node '%s': give doctor --node <name> or set NODE_NAME "
			      "to the Kubernetes node name)", err.msg, node);
	else
		fv_doctor_add(d, FV_CHECK_OK, "node-lookup", "node '%s' is instance %s", node, desc);
}
