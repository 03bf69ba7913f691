/*
 * meta_plain.c - plain files: what operating systems and editors leave in
 * folders, kept in plain_files (0007_plain_files.sql) with their bytes in
 * the row, never as memories.  Each call is one statement.
 *
 * A plain file belongs to a folder by that folder's inode number: the
 * database's for a folder of the tree (library/ and workspace/ have their
 * own), the collection's or gallery's for those.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define PLAIN_COLS \
	"ino, name, mode, octet_length(content), mtime_ns, ctime_ns, atime_ns," \
	" (extract(epoch FROM created_at) * 1000000)::bigint"

static void ts_ns(long long ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

static void plain_from_row(const PGresult *r, int row, struct meta_plain *p)
{
	long long us = strtoll(meta_val(r, row, 7), NULL, 10);

	memset(p, 0, sizeof(*p));
	p->ino = meta_u64(r, row, 0);
	META_COPY(p->name, r, row, 1);
	p->mode = (uint32_t)meta_u64(r, row, 2) & 07777;
	p->size = meta_u64(r, row, 3);
	ts_ns(strtoll(meta_val(r, row, 4), NULL, 10), &p->mtime);
	ts_ns(strtoll(meta_val(r, row, 5), NULL, 10), &p->ctime);
	ts_ns(strtoll(meta_val(r, row, 6), NULL, 10), &p->atime);
	p->crtime.tv_sec = us / 1000000;
	p->crtime.tv_nsec = (us % 1000000) * 1000;
}

/* The folder key of DIR, as text. */
static void dir_key(const struct meta *m, const struct meta_dir *dir, char *buf, size_t len)
{
	uint64_t tree = meta_tree_ino(m, dir);

	meta_u64s(buf, len, tree ? tree : dir->ino);
}

static long long ns_of(const struct timespec *ts)
{
	return (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* Runs SQL, which returns plain file rows, into OUT (the first; may be NULL). */
static int plain_one(struct meta *m, const char *what, const char *sql, int n, const char *const *p,
		     struct meta_plain *out)
{
	return META_ON_CONN(m, c, ({
		PGresult *r_;
		int rc_ = meta_exec(c, what, sql, n, p, &r_);

		if (rc_ == 0) {
			if (PQntuples(r_) == 0)
				rc_ = -ENOENT;
			else if (out)
				plain_from_row(r_, 0, out);
			PQclear(r_);
		}
		rc_;
	}));
}

int meta_plain_lookup(struct meta *m, const struct meta_dir *dir, const char *name, struct meta_plain *out)
{
	char key[24];
	const char *p[] = { m->user_id, key, name };

	dir_key(m, dir, key, sizeof(key));
	return plain_one(m, "plain file lookup",
			 "SELECT " PLAIN_COLS " FROM plain_files WHERE user_id = $1 AND dir_ino = $2 AND name = $3",
			 3, p, out);
}

int meta_plain_get(struct meta *m, uint64_t ino, struct meta_plain *out)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s };

	meta_u64s(ino_s, sizeof(ino_s), ino);
	return plain_one(m, "plain file", "SELECT " PLAIN_COLS " FROM plain_files WHERE user_id = $1 AND ino = $2",
			 2, p, out);
}

int meta_plain_list(struct meta *m, const struct meta_dir *dir, const char *after, struct meta_plain *out,
		    int max, int *n)
{
	char key[24], max_s[16];
	const char *p[] = { m->user_id, key, after, max_s };
	PGresult *r;
	int rc;

	dir_key(m, dir, key, sizeof(key));
	snprintf(max_s, sizeof(max_s), "%d", max);
	rc = META_ON_CONN(m, c, meta_exec(c, "plain file listing",
					  "SELECT " PLAIN_COLS " FROM plain_files WHERE user_id = $1 AND dir_ino = $2"
					  " AND name > $3 ORDER BY name LIMIT $4", 4, p, &r));
	if (rc)
		return rc;
	*n = PQntuples(r);
	for (int i = 0; i < *n; i++)
		plain_from_row(r, i, &out[i]);
	PQclear(r);
	return 0;
}

int meta_plain_create(struct meta *m, const struct meta_dir *dir, const char *name, uint32_t mode,
		      const struct timespec *now, struct meta_plain *out)
{
	char key[24], mode_s[16], now_s[32];
	const char *p[] = { m->user_id, key, name, mode_s, now_s };

	dir_key(m, dir, key, sizeof(key));
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	snprintf(now_s, sizeof(now_s), "%lld", ns_of(now));
	return plain_one(m, "create plain file",
			 "INSERT INTO plain_files (user_id, dir_ino, name, mode, mtime_ns, atime_ns)"
			 " VALUES ($1, $2, $3, $4, $5, $5) RETURNING " PLAIN_COLS, 5, p, out);
}

