/* Mount options from untrusted volume specs, checked against a typed
 * allow-list per file system (nfs, ext4, xfs, cifs...). One checker, many
 * tables: each driver says what its file system takes, and what the user
 * may never set (and why). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

enum fv_mountopt_kind {
	FV_MOPT_FLAG,  /* no value */
	FV_MOPT_UINT,  /* a decimal number in [min, max] */
	FV_MOPT_OCTAL, /* an octal number (a mode) in [min, max] */
	FV_MOPT_ENUM,  /* one of values */
	FV_MOPT_ENUMS, /* one of values, or several joined by ':' (nfs sec=) */
	FV_MOPT_ADDR,  /* an IPv4 or IPv6 address */
};

struct fv_mountopt {
	const char *name;
	const char *group; /* options of one group exclude each other (and repeats) */
	enum fv_mountopt_kind kind;
	unsigned long min, max;
	const char *const *values;
	bool implied;      /* accepted, but the driver adds it anyway: not repeated in the result */
};

#define FV_MOPT_F(n, g) {n, g, FV_MOPT_FLAG, 0, 0, NULL, false}
#define FV_MOPT_U(n, g, lo, hi) {n, g, FV_MOPT_UINT, lo, hi, NULL, false}
#define FV_MOPT_O(n, g, lo, hi) {n, g, FV_MOPT_OCTAL, lo, hi, NULL, false}
#define FV_MOPT_E(n, g, v) {n, g, FV_MOPT_ENUM, 0, 0, v, false}

/* Known to mount, but not the user's to set. */
struct fv_mountopt_refusal {
	const char *name;
	const char *why;
};

struct fv_mountopt_table {
	const char *what; /* how a refusal names the set, e.g. "an NFS mount option this driver accepts (see nfs(5))" */
	const struct fv_mountopt *opts;
	size_t nopts;
	const struct fv_mountopt_refusal *refused;
	size_t nrefused;
};

#define FV_MOUNTOPTS_MAX 1024

/* Checks the comma-separated user options (key names the volume option in
 * messages, e.g. "mountOptions") against table and returns in *out (caller
 * frees; NULL when nothing remains) the accepted ones, implied ones left out.
 * user may be NULL or empty. No control characters, no empty entries, at
 * most FV_MOUNTOPTS_MAX characters. */
int fv_mountopts_check(const struct fv_mountopt_table *table, const char *key, const char *user, char **out,
		       struct fv_err *err);
