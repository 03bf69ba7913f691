/*
 * sha256.h - SHA-256 of file content, incremental, through OpenSSL.
 */
#ifndef MVFS_SHA256_H
#define MVFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

struct sha256 {
	void *ctx;		/* EVP_MD_CTX, opaque to callers */
};

/* Returns 0 or -ENOMEM.  A context is reusable after sha256_final. */
int sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* Writes 64 lowercase hex digits and a NUL into HEX, and resets S. */
void sha256_final(struct sha256 *s, char hex[SHA256_HEX_LEN + 1]);
/* sha256_release on a zeroed or released context is a no-op. */
void sha256_release(struct sha256 *s);

/* Hashes the first SIZE bytes of FD (read with pread).  Returns 0 or -errno. */
int sha256_fd(int fd, uint64_t size, char hex[SHA256_HEX_LEN + 1]);

/* Lowercase hex of LEN bytes into OUT (2*LEN+1 bytes). */
void hex_encode(const uint8_t *in, size_t len, char *out);

#endif
