/* A minimal TAP producer for the C unit tests: ok/not ok lines, then a
 * closing "N passed, N failed" line that CI's log reader understands. */
#pragma once
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		tap_n++;                                                                   \
		if (cond) {                                                                \
			printf("ok %d - ", tap_n);                                         \
		} else {                                                                   \
			tap_failed++;                                                      \
			printf("not ok %d - %s:%d: ", tap_n, __FILE__, __LINE__);           \
		}                                                                          \
		printf(__VA_ARGS__);                                                       \
		printf("\n");                                                              \
	} while (0)

#define CHECK_STR(got, want, what)                                                         \
	do {                                                                               \
		const char *g_ = (got), *w_ = (want);                                      \
		CHECK(g_ && w_ && !strcmp(g_, w_), "%s: got '%s', want '%s'", what, g_ ? g_ : "(null)", w_); \
	} while (0)

static inline int tap_done(const char *name)
{
	printf("1..%d\n# %s: %d passed, %d failed\n", tap_n, name, tap_n - tap_failed, tap_failed);
	return tap_failed ? 1 : 0;
}
