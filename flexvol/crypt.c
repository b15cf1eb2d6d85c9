#include "crypt.h"
#include <blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include "cleanup.h"
#include "cryptconf.h"
#include "dmcrypt.h"
#include "format.h"
#include "log.h"

#ifndef FV_HAVE_CRYPT
#define FV_HAVE_CRYPT 1
#endif

/* Both builds: a plain volume never touches an encrypted volume's disk. A
 * LUKS2 header with a bad checksum (a luksFormat cut short) counts too. */
int fv_crypt_refuse_luks(const char *device, struct fv_err *err)
{
	blkid_probe pr = blkid_new_probe_from_filename(device);
	if (!pr)
		return 0; /* the block core's own probe reports an unreadable device */
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_VERSION | BLKID_SUBLKS_BADCSUM);
	blkid_probe_enable_partitions(pr, 0);
	const char *type = NULL, *version = NULL;
	bool luks = blkid_do_probe(pr) == 0 && blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0 && type &&
		    !strcmp(type, "crypto_LUKS");
	char v[16] = "";
	if (luks && blkid_probe_lookup_value(pr, "VERSION", &version, NULL) == 0 && version)
		snprintf(v, sizeof(v), "%s", version);
	blkid_free_probe(pr);
	if (!luks)
		return 0;
	return fv_err_msg(err, EEXIST,
			  "device '%s' holds a LUKS%s container (an encrypted volume's disk), but the volume does not set "
			  "encrypted: \"true\"; refusing to format or mount it",
			  device, v);
}

#if !FV_HAVE_CRYPT

const bool fv_crypt_built = false;

#define NOT_BUILT                                                                                                     \
	"this build of the driver has no encryption support (the static bundle is built without libcryptsetup; "     \
	"docs/encryption.md): install the dynamically linked driver to use encrypted volumes"

int fv_crypt_open(const char *device, const char *target, const struct fv_block_spec *spec, char *mapped,
		  size_t size, struct fv_err *err)
{
	(void)device, (void)target, (void)spec, (void)mapped, (void)size;
	return fv_err_msg(err, ENOTSUP, "encrypted volume refused: %s", NOT_BUILT);
}

int fv_crypt_close(const char *target, struct fv_err *err)
{
	char name[FV_DMCRYPT_NAME_MAX];
	dev_t dev, lower;
	fv_dmcrypt_name(target, name);
	if (!fv_dmcrypt_find(name, &dev, &lower))
		return 0;
	return fv_err_msg(err, ENOTSUP, "cannot close mapping %s: %s", name, NOT_BUILT);
}

int fv_crypt_grow(const char *device, const char *mount_dir, char *mapped, size_t size, struct fv_err *err)
{
	(void)device, (void)mapped, (void)size;
	char name[FV_DMCRYPT_NAME_MAX];
	dev_t dev, lower;
	fv_dmcrypt_name(mount_dir, name);
	if (!fv_dmcrypt_find(name, &dev, &lower))
		return 0;
	return fv_err_msg(err, ENOTSUP, "cannot grow mapping %s: %s", name, NOT_BUILT);
}

#else

#include <libcryptsetup.h>
#include <libdevmapper.h>

const bool fv_crypt_built = true;

/* An unlock costs at most this much: a header (another volume's disk, or a
 * crafted one) asking more is refused before any attempt. */
#define MAX_ARGON_MEMORY_KIB (1024 * 1024)
#define MAX_ARGON_TIME 64
#define MAX_PBKDF2_ITERATIONS 50000000u

/* The token a luksFormat of ours leaves in the LUKS2 header until the inner
 * mapping has its file system: with it, the inner device holds nothing of
 * value (it was never mounted) and is formatted, again if need be. */
#define TOKEN_UNFORMATTED "flexvol-unformatted"

static char last_error[256];

