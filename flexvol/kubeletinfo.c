#include "kubeletinfo.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cleanup.h"

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

const char *fv_proc_root(void)
{
	const char *p = getenv("FLEXVOL_PROC_ROOT");
	return p && *p ? p : "/proc";
}

/* The whole file, NUL-terminated, at most size-1 bytes; its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n < size - 1) {
		ssize_t r = read(fd, buf + n, size - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static const char *base_name(const char *s)
{
	const char *slash = strrchr(s, '/');
	return slash ? slash + 1 : s;
}

/* The value of --flag=v, --flag v, -flag=v or -flag v (Go's flag syntax) in
 * argv; the last one wins, as in Go. */
static const char *flag_value(char **argv, int argc, const char *flag)
{
	const char *found = NULL;
	size_t n = strlen(flag);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-')
			continue;
		a += a[1] == '-' ? 2 : 1;
		if (strncmp(a, flag, n))
			continue;
		if (a[n] == '=')
			found = a + n + 1;
		else if (!a[n] && i + 1 < argc)
			found = argv[++i];
	}
	return found;
}

/* `key: value` (YAML) or `"key": "value"` (JSON) in a KubeletConfiguration:
 * both are one line per key in every file kubeadm and the distributions write. */
static bool config_value(const char *text, const char *key, char *out, size_t size)
{
	size_t n = strlen(key);
	for (const char *line = text; line && *line;) {
		const char *p = line;
		while (*p == ' ' || *p == '\t' || *p == '{' || *p == ',')
			p++;
		bool quoted = *p == '"';
		p += quoted;
		if (!strncmp(p, key, n) && (!quoted || p[n] == '"')) {
			p += n + quoted;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == ':') {
				p++;
				while (*p == ' ' || *p == '\t')
					p++;
				char q = *p == '"' || *p == '\'' ? *p++ : 0;
				size_t len = 0;
				while (p[len] && p[len] != '\n' && (q ? p[len] != q : !strchr(" \t,#}\r", p[len])))
					len++;
				if (len && len < size) {
					memcpy(out, p, len);
					out[len] = '\0';
					return true;
				}
			}
		}
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	return false;
}

static void set(char *buf, size_t size, const char *v)
{
	snprintf(buf, size, "%s", v);
}

/* argv of pid split in place into buf; the count. */
static int read_argv(const char *proc, const char *pid, char *buf, size_t size, char **argv, int max)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/cmdline", proc, pid);
	ssize_t n = read_small(path, buf, size);
	int argc = 0;
	for (ssize_t i = 0; n > 0 && i < n && argc < max; i += (ssize_t)strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	return argc;
}

void fv_kubelet_find(const char *name, const char *flag, const char *conf_key, const char *def,
		     struct fv_kubelet_info *k)
{
	*k = (struct fv_kubelet_info){0};
	set(k->plugin_dir, sizeof(k->plugin_dir), def);
	set(k->plugin_dir_from, sizeof(k->plugin_dir_from), "the default");
	set(k->root_dir, sizeof(k->root_dir), FV_DEFAULT_KUBELET_ROOT);
	const char *proc = fv_proc_root();
	__attribute__((cleanup(closedirp))) DIR *d = opendir(proc);
	if (!d)
		return;
	static char cmd[65536];
	char *argv[1024];
	for (struct dirent *e; (e = readdir(d));) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		int argc = read_argv(proc, e->d_name, cmd, sizeof(cmd), argv, 1024);
		if (argc < 1)
			continue;
		char **args = argv;
		if (!strcmp(base_name(argv[0]), "hyperkube") && argc > 1 && !strcmp(argv[1], name)) {
			args++;
			argc--;
		} else if (strcmp(base_name(argv[0]), name)) {
			continue;
		}
		if (k->count++)
			continue; /* the first one found is reported; count says there are more */
		k->pid = (pid_t)strtol(e->d_name, NULL, 10);
		const char *v = flag_value(args, argc, flag);
		const char *root = flag_value(args, argc, "root-dir");
		if (root && *root)
			set(k->root_dir, sizeof(k->root_dir), root);
		if (v && *v) {
			set(k->plugin_dir, sizeof(k->plugin_dir), v);
			snprintf(k->plugin_dir_from, sizeof(k->plugin_dir_from), "its --%s", flag);
			continue;
		}
		const char *conf = conf_key ? flag_value(args, argc, "config") : NULL;
		if (!conf || !*conf)
			continue;
		/* The file as kubelet sees it: through its root (another mount
		 * namespace) and, for a relative name, its working directory. */
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s/%s/%s", proc, e->d_name, conf[0] == '/' ? "root" : "cwd", conf);
		static char text[262144];
		char value[4096];
		if (read_small(path, text, sizeof(text)) < 0)
			snprintf(k->config_error, sizeof(k->config_error), "cannot read its --config %s: %s", conf,
				 strerror(errno));
		else if (config_value(text, conf_key, value, sizeof(value))) {
			set(k->plugin_dir, sizeof(k->plugin_dir), value);
			snprintf(k->plugin_dir_from, sizeof(k->plugin_dir_from), "%s in its --config %s", conf_key, conf);
		}
	}
}
