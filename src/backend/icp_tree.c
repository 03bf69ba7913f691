/*
 * icp_tree.c - the pure parts of the IC HTTP interface: textual principals,
 * request ids (the representation-independent hash), hash trees and
 * certificates (parsed with libcbor), and the seam where a certificate's
 * BLS signature would be checked.  No I/O here: icp_agent.c sends.
 *
 * DESIGN
 * A hash tree stays the CBOR item libcbor parsed; it is checked once
 * (tree_ok: every node well formed, pruned hashes 32 bytes) so the walks
 * need no checks.  Lookups follow the spec's find_label, which tells a
 * label proven absent (between two present labels, or past an empty
 * subtree) from one that may hide in a pruned subtree (unknown).
 */
#include "backend/icp_agent.h"
#include "backend/icp_internal.h"

#include <cbor.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

cbor_item_t *icp_cbor_untag(cbor_item_t *it)
{
	while (it && cbor_isa_tag(it)) {
		cbor_item_t *inner = cbor_tag_item(it);	/* +1 */

		cbor_intermediate_decref(inner);	/* back: the document holds it */
		it = inner;
	}
	return it;
}

cbor_item_t *icp_cbor_get(cbor_item_t *map, const char *key)
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
			return icp_cbor_untag(pairs[i].value);
	}
	return NULL;
}

int icp_cbor_bytes(cbor_item_t *it, const unsigned char **p, size_t *n)
{
	if (!it || !cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
		return -1;
	*p = cbor_bytestring_handle(it);
	*n = cbor_bytestring_length(it);
	return 0;
}

int icp_cbor_text(cbor_item_t *it, char *out, size_t cap)
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

int icp_cbor_uint(cbor_item_t *it, uint64_t *v)
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

	it = icp_cbor_untag(it);
	if (depth > 128 || !it || !cbor_isa_array(it) || !cbor_array_is_definite(it) || cbor_array_size(it) < 1)
		return 0;
	a = cbor_array_handle(it);
	n = cbor_array_size(it);
	if (icp_cbor_uint(a[0], &tag) < 0)
		return 0;
	switch (tag) {
	case 0: return n == 1;
	case 1: return n == 3 && tree_ok(a[1], depth + 1) && tree_ok(a[2], depth + 1);
	case 2: return n == 3 && icp_cbor_bytes(a[1], &p, &len) == 0 && tree_ok(a[2], depth + 1);
	case 3: return n == 2 && icp_cbor_bytes(a[1], &p, &len) == 0;
	case 4: return n == 2 && icp_cbor_bytes(a[1], &p, &len) == 0 && len == 32;
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
	t->tree = cert ? icp_cbor_get(icp_cbor_untag(t->doc), "tree") : icp_cbor_untag(t->doc);
	if (!t->tree || !tree_ok(t->tree, 0)) {
		snprintf(err, errlen, cert ? "the certificate has no well-formed hash tree" : "not a hash tree");
		icp_tree_free(t);
		return NULL;
	}
	t->tree = icp_cbor_untag(t->tree);
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

	it = icp_cbor_untag(it);
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
		icp_cbor_bytes(a[1], &p, &n);
		sep(c, "ic-hashtree-labeled");
		EVP_DigestUpdate(c, p, n);
		EVP_DigestUpdate(c, r, 32);
		break;
	case 3:
		icp_cbor_bytes(a[1], &p, &n);
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
	cbor_item_t **a = cbor_array_handle(icp_cbor_untag(it));
	const unsigned char *p;
	size_t n;
	int c, r;

	switch (cbor_get_int(a[0])) {
	case 2:
		icp_cbor_bytes(a[1], &p, &n);
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
		cbor_item_t **a = cbor_array_handle(icp_cbor_untag(it));

		switch (cbor_get_int(a[0])) {
		case 3:
			return icp_cbor_bytes(a[1], val, len) == 0 ? ICP_FOUND : ICP_ERROR;
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
