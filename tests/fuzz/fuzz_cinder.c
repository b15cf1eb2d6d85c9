/* Every parser of an OpenStack answer (untrusted: a cloud API or whatever
 * answers in its place): Keystone's token body and catalog (openstack.c),
 * Cinder's volume (status, attachments, metadata) and Nova's metadata
 * (cinder.c), the shared HTTP error text and time stamps; and clouds.yaml
 * (clouds.c, libyaml), which the same bytes are read as. The input is one
 * HTTP body or file. Both files are included for their static functions. */
#define main cinder_main
#include "../../providers/cinder/cinder.c"
#undef main
#include "../../providers/cinder/openstack.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void volume_checks(json_t *vol)
{
	static const char sid[] = "5a85a92f-d9df-4539-9a1c-000000000001";
	(void)vol_status(vol);
	(void)vol_attached_to(vol, sid);
	(void)vol_other_server(vol, sid);
	(void)vol_multiattach(vol);
	(void)vol_meta(vol, PV_META_KEY);
	(void)vol_meta(vol, NODE_META_KEY);
	(void)status_is_error(vol_status(vol));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_string(data, size);
	struct fv_http_response r = {.status = 400, .body = body, .body_len = size};
	char text[512];
	fv_http_error_text(&r, text, sizeof(text));
	struct fv_err err = {0};
	json_t *j = fv_http_json(&r, &err);
	if (j) {
		json_t *tok = json_object_get(j, "token");
		(void)fv_parse_utc(json_string_value(json_object_get(tok, "expires_at")));
		(void)fv_parse_utc(json_string_value(json_object_get(tok, "issued_at")));
		json_t *catalogs[] = {json_object_get(tok, "catalog"), j};
		for (size_t i = 0; i < 2; i++) {
			free(pick_endpoint(catalogs[i], compute_types, "public", NULL));
			free(pick_endpoint(catalogs[i], volume_types, "internal", "RegionOne"));
		}
		volume_checks(json_object_get(j, "volume"));
		volume_checks(j);
		char sid[64];
		(void)uuid_from_meta_data(j, "node-1", "the metadata service", sid, sizeof(sid), &err);
		json_decref(j);
	}
	(void)fv_parse_utc(body);
	(void)is_uuid(body);
	/* The same bytes as a clouds.yaml: every field a cloud entry may fill. */
	struct os_conf conf = {0};
	(void)os_clouds_fill_text(&conf, body, size, "fuzz", "openstack", &err);
	os_conf_free(&conf);
	free(body);
	return 0;
}
