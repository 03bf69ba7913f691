/*
 * icp_agent.c - signed calls to one canister over the IC HTTP interface
 * (see icp_agent.h for what is and is not verified).
 *
 * DESIGN
 * One envelope is signed per call and resent as it is on a transient
 * failure: the request id is the same, so the IC runs the message at most
 * once and a resent call only learns the answer.  Each call carries a
 * random nonce, so two calls with the same arguments (two create_batch)
 * are two messages.  The v3 synchronous call answers with a certificate
 * holding the reply; a 202 (not done in time) or a replica without v3 is
 * followed by read_state polling of request_status/<id>.
 */
#include "backend/icp_agent.h"
#include "backend/http.h"

#include <cbor.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define INGRESS_EXPIRY_S 240	/* the IC takes at most 5 minutes */
#define POLL_CAP_MS 1000

struct icp_agent {
	struct http *http;
	char host[256];
	char canister_text[ICP_PRINCIPAL_TEXT_MAX];
	unsigned char canister[29];
	size_t canister_len;
	EVP_PKEY *key;			/* NULL: anonymous */
	unsigned char der[44];		/* the Ed25519 public key, DER */
	unsigned char sender[29];
	size_t sender_len;
	char sender_text[ICP_PRINCIPAL_TEXT_MAX];
	unsigned char *root_key;	/* DER, from /api/v2/status */
	size_t root_key_len;
	int retries;
	int poll_ms;
	int no_v3;			/* the replica answered 404 to a v3 call */
};

/* ---- principals --------------------------------------------------------- */

static uint32_t crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		c ^= p[i];
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

void icp_principal_encode(const unsigned char *raw, size_t len, char out[ICP_PRINCIPAL_TEXT_MAX])
{
	unsigned char b[33];
	uint32_t c = crc32(raw, len);
	size_t n = len + 4, i, o = 0, chars = 0;
	unsigned acc = 0, bits = 0;

	b[0] = c >> 24;
	b[1] = c >> 16;
	b[2] = c >> 8;
	b[3] = c;
	memcpy(b + 4, raw, len);
	for (i = 0; i < n || bits > 0;) {
		if (bits < 5 && i < n) {
			acc = (acc << 8) | b[i++];
			bits += 8;
		}
		if (bits < 5) {	/* the last group, padded with zero bits */
			acc <<= 5 - bits;
			bits = 5;
		}
		if (chars && chars % 5 == 0)
			out[o++] = '-';
		out[o++] = b32[(acc >> (bits - 5)) & 31];
		bits -= 5;
		chars++;
	}
	out[o] = '\0';
}

int icp_principal_decode(const char *text, unsigned char out[29])
{
	unsigned char b[40];
	size_t n = 0, i;
	unsigned acc = 0, bits = 0;
	char check[ICP_PRINCIPAL_TEXT_MAX];

	if (!text || strlen(text) >= ICP_PRINCIPAL_TEXT_MAX)
		return -EINVAL;
	for (i = 0; text[i]; i++) {
		const char *q;
		char ch = text[i];

		if (ch == '-')
			continue;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		q = strchr(b32, ch);
		if (!q || !ch)
			return -EINVAL;
		acc = (acc << 5) | (unsigned)(q - b32);
		bits += 5;
		if (bits >= 8) {
			if (n >= sizeof(b))
				return -EINVAL;
			b[n++] = (acc >> (bits - 8)) & 0xff;
			bits -= 8;
		}
	}
	if (n < 4 || n - 4 > 29)
		return -EINVAL;
	memcpy(out, b + 4, n - 4);
	icp_principal_encode(out, n - 4, check);	/* checksum, grouping and case in one */
	for (i = 0; text[i]; i++)
		if ((text[i] >= 'A' && text[i] <= 'Z' ? text[i] - 'A' + 'a' : text[i]) != check[i])
			return -EINVAL;
	return check[i] ? -EINVAL : (int)(n - 4);
}

/* ---- request ids --------------------------------------------------------- */

static void sha256(const void *p, size_t n, unsigned char out[32])
{
	EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL);
}

/* One field: sha256(name) || sha256(value), 64 bytes. */
struct rid_pair {
	unsigned char h[64];
};

static void pair_bytes(struct rid_pair *p, const char *name, const void *v, size_t n)
{
	sha256(name, strlen(name), p->h);
	sha256(v, n, p->h + 32);
}

static int pair_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 64);
}

