/* The block volume options' tables (flexvol/fsopts.c): ext4 and xfs mount
 * options through fv_mountopts_check, mkfsOptions into an argv, and the
 * block spec's reading of partition (flexvol/blockspec.c). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include "block.h"
#include "fsopts.h"
#include "opts.h"
#include "tap.h"

/* want NULL: refused, and the message contains why. */
static void mount_opts(const char *fs, const char *user, const char *want, const char *why)
{
	char *out = NULL;
	struct fv_err e = {0};
	int r = fv_mountopts_check(fv_fsopts_mount_table(fs), "mountOptions", user, &out, &e);
	if (want)
		CHECK(r == 0 && ((!out && !*want) || (out && !strcmp(out, want))), "%s mountOptions '%s' -> '%s'", fs, user,
		      r ? e.msg : out ? out : "");
	else
		CHECK(r < 0 && !out && strstr(e.msg, why), "%s mountOptions '%s' refused: %s", fs, user, e.msg);
	free(out);
}

/* want: the argv joined by spaces (ext4's -E shown as "E:<values>"); NULL: refused with why. */
static void mkfs(const char *fs, const char *user, const char *want, const char *why)
{
	struct fv_mkfs_args a;
	struct fv_err e = {0};
	int r = fv_fsopts_mkfs_parse(fs, user, &a, &e);
	if (!want) {
		CHECK(r < 0 && strstr(e.msg, why), "%s mkfsOptions '%s' refused: %s", fs, user, e.msg);
		return;
	}
	char got[1024] = "";
	size_t n = 0;
	for (int i = 0; r == 0 && i < a.argc; i++)
		n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", i ? " " : "", a.argv[i]);
	if (r == 0 && a.extended[0])
		snprintf(got + n, sizeof(got) - n, "%sE:%s", n ? " " : "", a.extended);
	CHECK(r == 0 && !strcmp(got, want) && a.argv[a.argc] == NULL, "%s mkfsOptions '%s' -> '%s'", fs,
	      user ? user : "(none)", r ? e.msg : got);
}

static void spec(const char *key, const char *value, const char *fstype, int ok, const char *why)
{
	json_t *j = json_pack("{s:s}", key, value);
	if (fstype)
		json_object_set_new(j, "kubernetes.io/fsType", json_string(fstype));
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	struct fv_err e = {0};
	struct fv_opts *o = fv_opts_parse(text, &e);
	struct fv_block_spec s;
	int r = o ? fv_block_spec_from_opts(o, &s, &e) : -1;
	if (ok)
		CHECK(r == 0, "%s='%s' (fsType %s) accepted%s%s", key, value, fstype ? fstype : "unset", r ? ": " : "",
		      r ? e.msg : "");
	else
		CHECK(r < 0 && strstr(e.msg, why), "%s='%s' (fsType %s) refused: %s", key, value, fstype ? fstype : "unset",
		      e.msg);
	fv_opts_free(o);
	free(text);
}

