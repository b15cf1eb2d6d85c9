/* A block volume's options: what every block driver reads the same way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block.h"
#include "cryptconf.h"

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
	if (spec->encrypted && spec->partition)
		return fv_err_msg(err, EINVAL, "option 'partition' cannot be used with encrypted: \"true\" (the "
					       "container fills the whole disk)");
	spec->key_in_options = fv_opts_secret(o, "encryptionKey", NULL) != NULL;
	return 0;
}
#include "cleanup.h"
#include "fsopts.h"

const char *const fv_block_spec_keys[] = {
	/* blockopts (issue 13) */
	"mountOptions", "mkfsOptions", "partition",
	/* Encryption at rest (crypt.h). */
	"encrypted", "encryptionKeyName",
	NULL};

const char fv_block_spec_help[] =
	"Block volume options (every block driver):\n"
	"  fsType       ext4 (default) or xfs; a blank volume is formatted on first mount\n"
	"  mountOptions comma-separated, checked against the file system mounted:\n"
	"               both: noatime|relatime|strictatime, nodiratime, [no]lazytime, noexec,\n"
	"                 nosuid, nodev, sync|async, dirsync, discard|nodiscard, grpid|nogrpid\n"
	"               ext4: barrier|nobarrier, data=ordered|writeback|journal, commit=0-300,\n"
	"                 errors=continue|remount-ro, [no]journal_checksum, journal_async_commit,\n"
	"                 journal_ioprio=0-7, [no]auto_da_alloc, [no]delalloc, dioread_[no]lock,\n"
	"                 acl|noacl, usrquota, grpquota, prjquota, [no]block_validity, nombcache,\n"
	"                 stripe=N, inode_readahead_blks=N, max_batch_time=N, min_batch_time=N\n"
	"               xfs: nouuid, inode32|inode64, logbsize=16k-256k, logbufs=2-8,\n"
	"                 allocsize=4k-1g (powers of 2), [no]largeio, swalloc, filestreams, wsync,\n"
	"                 sunit=N, swidth=N, uquota|usrquota|quota|uqnoenforce,\n"
	"                 gquota|grpquota|gqnoenforce, pquota|prjquota|pqnoenforce, noquota\n"
	"               refused: suid, dev, exec (the node's allow-setuid / allow-devices decide),\n"
	"                 ro, rw (the volume's readOnly decides), errors=panic, norecovery, noload,\n"
	"                 and anything not listed. An xfs whose UUID a mounted xfs already has\n"
	"                 (a clone of a snapshot) gets nouuid by itself.\n"
	"  mkfsOptions  flags added to mkfs's when (and only when) a blank volume is formatted;\n"
	"               whitespace-separated, each flag's value its next word, each flag once:\n"
	"               ext4: -i bytes-per-inode, -N inodes, -b 1024|2048|4096, -I 128-1024,\n"
	"                 -m reserved-percent (default 0), -T usage-type, -e continue|remount-ro,\n"
	"                 -L label (16), -E stride=N,stripe_width=N, -O [^]feature,... (metadata_csum,\n"
	"                 64bit, quota, project, encrypt, casefold, inline_data, large_dir,\n"
	"                 huge_file, dir_nlink, extra_isize, dir_index, uninit_bg)\n"
	"               xfs: -i size=256-2048,maxpct=N,sparse=0|1, -n ftype=1,size=N,\n"
	"                 -b size=1024|2048|4096, -d su=N,sw=N,sunit=N,swidth=N,agcount=N,\n"
	"                 -m reflink=,finobt=,bigtime=,rmapbt=,inobtcount= (0|1), -L label (12)\n"
	"               never -F/-f, a device, a size, a node file (-d for ext4, -p, -z) or -U.\n"
	"  partition    cloud disks: mount partition 1-128 of the disk; flexvol never creates\n"
	"               partitions and never formats one (a blank one is refused)\n"
	/* Encryption at rest (crypt.h, docs/encryption.md). */
	"  encrypted    \"true\": the file system lives in a LUKS2 container (dm-crypt) on the\n"
	"               device; a blank device is luksFormat'ed, a LUKS one opened, never\n"
	"               formatted again; anything else is refused (and a LUKS device for a\n"
	"               plain volume). Not in the static bundle (docs/encryption.md)\n"
	"  encryptionKeyName  the key: a file in the node's key-dir (default: the volume's name)\n"
	"Block node configuration (the driver's section), for encrypted volumes:\n"
	"  key-dir = <dir>        root-owned directory of key files (each root, 0600 or 0400)\n"
	"  cipher = " "aes-xts-plain64" "   key-size = 512   (bits)\n"
	"  pbkdf-memory = 65536 (KiB, argon2id), pbkdf-time = 1000 (ms), pbkdf-iterations = 0\n"
	"                         (a fixed argon2id cost instead of timing it)\n"
	"  allow-discards = false   true passes discards through (they show which blocks are used)\n"
	"  See docs/encryption.md (threat model, key rotation).\n";

