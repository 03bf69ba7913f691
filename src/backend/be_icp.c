/*
 * be_icp.c - objects as assets of a stock ICP asset canister (see be_icp.h).
 *
 * The canister keeps an asset's bytes as chunks, all as long as chunk 0
 * but the last: `get` answers chunk 0 with the total length and SHA-256,
 * `get_chunk` any other.  A ranged read needs the chunk length, so what
 * `get` said about a key is kept in a small table (keys are content
 * addressed: what they hold does not change; a delete here forgets the
 * key, and a chunk that no longer fits makes the read start again from
 * `get`).
 *
 * DESIGN
 * Errors: one mapper (reject_errno) from the canister's rejects to errno;
 * transport and 5xx retries live in icp_agent.c (post), under the same
 * signed message.  Uploads over one chunk are a batch: its chunks go a few
 * at a time (each thread reads its own chunk from the source), then
 * commit_batch makes the asset in one atomic step, so a failed put never
 * shows a partial asset.
 */
#include "backend/be_icp.h"
#include "backend/be_util.h"
#include "backend/http.h"
#include "backend/icp_agent.h"
#include "util/log.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 MiB: a cache block is one get_chunk (the 1.9 MB other clients use
 * would fetch up to two chunks, 3.8 MB, per 1 MiB block). */
#define DEFAULT_CHUNK (1u << 20)
#define DEFAULT_CONCURRENCY 4
#define MAX_CHUNK (2u << 20)
#define META_SLOTS 64
#define ENCODING "identity"
#define CONTENT_TYPE "application/octet-stream"
#define AKEY_MAX 1025	/* "/" + a key of up to 1024 bytes */

struct meta {
	char key[AKEY_MAX + 1];
	uint64_t total;
	uint64_t chunk;			/* length of every chunk but the last */
	unsigned char sha[32];
	int has_sha;
};

struct icp_backend {
	struct backend base;
	struct http *http;
	struct icp_agent *ag;
	size_t chunk;
	int concurrency;		/* chunks in flight per upload */
	char canister[ICP_PRINCIPAL_TEXT_MAX];
	pthread_mutex_t lock;		/* guards META */
	struct meta meta[META_SLOTS];
	unsigned next;
};

/* ---- errors --------------------------------------------------------------- */

/* The one mapper from a canister's reject to errno. */
static int reject_errno(const struct icp_result *r)
{
	const char *m = r->reject_message;

	if (strstr(m, "asset not found") || strstr(m, "no such encoding"))
		return -ENOENT;
	if (strstr(m, "permission") || strstr(m, "Permission") || strstr(m, "not authorized"))
		return -EACCES;
	if (r->reject_code == 3)	/* DESTINATION_INVALID: no such canister */
		return -ENXIO;
	return -EIO;
}

/* "/KEY" into OUT; -EINVAL for a key the contract refuses. */
static int asset_key(const char *key, char out[AKEY_MAX + 1])
{
	if (!backend_key_valid(key) || strlen(key) >= AKEY_MAX)
		return -EINVAL;
	out[0] = '/';
	strcpy(out + 1, key);
	return 0;
}

/* One call of METHOD; the decoded reply in *OUT (may be NULL).  Logs
 * failures other than ENOENT once, naming OP and KEY. */
static int call(struct icp_backend *b, int update, const char *method, const struct cbuf *arg,
		struct cval **out, const char *op, const char *key)
{
	struct icp_result r;
	char err[512] = "";
	int rc;

