/* The provider interface. A driver binary is one `struct fv_provider` handed
 * to fv_main(); the core does argv checks, option parsing, locking, logging
 * and the single JSON reply. A NULL operation answers "Not supported". */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "err.h"
#include "opts.h"
#include "config.h"

struct fv_caps {
	bool attach;
	bool selinux_relabel;
	bool supports_metrics;
	bool fs_group;
	bool requires_fs_resize;
};

/* The arguments of one call, already split out of argv. Unused ones are NULL/0. */
struct fv_call {
	const char *verb;
	const struct fv_opts *opts;   /* the <json> argument */
	const char *dir;              /* pod volume dir, global mount path or deviceMountPath */
	const char *device;           /* waitforattach, mountdevice, expandfs */
	const char *node;             /* attach, isattached, detach */
	const char *volume_name;      /* detach: the PV (or inline volume) name */
	uint64_t new_size, old_size;  /* expandvolume, expandfs */
};

/* What an operation hands back beyond success or failure. */
struct fv_result {
	char *device;          /* attach, waitforattach; owned, freed by the core */
	bool attached;         /* isattached */
	uint64_t new_size;     /* expandvolume */
};

/* Per-process state shared by the operations of one call. */
struct fv_ctx {
	const struct fv_provider *provider;
	struct fv_config *config;     /* /etc/flexvol/<driver>.conf, possibly empty */
	const char *run_dir;          /* /run/flexvol or $FLEXVOL_RUN_DIR */
	const char *config_dir;       /* /etc/flexvol or $FLEXVOL_CONFIG_DIR */
	void *data;                   /* provider's own state from setup() */
};

typedef int (*fv_op)(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err);

/* A program the driver runs on the node, for `doctor` (found as fv_tool_path
 * finds it). optional: the driver works without it (e.g. udevadm). */
struct fv_program {
	const char *name, *package;
	bool optional;
};

/* `doctor` collects its checks here (doctor.h adds to it). */
struct fv_doctor;

struct fv_provider {
	const char *name;             /* == binary name == <driver> in <vendor>~<driver> */
	const char *summary;          /* one line for --help */
	const char *help;             /* option and config reference for --help */
	const char *help_core;        /* printed after help: the core's options it reads (fv_block_spec_help) */
	/* Capabilities for init; may depend on configuration. */
	void (*capabilities)(struct fv_ctx *ctx, struct fv_caps *caps);
	/* Reads configuration into ctx->data before any call but init. */
	int (*setup)(struct fv_ctx *ctx, struct fv_err *err);
	void (*teardown)(struct fv_ctx *ctx);
	fv_op getvolumename, attach, detach, waitforattach, isattached, mountdevice, unmountdevice, mount, unmount,
		expandvolume, expandfs;

	/* For `doctor` and `status` (operator commands; kubelet never sends them). */
	/* Every "section.key" of the config file the driver reads (NULL-terminated):
	 * any other key is reported by name. */
	const char *const *config_keys;
	/* The driver refuses its config file unless it is mode 0600 and owned by
	 * root (it holds credentials). Any file with a password or secret key is
	 * held to this as well. */
	bool config_private;
	/* The node programs it runs and the file systems the kernel must know
	 * (/proc/filesystems), both NULL-terminated; loop devices (/dev/loop-control). */
	const struct fv_program *programs;
	const char *const *filesystems;
	bool needs_loop;
	/* The driver's own checks (a cloud driver: credentials, this node's
	 * instance, endpoints), after setup() succeeded; ctx->run_dir is a scratch
	 * dir, so a cached token never hides a credential that stopped working. */
	void (*doctor)(struct fv_ctx *ctx, const char *node, struct fv_doctor *d);
	/* The directory whose files the driver binds to loop devices (status lists
	 * them), after setup(). */
	const char *(*loop_image_root)(struct fv_ctx *ctx);
};

int fv_main(const struct fv_provider *provider, int argc, char **argv);

/* A ready operation for unmount and unmountdevice when nothing but the mount
 * has to go: unmounts everything on call->dir. Not mounted, or no such
 * directory, is success (kubelet calls unmount even on a plain directory). */
int fv_op_unmount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err);

/* True once SIGTERM arrived: long waits poll it and give up with a Failure. */
bool fv_terminated(void);
