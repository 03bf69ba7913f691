/*
 * test_vblob.c - the Vercel Blob backend's error mapper and retry
 * predicate, and, when MVFS_TEST_VBLOB_URL names a store on the test
 * server (tests/vblob/vblobserver.js; tests/mount/test_vblob.py runs this
 * so), its answers to the faults the server injects: 5xx then success,
 * 429 with retry-after, cut bodies (EIO, never a partial object), a 4xx
 * not retried, a bad token (EACCES), a token of another store, a token
 * file.  The server's fault rules are set through its /__faults endpoint
 * with the backend's own HTTP client.
 */
#include "unit.h"
#include "unit_scratch.h"
#include "backend/backend.h"
#include "backend/be_vblob.h"
#include "backend/http.h"
#include "util/log.h"
#include "util/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static void test_errno_map(void)
{
	CHECK_EQ_INT(vblob_errno(200, "", HTTP_OK), 0);
	CHECK_EQ_INT(vblob_errno(403, "forbidden", HTTP_OK), -EACCES);
	CHECK_EQ_INT(vblob_errno(403, "store_suspended", HTTP_OK), -EACCES);
	CHECK_EQ_INT(vblob_errno(404, "not_found", HTTP_OK), -ENOENT);
	CHECK_EQ_INT(vblob_errno(404, "store_not_found", HTTP_OK), -ENXIO);
	CHECK_EQ_INT(vblob_errno(400, "file_too_large", HTTP_OK), -EFBIG);
	CHECK_EQ_INT(vblob_errno(400, "bad_request", HTTP_OK), -EINVAL);
	CHECK_EQ_INT(vblob_errno(429, "rate_limited", HTTP_OK), -EIO);
	CHECK_EQ_INT(vblob_errno(503, "service_unavailable", HTTP_OK), -EIO);
	CHECK_EQ_INT(vblob_errno(500, "unknown_error", HTTP_OK), -EIO);
	/* codes we do not know: by status */
	CHECK_EQ_INT(vblob_errno(401, "unknown_error", HTTP_OK), -EACCES);
	CHECK_EQ_INT(vblob_errno(404, "", HTTP_OK), -ENOENT);
	CHECK_EQ_INT(vblob_errno(409, "something_new", HTTP_OK), -EINVAL);
	CHECK_EQ_INT(vblob_errno(502, "", HTTP_OK), -EIO);
	CHECK_EQ_INT(vblob_errno(0, "", HTTP_FAIL_RESET), -EIO);
}

static void test_retryable(void)
{
	/* exactly what the official client retries, and 429 */
	CHECK(vblob_retryable("unknown_error", HTTP_OK));
	CHECK(vblob_retryable("service_unavailable", HTTP_OK));
	CHECK(vblob_retryable("internal_server_error", HTTP_OK));
	CHECK(vblob_retryable("rate_limited", HTTP_OK));
	CHECK(!vblob_retryable("forbidden", HTTP_OK));
	CHECK(!vblob_retryable("not_found", HTTP_OK));
	CHECK(!vblob_retryable("bad_request", HTTP_OK));
	CHECK(!vblob_retryable("store_not_found", HTTP_OK));
	CHECK(vblob_retryable("", HTTP_FAIL_RESET));
	CHECK(vblob_retryable("", HTTP_FAIL_CONNECT));
	CHECK(vblob_retryable("", HTTP_FAIL_TIMEOUT));
	CHECK(!vblob_retryable("", HTTP_FAIL_CERT));
	CHECK(!vblob_retryable("", HTTP_FAIL_TLS));
}

