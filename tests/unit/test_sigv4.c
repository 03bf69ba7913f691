/*
 * test_sigv4.c - the SigV4 signer on the published AWS test vectors, and
 * cross-checked against python3-botocore's signer on random requests.
 *
 * The vectors are the AWS Signature Version 4 test suite (service
 * "service", 2015-08-30T12:36:00Z, key AKIDEXAMPLE) and the worked examples
 * of the Amazon S3 API reference (2013-05-24, key AKIAIOSFODNN7EXAMPLE).
 * Paths are given raw and encoded once, as S3 wants (the suite's paths
 * that need encoding, get-utf8 and get-space, are written raw in its
 * request files and encoded once in its canonical requests too).
 *
 * The cross-check runs tests/unit/sigv4_botocore.py (MVFS_SRCDIR names the
 * source tree, default: the working directory), which signs random keys,
 * methods, paths, queries, headers, bodies and session tokens with botocore;
 * every one is signed again here and must give the same canonical request
 * and the same Authorization header.
 */
#include "unit.h"
#include "backend/sigv4.h"
#include "util/sha256.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUITE_KEY "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME 1440938160	/* 20150830T123600Z */
#define S3DOC_KEY "AKIAIOSFODNN7EXAMPLE"
#define S3DOC_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3DOC_TIME 1369353600	/* 20130524T000000Z */

struct vector {
	const char *name;
	int s3;			/* S3 rules (single encoding) and S3DOC keys */
	const char *method;
	const char *path;	/* raw, not encoded */
	struct sigv4_param params[3];
	size_t nparams;
	struct sigv4_header headers[6];	/* besides host and x-amz-date */
	size_t nheaders;
	const char *payload_hash;
	const char *signed_headers;
	const char *signature;
};

