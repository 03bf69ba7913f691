/*
 * meta_folders.c - folders: collections, galleries, and the person's own
 * tree in library/ and workspace/.
 *
 * Collections and galleries are one level deep, in collections/ and
 * galleries/, and keep no times of their own (their updated_at, which a
 * trigger moves with their contents, is their mtime).  Folders of the tree
 * are rows of `folders` (0006_folders.sql): any depth, a mode and the three
 * times, one top row per place standing for library/ or workspace/ itself.
 *
 * Names in a folder of the tree are shared by its files and its folders:
 * every change that takes or frees a name holds the advisory lock on
 * (folder, name) (meta_lock_name), as file changes do.  A move of a folder
 * to another parent also holds the user's tree lock, so two crossing moves
 * cannot make a cycle between their checks.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* The columns of every folder row, whatever its table: a folder of the
 * tree's are META_TREE_COLS (meta_internal.h), a collection's or gallery's
 * these. */
#define VIEW_COLS(kind) \
	"f.ino, f.id, f.name, 493, (extract(epoch FROM f.updated_at) * 1000000)::bigint * 1000," \
	" (extract(epoch FROM f.updated_at) * 1000000)::bigint * 1000," \
	" (extract(epoch FROM f.updated_at) * 1000000)::bigint * 1000," \
	" (extract(epoch FROM f.created_at) * 1000000)::bigint, 2, '" kind "'"

/* The lock key of names in collections/ and galleries/. */
#define VIEW_KEY(place) ((place) == META_PLACE_COLLECTION ? META_INO_COLLECTIONS : META_INO_GALLERIES)

static void ts_ns(long long ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

void meta_folder_row(const struct meta *m, const PGresult *r, int row, int col, struct meta_folder *f)
{
	const char *kind = meta_val(r, row, col + 9);
	long long us = strtoll(meta_val(r, row, col + 7), NULL, 10);

	memset(f, 0, sizeof(*f));
	f->ino = meta_kernel_ino(m, meta_u64(r, row, col));
	META_COPY(f->id, r, row, col + 1);
	META_COPY(f->name, r, row, col + 2);
	f->mode = (uint32_t)meta_u64(r, row, col + 3) & 07777;
	ts_ns(strtoll(meta_val(r, row, col + 4), NULL, 10), &f->mtime);
	ts_ns(strtoll(meta_val(r, row, col + 5), NULL, 10), &f->ctime);
	ts_ns(strtoll(meta_val(r, row, col + 6), NULL, 10), &f->atime);
	f->crtime.tv_sec = us / 1000000;
	f->crtime.tv_nsec = (us % 1000000) * 1000;
	f->nlink = (uint32_t)meta_u64(r, row, col + 8);
	f->place = kind[0] == 'c' ? META_PLACE_COLLECTION : kind[0] == 'g' ? META_PLACE_GALLERY
		 : strcmp(kind, "library") == 0 ? META_PLACE_LIBRARY : META_PLACE_WORKSPACE;
}

/* Runs SQL, which selects folder rows, and reads the first into OUT
 * (may be NULL): 0, -ENOENT when there is none, or -errno. */
static int folder_one(struct meta *m, PGconn *c, const char *what, const char *sql, int n,
		      const char *const *p, struct meta_folder *out)
{
	PGresult *r;
	int rc = meta_exec(c, what, sql, n, p, &r);

	if (rc)
		return rc;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else if (out)
		meta_folder_row(m, r, 0, 0, out);
	PQclear(r);
	return rc;
}

static int is_tree(const struct meta_dir *d)
{
	return d->place == META_PLACE_LIBRARY || d->place == META_PLACE_WORKSPACE;
}

static const char *view_table(enum meta_place place)
{
	return place == META_PLACE_COLLECTION ? "user_collections" : "galleries";
}

int meta_find_folder(struct meta *m, PGconn *c, const struct meta_dir *in, const char *name,
		       struct meta_folder *out)
{
	char ino_s[24], sql[512];
	const char *p[] = { m->user_id, name, ino_s };

	if (is_tree(in)) {
		snprintf(ino_s, sizeof(ino_s), "%" PRIu64, meta_tree_ino(m, in));
		return folder_one(m, c, "folder lookup",
				  "SELECT " META_TREE_COLS " FROM folders f WHERE f.user_id = $1 AND f.name = $2"
				  " AND f.parent_id = (SELECT id FROM folders WHERE ino = $3)", 3, p, out);
	}
	if (in->place != META_PLACE_COLLECTION && in->place != META_PLACE_GALLERY)
		return -ENOENT;
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s f WHERE f.user_id = $1 AND f.name = $2",
		 in->place == META_PLACE_COLLECTION ? VIEW_COLS("c") : VIEW_COLS("g"), view_table(in->place));
	return folder_one(m, c, "folder lookup", sql, 2, p, out);
}

