/* The pure parts of the gcepd driver (providers/gcepd/gceutil.c): device
 * names derived from PV names, resource links, error and operation bodies,
 * base64url and the JWT signing input. The unit-test rule links only the
 * core library, so the file is compiled in here. */
#include <errno.h>
#include <stdlib.h>
#include "../../providers/gcepd/gceutil.c"
#include "tap.h"

static void device(const char *pv, const char *want)
{
	char buf[GCE_NAME_MAX + 1];
	struct fv_err e = {0};
	int r = gce_device_name(pv, buf, sizeof(buf), &e);
	CHECK(r == 0 && !strcmp(buf, want), "device name of '%s' -> '%s' (want '%s')", pv, r ? e.msg : buf, want);
	CHECK(r == 0 && gce_valid_name(buf), "'%s' is a valid GCE device name", buf);
}

static void device_names(void)
{
	/* Valid GCE names are kept: what users see in /dev/disk/by-id/google-<name>. */
	device("pvc-3f1c2d44-5b6a-4c1e-9d6e-0123456789ab", "pvc-3f1c2d44-5b6a-4c1e-9d6e-0123456789ab");
	device("data", "data");
	/* Anything else is mapped and hashed, so that distinct PV names stay distinct. */
	char a[64], b[64];
	struct fv_err e = {0};
	gce_device_name("pv.a", a, sizeof(a), &e);
	gce_device_name("pv-a", b, sizeof(b), &e);
	CHECK(strcmp(a, b) != 0 && !strncmp(a, "pv-a-", 5) && strlen(a) == 13, "'pv.a' -> '%s', not '%s'", a, b);
	CHECK(gce_valid_name(a), "'%s' is valid", a);
	gce_device_name("PV-Upper", a, sizeof(a), &e);
	CHECK(!strncmp(a, "pv-upper-", 9) && gce_valid_name(a), "upper case folded: '%s'", a);
	gce_device_name("0-starts-with-digit", a, sizeof(a), &e);
	CHECK(!strncmp(a, "pv-0-starts-with-digit-", 23) && gce_valid_name(a), "digit first gets a prefix: '%s'", a);
	gce_device_name("ends-with-dash-", a, sizeof(a), &e);
	CHECK(gce_valid_name(a), "a trailing '-' is hashed away: '%s'", a);
	char longname[254];
	memset(longname, 'x', 253);
	longname[253] = '\0';
	gce_device_name(longname, a, sizeof(a), &e);
	longname[252] = 'y';
	gce_device_name(longname, b, sizeof(b), &e);
	CHECK(strlen(a) <= GCE_NAME_MAX && gce_valid_name(a) && strcmp(a, b), "253-character names fit and differ: '%s'",
	      a);
	memset(longname, 'x', 64);
	longname[64] = '\0';
	gce_device_name(longname, a, sizeof(a), &e);
	CHECK(strlen(a) == 62 && gce_valid_name(a), "64 characters (one too many) are hashed: '%s'", a);
	/* Stable across versions: this exact value is a contract (docs/gcepd.md). */
	gce_device_name("pv.a", a, sizeof(a), &e);
	char want[32];
	snprintf(want, sizeof(want), "pv-a-%08x", fnv1a32("pv.a"));
	CHECK_STR(a, want, "hash form");
	CHECK(fnv1a32("") == 2166136261u && fnv1a32("a") == 0xe40c292cu, "FNV-1a 32 test vectors");
	CHECK(gce_device_name("", a, sizeof(a), &e) == -EINVAL, "an empty PV name is refused: %s", e.msg);
}

