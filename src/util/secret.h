/*
 * secret.h - secrets at rest: AES-256-GCM with a key kept in a file.
 *
 * Used for the S3 keys kept in s3_configurations: the database holds only
 * ciphertext, the key lives in a file outside it (mode 0600).  The text
 * form is "v1:" followed by base64 of nonce (12 bytes), ciphertext and tag
 * (16 bytes); the tag makes any change to the text, or the wrong key, an
 * error rather than garbage.
 */
#ifndef MVFS_SECRET_H
#define MVFS_SECRET_H

#include <stddef.h>

#define SECRET_KEY_LEN 32

/* Reads the key in PATH (64 hex digits).  When PATH does not exist and
 * CREATE is set, makes a new random key there with mode 0600.  Returns 0 or
 * -errno: -EINVAL when the file does not hold a key, -EPERM when it is
 * readable by others (the key would not be secret). */
int secret_key_load(const char *path, int create, unsigned char key[SECRET_KEY_LEN]);

/* Encrypts the NUL-terminated PLAIN.  Returns a malloc'd "v1:..." string,
 * or NULL with errno ENOMEM. */
char *secret_encrypt(const unsigned char key[SECRET_KEY_LEN], const char *plain);

/* Decrypts TEXT made by secret_encrypt.  Returns the malloc'd plaintext
 * (wipe and free it), or NULL with errno EBADMSG when TEXT is not ours,
 * was changed, or was made with another key; ENOMEM. */
char *secret_decrypt(const unsigned char key[SECRET_KEY_LEN], const char *text);

/* A new random password of 32 characters from [A-Za-z0-9_-] (192 bits)
 * in OUT (33 bytes).  0, or -EIO when no random bytes could be had. */
#define SECRET_PASSWORD_LEN 32
int secret_password(char out[SECRET_PASSWORD_LEN + 1]);

/* Overwrites and frees S; NULL is a no-op. */
void secret_free(char *s);

#endif