/* Refused before any request: one errno each. */
static void test_bad_urls(void)
{
	static const char *bad[] = { "vblob://", "vblob://bad!id", "vblob://s/..", "vblob://s?part_size=1M",
				     "vblob://s?access=world", "vblob://s?nope=1", "vblob://s?retries=0" };
	char *api = getenv("VERCEL_BLOB_API_URL") ? strdup(getenv("VERCEL_BLOB_API_URL")) : NULL;
	char *tok = getenv("BLOB_READ_WRITE_TOKEN") ? strdup(getenv("BLOB_READ_WRITE_TOKEN")) : NULL;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		CHECK(backend_open(bad[i], NULL) == NULL);
		CHECK_EQ_INT(errno, EINVAL);
	}
	setenv("BLOB_READ_WRITE_TOKEN", "vercel_blob_rw_s_secret", 1);
	setenv("VERCEL_BLOB_API_URL", "ftp://127.0.0.1", 1);
	errno = 0;
	CHECK(backend_open("vblob://s", NULL) == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	/* nothing listens on port 1 */
	setenv("VERCEL_BLOB_API_URL", "http://127.0.0.1:1", 1);
	errno = 0;
	CHECK(backend_open("vblob://s?retries=1", NULL) == NULL);
	CHECK_EQ_INT(errno, EHOSTUNREACH);
	if (api)
		setenv("VERCEL_BLOB_API_URL", api, 1);
	else
		unsetenv("VERCEL_BLOB_API_URL");
	if (tok)
		setenv("BLOB_READ_WRITE_TOKEN", tok, 1);
	else
		unsetenv("BLOB_READ_WRITE_TOKEN");
	free(api);
	free(tok);
}

/* ---- against the test server --------------------------------------------------- */

static struct http *ctl;
static char faults_url[256];
static char scratch[64];

/* METHOD /__faults with BODY (NULL: none); the answer's body in OUT. */
static int faults(const char *method, const char *body, char *out, size_t outlen)
{
	struct http_req req = { .method = method, .url = faults_url, .body = body, .body_len = body ? strlen(body) : 0,
				.has_body = body != NULL };
	struct http_resp resp;
	int rc = http_do(ctl, &req, &resp);

	if (rc == 0 && out)
		snprintf(out, outlen, "%s", resp.body ? resp.body : "");
	rc = rc ? rc : resp.status == 200 ? 0 : -EIO;
	http_resp_release(&resp);
	return rc;
}

static void fault(const char *rule_json)
{
	char body[512];

	snprintf(body, sizeof(body), "{\"rules\":[%s]}", rule_json);
	CHECK_EQ_INT(faults("POST", body, NULL, 0), 0);
}

/* How many times ACTION was injected since the last clear. */
static int injected(const char *action)
{
	char out[1024], pat[64], *p;

	if (faults("GET", NULL, out, sizeof(out)) != 0)
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", action);
	p = strstr(out, pat);
	return p ? atoi(p + strlen(pat)) : 0;
}

static void clear(void)
{
	CHECK_EQ_INT(faults("DELETE", NULL, NULL, 0), 0);
}

