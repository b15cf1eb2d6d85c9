/* The LUKS2 container of an encrypted block volume (docs/encryption.md),
 * through libcryptsetup: the key goes to it in memory only, never through
 * argv, a pipe or a file of ours. A blank device is luksFormat'ed and its
 * inner mapping formatted; a device with a LUKS header is opened, never
 * formatted again. The mapping is /dev/mapper/flexvol-<volume>
 * (dmcrypt.h). Built without libcryptsetup (FV_HAVE_CRYPT=0, the static
 * bundle), every encrypted volume is refused with a message saying so. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "block.h"
#include "err.h"

/* Whether this build can open encrypted volumes. */
extern const bool fv_crypt_built;

/* Opens the container on device for the volume whose global path is target
 * and puts the mapping's path in mapped. Formats it first when the device
 * is blank (or holds our own unfinished luksFormat), and formats the inner
 * mapping when its first format never finished; a mapping already open over
 * device: success, without reading the key. */
int fv_crypt_open(const char *device, const char *target, const struct fv_block_spec *spec, char *mapped,
		  size_t size, struct fv_err *err);

/* Closes the volume's mapping; 0 when none was open (or it is closed now). */
int fv_crypt_close(const char *target, struct fv_err *err);

/* For a plain volume: an error when device holds a LUKS container (the
 * disk of an encrypted volume), naming it. */
int fv_crypt_refuse_luks(const char *device, struct fv_err *err);

/* expandfs: when mount_dir is mounted from a flexvol mapping over device,
 * grows the mapping to fill device and returns 1 with its path in mapped
 * (the file system grows there); 0 when the volume is not encrypted. */
int fv_crypt_grow(const char *device, const char *mount_dir, char *mapped, size_t size, struct fv_err *err);
