/*
 * s3_request.c - the request machinery every S3 operation goes through.
 *
 * s3_run() builds the URL, signs with sigv4_sign(), performs the request
 * with http_do(), runs the operation's check on each 2xx answer and applies
 * the one retry policy of s3_err.h; a failure is logged once, when the
 * operation gives up, with a hint of what to do.  Split from be_s3.c (the
 * operations and the opening of a store), whose top comment says more.
 */
#include "backend/be_util.h"
#include "backend/s3_internal.h"
#include "util/log.h"
#include "util/sha256.h"

#include <openssl/crypto.h>
#include <string.h>


/* ---- request machinery ------------------------------------------------- */

/* Builds the request URL and the canonical path of O into OUT_URL and
 * OUT_URI (both malloc'd).  Query parameters appear in the URL encoded
 * exactly as the signer encodes them. */
static int build_url(struct s3 *s, const struct s3_op *o, char **out_url, char **out_uri)
{
	char *enc = NULL, *uri = NULL, *url = NULL, *q = NULL;
	size_t qlen = 0, i;
	int rc = -ENOMEM;

	enc = sigv4_uri_encode(o->name ? o->name : "", o->name ? strlen(o->name) : 0, 1);
	if (!enc)
		goto out;
	if (s->path_style) {
		if (asprintf(&uri, "/%s%s%s", s->bucket, o->name ? "/" : "", enc) < 0)
			uri = NULL;
	} else if (asprintf(&uri, "/%s", enc) < 0) {
		uri = NULL;
	}
	if (!uri)
		goto out;
	for (i = 0; i < o->nparams; i++) {
		const char *v = o->params[i].value;
		char *en = sigv4_uri_encode(o->params[i].name, strlen(o->params[i].name), 0);
		char *ev = v && *v ? sigv4_uri_encode(v, strlen(v), 0) : strdup("");
		char *nq;

		if (!en || !ev) {
			free(en);
			free(ev);
			goto out;
		}
		nq = realloc(q, qlen + strlen(en) + strlen(ev) + 3);
		if (!nq) {
			free(en);
			free(ev);
			goto out;
		}
		q = nq;
		qlen += (size_t)sprintf(q + qlen, "%s%s%s%s", i ? "&" : "", en, *ev ? "=" : "", ev);
		free(en);
		free(ev);
	}
	if (asprintf(&url, "%s://%s%s%s%s", s->scheme, s->path_style ? s->host : s->vhost, uri,
		     q ? "?" : "", q ? q : "") < 0)
		url = NULL;
	if (url)
		rc = 0;
out:
	free(enc);
	free(q);
	if (rc) {
		free(uri);
		return rc;
	}
	*out_url = url;
	*out_uri = uri;
	return 0;
}

/* One attempt of O.  Returns 0 on a 2xx answer that passed O's check, else
 * -errno with *RETRY saying whether another attempt may help. */