static int src_of(const void *data, size_t len)
{
	return unit_src(scratch, data, len);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A content-addressed key for DATA under the test's prefix. */
static void key_of(const void *data, size_t len, char key[BACKEND_KEY_MAX])
{
	char hex[SHA256_HEX_LEN + 1];
	struct sha256 sh;

	sha256_init(&sh);
	sha256_update(&sh, data, len);
	sha256_final(&sh, hex);
	sha256_release(&sh);
	backend_key_for("u/faults/", hex, key);
}

/* The service's error answers, each case on a fresh set of fault rules: a
 * put and/or a head of LEN bytes of FILL, what they return, how many
 * errors were injected, and how long it took at the least. */
static void test_error_answers(void *arg)
{
	enum { NOT_ASKED = 1 };
	static const struct {
		const char *rules[2];
		char fill;
		size_t len;
		int put_rc, head_rc;	/* NOT_ASKED: not done */
		int errors;
		double min_s;
	} cases[] = {
		/* 5xx: retried until they pass */
		{ { "{\"action\":\"error\",\"status\":503,\"code\":\"service_unavailable\",\"method\":\"PUT\",\"times\":2}",
		    "{\"action\":\"error\",\"status\":500,\"code\":\"internal_server_error\",\"method\":\"GET\",\"times\":1}" },
		  'a', 3000, 0, 0, 3, 0 },
		/* the backoff of this store is 5..50 ms: only retry-after makes it wait a second */
		{ { "{\"action\":\"error\",\"status\":429,\"code\":\"rate_limited\",\"retryAfter\":1,\"times\":1}" },
		  'a', 3000, NOT_ASKED, 0, 1, 0.95 },
		/* 4xx: an answer, never retried */
		{ { "{\"action\":\"error\",\"status\":400,\"code\":\"bad_request\",\"method\":\"PUT\"}" },
		  'b', 100, -EINVAL, NOT_ASKED, 1, 0 },
		{ { "{\"action\":\"error\",\"status\":403,\"code\":\"forbidden\",\"method\":\"PUT\"}" },
		  'b', 100, -EACCES, NOT_ASKED, 1, 0 },
	};
	struct backend *b = arg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct backend_stat st = { 0 };
		char key[BACKEND_KEY_MAX], data[3000];
		int fd;
		double t;

		memset(data, cases[i].fill, cases[i].len);
		key_of(data, cases[i].len, key);
		fd = src_of(data, cases[i].len);
		clear();
		for (int r = 0; r < 2 && cases[i].rules[r]; r++)
			fault(cases[i].rules[r]);
		t = now_s();
		if (cases[i].put_rc != NOT_ASKED)
			CHECK_EQ_INT(backend_put(b, key, fd, cases[i].len, NULL), cases[i].put_rc);
		if (cases[i].head_rc != NOT_ASKED) {
			CHECK_EQ_INT(backend_head(b, key, &st), cases[i].head_rc);
			CHECK_EQ_INT(st.size, cases[i].len);
		}
		t = now_s() - t;
		CHECK_EQ_INT(injected("error"), cases[i].errors);
		CHECK(t >= cases[i].min_s);
		CHECK(t < 5);
		close(fd);
	}
	clear();
}

static void test_cut_put_leaves_nothing(void *arg)
{
	struct backend *b = arg;
	struct backend_stat st;
	const size_t small = 300000, big = 11 * MiB + 5;
	char key[BACKEND_KEY_MAX], *data = malloc(big);
	int fd;

	if (!data)
		return;
	for (size_t i = 0; i < big; i++)
		data[i] = (char)(i * 7 + i / 4099);
	/* single PUT, cut every time */
	key_of(data, small, key);
	fd = src_of(data, small);
	clear();
	fault("{\"action\":\"cut\",\"method\":\"PUT\"}");
	CHECK_EQ_INT(backend_put(b, key, fd, small, NULL), -EIO);
	/* retries=3 (libcurl itself sends once more on a reused connection that died) */
	CHECK(injected("cut") >= 3);
	clear();
	CHECK_EQ_INT(backend_head(b, key, &st), -ENOENT);
	close(fd);
	/* multipart: every second part upload cut (each retried), then all */
	key_of(data, big, key);
	fd = src_of(data, big);
	fault("{\"action\":\"cut\",\"method\":\"POST\",\"path\":\"^/mpu\",\"every\":2,\"times\":2}");
	CHECK_EQ_INT(backend_put(b, key, fd, big, NULL), 0);
	CHECK_EQ_INT(injected("cut"), 2);
	CHECK_EQ_INT(backend_head(b, key, &st), 0);
	CHECK_EQ_INT(st.size, big);
	CHECK_EQ_INT(backend_del(b, key), 0);
	clear();
	fault("{\"action\":\"cut\",\"method\":\"POST\",\"path\":\"^/mpu\"}");
	CHECK_EQ_INT(backend_put(b, key, fd, big, NULL), -EIO);
	clear();
	CHECK_EQ_INT(backend_head(b, key, &st), -ENOENT);
	close(fd);
	free(data);
}

