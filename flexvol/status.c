#include "status.h"
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <libmount.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "cleanup.h"
#include "dmcrypt.h"
#include "fork.h"
#include "kubeletinfo.h"
#include "lockinfo.h"
#include "path.h"
#include "reply.h"
#include "log.h"

/* A statfs on a network or FUSE mount whose server is gone may block for
 * good: it runs in a child that is given this long. */
#define NET_STAT_TIMEOUT_MS 2000

enum kind { GLOBAL, POD };

struct mnt {
	enum kind kind;
	char target[PATH_MAX], root[PATH_MAX], source[PATH_MAX], fstype[64];
	char vendor[128], volume[256], uid[128];
	dev_t dev;
	bool ro, bound;  /* bound: a global mount some pod bind shares */
	int stacked;     /* mounts on the same target */
};

struct table {
	struct mnt *m;
	size_t n, cap;
	dev_t *devs;     /* every mounted device number, for "bound but not mounted" */
	size_t ndevs, capdevs;
};

static void table_free(struct table *t)
{
	free(t->m);
	free(t->devs);
}

/* "<vendor>/<driver>/mounts/<volume>" after the global prefix, or
 * "<uid>/volumes/<vendor>~<driver>/<volume>" after the pods prefix. */
static bool classify(const char *target, const char *root, const char *driver, struct mnt *m)
{
	char gprefix[PATH_MAX], pprefix[PATH_MAX];
	snprintf(gprefix, sizeof(gprefix), "%s/plugins/kubernetes.io/flexvolume/", root);
	snprintf(pprefix, sizeof(pprefix), "%s/pods/", root);
	char a[256], b[256], c[256], d[256], extra;
	const char *rest;
	int n;
	if (!strncmp(target, gprefix, strlen(gprefix))) {
		rest = target + strlen(gprefix);
		n = sscanf(rest, "%255[^/]/%255[^/]/%255[^/]/%255[^/]%c", a, b, c, d, &extra);
		if (n != 4 || strcmp(b, driver) || strcmp(c, "mounts"))
			return false;
		m->kind = GLOBAL;
		snprintf(m->vendor, sizeof(m->vendor), "%s", a);
		snprintf(m->volume, sizeof(m->volume), "%s", d);
		return true;
	}
	if (!strncmp(target, pprefix, strlen(pprefix))) {
		rest = target + strlen(pprefix);
		n = sscanf(rest, "%255[^/]/%255[^/]/%255[^/]/%255[^/]%c", a, b, c, d, &extra);
		const char *tilde = n == 4 ? strchr(c, '~') : NULL;
		if (n != 4 || strcmp(b, "volumes") || !tilde || strcmp(tilde + 1, driver))
			return false;
		m->kind = POD;
		snprintf(m->uid, sizeof(m->uid), "%s", a);
		snprintf(m->vendor, sizeof(m->vendor), "%.*s", (int)(tilde - c), c);
		snprintf(m->volume, sizeof(m->volume), "%s", d);
		return true;
	}
	return false;
}

static int read_table(const char *root, const char *driver, struct table *t, struct fv_err *err)
{
	struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	if (!tb)
		return fv_err_msg(err, EIO, "cannot read /proc/self/mountinfo");
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	while (it && mnt_table_next_fs(tb, it, &fs) == 0) {
		dev_t dev = mnt_fs_get_devno(fs);
		if (t->ndevs == t->capdevs) {
			t->capdevs = t->capdevs ? t->capdevs * 2 : 256;
			dev_t *p = realloc(t->devs, t->capdevs * sizeof(*p));
			if (!p)
				fv_oom();
			t->devs = p;
		}
		t->devs[t->ndevs++] = dev;
		const char *target = mnt_fs_get_target(fs);
		struct mnt m = {.dev = dev, .stacked = 1};
		if (!target || !classify(target, root, driver, &m))
			continue;
		snprintf(m.target, sizeof(m.target), "%s", target);
		snprintf(m.root, sizeof(m.root), "%s", mnt_fs_get_root(fs) ? mnt_fs_get_root(fs) : "/");
		snprintf(m.source, sizeof(m.source), "%s", mnt_fs_get_source(fs) ? mnt_fs_get_source(fs) : "");
		snprintf(m.fstype, sizeof(m.fstype), "%s", mnt_fs_get_fstype(fs) ? mnt_fs_get_fstype(fs) : "");
		const char *vfs = mnt_fs_get_vfs_options(fs);
		m.ro = vfs && (!strncmp(vfs, "ro", 2) && (vfs[2] == ',' || !vfs[2]));
		/* A later line on the same target is mounted over the earlier one. */
		size_t i;
		for (i = 0; i < t->n && strcmp(t->m[i].target, m.target); i++)
			;
		if (i < t->n) {
			m.stacked = t->m[i].stacked + 1;
			t->m[i] = m;
			continue;
		}
		if (t->n == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 32;
			struct mnt *p = realloc(t->m, t->cap * sizeof(*p));
			if (!p)
				fv_oom();
			t->m = p;
		}
		t->m[t->n++] = m;
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);
	return 0;
}

