/*
 * s3_err.c - the meaning of S3 answers: errno, retry, backoff, XML fields,
 * part sizes.  Pure functions; no I/O, no logging.
 */
#include "backend/s3_err.h"

#include <errno.h>
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
	struct tm tm;
	char *end;
	long v;

	if (!value || !*value)
		return -1;
	v = strtol(value, &end, 10);
	if (end != value && *end == '\0')
		return v >= 0 ? v * 1000 : -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end)
		return -1;
	v = (long)timegm(&tm) - now;
	return v > 0 ? v * 1000 : 0;
}

/* ---- XML ----------------------------------------------------------------- */

int s3_xml_is_xml(const char *body, size_t len)
{
	size_t i = 0;

	if (!body)
		return 0;
	if (len >= 3 && (unsigned char)body[0] == 0xef && (unsigned char)body[1] == 0xbb &&
	    (unsigned char)body[2] == 0xbf)
		i = 3;	/* a UTF-8 byte order mark */
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
		i++;
	if (i + 1 >= len || body[i] != '<')
		return 0;
	return body[i + 1] == '?' || (body[i + 1] >= 'A' && body[i + 1] <= 'Z') ||
	       (body[i + 1] >= 'a' && body[i + 1] <= 'z');
}

static const char *find(const char *p, const char *end, const char *needle, size_t nlen)
{
	for (; p && p + nlen <= end; p++) {
		p = memchr(p, needle[0], (size_t)(end - p));
		if (!p || p + nlen > end)
			return NULL;
		if (memcmp(p, needle, nlen) == 0)
			return p;
	}
	return NULL;
}

int s3_xml_block(const char **pos, const char *end, const char *name, const char **start, const char **stop)
{
	char open[80], close[80];
	size_t nlen = strlen(name);
	const char *p = *pos, *o, *c;

	if (nlen + 4 > sizeof(open))
		return 0;
	open[0] = '<';
	memcpy(open + 1, name, nlen);
	close[0] = '<';
	close[1] = '/';
	memcpy(close + 2, name, nlen);
	close[nlen + 2] = '>';
	while ((o = find(p, end, open, nlen + 1))) {
		const char *after = o + nlen + 1;

		if (after < end && (*after == '>' || *after == ' ' || *after == '/')) {
			const char *gt = memchr(after, '>', (size_t)(end - after));

			if (!gt)
				return 0;
			if (gt[-1] == '/') {	/* <Name/>: empty */
				*start = *stop = gt + 1;
				*pos = gt + 1;
				return 1;
			}
			c = find(gt + 1, end, close, nlen + 3);
			if (!c)
				return 0;
			*start = gt + 1;
			*stop = c;
			*pos = c + nlen + 3;
			return 1;
		}
		p = after;
	}
	return 0;
}

/* Decodes entities of [s, e) into OUT; -1 when it does not fit. */
static int decode(const char *s, const char *e, char *out, size_t outlen)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' }, { "&quot;", '"' }, { "&apos;", '\'' },
	};
	size_t n = 0, i;

	while (s < e) {
		char buf[4];
		size_t blen = 1;

		buf[0] = *s;
		if (*s == '&') {
			const char *semi = memchr(s, ';', (size_t)(e - s));
			size_t elen = semi ? (size_t)(semi - s) + 1 : 0;
			int done = 0;

			for (i = 0; semi && i < sizeof(ents) / sizeof(ents[0]) && !done; i++) {
				if (strlen(ents[i].ent) == elen && memcmp(s, ents[i].ent, elen) == 0) {
					buf[0] = ents[i].c;
					s += elen;
					done = 1;
				}
			}
			if (!done && semi && elen > 3 && s[1] == '#') {
				unsigned long cp = s[2] == 'x' ? strtoul(s + 3, NULL, 16) : strtoul(s + 2, NULL, 10);

				/* UTF-8 of the code point */
				if (cp < 0x80) {
					buf[0] = (char)cp;
				} else if (cp < 0x800) {
					buf[0] = (char)(0xc0 | (cp >> 6));
					buf[1] = (char)(0x80 | (cp & 0x3f));
					blen = 2;
				} else if (cp < 0x10000) {
					buf[0] = (char)(0xe0 | (cp >> 12));
					buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
					buf[2] = (char)(0x80 | (cp & 0x3f));
					blen = 3;
				} else {
					buf[0] = (char)(0xf0 | (cp >> 18));
					buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
					buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
					buf[3] = (char)(0x80 | (cp & 0x3f));
					blen = 4;
				}
				s += elen;
				done = 1;
			}
			if (!done)
				s++;
		} else {
			s++;
		}
		if (n + blen >= outlen)
			return -1;
		memcpy(out + n, buf, blen);
		n += blen;
	}
	out[n] = '\0';
	return 0;
}

int s3_xml_get(const char **pos, const char *end, const char *name, char *out, size_t outlen)
{
	const char *s, *e;

	if (outlen)
		out[0] = '\0';
	if (!s3_xml_block(pos, end, name, &s, &e))
		return 0;
	return decode(s, e, out, outlen) == 0 ? 1 : -1;
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
