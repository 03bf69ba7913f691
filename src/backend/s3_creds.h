/*
 * s3_creds.h - S3 credentials from where the AWS tools keep them.
 *
 * Order: the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN), then the shared credentials file
 * ($AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials), section
 * $AWS_PROFILE (default "default").  The database (s3_configurations) comes
 * after both and is read by the caller, which owns the database.
 */
#ifndef MVFS_S3_CREDS_H
#define MVFS_S3_CREDS_H

#include <stddef.h>

struct s3_creds {
	char *access_key;
	char *secret_key;
	char *session_token;	/* NULL when none */
	char source[160];	/* where they came from, for a log line (never the values) */
};

/* Fills C from the environment or the credentials file.  Returns 0 when
 * found, -ENOENT when neither has them, -EINVAL when the file's profile is
 * incomplete (a key without a secret), -ENOMEM. */
int s3_creds_lookup(struct s3_creds *c);

/* Wipes and frees the strings of C; C itself is the caller's. */
void s3_creds_release(struct s3_creds *c);

#endif
