/*
 * icp_candid.h - Candid, for exactly the asset-canister calls mvaultfs makes.
 *
 * The encoders write the arguments of the calls in src/backend/icp_assets.did
 * (each with its own type table; records list only the fields we send: the
 * canister reads a missing opt field as null, as Candid's subtyping says).
 * The decoder is general: it reads any type table and value into a small
 * tree (struct cval), so a reply with more fields than we know, in any
 * order, still decodes; callers pick the fields they need by name.
 */
#ifndef MVFS_ICP_CANDID_H
#define MVFS_ICP_CANDID_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer.  buf_release frees it; on allocation failure
 * every later append is a no-op and BAD is set. */
struct cbuf {
	unsigned char *p;
	size_t len, cap;
	int bad;
};
void cbuf_put(struct cbuf *b, const void *p, size_t n);
void cbuf_release(struct cbuf *b);

/* The calls' arguments, appended to OUT (check out->bad).  Blobs are
 * copied; SHA256 may be NULL (opt absent). */
void candid_enc_empty_record(struct cbuf *out);	/* list, create_batch */
void candid_enc_get(struct cbuf *out, const char *key, const char *encoding);
void candid_enc_get_chunk(struct cbuf *out, const char *key, const char *encoding, uint64_t index,
			  const unsigned char sha256[32]);
void candid_enc_store(struct cbuf *out, const char *key, const char *content_type, const char *encoding,
		      const void *content, size_t len, const unsigned char sha256[32]);
void candid_enc_create_chunk(struct cbuf *out, uint64_t batch_id, const void *content, size_t len);
/* commit_batch with CreateAsset{key, content_type} then
 * SetAssetContent{key, encoding, chunk_ids, sha256}. */
void candid_enc_commit_asset(struct cbuf *out, uint64_t batch_id, const char *key, const char *content_type,
			     const char *encoding, const uint64_t *chunk_ids, size_t nchunks,
			     const unsigned char sha256[32]);
void candid_enc_delete_asset(struct cbuf *out, const char *key);

/* V as unsigned LEB128 into OUT; returns its length (1..10). */
size_t candid_leb128(uint64_t v, unsigned char out[10]);

/* The idl hash of a field name. */
uint32_t candid_hash(const char *name);

enum cval_kind {
	CV_NULL, CV_BOOL, CV_NAT, CV_INT, CV_TEXT, CV_BLOB, CV_PRINCIPAL, CV_VEC, CV_OPT, CV_RECORD,
	CV_VARIANT, CV_RESERVED,
};

/* A decoded value.  TEXT, BLOB and PRINCIPAL point into the decoded
 * message (which must outlive the tree).  A record's and a variant's
 * members are in N/ITEMS with their field hashes in HASHES (a variant has
 * one); a vec's in N/ITEMS; an opt has 0 or 1. */
struct cval {
	enum cval_kind kind;
	uint64_t u;		/* NAT, BOOL; INT as two's complement */
	const unsigned char *p;	/* TEXT, BLOB, PRINCIPAL */
	size_t len;
	size_t n;
	struct cval **items;
	uint32_t *hashes;
	void *owned;		/* freed with the value: the message it points into */
};

/* Decodes the first value of a Candid message ("DIDL"...).  Returns the
 * value (free with cval_free) or NULL with ERR (ERRLEN bytes) saying why:
 * a bad message, a nat over 64 bits, a type we do not read (float, func,
 * service), nesting over 64 deep.  A message with no values gives CV_NULL
 * (the reply of a method returning ()). */
struct cval *candid_decode(const unsigned char *msg, size_t len, char *err, size_t errlen);
void cval_free(struct cval *v);

/* The field NAME of record V, or NULL. */
const struct cval *cval_field(const struct cval *v, const char *name);
/* The content of opt V (NULL when absent or V is not an opt). */
const struct cval *cval_opt(const struct cval *v);

#endif
