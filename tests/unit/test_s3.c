/*
 * test_s3.c - the pure parts of the S3 backend: the errno mapper, the retry
 * predicate and backoff, Retry-After, the XML field reader, part sizes, the
 * transfer settings a remote store's URL gives, and the AES-256-GCM secrets that keep S3 keys in the database.
 */
#include "unit.h"
#include "backend/be_util.h"
#include "backend/s3_err.h"
#include "util/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void test_errno_map(void)
{
	CHECK_EQ_INT(s3_status_to_errno(200, "", HTTP_OK), 0);
	CHECK_EQ_INT(s3_status_to_errno(206, "", HTTP_OK), 0);
	CHECK_EQ_INT(s3_status_to_errno(403, "AccessDenied", HTTP_OK), -EACCES);
	CHECK_EQ_INT(s3_status_to_errno(403, "SignatureDoesNotMatch", HTTP_OK), -EACCES);
	CHECK_EQ_INT(s3_status_to_errno(403, "InvalidAccessKeyId", HTTP_OK), -EACCES);
	CHECK_EQ_INT(s3_status_to_errno(403, "RequestTimeTooSkewed", HTTP_OK), -EACCES);
	CHECK_EQ_INT(s3_status_to_errno(400, "ExpiredToken", HTTP_OK), -EACCES);
	CHECK_EQ_INT(s3_status_to_errno(404, "NoSuchKey", HTTP_OK), -ENOENT);
	CHECK_EQ_INT(s3_status_to_errno(404, "", HTTP_OK), -ENOENT);	/* HEAD has no body */
	CHECK_EQ_INT(s3_status_to_errno(404, "NoSuchBucket", HTTP_OK), -ENXIO);
	CHECK_EQ_INT(s3_status_to_errno(400, "EntityTooLarge", HTTP_OK), -EFBIG);
	CHECK_EQ_INT(s3_status_to_errno(400, "KeyTooLongError", HTTP_OK), -ENAMETOOLONG);
	CHECK_EQ_INT(s3_status_to_errno(400, "InvalidArgument", HTTP_OK), -EINVAL);
	CHECK_EQ_INT(s3_status_to_errno(416, "InvalidRange", HTTP_OK), -EINVAL);
	CHECK_EQ_INT(s3_status_to_errno(301, "PermanentRedirect", HTTP_OK), -EINVAL);
	CHECK_EQ_INT(s3_status_to_errno(409, "BucketNotEmpty", HTTP_OK), -EBUSY);
	CHECK_EQ_INT(s3_status_to_errno(507, "", HTTP_OK), -ENOSPC);
	CHECK_EQ_INT(s3_status_to_errno(403, "QuotaExceeded", HTTP_OK), -ENOSPC);
	CHECK_EQ_INT(s3_status_to_errno(503, "SlowDown", HTTP_OK), -EIO);
	CHECK_EQ_INT(s3_status_to_errno(500, "", HTTP_OK), -EIO);
	CHECK_EQ_INT(s3_status_to_errno(429, "", HTTP_OK), -EIO);
	CHECK_EQ_INT(s3_status_to_errno(0, "", HTTP_FAIL_RESET), -EIO);
	CHECK_EQ_INT(s3_status_to_errno(0, "", HTTP_FAIL_CONNECT), -EIO);
}

static void test_retryable(void)
{
	static const long yes[] = { 429, 500, 502, 503, 504 };
	static const long no[] = { 400, 401, 403, 404, 405, 409, 411, 412, 416, 501 };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		CHECK(s3_is_retryable(yes[i], "", HTTP_OK));
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		CHECK(!s3_is_retryable(no[i], "", HTTP_OK));
	CHECK(s3_is_retryable(400, "RequestTimeout", HTTP_OK));
	CHECK(s3_is_retryable(200, "InternalError", HTTP_OK));	/* a 200 with an <Error> */
	CHECK(!s3_is_retryable(403, "SignatureDoesNotMatch", HTTP_OK));
	CHECK(!s3_is_retryable(403, "RequestTimeTooSkewed", HTTP_OK));
	CHECK(s3_is_retryable(0, "", HTTP_FAIL_RESET));
	CHECK(s3_is_retryable(0, "", HTTP_FAIL_TIMEOUT));
	CHECK(s3_is_retryable(0, "", HTTP_FAIL_CONNECT));
	CHECK(s3_is_retryable(0, "", HTTP_FAIL_OVERFLOW));
	CHECK(!s3_is_retryable(0, "", HTTP_FAIL_TLS));
	CHECK(!s3_is_retryable(0, "", HTTP_FAIL_CERT));
	CHECK(!s3_is_retryable(0, "", HTTP_FAIL_CAFILE));
}

