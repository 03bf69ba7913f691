/*
 * test_meta.c - the metadata engine against a real PostgreSQL: every
 * operation's answer, its errno for bad input, and its statement budget.
 *
 * Needs MVFS_TEST_DB, the conninfo of an empty database it may fill
 * (tests/mount/test_meta_unit.py starts a throwaway server, makes one and
 * runs this with it).  Without it the program says it skipped and exits 0,
 * so that `make unit` runs on machines without a server.
 *
 * Each test acts for a user of its own (meta_open with a fresh name), so
 * tests see nothing of each other; row-level security keeps them apart the
 * same way it keeps two people apart.
 *
 * Budgets: meta_statements() counts every statement this process sends
 * (BEGIN and COMMIT included); BUDGET(n, call) checks that CALL sent
 * exactly N.  One statement is one round trip: a budget, not a timing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "meta/meta.h"
#include "meta/meta_variants.h"
#include "util/log.h"
#include "util/name.h"

static const char *conninfo;
static unsigned long long budget_n;	/* statements the last BUDGET call sent */

/* Runs CALL (an int expression), checks it sent exactly N statements, and
 * is its value. */
#define BUDGET(n, call) ({ \
	unsigned long long budget_before_ = meta_statements(); \
	int budget_rc_ = (call); \
	budget_n = meta_statements() - budget_before_; \
	if (budget_n != (unsigned long long)(n)) { \
		unit_cur_fails++; \
		fprintf(stderr, "%s:%d: %s sent %llu statements, budget %d\n", __FILE__, __LINE__, #call, \
			budget_n, (int)(n)); \
	} \
	budget_rc_; \
})

/* A user of its own for each test. */
static struct meta *open_as(const char *who)
{
	char name[96], err[512];
	struct meta_config cfg = { .conninfo = conninfo, .user_name = name, .pool_size = 2,
				   .version_min_age = -1 };
	struct meta *m;

	snprintf(name, sizeof(name), "%s-%d-%ld", who, (int)getpid(), (long)time(NULL));
	m = meta_open(&cfg, err, sizeof(err));
	if (!m)
		fprintf(stderr, "meta_open as %s: %s\n", name, err);
	return m;
}

static const struct meta_dir LIB = { META_PLACE_LIBRARY, META_INO_LIBRARY };
static const struct meta_dir WS = { META_PLACE_WORKSPACE, META_INO_WORKSPACE };
static const struct meta_dir TRASH = { META_PLACE_TRASH, META_INO_TRASH };
static const struct meta_dir COLLECTIONS = { META_PLACE_COLLECTION, META_INO_COLLECTIONS };
static const struct meta_dir GALLERIES = { META_PLACE_GALLERY, META_INO_GALLERIES };

static const struct timespec T0 = { 1700000000, 123456789 };

static int mk(struct meta *m, const struct meta_dir *d, const char *name, struct meta_file *f)
{
	return meta_create(m, d, name, 0644, &T0, f);
}

/* Content whose hash is made of SEED (a hex digit) and this run (blobs
 * are shared by every user of a database), as a close records it. */
static struct meta_content content(char seed, uint64_t size, uint64_t seq, char *sha, char *key)
{
	memset(sha, seed, 64);
	snprintf(sha, 65, "%08x%08lx", (unsigned)getpid(), (unsigned long)time(NULL) & 0xffffffffUL);
	sha[16] = seed;
	sha[64] = '\0';
	snprintf(key, 96, "ab/cd/%s", sha);
	return (struct meta_content){ .sha256 = sha, .size = size, .mime = "image/jpeg", .memory_type = "image",
				      .backend = "local", .key = key, .mtime = &T0, .seq = seq };
}

/* Makes NAME in D with committed content (staged and uploaded). */
static int mk_full(struct meta *m, const struct meta_dir *d, const char *name, char seed, struct meta_file *f)
{
	char sha[65], key[96];
	struct meta_content c = content(seed, 1000, 1, sha, key);
	int rc = mk(m, d, name, f);

	if (rc == 0)
		rc = meta_file_stage(m, f->ino, &c);
	if (rc == 0)
		rc = meta_file_uploaded(m, f->ino, &c);
	if (rc == 0)
		rc = meta_file_get(m, f->ino, f);
	return rc;
}

/* The folder NAME of IN as a meta_dir of files. */
static struct meta_dir dir_of(const struct meta_folder *f)
{
	return (struct meta_dir){ f->place, f->ino };
}

/* --- tests --------------------------------------------------------------- */

static void test_create_lookup_get(void)
{
	struct meta *m = open_as("create");
	struct meta_file f, g;
	struct meta_folder d;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(BUDGET(1, mk(m, &LIB, "a.jpg", &f)), 0);
	CHECK(f.ino >= META_INO_FIRST);
	CHECK_STREQ(f.name, "a.jpg");
	CHECK_STREQ(meta_upload_name(f.upload), "pending");
	CHECK_EQ_INT(f.nlink, 1);
	CHECK_EQ_INT(f.mode, 0644);

	CHECK_EQ_INT(BUDGET(1, meta_lookup(m, &LIB, "a.jpg", &g)), 0);
	CHECK(g.ino == f.ino);
	CHECK_STREQ(g.memory_id, f.memory_id);
	CHECK_STREQ(meta_lifecycle_name(g.lifecycle), "active");
	CHECK(g.mtime.tv_sec == T0.tv_sec && g.mtime.tv_nsec == T0.tv_nsec);

	CHECK_EQ_INT(BUDGET(1, meta_file_get(m, f.ino, &g)), 0);
	CHECK_STREQ(g.name, "a.jpg");
	CHECK_EQ_INT(g.size, 0);

	/* negative answers */
	CHECK_EQ_INT(BUDGET(1, meta_lookup(m, &LIB, "nope.jpg", &g)), -ENOENT);
	CHECK_EQ_INT(BUDGET(1, meta_file_get(m, 999999999, &g)), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &WS, "a.jpg", &g), -ENOENT);

	/* the name is taken: EEXIST, and OUT describes the file in the way */
	memset(&g, 0, sizeof(g));
	CHECK_EQ_INT(mk(m, &LIB, "a.jpg", &g), -EEXIST);
	CHECK(g.ino == f.ino);
	CHECK_EQ_INT(mk(m, &TRASH, "b.jpg", &g), -EPERM);
	/* a folder has the name: EISDIR; a file has it: no folder either */
	CHECK_EQ_INT(meta_folder_create(m, &LIB, "sub", 0755, &d), 0);
	CHECK_EQ_INT(mk(m, &LIB, "sub", &g), -EISDIR);
	CHECK_EQ_INT(meta_folder_create(m, &LIB, "a.jpg", 0755, &d), -EEXIST);

	/* one name, two places: library/ and workspace/ are separate trees */
	CHECK_EQ_INT(mk(m, &WS, "a.jpg", &g), 0);
	CHECK(g.ino != f.ino);
	meta_free(m);
}

