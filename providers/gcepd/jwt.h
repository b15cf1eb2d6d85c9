/* The JWT-bearer assertion of Google's service-account flow, signed RS256
 * with OpenSSL (libcrypto). */
#pragma once
#include <stdint.h>
#include "err.h"

/* Signs {"iss": email, "scope", "aud", "iat", "exp": iat + 3600} with the
 * PEM private key of a service-account JSON key. *out is the compact JWS
 * (header.claims.signature); it is a credential: the caller wipes it
 * (explicit_bzero) and frees it. Errors never quote the key. */
int gce_jwt_assertion(const char *private_key_pem, const char *key_id, const char *email, const char *scope,
		      const char *audience, int64_t iat, char **out, struct fv_err *err);