static void log_cb(int level, const char *msg, void *ud)
{
	(void)ud;
	if (level == CRYPT_LOG_DEBUG || level == CRYPT_LOG_DEBUG_JSON)
		return;
	char line[256];
	snprintf(line, sizeof(line), "%s", msg);
	line[strcspn(line, "\n")] = '\0';
	if (level == CRYPT_LOG_ERROR)
		snprintf(last_error, sizeof(last_error), "%s", line);
	fv_log(level == CRYPT_LOG_ERROR ? LOG_WARNING : LOG_INFO, "libcryptsetup: %s", line);
}

/* Once per call, before any libcryptsetup use: its messages go to our log
 * (never stdout/stderr), and libdevmapper makes the /dev/mapper node itself
 * instead of waiting for udev to confirm it: that wait has no timeout, and
 * never ends on a node whose udev lacks the device-mapper rules. */
static void lib_setup(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	setenv("DM_DISABLE_UDEV", "1", 1);
	dm_udev_set_sync_support(0);
	crypt_set_log_callback(NULL, log_cb, NULL);
}

static void cd_free(struct crypt_device **cd)
{
	if (*cd)
		crypt_free(*cd);
}
#define _cleanup_cd_ __attribute__((cleanup(cd_free)))

struct key {
	unsigned char *buf;
	size_t len;
};

static void key_free(struct key *k)
{
	fv_crypt_key_free(k->buf, k->len);
	k->buf = NULL;
}
#define _cleanup_key_ __attribute__((cleanup(key_free)))

static int lib_err(struct fv_err *err, int rc, const char *fmt, const char *arg)
{
	char what[300];
	snprintf(what, sizeof(what), fmt, arg);
	if (last_error[0])
		return fv_err_msg(err, rc < 0 ? -rc : EIO, "%s: %s", what, last_error);
	return fv_err_set(err, rc < 0 ? -rc : EIO, "%s", what);
}

/* The last component of target: the volume's name as kubelet knows it. */
static void volume_name(const char *target, char *buf, size_t size)
{
	size_t n = strlen(target);
	while (n > 1 && target[n - 1] == '/')
		n--;
	size_t b = n;
	while (b && target[b - 1] != '/')
		b--;
	snprintf(buf, size, "%.*s", (int)(n - b), target + b);
}

/* The LUKS2 label binding a container to its volume: the mapping name
 * without its prefix, its last 47 bytes (the most a label holds). */
static void volume_label(const char *target, char *label, size_t size)
{
	char name[FV_DMCRYPT_NAME_MAX];
	fv_dmcrypt_name(target, name);
	const char *v = name + strlen(FV_DMCRYPT_PREFIX);
	size_t n = strlen(v);
	snprintf(label, size, "%s", n > 47 ? v + n - 47 : v);
}

static int get_key(const struct fv_block_spec *spec, const char *target, struct key *k, struct fv_err *err)
{
	char vol[256];
	const char *name = spec->key_name;
	if (!name) {
		volume_name(target, vol, sizeof(vol));
		if (!fv_crypt_key_name_ok(vol))
			return fv_err_msg(err, EINVAL,
					  "the volume's name '%.64s' cannot name a key file: set encryptionKeyName", vol);
		name = vol;
	}
	return fv_crypt_key_read(name, &k->buf, &k->len, err);
}

/* --- the luksFormat marker ---
 * Written to the device's last 4 KiB before luksFormat and cleared once the
 * LUKS2 header is complete (keyslot and token written): a later call that
 * finds it knows that whatever LUKS header is there, whole or cut short, is
 * our unfinished format of a blank device, which may be done again. The
 * mapping is never opened while it is there, so no data can be behind it.
 * The layout, little-endian; the rest of the slot is zero. */
#define MARKER_SIZE 4096
static const char MARKER_MAGIC[16] = "flexvol-luksfmt";
enum { M_MAGIC = 0, M_VERSION = 16, M_DEVSIZE = 24, M_NONCE = 32, M_STARTED = 48, M_END = 56 };