/* What fs_ns_lookup asks for a name in a folder of the tree: a file, else
 * a folder, else nothing; one statement whatever the answer. */
static void test_lookup_in_tree(void)
{
	struct meta *m = open_as("lookup");
	struct meta_folder sub, deeper, fo;
	struct meta_file f, g;
	struct meta_dir sd;
	int is_folder;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(meta_folder_create(m, &LIB, "sub", 0755, &sub), 0);
	sd = dir_of(&sub);
	CHECK_EQ_INT(mk(m, &sd, "in.jpg", &f), 0);
	CHECK_EQ_INT(meta_folder_create(m, &sd, "deeper", 0700, &deeper), 0);

	/* a negative lookup: neither file nor folder */
	is_folder = 7;
	CHECK_EQ_INT(BUDGET(1, meta_lookup_entry(m, &sd, "none.jpg", &g, &fo, &is_folder)), -ENOENT);
	CHECK_EQ_INT(BUDGET(1, meta_lookup_entry(m, &LIB, "none.jpg", &g, &fo, &is_folder)), -ENOENT);
	CHECK_EQ_INT(BUDGET(1, meta_lookup_entry(m, &WS, "none.jpg", &g, &fo, &is_folder)), -ENOENT);
	/* a file */
	CHECK_EQ_INT(BUDGET(1, meta_lookup_entry(m, &sd, "in.jpg", &g, &fo, &is_folder)), 0);
	CHECK_EQ_INT(is_folder, 0);
	CHECK(g.ino == f.ino);
	CHECK_STREQ(g.name, "in.jpg");
	CHECK_EQ_INT(g.nlink, 1);
	/* a folder */
	memset(&g, 0, sizeof(g));
	CHECK_EQ_INT(BUDGET(1, meta_lookup_entry(m, &sd, "deeper", &g, &fo, &is_folder)), 0);
	CHECK_EQ_INT(is_folder, 1);
	CHECK(fo.ino == deeper.ino);
	CHECK_STREQ(fo.name, "deeper");
	CHECK_EQ_INT(fo.mode, 0700);
	CHECK(fo.place == META_PLACE_LIBRARY);
	CHECK_EQ_INT(BUDGET(1, meta_lookup_entry(m, &LIB, "sub", &g, &fo, &is_folder)), 0);
	CHECK_EQ_INT(is_folder, 1);
	CHECK(fo.ino == sub.ino);
	CHECK_EQ_INT(fo.nlink, 3);
	/* what meta_folder_lookup says of it */
	{
		struct meta_folder fl;

		CHECK_EQ_INT(meta_folder_lookup(m, &LIB, "sub", &fl), 0);
		CHECK(fl.ino == fo.ino && fl.mode == fo.mode && fl.nlink == fo.nlink);
		CHECK(fl.mtime.tv_sec == fo.mtime.tv_sec && fl.mtime.tv_nsec == fo.mtime.tv_nsec);
		CHECK_STREQ(fl.id, fo.id);
	}
	/* elsewhere than the tree: files only */
	CHECK_EQ_INT(meta_lookup_entry(m, &TRASH, "none.jpg", &g, &fo, &is_folder), -ENOENT);
	meta_free(m);
}

static void test_list(void)
{
	struct meta *m = open_as("list");
	struct meta_file f[8];
	struct meta_cursor cur = { 0 };
	char name[32];
	int n = 0, seen = 0;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "f%d.txt", i);
		CHECK_EQ_INT(mk(m, &LIB, name, &f[0]), 0);
	}
	do {
		CHECK_EQ_INT(BUDGET(1, meta_list(m, &LIB, &cur, f, 2, &n)), 0);
		for (int i = 0; i < n; i++)
			CHECK(strncmp(f[i].name, "f", 1) == 0);
		seen += n;
	} while (n == 2);
	CHECK_EQ_INT(seen, 5);
	/* an empty folder: one page of nothing */
	memset(&cur, 0, sizeof(cur));
	CHECK_EQ_INT(meta_list(m, &WS, &cur, f, 8, &n), 0);
	CHECK_EQ_INT(n, 0);
	meta_free(m);
}

static void test_stage_uploaded_setattr(void)
{
	struct meta *m = open_as("content");
	char sha[65], key[96], sha2[65], key2[96];
	struct meta_content c = content('a', 4321, 1, sha, key), c2 = content('b', 99, 2, sha2, key2);
	struct meta_file f, g;
	struct timespec mt = { 1600000000, 5 }, at = { 1650000000, 7 };

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(mk(m, &LIB, "c.jpg", &f), 0);
	CHECK_EQ_INT(BUDGET(1, meta_file_stage(m, f.ino, &c)), 0);
	CHECK_EQ_INT(meta_file_get(m, f.ino, &g), 0);
	CHECK_STREQ(g.sha256, sha);
	CHECK_STREQ(g.key, key);
	CHECK_EQ_INT(g.size, 4321);
	CHECK_STREQ(meta_upload_name(g.upload), "uploading");
	CHECK_STREQ(g.mime, "image/jpeg");

	CHECK_EQ_INT(BUDGET(1, meta_file_uploaded(m, f.ino, &c)), 0);
	CHECK_EQ_INT(meta_file_get(m, f.ino, &g), 0);
	CHECK_STREQ(meta_upload_name(g.upload), "completed");
	CHECK_STREQ(g.status, "active");
	/* idempotent */
	CHECK_EQ_INT(meta_file_uploaded(m, f.ino, &c), 0);

	/* new content: copy on write, the inode keeps its number, the old
	 * version goes to the trash */
	CHECK_EQ_INT(BUDGET(1, meta_file_stage(m, f.ino, &c2)), 0);
	CHECK_EQ_INT(meta_file_get(m, f.ino, &g), 0);
	CHECK_STREQ(g.sha256, sha2);
	CHECK(strcmp(g.asset_id, f.asset_id) != 0);
	CHECK_EQ_INT(BUDGET(1, meta_file_uploaded(m, f.ino, &c2)), 0);

	/* setattr: one statement, its answer the file as it is now */
	CHECK_EQ_INT(BUDGET(1, meta_file_setattr(m, f.ino, META_SET_MODE | META_SET_MTIME | META_SET_ATIME, 0600,
						 &mt, &at, &g)), 0);
	CHECK_EQ_INT(g.mode, 0600);
	CHECK(g.mtime.tv_sec == mt.tv_sec && g.mtime.tv_nsec == mt.tv_nsec);
	CHECK(g.atime.tv_sec == at.tv_sec && g.atime.tv_nsec == at.tv_nsec);
	CHECK_EQ_INT(BUDGET(1, meta_file_setattr(m, f.ino, META_SET_MODE, 0640, NULL, NULL, &g)), 0);
	CHECK_EQ_INT(g.mode, 0640);
	CHECK(g.mtime.tv_sec == mt.tv_sec);
	CHECK_EQ_INT(meta_file_setattr(m, 999999999, META_SET_MODE, 0600, NULL, NULL, &g), -ENOENT);

	/* a removed file takes no content */
	CHECK_EQ_INT(meta_unlink(m, &LIB, "c.jpg", NULL), 0);
	CHECK_EQ_INT(meta_file_stage(m, f.ino, &c), -ENOENT);
	meta_free(m);
}

