/*
 * test_backend.c - the backend conformance suite, run on the local backend,
 * plus tests of what only the local backend and backend.c do.
 *
 * backend_conformance() knows nothing of local files: it works under a
 * fresh key prefix and removes what it wrote, so it can run on a shared S3
 * bucket too.  Set MVFS_TEST_BACKEND_URL to run it on another store as well
 * (the URL is never printed).  Log lines go to a file in the scratch
 * directory; MVFS_TEST_VERBOSE=1 shows them on stderr too.
 */
#include "unit.h"
#include "unit_scratch.h"
#include "backend/backend.h"
#include "backend/be_local.h"
#include "backend/be_util.h"
#include "util/sha256.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024 * 1024)
#define PATHLEN 512	/* scratch (64) plus any suffix used here */

static char scratch[64];	/* mkdtemp dir: sources, stores, the log */

/* ---- helpers ---------------------------------------------------------- */

static void fill_random(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 24);
	}
}

/* An unlinked file in the scratch directory holding DATA; -1 on failure. */
static int make_src(const void *data, size_t len)
{
	return unit_src(scratch, data, len);
}

/* Same, in memory: another filesystem, so copy_file_range cannot be used. */
static int make_memsrc(const void *data, size_t len)
{
	int fd = memfd_create("src", MFD_CLOEXEC);

	if (fd >= 0 && len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

/* An fd number that is surely closed (a low one would be reused by the
 * backend's own opens while the test runs). */
static int closed_fd(void)
{
	int fd = make_src("hello", 5);
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 900);

	close(fd);
	close(hi);
	return hi;
}

/* 1 when KEY holds exactly the LEN bytes at EXPECT. */
static int object_is(struct backend *b, const char *key, const void *expect, size_t len)
{
	size_t got = 12345;
	char *buf = malloc(len + 1);
	int rc, ok;

	if (!buf)
		return 0;
	rc = backend_get_range(b, key, 0, len + 1, buf, &got);
	ok = rc == 0 && got == len && memcmp(buf, expect, len) == 0;
	free(buf);
	return ok;
}

struct keylist {
	char keys[16][256];
	uint64_t sizes[16];
	int n;
	int stop_after;		/* return 7 after this many, when non-zero */
};

static int collect(const char *key, uint64_t size, void *arg)
{
	struct keylist *kl = arg;

	if (kl->n < 16) {
		snprintf(kl->keys[kl->n], sizeof(kl->keys[0]), "%s", key);
		kl->sizes[kl->n] = size;
	}
	kl->n++;
	return kl->stop_after && kl->n >= kl->stop_after ? 7 : 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int count_tmp_cb_n;
static int count_tmp_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (strncmp(path + ftw->base, ".tmp.", 5) == 0)
		count_tmp_cb_n++;
	return 0;
}

/* Temp files anywhere under DIR. */
static int count_tmp(const char *dir)
{
	count_tmp_cb_n = 0;
	nftw(dir, count_tmp_cb, 16, FTW_PHYS);
	return count_tmp_cb_n;
}

/* ---- the conformance suite ---------------------------------------------- */

struct conf {
	struct backend *b;
	char prefix[64];	/* every key of this run starts with it */
};

static const char *K(struct conf *c, const char *name, char *out)
{
	snprintf(out, 256, "%s%s", c->prefix, name);
	return out;
}

static void conf_put_get_ranges(void *arg)
{
	struct conf *c = arg;
	char key[256], data[1000], buf[2000];
	size_t got;
	int fd;

	fill_random(data, sizeof(data), 1);
	fd = make_src(data, sizeof(data));
	CHECK(fd >= 0);
	K(c, "small", key);
	CHECK_EQ_INT(backend_put(c->b, key, fd, sizeof(data), NULL), 0);
	close(fd);

	CHECK_EQ_INT(backend_get_range(c->b, key, 0, sizeof(data), buf, &got), 0);
	CHECK_EQ_INT(got, sizeof(data));
	CHECK(memcmp(buf, data, sizeof(data)) == 0);
	CHECK_EQ_INT(backend_get_range(c->b, key, 100, 200, buf, &got), 0);
	CHECK_EQ_INT(got, 200);
	CHECK(memcmp(buf, data + 100, 200) == 0);
	/* Short only at the end. */
	CHECK_EQ_INT(backend_get_range(c->b, key, 990, 100, buf, &got), 0);
	CHECK_EQ_INT(got, 10);
	CHECK(memcmp(buf, data + 990, 10) == 0);
	CHECK_EQ_INT(backend_get_range(c->b, key, 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ_INT(got, sizeof(data));
	/* At and past the end: nothing, and no error. */
	got = 99;
	CHECK_EQ_INT(backend_get_range(c->b, key, sizeof(data), 10, buf, &got), 0);
	CHECK_EQ_INT(got, 0);
	got = 99;
	CHECK_EQ_INT(backend_get_range(c->b, key, 1u << 30, 10, buf, &got), 0);
	CHECK_EQ_INT(got, 0);
	got = 99;
	CHECK_EQ_INT(backend_get_range(c->b, key, 5, 0, buf, &got), 0);
	CHECK_EQ_INT(got, 0);
	CHECK_EQ_INT(backend_del(c->b, key), 0);
}

static void conf_put_empty(void *arg)
{
	struct conf *c = arg;
	struct backend_stat st = { 99 };
	char key[256], buf[16];
	size_t got = 99;
	int fd = make_src(NULL, 0);

	CHECK(fd >= 0);
	K(c, "empty", key);
	CHECK_EQ_INT(backend_put(c->b, key, fd, 0, NULL), 0);
	close(fd);
	CHECK_EQ_INT(backend_head(c->b, key, &st), 0);
	CHECK_EQ_INT(st.size, 0);
	CHECK_EQ_INT(backend_get_range(c->b, key, 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ_INT(got, 0);
	CHECK_EQ_INT(backend_del(c->b, key), 0);
}

static void conf_put_big(void *arg)
{
	struct conf *c = arg;
	const size_t len = 5 * MiB;
	struct backend_stat st = { 0 };
	char key[256], key2[256], buf[100];
	char *data = malloc(len);
	size_t got;
	int fd, mfd;

	CHECK(data != NULL);
	if (!data)
		return;
	fill_random(data, len, 2);
	fd = make_src(data, len);
	mfd = make_memsrc(data, len);
	CHECK(fd >= 0 && mfd >= 0);
	K(c, "big", key);
	K(c, "big-from-memfd", key2);
	CHECK_EQ_INT(backend_put(c->b, key, fd, len, NULL), 0);
	CHECK_EQ_INT(backend_put(c->b, key2, mfd, len, NULL), 0);
	close(fd);
	close(mfd);

	CHECK_EQ_INT(backend_head(c->b, key, &st), 0);
	CHECK_EQ_INT(st.size, len);
	CHECK(object_is(c->b, key, data, len));
	CHECK(object_is(c->b, key2, data, len));
	/* Across a 1 MiB boundary, where the copy changes chunks. */
	CHECK_EQ_INT(backend_get_range(c->b, key, MiB - 7, sizeof(buf), buf, &got), 0);
	CHECK_EQ_INT(got, sizeof(buf));
	CHECK(memcmp(buf, data + MiB - 7, sizeof(buf)) == 0);
	CHECK_EQ_INT(backend_get_range(c->b, key, len - 50, sizeof(buf), buf, &got), 0);
	CHECK_EQ_INT(got, 50);
	CHECK(memcmp(buf, data + len - 50, 50) == 0);
	CHECK_EQ_INT(backend_del(c->b, key), 0);
	CHECK_EQ_INT(backend_del(c->b, key2), 0);
	free(data);
}

static void conf_put_idempotent(void *arg)
{
	struct conf *c = arg;
	struct backend_stat st = { 0 };
	char key[256], data[4096];
	int fd;

	fill_random(data, sizeof(data), 3);
	fd = make_src(data, sizeof(data));
	K(c, "again", key);
	CHECK_EQ_INT(backend_put(c->b, key, fd, sizeof(data), NULL), 0);
	CHECK_EQ_INT(backend_put(c->b, key, fd, sizeof(data), NULL), 0);
	CHECK_EQ_INT(backend_put(c->b, key, fd, sizeof(data), NULL), 0);
	close(fd);
	CHECK_EQ_INT(backend_head(c->b, key, &st), 0);
	CHECK_EQ_INT(st.size, sizeof(data));
	CHECK(object_is(c->b, key, data, sizeof(data)));
	CHECK_EQ_INT(backend_del(c->b, key), 0);
}

static void conf_missing(void *arg)
{
	struct conf *c = arg;
	struct backend_stat st;
	char key[256], buf[16];
	size_t got = 99;

	K(c, "never-written", key);
	CHECK_EQ_INT(backend_head(c->b, key, &st), -ENOENT);
	CHECK_EQ_INT(backend_get_range(c->b, key, 0, sizeof(buf), buf, &got), -ENOENT);
	CHECK_EQ_INT(got, 0);
	K(c, "no/such/dir/key", key);
	CHECK_EQ_INT(backend_head(c->b, key, &st), -ENOENT);
	CHECK_EQ_INT(backend_get_range(c->b, key, 0, sizeof(buf), buf, &got), -ENOENT);
}

static void conf_del_twice(void *arg)
{
	struct conf *c = arg;
	struct backend_stat st;
	char key[256];
	int fd = make_src("x", 1);

	K(c, "del/me", key);
	CHECK_EQ_INT(backend_put(c->b, key, fd, 1, NULL), 0);
	close(fd);
	CHECK_EQ_INT(backend_del(c->b, key), 0);
	CHECK_EQ_INT(backend_del(c->b, key), 0);
	CHECK_EQ_INT(backend_head(c->b, key, &st), -ENOENT);
	K(c, "del/never", key);
	CHECK_EQ_INT(backend_del(c->b, key), 0);
}

static void conf_list(void *arg)
{
	struct conf *c = arg;
	/* Written out of order; '-' and '.' sort before '/', which a directory
	 * walk does not give for free. */
	static const char *names[] = { "l/p/b", "l/p/a/x", "l/p/ab", "l/p/a-b", "l/p/a.c", "l/q/z" };
	static const char *under_pa[] = { "l/p/a-b", "l/p/a.c", "l/p/a/x", "l/p/ab" };
	static const char *under_l[] = { "l/p/a-b", "l/p/a.c", "l/p/a/x", "l/p/ab", "l/p/b", "l/q/z" };
	struct keylist kl;
	char key[256], data[64];
	size_t i;
	int fd;

	fill_random(data, sizeof(data), 4);
	fd = make_src(data, sizeof(data));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK_EQ_INT(backend_put(c->b, K(c, names[i], key), fd, 10 + i, NULL), 0);
	close(fd);

	memset(&kl, 0, sizeof(kl));
	CHECK_EQ_INT(backend_list(c->b, K(c, "l/p/a", key), collect, &kl), 0);
	CHECK_EQ_INT(kl.n, 4);
	for (i = 0; i < 4 && (int)i < kl.n; i++)
		CHECK_STREQ(kl.keys[i], K(c, under_pa[i], key));

	memset(&kl, 0, sizeof(kl));
	CHECK_EQ_INT(backend_list(c->b, K(c, "l/", key), collect, &kl), 0);
	CHECK_EQ_INT(kl.n, 6);
	for (i = 0; i < 6 && (int)i < kl.n; i++)
		CHECK_STREQ(kl.keys[i], K(c, under_l[i], key));
	CHECK_EQ_INT(kl.sizes[0], 10 + 3);	/* l/p/a-b was names[3] */
	CHECK_EQ_INT(kl.sizes[5], 10 + 5);

	memset(&kl, 0, sizeof(kl));
	CHECK_EQ_INT(backend_list(c->b, K(c, "l/nothing", key), collect, &kl), 0);
	CHECK_EQ_INT(kl.n, 0);

	/* The callback's non-zero answer stops the listing and is returned. */
	memset(&kl, 0, sizeof(kl));
	kl.stop_after = 2;
	CHECK_EQ_INT(backend_list(c->b, K(c, "l/", key), collect, &kl), 7);
	CHECK_EQ_INT(kl.n, 2);

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK_EQ_INT(backend_del(c->b, K(c, names[i], key)), 0);
	memset(&kl, 0, sizeof(kl));
	CHECK_EQ_INT(backend_list(c->b, K(c, "l/", key), collect, &kl), 0);
	CHECK_EQ_INT(kl.n, 0);
}

static void conf_invalid_keys(void *arg)
{
	struct conf *c = arg;
	static const char *bad[] = { "", "/abs", "a//b", "a/", "..", "a/../b", "a/./b", ".",
				     "sp ace", "back\\slash", "new\nline", "caf\xc3\xa9", "q?x=1", "a*" };
	struct backend_stat st;
	char buf[8], longkey[2100];
	size_t i, got;
	int fd = make_src("abc", 3);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(backend_put(c->b, bad[i], fd, 3, NULL), -EINVAL);
		CHECK_EQ_INT(backend_get_range(c->b, bad[i], 0, sizeof(buf), buf, &got), -EINVAL);
		CHECK_EQ_INT(backend_head(c->b, bad[i], &st), -EINVAL);
		CHECK_EQ_INT(backend_del(c->b, bad[i]), -EINVAL);
	}
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	CHECK_EQ_INT(backend_put(c->b, longkey, fd, 3, NULL), -EINVAL);
	close(fd);
}

struct racer {
	struct backend *b;
	const char *key;
	int fd;
	uint64_t size;
	pthread_barrier_t *start;
	int rc;
};

static void *race_put(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->start);
	r->rc = backend_put(r->b, r->key, r->fd, r->size, NULL);
	return NULL;
}

static void conf_concurrent_put(void *arg)
{
	struct conf *c = arg;
	const size_t len = 3 * MiB + 17;
	pthread_barrier_t start;
	pthread_t th[4];
	struct racer r[4];
	struct keylist kl;
	char key[256], pfx[256];
	char *data = malloc(len);
	int fd, i;

	if (!data)
		return;
	fill_random(data, len, 5);
	fd = make_src(data, len);
	K(c, "race/obj", key);
	pthread_barrier_init(&start, NULL, 4);
	for (i = 0; i < 4; i++) {
		r[i] = (struct racer){ c->b, key, fd, len, &start, 1 };
		CHECK_EQ_INT(pthread_create(&th[i], NULL, race_put, &r[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(r[i].rc, 0);
	}
	pthread_barrier_destroy(&start);
	close(fd);
	CHECK(object_is(c->b, key, data, len));
	memset(&kl, 0, sizeof(kl));
	CHECK_EQ_INT(backend_list(c->b, K(c, "race/", pfx), collect, &kl), 0);
	CHECK_EQ_INT(kl.n, 1);
	CHECK_EQ_INT(backend_del(c->b, key), 0);
	free(data);
}

static void conf_bad_source(void *arg)
{
	struct conf *c = arg;
	struct backend_stat st;
	struct keylist kl;
	char key[256], pfx[256], path[PATHLEN];
	int fd, rc;

	K(c, "bad/src", key);
	/* A closed fd. */
	CHECK_EQ_INT(backend_put(c->b, key, closed_fd(), 5, NULL), -EBADF);
	CHECK_EQ_INT(backend_head(c->b, key, &st), -ENOENT);

	/* A write-only fd. */
	snprintf(path, sizeof(path), "%s/wronly", scratch);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, "hello", 5), 5);
	CHECK_EQ_INT(backend_put(c->b, key, fd, 5, NULL), -EBADF);
	close(fd);
	unlink(path);
	CHECK_EQ_INT(backend_head(c->b, key, &st), -ENOENT);

	/* A source shorter than announced, over a chunk and from the start. */
	fd = make_src("hello", 5);
	rc = backend_put(c->b, key, fd, 2 * MiB, NULL);
	CHECK(rc < 0);
	rc = backend_put(c->b, key, fd, 6, NULL);
	CHECK(rc < 0);
	close(fd);
	CHECK_EQ_INT(backend_head(c->b, key, &st), -ENOENT);

	memset(&kl, 0, sizeof(kl));
	CHECK_EQ_INT(backend_list(c->b, K(c, "bad/", pfx), collect, &kl), 0);
	CHECK_EQ_INT(kl.n, 0);
}

/* Runs every conformance test on B, under a fresh prefix. */
void backend_conformance(struct backend *b);
void backend_conformance(struct backend *b)
{
	struct conf c = { .b = b };

	snprintf(c.prefix, sizeof(c.prefix), "conformance-%ld-%ld/", (long)getpid(), (long)time(NULL));
	printf("-- conformance on the %s backend\n", b->ops->name);
	TEST_WITH(conf_put_get_ranges, &c);
	TEST_WITH(conf_put_empty, &c);
	TEST_WITH(conf_put_big, &c);
	TEST_WITH(conf_put_idempotent, &c);
	TEST_WITH(conf_missing, &c);
	TEST_WITH(conf_del_twice, &c);
	TEST_WITH(conf_list, &c);
	TEST_WITH(conf_invalid_keys, &c);
	TEST_WITH(conf_concurrent_put, &c);
	TEST_WITH(conf_bad_source, &c);
}

/* ---- local backend and backend.c ---------------------------------------- */

static void test_key_for(void)
{
	static const char *empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	char out[BACKEND_KEY_MAX], h[80];

	memset(out, 'x', sizeof(out));
	backend_key_for("", empty, out);
	CHECK_STREQ(out, "sha256/e3/b0/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	backend_key_for("", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", out);
	CHECK_STREQ(out, "sha256/01/23/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");

	/* Anything else gives "". */
	backend_key_for("", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", out);
	CHECK_STREQ(out, "");
	snprintf(h, sizeof(h), "%.63s", empty);
	backend_key_for("", h, out);
	CHECK_STREQ(out, "");
	snprintf(h, sizeof(h), "%s0", empty);
	backend_key_for("", h, out);
	CHECK_STREQ(out, "");
	snprintf(h, sizeof(h), "%sg", empty + 1);
	backend_key_for("", h, out);
	CHECK_STREQ(out, "");
	snprintf(h, sizeof(h), "sha256:%.57s", empty);
	backend_key_for("", h, out);
	CHECK_STREQ(out, "");
	backend_key_for("", "", out);
	CHECK_STREQ(out, "");
	strcpy(out, "junk");
	backend_key_for("", NULL, out);
	CHECK_STREQ(out, "");

	/* A user's own prefix goes in front; a bad prefix gives "". */
	backend_key_for("u/0b6e1c1e-5a4f-4a8e-9c0e-1d2f3a4b5c6d/", empty, out);
	CHECK_STREQ(out, "u/0b6e1c1e-5a4f-4a8e-9c0e-1d2f3a4b5c6d/sha256/e3/b0/"
		    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_STREQ(backend_key_sha(out), empty);
	CHECK(backend_key_sha("sha256/e3/b0/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") != NULL);
	CHECK(backend_key_sha("u/x/sha256/e3/b1/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == NULL);
	CHECK(backend_key_sha("other/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == NULL);
	backend_key_for("u/x", empty, out);
	CHECK_STREQ(out, "");
	backend_key_for("../", empty, out);
	CHECK_STREQ(out, "");
	backend_key_for("sha256/", empty, out);
	CHECK_STREQ(out, "");
	backend_key_for(NULL, empty, out);
	CHECK_STREQ(out, "");
}

static void test_open_urls(void)
{
	char dir[PATHLEN], url[PATHLEN + 16], cwd[PATH_MAX];
	struct backend *b;
	struct stat st;
	mode_t mask;

	/* file:// makes the root mode 0700, its missing parents 0755 (less
	 * the umask). */
	snprintf(dir, sizeof(dir), "%s/open/a/b/store", scratch);
	snprintf(url, sizeof(url), "file://%s", dir);
	b = backend_open(url, NULL);
	CHECK(b != NULL);
	if (b)
		CHECK_STREQ(b->ops->name, "local");
	backend_free(b);
	CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	mask = umask(0);
	umask(mask);
	snprintf(cwd, sizeof(cwd), "%s/open/a", scratch);
	CHECK(stat(cwd, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == (0755 & ~mask));

	/* A plain path, absolute then relative. */
	b = backend_open(dir, NULL);
	CHECK(b != NULL);
	backend_free(b);
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK(chdir(scratch) == 0);
	b = backend_open("rel/store", NULL);
	CHECK(b != NULL);
	backend_free(b);
	CHECK(stat("rel/store", &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(chdir(cwd) == 0);

	errno = 0;
	CHECK(backend_open("gopher://host/x", NULL) == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	errno = 0;
	CHECK(backend_open("", NULL) == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	errno = 0;
	CHECK(backend_open("file://", NULL) == NULL);
	CHECK_EQ_INT(errno, EINVAL);

	/* A root that is a file. */
	snprintf(dir, sizeof(dir), "%s/open/file", scratch);
	close(open(dir, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	errno = 0;
	CHECK(backend_open(dir, NULL) == NULL);
	CHECK(errno == EEXIST || errno == ENOTDIR);
	backend_free(NULL);
}

/* Things the local layout makes possible: stray temp files, directories
 * where a key is asked for, names a user dropped in by hand. */
static void test_local_layout(void *arg)
{
	const char *root = arg;
	struct backend *b = backend_open(root, NULL);
	struct backend_stat st;
	struct keylist kl;
	char path[PATHLEN], buf[8];
	uint64_t total = 0, avail = 0;
	size_t got;
	int fd;

	CHECK(b != NULL);
	if (!b)
		return;
	fd = make_src("abc", 3);
	CHECK_EQ_INT(backend_put(b, "sha256/aa/bb/obj", fd, 3, NULL), 0);
	CHECK_EQ_INT(backend_put(b, ".tmp.x", fd, 3, NULL), -EINVAL);
	CHECK_EQ_INT(backend_put(b, "a/.tmp.x/b", fd, 3, NULL), -EINVAL);
	close(fd);

	/* A crashed put's temp file, a dot-dir of temp files, a bad name. */
	snprintf(path, sizeof(path), "%s/sha256/aa/bb/.tmp.obj.1.2.3", root);
	close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	snprintf(path, sizeof(path), "%s/sha256/aa/bad name", root);
	close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	memset(&kl, 0, sizeof(kl));
	CHECK_EQ_INT(backend_list(b, "", collect, &kl), 0);
	CHECK_EQ_INT(kl.n, 1);
	CHECK_STREQ(kl.keys[0], "sha256/aa/bb/obj");
	CHECK_EQ_INT(kl.sizes[0], 3);
	memset(&kl, 0, sizeof(kl));
	CHECK_EQ_INT(backend_list(b, NULL, collect, &kl), 0);
	CHECK_EQ_INT(kl.n, 1);

	/* A directory is not an object. */
	CHECK_EQ_INT(backend_head(b, "sha256/aa", &st), -ENOENT);
	CHECK_EQ_INT(backend_get_range(b, "sha256/aa", 0, sizeof(buf), buf, &got), -ENOENT);
	CHECK_EQ_INT(backend_del(b, "sha256/aa"), 0);
	/* Nor is a path through an object. */
	CHECK_EQ_INT(backend_head(b, "sha256/aa/bb/obj/x", &st), -ENOENT);
	CHECK_EQ_INT(backend_del(b, "sha256/aa/bb/obj/x"), 0);

	CHECK_EQ_INT(backend_space(b, &total, &avail), 0);
	CHECK(total > 0 && avail <= total);

	CHECK_EQ_INT(backend_del(b, "sha256/aa/bb/obj"), 0);
	snprintf(path, sizeof(path), "%s/sha256/aa/bb/.tmp.obj.1.2.3", root);
	CHECK(unlink(path) == 0);
	snprintf(path, sizeof(path), "%s/sha256/aa/bad name", root);
	CHECK(unlink(path) == 0);
	backend_free(b);
}

static void test_local_bad_source_leaves_nothing(void *arg)
{
	const char *root = arg;
	struct backend *b = backend_open(root, NULL);
	struct backend_stat st;
	int fd;

	CHECK(b != NULL);
	if (!b)
		return;
	CHECK_EQ_INT(backend_put(b, "bad/closed", closed_fd(), 5, NULL), -EBADF);
	fd = make_src("hello", 5);
	CHECK(backend_put(b, "bad/short", fd, 3 * MiB, NULL) < 0);
	close(fd);
	CHECK_EQ_INT(backend_head(b, "bad/closed", &st), -ENOENT);
	CHECK_EQ_INT(backend_head(b, "bad/short", &st), -ENOENT);
	CHECK_EQ_INT(count_tmp(root), 0);
	backend_free(b);
}

/* The conformance run removed everything it wrote, temp files included. */
static int count_files_n;
static int count_files_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_F)
		count_files_n++;
	return 0;
}

static void test_local_no_leftovers(void *arg)
{
	count_files_n = 0;
	nftw(arg, count_files_cb, 16, FTW_PHYS);
	CHECK_EQ_INT(count_files_n, 0);
}

static int file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	while (f && !found && getline(&line, &cap, f) >= 0)
		found = strstr(line, needle) != NULL;
	free(line);
	if (f)
		fclose(f);
	return found;
}

static void digest_hex(const EVP_MD *md, const void *buf, size_t len, char *hex)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(buf, len, d, &n, md, NULL);
	hex_encode(d, n, hex);
}

/* The one streaming pass an S3 part is hashed with before it is sent (its
 * SHA-256 to sign it, the MD5 to compare with a held part): over several
 * of its reads, at an offset, either digest alone, and a file that ends
 * early. */
static void test_hash_source(void)
{
	size_t len = 700 * 1024 + 17, off = 4097;
	char *data = malloc(len), sha[65], md5[33], want_sha[65], want_md5[33];
	int fd;

	CHECK(data != NULL);
	if (!data)
		return;
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 7 + i / 251);
	fd = make_src(data, len);
	digest_hex(EVP_sha256(), data + off, len - off, want_sha);
	digest_hex(EVP_md5(), data + off, len - off, want_md5);
	CHECK_EQ_INT(backend_hash_source(fd, off, len - off, sha, md5), 0);
	CHECK_STREQ(sha, want_sha);
	CHECK_STREQ(md5, want_md5);
	memset(sha, 0, sizeof(sha));
	CHECK_EQ_INT(backend_hash_source(fd, off, len - off, sha, NULL), 0);
	CHECK_STREQ(sha, want_sha);
	digest_hex(EVP_md5(), data, 1, want_md5);
	CHECK_EQ_INT(backend_hash_source(fd, 0, 1, NULL, md5), 0);
	CHECK_STREQ(md5, want_md5);
	CHECK_EQ_INT(backend_hash_source(fd, off, len, sha, md5), -EIO);
	close(fd);
	CHECK_EQ_INT(backend_hash_source(closed_fd(), 0, 5, sha, NULL), -EBADF);
	free(data);
}

static void test_local_enospc(void)
{
	char mnt[128], root[256], cmd[PATHLEN], logpath[128];
	const size_t len = MiB;
	struct backend_stat st;
	struct backend *b;
	char *data;
	int fd;

	snprintf(mnt, sizeof(mnt), "%s/tiny", scratch);
	CHECK(mkdir(mnt, 0700) == 0);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=256k tmpfs '%s' 2>/dev/null", mnt);
	if (system(cmd) != 0) {
		printf("note: cannot mount a tmpfs here (not root?): ENOSPC test skipped\n");
		return;
	}
	snprintf(root, sizeof(root), "%s/store", mnt);
	b = backend_open(root, NULL);
	CHECK(b != NULL);
	data = malloc(len);
	if (b && data) {
		fill_random(data, len, 6);
		fd = make_src(data, len);
		CHECK_EQ_INT(backend_put(b, "sha256/00/11/full", fd, len, NULL), -ENOSPC);
		CHECK_EQ_INT(backend_head(b, "sha256/00/11/full", &st), -ENOENT);
		CHECK_EQ_INT(count_tmp(root), 0);
		/* The space came back: a small object still fits. */
		CHECK_EQ_INT(backend_put(b, "sha256/00/11/small", fd, 4096, NULL), 0);
		CHECK_EQ_INT(backend_head(b, "sha256/00/11/small", &st), 0);
		CHECK_EQ_INT(st.size, 4096);
		close(fd);
		snprintf(logpath, sizeof(logpath), "%s/log", scratch);
		CHECK(file_contains(logpath, "local store: cannot put 'sha256/00/11/full': writing: No space left on device"));
	}
	free(data);
	backend_free(b);
	snprintf(cmd, sizeof(cmd), "umount '%s'", mnt);
	CHECK(system(cmd) == 0);
}

static void test_opened(struct backend *b)
{
	CHECK(b != NULL);
}

int main(void)
{
	char root[128];
	const char *url = getenv("MVFS_TEST_BACKEND_URL");
	struct backend *b;

	if (unit_scratch(scratch, sizeof(scratch), "test-backend") != 0)
		return 1;

	TEST(test_key_for);
	TEST(test_open_urls);
	TEST(test_hash_source);

	snprintf(root, sizeof(root), "%s/store", scratch);
	b = backend_open(root, NULL);
	TEST_WITH(test_opened, b);
	if (b) {
		backend_conformance(b);
		backend_free(b);
		TEST_WITH(test_local_no_leftovers, root);
	}
	TEST_WITH(test_local_layout, root);
	TEST_WITH(test_local_bad_source_leaves_nothing, root);
	TEST(test_local_enospc);

	if (url && *url) {
		b = backend_open(url, NULL);
		TEST_WITH(test_opened, b);
		if (b) {
			backend_conformance(b);
			backend_free(b);
		}
	}

	rm_rf(scratch);
	return unit_done();
}
