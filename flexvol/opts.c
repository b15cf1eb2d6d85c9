#include "opts.h"
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "cleanup.h"

struct fv_secret {
	const char *name;       /* borrowed from the JSON key */
	const char *b64;        /* borrowed from the JSON value */
	unsigned char *raw;     /* decoded, NUL-terminated for convenience */
	size_t len;
};

struct fv_opts {
	json_t *root;
	struct fv_secret *secrets;
	size_t nsecrets;
};

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long fv_base64_decode(const char *in, unsigned char *out, size_t outsize)
{
	size_t n = strlen(in), o = 0;
	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int pad = 0;
		for (int j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)in[i + (size_t)j];
			/* '=' only in the last group, and only at its end. */
			if (c == '=' && i + 4 == n && j >= 2 && (j == 3 || in[i + 3] == '=')) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad || (v[j] = b64_value(c)) < 0)
				return -1;
		}
		unsigned long triple = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
				       ((unsigned long)v[2] << 6) | (unsigned long)v[3];
		int bytes = 3 - pad;
		if (o + (size_t)bytes > outsize)
			return -1;
		for (int j = 0; j < bytes; j++)
			out[o++] = (unsigned char)(triple >> (16 - 8 * j));
	}
	return (long)o;
}

static int decode_secret(struct fv_secret *s, struct fv_err *err)
{
	size_t cap = strlen(s->b64) / 4 * 3 + 1;
	s->raw = malloc(cap);
	if (!s->raw)
		return fv_err_set(err, ENOMEM, "decoding secret");
	long n = fv_base64_decode(s->b64, s->raw, cap - 1);
	if (n < 0)
		/* Name the key only: the value is the secret. */
		return fv_err_msg(err, EINVAL, "option '%s%s' is not valid base64", FV_KEY_SECRET_PREFIX, s->name);
	s->raw[n] = '\0';
	s->len = (size_t)n;
	return 0;
}

void fv_opts_free(struct fv_opts *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->nsecrets; i++) {
		if (o->secrets[i].raw) {
			explicit_bzero(o->secrets[i].raw, o->secrets[i].len);
			free(o->secrets[i].raw);
		}
	}
	free(o->secrets);
	json_decref(o->root);
	free(o);
}

struct fv_opts *fv_opts_parse(const char *text, struct fv_err *err)
{
	json_error_t jerr;
	struct fv_opts *o = calloc(1, sizeof(*o));
	if (!o) {
		fv_err_set(err, ENOMEM, "parsing options");
		return NULL;
	}
	o->root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!o->root) {
		/* jansson quotes the offending token, which could be part of a secret. */
		if (strstr(text, FV_KEY_SECRET_PREFIX))
			fv_err_msg(err, EINVAL, "options are not valid JSON (error at position %d)", jerr.position);
		else
			fv_err_msg(err, EINVAL, "options are not valid JSON: %s at position %d", jerr.text,
				   jerr.position);
		goto fail;
	}
	if (!json_is_object(o->root)) {
		fv_err_msg(err, EINVAL, "options must be a JSON object of strings");
		goto fail;
	}
	const char *key;
	json_t *value;
	size_t nsecrets = 0;
	json_object_foreach(o->root, key, value) {
		if (!json_is_string(value)) {
			fv_err_msg(err, EINVAL, "option '%s' must be a string", key);
			goto fail;
		}
		if (strlen(json_string_value(value)) != json_string_length(value)) {
			fv_err_msg(err, EINVAL, "option '%s' contains a NUL character", key);
			goto fail;
		}
		if (!strncmp(key, FV_KEY_SECRET_PREFIX, strlen(FV_KEY_SECRET_PREFIX)))
			nsecrets++;
	}
	if (nsecrets) {
		o->secrets = calloc(nsecrets, sizeof(*o->secrets));
		if (!o->secrets) {
			fv_err_set(err, ENOMEM, "parsing options");
			goto fail;
		}
	}
	json_object_foreach(o->root, key, value) {
		if (strncmp(key, FV_KEY_SECRET_PREFIX, strlen(FV_KEY_SECRET_PREFIX)))
			continue;
		struct fv_secret *s = &o->secrets[o->nsecrets++];
		s->name = key + strlen(FV_KEY_SECRET_PREFIX);
		s->b64 = json_string_value(value);
		if (decode_secret(s, err) < 0)
			goto fail;
	}
	return o;
fail:
	fv_opts_free(o);
	return NULL;
}

const char *fv_opts_get(const struct fv_opts *o, const char *key)
{
	return o ? json_string_value(json_object_get(o->root, key)) : NULL;
}

