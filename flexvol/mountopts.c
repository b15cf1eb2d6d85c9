#include "mountopts.h"
#include <arpa/inet.h>
#include <errno.h>
#include <libmount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 64

static bool has_control_chars(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

static bool is_number(const char *v, int base, unsigned long lo, unsigned long hi)
{
	const char *digits = base == 8 ? "01234567" : "0123456789";
	if (!*v || strspn(v, digits) != strlen(v) || strlen(v) > 10)
		return false;
	unsigned long n = strtoul(v, NULL, base);
	return n >= lo && n <= hi;
}

static bool in_list(const char *v, size_t len, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == len && !strncmp(v, *list, len))
			return true;
	return false;
}

static bool valid_value(const struct fv_mountopt *o, const char *v)
{
	switch (o->kind) {
	case FV_MOPT_FLAG:
		return false;
	case FV_MOPT_UINT:
		return is_number(v, 10, o->min, o->max);
	case FV_MOPT_OCTAL:
		return is_number(v, 8, o->min, o->max);
	case FV_MOPT_ENUM:
		return in_list(v, strlen(v), o->values);
	case FV_MOPT_ENUMS:
		if (!*v)
			return false;
		for (const char *p = v;;) {
			size_t n = strcspn(p, ":");
			if (!n || !in_list(p, n, o->values))
				return false;
			if (!p[n])
				return true;
			p += n + 1;
		}
	case FV_MOPT_ADDR: {
		unsigned char a[sizeof(struct in6_addr)];
		return inet_pton(AF_INET, v, a) == 1 || inet_pton(AF_INET6, v, a) == 1;
	}
	}
	return false;
}

static const char *expected(const struct fv_mountopt *o, char *buf, size_t size)
{
	size_t n = 0;
	switch (o->kind) {
	case FV_MOPT_UINT:
		snprintf(buf, size, "a number from %lu to %lu", o->min, o->max);
		break;
	case FV_MOPT_OCTAL:
		snprintf(buf, size, "an octal number from 0%lo to 0%lo", o->min, o->max);
		break;
	case FV_MOPT_ENUM:
	case FV_MOPT_ENUMS:
		for (const char *const *v = o->values; *v && n < size; v++) {
			int w = snprintf(buf + n, size - n, "%s%s", v == o->values ? "one of " : ", ", *v);
			if (w < 0)
				break;
			n += (size_t)w;
		}
		if (o->kind == FV_MOPT_ENUMS && n < size)
			snprintf(buf + n, size - n, " (or a colon-separated list)");
		break;
	case FV_MOPT_ADDR:
		snprintf(buf, size, "an IPv4 or IPv6 address");
		break;
	case FV_MOPT_FLAG:
		snprintf(buf, size, "no value");
		break;
	}
	return buf;
}

static void optstr_free(char **p)
{
	free(*p);
}

int fv_mountopts_check(const struct fv_mountopt_table *t, const char *key, const char *user, char **out,
		       struct fv_err *err)
{
	__attribute__((cleanup(optstr_free))) char *opts = NULL;
	const char *groups[MAX_ENTRIES];
	size_t ngroups = 0;
	*out = NULL;
	if (user && strlen(user) > FV_MOUNTOPTS_MAX)
		return fv_err_msg(err, EINVAL, "option '%s' is longer than %d characters", key, FV_MOUNTOPTS_MAX);
	if (user && has_control_chars(user))
		return fv_err_msg(err, EINVAL, "option '%s' must not contain control characters", key);
	for (const char *p = user && *user ? user : NULL; p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[FV_MOUNTOPTS_MAX + 1];
		memcpy(item, p, len);
		item[len] = '\0';
		p = comma ? comma + 1 : NULL;
		if (!len)
			return fv_err_msg(err, EINVAL, "option '%s' has an empty entry (two commas, or a comma at an end)",
					  key);
		char *value = strchr(item, '=');
		if (value)
			*value++ = '\0';
		for (size_t i = 0; i < t->nrefused; i++)
			if (!strcmp(item, t->refused[i].name))
				return fv_err_msg(err, EINVAL, "mount option '%s' is not allowed: %s", item, t->refused[i].why);
		const struct fv_mountopt *o = NULL;
		for (size_t i = 0; i < t->nopts && !o; i++)
			if (!strcmp(item, t->opts[i].name))
				o = &t->opts[i];
		if (!o)
			return fv_err_msg(err, EINVAL, "'%.64s' is not %s", item, t->what);
		char want[200];
		if (o->kind == FV_MOPT_FLAG && value)
			return fv_err_msg(err, EINVAL, "mount option '%s' takes no value", item);
		if (o->kind != FV_MOPT_FLAG && (!value || !valid_value(o, value)))
			return fv_err_msg(err, EINVAL, "mount option '%s' needs %s%s%.64s%s", item,
					  expected(o, want, sizeof(want)), value ? ", not '" : "", value ? value : "",
					  value ? "'" : "");
		for (size_t i = 0; i < ngroups; i++)
			if (!strcmp(groups[i], o->group))
				return fv_err_msg(err, EINVAL, "mount option '%s' conflicts with or repeats an earlier one", item);
		if (ngroups == MAX_ENTRIES)
			return fv_err_msg(err, EINVAL, "option '%s' has too many entries", key);
		groups[ngroups++] = o->group;
		if (o->implied)
			continue;
		if (mnt_optstr_append_option(&opts, item, value))
			return fv_err_set(err, ENOMEM, "building mount options");
	}
	*out = opts;
	opts = NULL;
	return 0;
}