static void test_cut_get_is_eio(void *arg)
{
	struct backend *b = arg;
	char key[BACKEND_KEY_MAX], data[200000], buf[200000];
	size_t got = 99;
	int fd;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 13);
	key_of(data, sizeof(data), key);
	fd = src_of(data, sizeof(data));
	clear();
	CHECK_EQ_INT(backend_put(b, key, fd, sizeof(data), NULL), 0);
	close(fd);
	fault("{\"action\":\"cut\",\"port\":\"blob\",\"times\":2}");
	CHECK_EQ_INT(backend_get_range(b, key, 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ_INT(got, sizeof(data));
	CHECK(memcmp(buf, data, sizeof(data)) == 0);
	CHECK_EQ_INT(injected("cut"), 2);
	fault("{\"action\":\"cut\",\"port\":\"blob\"}");
	got = 99;
	CHECK_EQ_INT(backend_get_range(b, key, 0, sizeof(buf), buf, &got), -EIO);
	CHECK_EQ_INT(got, 0);
	got = 99;
	CHECK_EQ_INT(backend_get_range(b, key, 1000, 5000, buf, &got), -EIO);
	CHECK_EQ_INT(got, 0);
	clear();
	CHECK_EQ_INT(backend_del(b, key), 0);
}

static void test_tokens(const char *url)
{
	char *saved = strdup(getenv("BLOB_READ_WRITE_TOKEN")), path[128];
	struct backend_config cfg = { 0 };
	struct backend *b;
	FILE *f;

	setenv("BLOB_READ_WRITE_TOKEN", "vercel_blob_rw_mvteststore_not-the-token", 1);
	errno = 0;
	CHECK(backend_open(url, NULL) == NULL);
	CHECK_EQ_INT(errno, EACCES);
	setenv("BLOB_READ_WRITE_TOKEN", "vercel_blob_rw_otherstore_secret", 1);
	errno = 0;
	CHECK(backend_open(url, NULL) == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	unsetenv("BLOB_READ_WRITE_TOKEN");
	errno = 0;
	CHECK(backend_open(url, NULL) == NULL);
	CHECK_EQ_INT(errno, EACCES);
	/* from a file, with its newline */
	snprintf(path, sizeof(path), "%s/token", scratch);
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%s\n", saved);
		fclose(f);
	}
	cfg.vblob_token_file = path;
	b = backend_open(url, &cfg);
	CHECK(b != NULL);
	backend_free(b);
	snprintf(path, sizeof(path), "%s/no-such-token", scratch);
	errno = 0;
	CHECK(backend_open(url, &cfg) == NULL);
	CHECK_EQ_INT(errno, ENOENT);
	setenv("BLOB_READ_WRITE_TOKEN", saved, 1);
	free(saved);
}

int main(void)
{
	const char *url = getenv("MVFS_TEST_VBLOB_URL"), *api = getenv("VERCEL_BLOB_API_URL");
	char logpath[128];
	struct backend *b;

	if (unit_scratch(scratch, sizeof(scratch), "test-vblob") != 0)
		return 1;
	snprintf(logpath, sizeof(logpath), "%s/log", scratch);

	TEST(test_errno_map);
	TEST(test_retryable);
	TEST(test_bad_urls);
	if (url && *url && api && *api) {
		snprintf(faults_url, sizeof(faults_url), "%s/__faults", api);
		ctl = http_new(NULL);
		b = backend_open(url, NULL);
		CHECK(b != NULL);
		if (b) {
			TEST_WITH(test_error_answers, b);
			TEST_WITH(test_cut_put_leaves_nothing, b);
			TEST_WITH(test_cut_get_is_eio, b);
			backend_free(b);
		}
		TEST_WITH(test_tokens, url);
		http_free(ctl);
	}
	unlink(logpath);
	rmdir(scratch);
	return unit_done();
}