void icp_request_id(const struct icp_content *c, unsigned char out[32])
{
	struct rid_pair p[9];
	unsigned char num[10];
	size_t n = 0, i, j;

	if (c->request_type)
		pair_bytes(&p[n++], "request_type", c->request_type, strlen(c->request_type));
	if (c->canister_id)
		pair_bytes(&p[n++], "canister_id", c->canister_id, c->canister_id_len);
	if (c->method_name)
		pair_bytes(&p[n++], "method_name", c->method_name, strlen(c->method_name));
	if (c->arg)
		pair_bytes(&p[n++], "arg", c->arg, c->arg_len);
	if (c->sender)
		pair_bytes(&p[n++], "sender", c->sender, c->sender_len);
	if (c->nonce)
		pair_bytes(&p[n++], "nonce", c->nonce, c->nonce_len);
	if (c->ingress_expiry)
		pair_bytes(&p[n++], "ingress_expiry", num, candid_leb128(c->ingress_expiry, num));
	if (c->npaths || (c->request_type && strcmp(c->request_type, "read_state") == 0)) {
		EVP_MD_CTX *outer = EVP_MD_CTX_new();

		/* an array hashes as the hash of its elements' hashes, each
		 * path being an array of labels */
		sha256("paths", 5, p[n].h);
		EVP_DigestInit_ex(outer, EVP_sha256(), NULL);
		for (i = 0; i < c->npaths; i++) {
			EVP_MD_CTX *inner = EVP_MD_CTX_new();
			unsigned char h[32];

			EVP_DigestInit_ex(inner, EVP_sha256(), NULL);
			for (j = 0; j < c->nlabels[i]; j++) {
				sha256(c->labels[i][j], c->label_lens[i][j], h);
				EVP_DigestUpdate(inner, h, 32);
			}
			EVP_DigestFinal_ex(inner, h, NULL);
			EVP_MD_CTX_free(inner);
			EVP_DigestUpdate(outer, h, 32);
		}
		EVP_DigestFinal_ex(outer, p[n].h + 32, NULL);
		EVP_MD_CTX_free(outer);
		n++;
	}
	qsort(p, n, sizeof(p[0]), pair_cmp);
	sha256(p, n * sizeof(p[0]), out);
}

/* ---- hash trees ------------------------------------------------------------ */

struct icp_tree {
	cbor_item_t *doc;	/* the whole CBOR document */
	cbor_item_t *tree;	/* its hash tree (borrowed from DOC) */
};

static cbor_item_t *untag(cbor_item_t *it)
{
	while (it && cbor_isa_tag(it)) {
		cbor_item_t *inner = cbor_tag_item(it);	/* +1 */

		cbor_intermediate_decref(inner);	/* back: the document holds it */
		it = inner;
	}
	return it;
}

static cbor_item_t *map_get(cbor_item_t *map, const char *key)
{
	struct cbor_pair *pairs;
	size_t i, n, kl = strlen(key);

	if (!map || !cbor_isa_map(map))
		return NULL;
	pairs = cbor_map_handle(map);
	n = cbor_map_size(map);
	for (i = 0; i < n; i++) {
		cbor_item_t *k = pairs[i].key;

		if (cbor_isa_string(k) && cbor_string_is_definite(k) && cbor_string_length(k) == kl &&
		    memcmp(cbor_string_handle(k), key, kl) == 0)
			return untag(pairs[i].value);
	}
	return NULL;
}

static int bytes_of(cbor_item_t *it, const unsigned char **p, size_t *n)
{
	if (!it || !cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
		return -1;
	*p = cbor_bytestring_handle(it);
	*n = cbor_bytestring_length(it);
	return 0;
}

static int text_of(cbor_item_t *it, char *out, size_t cap)
{
	size_t n;

	if (!it || !cbor_isa_string(it) || !cbor_string_is_definite(it))
		return -1;
	n = cbor_string_length(it);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, cbor_string_handle(it), n);
	out[n] = '\0';
	return 0;
}

static int uint_of(cbor_item_t *it, uint64_t *v)
{
	if (!it || !cbor_isa_uint(it))
		return -1;
	*v = cbor_get_int(it);
	return 0;
}

/* 1 when IT is a well-formed hash tree node (checked once, at parse, so
 * the walks below need not). */
static int tree_ok(cbor_item_t *it, int depth)
{
	cbor_item_t **a;
	uint64_t tag;
	size_t n;
	const unsigned char *p;
	size_t len;

	it = untag(it);
	if (depth > 128 || !it || !cbor_isa_array(it) || !cbor_array_is_definite(it) || cbor_array_size(it) < 1)
		return 0;
	a = cbor_array_handle(it);
	n = cbor_array_size(it);
	if (uint_of(a[0], &tag) < 0)
		return 0;
	switch (tag) {
	case 0: return n == 1;
	case 1: return n == 3 && tree_ok(a[1], depth + 1) && tree_ok(a[2], depth + 1);
	case 2: return n == 3 && bytes_of(a[1], &p, &len) == 0 && tree_ok(a[2], depth + 1);
	case 3: return n == 2 && bytes_of(a[1], &p, &len) == 0;
	case 4: return n == 2 && bytes_of(a[1], &p, &len) == 0 && len == 32;
	}
	return 0;
}

