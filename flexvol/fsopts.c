#include "fsopts.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- mountOptions ---- */

static const char *const data_modes[] = {"ordered", "writeback", "journal", NULL};
/* errors=panic would let a pod author crash the node. */
static const char *const ext4_errors[] = {"continue", "remount-ro", NULL};
static const char *const xfs_logbsize[] = {"16384", "32768", "65536", "131072", "262144",
					   "16k",   "32k",   "64k",   "128k",   "256k",   NULL};
static const char *const xfs_allocsize[] = {"4k",  "8k",  "16k", "32k", "64k",  "128k", "256k",
					    "512k", "1m", "2m",  "4m",  "8m",  "16m", "32m",
					    "64m", "128m", "256m", "512m", "1g", NULL};

/* What neither file system's table may take, and why (checked first). */
static const struct fv_mountopt_refusal block_refused[] = {
	{"suid", "the node's configuration decides it ([<driver>] allow-setuid), not a volume"},
	{"dev", "the node's configuration decides it ([<driver>] allow-devices), not a volume"},
	{"exec", "a volume may only restrict how it is mounted (noexec), not widen it"},
	{"ro", "set by the volume's readOnly (kubernetes.io/readwrite), not by mountOptions"},
	{"rw", "set by the volume's readOnly (kubernetes.io/readwrite), not by mountOptions"},
	{"norecovery", "it mounts without replaying the journal, and a read-write mount then corrupts it"},
	{"noload", "it mounts without replaying the journal, and a read-write mount then corrupts it"},
	{"bind", "flexvol does the binds itself"},
	{"remount", "flexvol does the mounts itself"},
};

/* Options every local file system takes (the VFS flags); then each table its own. */
#define VFS_OPTS                                                                                                \
	FV_MOPT_F("noatime", "atime"), FV_MOPT_F("relatime", "atime"), FV_MOPT_F("strictatime", "atime"),       \
		FV_MOPT_F("nodiratime", "diratime"), FV_MOPT_F("lazytime", "lazytime"),                         \
		FV_MOPT_F("nolazytime", "lazytime"), FV_MOPT_F("nosuid", "suid"), FV_MOPT_F("nodev", "dev"),    \
		FV_MOPT_F("noexec", "exec"), FV_MOPT_F("sync", "sync"), FV_MOPT_F("async", "sync"),             \
		FV_MOPT_F("dirsync", "dirsync"), FV_MOPT_F("discard", "discard"),                               \
		FV_MOPT_F("nodiscard", "discard"), FV_MOPT_F("grpid", "grpid"), FV_MOPT_F("bsdgroups", "grpid"), \
		FV_MOPT_F("nogrpid", "grpid"), FV_MOPT_F("sysvgroups", "grpid")

static const struct fv_mountopt ext4_opts[] = {
	VFS_OPTS,
	FV_MOPT_F("barrier", "barrier"),
	FV_MOPT_F("nobarrier", "barrier"),
	FV_MOPT_E("data", "data", data_modes),
	FV_MOPT_U("commit", "commit", 0, 300),
	FV_MOPT_E("errors", "errors", ext4_errors),
	FV_MOPT_F("journal_checksum", "journal_checksum"),
	FV_MOPT_F("nojournal_checksum", "journal_checksum"),
	FV_MOPT_F("journal_async_commit", "journal_async_commit"),
	FV_MOPT_U("journal_ioprio", "journal_ioprio", 0, 7),
	FV_MOPT_F("auto_da_alloc", "auto_da_alloc"),
	FV_MOPT_F("noauto_da_alloc", "auto_da_alloc"),
	FV_MOPT_F("delalloc", "delalloc"),
	FV_MOPT_F("nodelalloc", "delalloc"),
	FV_MOPT_F("dioread_nolock", "dioread"),
	FV_MOPT_F("dioread_lock", "dioread"),
	FV_MOPT_F("acl", "acl"),
	FV_MOPT_F("noacl", "acl"),
	FV_MOPT_F("usrquota", "usrquota"),
	FV_MOPT_F("grpquota", "grpquota"),
	FV_MOPT_F("prjquota", "prjquota"),
	FV_MOPT_F("block_validity", "block_validity"),
	FV_MOPT_F("noblock_validity", "block_validity"),
	FV_MOPT_F("nombcache", "nombcache"),
	FV_MOPT_U("stripe", "stripe", 0, 1u << 20),
	FV_MOPT_U("inode_readahead_blks", "inode_readahead_blks", 0, 1u << 30),
	FV_MOPT_U("max_batch_time", "max_batch_time", 0, 1000000),
	FV_MOPT_U("min_batch_time", "min_batch_time", 0, 1000000),
};

