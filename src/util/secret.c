/*
 * secret.c - AES-256-GCM secrets with a key file, through OpenSSL EVP.
 *
 * A fresh random 96-bit nonce per encryption (never reused under one key
 * in any practical count); the 128-bit tag is checked before any plaintext
 * is returned.  Buffers that held a key or a plaintext are wiped.
 */
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_LEN 12
#define TAG_LEN 16

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int make_key(const char *path, unsigned char key[SECRET_KEY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	char text[2 * SECRET_KEY_LEN + 1];
	int fd, i, rc = 0;

	if (RAND_bytes(key, SECRET_KEY_LEN) != 1)
		return -EIO;
	for (i = 0; i < SECRET_KEY_LEN; i++) {
		text[2 * i] = hex[key[i] >> 4];
		text[2 * i + 1] = hex[key[i] & 15];
	}
	text[2 * SECRET_KEY_LEN] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) || fsync(fd) != 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	OPENSSL_cleanse(text, sizeof(text));
	if (rc)
		unlink(path);
	return rc;
}

int secret_key_load(const char *path, int create, unsigned char key[SECRET_KEY_LEN])
{
	char text[2 * SECRET_KEY_LEN + 2];
	struct stat st;
	ssize_t n;
	int fd, i, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && create) {
		rc = make_key(path, key);
		if (rc != -EEXIST)	/* lost a race with another daemon: read its key */
			return rc;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || (st.st_mode & 077)) {
		close(fd);
		return -EPERM;
	}
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 2 * SECRET_KEY_LEN)
		rc = -EINVAL;
	for (i = 0; !rc && i < SECRET_KEY_LEN; i++) {
		int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			rc = -EINVAL;
		else
			key[i] = (unsigned char)(hi << 4 | lo);
	}
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

char *secret_encrypt(const unsigned char key[SECRET_KEY_LEN], const char *plain)
{
	size_t len = strlen(plain), raw_len = NONCE_LEN + len + TAG_LEN;
	unsigned char *raw = malloc(raw_len);
	char *out = malloc(3 + 4 * ((raw_len + 2) / 3) + 1);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = raw && out && ctx && RAND_bytes(raw, NONCE_LEN) == 1 &&
	     EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
	     EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &n, (const unsigned char *)plain, (int)len) == 1 &&
	     EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + n, &n) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (ok) {
		memcpy(out, "v1:", 3);
		EVP_EncodeBlock((unsigned char *)out + 3, raw, (int)raw_len);
	}
	free(raw);
	if (!ok) {
		free(out);
		errno = ENOMEM;
		return NULL;
	}
	return out;
}

char *secret_decrypt(const unsigned char key[SECRET_KEY_LEN], const char *text)
{
	size_t tlen, raw_len, len;
	unsigned char *raw = NULL;
	char *plain = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	int n, pad = 0, ok = 0, dec;

	if (!text || strncmp(text, "v1:", 3) != 0)
		goto out;
	text += 3;
	tlen = strlen(text);
	if (tlen % 4 || tlen < 4)
		goto out;
	raw = malloc(tlen / 4 * 3 + 1);
	if (!raw)
		goto out;
	dec = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)tlen);
	if (dec < 0)
		goto out;
	pad = (text[tlen - 1] == '=') + (text[tlen - 2] == '=');
	raw_len = (size_t)dec - (size_t)pad;
	if (raw_len < NONCE_LEN + TAG_LEN)
		goto out;
	len = raw_len - NONCE_LEN - TAG_LEN;
	plain = malloc(len + 1);
	ctx = EVP_CIPHER_CTX_new();
	ok = plain && ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
	     EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n, raw + NONCE_LEN, (int)len) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + len) == 1 &&
	     EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &n) == 1;
	if (ok)
		plain[len] = '\0';
out:
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	if (!ok) {
		if (plain)
			free(plain);
		errno = EBADMSG;
		return NULL;
	}
	return plain;
}

void secret_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

int secret_password(char out[SECRET_PASSWORD_LEN + 1])
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[SECRET_PASSWORD_LEN];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	for (int i = 0; i < SECRET_PASSWORD_LEN; i++)
		out[i] = digits[raw[i] & 63];
	out[SECRET_PASSWORD_LEN] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}