static int attempt_once(struct s3 *s, struct s3_op *o, const char *payload_hash, int *retry)
{
	struct sigv4_header h[S3_OP_MAX_HEADERS + 4];
	const char *lines[S3_OP_MAX_HEADERS + 4];
	char hl[S3_OP_MAX_HEADERS + 4][320], amz[17], *url = NULL, *uri = NULL, *auth = NULL, *authline = NULL;
	struct sigv4_creds cr = { s->access_key, s->secret_key, s->session_token };
	time_t now = time(NULL);
	size_t nh = 0, i;
	int rc;

	*retry = 0;
	o->code[0] = o->message[0] = '\0';
	http_resp_release(&o->resp);
	rc = build_url(s, o, &url, &uri);
	if (rc)
		return rc;
	sigv4_amz_date(now, amz);
	h[nh++] = (struct sigv4_header){ "host", s->path_style ? s->host : s->vhost };
	h[nh++] = (struct sigv4_header){ "x-amz-date", amz };
	h[nh++] = (struct sigv4_header){ "x-amz-content-sha256", payload_hash };
	if (s->session_token)
		h[nh++] = (struct sigv4_header){ "x-amz-security-token", s->session_token };
	for (i = 0; i < o->nheaders; i++)
		h[nh++] = o->headers[i];
	{
		struct sigv4_request r = {
			.method = o->method, .canonical_uri = uri, .params = o->params, .nparams = o->nparams,
			.headers = h, .nheaders = nh, .payload_hash = payload_hash,
			.region = s->region, .service = "s3", .now = now,	/* x-amz-date's second */
		};

		auth = sigv4_sign(&r, &cr, NULL);
	}
	if (!auth || asprintf(&authline, "Authorization: %s", auth) < 0)
		authline = NULL;
	if (auth) {
		OPENSSL_cleanse(auth, strlen(auth));
		free(auth);
	}
	if (!authline) {
		free(url);
		free(uri);
		return -ENOMEM;
	}
	/* The session token can be long: it has its own line, the rest fit. */
	for (i = 0; i < nh; i++) {
		if (h[i].value == s->session_token) {
			lines[i] = NULL;
			continue;
		}
		snprintf(hl[i], sizeof(hl[i]), "%s: %s", h[i].name, h[i].value);
		lines[i] = hl[i];
	}
	{
		char *tokline = NULL;
		size_t n = 0;
		const char *all[S3_OP_MAX_HEADERS + 6];

		for (i = 0; i < nh; i++) {
			if (lines[i])
				all[n++] = lines[i];
			else if (asprintf(&tokline, "x-amz-security-token: %s", s->session_token) >= 0)
				all[n++] = tokline;
		}
		all[n++] = authline;
		{
			struct http_req req = {
				.method = o->method, .url = url, .headers = all, .nheaders = n,
				.body = o->body, .body_len = o->body_len, .has_body = o->has_body,
				.body_from_fd = o->body_from_fd, .body_fd = o->body_fd, .body_off = o->body_off,
				.dst = o->dst, .dst_cap = o->dst_cap,
			};

			rc = http_do(s->http, &req, &o->resp);
		}
		if (tokline) {
			OPENSSL_cleanse(tokline, strlen(tokline));
			free(tokline);
		}
	}
	OPENSSL_cleanse(authline, strlen(authline));
	free(authline);
	free(url);
	free(uri);

	if (rc && o->dst && o->resp.status == 206 && o->resp.fail == HTTP_FAIL_RESET &&
	    strstr(o->resp.content_range, "/0") && o->resp.content_range[strlen(o->resp.content_range) - 2] == '/') {
		/* "bytes 0-0/0" with a body that never comes: some servers
		 * (s3rver) answer a range of an empty object so.  The object is
		 * empty; check_get() takes it from here. */
		o->resp.fail = HTTP_OK;
		o->resp.got = 0;
		rc = 0;
	}
	if (rc) {
		*retry = s3_is_retryable(0, "", o->resp.fail);
		return s3_status_to_errno(0, "", o->resp.fail);
	}
	if (o->resp.status >= 200 && o->resp.status < 300) {
		if (!o->check)
			return 0;
		rc = o->check(s, o, retry);
		return rc;
	}
	/* An error answer: its code, if it says one. */
	if (o->resp.body_len) {
		xmlNode *err = s3_xml_parse(o->resp.body, o->resp.body_len);

		if (err) {
			s3_xml_get(err, "Code", o->code, sizeof(o->code));
			s3_xml_get(err, "Message", o->message, sizeof(o->message));
			s3_xml_free(err);
		} else {
			o->non_xml = 1;
		}
	}
	*retry = s3_is_retryable(o->resp.status, o->code, HTTP_OK);
	return s3_status_to_errno(o->resp.status, o->code, HTTP_OK);
}

/* What to do about a certificate the store's endpoint showed and we do not
 * trust (HTTP_FAIL_CERT), or a CA file that cannot be used
 * (HTTP_FAIL_CAFILE); "" for any other failure.  Not retried: asking again
 * cannot make a certificate trusted. */
