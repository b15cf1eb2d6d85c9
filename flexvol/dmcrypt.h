/* What the kernel shows of flexvol's dm-crypt mappings (sysfs, /proc): their
 * names, the device under each, and whether the kernel can make them. No
 * libcryptsetup here: status and doctor use it in every driver. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* dm names hold at most 127 bytes. */
#define FV_DMCRYPT_NAME_MAX 128
#define FV_DMCRYPT_PREFIX "flexvol-"

/* The mapping name of the volume whose global path is target:
 * "flexvol-<last component>" when that is short and made of [A-Za-z0-9._-];
 * otherwise the safe characters of it, cut, and a hash of the whole name,
 * so that two volumes never share a name. */
void fv_dmcrypt_name(const char *target, char name[FV_DMCRYPT_NAME_MAX]);

/* 1 with *lower set when dev is a flexvol crypt mapping (its name starts with
 * flexvol-, its dm UUID with CRYPT-) over one device; 0 when it is not. */
int fv_dmcrypt_lower(dev_t dev, dev_t *lower);

/* The open mapping called name: 1 with its device numbers, 0 when none. */
int fv_dmcrypt_find(const char *name, dev_t *dev, dev_t *lower);

/* Whether this kernel can make dm-crypt mappings: device-mapper present and
 * dm_crypt loaded, built in or loadable. Fills why with what is missing. */
bool fv_dmcrypt_kernel_ok(char *why, size_t size);

/* Calls fn for each open flexvol crypt mapping. */
void fv_dmcrypt_each(void (*fn)(const char *name, dev_t dev, dev_t lower, void *ud), void *ud);