int main(void)
{
	mount_opts("ext4", NULL, "", NULL);
	mount_opts("ext4", "noatime,commit=30", "noatime,commit=30", NULL);
	mount_opts("ext4", "data=writeback,nobarrier,discard,errors=remount-ro,prjquota,lazytime",
		   "data=writeback,nobarrier,discard,errors=remount-ro,prjquota,lazytime", NULL);
	mount_opts("ext4", "nosuid,nodev,noexec", "nosuid,nodev,noexec", NULL);
	mount_opts("ext4", "suid", NULL, "'suid' is not allowed: the node's configuration");
	mount_opts("ext4", "noatime,dev", NULL, "'dev' is not allowed");
	mount_opts("ext4", "exec", NULL, "'exec' is not allowed");
	mount_opts("ext4", "ro", NULL, "readOnly");
	mount_opts("ext4", "rw", NULL, "readOnly");
	mount_opts("ext4", "errors=panic", NULL, "continue, remount-ro, not 'panic'");
	mount_opts("ext4", "noload", NULL, "journal");
	mount_opts("ext4", "commit=301", NULL, "from 0 to 300");
	mount_opts("ext4", "commit", NULL, "needs a number");
	mount_opts("ext4", "noatime=1", NULL, "takes no value");
	mount_opts("ext4", "noatime,relatime", NULL, "conflicts");
	mount_opts("ext4", "noatime,noatime", NULL, "repeats");
	mount_opts("ext4", "nouuid", NULL, "not an ext4 mount option");
	mount_opts("ext4", "inode64", NULL, "not an ext4 mount option");
	mount_opts("ext4", "journal_path=/dev/sda", NULL, "not an ext4 mount option");
	mount_opts("ext4", "x-mount.mkdir", NULL, "not an ext4 mount option");
	mount_opts("ext4", "context=system_u:object_r:foo", NULL, "not an ext4");
	mount_opts("ext4", "noatime,", NULL, "empty entry");
	mount_opts("ext4", "noatime\n", NULL, "control characters");
	mount_opts("xfs", "nouuid,inode64,logbsize=256k,allocsize=64m,largeio,prjquota",
		   "nouuid,inode64,logbsize=256k,allocsize=64m,largeio,prjquota", NULL);
	mount_opts("xfs", "logbsize=100k", NULL, "logbsize");
	mount_opts("xfs", "allocsize=3k", NULL, "allocsize");
	mount_opts("xfs", "nobarrier", NULL, "not an xfs mount option");
	mount_opts("xfs", "data=writeback", NULL, "not an xfs mount option");
	mount_opts("xfs", "norecovery", NULL, "not allowed");
	mount_opts("xfs", "uquota,usrquota", NULL, "conflicts");
	CHECK(fv_fsopts_mount_table("btrfs") == NULL, "no table for btrfs");

	mkfs("ext4", NULL, "", NULL);
	mkfs("ext4", "  ", "", NULL);
	mkfs("ext4", "-i 65536 -L data", "-i 65536 -L data", NULL);
	mkfs("ext4", "-N 1000\t-b 4096 -I 512 -m 5 -T largefile -e remount-ro", "-N 1000 -b 4096 -I 512 -m 5 -T largefile -e remount-ro",
	     NULL);
	mkfs("ext4", "-E stride=16,stripe_width=64 -L x", "-L x E:stride=16,stripe_width=64", NULL);
	mkfs("ext4", "-O ^metadata_csum,quota,project", "-O ^metadata_csum,quota,project", NULL);
	mkfs("ext4", "-F", NULL, "-F is not allowed");
	mkfs("ext4", "-f", NULL, "-f is not allowed");
	mkfs("ext4", "-d /etc", NULL, "-d is not allowed");
	mkfs("ext4", "-z /tmp/undo", NULL, "undo file");
	mkfs("ext4", "-U 1b4e28ba-2fa1-11d2-883f-0016d3cca427", NULL, "UUID");
	mkfs("ext4", "/dev/sda", NULL, "'/dev/sda' is not a mkfs.ext4 flag");
	mkfs("ext4", "-b 4096 1024", NULL, "'1024' is not a mkfs.ext4 flag");
	mkfs("ext4", "-i 65536 -i 4096", NULL, "twice");
	mkfs("ext4", "-i", NULL, "needs a value");
	mkfs("ext4", "-i 10", NULL, "bytes-per-inode needs a number from 1024");
	mkfs("ext4", "-i 0x100", NULL, "bytes-per-inode");
	mkfs("ext4", "-b 3000", NULL, "one of 1024, 2048, 4096");
	mkfs("ext4", "-L has/slash", NULL, "label");
	mkfs("ext4", "-L -f", NULL, "label"); /* found by fuzz_fsopts: a value that looks like a flag */
	mkfs("ext4", "-L 12345678901234567", NULL, "label");
	mkfs("ext4", "-E offset=4096", NULL, "'offset' is not a mkfs.ext4 -E setting");
	mkfs("ext4", "-E nodiscard", NULL, "'nodiscard'");
	mkfs("ext4", "-E stride=16,stride=8", NULL, "twice");
	mkfs("ext4", "-E stride=", NULL, "stride needs");
	mkfs("ext4", "-E stride=1,", NULL, "''");
	mkfs("ext4", "-O ^has_journal", NULL, "has_journal");
	mkfs("ext4", "-O metadata_csum,,quota", NULL, "''");
	mkfs("ext4", "-n", NULL, "not a mkfs.ext4 flag");
	mkfs("ext4", "-i 65536 \x01", NULL, "control characters");
	mkfs("xfs", "-L xdata -i size=1024 -n ftype=1,size=8192 -d su=65536,sw=2 -m reflink=1,bigtime=1 -b size=4096",
	     "-L xdata -i size=1024 -n ftype=1,size=8192 -d su=65536,sw=2 -m reflink=1,bigtime=1 -b size=4096", NULL);
	mkfs("xfs", "-d size=1000000", NULL, "'size' is not a mkfs.xfs -d setting");
	mkfs("xfs", "-d name=/dev/sda", NULL, "'name'");
	mkfs("xfs", "-d file", NULL, "'file'");
	mkfs("xfs", "-n ftype=0", NULL, "ftype");
	mkfs("xfs", "-f", NULL, "-f is not allowed");
	mkfs("xfs", "-K", NULL, "flexvol sets it");
	mkfs("xfs", "-p /etc/passwd", NULL, "a file of the node");
	mkfs("xfs", "-m uuid=1b4e28ba-2fa1-11d2-883f-0016d3cca427", NULL, "'uuid'");
	mkfs("xfs", "-L thirteenchars", NULL, "label");
	mkfs("xfs", "-l size=64m", NULL, "not a mkfs.xfs flag");
	mkfs("xfs", "-i 65536", NULL, "'65536' is not a mkfs.xfs -i setting");
	mkfs("btrfs", "-L x", NULL, "takes none");

	spec("partition", "1", NULL, 1, NULL);
	spec("partition", "128", NULL, 1, NULL);
	spec("partition", "129", NULL, 0, "from 1 to 128");
	spec("partition", "0", NULL, 0, "from 1 to 128");
	spec("partition", "01", NULL, 0, "from 1 to 128");
	spec("partition", "-1", NULL, 0, "from 1 to 128");
	spec("partition", "", NULL, 0, "from 1 to 128");
	spec("mountOptions", "nouuid", NULL, 1, NULL);       /* may be an xfs: checked at mount */
	spec("mountOptions", "nouuid", "ext4", 0, "not an ext4 mount option");
	spec("mountOptions", "commit=5", "xfs", 0, "not an xfs mount option");
	spec("mountOptions", "suid", NULL, 0, "'suid' is not allowed");
	spec("mkfsOptions", "-i 65536", NULL, 1, NULL);     /* ext4, the default */
	spec("mkfsOptions", "-i size=512", NULL, 0, "bytes-per-inode");
	spec("mkfsOptions", "-i size=512", "xfs", 1, NULL);
	return tap_done("test_fsopts");
}
