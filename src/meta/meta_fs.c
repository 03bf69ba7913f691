/*
 * meta_fs.c - reading the namespace: files by folder, by name, by inode;
 * collections and galleries as folders.
 *
 * A file is a memory item (display_name, ino, mode, mtime) shown with its
 * primary (original) asset.  Which folder shows it is decided by one
 * membership table per place:
 *
 *   library/          user_library rows                 asset active
 *   workspace/        workspace_assets, not expired      asset active
 *   collections/C/    user_library rows of collection C  asset active
 *   galleries/G/      gallery_items of gallery G         asset active
 *   .trash/           items whose asset is tombstoned, inside the grace period
 *
 * A listing page is one statement walking the membership table's index in
 * (memory_id, ino) order from a cursor, so a page costs the same whatever
 * the size of the library.  Folder inodes are resolved inside the statement
 * (collection_id = (SELECT id ... WHERE ino = $2)): no extra round trip.
 *
 * Names: library, collections and galleries share one set of names (a file
 * appears under one name everywhere); workspace and trash have their own.
 * Two files with one display name in a set are twins: the lowest inode keeps
 * the name, the others show a ~suffix (util/name.h).  Each row says whether
 * it has an older twin, with one indexed EXISTS.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/name.h"

/* The columns of a file row; file_from_row reads them in this order.
 * %s: the twin test for the folder's set of names. */
#define FILE_COLS \
	"i.ino, i.display_name, i.mode, floor(extract(epoch FROM i.mtime))::bigint, i.mtime_nsec," \
	" (extract(epoch FROM greatest(i.updated_at, a.updated_at, m.updated_at)) * 1000000)::bigint," \
	" (extract(epoch FROM i.created_at) * 1000000)::bigint," \
	" a.bytes, coalesce(a.content_hash, ''), coalesce(a.storage_key, ''), m.status, a.upload_status," \
	" m.id, i.id, a.id, a.lifecycle_status, a.processing_status, a.mime_type," \
	" CASE WHEN a.lifecycle_status <> 'active' THEN 1 ELSE" \
	"  (SELECT count(*) + count(l2.collection_id) FROM user_library l2 WHERE l2.memory_id = i.memory_id)" \
	"  + (SELECT count(*) FROM gallery_items g2 WHERE g2.memory_id = i.memory_id)" \
	"  + (SELECT count(*) FROM workspace_assets w2 WHERE w2.memory_id = i.memory_id" \
	"     AND w2.expires_at > mvault_now()) END," \
	" %s, to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#define FILE_JOINS \
	" JOIN memories m ON m.id = i.memory_id" \
	" JOIN memory_assets a ON a.id = i.primary_asset_id"

/* Does an older file with this display name share the set of names? */
static const char *twin_test(enum meta_place set, char *buf, size_t len, int grace_days)
{
	switch (set) {
	case META_PLACE_WORKSPACE:
		return "EXISTS (SELECT 1 FROM memory_items t"
		       " JOIN workspace_assets tw ON tw.memory_id = t.memory_id AND tw.expires_at > mvault_now()"
		       " JOIN memory_assets ta ON ta.id = t.primary_asset_id"
		       " WHERE t.user_id = i.user_id AND t.display_name = i.display_name AND t.ino < i.ino"
		       " AND ta.lifecycle_status = 'active')";
	case META_PLACE_TRASH:
		snprintf(buf, len,
			 "EXISTS (SELECT 1 FROM memory_items t JOIN memory_assets ta ON ta.id = t.primary_asset_id"
			 " WHERE t.user_id = i.user_id AND t.display_name = i.display_name AND t.ino < i.ino"
			 " AND ta.lifecycle_status = 'tombstoned'"
			 " AND ta.tombstoned_at > mvault_now() - interval '%d days')", grace_days);
		return buf;
	default:
		return "EXISTS (SELECT 1 FROM memory_items t JOIN user_library tl ON tl.memory_id = t.memory_id"
		       " JOIN memory_assets ta ON ta.id = t.primary_asset_id"
		       " WHERE t.user_id = i.user_id AND t.display_name = i.display_name AND t.ino < i.ino"
		       " AND ta.lifecycle_status = 'active')";
	}
}

enum meta_place meta_name_set(enum meta_place place)
{
	return place == META_PLACE_WORKSPACE || place == META_PLACE_TRASH ? place : META_PLACE_LIBRARY;
}

/*
 * The FROM and WHERE of a folder's files.  $1 is always the user, $2 the
 * folder's inode (collections and galleries only).  CURSOR receives the
 * column that orders the listing.
 */
