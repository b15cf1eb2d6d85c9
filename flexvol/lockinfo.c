#include "lockinfo.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "cleanup.h"
#include "kubeletinfo.h"

struct kernel_lock {
	unsigned maj, min;
	unsigned long long ino;
	pid_t pid;
	bool waiter;
};

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* Every FLOCK line of /proc/locks ("1: FLOCK  ADVISORY  WRITE 42 fd:01:1234 0 EOF";
 * a waiter's line has "->" after the number). */
static struct kernel_lock *kernel_locks(size_t *n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/locks", fv_proc_root());
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	*n = 0;
	if (!f)
		return NULL;
	struct kernel_lock *all = NULL;
	size_t cap = 0;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');
		if (!p)
			continue;
		p++;
		bool waiter = strstr(p, "->") != NULL;
		if (waiter)
			p = strstr(p, "->") + 2;
		char type[16], adv[16], mode[16];
		struct kernel_lock k = {.waiter = waiter};
		int pid;
		if (sscanf(p, "%15s %15s %15s %d %x:%x:%llu", type, adv, mode, &pid, &k.maj, &k.min, &k.ino) != 7 ||
		    strcmp(type, "FLOCK"))
			continue;
		k.pid = pid;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			struct kernel_lock *m = realloc(all, cap * sizeof(*all));
			if (!m)
				break;
			all = m;
		}
		all[(*n)++] = k;
	}
	return all;
}

static void unescape(const char *name, char *out, size_t size)
{
	size_t o = 0, n = strlen(name);
	if (n > 5 && !strcmp(name + n - 5, ".lock"))
		n -= 5;
	for (size_t i = 0; i < n && o + 1 < size; i++) {
		unsigned v;
		if (name[i] == '%' && i + 2 < n && sscanf(name + i + 1, "%2x", &v) == 1) {
			out[o++] = (char)v;
			i += 2;
		} else {
			out[o++] = name[i];
		}
	}
	out[o] = '\0';
}

static void holder(struct fv_lock_info *l)
{
	char path[512], buf[1024];
	const char *proc = fv_proc_root();
	snprintf(path, sizeof(path), "%s/%d/comm", proc, (int)l->pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (f && fgets(l->comm, sizeof(l->comm), f))
		l->comm[strcspn(l->comm, "\n")] = '\0';
	l->age_s = -1;
	snprintf(path, sizeof(path), "%s/%d/stat", proc, (int)l->pid);
	_cleanup_fclose_ FILE *s = fopen(path, "re");
	snprintf(path, sizeof(path), "%s/uptime", proc);
	_cleanup_fclose_ FILE *u = fopen(path, "re");
	double up;
	if (!s || !u || !fgets(buf, sizeof(buf), s) || fscanf(u, "%lf", &up) != 1)
		return;
	/* Field 22, starttime, counted after the ")" that ends the command name. */
	char *p = strrchr(buf, ')');
	unsigned long long start;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &start) != 1)
		return;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz > 0)
		l->age_s = (long)(up - (double)start / (double)hz);
}

void fv_locks_scan(const char *run_dir, const char *driver, fv_lock_fn fn, void *ud, struct fv_lock_scan *scan)
{
	*scan = (struct fv_lock_scan){0};
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/locks/%s", run_dir, driver);
	__attribute__((cleanup(closedirp))) DIR *d = opendir(dir);
	if (!d) {
		if (errno != ENOENT)
			scan->dir_errno = errno;
		return;
	}
	scan->dir_exists = true;
	size_t nk;
	_cleanup_free_ struct kernel_lock *kl = kernel_locks(&nk);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		struct fv_lock_info l = {0};
		snprintf(l.file, sizeof(l.file), "%s/%s", dir, e->d_name);
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		scan->files++;
		if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
			snprintf(scan->odd, sizeof(scan->odd), "%s is %s", l.file,
				 !S_ISREG(st.st_mode) ? "not a regular file" : "not owned by the driver's user");
			continue;
		}
		for (size_t i = 0; i < nk; i++) {
			if (kl[i].ino != st.st_ino || kl[i].maj != major(st.st_dev) || kl[i].min != minor(st.st_dev))
				continue;
			if (kl[i].waiter)
				l.waiters++;
			else
				l.pid = kl[i].pid;
		}
		if (!l.pid && !l.waiters)
			continue;
		unescape(e->d_name, l.key, sizeof(l.key));
		_cleanup_close_ int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd >= 0) {
			ssize_t r = read(fd, l.recorded, sizeof(l.recorded) - 1);
			l.recorded[r > 0 ? r : 0] = '\0';
			l.recorded[strcspn(l.recorded, "\n")] = '\0';
		}
		if (l.pid)
			holder(&l);
		fn(&l, ud);
	}
}