static struct icp_tree *parse_doc(const unsigned char *buf, size_t len, int cert, char *err, size_t errlen)
{
	struct cbor_load_result res;
	struct icp_tree *t = calloc(1, sizeof(*t));

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->doc = cbor_load(buf, len, &res);
	if (!t->doc || res.error.code != CBOR_ERR_NONE || res.read != len) {
		snprintf(err, errlen, "not CBOR");
		icp_tree_free(t);
		return NULL;
	}
	t->tree = cert ? map_get(untag(t->doc), "tree") : untag(t->doc);
	if (!t->tree || !tree_ok(t->tree, 0)) {
		snprintf(err, errlen, cert ? "the certificate has no well-formed hash tree" : "not a hash tree");
		icp_tree_free(t);
		return NULL;
	}
	t->tree = untag(t->tree);
	return t;
}

struct icp_tree *icp_cert_parse(const unsigned char *cbor, size_t len, char *err, size_t errlen)
{
	return parse_doc(cbor, len, 1, err, errlen);
}

struct icp_tree *icp_tree_parse(const unsigned char *cbor, size_t len, char *err, size_t errlen)
{
	return parse_doc(cbor, len, 0, err, errlen);
}

void icp_tree_free(struct icp_tree *t)
{
	if (!t)
		return;
	if (t->doc)
		cbor_decref(&t->doc);
	free(t);
}

static void sep(EVP_MD_CTX *c, const char *s)
{
	unsigned char n = (unsigned char)strlen(s);

	EVP_DigestUpdate(c, &n, 1);
	EVP_DigestUpdate(c, s, n);
}

static void node_hash(cbor_item_t *it, unsigned char out[32])
{
	cbor_item_t **a;
	EVP_MD_CTX *c;
	unsigned char l[32], r[32];
	const unsigned char *p;
	size_t n;

	it = untag(it);
	a = cbor_array_handle(it);
	if (cbor_get_int(a[0]) == 4) {
		memcpy(out, cbor_bytestring_handle(a[1]), 32);
		return;
	}
	c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	switch (cbor_get_int(a[0])) {
	case 0:
		sep(c, "ic-hashtree-empty");
		break;
	case 1:
		node_hash(a[1], l);
		node_hash(a[2], r);
		sep(c, "ic-hashtree-fork");
		EVP_DigestUpdate(c, l, 32);
		EVP_DigestUpdate(c, r, 32);
		break;
	case 2:
		node_hash(a[2], r);
		bytes_of(a[1], &p, &n);
		sep(c, "ic-hashtree-labeled");
		EVP_DigestUpdate(c, p, n);
		EVP_DigestUpdate(c, r, 32);
		break;
	case 3:
		bytes_of(a[1], &p, &n);
		sep(c, "ic-hashtree-leaf");
		EVP_DigestUpdate(c, p, n);
		break;
	}
	EVP_DigestFinal_ex(c, out, NULL);
	EVP_MD_CTX_free(c);
}

void icp_tree_root_hash(const struct icp_tree *t, unsigned char out[32])
{
	node_hash(t->tree, out);
}

static int label_cmp(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	return c ? c : (an > bn) - (an < bn);
}

enum { LBL_FOUND, LBL_ABSENT, LBL_UNKNOWN, LBL_LESS, LBL_GREATER };

/* The spec's find_label over a fork tree: FOUND with *SUB the labeled
 * node's subtree, ABSENT when provably not there, UNKNOWN when pruned
 * away; LESS/GREATER say the label sorts before/after all of IT. */
static int find_label(cbor_item_t *it, const unsigned char *l, size_t ln, cbor_item_t **sub)
{
	cbor_item_t **a = cbor_array_handle(untag(it));
	const unsigned char *p;
	size_t n;
	int c, r;

	switch (cbor_get_int(a[0])) {
	case 2:
		bytes_of(a[1], &p, &n);
		c = label_cmp(l, ln, p, n);
		if (c == 0) {
			*sub = a[2];
			return LBL_FOUND;
		}
		return c < 0 ? LBL_LESS : LBL_GREATER;
	case 1:
		r = find_label(a[1], l, ln, sub);
		if (r == LBL_GREATER || r == LBL_ABSENT) {
			r = find_label(a[2], l, ln, sub);
			if (r == LBL_LESS)
				return LBL_ABSENT;
			return r;
		}
		if (r == LBL_UNKNOWN) {
			int r2 = find_label(a[2], l, ln, sub);

			if (r2 == LBL_LESS)
				return LBL_UNKNOWN;
			return r2;
		}
		return r;
	case 4:
		return LBL_UNKNOWN;
	}
	return LBL_ABSENT;	/* empty, or a leaf where forks were expected */
}

