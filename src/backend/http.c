/*
 * http.c - one HTTP request at a time on pooled libcurl easy handles.
 *
 * A handle is taken from the idle stack (or made), reset (curl_easy_reset
 * keeps the handle's live connections and TLS session cache, which is the
 * point of pooling it), set up for the request, performed, and put back.  A
 * handle whose transfer failed at the transport level is closed instead, so
 * a broken connection is never offered to the next request.
 *
 * DESIGN
 * The body of a successful response goes straight into the caller's buffer
 * (ranged reads land where the reader wants them, no copy), but only once
 * the status is known to be 2xx: an error document never reaches a reader's
 * buffer.  Writing past the caller's buffer aborts the transfer: a server
 * that sends more than was asked for is wrong, and its bytes are not used.
 * libcurl itself reports a body cut short of its Content-Length.
 */
#include "backend/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* libcurl's send buffer (CURLOPT_UPLOAD_BUFFERSIZE, default 64 KiB): a
 * larger one means fewer read callbacks and send calls per part. */
#define HTTP_UPLOAD_BUFFER (512L << 10)
/* libcurl's receive buffer (CURLOPT_BUFFERSIZE, default 16 KiB) for a
 * body read into the caller's buffer: a 4 MiB range came in 256 receives,
 * each a poll, a recv and a write callback. */
#define HTTP_DOWNLOAD_BUFFER (512L << 10)

struct http {
	struct http_config cfg;
	pthread_mutex_t lock;
	CURL **idle;
	int nidle;
};

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static int global_users;

struct http *http_new(const struct http_config *cfg)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	if (cfg)
		h->cfg = *cfg;
	if (h->cfg.connect_timeout_s <= 0)
		h->cfg.connect_timeout_s = 10;
	if (h->cfg.stall_timeout_s <= 0)
		h->cfg.stall_timeout_s = 30;
	if (h->cfg.max_idle <= 0)
		h->cfg.max_idle = 16;
	h->cfg.ca_file = NULL;
	if (cfg && cfg->ca_file && !(h->cfg.ca_file = strdup(cfg->ca_file))) {
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	h->idle = calloc((size_t)h->cfg.max_idle, sizeof(*h->idle));
	if (!h->idle) {
		free((char *)h->cfg.ca_file);
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&global_lock);
	if (global_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		pthread_mutex_unlock(&global_lock);
		free((char *)h->cfg.ca_file);
		free(h->idle);
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	global_users++;
	pthread_mutex_unlock(&global_lock);
	pthread_mutex_init(&h->lock, NULL);
	return h;
}

void http_free(struct http *h)
{
	int i;

	if (!h)
		return;
	for (i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	free(h->idle);
	free((char *)h->cfg.ca_file);
	pthread_mutex_destroy(&h->lock);
	free(h);
	pthread_mutex_lock(&global_lock);
	if (--global_users == 0)
		curl_global_cleanup();
	pthread_mutex_unlock(&global_lock);
}

static CURL *take_handle(struct http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->lock);
	if (h->nidle > 0)
		c = h->idle[--h->nidle];
	pthread_mutex_unlock(&h->lock);
	if (c)
		curl_easy_reset(c);
	else
		c = curl_easy_init();
	return c;
}

static void give_handle(struct http *h, CURL *c, int healthy)
{
	if (healthy) {
		pthread_mutex_lock(&h->lock);
		if (h->nidle < h->cfg.max_idle) {
			h->idle[h->nidle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&h->lock);
	}
	if (c)
		curl_easy_cleanup(c);
}

struct xfer {
	CURL *c;
	const struct http_req *req;
	struct http_resp *resp;
	size_t sent;
	size_t body_cap;
	int overflow;
	int source_short;	/* the body's file ended or failed early */
};

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t want = size * n, left = x->req->body_len - x->sent;

	if (want > left)
		want = left;
	if (want && x->req->body_from_fd) {
		ssize_t got;

		do
			got = pread(x->req->body_fd, buf, want, (off_t)(x->req->body_off + x->sent));
		while (got < 0 && errno == EINTR);
		if (got <= 0) {
			x->source_short = 1;
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)got;
	} else if (want) {
		memcpy(buf, (const char *)x->req->body + x->sent, want);
	}
	x->sent += want;
	return want;
}

/* libcurl rewinds the body when it must send it again (a redirect, or
 * authentication it does not do here); support it anyway. */
static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (size_t)off > x->req->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->sent = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static int append_body(struct xfer *x, const char *p, size_t n)
{
	struct http_resp *r = x->resp;
	size_t max = x->req->body_max ? x->req->body_max : (16u << 20);

	if (r->body_len + n > max) {
		x->overflow = 1;
		return -1;
	}
	if (r->body_len + n + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		char *b;

		while (cap < r->body_len + n + 1)
			cap *= 2;
		b = realloc(r->body, cap);
		if (!b)
			return -1;
		r->body = b;
		x->body_cap = cap;
	}
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300 && x->req->dst) {
		if (x->resp->got + len > x->req->dst_cap) {
			x->overflow = 1;
			return 0;
		}
		memcpy((char *)x->req->dst + x->resp->got, p, len);
		x->resp->got += len;
		return len;
	}
	return append_body(x, p, len) == 0 ? len : 0;
}

