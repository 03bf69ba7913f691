/*
 * be_s3.c - the S3 backend: requests, signing, retries and the operations.
 *
 * Every request goes through s3_run(), which builds the URL, signs with
 * sigv4_sign(), performs it with http_do(), and applies the one retry
 * policy of s3_err.h.  An operation describes its request in a struct
 * s3_op, including a check() run on each 2xx answer; a check that finds the
 * answer wrong (a cut or mislabelled range, bytes that do not hash to the
 * object's SHA-256, a list that is not XML) makes that attempt a retryable
 * failure, so the same budget covers network faults and lying answers.
 * Failures are logged once, when the operation gives up, naming the
 * operation, the key, the status, the S3 error code and a hint; retries are
 * logged as warnings.  No log line contains a credential or a signature.
 *
 * Multipart uploads live in be_s3_multipart.c, the shared request
 * machinery in s3_request.c (both through s3_internal.h); this file holds
 * the single-request operations and the opening of a store.
 */
#include "backend/be_s3.h"
#include "backend/be_util.h"
#include "backend/s3_creds.h"
#include "backend/s3_internal.h"
#include "util/log.h"
#include "util/sha256.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- single-request operations ------------------------------------------- */

static int s3_put_single(struct s3 *s, const char *key, int fd, uint64_t size, const char *sha256_hex)
{
	struct s3_op o = { .op = "put", .key = key, .method = "PUT", .has_body = 1,
			   .body_from_fd = 1, .body_fd = fd, .body_len = size };
	char hash[SHA256_HEX_LEN + 1], k[80];
	int rc;

	backend_shown_key(key, k);
	/* The bytes go from the file to the socket (no copy of the object in
	 * memory); they are hashed here in one pass when the signature needs
	 * it or the caller's hash is to be checked. */
	if (!s->unsigned_payload || sha256_hex) {
		rc = backend_hash_source(fd, 0, size, hash, NULL);
		if (rc) {
			log_error("s3: cannot put '%s': reading the source: %s", k,
				  rc == -EIO ? "it is shorter than its size" : strerror(-rc));
			return rc;
		}
		if (sha256_hex && strcmp(sha256_hex, hash) != 0) {
			log_error("s3: cannot put '%s': the source does not hash to the SHA-256 it was given", k);
			return -EIO;
		}
		o.payload_hash = s->unsigned_payload ? SIGV4_UNSIGNED_PAYLOAD : hash;
		o.headers[o.nheaders++] = (struct sigv4_header){ "x-amz-meta-sha256", hash };
	} else if (size && (rc = backend_read_source(fd, hash, 1, 0)) != 0) {
		log_error("s3: cannot put '%s': reading the source: %s", k,
			  rc == -EIO ? "it is shorter than its size" : strerror(-rc));
		return rc;
	}
	o.name = s3_object_name(s, key);
	if (!o.name)
		return -ENOMEM;
	rc = s3_run(s, &o);
	s3_op_release(&o);
	free(o.name);
	return rc;
}

static int s3_put(struct backend *b, const char *key, int fd, uint64_t size, const char *sha256_hex)
{
	struct s3 *s = to_s3(b);
	char k[80];
	int rc = s3_key_check(s, "put", key);

	if (rc)
		return rc;
	if (size > S3_MAX_OBJECT) {
		backend_shown_key(key, k);
		log_error("s3: cannot put '%s': %llu bytes is over S3's limit of 5 TiB per object", k,
			  (unsigned long long)size);
		return -EFBIG;
	}
	if (size > s->threshold || size > S3_MAX_SINGLE_PUT)
		return s3_put_multipart(s, key, fd, size, sha256_hex);
	return s3_put_single(s, key, fd, size, sha256_hex);
}

/* The SHA-256 the whole object must hash to, when known: from the key
 * (content-addressed) or from the answer's x-amz-meta-sha256. */
static const char *expected_sha(const char *key, const struct http_resp *r)
{
	const char *sha = backend_key_sha(key);
	size_t i;

	if (sha)
		return sha;
	if (strlen(r->meta_sha256) == SHA256_HEX_LEN) {
		for (i = 0; i < SHA256_HEX_LEN; i++)
			if (!isxdigit((unsigned char)r->meta_sha256[i]))
				return NULL;
		return r->meta_sha256;
	}
	return NULL;
}

struct get_ctx {
	uint64_t off;
	size_t len;
	uint64_t total;		/* the object's size, once known */
	int verified;		/* the whole object was hashed and matched */
	int hash_known;		/* the object's SHA-256 is known (so it can be verified) */
};

