/* NFS volume options (untrusted, from pod specs): server, share, subDir
 * template and mount options, as NUL-separated fields of one input, through
 * every check flexvol/nfsopts.c makes before mount.nfs sees them. */
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include "fuzz.h"
#include "nfsopts.h"
#include "opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	size_t at = 0;
	const char *server = fuzz_field(s, size, &at);
	const char *share = fuzz_field(s, size, &at);
	const char *subdir = fuzz_field(s, size, &at);
	const char *user = fuzz_field(s, size, &at);
	const char *mode = fuzz_field(s, size, &at);
	const char *pod = fuzz_field(s, size, &at);
	struct fv_err err = {0};
	char sharebuf[4096], subbuf[4096], src[8192];
	(void)fv_nfs_check_server(server, &err);
	int share_ok = fv_nfs_check_share(share, sharebuf, sizeof(sharebuf), &err);
	/* The kubelet's keys, with an untrusted pod name, for ${...} expansion. */
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kubernetes.io/pvOrVolumeName", "pv-1",
			      "kubernetes.io/pod.namespace", "default", "kubernetes.io/pod.name", pod,
			      "kubernetes.io/pod.uid", "0a0a0a0a-aaaa-4aaa-8aaa-000000000001",
			      "kubernetes.io/serviceAccount.name", "default");
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	struct fv_opts *o = text ? fv_opts_parse(text, &err) : NULL;
	free(text);
	int sub_ok = o ? fv_nfs_expand_subdir(subdir, o, subbuf, sizeof(subbuf), &err) : -1;
	fv_opts_free(o);
	char *mopts = NULL;
	if (fv_nfs_mount_options(user, size & 1, &mopts, &err) == 0)
		free(mopts);
	if (share_ok == 0)
		(void)fv_nfs_source(server, sharebuf, sub_ok == 0 ? subbuf : NULL, src, sizeof(src), &err);
	unsigned int m;
	(void)fv_parse_dir_mode(mode, "dirMode", &m, &err);
	free(s);
	return 0;
}
