/* Node configuration files (<driver>.conf, INI): fv_config_load on a file
 * holding the input, then every typed getter on what it found. */
#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct fv_err err = {0};
	struct fv_config *c = fv_config_load(path, &err);
	if (c) {
		static const char *const sections[] = {"loop", "Global", "flexvol", "gcepd", "nfs", NULL};
		static const char *const keys[] = {"image-root", "auth-url", "attach-timeout", "tls-insecure",
						   "device-dir", "allow-setuid", NULL};
		for (size_t s = 0; sections[s]; s++) {
			for (size_t k = 0; keys[k]; k++) {
				long l;
				bool b;
				char buf[256];
				(void)fv_config_get(c, sections[s], keys[k], NULL);
				(void)fv_config_get_long(c, sections[s], keys[k], 5, 1, 3600, &l, &err);
				(void)fv_config_get_bool(c, sections[s], keys[k], false, &b, &err);
				(void)fv_config_get_path(c, sections[s], keys[k], "/var/lib/x", buf, sizeof(buf), &err);
			}
		}
		(void)fv_config_exists(c);
		fv_config_free(c);
	}
	close(fd);
	return 0;
}
