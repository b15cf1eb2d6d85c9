/* The one error type: a code (-errno) and a message meant for the kubelet
 * event, filled once at the point of failure and prefixed by callers. */
#pragma once
#include <stdarg.h>
#include <stddef.h>

struct fv_err {
	int code;       /* -errno; 0 while unset */
	char msg[1024];
};

/* Messages are cut at the buffer's end on a UTF-8 character boundary; the
 * reply (reply.c) replaces whatever else is not UTF-8. */

/* Sets the error and returns -errnum (or -EIO when errnum is 0). When errnum
 * is not 0 its strerror text is appended. */
int fv_err_set(struct fv_err *e, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Same, without appending strerror. */
int fv_err_msg(struct fv_err *e, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Puts "<context>: " in front of an existing message; returns e->code. */
int fv_err_prefix(struct fv_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The length of the valid UTF-8 sequence (RFC 3629: no overlongs, no
 * surrogates) starting at p, or 0 when none does. p is NUL-terminated. */
size_t fv_utf8_seq_len(const unsigned char *p);
