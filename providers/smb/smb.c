/* smb: SMB/CIFS shares mounted into pods. The driver calls mount(2) itself
 * with the kernel's cifs option string: the credentials from the volume's
 * secret go from this process's memory straight to the kernel, never through
 * a helper's argv or environment, a file, a log line or a reply. The server
 * name is resolved here (getaddrinfo) and handed to the kernel as ip=, which
 * is the one thing mount.cifs would otherwise have done.
 *
 * Everything that talks to the server runs in a forked child killed at
 * mountTimeout (kubelet puts no timeout on mount); unmount is bounded and
 * falls back to a lazy detach (a hung server). With a subDir, the share's
 * root is first mounted in a private mount namespace of a child, the
 * directory walked there without following symlinks (created when asked),
 * then //server/share/subDir is mounted on the pod dir and its root checked
 * to be the directory walked. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <limits.h>
#include <netdb.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cleanup.h"
#include "clock.h"
#include "flexvol.h"
#include "fork.h"
#include "lock.h"
#include "log.h"
#include "mount.h"
#include "mounttab.h"
#include "netfs.h"
#include "nfsopts.h"
#include "path.h"
#include "smbopts.h"

#define CLEANUP_TIMEOUT_MS 10000
#define CRED_MAX 256

struct smb_conf {
	long unmount_timeout_ms;
	char helper_dir[PATH_MAX]; /* mount point used inside private namespaces */
	bool allow_smb1;
	long cruid; /* [smb] kerberos-cruid; -1: the kernel's default (uid 0) */
};

static void smb_capabilities(struct fv_ctx *ctx, struct fv_caps *caps)
{
	fv_netfs_capabilities(ctx, "smb", caps);
}

static int smb_setup(struct fv_ctx *ctx, struct fv_err *err)
{
	struct smb_conf *c = calloc(1, sizeof(*c));
	if (!c)
		return fv_err_set(err, ENOMEM, "smb setup");
	ctx->data = c;
	c->unmount_timeout_ms = fv_netfs_unmount_timeout_ms(ctx->config, "smb");
	snprintf(c->helper_dir, sizeof(c->helper_dir), "%s/smb-root", ctx->run_dir);
	return 0;
}

static void smb_teardown(struct fv_ctx *ctx)
{
	free(ctx->data);
}

/* Mount-time settings from [smb]; a bad value fails the mount, naming it. */
static int load_mount_conf(struct fv_ctx *ctx, long *max_s, struct fv_err *err)
{
	struct smb_conf *c = ctx->data;
	if (fv_netfs_max_mount_timeout(ctx->config, "smb", max_s, err) < 0 ||
	    fv_config_get_bool(ctx->config, "smb", "allow-smb1", false, &c->allow_smb1, err) < 0 ||
	    fv_config_get_long(ctx->config, "smb", "kerberos-cruid", -1, -1, 4294967294L, &c->cruid, err) < 0)
		return err->code;
	return 0;
}

struct smb_creds {
	char user[CRED_MAX], domain[CRED_MAX];
	char pass[2 * CRED_MAX + 1]; /* commas doubled, as the kernel's parser unescapes them */
	bool have_user, have_pass;
};

struct smb_volume {
	char server[256];
	char share[128];
	char subdir[PATH_MAX]; /* expanded; "" for none */
	bool create;
	unsigned int subdir_mode;
	long timeout_ms;
	bool readonly;
	bool kerberos, guest;
	unsigned long flags;     /* MS_* */
	char *fsopts;            /* checked cifs options, no credentials; may be NULL */
	char source[PATH_MAX + 512]; /* //server/share[/subdir] */
	char root_source[512];
	struct smb_creds creds;
};

static void volume_free(struct smb_volume *v)
{
	free(v->fsopts);
	explicit_bzero(&v->creds, sizeof(v->creds));
}

static const char *const known_options[] = {"source", "subDir", "createSubDir", "subDirMode",
					    "mountOptions", "mountTimeout", NULL};

/* Plain (unencrypted, logged by kubelet) options a user may try for credentials. */
static const char *const credential_keys[] = {"password", "pass", "username", "user", "domain", "credentials", NULL};