static void test_backoff(void)
{
	struct s3_retry_policy p = { 8, 100, 2000 };
	unsigned seed = 42;
	int a, i;

	for (a = 2; a <= 12; a++) {
		long ceiling = 100L << (a - 2);

		if (ceiling > 2000 || a > 7)
			ceiling = 2000;
		for (i = 0; i < 50; i++) {
			long w = s3_backoff_ms(&p, a, -1, &seed);

			CHECK(w >= 0 && w <= ceiling);
		}
	}
	/* Retry-After wins over a shorter backoff, but is capped too. */
	CHECK(s3_backoff_ms(&p, 2, 1500, &seed) >= 1500);
	CHECK_EQ_INT(s3_backoff_ms(&p, 2, 3600000, &seed), 8000);
	CHECK_EQ_INT(s3_retry_after_ms("3", 0), 3000);
	/* found by make fuzz: seconds * 1000 overflowed */
	CHECK(s3_retry_after_ms("99999999999999999999", 0) >= 3600000);
	CHECK(s3_retry_after_ms("9223372036854775", 0) >= 3600000);
	CHECK_EQ_INT(s3_retry_after_ms("", 0), -1);
	CHECK_EQ_INT(s3_retry_after_ms("soon", 0), -1);
	CHECK_EQ_INT(s3_retry_after_ms("Wed, 21 Oct 2015 07:28:05 GMT", 1445412480L), 5000);
	/* RFC 9110's obsolete forms are still HTTP dates */
	CHECK_EQ_INT(s3_retry_after_ms("Wednesday, 21-Oct-15 07:28:05 GMT", 1445412480L), 5000);
	CHECK_EQ_INT(s3_retry_after_ms("Wed Oct 21 07:28:05 2015", 1445412480L), 5000);
	CHECK_EQ_INT(s3_retry_after_ms("Wed, 21 Oct 2015 07:28:05 GMT", 1445412490L), 0);	/* past */
}

static void test_xml(void)
{
	static const char doc[] = "<?xml version=\"1.0\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><KeyCount>2</KeyCount>"
		"<Contents><Key>a&amp;b&lt;&#x4e2d;</Key><Size>10</Size></Contents>"
		"<Contents><Key>c</Key><Size>0</Size></Contents><Empty/>"
		"<IsTruncated>false</IsTruncated></ListBucketResult>";
	static const char err[] = "\xef\xbb\xbf <Error><Code>SlowDown</Code><Message>x &gt; y</Message></Error>\n";
	static const char *const not_xml[] = {
		"<html", "Service Unavailable", "", "{\"json\": 1}", "<Code>SlowDo",
		"<Error><Code>A</Code></Err>",
		/* a DTD: refused, its entities never expanded */
		"<!DOCTYPE E [<!ENTITY x \"xx\">]><Error><Code>&x;</Code></Error>",
		"<!DOCTYPE E SYSTEM \"http://127.0.0.1:1/e.dtd\"><Error/>",
	};
	xmlNode *root = s3_xml_parse(doc, sizeof(doc) - 1), *c = NULL, *e;
	char out[64], small[3];
	size_t i;
	int n = 0;

	CHECK(root && s3_xml_is(root, "ListBucketResult") && !s3_xml_is(root, "Error"));
	while ((c = s3_xml_child(root, c, "Contents"))) {
		CHECK_EQ_INT(s3_xml_get(c, "Key", out, sizeof(out)), 1);
		if (n == 0)
			CHECK_STREQ(out, "a&b<\xe4\xb8\xad");
		else
			CHECK_STREQ(out, "c");
		n++;
	}
	CHECK_EQ_INT(n, 2);
	/* Only children: <Key> is not one of the root's, nor is <KeyCount> a <Key>. */
	CHECK_EQ_INT(s3_xml_get(root, "Key", out, sizeof(out)), 0);
	CHECK_EQ_INT(s3_xml_get(root, "KeyCount", out, sizeof(out)), 1);
	CHECK_STREQ(out, "2");
	CHECK_EQ_INT(s3_xml_get(root, "Empty", out, sizeof(out)), 1);
	CHECK_STREQ(out, "");
	CHECK_EQ_INT(s3_xml_get(root, "Missing", out, sizeof(out)), 0);
	CHECK_STREQ(out, "");
	CHECK_EQ_INT(s3_xml_get(root, "IsTruncated", small, sizeof(small)), -1);
	CHECK_EQ_INT(s3_xml_get(root, "IsTruncated", out, 5), -1);	/* "false" and no room for its NUL */
	CHECK_EQ_INT(s3_xml_get(root, "IsTruncated", out, 6), 1);
	CHECK_STREQ(out, "false");
	s3_xml_free(root);

	e = s3_xml_parse(err, sizeof(err) - 1);
	CHECK(e && s3_xml_is(e, "Error"));
	CHECK_EQ_INT(s3_xml_get(e, "Code", out, sizeof(out)), 1);
	CHECK_STREQ(out, "SlowDown");
	CHECK_EQ_INT(s3_xml_get(e, "Message", out, sizeof(out)), 1);
	CHECK_STREQ(out, "x > y");
	s3_xml_free(e);
	for (i = 0; i < sizeof(not_xml) / sizeof(not_xml[0]); i++) {
		e = s3_xml_parse(not_xml[i], strlen(not_xml[i]));
		if (e)
			fprintf(stderr, "parsed as XML: %s\n", not_xml[i]);
		CHECK(!e);
		s3_xml_free(e);
	}
	CHECK(!s3_xml_parse(NULL, 0));
}

