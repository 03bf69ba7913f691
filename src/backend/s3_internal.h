/*
 * s3_internal.h - what be_s3.c and be_s3_multipart.c share: the backend
 * state and the one request runner.  Not for use outside those files.
 */
#ifndef MVFS_S3_INTERNAL_H
#define MVFS_S3_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/http.h"
#include "backend/s3_err.h"
#include "backend/sigv4.h"

struct s3 {
	struct backend base;
	struct http *http;
	char *scheme;		/* "http" or "https" */
	char *host;		/* endpoint host[:port], the Host of path-style requests */
	char *vhost;		/* BUCKET.host[:port], the Host of virtual-host requests */
	char *bucket;
	char *prefix;		/* "" or "some/prefix/" */
	char *region;
	int path_style;
	int unsigned_payload;	/* send UNSIGNED-PAYLOAD for request bodies */
	char *ca_file;		/* PEM CAs trusted instead of the system's, or NULL */
	const char *ca_from;	/* where CA_FILE came from, for messages */
	char *access_key, *secret_key, *session_token;	/* wiped at free */
	uint64_t part_size, threshold;
	int concurrency;
	struct s3_retry_policy retry;
	atomic_uint seed;	/* varies the jitter between threads */
};

static inline struct s3 *to_s3(struct backend *b)
{
	return (struct s3 *)b;
}

#define S3_OP_MAX_PARAMS 4
#define S3_OP_MAX_HEADERS 4

/* One S3 request, retried as a whole by s3_run. */
struct s3_op {
	const char *op;			/* "put", "get", ... for log lines */
	const char *key;		/* the caller's key, for log lines */
	const char *method;
	char *name;			/* object name in the bucket (prefix + key); NULL: the bucket */
	struct sigv4_param params[S3_OP_MAX_PARAMS];
	size_t nparams;
	struct sigv4_header headers[S3_OP_MAX_HEADERS];	/* signed, besides host & co */
	size_t nheaders;
	const void *body;
	size_t body_len;
	int has_body;
	int body_from_fd;		/* the body is BODY_LEN bytes at BODY_OFF of BODY_FD */
	int body_fd;
	uint64_t body_off;
	const char *payload_hash;	/* NULL: computed from BODY (or unsigned) */
	void *dst;			/* 2xx body goes here (see http_req) */
	size_t dst_cap;
	/* Run on each 2xx answer: 0, or -errno after s3_fail() when the
	 * answer is wrong (the attempt is then retried). */
	int (*check)(struct s3 *s, struct s3_op *o, int *retry);
	void *arg;			/* for CHECK */
	int quiet_404;			/* a missing key is an answer, not a fault */
	int quiet;			/* any failure is only a debug line (probes) */
	int quiet_cert;			/* the caller says why a certificate failed */
	int max_attempts;		/* 0: the backend's policy */

	/* Results of the last attempt. */
	struct http_resp resp;
	char code[64];			/* S3 error code */
	char message[256];		/* S3 error message */
	char bad_answer[256];		/* what CHECK found wrong */
	int non_xml;			/* an error answer whose body was not XML */
	xmlNode *xml;			/* the 2xx answer's root, after s3_check_xml */
	int attempts;
	int transient;			/* failed on a retryable error: budget spent */
};

/* Runs O with retries.  Returns 0 (O->resp holds the answer) or -errno after
 * one log line (a debug line for a quiet 404).  Release O with
 * s3_op_release() either way (O->name is the caller's). */
int s3_run(struct s3 *s, struct s3_op *o);
void s3_op_release(struct s3_op *o);

/* For checks: records why the answer is wrong, marks it retryable,
 * returns RC. */
int s3_fail(struct s3_op *o, int *retry, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A CHECK for answers that are XML documents whose root is O->arg: parses
 * the answer into O->xml (freed by s3_op_release).  A 200 holding an
 * <Error> (CompleteMultipartUpload may send one) fails with its code. */
int s3_check_xml(struct s3 *s, struct s3_op *o, int *retry);

/* The longest object name (prefix and key) we make. */
#define S3_NAME_MAX 1024

/* What to do about a certificate failure of O's answer (the CA file to
 * give), in BUF; "" for any other failure. */
const char *s3_cert_advice(struct s3 *s, const struct s3_op *o, char *buf, size_t len);

/* PREFIX + KEY, malloc'd; NULL when out of memory. */
char *s3_object_name(struct s3 *s, const char *key);
/* 0, or -EINVAL after a log line when KEY cannot be an object of S. */
int s3_key_check(struct s3 *s, const char *op, const char *key);
/* HEAD: the object's size; -ENOENT quietly when missing. */
int s3_head_size(struct s3 *s, const char *key, uint64_t *size);

/* be_s3_multipart.c */
int s3_put_multipart(struct s3 *s, const char *key, int fd, uint64_t size, const char *sha256_hex);

#endif