enum icp_lookup icp_tree_lookup(const struct icp_tree *t, const unsigned char *const *labels,
				const size_t *lens, size_t n, const unsigned char **val, size_t *len)
{
	cbor_item_t *it = t->tree;
	size_t i;

	for (i = 0; i < n; i++) {
		cbor_item_t *sub = NULL;

		switch (find_label(it, labels[i], lens[i], &sub)) {
		case LBL_FOUND:
			it = sub;
			continue;
		case LBL_UNKNOWN:
			return ICP_UNKNOWN;
		default:
			return ICP_ABSENT;
		}
	}
	{
		cbor_item_t **a = cbor_array_handle(untag(it));

		switch (cbor_get_int(a[0])) {
		case 3:
			return bytes_of(a[1], val, len) == 0 ? ICP_FOUND : ICP_ERROR;
		case 4:
			return ICP_UNKNOWN;
		case 0:
			return ICP_ABSENT;
		}
	}
	return ICP_ERROR;	/* a subtree, not a value */
}

int icp_cert_verify_signature(const struct icp_tree *cert, const unsigned char *root_key, size_t root_key_len)
{
	/* What a BLS-capable build does here: take "signature" (48 bytes, G1)
	 * and, if "delegation" is present, verify its certificate first and
	 * take the subnet's key from it (checking the canister is in the
	 * subnet's canister_ranges); then check the min-sig BLS12-381
	 * signature, DST BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_, over
	 * "\x0Dic-state-root" || icp_tree_root_hash(cert) under the key's 96
	 * bytes after the DER prefix. */
	return -ENOTSUP;
}

/* ---- identity ------------------------------------------------------------------ */

static const unsigned char ED25519_DER_PREFIX[12] = {
	0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
};

static int load_identity(struct icp_agent *a, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	unsigned char raw[32], h[32];
	size_t rawlen = sizeof(raw);
	EVP_MD_CTX *c;
	unsigned int hl = 0;

	if (!f) {
		int e = errno;

		snprintf(err, errlen, "cannot read the identity '%s': %s", path, strerror(e));
		return -e;
	}
	a->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!a->key || EVP_PKEY_id(a->key) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(a->key, raw, &rawlen) != 1 || rawlen != 32) {
		snprintf(err, errlen, "the identity '%s' is not an Ed25519 private key in PEM "
			 "(make one: openssl genpkey -algorithm ed25519, or dfx identity new --storage-mode plaintext)", path);
		return -EINVAL;
	}
	memcpy(a->der, ED25519_DER_PREFIX, 12);
	memcpy(a->der + 12, raw, 32);
	/* self-authenticating: SHA-224 of the DER key, then 0x02 */
	c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha224(), NULL);
	EVP_DigestUpdate(c, a->der, sizeof(a->der));
	EVP_DigestFinal_ex(c, h, &hl);
	EVP_MD_CTX_free(c);
	memcpy(a->sender, h, 28);
	a->sender[28] = 0x02;
	a->sender_len = 29;
	return 0;
}

/* ---- envelopes and HTTP ---------------------------------------------------------- */

static void add(cbor_item_t *map, const char *k, cbor_item_t *v)
{
	cbor_map_add(map, (struct cbor_pair){ .key = cbor_move(cbor_build_string(k)), .value = cbor_move(v) });
}

struct env_paths {
	size_t npaths;
	const size_t *nlabels;
	const unsigned char *const *const *labels;
	const size_t *const *label_lens;
};

/* The signed envelope of one request, serialised (malloc'd in *OUT), and
 * its request id. */
