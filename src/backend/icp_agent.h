/*
 * icp_agent.h - talking to one canister over the Internet Computer's HTTP
 * interface: signed query and update calls, and the certificates that
 * carry update replies.
 *
 * Requests are CBOR envelopes {content, sender_pubkey, sender_sig} (with
 * the self-describe tag); the request id is the representation-independent
 * hash of the content; the sender signs "\x0Aic-request" + request id with
 * its Ed25519 key (OpenSSL).  Update calls go to /api/v3/.../call (the
 * synchronous call, whose answer is a certificate); a replica without it
 * (404) gets /api/v2/.../call and read_state polling, remembered for the
 * agent's life.  A certificate's hash tree is parsed (libcbor), its root
 * hash recomputed, and the reply read at request_status/ID/...
 * Principals, request ids and hash trees are pure functions (icp_tree.c);
 * the calls are icp_agent.c.
 *
 * NOT VERIFIED: the certificate's BLS12-381 signature (no Debian library
 * does BLS12-381).  icp_cert_verify_signature() is the one place it would
 * be checked; it says -ENOTSUP today, and the backend logs at every open
 * that certificates are not BLS-verified.  The Ed25519 node signatures on
 * query replies are not checked either (the node keys would come from a
 * certificate, which is not verified).
 */
#ifndef MVFS_ICP_AGENT_H
#define MVFS_ICP_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "backend/icp_candid.h"

struct http;
struct icp_agent;

/* The longest textual principal (29 bytes: 63 characters). */
#define ICP_PRINCIPAL_TEXT_MAX 64

/* Textual principal <-> bytes.  icp_principal_decode returns the length
 * (0..29) or -EINVAL (bad characters, groups or checksum). */
int icp_principal_decode(const char *text, unsigned char out[29]);
void icp_principal_encode(const unsigned char *raw, size_t len, char out[ICP_PRINCIPAL_TEXT_MAX]);

/* The request id of a content map: the fields given (NULL / 0-length
 * fields are left out; PATHS only for read_state). */
struct icp_content {
	const char *request_type;	/* "call", "query", "read_state" */
	const unsigned char *canister_id;
	size_t canister_id_len;
	const char *method_name;
	const unsigned char *arg;
	size_t arg_len;
	const unsigned char *sender;
	size_t sender_len;
	const unsigned char *nonce;
	size_t nonce_len;
	uint64_t ingress_expiry;
	/* read_state: NPATHS paths of NLABELS[i] labels each */
	size_t npaths;
	const size_t *nlabels;
	const unsigned char *const *const *labels;
	const size_t *const *label_lens;
};
void icp_request_id(const struct icp_content *c, unsigned char out[32]);

/* A hash tree (the spec's CBOR form) and lookups in it. */
enum icp_lookup { ICP_FOUND, ICP_ABSENT, ICP_UNKNOWN, ICP_ERROR };
struct icp_tree;
/* Parses a certificate's CBOR; NULL with ERR when it is not one. */
struct icp_tree *icp_cert_parse(const unsigned char *cbor, size_t len, char *err, size_t errlen);
/* Parses a bare hash tree (tests). */
struct icp_tree *icp_tree_parse(const unsigned char *cbor, size_t len, char *err, size_t errlen);
void icp_tree_free(struct icp_tree *t);
/* The root hash of the tree (its reconstruction, as the spec defines it). */
void icp_tree_root_hash(const struct icp_tree *t, unsigned char out[32]);
/* Looks PATH (N labels) up: FOUND with the leaf in *VAL and *LEN (pointing
 * into T), ABSENT when the tree proves there is none, UNKNOWN when pruned. */
enum icp_lookup icp_tree_lookup(const struct icp_tree *t, const unsigned char *const *labels,
				const size_t *lens, size_t n, const unsigned char **val, size_t *len);

/* THE SEAM: would check the certificate's BLS signature over
 * "\x0Dic-state-root" + root hash under ROOT_KEY (DER), following a
 * delegation if present.  Returns -ENOTSUP: not implemented (no BLS12-381
 * library in Debian); a build that has one fills this in and returns 0 or
 * -EACCES. */
int icp_cert_verify_signature(const struct icp_tree *cert, const unsigned char *root_key, size_t root_key_len);

/* What a call or query came to. */
struct icp_result {
	int replied;			/* 1: REPLY holds the reply */
	unsigned char *reply;		/* malloc'd Candid */
	size_t reply_len;
	uint64_t reject_code;		/* when rejected */
	char reject_message[512];
	char error_code[32];
	long http_status;		/* the last HTTP status (0: none) */
};
void icp_result_release(struct icp_result *r);

struct icp_agent_config {
	const char *host;		/* "http://127.0.0.1:4943" */
	const char *canister;		/* textual canister id */
	const char *identity_file;	/* Ed25519 PEM; NULL: anonymous */
	int retries;			/* attempts per request; 0 = 5 */
	int poll_ms;			/* first read_state poll; 0 = 50 */
};

/* Opens an agent: loads the identity, asks /api/v2/status for the root
 * key.  NULL with errno and ERR on failure: ENOENT (no identity file),
 * EINVAL (not an Ed25519 key, bad canister id or host), EHOSTUNREACH (the
 * host does not answer), EPROTO (not an IC replica). */
struct icp_agent *icp_agent_open(const struct icp_agent_config *cfg, struct http *http, char *err, size_t errlen);
void icp_agent_free(struct icp_agent *a);
/* The sender's textual principal. */
const char *icp_agent_principal(const struct icp_agent *a);

/* A query / an update call of METHOD with Candid ARG.  0 with R filled
 * (replied or rejected), or -errno with R->http_status and ERR saying why
 * (-EFBIG: the message is over the ingress limit (413); -EIO: the replica
 * failed (5xx after retries, a transport failure, a bad answer);
 * -EACCES: the replica refused our signature or expiry (400/403)).
 * Transient failures (5xx, 429, transport) are retried with the same
 * signed message: the IC runs a message once, whatever we resend. */
int icp_query(struct icp_agent *a, const char *method, const struct cbuf *arg, struct icp_result *r,
	      char *err, size_t errlen);
int icp_update(struct icp_agent *a, const char *method, const struct cbuf *arg, struct icp_result *r,
	       char *err, size_t errlen);

#endif