struct usage {
	unsigned long long size, used;
};

static int stat_child(void *arg, void *out, struct fv_err *err)
{
	struct statvfs s;
	if (statvfs(arg, &s) < 0)
		return fv_err_set(err, errno, "statfs");
	struct usage *u = out;
	u->size = (unsigned long long)s.f_blocks * s.f_frsize;
	u->used = (unsigned long long)(s.f_blocks - s.f_bfree) * s.f_frsize;
	return 0;
}

static bool networked(const char *fstype)
{
	static const char *const net[] = {"nfs", "nfs4", "cifs", "smb3", "ceph", "glusterfs", "9p", "lustre", "fuse",
					  NULL};
	for (const char *const *n = net; *n; n++)
		if (!strcmp(fstype, *n))
			return true;
	return !strncmp(fstype, "fuse.", 5);
}

/* Size and use of the mount; "stale" with why when it does not answer. */
static void usage_of(const struct mnt *m, json_t *o, json_t *stale)
{
	struct usage u = {0};
	struct fv_err err = {0};
	int rc;
	if (networked(m->fstype)) {
		char what[PATH_MAX + 16];
		snprintf(what, sizeof(what), "statfs of %s", m->target);
		rc = fv_fork_run(what, stat_child, (void *)m->target, &u, sizeof(u), NET_STAT_TIMEOUT_MS, &err);
	} else {
		rc = stat_child((void *)m->target, &u, &err);
	}
	if (rc == 0) {
		json_object_set_new(o, "size", json_integer((json_int_t)u.size));
		json_object_set_new(o, "used", json_integer((json_int_t)u.used));
		json_object_set_new(o, "stale", json_false());
		return;
	}
	json_object_set_new(o, "stale", json_true());
	json_object_set_new(o, "error", json_string(err.msg));
	json_array_append_new(stale, json_pack("{s:s, s:s}", "path", m->target, "error", err.msg));
}

static json_t *mount_json(const struct mnt *m)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "volume", m->volume, "path", m->target, "source", m->source,
			      "fstype", m->fstype, "read_only", m->ro);
	if (m->kind == POD)
		json_object_set_new(o, "pod_uid", json_string(m->uid));
	if (strcmp(m->root, "/"))
		json_object_set_new(o, "root", json_string(m->root));
	if (m->stacked > 1)
		json_object_set_new(o, "stacked", json_integer(m->stacked));
	return o;
}

/* --- loop devices --- */

/* The loop device's image, or NULL. */
static const char *loop_image(dev_t dev, char *buf, size_t size)
{
	char path[128];
	if (major(dev) != 7)
		return NULL;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file", major(dev), minor(dev));
	return fv_path_read_line(path, buf, size) == 0 ? buf : NULL;
}

static void loop_devices(const char *image_root, const struct table *t, json_t *list, json_t *unmounted)
{
	glob_t g;
	if (glob("/sys/block/loop*/loop/backing_file", 0, NULL, &g) != 0)
		return;
	size_t rl = strlen(image_root);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char image[PATH_MAX], devfile[PATH_MAX], num[32];
		if (fv_path_read_line(g.gl_pathv[i], image, sizeof(image)) < 0 || strncmp(image, image_root, rl) ||
		    image[rl] != '/')
			continue;
		const char *name = g.gl_pathv[i] + strlen("/sys/block/");
		int nlen = (int)strcspn(name, "/");
		snprintf(devfile, sizeof(devfile), "/sys/block/%.*s/dev", nlen, name);
		unsigned maj, min;
		if (fv_path_read_line(devfile, num, sizeof(num)) < 0 || sscanf(num, "%u:%u", &maj, &min) != 2)
			continue;
		bool mounted = false;
		for (size_t k = 0; k < t->ndevs && !mounted; k++) {
			dev_t lower; /* encrypted: mounted through the mapping over it */
			mounted = t->devs[k] == makedev(maj, min) ||
				  (fv_dmcrypt_lower(t->devs[k], &lower) == 1 && lower == makedev(maj, min));
		}
		char dev[64];
		snprintf(dev, sizeof(dev), "/dev/%.*s", nlen, name);
		json_array_append_new(list, json_pack("{s:s, s:s, s:b}", "device", dev, "image", image, "mounted", mounted));
		if (!mounted)
			json_array_append_new(unmounted, json_pack("{s:s, s:s}", "device", dev, "image", image));
	}
	globfree(&g);
}

