/*
 * s3_err.h - what an S3 answer means: one errno mapper, one retry
 * predicate, one backoff policy, and the few XML fields S3 answers carry
 * (read with libxml2).
 *
 * Kept apart from be_s3.c so each is a pure function with unit tests
 * (tests/unit/test_s3.c), and so mapping, retrying and logging stay three
 * separate decisions.
 */
#ifndef MVFS_S3_ERR_H
#define MVFS_S3_ERR_H

#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#include "backend/http.h"

/* The errno for an S3 answer: HTTP STATUS with error CODE (from the XML
 * body, "" when none), or a transport failure FAIL (status then 0).
 *   403 AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch,
 *       RequestTimeTooSkewed, ExpiredToken ...      -> EACCES
 *   404 NoSuchKey / NoSuchUpload                    -> ENOENT
 *   404 NoSuchBucket                                -> ENXIO (the store itself is missing)
 *   400 EntityTooLarge                              -> EFBIG
 *   400 KeyTooLongError                             -> ENAMETOOLONG
 *   400 InvalidBucketName, InvalidArgument, ...     -> EINVAL
 *   301/307 (wrong region or addressing style)      -> EINVAL
 *   409                                             -> EBUSY
 *   507, QuotaExceeded                              -> ENOSPC
 *   429, 5xx, transport failures                    -> EIO
 * Anything else in 4xx is EINVAL (the request is wrong), in 2xx is 0. */
int s3_status_to_errno(long status, const char *code, enum http_fail fail);

/* Whether the same request may succeed if sent again: 429, 500, 502, 503,
 * 504, S3's SlowDown / InternalError / RequestTimeout codes, and transport
 * failures other than TLS (an untrusted certificate, an unreadable CA file,
 * a failed handshake) and a body file shorter than its size.  Never a 4xx
 * that means the request is wrong. */
int s3_is_retryable(long status, const char *code, enum http_fail fail);

struct s3_retry_policy {
	int max_attempts;	/* attempts in all, the first included */
	long base_ms;		/* first backoff */
	long cap_ms;		/* no single wait is longer */
};

/* How long to wait before attempt ATTEMPT (2 for the first retry):
 * "full jitter" exponential backoff, a random wait in
 * [0, min(cap, base * 2^(attempt-2))], but at least RETRY_AFTER_MS when the
 * server asked for it (Retry-After), itself capped at 4 * cap.  *SEED is
 * the caller's rand_r state. */
long s3_backoff_ms(const struct s3_retry_policy *p, int attempt, long retry_after_ms, unsigned *seed);

/* Retry-After as milliseconds: a number of seconds, or an HTTP date
 * relative to NOW (0 when past, at most LONG_MAX ms); -1 when absent or
 * unreadable. */
long s3_retry_after_ms(const char *value, long now);

/* ---- XML ----------------------------------------------------------------
 * S3 answers are small XML documents, read with libxml2 into a tree.
 * Elements are matched by local name (S3's namespace is ignored). */

/* Parses BODY (LEN bytes): its root element, or NULL when BODY is not a
 * well-formed XML document, or carries a DTD (S3 never sends one; refused so
 * that no declared entity is ever expanded), or memory ran out.  Never
 * touches the network.  Release with s3_xml_free(). */
xmlNode *s3_xml_parse(const char *body, size_t len);
/* Frees the document ROOT belongs to; NULL is fine. */
void s3_xml_free(xmlNode *root);

/* 1 when E is an element named NAME. */
int s3_xml_is(const xmlNode *e, const char *name);

/* The next child element of PARENT named NAME after AFTER (NULL: the
 * first), or NULL. */
xmlNode *s3_xml_child(const xmlNode *parent, const xmlNode *after, const char *name);

/* The text of PARENT's first child element NAME (entities and character
 * references decoded) into OUT, at most OUTLEN-1 bytes, NUL-terminated ("" when
 * not found).  Returns 1 when found, 0 when not, -1 when the text did not fit. */
int s3_xml_get(const xmlNode *parent, const char *name, char *out, size_t outlen);

/* ---- multipart planning ---------------------------------------------------- */

#define S3_MAX_PARTS 10000
#define S3_MIN_PART (5ull << 20)		/* S3's minimum for all but the last part */
#define S3_MAX_PART (5ull << 30)
#define S3_MAX_OBJECT (5ull << 40)		/* 5 TiB */
#define S3_MAX_SINGLE_PUT (5ull << 30)	/* one PUT request */

/* The part size to use for an object of SIZE bytes when WANT is asked for:
 * WANT (at least S3_MIN_PART), grown in MiB steps until SIZE fits in
 * S3_MAX_PARTS parts.  Returns 0 when SIZE is over S3_MAX_OBJECT. */
uint64_t s3_part_size(uint64_t size, uint64_t want);

/* Parts in flight of one multipart upload, grown while the upload's rate
 * grows.  It starts at START (-o s3_concurrency).  Each step lets the
 * parts begun under the previous limit finish, then times the next LIMIT
 * parts; if that rate is at least S3_PACE_GAIN percent above the previous
 * step's, the limit doubles and the next step starts; if not, the step did
 * not pay: the limit goes back to the previous one and stays.  CAP bounds it (each part in flight holds a connection and about
 * 1 MiB: libcurl's 512 KiB send buffer and the hashing buffer). */
#define S3_PACE_CAP 16
#define S3_PACE_GAIN 10
struct s3_pace {
	int limit, prev, cap;	/* PREV: the limit before this step */
	int frozen;
	int done;		/* parts finished in this step */
	double t0;		/* when the timed half of the step began */
	uint64_t bytes;		/* bytes finished in the timed half */
	double rate_prev;	/* bytes/s of the previous step, 0 before the first */
	int start;		/* for the log: where it began */
};

void s3_pace_init(struct s3_pace *p, int start, int cap);
/* A part of LEN bytes finished at NOW (seconds, any monotonic origin);
 * returns the limit of parts in flight from now on. */
int s3_pace_done(struct s3_pace *p, uint64_t len, double now);

#endif