/* A batch of close-time records (the recorder's, fs_record.c) is one round
 * trip, each record its own transaction: the ones that fail undo nothing
 * of the others, and a later record sees an earlier one's commit. */
static void test_records_batch(void)
{
	enum { MADE = 38, N = MADE + 4 };
	struct meta *m = open_as("batch");
	char sha[65], key[96], sha2[65], key2[96], names[MADE + 1][32];
	struct meta_content c = content('c', 4096, 1, sha, key), c2 = content('d', 77, 2, sha2, key2);
	struct meta_record r[N];
	struct meta_file f, t, g;
	uint64_t ino[MADE + 1];
	unsigned long long trips;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(mk(m, &LIB, "old.jpg", &f), 0);
	CHECK_EQ_INT(mk(m, &LIB, "taken.jpg", &t), 0);
	CHECK_EQ_INT(meta_inos(m, ino, MADE + 1), MADE + 1);
	for (int i = 0; i <= MADE; i++) {
		snprintf(names[i], sizeof(names[i]), i < MADE ? "b%02d.jpg" : "taken.jpg", i);
		r[i] = (struct meta_record){ .ino = ino[i], .ct = &c, .dir = &LIB, .name = names[i], .mode = 0640,
					     .made = &T0 };
	}
	r[MADE + 1] = (struct meta_record){ .ino = f.ino, .ct = &c2 };		/* new content */
	r[MADE + 2] = (struct meta_record){ .ino = 999999999, .ct = &c2 };	/* no such file */
	r[MADE + 3] = (struct meta_record){ .ino = ino[0], .ct = &c, .dir = &LIB, .name = "again.jpg",
					    .mode = 0640, .made = &T0 };		/* made above */
	trips = meta_round_trips();
	CHECK_EQ_INT(BUDGET(N, meta_records(m, r, N)), 0);
	CHECK_EQ_INT((int)(meta_round_trips() - trips), 1);
	for (int i = 0; i < MADE; i++) {
		CHECK_EQ_INT(r[i].rc, 0);
		CHECK_EQ_INT(meta_lookup(m, &LIB, names[i], &g), 0);
		CHECK(g.ino == ino[i]);
		CHECK_EQ_INT(g.size, 4096);
		CHECK_EQ_INT(g.mode, 0640);
		CHECK_STREQ(g.sha256, sha);
	}
	CHECK_EQ_INT(r[MADE].rc, -EEXIST);
	CHECK_EQ_INT(meta_file_get(m, ino[MADE], &g), -ENOENT);
	CHECK_EQ_INT(r[MADE + 1].rc, 0);
	CHECK_EQ_INT(meta_file_get(m, f.ino, &g), 0);
	CHECK_STREQ(g.sha256, sha2);
	CHECK_EQ_INT(r[MADE + 2].rc, -ENOENT);
	CHECK_EQ_INT(r[MADE + 3].rc, -EALREADY);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "again.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_file_get(m, t.ino, &g), 0);
	CHECK_EQ_INT(g.size, 0);

	/* again, its statements prepared by now: still one */
	r[0] = (struct meta_record){ .ino = ino[1], .ct = &c2 };
	r[1] = (struct meta_record){ .ino = ino[2], .ct = &c2 };
	trips = meta_round_trips();
	CHECK_EQ_INT(BUDGET(2, meta_records(m, r, 2)), 0);
	CHECK_EQ_INT((int)(meta_round_trips() - trips), 1);
	CHECK_EQ_INT(r[0].rc, 0);
	CHECK_EQ_INT(r[1].rc, 0);
	CHECK_EQ_INT(meta_file_get(m, ino[2], &g), 0);
	CHECK_STREQ(g.sha256, sha2);
	meta_free(m);
}

/* The upload records of many small files (the uploaders', cache_upload.c)
 * are one statement and one transaction for up to META_UPLOADS_MAX: a
 * record that fails (a file gone) changes nothing of the others, and a
 * replay changes nothing. */
