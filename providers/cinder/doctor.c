/* cinder's `doctor` checks against the cloud. The core runs them on a
 * scratch run dir, so the authentication below is a real one. */
#include <stdio.h>
#include <string.h>
#include "cinder.h"
#include "clock.h"
#include "config.h"
#include "doctor.h"

#define DOCTOR_TIMEOUT_MS (30L * 1000)

static void endpoint(struct fv_doctor *d, struct os_client *c, enum os_service svc, const char *path)
{
	const char *name = svc == OS_COMPUTE ? "compute-endpoint" : "volume-endpoint";
	const char *url = "";
	char what[128];
	snprintf(what, sizeof(what), "GET %s", path);
	struct fv_err err = {0};
	long status = 0;
	json_t *out = NULL;
	int rc = os_endpoint(c, svc, &url, &err);
	if (rc == 0)
		rc = os_call(c, svc, "GET", path, NULL, NULL, NULL, what, &status, &out, &err);
	json_decref(out);
	if (rc < 0)
		fv_doctor_add(d, FV_CHECK_FAIL, name, "%s%s%s: check the catalog's endpoint, [Global] region and "
			      "os-endpoint-type, and that this node reaches it", url, *url ? ": " : "", err.msg);
	else
		fv_doctor_add(d, FV_CHECK_OK, name, "%s answers (HTTP %ld)", url, status);
}

void cinder_doctor(struct fv_ctx *ctx, const char *node, struct fv_doctor *d)
{
	struct fv_err err = {0};
	/* Node-side calls need no credentials: a worker may have none. */
	if (!fv_config_get(ctx->config, "Global", "auth-url", NULL)) {
		fv_doctor_add(d, FV_CHECK_WARN, "cloud-auth", "no [Global] auth-url: this node cannot run attach or "
			      "detach (fine if the controller-manager runs elsewhere with its own configuration)");
		return;
	}
	struct os_client *c = cinder_client(ctx, fv_now_ms() + DOCTOR_TIMEOUT_MS, &err);
	const char *url;
	if (!c || os_endpoint(c, OS_COMPUTE, &url, &err) < 0) {
		fv_doctor_add(d, FV_CHECK_FAIL, "cloud-auth", "%s: fix [Global] in the configuration", err.msg);
		return;
	}
	fv_doctor_add(d, FV_CHECK_OK, "cloud-auth", "Keystone accepted the credentials (%d authentication)",
		      os_client_auth_count(c));
	endpoint(d, c, OS_COMPUTE, "/servers?limit=1");
	endpoint(d, c, OS_VOLUME, "/volumes?limit=1");
	char sid[128];
	if (cinder_find_server(ctx, node, sid, sizeof(sid), &err) < 0)
		fv_doctor_add(d, FV_CHECK_FAIL, "node-lookup", "%s (node '%s': give doctor --node <name> or set NODE_NAME "
			      "to the Kubernetes node name; see [flexvol] node-lookup)", err.msg, node);
	else
		fv_doctor_add(d, FV_CHECK_OK, "node-lookup", "node '%s' is Nova server %s", node, sid);
}
