/*
 * meta_thumbs.c - folder paths and the files of a folder of the tree, for
 * the desktop's thumbnails.
 *
 * A folder's path is its rows walked up to the top folder of its place
 * (as meta_trash.c walks a trashed file's); the files below it are its
 * rows walked down.  Each call is one recursive statement, on the folders'
 * parent and id indexes and the place tables' folder_id indexes.
 */
#include "meta/meta_thumbs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_internal.h"

/* The path of folder id START (with its place's name first, and a '/'
 * after every name): "library/", "library/2023/".  $1 the user. */
#define FOLDER_UP(start) \
	" up AS (" \
	"  SELECT f.parent_id, f.place, CASE WHEN f.parent_id IS NULL THEN '' ELSE f.name || '/' END AS path," \
	"         0 AS depth FROM folders f WHERE f.user_id = $1 AND f.id = " start \
	"  UNION ALL" \
	"  SELECT f.parent_id, f.place, CASE WHEN f.parent_id IS NULL THEN '' ELSE f.name || '/' END || up.path," \
	"         up.depth + 1 FROM up JOIN folders f ON f.id = up.parent_id WHERE up.depth < 256)," \
	" top AS (SELECT place || '/' || path AS path FROM up WHERE parent_id IS NULL)"

/* The columns of a file in folder row D (its path in d.path). */
#define FILE_OF(table, extra) \
	" SELECT i.ino, d.path || i.display_name, floor(extract(epoch FROM i.mtime))::bigint, a.bytes," \
	"        EXISTS (SELECT 1 FROM memory_assets v WHERE v.variant_of_asset_id = a.id" \
	"                AND v.variant_type = 'thumb' AND v.lifecycle_status = 'active')" \
	"   FROM d JOIN " table " x ON x.folder_id = d.id JOIN memory_items i ON i.memory_id = x.memory_id" \
	"   JOIN memory_assets a ON a.id = i.primary_asset_id" \
	"  WHERE x.user_id = $1 AND i.user_id = $1 AND a.lifecycle_status = 'active'" extra

#define FILES_IN_D \
	FILE_OF("user_library", "") \
	" UNION ALL" FILE_OF("workspace_assets", " AND x.expires_at > mvault_now()")

static int rows_to(PGresult *r, meta_tree_file_fn fn, void *arg)
{
	for (int i = 0; i < PQntuples(r); i++) {
		struct meta_tree_file f = {
			.ino = meta_u64(r, i, 0),
			.path = meta_val(r, i, 1),
			.mtime = strtoll(meta_val(r, i, 2), NULL, 10),
			.size = meta_u64(r, i, 3),
			.has_thumb = strcmp(meta_val(r, i, 4), "t") == 0,
		};

		if (fn(arg, &f))
			break;
	}
	PQclear(r);
	return 0;
}

static void dir_param(struct meta *m, const struct meta_dir *dir, char buf[24])
{
	meta_u64s(buf, 24, meta_tree_ino(m, dir));
}

int meta_tree_path(struct meta *m, const struct meta_dir *dir, char *out, size_t len)
{
	char ino[24];
	const char *p[] = { m->user_id, ino };
	PGresult *r;
	int rc;

	if (!meta_tree_ino(m, dir))
		return -ENOENT;
	dir_param(m, dir, ino);
	rc = meta_call(m, "folder path",
		       "WITH RECURSIVE" FOLDER_UP("(SELECT id FROM folders WHERE user_id = $1 AND ino = $2)")
		       " SELECT path FROM top", 2, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0) {
		rc = -ENOENT;
	} else {
		size_t n = strlen(meta_val(r, 0, 0));

		/* without its last '/' */
		if (n == 0 || n > len)
			rc = -ENAMETOOLONG;
		else
			snprintf(out, n, "%s", meta_val(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

int meta_tree_files(struct meta *m, const struct meta_dir *dir, int recursive, meta_tree_file_fn fn, void *arg)
{
	char ino[24];
	const char *p[] = { m->user_id, ino, recursive ? "t" : "f" };
	PGresult *r;
	int rc;

	if (!meta_tree_ino(m, dir))
		return -ENOENT;
	dir_param(m, dir, ino);
	rc = meta_call(m, "files of a folder",
		       "WITH RECURSIVE s AS (SELECT id FROM folders WHERE user_id = $1 AND ino = $2),"
		       FOLDER_UP("(SELECT id FROM s)") ","
		       " d AS (SELECT s.id, top.path, 0 AS depth FROM s, top"
		       "  UNION ALL"
		       "  SELECT f.id, d.path || f.name || '/', d.depth + 1 FROM d JOIN folders f ON f.parent_id = d.id"
		       "   WHERE $3::boolean AND d.depth < 256)"
		       FILES_IN_D, 3, p, &r);
	if (rc)
		return rc;
	return rows_to(r, fn, arg);
}

int meta_tree_file_of(struct meta *m, const char *asset_id, meta_tree_file_fn fn, void *arg)
{
	const char *p[] = { m->user_id, asset_id };
	PGresult *r;
	int rc;

	rc = meta_call(m, "file of an asset",
		       "WITH RECURSIVE s AS ("
		       "  SELECT coalesce(l.folder_id, w.folder_id) AS id FROM memory_items i"
		       "    LEFT JOIN user_library l ON l.memory_id = i.memory_id"
		       "    LEFT JOIN workspace_assets w ON w.memory_id = i.memory_id"
		       "   WHERE i.user_id = $1 AND i.primary_asset_id = $2::uuid),"
		       FOLDER_UP("(SELECT id FROM s)") ","
		       " d AS (SELECT s.id, top.path FROM s, top)"
		       " SELECT * FROM (" FILES_IN_D ") f WHERE EXISTS (SELECT 1 FROM memory_items i"
		       "  WHERE i.ino = f.ino AND i.primary_asset_id = $2::uuid)", 2, p, &r);
	if (rc)
		return rc;
	return rows_to(r, fn, arg);
}
