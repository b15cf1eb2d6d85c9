#include "err.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int set(struct fv_err *e, int errnum, int with_strerror, const char *fmt, va_list ap)
{
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	if (with_strerror && errnum && n >= 0 && (size_t)n < sizeof(e->msg))
		snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, ": %s", strerror(errnum));
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
	snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, old);
	if (!e->code)
		e->code = -EIO;
	return e->code;
}
