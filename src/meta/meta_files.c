/*
 * meta_files.c - reading files: by folder, by name, by inode.
 *
 * A file is a memory item (display_name, ino, mode, times) shown with its
 * primary (original) asset.  Which folder shows it is decided by one
 * membership table per place:
 *
 *   library/ and its folders     user_library rows of that folder_id       asset active
 *   workspace/ and its folders   workspace_assets of that folder, not expired  asset active
 *   collections/C/               user_library rows of collection C         asset active
 *   galleries/G/                 gallery_items of gallery G                asset active
 *   .trash/                      items whose asset is tombstoned, inside the grace period,
 *                                then replaced versions (assets with a version_ino)
 *
 * A listing page is one statement walking the membership table's index in
 * (memory_id, ino) order from a cursor, so a page costs the same whatever
 * the size of the library.  Folder inodes are resolved inside the statement
 * (folder_id = (SELECT id ... WHERE ino = $2)): no extra round trip.  The
 * statement is mvault_list_page (0021), which plans the page with sorts
 * disabled, so that the walk is the only ordered plan left.
 *
 * Names are unique within a folder of the tree.  Two files with one display
 * name in a listing are twins (made by the web application, or shown
 * together by a collection or gallery): the lowest inode keeps the name,
 * the others show a ~suffix (util/name.h).  Each row says whether it has an
 * older twin in the same listing, with one indexed EXISTS.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/name.h"

/* How many library rows show the file, each one more with a collection:
 * counted, or (LINKS_OF_X) read off the listing's own row x when that is
 * the file's one library row (user_library.memory_id is unique), which
 * spares a listing of the library or a collection a probe a row. */
#define LINKS_COUNTED \
	"(SELECT count(*) + count(l2.collection_id) FROM user_library l2 WHERE l2.memory_id = i.memory_id)"
#define LINKS_OF_X "(1 + (x.collection_id IS NOT NULL)::int)"

/* The columns of a file row; file_from_row reads them in this order.
 * %s: the twin test for the folder's listing. */
#define FILE_COLS FILE_COLS_OF(LINKS_COUNTED)
#define FILE_COLS_OF(links) \
	"i.ino, i.display_name, i.mode, floor(extract(epoch FROM i.mtime))::bigint, i.mtime_nsec," \
	" coalesce(i.ctime_ns, (extract(epoch FROM greatest(i.updated_at, a.updated_at, m.updated_at))" \
	"  * 1000000)::bigint * 1000)," \
	" (extract(epoch FROM i.created_at) * 1000000)::bigint," \
	" a.bytes, coalesce(a.content_hash, ''), coalesce(a.storage_key, ''), m.status, a.upload_status," \
	" m.id, i.id, a.id, a.lifecycle_status, a.processing_status, a.mime_type," \
	" CASE WHEN a.lifecycle_status <> 'active' THEN 1 ELSE " links \
	"  + (SELECT count(*) FROM gallery_items g2 WHERE g2.memory_id = i.memory_id)" \
	"  + (SELECT count(*) FROM workspace_assets w2 WHERE w2.memory_id = i.memory_id" \
	"     AND w2.expires_at > mvault_now()) END," \
	" %s, to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')," \
	" coalesce(i.atime_ns, floor(extract(epoch FROM i.mtime))::bigint * 1000000000 + i.mtime_nsec)," \
	" ''," \
	" sv.bytes, coalesce(sv.content_hash, ''), coalesce(sv.storage_key, ''), i.settled_mtime_ns," \
	" i.settled_ctime_ns"

/* A listing entry's columns (meta_list_entries): FILE_COLS' names and
 * types, with what an entry never shows left empty (creation time, storage
 * keys, memory status, item and asset ids, processing status, MIME type,
 * created_at's text).  Writing those out was ~20% of the server's CPU for
 * a page of 2,048 files. */
#define ENTRY_COLS_OF(links) \
	"i.ino, i.display_name, i.mode, floor(extract(epoch FROM i.mtime))::bigint, i.mtime_nsec," \
	" coalesce(i.ctime_ns, (extract(epoch FROM greatest(i.updated_at, a.updated_at, m.updated_at))" \
	"  * 1000000)::bigint * 1000)," \
	" 0::bigint, a.bytes, coalesce(a.content_hash, ''), '', NULL::memory_status_t, a.upload_status," \
	" m.id, NULL::uuid, NULL::uuid, a.lifecycle_status, NULL::processing_status_t, ''," \
	" CASE WHEN a.lifecycle_status <> 'active' THEN 1 ELSE " links \
	"  + (SELECT count(*) FROM gallery_items g2 WHERE g2.memory_id = i.memory_id)" \
	"  + (SELECT count(*) FROM workspace_assets w2 WHERE w2.memory_id = i.memory_id" \
	"     AND w2.expires_at > mvault_now()) END," \
	" %s, ''," \
	" coalesce(i.atime_ns, floor(extract(epoch FROM i.mtime))::bigint * 1000000000 + i.mtime_nsec)," \
	" ''," \
	" sv.bytes, coalesce(sv.content_hash, ''), '', i.settled_mtime_ns, i.settled_ctime_ns"

