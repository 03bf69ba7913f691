/*
 * be_vblob.c - the Vercel Blob backend (see be_vblob.h).
 *
 * Every request goes through vb_run() (vblob_request.c), described by a
 * struct vb_op whose check() makes a wrong answer a retryable failure.
 *
 * DESIGN
 * Reads go to the blob host, at the URL the API gave for the pathname.
 * Without a random suffix that URL is the store's blob base followed by
 * the pathname, so the base is learned from any reply that carries a url
 * (put, head, list) and a read of a pathname never asked about costs no
 * extra round trip.  A 404 from a URL made so is confirmed by asking the
 * API (GET /?url=), whose answer is the truth.
 *
 * Multipart uploads are in be_vblob_multipart.c.
 */
#include "backend/be_util.h"
#include "backend/be_vblob.h"
#include "backend/vblob_internal.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VB_DEFAULT_API "https://vercel.com/api/blob"
#define VB_MAX_PATHNAME 950		/* the client's MAXIMUM_PATHNAME_LENGTH */
#define VB_PART_SIZE (8ull << 20)	/* the client's partSizeInBytes */
#define VB_MIN_PART (5ull << 20)

/* ---- pathnames and their URLs ------------------------------------------------ */

static int key_check(struct vblob *v, const char *op, const char *key)
{
	char k[BACKEND_SHOWN_KEY_MAX];

	if (backend_key_valid(key) && strlen(v->prefix) + strlen(key) <= VB_MAX_PATHNAME)
		return 0;
	backend_shown_key(key, k);
	log_error("vblob: cannot %s '%s': invalid key", op, key ? k : "(null)");
	return -EINVAL;
}

char *vb_pathname_of(struct vblob *v, const char *key)
{
	char *p;

	return asprintf(&p, "%s%s", v->prefix, key) < 0 ? NULL : p;
}

/* Learns the blob base from URL, the blob URL of PATHNAME. */
static void learn_base(struct vblob *v, const char *url, const char *pathname)
{
	size_t ul = strlen(url), pl = strlen(pathname);

	if (ul <= pl || strcmp(url + ul - pl, pathname) != 0 || url[ul - pl - 1] != '/')
		return;
	pthread_mutex_lock(&v->lock);
	if (!v->blob_base || strncmp(v->blob_base, url, ul - pl) != 0 || v->blob_base[ul - pl]) {
		free(v->blob_base);
		v->blob_base = strndup(url, ul - pl);
	}
	pthread_mutex_unlock(&v->lock);
}

/* The blob URL of PATHNAME from the learned base; NULL when none yet. */
static char *url_from_base(struct vblob *v, const char *pathname)
{
	char *url = NULL;

	pthread_mutex_lock(&v->lock);
	if (v->blob_base && asprintf(&url, "%s%s", v->blob_base, pathname) < 0)
		url = NULL;
	pthread_mutex_unlock(&v->lock);
	return url;
}

/* A put or complete answer: a blob under exactly our pathname. */
int vb_check_put(struct vblob *v, struct vb_op *o, int *retry)
{
	const char *want = o->arg;
	const char *p = json_string_value(json_object_get(o->json, "pathname"));
	const char *url = json_string_value(json_object_get(o->json, "url"));

	if (!p || !url)
		return vb_fail(o, retry, -EIO, "the answer names no pathname and url");
	if (strcmp(p, want) != 0) {
		*retry = 0;	/* a random suffix: asking again makes another */
		snprintf(o->bad_answer, sizeof(o->bad_answer), "the blob was stored as another pathname");
		return -EIO;
	}
	learn_base(v, url, want);
	return 0;
}

/* The headers of every write: private or public, no suffix, overwrite. */
size_t vb_put_headers(struct vblob *v, struct vb_op *o, char *access_line, size_t len)
{
	snprintf(access_line, len, "x-vercel-blob-access: %s", v->access);
	o->headers[o->nheaders++] = access_line;
	o->headers[o->nheaders++] = "x-add-random-suffix: 0";
	o->headers[o->nheaders++] = "x-allow-overwrite: 1";
	o->headers[o->nheaders++] = "x-content-type: application/octet-stream";
	return o->nheaders;
}

/* ---- head ------------------------------------------------------------------------ */

