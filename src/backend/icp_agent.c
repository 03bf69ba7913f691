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
#include "backend/icp_internal.h"

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
	/* rounded down to the minute, as the official agents do: the same
	 * query within a minute is the same request, which boundary nodes may
	 * answer from their cache (3 to 4 minutes ahead: within the IC's 5) */
	c.ingress_expiry = ((uint64_t)now.tv_sec + INGRESS_EXPIRY_S) / 60 * 60 * 1000000000ull;
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

/* Waits before attempt ATTEMPT: what a 429 or 503 asks in Retry-After
 * (seconds, at most 30), else 100 ms doubling up to 2 s. */
static void backoff(int attempt, const struct http_resp *last)
{
	long ms = 50L << (attempt < 6 ? attempt : 6);
	char *end;
	long ra = last->retry_after[0] ? strtol(last->retry_after, &end, 10) : -1;

	if (ms > 2000)
		ms = 2000;
	if (ra >= 0 && *end == '\0' && (last->status == 429 || last->status == 503))
		ms = (ra > 30 ? 30 : ra) * 1000;
	usleep((useconds_t)ms * 1000);
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
			backoff(attempt, resp);
			http_resp_release(resp);	/* http_do resets, it does not free */
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
		m = icp_cbor_untag(doc);
		if (!m || icp_cbor_text(icp_cbor_get(m, "status"), status, sizeof(status)) < 0) {
			snprintf(err, errlen, "query: the replica's answer is not a query response");
			rc = -EIO;
		} else if (strcmp(status, "replied") == 0) {
			if (icp_cbor_bytes(icp_cbor_get(icp_cbor_get(m, "reply"), "arg"), &p, &n) < 0) {
				snprintf(err, errlen, "query: a reply without arg");
				rc = -EIO;
			} else {
				rc = set_reply(r, p, n);
			}
		} else {
			uint64_t code = 0;
			cbor_item_t *msg = icp_cbor_get(m, "reject_message"), *ec = icp_cbor_get(m, "error_code");

			icp_cbor_uint(icp_cbor_get(m, "reject_code"), &code);
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

	if (icp_cbor_bytes(cert_item, &p, &n) < 0) {
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
			rc = status_from_cert(a, icp_cbor_get(icp_cbor_untag(doc), "certificate"), rid, r, err, errlen);
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
		m = icp_cbor_untag(doc);
		if (!m || icp_cbor_text(icp_cbor_get(m, "status"), status, sizeof(status)) < 0) {
			snprintf(err, errlen, "call: the replica's answer is not a call response");
			rc = -EIO;
		} else if (strcmp(status, "replied") == 0) {
			rc = status_from_cert(a, icp_cbor_get(m, "certificate"), rid, r, err, errlen);
			if (rc == 0)	/* certified, but not done in time: poll */
				rc = poll_status(a, rid, r, err, errlen);
		} else {	/* non_replicated_rejection */
			uint64_t code = 0;
			char msg[512] = "", ec[32] = "";

			icp_cbor_uint(icp_cbor_get(m, "reject_code"), &code);
			icp_cbor_text(icp_cbor_get(m, "reject_message"), msg, sizeof(msg));
			icp_cbor_text(icp_cbor_get(m, "error_code"), ec, sizeof(ec));
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
			backoff(attempt, &resp);
			http_resp_release(&resp);
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
		if (icp_cbor_bytes(icp_cbor_get(icp_cbor_untag(doc), "root_key"), &p, &n) < 0) {
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