static int place_sql(const struct meta *m, const struct meta_dir *dir, char *from, size_t flen,
		     char *where, size_t wlen, const char **cursor)
{
	const char *table = NULL, *filter = "", *active = " AND a.lifecycle_status = 'active'";

	switch (dir->place) {
	case META_PLACE_LIBRARY:
		table = "user_library";
		break;
	case META_PLACE_WORKSPACE:
		table = "workspace_assets";
		filter = " AND x.expires_at > mvault_now()";
		break;
	case META_PLACE_COLLECTION:
		table = "user_library";
		filter = " AND x.collection_id = (SELECT id FROM user_collections WHERE ino = $2)";
		break;
	case META_PLACE_GALLERY:
		table = "gallery_items";
		filter = " AND x.gallery_id = (SELECT id FROM galleries WHERE ino = $2)";
		break;
	case META_PLACE_TRASH:
		snprintf(from, flen, "memory_items i");
		snprintf(where, wlen, "i.user_id = $1 AND a.lifecycle_status = 'tombstoned'"
			 " AND a.tombstoned_at > mvault_now() - interval '%d days'", m->trash_days);
		*cursor = "i.memory_id";
		return 0;
	}
	if (!table)
		return -EINVAL;
	snprintf(from, flen, "%s x JOIN memory_items i ON i.memory_id = x.memory_id", table);
	snprintf(where, wlen, "x.user_id = $1 AND i.user_id = $1%s%s", filter, active);
	*cursor = "x.memory_id";
	return 0;
}

static int place_has_ino(enum meta_place p)
{
	return p == META_PLACE_COLLECTION || p == META_PLACE_GALLERY;
}

static void micros_to_ts(long long us, struct timespec *ts)
{
	ts->tv_sec = us / 1000000;
	ts->tv_nsec = (us % 1000000) * 1000;
}


static void file_from_row(const PGresult *r, int row, struct meta_file *f)
{
	memset(f, 0, sizeof(*f));
	f->ino = meta_u64(r, row, 0);
	META_COPY(f->display_name, r, row, 1);
	f->mode = (uint32_t)meta_u64(r, row, 2) & 07777;
	f->mtime.tv_sec = strtoll(meta_val(r, row, 3), NULL, 10);
	f->mtime.tv_nsec = strtol(meta_val(r, row, 4), NULL, 10);
	micros_to_ts(strtoll(meta_val(r, row, 5), NULL, 10), &f->ctime);
	micros_to_ts(strtoll(meta_val(r, row, 6), NULL, 10), &f->crtime);
	f->size = meta_u64(r, row, 7);
	META_COPY(f->sha256, r, row, 8);
	META_COPY(f->key, r, row, 9);
	META_COPY(f->status, r, row, 10);
	META_COPY(f->upload_status, r, row, 11);
	META_COPY(f->memory_id, r, row, 12);
	META_COPY(f->item_id, r, row, 13);
	META_COPY(f->asset_id, r, row, 14);
	META_COPY(f->lifecycle_status, r, row, 15);
	META_COPY(f->processing_status, r, row, 16);
	META_COPY(f->mime, r, row, 17);
	f->nlink = (uint32_t)meta_u64(r, row, 18);
	name_shown(f->display_name, f->memory_id, strcmp(meta_val(r, row, 19), "t") == 0, f->name);
	META_COPY(f->created_at, r, row, 20);
}

