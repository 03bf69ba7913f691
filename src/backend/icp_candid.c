/*
 * icp_candid.c - the Candid encoders of the asset-canister calls and a
 * general decoder (see icp_candid.h).
 *
 * DESIGN
 * A Candid message is "DIDL", a type table (compound types, numbered from
 * 0), the argument types (an opcode below 0 for a primitive, else an index
 * into the table), then the values.  Record fields are sorted by their idl
 * hash; the encoders below write them in that order, which the hashes in
 * each comment show (the unit test checks the order).  Numbers are LEB128
 * (nat) and SLEB128 (int, negative type opcodes).
 */
#include "backend/icp_candid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	T_NULL = -1, T_BOOL = -2, T_NAT = -3, T_INT = -4, T_NAT8 = -5, T_NAT16 = -6, T_NAT32 = -7,
	T_NAT64 = -8, T_INT8 = -9, T_INT16 = -10, T_INT32 = -11, T_INT64 = -12, T_FLOAT32 = -13,
	T_FLOAT64 = -14, T_TEXT = -15, T_RESERVED = -16, T_EMPTY = -17, T_OPT = -18, T_VEC = -19,
	T_RECORD = -20, T_VARIANT = -21, T_FUNC = -22, T_SERVICE = -23, T_PRINCIPAL = -24,
};

