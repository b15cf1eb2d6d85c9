/* `<driver> doctor [--json] [--node NAME]`: is this node ready for the
 * driver? Each check is one line `OK|WARN|FAIL <name>: <detail>`; exit 0
 * when nothing FAILs. Not a kubelet call: kubelet never sends it. */
#pragma once
#include "flexvol.h"

enum fv_check { FV_CHECK_OK, FV_CHECK_WARN, FV_CHECK_FAIL };

/* Adds one check; detail says what was found and, unless OK, what to do. */
__attribute__((format(printf, 4, 5))) void fv_doctor_add(struct fv_doctor *d, enum fv_check status,
							 const char *name, const char *fmt, ...);

/* The whole command; returns the exit status. */
int fv_doctor_main(struct fv_ctx *ctx, const char *conf_path, int argc, char **argv);