static uint64_t marker_offset(uint64_t size)
{
	return (size & ~(uint64_t)(MARKER_SIZE - 1)) - MARKER_SIZE;
}

/* 1: a valid marker for a device of this size; 0: none; 2: our magic, but
 * not a valid marker; <0: -errno. */
static int marker_read(int fd, uint64_t size)
{
	unsigned char b[MARKER_SIZE];
	int r = fv_io_exact(fd, b, sizeof(b), marker_offset(size), false);
	if (r < 0)
		return r;
	if (memcmp(b + M_MAGIC, MARKER_MAGIC, sizeof(MARKER_MAGIC)))
		return 0;
	if (fv_get_le64(b + M_VERSION) != 1 || fv_get_le64(b + M_DEVSIZE) != size)
		return 2;
	for (size_t i = M_END; i < sizeof(b); i++)
		if (b[i])
			return 2;
	return 1;
}

static int marker_write(const char *device, bool set, struct fv_err *err)
{
	_cleanup_close_ int fd = open(device, O_RDWR | O_EXCL | O_CLOEXEC);
	uint64_t size;
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open '%s' for writing", device);
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		return fv_err_set(err, errno, "cannot get the size of '%s'", device);
	unsigned char b[MARKER_SIZE] = {0};
	if (set) {
		memcpy(b + M_MAGIC, MARKER_MAGIC, sizeof(MARKER_MAGIC));
		fv_put_le64(b + M_VERSION, 1);
		fv_put_le64(b + M_DEVSIZE, size);
		if (getrandom(b + M_NONCE, 16, 0) != 16)
			return fv_err_set(err, errno, "cannot make a nonce for '%s'", device);
		fv_put_le64(b + M_STARTED, (uint64_t)time(NULL));
	}
	int r = fv_io_exact(fd, b, sizeof(b), marker_offset(size), true);
	if (r < 0)
		return fv_err_set(err, -r, "cannot write the luksFormat marker of '%s'", device);
	if (fdatasync(fd) < 0)
		return fv_err_set(err, errno, "cannot flush the luksFormat marker of '%s'", device);
	return 0;
}

/* With a valid marker: the device may hold only what an interrupted
 * luksFormat of ours writes. No signature but a LUKS one (bad checksum
 * included), and the last MiB, where luksFormat never writes, zero but for
 * the marker. */
static int check_unfinished(int fd, const char *device, uint64_t size, struct fv_err *err)
{
	blkid_probe pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, 0, 0) < 0) {
		if (pr)
			blkid_free_probe(pr);
		return fv_err_msg(err, EIO, "cannot probe device '%s'", device);
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_BADCSUM);
	blkid_probe_enable_partitions(pr, 1);
	int rc = blkid_do_safeprobe(pr);
	const char *type = NULL;
	char found[64] = "";
	if (rc == 0 && blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0 && type)
		snprintf(found, sizeof(found), "%s", type);
	else if (rc == 0)
		snprintf(found, sizeof(found), "a partition table");
	blkid_free_probe(pr);
	if (rc < 0 || (rc == 0 && strcmp(found, "crypto_LUKS")))
		return fv_err_msg(err, EEXIST,
				  "device '%s' holds data (%s%s), and the marker of an unfinished luksFormat of ours; "
				  "refusing to format it",
				  device, rc < 0 ? "conflicting signatures" : "a ", rc < 0 ? "" : found);
	uint64_t mib = 1024 * 1024, from = size > 2 * mib ? size - mib : 0, moff = marker_offset(size);
	_cleanup_free_ unsigned char *buf = malloc(mib);
	if (!buf)
		return fv_err_set(err, ENOMEM, "checking '%s'", device);
	int r = fv_io_exact(fd, buf, (size_t)(size - from), from, false);
	if (r < 0)
		return fv_err_set(err, -r, "cannot read the end of '%s'", device);
	for (uint64_t i = 0; i < size - from; i++)
		if (buf[i] && !(from + i >= moff && from + i < moff + MARKER_SIZE))
			return fv_err_msg(err, EEXIST,
					  "device '%s' holds the marker of an unfinished luksFormat of ours, but byte %llu, "
					  "where luksFormat never writes, is not zero; refusing to format it",
					  device, (unsigned long long)(from + i));
	return 0;
}

