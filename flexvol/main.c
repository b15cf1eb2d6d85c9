/* fv_main: the whole kubelet-facing protocol. Every driver's main() hands its
 * provider here; providers never print. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "cryptconf.h"
#include "doctor.h"
#include "flexvol.h"
#include "lock.h"
#include "log.h"
#include "mount.h"
#include "path.h"
#include "reply.h"
#include "run.h"
#include "status.h"

#define LOCK_TIMEOUT_MS (10L * 60 * 1000)
/* Options on stdin ("-" for <json>): bounded in size and in time. */
#define STDIN_MAX (1u << 20)
#define STDIN_TIMEOUT_MS 30000L

#ifndef FV_VERSION
#define FV_VERSION "dev"
#endif

/* Which argv slot holds what, per call (index into the arguments after the verb). */
enum { NONE = -1 };
struct verb {
	const char *name;
	size_t op_offset;  /* offsetof the fv_op in struct fv_provider */
	int nargs;
	int json, dir, device, node, volume, new_size, old_size;
	bool locked;       /* serialised per kubelet path, call->dir (see fv_lock_path_key) */
};

#define OP(name) offsetof(struct fv_provider, name)
static const struct verb verbs[] = {
	{"getvolumename", OP(getvolumename), 1, 0, NONE, NONE, NONE, NONE, NONE, NONE, false},
	/* attach, detach, waitforattach and expandvolume change no kubelet path:
	 * the core does not lock them (a name from the options would let one
	 * spec block another); providers lock the resource they change. */
	{"attach", OP(attach), 2, 0, NONE, NONE, 1, NONE, NONE, NONE, false},
	{"detach", OP(detach), 2, NONE, NONE, NONE, 1, 0, NONE, NONE, false},
	{"waitforattach", OP(waitforattach), 2, 1, NONE, 0, NONE, NONE, NONE, NONE, false},
	{"isattached", OP(isattached), 2, 0, NONE, NONE, 1, NONE, NONE, NONE, false},
	{"mountdevice", OP(mountdevice), 3, 2, 0, 1, NONE, NONE, NONE, NONE, true},
	{"unmountdevice", OP(unmountdevice), 1, NONE, 0, NONE, NONE, NONE, NONE, NONE, true},
	{"mount", OP(mount), 2, 1, 0, NONE, NONE, NONE, NONE, NONE, true},
	{"unmount", OP(unmount), 1, NONE, 0, NONE, NONE, NONE, NONE, NONE, true},
	{"expandvolume", OP(expandvolume), 4, 0, 1, NONE, NONE, NONE, 2, 3, false},
	{"expandfs", OP(expandfs), 5, 0, 2, 1, NONE, NONE, 3, 4, true},
};

static volatile sig_atomic_t got_sigterm;

bool fv_terminated(void)
{
	return got_sigterm;
}

static void on_sigterm(int sig)
{
	(void)sig;
	got_sigterm = 1;
}

static void *checked_malloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		fv_oom();
	return p;
}

static void print_help(const struct fv_provider *p)
{
	printf("Usage: %s <call> <args...>\n"
	       "%s\n\n"
	       "A Kubernetes FlexVolume driver: kubelet and kube-controller-manager run it as\n"
	       "  <plugin dir>/<vendor>~%s/%s <call> <args...>\n"
	       "and read one JSON object back from stdout. Calls:\n"
	       "  init | getvolumename <json> | attach <json> <node> | detach <volume> <node>\n"
	       "  waitforattach <device> <json> | isattached <json> <node>\n"
	       "  mountdevice <global path> <device> <json> | unmountdevice <global path>\n"
	       "  mount <pod volume dir> <json> | unmount <pod volume dir>\n"
	       "  expandvolume <json> <device mount path> <new size> <old size>\n"
	       "  expandfs <json> <device> <device mount path> <new size> <old size>\n"
	       "Calls this driver does not implement answer \"Not supported\".\n"
	       "<json> may be \"-\": the options object is then read from stdin (at most 1 MiB),\n"
	       "which keeps secrets out of argv and shell history when running a call by hand.\n"
	       "\n"
	       "For the operator (kubelet never sends these; text, or one JSON object with --json):\n"
	       "  doctor [--json] [--node <name>]  is this node ready for the driver: one line per\n"
	       "        check, OK|WARN|FAIL <name>: <detail>; exit status 1 when a check FAILs\n"
	       "  status [--json] [--kubelet-root <dir>]  what the driver holds on this node, from\n"
	       "        the kernel's tables: global mounts and their pod binds, loop devices, stale\n"
	       "        mounts, orphans, held locks\n\n"
	       "%s%s%s\n"
	       "Environment: FLEXVOL_CONFIG_DIR (default /etc/flexvol) holds %s.conf;\n"
	       "FLEXVOL_RUN_DIR (default /run/flexvol) holds locks and caches;\n"
	       "FLEXVOL_TOOL_PATH (colon-separated) replaces the directories searched for node programs;\n"
	       "FLEXVOL_KUBELET_ROOT (default: kubelet's --root-dir, else /var/lib/kubelet) for status;\n"
	       "FLEXVOL_PROC_ROOT (default /proc) where doctor and status look for kubelet;\n"
	       "NODE_NAME (default: the host name) names this node for doctor's cloud checks.\n"
	       "Logs go to syslog (facility daemon, tag flexvol-%s); nothing is written to stderr.\n",
	       p->name, p->summary, p->name, p->name, p->help ? p->help : "", p->help_core ? "\n" : "",
	       p->help_core ? p->help_core : "", p->name, p->name);
}

