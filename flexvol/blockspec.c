/* A block volume's options: what every block driver reads the same way. */
#include <errno.h>
#include <string.h>
#include "block.h"

const char *const fv_block_spec_keys[] = {NULL};

int fv_block_spec_from_opts(const struct fv_opts *o, struct fv_block_spec *spec, struct fv_err *err)
{
	*spec = (struct fv_block_spec){0};
	spec->fstype = fv_opts_fstype(o);
	if (spec->fstype && strcmp(spec->fstype, "ext4") && strcmp(spec->fstype, "xfs"))
		return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", spec->fstype);
	spec->readonly = fv_opts_readonly(o);
	return 0;
}