	if (out)
		*out = NULL;
	if (arg->bad) {
		log_error("icp: cannot %s '%s': out of memory", op, key);
		return -ENOMEM;
	}
	rc = update ? icp_update(b->ag, method, arg, &r, err, sizeof(err))
		    : icp_query(b->ag, method, arg, &r, err, sizeof(err));
	if (rc < 0) {
		if (rc == -EFBIG)
			log_error("icp: cannot %s '%s': the message is over the IC's 2 MiB ingress limit (%s)", op, key, err);
		else
			log_error("icp: cannot %s '%s': %s", op, key, err);
		icp_result_release(&r);
		return rc;
	}
	if (!r.replied) {
		rc = reject_errno(&r);
		if (rc == -EACCES)
			log_error("icp: cannot %s '%s': canister %s rejected %s (%s): the identity %s needs the Commit "
				  "permission (see the README: grant_permission)", op, key, b->canister, method,
				  r.reject_message, icp_agent_principal(b->ag));
		else if (rc != -ENOENT)
			log_error("icp: cannot %s '%s': canister %s rejected %s: code %llu %s: %s", op, key, b->canister,
				  method, (unsigned long long)r.reject_code, r.error_code, r.reject_message);
		icp_result_release(&r);
		return rc;
	}
	if (out) {
		*out = candid_decode(r.reply, r.reply_len, err, sizeof(err));
		if (!*out) {
			log_error("icp: cannot %s '%s': %s answered what is not its Candid reply: %s", op, key, method, err);
			rc = -EIO;
		} else {
			(*out)->owned = r.reply;	/* the tree points into it */
			r.reply = NULL;
		}
	}
	icp_result_release(&r);
	return rc;
}

/* ---- what `get` said, per key ------------------------------------------------ */

static int meta_find(struct icp_backend *b, const char *akey, struct meta *m)
{
	int i, found = 0;

	pthread_mutex_lock(&b->lock);
	for (i = 0; i < META_SLOTS && !found; i++)
		if (strcmp(b->meta[i].key, akey) == 0) {
			*m = b->meta[i];
			found = 1;
		}
	pthread_mutex_unlock(&b->lock);
	return found;
}

static void meta_forget(struct icp_backend *b, const char *akey)
{
	int i;

	pthread_mutex_lock(&b->lock);
	for (i = 0; i < META_SLOTS; i++)
		if (strcmp(b->meta[i].key, akey) == 0)
			b->meta[i].key[0] = '\0';
	pthread_mutex_unlock(&b->lock);
}

static void meta_keep(struct icp_backend *b, const struct meta *m)
{
	meta_forget(b, m->key);
	pthread_mutex_lock(&b->lock);
	b->meta[b->next++ % META_SLOTS] = *m;
	pthread_mutex_unlock(&b->lock);
}

static const struct cval *blob_field(const struct cval *v, const char *name)
{
	const struct cval *f = cval_field(v, name);

	return f && f->kind == CV_BLOB ? f : NULL;
}

/* Asks `get` about AKEY: fills M (and keeps it) and, when CHUNK0 is not
 * NULL, the reply holding chunk 0 (free with cval_free). */
static int fetch_meta(struct icp_backend *b, const char *akey, struct meta *m, struct cval **chunk0,
		      const char *op)
{
	struct cbuf arg = { 0 };
	struct cval *v;
	const struct cval *content, *total, *sha;
	int rc;

	candid_enc_get(&arg, akey, ENCODING);
	rc = call(b, 0, "get", &arg, &v, op, akey + 1);
	cbuf_release(&arg);
	if (rc < 0)
		return rc;
	content = blob_field(v, "content");
	total = cval_field(v, "total_length");
	sha = cval_opt(cval_field(v, "sha256"));
	if (!content || !total || total->kind != CV_NAT || content->len > total->u ||
	    (content->len == 0 && total->u > 0)) {
		log_error("icp: cannot %s '%s': the canister's get answer lacks content or length", op, akey + 1);
		cval_free(v);
		return -EIO;
	}
	memset(m, 0, sizeof(*m));
	snprintf(m->key, sizeof(m->key), "%s", akey);
	m->total = total->u;
	m->chunk = content->len ? content->len : 1;
	if (sha && sha->kind == CV_BLOB && sha->len == 32) {
		memcpy(m->sha, sha->p, 32);
		m->has_sha = 1;
	}
	meta_keep(b, m);
	if (chunk0)
		*chunk0 = v;
	else
		cval_free(v);
	return 0;
}

/* ---- operations --------------------------------------------------------------- */

