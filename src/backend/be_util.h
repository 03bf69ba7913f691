/*
 * be_util.h - what the remote backends (S3, Vercel Blob, ICP) share: the store
 * URL's shape and transfer options, key display, reading the source,
 * gathering a listing, running part uploads on threads.  Not for use
 * outside src/backend.
 */
#ifndef MVFS_BE_UTIL_H
#define MVFS_BE_UTIL_H

#include "backend/backend.h"
#include "backend/http.h"
#include "backend/s3_err.h"

/* A printable rendering of KEY for log lines (keys are checked before use,
 * but a rejected one may hold anything): at most 72 bytes, then "...". */
#define BACKEND_SHOWN_KEY_MAX 80
void backend_shown_key(const char *key, char out[BACKEND_SHOWN_KEY_MAX]);

/* Reads exactly SIZE bytes at OFF of FD into BUF (pread): 0, -errno from
 * pread (-EBADF & co), or -EIO when the source ends early. */
int backend_read_source(int fd, void *buf, size_t size, uint64_t off);

/* One pass over the LEN bytes at OFF of FD, in small reads (no buffer the
 * size of a part): their SHA-256 into SHA (hex) and/or their MD5 into MD5
 * (hex, an S3 part's ETag); either may be NULL.  0, -errno from pread,
 * -EIO when FD ends early, -ENOMEM. */
int backend_hash_source(int fd, uint64_t off, uint64_t len, char sha[65], char md5[33]);

/* A size option: "16M", "5242880", "1G", "8MiB" -> bytes; 0 on nonsense. */
uint64_t backend_parse_size(const char *v);

/* The transfer options every remote store's URL takes; zero: the default. */
struct backend_xfer_opts {
	uint64_t part_size, threshold;	/* part_size=, threshold= (K, M, G) */
	int concurrency;		/* concurrency=: parts in flight */
	int retries;			/* retries=: attempts per request */
	long retry_base_ms, retry_cap_ms;
	int timeout;			/* timeout=: seconds a transfer may stall */
};

/* Sets the option NAME of X to VALUE: 0, -1 for a bad value, 1 when NAME
 * is not a transfer option. */
int backend_xfer_opt(struct backend_xfer_opts *x, const char *name, const char *value);

/* A remote store's transfer settings. */
struct backend_xfer {
	uint64_t part_size, threshold;
	int concurrency;
	struct s3_retry_policy retry;
};

/* The settings X asks for, with the defaults for what it leaves zero:
 * PART_SIZE (the store's own), a threshold of the part size, 4 parts in
 * flight, 8 attempts with backoff from 200 ms up to 10 s.  HC gets X's
 * stall timeout and room for the idle connections of that many parts in
 * flight. */
struct backend_xfer backend_xfer_settle(const struct backend_xfer_opts *x, uint64_t part_size,
					struct http_config *hc);

/* Splits REST, "HEAD[/PREFIX][?name=value&...]" (URL is the whole URL, for
 * messages): each option goes to OPT(ARG, name, value) (value "1" when
 * none given), which returns 0 or -1 for a bad one; *HEAD gets HEAD and
 * *PREFIX "" or "PREFIX/" (PREFIX like a key, '/'s at its ends dropped),
 * both malloc'd.  Returns 0, -EINVAL after one log line, or -ENOMEM. */
int backend_url_split(const char *rest, const char *url, int (*opt)(void *arg, const char *name, const char *value),
		      void *arg, char **head, char **prefix);

/* Keys gathered from a store's pages, handed out in ascending order. */
struct backend_list_item {
	char *key;
	uint64_t size;
};

struct backend_list_acc {
	struct backend_list_item *v;
	size_t n, cap;
};

/* 0 or -ENOMEM. */
int backend_list_add(struct backend_list_acc *acc, const char *key, uint64_t size);
/* When RC is 0: sorts ACC and calls CB for each key until one returns
 * non-zero; then frees ACC.  Returns RC, or CB's non-zero answer. */
int backend_list_emit(struct backend_list_acc *acc, int rc, backend_list_cb cb, void *arg);

/* Runs FN(ARG) on N threads and waits for them all (on this thread when
 * none can be started). */
void backend_run_threads(int n, void *(*fn)(void *), void *arg);

/* Whether the answer to a ranged GET of LEN bytes at OFF is those bytes
 * (short only at the object's end): STATUS 206 with a Content-Range that
 * says so, or 200 with the whole object when OFF is 0; GOT bytes arrived of
 * CONTENT_LENGTH (-1: not given).  0 with *TOTAL the object's size, or -1
 * with what is wrong in WHY. */
int backend_check_range(long status, const char *content_range, int64_t content_length, size_t got,
			uint64_t off, size_t len, uint64_t *total, char *why, size_t whylen);

/* 1 when the LEN bytes at BUF hash to WANT (SHA-256, hex), 0 when not,
 * -ENOMEM. */
int backend_sha_matches(const void *buf, size_t len, const char *want);

void backend_sleep_ms(long ms);
/* Overwrites the string P, then frees it; NULL is a no-op. */
void backend_wipe_free(char *p);

#endif