static const struct verb *find_verb(const char *name)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(verbs[i].name, name))
			return &verbs[i];
	return NULL;
}

static fv_op provider_op(const struct fv_provider *p, const struct verb *v)
{
	fv_op op;
	memcpy(&op, (const char *)p + v->op_offset, sizeof(op));
	return op;
}

static int parse_size(const char *s, const char *what, uint64_t *out, struct fv_err *err)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-')
		return fv_err_msg(err, EINVAL, "%s '%s' is not a size in bytes", what, s);
	*out = n;
	return 0;
}

/* The options on stdin, for "-": at most STDIN_MAX bytes, within
 * STDIN_TIMEOUT_MS. NUL-terminated; caller frees. */
static char *read_stdin_options(struct fv_err *err)
{
	size_t len = 0;
	char *buf = malloc(STDIN_MAX + 1);
	if (!buf)
		fv_oom();
	int64_t deadline = fv_now_ms() + STDIN_TIMEOUT_MS;
	for (;;) {
		enum fv_wait w = fv_wait_readable(STDIN_FILENO, deadline);
		if (w != FV_WAIT_READY) {
			free(buf);
			if (w == FV_WAIT_TERMINATED)
				fv_err_msg(err, EINTR, "terminated while reading the options from stdin");
			else if (w == FV_WAIT_TIMEOUT)
				fv_err_msg(err, ETIMEDOUT, "no end of the options on stdin within %ld s",
					   STDIN_TIMEOUT_MS / 1000);
			else
				fv_err_set(err, errno, "cannot read the options from stdin");
			return NULL;
		}
		/* One byte beyond the cap tells "too large" from "exactly full". */
		ssize_t n = read(STDIN_FILENO, buf + len, STDIN_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fv_err_set(err, errno, "cannot read the options from stdin");
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > STDIN_MAX) {
			fv_err_msg(err, E2BIG, "the options on stdin are larger than %u MiB", STDIN_MAX >> 20);
			free(buf);
			return NULL;
		}
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		fv_err_msg(err, EINVAL, "the options on stdin contain a NUL byte");
		free(buf);
		return NULL;
	}
	return buf;
}

/* /proc/<pid>/cmdline shows our argv for the whole call: once parsed, the
 * JSON argument is overwritten in place with its masked form (the kernel
 * reads the process's own memory), padded with spaces. Options without
 * secrets stay as they were, for ps. */
static void wipe_secrets_from_argv(char *arg, const struct fv_opts *opts)
{
	size_t len = strlen(arg);
	if (opts && !fv_opts_has_secrets(opts))
		return;
	if (!opts && !strstr(arg, FV_KEY_SECRET_PREFIX))
		return;
	_cleanup_free_ char *masked = opts ? fv_opts_dump_masked(opts) : NULL;
	size_t mlen = masked ? strlen(masked) : 0;
	if (masked && mlen <= len) {
		memcpy(arg, masked, mlen);
		memset(arg + mlen, ' ', len - mlen);
	} else {
		memset(arg, '*', len);
	}
}

/* Also true when the options did not parse: their raw text is still in argv. */
static bool carries_secrets(const struct verb *v, int nargs, char **args)
{
	return v && v->json != NONE && v->json < nargs && strstr(args[v->json], FV_KEY_SECRET_PREFIX);
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}

struct outcome {
	struct fv_reply reply;
	struct fv_result result;
	struct fv_caps caps;
	struct fv_err err;
};

static void fail(struct outcome *o)
{
	o->reply.status = FV_FAILURE;
	o->reply.message = o->err.msg;
}