/* Copies the value of header line P (of LEN bytes) into OUT when its name
 * is NAME. */
static void grab(const char *p, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), vl;

	if (len <= nl || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
		return;
	p += nl + 1;
	len -= nl + 1;
	while (len && (*p == ' ' || *p == '\t'))
		p++, len--;
	while (len && (p[len - 1] == '\r' || p[len - 1] == '\n' || p[len - 1] == ' '))
		len--;
	vl = len < outlen - 1 ? len : outlen - 1;
	memcpy(out, p, vl);
	out[vl] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	struct http_resp *r = x->resp;
	size_t len = size * n;
	char num[32] = "";

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue, say): forget the last. */
		r->content_length = -1;
		r->content_range[0] = r->etag[0] = r->retry_after[0] = r->date[0] = '\0';
		r->meta_sha256[0] = r->request_id[0] = r->bucket_region[0] = '\0';
		return len;
	}
	grab(p, len, "Content-Length", num, sizeof(num));
	if (num[0]) {
		char *end;
		long long v = strtoll(num, &end, 10);

		r->content_length = (*end == '\0' && v >= 0) ? v : -1;
	}
	grab(p, len, "Content-Range", r->content_range, sizeof(r->content_range));
	grab(p, len, "ETag", r->etag, sizeof(r->etag));
	grab(p, len, "Retry-After", r->retry_after, sizeof(r->retry_after));
	grab(p, len, "Date", r->date, sizeof(r->date));
	grab(p, len, "x-amz-meta-sha256", r->meta_sha256, sizeof(r->meta_sha256));
	grab(p, len, "x-amz-request-id", r->request_id, sizeof(r->request_id));
	grab(p, len, "x-amz-bucket-region", r->bucket_region, sizeof(r->bucket_region));
	return len;
}

static enum http_fail classify(CURLcode rc, int overflow, int source_short)
{
	if (overflow)
		return HTTP_FAIL_OVERFLOW;
	if (source_short)
		return HTTP_FAIL_SOURCE;
	switch (rc) {
	case CURLE_OK:
		return HTTP_OK;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return HTTP_FAIL_RESOLVE;
	case CURLE_COULDNT_CONNECT:
		return HTTP_FAIL_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return HTTP_FAIL_TIMEOUT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
		return HTTP_FAIL_RESET;
	case CURLE_PEER_FAILED_VERIFICATION:	/* = CURLE_SSL_CACERT: CA, expiry, host name */
	case CURLE_SSL_ISSUER_ERROR:
		return HTTP_FAIL_CERT;
	case CURLE_SSL_CACERT_BADFILE:
		return HTTP_FAIL_CAFILE;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
		return HTTP_FAIL_TLS;
	default:
		return HTTP_FAIL_OTHER;
	}
}

