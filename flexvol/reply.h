/* The one JSON object kubelet reads back. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "flexvol.h"

enum fv_status { FV_SUCCESS, FV_FAILURE, FV_NOT_SUPPORTED };

struct fv_reply {
	enum fv_status status;
	const char *message;           /* NULL: none */
	const char *device;            /* NULL: omitted */
	bool has_attached;
	bool attached;
	const struct fv_caps *caps;    /* init only */
	bool has_new_size;
	uint64_t new_size;
};

/* s with every byte that does not start a valid UTF-8 sequence replaced by
 * U+FFFD; caller frees. Every string of the reply goes through it. */
char *fv_utf8_clean(const char *s);
const char *fv_status_name(enum fv_status s);
/* Compact JSON with a trailing newline; caller frees. Never NULL (OOM exits). */
char *fv_reply_format(const struct fv_reply *r);
/* Writes the whole reply to fd; returns 0 or -errno. */
int fv_reply_write(int fd, const struct fv_reply *r);
/* Out of memory: a fixed Failure reply, then exit. Kubelet still gets JSON. */
_Noreturn void fv_oom(void);