static int split_cipher(char *cipher, size_t size, char **mode)
{
	snprintf(cipher, size, "%s", fv_crypt_conf.cipher);
	char *dash = strchr(cipher, '-');
	if (!dash)
		return -1;
	*dash = '\0';
	*mode = dash + 1;
	return 0;
}

/* luksFormat, LUKS2: a fresh volume key, one keyslot for the key (argon2id,
 * bounded), the label binding it to the volume and the "unformatted" token,
 * between the marker's write and its clearing. */
static int luks_format(const char *device, const char *target, const struct key *k, struct fv_err *err)
{
	char cipher[48], *mode, label[48];
	if (split_cipher(cipher, sizeof(cipher), &mode) < 0)
		return fv_err_msg(err, EINVAL, "cipher '%s' is not <cipher>-<mode>", fv_crypt_conf.cipher);
	volume_label(target, label, sizeof(label));
	if (marker_write(device, true, err) < 0)
		return err->code;
	fv_log(LOG_NOTICE, "luksFormat %s (LUKS2, %s, %u-bit key, argon2id %u KiB) for volume %s", device,
	       fv_crypt_conf.cipher, fv_crypt_conf.key_bits, fv_crypt_conf.pbkdf_memory_kib, label);
	_cleanup_cd_ struct crypt_device *cd = NULL;
	struct crypt_pbkdf_type pbkdf = {
		.type = CRYPT_KDF_ARGON2ID,
		.hash = "sha256",
		.max_memory_kb = fv_crypt_conf.pbkdf_memory_kib,
		.parallel_threads = 1,
	};
	if (fv_crypt_conf.pbkdf_iterations) {
		pbkdf.iterations = fv_crypt_conf.pbkdf_iterations;
		pbkdf.flags = CRYPT_PBKDF_NO_BENCHMARK;
	} else {
		pbkdf.time_ms = fv_crypt_conf.pbkdf_time_ms;
	}
	struct crypt_params_luks2 params = {.pbkdf = &pbkdf, .label = label, .subsystem = "flexvol"};
	int rc;
	last_error[0] = '\0';
	if ((rc = crypt_init(&cd, device)) < 0)
		return lib_err(err, rc, "cannot open '%s' for luksFormat", device);
	if ((rc = crypt_format(cd, CRYPT_LUKS2, cipher, mode, NULL, NULL, fv_crypt_conf.key_bits / 8, &params)) < 0)
		return lib_err(err, rc, "luksFormat of '%s' failed", device);
	if ((rc = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, (const char *)k->buf, k->len)) < 0)
		return lib_err(err, rc, "cannot add the key to the LUKS header of '%s'", device);
	if ((rc = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, "{\"type\":\"" TOKEN_UNFORMATTED "\",\"keyslots\":[]}")) < 0)
		return lib_err(err, rc, "cannot write the LUKS2 token of '%s'", device);
	crypt_free(fv_steal_ptr(&cd));
	if (marker_write(device, false, err) < 0)
		return err->code;
	fv_log(LOG_NOTICE, "luksFormat %s done (marker cleared)", device);
	return 0;
}

/* The "unformatted" token's number, or -1. */
static int pending_token(struct crypt_device *cd)
{
	if (strcmp(crypt_get_type(cd), CRYPT_LUKS2))
		return -1;
	int max = crypt_token_max(CRYPT_LUKS2);
	for (int t = 0; t < max; t++) {
		const char *type = NULL;
		crypt_token_info s = crypt_token_status(cd, t, &type);
		if (s != CRYPT_TOKEN_INACTIVE && s != CRYPT_TOKEN_INVALID && type && !strcmp(type, TOKEN_UNFORMATTED))
			return t;
	}
	return -1;
}

