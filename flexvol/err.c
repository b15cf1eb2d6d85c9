#include "err.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

size_t fv_utf8_seq_len(const unsigned char *p)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* beyond U+10FFFF */
	} else {
		return 0;
	}
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

/* A message cut at the end of the buffer must not end inside a character. */
static void trim_partial(char *msg, size_t size)
{
	size_t len = strlen(msg);
	if (len + 1 < size)
		return;
	size_t start = len;
	while (start > 0 && len - start < 4 && ((unsigned char)msg[start - 1] & 0xC0) == 0x80)
		start--;
	if (start > 0 && (unsigned char)msg[start - 1] >= 0xC0) {
		start--;
		if (fv_utf8_seq_len((const unsigned char *)msg + start) != len - start)
			msg[start] = '\0';
	}
}

static int set(struct fv_err *e, int errnum, int with_strerror, const char *fmt, va_list ap)
{
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	if (with_strerror && errnum && n >= 0 && (size_t)n < sizeof(e->msg))
		snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, ": %s", strerror(errnum));
	trim_partial(e->msg, sizeof(e->msg));
	e->code = -(errnum ? errnum : EIO);
	return e->code;
}

int fv_err_set(struct fv_err *e, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set(e, errnum, 1, fmt, ap);
	va_end(ap);
	return r;
}

int fv_err_msg(struct fv_err *e, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set(e, errnum, 0, fmt, ap);
	va_end(ap);
	return r;
}

int fv_err_prefix(struct fv_err *e, const char *fmt, ...)
{
	char prefix[256], old[sizeof(e->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	trim_partial(prefix, sizeof(prefix));
	snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, old);
	trim_partial(e->msg, sizeof(e->msg));
	if (!e->code)
		e->code = -EIO;
	return e->code;
}