static int check_head(struct vblob *v, struct vb_op *o, int *retry)
{
	struct vb_head_ans *h = o->arg;
	json_t *size = json_object_get(o->json, "size");
	const char *url = json_string_value(json_object_get(o->json, "url"));
	const char *p = json_string_value(json_object_get(o->json, "pathname"));

	if (!json_is_integer(size) || json_integer_value(size) < 0 || !url || !p)
		return vb_fail(o, retry, -EIO, "a head answer without size, url and pathname");
	h->size = (uint64_t)json_integer_value(size);
	free(h->url);
	h->url = strdup(url);
	if (!h->url)
		return -ENOMEM;
	learn_base(v, url, p);
	return 0;
}

int vb_head_ans(struct vblob *v, const char *key, struct vb_head_ans *h, int quiet)
{
	struct vb_op o = { .op = "head", .key = key, .method = "GET", .check = check_head, .arg = h,
			   .quiet_404 = 1, .quiet = quiet };
	char *p = vb_pathname_of(v, key);
	int rc;

	if (!p)
		return -ENOMEM;
	o.url = vb_api_url(v, "/", "url", p);
	rc = o.url ? vb_run(v, &o) : -ENOMEM;
	vb_op_release(&o);
	free(o.url);
	free(p);
	return rc;
}

static int vb_head(struct backend *b, const char *key, struct backend_stat *st)
{
	struct vblob *v = to_vb(b);
	struct vb_head_ans h = { 0 };
	int rc = key_check(v, "head", key);

	if (rc)
		return rc;
	rc = vb_head_ans(v, key, &h, 0);
	if (rc == 0)
		st->size = h.size;
	free(h.url);
	return rc;
}

/* ---- put ------------------------------------------------------------------------- */

static int put_single(struct vblob *v, const char *key, int fd, uint64_t size, const char *sha256_hex)
{
	struct vb_op o = { .op = "put", .key = key, .method = "PUT", .has_body = 1, .check = vb_check_put };
	char k[BACKEND_SHOWN_KEY_MAX], access[64];
	char *buf = NULL, *p = NULL;
	int rc;

	backend_shown_key(key, k);
	if (size && !(buf = malloc(size)))
		return -ENOMEM;
	rc = backend_read_source(fd, buf, size, 0);
	if (rc) {
		log_error("vblob: cannot put '%s': reading the source: %s", k,
			  rc == -EIO ? "it is shorter than its size" : strerror(-rc));
		free(buf);
		return rc;
	}
	if (sha256_hex && (rc = backend_sha_matches(buf, size, sha256_hex)) != 1) {
		if (rc == 0)
			log_error("vblob: cannot put '%s': the source does not hash to the SHA-256 it was given", k);
		free(buf);
		return rc < 0 ? rc : -EIO;
	}
	p = vb_pathname_of(v, key);
	o.url = p ? vb_api_url(v, "/", "pathname", p) : NULL;
	vb_put_headers(v, &o, access, sizeof(access));
	o.arg = p;
	o.body = buf;
	o.body_len = size;
	rc = o.url ? vb_run(v, &o) : -ENOMEM;
	vb_op_release(&o);
	free(o.url);
	free(p);
	free(buf);
	return rc;
}

static int vb_put(struct backend *b, const char *key, int fd, uint64_t size, const char *sha256_hex)
{
	struct vblob *v = to_vb(b);
	int rc = key_check(v, "put", key);

	if (rc)
		return rc;
	if (size > (uint64_t)VB_MAX_PARTS * (5ull << 30)) {
		log_error("vblob: cannot put '%s': %llu bytes is over what one blob can hold", key,
			  (unsigned long long)size);
		return -EFBIG;
	}
	if (size > v->x.threshold)
		return vb_put_multipart(v, key, fd, size);
	return put_single(v, key, fd, size, sha256_hex);
}

/* ---- get_range ---------------------------------------------------------------- */

struct get_ctx {
	uint64_t off;
	size_t len;
	const char *want;	/* the SHA-256 of the whole blob, when the key names it */
};

static int check_get(struct vblob *v, struct vb_op *o, int *retry)
{
	struct get_ctx *g = o->arg;
	struct http_resp *r = &o->resp;
	uint64_t total;
	int ok;

	if (backend_check_range(r->status, r->content_range, r->content_length, r->got, g->off, g->len, &total,
				o->bad_answer, sizeof(o->bad_answer)) != 0)
		return vb_fail(o, retry, -EIO, "%s", o->bad_answer);
	if (g->want && g->off == 0 && r->got == total) {
		ok = backend_sha_matches(o->dst, r->got, g->want);
		if (ok < 0)
			return ok;
		if (!ok)
			return vb_fail(o, retry, -EIO, "the %zu bytes received do not hash to the blob's SHA-256",
				       r->got);
	}
	return 0;
}