static int envelope(struct icp_agent *a, const char *type, const char *method, const struct cbuf *arg,
		    const struct env_paths *paths, unsigned char rid[32], unsigned char **out, size_t *outlen)
{
	struct icp_content c = { .request_type = type };
	unsigned char nonce[16], msg[11 + 32], sig[64];
	size_t siglen = sizeof(sig), i, j;
	cbor_item_t *content, *env, *tagged;
	unsigned char anon = 0x04;
	struct timespec now;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	c.ingress_expiry = ((uint64_t)now.tv_sec + INGRESS_EXPIRY_S) * 1000000000ull;
	c.sender = a->key ? a->sender : &anon;
	c.sender_len = a->key ? a->sender_len : 1;
	if (paths) {
		c.npaths = paths->npaths;
		c.nlabels = paths->nlabels;
		c.labels = paths->labels;
		c.label_lens = paths->label_lens;
	} else {
		c.canister_id = a->canister;
		c.canister_id_len = a->canister_len;
		c.method_name = method;
		c.arg = arg->p ? arg->p : (const unsigned char *)"";
		c.arg_len = arg->len;
		if (strcmp(type, "call") == 0) {
			RAND_bytes(nonce, sizeof(nonce));
			c.nonce = nonce;
			c.nonce_len = sizeof(nonce);
		}
	}
	icp_request_id(&c, rid);

	content = cbor_new_definite_map(8);
	add(content, "request_type", cbor_build_string(type));
	add(content, "sender", cbor_build_bytestring(c.sender, c.sender_len));
	add(content, "ingress_expiry", cbor_build_uint64(c.ingress_expiry));
	if (paths) {
		cbor_item_t *ps = cbor_new_definite_array(paths->npaths);

		for (i = 0; i < paths->npaths; i++) {
			cbor_item_t *p = cbor_new_definite_array(paths->nlabels[i]);

			for (j = 0; j < paths->nlabels[i]; j++)
				cbor_array_push(p, cbor_move(cbor_build_bytestring(paths->labels[i][j], paths->label_lens[i][j])));
			cbor_array_push(ps, cbor_move(p));
		}
		add(content, "paths", ps);
	} else {
		add(content, "canister_id", cbor_build_bytestring(c.canister_id, c.canister_id_len));
		add(content, "method_name", cbor_build_string(method));
		add(content, "arg", cbor_build_bytestring(c.arg, c.arg_len));
		if (c.nonce)
			add(content, "nonce", cbor_build_bytestring(c.nonce, c.nonce_len));
	}
	env = cbor_new_definite_map(3);
	add(env, "content", content);
	if (a->key) {
		EVP_MD_CTX *mc = EVP_MD_CTX_new();

		msg[0] = 10;
		memcpy(msg + 1, "ic-request", 10);
		memcpy(msg + 11, rid, 32);
		if (!mc || EVP_DigestSignInit(mc, NULL, NULL, NULL, a->key) != 1 ||
		    EVP_DigestSign(mc, sig, &siglen, msg, sizeof(msg)) != 1)
			rc = -EIO;
		EVP_MD_CTX_free(mc);
		add(env, "sender_pubkey", cbor_build_bytestring(a->der, sizeof(a->der)));
		add(env, "sender_sig", cbor_build_bytestring(sig, siglen));
	}
	tagged = cbor_build_tag(55799, env);
	cbor_decref(&env);
	*out = NULL;
	*outlen = 0;
	if (rc == 0) {
		size_t cap = 0;

		*outlen = cbor_serialize_alloc(tagged, out, &cap);
		if (*outlen == 0)
			rc = -ENOMEM;
	}
	cbor_decref(&tagged);
	return rc;
}

static int transient(const struct http_resp *r)
{
	return r->fail != HTTP_OK || r->status == 429 || r->status >= 500;
}

static void backoff(int attempt)
{
	long ms = 50L << (attempt < 6 ? attempt : 6);

	usleep((useconds_t)(ms > 2000 ? 2000 : ms) * 1000);
}

/* One POST of BODY to /api/VER/canister/<id>/WHAT, retried while transient.
 * 0 with RESP holding the last answer, or -EIO after the last attempt. */
static int post(struct icp_agent *a, const char *ver, const char *what, const unsigned char *body, size_t len,
		struct http_resp *resp, char *err, size_t errlen)
{
	static const char *const hdr[] = { "Content-Type: application/cbor" };
	char url[512];
	struct http_req req = { .method = "POST", .url = url, .headers = hdr, .nheaders = 1, .body = body,
				.body_len = len, .has_body = 1 };
	int attempt;

	snprintf(url, sizeof(url), "%s/api/%s/canister/%s/%s", a->host, ver, a->canister_text, what);
	for (attempt = 0; attempt < a->retries; attempt++) {
		if (attempt) {
			http_resp_release(resp);	/* http_do resets, it does not free */
			backoff(attempt);
		}
		http_do(a->http, &req, resp);
		if (!transient(resp))
			return 0;
	}
	if (resp->fail != HTTP_OK)
		snprintf(err, errlen, "%s: %s", what, http_fail_str(resp->fail));
	else
		snprintf(err, errlen, "%s: the replica answered %ld after %d attempts", what, resp->status, a->retries);
	return -EIO;
}

/* An answer that is not 2xx, as an errno with words in ERR. */
static int http_error(const struct http_resp *r, const char *what, char *err, size_t errlen)
{
	const char *body = r->body ? r->body : "";
	int n = (int)strcspn(body, "\n");

	if (n > 200)
		n = 200;
	snprintf(err, errlen, "%s: the replica answered %ld: %.*s", what, r->status, n, body);
	if (r->status == 413)
		return -EFBIG;
	if (r->status == 400 || r->status == 401 || r->status == 403)
		return -EACCES;
	if (r->status == 404)
		return -ENXIO;
	return -EIO;
}

static void fill_reject(struct icp_result *r, uint64_t code, const char *msg, size_t msglen, const char *ec,
			size_t eclen)
{
	r->replied = 0;
	r->reject_code = code;
	snprintf(r->reject_message, sizeof(r->reject_message), "%.*s", (int)msglen, msg ? msg : "");
	snprintf(r->error_code, sizeof(r->error_code), "%.*s", (int)eclen, ec ? ec : "");
}

