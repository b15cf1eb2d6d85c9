#include "gceutil.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool gce_valid_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > GCE_NAME_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i + 1 < n);
		if (!ok)
			return false;
	}
	return true;
}

static uint32_t fnv1a32(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

#define DEVICE_STEM_MAX 53

int gce_device_name(const char *pv, char *buf, size_t size, struct fv_err *err)
{
	if (!pv || !*pv)
		return fv_err_msg(err, EINVAL, "the volume has no name (kubernetes.io/pvOrVolumeName is empty)");
	if (size < GCE_NAME_MAX + 1)
		return fv_err_msg(err, ENAMETOOLONG, "device name buffer too small");
	if (gce_valid_name(pv)) {
		snprintf(buf, size, "%s", pv);
		return 0;
	}
	char stem[DEVICE_STEM_MAX + 4];
	size_t n = 0;
	if (!(pv[0] >= 'a' && pv[0] <= 'z') && !(pv[0] >= 'A' && pv[0] <= 'Z')) {
		memcpy(stem, "pv-", 3);
		n = 3;
	}
	for (const char *p = pv; *p && n < DEVICE_STEM_MAX; p++) {
		unsigned char c = (unsigned char)tolower((unsigned char)*p);
		stem[n++] = (char)((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-');
	}
	stem[n] = '\0';
	snprintf(buf, size, "%s-%08x", stem, fnv1a32(pv));
	return 0;
}

void gce_instance_name(const char *node, char *buf, size_t size)
{
	const char *dot = strchr(node, '.');
	size_t n = dot ? (size_t)(dot - node) : strlen(node);
	snprintf(buf, size, "%.*s", (int)n, node);
}

static bool copy_out(char *buf, size_t size, const char *s, size_t n)
{
	if (!buf)
		return true;
	if (n >= size)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return true;
}

/* [projects/P/] <scope>/Z/<kind>/NAME at the very end of link. */
static bool parse_link(const char *link, const char *scope, const char *kind, char *project, size_t psize, char *zone,
		       size_t zsize, char *name, size_t nsize)
{
	enum { MAXSEG = 32 };
	const char *seg[MAXSEG];
	size_t len[MAXSEG], n = 0;
	if (!link || !kind)
		return false;
	for (const char *p = link; *p && n < MAXSEG;) {
		size_t l = strcspn(p, "/");
		seg[n] = p;
		len[n++] = l;
		p += l;
		if (*p == '/')
			p++;
	}
	if (n < 4 || n == MAXSEG || link[strlen(link) - 1] == '/')
		return false;
	size_t z = n - 4;
	if (len[z] != strlen(scope) || strncmp(seg[z], scope, len[z]) || len[z + 2] != strlen(kind) ||
	    strncmp(seg[z + 2], kind, len[z + 2]) || !len[z + 1] || !len[z + 3])
		return false;
	bool has_project = z >= 2 && len[z - 2] == 8 && !strncmp(seg[z - 2], "projects", 8) && len[z - 1];
	return copy_out(project, psize, has_project ? seg[z - 1] : "", has_project ? len[z - 1] : 0) &&
	       copy_out(zone, zsize, seg[z + 1], len[z + 1]) && copy_out(name, nsize, seg[z + 3], len[z + 3]);
}

bool gce_parse_link(const char *link, const char *kind, char *project, size_t psize, char *zone, size_t zsize,
		    char *name, size_t nsize)
{
	return parse_link(link, "zones", kind, project, psize, zone, zsize, name, nsize);
}

bool gce_parse_regional_link(const char *link, const char *kind, char *project, size_t psize, char *region,
			     size_t rsize, char *name, size_t nsize)
{
	return parse_link(link, "regions", kind, project, psize, region, rsize, name, nsize);
}

void gce_region_of(const char *zone, char *buf, size_t size)
{
	const char *dash = strrchr(zone, '-');
	size_t n = dash ? (size_t)(dash - zone) : strlen(zone);
	snprintf(buf, size, "%.*s", (int)n, zone);
}

void gce_zone_from_metadata(const char *value, char *buf, size_t size)
{
	const char *slash = strrchr(value, '/');
	const char *z = slash ? slash + 1 : value;
	size_t n = strcspn(z, " \t\r\n");
	snprintf(buf, size, "%.*s", (int)n, z);
}

void gce_error_reason(const char *body, char *buf, size_t size)
{
	buf[0] = '\0';
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *reason = NULL;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(e, "errors"), i, d)
	{
		reason = json_string_value(json_object_get(d, "reason"));
		if (reason)
			break;
	}
	if (!reason)
		reason = json_string_value(json_object_get(e, "status"));
	if (reason)
		snprintf(buf, size, "%s", reason);
	json_decref(j);
}

bool gce_rate_limited(long status, const char *body)
{
	if (status == 429)
		return true;
	if (status != 403)
		return false;
	char reason[64];
	gce_error_reason(body, reason, sizeof(reason));
	return !strcmp(reason, "rateLimitExceeded") || !strcmp(reason, "userRateLimitExceeded") ||
	       !strcmp(reason, "RESOURCE_OPERATION_RATE_EXCEEDED") || !strcmp(reason, "RESOURCE_EXHAUSTED");
}

bool gce_in_use_by(const char *message, char *project, size_t psize, char *zone, size_t zsize, char *name,
		   size_t nsize)
{
	const char *p = message ? strstr(message, "being used by '") : NULL;
	if (!p)
		return false;
	p += strlen("being used by '");
	const char *end = strchr(p, '\'');
	if (!end || end - p >= 1024)
		return false;
	char link[1024];
	snprintf(link, sizeof(link), "%.*s", (int)(end - p), p);
	return gce_parse_link(link, "instances", project, psize, zone, zsize, name, nsize);
}

const char *gce_op_status(json_t *op)
{
	const char *s = json_string_value(json_object_get(op, "status"));
	return s ? s : "";
}

bool gce_op_error(json_t *op, char *code, size_t csize, char *message, size_t msize)
{
	json_t *errors = json_object_get(json_object_get(op, "error"), "errors");
	json_t *first = json_array_get(errors, 0);
	if (!first) {
		code[0] = message[0] = '\0';
		return false;
	}
	const char *c = json_string_value(json_object_get(first, "code"));
	const char *m = json_string_value(json_object_get(first, "message"));
	if (!c)
		c = json_string_value(json_object_get(op, "httpErrorMessage"));
	snprintf(code, csize, "%s", c ? c : "UNKNOWN");
	snprintf(message, msize, "%s", m ? m : "");
	/* One line for a kubelet event. */
	for (char *p = message; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return true;
}

long long gce_size_gb(json_t *disk)
{
	json_t *s = json_object_get(disk, "sizeGb");
	if (json_is_integer(s))
		return json_integer_value(s) >= 0 ? (long long)json_integer_value(s) : -1;
	const char *t = json_string_value(s);
	if (!t || !*t)
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(t, &end, 10);
	return errno || *end || v < 0 ? -1 : v;
}

char *gce_base64url(const unsigned char *data, size_t len)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(len / 3 * 4 + 5), *o = out;
	if (!out)
		return NULL;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
		*o++ = abc[v >> 18 & 63];
		*o++ = abc[v >> 12 & 63];
		*o++ = abc[v >> 6 & 63];
		*o++ = abc[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)data[i] << 16;
		*o++ = abc[v >> 18 & 63];
		*o++ = abc[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
		*o++ = abc[v >> 18 & 63];
		*o++ = abc[v >> 12 & 63];
		*o++ = abc[v >> 6 & 63];
	}
	*o = '\0';
	return out;
}

static char *b64_json(json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!text)
		return NULL;
	char *out = gce_base64url((const unsigned char *)text, strlen(text));
	free(text);
	return out;
}

char *gce_jwt_signing_input(const char *key_id, const char *email, const char *scope, const char *audience,
			    int64_t iat, long lifetime)
{
	json_t *header = key_id && *key_id ? json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "kid", key_id)
					   : json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", email, "scope", scope, "aud", audience, "iat",
				   (json_int_t)iat, "exp", (json_int_t)(iat + lifetime));
	char *h = b64_json(header), *c = b64_json(claims), *out = NULL;
	if (h && c && asprintf(&out, "%s.%s", h, c) < 0)
		out = NULL;
	free(h);
	free(c);
	return out;
}

void gce_uuid_format(const unsigned char rnd[16], char buf[37])
{
	unsigned char b[16];
	memcpy(b, rnd, 16);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}
