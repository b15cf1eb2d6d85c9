/* INI configuration (/etc/flexvol/<driver>.conf), parsed with inih. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

struct fv_config;

/* A missing file gives an empty configuration; a malformed one an error. */
struct fv_config *fv_config_load(const char *path, struct fv_err *err);
void fv_config_free(struct fv_config *c);
/* The value, or def when the key is absent. Section and key match case-insensitively. */
const char *fv_config_get(const struct fv_config *c, const char *section, const char *key, const char *def);
/* Integer in [min,max]; def when absent; <0 with err on a bad value. */
int fv_config_get_long(const struct fv_config *c, const char *section, const char *key, long def, long min, long max,
		       long *out, struct fv_err *err);
int fv_config_get_bool(const struct fv_config *c, const char *section, const char *key, bool def, bool *out,
		       struct fv_err *err);
/* An absolute path of at most size-1 bytes into buf; def when absent. */
int fv_config_get_path(const struct fv_config *c, const char *section, const char *key, const char *def, char *buf,
		       size_t size, struct fv_err *err);
/* Path the configuration came from, and whether the file existed. */
const char *fv_config_path(const struct fv_config *c);
bool fv_config_exists(const struct fv_config *c);
