/*
 * s3_err.c - the meaning of S3 answers: errno, retry, backoff, XML fields
 * (libxml2), HTTP dates (libcurl's curl_getdate), part sizes.  Pure
 * functions; no I/O, no logging.
 */
#include "backend/s3_err.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int code_is(const char *code, const char *const *list)
{
	for (; *list; list++)
		if (code && strcmp(code, *list) == 0)
			return 1;
	return 0;
}

static const char *const auth_codes[] = {
	"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "RequestTimeTooSkewed",
	"ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AccountProblem",
	"AllAccessDisabled", "InvalidSecurity", "MissingSecurityHeader", NULL
};

static const char *const transient_codes[] = {
	"SlowDown", "InternalError", "RequestTimeout", "ServiceUnavailable", "Throttling",
	"ThrottlingException", "RequestThrottled", "OperationAborted", NULL
};

int s3_status_to_errno(long status, const char *code, enum http_fail fail)
{
	if (fail != HTTP_OK || status == 0)
		return -EIO;
	if (status >= 200 && status < 300)
		return 0;
	if (code_is(code, auth_codes))
		return -EACCES;
	if (code && strcmp(code, "NoSuchBucket") == 0)
		return -ENXIO;
	if (code && (strcmp(code, "QuotaExceeded") == 0 || strcmp(code, "StorageFull") == 0))
		return -ENOSPC;
	if (code && strcmp(code, "EntityTooLarge") == 0)
		return -EFBIG;
	if (code && strcmp(code, "KeyTooLongError") == 0)
		return -ENAMETOOLONG;
	if (s3_is_retryable(status, code, fail))
		return -EIO;
	switch (status) {
	case 301: case 302: case 307: case 308:
		return -EINVAL;
	case 401: case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EBUSY;
	case 507:
		return -ENOSPC;
	}
	if (status >= 400 && status < 500)
		return -EINVAL;
	return -EIO;
}

int s3_is_retryable(long status, const char *code, enum http_fail fail)
{
	if (fail != HTTP_OK)	/* a certificate does not become trusted by asking again, */
		return fail != HTTP_FAIL_TLS && fail != HTTP_FAIL_CERT && fail != HTTP_FAIL_CAFILE &&
		       fail != HTTP_FAIL_SOURCE;	/* nor a short source whole */
	if (code_is(code, transient_codes))
		return 1;
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

long s3_backoff_ms(const struct s3_retry_policy *p, int attempt, long retry_after_ms, unsigned *seed)
{
	long ceiling = p->base_ms, wait;
	int i;

	for (i = 2; i < attempt && ceiling < p->cap_ms; i++)
		ceiling *= 2;
	if (ceiling > p->cap_ms)
		ceiling = p->cap_ms;
	wait = ceiling > 0 ? (long)((double)rand_r(seed) / RAND_MAX * (double)ceiling) : 0;
	if (retry_after_ms > 0) {
		if (retry_after_ms > 4 * p->cap_ms)
			retry_after_ms = 4 * p->cap_ms;
		if (wait < retry_after_ms)
			wait = retry_after_ms;
	}
	return wait;
}

long s3_retry_after_ms(const char *value, long now)
{
	const long most = LONG_MAX / 1000;	/* in seconds, so that ms do not overflow */
	char *end;
	time_t t;
	long v;

	if (!value || !*value)
		return -1;
	v = strtol(value, &end, 10);
	if (end != value && *end == '\0')
		return v < 0 ? -1 : v > most ? most * 1000 : v * 1000;
	t = curl_getdate(value, NULL);
	if (t == -1)
		return -1;
	if (t <= now)
		return 0;
	return t - now > most ? most * 1000 : (long)(t - now) * 1000;
}

/* ---- XML ----------------------------------------------------------------- */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();	/* once, before threads parse at the same time */
}

xmlNode *s3_xml_parse(const char *body, size_t len)
{
	xmlDoc *doc;
	xmlNode *root;

	if (!body || len == 0 || len > INT_MAX)
		return NULL;
	pthread_once(&xml_once, xml_init);
	doc = xmlReadMemory(body, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (!root || doc->intSubset || doc->extSubset) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return root;
}

void s3_xml_free(xmlNode *root)
{
	if (root)
		xmlFreeDoc(root->doc);
}

int s3_xml_is(const xmlNode *e, const char *name)
{
	return e && e->type == XML_ELEMENT_NODE && strcmp((const char *)e->name, name) == 0;
}

xmlNode *s3_xml_child(const xmlNode *parent, const xmlNode *after, const char *name)
{
	xmlNode *n = after ? after->next : parent ? parent->children : NULL;

	for (; n; n = n->next)
		if (s3_xml_is(n, name))
			return n;
	return NULL;
}

int s3_xml_get(const xmlNode *parent, const char *name, char *out, size_t outlen)
{
	xmlNode *e = s3_xml_child(parent, NULL, name);
	xmlChar *text;
	size_t n;

	if (outlen)
		out[0] = '\0';
	if (!e)
		return 0;
	text = xmlNodeGetContent(e);
	n = text ? strlen((const char *)text) : 0;
	if (!text || n >= outlen) {
		xmlFree(text);
		return -1;
	}
	memcpy(out, text, n + 1);
	xmlFree(text);
	return 1;
}

uint64_t s3_part_size(uint64_t size, uint64_t want)
{
	uint64_t ps = want < S3_MIN_PART ? S3_MIN_PART : want;

	if (size > S3_MAX_OBJECT)
		return 0;
	if (ps > S3_MAX_PART)
		ps = S3_MAX_PART;
	while ((size + ps - 1) / ps > S3_MAX_PARTS)
		ps += 1ull << 20;
	return ps;
}

void s3_pace_init(struct s3_pace *p, int start, int cap)
{
	memset(p, 0, sizeof(*p));
	p->limit = p->prev = p->start = start > 0 ? start : 1;
	p->cap = cap > p->limit ? cap : p->limit;
	p->frozen = p->limit >= p->cap;
}

int s3_pace_done(struct s3_pace *p, uint64_t len, double now)
{
	double rate;

	if (p->frozen)
		return p->limit;
	p->done++;
	if (p->done <= p->prev) {	/* settling: these began under the previous limit */
		if (p->done == p->prev) {
			p->t0 = now;
			p->bytes = 0;
		}
		return p->limit;
	}
	p->bytes += len;
	if (p->done < p->prev + p->limit)
		return p->limit;
	rate = now > p->t0 ? (double)p->bytes / (now - p->t0) : (double)p->bytes * 1e9;
	if (p->rate_prev > 0 && rate < p->rate_prev * (100 + S3_PACE_GAIN) / 100) {
		p->limit = p->prev;	/* more in flight did not pay */
		p->frozen = 1;
		return p->limit;
	}
	p->rate_prev = rate;
	p->prev = p->limit;
	if (p->limit >= p->cap) {
		p->frozen = 1;
		return p->limit;
	}
	p->limit = 2 * p->limit < p->cap ? 2 * p->limit : p->cap;
	p->done = 0;
	return p->limit;
}