int meta_find_ino(struct meta *m, PGconn *c, uint64_t ino, struct meta_file *out)
{
	char sql[2048], s[24];
	const char *p[] = { m->user_id, s };
	PGresult *r;
	int rc;

	snprintf(s, sizeof(s), "%" PRIu64, ino);
	snprintf(sql, sizeof(sql), "SELECT " FILE_COLS " FROM memory_items i" FILE_JOINS
		 " WHERE i.user_id = $1 AND i.ino = $2", "false");
	rc = meta_exec(c, "file by inode", sql, 2, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else
		file_from_row(r, 0, out);
	PQclear(r);
	return rc;
}

/* The files of DIR that may show as NAME: those with that display name, or
 * (BY_ID) those whose memory id starts with hex digits HEX.  The one whose
 * shown name is NAME goes to OUT. */
static int find_shown(struct meta *m, PGconn *c, const struct meta_dir *dir, const char *name,
		      const char *hex, struct meta_file *out)
{
	char sql[4096], from[256], where[512], twin[512], ino_s[24], lo[40], hi[40];
	const char *p[4], *cursor, *match;
	int n = 0, rc;
	PGresult *r;

	if ((rc = place_sql(m, dir, from, sizeof(from), where, sizeof(where), &cursor)) != 0)
		return rc;
	p[n++] = m->user_id;
	if (place_has_ino(dir->place)) {
		snprintf(ino_s, sizeof(ino_s), "%" PRIu64, dir->ino);
		p[n++] = ino_s;
	}
	if (hex) {
		/* a range of the primary key: 1/65536 of the memories */
		snprintf(lo, sizeof(lo), "%s0000-0000-0000-0000-000000000000", hex);
		snprintf(hi, sizeof(hi), "%sffff-ffff-ffff-ffff-ffffffffffff", hex);
		p[n++] = lo;
		p[n++] = hi;
		match = "m.id BETWEEN $%d::uuid AND $%d::uuid";
	} else {
		p[n++] = name;
		match = "i.display_name = $%d";
	}
	{
		char cond[96];

		snprintf(cond, sizeof(cond), match, hex ? n - 1 : n, n);
		snprintf(sql, sizeof(sql), "SELECT " FILE_COLS " FROM %s" FILE_JOINS " WHERE %s AND %s ORDER BY i.ino",
			 twin_test(meta_name_set(dir->place), twin, sizeof(twin), m->trash_days), from, where, cond);
	}
	rc = meta_exec(c, "lookup", sql, n, p, &r);
	if (rc)
		return rc;
	rc = -ENOENT;
	for (int i = 0; i < PQntuples(r) && rc == -ENOENT; i++) {
		struct meta_file f;

		file_from_row(r, i, &f);
		if (strcmp(f.name, name) == 0) {
			*out = f;
			rc = 0;
		}
	}
	PQclear(r);
	return rc;
}

int meta_find(struct meta *m, PGconn *c, const struct meta_dir *dir, const char *name,
	      struct meta_file *out)
{
	char base[256], hex[8];
	int rc = find_shown(m, c, dir, name, NULL, out);

	/* A twin, or a web-app name shown cleaned up: found by memory id. */
	if (rc == -ENOENT && name_twin_parse(name, base, hex))
		rc = find_shown(m, c, dir, name, hex, out);
	return rc;
}

int meta_find_exact(struct meta *m, PGconn *c, enum meta_place set, const char *display_name,
		    struct meta_file *out)
{
	struct meta_dir dir = { .place = meta_name_set(set) };
	char sql[4096], from[256], where[512], twin[512];
	const char *p[] = { m->user_id, display_name }, *cursor;
	PGresult *r;
	int rc;

	place_sql(m, &dir, from, sizeof(from), where, sizeof(where), &cursor);
	snprintf(sql, sizeof(sql), "SELECT " FILE_COLS " FROM %s" FILE_JOINS
		 " WHERE %s AND i.display_name = $2 ORDER BY i.ino LIMIT 1",
		 twin_test(dir.place, twin, sizeof(twin), m->trash_days), from, where);
	rc = meta_exec(c, "find name", sql, 2, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else
		file_from_row(r, 0, out);
	PQclear(r);
	return rc;
}

int meta_lookup(struct meta *m, const struct meta_dir *dir, const char *name, struct meta_file *out)
{
	return META_ON_CONN(m, c, meta_find(m, c, dir, name, out));
}

int meta_file_get(struct meta *m, uint64_t ino, struct meta_file *out)
{
	return META_ON_CONN(m, c, meta_find_ino(m, c, ino, out));
}

int meta_list(struct meta *m, const struct meta_dir *dir, struct meta_cursor *cur,
	      struct meta_file *out, int max, int *n)
{
	char sql[4096], from[256], where[512], twin[512], ino_s[24], cino_s[24], max_s[16];
	const char *p[5], *cursor;
	int np = 0, rc;
	PGconn *c;
	PGresult *r;

	if ((rc = place_sql(m, dir, from, sizeof(from), where, sizeof(where), &cursor)) != 0)
		return rc;
	p[np++] = m->user_id;
	if (place_has_ino(dir->place)) {
		snprintf(ino_s, sizeof(ino_s), "%" PRIu64, dir->ino);
		p[np++] = ino_s;
	}
	snprintf(cino_s, sizeof(cino_s), "%" PRIu64, cur->memory_id[0] ? cur->ino : 0);
	snprintf(max_s, sizeof(max_s), "%d", max);
	p[np++] = cur->memory_id[0] ? cur->memory_id : "00000000-0000-0000-0000-000000000000";
	p[np++] = cino_s;
	p[np++] = max_s;
	snprintf(sql, sizeof(sql), "SELECT " FILE_COLS " FROM %s" FILE_JOINS
		 " WHERE %s AND (%s, i.ino) > ($%d::uuid, $%d::bigint) ORDER BY %s, i.ino LIMIT $%d",
		 twin_test(meta_name_set(dir->place), twin, sizeof(twin), m->trash_days),
		 from, where, cursor, np - 2, np - 1, cursor, np);
	c = meta_conn_get(m);
	if (!c)
		return -EIO;
	rc = meta_exec(c, "listing", sql, np, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	*n = PQntuples(r);
	for (int i = 0; i < *n; i++)
		file_from_row(r, i, &out[i]);
	if (*n > 0) {
		snprintf(cur->memory_id, sizeof(cur->memory_id), "%s", out[*n - 1].memory_id);
		cur->ino = out[*n - 1].ino;
	}
	PQclear(r);
	return 0;
}

/* --- collections and galleries ------------------------------------------- */

static const char *folder_table(enum meta_place place)
{
	return place == META_PLACE_COLLECTION ? "user_collections"
	     : place == META_PLACE_GALLERY ? "galleries" : NULL;
}

#define FOLDER_COLS \
	"ino, id, name, (extract(epoch FROM updated_at) * 1000000)::bigint," \
	" (extract(epoch FROM created_at) * 1000000)::bigint"

static void folder_from_row(const PGresult *r, int row, enum meta_place place, struct meta_folder *f)
{
	memset(f, 0, sizeof(*f));
	f->place = place;
	f->ino = meta_u64(r, row, 0);
	META_COPY(f->id, r, row, 1);
	META_COPY(f->name, r, row, 2);
	micros_to_ts(strtoll(meta_val(r, row, 3), NULL, 10), &f->mtime);
	micros_to_ts(strtoll(meta_val(r, row, 4), NULL, 10), &f->crtime);
}

int meta_find_folder(struct meta *m, PGconn *c, enum meta_place place, const char *name,
		     struct meta_folder *out)
{
	const char *table = folder_table(place), *p[] = { m->user_id, name };
	char sql[256];
	PGresult *r;
	int rc;

	if (!table)
		return -EINVAL;
	snprintf(sql, sizeof(sql), "SELECT " FOLDER_COLS " FROM %s WHERE user_id = $1 AND name = $2", table);
	rc = meta_exec(c, "folder lookup", sql, 2, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else if (out)
		folder_from_row(r, 0, place, out);
	PQclear(r);
	return rc;
}

int meta_folder_lookup(struct meta *m, enum meta_place place, const char *name, struct meta_folder *out)
{
	return META_ON_CONN(m, c, meta_find_folder(m, c, place, name, out));
}

int meta_folder_get_on(struct meta *m, PGconn *c, uint64_t ino, struct meta_folder *out)
{
	char s[24];
	const char *p[] = { m->user_id, s };
	PGresult *r;
	int rc;

	snprintf(s, sizeof(s), "%" PRIu64, ino);
	rc = meta_exec(c, "folder by inode",
		       "SELECT " FOLDER_COLS ", 'c' FROM user_collections WHERE user_id = $1 AND ino = $2"
		       " UNION ALL SELECT " FOLDER_COLS ", 'g' FROM galleries WHERE user_id = $1 AND ino = $2",
		       2, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else
		folder_from_row(r, 0, meta_val(r, 0, 5)[0] == 'c' ? META_PLACE_COLLECTION : META_PLACE_GALLERY, out);
	PQclear(r);
	return rc;
}

int meta_folder_get(struct meta *m, uint64_t ino, struct meta_folder *out)
{
	return META_ON_CONN(m, c, meta_folder_get_on(m, c, ino, out));
}

int meta_folder_list(struct meta *m, enum meta_place place, const char *after,
		     struct meta_folder *out, int max, int *n)
{
	const char *table = folder_table(place);
	char sql[256], max_s[16];
	const char *p[] = { m->user_id, after, max_s };
	PGconn *c;
	PGresult *r;
	int rc;

	if (!table)
		return -EINVAL;
	snprintf(max_s, sizeof(max_s), "%d", max);
	snprintf(sql, sizeof(sql), "SELECT " FOLDER_COLS " FROM %s WHERE user_id = $1 AND name > $2"
		 " ORDER BY name LIMIT $3", table);
	c = meta_conn_get(m);
	if (!c)
		return -EIO;
	rc = meta_exec(c, "folder listing", sql, 3, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	*n = PQntuples(r);
	for (int i = 0; i < *n; i++)
		folder_from_row(r, i, place, &out[i]);
	PQclear(r);
	return 0;
}

/* --- counts -------------------------------------------------------------- */

int meta_blob_exists(struct meta *m, const char *sha256)
{
	const char *p[] = { sha256 };
	PGconn *c = meta_conn_get(m);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	rc = meta_exec(c, "find blob", "SELECT 1 FROM blobs WHERE content_hash = $1", 1, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	rc = PQntuples(r) > 0;
	PQclear(r);
	return rc;
}

int meta_usage(struct meta *m, uint64_t *files, uint64_t *bytes)
{
	const char *p[] = { m->user_id };
	PGconn *c = meta_conn_get(m);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	rc = meta_exec(c, "usage",
		       "SELECT count(*), coalesce(sum(a.bytes), 0) FROM memory_items i"
		       " JOIN memory_assets a ON a.id = i.primary_asset_id"
		       " WHERE i.user_id = $1 AND a.lifecycle_status = 'active'", 1, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	*files = meta_u64(r, 0, 0);
	*bytes = meta_u64(r, 0, 1);
	PQclear(r);
	return 0;
}
