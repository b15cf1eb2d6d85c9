/* INI configuration through inih. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
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

	p = write_tmp("[loop]\nthis line has no equals sign\n");
	c = fv_config_load(p, &e);
	CHECK(c == NULL && strstr(e.msg, "line 2"), "syntax error names the line: %s", e.msg);
	unlink(p);
	free(p);
	return tap_done("test_config");
}