static void names(void)
{
	CHECK(gce_valid_name("a"), "'a' valid");
	CHECK(!gce_valid_name("a-"), "'a-' invalid");
	CHECK(!gce_valid_name("1a"), "'1a' invalid");
	CHECK(!gce_valid_name("aB"), "'aB' invalid");
	CHECK(!gce_valid_name(""), "'' invalid");
	char n64[65];
	memset(n64, 'a', 64);
	n64[64] = '\0';
	CHECK(!gce_valid_name(n64), "64 characters invalid");
	n64[63] = '\0';
	CHECK(gce_valid_name(n64), "63 characters valid");
	char buf[64];
	gce_instance_name("node-1.c.my-project.internal", buf, sizeof(buf));
	CHECK_STR(buf, "node-1", "instance of a hostname node name");
	gce_instance_name("node-1", buf, sizeof(buf));
	CHECK_STR(buf, "node-1", "instance of a plain node name");
	gce_zone_from_metadata("projects/123456789012/zones/us-central1-a\n", buf, sizeof(buf));
	CHECK_STR(buf, "us-central1-a", "zone from instance/zone");
}

static void links(void)
{
	char p[64], z[64], n[64];
	CHECK(gce_parse_link("https://www.googleapis.com/compute/v1/projects/my-project/zones/us-central1-a/disks/pd-1",
			     "disks", p, sizeof(p), z, sizeof(z), n, sizeof(n)) &&
		      !strcmp(p, "my-project") && !strcmp(z, "us-central1-a") && !strcmp(n, "pd-1"),
	      "full disk link: %s %s %s", p, z, n);
	CHECK(gce_parse_link("projects/p/zones/z/instances/i", "instances", p, sizeof(p), z, sizeof(z), n, sizeof(n)) &&
		      !strcmp(p, "p") && !strcmp(z, "z") && !strcmp(n, "i"),
	      "partial instance link");
	CHECK(gce_parse_link("zones/z/disks/d", "disks", p, sizeof(p), z, sizeof(z), n, sizeof(n)) && !p[0] &&
		      !strcmp(n, "d"),
	      "zone-relative link, no project");
	CHECK(!gce_parse_link("projects/p/zones/z/disks/d", "instances", NULL, 0, NULL, 0, NULL, 0), "wrong kind");
	CHECK(!gce_parse_link("projects/p/zones/z/disks/d/", "disks", NULL, 0, NULL, 0, NULL, 0), "trailing slash");
	CHECK(!gce_parse_link("projects/p/zones/z/disks/d/extra", "disks", NULL, 0, NULL, 0, NULL, 0), "extra segment");
	CHECK(!gce_parse_link(NULL, "disks", NULL, 0, NULL, 0, NULL, 0), "NULL link");
	CHECK(gce_parse_regional_link("https://www.googleapis.com/compute/v1/projects/p/regions/us-central1/disks/pd-r",
				      "disks", p, sizeof(p), z, sizeof(z), n, sizeof(n)) &&
		      !strcmp(p, "p") && !strcmp(z, "us-central1") && !strcmp(n, "pd-r"),
	      "a regional disk link");
	CHECK(!gce_parse_link("projects/p/regions/r/disks/d", "disks", NULL, 0, NULL, 0, NULL, 0),
	      "a regional link is no zonal one");
	CHECK(!gce_parse_regional_link("projects/p/zones/z/disks/d", "disks", NULL, 0, NULL, 0, NULL, 0),
	      "a zonal link is no regional one");
	char r[64];
	gce_region_of("us-central1-a", r, sizeof(r));
	CHECK(!strcmp(r, "us-central1"), "region of us-central1-a: %s", r);
	gce_region_of("europe-west4-b", r, sizeof(r));
	CHECK(!strcmp(r, "europe-west4"), "region of europe-west4-b: %s", r);
	CHECK(gce_in_use_by("The disk resource 'projects/my-project/zones/us-central1-a/disks/pd-1' is already being used "
			    "by 'projects/my-project/zones/us-central1-a/instances/node-2'",
			    p, sizeof(p), z, sizeof(z), n, sizeof(n)) &&
		      !strcmp(n, "node-2") && !strcmp(z, "us-central1-a"),
	      "in use by node-2");
	CHECK(!gce_in_use_by("Rate Limit Exceeded", p, sizeof(p), z, sizeof(z), n, sizeof(n)), "no instance named");
}