static void test_part_size(void)
{
	const uint64_t MiB = 1 << 20;

	CHECK_EQ_INT(s3_part_size(100 * MiB, 16 * MiB), 16 * MiB);
	CHECK_EQ_INT(s3_part_size(100 * MiB, 1 * MiB), 5 * MiB);	/* S3's minimum */
	/* 5 GiB + 1 byte (over one PUT's limit): fits in 10,000 parts. */
	CHECK((5ull << 30) + 1 <= s3_part_size((5ull << 30) + 1, 16 * MiB) * S3_MAX_PARTS);
	/* 1 TiB at 16 MiB would be 65,536 parts: the part grows. */
	CHECK(s3_part_size(1ull << 40, 16 * MiB) * S3_MAX_PARTS >= 1ull << 40);
	CHECK(s3_part_size(1ull << 40, 16 * MiB) <= S3_MAX_PART);
	CHECK_EQ_INT(s3_part_size(S3_MAX_OBJECT, 16 * MiB) > 0, 1);
	CHECK_EQ_INT(s3_part_size(S3_MAX_OBJECT + 1, 16 * MiB), 0);
}

/* What a remote store's URL options settle to: the store's own part size
 * (8 MiB here) and the shared defaults for what the URL leaves out. */
static void test_xfer_settle(void)
{
	static const struct {
		const char *opts;	/* name=value&... */
		uint64_t part_size, threshold;
		int concurrency, attempts;
		long base_ms, cap_ms, stall_s;
		int max_idle;
	} cases[] = {
		{ "", 8u << 20, 8u << 20, 4, 8, 200, 10000, 0, 16 },
		/* the threshold follows the part size asked for */
		{ "part_size=6M&concurrency=2&retries=3&retry_cap_ms=50&timeout=7", 6u << 20, 6u << 20, 2, 3, 200, 50, 7,
		  12 },
		{ "threshold=1G&retry_base_ms=5", 8u << 20, 1u << 30, 4, 8, 5, 10000, 0, 16 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct backend_xfer_opts o = { 0 };
		struct http_config hc = { 0 };
		char opts[128], *save = NULL;
		struct backend_xfer x;

		snprintf(opts, sizeof(opts), "%s", cases[i].opts);
		for (char *kv = strtok_r(opts, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(kv, '=');

			*eq = '\0';
			CHECK_EQ_INT(backend_xfer_opt(&o, kv, eq + 1), 0);
		}
		x = backend_xfer_settle(&o, 8u << 20, &hc);
		CHECK_EQ_INT(x.part_size, cases[i].part_size);
		CHECK_EQ_INT(x.threshold, cases[i].threshold);
		CHECK_EQ_INT(x.concurrency, cases[i].concurrency);
		CHECK_EQ_INT(x.retry.max_attempts, cases[i].attempts);
		CHECK_EQ_INT(x.retry.base_ms, cases[i].base_ms);
		CHECK_EQ_INT(x.retry.cap_ms, cases[i].cap_ms);
		CHECK_EQ_INT(hc.stall_timeout_s, cases[i].stall_s);
		CHECK_EQ_INT(hc.max_idle, cases[i].max_idle);
	}
}

/* An upload of NPARTS parts of 16 MiB under the pace from START, on a
 * link where each connection carries PER_CONN bytes/s and all of them
 * together at most LINK: parts start while fewer than the limit are in
 * flight, and each finishes after its bytes at the share it gets.  Returns
 * the limit at the end. */
static int pace_run(int start, int nparts, double per_conn, double link)
{
	const double part = 16.0 * (1 << 20);
	double finish[S3_PACE_CAP + 32], now = 0, rate;
	struct s3_pace p;
	int k = 0, next = 0, i, first;

	s3_pace_init(&p, start, S3_PACE_CAP);
	while (next < nparts || k > 0) {
		while (next < nparts && k < p.limit) {
			rate = per_conn * (k + 1) < link ? per_conn : link / (k + 1);
			finish[k++] = now + part / rate;
			next++;
		}
		for (first = 0, i = 1; i < k; i++)
			if (finish[i] < finish[first])
				first = i;
		now = finish[first];
		finish[first] = finish[--k];
		s3_pace_done(&p, (uint64_t)part, now);
	}
	return p.limit;
}

static void test_pace(void)
{
	struct s3_pace p;

	/* Every connection adds its own rate (a distant store): grows to the cap. */
	CHECK_EQ_INT(pace_run(4, 256, 20e6, 10e9), S3_PACE_CAP);
	/* The link is full at 4 (s3rver on this machine): 8 did not pay, back to 4. */
	CHECK_EQ_INT(pace_run(4, 256, 100e6, 400e6), 4);
	/* Full at 8 in flight: 8 paid, 16 did not. */
	CHECK_EQ_INT(pace_run(4, 256, 25e6, 200e6), 8);
	/* Full at 12 in flight: 16 still gives 1.5x the rate of 8, so it stays. */
	CHECK_EQ_INT(pace_run(4, 256, 25e6, 300e6), 16);
	/* A gain under S3_PACE_GAIN (5 %) does not pay. */
	CHECK_EQ_INT(pace_run(4, 256, 100e6, 420e6), 4);
	/* Too few parts to measure a step: stays where it started. */
	CHECK_EQ_INT(pace_run(4, 7, 20e6, 10e9), 4);
	/* At or over the cap: fixed from the start. */
	s3_pace_init(&p, 32, S3_PACE_CAP);
	CHECK(p.frozen);
	CHECK_EQ_INT(s3_pace_done(&p, 1, 1), 32);
	/* A step timed in no time at all (a clock that did not move) grows, never divides by zero. */
	s3_pace_init(&p, 1, 4);
	CHECK_EQ_INT(s3_pace_done(&p, 1, 0), 1);
	CHECK_EQ_INT(s3_pace_done(&p, 1, 0), 2);
}

static void test_secret(void)
{
	char dir[] = "/tmp/mvfs-test-secret.XXXXXX", path[64], *enc, *dec, *enc2;
	unsigned char k1[SECRET_KEY_LEN], k2[SECRET_KEY_LEN], k3[SECRET_KEY_LEN];
	struct stat st;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/key", dir);
	CHECK_EQ_INT(secret_key_load(path, 0, k1), -ENOENT);
	CHECK_EQ_INT(secret_key_load(path, 1, k1), 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK_EQ_INT(secret_key_load(path, 1, k2), 0);
	CHECK(memcmp(k1, k2, sizeof(k1)) == 0);

	enc = secret_encrypt(k1, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	enc2 = secret_encrypt(k1, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	CHECK(enc && strncmp(enc, "v1:", 3) == 0 && !strstr(enc, "EXAMPLE"));
	CHECK(enc && enc2 && strcmp(enc, enc2) != 0);	/* a fresh nonce each time */
	dec = secret_decrypt(k1, enc);
	CHECK_STREQ(dec, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	secret_free(dec);
	/* Another key, a changed byte, junk: EBADMSG, never garbage. */
	memcpy(k3, k1, sizeof(k3));
	k3[0] ^= 1;
	errno = 0;
	CHECK(secret_decrypt(k3, enc) == NULL && errno == EBADMSG);
	enc[10] = enc[10] == 'A' ? 'B' : 'A';
	CHECK(secret_decrypt(k1, enc) == NULL);
	CHECK(secret_decrypt(k1, "plaintext") == NULL);
	CHECK(secret_decrypt(k1, "v1:") == NULL);
	CHECK(secret_decrypt(k1, "v1:AAAA") == NULL);
	free(enc);
	free(enc2);
	dec = secret_decrypt(k1, (enc = secret_encrypt(k1, "")));
	CHECK_STREQ(dec, "");
	secret_free(dec);
	free(enc);

	/* A key file others can read is refused. */
	CHECK(chmod(path, 0644) == 0);
	CHECK_EQ_INT(secret_key_load(path, 1, k2), -EPERM);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	TEST(test_errno_map);
	TEST(test_retryable);
	TEST(test_backoff);
	TEST(test_xml);
	TEST(test_part_size);
	TEST(test_xfer_settle);
	TEST(test_pace);
	TEST(test_secret);
	return unit_done();
}
