/* SMB volume options (untrusted, from pod specs): the source and the mount
 * options, as NUL-separated fields of one input, through every check
 * flexvol/smbopts.c makes before the kernel sees them. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include "fuzz.h"
#include "smbopts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	size_t at = 0;
	const char *source = fuzz_field(s, size, &at);
	const char *user = fuzz_field(s, size, &at);
	struct fv_err err = {0};
	char server[256], share[128];
	(void)fv_smb_parse_source(source, server, sizeof(server), share, sizeof(share), &err);
	unsigned long flags;
	char *fsopts = NULL;
	if (fv_smb_mount_options(user, size & 1, size & 2, &flags, &fsopts, &err) == 0)
		free(fsopts);
	free(s);
	return 0;
}
