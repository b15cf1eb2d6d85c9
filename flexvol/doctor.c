#include "doctor.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <ini.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "cleanup.h"
#include "cryptconf.h"
#include "dmcrypt.h"
#include "kubeletinfo.h"
#include "lockinfo.h"
#include "log.h"
#include "run.h"

/* A lock held longer than the core's own lock timeout is a call that hangs. */
#define STUCK_LOCK_S (10L * 60)

struct fv_doctor {
	json_t *checks;
	int fails, warns;
};

static const char *const status_names[] = {"OK", "WARN", "FAIL"};

void fv_doctor_add(struct fv_doctor *d, enum fv_check status, const char *name, const char *fmt, ...)
{
	char detail[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	d->fails += status == FV_CHECK_FAIL;
	d->warns += status == FV_CHECK_WARN;
	json_array_append_new(d->checks, json_pack("{s:s, s:s, s:s}", "name", name, "status", status_names[status],
						   "detail", detail));
}

/* Without trailing slashes and symlinks, when it can be resolved. */
static void canonical(const char *path, char *out, size_t size)
{
	char buf[PATH_MAX];
	if (realpath(path, buf))
		path = buf;
	snprintf(out, size, "%s", path);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
}

/* --- where the binary is, and where kubelet looks --- */

/* Fills plugin_dir with the directory above <vendor>~<driver>/, or "". */
static void check_binary(struct fv_doctor *d, const struct fv_provider *p, char *plugin_dir, size_t size)
{
	char exe[PATH_MAX];
	plugin_dir[0] = '\0';
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		fv_doctor_add(d, FV_CHECK_WARN, "binary", "cannot read /proc/self/exe (%s): is /proc mounted?",
			      strerror(errno));
		return;
	}
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - exe), exe);
	char *vdir = strrchr(dir, '/');
	const char *vname = vdir ? vdir + 1 : dir;
	const char *tilde = strchr(vname, '~');
	bool placed = vdir && tilde && tilde > vname && !strcmp(tilde + 1, p->name) && !strcmp(slash + 1, p->name);
	if (!placed) {
		fv_doctor_add(d, FV_CHECK_FAIL, "binary",
			      "this binary is %s; kubelet runs a driver only as <plugin dir>/<vendor>~%s/%s: install it "
			      "there (make install PLUGIN_DIR=..., or the DaemonSet, docs/install.md)",
			      exe, p->name, p->name);
		return;
	}
	snprintf(plugin_dir, size, "%.*s", (int)(vdir - dir), dir);
	struct stat st;
	if (stat(exe, &st) < 0) {
		fv_doctor_add(d, FV_CHECK_WARN, "binary", "cannot inspect %s: %s", exe, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) != 0111 || (st.st_mode & 022)) {
		fv_doctor_add(d, FV_CHECK_FAIL, "binary", "%s has mode %04o: it must be a regular file, executable and "
			      "not writable by group or others (chmod 0755)", exe, (unsigned)(st.st_mode & 07777));
		return;
	}
	fv_doctor_add(d, FV_CHECK_OK, "binary", "%s (vendor %.*s), mode %04o", exe, (int)(tilde - vname), vname,
		      (unsigned)(st.st_mode & 07777));
}

static void compare_dirs(struct fv_doctor *d, const char *name, const char *who, const char *plugin_dir,
			 const struct fv_kubelet_info *k, const struct fv_provider *p)
{
	char ours[PATH_MAX], theirs[PATH_MAX], more[64] = "";
	canonical(plugin_dir, ours, sizeof(ours));
	canonical(k->plugin_dir, theirs, sizeof(theirs));
	if (k->count > 1)
		snprintf(more, sizeof(more), " (%d %s processes; the first checked)", k->count, who);
	bool same = !strcmp(ours, theirs);
	if (!k->pid) {
		fv_doctor_add(d, same ? FV_CHECK_OK : FV_CHECK_WARN, name,
			      "no %s process is visible here (run doctor on the node itself, or in a pod with hostPID); "
			      "%s is %s its default%s",
			      who, ours, same ? "" : "not", same ? "" : ": check its --volume-plugin-dir");
	} else if (same) {
		fv_doctor_add(d, FV_CHECK_OK, name, "%s is where %s (pid %d) looks (%s)%s%s%s", ours, who, (int)k->pid,
			      k->plugin_dir_from, more, k->config_error[0] ? "; " : "", k->config_error);
	} else {
		fv_doctor_add(d, FV_CHECK_FAIL, name,
			      "%s (pid %d) looks for drivers in %s (%s) but this driver is in %s: install it as "
			      "%s/<vendor>~%s/%s (with the DaemonSet: the plugin-dir hostPath of the overlay, "
			      "docs/install.md)%s%s%s",
			      who, (int)k->pid, theirs, k->plugin_dir_from, ours, theirs, p->name, p->name, more,
			      k->config_error[0] ? "; " : "", k->config_error);
	}
}