static void errors(void)
{
	char r[64];
	const char *rate = "{\"error\":{\"code\":403,\"message\":\"Rate Limit Exceeded\",\"errors\":[{\"message\":\"Rate "
			   "Limit Exceeded\",\"domain\":\"usageLimits\",\"reason\":\"rateLimitExceeded\"}]}}";
	gce_error_reason(rate, r, sizeof(r));
	CHECK_STR(r, "rateLimitExceeded", "reason of a rate-limit body");
	CHECK(gce_rate_limited(403, rate), "403 rateLimitExceeded is transient");
	CHECK(gce_rate_limited(403, "{\"error\":{\"errors\":[{\"reason\":\"userRateLimitExceeded\"}]}}"),
	      "403 userRateLimitExceeded is transient");
	CHECK(!gce_rate_limited(403, "{\"error\":{\"errors\":[{\"reason\":\"forbidden\"}]}}"), "403 forbidden is final");
	CHECK(!gce_rate_limited(403, "<html>denied</html>"), "403 without JSON is final");
	CHECK(gce_rate_limited(429, "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\"}}"), "429 is transient");
	gce_error_reason("{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\"}}", r, sizeof(r));
	CHECK_STR(r, "RESOURCE_EXHAUSTED", "status as the reason");
	gce_error_reason(NULL, r, sizeof(r));
	CHECK_STR(r, "", "no body, no reason");

	char code[64], msg[256];
	json_t *op = json_loads("{\"status\":\"DONE\",\"httpErrorStatusCode\":400,\"error\":{\"errors\":[{\"code\":"
				"\"RESOURCE_IN_USE_BY_ANOTHER_RESOURCE\",\"message\":\"in\\nuse\"}]}}",
				0, NULL);
	CHECK(gce_op_error(op, code, sizeof(code), msg, sizeof(msg)) && !strcmp(code, "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE") &&
		      !strcmp(msg, "in use"),
	      "operation error: %s: %s", code, msg);
	CHECK_STR(gce_op_status(op), "DONE", "operation status");
	json_decref(op);
	op = json_loads("{\"status\":\"DONE\",\"progress\":100}", 0, NULL);
	CHECK(!gce_op_error(op, code, sizeof(code), msg, sizeof(msg)), "a successful operation");
	json_decref(op);
	CHECK_STR(gce_op_status(NULL), "", "no operation, no status");

	json_t *d = json_loads("{\"sizeGb\":\"10\"}", 0, NULL);
	CHECK(gce_size_gb(d) == 10, "sizeGb as a string");
	json_decref(d);
	d = json_loads("{\"sizeGb\":200}", 0, NULL);
	CHECK(gce_size_gb(d) == 200, "sizeGb as a number");
	json_decref(d);
	d = json_loads("{\"sizeGb\":\"x\"}", 0, NULL);
	CHECK(gce_size_gb(d) == -1, "sizeGb malformed");
	json_decref(d);
}

static void encodings(void)
{
	static const struct {
		const char *in, *out;
	} v[] = {{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {"\xfb\xff", "-_8"}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *b = gce_base64url((const unsigned char *)v[i].in, strlen(v[i].in));
		CHECK_STR(b, v[i].out, "base64url");
		free(b);
	}
	char *in = gce_jwt_signing_input("kid1", "sa@p.iam.gserviceaccount.com", "https://www.googleapis.com/auth/compute",
					 "https://oauth2.googleapis.com/token", 1700000000, 3600);
	CHECK(in && strchr(in, '.') && !strchr(strchr(in, '.') + 1, '.'), "signing input is header.claims: %s", in);
	/* {"alg":"RS256","typ":"JWT","kid":"kid1"} */
	CHECK(in && !strncmp(in, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImtpZDEifQ.", 55), "header encoding");
	free(in);
	char u[37];
	unsigned char zero[16] = {0}, ones[16];
	memset(ones, 0xff, sizeof(ones));
	gce_uuid_format(zero, u);
	CHECK_STR(u, "00000000-0000-4000-8000-000000000000", "UUID v4 of zeros");
	gce_uuid_format(ones, u);
	CHECK_STR(u, "ffffffff-ffff-4fff-bfff-ffffffffffff", "UUID v4 of ones");
}

int main(void)
{
	device_names();
	names();
	links();
	errors();
	encodings();
	return tap_done("test_gcepd");
}