/* Refuses a header whose keyslots would cost more than a node should spend
 * on one unlock. */
static int check_costs(struct crypt_device *cd, const char *device, struct fv_err *err)
{
	int max = crypt_keyslot_max(crypt_get_type(cd));
	for (int s = 0; s < max; s++) {
		crypt_keyslot_info st = crypt_keyslot_status(cd, s);
		struct crypt_pbkdf_type p;
		if ((st != CRYPT_SLOT_ACTIVE && st != CRYPT_SLOT_ACTIVE_LAST) || crypt_keyslot_get_pbkdf(cd, s, &p) < 0)
			continue;
		bool pbkdf2 = p.type && !strcmp(p.type, CRYPT_KDF_PBKDF2);
		if ((pbkdf2 && p.iterations > MAX_PBKDF2_ITERATIONS) ||
		    (!pbkdf2 && (p.max_memory_kb > MAX_ARGON_MEMORY_KIB || p.iterations > MAX_ARGON_TIME)))
			return fv_err_msg(err, EPERM,
					  "keyslot %d of the LUKS header on '%s' asks for %s with %u iterations and %u KiB: "
					  "more than this driver spends on an unlock (argon2 at most %u iterations and %u KiB, "
					  "pbkdf2 at most %u iterations); refused",
					  s, device, p.type ? p.type : "?", p.iterations, p.max_memory_kb, MAX_ARGON_TIME,
					  MAX_ARGON_MEMORY_KIB, MAX_PBKDF2_ITERATIONS);
	}
	return 0;
}