static int icp_head(struct backend *base, const char *key, struct backend_stat *st)
{
	struct icp_backend *b = (struct icp_backend *)base;
	char akey[AKEY_MAX + 1];
	struct meta m;
	int rc = asset_key(key, akey);

	if (rc < 0)
		return rc;
	rc = fetch_meta(b, akey, &m, NULL, "stat");
	if (rc == 0)
		st->size = m.total;
	return rc;
}

/* Chunk IDX of the asset into *V (its content field in *DATA, *LEN). */
static int fetch_chunk(struct icp_backend *b, const struct meta *m, uint64_t idx, struct cval **v,
		       const struct cval **data)
{
	struct cbuf arg = { 0 };
	int rc;

	candid_enc_get_chunk(&arg, m->key, ENCODING, idx, m->has_sha ? m->sha : NULL);
	rc = call(b, 0, "get_chunk", &arg, v, "read", m->key + 1);
	cbuf_release(&arg);
	if (rc < 0)
		return rc;
	*data = blob_field(*v, "content");
	if (!*data) {
		cval_free(*v);
		*v = NULL;
		return -EIO;
	}
	return 0;
}

/* One try of get_range; -EAGAIN when the kept chunk length turned out
 * wrong (the asset was replaced), to start again from `get`. */
static int read_range(struct icp_backend *b, const char *akey, int fresh, uint64_t off, size_t len,
		      unsigned char *dst, size_t *got)
{
	struct cval *c0 = NULL;
	struct meta m;
	uint64_t end, pos;
	int rc = 0;

	if (fresh || !meta_find(b, akey, &m)) {
		rc = fetch_meta(b, akey, &m, &c0, "read");
		if (rc < 0)
			return rc;
		fresh = 1;
	}
	if (off >= m.total || len == 0) {
		cval_free(c0);
		return 0;
	}
	end = off + len < m.total ? off + len : m.total;
	for (pos = off; pos < end && rc == 0;) {
		uint64_t idx = pos / m.chunk, within = pos % m.chunk;
		uint64_t want = m.total - idx * m.chunk < m.chunk ? m.total - idx * m.chunk : m.chunk;
		uint64_t n = m.chunk - within < end - pos ? m.chunk - within : end - pos;
		struct cval *v = NULL;
		const struct cval *data;

		if (idx == 0 && c0)
			data = blob_field(c0, "content");
		else if ((rc = fetch_chunk(b, &m, idx, &v, &data)) < 0)
			break;
		if (data->len != want) {
			cval_free(v);
			rc = fresh ? -EIO : -EAGAIN;
			if (fresh)
				log_error("icp: cannot read '%s': chunk %llu is %zu bytes, not %llu", akey + 1,
					  (unsigned long long)idx, data->len, (unsigned long long)want);
			break;
		}
		memcpy(dst + (pos - off), data->p + within, n);
		cval_free(v);
		pos += n;
	}
	cval_free(c0);
	if (rc == -ENOENT && !fresh)
		rc = -EAGAIN;	/* replaced or deleted since: ask `get` again */
	if (rc < 0) {
		meta_forget(b, akey);
		return rc;
	}
	if (off == 0 && end == m.total && m.has_sha) {
		unsigned char h[32];

		EVP_Digest(dst, end, h, NULL, EVP_sha256(), NULL);
		if (memcmp(h, m.sha, 32) != 0) {
			log_error("icp: cannot read '%s': the bytes do not hash to the asset's SHA-256", akey + 1);
			meta_forget(b, akey);
			return -EIO;
		}
	}
	*got = end - off;
	return 0;
}

static int icp_get_range(struct backend *base, const char *key, uint64_t off, size_t len, void *dst, size_t *got)
{
	struct icp_backend *b = (struct icp_backend *)base;
	char akey[AKEY_MAX + 1];
	int rc = asset_key(key, akey);

	*got = 0;
	if (rc < 0)
		return rc;
	rc = read_range(b, akey, 0, off, len, dst, got);
	if (rc == -EAGAIN)
		rc = read_range(b, akey, 1, off, len, dst, got);
	return rc;
}

/* RC, after a log line when it is a failure to read the source of KEY,
 * END bytes long by its size. */
