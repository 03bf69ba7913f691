/*
 * meta_s3conf.h - the user's S3 settings from s3_configurations (seed 000).
 *
 * The access key and secret come back as stored: encrypted (util/secret.h);
 * the caller, which holds the key file, decrypts them.
 */
#ifndef MVFS_META_S3CONF_H
#define MVFS_META_S3CONF_H

struct meta;

struct meta_s3conf {
	char name[128];
	char bucket[128];
	char region[64];
	char endpoint[512];		/* "" when NULL (AWS) */
	int path_style;
	char *access_key_enc;		/* malloc'd ciphertext */
	char *secret_key_enc;
};

/* The mount user's active configuration for BUCKET, else their default
 * active one (BUCKET may be NULL: the default).  Returns 0, -ENOENT when
 * the user has none, or -errno from the database. */
int meta_s3conf_get(struct meta *m, const char *bucket, struct meta_s3conf *out);
void meta_s3conf_release(struct meta_s3conf *c);

#endif