static void test_uploads_batch(void)
{
	enum { N = 24 };
	struct meta *m = open_as("uploads");
	char sha[N][65], key[N][96];
	struct meta_content c[N];
	struct meta_uploaded u[N];
	struct meta_file f[N], g;
	unsigned long long trips;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	for (int i = 0; i < N; i++) {
		char name[32];

		c[i] = content('0' + i % 10, 100 + (uint64_t)i, 1, sha[i], key[i]);
		sha[i][17] = 'a' + i % 26;	/* bytes of their own */
		snprintf(name, sizeof(name), "u%02d.jpg", i);
		CHECK_EQ_INT(mk(m, &LIB, name, &f[i]), 0);
		CHECK_EQ_INT(meta_file_stage(m, f[i].ino, &c[i]), 0);
		u[i] = (struct meta_uploaded){ .ino = f[i].ino, .ct = &c[i] };
	}
	u[5].ino = 999999999;	/* no such file */
	trips = meta_round_trips();
	CHECK_EQ_INT(BUDGET(1, meta_files_uploaded(m, u, N)), 0);
	CHECK_EQ_INT((int)(meta_round_trips() - trips), 1);
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(u[i].rc, i == 5 ? -ENOENT : 0);
		CHECK_EQ_INT(meta_file_get(m, f[i].ino, &g), 0);
		CHECK_STREQ(meta_upload_name(g.upload), i == 5 ? "uploading" : "completed");
		CHECK_STREQ(g.sha256, sha[i]);
	}
	/* replayed: the same answers, nothing changes */
	u[5].ino = f[5].ino;
	CHECK_EQ_INT(BUDGET(1, meta_files_uploaded(m, u, N)), 0);
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(u[i].rc, 0);
		CHECK_EQ_INT(meta_file_get(m, f[i].ino, &g), 0);
		CHECK_STREQ(meta_upload_name(g.upload), "completed");
	}
	CHECK_EQ_INT(meta_files_uploaded(m, u, META_UPLOADS_MAX + 1), -EINVAL);
	meta_free(m);
}

static void test_rename(void)
{
	struct meta *m = open_as("rename");
	struct meta_file a, t, g;
	struct meta_folder sub;
	struct meta_dir sd;
	uint64_t replaced = 77;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(mk_full(m, &LIB, "a.jpg", '1', &a), 0);
	/* a plain rename */
	CHECK_EQ_INT(BUDGET(1, meta_move(m, &LIB, "a.jpg", &LIB, "b.jpg", 0, &replaced)), 0);
	CHECK(replaced == 0);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "a.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "b.jpg", &g), 0);
	CHECK(g.ino == a.ino);
	/* mv a a */
	CHECK_EQ_INT(meta_move(m, &LIB, "b.jpg", &LIB, "b.jpg", 0, &replaced), 0);
	CHECK(replaced == 0);
	CHECK_EQ_INT(meta_move(m, &LIB, "gone.jpg", &LIB, "x.jpg", 0, &replaced), -ENOENT);

	/* into a folder of the tree, and back */
	CHECK_EQ_INT(meta_folder_create(m, &LIB, "sub", 0755, &sub), 0);
	sd = dir_of(&sub);
	CHECK_EQ_INT(BUDGET(1, meta_move(m, &LIB, "b.jpg", &sd, "b.jpg", 0, &replaced)), 0);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "b.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &sd, "b.jpg", &g), 0);
	CHECK(g.ino == a.ino);
	CHECK_EQ_INT(meta_move(m, &sd, "b.jpg", &LIB, "b.jpg", 0, &replaced), 0);
	/* over a folder: EISDIR, or EEXIST with NOREPLACE */
	CHECK_EQ_INT(meta_move(m, &LIB, "b.jpg", &LIB, "sub", 0, &replaced), -EISDIR);
	CHECK_EQ_INT(meta_move(m, &LIB, "b.jpg", &LIB, "sub", META_MOVE_NOREPLACE, &replaced), -EEXIST);

	/* over a file: NOREPLACE says EEXIST and changes nothing */
	CHECK_EQ_INT(mk_full(m, &LIB, "t.jpg", '2', &t), 0);
	CHECK_EQ_INT(meta_move(m, &LIB, "b.jpg", &LIB, "t.jpg", META_MOVE_NOREPLACE, &replaced), -EEXIST);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "b.jpg", &g), 0);

	/* over a file, replacing: b is fresh (one version, no gallery), so
	 * its content becomes t's new version; t keeps its memory and takes
	 * b's inode number, t's old number goes with its old version */
	CHECK_EQ_INT(BUDGET(1, meta_move(m, &LIB, "b.jpg", &LIB, "t.jpg", 0, &replaced)), 0);
	CHECK(replaced == t.ino);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "b.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "t.jpg", &g), 0);
	CHECK(g.ino == a.ino);
	CHECK_STREQ(g.memory_id, t.memory_id);
	CHECK_STREQ(g.sha256, a.sha256);
	CHECK_STREQ(g.asset_id, a.asset_id);
	CHECK_EQ_INT(meta_file_get(m, t.ino, &g), 0);
	CHECK(g.is_version);
	CHECK_STREQ(g.sha256, t.sha256);

	/* over a file, replacing, when the moved one is no fresh file (it
	 * has two versions): the replaced file goes to the trash */
	{
		char sha[65], key[96];
		struct meta_content c = content('4', 10, 5, sha, key);
		struct meta_file u;

		CHECK_EQ_INT(mk_full(m, &LIB, "u.jpg", '3', &u), 0);
		CHECK_EQ_INT(meta_file_stage(m, u.ino, &c), 0);
		CHECK_EQ_INT(meta_file_uploaded(m, u.ino, &c), 0);
		CHECK_EQ_INT(BUDGET(1, meta_move(m, &LIB, "u.jpg", &LIB, "t.jpg", 0, &replaced)), 0);
		CHECK(replaced == a.ino);
		CHECK_EQ_INT(meta_lookup(m, &LIB, "t.jpg", &g), 0);
		CHECK(g.ino == u.ino);
		CHECK_STREQ(g.memory_id, u.memory_id);
		CHECK_EQ_INT(meta_lookup(m, &TRASH, "t.jpg", &g), 0);
		CHECK(g.ino == a.ino);
		CHECK_STREQ(meta_lifecycle_name(g.lifecycle), "tombstoned");
	}
	/* between library/ and workspace/: the workspace file is promoted */
	CHECK_EQ_INT(mk_full(m, &WS, "w.jpg", '5', &g), 0);
	CHECK_EQ_INT(meta_move(m, &WS, "w.jpg", &LIB, "w.jpg", 0, &replaced), 0);
	CHECK_EQ_INT(meta_lookup(m, &WS, "w.jpg", &t), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "w.jpg", &t), 0);
	CHECK(t.ino == g.ino);
	meta_free(m);
}