static int src_failed(int rc, const char *key, uint64_t end)
{
	if (rc == -EIO)
		log_error("icp: cannot upload '%s': the source is shorter than its %llu bytes", key,
			  (unsigned long long)end);
	else if (rc)
		log_error("icp: cannot upload '%s': reading the source: %s", key, strerror(-rc));
	return rc;
}

/* Reads LEN bytes at OFF of FD; -errno, or -EIO when the file is shorter. */
static int read_src(int fd, uint64_t off, unsigned char *buf, size_t len, const char *key)
{
	return src_failed(backend_read_source(fd, buf, len, off), key, off + len);
}

static int hex_to_sha(const char *hex, unsigned char out[32])
{
	int i;

	for (i = 0; hex && i < 32; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return hex && strlen(hex) == 64 ? 0 : -1;
}

/* 1 when AKEY already holds SIZE bytes hashing to SHA. */
static int already_there(struct icp_backend *b, const char *akey, uint64_t size, const unsigned char sha[32])
{
	struct meta m;

	return fetch_meta(b, akey, &m, NULL, "look up") == 0 && m.total == size && m.has_sha &&
	       memcmp(m.sha, sha, 32) == 0;
}

/* The SHA-256 of SIZE bytes of FD. */
static int hash_src(int fd, uint64_t size, unsigned char sha[32], const char *key)
{
	char hex[65];
	int rc = src_failed(backend_hash_source(fd, 0, size, hex, NULL), key, size);

	return rc ? rc : hex_to_sha(hex, sha) == 0 ? 0 : -EIO;
}

/* One batch upload: chunks are taken in turn by up to CONCURRENCY threads
 * (on the IC each update call waits for consensus, a second or two: in
 * parallel they overlap), each reading its own chunk from the source. */
struct batch {
	struct icp_backend *b;
	const char *akey;
	int fd;
	uint64_t size, id;
	uint64_t *ids;
	size_t nchunks, next;
	int rc;			/* the first failure */
	pthread_mutex_t lock;
};

static void *batch_worker(void *arg)
{
	struct batch *bt = arg;
	struct icp_backend *b = bt->b;
	unsigned char *buf = malloc(b->chunk);

	for (;;) {
		struct cbuf req = { 0 };
		struct cval *v = NULL;
		const struct cval *f;
		uint64_t off;
		size_t i, n;
		int rc;

		pthread_mutex_lock(&bt->lock);
		i = bt->next++;
		if (!buf && bt->rc == 0)
			bt->rc = -ENOMEM;
		rc = bt->rc;
		pthread_mutex_unlock(&bt->lock);
		if (rc < 0 || i >= bt->nchunks)
			break;
		off = (uint64_t)i * b->chunk;
		n = bt->size - off < b->chunk ? (size_t)(bt->size - off) : b->chunk;
		rc = read_src(bt->fd, off, buf, n, bt->akey + 1);
		if (rc == 0) {
			candid_enc_create_chunk(&req, bt->id, buf, n);
			rc = call(b, 1, "create_chunk", &req, &v, "upload", bt->akey + 1);
			cbuf_release(&req);
		}
		f = rc == 0 ? cval_field(v, "chunk_id") : NULL;
		if (rc == 0 && (!f || f->kind != CV_NAT)) {
			log_error("icp: cannot upload '%s': create_chunk answered no chunk_id", bt->akey + 1);
			rc = -EIO;
		}
		if (rc == 0)
			bt->ids[i] = f->u;
		cval_free(v);
		if (rc < 0) {
			pthread_mutex_lock(&bt->lock);
			if (bt->rc == 0)
				bt->rc = rc;
			pthread_mutex_unlock(&bt->lock);
		}
	}
	free(buf);
	return NULL;
}

static int put_batch(struct icp_backend *b, const char *akey, int fd, uint64_t size, const unsigned char *known_sha)
{
	struct batch bt = { .b = b, .akey = akey, .fd = fd, .size = size };
	struct cbuf arg = { 0 };
	struct cval *v = NULL;
	const struct cval *f;
	unsigned char sha[32];
	int rc;

	bt.nchunks = (size_t)((size + b->chunk - 1) / b->chunk);
	/* the canister checks the hash at commit: a wrong one fails there */
	if (known_sha)
		memcpy(sha, known_sha, 32);
	else if ((rc = hash_src(fd, size, sha, akey + 1)) < 0)
		return rc;
	bt.ids = calloc(bt.nchunks, sizeof(*bt.ids));
	if (!bt.ids)
		return -ENOMEM;
	candid_enc_empty_record(&arg);
	rc = call(b, 1, "create_batch", &arg, &v, "upload", akey + 1);
	cbuf_release(&arg);
	f = rc == 0 ? cval_field(v, "batch_id") : NULL;
	if (rc == 0 && (!f || f->kind != CV_NAT)) {
		log_error("icp: cannot upload '%s': create_batch answered no batch_id", akey + 1);
		rc = -EIO;
	}
	if (rc < 0)
		goto out;
	bt.id = f->u;
	pthread_mutex_init(&bt.lock, NULL);
	backend_run_threads((size_t)b->concurrency < bt.nchunks ? b->concurrency : (int)bt.nchunks, batch_worker, &bt);
	pthread_mutex_destroy(&bt.lock);
	rc = bt.rc;
	if (rc == 0) {
		candid_enc_commit_asset(&arg, bt.id, akey, CONTENT_TYPE, ENCODING, bt.ids, bt.nchunks, sha);
		rc = call(b, 1, "commit_batch", &arg, NULL, "upload", akey + 1);
		cbuf_release(&arg);
	}
out:
	cval_free(v);
	free(bt.ids);
	return rc;
}

static int icp_put(struct backend *base, const char *key, int fd, uint64_t size, const char *sha256_hex)
{
	struct icp_backend *b = (struct icp_backend *)base;
	char akey[AKEY_MAX + 1];
	unsigned char sha[32], *buf;
	struct cbuf arg = { 0 };
	int rc = asset_key(key, akey), known;

	if (rc < 0)
		return rc;
	known = hex_to_sha(sha256_hex ? sha256_hex : backend_key_sha(key), sha) == 0;
	if (known && already_there(b, akey, size, sha))
		return 0;	/* the same bytes are there: nothing to send */
	meta_forget(b, akey);
	if (size > b->chunk)
		return put_batch(b, akey, fd, size, known ? sha : NULL);
	buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	rc = read_src(fd, 0, buf, size, key);
	if (rc == 0) {
		EVP_Digest(buf, size, sha, NULL, EVP_sha256(), NULL);
		candid_enc_store(&arg, akey, CONTENT_TYPE, ENCODING, buf, size, sha);
		rc = call(b, 1, "store", &arg, NULL, "upload", key);
		cbuf_release(&arg);
	}
	free(buf);
	return rc;
}

static int icp_del(struct backend *base, const char *key)
{
	struct icp_backend *b = (struct icp_backend *)base;
	char akey[AKEY_MAX + 1];
	struct cbuf arg = { 0 };
	int rc = asset_key(key, akey);

	if (rc < 0)
		return rc;
	meta_forget(b, akey);
	candid_enc_delete_asset(&arg, akey);
	rc = call(b, 1, "delete_asset", &arg, NULL, "delete", key);
	cbuf_release(&arg);
	return rc;
}

struct listed {
	const char *key;	/* into the decoded reply, without the "/" */
	size_t len;
	uint64_t size;
};

static int listed_cmp(const void *x, const void *y)
{
	const struct listed *a = x, *b = y;
	int c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);

	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int icp_list(struct backend *base, const char *prefix, backend_list_cb cb, void *arg)
{
	struct icp_backend *b = (struct icp_backend *)base;
	struct cbuf req = { 0 };
	struct cval *v;
	struct listed *out = NULL;
	size_t plen = prefix ? strlen(prefix) : 0, n = 0, i, j;
	int rc;

	candid_enc_empty_record(&req);
	rc = call(b, 0, "list", &req, &v, "list", prefix ? prefix : "");
	cbuf_release(&req);
	if (rc < 0)
		return rc;
	if (v->kind != CV_VEC || !(out = calloc(v->n ? v->n : 1, sizeof(*out)))) {
		cval_free(v);
		return v->kind != CV_VEC ? -EIO : -ENOMEM;
	}
	for (i = 0; i < v->n; i++) {
		const struct cval *k = cval_field(v->items[i], "key"), *encs = cval_field(v->items[i], "encodings");
		char key[AKEY_MAX + 1];

		if (!k || k->kind != CV_TEXT || k->len < 2 || k->len > AKEY_MAX || k->p[0] != '/' ||
		    k->len - 1 < plen || memcmp(k->p + 1, prefix, plen) != 0 || !encs || encs->kind != CV_VEC)
			continue;
		memcpy(key, k->p + 1, k->len - 1);
		key[k->len - 1] = '\0';
		if (!backend_key_valid(key))
			continue;
		for (j = 0; j < encs->n; j++) {
			const struct cval *e = cval_field(encs->items[j], "content_encoding"),
					  *l = cval_field(encs->items[j], "length");

			if (e && e->kind == CV_TEXT && e->len == strlen(ENCODING) && memcmp(e->p, ENCODING, e->len) == 0 &&
			    l && l->kind == CV_NAT) {
				out[n++] = (struct listed){ (const char *)k->p + 1, k->len - 1, l->u };
				break;
			}
		}
	}
	qsort(out, n, sizeof(*out), listed_cmp);
	rc = 0;
	for (i = 0; i < n && rc == 0; i++) {
		char key[AKEY_MAX + 1];

		memcpy(key, out[i].key, out[i].len);
		key[out[i].len] = '\0';
		rc = cb(key, out[i].size, arg);
	}
	free(out);
	cval_free(v);
	return rc;
}

static void icp_free(struct backend *base)
{
	struct icp_backend *b = (struct icp_backend *)base;

	icp_agent_free(b->ag);
	http_free(b->http);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static const struct backend_ops icp_ops = {
	.name = "icp-canister",	/* as the schema's storage_backend_t names it */
	.put = icp_put,
	.get_range = icp_get_range,
	.head = icp_head,
	.del = icp_del,
	.list = icp_list,
	.free = icp_free,
};

/* ---- opening ------------------------------------------------------------------------ */

struct icp_url {
	char canister[ICP_PRINCIPAL_TEXT_MAX];
	char host[256];
	char identity[512];
	uint64_t chunk;
	int retries;
	int concurrency;
};

static int parse_url(const char *rest, struct icp_url *u, char *err, size_t errlen)
{
	const char *q = strchr(rest, '?'), *p;
	size_t n = q ? (size_t)(q - rest) : strlen(rest);

	if (n == 0 || n >= sizeof(u->canister)) {
		snprintf(err, errlen, "no canister id after icp://");
		return -EINVAL;
	}
	memcpy(u->canister, rest, n);
	u->canister[n] = '\0';
	for (p = q ? q + 1 : NULL; p && *p;) {
		const char *amp = strchr(p, '&'), *eq = strchr(p, '=');
		size_t len = amp ? (size_t)(amp - p) : strlen(p), nl, vl;
		char val[512];

		if (!eq || eq > p + len) {
			snprintf(err, errlen, "option '%.*s' has no value", (int)len, p);
			return -EINVAL;
		}
		nl = (size_t)(eq - p);
		vl = len - nl - 1;
		if (vl >= sizeof(val)) {
			snprintf(err, errlen, "option '%.*s' is too long", (int)nl, p);
			return -EINVAL;
		}
		memcpy(val, eq + 1, vl);
		val[vl] = '\0';
		if (nl == 4 && strncmp(p, "host", 4) == 0 && vl < sizeof(u->host))
			strcpy(u->host, val);
		else if (nl == 8 && strncmp(p, "identity", 8) == 0)
			strcpy(u->identity, val);
		else if (nl == 5 && strncmp(p, "chunk", 5) == 0)
			u->chunk = strtoull(val, NULL, 10);
		else if (nl == 7 && strncmp(p, "retries", 7) == 0)
			u->retries = atoi(val);
		else if (nl == 11 && strncmp(p, "concurrency", 11) == 0)
			u->concurrency = atoi(val);
		else {
			snprintf(err, errlen, "unknown option '%.*s' (host, identity, chunk, concurrency, retries)", (int)nl, p);
			return -EINVAL;
		}
		p = amp ? amp + 1 : NULL;
	}
	if (u->chunk && (u->chunk < 1024 || u->chunk > MAX_CHUNK)) {
		snprintf(err, errlen, "chunk must be 1024..%u bytes (the IC refuses messages over 2 MiB, envelope included)",
			 MAX_CHUNK);
		return -EINVAL;
	}
	if (u->concurrency < 0 || u->concurrency > 16) {
		snprintf(err, errlen, "concurrency must be 1..16");
		return -EINVAL;
	}
	return 0;
}

/* Asks the canister for an asset that is not there: an asset canister
 * answers "asset not found". */
static int probe(struct icp_backend *b, const char *url)
{
	struct icp_result r;
	struct cbuf arg = { 0 };
	char err[512] = "";
	int rc;

	candid_enc_get(&arg, "/.mvaultfs-probe", ENCODING);
	rc = arg.bad ? -ENOMEM : icp_query(b->ag, "get", &arg, &r, err, sizeof(err));
	cbuf_release(&arg);
	if (rc < 0) {
		log_error("cannot open store '%s': %s", url, err);
		return rc == -EACCES ? -EPROTO : rc;
	}
	if (!r.replied && reject_errno(&r) != -ENOENT) {
		rc = reject_errno(&r) == -ENXIO ? -ENXIO : -EPROTO;
		log_error("cannot open store '%s': canister %s does not answer like an asset canister: %s", url,
			  b->canister, r.reject_message);
	}
	icp_result_release(&r);
	return rc;
}

struct backend *icp_backend_open(const char *rest, const char *url, const struct backend_config *cfg)
{
	struct icp_agent_config ac = { 0 };
	struct icp_url u = { .chunk = 0 };
	struct icp_backend *b;
	char err[512] = "";
	int rc;

	rc = parse_url(rest, &u, err, sizeof(err));
	if (rc == 0 && cfg && cfg->icp_host)
		snprintf(u.host, sizeof(u.host), "%s", cfg->icp_host);
	if (rc == 0 && cfg && cfg->icp_identity)
		snprintf(u.identity, sizeof(u.identity), "%s", cfg->icp_identity);
	if (rc == 0 && !u.host[0]) {
		snprintf(err, sizeof(err), "no host: add ?host=https://icp-api.io (or http://127.0.0.1:4943 for dfx)");
		rc = -EINVAL;
	}
	if (rc < 0) {
		log_error("cannot open store '%s': %s", url, err);
		errno = -rc;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b || !(b->http = http_new(NULL))) {
		free(b);
		errno = ENOMEM;
		return NULL;
	}
	b->base.ops = &icp_ops;
	b->chunk = u.chunk ? u.chunk : DEFAULT_CHUNK;
	b->concurrency = u.concurrency ? u.concurrency : DEFAULT_CONCURRENCY;
	pthread_mutex_init(&b->lock, NULL);
	ac.host = u.host;
	ac.canister = u.canister;
	ac.identity_file = u.identity[0] ? u.identity : NULL;
	ac.retries = u.retries;
	b->ag = icp_agent_open(&ac, b->http, err, sizeof(err));
	if (!b->ag) {
		rc = -errno;
		log_error("cannot open store '%s': %s", url, err);
		icp_free(&b->base);
		errno = -rc;
		return NULL;
	}
	snprintf(b->canister, sizeof(b->canister), "%s", u.canister);
	rc = probe(b, url);
	if (rc < 0) {
		icp_free(&b->base);
		errno = -rc;
		return NULL;
	}
	log_info("icp: canister %s at %s as %s%s; certificates are NOT BLS-verified (no BLS12-381 library in Debian)",
		 b->canister, u.host, icp_agent_principal(b->ag), u.identity[0] ? "" : " (anonymous: read-only)");
	return &b->base;
}