static const struct fv_mountopt xfs_opts[] = {
	VFS_OPTS,
	FV_MOPT_F("nouuid", "nouuid"),
	FV_MOPT_F("inode32", "inode64"),
	FV_MOPT_F("inode64", "inode64"),
	FV_MOPT_E("logbsize", "logbsize", xfs_logbsize),
	FV_MOPT_U("logbufs", "logbufs", 2, 8),
	FV_MOPT_E("allocsize", "allocsize", xfs_allocsize),
	FV_MOPT_F("largeio", "largeio"),
	FV_MOPT_F("nolargeio", "largeio"),
	FV_MOPT_F("swalloc", "swalloc"),
	FV_MOPT_F("filestreams", "filestreams"),
	FV_MOPT_F("wsync", "wsync"),
	FV_MOPT_U("sunit", "sunit", 1, 1u << 24),
	FV_MOPT_U("swidth", "swidth", 1, 1u << 30),
	FV_MOPT_F("uquota", "uquota"),
	FV_MOPT_F("usrquota", "uquota"),
	FV_MOPT_F("quota", "uquota"),
	FV_MOPT_F("uqnoenforce", "uquota"),
	FV_MOPT_F("gquota", "gquota"),
	FV_MOPT_F("grpquota", "gquota"),
	FV_MOPT_F("gqnoenforce", "gquota"),
	FV_MOPT_F("pquota", "pquota"),
	FV_MOPT_F("prjquota", "pquota"),
	FV_MOPT_F("pqnoenforce", "pquota"),
	FV_MOPT_F("noquota", "noquota"),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct fv_mountopt_table ext4_table = {
	"an ext4 mount option this driver accepts (see the driver's --help)", ext4_opts, N(ext4_opts),
	block_refused, N(block_refused)};
static const struct fv_mountopt_table xfs_table = {
	"an xfs mount option this driver accepts (see the driver's --help)", xfs_opts, N(xfs_opts), block_refused,
	N(block_refused)};

const struct fv_mountopt_table *fv_fsopts_mount_table(const char *fstype)
{
	if (!strcmp(fstype, "ext4"))
		return &ext4_table;
	if (!strcmp(fstype, "xfs"))
		return &xfs_table;
	return NULL;
}

/* ---- mkfsOptions ---- */

/* A sub-option (key=value inside a flag's comma list) or a flag's value. */
struct sub {
	const char *name;
	unsigned long min, max;           /* a decimal number in [min, max] ... */
	const char *const *values;        /* ... or one of these */
};

enum arg_kind { ARG_VALUE, ARG_SUBOPTS, ARG_LABEL, ARG_FEATURES };

struct flag {
	const char *flag;
	enum arg_kind kind;
	struct sub value;         /* ARG_VALUE */
	const struct sub *subs;   /* ARG_SUBOPTS; NULL-name terminated */
	size_t label_max;         /* ARG_LABEL */
};

static const char *const ext4_block[] = {"1024", "2048", "4096", NULL};
static const char *const ext4_inode_size[] = {"128", "256", "512", "1024", NULL};
static const char *const ext4_usage[] = {"default", "small", "floppy", "news", "largefile", "largefile4",
					 "huge",    "big",   NULL};
/* Features a volume may turn on or (with ^) off: none changes where mke2fs writes. */
static const char *const ext4_features[] = {"metadata_csum", "64bit",  "quota",    "project",  "encrypt",
					    "casefold",      "inline_data", "large_dir", "huge_file", "dir_nlink",
					    "extra_isize",   "dir_index", "uninit_bg", NULL};
static const struct sub ext4_extended[] = {
	{"stride", 1, 1u << 22, NULL}, {"stripe_width", 1, 1u << 22, NULL}, {"stripe-width", 1, 1u << 22, NULL}, {0}};

static const struct flag ext4_flags[] = {
	{"-i", ARG_VALUE, {"bytes-per-inode", 1024, 1u << 26, NULL}, NULL, 0},
	{"-N", ARG_VALUE, {"number-of-inodes", 1, 4294967295ul, NULL}, NULL, 0},
	{"-b", ARG_VALUE, {"block-size", 0, 0, ext4_block}, NULL, 0},
	{"-I", ARG_VALUE, {"inode-size", 0, 0, ext4_inode_size}, NULL, 0},
	{"-m", ARG_VALUE, {"reserved-blocks-percentage", 0, 50, NULL}, NULL, 0},
	{"-T", ARG_VALUE, {"usage-type", 0, 0, ext4_usage}, NULL, 0},
	{"-e", ARG_VALUE, {"errors-behavior", 0, 0, ext4_errors}, NULL, 0},
	{"-L", ARG_LABEL, {0}, NULL, 16},
	{"-E", ARG_SUBOPTS, {0}, ext4_extended, 0},
	{"-O", ARG_FEATURES, {0}, NULL, 0},
};

static const char *const bool01[] = {"0", "1", NULL};
static const char *const xfs_isize[] = {"256", "512", "1024", "2048", NULL};
static const char *const xfs_bsize[] = {"1024", "2048", "4096", NULL};
static const char *const xfs_nsize[] = {"4096", "8192", "16384", "32768", "65536", NULL};
static const char *const one[] = {"1", NULL};
static const struct sub xfs_i[] = {{"size", 0, 0, xfs_isize}, {"maxpct", 0, 100, NULL}, {"sparse", 0, 0, bool01}, {0}};
static const struct sub xfs_n[] = {{"ftype", 0, 0, one}, {"size", 0, 0, xfs_nsize}, {0}};
static const struct sub xfs_b[] = {{"size", 0, 0, xfs_bsize}, {0}};
static const struct sub xfs_d[] = {{"su", 512, 1u << 30, NULL},    {"sw", 1, 1024, NULL},
				   {"sunit", 1, 1u << 24, NULL}, {"swidth", 1, 1u << 30, NULL},
				   {"agcount", 1, 10000, NULL},  {0}};
static const struct sub xfs_m[] = {{"reflink", 0, 0, bool01}, {"finobt", 0, 0, bool01}, {"bigtime", 0, 0, bool01},
				   {"rmapbt", 0, 0, bool01},  {"inobtcount", 0, 0, bool01}, {0}};

static const struct flag xfs_flags[] = {
	{"-i", ARG_SUBOPTS, {0}, xfs_i, 0}, {"-n", ARG_SUBOPTS, {0}, xfs_n, 0}, {"-b", ARG_SUBOPTS, {0}, xfs_b, 0},
	{"-d", ARG_SUBOPTS, {0}, xfs_d, 0}, {"-m", ARG_SUBOPTS, {0}, xfs_m, 0}, {"-L", ARG_LABEL, {0}, NULL, 12},
};

/* Named refusals: what the allow-list would refuse anyway, with the reason. */
static const struct fv_mountopt_refusal mkfs_refused[] = {
	{"-F", "flexvol formats only blank devices, never by force"},
	{"-f", "flexvol formats only blank devices, never by force"},
	{"-K", "flexvol sets it (no discard reaching its format record)"},
	{"-d", "it would fill the file system from a directory of the node"},
	{"-p", "it would read a file of the node"},
	{"-z", "it would write an undo file on the node"},
	{"-U", "a copy of another volume's UUID stops both mounting together"},
	{"-t", "the file system type is the volume's fsType"},
};

static bool number_in(const char *v, size_t n, unsigned long lo, unsigned long hi)
{
	if (!n || n > 10 || strspn(v, "0123456789") < n)
		return false;
	char tmp[11];
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	unsigned long x = strtoul(tmp, NULL, 10);
	return x >= lo && x <= hi;
}

static bool one_of(const char *v, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == n && !strncmp(v, *list, n))
			return true;
	return false;
}

