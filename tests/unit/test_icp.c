/*
 * test_icp.c - the ICP backend's pieces: request ids (the interface spec's
 * worked example), textual principals, the Candid encoders and decoder
 * (against bytes @dfinity/candid made), hash trees (the spec's example tree,
 * whole and pruned); then, when MVFS_TEST_ICP_HOST names a running test
 * replica (tests/icp/replica.js, see tests/mount/test_icp.py), the fault
 * cases: an ingress message over 2 MiB, a canister's reject, an expired
 * request, 5xx answers, a 429 with Retry-After, a replica without the v3
 * call, a second put of the same bytes.
 *
 *   MVFS_TEST_ICP_HOST=http://127.0.0.1:PORT   the replica (its /_test controls)
 *   MVFS_TEST_ICP_URL=icp://...                a store whose identity holds Commit
 *   MVFS_TEST_ICP_NOCOMMIT_URL=icp://...       one whose identity does not
 */
#include "unit.h"
#include "backend/backend.h"
#include "backend/http.h"
#include "backend/icp_agent.h"
#include "backend/icp_candid.h"
#include "util/log.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t unhex(const char *hex, unsigned char *out)
{
	size_t n = strlen(hex) / 2, i;

	for (i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
	return n;
}

static void tohex(const unsigned char *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* ---- pure ---------------------------------------------------------------- */

static void test_request_id_spec(void)
{
	/* The interface spec's example ("Request ids"): a call of "hello". */
	static const unsigned char cid[] = { 0, 0, 0, 0, 0, 0, 0x04, 0xd2 };
	static const unsigned char arg[] = { 'D', 'I', 'D', 'L', 0x00, 0xfd, '*' };
	struct icp_content c = { .request_type = "call", .canister_id = cid, .canister_id_len = sizeof(cid),
				 .method_name = "hello", .arg = arg, .arg_len = sizeof(arg) };
	unsigned char rid[32];
	char hex[65];

	icp_request_id(&c, rid);
	tohex(rid, 32, hex);
	CHECK_STREQ(hex, "8781291c347db32a9d8c10eb62b710fce5a93be676474c42babc74c51858f94b");
	/* Any other field changes it; field order in the struct does not matter. */
	c.ingress_expiry = 1;
	icp_request_id(&c, rid);
	tohex(rid, 32, hex);
	CHECK(strcmp(hex, "8781291c347db32a9d8c10eb62b710fce5a93be676474c42babc74c51858f94b") != 0);
}

static void test_principals(void)
{
	static const unsigned char ledger[] = { 0, 0, 0, 0, 0, 0, 0, 2, 1, 1 };
	unsigned char raw[29], anon = 4;
	char text[ICP_PRINCIPAL_TEXT_MAX];

	icp_principal_encode(ledger, sizeof(ledger), text);
	CHECK_STREQ(text, "ryjl3-tyaaa-aaaaa-aaaba-cai");
	CHECK_EQ_INT(icp_principal_decode("ryjl3-tyaaa-aaaaa-aaaba-cai", raw), 10);
	CHECK(memcmp(raw, ledger, 10) == 0);
	CHECK_EQ_INT(icp_principal_decode("RYJL3-TYAAA-AAAAA-AAABA-CAI", raw), 10);
	icp_principal_encode(&anon, 1, text);
	CHECK_STREQ(text, "2vxsx-fae");
	/* a wrong checksum, wrong grouping, bad characters, empty */
	CHECK_EQ_INT(icp_principal_decode("ryjl3-tyaaa-aaaaa-aaaba-caa", raw), -EINVAL);
	CHECK_EQ_INT(icp_principal_decode("ryjl3tyaaa-aaaaa-aaaba-cai", raw), -EINVAL);
	CHECK_EQ_INT(icp_principal_decode("ryjl3-tyaaa-aaaaa-aaaba-ca1", raw), -EINVAL);
	CHECK_EQ_INT(icp_principal_decode("", raw), -EINVAL);
	CHECK_EQ_INT(icp_principal_decode(NULL, raw), -EINVAL);
}

static void test_candid_get_bytes(void)
{
	/* what @dfinity/candid writes for get({key="/a/b"; accept_encodings=["identity"]}) */
	static const char want[] = "4449444c026d716c029f93c6027189aad3ae08000101042f612f6201086964656e74697479";
	struct cbuf b = { 0 };
	char hex[256];

	candid_enc_get(&b, "/a/b", "identity");
	CHECK(!b.bad && b.len * 2 < sizeof(hex));
	tohex(b.p, b.len, hex);
	CHECK_STREQ(hex, want);
	cbuf_release(&b);
	CHECK_EQ_INT(candid_hash("key"), 5343647);
	CHECK_EQ_INT(candid_hash("total_length"), 3911979841u);
}

static void test_candid_decode_reference(void)
{
	/* get's reply as @dfinity/candid writes it (its own type-table order) */
	static const char reply[] = "4449444c036d7b6e006c05b99adecb0100e7c8eae70101c0e5eb9b0571d98fc8e10c71c1a6b0c90e7d"
				    "0102026869010201020a746578742f706c61696e086964656e74697479ac02";
	/* list's reply: vec of records with an int (modified: -5) and a 34-bit length */
	static const char list[] = "4449444c066d7b6e006c04c9b69fb6017ce7c8eae70101e6a99ef8097dd98fc8e10c716d026c039f93c6"
				   "0271c0d88ae90103c0e5eb9b05716d04010501042f782f79017b00b5b8f0fe2d086964656e746974790174";
	unsigned char buf[256];
	char err[128];
	size_t n = unhex(reply, buf), i;
	struct cval *v = candid_decode(buf, n, err, sizeof(err));
	const struct cval *f, *e;

	CHECK(v != NULL);
	if (!v)
		return;
	f = cval_field(v, "content");
	CHECK(f && f->kind == CV_BLOB && f->len == 2 && memcmp(f->p, "hi", 2) == 0);
	f = cval_field(v, "total_length");
	CHECK(f && f->kind == CV_NAT && f->u == 300);
	f = cval_opt(cval_field(v, "sha256"));
	CHECK(f && f->kind == CV_BLOB && f->len == 2 && f->p[0] == 1 && f->p[1] == 2);
	f = cval_field(v, "content_type");
	CHECK(f && f->kind == CV_TEXT && f->len == 10 && memcmp(f->p, "text/plain", 10) == 0);
	CHECK(cval_field(v, "nope") == NULL);
	cval_free(v);

	n = unhex(list, buf);
	v = candid_decode(buf, n, err, sizeof(err));
	CHECK(v && v->kind == CV_VEC && v->n == 1);
	if (v && v->n == 1) {
		f = cval_field(v->items[0], "key");
		CHECK(f && f->kind == CV_TEXT && f->len == 4 && memcmp(f->p, "/x/y", 4) == 0);
		f = cval_field(v->items[0], "encodings");
		CHECK(f && f->kind == CV_VEC && f->n == 1);
		e = f && f->n ? f->items[0] : NULL;
		CHECK(e && cval_field(e, "length")->u == 12345678901ull);
		CHECK(e && (int64_t)cval_field(e, "modified")->u == -5);
		CHECK(e && cval_opt(cval_field(e, "sha256")) == NULL);
	}
	cval_free(v);

	/* every shorter prefix is refused, never read past */
	n = unhex(list, buf);
	for (i = 0; i < n; i++) {
		unsigned char *cut = malloc(i ? i : 1);

		memcpy(cut, buf, i);
		v = candid_decode(cut, i, err, sizeof(err));
		CHECK(v == NULL);
		cval_free(v);
		free(cut);
	}
}

static void test_candid_roundtrip(void)
{
	static const uint64_t ids[] = { 1, 300, 1ull << 40 };
	unsigned char sha[32];
	struct cbuf b = { 0 };
	struct cval *v;
	const struct cval *f, *ops;
	char err[128];

	memset(sha, 0xab, sizeof(sha));
	candid_enc_commit_asset(&b, 77, "/k", "application/octet-stream", "identity", ids, 3, sha);
	v = candid_decode(b.p, b.len, err, sizeof(err));
	CHECK(v != NULL);
	if (v) {
		CHECK_EQ_INT(cval_field(v, "batch_id")->u, 77);
		ops = cval_field(v, "operations");
		CHECK(ops && ops->kind == CV_VEC && ops->n == 2);
		if (ops && ops->n == 2) {
			CHECK(ops->items[0]->kind == CV_VARIANT && ops->items[0]->hashes[0] == candid_hash("CreateAsset"));
			CHECK(ops->items[1]->hashes[0] == candid_hash("SetAssetContent"));
			f = cval_field(ops->items[1]->items[0], "chunk_ids");
			CHECK(f && f->n == 3 && f->items[2]->u == 1ull << 40);
			f = cval_opt(cval_field(ops->items[1]->items[0], "sha256"));
			CHECK(f && f->len == 32 && f->p[31] == 0xab);
		}
	}
	cval_free(v);
	cbuf_release(&b);

	candid_enc_store(&b, "/s", "t", "identity", "abc", 3, NULL);
	v = candid_decode(b.p, b.len, err, sizeof(err));
	CHECK(v && cval_field(v, "content")->len == 3 && cval_opt(cval_field(v, "sha256")) == NULL &&
	      cval_field(v, "content_encoding")->len == 8);
	cval_free(v);
	cbuf_release(&b);

	candid_enc_get_chunk(&b, "/s", "identity", 5, sha);
	v = candid_decode(b.p, b.len, err, sizeof(err));
	CHECK(v && cval_field(v, "index")->u == 5 && cval_opt(cval_field(v, "sha256"))->len == 32);
	cval_free(v);
	cbuf_release(&b);

	candid_enc_create_chunk(&b, 9, "xy", 2);
	v = candid_decode(b.p, b.len, err, sizeof(err));
	CHECK(v && cval_field(v, "batch_id")->u == 9 && cval_field(v, "content")->len == 2);
	cval_free(v);
	cbuf_release(&b);

	/* () decodes as null; junk is refused with a reason */
	v = candid_decode((const unsigned char *)"DIDL\x00\x00", 6, err, sizeof(err));
	CHECK(v && v->kind == CV_NULL);
	cval_free(v);
	CHECK(candid_decode((const unsigned char *)"DIDX\x00\x00", 6, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "DIDL") != NULL);
	/* a nat over 64 bits */
	CHECK(candid_decode((const unsigned char *)"DIDL\x00\x01\x7d\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 16,
			    err, sizeof(err)) == NULL);
	/* a type reference past the table */
	CHECK(candid_decode((const unsigned char *)"DIDL\x01\x6d\x05\x01\x00\x00", 10, err, sizeof(err)) == NULL);
}

/* The interface spec's example tree ("Example" under "Certificate"). */
static const char spec_tree[] =
	"8301830183024161830183018302417882034568656c6c6f810083024179820345776f726c6483024162820344676f6f64"
	"8301830241638100830241648203476d6f726e696e67";
/* The same with the subtree at "a" pruned. */
static const char pruned_tree[] =
	"83018301820458207c910de74e01aafffda47252daa80b8cc47783189ea3e07a182efd79dde189af83024162820344676f6f64"
	"8301830241638100830241648203476d6f726e696e67";

static enum icp_lookup look(struct icp_tree *t, const char *a, const char *b, const unsigned char **v, size_t *n)
{
	const unsigned char *l[2] = { (const unsigned char *)a, (const unsigned char *)b };
	size_t lens[2] = { strlen(a), b ? strlen(b) : 0 };

	return icp_tree_lookup(t, l, lens, b ? 2 : 1, v, n);
}

static void test_hash_tree(void)
{
	unsigned char buf[256], h[32];
	const unsigned char *v;
	char err[128], hex[65];
	size_t n = unhex(spec_tree, buf), len;
	struct icp_tree *t = icp_tree_parse(buf, n, err, sizeof(err));

	CHECK(t != NULL);
	if (!t)
		return;
	icp_tree_root_hash(t, h);
	tohex(h, 32, hex);
	CHECK_STREQ(hex, "eb5c5b2195e62d996b84c9bcc8259d19a83786a2f59e0878cec84c811f669aa0");
	CHECK_EQ_INT(look(t, "a", "x", &v, &len), ICP_FOUND);
	CHECK(len == 5 && memcmp(v, "hello", 5) == 0);
	CHECK_EQ_INT(look(t, "a", "y", &v, &len), ICP_FOUND);
	CHECK(len == 5 && memcmp(v, "world", 5) == 0);
	CHECK_EQ_INT(look(t, "d", NULL, &v, &len), ICP_FOUND);
	CHECK(len == 7 && memcmp(v, "morning", 7) == 0);
	CHECK_EQ_INT(look(t, "c", NULL, &v, &len), ICP_ABSENT);
	CHECK_EQ_INT(look(t, "a", "z", &v, &len), ICP_ABSENT);
	CHECK_EQ_INT(look(t, "e", NULL, &v, &len), ICP_ABSENT);
	CHECK_EQ_INT(look(t, "a", NULL, &v, &len), ICP_ERROR);	/* a subtree, not a value */
	icp_tree_free(t);

	/* pruned at "a": same root, "a/x" unknown, the rest still found */
	n = unhex(pruned_tree, buf);
	t = icp_tree_parse(buf, n, err, sizeof(err));
	CHECK(t != NULL);
	if (!t)
		return;
	icp_tree_root_hash(t, h);
	tohex(h, 32, hex);
	CHECK_STREQ(hex, "eb5c5b2195e62d996b84c9bcc8259d19a83786a2f59e0878cec84c811f669aa0");
	CHECK_EQ_INT(look(t, "a", "x", &v, &len), ICP_UNKNOWN);
	CHECK_EQ_INT(look(t, "b", NULL, &v, &len), ICP_FOUND);
	CHECK_EQ_INT(look(t, "d", NULL, &v, &len), ICP_FOUND);
	/* "0" sorts before the pruned "a": nothing proves it absent */
	CHECK_EQ_INT(look(t, "0", NULL, &v, &len), ICP_UNKNOWN);
	/* "bb" sorts between "b" and "c", both present: absent */
	CHECK_EQ_INT(look(t, "bb", NULL, &v, &len), ICP_ABSENT);
	icp_tree_free(t);

	/* not a tree: a fork with one child, a pruned hash of 31 bytes, junk */
	CHECK(icp_tree_parse((const unsigned char *)"\x82\x01\x81\x00", 4, err, sizeof(err)) == NULL);
	n = unhex("8204581f00000000000000000000000000000000000000000000000000000000000000", buf);
	CHECK(icp_tree_parse(buf, n, err, sizeof(err)) == NULL);
	CHECK(icp_tree_parse((const unsigned char *)"\xff", 1, err, sizeof(err)) == NULL);
	/* the seam says what it is */
	CHECK_EQ_INT(icp_cert_verify_signature(NULL, NULL, 0), -ENOTSUP);
}

/* ---- against the test replica --------------------------------------------------- */

static const char *host;
static char logpath[128];

static void control(const char *path, const char *json)
{
	struct http_config hc = { 0 };
	struct http *h = http_new(&hc);
	struct http_resp r = { 0 };
	char url[256];
	struct http_req req = { .method = "POST", .url = url, .body = json, .body_len = strlen(json), .has_body = 1 };

	snprintf(url, sizeof(url), "%s%s", host, path);
	CHECK(http_do(h, &req, &r) == 0 && r.status == 200);
	http_resp_release(&r);
	http_free(h);
}

static char *stats(void)
{
	struct http *h = http_new(NULL);
	struct http_resp r = { 0 };
	char url[256];
	struct http_req req = { .method = "GET", .url = url };
	char *out;

	snprintf(url, sizeof(url), "%s/_test/stats", host);
	http_do(h, &req, &r);
	out = strdup(r.body ? r.body : "");
	http_resp_release(&r);
	http_free(h);
	return out;
}

/* The number after "NAME": in the replica's stats. */
static long stat_count(const char *stats_json, const char *name)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", name);
	p = strstr(stats_json, k);
	return p ? atol(p + strlen(k)) : 0;
}

static int log_has(const char *needle)
{
	FILE *f = fopen(logpath, "re");
	char line[2048];
	int found = 0;

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

static int src_of(size_t len, unsigned seed)
{
	char path[] = "/tmp/mvfs-test-icp.XXXXXX";
	int fd = mkstemp(path);
	unsigned char *p = malloc(len ? len : 1);
	size_t i;

	unlink(path);
	for (i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 2654435761u + seed) >> 13);
	if (fd >= 0 && len && write(fd, p, len) != (ssize_t)len) {
		close(fd);
		fd = -1;
	}
	free(p);
	return fd;
}

static struct backend *open_with(const char *url, const char *more)
{
	char u[1024];

	snprintf(u, sizeof(u), "%s%s", url, more);
	return backend_open(u, NULL);
}

/* Runs FN(b) as one test, on a backend B opened on the replica with the
 * URL options OPTS ("&name=value..."). */
#define ON_REPLICA(fn, url, opts) do { \
	struct backend *b_ = open_with(url, opts); \
	unit_cur_fails = 0; \
	CHECK(b_ != NULL); \
	if (b_) \
		fn(b_); \
	backend_free(b_); \
	unit_end(#fn); \
} while (0)

/* With chunks of 2 MiB (ON_REPLICA's options): create_chunk messages
 * over the limit. */
static void test_over_ingress_limit(struct backend *b)
{
	struct backend_stat st;
	int fd = src_of(5 << 20, 1);

	CHECK_EQ_INT(backend_put(b, "faults/big", fd, 5 << 20, NULL), -EFBIG);
	CHECK(log_has("over the IC's 2 MiB ingress limit"));
	CHECK_EQ_INT(backend_head(b, "faults/big", &st), -ENOENT);
	close(fd);
}

static void test_reject_without_commit(struct backend *b)
{
	const char *other = getenv("MVFS_TEST_ICP_NOCOMMIT_URL");
	struct backend *nb = other ? backend_open(other, NULL) : NULL;
	struct backend_stat st;
	int fd = src_of(1000, 2);
	char buf[1000];
	size_t got;

	CHECK(nb != NULL);
	if (!nb)
		goto out;
	CHECK_EQ_INT(backend_put(b, "faults/theirs", fd, 1000, NULL), 0);
	/* anyone reads (queries), only Commit holders write */
	CHECK_EQ_INT(backend_get_range(nb, "faults/theirs", 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ_INT(got, 1000);
	CHECK_EQ_INT(backend_put(nb, "faults/mine", fd, 1000, NULL), -EACCES);
	CHECK_EQ_INT(backend_del(nb, "faults/theirs"), -EACCES);
	CHECK(log_has("needs the Commit permission"));
	CHECK_EQ_INT(backend_head(b, "faults/theirs", &st), 0);
	CHECK_EQ_INT(backend_head(b, "faults/mine", &st), -ENOENT);
	CHECK_EQ_INT(backend_del(b, "faults/theirs"), 0);
out:
	close(fd);
	backend_free(nb);
}

static void test_expired(struct backend *b)
{
	int fd = src_of(100, 3);

	control("/_test/clock", "{\"offset_s\": 600}");	/* our expiry is in its past */
	CHECK_EQ_INT(backend_put(b, "faults/late", fd, 100, NULL), -EACCES);
	CHECK(log_has("Invalid request expiry"));
	control("/_test/clock", "{\"offset_s\": 0}");
	CHECK_EQ_INT(backend_put(b, "faults/late", fd, 100, NULL), 0);
	CHECK_EQ_INT(backend_del(b, "faults/late"), 0);
	close(fd);
}

static void test_5xx(struct backend *b)
{
	struct backend_stat st;
	int fd = src_of(3 << 20, 4);
	struct timespec t0, t1;
	char *s0, *s1;

	/* two 503s on calls: retried, under the same signed messages */
	s0 = stats();
	control("/_test/fail", "{\"status\": 503, \"times\": 2, \"path\": \"/call\"}");
	CHECK_EQ_INT(backend_put(b, "faults/retried", fd, 3 << 20, NULL), 0);
	s1 = stats();
	/* create_batch, 2 create_chunk, commit_batch: each ran once */
	CHECK(strstr(s1, "\"create_batch\":") && strcmp(s0, s1) != 0);
	free(s0);
	free(s1);
	CHECK_EQ_INT(backend_head(b, "faults/retried", &st), 0);
	CHECK_EQ_INT(st.size, 3 << 20);
	/* answers cut short: the calls were carried out; the same messages
	 * sent again learn their answers, and a put and a read still work */
	s0 = stats();
	control("/_test/fail", "{\"cut\": true, \"times\": 2, \"path\": \"/call\"}");
	control("/_test/fail", "{\"cut\": true, \"times\": 2, \"path\": \"/query\"}");
	CHECK_EQ_INT(backend_put(b, "faults/cut", fd, 5000, NULL), 0);
	CHECK_EQ_INT(backend_head(b, "faults/cut", &st), 0);
	CHECK_EQ_INT(st.size, 5000);
	s1 = stats();
	CHECK_EQ_INT(stat_count(s1, "store") - stat_count(s0, "store"), 1);	/* run once */
	free(s0);
	free(s1);
	CHECK_EQ_INT(backend_del(b, "faults/cut"), 0);
	/* a 429 asking for 1 s: waited, then answered */
	control("/_test/fail", "{\"status\": 429, \"times\": 1, \"path\": \"/query\", \"retry_after\": 1}");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ_INT(backend_head(b, "faults/retried", &st), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 1000);
	/* 500s past the retry budget: EIO, said once */
	control("/_test/fail", "{\"status\": 500, \"times\": 3, \"path\": \"/query\"}");
	CHECK_EQ_INT(backend_head(b, "faults/retried", &st), -EIO);
	CHECK(log_has("the replica answered 500 after 3 attempts"));
	CHECK_EQ_INT(backend_del(b, "faults/retried"), 0);
	close(fd);
}

/* A content-addressed key put twice: the second sends nothing (one `get`
 * query finds the same SHA-256 and length there). */
static void test_second_put_is_noop(struct backend *b)
{
	struct backend_stat st;
	unsigned char data[3000], sha[32];
	char hex[65], key[BACKEND_KEY_MAX], *s0, *s1, *s2;
	int fd;

	memset(data, 'q', sizeof(data));
	snprintf((char *)data, sizeof(data), "noop %ld", (long)getpid());
	EVP_Digest(data, sizeof(data), sha, NULL, EVP_sha256(), NULL);
	tohex(sha, 32, hex);
	backend_key_for("u/noop/", hex, key);
	fd = src_of(0, 0);
	CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	s0 = stats();
	CHECK_EQ_INT(backend_put(b, key, fd, sizeof(data), NULL), 0);
	s1 = stats();
	CHECK_EQ_INT(backend_put(b, key, fd, sizeof(data), hex), 0);
	s2 = stats();
	CHECK_EQ_INT(stat_count(s1, "store") - stat_count(s0, "store"), 1);
	CHECK_EQ_INT(stat_count(s2, "store") - stat_count(s1, "store"), 0);
	CHECK_EQ_INT(backend_head(b, key, &st), 0);
	CHECK_EQ_INT(st.size, sizeof(data));
	CHECK_EQ_INT(backend_del(b, key), 0);
	free(s0);
	free(s1);
	free(s2);
	close(fd);
}

static void test_v2_fallback(struct backend *b)
{
	struct backend_stat st;
	int fd = src_of(5000, 5);
	char *s0 = stats(), *s;

	/* a replica without the v3 call: v2 call, then read_state until replied */
	control("/_test/fail", "{\"status\": 404, \"times\": 1, \"path\": \"/api/v3/\"}");
	CHECK_EQ_INT(backend_put(b, "faults/v2", fd, 5000, NULL), 0);
	CHECK_EQ_INT(backend_del(b, "faults/v2"), 0);
	CHECK_EQ_INT(backend_head(b, "faults/v2", &st), -ENOENT);
	s = stats();
	/* the store and the delete, each followed by read_state */
	CHECK_EQ_INT(stat_count(s, "v2/call") - stat_count(s0, "v2/call"), 2);
	CHECK(stat_count(s, "v2/read_state") - stat_count(s0, "v2/read_state") >= 2);
	free(s);
	free(s0);
	close(fd);
}

int main(void)
{
	const char *url = getenv("MVFS_TEST_ICP_URL");

	snprintf(logpath, sizeof(logpath), "/tmp/mvfs-test-icp-%ld.log", (long)getpid());
	if (log_open(logpath) == 0 && !getenv("MVFS_TEST_VERBOSE"))
		log_set_stderr(0);
	TEST(test_request_id_spec);
	TEST(test_principals);
	TEST(test_candid_get_bytes);
	TEST(test_candid_decode_reference);
	TEST(test_candid_roundtrip);
	TEST(test_hash_tree);
	host = getenv("MVFS_TEST_ICP_HOST");
	if (host && url) {
		ON_REPLICA(test_over_ingress_limit, url, "&chunk=2097152");
		ON_REPLICA(test_reject_without_commit, url, "");
		ON_REPLICA(test_expired, url, "");
		ON_REPLICA(test_5xx, url, "&retries=3");
		ON_REPLICA(test_second_put_is_noop, url, "");
		ON_REPLICA(test_v2_fallback, url, "");
	}
	unlink(logpath);
	return unit_done();
}
