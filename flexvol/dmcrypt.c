#include "dmcrypt.h"
#include <glob.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "cleanup.h"
#include "path.h"

static bool safe_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == '-';
}

void fv_dmcrypt_name(const char *target, char name[FV_DMCRYPT_NAME_MAX])
{
	size_t n = strlen(target);
	while (n > 1 && target[n - 1] == '/')
		n--;
	size_t b = n;
	while (b && target[b - 1] != '/')
		b--;
	const char *last = target + b;
	size_t len = n - b;
	bool plain = len > 0 && len <= FV_DMCRYPT_NAME_MAX - 1 - strlen(FV_DMCRYPT_PREFIX) && last[0] != '.';
	for (size_t i = 0; plain && i < len; i++)
		plain = safe_char(last[i]);
	if (plain) {
		snprintf(name, FV_DMCRYPT_NAME_MAX, "%s%.*s", FV_DMCRYPT_PREFIX, (int)len, last);
		return;
	}
	/* prefix + up to 80 safe characters + '-' + 32 hex digits of SHA-256: 121 bytes. */
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct sha256_ctx sha;
	sha256_init(&sha);
	sha256_update(&sha, len, (const uint8_t *)last);
	sha256_digest(&sha, sizeof(digest), digest);
	size_t o = (size_t)snprintf(name, FV_DMCRYPT_NAME_MAX, "%s", FV_DMCRYPT_PREFIX);
	for (size_t i = 0; i < len && o < strlen(FV_DMCRYPT_PREFIX) + 80; i++)
		name[o++] = safe_char(last[i]) ? last[i] : '_';
	name[o++] = '-';
	for (int i = 0; i < 16; i++)
		o += (size_t)snprintf(name + o, FV_DMCRYPT_NAME_MAX - o, "%02x", digest[i]);
}

static int read_devno(const char *path, dev_t *dev)
{
	char num[32];
	unsigned maj, min;
	if (fv_path_read_line(path, num, sizeof(num)) < 0 || sscanf(num, "%u:%u", &maj, &min) != 2)
		return -1;
	*dev = makedev(maj, min);
	return 0;
}

/* The device under the dm device whose sysfs dir is dir (/sys/block/dm-N):
 * 0 when it is a flexvol crypt mapping over exactly one device. */
static int mapping_at(const char *dir, char *name, size_t nsize, dev_t *lower)
{
	char path[256], uuid[160];
	snprintf(path, sizeof(path), "%s/dm/name", dir);
	if (fv_path_read_line(path, name, nsize) < 0 || strncmp(name, FV_DMCRYPT_PREFIX, strlen(FV_DMCRYPT_PREFIX)))
		return -1;
	snprintf(path, sizeof(path), "%s/dm/uuid", dir);
	if (fv_path_read_line(path, uuid, sizeof(uuid)) < 0 || strncmp(uuid, "CRYPT-", 6))
		return -1;
	glob_t g;
	snprintf(path, sizeof(path), "%s/slaves/*/dev", dir);
	if (glob(path, 0, NULL, &g) != 0)
		return -1;
	int rc = g.gl_pathc == 1 ? read_devno(g.gl_pathv[0], lower) : -1;
	globfree(&g);
	return rc;
}

int fv_dmcrypt_lower(dev_t dev, dev_t *lower)
{
	char dir[64], name[FV_DMCRYPT_NAME_MAX];
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	return mapping_at(dir, name, sizeof(name), lower) == 0 ? 1 : 0;
}

struct find {
	const char *name;
	dev_t dev, lower;
	bool found;
};

static void on_find(const char *name, dev_t dev, dev_t lower, void *ud)
{
	struct find *f = ud;
	if (!strcmp(name, f->name)) {
		f->dev = dev;
		f->lower = lower;
		f->found = true;
	}
}

int fv_dmcrypt_find(const char *name, dev_t *dev, dev_t *lower)
{
	struct find f = {.name = name};
	fv_dmcrypt_each(on_find, &f);
	if (!f.found)
		return 0;
	*dev = f.dev;
	*lower = f.lower;
	return 1;
}

void fv_dmcrypt_each(void (*fn)(const char *name, dev_t dev, dev_t lower, void *ud), void *ud)
{
	glob_t g;
	if (glob("/sys/block/dm-*", 0, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char name[FV_DMCRYPT_NAME_MAX], path[256];
		dev_t dev, lower;
		snprintf(path, sizeof(path), "%s/dev", g.gl_pathv[i]);
		if (mapping_at(g.gl_pathv[i], name, sizeof(name), &lower) == 0 && read_devno(path, &dev) == 0)
			fn(name, dev, lower, ud);
	}
	globfree(&g);
}

/* A line of /proc/misc naming device-mapper: the kernel has it (built in or
 * loaded: dm_mod is loaded with its first user, as dm_crypt is). */
static bool misc_has_dm(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/misc", "re");
	char line[128];
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, " device-mapper"))
			return true;
	return false;
}

/* A module the kernel can load on demand: its name in modules.dep or
 * modules.builtin of the running kernel. */
static bool module_known(const char *file, const char *ko)
{
	struct utsname u;
	if (uname(&u) < 0)
		return false;
	char path[512];
	snprintf(path, sizeof(path), "/lib/modules/%s/%s", u.release, file);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[1024];
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (colon)
			*colon = '\0';
		line[strcspn(line, "\n")] = '\0';
		const char *base = strrchr(line, '/');
		base = base ? base + 1 : line;
		if (!strncmp(base, ko, strlen(ko)))
			return true;
	}
	return false;
}

bool fv_dmcrypt_kernel_ok(char *why, size_t size)
{
	bool dm = misc_has_dm() || access("/sys/module/dm_mod", F_OK) == 0 || module_known("modules.dep", "dm-mod.ko") ||
		  module_known("modules.builtin", "dm-mod.ko");
	bool crypt = access("/sys/module/dm_crypt", F_OK) == 0 || module_known("modules.dep", "dm-crypt.ko") ||
		     module_known("modules.builtin", "dm-crypt.ko");
	if (dm && crypt) {
		snprintf(why, size, "%s", access("/sys/module/dm_crypt", F_OK) == 0 ? "dm-crypt loaded" : "dm-crypt loadable");
		return true;
	}
	snprintf(why, size, "this kernel has no %s (not loaded, not built in, no module for it in /lib/modules)",
		 !dm ? "device-mapper (dm_mod)" : "dm-crypt (dm_crypt)");
	return false;
}