static bool value_ok(const struct sub *s, const char *v, size_t n)
{
	return s->values ? one_of(v, n, s->values) : number_in(v, n, s->min, s->max);
}

static int bad_value(const char *fs, const char *flag, const struct sub *s, const char *v, struct fv_err *err)
{
	char want[160] = "";
	if (s->values) {
		size_t n = 0;
		for (const char *const *p = s->values; *p && n < sizeof(want); p++) {
			int w = snprintf(want + n, sizeof(want) - n, "%s%s", p == s->values ? "one of " : ", ", *p);
			n += w > 0 ? (size_t)w : 0;
		}
	} else {
		snprintf(want, sizeof(want), "a number from %lu to %lu", s->min, s->max);
	}
	return fv_err_msg(err, EINVAL, "mkfsOptions: mkfs.%s %s %s needs %s, not '%.64s'", fs, flag, s->name, want, v);
}

/* "k=v,k=v" against subs; each key once. */
static int check_subopts(const char *fs, const char *flag, const struct sub *subs, const char *v, struct fv_err *err)
{
	unsigned seen = 0;
	for (const char *p = v;;) {
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);
		size_t kn = eq ? (size_t)(eq - p) : n;
		size_t i = 0;
		while (subs[i].name && (strlen(subs[i].name) != kn || strncmp(p, subs[i].name, kn)))
			i++;
		if (!n || !subs[i].name)
			return fv_err_msg(err, EINVAL, "mkfsOptions: '%.*s' is not a mkfs.%s %s setting this driver accepts",
					  (int)(kn < 64 ? kn : 64), p, fs, flag);
		if (seen & (1u << i))
			return fv_err_msg(err, EINVAL, "mkfsOptions: mkfs.%s %s %s is given twice", fs, flag, subs[i].name);
		seen |= 1u << i;
		char val[65];
		size_t vn = eq ? n - kn - 1 : 0;
		snprintf(val, sizeof(val), "%.*s", (int)(vn < 64 ? vn : 64), eq ? eq + 1 : "");
		if (!eq || !value_ok(&subs[i], eq + 1, vn))
			return bad_value(fs, flag, &subs[i], val, err);
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

static int check_features(const char *v, struct fv_err *err)
{
	for (const char *p = v;;) {
		size_t n = strcspn(p, ",");
		const char *f = p[0] == '^' ? p + 1 : p;
		size_t fn = n - (size_t)(f - p);
		if (!n || !one_of(f, fn, ext4_features))
			return fv_err_msg(err, EINVAL,
					  "mkfsOptions: '%.*s' is not an ext4 feature this driver lets a volume set "
					  "(see the driver's --help)",
					  (int)(n < 64 ? n : 64), p);
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

static int check_label(const char *fs, const char *v, size_t max, struct fv_err *err)
{
	size_t n = strlen(v);
	/* Never a word mkfs could read as a flag of its own. */
	bool ok = n && n <= max && v[0] != '-';
	for (size_t i = 0; ok && i < n; i++)
		ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= '0' && v[i] <= '9') ||
		     strchr("-_.", v[i]);
	if (!ok)
		return fv_err_msg(err, EINVAL,
				  "mkfsOptions: the mkfs.%s label (-L) must be 1 to %zu letters, digits, '-', '_' or "
				  "'.' (not first '-'), not '%.64s'",
				  fs, max, v);
	return 0;
}

int fv_fsopts_mkfs_parse(const char *fstype, const char *user, struct fv_mkfs_args *out, struct fv_err *err)
{
	memset(out, 0, sizeof(*out));
	const struct flag *flags;
	size_t nflags;
	if (!strcmp(fstype, "ext4"))
		flags = ext4_flags, nflags = N(ext4_flags);
	else if (!strcmp(fstype, "xfs"))
		flags = xfs_flags, nflags = N(xfs_flags);
	else
		return fv_err_msg(err, EINVAL, "mkfsOptions: fsType '%s' takes none", fstype);
	if (!user)
		return 0;
	if (strlen(user) > FV_MKFS_MAX_LEN)
		return fv_err_msg(err, EINVAL, "option 'mkfsOptions' is longer than %d characters", FV_MKFS_MAX_LEN);
	for (const unsigned char *p = (const unsigned char *)user; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return fv_err_msg(err, EINVAL, "option 'mkfsOptions' must not contain control characters");
	/* Split into words in buf (no quoting: no value needs a space). */
	size_t used = 0;
	const char *words[FV_MKFS_MAX_ARGS + 1];
	int nwords = 0;
	for (const char *p = user;;) {
		p += strspn(p, " \t");
		if (!*p)
			break;
		size_t n = strcspn(p, " \t");
		if (nwords == FV_MKFS_MAX_ARGS)
			return fv_err_msg(err, EINVAL, "option 'mkfsOptions' has more than %d words", FV_MKFS_MAX_ARGS);
		memcpy(out->buf + used, p, n);
		out->buf[used + n] = '\0';
		words[nwords++] = out->buf + used;
		used += n + 1;
		p += n;
	}
	unsigned seen = 0;
	for (int w = 0; w < nwords; w++) {
		const char *f = words[w];
		for (size_t i = 0; i < N(mkfs_refused); i++)
			if (!strcmp(f, mkfs_refused[i].name) &&
			    (strcmp(f, "-d") || !strcmp(fstype, "ext4"))) /* xfs -d is its data section */
				return fv_err_msg(err, EINVAL, "mkfsOptions: mkfs.%s %s is not allowed: %s", fstype, f,
						  mkfs_refused[i].why);
		size_t i = 0;
		while (i < nflags && strcmp(f, flags[i].flag))
			i++;
		if (i == nflags)
			return fv_err_msg(err, EINVAL,
					  "mkfsOptions: '%.64s' is not a mkfs.%s flag this driver accepts (see the driver's "
					  "--help; each flag's value is the next word)",
					  f, fstype);
		if (seen & (1u << i))
			return fv_err_msg(err, EINVAL, "mkfsOptions: %s is given twice", f);
		seen |= 1u << i;
		if (w + 1 == nwords)
			return fv_err_msg(err, EINVAL, "mkfsOptions: %s needs a value (the next word)", f);
		const char *v = words[++w];
		const struct flag *fl = &flags[i];
		int r = 0;
		switch (fl->kind) {
		case ARG_VALUE:
			if (!value_ok(&fl->value, v, strlen(v)))
				r = bad_value(fstype, f, &fl->value, v, err);
			break;
		case ARG_SUBOPTS:
			r = check_subopts(fstype, f, fl->subs, v, err);
			break;
		case ARG_LABEL:
			r = check_label(fstype, v, fl->label_max, err);
			break;
		case ARG_FEATURES:
			r = check_features(v, err);
			break;
		}
		if (r < 0)
			return r;
		if (!strcmp(fstype, "ext4") && !strcmp(f, "-E")) {
			snprintf(out->extended, sizeof(out->extended), "%s", v);
			continue;
		}
		out->argv[out->argc++] = f;
		out->argv[out->argc++] = v;
	}
	return 0;
}
