/* Paths from untrusted options, and the kubelet's directory layout. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "err.h"

/* A relative path with no "..", no empty or "." components and no leading
 * "/". what names the option in the error message. */
int fv_path_check_relative(const char *path, const char *what, struct fv_err *err);

/* openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) of
 * rel below the directory fd root_fd: symlinks may be followed only while
 * they stay beneath root. Returns the fd. */
int fv_path_open_beneath(int root_fd, const char *rel, int flags, mode_t mode, struct fv_err *err);

/* The global mount path kubelet uses for the volume whose pod volume dir is
 * pod_dir (<root>/pods/<uid>/volumes/<vendor>~<driver>/<name>):
 * <root>/plugins/kubernetes.io/flexvolume/<vendor>/<driver>/mounts/<name>. */
int fv_path_global_from_pod_dir(const char *pod_dir, char *buf, size_t size, struct fv_err *err);

/* Requires an absolute path (kubelet always sends one). */
int fv_path_check_absolute(const char *path, const char *what, struct fv_err *err);

/* The first line of a small file (a sysfs attribute), without its newline:
 * 0, or -1 when it cannot be read. */
int fv_path_read_line(const char *path, char *buf, size_t size);