/* FILE_COLS' names and types, in order: the column list of a listing
 * page, which mvault_list_page (0021) returns as records. */
#define FILE_COL_TYPES \
	"ino bigint, display_name text, mode integer, mtime_s bigint, mtime_nsec integer, ctime_ns bigint," \
	" crtime_us bigint, bytes bigint, sha256 text, storage_key text, status memory_status_t," \
	" upload_status asset_upload_status_t, memory_id uuid, item_id uuid, asset_id uuid," \
	" lifecycle_status asset_lifecycle_status_t, processing_status processing_status_t, mime text," \
	" nlink bigint, older_twin boolean, created_at text, atime_ns bigint, stamp text," \
	" settled_bytes bigint, settled_sha256 text, settled_key text, settled_mtime_ns bigint," \
	" settled_ctime_ns bigint"

/* sv: the version other mounts show while the current one uploads (0024;
 * fs_ns_visible decides). */
#define FILE_JOINS \
	" JOIN memories m ON m.id = i.memory_id" \
	" JOIN memory_assets a ON a.id = i.primary_asset_id" \
	" LEFT JOIN memory_assets sv ON sv.id = i.settled_asset_id AND a.upload_status <> 'completed'" \
	"  AND sv.content_hash IS NOT NULL"

/* A replaced version, in the same columns: its own inode number, written
 * when it was made, changed when it was replaced; the last column is the
 * stamp of its name. */
#define VERSION_COLS \
	"a.version_ino, i.display_name, i.mode, floor(extract(epoch FROM a.created_at))::bigint," \
	" (extract(microseconds FROM a.created_at)::bigint %% 1000000) * 1000," \
	" (extract(epoch FROM a.tombstoned_at) * 1000000)::bigint * 1000," \
	" (extract(epoch FROM a.created_at) * 1000000)::bigint," \
	" a.bytes, coalesce(a.content_hash, ''), coalesce(a.storage_key, ''), m.status, a.upload_status," \
	" m.id, i.id, a.id, a.lifecycle_status, a.processing_status, a.mime_type, 1, false," \
	" to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')," \
	" (extract(epoch FROM a.created_at) * 1000000)::bigint * 1000," \
	" to_char(a.tombstoned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24.MI.SS')," \
	" NULL::bigint, '', '', NULL::bigint, NULL::bigint"

#define VERSION_FROM \
	" memory_assets a JOIN memory_items i ON i.id = a.memory_item_id JOIN memories m ON m.id = i.memory_id"

/* Replaced versions still inside the grace period. */
#define VERSION_WHERE \
	" i.user_id = $1 AND a.version_ino IS NOT NULL AND a.lifecycle_status = 'tombstoned'" \
	" AND a.tombstoned_at > mvault_now() - make_interval(days => %d)"

/* Does an older file with this display name show in the same listing? */
static const char *twin_test(enum meta_place place, char *buf, size_t len, int grace_days)
{
	/* The older files of that name (few: an index on (user, name)), each
	 * then probed in the listing's membership table by its memory id. */
#define OLDER_NAMESAKE \
	"EXISTS (SELECT 1 FROM memory_items t JOIN memory_assets ta ON ta.id = t.primary_asset_id" \
	" WHERE t.user_id = i.user_id AND t.display_name = i.display_name AND t.ino < i.ino" \
	" AND ta.lifecycle_status = "
	switch (place) {
	case META_PLACE_LIBRARY:
		return OLDER_NAMESAKE "'active' AND EXISTS (SELECT 1 FROM user_library tl"
		       " WHERE tl.memory_id = t.memory_id AND tl.folder_id = x.folder_id))";
	case META_PLACE_COLLECTION:
		return OLDER_NAMESAKE "'active' AND EXISTS (SELECT 1 FROM user_library tl"
		       " WHERE tl.memory_id = t.memory_id AND tl.collection_id = x.collection_id))";
	case META_PLACE_GALLERY:
		return OLDER_NAMESAKE "'active' AND EXISTS (SELECT 1 FROM gallery_items tg"
		       " WHERE tg.memory_id = t.memory_id AND tg.gallery_id = x.gallery_id))";
	case META_PLACE_WORKSPACE:
		return OLDER_NAMESAKE "'active' AND EXISTS (SELECT 1 FROM workspace_assets tw"
		       " WHERE tw.memory_id = t.memory_id AND tw.folder_id = x.folder_id"
		       " AND tw.expires_at > mvault_now()))";
	default:
		snprintf(buf, len, OLDER_NAMESAKE "'tombstoned'"
			 " AND ta.tombstoned_at > mvault_now() - interval '%d days')", grace_days);
		return buf;
	}
#undef OLDER_NAMESAKE
}

