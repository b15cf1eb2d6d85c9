/* Replies: byte-exact JSON as kubelet's decoder expects it. */
#include <stdlib.h>
#include "reply.h"
#include "tap.h"

static void expect(const struct fv_reply *r, const char *want, const char *what)
{
	char *got = fv_reply_format(r);
	CHECK(!strcmp(got, want), "%s", what);
	if (strcmp(got, want))
		printf("#   got:  %s#   want: %s", got, want);
	free(got);
}

int main(void)
{
	expect(&(struct fv_reply){.status = FV_SUCCESS}, "{\"status\":\"Success\"}\n", "plain success");
	expect(&(struct fv_reply){.status = FV_NOT_SUPPORTED}, "{\"status\":\"Not supported\"}\n",
	       "Not supported is spelled exactly");
	expect(&(struct fv_reply){.status = FV_FAILURE, .message = "bad \"x\" \\ y\n\x01"},
	       "{\"status\":\"Failure\",\"message\":\"bad \\\"x\\\" \\\\ y\\n\\u0001\"}\n", "message is JSON-escaped");
	expect(&(struct fv_reply){.status = FV_SUCCESS, .device = "/dev/loop3"},
	       "{\"status\":\"Success\",\"device\":\"/dev/loop3\"}\n", "device");
	expect(&(struct fv_reply){.status = FV_SUCCESS, .has_attached = true, .attached = false},
	       "{\"status\":\"Success\",\"attached\":false}\n", "attached is a JSON boolean, false included");
	struct fv_caps caps = {.attach = false, .supports_metrics = true};
	expect(&(struct fv_reply){.status = FV_SUCCESS, .caps = &caps},
	       "{\"status\":\"Success\",\"capabilities\":{\"attach\":false,\"selinuxRelabel\":false,"
	       "\"supportsMetrics\":true,\"fsGroup\":false,\"requiresFSResize\":false}}\n",
	       "every capability stated explicitly");
	expect(&(struct fv_reply){.status = FV_SUCCESS, .has_new_size = true, .new_size = 10737418240ULL},
	       "{\"status\":\"Success\",\"volumeNewSize\":10737418240}\n", "volumeNewSize is a 64-bit integer");
	CHECK_STR(fv_status_name(FV_FAILURE), "Failure", "Failure status name");
	return tap_done("test_reply");
}