static int device_size(const char *device, int *fd_out, uint64_t *size, struct fv_err *err)
{
	int fd = open(device, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_set(err, errno, "cannot open device '%s'", device);
	if (ioctl(fd, BLKGETSIZE64, size) < 0) {
		int e = errno;
		close(fd);
		return fv_err_set(err, e, "cannot get the size of '%s'", device);
	}
	*fd_out = fd;
	return 0;
}

static int need_dm(struct fv_err *err)
{
	char why[200];
	if (fv_dmcrypt_kernel_ok(why, sizeof(why)))
		return 0;
	return fv_err_msg(err, ENOTSUP, "cannot open an encrypted volume on this node: %s", why);
}

/* What is on a device that libcryptsetup finds no LUKS header on: blank
 * (1), or an error naming what is there. */
static int blank_for_luks(const char *device, struct fv_err *err)
{
	enum fv_block_content content;
	_cleanup_free_ char *fstype = NULL;
	if (fv_block_probe(device, &content, &fstype, err) < 0)
		return fv_err_prefix(err, "encrypted volume");
	if (content == FV_BLOCK_BLANK)
		return 1;
	if (!strcmp(fstype, "crypto_LUKS"))
		return fv_err_msg(err, EEXIST,
				  "device '%s' holds a LUKS header that libcryptsetup cannot load%s%s (damaged, or a "
				  "luksFormat that was not ours); refusing to format it",
				  device, last_error[0] ? ": " : "", last_error);
	return fv_err_msg(err, EEXIST,
			  "device '%s' holds %s %s file system, not a LUKS container: an encrypted volume formats "
			  "only a blank device; refusing to touch it",
			  device, content == FV_BLOCK_UNFINISHED ? "an unfinished" : "a", fstype);
}

int fv_crypt_open(const char *device, const char *target, const struct fv_block_spec *spec, char *mapped,
		  size_t size, struct fv_err *err)
{
	lib_setup();
	if (spec->key_in_options)
		return fv_err_msg(err, EPERM,
				  "option 'kubernetes.io/secret/encryptionKey' reached mountdevice, where kubelet never "
				  "passes a secret: it was written in the volume's options, in plain text; refused (keys come "
				  "from the node's key-dir: docs/encryption.md)");
	char name[FV_DMCRYPT_NAME_MAX];
	fv_dmcrypt_name(target, name);
	snprintf(mapped, size, "/dev/mapper/%s", name);
	dev_t devno, mdev, lower;
	if (fv_block_devno(device, &devno, err) < 0)
		return err->code;
	bool open = fv_dmcrypt_find(name, &mdev, &lower) == 1;
	if (open && lower != devno)
		return fv_err_msg(err, EBUSY,
				  "mapping %s is open over device %u:%u, not over %s (%u:%u): another disk, or a stale "
				  "mapping (close it with cryptsetup close %s); refused",
				  name, major(lower), minor(lower), device, major(devno), minor(devno), name);

	_cleanup_close_ int fd = -1;
	uint64_t dsize;
	if (device_size(device, &fd, &dsize, err) < 0)
		return err->code;
	if (dsize < 32ULL * 1024 * 1024)
		return fv_err_msg(err, ENOSPC, "device '%s' is too small for an encrypted volume (%llu bytes; the LUKS2 "
					       "header takes 16 MiB)",
				  device, (unsigned long long)dsize);
	int marker = marker_read(fd, dsize);
	if (marker < 0)
		return fv_err_set(err, -marker, "cannot read the end of '%s'", device);
	_cleanup_key_ struct key k = {0};
	_cleanup_cd_ struct crypt_device *cd = NULL;
	int rc;
	last_error[0] = '\0';
	if ((rc = crypt_init(&cd, device)) < 0)
		return lib_err(err, rc, "libcryptsetup cannot open '%s'", device);
	bool loaded = crypt_load(cd, CRYPT_LUKS, NULL) == 0;
	if (marker == 1 || !loaded) {
		if (open)
			return fv_err_msg(err, EIO, "mapping %s is open, but '%s' shows no complete LUKS header: refused", name,
					  device);
		if (marker == 1) {
			if (check_unfinished(fd, device, dsize, err) < 0)
				return err->code;
			fv_log(LOG_WARNING, "%s holds an unfinished luksFormat of ours: formatting it again", device);
		} else if (blank_for_luks(device, err) < 0) {
			return err->code;
		}
		if (spec->readonly)
			return fv_err_msg(err, EROFS, "device '%s' is %s and the volume is read-only: not formatting it",
					  device, marker == 1 ? "partly formatted" : "blank");
		if (get_key(spec, target, &k, err) < 0 || need_dm(err) < 0)
			return err->code;
		crypt_free(fv_steal_ptr(&cd));
		close(fv_steal_fd(&fd));
		if (luks_format(device, target, &k, err) < 0)
			return err->code;
		last_error[0] = '\0';
		if ((rc = crypt_init(&cd, device)) < 0 || (rc = crypt_load(cd, CRYPT_LUKS2, NULL)) < 0)
			return lib_err(err, rc, "cannot load the LUKS header just written to '%s'", device);
	}
	const char *label = crypt_get_label(cd);
	char want[48];
	volume_label(target, want, sizeof(want));
	if (label && *label && strcmp(label, want))
		return fv_err_msg(err, EPERM,
				  "the LUKS container on '%s' is labelled for volume '%s', not '%s': another volume's disk? "
				  "refused (after renaming a volume, relabel it: cryptsetup config --label %s)",
				  device, label, want, want);
	int token = pending_token(cd);
	if (open && token < 0) {
		fv_log(LOG_INFO, "%s is already open over %s", name, device);
		return 0;
	}
	if (token >= 0 && spec->readonly)
		return fv_err_msg(err, EROFS, "the encrypted volume on '%s' was never formatted and is read-only: not "
					      "formatting it",
				  device);
	if (check_costs(cd, device, err) < 0)
		return err->code;
	if (!open) {
		if (!k.buf && get_key(spec, target, &k, err) < 0)
			return err->code;
		/* The key first (no mapping: only a check), so that a wrong key says so
		 * even where the kernel cannot map. */
		last_error[0] = '\0';
		rc = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *)k.buf, k.len, 0);
		if (rc == -EPERM)
			return fv_err_msg(err, EPERM,
					  "the key does not open the LUKS container on '%s' (wrong key, or another volume's "
					  "disk)",
					  device);
		if (rc < 0)
			return lib_err(err, rc, "cannot unlock the LUKS container on '%s'", device);
		if (need_dm(err) < 0)
			return err->code;
		/* The volume key stays in the mapping's table, not in the kernel
		 * keyring: expandfs resizes the mapping without the key. */
		crypt_volume_key_keyring(cd, 0);
		uint32_t flags = (spec->readonly ? CRYPT_ACTIVATE_READONLY : 0) |
				 (fv_crypt_conf.allow_discards ? CRYPT_ACTIVATE_ALLOW_DISCARDS : 0);
		last_error[0] = '\0';
		rc = crypt_activate_by_passphrase(cd, name, CRYPT_ANY_SLOT, (const char *)k.buf, k.len, flags);
		key_free(&k);
		if (rc < 0)
			return lib_err(err, rc, "cannot open the LUKS container on '%s'", device);
		fv_log(LOG_NOTICE, "opened %s over %s%s", name, device, flags & CRYPT_ACTIVATE_READONLY ? " (read-only)" : "");
	}
	if (token >= 0) {
		const char *want_fs = spec->fstype ? spec->fstype : "ext4";
		fv_log(LOG_NOTICE, "%s: formatting the new encrypted volume as %s", mapped, want_fs);
		/* force: the inner device holds the random-looking plaintext of a
		 * fresh container, or our own format cut short. */
		if (fv_format_device(mapped, want_fs, true, spec->mkfs_options, err) < 0)
			return fv_err_prefix(err, "formatting '%s'", mapped);
		last_error[0] = '\0';
		if ((rc = crypt_token_json_set(cd, token, NULL)) < 0)
			return lib_err(err, rc, "cannot remove the LUKS2 token of '%s'", device);
	}
	return 0;
}

