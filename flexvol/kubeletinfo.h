/* Where this node's kubelet looks for drivers and keeps its volumes, read
 * from its own command line and config file through /proc (for `doctor` and
 * `status`). FLEXVOL_PROC_ROOT replaces /proc. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#define FV_DEFAULT_PLUGIN_DIR "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
#define FV_DEFAULT_KUBELET_ROOT "/var/lib/kubelet"

struct fv_kubelet_info {
	pid_t pid;                 /* 0: no kubelet process visible */
	int count;                 /* kubelet processes seen */
	char plugin_dir[4096];     /* as kubelet sees it; the default when not set */
	char plugin_dir_from[4200]; /* "--volume-plugin-dir", "volumePluginDir in <file>", "the default" */
	char root_dir[4096];       /* --root-dir, or the default */
	char config_error[512];    /* its --config could not be read: why */
};

/* Finds the process whose argv[0] is `name` (kubelet, or hyperkube with
 * argv[1] name) and reads flag (e.g. "volume-plugin-dir"), then the config
 * file's conf_key (e.g. "volumePluginDir"), else def. For the controller-
 * manager, flag is "flex-volume-plugin-dir" and conf_key NULL. */
void fv_kubelet_find(const char *name, const char *flag, const char *conf_key, const char *def,
		     struct fv_kubelet_info *k);

/* The /proc to read: $FLEXVOL_PROC_ROOT or /proc. */
const char *fv_proc_root(void);
