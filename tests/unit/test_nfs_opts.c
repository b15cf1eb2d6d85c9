/* NFS volume options: server names, export paths, subDir templates and the
 * mount-option allowlist (flexvol/nfsopts.c). */
#include <errno.h>
#include <stdlib.h>
#include "nfsopts.h"
#include "opts.h"
#include "tap.h"

static void server(const char *s, bool ok)
{
	struct fv_err e = {0};
	int r = fv_nfs_check_server(s, &e);
	CHECK((r == 0) == ok, "server '%s' %s%s%s", s, ok ? "accepted" : "refused", r ? ": " : "", r ? e.msg : "");
}

static void share(const char *s, const char *want)
{
	char buf[256];
	struct fv_err e = {0};
	int r = fv_nfs_check_share(s, buf, sizeof(buf), &e);
	if (want)
		CHECK(r == 0 && !strcmp(buf, want), "share '%s' -> '%s'%s", s, r ? e.msg : buf, r ? " (refused)" : "");
	else
		CHECK(r < 0, "share '%s' refused: %s", s, e.msg);
}

/* want NULL: refused, and the message contains why. */
static void mopts(const char *user, bool ro, const char *want, const char *why)
{
	char *out = NULL;
	struct fv_err e = {0};
	int r = fv_nfs_mount_options(user, ro, &out, &e);
	if (want)
		CHECK(r == 0 && out && !strcmp(out, want), "mountOptions '%s' -> '%s'", user ? user : "(none)",
		      r ? e.msg : out);
	else
		CHECK(r < 0 && !out && strstr(e.msg, why), "mountOptions '%s' refused: %s", user, e.msg);
	free(out);
}

static const char *pod_json = "{\"kubernetes.io/pvOrVolumeName\":\"shared-writer\","
			      "\"kubernetes.io/pod.namespace\":\"team-a\",\"kubernetes.io/pod.name\":\"web-0\","
			      "\"kubernetes.io/pod.uid\":\"0a0a-11\",\"kubernetes.io/serviceAccount.name\":\"builder\"}";

static void subdir(const char *json, const char *tmpl, const char *want, const char *why)
{
	struct fv_err e = {0};
	struct fv_opts *o = fv_opts_parse(json, &e);
	char buf[256];
	int r = o ? fv_nfs_expand_subdir(tmpl, o, buf, sizeof(buf), &e) : -1;
	if (want)
		CHECK(r == 0 && !strcmp(buf, want), "subDir '%s' -> '%s'", tmpl, r ? e.msg : buf);
	else
		CHECK(r < 0 && strstr(e.msg, why), "subDir '%s' refused: %s", tmpl, e.msg);
	fv_opts_free(o);
}

static void source(const char *srv, const char *sh, const char *sub, const char *want)
{
	char buf[128];
	struct fv_err e = {0};
	int r = fv_nfs_source(srv, sh, sub, buf, sizeof(buf), &e);
	CHECK(r == 0 && !strcmp(buf, want), "source %s + %s + %s = %s", srv, sh, sub ? sub : "(none)", r ? e.msg : buf);
}

/* want: 1 allowed, 0 not, -1 the list is refused (why in the message). */
static void allowed(const char *srv, const char *list, int want, const char *why)
{
	struct fv_err e = {0};
	int r = fv_nfs_server_allowed(srv, list, &e);
	if (want < 0)
		CHECK(r < 0 && strstr(e.msg, why), "allowed-servers '%s' refused: %s", list, e.msg);
	else
		CHECK(r == want, "server '%s' %s by '%s'%s%s", srv, want ? "allowed" : "not allowed", list,
		      r < 0 ? ": " : "", r < 0 ? e.msg : "");
}

static void mode(const char *s, int want)
{
	unsigned int m = 0;
	struct fv_err e = {0};
	int r = fv_parse_dir_mode(s, "mode", &m, &e);
	if (want >= 0)
		CHECK(r == 0 && m == (unsigned)want, "mode '%s' = %04o", s, m);
	else
		CHECK(r < 0, "mode '%s' refused: %s", s, e.msg);
}

