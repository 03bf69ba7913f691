/*
 * vblob_request.c - one Vercel Blob request, made and retried as the
 * official client does, and what its answer means (see vblob_internal.h).
 *
 * Every request goes through vb_run(): it adds the headers the official
 * client sends (Bearer token, x-api-version 12, a request id and attempt
 * number), performs it with http_do(), and retries what the client retries.
 * An operation describes its request in a struct vb_op, with a check() run
 * on each 2xx answer that makes a wrong answer (not JSON, another pathname,
 * a cut or mislabelled range, bytes that do not hash to the key) a
 * retryable failure, so one budget covers network faults and lying
 * answers.  Replies are JSON, read with jansson.  Failures are logged once,
 * when the operation gives up, naming the operation, the key, the status
 * and the service's error code; retries as warnings.  The token is only
 * ever in the Authorization line, which is wiped after each request.
 *
 */
#include "backend/be_util.h"
#include "backend/be_vblob.h"
#include "backend/vblob_internal.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VB_API_VERSION "12"
#define VB_RETRY_AFTER_MAX_MS 60000

/* ---- what an answer means ---------------------------------------------------- */

int vblob_errno(long status, const char *code, enum http_fail fail)
{
	static const struct { const char *code; int err; } map[] = {
		{ "forbidden", EACCES }, { "store_suspended", EACCES }, { "not_allowed", EACCES },
		{ "oidc_environment_not_allowed", EACCES },
		{ "not_found", ENOENT }, { "store_not_found", ENXIO }, { "file_too_large", EFBIG },
		{ "bad_request", EINVAL }, { "content_type_not_allowed", EINVAL },
		{ "client_token_pathname_mismatch", EINVAL }, { "client_token_expired", EACCES },
		{ "client_token_not_allowed", EACCES },
		{ "rate_limited", EIO }, { "service_unavailable", EIO }, { "internal_server_error", EIO },
		{ "precondition_failed", EIO },
	};
	size_t i;

	if (fail != HTTP_OK)
		return -EIO;
	if (status >= 200 && status < 300)
		return 0;
	for (i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(code, map[i].code) == 0)
			return -map[i].err;
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	if (status >= 400 && status < 500 && status != 429)
		return -EINVAL;
	return -EIO;
}

int vblob_retryable(const char *code, enum http_fail fail)
{
	if (fail != HTTP_OK)
		return fail != HTTP_FAIL_CERT && fail != HTTP_FAIL_CAFILE && fail != HTTP_FAIL_TLS &&
		       fail != HTTP_FAIL_OVERFLOW;
	return !strcmp(code, "unknown_error") || !strcmp(code, "service_unavailable") ||
	       !strcmp(code, "internal_server_error") || !strcmp(code, "rate_limited");
}

/* ---- request machinery ------------------------------------------------------- */

/* Percent-encodes S as URLSearchParams does for a value (all but
 * [A-Za-z0-9*-._]); malloc'd, NULL when out of memory. */
char *vb_qenc(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *p = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '*') {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

/* API + PATH + "?NAME=" + the encoded VALUE (when NAME); malloc'd. */
char *vb_api_url(struct vblob *v, const char *path, const char *name, const char *value)
{
	char *enc = value ? vb_qenc(value) : NULL, *url = NULL;

	if (value && !enc)
		return NULL;
	if (asprintf(&url, "%s%s%s%s%s%s", v->api, path, name ? "?" : "", name ? name : "", name ? "=" : "",
		     enc ? enc : "") < 0)
		url = NULL;
	free(enc);
	return url;
}

int vb_fail(struct vb_op *o, int *retry, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->bad_answer, sizeof(o->bad_answer), fmt, ap);
	va_end(ap);
	*retry = 1;
	return rc;
}

/* Reads the {"error": {"code", "message"}} of an error answer; a body that
 * is not one says "unknown_error", as the official client reads it. */