const char *s3_cert_advice(struct s3 *s, const struct s3_op *o, char *buf, size_t len)
{
	if (o->resp.fail == HTTP_FAIL_CERT)
		snprintf(buf, len, "the certificate of %s://%s was not trusted (%s): give the CA that signed it"
			 " with -o s3_ca_file=FILE (or AWS_CA_BUNDLE), or name the endpoint as its certificate"
			 " does; trusted now: %s%s%s%s", s->scheme, s->host, o->resp.err,
			 s->ca_file ? "the CAs in '" : "the system's CAs", s->ca_file ? s->ca_file : "",
			 s->ca_file ? "' from " : "", s->ca_file ? s->ca_from : "");
	else if (o->resp.fail == HTTP_FAIL_CAFILE)
		snprintf(buf, len, "cannot use the CA file '%s' from %s (%s): give a PEM file of CA certificates",
			 s->ca_file ? s->ca_file : "", s->ca_from ? s->ca_from : "libcurl", o->resp.err);
	else
		buf[0] = '\0';
	return buf;
}

/* A hint that tells the user what to do about a failure. */
static const char *hint(struct s3 *s, struct s3_op *o, char *buf, size_t len)
{
	const char *c = o->code;

	if (o->resp.fail == HTTP_FAIL_CERT || o->resp.fail == HTTP_FAIL_CAFILE) {
		char why[600];

		snprintf(buf, len, ": %s", s3_cert_advice(s, o, why, sizeof(why)));
	} else if (!strcmp(c, "RequestTimeTooSkewed"))
		snprintf(buf, len, ": this machine's clock is off by more than 15 minutes from the store's"
			 " (store time: %s); set the clock right", o->resp.date[0] ? o->resp.date : "unknown");
	else if (!strcmp(c, "InvalidAccessKeyId"))
		snprintf(buf, len, ": the store does not know this access key; check the credentials");
	else if (!strcmp(c, "SignatureDoesNotMatch"))
		snprintf(buf, len, ": the secret key is wrong for this access key; check the credentials");
	else if (!strcmp(c, "ExpiredToken") || !strcmp(c, "InvalidToken"))
		snprintf(buf, len, ": the session token is expired or invalid; renew the credentials");
	else if (!strcmp(c, "AccessDenied"))
		snprintf(buf, len, ": these credentials may not do this on bucket '%s'", s->bucket);
	else if (!strcmp(c, "NoSuchBucket"))
		snprintf(buf, len, ": bucket '%s' does not exist at %s", s->bucket, s->host);
	else if (!strcmp(c, "AuthorizationHeaderMalformed") || o->resp.bucket_region[0])
		snprintf(buf, len, ": the bucket is in region '%s', not '%s'; set -o s3_region=",
			 o->resp.bucket_region[0] ? o->resp.bucket_region : "another", s->region);
	else if (o->resp.status == 301 || o->resp.status == 307 || !strcmp(c, "PermanentRedirect"))
		snprintf(buf, len, ": the store redirects; set the bucket's region (s3_region) or try s3_path_style");
	else if (o->non_xml)
		snprintf(buf, len, " (the answer was not XML: is the endpoint an S3 service?)");
	else
		buf[0] = '\0';
	return buf;
}

/* What went wrong in O's last attempt, for a log line. */
static void describe(const struct s3_op *o, char *buf, size_t len)
{
	if (o->resp.fail != HTTP_OK)
		snprintf(buf, len, "%s (%s)", http_fail_str(o->resp.fail), o->resp.err);
	else if (o->bad_answer[0])
		snprintf(buf, len, "%s", o->bad_answer);
	else
		snprintf(buf, len, "s3 answered %ld%s%s%s%.200s", o->resp.status, o->code[0] ? " " : "",
			 o->code, o->message[0] ? ": " : "", o->message);
}