static int check_get(struct s3 *s, struct s3_op *o, int *retry)
{
	struct get_ctx *g = o->arg;
	struct http_resp *r = &o->resp;
	const char *want;
	uint64_t total;

	if (r->status == 206 && strcmp(r->content_range, "bytes 0-0/0") == 0)
		return 0;	/* the empty object (see attempt_once) */
	if (backend_check_range(r->status, r->content_range, r->content_length, r->got, g->off, g->len, &total,
				o->bad_answer, sizeof(o->bad_answer)) != 0)
		return s3_fail(o, retry, -EIO, "%s", o->bad_answer);
	g->total = total;
	want = expected_sha(o->key, r);
	g->hash_known = want != NULL;
	if (g->off == 0 && r->got == total && want) {
		int ok = backend_sha_matches(o->dst, r->got, want);

		if (ok < 0)
			return ok;
		if (!ok)
			return s3_fail(o, retry, -EIO, "the %zu bytes received do not hash to the object's SHA-256",
				       r->got);
		g->verified = 1;
	}
	return 0;
}

static int s3_head_quiet(struct s3 *s, const char *key, uint64_t *size, int quiet);

/* Objects up to this size are read whole whenever part of one is asked
 * for, so that every byte handed out was checked against the hash. */
#define S3_VERIFY_WHOLE_MAX (256u << 10)

static int get_small_whole(struct s3 *s, const char *key, uint64_t off, size_t len, void *dst,
			   size_t *got, uint64_t total)
{
	struct get_ctx g = { .off = 0, .len = (size_t)total };
	struct s3_op o = { .op = "get", .key = key, .method = "GET", .check = check_get, .arg = &g };
	char range[64], *buf = malloc(total ? total : 1);
	int rc;

	*got = 0;
	if (!buf)
		return -ENOMEM;
	o.dst = buf;
	o.dst_cap = (size_t)total;
	snprintf(range, sizeof(range), "bytes=0-%llu", (unsigned long long)(total - 1));
	o.headers[o.nheaders++] = (struct sigv4_header){ "range", range };
	o.name = s3_object_name(s, key);
	rc = o.name ? s3_run(s, &o) : -ENOMEM;
	if (rc == 0 && (!g.verified || o.resp.got != total))
		rc = -EIO;	/* changed size between the two answers */
	if (rc == 0) {
		size_t n = off >= total ? 0 : total - off < len ? (size_t)(total - off) : len;

		memcpy(dst, buf + off, n);
		*got = n;
	}
	s3_op_release(&o);
	free(o.name);
	free(buf);
	return rc;
}

static int s3_get_range(struct backend *b, const char *key, uint64_t off, size_t len, void *dst, size_t *got)
{
	struct s3 *s = to_s3(b);
	struct get_ctx g = { .off = off, .len = len };
	struct s3_op o = { .op = "get", .key = key, .method = "GET", .check = check_get, .arg = &g,
			   .dst = dst, .dst_cap = len, .quiet_404 = 1 };
	char range[64];
	uint64_t size;
	int rc;

	*got = 0;
	rc = s3_key_check(s, "get", key);
	if (rc)
		return rc;
	if (len == 0)	/* nothing to read, but a missing key is still missing */
		return s3_head_quiet(s, key, &size, 1);
	if (off > UINT64_MAX - len)
		len = (size_t)(UINT64_MAX - off);
	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	o.headers[o.nheaders++] = (struct sigv4_header){ "range", range };
	o.name = s3_object_name(s, key);
	if (!o.name)
		return -ENOMEM;
	rc = s3_run(s, &o);
	if (rc == 0)
		*got = o.resp.got;
	else if (rc == -EINVAL && o.resp.status == 416)
		rc = 0;		/* at or past the end: nothing, like pread */
	s3_op_release(&o);
	free(o.name);
	/* A part of a small object cannot be checked against the object's
	 * hash; the whole of it can, at little cost: fetch, check, copy. */
	if (rc == 0 && !g.verified && g.total <= S3_VERIFY_WHOLE_MAX && *got < g.total && g.hash_known)
		rc = get_small_whole(s, key, off, len, dst, got, g.total);
	return rc;
}

