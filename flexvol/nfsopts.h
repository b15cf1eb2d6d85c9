/* NFS volume options from untrusted pod specs: the server name, the export
 * path, the subDir template and the mount options, each validated before any
 * of it reaches mount.nfs. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "err.h"
#include "opts.h"

/* A host name (RFC 1123), a dotted IPv4 address or a bracketed IPv6 address
 * ("[fd00::1]"), as mount.nfs takes it in "<server>:<path>". */
int fv_nfs_check_server(const char *server, struct fv_err *err);
/* The same check for any driver's server name; what names it in messages
 * ("option 'server'"). */
int fv_host_check(const char *server, const char *what, struct fv_err *err);

/* Whether server (accepted by fv_nfs_check_server) is named by list, the
 * node's allow-list: entries separated by commas or blanks, each "*" (any
 * server), a host name, an IPv4 or IPv6 address (IPv6 with or without
 * brackets) or address/prefix. A host name entry matches that name only
 * (case-insensitively, a trailing dot ignored); an address or prefix matches
 * only a server written as an address. Nothing is resolved: the answer never
 * depends on DNS. Returns 1 allowed, 0 not, <0 with err for a malformed
 * entry (reported whichever server is asked for). */
int fv_nfs_server_allowed(const char *server, const char *list, struct fv_err *err);

/* An absolute export path: no ".", ".." or empty components, no control
 * characters. A trailing "/" (other than the root itself) is dropped into
 * buf. */
int fv_nfs_check_share(const char *share, char *buf, size_t size, struct fv_err *err);

/* Expands ${pv.name}, ${pod.namespace}, ${pod.name}, ${pod.uid} and
 * ${serviceAccount.name} in tmpl from the kubelet's keys into buf, then
 * checks the result is a relative path with no "..", "." or empty
 * components. Each variable must expand to one path component. */
int fv_nfs_expand_subdir(const char *tmpl, const struct fv_opts *o, char *buf, size_t size, struct fv_err *err);

/* Validates the comma-separated user mount options against the NFS options
 * the kernel and mount.nfs know (values included) and returns, in *out
 * (caller frees), the option string for mount.nfs: the user's options, then
 * nosuid, nodev and ro or rw, which the user may not set. user may be NULL or
 * empty. */
int fv_nfs_mount_options(const char *user, bool readonly, char **out, struct fv_err *err);

/* "<server>:<share>[/<subdir>]", the source mount.nfs and the mount table use. */
int fv_nfs_source(const char *server, const char *share, const char *subdir, char *buf, size_t size,
		  struct fv_err *err);

/* How many leading components of a subDir template make the per-pod
 * directory: up to and including the first one that uses ${pod.uid} or
 * ${pod.name}. 0 when the template uses neither (a shared directory). Each
 * variable expands to one component, so the count holds for the expansion. */
size_t fv_nfs_per_pod_depth(const char *tmpl);

/* A user or group id in decimal, 0 to 4294967294 (-1 means "unchanged" to
 * chown and is refused). */
int fv_nfs_parse_id(const char *s, const char *what, unsigned int *id, struct fv_err *err);

/* An octal directory mode up to 03777 (setgid and sticky allowed, setuid
 * means nothing for a directory and is refused). */
int fv_parse_dir_mode(const char *s, const char *what, unsigned int *mode, struct fv_err *err);
