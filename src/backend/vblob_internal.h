/*
 * vblob_internal.h - what be_vblob.c, be_vblob_multipart.c and
 * vblob_request.c share: the backend state, the one request runner and
 * the pieces every write uses.  Not for use outside those files.
 */
#ifndef MVFS_VBLOB_INTERNAL_H
#define MVFS_VBLOB_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/be_util.h"
#include "backend/http.h"
#include "backend/s3_err.h"

#define VB_MAX_PARTS 10000
#define VB_MAX_HEADERS 8

struct vblob {
	struct backend base;
	struct http *http;
	char *api;		/* no trailing '/' */
	char *store;
	char *prefix;		/* "" or "some/prefix/" */
	char *access;		/* "private" or "public" */
	char *token;		/* wiped at free */
	struct backend_xfer x;	/* part size, threshold, concurrency, retries */
	atomic_uint seed;
	pthread_mutex_t lock;
	char *blob_base;	/* URL of pathname P = blob_base + P; NULL until learned */
};

static inline struct vblob *to_vb(struct backend *b)
{
	return (struct vblob *)b;
}

/* One request, retried as a whole by vb_run. */
struct vb_op {
	const char *op;			/* "put", "get", ... for log lines */
	const char *key;		/* the caller's key, for log lines */
	const char *method;
	char *url;			/* the whole URL (the caller's) */
	int blob_host;			/* a read of a blob URL, not the API */
	const char *headers[VB_MAX_HEADERS];
	size_t nheaders;
	const void *body;
	size_t body_len;
	int has_body;
	void *dst;			/* 2xx body goes here (see http_req) */
	size_t dst_cap;
	/* Run on each 2xx answer: 0, or -errno after vb_fail(). */
	int (*check)(struct vblob *v, struct vb_op *o, int *retry);
	void *arg;
	int quiet_404;			/* a missing key is an answer, not a fault */
	int quiet;			/* any failure is only a debug line (probes) */
	int max_attempts;		/* 0: the backend's policy */

	/* Results of the last attempt. */
	struct http_resp resp;
	json_t *json;			/* the 2xx answer of the API, parsed */
	char code[64];			/* the service's error code */
	char message[256];
	char bad_answer[256];		/* what CHECK found wrong */
	int attempts;
};

/* vblob_request.c */

/* Runs O with retries.  Returns 0 (O->resp and O->json hold the answer) or
 * -errno after one log line (a debug line for a quiet 404).  Release O
 * with vb_op_release() either way. */
int vb_run(struct vblob *v, struct vb_op *o);
void vb_op_release(struct vb_op *o);

/* For checks: records why the answer is wrong, marks it retryable,
 * returns RC. */
int vb_fail(struct vb_op *o, int *retry, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Percent-encodes S as URLSearchParams does for a value (all but
 * [A-Za-z0-9*-._]); malloc'd, NULL when out of memory. */
char *vb_qenc(const char *s);
/* API + PATH + "?NAME=" + the encoded VALUE (when NAME); malloc'd. */
char *vb_api_url(struct vblob *v, const char *path, const char *name, const char *value);
/* be_vblob.c */

/* PREFIX + KEY, malloc'd; NULL when out of memory. */
char *vb_pathname_of(struct vblob *v, const char *key);

/* A CHECK for put and complete answers (O->arg is the pathname): a blob
 * under exactly that pathname. */
int vb_check_put(struct vblob *v, struct vb_op *o, int *retry);
/* Adds the headers of every write to O (private or public, no suffix,
 * overwrite); ACCESS_LINE (LEN bytes) holds one of them.  Returns
 * O->nheaders. */
size_t vb_put_headers(struct vblob *v, struct vb_op *o, char *access_line, size_t len);

struct vb_head_ans {
	uint64_t size;
	char *url;		/* malloc'd */
};

/* Asks the API about KEY: 0 with H filled (free H->url), -ENOENT quietly
 * when missing, else -errno (only a debug line when QUIET). */
int vb_head_ans(struct vblob *v, const char *key, struct vb_head_ans *h, int quiet);

/* be_vblob_multipart.c: puts SIZE bytes of FD under KEY as a multipart
 * upload; 0 only once the completed blob shows SIZE bytes. */
int vb_put_multipart(struct vblob *v, const char *key, int fd, uint64_t size);

#endif