const char *fv_opts_fstype(const struct fv_opts *o)
{
	const char *v = fv_opts_get(o, FV_KEY_FSTYPE);
	return v && *v ? v : NULL;
}

bool fv_opts_readonly(const struct fv_opts *o)
{
	const char *v = fv_opts_get(o, FV_KEY_READWRITE);
	return v && !strcmp(v, "ro");
}

const char *fv_opts_volume_name(const struct fv_opts *o)
{
	return fv_opts_get(o, FV_KEY_VOLUME_NAME);
}

int fv_opts_fsgroup(const struct fv_opts *o, unsigned long *gid, struct fv_err *err)
{
	const char *key = FV_KEY_FSGROUP, *v = fv_opts_get(o, key);
	if (!v) {
		key = FV_KEY_FSGROUP_OLD;
		v = fv_opts_get(o, key);
	}
	if (!v)
		return 0;
	char *end;
	errno = 0;
	unsigned long g = strtoul(v, &end, 10);
	if (!*v || *end || errno || *v == '-' || g > 0xfffffffeUL)
		return fv_err_msg(err, EINVAL, "option '%s' must be a group ID, not '%s'", key, v);
	*gid = g;
	return 1;
}

static bool in_list(const char *const list[], const char *key)
{
	for (size_t i = 0; list && list[i]; i++)
		if (!strcmp(list[i], key))
			return true;
	return false;
}

static void append_list(char *buf, size_t size, size_t *n, const char *const list[])
{
	for (size_t j = 0; list && list[j] && *n < size; j++) {
		int w = snprintf(buf + *n, size - *n, "%s%s", *n ? ", " : "", list[j]);
		if (w < 0)
			return;
		*n += (size_t)w;
	}
}

int fv_opts_check_known(const struct fv_opts *o, const char *const known[], const char *const more[],
			struct fv_err *err)
{
	const char *key;
	json_t *value;
	if (!o)
		return 0;
	json_object_foreach(o->root, key, value) {
		if (!strncmp(key, "kubernetes.io/", strlen("kubernetes.io/")) || in_list(known, key) ||
		    in_list(more, key))
			continue;
		char list[512] = "";
		size_t n = 0;
		append_list(list, sizeof(list), &n, known);
		append_list(list, sizeof(list), &n, more);
		return fv_err_msg(err, EINVAL, "unknown option '%s' (this driver takes: %s)", key, list);
	}
	return 0;
}

const unsigned char *fv_opts_secret(const struct fv_opts *o, const char *name, size_t *len)
{
	for (size_t i = 0; o && i < o->nsecrets; i++) {
		if (!strcmp(o->secrets[i].name, name)) {
			if (len)
				*len = o->secrets[i].len;
			return o->secrets[i].raw;
		}
	}
	return NULL;
}

bool fv_opts_has_secrets(const struct fv_opts *o)
{
	return o && o->nsecrets > 0;
}

char *fv_opts_dump_masked(const struct fv_opts *o)
{
	json_t *copy = json_copy(o->root); /* shallow: the secret values are replaced, not changed */
	if (!copy)
		return NULL;
	for (void *it = json_object_iter(copy); it; it = json_object_iter_next(copy, it))
		if (!strncmp(json_object_iter_key(it), FV_KEY_SECRET_PREFIX, strlen(FV_KEY_SECRET_PREFIX)))
			json_object_iter_set_new(copy, it, json_string("***"));
	char *text = json_dumps(copy, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(copy);
	return text;
}

static void redact_one(char *s, const char *needle, size_t nlen)
{
	static const char mask[] = "***";
	char *p;
	if (nlen < 3) /* masking 1-2 byte values would shred ordinary text */
		return;
	while ((p = memmem(s, strlen(s), needle, nlen))) {
		memcpy(p, mask, 3);
		memmove(p + 3, p + nlen, strlen(p + nlen) + 1);
	}
}

void fv_opts_redact(const struct fv_opts *o, char *s)
{
	for (size_t i = 0; o && i < o->nsecrets; i++) {
		redact_one(s, o->secrets[i].b64, strlen(o->secrets[i].b64));
		redact_one(s, (const char *)o->secrets[i].raw, strlen((const char *)o->secrets[i].raw));
	}
}

int fv_parse_bytes(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {{"", 0}, {"Ki", 10}, {"Mi", 20}, {"Gi", 30}, {"Ti", 40}};
	char *end;
	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		if (units[i].shift && n > (UINT64_MAX >> units[i].shift))
			return -ERANGE;
		*out = (uint64_t)n << units[i].shift;
		return 0;
	}
	return -EINVAL;
}