static void check_plugin_dir(struct fv_doctor *d, struct fv_ctx *ctx, const char *plugin_dir)
{
	const struct fv_provider *p = ctx->provider;
	struct fv_kubelet_info k;
	fv_kubelet_find("kubelet", "volume-plugin-dir", "volumePluginDir", FV_DEFAULT_PLUGIN_DIR, &k);
	if (!plugin_dir[0]) {
		if (k.pid)
			fv_doctor_add(d, FV_CHECK_FAIL, "plugin-dir", "this binary is not in a plugin dir; kubelet (pid %d) "
				      "looks in %s (%s)", (int)k.pid, k.plugin_dir, k.plugin_dir_from);
		else
			fv_doctor_add(d, FV_CHECK_FAIL, "plugin-dir", "this binary is not in a plugin dir; no kubelet is "
				      "visible here, and its default is %s", k.plugin_dir);
		return;
	}
	compare_dirs(d, "plugin-dir", "kubelet", plugin_dir, &k, p);
	/* attach and detach run in the controller-manager, from its own plugin dir. */
	struct fv_caps caps = {0};
	if (p->capabilities)
		p->capabilities(ctx, &caps);
	if (!caps.attach)
		return;
	fv_kubelet_find("kube-controller-manager", "flex-volume-plugin-dir", NULL, FV_DEFAULT_PLUGIN_DIR, &k);
	if (k.pid)
		compare_dirs(d, "controller-plugin-dir", "kube-controller-manager", plugin_dir, &k, p);
}

/* --- the config file --- */

struct keyscan {
	const char *const *known;
	char unknown[1024];
	size_t n;
	bool secrets;
};

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	(void)value;
	struct keyscan *s = user;
	if (strcasestr(key, "password") || strcasestr(key, "secret"))
		s->secrets = true;
	for (const char *const *k = s->known; k && *k; k++) {
		const char *dot = strchr(*k, '.');
		if (dot && strlen(section) == (size_t)(dot - *k) && !strncasecmp(*k, section, (size_t)(dot - *k)) &&
		    !strcasecmp(dot + 1, key))
			return 1;
	}
	if (s->n < sizeof(s->unknown)) {
		int w = snprintf(s->unknown + s->n, sizeof(s->unknown) - s->n, "%s[%s] %s", s->n ? ", " : "", section, key);
		s->n += w > 0 ? (size_t)w : 0;
	}
	return 1;
}

/* Returns true when setup() succeeded (ctx->data is the driver's). */
static bool check_config(struct fv_doctor *d, struct fv_ctx *ctx, const char *path)
{
	const struct fv_provider *p = ctx->provider;
	struct fv_err err = {0};
	struct stat st;
	bool exists = stat(path, &st) == 0;
	if (!exists && errno != ENOENT) {
		fv_doctor_add(d, FV_CHECK_FAIL, "config", "cannot inspect %s: %s", path, strerror(errno));
		return false;
	}
	if (!(ctx->config = fv_config_load(path, &err))) {
		fv_doctor_add(d, FV_CHECK_FAIL, "config", "%s: fix the file (INI: [section] and key = value lines)",
			      err.msg);
		return false;
	}
	if (!exists) {
		if (p->setup && p->setup(ctx, &err) < 0) {
			fv_doctor_add(d, FV_CHECK_FAIL, "config", "the driver refuses its defaults: %s", err.msg);
			return false;
		}
		fv_doctor_add(d, p->config_private ? FV_CHECK_WARN : FV_CHECK_OK, "config", "%s is not present: %s", path,
			      p->config_private ? "node-side calls work, but attach and detach cannot reach the cloud "
						  "(see the driver's --help for its keys)"
						: "the defaults apply");
		return true;
	}

	/* Mode and keys first: the driver may refuse a file for its mode. */
	struct keyscan ks = {.known = p->config_keys};
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (f)
		ini_parse_file(f, on_key, &ks);
	bool private = p->config_private || ks.secrets;
	unsigned mode = (unsigned)(st.st_mode & 07777);
	if (private && (st.st_uid != geteuid() || (mode & 077)))
		fv_doctor_add(d, FV_CHECK_FAIL, "config-mode",
			      "%s has mode %04o and owner uid %u but holds credentials: chown root %s; chmod 0600 %s", path,
			      mode, (unsigned)st.st_uid, path, path);
	else if (st.st_uid != geteuid() || (mode & 022))
		fv_doctor_add(d, FV_CHECK_FAIL, "config-mode",
			      "%s has mode %04o and owner uid %u: others could change what the driver does (chown root; "
			      "chmod 0644 or 0600)",
			      path, mode, (unsigned)st.st_uid);
	else
		fv_doctor_add(d, FV_CHECK_OK, "config-mode", "mode %04o, owner uid %u%s", mode, (unsigned)st.st_uid,
			      private ? " (holds credentials: readable by root only)" : "");
	if (p->config_keys && ks.n)
		fv_doctor_add(d, FV_CHECK_WARN, "config-keys",
			      "%s has keys this driver does not read: %s (a typo? see %s --help)", path, ks.unknown,
			      p->name);
	else if (p->config_keys)
		fv_doctor_add(d, FV_CHECK_OK, "config-keys", "every key is one the driver reads");
	if (p->setup && p->setup(ctx, &err) < 0) {
		fv_doctor_add(d, FV_CHECK_FAIL, "config", "the driver refuses %s: %s", path, err.msg);
		return false;
	}
	fv_doctor_add(d, FV_CHECK_OK, "config", "%s parses and the driver accepts it", path);
	return true;
}