uint64_t meta_tree_ino(const struct meta *m, const struct meta_dir *dir)
{
	if (dir->place != META_PLACE_LIBRARY && dir->place != META_PLACE_WORKSPACE)
		return 0;
	if (dir->ino == META_INO_LIBRARY)
		return m->top_ino[0];
	if (dir->ino == META_INO_WORKSPACE)
		return m->top_ino[1];
	return dir->ino;
}

uint64_t meta_kernel_ino(const struct meta *m, uint64_t dbino)
{
	return dbino == m->top_ino[0] ? META_INO_LIBRARY : dbino == m->top_ino[1] ? META_INO_WORKSPACE : dbino;
}

int meta_lock_name(struct meta *m, PGconn *c, uint64_t key, const char *name)
{
	char key_s[24];
	const char *p[] = { m->user_id, key_s, name };

	snprintf(key_s, sizeof(key_s), "%" PRIu64, key);
	return meta_exec(c, "lock name",
			 "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3, 0))",
			 3, p, NULL);
}

/*
 * The FROM and WHERE of a folder's files.  $1 is always the user, $2 the
 * folder's inode (all but the trash).  CURSOR receives the column that
 * orders the listing.
 */
int meta_place_sql(const struct meta *m, const struct meta_dir *dir, char *from, size_t flen,
		   char *where, size_t wlen, const char **cursor, int *has_ino)
{
	const char *table = NULL, *filter = "", *active = " AND a.lifecycle_status = 'active'";

	*has_ino = 1;
	switch (dir->place) {
	case META_PLACE_LIBRARY:
		table = "user_library";
		filter = " AND x.folder_id = (SELECT id FROM folders WHERE ino = $2)";
		break;
	case META_PLACE_WORKSPACE:
		table = "workspace_assets";
		filter = " AND x.folder_id = (SELECT id FROM folders WHERE ino = $2) AND x.expires_at > mvault_now()";
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
		*has_ino = 0;
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

/* The inode parameter of DIR's statements. */
static void dir_ino_param(const struct meta *m, const struct meta_dir *dir, char *buf, size_t len)
{
	uint64_t tree = meta_tree_ino(m, dir);

	snprintf(buf, len, "%" PRIu64, tree ? tree : dir->ino);
}

static const char *const upload_names[] = { "pending", "uploading", "completed", "failed" };
static const char *const lifecycle_names[] = { "active", "tombstoned", "deleted" };
#define NAMES(a) (sizeof(a) / sizeof((a)[0]))

const char *meta_upload_name(enum meta_upload u)
{
	return (size_t)u < NAMES(upload_names) ? upload_names[u] : "";
}

const char *meta_lifecycle_name(enum meta_lifecycle l)
{
	return (size_t)l < NAMES(lifecycle_names) ? lifecycle_names[l] : "";
}

/* The column's word as the enum; a word the schema does not have (it has
 * none other: asset_upload_status_t) reads as failed, never as usable. */
static enum meta_upload upload_of(const char *word)
{
	for (size_t i = 0; i < NAMES(upload_names); i++)
		if (strcmp(word, upload_names[i]) == 0)
			return (enum meta_upload)i;
	return META_UPLOAD_FAILED;
}

/* As upload_of: an unknown word reads as deleted, never as shown. */
static enum meta_lifecycle lifecycle_of(const char *word)
{
	for (size_t i = 0; i < NAMES(lifecycle_names); i++)
		if (strcmp(word, lifecycle_names[i]) == 0)
			return (enum meta_lifecycle)i;
	return META_LIFE_DELETED;
}

static void micros_to_ts(long long us, struct timespec *ts)
{
	ts->tv_sec = us / 1000000;
	ts->tv_nsec = (us % 1000000) * 1000;
}

static void nanos_to_ts(long long ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

static void file_from_row(const PGresult *r, int row, struct meta_file *f)
{
	const char *stamp = meta_val(r, row, 22);

	memset(f, 0, sizeof(*f));
	f->ino = meta_u64(r, row, 0);
	META_COPY(f->display_name, r, row, 1);
	f->mode = (uint32_t)meta_u64(r, row, 2) & 07777;
	f->mtime.tv_sec = strtoll(meta_val(r, row, 3), NULL, 10);
	f->mtime.tv_nsec = strtol(meta_val(r, row, 4), NULL, 10);
	nanos_to_ts(strtoll(meta_val(r, row, 5), NULL, 10), &f->ctime);
	micros_to_ts(strtoll(meta_val(r, row, 6), NULL, 10), &f->crtime);
	f->size = meta_u64(r, row, 7);
	META_COPY(f->sha256, r, row, 8);
	META_COPY(f->key, r, row, 9);
	META_COPY(f->status, r, row, 10);
	f->upload = upload_of(meta_val(r, row, 11));
	META_COPY(f->memory_id, r, row, 12);
	META_COPY(f->item_id, r, row, 13);
	META_COPY(f->asset_id, r, row, 14);
	f->lifecycle = lifecycle_of(meta_val(r, row, 15));
	META_COPY(f->processing_status, r, row, 16);
	META_COPY(f->mime, r, row, 17);
	f->nlink = (uint32_t)meta_u64(r, row, 18);
	META_COPY(f->created_at, r, row, 20);
	nanos_to_ts(strtoll(meta_val(r, row, 21), NULL, 10), &f->atime);
	if (!PQgetisnull(r, row, 23) && *meta_val(r, row, 24)) {
		f->settled_size = meta_u64(r, row, 23);
		META_COPY(f->settled_sha256, r, row, 24);
		META_COPY(f->settled_key, r, row, 25);
		nanos_to_ts(PQgetisnull(r, row, 26) ? 0 : strtoll(meta_val(r, row, 26), NULL, 10), &f->settled_mtime);
		if (PQgetisnull(r, row, 27))
			f->settled_ctime = f->ctime;
		else
			nanos_to_ts(strtoll(meta_val(r, row, 27), NULL, 10), &f->settled_ctime);
	}
	f->is_version = stamp[0] != '\0';
	if (f->is_version)
		name_version(f->display_name, stamp, f->name);
	else
		name_shown(f->display_name, f->memory_id, strcmp(meta_val(r, row, 19), "t") == 0, f->name);
}

/* Runs SQL, which selects file rows, and reads the first into OUT: 0,
 * -ENOENT when there is none, or -errno. */
static int file_one(PGconn *c, const char *what, const char *sql, int n, const char *const *p,
		    struct meta_file *out)
{
	PGresult *r;
	int rc = meta_exec(c, what, sql, n, p, &r);

	if (rc)
		return rc;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else
		file_from_row(r, 0, out);
	PQclear(r);
	return rc;
}

int meta_change_file(PGconn *c, const char *what, const char *update, int n, const char *const *p,
		     struct meta_file *out)
{
	char sql[4096];

	snprintf(sql, sizeof(sql), "WITH i AS (%s) SELECT " FILE_COLS " FROM i" FILE_JOINS, update, "false");
	return file_one(c, what, sql, n, p, out);
}

int meta_find_ino(struct meta *m, PGconn *c, uint64_t ino, struct meta_file *out)
{
	char sql[3072], s[24];
	const char *p[] = { m->user_id, s };

	snprintf(s, sizeof(s), "%" PRIu64, ino);
	snprintf(sql, sizeof(sql), "SELECT " FILE_COLS " FROM memory_items i" FILE_JOINS
		 " WHERE i.user_id = $1 AND i.ino = $2"
		 " UNION ALL SELECT " VERSION_COLS " FROM" VERSION_FROM " WHERE i.user_id = $1 AND a.version_ino = $2",
		 "false");
	return file_one(c, "file by inode", sql, 2, p, out);
}

/* The replaced version shown as NAME in the trash (display name BASE,
 * replaced at STAMP). */
static int find_version(struct meta *m, PGconn *c, const char *base, const char *stamp, struct meta_file *out)
{
	char sql[3072];
	const char *p[] = { m->user_id, base, stamp };

	snprintf(sql, sizeof(sql), META_PLAN_PER_CALL "SELECT " VERSION_COLS " FROM" VERSION_FROM " WHERE" VERSION_WHERE
		 " AND i.display_name = $2"
		 " AND to_char(a.tombstoned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24.MI.SS') = $3"
		 " ORDER BY a.tombstoned_at DESC LIMIT 1", m->trash_days);
	return file_one(c, "version lookup", sql, 3, p, out);
}

/* The files of DIR that may show as NAME: those with that display name, or
 * (BY_ID) those whose memory id starts with hex digits HEX.  The one whose
 * shown name is NAME goes to OUT. */
static int find_shown(struct meta *m, PGconn *c, const struct meta_dir *dir, const char *name,
		      const char *hex, struct meta_file *out)
{
	char sql[4096], from[256], where[512], twin[512], ino_s[24], lo[40], hi[40];
	const char *p[4], *cursor, *match;
	int n = 0, has_ino, rc;
	PGresult *r;

	if ((rc = meta_place_sql(m, dir, from, sizeof(from), where, sizeof(where), &cursor, &has_ino)) != 0)
		return rc;
	p[n++] = m->user_id;
	if (has_ino) {
		dir_ino_param(m, dir, ino_s, sizeof(ino_s));
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
			 twin_test(dir->place, twin, sizeof(twin), m->trash_days), from, where, cond);
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
	char base[256], hex[8], stamp[NAME_VERSION_STAMP_LEN + 1];
	int rc = find_shown(m, c, dir, name, NULL, out);

	/* A twin, or a web-app name shown cleaned up: found by memory id. */
	if (rc == -ENOENT && name_twin_parse(name, base, hex))
		rc = find_shown(m, c, dir, name, hex, out);
	if (rc == -ENOENT && dir->place == META_PLACE_TRASH && name_version_parse(name, base, stamp))
		rc = find_version(m, c, base, stamp, out);
	return rc;
}

int meta_find_named(struct meta *m, PGconn *c, enum meta_place place, uint64_t dbino,
		    const char *display_name, struct meta_file *out)
{
	struct meta_dir dir = { .place = place, .ino = dbino };
	char sql[4096], from[256], where[512], ino_s[24];
	const char *p[] = { m->user_id, ino_s, display_name }, *cursor;
	int has_ino;
	int rc;

	if ((rc = meta_place_sql(m, &dir, from, sizeof(from), where, sizeof(where), &cursor, &has_ino)) != 0)
		return rc;
	snprintf(ino_s, sizeof(ino_s), "%" PRIu64, dbino);
	snprintf(sql, sizeof(sql), "SELECT " FILE_COLS " FROM %s" FILE_JOINS
		 " WHERE %s AND i.display_name = $3 ORDER BY i.ino LIMIT 1", "false", from, where);
	return file_one(c, "find name", sql, 3, p, out);
}

int meta_has_subfolder(PGconn *c, uint64_t dbino, const char *name)
{
	char ino_s[24];
	const char *p[] = { ino_s, name };

	snprintf(ino_s, sizeof(ino_s), "%" PRIu64, dbino);
	return meta_query_bool(c, "folder there?",
			       "SELECT EXISTS (SELECT 1 FROM folders WHERE name = $2"
			       "               AND parent_id = (SELECT id FROM folders WHERE ino = $1))", 2, p);
}

int meta_home_of(PGconn *c, const struct meta_file *f, enum meta_place *place, uint64_t *dbino)
{
	const char *p[] = { f->memory_id };
	PGresult *r;
	int rc;

	rc = meta_exec(c, "folder of file",
		       "SELECT f.ino, f.place FROM user_library x JOIN folders f ON f.id = x.folder_id"
		       " WHERE x.memory_id = $1"
		       " UNION ALL SELECT f.ino, f.place FROM workspace_assets x JOIN folders f ON f.id = x.folder_id"
		       " WHERE x.memory_id = $1", 1, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0) {
		rc = -ENOENT;
	} else {
		*dbino = meta_u64(r, 0, 0);
		*place = strcmp(meta_val(r, 0, 1), "library") == 0 ? META_PLACE_LIBRARY : META_PLACE_WORKSPACE;
	}
	PQclear(r);
	return rc;
}

/* A library file of the user's whose current content is SHA256: the one
 * uploaded first, else any (the hash index of memory_assets finds them). */
static int find_content(struct meta *m, PGconn *c, const char *sha256, struct meta_file *out)
{
	char sql[3072];
	const char *p[] = { m->user_id, sha256 };

	snprintf(sql, sizeof(sql), "SELECT " FILE_COLS " FROM memory_items i" FILE_JOINS
		 " WHERE i.user_id = $1 AND a.content_hash = $2 AND a.lifecycle_status = 'active'"
		 "  AND EXISTS (SELECT 1 FROM user_library l WHERE l.memory_id = i.memory_id)"
		 " ORDER BY a.upload_status = 'completed' DESC, i.ino LIMIT 1", "false");
	return file_one(c, "find content", sql, 2, p, out);
}

int meta_find_content(struct meta *m, const char *sha256, struct meta_file *out)
{
	return META_ON_CONN(m, c, find_content(m, c, sha256, out));
}

int meta_lookup(struct meta *m, const struct meta_dir *dir, const char *name, struct meta_file *out)
{
	return META_ON_CONN(m, c, meta_find(m, c, dir, name, out));
}

int meta_file_get(struct meta *m, uint64_t ino, struct meta_file *out)
{
	return META_ON_CONN(m, c, meta_find_ino(m, c, ino, out));
}

/* The file shown as NAME in tree folder DIR (by display name) and the
 * folder called NAME there, in one statement: a row per file of that
 * display name, each followed by the folder's columns (NULL for none); one
 * row of NULL files when there is no such file. */
static int find_entry(struct meta *m, PGconn *c, const struct meta_dir *dir, const char *name,
		      struct meta_file *file, struct meta_folder *folder, int *has_folder)
{
	char sql[6144], from[256], where[512], twin[512], ino_s[24];
	const char *p[] = { m->user_id, ino_s, name }, *cursor;
	int has_ino, rc, nf;
	PGresult *r;

	*has_folder = 0;
	if ((rc = meta_place_sql(m, dir, from, sizeof(from), where, sizeof(where), &cursor, &has_ino)) != 0)
		return rc;
	dir_ino_param(m, dir, ino_s, sizeof(ino_s));
	snprintf(sql, sizeof(sql), "SELECT fi.*, fo.* FROM (SELECT 1) one"
		 " LEFT JOIN LATERAL (SELECT " FILE_COLS " FROM %s" FILE_JOINS
		 "   WHERE %s AND i.display_name = $3 ORDER BY i.ino) fi ON true"
		 " LEFT JOIN LATERAL (SELECT " META_TREE_COLS " FROM folders f WHERE f.user_id = $1 AND f.name = $3"
		 "   AND f.parent_id = (SELECT id FROM folders WHERE ino = $2)) fo ON true",
		 twin_test(dir->place, twin, sizeof(twin), m->trash_days), from, where);
	if ((rc = meta_exec(c, "lookup", sql, 3, p, &r)) != 0)
		return rc;
	rc = -ENOENT;
	nf = PQnfields(r);
	for (int i = 0; i < PQntuples(r) && !PQgetisnull(r, i, 0) && rc == -ENOENT; i++) {
		struct meta_file f;

		file_from_row(r, i, &f);
		if (strcmp(f.name, name) == 0) {
			*file = f;
			rc = 0;
		}
	}
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, nf - META_TREE_NCOLS)) {
		meta_folder_row(m, r, 0, nf - META_TREE_NCOLS, folder);
		*has_folder = 1;
	}
	PQclear(r);
	return rc;
}

int meta_lookup_entry(struct meta *m, const struct meta_dir *dir, const char *name, struct meta_file *file,
		      struct meta_folder *folder, int *is_folder)
{
	char base[256], hex[8];
	int has_folder = 0, rc;

	*is_folder = 0;
	if (dir->place != META_PLACE_LIBRARY && dir->place != META_PLACE_WORKSPACE)
		return meta_lookup(m, dir, name, file);
	rc = META_ON_CONN(m, c, find_entry(m, c, dir, name, file, folder, &has_folder));
	/* a twin's name: a file found by its memory id, before the folder (as
	 * meta_find, then meta_folder_lookup, would say) */
	if (rc == -ENOENT && name_twin_parse(name, base, hex))
		rc = META_ON_CONN(m, c, find_shown(m, c, dir, name, hex, file));
	if (rc == -ENOENT && has_folder) {
		*is_folder = 1;
		rc = 0;
	}
	return rc;
}

/* Up to MAX files of tree folder DIR whose display names sort after NAME,
 * in that order: the rows find_entry would give for each of them. */
static int lookup_ahead(struct meta *m, PGconn *c, const struct meta_dir *dir, const char *name,
			struct meta_file *out, int max, int *n)
{
	char sql[6144], from[256], where[512], twin[512], ino_s[24], max_s[16];
	const char *p[] = { m->user_id, ino_s, name, max_s }, *cursor;
	int has_ino, rc;
	PGresult *r;

	*n = 0;
	if ((rc = meta_place_sql(m, dir, from, sizeof(from), where, sizeof(where), &cursor, &has_ino)) != 0)
		return rc;
	dir_ino_param(m, dir, ino_s, sizeof(ino_s));
	snprintf(max_s, sizeof(max_s), "%d", max);
	snprintf(sql, sizeof(sql), "SELECT " FILE_COLS " FROM %s" FILE_JOINS
		 " WHERE %s AND i.display_name > $3 ORDER BY i.display_name, i.ino LIMIT $4::int",
		 twin_test(dir->place, twin, sizeof(twin), m->trash_days), from, where);
	if ((rc = meta_exec(c, "lookup ahead", sql, 4, p, &r)) != 0)
		return rc;
	for (int i = 0; i < PQntuples(r) && i < max; i++)
		file_from_row(r, i, &out[(*n)++]);
	PQclear(r);
	return 0;
}

int meta_lookup_ahead(struct meta *m, const struct meta_dir *dir, const char *name, struct meta_file *out,
		      int max, int *n)
{
	*n = 0;
	if (dir->place != META_PLACE_LIBRARY && dir->place != META_PLACE_WORKSPACE)
		return -EINVAL;
	return META_ON_CONN(m, c, lookup_ahead(m, c, dir, name, out, max, n));
}

int meta_call_file(struct meta *m, const char *what, const char *call, int n, const char *const *p,
		   struct meta_file *out)
{
	char sql[4096];
	PGresult *r;
	int rc, nf;

	/* The file's row is read in the statement's snapshot, from before
	 * CALL ran: what CALL changed comes from its own answer. */
	snprintf(sql, sizeof(sql), "WITH l AS MATERIALIZED (%s) SELECT " FILE_COLS ", l.nlink, l.ctime_ns FROM l"
		 " JOIN memory_items i ON i.user_id = $1 AND i.ino = l.ino" FILE_JOINS, call, "false");
	if ((rc = meta_call(m, what, sql, n, p, &r)) != 0)
		return rc;
	if (PQntuples(r) == 0) {
		rc = -ENOENT;
	} else {
		nf = PQnfields(r);
		file_from_row(r, 0, out);
		out->nlink = (uint32_t)meta_u64(r, 0, nf - 2);
		nanos_to_ts(strtoll(meta_val(r, 0, nf - 1), NULL, 10), &out->ctime);
	}
	PQclear(r);
	return rc;
}

/* A page of the trash's replaced versions (after its files). */
static int list_versions(struct meta *m, PGconn *c, struct meta_cursor *cur, const char *max_s, PGresult **r)
{
	char sql[3072], cino_s[24];
	const char *p[] = { m->user_id, cur->memory_id[0] ? cur->memory_id : "00000000-0000-0000-0000-000000000000",
			    cino_s, max_s };

	snprintf(cino_s, sizeof(cino_s), "%" PRIu64, cur->memory_id[0] ? cur->ino : 0);
	snprintf(sql, sizeof(sql), META_PLAN_PER_CALL "SELECT " VERSION_COLS " FROM" VERSION_FROM " WHERE" VERSION_WHERE
		 " AND (i.memory_id, a.version_ino) > ($2::uuid, $3::bigint)"
		 " ORDER BY i.memory_id, a.version_ino LIMIT $4", m->trash_days);
	return meta_exec(c, "version listing", sql, 4, p, r);
}

/* meta_list and meta_list_entries: ENTRIES picks the columns of a page of
 * a folder, collection or gallery (the trash's are always whole). */
static int list_page(struct meta *m, const struct meta_dir *dir, struct meta_cursor *cur,
		     struct meta_file *out, int max, int *n, int entries)
{
	char sql[4096], from[256], where[768], twin[512], ino_s[24], cino_s[24], max_s[16];
	const char *p[6], *cursor;
	int np = 1, has_ino, rc;
	PGconn *c;
	PGresult *r;

	if ((rc = meta_place_sql(m, dir, from, sizeof(from), where, sizeof(where), &cursor, &has_ino)) != 0)
		return rc;
	entries = entries && has_ino;
	if (cur->until[0] && has_ino) {
		/* the end of a part of the listing (meta_cursor): a bound on
		 * each joined table too, as for the cursor below; a literal,
		 * as the page is planned for its values anyway */
		size_t len = strlen(where);

		if (strlen(cur->until) != META_UUID_LEN || strspn(cur->until, "0123456789abcdef-") != META_UUID_LEN)
			return -EINVAL;
		snprintf(where + len, sizeof(where) - len,
			 " AND %s < '%s'::uuid AND i.memory_id < '%s'::uuid AND m.id < '%s'::uuid", cursor,
			 cur->until, cur->until, cur->until);
	}
	p[np++] = m->user_id;
	if (has_ino) {
		dir_ino_param(m, dir, ino_s, sizeof(ino_s));
		p[np++] = ino_s;
	}
	snprintf(cino_s, sizeof(cino_s), "%" PRIu64, cur->memory_id[0] ? cur->ino : 0);
	snprintf(max_s, sizeof(max_s), "%d", max);
	p[np++] = cur->memory_id[0] ? cur->memory_id : "00000000-0000-0000-0000-000000000000";
	p[np++] = cino_s;
	p[np++] = max_s;
	/* The cursor's memory id also as a bound of its own, and of each
	 * table joined on it (the planner carries equality across a join,
	 * not a bound): the row comparison spans two tables, and without it
	 * the planner walked the listing from its start on every page (a
	 * 10,000-file folder: 60 ms a page); without the bounds on the
	 * item and the memory, a merge join walked those from the user's
	 * first memory on every page (page k read 256 k rows). */
#define PAGE_REST \
	" FROM %s" FILE_JOINS " WHERE %s AND %s >= $%d::uuid AND i.memory_id >= $%d::uuid AND m.id >= $%d::uuid" \
	" AND (%s, i.ino) > ($%d::uuid, $%d::bigint) ORDER BY %s, i.ino LIMIT $%d"
	snprintf(sql, sizeof(sql),
		 dir->place == META_PLACE_LIBRARY || dir->place == META_PLACE_COLLECTION
			 ? entries ? META_PLAN_PER_CALL "SELECT " ENTRY_COLS_OF(LINKS_OF_X) PAGE_REST
				   : META_PLAN_PER_CALL "SELECT " FILE_COLS_OF(LINKS_OF_X) PAGE_REST
			 : entries ? META_PLAN_PER_CALL "SELECT " ENTRY_COLS_OF(LINKS_COUNTED) PAGE_REST
				   : META_PLAN_PER_CALL "SELECT " FILE_COLS PAGE_REST,
		 twin_test(dir->place, twin, sizeof(twin), m->trash_days),
		 from, where, cursor, np - 3, np - 3, np - 3, cursor, np - 3, np - 2, cursor, np - 1);
#undef PAGE_REST
	p[0] = sql;
	c = meta_conn_get(m);
	if (!c)
		return -EIO;
	/* A folder, collection or gallery is a walk of its membership index
	 * from the cursor, which stops after the page.  It is planned with
	 * sorts disabled, in the same one statement (0021): in a database of
	 * many users the planner expected one row of a folder and chose to
	 * read and sort all of it for every page (22,000 files: 0.3 s a
	 * page; the walk: 6 ms).  The trash has no such index (its files are
	 * a few among all of the user's): it is found, then sorted. */
	if (cur->versions)
		rc = list_versions(m, c, cur, max_s, &r);
	else if (has_ino)
		rc = meta_exec(c, "listing", "SELECT * FROM mvault_list_page($1, $2, $3, $4, $5, $6)"
			       " AS t(" FILE_COL_TYPES ")", np, p, &r);
	else
		rc = meta_exec(c, "listing", sql, np - 1, p + 1, &r);
	if (rc == 0 && !cur->versions && dir->place == META_PLACE_TRASH && PQntuples(r) < max) {
		/* the trash's files are done: its replaced versions fill the page */
		int got = PQntuples(r);
		PGresult *rv;

		for (int i = 0; i < got; i++)
			file_from_row(r, i, &out[i]);
		PQclear(r);
		cur->versions = 1;
		memset(cur->memory_id, 0, sizeof(cur->memory_id));
		cur->ino = 0;
		snprintf(max_s, sizeof(max_s), "%d", max - got);
		rc = list_versions(m, c, cur, max_s, &rv);
		meta_conn_put(m, c);
		if (rc)
			return rc;
		*n = got + PQntuples(rv);
		for (int i = got; i < *n; i++)
			file_from_row(rv, i - got, &out[i]);
		PQclear(rv);
		if (*n > got) {
			snprintf(cur->memory_id, sizeof(cur->memory_id), "%s", out[*n - 1].memory_id);
			cur->ino = out[*n - 1].ino;
		}
		return 0;
	}
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

int meta_list(struct meta *m, const struct meta_dir *dir, struct meta_cursor *cur,
	      struct meta_file *out, int max, int *n)
{
	return list_page(m, dir, cur, out, max, n, 0);
}

int meta_list_entries(struct meta *m, const struct meta_dir *dir, struct meta_cursor *cur,
		      struct meta_file *out, int max, int *n)
{
	return list_page(m, dir, cur, out, max, n, 1);
}

/* --- counts -------------------------------------------------------------- */

/* Counts the user's files and bytes into m->usage (COUNTING set by the
 * caller, cleared here): 0, or -errno with the figure before kept. */
static int usage_count(struct meta *m)
{
	const char *p[] = { m->user_id };
	long long now = meta_mono_ms();
	PGconn *c = meta_conn_get(m);
	PGresult *r;
	int rc;

	rc = c ? meta_exec(c, "usage",
			   "SELECT count(*), coalesce(sum(a.bytes), 0) FROM memory_items i"
			   " JOIN memory_assets a ON a.id = i.primary_asset_id"
			   " WHERE i.user_id = $1 AND a.lifecycle_status = 'active'", 1, p, &r) : -EIO;
	if (c)
		meta_conn_put(m, c);
	pthread_mutex_lock(&m->lock);
	m->usage.counting = 0;
	if (rc == 0) {
		m->usage.files = meta_u64(r, 0, 0);
		m->usage.bytes = meta_u64(r, 0, 1);
		m->usage.at = now;
		PQclear(r);
	}
	pthread_cond_broadcast(&m->usage.done);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static void *usage_main(void *arg)
{
	usage_count(arg);
	return NULL;
}

/* Starts a count on a thread of its own unless one is running (under
 * m->lock); the thread before it has ended (or is ending) then. */
static void usage_start(struct meta *m)
{
	if (m->usage.counting || m->stopping)
		return;
	if (m->usage.thread_made) {
		pthread_join(m->usage.thread, NULL);
		m->usage.thread_made = 0;
	}
	m->usage.counting = 1;
	if (pthread_create(&m->usage.thread, NULL, usage_main, m) == 0)
		m->usage.thread_made = 1;
	else
		m->usage.counting = 0;
}

void meta_usage_start(struct meta *m)
{
	pthread_mutex_lock(&m->lock);
	if (!m->usage.at)
		usage_start(m);
	pthread_mutex_unlock(&m->lock);
}

void meta_usage_end(struct meta *m)
{
	pthread_mutex_lock(&m->lock);
	if (m->usage.thread_made) {
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->usage.thread, NULL);
		pthread_mutex_lock(&m->lock);
		m->usage.thread_made = 0;
	}
	pthread_mutex_unlock(&m->lock);
}

int meta_usage(struct meta *m, uint64_t *files, uint64_t *bytes)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	/* the first count, in flight (meta_usage_start at mount): its answer */
	while (!m->usage.at && m->usage.counting)
		pthread_cond_wait(&m->usage.done, &m->lock);
	if (m->usage.at) {
		if (meta_mono_ms() - m->usage.at >= META_USAGE_MS)
			usage_start(m);		/* for the next question */
		*files = m->usage.files;
		*bytes = m->usage.bytes;
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	m->usage.counting = 1;
	pthread_mutex_unlock(&m->lock);
	rc = usage_count(m);
	pthread_mutex_lock(&m->lock);
	*files = m->usage.files;
	*bytes = m->usage.bytes;
	pthread_mutex_unlock(&m->lock);
	return rc;
}
