/*
 * http.h - the shared HTTP client of the backends, on libcurl.
 *
 * One struct http per backend: a pool of curl easy handles, each keeping its
 * own connection cache, so a request reuses a warm connection (and TLS
 * session) whenever an idle handle has one.  http_do() performs exactly one
 * request, with no retry and no interpretation of the status: retry policy
 * and status mapping belong to each backend (one each, see s3_err.h).
 *
 * TLS certificates are verified (libcurl's default, never turned off here)
 * against the system's CA store, or against the CAs of one PEM file when
 * the config names one (a private CA: self-hosted MinIO, a corporate
 * proxy); the proxy comes from the environment (http_proxy, https_proxy, no_proxy),
 * as libcurl reads it.  Nothing here logs: a request's URL or headers may
 * hold a secret, the caller decides what to quote.
 *
 * Only src/backend includes <curl/curl.h>; callers see this header only.
 */
#ifndef MVFS_HTTP_H
#define MVFS_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct http;

struct http_config {
	long connect_timeout_s;	/* 0 = 10 s */
	/* A transfer slower than 1 byte/s for this long fails as a timeout
	 * (a stalled connection); 0 = 30 s.  No total limit: a 5 GiB part on
	 * a slow link is not a timeout. */
	long stall_timeout_s;
	int max_idle;		/* idle handles kept; 0 = 16 */
	/* PEM file of the CAs to trust instead of the system's (libcurl's
	 * CURLOPT_CAINFO); NULL: the system's.  Copied by http_new. */
	const char *ca_file;
};

/* Why a request got no complete response (HTTP_OK: it did, any status). */
enum http_fail {
	HTTP_OK = 0,
	HTTP_FAIL_RESOLVE,	/* host name unknown */
	HTTP_FAIL_CONNECT,	/* refused or unreachable */
	HTTP_FAIL_TIMEOUT,	/* connect timeout or stalled transfer */
	HTTP_FAIL_RESET,	/* connection reset, nothing or a cut response received */
	HTTP_FAIL_CERT,		/* the peer's certificate was not trusted (unknown CA,
				 * expired, or not for this host name) */
	HTTP_FAIL_CAFILE,	/* the CA file could not be read */
	HTTP_FAIL_TLS,		/* another TLS handshake failure */
	HTTP_FAIL_OVERFLOW,	/* the body was longer than the caller's buffer */
	HTTP_FAIL_SOURCE,	/* the request body's file could not be read whole */
	HTTP_FAIL_OTHER,
};

struct http_req {
	const char *method;		/* "GET", "PUT", "POST", "DELETE", "HEAD" */
	const char *url;
	const char *const *headers;	/* "Name: value" lines */
	size_t nheaders;
	const void *body;		/* request body, BODY_LEN bytes (may be 0) */
	size_t body_len;
	int has_body;			/* send BODY (even empty) with Content-Length */
	/* Or, when BODY_FROM_FD: the BODY_LEN bytes at BODY_OFF of the file
	 * BODY_FD, read (pread) straight into libcurl's send buffer: no copy
	 * of the whole body in memory.  A file shorter than that fails the
	 * request with HTTP_FAIL_SOURCE. */
	int body_from_fd;
	int body_fd;
	uint64_t body_off;
	/* A 2xx body goes into DST (at most DST_CAP bytes: more fails with
	 * HTTP_FAIL_OVERFLOW); when DST is NULL it is collected in resp->body,
	 * up to BODY_MAX bytes (0 = 16 MiB).  Other statuses' bodies always go
	 * to resp->body, never to DST. */
	void *dst;
	size_t dst_cap;
	size_t body_max;
};

struct http_resp {
	long status;			/* 0 when no response */
	enum http_fail fail;
	char err[256];			/* libcurl's words for FAIL */
	char *body;			/* malloc'd, NUL-terminated; see http_req */
	size_t body_len;
	size_t got;			/* bytes written to DST */
	int64_t content_length;		/* -1 when absent */
	char content_range[96];
	char etag[128];
	char retry_after[64];
	char date[64];
	char meta_sha256[72];		/* x-amz-meta-sha256 */
	char request_id[96];		/* x-amz-request-id */
	char bucket_region[64];		/* x-amz-bucket-region */
};

/* Process-wide libcurl setup, reference-counted: the first http_new
 * initialises libcurl, the last http_free cleans it up.  Returns NULL with
 * errno ENOMEM on failure. */
struct http *http_new(const struct http_config *cfg);
/* http_free(NULL) is a no-op.  No request may be running. */
void http_free(struct http *h);

/* Performs REQ once.  Returns 0 when a whole response arrived (any status:
 * see resp->status), or -EIO with resp->fail and resp->err saying why.
 * RESP is reset first; release it with http_resp_release. */
int http_do(struct http *h, const struct http_req *req, struct http_resp *resp);
void http_resp_release(struct http_resp *resp);

/* A short name for FAIL, for log lines ("connection reset"). */
const char *http_fail_str(enum http_fail fail);

#endif