int meta_plain_read(struct meta *m, uint64_t ino, void **buf, size_t *len)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s };
	PGresult *r;
	int rc;

	meta_u64s(ino_s, sizeof(ino_s), ino);
	rc = META_ON_CONN(m, c, meta_exec(c, "read plain file",
					  "SELECT content FROM plain_files WHERE user_id = $1 AND ino = $2", 2, p, &r));
	if (rc)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return -ENOENT;
	}
	{
		unsigned char *raw = PQunescapeBytea((const unsigned char *)meta_val(r, 0, 0), len);

		PQclear(r);
		if (!raw)
			return -ENOMEM;
		*buf = malloc(*len ? *len : 1);
		if (*buf)
			memcpy(*buf, raw, *len);
		PQfreemem(raw);
		return *buf ? 0 : -ENOMEM;
	}
}

int meta_plain_write(struct meta *m, uint64_t ino, const void *buf, size_t len, const struct timespec *mtime)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *b = buf;
	char ino_s[24], mt[32], *text;
	const char *p[4];
	int rc;

	if (len > META_PLAIN_MAX)
		return -EFBIG;
	text = malloc(2 * len + 3);
	if (!text)
		return -ENOMEM;
	text[0] = '\\';
	text[1] = 'x';
	for (size_t i = 0; i < len; i++) {
		text[2 + 2 * i] = hex[b[i] >> 4];
		text[3 + 2 * i] = hex[b[i] & 15];
	}
	text[2 + 2 * len] = '\0';
	meta_u64s(ino_s, sizeof(ino_s), ino);
	snprintf(mt, sizeof(mt), "%lld", ns_of(mtime));
	p[0] = m->user_id;
	p[1] = ino_s;
	p[2] = text;
	p[3] = mt;
	rc = META_ON_CONN(m, c, ({
		PGresult *r_;
		int rc_ = meta_exec(c, "write plain file",
				    "UPDATE plain_files SET content = $3::bytea, mtime_ns = $4, ctime_ns = mvault_ns()"
				    " WHERE user_id = $1 AND ino = $2 RETURNING 1", 4, p, &r_);

		if (rc_ == 0) {
			rc_ = PQntuples(r_) ? 0 : -ENOENT;
			PQclear(r_);
		}
		rc_;
	}));
	free(text);
	return rc;
}

int meta_plain_setattr(struct meta *m, uint64_t ino, unsigned flags, uint32_t mode,
		       const struct timespec *mtime, const struct timespec *atime)
{
	char ino_s[24], mode_s[16], mt[32], at[32];
	const char *p[] = { m->user_id, ino_s, (flags & META_SET_MODE) ? mode_s : NULL,
			    (flags & META_SET_MTIME) ? mt : NULL, (flags & META_SET_ATIME) ? at : NULL };

	meta_u64s(ino_s, sizeof(ino_s), ino);
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	snprintf(mt, sizeof(mt), "%lld", mtime ? ns_of(mtime) : 0);
	snprintf(at, sizeof(at), "%lld", atime ? ns_of(atime) : 0);
	return plain_one(m, "set plain file attributes",
			 "UPDATE plain_files SET mode = coalesce($3::integer, mode),"
			 " mtime_ns = coalesce($4::bigint, mtime_ns), atime_ns = coalesce($5::bigint, atime_ns),"
			 " ctime_ns = mvault_ns() WHERE user_id = $1 AND ino = $2 RETURNING " PLAIN_COLS, 5, p, NULL);
}

int meta_plain_unlink(struct meta *m, const struct meta_dir *dir, const char *name)
{
	char key[24];
	const char *p[] = { m->user_id, key, name };

	dir_key(m, dir, key, sizeof(key));
	return plain_one(m, "remove plain file",
			 "DELETE FROM plain_files WHERE user_id = $1 AND dir_ino = $2 AND name = $3"
			 " RETURNING " PLAIN_COLS, 3, p, NULL);
}

int meta_plain_rename(struct meta *m, const struct meta_dir *from, const char *name, const struct meta_dir *to,
		      const char *newname, unsigned flags)
{
	char k1[24], k2[24];
	const char *p[] = { m->user_id, k1, name, k2, newname };

	dir_key(m, from, k1, sizeof(k1));
	dir_key(m, to, k2, sizeof(k2));
	if (strcmp(k1, k2) == 0 && strcmp(name, newname) == 0)
		return meta_plain_lookup(m, from, name, NULL);
	/* One statement: the one replaced goes, the one moved takes its name. */
	return plain_one(m, "rename plain file",
			 (flags & META_MOVE_NOREPLACE)
			 ? "UPDATE plain_files SET dir_ino = $4, name = $5, ctime_ns = mvault_ns()"
			   " WHERE user_id = $1 AND dir_ino = $2 AND name = $3 RETURNING " PLAIN_COLS
			 /* the DELETE is read in the WHERE, so it runs before the UPDATE */
			 : "WITH gone AS (DELETE FROM plain_files WHERE user_id = $1 AND dir_ino = $4 AND name = $5"
			   "              AND EXISTS (SELECT 1 FROM plain_files WHERE user_id = $1 AND dir_ino = $2"
			   "                          AND name = $3) RETURNING 1)"
			   " UPDATE plain_files SET dir_ino = $4, name = $5, ctime_ns = mvault_ns()"
			   " WHERE user_id = $1 AND dir_ino = $2 AND name = $3 AND (SELECT count(*) FROM gone) >= 0"
			   " RETURNING " PLAIN_COLS, 5, p, NULL);
}
