/* `<driver> status [--json] [--kubelet-root DIR]`: what this driver holds on
 * this node, read from the kernel's own tables (mountinfo, sysfs,
 * /proc/locks), never from state files: global mounts and their pod binds,
 * loop devices, stale mounts, orphans and held locks. Not a kubelet call. */
#pragma once
#include "flexvol.h"

/* The whole command; returns the exit status. */
int fv_status_main(struct fv_ctx *ctx, const char *conf_path, int argc, char **argv);
