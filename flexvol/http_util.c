/* The parts of the HTTP client that need no libcurl: reading a response
 * (headers, JSON, the cloud's error text) and building URLs. Kept apart from
 * http.c so that they are unit-tested without linking libcurl. */
#include "http.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *fv_http_header(const struct fv_http_response *r, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < r->n_headers; i++) {
		const char *line = r->headers[i];
		if (!strncasecmp(line, name, n) && line[n] == ':') {
			const char *v = line + n + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
	}
	return NULL;
}

void fv_http_response_free(struct fv_http_response *r)
{
	if (!r)
		return;
	free(r->body);
	for (size_t i = 0; i < r->n_headers; i++)
		free(r->headers[i]);
	free(r->headers);
	*r = (struct fv_http_response){0};
}

json_t *fv_http_json(const struct fv_http_response *r, struct fv_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		fv_err_msg(err, EPROTO, "the reply (HTTP %ld) is not JSON: %s", r->status, je.text);
	return j;
}

static void copy_clean(char *buf, size_t size, const char *s)
{
	size_t n = 0;
	for (; s && *s && n + 1 < size; s++)
		buf[n++] = (unsigned char)*s < 0x20 ? ' ' : *s;
	buf[n] = '\0';
}

void fv_http_error_text(const struct fv_http_response *r, char *buf, size_t size)
{
	buf[0] = '\0';
	if (!r->body || !r->body_len)
		return;
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
	if (j && json_is_object(j)) {
		const char *msg = NULL;
		json_t *e = json_object_get(j, "error");
		if (json_is_string(e))
			msg = json_string_value(e);
		else if (json_is_object(e))
			msg = json_string_value(json_object_get(e, "message"));
		if (!msg)
			msg = json_string_value(json_object_get(j, "message"));
		if (!msg) {
			/* OpenStack faults: one root key naming the fault. */
			const char *key;
			json_t *v;
			json_object_foreach(j, key, v)
			{
				if (json_is_object(v) && json_is_string(json_object_get(v, "message"))) {
					msg = json_string_value(json_object_get(v, "message"));
					break;
				}
			}
		}
		if (msg)
			copy_clean(buf, size, msg);
		json_decref(j);
		return;
	}
	json_decref(j);
	/* Not JSON (a proxy's HTML page): its start, on one line. */
	char head[201];
	size_t n = r->body_len < sizeof(head) - 1 ? r->body_len : sizeof(head) - 1;
	memcpy(head, r->body, n);
	head[n] = '\0';
	copy_clean(buf, size, head);
}

int fv_http_status_error(const struct fv_http_response *r, const char *what, struct fv_err *err)
{
	char text[512];
	fv_http_error_text(r, text, sizeof(text));
	int e = EIO;
	if (r->status == 404)
		e = ENOENT;
	else if (r->status == 401 || r->status == 403)
		e = EACCES;
	else if (r->status == 409 || r->status == 429 || r->status >= 500)
		e = EAGAIN;
	char attempts[64] = "";
	if (r->attempts > 1)
		snprintf(attempts, sizeof(attempts), " after %d attempts", r->attempts);
	const char *ra = fv_http_header(r, "Retry-After");
	char rabuf[64] = "";
	if (ra && (r->status == 429 || r->status == 503 || r->status == 413))
		snprintf(rabuf, sizeof(rabuf), "; Retry-After %.16s", ra);
	return fv_err_msg(err, e, "%s: HTTP %ld%s%s%s%s%s", what, r->status, text[0] ? " (" : "", text,
			  text[0] ? ")" : "", rabuf, attempts);
}

char *fv_http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *o = out;
	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '.' || *p == '_' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}
