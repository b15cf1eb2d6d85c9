/* The driver options kubelet passes (untrusted: they come from pod specs):
 * fv_opts_parse and everything a driver then asks of the options. */
#include <stdbool.h>
#include "fuzz.h"
#include "opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = fuzz_string(data, size);
	struct fv_err err = {0};
	struct fv_opts *o = fv_opts_parse(json, &err);
	if (o) {
		static const char *const known[] = {"image", "size", "volumeID", "pdName", NULL};
		(void)fv_opts_fstype(o);
		(void)fv_opts_readonly(o);
		(void)fv_opts_volume_name(o);
		unsigned long gid;
		(void)fv_opts_fsgroup(o, &gid, &err);
		(void)fv_opts_check_known(o, known, NULL, &err);
		(void)fv_opts_has_secrets(o);
		size_t n;
		(void)fv_opts_secret(o, "password", &n);
		const char *s = fv_opts_get(o, "size");
		uint64_t bytes;
		if (s)
			(void)fv_parse_bytes(s, &bytes);
		/* Redaction runs over whatever text may be logged: the input itself. */
		fv_opts_redact(o, json);
		fv_opts_free(o);
	}
	uint64_t bytes;
	(void)fv_parse_bytes(json, &bytes);
	unsigned char out[256];
	(void)fv_base64_decode(json, out, sizeof(out));
	free(json);
	return 0;
}