/* --- what the node must have --- */

static void check_programs(struct fv_doctor *d, const struct fv_provider *p)
{
	for (const struct fv_program *prog = p->programs; prog && prog->name; prog++) {
		char path[4096];
		struct fv_err err = {0};
		if (fv_tool_path(prog->name, prog->package, path, sizeof(path), &err) == 0)
			fv_doctor_add(d, FV_CHECK_OK, prog->name, "%s", path);
		else
			fv_doctor_add(d, prog->optional ? FV_CHECK_WARN : FV_CHECK_FAIL, prog->name, "%s%s", err.msg,
				      prog->optional ? " (optional: the driver works without it)" : "");
	}
}

/* A file system the kernel does not list yet may be a module that mount
 * loads on demand: modules.dep names it. */
static bool module_available(const char *fs)
{
	struct utsname u;
	if (uname(&u) < 0)
		return false;
	char path[512], want[64], line[1024];
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", u.release);
	snprintf(want, sizeof(want), "/%s.ko", !strcmp(fs, "nfs4") ? "nfsv4" : fs);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *hit = strstr(line, want);
		if (hit && (hit[strlen(want)] == '\0' || hit[strlen(want)] == '.'))
			return true;
	}
	return false;
}

/* Encryption at rest (crypt.h), for the block drivers: set in crypt.c, which
 * only they link (weak: absent elsewhere). */
extern const bool fv_crypt_built __attribute__((weak));

static void check_encryption(struct fv_doctor *d, const struct fv_provider *p)
{
	bool block = false;
	for (const char *const *fs = p->filesystems; fs && *fs; fs++)
		block = block || !strcmp(*fs, "ext4");
	if (!block || !&fv_crypt_built)
		return;
	char why[200];
	bool kernel = fv_dmcrypt_kernel_ok(why, sizeof(why));
	const char *dir = fv_crypt_conf.key_dir;
	if (!*dir) {
		fv_doctor_add(d, FV_CHECK_OK, "encryption", "no key-dir configured: encrypted volumes are refused (%s%s)",
			      fv_crypt_built ? "" : "and this build has no libcryptsetup; ", why);
		return;
	}
	struct stat st;
	if (!fv_crypt_built)
		fv_doctor_add(d, FV_CHECK_WARN, "encryption", "key-dir is set, but this build has no encryption support "
			      "(the static bundle; docs/encryption.md)");
	else if (!kernel)
		fv_doctor_add(d, FV_CHECK_WARN, "encryption", "key-dir is set, but %s", why);
	else if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		fv_doctor_add(d, FV_CHECK_WARN, "encryption", "key-dir '%s' is not a directory", dir);
	else if (st.st_uid != 0 || (st.st_mode & 022))
		fv_doctor_add(d, FV_CHECK_FAIL, "encryption", "key-dir '%s' must be owned by root and writable by no one "
			      "else (uid %u, mode %04o): its keys are refused", dir, (unsigned)st.st_uid,
			      (unsigned)(st.st_mode & 07777));
	else
		fv_doctor_add(d, FV_CHECK_OK, "encryption", "libcryptsetup built in, %s, key-dir %s", why, dir);
}