/* One ranged GET of URL.  -ENOENT quietly when the blob host has none. */
static int get_url(struct vblob *v, const char *key, char *url, uint64_t off, size_t len, void *dst, size_t *got)
{
	struct get_ctx g = { .off = off, .len = len, .want = backend_key_sha(key) };
	struct vb_op o = { .op = "get", .key = key, .method = "GET", .url = url, .blob_host = 1,
			   .check = check_get, .arg = &g, .dst = dst, .dst_cap = len, .quiet_404 = 1 };
	char range[80];
	int rc;

	snprintf(range, sizeof(range), "range: bytes=%llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	o.headers[o.nheaders++] = range;
	rc = vb_run(v, &o);
	if (rc == -ERANGE)
		rc = 0;		/* OFF at or past the end: nothing to read */
	else if (rc == 0)
		*got = o.resp.got;
	vb_op_release(&o);
	return rc;
}

static int vb_get_range(struct backend *b, const char *key, uint64_t off, size_t len, void *dst, size_t *got)
{
	struct vblob *v = to_vb(b);
	struct vb_head_ans h = { 0 };
	char *p, *url;
	int rc;

	*got = 0;
	rc = key_check(v, "get", key);
	if (rc)
		return rc;
	if (len == 0) {	/* nothing to read, but a missing key is still missing */
		rc = vb_head_ans(v, key, &h, 1);
		free(h.url);
		return rc;
	}
	if (off > UINT64_MAX - len)
		len = (size_t)(UINT64_MAX - off);
	p = vb_pathname_of(v, key);
	if (!p)
		return -ENOMEM;
	url = url_from_base(v, p);
	rc = url ? get_url(v, key, url, off, len, dst, got) : -ENOENT;
	free(url);
	if (rc == -ENOENT) {
		/* no URL yet, or the one made from the base is not the blob's:
		 * the API says where it is, or that it is missing */
		rc = vb_head_ans(v, key, &h, 0);
		if (rc == 0)
			rc = get_url(v, key, h.url, off, len, dst, got);
		free(h.url);
	}
	free(p);
	return rc;
}

/* ---- del, list ------------------------------------------------------------------ */

static int vb_del(struct backend *b, const char *key)
{
	struct vblob *v = to_vb(b);
	struct vb_op o = { .op = "delete", .key = key, .method = "POST", .has_body = 1 };
	json_t *j;
	char *p, *body = NULL;
	int rc = key_check(v, "delete", key);

	if (rc)
		return rc;
	p = vb_pathname_of(v, key);
	j = p ? json_pack("{s:[s]}", "urls", p) : NULL;
	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	o.url = vb_api_url(v, "/delete", NULL, NULL);
	o.headers[o.nheaders++] = "content-type: application/json";
	o.body = body;
	o.body_len = body ? strlen(body) : 0;
	rc = body && o.url ? vb_run(v, &o) : -ENOMEM;
	vb_op_release(&o);
	free(o.url);
	free(body);
	json_decref(j);
	free(p);
	return rc;
}

static int check_list(struct vblob *v, struct vb_op *o, int *retry)
{
	json_t *blobs = json_object_get(o->json, "blobs");

	if (!json_is_array(blobs) || !json_is_boolean(json_object_get(o->json, "hasMore")))
		return vb_fail(o, retry, -EIO, "a list answer without blobs and hasMore");
	return 0;
}

/* One page of the listing of FULL; CURSOR is "" for the first page and is
 * replaced with the next one ("" after the last). */
static int list_page(struct vblob *v, const char *prefix, const char *full, char **cursor,
		     struct backend_list_acc *acc)
{
	struct vb_op o = { .op = "list", .key = prefix, .method = "GET", .check = check_list };
	char *base = vb_api_url(v, "/", "prefix", full), *enc = **cursor ? vb_qenc(*cursor) : NULL;
	size_t plen = strlen(v->prefix), i;
	json_t *e;
	int rc = -ENOMEM;

	if (!base || (**cursor && !enc) ||
	    asprintf(&o.url, "%s&limit=1000%s%s", base, enc ? "&cursor=" : "", enc ? enc : "") < 0)
		o.url = NULL;
	free(base);
	free(enc);
	if (o.url)
		rc = vb_run(v, &o);
	free(o.url);
	(*cursor)[0] = '\0';
	json_array_foreach(json_object_get(o.json, "blobs"), i, e) {
		const char *p = json_string_value(json_object_get(e, "pathname"));
		const char *url = json_string_value(json_object_get(e, "url"));
		json_t *size = json_object_get(e, "size");

		if (rc || !p || strncmp(p, full, strlen(full)) != 0 || !json_is_integer(size))
			continue;
		if (url && i == 0)
			learn_base(v, url, p);
		rc = backend_list_add(acc, p + plen, (uint64_t)json_integer_value(size));
	}
	if (rc == 0 && json_is_true(json_object_get(o.json, "hasMore"))) {
		const char *c = json_string_value(json_object_get(o.json, "cursor"));

		if (!c || !*c) {
			log_error("vblob: cannot list '%s': more blobs, but no cursor to them", prefix);
			rc = -EIO;
		} else {
			free(*cursor);
			*cursor = strdup(c);
			if (!*cursor)
				rc = -ENOMEM;
		}
	}
	vb_op_release(&o);
	return rc;
}

static int vb_list(struct backend *b, const char *prefix, backend_list_cb cb, void *arg)
{
	struct vblob *v = to_vb(b);
	struct backend_list_acc acc = { 0 };
	char *full = NULL, *cursor = strdup("");
	int rc = -ENOMEM;

	if (!prefix)
		prefix = "";
	if (cursor && asprintf(&full, "%s%s", v->prefix, prefix) >= 0) {
		do
			rc = list_page(v, prefix, full, &cursor, &acc);
		while (rc == 0 && cursor && cursor[0]);
	} else {
		full = NULL;
	}
	free(full);
	free(cursor);
	return backend_list_emit(&acc, rc, cb, arg);
}

/* ---- opening ---------------------------------------------------------------------- */

static void vb_free(struct backend *b)
{
	struct vblob *v = to_vb(b);

	http_free(v->http);
	free(v->api);
	free(v->store);
	free(v->prefix);
	free(v->access);
	free(v->blob_base);
	backend_wipe_free(v->token);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static const struct backend_ops vblob_ops = {
	.name = "vercel-blob",	/* as storage_backend_t names it */
	.put = vb_put,
	.get_range = vb_get_range,
	.head = vb_head,
	.del = vb_del,
	.list = vb_list,
	.space = NULL,
	.free = vb_free,
};

struct vb_opts {
	char access[16];
	struct backend_xfer_opts x;
};

static int url_opt(void *arg, const char *name, const char *val)
{
	struct vb_opts *op = arg;
	int rc = backend_xfer_opt(&op->x, name, val);

	if (rc <= 0)
		return rc == 0 && op->x.part_size && op->x.part_size < VB_MIN_PART ? -1 : rc;
	if (!strcmp(name, "access"))
		return (!strcmp(val, "private") || !strcmp(val, "public")) ?
		       snprintf(op->access, sizeof(op->access), "%s", val), 0 : -1;
	return -1;
}

/* "STORE[/PREFIX][?opts]" into V and OP. */
static int parse_url(struct vblob *v, struct vb_opts *op, const char *rest, const char *url)
{
	char *store = NULL;
	size_t n;
	int rc = backend_url_split(rest, url, url_opt, op, &store, &v->prefix);

	if (rc)
		return rc;
	n = strspn(store, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
	if (!store[0] || store[n] || n > 64 || strlen(v->prefix) > VB_MAX_PATHNAME - 100) {
		log_error("cannot open store '%s': give the store's id after vblob:// (letters, digits, '-', '_'),"
			  " then a short prefix if any", url);
		free(store);
		return -EINVAL;
	}
	/* "store_abc" and "abc" name the same store, as the client says */
	v->store = strdup(strncmp(store, "store_", 6) == 0 ? store + 6 : store);
	free(store);
	return v->store ? 0 : -ENOMEM;
}

/* The token from -o vblob_token_file, else $BLOB_READ_WRITE_TOKEN. */
static int set_token(struct vblob *v, const struct backend_config *cfg, const char *url)
{
	const char *file = cfg ? cfg->vblob_token_file : NULL, *env = getenv("BLOB_READ_WRITE_TOKEN");
	char buf[1024], *t, id[80];
	size_t n;

	if (file && *file) {
		FILE *f = fopen(file, "re");

		if (!f) {
			int e = errno;

			log_error("cannot open store '%s': cannot read the token file '%s': %s", url, file, strerror(e));
			return e == ENOENT ? -ENOENT : -EACCES;
		}
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		t = buf + strspn(buf, " \t\r\n");
		t[strcspn(t, " \t\r\n")] = '\0';
		v->token = strdup(t);
		OPENSSL_cleanse(buf, sizeof(buf));
	} else if (env && *env) {
		v->token = strdup(env);
	} else {
		log_error("cannot open store '%s': no token: set BLOB_READ_WRITE_TOKEN or give -o vblob_token_file=FILE",
			  url);
		return -EACCES;
	}
	if (!v->token)
		return -ENOMEM;
	if (!*v->token || strpbrk(v->token, "\r\n")) {
		log_error("cannot open store '%s': the token %s is empty or not one line", url,
			  file && *file ? "file" : "in BLOB_READ_WRITE_TOKEN");
		return -EACCES;
	}
	/* vercel_blob_rw_<store id>_<secret>: a token of another store is a
	 * mistake to name now, not a 403 later (the id is not a secret). */
	if (sscanf(v->token, "vercel_blob_rw_%79[^_]_", id) == 1 && strcmp(id, v->store) != 0) {
		log_error("cannot open store '%s': the token is for store '%s', not '%s'", url, id, v->store);
		return -EINVAL;
	}
	return 0;
}

/* One list request that tells whether the API answers to this token. */
static int probe(struct vblob *v, const char *url)
{
	struct vb_op o = { .op = "open", .key = "", .method = "GET", .check = check_list, .max_attempts = 3 };
	char *p = NULL;
	int rc;

	if (asprintf(&p, "%s.mvaultfs-probe", v->prefix) < 0)
		return -ENOMEM;
	o.url = vb_api_url(v, "/", "prefix", p);
	free(p);
	if (!o.url)
		return -ENOMEM;
	{
		char *u = NULL;

		if (asprintf(&u, "%s&limit=1", o.url) < 0)
			u = NULL;
		free(o.url);
		o.url = u;
	}
	rc = o.url ? vb_run(v, &o) : -ENOMEM;
	if (rc && o.resp.fail != HTTP_OK && o.resp.fail != HTTP_FAIL_OVERFLOW) {
		log_error("cannot open store '%s': cannot reach the Vercel Blob API at %s: %s", url, v->api,
			  http_fail_str(o.resp.fail));
		rc = -EHOSTUNREACH;
	} else if (rc && o.bad_answer[0]) {
		log_error("cannot open store '%s': %s does not answer like the Vercel Blob API", url, v->api);
		rc = -EPROTO;
	} else if (rc) {
		log_error("cannot open store '%s': the store refused (see the line above)", url);
	}
	vb_op_release(&o);
	free(o.url);
	return rc;
}

struct backend *vblob_backend_open(const char *rest, const char *url, const struct backend_config *cfg)
{
	struct vb_opts op = { .access = "private" };
	struct http_config hc = { 0 };
	struct vblob *v = calloc(1, sizeof(*v));
	const char *api = getenv("VERCEL_BLOB_API_URL");
	int rc;

	if (!v) {
		errno = ENOMEM;
		return NULL;
	}
	v->base.ops = &vblob_ops;
	pthread_mutex_init(&v->lock, NULL);
	atomic_init(&v->seed, (unsigned)getpid());
	rc = parse_url(v, &op, rest, url);
	if (rc)
		goto fail;
	if (!api || !*api)
		api = VB_DEFAULT_API;
	if (strncmp(api, "http://", 7) != 0 && strncmp(api, "https://", 8) != 0) {
		log_error("cannot open store '%s': VERCEL_BLOB_API_URL must be http(s)://...", url);
		rc = -EINVAL;
		goto fail;
	}
	v->api = strdup(api);
	v->access = strdup(op.access);
	if (!v->api || !v->access) {
		rc = -ENOMEM;
		goto fail;
	}
	while (strlen(v->api) > 8 && v->api[strlen(v->api) - 1] == '/')
		v->api[strlen(v->api) - 1] = '\0';
	rc = set_token(v, cfg, url);
	if (rc)
		goto fail;
	v->x = backend_xfer_settle(&op.x, VB_PART_SIZE, &hc);
	v->http = http_new(&hc);
	if (!v->http) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = probe(v, url);
	if (rc)
		goto fail;
	log_info("vblob: store '%s' open: API %s, %s blobs, part size %llu MiB, %d parts in flight", url, v->api,
		 v->access, (unsigned long long)(v->x.part_size >> 20), v->x.concurrency);
	return &v->base;
fail:
	vb_free(&v->base);
	errno = -rc;
	return NULL;
}