void cbuf_put(struct cbuf *b, const void *p, size_t n)
{
	if (b->bad || n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		unsigned char *q;

		while (cap < b->len + n)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q) {
			b->bad = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void cbuf_release(struct cbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

uint32_t candid_hash(const char *name)
{
	uint32_t h = 0;

	for (; *name; name++)
		h = h * 223 + (unsigned char)*name;
	return h;
}

size_t candid_leb128(uint64_t v, unsigned char out[10])
{
	size_t n = 0;

	do {
		out[n] = v & 0x7f;
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static void leb(struct cbuf *b, uint64_t v)
{
	unsigned char out[10];

	cbuf_put(b, out, candid_leb128(v, out));
}

static void sleb(struct cbuf *b, int64_t v)
{
	for (;;) {
		unsigned char c = v & 0x7f;

		v >>= 7;	/* arithmetic shift: gcc and clang on every target we build for */
		if ((v == 0 && !(c & 0x40)) || (v == -1 && (c & 0x40))) {
			cbuf_put(b, &c, 1);
			return;
		}
		c |= 0x80;
		cbuf_put(b, &c, 1);
	}
}

struct cfield {
	const char *name;
	int64_t type;		/* a T_ code, or a table index */
};

/* A record or variant type (OP) of the N fields F, given in the order of
 * their hashes, as the wire wants them. */
static void fields(struct cbuf *b, int64_t op, size_t n, const struct cfield *f)
{
	sleb(b, op);
	leb(b, n);
	for (size_t i = 0; i < n; i++) {
		leb(b, candid_hash(f[i].name));
		sleb(b, f[i].type);
	}
}
#define FIELDS(b, op, ...) \
	fields(b, op, sizeof((const struct cfield[]){ __VA_ARGS__ }) / sizeof(struct cfield), \
	       (const struct cfield[]){ __VA_ARGS__ })

static void text(struct cbuf *b, const char *s)
{
	size_t n = strlen(s);

	leb(b, n);
	cbuf_put(b, s, n);
}

static void blob(struct cbuf *b, const void *p, size_t n)
{
	leb(b, n);
	cbuf_put(b, p, n);
}

static void opt_sha(struct cbuf *b, const unsigned char *sha)
{
	unsigned char one = 1, zero = 0;

	if (!sha) {
		cbuf_put(b, &zero, 1);
		return;
	}
	cbuf_put(b, &one, 1);
	blob(b, sha, 32);
}

static void magic(struct cbuf *b, unsigned ntypes)
{
	cbuf_put(b, "DIDL", 4);
	leb(b, ntypes);
}

/* Table types 0: vec nat8 (blob) and 1: opt 0, which several calls start with. */
static void blob_types(struct cbuf *b)
{
	sleb(b, T_VEC);
	sleb(b, T_NAT8);
	sleb(b, T_OPT);
	leb(b, 0);
}

/* One argument, of table type INDEX. */
static void args1(struct cbuf *b, unsigned index)
{
	leb(b, 1);
	leb(b, index);
}

void candid_enc_empty_record(struct cbuf *out)
{
	magic(out, 1);
	sleb(out, T_RECORD);
	leb(out, 0);
	args1(out, 0);
}

/* 0: vec text; 1: record { key (5343647); accept_encodings (2245317897) } */
void candid_enc_get(struct cbuf *out, const char *key, const char *encoding)
{
	magic(out, 2);
	sleb(out, T_VEC);
	sleb(out, T_TEXT);
	FIELDS(out, T_RECORD, { "key", T_TEXT }, { "accept_encodings", 0 });
	args1(out, 1);
	text(out, key);
	leb(out, 1);
	text(out, encoding);
}

/* 0: vec nat8; 1: opt 0; 2: record { key (5343647); sha256 (486188135);
 * index (3189021458); content_encoding (3425830873) } */
void candid_enc_get_chunk(struct cbuf *out, const char *key, const char *encoding, uint64_t index,
			  const unsigned char sha256[32])
{
	magic(out, 3);
	blob_types(out);
	FIELDS(out, T_RECORD, { "key", T_TEXT }, { "sha256", 1 }, { "index", T_NAT }, { "content_encoding", T_TEXT });
	args1(out, 2);
	text(out, key);
	opt_sha(out, sha256);
	leb(out, index);
	text(out, encoding);
}

/* 0: vec nat8; 1: opt 0; 2: record { key (5343647); content (427265337);
 * sha256 (486188135); content_type (1400566464); content_encoding
 * (3425830873) } */
void candid_enc_store(struct cbuf *out, const char *key, const char *content_type, const char *encoding,
		      const void *content, size_t len, const unsigned char sha256[32])
{
	magic(out, 3);
	blob_types(out);
	FIELDS(out, T_RECORD, { "key", T_TEXT }, { "content", 0 }, { "sha256", 1 }, { "content_type", T_TEXT },
	       { "content_encoding", T_TEXT });
	args1(out, 2);
	text(out, key);
	blob(out, content, len);
	opt_sha(out, sha256);
	text(out, content_type);
	text(out, encoding);
}

/* 0: vec nat8; 1: record { content (427265337); batch_id (1309252224) } */
void candid_enc_create_chunk(struct cbuf *out, uint64_t batch_id, const void *content, size_t len)
{
	magic(out, 2);
	sleb(out, T_VEC);
	sleb(out, T_NAT8);
	FIELDS(out, T_RECORD, { "content", 0 }, { "batch_id", T_NAT });
	args1(out, 1);
	blob(out, content, len);
	leb(out, batch_id);
}

/* 0: vec nat8; 1: opt 0; 2: vec nat;
 * 3: record { key (5343647); content_type (1400566464) }
 * 4: record { key; sha256 (486188135); chunk_ids (2808498726); content_encoding (3425830873) }
 * 5: variant { CreateAsset (870791476): 3; SetAssetContent (3104523211): 4 }
 * 6: vec 5; 7: record { batch_id (1309252224); operations (2553486956): 6 } */
void candid_enc_commit_asset(struct cbuf *out, uint64_t batch_id, const char *key, const char *content_type,
			     const char *encoding, const uint64_t *chunk_ids, size_t nchunks,
			     const unsigned char sha256[32])
{
	size_t i;

	magic(out, 8);
	blob_types(out);
	sleb(out, T_VEC);
	sleb(out, T_NAT);
	FIELDS(out, T_RECORD, { "key", T_TEXT }, { "content_type", T_TEXT });
	FIELDS(out, T_RECORD, { "key", T_TEXT }, { "sha256", 1 }, { "chunk_ids", 2 }, { "content_encoding", T_TEXT });
	FIELDS(out, T_VARIANT, { "CreateAsset", 3 }, { "SetAssetContent", 4 });
	sleb(out, T_VEC);
	leb(out, 5);
	FIELDS(out, T_RECORD, { "batch_id", T_NAT }, { "operations", 6 });
	args1(out, 7);
	leb(out, batch_id);
	leb(out, 2);
	leb(out, 0);	/* CreateAsset */
	text(out, key);
	text(out, content_type);
	leb(out, 1);	/* SetAssetContent */
	text(out, key);
	opt_sha(out, sha256);
	leb(out, nchunks);
	for (i = 0; i < nchunks; i++)
		leb(out, chunk_ids[i]);
	text(out, encoding);
}

/* 0: record { key (5343647) } */
void candid_enc_delete_asset(struct cbuf *out, const char *key)
{
	magic(out, 1);
	FIELDS(out, T_RECORD, { "key", T_TEXT });
	args1(out, 0);
	text(out, key);
}

/* ---- decoding ------------------------------------------------------------- */

struct ctype {
	int64_t op;		/* T_OPT, T_VEC, T_RECORD, T_VARIANT */
	int64_t inner;		/* OPT, VEC */
	size_t n;		/* RECORD, VARIANT */
	uint32_t *hashes;
	int64_t *types;
};

struct dec {
	const unsigned char *p, *end;
	struct ctype *table;
	size_t ntable;
	char *err;
	size_t errlen;
	int failed;
};

static int fail(struct dec *d, const char *why)
{
	if (!d->failed)
		snprintf(d->err, d->errlen, "%s", why);
	d->failed = 1;
	return -1;
}

static int rd_leb(struct dec *d, uint64_t *v)
{
	uint64_t r = 0;
	int shift = 0;

	for (;;) {
		unsigned char c;

		if (d->p >= d->end)
			return fail(d, "truncated number");
		c = *d->p++;
		if (shift == 63 && (c & 0x7e))
			return fail(d, "number over 64 bits");
		if (shift > 63)
			return fail(d, "number over 64 bits");
		r |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
		if (!(c & 0x80))
			break;
	}
	*v = r;
	return 0;
}

static int rd_sleb(struct dec *d, int64_t *v)
{
	uint64_t r = 0;
	int shift = 0;
	unsigned char c;

	do {
		if (d->p >= d->end)
			return fail(d, "truncated number");
		if (shift > 63)
			return fail(d, "number over 64 bits");
		c = *d->p++;
		r |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	if (shift < 64 && (c & 0x40))
		r |= ~(uint64_t)0 << shift;
	*v = (int64_t)r;
	return 0;
}

static int rd_bytes(struct dec *d, size_t n, const unsigned char **p)
{
	if ((size_t)(d->end - d->p) < n)
		return fail(d, "truncated value");
	*p = d->p;
	d->p += n;
	return 0;
}

static int check_type(struct dec *d, int64_t t)
{
	if (t >= 0 ? (uint64_t)t >= d->ntable : t < T_PRINCIPAL)
		return fail(d, "bad type reference");
	return 0;
}

static int read_table(struct dec *d)
{
	uint64_t n, i, j;

	if (rd_leb(d, &n) < 0)
		return -1;
	if (n > 10000)
		return fail(d, "type table too large");
	d->table = calloc(n ? n : 1, sizeof(*d->table));
	if (!d->table)
		return fail(d, "out of memory");
	d->ntable = n;
	for (i = 0; i < n; i++) {
		struct ctype *t = &d->table[i];
		uint64_t m;

		if (rd_sleb(d, &t->op) < 0)
			return -1;
		switch (t->op) {
		case T_OPT:
		case T_VEC:
			if (rd_sleb(d, &t->inner) < 0)
				return -1;
			break;
		case T_RECORD:
		case T_VARIANT:
			if (rd_leb(d, &m) < 0)
				return -1;
			if (m > 1000)
				return fail(d, "too many fields");
			t->n = m;
			t->hashes = calloc(m ? m : 1, sizeof(*t->hashes));
			t->types = calloc(m ? m : 1, sizeof(*t->types));
			if (!t->hashes || !t->types)
				return fail(d, "out of memory");
			for (j = 0; j < m; j++) {
				uint64_t h;

				if (rd_leb(d, &h) < 0 || rd_sleb(d, &t->types[j]) < 0)
					return -1;
				if (h > UINT32_MAX || (j > 0 && h <= t->hashes[j - 1]))
					return fail(d, "record fields out of order");
				t->hashes[j] = (uint32_t)h;
			}
			break;
		default:
			return fail(d, "a type this decoder does not read (func, service)");
		}
	}
	for (i = 0; i < n; i++) {
		struct ctype *t = &d->table[i];

		if ((t->op == T_OPT || t->op == T_VEC) && check_type(d, t->inner) < 0)
			return -1;
		for (j = 0; j < t->n; j++)
			if (check_type(d, t->types[j]) < 0)
				return -1;
	}
	return 0;
}

static struct cval *new_val(struct dec *d, enum cval_kind k)
{
	struct cval *v = calloc(1, sizeof(*v));

	if (!v)
		fail(d, "out of memory");
	else
		v->kind = k;
	return v;
}

static int fixed(struct dec *d, size_t n, uint64_t *out, int sign)
{
	const unsigned char *p;
	uint64_t r = 0;
	size_t i;

	if (rd_bytes(d, n, &p) < 0)
		return -1;
	for (i = 0; i < n; i++)
		r |= (uint64_t)p[i] << (8 * i);
	if (sign && n < 8 && (r >> (8 * n - 1)) & 1)
		r |= ~(uint64_t)0 << (8 * n);
	*out = r;
	return 0;
}

static struct cval *read_val(struct dec *d, int64_t t, int depth);

static struct cval *num_val(struct dec *d, enum cval_kind k, uint64_t u)
{
	struct cval *v = new_val(d, k);

	if (v)
		v->u = u;
	return v;
}

/* A value of N bytes of the message (text, blob, principal). */
static struct cval *bytes_val(struct dec *d, enum cval_kind k, uint64_t n)
{
	struct cval *v = new_val(d, k);

	if (v && rd_bytes(d, n, &v->p) < 0) {
		free(v);
		return NULL;
	}
	if (v)
		v->len = n;
	return v;
}

static struct cval *read_items(struct dec *d, struct cval *v, size_t n, const int64_t *types, int64_t one,
			       int depth)
{
	size_t i;

	v->items = calloc(n ? n : 1, sizeof(*v->items));
	if (!v->items) {
		fail(d, "out of memory");
		cval_free(v);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		v->items[i] = read_val(d, types ? types[i] : one, depth + 1);
		v->n = i + 1;
		if (!v->items[i]) {
			cval_free(v);
			return NULL;
		}
	}
	return v;
}

static struct cval *read_val(struct dec *d, int64_t t, int depth)
{
	struct cval *v;
	uint64_t u;
	int64_t s;

	if (depth > 64) {
		fail(d, "nested too deep");
		return NULL;
	}
	if (t >= 0) {
		struct ctype *ct = &d->table[t];

		switch (ct->op) {
		case T_OPT: {
			const unsigned char *flag;

			if (rd_bytes(d, 1, &flag) < 0 || !(v = new_val(d, CV_OPT)))
				return NULL;
			if (*flag > 1) {
				fail(d, "bad opt flag");
				free(v);
				return NULL;
			}
			return read_items(d, v, *flag, NULL, ct->inner, depth);
		}
		case T_VEC:
			if (rd_leb(d, &u) < 0)
				return NULL;
			if (ct->inner == T_NAT8)
				return bytes_val(d, CV_BLOB, u);
			if (u > (uint64_t)(d->end - d->p) && ct->inner != T_NULL && ct->inner != T_RESERVED) {
				fail(d, "vec longer than the message");
				return NULL;
			}
			if (u > (1u << 24)) {
				fail(d, "vec too long");
				return NULL;
			}
			if (!(v = new_val(d, CV_VEC)))
				return NULL;
			return read_items(d, v, u, NULL, ct->inner, depth);
		case T_RECORD:
			if (!(v = new_val(d, CV_RECORD)))
				return NULL;
			v->hashes = calloc(ct->n ? ct->n : 1, sizeof(*v->hashes));
			if (!v->hashes) {
				free(v);
				fail(d, "out of memory");
				return NULL;
			}
			memcpy(v->hashes, ct->hashes, ct->n * sizeof(*v->hashes));
			return read_items(d, v, ct->n, ct->types, 0, depth);
		case T_VARIANT:
			if (rd_leb(d, &u) < 0)
				return NULL;
			if (u >= ct->n) {
				fail(d, "variant index out of range");
				return NULL;
			}
			if (!(v = new_val(d, CV_VARIANT)) || !(v->hashes = calloc(1, sizeof(*v->hashes)))) {
				free(v);
				fail(d, "out of memory");
				return NULL;
			}
			v->hashes[0] = ct->hashes[u];
			return read_items(d, v, 1, NULL, ct->types[u], depth);
		}
		fail(d, "bad type");
		return NULL;
	}
	switch (t) {
	case T_NULL:
		return new_val(d, CV_NULL);
	case T_RESERVED:
		return new_val(d, CV_RESERVED);
	case T_BOOL:
		if (fixed(d, 1, &u, 0) < 0 || u > 1)
			return fail(d, "bad bool"), NULL;
		return num_val(d, CV_BOOL, u);
	case T_NAT:
		return rd_leb(d, &u) < 0 ? NULL : num_val(d, CV_NAT, u);
	case T_INT:
		return rd_sleb(d, &s) < 0 ? NULL : num_val(d, CV_INT, (uint64_t)s);
	case T_NAT8: case T_NAT16: case T_NAT32: case T_NAT64:
		return fixed(d, (size_t)1 << (T_NAT8 - t), &u, 0) < 0 ? NULL : num_val(d, CV_NAT, u);
	case T_INT8: case T_INT16: case T_INT32: case T_INT64:
		return fixed(d, (size_t)1 << (T_INT8 - t), &u, 1) < 0 ? NULL : num_val(d, CV_INT, u);
	case T_TEXT:
		return rd_leb(d, &u) < 0 ? NULL : bytes_val(d, CV_TEXT, u);
	case T_PRINCIPAL: {
		const unsigned char *flag;

		if (rd_bytes(d, 1, &flag) < 0 || *flag != 1 || rd_leb(d, &u) < 0 || u > 29)
			return fail(d, "bad principal"), NULL;
		return bytes_val(d, CV_PRINCIPAL, u);
	}
	}
	fail(d, "a type this decoder does not read (float, empty)");
	return NULL;
}

struct cval *candid_decode(const unsigned char *msg, size_t len, char *err, size_t errlen)
{
	struct dec d = { .p = msg, .end = msg + len, .err = err, .errlen = errlen };
	struct cval *v = NULL;
	uint64_t nargs = 0;
	int64_t t = 0;
	size_t i;

	if (errlen)
		err[0] = '\0';
	if (len < 4 || memcmp(msg, "DIDL", 4) != 0) {
		fail(&d, "not a Candid message (no DIDL)");
		return NULL;
	}
	d.p += 4;
	if (read_table(&d) == 0 && rd_leb(&d, &nargs) == 0) {
		int64_t *types = calloc(nargs ? nargs : 1, sizeof(*types));

		for (i = 0; types && i < nargs && i < 1000; i++)
			if (rd_sleb(&d, &types[i]) < 0 || check_type(&d, types[i]) < 0)
				break;
		if (!types)
			fail(&d, "out of memory");
		else if (nargs > 1000)
			fail(&d, "too many arguments");
		else if (!d.failed) {
			t = nargs ? types[0] : T_NULL;
			v = read_val(&d, t, 0);
		}
		free(types);
	}
	for (i = 0; i < d.ntable; i++) {
		free(d.table[i].hashes);
		free(d.table[i].types);
	}
	free(d.table);
	if (d.failed) {
		cval_free(v);
		return NULL;
	}
	return v;
}

void cval_free(struct cval *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < v->n; i++)
		cval_free(v->items[i]);
	free(v->items);
	free(v->hashes);
	free(v->owned);
	free(v);
}

const struct cval *cval_field(const struct cval *v, const char *name)
{
	uint32_t h = candid_hash(name);
	size_t i;

	if (!v || (v->kind != CV_RECORD && v->kind != CV_VARIANT))
		return NULL;
	for (i = 0; i < v->n; i++)
		if (v->hashes[i] == h)
			return v->items[i];
	return NULL;
}

const struct cval *cval_opt(const struct cval *v)
{
	return v && v->kind == CV_OPT && v->n == 1 ? v->items[0] : NULL;
}
