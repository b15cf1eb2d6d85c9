/* Options: JSON parsing, typed kubelet keys, secrets, sizes. */
#include <errno.h>
#include <stdlib.h>
#include "opts.h"
#include "tap.h"

static struct fv_opts *parse(const char *json, struct fv_err *e)
{
	*e = (struct fv_err){0};
	return fv_opts_parse(json, e);
}

static void test_kubelet_keys(void)
{
	struct fv_err e;
	struct fv_opts *o = parse("{\"kubernetes.io/fsType\":\"xfs\",\"kubernetes.io/readwrite\":\"ro\","
				  "\"kubernetes.io/pvOrVolumeName\":\"pv-1\",\"kubernetes.io/pod.uid\":\"u1\"}",
				  &e);
	CHECK(o != NULL, "kubelet options parse");
	CHECK_STR(fv_opts_fstype(o), "xfs", "fsType");
	CHECK(fv_opts_readonly(o), "readwrite=ro is read-only");
	CHECK_STR(fv_opts_volume_name(o), "pv-1", "pvOrVolumeName");
	CHECK_STR(fv_opts_get(o, "kubernetes.io/pod.uid"), "u1", "pod.uid");
	CHECK(fv_opts_get(o, "missing") == NULL, "absent key is NULL");
	fv_opts_free(o);

	o = parse("{\"kubernetes.io/fsType\":\"\",\"kubernetes.io/readwrite\":\"rw\"}", &e);
	CHECK(fv_opts_fstype(o) == NULL, "empty fsType reads as unset");
	CHECK(!fv_opts_readonly(o), "readwrite=rw is writable");
	fv_opts_free(o);
}

static void test_unescaping(void)
{
	struct fv_err e;
	/* Go's encoder escapes <, > and & and may emit surrogate pairs. */
	struct fv_opts *o = parse("{\"a\":\"\\u003cx\\u003e \\u0026 \\\"q\\\" \\\\ \\ud83d\\ude00 \\u00e9\"}", &e);
	CHECK(o != NULL, "escaped strings parse");
	CHECK_STR(fv_opts_get(o, "a"), "<x> & \"q\" \\ \xf0\x9f\x98\x80 \xc3\xa9", "full JSON unescaping");
	fv_opts_free(o);
	o = parse("{\"a\":\"x\\u0000y\"}", &e);
	CHECK(o == NULL && strstr(e.msg, "NUL"), "embedded NUL refused: %s", e.msg);
}

static void test_rejections(void)
{
	struct fv_err e;
	CHECK(parse("{\"a\":", &e) == NULL && strstr(e.msg, "not valid JSON"), "broken JSON: %s", e.msg);
	CHECK(parse("[\"a\"]", &e) == NULL && strstr(e.msg, "JSON object"), "array refused: %s", e.msg);
	CHECK(parse("\"s\"", &e) == NULL, "bare string refused");
	CHECK(parse("{\"a\":1}", &e) == NULL && strstr(e.msg, "'a' must be a string"), "number refused: %s", e.msg);
	CHECK(parse("{\"a\":{}}", &e) == NULL, "nested object refused");
	CHECK(parse("{\"a\":null}", &e) == NULL, "null refused");
	CHECK(parse("{\"a\":\"1\",\"a\":\"2\"}", &e) == NULL, "duplicate keys refused");
	CHECK(parse("{\"a\":\"1\"} x", &e) == NULL, "trailing garbage refused");
	CHECK(e.code == -EINVAL, "error code is -EINVAL");
}

static void test_fsgroup(void)
{
	struct fv_err e;
	unsigned long gid = 0;
	struct fv_opts *o = parse("{\"kubernetes.io/mounterArgs.FsGroup\":\"2000\"}", &e);
	CHECK(fv_opts_fsgroup(o, &gid, &e) == 1 && gid == 2000, "1.15+ fsGroup key");
	fv_opts_free(o);
	o = parse("{\"kubernetes.io/fsGroup\":\"3000\"}", &e);
	CHECK(fv_opts_fsgroup(o, &gid, &e) == 1 && gid == 3000, "pre-1.15 fsGroup key");
	fv_opts_free(o);
	o = parse("{}", &e);
	CHECK(fv_opts_fsgroup(o, &gid, &e) == 0, "no fsGroup");
	fv_opts_free(o);
	o = parse("{\"kubernetes.io/mounterArgs.FsGroup\":\"-1\"}", &e);
	CHECK(fv_opts_fsgroup(o, &gid, &e) < 0, "negative fsGroup refused");
	fv_opts_free(o);
}