static void check_kernel(struct fv_doctor *d, const struct fv_provider *p)
{
	char path[512], line[256];
	snprintf(path, sizeof(path), "%s/filesystems", fv_proc_root());
	for (const char *const *fs = p->filesystems; fs && *fs; fs++) {
		bool listed = false;
		_cleanup_fclose_ FILE *f = fopen(path, "re");
		while (f && !listed && fgets(line, sizeof(line), f)) {
			char *name = strrchr(line, '\t');
			name = name ? name + 1 : line;
			name[strcspn(name, "\n")] = '\0';
			listed = !strcmp(name, *fs);
		}
		char check[64];
		snprintf(check, sizeof(check), "kernel-%s", *fs);
		if (listed)
			fv_doctor_add(d, FV_CHECK_OK, check, "%s is in %s", *fs, path);
		else if (module_available(*fs))
			fv_doctor_add(d, FV_CHECK_OK, check, "%s is not loaded yet; its module is installed and the first "
				      "mount loads it", *fs);
		else
			fv_doctor_add(d, FV_CHECK_FAIL, check, "the kernel does not know %s (not in %s, no module): install "
				      "the kernel's modules package or load the module", *fs, path);
	}
	if (p->needs_loop) {
		struct stat st;
		if (stat("/dev/loop-control", &st) == 0 && S_ISCHR(st.st_mode))
			fv_doctor_add(d, FV_CHECK_OK, "loop-control", "/dev/loop-control is there");
		else
			fv_doctor_add(d, FV_CHECK_FAIL, "loop-control",
				      "/dev/loop-control is missing: modprobe loop (and list it in /etc/modules)");
	}
}

/* --- the run dir --- */

static void on_lock(const struct fv_lock_info *l, void *ud)
{
	struct { char text[1024]; size_t n; bool stuck; } *acc = ud;
	if (acc->n >= sizeof(acc->text))
		return;
	if (l->pid && l->age_s > STUCK_LOCK_S)
		acc->stuck = true;
	int w = l->pid ? snprintf(acc->text + acc->n, sizeof(acc->text) - acc->n, "%s'%s' held by pid %d (%s, running %ld s)%s",
				  acc->n ? "; " : "", l->key, (int)l->pid, l->comm, l->age_s,
				  l->age_s > STUCK_LOCK_S ? ": a stuck call? see its syslog lines" : "")
		       : snprintf(acc->text + acc->n, sizeof(acc->text) - acc->n, "%s'%s' waited for by %d", acc->n ? "; " : "",
				  l->key, l->waiters);
	acc->n += w > 0 ? (size_t)w : 0;
}