/* --- encrypted volumes' mappings (dmcrypt.h) --- */

struct mappings {
	const struct table *t;
	json_t *list, *unmounted;
};

static void on_mapping(const char *name, dev_t dev, dev_t lower, void *ud)
{
	struct mappings *m = ud;
	bool mounted = false;
	for (size_t k = 0; k < m->t->ndevs && !mounted; k++)
		mounted = m->t->devs[k] == dev;
	char path[FV_DMCRYPT_NAME_MAX + 16], over[32];
	snprintf(path, sizeof(path), "/dev/mapper/%s", name);
	snprintf(over, sizeof(over), "%u:%u", major(lower), minor(lower));
	json_array_append_new(m->list, json_pack("{s:s, s:s, s:b}", "device", path, "over", over, "mounted", mounted));
	if (!mounted)
		json_array_append_new(m->unmounted, json_pack("{s:s, s:s}", "device", path, "image", over));
}

/* --- locks --- */

static void on_lock(const struct fv_lock_info *l, void *ud)
{
	json_t *o = json_pack("{s:s, s:s, s:i, s:i}", "key", l->key, "file", l->file, "pid", (int)l->pid, "waiters",
			      l->waiters);
	if (l->pid) {
		json_object_set_new(o, "command", json_string(l->comm));
		json_object_set_new(o, "running_s", json_integer(l->age_s));
	}
	if (l->recorded[0])
		json_object_set_new(o, "recorded", json_string(l->recorded));
	json_array_append_new(ud, o);
}

/* --- output --- */

static void human_size(json_t *o, char *buf, size_t size)
{
	json_t *s = json_object_get(o, "size"), *u = json_object_get(o, "used");
	if (!s) {
		snprintf(buf, size, "STALE (%s)", json_string_value(json_object_get(o, "error")));
		return;
	}
	snprintf(buf, size, "%.1f MiB, %.1f MiB used", (double)json_integer_value(s) / 1048576.0,
		 (double)json_integer_value(u) / 1048576.0);
}

static void print_text(json_t *r)
{
	printf("%s: kubelet root %s\n", json_string_value(json_object_get(r, "driver")),
	       json_string_value(json_object_get(r, "kubelet_root")));
	size_t i, k;
	json_t *v, *p;
	char sz[1200];
	json_array_foreach(json_object_get(r, "volumes"), i, v)
	{
		human_size(v, sz, sizeof(sz));
		json_t *img = json_object_get(v, "image");
		printf("volume %s: %s %s on %s%s%s%s, %s\n", json_string_value(json_object_get(v, "volume")),
		       json_string_value(json_object_get(v, "device")), json_string_value(json_object_get(v, "fstype")),
		       json_string_value(json_object_get(v, "global_path")), img ? " (image " : "",
		       img ? json_string_value(img) : "", img ? ")" : "", sz);
		json_array_foreach(json_object_get(v, "pods"), k, p)
			printf("  pod %s: %s (%s)\n", json_string_value(json_object_get(p, "pod_uid")),
			       json_string_value(json_object_get(p, "path")),
			       json_is_true(json_object_get(p, "read_only")) ? "ro" : "rw");
	}
	json_array_foreach(json_object_get(r, "pod_mounts"), i, v)
	{
		human_size(v, sz, sizeof(sz));
		printf("pod %s volume %s: %s %s on %s, %s\n", json_string_value(json_object_get(v, "pod_uid")),
		       json_string_value(json_object_get(v, "volume")), json_string_value(json_object_get(v, "source")),
		       json_string_value(json_object_get(v, "fstype")), json_string_value(json_object_get(v, "path")), sz);
	}
	json_array_foreach(json_object_get(r, "loop_devices"), i, v)
		printf("loop device %s: %s%s\n", json_string_value(json_object_get(v, "device")),
		       json_string_value(json_object_get(v, "image")),
		       json_is_true(json_object_get(v, "mounted")) ? "" : " (not mounted)");
	json_array_foreach(json_object_get(r, "crypt_mappings"), i, v)
		printf("encrypted mapping %s over %s%s\n", json_string_value(json_object_get(v, "device")),
		       json_string_value(json_object_get(v, "over")),
		       json_is_true(json_object_get(v, "mounted")) ? "" : " (not mounted)");
	json_array_foreach(json_object_get(r, "stale"), i, v)
		printf("STALE %s: %s (unmount it: umount -l)\n", json_string_value(json_object_get(v, "path")),
		       json_string_value(json_object_get(v, "error")));
	json_array_foreach(json_object_get(r, "unused_global_mounts"), i, v)
		printf("ORPHAN global mount with no pod bind: %s\n", json_string_value(v));
	json_array_foreach(json_object_get(r, "unmounted_devices"), i, v)
		printf("ORPHAN device bound but not mounted: %s (%s)\n", json_string_value(json_object_get(v, "device")),
		       json_string_value(json_object_get(v, "image")));
	json_array_foreach(json_object_get(r, "locks"), i, v)
	{
		json_int_t pid = json_integer_value(json_object_get(v, "pid"));
		if (pid)
			printf("lock '%s': held by pid %lld (%s, running %lld s)\n", json_string_value(json_object_get(v, "key")),
			       (long long)pid, json_string_value(json_object_get(v, "command")),
			       (long long)json_integer_value(json_object_get(v, "running_s")));
		else
			printf("lock '%s': waited for\n", json_string_value(json_object_get(v, "key")));
	}
}