static int copy_cred(const struct fv_opts *o, const char *key, char *buf, size_t size, bool *have, struct fv_err *err)
{
	size_t len;
	const unsigned char *val = fv_opts_secret(o, key, &len);
	*have = false;
	if (!val)
		return 0;
	/* Never quote the value: it may be the password itself. */
	if (len == 0 || len >= CRED_MAX)
		return fv_err_msg(err, EINVAL, "secret key '%s' must be 1 to %d bytes long", key, CRED_MAX - 1);
	for (size_t i = 0; i < len; i++)
		if (val[i] < 0x20 || val[i] == 0x7f || (val[i] == ',' && strcmp(key, "password")))
			return fv_err_msg(err, EINVAL, "secret key '%s' must not contain control characters%s", key,
					  strcmp(key, "password") ? " or commas" : "");
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (val[i] == ',')
			buf[n++] = ',';
		buf[n++] = (char)val[i];
	}
	buf[n] = '\0';
	(void)size;
	*have = true;
	return 0;
}

static int parse_creds(const struct fv_opts *o, struct smb_volume *v, struct fv_err *err)
{
	struct smb_creds *c = &v->creds;
	bool have_domain;
	if (copy_cred(o, "username", c->user, sizeof(c->user), &c->have_user, err) < 0 ||
	    copy_cred(o, "password", c->pass, sizeof(c->pass), &c->have_pass, err) < 0 ||
	    copy_cred(o, "domain", c->domain, sizeof(c->domain), &have_domain, err) < 0)
		return err->code;
	if (v->guest) {
		if (c->have_user || c->have_pass)
			return fv_err_msg(err, EINVAL, "mount option 'guest' and a secret with credentials exclude each other");
		return 0;
	}
	if (v->kerberos)
		return 0; /* the node's ccache, maybe a user name to pick the principal */
	if (!c->have_user || !c->have_pass)
		return fv_err_msg(err, EINVAL,
				  "no credentials: give the volume a secret (secretRef) with keys 'username' and "
				  "'password' (and 'domain' if needed), or mount option 'guest' for a share open to "
				  "guests, or sec=krb5 with the node's Kerberos credentials; the secret has %s",
				  c->have_user ? "'username' only" : c->have_pass ? "'password' only" : "neither key");
	return 0;
}

static int parse_volume(const struct fv_opts *o, const struct smb_conf *c, long max_s, struct smb_volume *v,
			struct fv_err *err)
{
	for (const char *const *k = credential_keys; *k; k++)
		if (fv_opts_get(o, *k))
			return fv_err_msg(err, EINVAL,
					  "option '%s' is refused: credentials come only from the volume's secret "
					  "(secretRef with keys username, password, domain), never from plain options, "
					  "which kubelet logs and every API reader sees",
					  *k);
	if (fv_opts_check_known(o, known_options, NULL, err) < 0)
		return err->code;
	if (fv_smb_parse_source(fv_opts_get(o, "source"), v->server, sizeof(v->server), v->share, sizeof(v->share),
				err) < 0)
		return err->code;
	if (fv_netfs_parse_subdir(o, v->subdir, sizeof(v->subdir), &v->create, &v->subdir_mode, err) < 0)
		return err->code;
	if (fv_netfs_parse_mount_timeout(o, "smb", max_s, &v->timeout_ms, err) < 0)
		return err->code;
	v->readonly = fv_opts_readonly(o);
	if (fv_smb_mount_options(fv_opts_get(o, "mountOptions"), v->readonly, c->allow_smb1, &v->flags, &v->fsopts,
				 err) < 0)
		return err->code;
	char *val = NULL;
	size_t vlen = 0;
	v->kerberos = v->fsopts && !mnt_optstr_get_option(v->fsopts, "sec", &val, &vlen) && vlen >= 4 &&
		      !strncmp(val, "krb5", 4);
	/* guest reaches the kernel as sec=none (smbopts.c). */
	v->guest = v->fsopts && !mnt_optstr_get_option(v->fsopts, "sec", &val, &vlen) && vlen == 4 &&
		   !strncmp(val, "none", 4);
	if (parse_creds(o, v, err) < 0)
		return err->code;
	int w = snprintf(v->root_source, sizeof(v->root_source), "//%s/%s", v->server, v->share);
	int w2 = snprintf(v->source, sizeof(v->source), "%s%s%s", v->root_source, v->subdir[0] ? "/" : "", v->subdir);
	if (w < 0 || (size_t)w >= sizeof(v->root_source) || w2 < 0 || (size_t)w2 >= sizeof(v->source))
		return fv_err_msg(err, ENAMETOOLONG, "the share path is too long");
	return 0;
}

/* As nfs: [smb] allowed-servers must name the server (matched as written). */
static int check_server_allowed(const struct fv_ctx *ctx, const struct smb_volume *v, struct fv_err *err)
{
	return fv_netfs_check_server_allowed(ctx->config, "smb", "SMB", "files.example.com", v->server, err);
}

/* ---- mount(2), in a child ---- */