static int set_reply(struct icp_result *r, const unsigned char *p, size_t n)
{
	r->reply = malloc(n ? n : 1);
	if (!r->reply)
		return -ENOMEM;
	memcpy(r->reply, p, n);
	r->reply_len = n;
	r->replied = 1;
	return 0;
}

void icp_result_release(struct icp_result *r)
{
	free(r->reply);
	memset(r, 0, sizeof(*r));
}

/* A query or read_state: signs it, posts it to /api/v2 (retrying
 * transient failures) and wants a 200.  0 with RESP holding the answer, or
 * -errno with ERR. */
static int exchange(struct icp_agent *a, const char *type, const char *method, const struct cbuf *arg,
		    const struct env_paths *paths, unsigned char rid[32], struct http_resp *resp,
		    struct icp_result *r, char *err, size_t errlen)
{
	unsigned char *body = NULL;
	size_t len;
	int rc = envelope(a, type, method, arg, paths, rid, &body, &len);

	if (rc == 0)
		rc = post(a, "v2", type, body, len, resp, err, errlen);
	free(body);
	r->http_status = resp->status;
	if (rc == 0 && resp->status != 200)
		rc = http_error(resp, type, err, errlen);
	return rc;
}

int icp_query(struct icp_agent *a, const char *method, const struct cbuf *arg, struct icp_result *r,
	      char *err, size_t errlen)
{
	struct http_resp resp = { 0 };
	struct cbor_load_result lr;
	cbor_item_t *doc = NULL, *m;
	unsigned char rid[32];
	const unsigned char *p;
	size_t n;
	char status[32];
	int rc;

	memset(r, 0, sizeof(*r));
	rc = exchange(a, "query", method, arg, NULL, rid, &resp, r, err, errlen);
	if (rc == 0) {
		doc = cbor_load((const unsigned char *)resp.body, resp.body_len, &lr);
		m = untag(doc);
		if (!m || text_of(map_get(m, "status"), status, sizeof(status)) < 0) {
			snprintf(err, errlen, "query: the replica's answer is not a query response");
			rc = -EIO;
		} else if (strcmp(status, "replied") == 0) {
			if (bytes_of(map_get(map_get(m, "reply"), "arg"), &p, &n) < 0) {
				snprintf(err, errlen, "query: a reply without arg");
				rc = -EIO;
			} else {
				rc = set_reply(r, p, n);
			}
		} else {
			uint64_t code = 0;
			cbor_item_t *msg = map_get(m, "reject_message"), *ec = map_get(m, "error_code");

			uint_of(map_get(m, "reject_code"), &code);
			fill_reject(r, code, msg && cbor_isa_string(msg) ? (const char *)cbor_string_handle(msg) : "",
				    msg && cbor_isa_string(msg) ? cbor_string_length(msg) : 0,
				    ec && cbor_isa_string(ec) ? (const char *)cbor_string_handle(ec) : "",
				    ec && cbor_isa_string(ec) ? cbor_string_length(ec) : 0);
		}
	}
	if (doc)
		cbor_decref(&doc);
	http_resp_release(&resp);
	return rc;
}

/* Reads request_status/<RID> from CERT into R: 1 when final (replied or
 * rejected), 0 when not yet, -errno when the request is gone ("done") or
 * the certificate is not usable. */
static int read_status(struct icp_agent *a, const struct icp_tree *cert, const unsigned char rid[32],
		       struct icp_result *r, char *err, size_t errlen)
{
	const unsigned char *lab[3] = { (const unsigned char *)"request_status", rid, NULL };
	size_t lens[3] = { 14, 32, 0 }, n;
	const unsigned char *p, *msg = NULL, *ec = NULL;
	size_t msglen = 0, eclen = 0;
	uint64_t code = 0;
	int shift = 0;
	enum icp_lookup st;

#define AT(name) (lab[2] = (const unsigned char *)(name), lens[2] = strlen(name), \
		  icp_tree_lookup(cert, lab, lens, 3, &p, &n))
	st = AT("status");
	if (st == ICP_UNKNOWN || st == ICP_ABSENT)
		return 0;
	if (st != ICP_FOUND) {
		snprintf(err, errlen, "call: the certificate's request status is malformed");
		return -EIO;
	}
	if (n == 7 && memcmp(p, "replied", 7) == 0) {
		if (AT("reply") != ICP_FOUND) {
			snprintf(err, errlen, "call: replied, but the certificate holds no reply");
			return -EIO;
		}
		return set_reply(r, p, n) < 0 ? -ENOMEM : 1;
	}
	if (n == 8 && memcmp(p, "rejected", 8) == 0) {
		if (AT("reject_code") == ICP_FOUND) {
			size_t i;

			for (i = 0; i < n && i < 9; i++, shift += 7)
				code |= (uint64_t)(p[i] & 0x7f) << shift;
		}
		if (AT("reject_message") == ICP_FOUND) {
			msg = p;
			msglen = n;
		}
		if (AT("error_code") == ICP_FOUND) {
			ec = p;
			eclen = n;
		}
		fill_reject(r, code, (const char *)msg, msglen, (const char *)ec, eclen);
		return 1;
	}
	if (n == 4 && memcmp(p, "done", 4) == 0) {
		snprintf(err, errlen, "call: the request is done and its reply gone");
		return -EIO;
	}