static int s3_head_quiet(struct s3 *s, const char *key, uint64_t *size, int quiet)
{
	struct s3_op o = { .op = "head", .key = key, .method = "HEAD", .quiet_404 = quiet };
	int rc;

	o.name = s3_object_name(s, key);
	if (!o.name)
		return -ENOMEM;
	rc = s3_run(s, &o);
	if (rc == 0) {
		if (o.resp.content_length < 0) {
			log_error("s3: cannot head '%s': no Content-Length in the answer", key);
			rc = -EIO;
		} else {
			*size = (uint64_t)o.resp.content_length;
		}
	}
	s3_op_release(&o);
	free(o.name);
	return rc;
}

int s3_head_size(struct s3 *s, const char *key, uint64_t *size)
{
	return s3_head_quiet(s, key, size, 1);
}

static int s3_head(struct backend *b, const char *key, struct backend_stat *st)
{
	struct s3 *s = to_s3(b);
	uint64_t size = 0;
	int rc = s3_key_check(s, "head", key);

	if (rc)
		return rc;
	rc = s3_head_quiet(s, key, &size, 1);
	if (rc == 0)
		st->size = size;
	return rc;
}

static int s3_del(struct backend *b, const char *key)
{
	struct s3 *s = to_s3(b);
	struct s3_op o = { .op = "delete", .key = key, .method = "DELETE", .quiet_404 = 1 };
	int rc = s3_key_check(s, "delete", key);

	if (rc)
		return rc;
	o.name = s3_object_name(s, key);
	if (!o.name)
		return -ENOMEM;
	rc = s3_run(s, &o);
	if (rc == -ENOENT)
		rc = 0;		/* already gone: delete is idempotent */
	s3_op_release(&o);
	free(o.name);
	return rc;
}

int s3_check_xml(struct s3 *s, struct s3_op *o, int *retry)
{
	const char *root = o->arg;

	s3_xml_free(o->xml);	/* an earlier attempt's */
	o->xml = s3_xml_parse(o->resp.body, o->resp.body_len);
	if (!o->xml)
		return s3_fail(o, retry, -EIO, "the answer is not a %s XML document", root);
	if (s3_xml_is(o->xml, "Error")) {
		s3_xml_get(o->xml, "Code", o->code, sizeof(o->code));
		return s3_fail(o, retry, -EIO, "a 200 answer holding error %s", o->code);
	}
	if (!s3_xml_is(o->xml, root))
		return s3_fail(o, retry, -EIO, "the answer is not a %s XML document", root);
	return 0;
}

/* One ListObjectsV2 page into ACC; TOKEN is the continuation token in and
 * out ("" when the listing is complete). */
static int list_page(struct s3 *s, const char *prefix, const char *full, char *token, size_t toklen,
		     struct backend_list_acc *acc)
{
	struct s3_op o = { .op = "list", .key = prefix, .method = "GET", .check = s3_check_xml,
			   .arg = "ListBucketResult" };
	char key[S3_NAME_MAX + 1], size_s[32], trunc[8];
	size_t plen = strlen(s->prefix);
	xmlNode *c = NULL;
	int rc;

	o.params[o.nparams++] = (struct sigv4_param){ "list-type", "2" };
	o.params[o.nparams++] = (struct sigv4_param){ "prefix", full };
	if (token[0])
		o.params[o.nparams++] = (struct sigv4_param){ "continuation-token", token };
	rc = s3_run(s, &o);
	if (rc) {
		s3_op_release(&o);
		return rc;
	}
	while (rc == 0 && (c = s3_xml_child(o.xml, c, "Contents"))) {
		if (s3_xml_get(c, "Key", key, sizeof(key)) != 1 || strncmp(key, s->prefix, plen) != 0)
			continue;
		s3_xml_get(c, "Size", size_s, sizeof(size_s));
		rc = backend_list_add(acc, key + plen, strtoull(size_s, NULL, 10));
	}
	s3_xml_get(o.xml, "IsTruncated", trunc, sizeof(trunc));
	token[0] = '\0';
	if (rc == 0 && strcmp(trunc, "true") == 0 &&
	    (s3_xml_get(o.xml, "NextContinuationToken", token, toklen) != 1 || !token[0])) {
		log_error("s3: cannot list '%s': a truncated listing without a continuation token", prefix);
		rc = -EIO;
	}
	s3_op_release(&o);
	return rc;
}

/* S3 lists in key order, but not every S3-compatible server does (s3rver
 * walks its folders): the keys are gathered and sorted here, as the local
 * backend does. */
