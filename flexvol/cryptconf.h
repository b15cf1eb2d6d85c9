/* Encryption at rest (docs/encryption.md): the node's settings, read once per
 * call from the driver's section, and where an encrypted volume's key comes
 * from (a root-only file in the node's key directory). No libcryptsetup here:
 * every driver loads the settings, only the block drivers open containers
 * (crypt.h). */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "err.h"

#define FV_CRYPT_DEFAULT_CIPHER "aes-xts-plain64"
#define FV_CRYPT_DEFAULT_PBKDF_MEMORY_KIB 65536
#define FV_CRYPT_DEFAULT_PBKDF_TIME_MS 1000
/* A key file holds at least 16 and at most 8 KiB bytes, used whole (as
 * `cryptsetup --key-file` reads it). */
#define FV_CRYPT_KEY_MIN 16
#define FV_CRYPT_KEY_MAX 8192

struct fv_crypt_conf {
	char key_dir[PATH_MAX];     /* key-dir; "" when not configured */
	char cipher[48];            /* cipher: <cipher>-<mode>, e.g. aes-xts-plain64 */
	unsigned key_bits;          /* key-size (bits) of the volume key */
	unsigned pbkdf_memory_kib;  /* pbkdf-memory: argon2id memory cost, KiB */
	unsigned pbkdf_time_ms;     /* pbkdf-time: the unlock time argon2id is tuned to */
	unsigned pbkdf_iterations;  /* pbkdf-iterations: a fixed cost instead of a benchmark; 0: benchmark */
	bool allow_discards;        /* allow-discards: pass discards through the mapping */
};

/* The keys fv_crypt_conf_load reads, for a block driver's config_keys (so
 * doctor knows them): FV_CRYPT_CONFIG_KEYS("loop"). */
#define FV_CRYPT_CONFIG_KEYS(section)                                                                     \
	section ".key-dir", section ".cipher", section ".key-size", section ".pbkdf-memory", section ".pbkdf-time", \
		section ".pbkdf-iterations", section ".allow-discards"

/* The settings of this call (loaded by main.c; the defaults until then). */
extern struct fv_crypt_conf fv_crypt_conf;

int fv_crypt_conf_load(const struct fv_config *c, const char *driver, struct fv_err *err);

/* A key name is one path component: [A-Za-z0-9._-], not starting with '.',
 * at most 128 bytes. */
bool fv_crypt_key_name_ok(const char *name);

/* Reads <key-dir>/<name> into a fresh buffer (caller wipes and frees it with
 * fv_crypt_key_free). The file must be a regular file owned by root with
 * mode 0600 or 0400, in a directory owned by root that no one else may
 * write; anything else is refused. */
int fv_crypt_key_read(const char *name, unsigned char **key, size_t *len, struct fv_err *err);

/* explicit_bzero, then free. */
void fv_crypt_key_free(unsigned char *key, size_t len);