#undef AT
	return 0;	/* received, processing */
}

/* Parses a certificate answer (CERT_ITEM bytes) and reads the status. */
static int status_from_cert(struct icp_agent *a, cbor_item_t *cert_item, const unsigned char rid[32],
			    struct icp_result *r, char *err, size_t errlen)
{
	const unsigned char *p;
	size_t n;
	struct icp_tree *cert;
	int rc;

	if (bytes_of(cert_item, &p, &n) < 0) {
		snprintf(err, errlen, "call: the answer holds no certificate");
		return -EIO;
	}
	cert = icp_cert_parse(p, n, err, errlen);
	if (!cert)
		return -EIO;
	/* The seam: -ENOTSUP (not verified) is accepted, as the README says;
	 * a failed verification would be refused here. */
	rc = icp_cert_verify_signature(cert, a->root_key, a->root_key_len);
	if (rc != 0 && rc != -ENOTSUP) {
		snprintf(err, errlen, "call: the certificate's signature does not verify");
		icp_tree_free(cert);
		return -EACCES;
	}
	rc = read_status(a, cert, rid, r, err, errlen);
	icp_tree_free(cert);
	return rc;
}

static int poll_status(struct icp_agent *a, const unsigned char rid[32], struct icp_result *r, char *err,
		       size_t errlen)
{
	const unsigned char *labels[2] = { (const unsigned char *)"request_status", rid };
	const unsigned char *const *lp[1] = { labels };
	size_t lens[2] = { 14, 32 }, nl[1] = { 2 };
	const size_t *llp[1] = { lens };
	struct env_paths paths = { 1, nl, lp, llp };
	int ms = a->poll_ms, waited = 0;

	while (waited < INGRESS_EXPIRY_S * 1000) {
		struct http_resp resp = { 0 };
		struct cbor_load_result lr;
		unsigned char prid[32];
		cbor_item_t *doc = NULL;
		int rc = exchange(a, "read_state", NULL, NULL, &paths, prid, &resp, r, err, errlen);

		if (rc == 0) {
			doc = cbor_load((const unsigned char *)resp.body, resp.body_len, &lr);
			rc = status_from_cert(a, map_get(untag(doc), "certificate"), rid, r, err, errlen);
			if (doc)
				cbor_decref(&doc);
		}
		http_resp_release(&resp);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		usleep((useconds_t)ms * 1000);
		waited += ms;
		ms = ms * 2 > POLL_CAP_MS ? POLL_CAP_MS : ms * 2;
	}
	snprintf(err, errlen, "call: no answer before the message expired");
	return -EIO;
}

int icp_update(struct icp_agent *a, const char *method, const struct cbuf *arg, struct icp_result *r,
	       char *err, size_t errlen)
{
	struct http_resp resp = { 0 };
	struct cbor_load_result lr;
	cbor_item_t *doc = NULL, *m;
	unsigned char rid[32], *body;
	size_t len;
	char status[40];
	int rc, v3 = !__atomic_load_n(&a->no_v3, __ATOMIC_RELAXED);

	memset(r, 0, sizeof(*r));
	rc = envelope(a, "call", method, arg, NULL, rid, &body, &len);
	if (rc == 0)
		rc = post(a, v3 ? "v3" : "v2", "call", body, len, &resp, err, errlen);
	if (rc == 0 && v3 && resp.status == 404) {
		__atomic_store_n(&a->no_v3, 1, __ATOMIC_RELAXED);	/* no v3 here: v2 from now on */
		v3 = 0;
		http_resp_release(&resp);
		rc = post(a, "v2", "call", body, len, &resp, err, errlen);
	}
	free(body);
	r->http_status = resp.status;
	if (rc == 0 && resp.status == 202) {
		rc = poll_status(a, rid, r, err, errlen);
	} else if (rc == 0 && resp.status == 200 && v3) {
		doc = cbor_load((const unsigned char *)resp.body, resp.body_len, &lr);
		m = untag(doc);
		if (!m || text_of(map_get(m, "status"), status, sizeof(status)) < 0) {
			snprintf(err, errlen, "call: the replica's answer is not a call response");
			rc = -EIO;
		} else if (strcmp(status, "replied") == 0) {
			rc = status_from_cert(a, map_get(m, "certificate"), rid, r, err, errlen);
			if (rc == 0)	/* certified, but not done in time: poll */
				rc = poll_status(a, rid, r, err, errlen);
		} else {	/* non_replicated_rejection */
			uint64_t code = 0;
			char msg[512] = "", ec[32] = "";

			uint_of(map_get(m, "reject_code"), &code);
			text_of(map_get(m, "reject_message"), msg, sizeof(msg));
			text_of(map_get(m, "error_code"), ec, sizeof(ec));
			fill_reject(r, code, msg, strlen(msg), ec, strlen(ec));
			rc = 0;
		}
	} else if (rc == 0) {
		rc = http_error(&resp, "call", err, errlen);
	}
	if (rc > 0)
		rc = 0;
	if (doc)
		cbor_decref(&doc);
	http_resp_release(&resp);
	return rc;
}

