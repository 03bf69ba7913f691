/*
 * sigv4.c - AWS Signature Version 4 (HMAC-SHA256) request signing.
 *
 * The four steps of the specification, each a function: the canonical
 * request (method, path, sorted encoded query, sorted lowercase headers,
 * signed header list, payload hash), the string to sign (algorithm, time,
 * scope, hash of the canonical request), the signing key (an HMAC chain over
 * date, region, service and "aws4_request"), and the signature.  Strings are
 * built in a growable buffer; any allocation failure makes the whole result
 * NULL, so no half-built signature can leave this file.
 *
 * The secret key only ever enters HMAC; it is not copied anywhere that
 * outlives the call except the stack buffer of the first HMAC key, which is
 * wiped.
 */
#include "backend/sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable string ------------------------------------------------ */

struct sb {
	char *s;
	size_t len, cap;
	int failed;
};

static void sb_add(struct sb *b, const char *p, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *s;

		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->failed = 1;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_chr(struct sb *b, char c)
{
	sb_add(b, &c, 1);
}

/* Takes the string out of B: NULL when anything failed. */
static char *sb_take(struct sb *b)
{
	if (b->failed) {
		free(b->s);
		return NULL;
	}
	if (!b->s)
		return strdup("");
	return b->s;
}

/* ---- encoding ----------------------------------------------------------- */

static int unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static void sb_encode(struct sb *b, const char *in, size_t len, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			sb_chr(b, (char)c);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			sb_add(b, e, 3);
		}
	}
}

char *sigv4_uri_encode(const char *in, size_t len, int keep_slash)
{
	struct sb b = { 0 };

	sb_encode(&b, in, len, keep_slash);
	return sb_take(&b);
}