#define EMPTY SIGV4_EMPTY_SHA256
#define UNRES "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static const struct vector vectors[] = {
	{ "get-vanilla", 0, "GET", "/", {{0}}, 0, {{0}}, 0, EMPTY, "host;x-amz-date",
	  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "get-vanilla-query", 0, "GET", "/", {{0}}, 0, {{0}}, 0, EMPTY, "host;x-amz-date",
	  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "get-vanilla-empty-query-key", 0, "GET", "/", {{ "Param1", "value1" }}, 1, {{0}}, 0, EMPTY,
	  "host;x-amz-date", "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb" },
	{ "get-vanilla-query-order-key-case", 0, "GET", "/",
	  {{ "Param2", "value2" }, { "Param1", "value1" }}, 2, {{0}}, 0, EMPTY, "host;x-amz-date",
	  "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
	{ "get-vanilla-query-unreserved", 0, "GET", "/", {{ UNRES, UNRES }}, 1, {{0}}, 0, EMPTY,
	  "host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197" },
	{ "get-vanilla-utf8-query", 0, "GET", "/", {{ "\xe1\x88\xb4", "bar" }}, 1, {{0}}, 0, EMPTY,
	  "host;x-amz-date", "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04" },
	{ "get-utf8", 0, "GET", "/\xe1\x88\xb4", {{0}}, 0, {{0}}, 0, EMPTY, "host;x-amz-date",
	  "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85" },
	{ "get-space", 0, "GET", "/example space/", {{0}}, 0, {{0}}, 0, EMPTY, "host;x-amz-date",
	  "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741" },
	{ "get-unreserved", 0, "GET", "/" UNRES, {{0}}, 0, {{0}}, 0, EMPTY, "host;x-amz-date",
	  "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
	{ "get-header-key-duplicate", 0, "GET", "/", {{0}}, 0,
	  {{ "My-Header1", "value2" }, { "My-Header1", "value2" }, { "My-Header1", "value1" }}, 3, EMPTY,
	  "host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" },
	{ "get-header-value-order", 0, "GET", "/", {{0}}, 0,
	  {{ "My-Header1", "value4" }, { "My-Header1", "value1" }, { "My-Header1", "value3" },
	   { "My-Header1", "value2" }}, 4, EMPTY,
	  "host;my-header1;x-amz-date", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01" },
	{ "get-header-value-trim", 0, "GET", "/", {{0}}, 0,
	  {{ "My-Header1", " value1" }, { "My-Header2", " \"a   b   c\"" }}, 2, EMPTY,
	  "host;my-header1;my-header2;x-amz-date",
	  "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
	{ "post-vanilla", 0, "POST", "/", {{0}}, 0, {{0}}, 0, EMPTY, "host;x-amz-date",
	  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
	{ "post-vanilla-query", 0, "POST", "/", {{ "Param1", "value1" }}, 1, {{0}}, 0, EMPTY,
	  "host;x-amz-date", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
	{ "post-header-key-case", 0, "POST", "/", {{0}}, 0, {{0}}, 0, EMPTY, "host;x-amz-date",
	  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
	{ "post-header-key-sort", 0, "POST", "/", {{0}}, 0, {{ "My-Header1", "value1" }}, 1, EMPTY,
	  "host;my-header1;x-amz-date", "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c" },
	{ "post-header-value-case", 0, "POST", "/", {{0}}, 0, {{ "My-Header1", "VALUE1" }}, 1, EMPTY,
	  "host;my-header1;x-amz-date", "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
	/* Body "Param1=value1". */
	{ "post-x-www-form-urlencoded", 0, "POST", "/", {{0}}, 0,
	  {{ "Content-Type", "application/x-www-form-urlencoded" }}, 1,
	  "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e", "content-type;host;x-amz-date",
	  "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a" },
	{ "post-x-www-form-urlencoded-parameters", 0, "POST", "/", {{0}}, 0,
	  {{ "Content-Type", "application/x-www-form-urlencoded; charset=utf8" }}, 1,
	  "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e", "content-type;host;x-amz-date",
	  "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe" },
	/* The S3 API reference, "Signature Calculations for the Authorization
	 * Header: Transferring Payload in a Single Chunk". */
	{ "s3 GET Object", 1, "GET", "/test.txt", {{0}}, 0,
	  {{ "Range", "bytes=0-9" }, { "x-amz-content-sha256", EMPTY }}, 2, EMPTY,
	  "host;range;x-amz-content-sha256;x-amz-date",
	  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41" },
	{ "s3 PUT Object", 1, "PUT", "/test$file.text", {{0}}, 0,
	  {{ "Date", "Fri, 24 May 2013 00:00:00 GMT" }, { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	   { "x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072" }}, 3,
	  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
	  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd" },
	{ "s3 GET Bucket Lifecycle", 1, "GET", "/", {{ "lifecycle", "" }}, 1,
	  {{ "x-amz-content-sha256", EMPTY }}, 1, EMPTY, "host;x-amz-content-sha256;x-amz-date",
	  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543" },
	{ "s3 GET Bucket (List Objects)", 1, "GET", "/", {{ "max-keys", "2" }, { "prefix", "J" }}, 2,
	  {{ "x-amz-content-sha256", EMPTY }}, 1, EMPTY, "host;x-amz-content-sha256;x-amz-date",
	  "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7" },
};

static void test_vector(const struct vector *v)
{
	struct sigv4_header h[8];
	struct sigv4_creds cr = { v->s3 ? S3DOC_KEY : SUITE_KEY, v->s3 ? S3DOC_SECRET : SUITE_SECRET, NULL };
	struct sigv4_debug dbg;
	char amz[17], *uri, *auth, want[512];
	size_t i;

	sigv4_amz_date(v->s3 ? S3DOC_TIME : SUITE_TIME, amz);
	h[0] = (struct sigv4_header){ "Host", v->s3 ? "examplebucket.s3.amazonaws.com" : "example.amazonaws.com" };
	h[1] = (struct sigv4_header){ "X-Amz-Date", amz };
	for (i = 0; i < v->nheaders; i++)
		h[2 + i] = v->headers[i];
	uri = sigv4_uri_encode(v->path, strlen(v->path), 1);
	{
		struct sigv4_request r = {
			.method = v->method, .canonical_uri = uri, .params = v->params, .nparams = v->nparams,
			.headers = h, .nheaders = 2 + v->nheaders, .payload_hash = v->payload_hash,
			.region = "us-east-1", .service = v->s3 ? "s3" : "service",
			.now = v->s3 ? S3DOC_TIME : SUITE_TIME,
		};

		auth = sigv4_sign(&r, &cr, &dbg);
	}
	snprintf(want, sizeof(want), "AWS4-HMAC-SHA256 Credential=%s/%s/us-east-1/%s/aws4_request, "
		 "SignedHeaders=%s, Signature=%s", cr.access_key, v->s3 ? "20130524" : "20150830",
		 v->s3 ? "s3" : "service", v->signed_headers, v->signature);
	CHECK_STREQ(auth, want);
	if (!auth || strcmp(auth, want))
		fprintf(stderr, "vector %s: canonical request was:\n%s\n", v->name,
			dbg.canonical_request ? dbg.canonical_request : "(none)");
	sigv4_debug_release(&dbg);
	free(auth);
	free(uri);
}

static void test_vectors(void)
{
	size_t i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		test_vector(&vectors[i]);
}

static void test_encode(void)
{
	char *s = sigv4_uri_encode("a b/c~d+e$\xc3\xa9", strlen("a b/c~d+e$\xc3\xa9"), 1);

	CHECK_STREQ(s, "a%20b/c~d%2Be%24%C3%A9");
	free(s);
	s = sigv4_uri_encode("a/b=c&d", 7, 0);
	CHECK_STREQ(s, "a%2Fb%3Dc%26d");
	free(s);
}

static void test_sign_needs_host(void)
{
	struct sigv4_header h[] = { { "X-Amz-Date", "20150830T123600Z" } };
	struct sigv4_request r = { .method = "GET", .canonical_uri = "/", .headers = h, .nheaders = 1,
				   .payload_hash = EMPTY, .region = "us-east-1", .service = "s3", .now = SUITE_TIME };
	struct sigv4_creds cr = { SUITE_KEY, SUITE_SECRET, NULL };

	CHECK(sigv4_sign(&r, &cr, NULL) == NULL);
}

/* ---- the botocore cross-check ------------------------------------------- */

/* Decodes hex field S in place; returns its length. */
static size_t unhex(char *s)
{
	size_t n = 0, i;

	for (i = 0; s[i] && s[i + 1]; i += 2) {
		unsigned int b;

		sscanf(s + i, "%2x", &b);
		s[n++] = (char)b;
	}
	s[n] = '\0';
	return n;
}

static int crosscheck_line(char *line, int idx)
{
	struct sigv4_param p[16];
	struct sigv4_header h[16];
	struct sigv4_creds cr;
	struct sigv4_debug dbg;
	char *f[128], *tok, *uri, *auth, hash[65];
	int nf = 0, i, k = 0, np, nh, ok;

	/* strsep keeps empty fields (an empty hex string is "") */
	for (tok = line; tok && nf < 128; )
		f[nf++] = strsep(&tok, "\t\n");
	np = atoi(f[2]);
	if (np > 16 || nf < 3 + 2 * np + 1)
		return 0;
	for (i = 0; i < np; i++) {
		unhex(f[3 + 2 * i]);
		unhex(f[4 + 2 * i]);
		p[i] = (struct sigv4_param){ f[3 + 2 * i], f[4 + 2 * i] };
	}
	k = 3 + 2 * np;
	nh = atoi(f[k++]);
	if (nh > 16 || nf < k + 2 * nh + 9)
		return 0;
	for (i = 0; i < nh; i++) {
		unhex(f[k + 2 * i]);
		unhex(f[k + 2 * i + 1]);
		h[i] = (struct sigv4_header){ f[k + 2 * i], f[k + 2 * i + 1] };
	}
	k += 2 * nh;
	if (strcmp(f[k], "-") == 0) {
		strcpy(hash, SIGV4_UNSIGNED_PAYLOAD);
	} else {
		struct sha256 s;
		size_t blen = unhex(f[k]);

		sha256_init(&s);
		sha256_update(&s, f[k], blen);
		sha256_final(&s, hash);
		sha256_release(&s);
	}
	unhex(f[0]);
	unhex(f[1]);
	cr.access_key = (unhex(f[k + 1]), f[k + 1]);
	cr.secret_key = (unhex(f[k + 2]), f[k + 2]);
	cr.session_token = unhex(f[k + 3]) ? f[k + 3] : NULL;
	unhex(f[k + 4]);
	unhex(f[k + 6]);
	unhex(f[k + 7]);
	uri = sigv4_uri_encode(f[1], strlen(f[1]), 1);
	{
		struct sigv4_request r = {
			.method = f[0], .canonical_uri = uri, .params = p, .nparams = (size_t)np,
			.headers = h, .nheaders = (size_t)nh, .payload_hash = hash,
			.region = f[k + 4], .service = "s3", .now = (time_t)atoll(f[k + 5]),
		};

		auth = sigv4_sign(&r, &cr, &dbg);
	}
	ok = auth && dbg.canonical_request && strcmp(dbg.canonical_request, f[k + 6]) == 0 &&
	     strcmp(auth, f[k + 7]) == 0;
	if (!ok)
		fprintf(stderr, "botocore case %d differs:\n--- ours\n%s\n%s\n--- botocore\n%s\n%s\n", idx,
			dbg.canonical_request ? dbg.canonical_request : "(none)", auth ? auth : "(none)",
			f[k + 6], f[k + 7]);
	sigv4_debug_release(&dbg);
	free(auth);
	free(uri);
	return ok;
}

static void test_botocore(void)
{
	const char *src = getenv("MVFS_SRCDIR");
	char cmd[1024], *line = NULL;
	size_t cap = 0;
	int n = 0, good = 0, status;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/tests/unit/sigv4_botocore.py' 300 %ld",
		 src ? src : ".", (long)time(NULL));
	p = popen(cmd, "r");
	CHECK(p != NULL);
	if (!p)
		return;
	while (getline(&line, &cap, p) > 0) {
		n++;
		good += crosscheck_line(line, n);
	}
	free(line);
	status = pclose(p);
	if (status != 0)
		fprintf(stderr, "sigv4_botocore.py failed (is python3-botocore installed? make deps)\n");
	CHECK_EQ_INT(status, 0);
	CHECK_EQ_INT(n, 300);
	CHECK_EQ_INT(good, n);
	printf("botocore agreed on %d of %d random requests\n", good, n);
}

int main(void)
{
	TEST(test_encode);
	TEST(test_vectors);
	TEST(test_sign_needs_host);
	TEST(test_botocore);
	return unit_done();
}