static void check_run_dir(struct fv_doctor *d, const struct fv_ctx *ctx)
{
	const char *run = ctx->run_dir;
	struct stat st;
	if (stat(run, &st) < 0) {
		char parent[4096];
		snprintf(parent, sizeof(parent), "%s", run);
		while (stat(parent, &st) < 0 && strrchr(parent, '/') && strrchr(parent, '/') != parent)
			*strrchr(parent, '/') = '\0';
		if (access(parent, W_OK) == 0)
			fv_doctor_add(d, FV_CHECK_OK, "run-dir", "%s does not exist yet: the first call creates it", run);
		else
			fv_doctor_add(d, FV_CHECK_FAIL, "run-dir", "%s does not exist and %s is not writable (%s): make it "
				      "writable or set FLEXVOL_RUN_DIR", run, parent, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) {
		fv_doctor_add(d, FV_CHECK_FAIL, "run-dir", "%s must be a directory owned by the driver's user and writable "
			      "by it alone (it is mode %04o, owner uid %u): chown root; chmod 0700", run,
			      (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return;
	}
	char probe[4200];
	snprintf(probe, sizeof(probe), "%s/.doctor-XXXXXX", run);
	int fd = mkstemp(probe);
	if (fd < 0) {
		fv_doctor_add(d, FV_CHECK_FAIL, "run-dir", "cannot create a file in %s: %s (locks and caches live there)",
			      run, strerror(errno));
		return;
	}
	close(fd);
	unlink(probe);
	fv_doctor_add(d, FV_CHECK_OK, "run-dir", "%s is writable, mode %04o", run, (unsigned)(st.st_mode & 07777));

	struct { char text[1024]; size_t n; bool stuck; } acc = {0};
	struct fv_lock_scan scan;
	fv_locks_scan(run, ctx->provider->name, on_lock, &acc, &scan);
	if (scan.dir_errno)
		fv_doctor_add(d, FV_CHECK_FAIL, "locks", "cannot read %s/locks/%s: %s", run, ctx->provider->name,
			      strerror(scan.dir_errno));
	else if (scan.odd[0])
		fv_doctor_add(d, FV_CHECK_FAIL, "locks", "%s: remove it (a call on that volume cannot lock it)", scan.odd);
	else
		fv_doctor_add(d, acc.stuck ? FV_CHECK_WARN : FV_CHECK_OK, "locks", "%d lock file%s, %s", scan.files,
			      scan.files == 1 ? "" : "s", acc.n ? acc.text : "none held");

	/* Cached tokens are credentials. */
	char tokens[4200];
	snprintf(tokens, sizeof(tokens), "%s/tokens/%s", run, ctx->provider->name);
	DIR *td = opendir(tokens);
	if (!td)
		return;
	int n = 0;
	char bad[600] = "";
	for (struct dirent *e; (e = readdir(td));) {
		if (e->d_name[0] == '.' || fstatat(dirfd(td), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		n++;
		if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != geteuid())
			snprintf(bad, sizeof(bad), "%s/%s (mode %04o)", tokens, e->d_name, (unsigned)(st.st_mode & 07777));
	}
	closedir(td);
	if (bad[0])
		fv_doctor_add(d, FV_CHECK_FAIL, "token-cache", "%s is readable by others and holds a token: remove it "
			      "(the driver fetches a new one)", bad);
	else
		fv_doctor_add(d, FV_CHECK_OK, "token-cache", "%d cached token%s, private", n, n == 1 ? "" : "s");
}

/* --- the driver's own checks, on a scratch run dir --- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void run_driver_checks(struct fv_doctor *d, struct fv_ctx *ctx, const char *node)
{
	char scratch[] = "/tmp/flexvol-doctor-XXXXXX";
	if (!mkdtemp(scratch)) {
		fv_doctor_add(d, FV_CHECK_WARN, "cloud", "cannot make a scratch dir in /tmp (%s): cloud checks skipped",
			      strerror(errno));
		return;
	}
	const char *run = ctx->run_dir;
	ctx->run_dir = scratch;
	ctx->provider->doctor(ctx, node, d);
	ctx->run_dir = run;
	nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- the command --- */

static const char *node_name(const char *given, char *buf, size_t size)
{
	if (given)
		return given;
	const char *env = getenv("NODE_NAME");
	if (env && *env)
		return env;
	/* kubelet's default node name: the host name, lower-cased. */
	struct utsname u;
	if (uname(&u) < 0)
		return "";
	snprintf(buf, size, "%s", u.nodename);
	for (char *c = buf; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return buf;
}

int fv_doctor_main(struct fv_ctx *ctx, const char *conf_path, int argc, char **argv)
{
	const struct fv_provider *p = ctx->provider;
	bool as_json = false;
	const char *node = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			as_json = true;
		else if (!strcmp(argv[i], "--node") && i + 1 < argc)
			node = argv[++i];
		else {
			printf("usage: %s doctor [--json] [--node <node name>]\n", p->name);
			return 2;
		}
	}
	struct fv_doctor d = {.checks = json_array()};
	char plugin_dir[PATH_MAX], host[256];
	check_binary(&d, p, plugin_dir, sizeof(plugin_dir));
	check_plugin_dir(&d, ctx, plugin_dir);
	bool ready = check_config(&d, ctx, conf_path);
	check_programs(&d, p);
	check_kernel(&d, p);
	struct fv_err cerr = {0};
	if (ready && ctx->config && fv_crypt_conf_load(ctx->config, p->name, &cerr) < 0)
		fv_doctor_add(&d, FV_CHECK_FAIL, "encryption", "%s", cerr.msg);
	else
		check_encryption(&d, p);
	check_run_dir(&d, ctx);
	if (p->doctor && ready && fv_config_exists(ctx->config))
		run_driver_checks(&d, ctx, node_name(node, host, sizeof(host)));
	else if (p->doctor)
		fv_doctor_add(&d, ready ? FV_CHECK_WARN : FV_CHECK_FAIL, "cloud", "not checked: %s",
			      ready ? "no configuration" : "the configuration is refused (see config)");
	if (ctx->config && p->teardown)
		p->teardown(ctx);

	if (as_json) {
		json_t *out = json_pack("{s:s, s:O}", "driver", p->name, "checks", d.checks);
		json_dumpf(out, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(out);
	} else {
		size_t i;
		json_t *c;
		json_array_foreach(d.checks, i, c)
			printf("%s %s: %s\n", json_string_value(json_object_get(c, "status")),
			       json_string_value(json_object_get(c, "name")), json_string_value(json_object_get(c, "detail")));
	}
	fflush(stdout);
	fv_log(d.fails ? LOG_WARNING : LOG_INFO, "doctor: %zu checks, %d WARN, %d FAIL", json_array_size(d.checks),
	       d.warns, d.fails);
	json_decref(d.checks);
	return d.fails ? 1 : 0;
}
