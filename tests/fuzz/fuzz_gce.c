/* Every parser of a GCE answer (untrusted: the API, the metadata server, the
 * OAuth endpoint): tokens and OAuth errors (gce.c), operations, errors,
 * resource links, "in use by" messages, disk sizes (gceutil.c), an
 * instance's disk list (gcepd.c). The input is one HTTP body; gce.c and
 * gcepd.c are included for their static functions. */
#define main gcepd_main
#include "../../providers/gcepd/gcepd.c"
#undef main
#include "../../providers/gcepd/gce.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gce_client fuzz_client;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct fv_err err = {0};
	fuzz_client.http = fv_http_new(&(struct fv_http_config){0}, &err);
	if (!fuzz_client.http)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_string(data, size);
	struct fv_http_response r = {.status = 400, .body = body, .body_len = size};
	char buf[512], project[128], zone[GCE_NAME_MAX + 1], name[GCE_NAME_MAX + 1];
	struct fv_err err = {0};
	struct fv_token tok = {0};
	if (parse_token(&fuzz_client, &r, "fuzz", &tok, &err) == 0)
		fv_token_clear(&tok);
	oauth_error(&r, buf, sizeof(buf));
	gce_error_reason(body, buf, sizeof(buf));
	(void)gce_rate_limited(429, body);
	(void)gce_rate_limited(403, body);
	(void)classify(503, body, NULL);
	(void)gce_in_use_by(body, project, sizeof(project), zone, sizeof(zone), name, sizeof(name));
	(void)gce_parse_link(body, "disks", project, sizeof(project), zone, sizeof(zone), name, sizeof(name));
	(void)gce_parse_link(body, "instances", NULL, 0, NULL, 0, name, sizeof(name));
	(void)gce_parse_regional_link(body, "disks", project, sizeof(project), zone, sizeof(zone), name, sizeof(name));
	gce_zone_from_metadata(body, zone, sizeof(zone));
	gce_region_of(body, zone, sizeof(zone));
	(void)detach_race(body, body);
	json_t *j = json_loadb(body, size, 0, NULL);
	if (j) {
		char code[128], message[512];
		(void)gce_op_status(j);
		(void)gce_op_error(j, code, sizeof(code), message, sizeof(message));
		(void)gce_size_gb(j);
		struct volume v = {.pd = "pd-1", .pv = "pv-1", .dev = "pv-1"};
		struct target t = {.instance = "node-1", .project = "my-project", .zone = "us-central1-a",
				   .region = "us-central1"};
		struct attached a;
		find_attached(j, "pv-1", &v, &t, &a);
		struct gcepd gd = {.max_volumes = 2};
		(void)check_limit(&gd, j, &v, &t, &err);
		size_t i;
		json_t *d;
		json_array_foreach(json_object_get(j, "disks"), i, d)
		{
			(void)disk_of(d, name, sizeof(name));
			(void)mode_of(d);
		}
		json_decref(j);
	}
	free(body);
	return 0;
}
