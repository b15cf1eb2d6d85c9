/* Scope-bound cleanup, as in systemd/crun: a variable declared with one of
 * these is released when it goes out of scope, so error paths cannot leak. */
#pragma once
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>
#include <errno.h>

static inline void fv_freep(void *p)
{
	free(*(void **)p);
}
static inline void fv_closep(const int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void fv_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_free_ __attribute__((cleanup(fv_freep)))
#define _cleanup_close_ __attribute__((cleanup(fv_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(fv_fclosep)))

/* Hand ownership out of a cleanup variable. */
static inline void *fv_steal_ptr_impl(void *pp)
{
	void **p = pp, *v = *p;
	*p = NULL;
	return v;
}
#define fv_steal_ptr(pp) ((__typeof__(*(pp)))fv_steal_ptr_impl(pp))
static inline int fv_steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}