int fv_crypt_close(const char *target, struct fv_err *err)
{
	char name[FV_DMCRYPT_NAME_MAX];
	dev_t dev, lower;
	fv_dmcrypt_name(target, name);
	if (!fv_dmcrypt_find(name, &dev, &lower))
		return 0;
	lib_setup();
	_cleanup_cd_ struct crypt_device *cd = NULL;
	last_error[0] = '\0';
	int rc = crypt_init_by_name(&cd, name);
	if (rc >= 0)
		rc = crypt_deactivate(cd, name);
	if (rc == -ENODEV)
		return 0;
	if (rc < 0)
		return lib_err(err, rc, "cannot close mapping %s (still in use?)", name);
	fv_log(LOG_NOTICE, "closed %s (over %u:%u)", name, major(lower), minor(lower));
	return 0;
}

int fv_crypt_grow(const char *device, const char *mount_dir, char *mapped, size_t size, struct fv_err *err)
{
	char name[FV_DMCRYPT_NAME_MAX];
	dev_t dev, lower, devno;
	fv_dmcrypt_name(mount_dir, name);
	if (!fv_dmcrypt_find(name, &dev, &lower))
		return 0;
	if (fv_block_devno(device, &devno, err) < 0)
		return err->code;
	if (lower != devno)
		return fv_err_msg(err, EBUSY, "mapping %s is open over device %u:%u, not over %s: refused", name,
				  major(lower), minor(lower), device);
	lib_setup();
	_cleanup_cd_ struct crypt_device *cd = NULL;
	last_error[0] = '\0';
	int rc = crypt_init_by_name(&cd, name);
	if (rc >= 0)
		rc = crypt_resize(cd, name, 0);
	if (rc < 0)
		return lib_err(err, rc, "cannot grow mapping %s", name);
	snprintf(mapped, size, "/dev/mapper/%s", name);
	fv_log(LOG_NOTICE, "grew %s to fill %s", name, device);
	return 1;
}

#endif