static int s3_list(struct backend *b, const char *prefix, backend_list_cb cb, void *arg)
{
	struct s3 *s = to_s3(b);
	struct backend_list_acc acc = { 0 };
	char *full = NULL, token[1200] = "";
	int rc;

	if (!prefix)
		prefix = "";
	if (asprintf(&full, "%s%s", s->prefix, prefix) < 0)
		return -ENOMEM;
	do
		rc = list_page(s, prefix, full, token, sizeof(token), &acc);
	while (rc == 0 && token[0]);
	free(full);
	return backend_list_emit(&acc, rc, cb, arg);
}

/* ---- opening --------------------------------------------------------------- */

static void s3_free(struct backend *b)
{
	struct s3 *s = to_s3(b);

	http_free(s->http);
	free(s->scheme);
	free(s->host);
	free(s->vhost);
	free(s->bucket);
	free(s->prefix);
	free(s->region);
	free(s->ca_file);
	backend_wipe_free(s->access_key);
	backend_wipe_free(s->secret_key);
	backend_wipe_free(s->session_token);
	free(s);
}

static const struct backend_ops s3_ops = {
	.name = "s3",
	.put = s3_put,
	.get_range = s3_get_range,
	.head = s3_head,
	.del = s3_del,
	.list = s3_list,
	.space = NULL,
	.free = s3_free,
};

struct s3_opts {
	char endpoint[512], region[64], ca_file[4096];
	int path_style, unsigned_payload;
	struct backend_xfer_opts x;
};

static int url_opt(void *arg, const char *name, const char *v)
{
	struct s3_opts *op = arg;
	int rc = backend_xfer_opt(&op->x, name, v);

	if (rc <= 0)
		return rc;
	if (!strcmp(name, "endpoint"))
		return snprintf(op->endpoint, sizeof(op->endpoint), "%s", v) < (int)sizeof(op->endpoint) ? 0 : -1;
	if (!strcmp(name, "region"))
		return snprintf(op->region, sizeof(op->region), "%s", v) < (int)sizeof(op->region) ? 0 : -1;
	if (!strcmp(name, "path_style"))
		return op->path_style = atoi(v) ? 1 : -1, 0;
	if (!strcmp(name, "unsigned_payload"))
		return op->unsigned_payload = atoi(v) ? 1 : -1, 0;
	if (!strcmp(name, "ca_file"))
		return snprintf(op->ca_file, sizeof(op->ca_file), "%s", v) < (int)sizeof(op->ca_file) && *v ? 0 : -1;
	return -1;
}

/* Parses "bucket[/prefix][?opts]" into S and OP. */
static int parse_url(struct s3 *s, struct s3_opts *op, const char *rest, const char *url)
{
	int rc = backend_url_split(rest, url, url_opt, op, &s->bucket, &s->prefix);

	if (rc == 0 && !s->bucket[0]) {
		log_error("cannot open store '%s': no bucket name after s3://", url);
		rc = -EINVAL;
	}
	return rc;
}