static void to_hex(const unsigned char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void sigv4_amz_date(time_t now, char out[17])
{
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- canonical query and headers ---------------------------------------- */

struct enc_param {
	char *name, *value;
};

static int param_cmp(const void *a, const void *b)
{
	const struct enc_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/* name=value&... with both sides encoded, sorted by encoded name then value. */
static void canonical_query(struct sb *out, const struct sigv4_param *params, size_t n)
{
	struct enc_param *e;
	size_t i;

	if (n == 0)
		return;
	e = calloc(n, sizeof(*e));
	if (!e) {
		out->failed = 1;
		return;
	}
	for (i = 0; i < n; i++) {
		const char *v = params[i].value ? params[i].value : "";

		e[i].name = sigv4_uri_encode(params[i].name, strlen(params[i].name), 0);
		e[i].value = sigv4_uri_encode(v, strlen(v), 0);
		if (!e[i].name || !e[i].value)
			out->failed = 1;
	}
	if (!out->failed) {
		qsort(e, n, sizeof(*e), param_cmp);
		for (i = 0; i < n; i++) {
			if (i)
				sb_chr(out, '&');
			sb_str(out, e[i].name);
			sb_chr(out, '=');
			sb_str(out, e[i].value);
		}
	}
	for (i = 0; i < n; i++) {
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
}

struct canon_header {
	char *name;	/* lowercased */
	char *value;	/* trimmed, spaces collapsed */
	size_t order;	/* original position: duplicates keep their order */
};

static int header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s);
	char *p;

	for (p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* Trims VALUE and collapses each run of whitespace (newlines of a folded
 * header included) into one space. */
static char *trim_dup(const char *v)
{
	struct sb b = { 0 };
	int space = 0;

	while (*v && isspace((unsigned char)*v))
		v++;
	for (; *v; v++) {
		if (isspace((unsigned char)*v)) {
			space = 1;
			continue;
		}
		if (space)
			sb_chr(&b, ' ');
		space = 0;
		sb_chr(&b, *v);
	}
	return sb_take(&b);
}

/* Appends the canonical headers block to OUT and the signed header list to
 * SIGNED.  Duplicate names are joined with ',' in their original order. */
static void canonical_headers(struct sb *out, struct sb *signed_list,
			      const struct sigv4_header *hdrs, size_t n)
{
	struct canon_header *h = calloc(n ? n : 1, sizeof(*h));
	size_t i;

	if (!h) {
		out->failed = 1;
		return;
	}
	for (i = 0; i < n; i++) {
		h[i].name = lower_dup(hdrs[i].name);
		h[i].value = trim_dup(hdrs[i].value ? hdrs[i].value : "");
		h[i].order = i;
		if (!h[i].name || !h[i].value)
			out->failed = 1;
	}
	if (!out->failed) {
		qsort(h, n, sizeof(*h), header_cmp);
		for (i = 0; i < n; i++) {
			if (i && strcmp(h[i].name, h[i - 1].name) == 0) {
				sb_chr(out, ',');
				sb_str(out, h[i].value);
				continue;
			}
			if (i) {
				sb_chr(out, '\n');
				sb_chr(signed_list, ';');
			}
			sb_str(out, h[i].name);
			sb_chr(out, ':');
			sb_str(out, h[i].value);
			sb_str(signed_list, h[i].name);
		}
		if (n)
			sb_chr(out, '\n');
	}
	for (i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

/* ---- signing ------------------------------------------------------------- */

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int olen = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &olen);
}

static const char *find_header(const struct sigv4_request *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

char *sigv4_sign(const struct sigv4_request *req, const struct sigv4_creds *creds,
		 struct sigv4_debug *dbg)
{
	struct sb canon = { 0 }, sts = { 0 }, signed_list = { 0 }, auth = { 0 };
	unsigned char digest[32], k[32];
	char amz[17], date[9], hexbuf[65], scope[256], *key0 = NULL, *canon_s, *sts_s, *signed_s;
	size_t klen;

	if (dbg)
		memset(dbg, 0, sizeof(*dbg));
	if (!req || !creds || !req->method || !req->canonical_uri || !req->payload_hash ||
	    !req->region || !req->service || !creds->access_key || !creds->secret_key ||
	    !find_header(req, "host")) {
		errno = EINVAL;
		return NULL;
	}
	sigv4_amz_date(req->now, amz);
	memcpy(date, amz, 8);
	date[8] = '\0';
	if (snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, req->region, req->service) >=
	    (int)sizeof(scope)) {
		errno = EINVAL;
		return NULL;
	}

	/* 1: the canonical request. */
	sb_str(&canon, req->method);
	sb_chr(&canon, '\n');
	sb_str(&canon, req->canonical_uri);
	sb_chr(&canon, '\n');
	canonical_query(&canon, req->params, req->nparams);
	sb_chr(&canon, '\n');
	canonical_headers(&canon, &signed_list, req->headers, req->nheaders);
	sb_chr(&canon, '\n');
	sb_str(&canon, signed_list.failed ? "" : signed_list.s ? signed_list.s : "");
	sb_chr(&canon, '\n');
	sb_str(&canon, req->payload_hash);
	canon_s = sb_take(&canon);
	signed_s = sb_take(&signed_list);

	/* 2: the string to sign. */
	if (canon_s) {
		SHA256((const unsigned char *)canon_s, strlen(canon_s), digest);
		to_hex(digest, 32, hexbuf);
		sb_str(&sts, "AWS4-HMAC-SHA256\n");
		sb_str(&sts, amz);
		sb_chr(&sts, '\n');
		sb_str(&sts, scope);
		sb_chr(&sts, '\n');
		sb_str(&sts, hexbuf);
	} else {
		sts.failed = 1;
	}
	sts_s = sb_take(&sts);

	/* 3: the signing key; 4: the signature. */
	if (sts_s && signed_s) {
		klen = strlen(creds->secret_key) + 4;
		key0 = malloc(klen + 1);
	}
	if (key0) {
		memcpy(key0, "AWS4", 4);
		memcpy(key0 + 4, creds->secret_key, klen - 4 + 1);
		hmac(key0, klen, date, k);
		OPENSSL_cleanse(key0, klen);
		free(key0);
		hmac(k, 32, req->region, k);
		hmac(k, 32, req->service, k);
		hmac(k, 32, "aws4_request", k);
		hmac(k, 32, sts_s, digest);
		OPENSSL_cleanse(k, sizeof(k));
		to_hex(digest, 32, hexbuf);
		sb_str(&auth, "AWS4-HMAC-SHA256 Credential=");
		sb_str(&auth, creds->access_key);
		sb_chr(&auth, '/');
		sb_str(&auth, scope);
		sb_str(&auth, ", SignedHeaders=");
		sb_str(&auth, signed_s);
		sb_str(&auth, ", Signature=");
		sb_str(&auth, hexbuf);
	} else {
		auth.failed = 1;
	}
	if (dbg && !auth.failed) {
		dbg->canonical_request = canon_s;
		dbg->string_to_sign = sts_s;
		dbg->signed_headers = signed_s;
	} else {
		free(canon_s);
		free(sts_s);
		free(signed_s);
	}
	if (auth.failed)
		errno = ENOMEM;
	return sb_take(&auth);
}

void sigv4_debug_release(struct sigv4_debug *dbg)
{
	if (!dbg)
		return;
	free(dbg->canonical_request);
	free(dbg->string_to_sign);
	free(dbg->signed_headers);
	memset(dbg, 0, sizeof(*dbg));
}
