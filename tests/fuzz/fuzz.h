/* What the libFuzzer harnesses share: the input as a NUL-terminated string,
 * and splitting it into fields at NUL bytes (several strings from one input). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* The next NUL-terminated field of s (of total length end - *at), or "" once
 * past the end; fields are separated by '\0' in the input. */
static inline const char *fuzz_field(const char *s, size_t len, size_t *at)
{
	if (*at > len)
		return "";
	const char *f = s + *at;
	*at += strlen(f) + 1;
	return f;
}