int fv_status_main(struct fv_ctx *ctx, const char *conf_path, int argc, char **argv)
{
	const struct fv_provider *p = ctx->provider;
	bool as_json = false;
	const char *kroot = getenv("FLEXVOL_KUBELET_ROOT");
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			as_json = true;
		else if (!strcmp(argv[i], "--kubelet-root") && i + 1 < argc)
			kroot = argv[++i];
		else {
			printf("usage: %s status [--json] [--kubelet-root <dir>]\n", p->name);
			return 2;
		}
	}
	struct fv_kubelet_info k;
	if (!kroot || !*kroot) {
		fv_kubelet_find("kubelet", "volume-plugin-dir", NULL, FV_DEFAULT_PLUGIN_DIR, &k);
		kroot = k.root_dir;
	}
	/* mountinfo has canonical paths. */
	char root[PATH_MAX];
	if (!realpath(kroot, root))
		snprintf(root, sizeof(root), "%s", kroot);

	struct table t = {0};
	struct fv_err err = {0};
	if (read_table(root, p->name, &t, &err) < 0) {
		printf("%s status: %s\n", p->name, err.msg);
		return 1;
	}
	json_t *volumes = json_array(), *pods = json_array(), *stale = json_array(), *unused = json_array(),
	       *loops = json_array(), *unmounted = json_array(), *locks = json_array();
	for (size_t i = 0; i < t.n; i++) {
		struct mnt *g = &t.m[i];
		if (g->kind != GLOBAL)
			continue;
		json_t *v = mount_json(g);
		json_object_set_new(v, "global_path", json_string(g->target));
		json_object_set_new(v, "device", json_string(g->source));
		json_object_del(v, "path");
		json_object_del(v, "source");
		char image[PATH_MAX];
		if (loop_image(g->dev, image, sizeof(image)))
			json_object_set_new(v, "image", json_string(image));
		usage_of(g, v, stale);
		json_t *binds = json_array();
		for (size_t j = 0; j < t.n; j++) {
			struct mnt *b = &t.m[j];
			if (b->kind == POD && b->dev == g->dev && !strcmp(b->root, g->root)) {
				b->bound = g->bound = true;
				json_array_append_new(binds, mount_json(b));
			}
		}
		json_object_set_new(v, "pods", binds);
		if (!g->bound)
			json_array_append_new(unused, json_string(g->target));
		json_array_append_new(volumes, v);
	}
	for (size_t i = 0; i < t.n; i++) {
		struct mnt *m = &t.m[i];
		if (m->kind != POD || m->bound)
			continue;
		json_t *o = mount_json(m);
		usage_of(m, o, stale);
		json_array_append_new(pods, o);
	}
	/* The driver's configuration says which loop devices are its own. */
	struct fv_err cerr = {0};
	bool ready = (ctx->config = fv_config_load(conf_path, &cerr)) && (!p->setup || p->setup(ctx, &cerr) == 0);
	const char *image_root = ready && p->loop_image_root ? p->loop_image_root(ctx) : NULL;
	if (image_root)
		loop_devices(image_root, &t, loops, unmounted);
	if (ctx->config && p->teardown)
		p->teardown(ctx);
	json_t *maps = json_array();
	struct mappings mp = {.t = &t, .list = maps, .unmounted = unmounted};
	fv_dmcrypt_each(on_mapping, &mp);
	struct fv_lock_scan scan;
	fv_locks_scan(ctx->run_dir, p->name, on_lock, locks, &scan);

	table_free(&t);
	json_t *r = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "driver", p->name, "kubelet_root",
			      root, "volumes", volumes, "pod_mounts", pods, "loop_devices", loops, "crypt_mappings", maps,
			      "stale", stale, "unused_global_mounts", unused, "unmounted_devices", unmounted, "locks", locks);
	if (!ready)
		json_object_set_new(r, "config_error", json_string(cerr.msg));
	if (as_json) {
		json_dumpf(r, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_text(r);
	}
	fflush(stdout);
	json_decref(r);
	return 0;
}
