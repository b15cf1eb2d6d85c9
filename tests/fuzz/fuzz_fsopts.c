/* Block volume options (untrusted, from pod specs): mountOptions through the
 * ext4 and xfs tables and mkfsOptions into an argv (flexvol/fsopts.c), as
 * NUL-separated fields of one input. Every accepted mkfs argv must hold only
 * words of the input, none of them a device path or a force flag. */
#include <stdio.h>
#include "fuzz.h"
#include "fsopts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	size_t at = 0;
	const char *mount = fuzz_field(s, size, &at);
	const char *mkfs = fuzz_field(s, size, &at);
	const char *fs = size & 1 ? "xfs" : "ext4";
	struct fv_err err = {0};
	char *out = NULL;
	if (fv_mountopts_check(fv_fsopts_mount_table(fs), "mountOptions", mount, &out, &err) == 0)
		free(out);
	struct fv_mkfs_args a;
	if (fv_fsopts_mkfs_parse(fs, mkfs, &a, &err) == 0) {
		if (a.argc > FV_MKFS_MAX_ARGS || a.argv[a.argc])
			abort();
		for (int i = 0; i < a.argc; i++)
			if (a.argv[i][0] == '/' || !strcmp(a.argv[i], "-F") || !strcmp(a.argv[i], "-f"))
				abort();
	}
	free(s);
	return 0;
}