/* A bucket name that can be a DNS label under the endpoint's host. */
static int dns_bucket(const char *b, int https)
{
	size_t n = strlen(b), i;

	if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
		return 0;
	for (i = 0; i < n; i++) {
		if (islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-')
			continue;
		if (b[i] == '.' && !https)	/* dots break the TLS wildcard */
			continue;
		return 0;
	}
	return 1;
}

static int ip_or_localhost(const char *host)
{
	char h[256];
	struct in6_addr a6;
	struct in_addr a4;
	char *colon;

	snprintf(h, sizeof(h), "%s", host);
	if (h[0] == '[')
		return 1;
	colon = strrchr(h, ':');
	if (colon)
		*colon = '\0';
	return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1 ||
	       strcmp(h, "localhost") == 0;
}

static int set_endpoint(struct s3 *s, struct s3_opts *op, const char *url)
{
	const char *ep = op->endpoint, *sep;
	size_t n;

	if (!ep[0])
		snprintf(op->endpoint, sizeof(op->endpoint), "https://s3.%s.amazonaws.com", s->region);
	sep = strstr(ep, "://");
	if (!sep || (strncmp(ep, "http", 4) != 0) || (sep - ep != 4 && sep - ep != 5)) {
		log_error("cannot open store '%s': the endpoint must be http://HOST[:PORT] or https://...", url);
		return -EINVAL;
	}
	s->scheme = strndup(ep, (size_t)(sep - ep));
	n = strcspn(sep + 3, "/?#");
	s->host = strndup(sep + 3, n);
	if (!s->scheme || !s->host)
		return -ENOMEM;
	if (!s->host[0] || strchr(s->host, '@')) {
		log_error("cannot open store '%s': bad endpoint host", url);
		return -EINVAL;
	}
	if (op->path_style == 0 && (ip_or_localhost(s->host) || !dns_bucket(s->bucket, !strcmp(s->scheme, "https")))) {
		log_info("s3: bucket '%s' at %s: using path-style addressing", s->bucket, s->host);
		op->path_style = 1;
	}
	s->path_style = op->path_style == 1;
	if (!s->path_style && !dns_bucket(s->bucket, !strcmp(s->scheme, "https"))) {
		log_error("cannot open store '%s': bucket name '%s' cannot be a host name; use -o s3_path_style",
			  url, s->bucket);
		return -EINVAL;
	}
	if (asprintf(&s->vhost, "%s.%s", s->bucket, s->host) < 0) {
		s->vhost = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int set_creds(struct s3 *s, const struct backend_config *cfg, const char *url)
{
	struct s3_creds c;
	int rc;

	if (cfg && cfg->s3_access_key && cfg->s3_secret_key) {
		s->access_key = strdup(cfg->s3_access_key);
		s->secret_key = strdup(cfg->s3_secret_key);
		s->session_token = cfg->s3_session_token && *cfg->s3_session_token ?
				   strdup(cfg->s3_session_token) : NULL;
		return s->access_key && s->secret_key ? 0 : -ENOMEM;
	}
	rc = s3_creds_lookup(&c);
	if (rc == -ENOENT) {
		log_error("cannot open store '%s': no S3 credentials: set AWS_ACCESS_KEY_ID and "
			  "AWS_SECRET_ACCESS_KEY, or write ~/.aws/credentials", url);
		return -EACCES;
	}
	if (rc == -EINVAL) {
		log_error("cannot open store '%s': the credentials in %s lack a key or a secret", url, c.source);
		return -EACCES;
	}
	if (rc)
		return rc;
	log_info("s3: credentials from %s", c.source);
	s->access_key = c.access_key;
	s->secret_key = c.secret_key;
	s->session_token = c.session_token;
	return 0;
}

/* Which CAs to trust: -o s3_ca_file (CFG), else the URL's ca_file=, else
 * $AWS_CA_BUNDLE (as the AWS CLI and SDKs read it), else the system's.  A
 * file that cannot be read fails here, naming where it came from. */
static int set_ca_file(struct s3 *s, const struct s3_opts *op, const struct backend_config *cfg, const char *url)
{
	const char *env = getenv("AWS_CA_BUNDLE");
	const char *path = NULL;
	FILE *f;

	if (cfg && cfg->s3_ca_file && *cfg->s3_ca_file) {
		path = cfg->s3_ca_file;
		s->ca_from = "-o s3_ca_file";
	} else if (op->ca_file[0]) {
		path = op->ca_file;
		s->ca_from = "the store URL's ca_file=";
	} else if (env && *env) {
		path = env;
		s->ca_from = "AWS_CA_BUNDLE";
	}
	if (!path)
		return 0;
	f = fopen(path, "r");
	if (!f) {
		int e = errno;

		log_error("cannot open store '%s': cannot read the CA file '%s' from %s: %s", url, path,
			  s->ca_from, strerror(e));
		return -e;
	}
	fclose(f);
	s->ca_file = strdup(path);
	return s->ca_file ? 0 : -ENOMEM;
}

/* One list request that tells whether the bucket is there and ours. */
static int probe(struct s3 *s, const char *url)
{
	struct s3_op o = { .op = "open", .key = "", .method = "GET", .check = s3_check_xml,
			   .arg = "ListBucketResult", .max_attempts = 3 };
	int rc;

	char *probe_prefix = NULL;

	/* A prefix no key has: the answer is small however full the bucket
	 * (and s3rver fails max-keys=1 on a prefix that has keys). */
	if (asprintf(&probe_prefix, "%s.mvaultfs-probe", s->prefix) < 0)
		return -ENOMEM;
	o.params[o.nparams++] = (struct sigv4_param){ "list-type", "2" };
	o.params[o.nparams++] = (struct sigv4_param){ "prefix", probe_prefix };
	o.quiet_cert = 1;	/* one line, below */
	rc = s3_run(s, &o);
	free(probe_prefix);
	if (rc && (o.resp.fail == HTTP_FAIL_CERT || o.resp.fail == HTTP_FAIL_CAFILE)) {
		char why[600];

		log_error("cannot open store '%s': %s", url, s3_cert_advice(s, &o, why, sizeof(why)));
		rc = -EACCES;
	} else if (rc && o.resp.fail != HTTP_OK && o.resp.fail != HTTP_FAIL_OVERFLOW &&
		   o.resp.fail != HTTP_FAIL_TLS) {
		log_error("cannot open store '%s': cannot reach %s://%s: %s", url, s->scheme, s->host,
			  http_fail_str(o.resp.fail));
		rc = -EHOSTUNREACH;
	} else if (rc && (o.bad_answer[0] || (o.non_xml && !o.code[0] && o.resp.status != 404 &&
					      o.resp.status != 403))) {
		log_error("cannot open store '%s': %s://%s does not answer like an S3 service", url,
			  s->scheme, s->host);
		rc = -EPROTO;
	} else if (rc == -ENOENT) {
		log_error("cannot open store '%s': bucket '%s' not found at %s", url, s->bucket, s->host);
		rc = -ENXIO;
	} else if (rc) {
		log_error("cannot open store '%s': the store refused (see the line above)", url);
	}
	s3_op_release(&o);
	return rc;
}

struct backend *s3_backend_open(const char *rest, const char *url, const struct backend_config *cfg)
{
	struct s3_opts op = { .region = "" };
	struct http_config hc = { 0 };
	struct backend_xfer x;
	struct s3 *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->base.ops = &s3_ops;
	atomic_init(&s->seed, (unsigned)getpid());
	rc = parse_url(s, &op, rest, url);
	if (rc)
		goto fail;
	if (cfg) {
		if (cfg->s3_endpoint && *cfg->s3_endpoint)
			snprintf(op.endpoint, sizeof(op.endpoint), "%s", cfg->s3_endpoint);
		if (cfg->s3_region && *cfg->s3_region)
			snprintf(op.region, sizeof(op.region), "%s", cfg->s3_region);
		if (cfg->s3_path_style)
			op.path_style = cfg->s3_path_style;
		if (cfg->s3_unsigned_payload)
			op.unsigned_payload = cfg->s3_unsigned_payload;
		if (cfg->s3_part_size)
			op.x.part_size = cfg->s3_part_size;
		if (cfg->s3_multipart_threshold)
			op.x.threshold = cfg->s3_multipart_threshold;
		if (cfg->s3_concurrency > 0)
			op.x.concurrency = cfg->s3_concurrency;
		if (cfg->s3_retries > 0)
			op.x.retries = cfg->s3_retries;
		if (cfg->s3_timeout > 0)
			op.x.timeout = cfg->s3_timeout;
	}
	s->region = strdup(op.region[0] ? op.region : "us-east-1");
	if (!s->region) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = set_endpoint(s, &op, url);
	if (rc)
		goto fail;
	/* Over TLS the body's own SHA-256 in the signature protects nothing
	 * TLS does not (DECISIONS, "The store over TLS"), and costs a hash
	 * of every byte sent. */
	s->unsigned_payload = op.unsigned_payload ? op.unsigned_payload > 0 : !strcmp(s->scheme, "https");
	rc = set_ca_file(s, &op, cfg, url);
	if (rc)
		goto fail;
	hc.ca_file = s->ca_file;
	if (op.x.part_size && op.x.part_size < S3_MIN_PART) {
		log_warn("s3: part size raised to S3's minimum of 5 MiB");
		op.x.part_size = S3_MIN_PART;
	}
	x = backend_xfer_settle(&op.x, 16u << 20, &hc);
	s->part_size = x.part_size;
	s->threshold = x.threshold;
	s->concurrency = x.concurrency;
	s->retry = x.retry;
	rc = set_creds(s, cfg, url);
	if (rc)
		goto fail;
	s->http = http_new(&hc);
	if (!s->http) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = probe(s, url);
	if (rc)
		goto fail;
	log_info("s3: store '%s' open: bucket '%s' at %s://%s (%s style, region %s), part size %llu MiB,"
		 " %d parts in flight, %s payloads%s%s%s%s", url, s->bucket, s->scheme, s->host,
		 s->path_style ? "path" : "virtual-host", s->region, (unsigned long long)(s->part_size >> 20),
		 s->concurrency, s->unsigned_payload ? "unsigned" : "signed",
		 s->ca_file ? ", trusting the CAs in '" : "", s->ca_file ? s->ca_file : "",
		 s->ca_file ? "' from " : "", s->ca_file ? s->ca_from : "");
	return &s->base;
fail:
	s3_free(&s->base);
	errno = -rc;
	return NULL;
}