/* ---- opening ------------------------------------------------------------------------ */

static int fetch_root_key(struct icp_agent *a, char *err, size_t errlen)
{
	struct http_resp resp = { 0 };
	struct http_req req = { .method = "GET" };
	struct cbor_load_result lr;
	cbor_item_t *doc = NULL;
	const unsigned char *p;
	char url[512];
	size_t n;
	int rc = 0, attempt;

	snprintf(url, sizeof(url), "%s/api/v2/status", a->host);
	req.url = url;
	for (attempt = 0; attempt < a->retries; attempt++) {
		if (attempt) {
			http_resp_release(&resp);
			backoff(attempt);
		}
		http_do(a->http, &req, &resp);
		if (!transient(&resp))
			break;
	}
	if (resp.fail != HTTP_OK) {
		snprintf(err, errlen, "cannot reach %s: %s", a->host, http_fail_str(resp.fail));
		rc = -EHOSTUNREACH;
	} else if (resp.status != 200) {
		snprintf(err, errlen, "%s/api/v2/status answered %ld: not an Internet Computer replica?", a->host, resp.status);
		rc = -EPROTO;
	} else {
		doc = cbor_load((const unsigned char *)resp.body, resp.body_len, &lr);
		if (bytes_of(map_get(untag(doc), "root_key"), &p, &n) < 0) {
			/* mainnet's boundary nodes do not serve it; the key is then
			 * the IC's published one, which the seam would use */
			a->root_key_len = 0;
		} else if ((a->root_key = malloc(n))) {
			memcpy(a->root_key, p, n);
			a->root_key_len = n;
		}
		if (!doc) {
			snprintf(err, errlen, "%s/api/v2/status is not CBOR: not an Internet Computer replica?", a->host);
			rc = -EPROTO;
		}
	}
	if (doc)
		cbor_decref(&doc);
	http_resp_release(&resp);
	return rc;
}

struct icp_agent *icp_agent_open(const struct icp_agent_config *cfg, struct http *http, char *err, size_t errlen)
{
	struct icp_agent *a = calloc(1, sizeof(*a));
	int rc;
	size_t hl;

	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	a->http = http;
	a->retries = cfg->retries > 0 ? cfg->retries : 5;
	a->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : 50;
	hl = cfg->host ? strlen(cfg->host) : 0;
	while (hl && cfg->host[hl - 1] == '/')
		hl--;
	if (!hl || hl >= sizeof(a->host) || (strncmp(cfg->host, "http://", 7) && strncmp(cfg->host, "https://", 8))) {
		snprintf(err, errlen, "host must be http://HOST[:PORT] or https://HOST[:PORT]");
		rc = -EINVAL;
		goto fail;
	}
	memcpy(a->host, cfg->host, hl);
	rc = icp_principal_decode(cfg->canister, a->canister);
	if (rc < 0) {
		snprintf(err, errlen, "'%s' is not a canister id", cfg->canister ? cfg->canister : "");
		goto fail;
	}
	a->canister_len = (size_t)rc;
	icp_principal_encode(a->canister, a->canister_len, a->canister_text);
	if (cfg->identity_file) {
		rc = load_identity(a, cfg->identity_file, err, errlen);
		if (rc < 0)
			goto fail;
		icp_principal_encode(a->sender, a->sender_len, a->sender_text);
	} else {
		snprintf(a->sender_text, sizeof(a->sender_text), "2vxsx-fae");	/* anonymous */
	}
	rc = fetch_root_key(a, err, errlen);
	if (rc < 0)
		goto fail;
	return a;
fail:
	icp_agent_free(a);
	errno = -rc;
	return NULL;
}

void icp_agent_free(struct icp_agent *a)
{
	if (!a)
		return;
	EVP_PKEY_free(a->key);
	free(a->root_key);
	free(a);
}

const char *icp_agent_principal(const struct icp_agent *a)
{
	return a->sender_text;
}