static int parse_partition(const char *v, unsigned *n, struct fv_err *err)
{
	if (!v)
		return 0;
	size_t len = strlen(v);
	if (!len || len > 3 || strspn(v, "0123456789") != len || v[0] == '0' || strtoul(v, NULL, 10) > 128)
		return fv_err_msg(err, EINVAL, "option 'partition' must be a partition number from 1 to 128, not '%.32s'",
				  v);
	*n = (unsigned)strtoul(v, NULL, 10);
	return 0;
}

/* mountOptions before the device is seen: valid for fsType, or with no
 * fsType for ext4 or xfs (whichever the device holds is checked at mount). */
static int check_mount_options(const struct fv_block_spec *spec, struct fv_err *err)
{
	if (!spec->mount_options)
		return 0;
	_cleanup_free_ char *out = NULL;
	const char *fs = spec->fstype ? spec->fstype : "ext4";
	if (fv_mountopts_check(fv_fsopts_mount_table(fs), "mountOptions", spec->mount_options, &out, err) == 0)
		return 0;
	if (spec->fstype)
		return fv_err_prefix(err, "mountOptions for %s", fs);
	struct fv_err xfs_err = {0};
	_cleanup_free_ char *xfs_out = NULL;
	if (fv_mountopts_check(fv_fsopts_mount_table("xfs"), "mountOptions", spec->mount_options, &xfs_out,
			       &xfs_err) == 0) {
		*err = (struct fv_err){0};
		return 0;
	}
	return fv_err_prefix(err, "mountOptions (for ext4, the default fsType)");
}

int fv_block_spec_from_opts(const struct fv_opts *o, struct fv_block_spec *spec, struct fv_err *err)
{
	*spec = (struct fv_block_spec){0};
	spec->fstype = fv_opts_fstype(o);
	if (spec->fstype && strcmp(spec->fstype, "ext4") && strcmp(spec->fstype, "xfs"))
		return fv_err_msg(err, EINVAL, "fsType '%s' is not supported (ext4 or xfs)", spec->fstype);
	spec->readonly = fv_opts_readonly(o);

	/* blockopts (issue 13) */
	spec->mount_options = fv_opts_get(o, "mountOptions");
	spec->mkfs_options = fv_opts_get(o, "mkfsOptions");
	if (parse_partition(fv_opts_get(o, "partition"), &spec->partition, err) < 0 ||
	    check_mount_options(spec, err) < 0)
		return err->code;
	if (spec->mkfs_options && spec->partition)
		return fv_err_msg(err, EINVAL, "option 'mkfsOptions' has no use with 'partition': flexvol never formats "
					       "a partition");
	struct fv_mkfs_args mkfs;
	if (fv_fsopts_mkfs_parse(spec->fstype ? spec->fstype : "ext4", spec->mkfs_options, &mkfs, err) < 0)
		return err->code;
	return crypt_from_opts(o, spec, err);
}