static void dispatch(struct fv_ctx *ctx, const struct verb *v, int nargs, char **args, struct outcome *o,
		     struct fv_opts **opts_out)
{
	const struct fv_provider *p = ctx->provider;
	fv_op op = provider_op(p, v);
	if (!op) {
		o->reply.status = FV_NOT_SUPPORTED;
		return;
	}
	if (nargs != v->nargs) {
		fv_err_msg(&o->err, EINVAL, "%s takes %d argument%s, got %d", v->name, v->nargs, v->nargs == 1 ? "" : "s",
			   nargs);
		return fail(o);
	}
	struct fv_call call = {.verb = v->name};
	if (v->json != NONE) {
		if (!strcmp(args[v->json], "-")) {
			_cleanup_free_ char *text = read_stdin_options(&o->err);
			if (!text)
				return fail(o);
			*opts_out = fv_opts_parse(text, &o->err);
			explicit_bzero(text, strlen(text));
		} else {
			*opts_out = fv_opts_parse(args[v->json], &o->err);
			wipe_secrets_from_argv(args[v->json], *opts_out);
		}
		if (!*opts_out)
			return fail(o);
		call.opts = *opts_out;
		fv_log_redact(call.opts);
	}
	call.dir = v->dir != NONE ? args[v->dir] : NULL;
	call.device = v->device != NONE ? args[v->device] : NULL;
	call.node = v->node != NONE ? args[v->node] : NULL;
	call.volume_name = v->volume != NONE ? args[v->volume] : NULL;
	if ((v->new_size != NONE && parse_size(args[v->new_size], "new size", &call.new_size, &o->err) < 0) ||
	    (v->old_size != NONE && parse_size(args[v->old_size], "old size", &call.old_size, &o->err) < 0))
		return fail(o);
	/* expandvolume's path is relative in the controller-manager (no plugin dir there). */
	if (call.dir && strcmp(v->name, "expandvolume") && fv_path_check_absolute(call.dir, "path", &o->err) < 0)
		return fail(o);
	if (p->setup && p->setup(ctx, &o->err) < 0)
		return fail(o);
	_cleanup_close_ int lock = -1;
	if (v->locked) {
		char key[4096];
		if (fv_lock_path_key(call.dir, key, sizeof(key), &o->err) < 0)
			return fail(o);
		lock = fv_lock_acquire(ctx->run_dir, p->name, key, LOCK_TIMEOUT_MS, &o->err);
		if (lock < 0)
			return fail(o);
	}
	int rc = op(ctx, &call, &o->result, &o->err);
	if (rc == 0 && fv_terminated())
		rc = fv_err_msg(&o->err, EINTR, "terminated by SIGTERM");
	if (rc < 0) {
		if (!o->err.msg[0])
			fv_err_set(&o->err, -rc, "%s failed", v->name);
		return fail(o);
	}
	o->reply.status = FV_SUCCESS;
	o->reply.device = o->result.device;
	if (!strcmp(v->name, "waitforattach") && !o->reply.device)
		o->reply.device = call.device; /* echo it: kubelet passes our reply on to mountdevice */
	if (!strcmp(v->name, "isattached")) {
		o->reply.has_attached = true;
		o->reply.attached = o->result.attached;
	}
	if (!strcmp(v->name, "expandvolume")) {
		o->reply.has_new_size = true;
		o->reply.new_size = o->result.new_size ? o->result.new_size : call.new_size;
	}
}

static void do_init(struct fv_ctx *ctx, struct outcome *o)
{
	/* init must always succeed, fast and without side effects: kubelet drops
	 * the whole driver otherwise. */
	o->caps = (struct fv_caps){.attach = false, .selinux_relabel = false, .fs_group = false};
	if (ctx->provider->capabilities)
		ctx->provider->capabilities(ctx, &o->caps);
	o->reply.status = FV_SUCCESS;
	o->reply.caps = &o->caps;
}