static void test_unlink_and_trash(void)
{
	struct meta *m = open_as("unlink");
	struct meta_file f, g;
	struct meta_folder sub;
	struct meta_dir sd;
	uint64_t ino = 0, replaced;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(mk_full(m, &LIB, "a.jpg", 'a', &f), 0);
	CHECK_EQ_INT(BUDGET(1, meta_unlink(m, &LIB, "a.jpg", &ino)), 0);
	CHECK(ino == f.ino);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "a.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_file_get(m, f.ino, &g), 0);	/* an open file keeps its attributes */
	CHECK_STREQ(meta_lifecycle_name(g.lifecycle), "tombstoned");
	CHECK_STREQ(g.status, "tombstoned");
	CHECK_EQ_INT(meta_lookup(m, &TRASH, "a.jpg", &g), 0);
	CHECK(g.ino == f.ino);
	/* again: gone; in the trash: no */
	CHECK_EQ_INT(BUDGET(1, meta_unlink(m, &LIB, "a.jpg", &ino)), -ENOENT);
	CHECK_EQ_INT(meta_unlink(m, &TRASH, "a.jpg", &ino), -EPERM);
	/* the name is free again */
	CHECK_EQ_INT(mk(m, &LIB, "a.jpg", &g), 0);
	CHECK(g.ino != f.ino);
	CHECK_EQ_INT(meta_unlink(m, &LIB, "a.jpg", NULL), 0);

	/* back from the trash: active again, where it was */
	CHECK_EQ_INT(meta_move(m, &TRASH, "a.jpg", &LIB, "a.jpg", 0, &replaced), 0);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "a.jpg", &g), 0);
	CHECK(g.ino == f.ino);
	CHECK_STREQ(meta_lifecycle_name(g.lifecycle), "active");
	CHECK_STREQ(g.status, "active");

	/* in a folder of the tree, and in the workspace */
	CHECK_EQ_INT(meta_folder_create(m, &LIB, "sub", 0755, &sub), 0);
	sd = dir_of(&sub);
	CHECK_EQ_INT(mk(m, &sd, "s.jpg", &f), 0);
	CHECK_EQ_INT(BUDGET(1, meta_unlink(m, &sd, "s.jpg", &ino)), 0);
	CHECK(ino == f.ino);
	CHECK_EQ_INT(meta_lookup(m, &sd, "s.jpg", &g), -ENOENT);
	CHECK_EQ_INT(mk(m, &WS, "w.jpg", &f), 0);
	CHECK_EQ_INT(BUDGET(1, meta_unlink(m, &WS, "w.jpg", &ino)), 0);
	CHECK(ino == f.ino);
	CHECK_EQ_INT(meta_lookup(m, &WS, "w.jpg", &g), -ENOENT);
	meta_free(m);
}

