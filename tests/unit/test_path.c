/* Untrusted relative paths, kubelet's directory layout, lock names. */
#include <errno.h>
#include "lock.h"
#include "path.h"
#include "tap.h"

static int rel(const char *p)
{
	struct fv_err e = {0};
	return fv_path_check_relative(p, "image", &e);
}

static void global(const char *pod, const char *want)
{
	char buf[4096];
	struct fv_err e = {0};
	int r = fv_path_global_from_pod_dir(pod, buf, sizeof(buf), &e);
	if (want)
		CHECK(r == 0 && !strcmp(buf, want), "global path of %s: %s", pod, r == 0 ? buf : e.msg);
	else
		CHECK(r < 0, "'%s' refused as a pod dir", pod);
}

int main(void)
{
	CHECK(rel("a.img") == 0, "plain name");
	CHECK(rel("dir/a.img") == 0, "nested name");
	CHECK(rel("..a/b..") == 0, "dots inside names are fine");
	CHECK(rel("") < 0, "empty");
	CHECK(rel("/etc/passwd") < 0, "absolute");
	CHECK(rel("../x") < 0, "leading ..");
	CHECK(rel("a/../../x") < 0, "inner ..");
	CHECK(rel("a/..") < 0, "trailing ..");
	CHECK(rel("a//b") < 0, "empty component");
	CHECK(rel("./a") < 0, "dot component");
	CHECK(rel("a/") < 0, "trailing slash");

	global("/var/lib/kubelet/pods/1234-ab/volumes/flexvol~loop/pv-1",
	       "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/flexvol/loop/mounts/pv-1");
	global("/data/kl/pods/u/volumes/loop/v/", "/data/kl/plugins/kubernetes.io/flexvolume/loop/mounts/v");
	global("/pods/u/volumes/a~b/v", "/plugins/kubernetes.io/flexvolume/a/b/mounts/v");
	global("/var/lib/kubelet/pods/u/volume/a~b/v", NULL);
	global("/var/lib/kubelet/x/u/volumes/a~b/v", NULL);
	global("volumes/a~b/v", NULL);

	char name[256];
	CHECK(fv_lock_file_name("pv-1.data_x", name, sizeof(name)) == 0 && !strcmp(name, "pv-1.data_x.lock"),
	      "safe characters kept: %s", name);
	CHECK(fv_lock_file_name("image:a/../b", name, sizeof(name)) == 0 && !strcmp(name, "image%3Aa%2F..%2Fb.lock"),
	      "slashes and colons escaped: %s", name);
	CHECK(fv_lock_file_name(".hidden", name, sizeof(name)) == 0 && name[0] == '%', "leading dot escaped: %s", name);
	return tap_done("test_path");
}