static void log_call(const char *verb, int nargs, char **args, const struct verb *v, const struct outcome *o,
		     int64_t ms)
{
	/* The JSON argument is never logged; paths, device and node are. */
	char what[1024] = "";
	size_t n = 0;
	for (int i = 0; i < nargs && n < sizeof(what); i++) {
		if (v && v->json == i)
			continue;
		int w = snprintf(what + n, sizeof(what) - n, " %s", args[i]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
	const char *status = fv_status_name(o->reply.status);
	if (o->reply.status == FV_FAILURE)
		fv_log(LOG_ERR, "%s%s -> %s (%lld ms): %s", verb, what, status, (long long)ms, o->err.msg);
	else
		fv_log(LOG_INFO, "%s%s -> %s%s%s (%lld ms)", verb, what, status, o->reply.device ? " " : "",
		       o->reply.device ? o->reply.device : "", (long long)ms);
}

int fv_main(const struct fv_provider *provider, int argc, char **argv)
{
	/* Before anything else: no byte may reach kubelet except the reply. */
	fv_log_capture_stderr();
	int64_t start = fv_now_ms();
	struct sigaction sa = {.sa_handler = on_sigterm};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	json_set_alloc_funcs(checked_malloc, free);
	/* jansson would read /dev/urandom for its hash seed on every start; the
	 * options are a few short keys from argv, so any seed will do. */
	json_object_seed((size_t)getpid() ^ (size_t)start);
	umask(077);
	fv_log_open(provider->name);

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		print_help(provider);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		printf("%s (flexvol) %s\n", provider->name, FV_VERSION);
		return 0;
	}

	struct outcome o = {.reply.status = FV_FAILURE};
	struct fv_opts *opts = NULL;
	struct fv_ctx ctx = {
		.provider = provider,
		.run_dir = env_or("FLEXVOL_RUN_DIR", "/run/flexvol"),
		.config_dir = env_or("FLEXVOL_CONFIG_DIR", "/etc/flexvol"),
	};
	const char *verb = argc >= 2 ? argv[1] : "";
	const struct verb *v = find_verb(verb);
	/* Before dispatch overwrites them in argv. */
	bool argv_secrets = carries_secrets(v, argc - 2, argv + 2);
	char conf_path[4096];
	snprintf(conf_path, sizeof(conf_path), "%s/%s.conf", ctx.config_dir, provider->name);

	/* Operator commands, never sent by kubelet: text (or --json) for a person
	 * and their own exit status, not a reply. */
	if (argc >= 2 && (!strcmp(verb, "doctor") || !strcmp(verb, "status"))) {
		int orc = !strcmp(verb, "doctor") ? fv_doctor_main(&ctx, conf_path, argc - 2, argv + 2)
						  : fv_status_main(&ctx, conf_path, argc - 2, argv + 2);
		fv_config_free(ctx.config);
		fv_log_flush_stderr();
		return orc;
	}
	if (argc < 2) {
		fv_err_msg(&o.err, EINVAL, "no call given (see %s --help)", provider->name);
		fail(&o);
	} else if (!strcmp(verb, "init")) {
		struct fv_err cerr = {0};
		ctx.config = fv_config_load(conf_path, &cerr);
		if (!ctx.config)
			fv_log(LOG_WARNING, "init: %s (capabilities from defaults)", cerr.msg);
		if (argc != 2) {
			fv_err_msg(&o.err, EINVAL, "init takes no arguments, got %d", argc - 2);
			fail(&o);
		} else {
			do_init(&ctx, &o);
		}
	} else if (!v) {
		o.reply.status = FV_NOT_SUPPORTED;
	} else if (!provider_op(provider, v)) {
		o.reply.status = FV_NOT_SUPPORTED;
	} else if (!(ctx.config = fv_config_load(conf_path, &o.err))) {
		fail(&o);
	} else if (fv_mount_policy_load(ctx.config, provider->name, &o.err) < 0 ||
		   fv_crypt_conf_load(ctx.config, provider->name, &o.err) < 0) {
		fail(&o);
	} else {
		dispatch(&ctx, v, argc - 2, argv + 2, &o, &opts);
	}

	/* The message goes into a kubelet event: mask any secret a provider echoed. */
	if (o.reply.message)
		fv_opts_redact(opts, o.err.msg);
	int rc = fv_reply_write(STDOUT_FILENO, &o.reply);
	/* kubelet runs init on every event in the plugin dir: a successful one
	 * is not logged (log floods are a known complaint about flex drivers). */
	if (strcmp(verb, "init") || o.reply.status != FV_SUCCESS)
		log_call(verb, argc - 2 > 0 ? argc - 2 : 0, argv + 2, v, &o, fv_now_ms() - start);
	fv_log_flush_stderr();
	if (ctx.config && provider->teardown)
		provider->teardown(&ctx);
	free(o.result.device);
	fv_config_free(ctx.config);
	/* kubelet logs the whole argv, secrets included, when a driver exits
	 * non-zero: a Failure of a call carrying secrets exits 0 instead. */
	bool has_secrets = fv_opts_has_secrets(opts) || argv_secrets;
	fv_opts_free(opts);
	if (rc < 0)
		return 1;
	return o.reply.status == FV_FAILURE && !has_secrets ? 1 : 0;
}
