/* Logging to syslog (LOG_DAEMON, tag flexvol-<driver>). Nothing may reach
 * stdout or stderr: kubelet parses both as the reply. */
#pragma once
#include <syslog.h>
#include "opts.h"

void fv_log_open(const char *driver);
/* Every later message has these options' secret values masked. */
void fv_log_redact(const struct fv_opts *opts);
void fv_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Points fd 2 at an anonymous file so that stray library output cannot reach
 * kubelet; fv_log_flush_stderr() moves whatever landed there into the log. */
void fv_log_capture_stderr(void);
void fv_log_flush_stderr(void);
