#include "clouds.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include "cleanup.h"

#define MAX_FILE (1u << 20)

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
		    !memcmp(k->data.scalar.value, key, k->data.scalar.length))
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* Sets *field from a scalar under map/key unless cloud.conf set it. */
static int fill(yaml_document_t *d, yaml_node_t *map, const char *key, char **field)
{
	yaml_node_t *v = map_get(d, map, key);
	if (*field || !v || v->type != YAML_SCALAR_NODE || !v->data.scalar.length)
		return 0;
	if (memchr(v->data.scalar.value, '\0', v->data.scalar.length))
		return 0;
	*field = strndup((const char *)v->data.scalar.value, v->data.scalar.length);
	return *field ? 0 : -ENOMEM;
}

static bool scalar_is(yaml_node_t *v, const char *s)
{
	return v && v->type == YAML_SCALAR_NODE && v->data.scalar.length == strlen(s) &&
	       !strncasecmp((const char *)v->data.scalar.value, s, v->data.scalar.length);
}

static int fill_cloud(struct os_conf *c, yaml_document_t *d, yaml_node_t *cl)
{
	yaml_node_t *a = map_get(d, cl, "auth");
	/* auth: the keystoneauth names; project_* and tenant_* are synonyms. */
	const struct {
		yaml_node_t *map;
		const char *key;
		char **field;
	} keys[] = {
		{a, "auth_url", &c->auth_url},
		{a, "username", &c->username},
		{a, "user_id", &c->user_id},
		{a, "password", &c->password},
		{a, "project_id", &c->project_id},
		{a, "tenant_id", &c->project_id},
		{a, "project_name", &c->project_name},
		{a, "tenant_name", &c->project_name},
		{a, "user_domain_id", &c->user_domain_id},
		{a, "user_domain_name", &c->user_domain_name},
		{a, "project_domain_id", &c->project_domain_id},
		{a, "project_domain_name", &c->project_domain_name},
		/* domain_*: the default of both, after the specific ones. */
		{a, "domain_id", &c->user_domain_id},
		{a, "domain_id", &c->project_domain_id},
		{a, "domain_name", &c->user_domain_name},
		{a, "domain_name", &c->project_domain_name},
		{a, "application_credential_id", &c->app_cred_id},
		{a, "application_credential_name", &c->app_cred_name},
		{a, "application_credential_secret", &c->app_cred_secret},
		{a, "trust_id", &c->trust_id},
		{cl, "region_name", &c->region},
		{cl, "interface", &c->endpoint_type},
		{cl, "cacert", &c->ca_file},
		{cl, "cert", &c->cert_file},
		{cl, "key", &c->key_file},
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (fill(d, keys[i].map, keys[i].key, keys[i].field) < 0)
			return -ENOMEM;
	if (scalar_is(map_get(d, cl, "verify"), "false"))
		c->tls_insecure = true;
	return 0;
}

int os_clouds_fill_text(struct os_conf *conf, const char *text, size_t len, const char *path, const char *cloud,
			struct fv_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		return fv_err_set(err, ENOMEM, "clouds.yaml");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		fv_err_msg(err, EINVAL, "'%s' is not valid YAML: %s at line %zu", path,
			   parser.problem ? parser.problem : "parse error", parser.problem_mark.line + 1);
		yaml_parser_delete(&parser);
		return err->code;
	}
	int rc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	yaml_node_t *cl = map_get(&doc, map_get(&doc, root, "clouds"), cloud);
	if (!cl || cl->type != YAML_MAPPING_NODE)
		rc = fv_err_msg(err, ENOENT, "'%s' has no cloud '%.64s' under 'clouds' ([Global] cloud)", path, cloud);
	else if (fill_cloud(conf, &doc, cl) < 0)
		rc = fv_err_set(err, ENOMEM, "clouds.yaml");
	else
		rc = 0;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

static const char *find_file(char *buf, size_t size)
{
	const char *env = getenv("OS_CLIENT_CONFIG_FILE");
	if (env && *env)
		return env;
	const char *home = getenv("HOME");
	if (home && *home) {
		snprintf(buf, size, "%s/.config/openstack/clouds.yaml", home);
		if (access(buf, F_OK) == 0)
			return buf;
	}
	return "/etc/openstack/clouds.yaml";
}

int os_clouds_fill(struct os_conf *conf, const char *clouds_file, const char *cloud, struct fv_err *err)
{
	char buf[PATH_MAX];
	const char *path = clouds_file ? clouds_file : find_file(buf, sizeof(buf));
	if (!cloud) {
		cloud = getenv("OS_CLOUD");
		if (!cloud || !*cloud)
			cloud = "openstack";
	}
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return fv_err_set(err, errno, "cannot read clouds.yaml '%s' ([Global] use-clouds = true)", path);
	if (!S_ISREG(st.st_mode) || st.st_size > MAX_FILE)
		return fv_err_msg(err, EINVAL, "clouds.yaml '%s' is not a regular file of at most 1 MiB", path);
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return fv_err_msg(err, EPERM,
				  "clouds.yaml '%s' has mode %04o and owner %u: it holds credentials and must be readable "
				  "by root only (chown root; chmod 0600)",
				  path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
	_cleanup_free_ char *text = malloc((size_t)st.st_size + 1);
	if (!text)
		return fv_err_set(err, ENOMEM, "clouds.yaml");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	int rc = os_clouds_fill_text(conf, text, got, path, cloud, err);
	explicit_bzero(text, got); /* it holds the password */
	return rc;
}
