/* Replies: byte-exact JSON as kubelet's decoder expects it. */
#include <errno.h>
#include <stdlib.h>
#include "err.h"
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

static bool valid_utf8(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = fv_utf8_seq_len(p);
		if (!n)
			return false;
		p += n;
	}
	return true;
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

	/* UTF-8: a message cut inside a character, or bytes from outside that
	 * are not UTF-8, still reach kubelet (jansson drops such a string). */
	expect(&(struct fv_reply){.status = FV_FAILURE, .message = "path '\xE2\x82' x\xFF\xC0\xAF\xED\xA0\x80"},
	       "{\"status\":\"Failure\",\"message\":\"path '\xEF\xBF\xBD\xEF\xBF\xBD' x\xEF\xBF\xBD\xEF\xBF\xBD"
	       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"}\n",
	       "a cut character, a stray byte, an overlong and a surrogate become U+FFFD");
	expect(&(struct fv_reply){.status = FV_SUCCESS, .device = "/dev/\xFF"},
	       "{\"status\":\"Success\",\"device\":\"/dev/\xEF\xBF\xBD\"}\n", "the device too");
	expect(&(struct fv_reply){.status = FV_FAILURE, .message = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"},
	       "{\"status\":\"Failure\",\"message\":\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"}\n",
	       "valid UTF-8 of 2, 3 and 4 bytes is kept");
	char big[3000];
	for (int width = 2; width <= 4; width++) {
		static const char *const chars[] = {"", "", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"};
		for (int shift = 0; shift < width; shift++) {
			size_t n = 0;
			for (; n < (size_t)shift; n++)
				big[n] = 'x';
			while (n + (size_t)width < sizeof(big)) {
				memcpy(big + n, chars[width], (size_t)width);
				n += (size_t)width;
			}
			big[n] = '\0';
			struct fv_err e = {0};
			fv_err_msg(&e, EINVAL, "%s", big);
			size_t len = strlen(e.msg);
			CHECK(len > 1000 && valid_utf8(e.msg), "an error message cut at its end ends on a character (%d-byte, shift %d): %zu bytes",
			      width, shift, len);
			fv_err_prefix(&e, "%s", big);
			len = strlen(e.msg);
			CHECK(len > 1000 && valid_utf8(e.msg), "a prefixed one too (%d-byte, shift %d): %zu bytes", width, shift, len);
		}
	}
	return tap_done("test_reply");
}