int main(void)
{
	server("nfs.example.com", true);
	server("nfs-1", true);
	server("nfs.example.com.", true);
	server("10.0.0.7", true);
	server("[fd00::7]", true);
	server("[::1]", true);
	server("", false);
	server("fd00::7", false);
	server("[fd00::7", false);
	server("[not-v6]", false);
	server("10.0.0", false);
	server("300.1.1.1", false);
	server("-bad.example", false);
	server("a..b", false);
	server("host,addr=10.6.6.6", false);
	server("host:/x", false);
	server("host name", false);
	server("host\t", false);
	/* Names the resolver reads as addresses: they would dodge address entries. */
	server("0x7f000001", false);
	server("0177.0.0.1", false);
	server("0x7f.1", false);
	server("2130706433", false);
	server("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z."
	       "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z."
	       "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z",
	       false);

	share("/export", "/export");
	share("/export/", "/export");
	share("/", "/");
	share("/srv/nfs/shared", "/srv/nfs/shared");
	share("export", NULL);
	share("", NULL);
	share("/export/../etc", NULL);
	share("/export//x", NULL);
	share("/export/./x", NULL);
	share("/exp\tort", NULL);

	source("10.0.0.7", "/export", NULL, "10.0.0.7:/export");
	source("10.0.0.7", "/export", "", "10.0.0.7:/export");
	source("nfs", "/export", "a/b", "nfs:/export/a/b");
	source("[::1]", "/", "team-a", "[::1]:/team-a");

	/* The driver's own options always come last and cannot be given. */
	mopts(NULL, false, "nosuid,nodev,rw", NULL);
	mopts("", true, "nosuid,nodev,ro", NULL);
	mopts("vers=4.1", false, "vers=4.1,nosuid,nodev,rw", NULL);
	mopts("nfsvers=3,proto=tcp,port=2049,hard,timeo=600,retrans=2", true,
	      "nfsvers=3,proto=tcp,port=2049,hard,timeo=600,retrans=2,nosuid,nodev,ro", NULL);
	mopts("noatime,nolock,noac,actimeo=0,lookupcache=none,sec=krb5i:krb5p,nconnect=4", false,
	      "noatime,nolock,noac,actimeo=0,lookupcache=none,sec=krb5i:krb5p,nconnect=4,nosuid,nodev,rw", NULL);
	mopts("rsize=1048576,wsize=65536,soft,clientaddr=fd00::2,local_lock=flock,noexec", false,
	      "rsize=1048576,wsize=65536,soft,clientaddr=fd00::2,local_lock=flock,noexec,nosuid,nodev,rw", NULL);
	mopts("nosuid,nodev", false, "nosuid,nodev,rw", NULL);
	mopts("rw", true, NULL, "readOnly");
	mopts("ro", false, NULL, "readOnly");
	mopts("vers=4.1,ro", false, NULL, "readOnly");
	mopts("suid", false, NULL, "nosuid");
	mopts("dev", false, NULL, "nodev");
	mopts("bg", false, NULL, "background");
	mopts("addr=10.6.6.6", false, NULL, "option 'server'");
	mopts("mounthost=evil", false, NULL, "option 'server'");
	mopts("remount", false, NULL, "not an NFS mount option");
	mopts("bind", false, NULL, "not an NFS mount option");
	mopts("context=system_u:object_r:nfs_t:s0", false, NULL, "not an NFS mount option");
	mopts("defaults", false, NULL, "not an NFS mount option");
	mopts("vers=5", false, NULL, "one of 3, 4");
	mopts("vers=4.1\"", false, NULL, "one of");
	mopts("vers", false, NULL, "needs one of");
	mopts("vers=", false, NULL, "needs one of");
	mopts("port=65536", false, NULL, "from 0 to 65535");
	mopts("port=-1", false, NULL, "from 0 to 65535");
	mopts("port=+1", false, NULL, "from 0 to 65535");
	mopts("port=0x10", false, NULL, "from 0 to 65535");
	mopts("timeo=99999999999999999999", false, NULL, "from 1 to");
	mopts("hard=1", false, NULL, "takes no value");
	mopts("sec=sys:", false, NULL, "sec");
	mopts("sec=sys::krb5", false, NULL, "sec");
	mopts("sec=unix", false, NULL, "sec");
	mopts("clientaddr=host.example", false, NULL, "address");
	/* Comma smuggling: each entry is judged on its own, quotes included. */
	mopts("sec=sys,suid", false, NULL, "nosuid");
	mopts("sec=\"sys,suid\"", false, NULL, "sec");
	mopts("vers=4.1,,hard", false, NULL, "empty entry");
	mopts(",hard", false, NULL, "empty entry");
	mopts("hard,", false, NULL, "empty entry");
	mopts("vers=4.1\tro", false, NULL, "control characters");
	mopts("hard,soft", false, NULL, "conflicts");
	mopts("ac,noac", false, NULL, "conflicts");
	mopts("vers=3,nfsvers=4", false, NULL, "conflicts");
	mopts("tcp,proto=udp", false, NULL, "conflicts");
	mopts("noatime,noatime", false, NULL, "repeats");
	mopts("HARD", false, NULL, "not an NFS mount option");

	subdir(pod_json, "plain", "plain", NULL);
	subdir(pod_json, "shared/${pv.name}", "shared/shared-writer", NULL);
	subdir(pod_json, "${pod.namespace}/${pod.name}-${pod.uid}", "team-a/web-0-0a0a-11", NULL);
	subdir(pod_json, "sa-${serviceAccount.name}", "sa-builder", NULL);
	subdir(pod_json, "cost$5/${pv.name}", "cost$5/shared-writer", NULL);
	subdir(pod_json, "${pv.name", NULL, "closing");
	subdir(pod_json, "${pod.labels}", NULL, "unknown variable");
	subdir(pod_json, "${PV.NAME}", NULL, "unknown variable");
	subdir(pod_json, "../x", NULL, "'..'");
	subdir(pod_json, "a/../../x", NULL, "'..'");
	subdir(pod_json, "/abs", NULL, "relative path");
	subdir(pod_json, "a//b", NULL, "empty components");
	subdir(pod_json, "a/", NULL, "end with");
	subdir(pod_json, "", NULL, "empty");
	subdir(pod_json, "a\x01", NULL, "control");
	/* Values come from options a pod author can override: each stays one component. */
	subdir("{\"kubernetes.io/pod.name\":\"..\"}", "x/${pod.name}", NULL, "not a valid directory name");
	subdir("{\"kubernetes.io/pod.name\":\"a/../../b\"}", "${pod.name}", NULL, "not a valid directory name");
	subdir("{\"kubernetes.io/pod.name\":\"\"}", "${pod.name}", NULL, "is empty");
	subdir("{}", "${pod.uid}", NULL, "kubernetes.io/pod.uid");

	/* Misspelt options fail instead of being ignored; kubelet's keys pass. */
	static const char *const known[] = {"server", "share", "subDir", NULL};
	struct fv_err e = {0};
	struct fv_opts *o = fv_opts_parse("{\"server\":\"a\",\"kubernetes.io/pod.name\":\"p\",\"subDir\":\"x\"}", &e);
	CHECK(o && fv_opts_check_known(o, known, NULL, &e) == 0, "known options accepted");
	fv_opts_free(o);
	o = fv_opts_parse("{\"server\":\"a\",\"subdir\":\"x\"}", &e);
	CHECK(o && fv_opts_check_known(o, known, NULL, &e) < 0 && strstr(e.msg, "unknown option 'subdir'") &&
		      strstr(e.msg, "server, share, subDir"),
	      "misspelt option refused: %s", e.msg);
	fv_opts_free(o);

	mode("0775", 0775);
	mode("755", 0755);
	mode("2775", 02775);
	mode("0", 0);
	mode("4755", -1);
	mode("0999", -1);
	mode("", -1);
	mode("0x1ff", -1);
	mode("-755", -1);
	mode("000755", -1);
	/* The per-pod part of a subDir template (subDirOnUnmount). */
	CHECK(fv_nfs_per_pod_depth("by-uid/${pod.uid}") == 2, "per-pod: by-uid/${pod.uid}");
	CHECK(fv_nfs_per_pod_depth("${pod.uid}/data/x") == 1, "per-pod: ${pod.uid}/data/x");
	CHECK(fv_nfs_per_pod_depth("t/${pod.namespace}/${pv.name}/${pod.name}") == 4, "per-pod: pod.name last");
	CHECK(fv_nfs_per_pod_depth("a/x-${pod.name}-y/b") == 2, "per-pod: inside a component");
	CHECK(fv_nfs_per_pod_depth("shared/${pv.name}") == 0, "shared: pv.name only");
	CHECK(fv_nfs_per_pod_depth("${pod.namespace}/${serviceAccount.name}") == 0, "shared: namespace");
	CHECK(fv_nfs_per_pod_depth("pod.uid/${pod.ui}") == 0, "shared: no variable");
	CHECK(fv_nfs_per_pod_depth("") == 0, "no subDir");
	{
		unsigned int id = 7;
		e = (struct fv_err){0};
		CHECK(fv_nfs_parse_id("0", "uid", &id, &e) == 0 && id == 0, "id 0");
		CHECK(fv_nfs_parse_id("4294967294", "uid", &id, &e) == 0 && id == 4294967294U, "id max");
		const char *bad[] = {"4294967295", "-1", "+5", "1e3", "0x10", "", " 5", "12345678901", NULL};
		for (const char **b = bad; *b; b++)
			CHECK(fv_nfs_parse_id(*b, "option 'subDirUid'", &id, &e) < 0 && strstr(e.msg, "subDirUid"),
			      "id '%s' refused: %s", *b, e.msg);
	}

	/* allowed-servers: names by name, addresses by address or prefix, nothing resolved. */
	const char *list = "nfs.example.com, 10.1.0.0/16 192.168.7.9,[fd00::]/64\tfd01::5 NAS-2.Corp.";
	allowed("nfs.example.com", list, 1, NULL);
	allowed("NFS.Example.COM.", list, 1, NULL);
	allowed("nas-2.corp", list, 1, NULL);
	allowed("nfs.example.co", list, 0, NULL);
	allowed("nfs.example.com.evil.org", list, 0, NULL);
	allowed("evil-nfs.example.com", list, 0, NULL);
	allowed("10.1.0.1", list, 1, NULL);
	allowed("10.1.255.254", list, 1, NULL);
	allowed("10.2.0.1", list, 0, NULL);
	allowed("192.168.7.9", list, 1, NULL);
	allowed("192.168.7.10", list, 0, NULL);
	allowed("[fd00::1234]", list, 1, NULL);
	allowed("[fd00:0:0:1::1]", list, 0, NULL);
	allowed("[fd01::5]", list, 1, NULL);
	allowed("[fd01::6]", list, 0, NULL);
	allowed("[::ffff:10.1.0.1]", list, 0, NULL); /* an IPv4 prefix never matches an IPv6 address */
	allowed("localhost", "127.0.0.0/8", 0, NULL); /* a name is never resolved to match an address */
	allowed("127.0.0.1", "localhost", 0, NULL);
	allowed("10.9.8.7", "10.9.8.7/31", 1, NULL);
	allowed("10.9.8.6", "10.9.8.7/31", 1, NULL);
	allowed("10.9.8.8", "10.9.8.7/31", 0, NULL);
	allowed("10.9.8.7", "10.9.8.0/29", 1, NULL);
	allowed("10.9.8.8", "10.9.8.0/29", 0, NULL);
	allowed("[fd00::1]", "fd00::/15", 1, NULL);
	allowed("[fc00::1]", "fd00::/7", 1, NULL);
	allowed("[fe00::1]", "fd00::/7", 0, NULL);
	allowed("anything.example", "*", 1, NULL);
	allowed("[::1]", "nfs, *", 1, NULL);
	allowed("10.0.0.1", "0.0.0.0/0", 1, NULL);
	allowed("[::1]", "0.0.0.0/0", 0, NULL);
	allowed("10.0.0.1", "", 0, NULL);
	allowed("10.0.0.1", " , ", 0, NULL);
	/* A bad entry is reported even when another entry matches. */
	allowed("10.0.0.1", "10.0.0.1, 10.0.0.0/33", -1, "10.0.0.0/33");
	allowed("10.0.0.1", "10.0.0.1, fd00::/129", -1, "fd00::/129");
	allowed("10.0.0.1", "10.0.0.1 10.0.0", -1, "'10.0.0'");
	allowed("10.0.0.1", "10.0.0.1 0x0a000001", -1, "0x0a000001");
	allowed("10.0.0.1", "10.0.0.1 nfs/24", -1, "nfs/24");
	allowed("10.0.0.1", "10.0.0.1 10.0.0.0/", -1, "10.0.0.0/");
	allowed("10.0.0.1", "10.0.0.1 10.0.0.0/-1", -1, "10.0.0.0/-1");
	allowed("10.0.0.1", "10.0.0.1 *.example.com", -1, "*.example.com");
	allowed("10.0.0.1", "10.0.0.1;nfs", -1, "10.0.0.1;nfs");
	allowed("10.0.0.1", "10.0.0.1 [10.0.0.2]", -1, "[10.0.0.2]");
	return tap_done("test_nfs_opts");
}