static int find_folder_ino(struct meta *m, PGconn *c, uint64_t ino, struct meta_folder *out)
{
	char s[24];
	const char *p[] = { m->user_id, s };

	snprintf(s, sizeof(s), "%s", ino == META_INO_LIBRARY ? "library" : "workspace");
	if (ino == META_INO_LIBRARY || ino == META_INO_WORKSPACE)
		return folder_one(m, c, "top folder",
				  "SELECT " META_TREE_COLS " FROM folders f WHERE f.user_id = $1"
				  " AND f.place = $2 AND f.parent_id IS NULL", 2, p, out);
	snprintf(s, sizeof(s), "%" PRIu64, ino);
	return folder_one(m, c, "folder by inode",
			  "SELECT " VIEW_COLS("c") " FROM user_collections f WHERE f.user_id = $1 AND f.ino = $2"
			  " UNION ALL SELECT " VIEW_COLS("g") " FROM galleries f WHERE f.user_id = $1 AND f.ino = $2"
			  " UNION ALL SELECT " META_TREE_COLS " FROM folders f WHERE f.user_id = $1 AND f.ino = $2"
			  " AND f.parent_id IS NOT NULL", 2, p, out);
}

int meta_folder_lookup(struct meta *m, const struct meta_dir *in, const char *name, struct meta_folder *out)
{
	return META_ON_CONN(m, c, meta_find_folder(m, c, in, name, out));
}

int meta_folder_get(struct meta *m, uint64_t ino, struct meta_folder *out)
{
	return META_ON_CONN(m, c, find_folder_ino(m, c, ino, out));
}

int meta_folder_list(struct meta *m, const struct meta_dir *in, const char *after,
		     struct meta_folder *out, int max, int *n)
{
	char sql[512], max_s[16], ino_s[24];
	const char *p[] = { m->user_id, after, max_s, ino_s };
	int np = 3, rc;
	PGconn *c;
	PGresult *r;