const char *http_fail_str(enum http_fail fail)
{
	switch (fail) {
	case HTTP_OK: return "ok";
	case HTTP_FAIL_RESOLVE: return "host name not found";
	case HTTP_FAIL_CONNECT: return "cannot connect";
	case HTTP_FAIL_TIMEOUT: return "timed out";
	case HTTP_FAIL_RESET: return "connection reset or response cut short";
	case HTTP_FAIL_CERT: return "certificate not trusted";
	case HTTP_FAIL_CAFILE: return "cannot read the CA file";
	case HTTP_FAIL_TLS: return "TLS failure";
	case HTTP_FAIL_OVERFLOW: return "response longer than asked for";
	case HTTP_FAIL_SOURCE: return "the file to send is shorter than its size or unreadable";
	default: return "transfer failed";
	}
}

void http_resp_release(struct http_resp *resp)
{
	if (!resp)
		return;
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

int http_do(struct http *h, const struct http_req *req, struct http_resp *resp)
{
	struct curl_slist *hl = NULL, *t;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct xfer x = { .req = req, .resp = resp };
	CURLcode rc;
	size_t i;
	int ok = 1;

	memset(resp, 0, sizeof(*resp));
	resp->content_length = -1;
	x.c = take_handle(h);
	if (!x.c) {
		resp->fail = HTTP_FAIL_OTHER;
		snprintf(resp->err, sizeof(resp->err), "out of memory");
		return -EIO;
	}
	for (i = 0; i < req->nheaders && ok; i++) {
		t = curl_slist_append(hl, req->headers[i]);
		ok = t != NULL;
		hl = t ? t : hl;
	}
	/* No "Expect: 100-continue" round trip, no form content type, and
	 * libcurl's own Accept is not signed, so leave it out. */
	if (ok && (t = curl_slist_append(hl, "Expect:")))
		hl = t;
	if (ok && (t = curl_slist_append(hl, "Accept:")))
		hl = t;
	if (req->has_body && ok && (t = curl_slist_append(hl, "Content-Type:")))
		hl = t;

	curl_easy_setopt(x.c, CURLOPT_URL, req->url);
	curl_easy_setopt(x.c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x.c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(x.c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(x.c, CURLOPT_CONNECTTIMEOUT, h->cfg.connect_timeout_s);
	curl_easy_setopt(x.c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(x.c, CURLOPT_LOW_SPEED_TIME, h->cfg.stall_timeout_s);
	curl_easy_setopt(x.c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(x.c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(x.c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x.c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(x.c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->cfg.ca_file)
		curl_easy_setopt(x.c, CURLOPT_CAINFO, h->cfg.ca_file);
	curl_easy_setopt(x.c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(x.c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(x.c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(x.c, CURLOPT_HEADERDATA, &x);
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(x.c, CURLOPT_NOBODY, 1L);
	} else if (req->has_body) {
		curl_easy_setopt(x.c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(x.c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		if (req->body_len > 64u << 10)
			curl_easy_setopt(x.c, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_UPLOAD_BUFFER);
		curl_easy_setopt(x.c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(x.c, CURLOPT_READDATA, &x);
		curl_easy_setopt(x.c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(x.c, CURLOPT_SEEKDATA, &x);
		if (strcmp(req->method, "PUT") != 0)
			curl_easy_setopt(x.c, CURLOPT_CUSTOMREQUEST, req->method);
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(x.c, CURLOPT_CUSTOMREQUEST, req->method);
	}
	if (req->dst && req->dst_cap > 64u << 10)
		curl_easy_setopt(x.c, CURLOPT_BUFFERSIZE, HTTP_DOWNLOAD_BUFFER);

	rc = ok ? curl_easy_perform(x.c) : CURLE_OUT_OF_MEMORY;
	curl_easy_getinfo(x.c, CURLINFO_RESPONSE_CODE, &resp->status);
	curl_slist_free_all(hl);
	resp->fail = classify(rc, x.overflow, x.source_short);
	if (resp->fail != HTTP_OK) {
		snprintf(resp->err, sizeof(resp->err), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
		/* The bytes in DST are not a response: say nothing arrived. */
		resp->got = 0;
	}
	curl_easy_setopt(x.c, CURLOPT_ERRORBUFFER, NULL);	/* errbuf is about to go */
	give_handle(h, x.c, resp->fail == HTTP_OK);
	return resp->fail == HTTP_OK ? 0 : -EIO;
}
