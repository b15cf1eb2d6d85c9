/* clouds.yaml for the cinder driver ([Global] use-clouds = true): the
 * values of one cloud fill what cloud.conf leaves unset, as the Kubernetes
 * OpenStack cloud provider does. Parsed with libyaml. */
#pragma once
#include "err.h"
#include "openstack.h"

/* The file: clouds_file if set, else $OS_CLIENT_CONFIG_FILE,
 * ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml (the first
 * that exists). cloud: the entry under "clouds" ($OS_CLOUD, else
 * "openstack", when NULL). The file holds credentials: it must be owned by
 * root and not readable by others. */
int os_clouds_fill(struct os_conf *conf, const char *clouds_file, const char *cloud, struct fv_err *err);

/* The same on a buffer (for the fuzz harness and tests): path names it in
 * messages. */
int os_clouds_fill_text(struct os_conf *conf, const char *text, size_t len, const char *path, const char *cloud,
			struct fv_err *err);