	snprintf(max_s, sizeof(max_s), "%d", max);
	if (is_tree(in)) {
		snprintf(ino_s, sizeof(ino_s), "%" PRIu64, meta_tree_ino(m, in));
		snprintf(sql, sizeof(sql), "SELECT " META_TREE_COLS " FROM folders f WHERE f.user_id = $1 AND f.name > $2"
			 " AND f.parent_id = (SELECT id FROM folders WHERE ino = $4) ORDER BY f.name LIMIT $3");
		np = 4;
	} else if (in->place == META_PLACE_COLLECTION || in->place == META_PLACE_GALLERY) {
		snprintf(sql, sizeof(sql), "SELECT %s FROM %s f WHERE f.user_id = $1 AND f.name > $2"
			 " ORDER BY f.name LIMIT $3",
			 in->place == META_PLACE_COLLECTION ? VIEW_COLS("c") : VIEW_COLS("g"), view_table(in->place));
	} else {
		*n = 0;
		return 0;
	}
	c = meta_conn_get(m);
	if (!c)
		return -EIO;
	rc = meta_exec(c, "folder listing", sql, np, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	*n = PQntuples(r);
	for (int i = 0; i < *n; i++)
		meta_folder_row(m, r, i, 0, &out[i]);
	PQclear(r);
	return 0;
}

/* --- what a folder holds --------------------------------------------------- */

/* How many entries folder F shows (files that are not in the trash; for
 * the tree, its folders too). */
static int folder_count(PGconn *c, const struct meta_folder *f, long *n)
{
	const char *p[] = { f->id };
	const char *sql;
	PGresult *r;
	int rc;

	switch (f->place) {
	case META_PLACE_COLLECTION:
		sql = "SELECT (SELECT count(*) FROM user_library x JOIN memory_items i ON i.memory_id = x.memory_id"
		      "    JOIN memory_assets a ON a.id = i.primary_asset_id"
		      "    WHERE x.collection_id = $1 AND a.lifecycle_status = 'active')"
		      " + (SELECT count(*) FROM plain_files WHERE dir_ino = (SELECT ino FROM user_collections"
		      "    WHERE id = $1))";
		break;
	case META_PLACE_GALLERY:
		sql = "SELECT (SELECT count(*) FROM gallery_items x JOIN memory_items i ON i.memory_id = x.memory_id"
		      "    JOIN memory_assets a ON a.id = i.primary_asset_id"
		      "    WHERE x.gallery_id = $1 AND a.lifecycle_status = 'active')"
		      " + (SELECT count(*) FROM plain_files WHERE dir_ino = (SELECT ino FROM galleries WHERE id = $1))";
		break;
	case META_PLACE_LIBRARY:
		sql = "SELECT (SELECT count(*) FROM folders WHERE parent_id = $1)"
		      " + (SELECT count(*) FROM user_library x JOIN memory_items i ON i.memory_id = x.memory_id"
		      "    JOIN memory_assets a ON a.id = i.primary_asset_id"
		      "    WHERE x.folder_id = $1 AND a.lifecycle_status = 'active')"
		      " + (SELECT count(*) FROM plain_files WHERE dir_ino = (SELECT ino FROM folders WHERE id = $1))";
		break;
	default:
		sql = "SELECT (SELECT count(*) FROM folders WHERE parent_id = $1)"
		      " + (SELECT count(*) FROM workspace_assets x JOIN memory_items i ON i.memory_id = x.memory_id"
		      "    JOIN memory_assets a ON a.id = i.primary_asset_id"
		      "    WHERE x.folder_id = $1 AND a.lifecycle_status = 'active' AND x.expires_at > mvault_now())"
		      " + (SELECT count(*) FROM plain_files WHERE dir_ino = (SELECT ino FROM folders WHERE id = $1))";
		break;
	}
	rc = meta_exec(c, "folder count", sql, 1, p, &r);
	if (rc)
		return rc;
	*n = (long)meta_u64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* Deletes folder F, which shows nothing: the rows of its files in the
 * trash (and of expired workspace files) let go of it. */
static int folder_delete(PGconn *c, const struct meta_folder *f)
{
	const char *p[] = { f->id };
	int rc = 0;

	switch (f->place) {
	case META_PLACE_COLLECTION:
		rc = meta_exec(c, "empty collection",
			       "WITH x AS (UPDATE user_library SET collection_id = NULL WHERE collection_id = $1)"
			       " DELETE FROM user_collections WHERE id = $1", 1, p, NULL);
		break;
	case META_PLACE_GALLERY:
		rc = meta_exec(c, "delete gallery", "DELETE FROM galleries WHERE id = $1", 1, p, NULL);
		break;
	default:
		rc = meta_exec(c, "delete folder",
			       "WITH up AS (SELECT parent_id FROM folders WHERE id = $1),"
			       " l AS (UPDATE user_library SET folder_id = (SELECT parent_id FROM up) WHERE folder_id = $1),"
			       " w AS (UPDATE workspace_assets SET folder_id = (SELECT parent_id FROM up)"
			       "       WHERE folder_id = $1)"
			       " DELETE FROM folders WHERE id = $1", 1, p, NULL);
		break;
	}
	return rc;
}

/* The lock key of names in IN. */
static uint64_t key_of(const struct meta *m, const struct meta_dir *in)
{
	return is_tree(in) ? meta_tree_ino(m, in) : VIEW_KEY(in->place);
}

/* --- changes --------------------------------------------------------------- */

/* Whether a file called NAME shows in tree folder IN: -EEXIST, 0, -errno. */
static int file_in_the_way(struct meta *m, PGconn *c, const struct meta_dir *in, const char *name)
{
	struct meta_file f;
	int rc;

	if (!is_tree(in))
		return 0;
	rc = meta_find_named(m, c, in->place, meta_tree_ino(m, in), name, &f);
	return rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
}

int meta_folder_create(struct meta *m, const struct meta_dir *in, const char *name, uint32_t mode,
		       struct meta_folder *out)
{
	char sql[512], mode_s[16], ino_s[24];
	const char *p[] = { m->user_id, name, mode_s, ino_s };

	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	if (is_tree(in)) {
		snprintf(ino_s, sizeof(ino_s), "%" PRIu64, meta_tree_ino(m, in));
		snprintf(sql, sizeof(sql),
			 "INSERT INTO folders (user_id, place, parent_id, name, mode)"
			 " SELECT $1, p.place, p.id, $2, $3 FROM folders p WHERE p.ino = $4"
			 " RETURNING ino, id");
	} else if (in->place == META_PLACE_COLLECTION || in->place == META_PLACE_GALLERY) {
		snprintf(sql, sizeof(sql), "INSERT INTO %s (user_id, name) VALUES ($1, $2) RETURNING ino, id",
			 view_table(in->place));
	} else {
		return -EPERM;
	}
	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_lock_name(m, c, key_of(m, in), name);
	if (rc == 0)
		rc = file_in_the_way(m, c, in, name);
	if (rc == 0) {
		PGresult *r;

		rc = meta_exec(c, "create folder", sql, is_tree(in) ? 4 : 2, p, &r);
		if (rc == 0) {
			rc = PQntuples(r) ? 0 : -ENOENT;	/* the parent is gone */
			PQclear(r);
		}
	}
	if (rc == 0)
		rc = meta_find_folder(m, c, in, name, out);
	TX_END(m, c, rc);
}

int meta_folder_remove(struct meta *m, const struct meta_dir *in, const char *name)
{
	struct meta_folder f;
	long n = 0;

	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_lock_name(m, c, key_of(m, in), name);
	if (rc == 0)
		rc = meta_find_folder(m, c, in, name, &f);
	/* nothing may arrive in it while it is checked and removed */
	if (rc == 0 && is_tree(in)) {
		const char *p[] = { f.id };

		rc = meta_exec(c, "lock folder", "SELECT 1 FROM folders WHERE id = $1 FOR UPDATE", 1, p, NULL);
	}
	if (rc == 0)
		rc = folder_count(c, &f, &n);
	if (rc == 0 && n > 0)
		rc = -ENOTEMPTY;
	if (rc == 0)
		rc = folder_delete(c, &f);
	TX_END(m, c, rc);
}

/* Whether tree folder TARGET (database inode) is S or lies below it: 1, 0
 * or -errno. */
static int below(PGconn *c, const char *s_id, uint64_t target)
{
	char t[24];
	const char *p[] = { s_id, t };

	snprintf(t, sizeof(t), "%" PRIu64, target);
	return meta_query_bool(c, "folder below?",
			       "WITH RECURSIVE up AS (SELECT id, parent_id FROM folders WHERE ino = $2"
			       "   UNION ALL SELECT f.id, f.parent_id FROM folders f JOIN up ON f.id = up.parent_id)"
			       " SELECT EXISTS (SELECT 1 FROM up WHERE id = $1)", 2, p);
}

int meta_folder_rename(struct meta *m, const struct meta_dir *from, const char *name,
		       const struct meta_dir *to, const char *newname, unsigned flags)
{
	uint64_t k1 = key_of(m, from), k2 = key_of(m, to);
	int same_parent = k1 == k2;
	struct meta_folder f, target;
	long n = 0;

	if (is_tree(from) != is_tree(to) || (!is_tree(from) && from->place != to->place))
		return -EPERM;
	if (is_tree(from) && from->place != to->place)
		return -EXDEV;
	TX_BEGIN(m, c, rc);
	if (rc == 0 && !same_parent)
		rc = meta_lock_name(m, c, 0, "/tree");
	/* both names, in a fixed order */
	if (rc == 0)
		rc = meta_lock_name(m, c, k1 < k2 || (k1 == k2 && strcmp(name, newname) <= 0) ? k1 : k2,
				    k1 < k2 || (k1 == k2 && strcmp(name, newname) <= 0) ? name : newname);
	if (rc == 0 && !(same_parent && strcmp(name, newname) == 0))
		rc = meta_lock_name(m, c, k1 < k2 || (k1 == k2 && strcmp(name, newname) <= 0) ? k2 : k1,
				    k1 < k2 || (k1 == k2 && strcmp(name, newname) <= 0) ? newname : name);
	if (rc == 0)
		rc = meta_find_folder(m, c, from, name, &f);
	if (rc == 0 && same_parent && strcmp(name, newname) == 0)
		goto done;
	if (rc == 0 && is_tree(to)) {
		rc = below(c, f.id, meta_tree_ino(m, to));
		rc = rc == 1 ? -EINVAL : rc;
	}
	if (rc == 0 && (rc = file_in_the_way(m, c, to, newname)) == -EEXIST)
		rc = (flags & META_MOVE_NOREPLACE) ? -EEXIST : -ENOTDIR;
	if (rc == 0) {
		rc = meta_find_folder(m, c, to, newname, &target);
		if (rc == 0) {
			/* POSIX: a folder may replace an empty one */
			if (flags & META_MOVE_NOREPLACE)
				rc = -EEXIST;
			else if ((rc = folder_count(c, &target, &n)) == 0)
				rc = n > 0 ? -ENOTEMPTY : folder_delete(c, &target);
		} else if (rc == -ENOENT) {
			rc = 0;
		}
	}
	if (rc == 0) {
		char ino_s[24], sql[256];
		const char *p[] = { f.id, newname, ino_s };

		if (is_tree(to)) {
			snprintf(ino_s, sizeof(ino_s), "%" PRIu64, meta_tree_ino(m, to));
			rc = meta_exec(c, "move folder",
				       "UPDATE folders SET name = $2, parent_id = (SELECT id FROM folders WHERE ino = $3)"
				       " WHERE id = $1", 3, p, NULL);
		} else {
			snprintf(sql, sizeof(sql), "UPDATE %s SET name = $2 WHERE id = $1", view_table(to->place));
			rc = meta_exec(c, "rename folder", sql, 2, p, NULL);
		}
	}
done:
	TX_END(m, c, rc);
}

int meta_folder_setattr(struct meta *m, uint64_t ino, unsigned flags, uint32_t mode,
			const struct timespec *mtime, const struct timespec *atime, struct meta_folder *out)
{
	char ino_s[24], mode_s[16], mt[32], at[32];
	const char *p[] = { m->user_id, ino_s, (flags & META_SET_MODE) ? mode_s : NULL,
			    (flags & META_SET_MTIME) ? mt : NULL, (flags & META_SET_ATIME) ? at : NULL };
	struct meta_dir top = { .place = ino == META_INO_WORKSPACE ? META_PLACE_WORKSPACE : META_PLACE_LIBRARY,
				.ino = ino };
	uint64_t dbino = ino == META_INO_LIBRARY || ino == META_INO_WORKSPACE ? meta_tree_ino(m, &top) : ino;

	snprintf(ino_s, sizeof(ino_s), "%" PRIu64, dbino);
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	if (mtime)
		snprintf(mt, sizeof(mt), "%lld", (long long)mtime->tv_sec * 1000000000LL + mtime->tv_nsec);
	if (atime)
		snprintf(at, sizeof(at), "%lld", (long long)atime->tv_sec * 1000000000LL + atime->tv_nsec);
	return META_ON_CONN(m, c, ({
		int rc_ = meta_exec(c, "set folder attributes",
				    "UPDATE folders SET mode = coalesce($3::integer, mode),"
				    " mtime_ns = coalesce($4::bigint, mtime_ns), atime_ns = coalesce($5::bigint, atime_ns),"
				    " ctime_ns = mvault_ns() WHERE user_id = $1 AND ino = $2", 5, p, NULL);
		rc_ ? rc_ : find_folder_ino(m, c, ino, out);
	}));
}