struct mount_args {
	const struct smb_conf *conf;
	const struct smb_volume *vol;
	const char *source;
	const char *target;
	unsigned long flags;
	bool private_ns; /* mount the share root in a private namespace and walk subDir there */
};

/* The server's address for ip=, brackets of an IPv6 literal removed. */
static int resolve(const char *server, char *buf, size_t size, struct fv_err *err)
{
	char host[256];
	size_t n = strlen(server);
	if (server[0] == '[' && n > 2)
		snprintf(host, sizeof(host), "%.*s", (int)(n - 2), server + 1);
	else
		snprintf(host, sizeof(host), "%s", server);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int r = getaddrinfo(host, NULL, &hints, &res);
	if (r)
		return fv_err_msg(err, EHOSTUNREACH, "cannot resolve SMB server '%s': %s", server, gai_strerror(r));
	const void *addr = res->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
						      : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
	bool ok = inet_ntop(res->ai_family, addr, buf, (socklen_t)size) != NULL;
	freeaddrinfo(res);
	if (!ok)
		return fv_err_set(err, errno, "cannot write the address of '%s'", server);
	return 0;
}

static int append(char **s, const char *name, const char *value)
{
	return mnt_optstr_append_option(s, name, value) ? -1 : 0;
}

/* What the kernel said, in words (it logs the details to the kernel log). */
static int mount_error(const struct smb_volume *v, const char *source, int e, struct fv_err *err)
{
	const char *why;
	switch (e) {
	case EACCES:
	case EPERM:
	case EKEYREJECTED:
		why = "access denied (wrong username, password or domain in the secret, or no right to the share?)";
		break;
	case ENOKEY:
	case EKEYEXPIRED:
		why = "no usable Kerberos credentials (the node's ccache for [smb] kerberos-cruid)";
		break;
	case ENOENT:
		why = "no such share or directory on the server";
		break;
	case EOPNOTSUPP:
	case EPROTONOSUPPORT:
		why = "the server does not support the dialect or security asked for (vers=, sec=, seal)";
		break;
	case ENODEV:
		why = "this kernel does not know type cifs: load its module cifs";
		break;
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case ENETUNREACH:
		why = "cannot connect to the server";
		break;
	default:
		why = strerror(e);
	}
	return fv_err_msg(err, e, "SMB server %s, mounting %s: %s (errno %d)", v->server, source, why, e);
}

static int cifs_mount(const struct mount_args *a, const char *target, unsigned long flags, struct fv_err *err)
{
	const struct smb_volume *v = a->vol;
	char ip[INET6_ADDRSTRLEN];
	if (resolve(v->server, ip, sizeof(ip), err) < 0)
		return err->code;
	/* The options without credentials first, the credentials appended
	 * last, and the whole string wiped once the kernel has it. */
	char *data = NULL;
	int r = append(&data, "ip", ip);
	if (!r && v->fsopts)
		r = mnt_optstr_append_option(&data, v->fsopts, NULL) ? -1 : 0;
	if (!r && v->kerberos && a->conf->cruid >= 0) {
		char uid[24];
		snprintf(uid, sizeof(uid), "%ld", a->conf->cruid);
		r = append(&data, "cruid", uid);
	}
	if (!r && v->creds.have_user)
		r = append(&data, "username", v->creds.user);
	if (!r && v->creds.domain[0])
		r = append(&data, "domain", v->creds.domain);
	if (!r && v->creds.have_pass)
		r = append(&data, "pass", v->creds.pass);
	if (r) {
		if (data)
			explicit_bzero(data, strlen(data));
		free(data);
		return fv_err_set(err, ENOMEM, "building mount options");
	}
	r = mount(a->source, target, "cifs", flags, data);
	int e = errno;
	explicit_bzero(data, strlen(data));
	free(data);
	if (r < 0)
		return mount_error(v, a->source, e, err);
	return 0;
}

struct mount_out {
	struct fv_subdir_found found;
};

