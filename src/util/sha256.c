/*
 * sha256.c - SHA-256 through OpenSSL's EVP interface (the low-level SHA256_*
 * calls are deprecated in OpenSSL 3).
 */
#include "sha256.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>

int sha256_init(struct sha256 *s)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	s->ctx = ctx;
	return 0;
}

void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	EVP_DigestUpdate(s->ctx, data, len);
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void sha256_final(struct sha256 *s, char hex[SHA256_HEX_LEN + 1])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(s->ctx, md, &n);
	hex_encode(md, n, hex);
	EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL);
}

void sha256_release(struct sha256 *s)
{
	if (s && s->ctx) {
		EVP_MD_CTX_free(s->ctx);
		s->ctx = NULL;
	}
}

int sha256_fd(int fd, uint64_t size, char hex[SHA256_HEX_LEN + 1])
{
	enum { CHUNK = 1 << 20 };
	struct sha256 s = { 0 };
	uint64_t off = 0;
	char *buf;
	int rc;

	buf = malloc(CHUNK);
	if (!buf)
		return -ENOMEM;
	rc = sha256_init(&s);
	while (rc == 0 && off < size) {
		size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else if (n == 0)
			rc = -EIO;	/* file shorter than it should be */
		else {
			sha256_update(&s, buf, (size_t)n);
			off += (uint64_t)n;
		}
	}
	if (rc == 0)
		sha256_final(&s, hex);
	sha256_release(&s);
	free(buf);
	return rc;
}
