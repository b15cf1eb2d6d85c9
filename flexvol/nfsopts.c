#include "nfsopts.h"
#include <arpa/inet.h>
#include <errno.h>
#include <libmount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cleanup.h"
#include "mountopts.h"
#include "path.h"


static bool has_control_chars(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

static bool has_control_chars_n(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* ---- server and share ---- */

static bool is_hostname(const char *s)
{
	size_t len = strlen(s);
	if (!len || len > 253)
		return false;
	for (const char *label = s; *label;) {
		size_t n = strcspn(label, ".");
		if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
			return false;
		for (size_t i = 0; i < n; i++) {
			char c = label[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
				return false;
		}
		label += n;
		if (*label == '.' && !*++label)
			return true; /* a fully qualified name may end with a dot */
	}
	return true;
}

int fv_host_check(const char *server, const char *what, struct fv_err *err)
{
	size_t len = strlen(server);
	if (server[0] == '[') {
		char addr[INET6_ADDRSTRLEN + 1];
		struct in6_addr a6;
		if (len < 3 || server[len - 1] != ']' || len - 2 >= sizeof(addr))
			goto bad;
		memcpy(addr, server + 1, len - 2);
		addr[len - 2] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			goto bad;
		return 0;
	}
	if (strchr(server, ':'))
		return fv_err_msg(err, EINVAL, "%s '%s': write an IPv6 address in brackets, e.g. [%s]", what, server,
				  server);
	struct in_addr a4;
	if (inet_pton(AF_INET, server, &a4) == 1)
		return 0;
	/* All digits and dots but not an address: 10.0.0 or 300.1.1.1. Nor a
	 * name the resolver would read as an address (0x7f000001, 0177.1):
	 * allowed-servers matches addresses only in their dotted form. */
	if (!len || strspn(server, "0123456789.") == len || inet_aton(server, &a4))
		goto bad;
	if (is_hostname(server))
		return 0;
bad:
	return fv_err_msg(err, EINVAL, "%s '%.256s' is not a host name, an IPv4 address or a bracketed IPv6 address",
			  what, has_control_chars(server) ? "(control characters)" : server);
}

int fv_nfs_check_server(const char *server, struct fv_err *err)
{
	if (!server || !*server)
		return fv_err_msg(err, EINVAL, "option 'server' is required (a host name, IPv4 address or [IPv6] address)");
	return fv_host_check(server, "option 'server'", err);
}

/* ---- the node's allow-list of servers ---- */

struct server_addr {
	int family;                /* AF_INET, AF_INET6, or 0 for a host name */
	unsigned char bytes[16];
	unsigned int prefix;       /* CIDR prefix length; the full length for one address */
	char name[256];            /* a host name, lower case, without a trailing dot */
};

static int parse_addr(const char *s, size_t len, struct server_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 1];
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
		if (len >= sizeof(buf))
			return -1;
		memcpy(buf, s, len);
		buf[len] = '\0';
		a->family = AF_INET6;
		a->prefix = 128;
		return inet_pton(AF_INET6, buf, a->bytes) == 1 ? 0 : -1;
	}
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, a->bytes) == 1) {
		a->family = AF_INET;
		a->prefix = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, a->bytes) == 1) {
		a->family = AF_INET6;
		a->prefix = 128;
		return 0;
	}
	return -1;
}

/* One entry: "*", a host name, an address (IPv6 with or without brackets)
 * or address/prefix. */