static int mount_child(void *arg, void *outp, struct fv_err *err)
{
	const struct mount_args *a = arg;
	struct mount_out *out = outp;
	if (!a->private_ns)
		return cifs_mount(a, a->target, a->flags, err);
	const struct smb_volume *v = a->vol;
	if (unshare(CLONE_NEWNS) < 0)
		return fv_err_set(err, errno, "cannot create a private mount namespace");
	/* Nothing mounted here may propagate back to the node. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fv_err_set(err, errno, "cannot make the private mount namespace private");
	/* The walk writes only when it has to create. */
	unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (v->create ? 0 : MS_RDONLY);
	if (cifs_mount(a, a->conf->helper_dir, flags, err) < 0)
		return err->code;
	_cleanup_close_ int root = open(a->conf->helper_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return fv_err_set(err, errno, "cannot open the root of %s", v->root_source);
	struct fv_subdir_walk w = {.subdir = v->subdir, .where = v->root_source, .create = v->create,
				   .mode = v->subdir_mode, .uid = -1, .gid = -1};
	_cleanup_close_ int dir = fv_subdir_walk(root, &w, SIZE_MAX, &out->found, err);
	return dir < 0 ? dir : 0;
}

/* A child killed at the deadline may have got its mount in just before:
 * nothing was mounted on dir when it started (the pod dir's lock keeps it
 * so), so whatever is there now is undone. */
static void undo_mount(const char *dir)
{
	struct fv_err e2 = {0};
	struct fv_mount_entry me;
	if (fv_mounttab_find(dir, &me, &e2) > 0 && fv_unmount_bounded(dir, CLEANUP_TIMEOUT_MS, &e2) < 0)
		fv_log(LOG_ERR, "%s: left mounted after a failed mount: %s", dir, e2.msg);
}

static int timeout_error(const struct smb_volume *v, const char *what, struct fv_err *err)
{
	return fv_err_msg(err, ETIMEDOUT, "SMB server %s did not answer within %ld s (mountTimeout) mounting %s", v->server,
			  v->timeout_ms / 1000, what);
}

static int already_mounted(const char *dir, const struct smb_volume *v, struct fv_err *err)
{
	struct fv_mount_entry me;
	int m = fv_mounttab_find(dir, &me, err);
	if (m <= 0)
		return m;
	if (strcmp(me.fstype, "cifs") && strcmp(me.fstype, "smb3"))
		return fv_err_msg(err, EBUSY, "'%s' already has %s (%s) mounted", dir, me.source, me.fstype);
	if (strcasecmp(me.source, v->source))
		return fv_err_msg(err, EBUSY, "'%s' already has %s mounted", dir, me.source);
	if (me.readonly != v->readonly)
		return fv_err_msg(err, EBUSY, "'%s' already has %s mounted %s", dir, me.source,
				  me.readonly ? "read-only" : "read-write");
	return 1;
}

static int smb_mount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct smb_conf *c = ctx->data;
	struct smb_volume v = {0};
	long max_s;
	int rc;
	if ((rc = load_mount_conf(ctx, &max_s, err)) < 0)
		return rc;
	if ((rc = parse_volume(call->opts, c, max_s, &v, err)) < 0 || (rc = check_server_allowed(ctx, &v, err)) < 0)
		goto out;
	int64_t deadline = fv_now_ms() + v.timeout_ms;
	if ((rc = fv_mkdir_p(call->dir, 0750, err)) < 0)
		goto out;
	if ((rc = already_mounted(call->dir, &v, err)) != 0) {
		rc = rc < 0 ? rc : 0;
		goto out;
	}
	struct mount_out prep = {0};
	if (v.subdir[0]) {
		if ((rc = fv_mkdir_p(c->helper_dir, 0700, err)) < 0)
			goto out;
		struct mount_args a = {.conf = c, .vol = &v, .source = v.root_source, .private_ns = true};
		if ((rc = fv_fork_run("checking subDir", mount_child, &a, &prep, sizeof(prep), v.timeout_ms, err)) < 0) {
			if (err->code == -ETIMEDOUT && strncmp(err->msg, "SMB server ", 11))
				rc = timeout_error(&v, v.root_source, err);
			goto out;
		}
	}
	long left = (long)(deadline - fv_now_ms());
	if (left < 1000)
		left = 1000;
	struct mount_args a = {.conf = c, .vol = &v, .source = v.source, .target = call->dir, .flags = v.flags};
	if ((rc = fv_fork_run("mounting", mount_child, &a, NULL, 0, left, err)) < 0) {
		undo_mount(call->dir);
		if (err->code == -ETIMEDOUT && strncmp(err->msg, "SMB server ", 11))
			rc = timeout_error(&v, v.source, err);
		goto out;
	}
	if (v.subdir[0]) {
		/* The kernel resolves the prefix path itself, following symlinks
		 * the server reports: what got mounted must be the directory walked. */
		struct statx sx;
		if (statx(AT_FDCWD, call->dir, AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW, STATX_INO,
			  &sx) < 0 ||
		    sx.stx_ino != prep.found.ino) {
			struct fv_err e2 = {0};
			if (fv_unmount_bounded(call->dir, CLEANUP_TIMEOUT_MS, &e2) < 0)
				fv_log(LOG_ERR, "%s: %s", call->dir, e2.msg);
			rc = fv_err_msg(err, ESTALE,
					"subDir '%s' on %s changed while it was being mounted (a symlink or rename on "
					"the server?); refused",
					v.subdir, v.root_source);
			goto out;
		}
	}
	fv_log(LOG_INFO, "mounted %s on %s (%s%s%s)%s", v.source, call->dir, v.fsopts ? v.fsopts : "",
	       v.creds.have_user ? ", as the secret's user" : "", v.readonly ? ", read-only" : "",
	       prep.found.created ? ", subDir created" : "");
	rc = 0;
out:
	volume_free(&v);
	return rc;
}

