/*
 * backend.h - object stores behind one interface.
 *
 * A backend keeps immutable objects under string keys.  mvaultfs only ever
 * writes content-addressed keys (backend_key_for: a user's prefix and the
 * hash), so the same bytes of one user always go to the same key and every
 * operation can be retried freely.
 *
 * CONTRACT (every implementation):
 *  - Every operation is idempotent.  put of an existing key with the same
 *    bytes succeeds; delete of a missing key succeeds.
 *  - Every operation returns 0 or -errno:
 *      -ENOENT  the key does not exist (get_range, head)
 *      -ENOSPC  the store is full (put)
 *      -EACCES  the store refused our credentials or permissions
 *      -EIO     the store failed or returned data that failed its check
 *      -EINVAL  the request itself is wrong (bad key)
 *      -EFBIG   the object is larger than the store takes (put)
 *      -ENXIO   the store itself is missing (an S3 bucket that does not exist)
 *  - A failed put never leaves a partial object under the real key: readers
 *    see the whole object or nothing.
 *  - Functions are safe to call from several threads at once.
 *  - Human detail about a failure is logged once, inside the backend, naming
 *    the operation and the key; never a secret.
 */
#ifndef MVFS_BACKEND_H
#define MVFS_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/types.h>

struct backend;

struct backend_stat {
	uint64_t size;
};

/* Called once per key by list(); return non-zero to stop early (list then
 * returns that value). */
typedef int (*backend_list_cb)(const char *key, uint64_t size, void *arg);

struct backend_ops {
	const char *name;	/* "local", "s3", ... */
	/* Store SIZE bytes read from FD (from offset 0, with pread) under KEY.
	 * SHA256_HEX, when not NULL, is the hash of those bytes, kept as object
	 * metadata where the store supports it. */
	int (*put)(struct backend *b, const char *key, int fd, uint64_t size, const char *sha256_hex);
	/* Read up to LEN bytes at OFF into DST; *GOT is how many were read
	 * (short only at the end of the object; an OFF at or past the end
	 * reads nothing and returns 0, like pread).  *GOT is 0 on failure. */
	int (*get_range)(struct backend *b, const char *key, uint64_t off, size_t len, void *dst, size_t *got);
	int (*head)(struct backend *b, const char *key, struct backend_stat *st);
	int (*del)(struct backend *b, const char *key);
	/* Every key starting with PREFIX, in ascending key order. */
	int (*list)(struct backend *b, const char *prefix, backend_list_cb cb, void *arg);
	/* Space left in the store, in bytes; -ENOTSUP where unknown. */
	int (*space)(struct backend *b, uint64_t *total, uint64_t *avail);
	void (*free)(struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
};

/* Settings of the stores that need more than a URL (S3 and later ones).
 * Zeroed fields mean "the default".  Owned by the caller. */
struct backend_config {
	int reserved;
	/* S3 (s3://BUCKET[/PREFIX][?name=value&...]; these override the URL's
	 * options, which override the defaults; see be_s3.h). */
	const char *s3_endpoint;	/* "https://host[:port]"; default AWS for the region */
	const char *s3_region;		/* default "us-east-1" */
	int s3_path_style;		/* 1: https://host/BUCKET/key; -1: virtual host; 0: default */
	/* 1: UNSIGNED-PAYLOAD instead of the body's SHA-256; -1: always sign
	 * the body; 0: the default (unsigned over https, signed over http) */
	int s3_unsigned_payload;
	const char *s3_ca_file;		/* PEM CAs to trust; NULL: $AWS_CA_BUNDLE, else the system's */
	const char *s3_access_key;	/* NULL: environment, then ~/.aws/credentials */
	const char *s3_secret_key;
	const char *s3_session_token;
	uint64_t s3_part_size;		/* multipart part size in bytes */
	uint64_t s3_multipart_threshold; /* larger objects go multipart */
	int s3_concurrency;		/* parts in flight per upload */
	int s3_retries;			/* attempts per request, the first included */
	int s3_timeout;			/* seconds a transfer may stall */
	/* ICP (icp://CANISTER?host=URL&...; these override the URL's, see be_icp.h) */
	const char *icp_host;		/* "https://icp-api.io" */
	const char *icp_identity;	/* Ed25519 PEM file */
	/* Vercel Blob (vblob://STORE_ID[/PREFIX][?name=value&...]; see be_vblob.h) */
	const char *vblob_token_file;	/* file holding the read-write token; NULL: $BLOB_READ_WRITE_TOKEN */
};

/* Opens the store named by URL: a plain path or file://PATH for the local
 * backend.  Returns NULL with errno set and a log line on failure: errno is
 * EPROTONOSUPPORT for a known scheme not built yet (none now),
 * EINVAL for an unknown scheme or an empty URL. */
struct backend *backend_open(const char *url, const struct backend_config *cfg);

/* 1 when KEY may name an object in every backend: 1..1024 bytes of
 * [A-Za-z0-9._/-], no leading '/', no empty, "." or ".." component. */
int backend_key_valid(const char *key);

/* The key for content with this SHA-256 (64 lowercase hex digits) under
 * PREFIX: PREFIX "sha256/ab/cd/abcd...".  PREFIX is "" (the keys shared by
 * the users made before per-user keys) or a user's own ("u/<uuid>/": see
 * meta_key_prefix), so that naming a hash reaches only one's own uploads.
 * OUT must hold BACKEND_KEY_MAX bytes.  Anything else (NULL, uppercase,
 * wrong length, a prefix backend_key_prefix_valid refuses) writes "", which
 * every backend rejects with -EINVAL, so a bad hash cannot reach the store. */
#define BACKEND_KEY_MAX 128
#define BACKEND_KEY_PREFIX_MAX 48
void backend_key_for(const char *prefix, const char *sha256_hex, char out[BACKEND_KEY_MAX]);
/* 1 when PREFIX may start keys: "", or up to BACKEND_KEY_PREFIX_MAX bytes
 * of a valid key ending in '/' (and not "sha256/..."). */
int backend_key_prefix_valid(const char *prefix);
/* The SHA-256 a content-addressed key (any valid prefix) names, pointing
 * into KEY, or NULL for a key backend_key_for would not make. */
const char *backend_key_sha(const char *key);

static inline int backend_put(struct backend *b, const char *key, int fd, uint64_t size, const char *sha)
{ return b->ops->put(b, key, fd, size, sha); }
static inline int backend_get_range(struct backend *b, const char *key, uint64_t off, size_t len, void *dst, size_t *got)
{ return b->ops->get_range(b, key, off, len, dst, got); }
static inline int backend_head(struct backend *b, const char *key, struct backend_stat *st)
{ return b->ops->head(b, key, st); }
static inline int backend_del(struct backend *b, const char *key)
{ return b->ops->del(b, key); }
static inline int backend_list(struct backend *b, const char *prefix, backend_list_cb cb, void *arg)
{ return b->ops->list(b, prefix, cb, arg); }
static inline int backend_space(struct backend *b, uint64_t *total, uint64_t *avail)
{ return b->ops->space ? b->ops->space(b, total, avail) : -ENOTSUP; }
/* backend_free(NULL) is a no-op. */
static inline void backend_free(struct backend *b)
{ if (b) b->ops->free(b); }

#endif