static int parse_entry(const char *s, size_t len, struct server_addr *a)
{
	*a = (struct server_addr){0};
	const char *slash = memchr(s, '/', len);
	if (slash) {
		size_t plen = len - (size_t)(slash - s) - 1;
		if (parse_addr(s, (size_t)(slash - s), a) < 0 || !plen || plen > 3 || strspn(slash + 1, "0123456789") < plen)
			return -1;
		unsigned int p = 0;
		for (size_t i = 0; i < plen; i++)
			p = p * 10 + (unsigned int)(slash[1 + i] - '0');
		if (p > a->prefix)
			return -1;
		a->prefix = p;
		return 0;
	}
	if (parse_addr(s, len, a) == 0)
		return 0;
	if (len >= sizeof(a->name))
		return -1;
	memcpy(a->name, s, len);
	a->name[len] = '\0';
	struct in_addr a4;
	if (strspn(a->name, "0123456789.") == len || inet_aton(a->name, &a4) || !is_hostname(a->name))
		return -1;
	if (a->name[len - 1] == '.')
		a->name[len - 1] = '\0';
	for (char *c = a->name; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return 0;
}

static bool entry_matches(const struct server_addr *entry, const struct server_addr *server)
{
	if (!entry->family)
		return !server->family && !strcmp(entry->name, server->name);
	if (entry->family != server->family)
		return false;
	unsigned int full = entry->prefix / 8, rest = entry->prefix % 8;
	if (memcmp(entry->bytes, server->bytes, full))
		return false;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return !rest || (entry->bytes[full] & mask) == (server->bytes[full] & mask);
}

int fv_nfs_server_allowed(const char *server, const char *list, struct fv_err *err)
{
	static const char sep[] = ", \t";
	struct server_addr srv;
	if (parse_entry(server, strlen(server), &srv) < 0)
		return fv_err_msg(err, EINVAL, "server '%.256s' is not a host name or an address", server);
	bool allowed = false;
	/* Every entry is checked, so a typo is reported whichever server is asked for. */
	for (const char *p = list + strspn(list, sep); *p; p += strspn(p, sep)) {
		size_t len = strcspn(p, sep);
		struct server_addr entry;
		if (len == 1 && *p == '*')
			allowed = true;
		else if (has_control_chars_n(p, len) || parse_entry(p, len, &entry) < 0)
			return fv_err_msg(err, EINVAL,
					  "entry '%.*s' is not a host name, an address, an address/prefix or '*'",
					  (int)(len > 256 ? 256 : len), has_control_chars_n(p, len) ? "(control characters)" : p);
		else if (entry_matches(&entry, &srv))
			allowed = true;
		p += len;
	}
	return allowed;
}

int fv_nfs_check_share(const char *share, char *buf, size_t size, struct fv_err *err)
{
	if (!share || !*share)
		return fv_err_msg(err, EINVAL, "option 'share' is required (the absolute path of the export)");
	if (share[0] != '/')
		return fv_err_msg(err, EINVAL, "option 'share' '%.256s' must be an absolute path", share);
	if (has_control_chars(share))
		return fv_err_msg(err, EINVAL, "option 'share' must not contain control characters");
	size_t n = strlen(share);
	while (n > 1 && share[n - 1] == '/')
		n--;
	if (n >= size)
		return fv_err_msg(err, ENAMETOOLONG, "option 'share' is too long");
	memcpy(buf, share, n);
	buf[n] = '\0';
	if (n > 1 && fv_path_check_relative(buf + 1, "option 'share'", err) < 0)
		return err->code;
	return 0;
}

int fv_nfs_source(const char *server, const char *share, const char *subdir, char *buf, size_t size,
		  struct fv_err *err)
{
	bool sub = subdir && *subdir;
	int w = snprintf(buf, size, "%s:%s%s%s", server, share, sub && strcmp(share, "/") ? "/" : "", sub ? subdir : "");
	if (w < 0 || (size_t)w >= size)
		return fv_err_msg(err, ENAMETOOLONG, "the NFS path is too long");
	return 0;
}

/* ---- subDir templates ---- */

static const struct {
	const char *name;
	const char *key;
} variables[] = {
	{"pv.name", FV_KEY_VOLUME_NAME},
	{"pod.namespace", FV_KEY_POD_NAMESPACE},
	{"pod.name", FV_KEY_POD_NAME},
	{"pod.uid", FV_KEY_POD_UID},
	{"serviceAccount.name", FV_KEY_SERVICE_ACCOUNT},
};

int fv_nfs_expand_subdir(const char *tmpl, const struct fv_opts *o, char *buf, size_t size, struct fv_err *err)
{
	size_t n = 0;
	for (const char *p = tmpl; *p;) {
		const char *piece = p;
		size_t len;
		if (p[0] == '$' && p[1] == '{') {
			const char *end = strchr(p + 2, '}');
			if (!end)
				return fv_err_msg(err, EINVAL, "option 'subDir': '${' without a closing '}'");
			size_t vlen = (size_t)(end - p - 2), i;
			for (i = 0; i < sizeof(variables) / sizeof(variables[0]); i++)
				if (strlen(variables[i].name) == vlen && !strncmp(variables[i].name, p + 2, vlen))
					break;
			if (i == sizeof(variables) / sizeof(variables[0]))
				return fv_err_msg(err, EINVAL,
						  "option 'subDir': unknown variable '${%.*s}' (known: ${pv.name}, "
						  "${pod.namespace}, ${pod.name}, ${pod.uid}, ${serviceAccount.name})",
						  (int)(vlen > 64 ? 64 : vlen), p + 2);
			piece = fv_opts_get(o, variables[i].key);
			if (!piece || !*piece)
				return fv_err_msg(err, EINVAL, "option 'subDir': ${%s} is empty here (kubelet sent no '%s')",
						  variables[i].name, variables[i].key);
			/* One variable, one path component: a value can never add a level. */
			if (strchr(piece, '/') || !strcmp(piece, ".") || !strcmp(piece, ".."))
				return fv_err_msg(err, EINVAL, "option 'subDir': ${%s} = '%.128s' is not a valid directory name",
						  variables[i].name, piece);
			len = strlen(piece);
			p = end + 1;
		} else {
			const char *next = strstr(p + 1, "${");
			len = next ? (size_t)(next - p) : strlen(p);
			p += len;
		}
		if (n + len >= size)
			return fv_err_msg(err, ENAMETOOLONG, "option 'subDir' is too long once expanded");
		memcpy(buf + n, piece, len);
		n += len;
	}
	buf[n] = '\0';
	if (has_control_chars(buf))
		return fv_err_msg(err, EINVAL, "option 'subDir' must not contain control characters");
	return fv_path_check_relative(buf, "option 'subDir'", err);
}

size_t fv_nfs_per_pod_depth(const char *tmpl)
{
	size_t depth = 0;
	for (const char *c = tmpl; *c;) {
		size_t n = strcspn(c, "/");
		depth++;
		for (const char *v = c; v < c + n; v++)
			if ((v + 10 <= c + n && !strncmp(v, "${pod.uid}", 10)) ||
			    (v + 11 <= c + n && !strncmp(v, "${pod.name}", 11)))
				return depth;
		c += n;
		if (*c == '/')
			c++;
	}
	return 0;
}

int fv_nfs_parse_id(const char *s, const char *what, unsigned int *id, struct fv_err *err)
{
	size_t n = strlen(s);
	if (!n || n > 10 || strspn(s, "0123456789") != n)
		return fv_err_msg(err, EINVAL, "%s must be a number (a numeric id), not '%.32s'", what, s);
	unsigned long v = strtoul(s, NULL, 10);
	if (v > 4294967294UL)
		return fv_err_msg(err, EINVAL, "%s '%s' is out of range (0 to 4294967294)", what, s);
	*id = (unsigned int)v;
	return 0;
}

/* ---- mount options ---- */

static const char *const vers_values[] = {"3", "4", "4.0", "4.1", "4.2", NULL};
static const char *const proto_values[] = {"tcp", "udp", "rdma", "tcp6", "udp6", "rdma6", NULL};
static const char *const mountproto_values[] = {"tcp", "udp", "tcp6", "udp6", NULL};
static const char *const lookupcache_values[] = {"all", "none", "pos", "positive", NULL};
static const char *const local_lock_values[] = {"all", "flock", "posix", "none", NULL};
static const char *const write_values[] = {"lazy", "eager", "wait", NULL};
static const char *const sec_values[] = {"none", "sys", "krb5", "krb5i", "krb5p", NULL};

#define F FV_MOPT_F
#define U FV_MOPT_U
#define E FV_MOPT_E

/* nfs(5) and fs/nfs/fs_context.c (Linux 6.1), plus the generic per-mount
 * flags mount.nfs turns into MS_* flags. */
static const struct fv_mountopt nfsopts[] = {
	F("ac", "ac"), F("noac", "ac"),
	F("cto", "cto"), F("nocto", "cto"),
	F("lock", "lock"), F("nolock", "lock"),
	F("acl", "acl"), F("noacl", "acl"),
	F("rdirplus", "rdirplus"), F("nordirplus", "rdirplus"),
	F("sharecache", "sharecache"), F("nosharecache", "sharecache"),
	F("resvport", "resvport"), F("noresvport", "resvport"),
	F("fsc", "fsc"), F("nofsc", "fsc"),
	F("migration", "migration"), F("nomigration", "migration"),
	F("intr", "intr"), F("nointr", "intr"),
	F("posix", "posix"), F("noposix", "posix"),
	F("softreval", "softreval"), F("nosoftreval", "softreval"),
	F("trunkdiscovery", "trunkdiscovery"), F("notrunkdiscovery", "trunkdiscovery"),
	F("soft", "hard"), F("hard", "hard"), F("softerr", "hard"),
	F("tcp", "proto"), F("udp", "proto"), F("rdma", "proto"),
	F("fg", "fg"),
	E("vers", "vers", vers_values), E("nfsvers", "vers", vers_values),
	U("minorversion", "minorversion", 0, 2),
	E("proto", "proto", proto_values),
	E("mountproto", "mountproto", mountproto_values),
	U("port", "port", 0, 65535),
	U("mountport", "mountport", 0, 65535),
	U("mountvers", "mountvers", 1, 3),
	U("rsize", "rsize", 1024, 1048576),
	U("wsize", "wsize", 1024, 1048576),
	U("timeo", "timeo", 1, 36000),
	U("retrans", "retrans", 0, 100),
	U("acregmin", "acregmin", 0, 86400),
	U("acregmax", "acregmax", 0, 86400),
	U("acdirmin", "acdirmin", 0, 86400),
	U("acdirmax", "acdirmax", 0, 86400),
	U("actimeo", "actimeo", 0, 86400),
	U("retry", "retry", 0, 10000),
	U("nconnect", "nconnect", 1, 16),
	U("max_connect", "max_connect", 1, 16),
	E("lookupcache", "lookupcache", lookupcache_values),
	E("local_lock", "local_lock", local_lock_values),
	E("write", "write", write_values),
	{"sec", "sec", FV_MOPT_ENUMS, 0, 0, sec_values, false},
	{"clientaddr", "clientaddr", FV_MOPT_ADDR, 0, 0, NULL, false},
	F("atime", "atime"), F("noatime", "atime"),
	F("diratime", "diratime"), F("nodiratime", "diratime"),
	F("relatime", "relatime"), F("norelatime", "relatime"),
	F("strictatime", "strictatime"), F("nostrictatime", "strictatime"),
	F("lazytime", "lazytime"), F("nolazytime", "lazytime"),
	F("sync", "sync"), F("async", "sync"),
	F("exec", "exec"), F("noexec", "exec"),
	/* Implied anyway: accepted, not repeated. */
	{"nosuid", "nosuid", FV_MOPT_FLAG, 0, 0, NULL, true},
	{"nodev", "nodev", FV_MOPT_FLAG, 0, 0, NULL, true},
};

static const struct fv_mountopt_refusal refused[] = {
	{"ro", "read-only is set from the volume's readOnly flag (kubernetes.io/readwrite)"},
	{"rw", "read-only is set from the volume's readOnly flag (kubernetes.io/readwrite)"},
	{"suid", "the driver always mounts nosuid"},
	{"dev", "the driver always mounts nodev"},
	{"bg", "a background mount would outlive the call (kubelet needs the mount done when it returns)"},
	{"addr", "the server is given by option 'server'"},
	{"mountaddr", "the server is given by option 'server'"},
	{"mounthost", "the server is given by option 'server'"},
	{"source", "the server is given by option 'server'"},
};

static const struct fv_mountopt_table nfs_table = {
	.what = "an NFS mount option this driver accepts (see nfs(5))",
	.opts = nfsopts,
	.nopts = sizeof(nfsopts) / sizeof(nfsopts[0]),
	.refused = refused,
	.nrefused = sizeof(refused) / sizeof(refused[0]),
};

int fv_nfs_mount_options(const char *user, bool readonly, char **out, struct fv_err *err)
{
	char *opts = NULL;
	*out = NULL;
	if (fv_mountopts_check(&nfs_table, "mountOptions", user, &opts, err) < 0)
		return err->code;
	if (mnt_optstr_append_option(&opts, "nosuid", NULL) || mnt_optstr_append_option(&opts, "nodev", NULL) ||
	    mnt_optstr_append_option(&opts, readonly ? "ro" : "rw", NULL)) {
		free(opts);
		return fv_err_set(err, ENOMEM, "building mount options");
	}
	*out = opts;
	return 0;
}

int fv_parse_dir_mode(const char *s, const char *what, unsigned int *mode, struct fv_err *err)
{
	size_t n = strlen(s);
	if (!n || n > 5 || strspn(s, "01234567") != n)
		return fv_err_msg(err, EINVAL, "%s must be an octal mode such as 0755, not '%.32s'", what, s);
	unsigned long m = strtoul(s, NULL, 8);
	if (m > 03777)
		return fv_err_msg(err, EINVAL, "%s '%s' is out of range (at most 03777: no setuid bit on a directory)",
				  what, s);
	*mode = (unsigned int)m;
	return 0;
}
