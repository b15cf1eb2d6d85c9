/* SMB/CIFS volume options from untrusted pod specs: the source
 * "//server/share" and the cifs mount options, checked before any of it
 * reaches the kernel. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

/* "//server/share": server as fv_host_check takes it, share one component
 * (no '/', '\\', control characters, nor the characters SMB share names
 * cannot hold). Copies both parts into server and share. */
int fv_smb_parse_source(const char *source, char *server, size_t server_size, char *share, size_t share_size,
			struct fv_err *err);

/* The checked user mount options, split for mount(2): *flags gets the MS_*
 * flags (always MS_NOSUID|MS_NODEV, MS_RDONLY when readonly), *fsopts (caller
 * frees; NULL for none) the cifs options for the kernel. vers=1.0 only when
 * allow_smb1 ([smb] allow-smb1). user may be NULL or empty. */
int fv_smb_mount_options(const char *user, bool readonly, bool allow_smb1, unsigned long *flags, char **fsopts,
			 struct fv_err *err);
