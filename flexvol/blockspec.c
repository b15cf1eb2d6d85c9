/* A block volume's options: what every block driver reads the same way. */
#include <errno.h>
#include <string.h>
#include "block.h"
#include "cryptconf.h"

const char *const fv_block_spec_keys[] = {
	/* Encryption at rest (crypt.h). */
	"encrypted", "encryptionKeyName",
	NULL};

/* Encryption at rest: encrypted and encryptionKeyName (docs/encryption.md). */
static int crypt_from_opts(const struct fv_opts *o, struct fv_block_spec *spec, struct fv_err *err)
{
	const char *enc = fv_opts_get(o, "encrypted");
	if (enc && strcmp(enc, "true") && strcmp(enc, "false"))
		return fv_err_msg(err, EINVAL, "option 'encrypted' must be \"true\" or \"false\", not '%.32s'", enc);
	spec->encrypted = enc && !strcmp(enc, "true");
	spec->key_name = fv_opts_get(o, "encryptionKeyName");
	if (spec->key_name && !spec->encrypted)
		return fv_err_msg(err, EINVAL, "option 'encryptionKeyName' needs encrypted: \"true\"");
	if (spec->key_name && !fv_crypt_key_name_ok(spec->key_name))
		return fv_err_msg(err, EINVAL,
				  "option 'encryptionKeyName' must be one file name ([A-Za-z0-9._-], not starting with '.', "
				  "at most 128 bytes), not '%.64s'",
				  spec->key_name);
	spec->key_in_options = fv_opts_secret(o, "encryptionKey", NULL) != NULL;
	return 0;
}

int fv_block_spec_from_opts(const struct fv_opts *o, struct fv_block_spec *spec, struct fv_err *err)
{
	*spec = (struct fv_block_spec){0};
	spec->fstype = fv_opts_fstype(o);
	if (spec->fstype && strcmp(spec->fstype, "ext4") && strcmp(spec->fstype, "xfs"))
		return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", spec->fstype);
	spec->readonly = fv_opts_readonly(o);
	return crypt_from_opts(o, spec, err);
}
