#include "reply.h"
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *fv_status_name(enum fv_status s)
{
	switch (s) {
	case FV_SUCCESS:
		return "Success";
	case FV_NOT_SUPPORTED:
		return "Not supported";
	case FV_FAILURE:
		break;
	}
	return "Failure";
}

char *fv_utf8_clean(const char *s)
{
	static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
	size_t len = strlen(s);
	char *out = malloc(len * 3 + 1), *o = out;
	if (!out)
		fv_oom();
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = fv_utf8_seq_len(p);
		if (n) {
			memcpy(o, p, n);
			o += n;
			p += n;
		} else {
			memcpy(o, replacement, 3);
			o += 3;
			p++;
		}
	}
	*o = '\0';
	return out;
}

/* jansson refuses a string that is not UTF-8 (json_string() is NULL and the
 * key silently missing): paths and child output may be anything. */
static json_t *text_json(const char *s)
{
	char *clean = fv_utf8_clean(s);
	json_t *j = json_string(clean);
	free(clean);
	if (!j)
		fv_oom();
	return j;
}

static json_t *caps_json(const struct fv_caps *c)
{
	/* Every capability stated: kubelet defaults omitted ones to true. */
	return json_pack("{s:b, s:b, s:b, s:b, s:b}", "attach", c->attach, "selinuxRelabel", c->selinux_relabel,
			 "supportsMetrics", c->supports_metrics, "fsGroup", c->fs_group, "requiresFSResize",
			 c->requires_fs_resize);
}

char *fv_reply_format(const struct fv_reply *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "status", json_string(fv_status_name(r->status)));
	if (r->message)
		json_object_set_new(o, "message", text_json(r->message));
	if (r->device)
		json_object_set_new(o, "device", text_json(r->device));
	if (r->has_attached)
		json_object_set_new(o, "attached", json_boolean(r->attached));
	if (r->caps)
		json_object_set_new(o, "capabilities", caps_json(r->caps));
	if (r->has_new_size)
		json_object_set_new(o, "volumeNewSize", json_integer((json_int_t)r->new_size));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	size_t n = strlen(s);
	char *line = realloc(s, n + 2);
	if (!line)
		fv_oom();
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

void fv_oom(void)
{
	static const char msg[] = "{\"status\":\"Failure\",\"message\":\"out of memory\"}\n";
	ssize_t n = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(1);
}

int fv_reply_write(int fd, const struct fv_reply *r)
{
	char *s = fv_reply_format(r);
	size_t left = strlen(s);
	const char *p = s;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = errno;
			free(s);
			return -e;
		}
		p += n;
		left -= (size_t)n;
	}
	free(s);
	return 0;
}