static void test_secrets(void)
{
	struct fv_err e;
	size_t len = 0;
	/* "pa,ss$word" and a value with a NUL-free binary byte */
	struct fv_opts *o = parse("{\"kubernetes.io/secret/password\":\"cGEsc3Mkd29yZA==\","
				  "\"kubernetes.io/secret/user\":\"YWRtaW4=\"}",
				  &e);
	CHECK(o != NULL, "secrets parse");
	CHECK(fv_opts_has_secrets(o), "has secrets");
	const unsigned char *pw = fv_opts_secret(o, "password", &len);
	CHECK(pw && len == 10 && !memcmp(pw, "pa,ss$word", 10), "secret decoded from base64");
	CHECK(fv_opts_secret(o, "nope", NULL) == NULL, "absent secret is NULL");
	char msg[] = "failed for pa,ss$word with cGEsc3Mkd29yZA== and admin";
	fv_opts_redact(o, msg);
	CHECK_STR(msg, "failed for *** with *** and ***", "redaction masks raw and base64 values");
	char *masked = fv_opts_dump_masked(o);
	CHECK_STR(masked, "{\"kubernetes.io/secret/password\":\"***\",\"kubernetes.io/secret/user\":\"***\"}",
		  "the masked dump (what our argv shows) has every secret value masked, in order");
	free(masked);
	fv_opts_free(o);

	o = parse("{\"kubernetes.io/secret/k\":\"not base64!\"}", &e);
	CHECK(o == NULL && strstr(e.msg, "kubernetes.io/secret/k") && !strstr(e.msg, "not base64!"),
	      "bad base64 refused without echoing the value: %s", e.msg);
	o = parse("{\"kubernetes.io/secret/k\":\"c2VjcmV0\", \"x\":", &e);
	CHECK(o == NULL && !strstr(e.msg, "c2VjcmV0"), "broken JSON with secrets does not quote tokens: %s", e.msg);
	CHECK(!fv_opts_has_secrets(NULL), "NULL options have no secrets");
}

static void test_base64(void)
{
	unsigned char out[16];
	CHECK(fv_base64_decode("", out, sizeof(out)) == 0, "empty");
	CHECK(fv_base64_decode("Zg==", out, sizeof(out)) == 1 && out[0] == 'f', "one byte, two pads");
	CHECK(fv_base64_decode("Zm8=", out, sizeof(out)) == 2, "two bytes, one pad");
	CHECK(fv_base64_decode("Zm9v", out, sizeof(out)) == 3, "no pad");
	CHECK(fv_base64_decode("Zm9", out, sizeof(out)) < 0, "bad length");
	CHECK(fv_base64_decode("Z===", out, sizeof(out)) < 0, "too much padding");
	CHECK(fv_base64_decode("Zg==Zg==", out, sizeof(out)) < 0, "padding in the middle");
	CHECK(fv_base64_decode("Zm9v", out, 2) < 0, "output too small");
	CHECK(fv_base64_decode("+/+/", out, sizeof(out)) == 3 && out[0] == 0xfb && out[1] == 0xff, "+ and / alphabet");
}

static void test_bytes(void)
{
	uint64_t n = 0;
	CHECK(fv_parse_bytes("1048576", &n) == 0 && n == 1048576, "plain bytes");
	CHECK(fv_parse_bytes("64Mi", &n) == 0 && n == 64ULL << 20, "Mi");
	CHECK(fv_parse_bytes("2Gi", &n) == 0 && n == 2ULL << 30, "Gi");
	CHECK(fv_parse_bytes("1Ti", &n) == 0 && n == 1ULL << 40, "Ti");
	CHECK(fv_parse_bytes("5Ki", &n) == 0 && n == 5120, "Ki");
	CHECK(fv_parse_bytes("1G", &n) == -EINVAL, "decimal units refused");
	CHECK(fv_parse_bytes("-1", &n) == -EINVAL, "negative refused");
	CHECK(fv_parse_bytes("", &n) == -EINVAL, "empty refused");
	CHECK(fv_parse_bytes("99999999999Ti", &n) == -ERANGE, "overflow refused");
}

int main(void)
{
	test_kubelet_keys();
	test_unescaping();
	test_rejections();
	test_fsgroup();
	test_secrets();
	test_base64();
	test_bytes();
	return tap_done("test_opts");
}
