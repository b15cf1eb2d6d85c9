/* INI configuration through inih. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include "clouddisk.h"
#include "config.h"
#include "tap.h"

static char *write_tmp(const char *text)
{
	static char path[] = "/tmp/fv-config-XXXXXX";
	char *p = strdup(path);
	int fd = mkstemp(p);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	return p;
}

int main(void)
{
	struct fv_err e = {0};
	char *p = write_tmp("; comment\n[loop]\nimage-root = /srv/images\n\n[Global]\nauth-url=https://k:5000/v3\n"
			    "password = p=a;s s\n[nfs]\nfsgroup = true\nbad-bool = maybe\ntimeout = 30\nbig = 99999\n");
	struct fv_config *c = fv_config_load(p, &e);
	CHECK(c != NULL, "loads: %s", e.msg);
	CHECK(fv_config_exists(c), "file exists");
	CHECK_STR(fv_config_get(c, "loop", "image-root", NULL), "/srv/images", "value with spaces trimmed");
	CHECK_STR(fv_config_get(c, "global", "AUTH-URL", NULL), "https://k:5000/v3", "case-insensitive names");
	CHECK_STR(fv_config_get(c, "Global", "password", NULL), "p=a;s s", "'=' and ';' inside a value are kept");
	CHECK_STR(fv_config_get(c, "loop", "missing", "def"), "def", "default for a missing key");
	CHECK(fv_config_get(c, "other", "image-root", NULL) == NULL, "keys are per section");
	bool b = false;
	CHECK(fv_config_get_bool(c, "nfs", "fsgroup", false, &b, &e) == 0 && b, "bool true");
	CHECK(fv_config_get_bool(c, "nfs", "absent", true, &b, &e) == 0 && b, "bool default");
	CHECK(fv_config_get_bool(c, "nfs", "bad-bool", false, &b, &e) < 0 && strstr(e.msg, "bad-bool"),
	      "bad bool refused: %s", e.msg);
	long n = 0;
	CHECK(fv_config_get_long(c, "nfs", "timeout", 5, 1, 600, &n, &e) == 0 && n == 30, "number");
	CHECK(fv_config_get_long(c, "nfs", "big", 5, 1, 600, &n, &e) < 0, "number out of range refused");
	fv_config_free(c);
	unlink(p);
	free(p);

	c = fv_config_load("/nonexistent/flexvol.conf", &e);
	CHECK(c && !fv_config_exists(c) && !fv_config_get(c, "loop", "image-root", NULL), "missing file is empty config");
	fv_config_free(c);

	/* Paths, and the node-side keys every cloud driver shares. */
	p = write_tmp("[cloud]\ndevice-dir = /srv/by-id\nsysfs-root = /srv/sys\nudevadm = none\n"
		      "attach-timeout = 40\nrescan-after = 3\nscsi-rescan = false\n"
		      "[rel]\ndevice-dir = by-id\n[udev]\nudevadm = /opt/udevadm\n[badudev]\nudevadm = udevadm\n");
	c = fv_config_load(p, &e);
	char buf[16];
	CHECK(fv_config_get_path(c, "cloud", "device-dir", "/x", buf, sizeof(buf), &e) == 0 && !strcmp(buf, "/srv/by-id"),
	      "absolute path");
	CHECK(fv_config_get_path(c, "cloud", "absent", "/def", buf, sizeof(buf), &e) == 0 && !strcmp(buf, "/def"),
	      "path default");
	CHECK(fv_config_get_path(c, "rel", "device-dir", "/x", buf, sizeof(buf), &e) == -EINVAL &&
		      strstr(e.msg, "[rel] device-dir must be an absolute path"),
	      "relative path refused: %s", e.msg);
	char tiny[6];
	CHECK(fv_config_get_path(c, "cloud", "device-dir", "/x", tiny, sizeof(tiny), &e) == -EINVAL &&
		      strstr(e.msg, "longer than 5 bytes"),
	      "a path too long for the buffer is refused, not cut: %s", e.msg);
	e = (struct fv_err){0};
	struct fv_clouddisk_conf cd;
	CHECK(fv_clouddisk_conf_load(c, "cloud", 300, &cd, &e) == 0, "cloud keys load: %s", e.msg);
	CHECK(cd.attach_timeout_s == 40 && cd.rescan_after_s == 3 && !cd.scsi_rescan, "cloud numbers and bool");
	CHECK(!strcmp(cd.device_dir, "/srv/by-id") && !strcmp(cd.sysfs_root, "/srv/sys") && !cd.udevadm[0],
	      "cloud paths, udevadm none");
	CHECK(fv_clouddisk_conf_load(c, "empty", 300, &cd, &e) == 0 && cd.attach_timeout_s == 300 &&
		      cd.rescan_after_s == 10 && cd.scsi_rescan && !strcmp(cd.device_dir, "/dev/disk/by-id") &&
		      !strcmp(cd.sysfs_root, "/sys"),
	      "cloud defaults");
	CHECK(fv_clouddisk_conf_load(c, "udev", 300, &cd, &e) == 0 && !strcmp(cd.udevadm, "/opt/udevadm"),
	      "udevadm path");
	CHECK(fv_clouddisk_conf_load(c, "badudev", 300, &cd, &e) == -EINVAL && strstr(e.msg, "udevadm"),
	      "udevadm neither auto, none nor a path: %s", e.msg);
	CHECK(fv_clouddisk_conf_load(c, "rel", 300, &cd, &e) == -EINVAL, "relative device-dir refused");
	fv_config_free(c);
	unlink(p);
	free(p);

	/* A disk's names, as a driver's describe adds them. */
	struct fv_clouddisk d = {0};
	fv_clouddisk_link(&d, "virtio-%.4s", "abcdefgh");
	fv_clouddisk_link(&d, "wwn-0x%d", 42);
	fv_clouddisk_serial(&d, "%s", "abcd");
	CHECK(!strcmp(d.links[0], "virtio-abcd") && !strcmp(d.links[1], "wwn-0x42") && !d.links[2],
	      "links in order, NULL-terminated");
	CHECK(!strcmp(d.serials[0], "abcd") && !d.serials[1], "serials NULL-terminated");
	for (int i = 0; i < FV_CLOUDDISK_MAX_LINKS + 2; i++)
		fv_clouddisk_link(&d, "l%d", i);
	CHECK(d.links[FV_CLOUDDISK_MAX_LINKS - 1] && !d.links[FV_CLOUDDISK_MAX_LINKS], "a full list stays terminated");

	p = write_tmp("[loop]\nthis line has no equals sign\n");
	c = fv_config_load(p, &e);
	CHECK(c == NULL && strstr(e.msg, "line 2"), "syntax error names the line: %s", e.msg);
	unlink(p);
	free(p);
	return tap_done("test_config");
}
