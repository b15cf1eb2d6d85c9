#include "jwt.h"
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gceutil.h"

/* Google refuses assertions that live longer than an hour. */
#define ASSERTION_LIFETIME_S 3600

/* An encrypted key would make OpenSSL prompt on the terminal: refuse instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *ud)
{
	(void)buf, (void)size, (void)rwflag, (void)ud;
	return -1;
}

/* OpenSSL's reason for the last failure (library and reason names only: the
 * queue never holds key material). */
static const char *ssl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	if (!e)
		return "unknown error";
	ERR_error_string_n(e, buf, size);
	return buf;
}

int gce_jwt_assertion(const char *private_key_pem, const char *key_id, const char *email, const char *scope,
		      const char *audience, int64_t iat, char **out, struct fv_err *err)
{
	*out = NULL;
	char why[256];
	int rc = 0;
	char *input = gce_jwt_signing_input(key_id, email, scope, audience, iat, ASSERTION_LIFETIME_S);
	unsigned char *sig = NULL;
	size_t siglen = 0;
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	ERR_clear_error();
	BIO *bio = BIO_new_mem_buf(private_key_pem, -1);
	if (!input || !bio) {
		rc = fv_err_set(err, ENOMEM, "signing the service-account assertion");
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (!pkey) {
		rc = fv_err_msg(err, EINVAL, "the service-account key's private_key is not a readable PEM key (%s)",
				ssl_reason(why, sizeof(why)));
		goto out;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		rc = fv_err_msg(err, EINVAL, "the service-account key's private_key is not an RSA key (RS256 needs one)");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1 ||
	    !(sig = malloc(siglen)) ||
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
		rc = fv_err_msg(err, EIO, "cannot sign the service-account assertion (%s)", ssl_reason(why, sizeof(why)));
		goto out;
	}
	char *s64 = gce_base64url(sig, siglen);
	if (!s64 || asprintf(out, "%s.%s", input, s64) < 0) {
		*out = NULL;
		rc = fv_err_set(err, ENOMEM, "signing the service-account assertion");
	}
	free(s64);
out:
	free(sig);
	free(input);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}