static void test_galleries(void)
{
	struct meta *m = open_as("gallery");
	struct meta_folder gal, gal2, coll;
	struct meta_file f, g, w;
	struct meta_dir gd, gd2, cd;
	uint64_t ino = 0, replaced;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(meta_folder_create(m, &GALLERIES, "Summer", 0755, &gal), 0);
	CHECK(gal.place == META_PLACE_GALLERY);
	CHECK_EQ_INT(meta_folder_create(m, &GALLERIES, "Winter", 0755, &gal2), 0);
	CHECK_EQ_INT(meta_folder_create(m, &GALLERIES, "Summer", 0755, &gal2), -EEXIST);
	gd = dir_of(&gal);
	CHECK_EQ_INT(mk_full(m, &LIB, "a.jpg", 'a', &f), 0);

	/* link: one statement; the answer is the file as it is now */
	CHECK_EQ_INT(BUDGET(1, meta_link(m, f.ino, &gd, "a.jpg", &g)), 0);
	CHECK(g.ino == f.ino);
	CHECK_EQ_INT(g.nlink, 2);
	{
		struct meta_file now;

		CHECK_EQ_INT(meta_file_get(m, f.ino, &now), 0);
		CHECK_EQ_INT(now.nlink, g.nlink);
		CHECK(now.ctime.tv_sec == g.ctime.tv_sec && now.ctime.tv_nsec == g.ctime.tv_nsec);
		CHECK(now.mode == g.mode && now.size == g.size);
		CHECK_STREQ(now.name, g.name);
	}
	CHECK_EQ_INT(meta_lookup(m, &gd, "a.jpg", &g), 0);
	CHECK(g.ino == f.ino);
	/* again: the gallery shows it already */
	CHECK_EQ_INT(BUDGET(1, meta_link(m, f.ino, &gd, "a.jpg", &g)), -EEXIST);
	/* under another name: EPERM too (issue 11); outside a gallery: EPERM; a gone file */
	CHECK_EQ_INT(meta_link(m, f.ino, &gd, "b.jpg", &g), -EPERM);
	CHECK_EQ_INT(meta_link(m, f.ino, &LIB, "a.jpg", &g), -EPERM);
	CHECK_EQ_INT(meta_link(m, 999999999, &gd, "a.jpg", &g), -ENOENT);

	/* a workspace file linked into a gallery is promoted to library/ */
	CHECK_EQ_INT(mk_full(m, &WS, "w.jpg", 'b', &w), 0);
	CHECK_EQ_INT(BUDGET(1, meta_link(m, w.ino, &gd, "w.jpg", &g)), 0);
	CHECK_EQ_INT(g.nlink, 2);
	CHECK_EQ_INT(meta_lookup(m, &WS, "w.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "w.jpg", &g), 0);
	CHECK(g.ino == w.ino);

	/* unlink in a gallery: the membership only */
	CHECK_EQ_INT(BUDGET(1, meta_unlink(m, &gd, "a.jpg", &ino)), 0);
	CHECK(ino == f.ino);
	CHECK_EQ_INT(meta_lookup(m, &gd, "a.jpg", &g), -ENOENT);
	CHECK_EQ_INT(BUDGET(1, meta_lookup(m, &LIB, "a.jpg", &g)), 0);
	CHECK_STREQ(meta_lifecycle_name(g.lifecycle), "active");
	CHECK_EQ_INT(g.nlink, 1);
	CHECK_EQ_INT(BUDGET(1, meta_unlink(m, &gd, "a.jpg", &ino)), -ENOENT);

	/* moves between galleries and out */
	CHECK_EQ_INT(meta_link(m, f.ino, &gd, "a.jpg", &g), 0);
	gd2 = dir_of(&gal2);
	CHECK_EQ_INT(meta_move(m, &gd, "a.jpg", &gd2, "a.jpg", 0, &replaced), 0);
	CHECK_EQ_INT(meta_lookup(m, &gd, "a.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &gd2, "a.jpg", &g), 0);

	/* a gallery that shows something is not removed; an empty one is */
	CHECK_EQ_INT(meta_folder_remove(m, &GALLERIES, "Winter"), -ENOTEMPTY);
	CHECK_EQ_INT(meta_unlink(m, &gd2, "a.jpg", NULL), 0);
	CHECK_EQ_INT(meta_folder_remove(m, &GALLERIES, "Winter"), 0);
	CHECK_EQ_INT(meta_folder_lookup(m, &GALLERIES, "Winter", &gal2), -ENOENT);
	CHECK_EQ_INT(meta_folder_rename(m, &GALLERIES, "Summer", &GALLERIES, "Summer-2026", 0), 0);
	CHECK_EQ_INT(meta_folder_lookup(m, &GALLERIES, "Summer-2026", &gal2), 0);
	CHECK(gal2.ino == gal.ino);

	/* collections: a file is in one at most */
	CHECK_EQ_INT(meta_folder_create(m, &COLLECTIONS, "Trips", 0755, &coll), 0);
	cd = dir_of(&coll);
	CHECK_EQ_INT(meta_move(m, &LIB, "a.jpg", &cd, "a.jpg", 0, &replaced), 0);
	CHECK_EQ_INT(meta_lookup(m, &cd, "a.jpg", &g), 0);
	CHECK_EQ_INT(g.nlink, 2);
	{
		char name[256];

		CHECK_EQ_INT(meta_file_collection(m, f.ino, name, sizeof(name)), 0);
		CHECK_STREQ(name, "Trips");
		CHECK_EQ_INT(meta_file_set_collection(m, f.ino, NULL), 0);
		CHECK_EQ_INT(meta_file_collection(m, f.ino, name, sizeof(name)), -ENODATA);
		CHECK_EQ_INT(meta_file_set_collection(m, f.ino, "No such"), -ENOENT);
	}
	/* unlink in a collection removes the file itself */
	CHECK_EQ_INT(meta_file_set_collection(m, f.ino, "Trips"), 0);
	CHECK_EQ_INT(BUDGET(1, meta_unlink(m, &cd, "a.jpg", &ino)), 0);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "a.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &TRASH, "a.jpg", &g), 0);
	meta_free(m);
}

/* Two files called a.jpg in two folders, shown together by a gallery:
 * the older keeps the name, the other shows as a twin (a~hhhh.jpg), and
 * the twin's name works for lookup, link and unlink. */
static void test_twins(void)
{
	struct meta *m = open_as("twins");
	struct meta_folder one, two, gal;
	struct meta_file a1, a2, g;
	struct meta_dir d1, d2, gd;
	char twin[256];
	uint64_t ino = 0;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(meta_folder_create(m, &LIB, "one", 0755, &one), 0);
	CHECK_EQ_INT(meta_folder_create(m, &LIB, "two", 0755, &two), 0);
	CHECK_EQ_INT(meta_folder_create(m, &GALLERIES, "G", 0755, &gal), 0);
	d1 = dir_of(&one);
	d2 = dir_of(&two);
	gd = dir_of(&gal);
	CHECK_EQ_INT(mk_full(m, &d1, "a.jpg", '1', &a1), 0);
	CHECK_EQ_INT(mk_full(m, &d2, "a.jpg", '2', &a2), 0);
	CHECK(a1.ino < a2.ino);
	CHECK_EQ_INT(meta_link(m, a2.ino, &gd, "a.jpg", &g), 0);
	/* the gallery shows a.jpg now: the other one only as its twin */
	CHECK_EQ_INT(meta_link(m, a1.ino, &gd, "a.jpg", &g), -EEXIST);
	name_twin("a.jpg", a1.memory_id, twin);
	CHECK_EQ_INT(meta_link(m, a1.ino, &gd, "a~zzzz.jpg", &g), -EPERM);
	CHECK_EQ_INT(meta_link(m, a1.ino, &gd, twin, &g), 0);
	CHECK_EQ_INT(g.nlink, 2);
	CHECK_EQ_INT(meta_link(m, a1.ino, &gd, twin, &g), -EEXIST);
	/* a1 is older: it takes the plain name, a2 shows as its twin */
	CHECK_EQ_INT(meta_lookup(m, &gd, "a.jpg", &g), 0);
	CHECK(g.ino == a1.ino);
	name_twin("a.jpg", a2.memory_id, twin);
	CHECK_EQ_INT(meta_lookup(m, &gd, twin, &g), 0);
	CHECK(g.ino == a2.ino);
	CHECK_STREQ(g.name, twin);
	/* unlink by the twin's name: the membership of a2 only */
	CHECK_EQ_INT(meta_unlink(m, &gd, twin, &ino), 0);
	CHECK(ino == a2.ino);
	CHECK_EQ_INT(meta_lookup(m, &gd, twin, &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &gd, "a.jpg", &g), 0);
	CHECK(g.ino == a1.ino);
	CHECK_EQ_INT(meta_lookup(m, &d2, "a.jpg", &g), 0);
	CHECK(g.ino == a2.ino);
	CHECK_STREQ(meta_lifecycle_name(g.lifecycle), "active");
	/* a twin-like name that is nobody's */
	CHECK_EQ_INT(meta_unlink(m, &gd, "a~0000.jpg", &ino), -ENOENT);
	CHECK_EQ_INT(meta_unlink(m, &d1, "a~0000.jpg", &ino), -ENOENT);
	{
		struct meta_folder fo;
		int is_folder;

		CHECK_EQ_INT(meta_lookup_entry(m, &d1, "a~0000.jpg", &g, &fo, &is_folder), -ENOENT);
	}
	/* in a folder of the tree, a file's display name may look like a twin's */
	CHECK_EQ_INT(mk_full(m, &d1, "b~abcd.jpg", '3', &a2), 0);
	CHECK_EQ_INT(meta_lookup(m, &d1, "b~abcd.jpg", &g), 0);
	CHECK_EQ_INT(meta_unlink(m, &d1, "b~abcd.jpg", &ino), 0);
	CHECK(ino == a2.ino);
	CHECK_EQ_INT(meta_lookup(m, &d1, "b~abcd.jpg", &g), -ENOENT);
	meta_free(m);
}

static void test_folders(void)
{
	struct meta *m = open_as("folders");
	struct meta_folder a, b, got;
	struct meta_file f;
	struct meta_dir ad, bd;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(meta_folder_create(m, &LIB, "A", 0750, &a), 0);
	CHECK(a.place == META_PLACE_LIBRARY);
	CHECK_EQ_INT(a.mode, 0750);
	CHECK_EQ_INT(a.nlink, 2);
	CHECK_STREQ(a.name, "A");
	ad = dir_of(&a);
	CHECK_EQ_INT(meta_folder_create(m, &ad, "B", 0755, &b), 0);
	bd = dir_of(&b);
	CHECK_EQ_INT(meta_folder_get(m, a.ino, &got), 0);
	CHECK_EQ_INT(got.nlink, 3);
	CHECK_EQ_INT(meta_folder_lookup(m, &LIB, "A", &got), 0);
	CHECK(got.ino == a.ino);
	CHECK_EQ_INT(meta_folder_lookup(m, &LIB, "Z", &got), -ENOENT);
	CHECK_EQ_INT(meta_folder_create(m, &LIB, "A", 0755, &got), -EEXIST);
	CHECK_EQ_INT(meta_folder_create(m, &TRASH, "X", 0755, &got), -EPERM);

	/* not empty: a folder, then a file */
	CHECK_EQ_INT(meta_folder_remove(m, &LIB, "A"), -ENOTEMPTY);
	CHECK_EQ_INT(mk(m, &bd, "f.txt", &f), 0);
	CHECK_EQ_INT(meta_folder_remove(m, &ad, "B"), -ENOTEMPTY);
	CHECK_EQ_INT(meta_folder_remove(m, &LIB, "nope"), -ENOENT);

	/* rename and move; into itself or below it is EINVAL; across places EXDEV */
	CHECK_EQ_INT(meta_folder_rename(m, &ad, "B", &ad, "B2", 0), 0);
	CHECK_EQ_INT(meta_folder_lookup(m, &ad, "B2", &got), 0);
	CHECK(got.ino == b.ino);
	CHECK_EQ_INT(meta_folder_rename(m, &ad, "B2", &LIB, "B", 0), 0);
	CHECK_EQ_INT(meta_folder_lookup(m, &LIB, "B", &got), 0);
	CHECK_EQ_INT(meta_lookup(m, &bd, "f.txt", &f), 0);	/* what it holds moved with it */
	CHECK_EQ_INT(meta_folder_rename(m, &LIB, "A", &ad, "A", 0), -EINVAL);
	CHECK_EQ_INT(meta_folder_rename(m, &LIB, "A", &WS, "A", 0), -EXDEV);
	/* over a file ENOTDIR, over a folder that is not empty ENOTEMPTY,
	 * with NOREPLACE EEXIST; over an empty one it replaces it */
	CHECK_EQ_INT(mk(m, &LIB, "file", &f), 0);
	CHECK_EQ_INT(meta_folder_rename(m, &LIB, "A", &LIB, "file", 0), -ENOTDIR);
	CHECK_EQ_INT(meta_folder_rename(m, &LIB, "A", &LIB, "B", 0), -ENOTEMPTY);
	CHECK_EQ_INT(meta_folder_rename(m, &LIB, "A", &LIB, "B", META_MOVE_NOREPLACE), -EEXIST);
	CHECK_EQ_INT(meta_unlink(m, &bd, "f.txt", NULL), 0);
	CHECK_EQ_INT(meta_folder_rename(m, &LIB, "A", &LIB, "B", 0), 0);
	CHECK_EQ_INT(meta_folder_lookup(m, &LIB, "A", &got), -ENOENT);
	CHECK_EQ_INT(meta_folder_lookup(m, &LIB, "B", &got), 0);
	CHECK(got.ino == a.ino);

	/* empty: removed (its file in the trash belongs to the parent now) */
	CHECK_EQ_INT(meta_folder_remove(m, &LIB, "B"), 0);
	CHECK_EQ_INT(meta_folder_lookup(m, &LIB, "B", &got), -ENOENT);
	CHECK_EQ_INT(meta_folder_get(m, a.ino, &got), -ENOENT);
	meta_free(m);
}

static void test_abort(void)
{
	struct meta *m = open_as("abort");
	struct meta_file f, g;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(mk(m, &LIB, "x.bin", &f), 0);
	CHECK_EQ_INT(meta_file_abort(m, f.ino), 0);
	CHECK_EQ_INT(meta_file_get(m, f.ino, &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &LIB, "x.bin", &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(m, &TRASH, "x.bin", &g), -ENOENT);
	CHECK_EQ_INT(mk(m, &LIB, "x.bin", &g), 0);	/* as if it never existed */
	/* a file with committed content is left alone */
	CHECK_EQ_INT(mk_full(m, &LIB, "y.bin", 'c', &f), 0);
	CHECK_EQ_INT(meta_file_abort(m, f.ino), 0);
	CHECK_EQ_INT(meta_file_get(m, f.ino, &g), 0);
	CHECK_STREQ(meta_lifecycle_name(g.lifecycle), "active");
	/* and so is one whose content is staged, waiting for its upload: its
	 * bytes are in the journal, and a later failed write must not lose it */
	{
		char sha[65], key[96];
		struct meta_content c = content('s', 1000, 1, sha, key);

		CHECK_EQ_INT(mk(m, &LIB, "z.bin", &f), 0);
		CHECK_EQ_INT(meta_file_stage(m, f.ino, &c), 0);
		CHECK_EQ_INT(meta_file_abort(m, f.ino), 0);
		CHECK_EQ_INT(meta_file_get(m, f.ino, &g), 0);
		CHECK_STREQ(g.sha256, sha);
	}
	meta_free(m);
}

/* Two people, one database: row-level security keeps each one's files
 * out of the other's reach, through the server-side functions too. */
static void test_users_apart(void)
{
	struct meta *a = open_as("alice"), *b = open_as("bob");
	struct meta_folder gal;
	struct meta_file f, g;
	struct meta_dir gd;
	uint64_t replaced;

	if (!a || !b) {
		CHECK(a && b);
		meta_free(a);
		meta_free(b);
		return;
	}
	CHECK_EQ_INT(mk_full(a, &LIB, "mine.jpg", 'd', &f), 0);
	CHECK_EQ_INT(meta_folder_create(b, &GALLERIES, "G", 0755, &gal), 0);
	gd = dir_of(&gal);
	CHECK_EQ_INT(meta_file_get(b, f.ino, &g), -ENOENT);
	CHECK_EQ_INT(meta_lookup(b, &LIB, "mine.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_unlink(b, &LIB, "mine.jpg", NULL), -ENOENT);
	CHECK_EQ_INT(meta_link(b, f.ino, &gd, "mine.jpg", &g), -ENOENT);
	CHECK_EQ_INT(meta_move(b, &LIB, "mine.jpg", &LIB, "yours.jpg", 0, &replaced), -ENOENT);
	CHECK_EQ_INT(meta_file_setattr(b, f.ino, META_SET_MODE, 0777, NULL, NULL, &g), -ENOENT);
	/* the same name is free for bob */
	CHECK_EQ_INT(mk(b, &LIB, "mine.jpg", &g), 0);
	CHECK(g.ino != f.ino);
	CHECK_EQ_INT(meta_lookup(a, &LIB, "mine.jpg", &g), 0);
	CHECK(g.ino == f.ino);
	CHECK_STREQ(meta_lifecycle_name(g.lifecycle), "active");
	meta_free(a);
	meta_free(b);
}

/* The desktop attributes of a library file are its row's columns: one
 * statement to read, set or remove; a workspace file keeps them as any
 * user.* attribute, one statement more (0025). */
static void test_xdg(void)
{
	struct meta *m = open_as("xdg");
	struct meta_file f, w;
	char buf[64];

	if (!m || mk(m, &LIB, "a.jpg", &f) || mk(m, &WS, "w.jpg", &w)) {
		CHECK(0);
		meta_free(m);
		return;
	}
	CHECK_EQ_INT(BUDGET(1, meta_xdg_set(m, f.ino, "user.xdg.tags", " b ,a,b", 7, 0)), 0);
	CHECK_EQ_INT(BUDGET(1, (int)meta_xdg_get(m, f.ino, "user.xdg.tags", buf, sizeof(buf))), 3);
	CHECK(memcmp(buf, "b,a", 3) == 0);
	CHECK_EQ_INT(BUDGET(1, (int)meta_xattr_list(m, f.ino, buf, sizeof(buf))), 14);
	CHECK_EQ_INT(BUDGET(1, meta_xdg_set(m, f.ino, "user.baloo.rating", "6", 1, META_XATTR_CREATE)), 0);
	CHECK_EQ_INT(meta_xdg_set(m, f.ino, "user.baloo.rating", "8", 1, META_XATTR_CREATE), -EEXIST);
	CHECK_EQ_INT(meta_xdg_set(m, f.ino, "user.xdg.comment", "t", 1, META_XATTR_REPLACE), -ENODATA);
	CHECK_EQ_INT(meta_xdg_set(m, f.ino, "user.baloo.rating", "11", 2, 0), -ERANGE);
	CHECK_EQ_INT(BUDGET(1, meta_xdg_set(m, f.ino, "user.baloo.rating", NULL, 0, 0)), 0);
	CHECK_EQ_INT(meta_xdg_set(m, f.ino, "user.baloo.rating", NULL, 0, 0), -ENODATA);
	CHECK_EQ_INT((int)meta_xdg_get(m, f.ino, "user.baloo.rating", buf, sizeof(buf)), -ENODATA);
	CHECK_EQ_INT(BUDGET(2, meta_xdg_set(m, w.ino, "user.xdg.tags", "w", 1, 0)), 0);
	CHECK_EQ_INT(BUDGET(1, (int)meta_xdg_get(m, w.ino, "user.xdg.tags", buf, sizeof(buf))), 1);
	meta_free(m);
}

/* statfs: the count is right when it is made, and made once per
 * META_USAGE_MS however often it is asked. */
static void test_usage(void)
{
	struct meta *m = open_as("usage");
	struct meta_file f;
	uint64_t files = 9, bytes = 9;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(mk_full(m, &LIB, "u.jpg", 'u', &f), 0);
	CHECK_EQ_INT(BUDGET(1, meta_usage(m, &files, &bytes)), 0);
	CHECK(files == 1 && bytes == 1000);
	/* asked again at once: the figure counted before, no statement */
	CHECK_EQ_INT(mk_full(m, &LIB, "v.jpg", 'v', &f), 0);
	CHECK_EQ_INT(BUDGET(0, meta_usage(m, &files, &bytes)), 0);
	CHECK(files == 1 && bytes == 1000);
	meta_free(m);
}

/* A variant file's getattr and open ask one statement (the file, its
 * lifecycle and its variant at once); its answers with variants ready are
 * test_variants.py's. */
static void test_variant_of_file(void)
{
	struct meta *m = open_as("variant-of");
	struct meta_variant v;
	struct meta_file f;

	if (!m) {
		CHECK(m != NULL);
		return;
	}
	CHECK_EQ_INT(mk_full(m, &LIB, "v.jpg", 'w', &f), 0);
	CHECK_EQ_INT(BUDGET(1, meta_variant_of_file(m, f.ino, "thumb", &v)), -ENOENT);	/* none made */
	CHECK_EQ_INT(BUDGET(1, meta_variant_of_file(m, f.ino + 1000000, "display", &v)), -ENOENT);
	meta_free(m);
}

int main(void)
{
	char logpath[] = "/tmp/mvfs-test-meta.XXXXXX";
	int fd;

	conninfo = getenv("MVFS_TEST_DB");
	if (!conninfo || !*conninfo) {
		printf("skipped: needs MVFS_TEST_DB (a database's conninfo; tests/mount/test_meta_unit.py"
		       " runs it against a throwaway PostgreSQL)\n");
		return 0;
	}
	/* the daemon's log lines (expected errors among them) to a scratch file */
	if ((fd = mkstemp(logpath)) >= 0) {
		close(fd);
		if (log_open(logpath) == 0 && !getenv("MVFS_TEST_VERBOSE"))
			log_set_stderr(0);
	}
	log_set_level(LOG_LVL_DEBUG);

	TEST(test_create_lookup_get);
	TEST(test_lookup_in_tree);
	TEST(test_list);
	TEST(test_stage_uploaded_setattr);
	TEST(test_records_batch);
	TEST(test_uploads_batch);
	TEST(test_rename);
	TEST(test_unlink_and_trash);
	TEST(test_galleries);
	TEST(test_twins);
	TEST(test_folders);
	TEST(test_abort);
	TEST(test_users_apart);
	TEST(test_xdg);
	TEST(test_usage);
	TEST(test_variant_of_file);

	unlink(logpath);
	return unit_done();
}