static int smb_unmount(struct fv_ctx *ctx, const struct fv_call *call, struct fv_result *res, struct fv_err *err)
{
	(void)res;
	struct smb_conf *c = ctx->data;
	struct fv_mount_entry me;
	/* Read the mount table instead of asking the (maybe dead) mount itself. */
	int m = fv_mounttab_find(call->dir, &me, err);
	if (m < 0 && err->code != -ENOENT)
		return m;
	if (m > 0 && fv_unmount_bounded(call->dir, c->unmount_timeout_ms, err) < 0)
		return err->code;
	return 0;
}

static const struct fv_provider smb_provider = {
	.name = "smb",
	.summary = "SMB/CIFS shares (or a subdirectory of one) mounted into pods; credentials from the volume's secret.",
	.help = "Options (flexVolume.options):\n"
		"  source        required; //server/share (server a host name, IPv4 address or\n"
		"                [IPv6] address; share a single name)\n"
		"  subDir        optional; a directory below the share, relative, no '..'; may use\n"
		"                ${pv.name} ${pod.namespace} ${pod.name} ${pod.uid}\n"
		"                ${serviceAccount.name}; symlinks on the server are never followed\n"
		"  createSubDir  true or false (default); create missing subDir directories\n"
		"  subDirMode    octal mode of created directories (default 0775)\n"
		"  mountOptions  comma-separated cifs options (mount.cifs(8)), each checked with\n"
		"                its value, e.g. vers=3.1.1,seal,uid=1000,gid=1000,file_mode=0660,\n"
		"                dir_mode=0770,cache=strict,actimeo=1,nobrl,mfsymlinks,noperm,guest;\n"
		"                never credentials, ip, unc, suid, dev, ro/rw; vers=1.0 only with\n"
		"                allow-smb1; the driver always adds nosuid,nodev\n"
		"  mountTimeout  seconds the whole mount may take (default 120, at most\n"
		"                max-mount-timeout); then the mount is abandoned, naming the server\n"
		"  readOnly      (the volume's readOnly flag) mounts read-only\n"
		"Secret (secretRef; kubelet passes it as kubernetes.io/secret/<key>):\n"
		"  username, password  required unless mountOptions has guest or sec=krb5/krb5i\n"
		"  domain        optional\n"
		"  The driver mounts with mount(2) itself: credentials reach the kernel without\n"
		"  any helper's argv or environment, file, log line or reply.\n"
		"Configuration ([smb] in smb.conf):\n"
		"  allowed-servers = files.example.com, 10.0.0.0/24\n"
		"                           servers volumes may name (matched as written, never\n"
		"                           resolved; * allows any); with none set, every mount\n"
		"                           is refused\n"
		"  max-mount-timeout = 120  the largest mountTimeout a volume may ask for (1-3600)\n"
		"  unmount-timeout = 30     seconds an unmount may take before a lazy detach\n"
		"  allow-smb1 = false       true lets volumes ask for vers=1.0\n"
		"  kerberos-cruid = <uid>   sec=krb5: whose Kerberos ccache the kernel's\n"
		"                           cifs.upcall uses (default root's)\n"
		"  fsgroup = false          true lets kubelet chown the volume to the pod's fsGroup\n"
		"Needs the kernel's cifs module; cifs.upcall (cifs-utils) for sec=krb5 only.\n"
		"Capabilities: attach false, selinuxRelabel false, fsGroup per config, supportsMetrics true.\n",
	.capabilities = smb_capabilities,
	.setup = smb_setup,
	.teardown = smb_teardown,
	.mount = smb_mount,
	.unmount = smb_unmount,
	.config_keys = (const char *const[]){"smb.fsgroup", "smb.unmount-timeout", "smb.allowed-servers",
					     "smb.max-mount-timeout", "smb.allow-smb1", "smb.kerberos-cruid", NULL},
	.programs = (const struct fv_program[]){{"cifs.upcall", "cifs-utils", true}, {NULL}},
	.filesystems = (const char *const[]){"cifs", NULL},
};

int main(int argc, char **argv)
{
	return fv_main(&smb_provider, argc, argv);
}