static void log_failure(struct s3 *s, struct s3_op *o, int rc)
{
	char k[80], h[700], what[400], tries[48] = "";
	int cert = o->resp.fail == HTTP_FAIL_CERT || o->resp.fail == HTTP_FAIL_CAFILE;

	backend_shown_key(o->key, k);
	describe(o, what, sizeof(what));
	if ((rc == -ENOENT && o->quiet_404) || o->quiet || (cert && o->quiet_cert)) {
		log_debug("s3: cannot %s '%s': %s", o->op, k, what);
		return;
	}
	if (o->attempts > 1)
		snprintf(tries, sizeof(tries), " (after %d attempts)", o->attempts);
	if (cert)	/* the advice quotes libcurl's words already */
		log_error("s3: cannot %s '%s'%s", o->op, k, hint(s, o, h, sizeof(h)));
	else
		log_error("s3: cannot %s '%s': %s%s%s", o->op, k, what, tries, hint(s, o, h, sizeof(h)));
}

int s3_run(struct s3 *s, struct s3_op *o)
{
	char hash[SHA256_HEX_LEN + 1];
	const char *payload = o->payload_hash;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)atomic_fetch_add(&s->seed, 7919u);
	int attempt, rc = -EIO, retry = 0, max = o->max_attempts ? o->max_attempts : s->retry.max_attempts;

	if (!payload) {
		if (!o->has_body || o->body_len == 0) {
			payload = SIGV4_EMPTY_SHA256;
		} else if (s->unsigned_payload) {
			payload = SIGV4_UNSIGNED_PAYLOAD;
		} else if (o->body_from_fd) {
			rc = backend_hash_source(o->body_fd, o->body_off, o->body_len, hash, NULL);
			if (rc) {
				log_error("s3: cannot %s '%s': reading the source: %s", o->op, o->key,
					  rc == -EIO ? "it is shorter than its size" : strerror(-rc));
				return rc;
			}
			payload = hash;
		} else {
			struct sha256 sh;

			if (sha256_init(&sh))
				return -ENOMEM;
			sha256_update(&sh, o->body, o->body_len);
			sha256_final(&sh, hash);
			sha256_release(&sh);
			payload = hash;
		}
	}
	for (attempt = 1; attempt <= max; attempt++) {
		o->bad_answer[0] = '\0';
		o->non_xml = 0;
		rc = attempt_once(s, o, payload, &retry);
		if (rc == 0 || !retry || attempt == max)
			break;
		{
			long ra = s3_retry_after_ms(o->resp.retry_after, (long)time(NULL));
			long wait = s3_backoff_ms(&s->retry, attempt + 1, ra, &seed);
			char k[80], what[400];

			backend_shown_key(o->key, k);
			describe(o, what, sizeof(what));
			log_warn("s3: %s '%s': %s; retry %d of %d in %ld ms", o->op, k, what, attempt + 1, max - 1,
				 wait);
			backend_sleep_ms(wait);
		}
	}
	o->attempts = attempt > max ? max : attempt;
	o->transient = rc != 0 && retry;
	if (rc)
		log_failure(s, o, rc);
	return rc;
}

void s3_op_release(struct s3_op *o)
{
	http_resp_release(&o->resp);
	s3_xml_free(o->xml);
	o->xml = NULL;
}

int s3_fail(struct s3_op *o, int *retry, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->bad_answer, sizeof(o->bad_answer), fmt, ap);
	va_end(ap);
	*retry = 1;
	return rc;
}

char *s3_object_name(struct s3 *s, const char *key)
{
	char *name;

	if (asprintf(&name, "%s%s", s->prefix, key) < 0)
		return NULL;
	return name;
}

int s3_key_check(struct s3 *s, const char *op, const char *key)
{
	char k[80];

	if (backend_key_valid(key) && strlen(s->prefix) + strlen(key) <= S3_NAME_MAX)
		return 0;
	backend_shown_key(key, k);
	log_error("s3: cannot %s '%s': invalid key", op, key ? k : "(null)");
	return -EINVAL;
}
