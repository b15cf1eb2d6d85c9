#include "config.h"
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct fv_config_entry {
	char *section, *key, *value;
};

struct fv_config {
	char *path;
	bool exists;
	struct fv_config_entry *entries;
	size_t n, cap;
};

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct fv_config *c = user;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		void *p = realloc(c->entries, cap * sizeof(*c->entries));
		if (!p)
			return 0;
		c->entries = p;
		c->cap = cap;
	}
	struct fv_config_entry *e = &c->entries[c->n];
	e->section = strdup(section);
	e->key = strdup(key);
	e->value = strdup(value);
	if (!e->section || !e->key || !e->value) {
		free(e->section);
		free(e->key);
		free(e->value);
		return 0;
	}
	c->n++;
	return 1;
}

void fv_config_free(struct fv_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->entries[i].section);
		free(c->entries[i].key);
		/* Values may be passwords. */
		explicit_bzero(c->entries[i].value, strlen(c->entries[i].value));
		free(c->entries[i].value);
	}
	free(c->entries);
	free(c->path);
	free(c);
}

struct fv_config *fv_config_load(const char *path, struct fv_err *err)
{
	struct fv_config *c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		fv_err_set(err, ENOMEM, "loading configuration");
		return NULL;
	}
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return c;
		fv_err_set(err, errno, "cannot read configuration '%s'", path);
		fv_config_free(c);
		return NULL;
	}
	c->exists = true;
	int line = ini_parse_file(f, on_entry, c);
	/* inih stops at a read error as at the end: a half-read file is no configuration. */
	int read_error = ferror(f) ? EIO : 0;
	fclose(f);
	if (read_error) {
		fv_err_set(err, read_error, "cannot read configuration '%s'", path);
		fv_config_free(c);
		return NULL;
	}
	if (line != 0) {
		if (line > 0)
			fv_err_msg(err, EINVAL, "configuration '%s': syntax error on line %d", path, line);
		else
			fv_err_set(err, ENOMEM, "configuration '%s'", path);
		fv_config_free(c);
		return NULL;
	}
	return c;
}

const char *fv_config_get(const struct fv_config *c, const char *section, const char *key, const char *def)
{
	/* The last occurrence wins, as an operator appending a line would expect. */
	for (size_t i = c ? c->n : 0; i-- > 0;) {
		if (!strcasecmp(c->entries[i].section, section) && !strcasecmp(c->entries[i].key, key))
			return c->entries[i].value;
	}
	return def;
}

int fv_config_get_long(const struct fv_config *c, const char *section, const char *key, long def, long min, long max,
		       long *out, struct fv_err *err)
{
	const char *v = fv_config_get(c, section, key, NULL);
	if (!v) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max)
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] %s must be a number from %ld to %ld, not '%s'",
				  c->path, section, key, min, max, v);
	*out = n;
	return 0;
}

int fv_config_get_bool(const struct fv_config *c, const char *section, const char *key, bool def, bool *out,
		       struct fv_err *err)
{
	const char *v = fv_config_get(c, section, key, NULL);
	if (!v) {
		*out = def;
		return 0;
	}
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0"))
		*out = false;
	else
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] %s must be true or false, not '%s'", c->path,
				  section, key, v);
	return 0;
}

int fv_config_get_path(const struct fv_config *c, const char *section, const char *key, const char *def, char *buf,
		       size_t size, struct fv_err *err)
{
	const char *v = fv_config_get(c, section, key, def);
	if (!v || v[0] != '/')
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] %s must be an absolute path, not '%s'", c->path,
				  section, key, v ? v : "");
	if ((size_t)snprintf(buf, size, "%s", v) >= size)
		return fv_err_msg(err, EINVAL, "configuration '%s': [%s] %s is longer than %zu bytes", c->path, section,
				  key, size - 1);
	return 0;
}

const char *fv_config_path(const struct fv_config *c)
{
	return c->path;
}

bool fv_config_exists(const struct fv_config *c)
{
	return c->exists;
}