static void read_error(struct vb_op *o)
{
	json_t *j = o->resp.body_len ? json_loadb(o->resp.body, o->resp.body_len, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	snprintf(o->code, sizeof(o->code), "%s", code ? code : "unknown_error");
	snprintf(o->message, sizeof(o->message), "%s", msg ? msg : "");
	json_decref(j);
}

/* One attempt of O.  Returns 0 on a 2xx answer that passed O's check, else
 * -errno with *RETRY saying whether another attempt may help. */
static int attempt_once(struct vblob *v, struct vb_op *o, int attempt, int *retry)
{
	const char *lines[VB_MAX_HEADERS + 5];
	char *auth = NULL, reqid[128], att[48];
	size_t n = 0, i;
	int rc;

	*retry = 0;
	o->code[0] = o->message[0] = '\0';
	http_resp_release(&o->resp);
	json_decref(o->json);
	o->json = NULL;
	/* the blob host wants the token only for private blobs */
	if ((!o->blob_host || strcmp(v->access, "private") == 0) &&
	    asprintf(&auth, "authorization: Bearer %s", v->token) < 0)
		return -ENOMEM;
	if (auth)
		lines[n++] = auth;
	if (!o->blob_host) {
		snprintf(reqid, sizeof(reqid), "x-api-blob-request-id: %s:%lld:%x", v->store,
			 (long long)time(NULL) * 1000, atomic_fetch_add(&v->seed, 7919u));
		snprintf(att, sizeof(att), "x-api-blob-request-attempt: %d", attempt - 1);
		lines[n++] = "x-api-version: " VB_API_VERSION;
		lines[n++] = reqid;
		lines[n++] = att;
	}
	for (i = 0; i < o->nheaders; i++)
		lines[n++] = o->headers[i];
	{
		struct http_req req = {
			.method = o->method, .url = o->url, .headers = lines, .nheaders = n,
			.body = o->body, .body_len = o->body_len, .has_body = o->has_body,
			.dst = o->dst, .dst_cap = o->dst_cap,
		};

		rc = http_do(v->http, &req, &o->resp);
	}
	if (auth) {
		OPENSSL_cleanse(auth, strlen(auth));
		free(auth);
	}
	if (rc) {
		*retry = vblob_retryable("", o->resp.fail);
		return vblob_errno(0, "", o->resp.fail);
	}
	if (o->resp.status >= 200 && o->resp.status < 300) {
		if (!o->blob_host) {
			o->json = json_loadb(o->resp.body ? o->resp.body : "", o->resp.body_len, 0, NULL);
			if (!o->json)
				return vb_fail(o, retry, -EIO, "the API answered %ld with a body that is not JSON",
					       o->resp.status);
		}
		return o->check ? o->check(v, o, retry) : 0;
	}
	if (o->blob_host && o->resp.status == 416)
		return -ERANGE;	/* a read at or past the end: an answer (see get_url) */
	if (o->blob_host) {
		/* plain statuses: 404 missing, 403 refused */
		snprintf(o->code, sizeof(o->code), "%s", o->resp.status >= 500 || o->resp.status == 429 ?
			 "unknown_error" : "");
	} else {
		read_error(o);
	}
	*retry = vblob_retryable(o->code, HTTP_OK);
	return vblob_errno(o->resp.status, o->code, HTTP_OK);
}

/* What went wrong in O's last attempt, for a log line. */
static void describe(const struct vb_op *o, char *buf, size_t len)
{
	if (o->resp.fail != HTTP_OK)
		snprintf(buf, len, "%s (%s)", http_fail_str(o->resp.fail), o->resp.err);
	else if (o->bad_answer[0])
		snprintf(buf, len, "%s", o->bad_answer);
	else
		snprintf(buf, len, "%s answered %ld%s%s%s%.200s", o->blob_host ? "the blob host" : "vercel blob",
			 o->resp.status, o->code[0] ? " " : "", o->code, o->message[0] ? ": " : "", o->message);
}

static const char *hint(const struct vb_op *o)
{
	if (!strcmp(o->code, "forbidden") || (o->blob_host && o->resp.status == 403))
		return ": the store refused the token; check BLOB_READ_WRITE_TOKEN or -o vblob_token_file";
	if (!strcmp(o->code, "store_not_found"))
		return ": the store does not exist";
	if (!strcmp(o->code, "store_suspended"))
		return ": the store is suspended";
	return "";
}

/* Runs O with retries.  Returns 0 (O->resp and O->json hold the answer) or
 * -errno after one log line (a debug line for a quiet 404).  Release O
 * with vb_op_release() either way. */
int vb_run(struct vblob *v, struct vb_op *o)
{
	unsigned seed = (unsigned)time(NULL) ^ atomic_fetch_add(&v->seed, 7919u);
	int attempt, rc = -EIO, retry = 0, max = o->max_attempts ? o->max_attempts : v->x.retry.max_attempts;
	char k[BACKEND_SHOWN_KEY_MAX], what[400];

	backend_shown_key(o->key, k);
	for (attempt = 1; attempt <= max; attempt++) {
		o->bad_answer[0] = '\0';
		rc = attempt_once(v, o, attempt, &retry);
		if (rc == 0 || !retry || attempt == max)
			break;
		{
			long ra = s3_retry_after_ms(o->resp.retry_after, (long)time(NULL));
			long wait = s3_backoff_ms(&v->x.retry, attempt + 1, ra, &seed);

			/* the service's retry-after is honoured whole (the backoff
			 * policy caps it at 4 * cap), up to a minute */
			if (ra > wait)
				wait = ra < VB_RETRY_AFTER_MAX_MS ? ra : VB_RETRY_AFTER_MAX_MS;

			describe(o, what, sizeof(what));
			log_warn("vblob: %s '%s': %s; retry %d of %d in %ld ms", o->op, k, what, attempt + 1, max - 1,
				 wait);
			backend_sleep_ms(wait);
		}
	}
	o->attempts = attempt > max ? max : attempt;
	if (rc) {
		char tries[48] = "";

		describe(o, what, sizeof(what));
		if ((rc == -ENOENT && o->quiet_404) || rc == -ERANGE || o->quiet) {
			log_debug("vblob: cannot %s '%s': %s", o->op, k, what);
		} else {
			if (o->attempts > 1)
				snprintf(tries, sizeof(tries), " (after %d attempts)", o->attempts);
			log_error("vblob: cannot %s '%s': %s%s%s", o->op, k, what, tries, hint(o));
		}
	}
	return rc;
}

void vb_op_release(struct vb_op *o)
{
	http_resp_release(&o->resp);
	json_decref(o->json);
	o->json = NULL;
}
