#include "smbopts.h"
#include <errno.h>
#include <libmount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include "cleanup.h"
#include "mountopts.h"
#include "nfsopts.h"

/* Windows refuses these in share names; none has a use in a path here. */
#define SHARE_BAD_CHARS "/\\\"[]:|<>+=;,*?"

int fv_smb_parse_source(const char *source, char *server, size_t server_size, char *share, size_t share_size,
			struct fv_err *err)
{
	if (!source || !*source)
		return fv_err_msg(err, EINVAL, "option 'source' is required (//server/share)");
	for (const unsigned char *p = (const unsigned char *)source; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return fv_err_msg(err, EINVAL, "option 'source' must not contain control characters");
	if (strncmp(source, "//", 2))
		return fv_err_msg(err, EINVAL, "option 'source' '%.256s' must be //server/share", source);
	const char *host = source + 2;
	const char *slash = strchr(host, '/');
	if (!slash)
		return fv_err_msg(err, EINVAL, "option 'source' '%.256s' must be //server/share (no share)", source);
	size_t hlen = (size_t)(slash - host);
	if (hlen >= server_size)
		return fv_err_msg(err, ENAMETOOLONG, "option 'source': the server name is too long");
	memcpy(server, host, hlen);
	server[hlen] = '\0';
	if (!hlen)
		return fv_err_msg(err, EINVAL, "option 'source' '%.256s' names no server", source);
	if (fv_host_check(server, "option 'source': server", err) < 0)
		return err->code;
	const char *sh = slash + 1;
	size_t n = strlen(sh);
	if (n && sh[n - 1] == '/')
		n--; /* //server/share/ */
	if (!n)
		return fv_err_msg(err, EINVAL, "option 'source' '%.256s' names no share", source);
	if (n > 80)
		return fv_err_msg(err, ENAMETOOLONG, "option 'source': the share name is longer than 80 characters");
	if (strcspn(sh, SHARE_BAD_CHARS) < n)
		return fv_err_msg(err, EINVAL,
				  "option 'source': share '%.*s' must be one name without any of %s (a directory below "
				  "it goes in option 'subDir')",
				  (int)n, sh, SHARE_BAD_CHARS);
	if ((n == 1 && sh[0] == '.') || (n == 2 && !strncmp(sh, "..", 2)))
		return fv_err_msg(err, EINVAL, "option 'source': share '%.*s' is not a share name", (int)n, sh);
	if (n >= share_size)
		return fv_err_msg(err, ENAMETOOLONG, "option 'source': the share name is too long");
	memcpy(share, sh, n);
	share[n] = '\0';
	return 0;
}

/* ---- mount options ---- */

static const char *const vers_values[] = {"1.0", "2.1", "3", "3.0", "3.02", "3.1.1", "default", NULL};
static const char *const sec_values[] = {"ntlmssp", "ntlmsspi", "krb5", "krb5i", NULL};
static const char *const cache_values[] = {"strict", "none", "loose", NULL};

#define F FV_MOPT_F
#define U FV_MOPT_U
#define O FV_MOPT_O
#define E FV_MOPT_E

/* mount.cifs(8) and fs/smb/client/fs_context.c (Linux 6.1), less what
 * changes who the client is (credentials: the secret; cruid: the node) or
 * where it connects (ip, unc: option 'source'); plus the generic flags
 * libmount turns into MS_* flags. */
static const struct fv_mountopt cifsopts[] = {
	E("vers", "vers", vers_values),
	E("sec", "sec", sec_values),
	E("cache", "cache", cache_values),
	F("seal", "seal"),
	F("guest", "guest"),
	U("uid", "uid", 0, 4294967294UL), U("gid", "gid", 0, 4294967294UL),
	F("forceuid", "forceuid"), F("noforceuid", "forceuid"),
	F("forcegid", "forcegid"), F("noforcegid", "forcegid"),
	O("file_mode", "file_mode", 0, 0777), O("dir_mode", "dir_mode", 0, 0777),
	U("actimeo", "actimeo", 0, 86400),
	U("acregmax", "acregmax", 0, 86400),
	U("acdirmax", "acdirmax", 0, 86400),
	U("port", "port", 1, 65535),
	U("rsize", "rsize", 1024, 8388608),
	U("wsize", "wsize", 1024, 8388608),
	U("echo_interval", "echo_interval", 1, 600),
	U("handletimeout", "handletimeout", 0, 16000000),
	U("max_credits", "max_credits", 20, 60000),
	U("max_channels", "max_channels", 1, 16),
	F("multichannel", "multichannel"), F("nomultichannel", "multichannel"),
	F("nobrl", "brl"), F("brl", "brl"),
	F("mfsymlinks", "mfsymlinks"),
	F("noperm", "perm"), F("perm", "perm"),
	F("nounix", "unix"), F("unix", "unix"),
	F("nocase", "nocase"),
	F("hard", "hard"), F("soft", "hard"),
	F("nosharesock", "nosharesock"),
	F("persistenthandles", "handles"), F("resilienthandles", "handles"),
	F("mapposix", "mapchars"), F("mapchars", "mapchars"), F("nomapchars", "mapchars"),
	F("cifsacl", "cifsacl"), F("nocifsacl", "cifsacl"),
	F("noacl", "acl"), F("acl", "acl"),
	F("nostrictsync", "strictsync"),
	F("rwpidforward", "rwpidforward"),
	F("atime", "atime"), F("noatime", "atime"),
	F("diratime", "diratime"), F("nodiratime", "diratime"),
	F("relatime", "relatime"), F("norelatime", "relatime"),
	F("strictatime", "strictatime"),
	F("lazytime", "lazytime"),
	F("sync", "sync"), F("async", "sync"),
	F("exec", "exec"), F("noexec", "exec"),
	/* Implied anyway: accepted, not repeated. */
	{"nosuid", "nosuid", FV_MOPT_FLAG, 0, 0, NULL, true},
	{"nodev", "nodev", FV_MOPT_FLAG, 0, 0, NULL, true},
};

#define SECRET_WHY "credentials come only from the volume's secret (keys username, password, domain)"
#define SOURCE_WHY "the server and share are given by option 'source'"
static const struct fv_mountopt_refusal refused[] = {
	{"username", SECRET_WHY}, {"user", SECRET_WHY},	  {"password", SECRET_WHY}, {"pass", SECRET_WHY},
	{"password2", SECRET_WHY}, {"credentials", SECRET_WHY}, {"cred", SECRET_WHY}, {"domain", SECRET_WHY},
	{"dom", SECRET_WHY},	   {"workgroup", SECRET_WHY},
	{"cruid", "the Kerberos credentials' owner is the node's choice ([smb] kerberos-cruid)"},
	{"ro", "read-only is set from the volume's readOnly flag (kubernetes.io/readwrite)"},
	{"rw", "read-only is set from the volume's readOnly flag (kubernetes.io/readwrite)"},
	{"suid", "the driver always mounts nosuid"},
	{"dev", "the driver always mounts nodev"},
	{"setuids", "the driver always mounts nosuid"},
	{"ip", SOURCE_WHY},	{"addr", SOURCE_WHY},	{"unc", SOURCE_WHY},	{"prefixpath", "a directory below the share goes in option 'subDir'"},
	{"noserverino", "subDir checks need the server's inode numbers"},
};

static const struct fv_mountopt_table cifs_table = {
	.what = "a CIFS mount option this driver accepts (see mount.cifs(8))",
	.opts = cifsopts,
	.nopts = sizeof(cifsopts) / sizeof(cifsopts[0]),
	.refused = refused,
	.nrefused = sizeof(refused) / sizeof(refused[0]),
};

int fv_smb_mount_options(const char *user, bool readonly, bool allow_smb1, unsigned long *flags, char **fsopts,
			 struct fv_err *err)
{
	_cleanup_free_ char *opts = NULL;
	char *value = NULL;
	size_t vlen = 0;
	*fsopts = NULL;
	if (fv_mountopts_check(&cifs_table, "mountOptions", user, &opts, err) < 0)
		return err->code;
	if (opts && !allow_smb1 && !mnt_optstr_get_option(opts, "vers", &value, &vlen) && vlen == 3 &&
	    !strncmp(value, "1.0", 3))
		return fv_err_msg(err, EPERM,
				  "option 'mountOptions': vers=1.0 (SMB1) is refused on this node: SMB1 is insecure and "
				  "deprecated; a node administrator may allow it with 'allow-smb1 = true' in [smb]");
	unsigned long f = 0;
	if (opts && mnt_optstr_get_flags(opts, &f, mnt_get_builtin_optmap(MNT_LINUX_MAP)))
		return fv_err_set(err, EINVAL, "option 'mountOptions': cannot read the mount flags");
	*flags = f | MS_NOSUID | MS_NODEV | (readonly ? MS_RDONLY : 0);
	if (opts && mnt_split_optstr(opts, NULL, NULL, fsopts, 0, 0))
		return fv_err_set(err, ENOMEM, "building mount options");
	/* The kernel knows no "guest" (mount.cifs translates it): a null
	 * session, which servers map to their guest account, is sec=none. */
	if (*fsopts && !mnt_optstr_get_option(*fsopts, "guest", &value, &vlen)) {
		if (!mnt_optstr_get_option(*fsopts, "sec", &value, &vlen)) {
			free(*fsopts);
			*fsopts = NULL;
			return fv_err_msg(err, EINVAL, "option 'mountOptions': guest and sec= exclude each other");
		}
		if (mnt_optstr_remove_option(fsopts, "guest") < 0 || mnt_optstr_append_option(fsopts, "sec", "none")) {
			free(*fsopts);
			*fsopts = NULL;
			return fv_err_set(err, ENOMEM, "building mount options");
		}
	}
	return 0;
}
