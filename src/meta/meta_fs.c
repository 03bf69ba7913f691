/*
 * meta_fs.c - the namespace queries: library files, their content, names.
 *
 * A file in library/ is a memory item (display_name, ino, mode, mtime) whose
 * memory has a user_library row, shown with its primary (original) asset.
 * Only assets whose lifecycle is active are visible; unlink tombstones, it
 * never deletes rows.
 *
 * Names are unique per folder among active files.  The schema cannot say
 * that with one index (the name is on the item, the lifecycle on the asset),
 * so every change that takes or frees a name first takes a transaction-level
 * advisory lock on (user, folder, name); two creators of one name serialise
 * and the second sees the first's row.
 *
 * Every listing page is one statement that walks memory_items_user_name_idx
 * in (display_name, ino) order from a cursor: the cost of a page does not
 * grow with the library.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define FILE_COLS \
	"i.ino, i.display_name, i.mode, floor(extract(epoch FROM i.mtime))::bigint, i.mtime_nsec," \
	" (extract(epoch FROM greatest(i.updated_at, a.updated_at, m.updated_at)) * 1000000)::bigint," \
	" (extract(epoch FROM i.created_at) * 1000000)::bigint," \
	" a.bytes, coalesce(a.content_hash, ''), coalesce(a.storage_key, ''), m.status, a.upload_status," \
	" m.id, i.id, a.id"
#define FILE_FROM \
	" FROM memory_items i" \
	" JOIN memories m ON m.id = i.memory_id" \
	" JOIN memory_assets a ON a.id = i.primary_asset_id" \
	" JOIN user_library l ON l.memory_id = i.memory_id"
#define FILE_ACTIVE " a.lifecycle_status = 'active'"

static void micros_to_ts(long long us, struct timespec *ts)
{
	ts->tv_sec = us / 1000000;
	ts->tv_nsec = (us % 1000000) * 1000;
}

static void file_from_row(const PGresult *r, int row, struct meta_file *f)
{
	memset(f, 0, sizeof(*f));
	f->ino = meta_u64(r, row, 0);
	snprintf(f->name, sizeof(f->name), "%s", meta_val(r, row, 1));
	f->mode = (uint32_t)meta_u64(r, row, 2) & 07777;
	f->mtime.tv_sec = strtoll(meta_val(r, row, 3), NULL, 10);
	f->mtime.tv_nsec = strtol(meta_val(r, row, 4), NULL, 10);
	micros_to_ts(strtoll(meta_val(r, row, 5), NULL, 10), &f->ctime);
	micros_to_ts(strtoll(meta_val(r, row, 6), NULL, 10), &f->crtime);
	f->size = meta_u64(r, row, 7);
	snprintf(f->sha256, sizeof(f->sha256), "%s", meta_val(r, row, 8));
	snprintf(f->key, sizeof(f->key), "%s", meta_val(r, row, 9));
	snprintf(f->status, sizeof(f->status), "%s", meta_val(r, row, 10));
	snprintf(f->upload_status, sizeof(f->upload_status), "%s", meta_val(r, row, 11));
	snprintf(f->memory_id, sizeof(f->memory_id), "%s", meta_val(r, row, 12));
	snprintf(f->item_id, sizeof(f->item_id), "%s", meta_val(r, row, 13));
	snprintf(f->asset_id, sizeof(f->asset_id), "%s", meta_val(r, row, 14));
	f->nlink = 1;
}

/* Runs a query expected to return at most one file row. */
static int query_file(PGconn *c, const char *what, const char *sql, int n,
		      const char *const *p, struct meta_file *out)
{
	PGresult *r;
	int rc = meta_exec(c, what, sql, n, p, &r);

	if (rc)
		return rc;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else if (out)
		file_from_row(r, 0, out);
	PQclear(r);
	return rc;
}

static int library_find(struct meta *m, PGconn *c, const char *name, struct meta_file *out)
{
	const char *p[] = { m->user_id, name };

	return query_file(c, "library lookup",
			  "SELECT " FILE_COLS FILE_FROM
			  " WHERE i.user_id = $1 AND i.display_name = $2 AND" FILE_ACTIVE
			  " ORDER BY i.ino LIMIT 1", 2, p, out);
}

static int file_find(struct meta *m, PGconn *c, uint64_t ino, struct meta_file *out)
{
	char s[24];
	const char *p[] = { m->user_id, s };

	snprintf(s, sizeof(s), "%" PRIu64, ino);
	return query_file(c, "file by inode",
			  "SELECT " FILE_COLS FILE_FROM
			  " WHERE i.user_id = $1 AND i.ino = $2 AND" FILE_ACTIVE, 2, p, out);
}

int meta_library_lookup(struct meta *m, const char *name, struct meta_file *out)
{
	PGconn *c = meta_conn_get(m);
	int rc;

	if (!c)
		return -EIO;
	rc = library_find(m, c, name, out);
	meta_conn_put(m, c);
	return rc;
}

int meta_file_get(struct meta *m, uint64_t ino, struct meta_file *out)
{
	PGconn *c = meta_conn_get(m);
	int rc;

	if (!c)
		return -EIO;
	rc = file_find(m, c, ino, out);
	meta_conn_put(m, c);
	return rc;
}

int meta_library_list(struct meta *m, const char *after_name, uint64_t after_ino,
		      struct meta_file *out, int max, int *n)
{
	char ino_s[24], max_s[16];
	const char *p[] = { m->user_id, after_name ? after_name : "", ino_s, max_s };
	PGconn *c;
	PGresult *r;
	int rc;

	snprintf(ino_s, sizeof(ino_s), "%" PRIu64, after_name ? after_ino : 0);
	snprintf(max_s, sizeof(max_s), "%d", max);
	c = meta_conn_get(m);
	if (!c)
		return -EIO;
	/* Row comparison on (display_name, ino) lets the index start at the
	 * cursor.  "C" collation: byte order, the order the index keeps. */
	rc = meta_exec(c, "library listing",
		       "SELECT " FILE_COLS FILE_FROM
		       " WHERE i.user_id = $1 AND (i.display_name, i.ino) > ($2, $3::bigint) AND" FILE_ACTIVE
		       " ORDER BY i.display_name, i.ino LIMIT $4", 4, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	*n = PQntuples(r);
	for (int i = 0; i < *n; i++)
		file_from_row(r, i, &out[i]);
	PQclear(r);
	return 0;
}

/* Serialises every change to NAME in the user's library (see the top). */
static int lock_name(struct meta *m, PGconn *c, const char *name)
{
	const char *p[] = { m->user_id, name };

	return meta_exec(c, "lock name",
			 "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/library/' || $2, 0))",
			 2, p, NULL);
}

int meta_library_create(struct meta *m, const char *name, uint32_t mode,
			const struct timespec *mtime, struct meta_file *out)
{
	char mode_s[16], sec_s[24], nsec_s[16];
	const char *p[] = { m->user_id, name, mode_s, sec_s, nsec_s };
	PGconn *c = meta_conn_get(m);
	int rc;

	if (!c)
		return -EIO;
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	snprintf(sec_s, sizeof(sec_s), "%lld", (long long)mtime->tv_sec);
	snprintf(nsec_s, sizeof(nsec_s), "%ld", mtime->tv_nsec);
	rc = meta_tx_begin(c);
	if (rc == 0)
		rc = lock_name(m, c, name);
	if (rc == 0) {
		rc = library_find(m, c, name, out);
		rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
	}
	/* One statement makes every row: ids are chosen up front so the item
	 * can name its asset and the asset its item (foreign keys are checked
	 * at the end of the statement). */
	if (rc == 0)
		rc = meta_exec(c, "create file",
			       "WITH ids AS (SELECT gen_random_uuid() AS mem, gen_random_uuid() AS item,"
			       "                    gen_random_uuid() AS asset),"
			       " mem AS (INSERT INTO memories (id, user_id, type, title, status, expires_at, created_by)"
			       "   SELECT mem, $1, 'document', $2, 'pending', now() + interval '24 hours', $1 FROM ids),"
			       " item AS (INSERT INTO memory_items (id, memory_id, user_id, display_name,"
			       "            primary_asset_id, mode, mtime, mtime_nsec)"
			       "   SELECT item, mem, $1, $2, asset, $3, to_timestamp($4), $5 FROM ids),"
			       " asset AS (INSERT INTO memory_assets (id, memory_id, memory_item_id, group_id, asset_type)"
			       "   SELECT asset, mem, item, gen_random_uuid(), 'original' FROM ids),"
			       " lib AS (INSERT INTO user_library (user_id, memory_id, asset_type, storage_path,"
			       "            file_size_bytes, mime_type)"
			       "   SELECT $1, mem, 'document', '', 0, 'application/octet-stream' FROM ids)"
			       " INSERT INTO upload_sessions (user_id, memory_id, session_token, total_files, expires_at)"
			       "   SELECT $1, mem, gen_random_uuid()::text, 1, now() + interval '24 hours' FROM ids",
			       5, p, NULL);
	if (rc == 0)
		rc = library_find(m, c, name, out);
	rc = meta_tx_end(c, rc);
	meta_conn_put(m, c);
	return rc;
}

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

/* Tombstones asset ASSET_ID when it is active: its blob loses a reference,
 * and a blob left with none gets a row in the deletion outbox.  The object
 * itself is deleted only later, by the deletion job, after the grace period. */
static int tombstone_asset(PGconn *c, const char *asset_id)
{
	const char *p[] = { asset_id };
	PGresult *r;
	int rc;

	rc = meta_exec(c, "tombstone asset",
		       "WITH a AS (UPDATE memory_assets SET lifecycle_status = 'tombstoned'"
		       "           WHERE id = $1 AND lifecycle_status = 'active' RETURNING blob_id),"
		       " b AS (UPDATE blobs SET ref_count = ref_count - 1"
		       "       WHERE id = (SELECT blob_id FROM a)"
		       "       RETURNING id, ref_count, storage_backend, storage_key)"
		       " INSERT INTO asset_delete_jobs (asset_id, backend, backend_key, blob_id)"
		       "   SELECT $1, storage_backend, storage_key, id FROM b WHERE ref_count = 0",
		       1, p, &r);
	if (rc == 0)
		PQclear(r);
	return rc;
}

/* Tombstones a whole file: its current asset and its memory. */
static int tombstone_file(struct meta *m, PGconn *c, const struct meta_file *f)
{
	const char *p[] = { f->memory_id, m->user_id };
	int rc = tombstone_asset(c, f->asset_id);

	if (rc == 0)
		rc = meta_exec(c, "tombstone memory",
			       "UPDATE memories SET status = 'tombstoned', expires_at = NULL, updated_by = $2"
			       " WHERE id = $1", 2, p, NULL);
	return rc;
}

/* Takes a reference on the blob for C (making it on first sight) and
 * returns its id in BLOB_ID.  A blob that had dropped to zero references
 * is live again: its pending deletion is cancelled. */
static int blob_ref(PGconn *c, const struct meta_content *ct, char blob_id[META_UUID_LEN + 1])
{
	char size_s[24];
	const char *p[] = { ct->sha256, ct->backend, ct->key, size_s, ct->mime };
	const char *q[] = { blob_id };
	PGresult *r;
	int rc;

	snprintf(size_s, sizeof(size_s), "%" PRIu64, ct->size);
	rc = meta_exec(c, "reference blob",
		       "INSERT INTO blobs (content_hash, storage_backend, storage_key, bytes, mime_type, ref_count)"
		       " VALUES ($1, $2, $3, $4, $5, 1)"
		       " ON CONFLICT (content_hash) DO UPDATE"
		       "   SET ref_count = blobs.ref_count + 1, last_accessed_at = now()"
		       " RETURNING id, ref_count", 5, p, &r);
	if (rc)
		return rc;
	snprintf(blob_id, META_UUID_LEN + 1, "%s", meta_val(r, 0, 0));
	if (strcmp(meta_val(r, 0, 1), "1") == 0)
		rc = meta_exec(c, "cancel blob deletion",
			       "UPDATE asset_delete_jobs SET status = 'cancelled'"
			       " WHERE blob_id = $1 AND status = 'pending'", 1, q, NULL);
	PQclear(r);
	return rc;
}

int meta_file_commit(struct meta *m, uint64_t ino, const struct meta_content *ct,
		     struct meta_file *out)
{
	char blob_id[META_UUID_LEN + 1], size_s[24], new_asset[META_UUID_LEN + 1];
	struct meta_file cur;
	PGconn *c = meta_conn_get(m);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	snprintf(size_s, sizeof(size_s), "%" PRIu64, ct->size);
	rc = meta_tx_begin(c);
	if (rc == 0)
		rc = file_find(m, c, ino, &cur);
	if (rc == 0)
		rc = lock_name(m, c, cur.name);
	if (rc == 0)
		rc = blob_ref(c, ct, blob_id);
	if (rc == 0 && strcmp(cur.upload_status, "completed") != 0) {
		/* First content of a created file: fill in its asset. */
		const char *p[] = { cur.asset_id, blob_id, ct->sha256, size_s, ct->mime, ct->backend, ct->key };

		snprintf(new_asset, sizeof(new_asset), "%s", cur.asset_id);
		rc = meta_exec(c, "complete asset",
			       "UPDATE memory_assets SET blob_id = $2, content_hash = $3, computed_by = 'client',"
			       " bytes = $4, mime_type = $5, storage_backend = $6, storage_key = $7,"
			       " upload_status = 'completed' WHERE id = $1", 7, p, NULL);
	} else if (rc == 0) {
		/* New content for a committed file: copy on write. */
		const char *p[] = { cur.memory_id, cur.item_id, blob_id, ct->sha256, size_s, ct->mime,
				    ct->backend, ct->key };

		rc = meta_exec(c, "new asset version",
			       "INSERT INTO memory_assets (memory_id, memory_item_id, group_id, asset_type, blob_id,"
			       " content_hash, computed_by, bytes, mime_type, storage_backend, storage_key, upload_status)"
			       " VALUES ($1, $2, gen_random_uuid(), 'original', $3, $4, 'client', $5, $6, $7, $8,"
			       " 'completed') RETURNING id", 8, p, &r);
		if (rc == 0) {
			snprintf(new_asset, sizeof(new_asset), "%s", meta_val(r, 0, 0));
			PQclear(r);
			rc = tombstone_asset(c, cur.asset_id);
		}
		if (rc == 0) {
			const char *q[] = { cur.item_id, new_asset };

			rc = meta_exec(c, "switch primary asset",
				       "UPDATE memory_items SET primary_asset_id = $2 WHERE id = $1", 2, q, NULL);
		}
	}
	if (rc == 0) {
		const char *p[] = { cur.memory_id, m->user_id, ct->memory_type, size_s, ct->mime, ct->key };

		rc = meta_exec(c, "activate memory",
			       "WITH mem AS (UPDATE memories SET status = 'active', expires_at = NULL,"
			       "               type = $3::memory_type_t, updated_by = $2 WHERE id = $1),"
			       " lib AS (UPDATE user_library SET storage_path = $6, file_size_bytes = $4,"
			       "           mime_type = $5, asset_type = $3 WHERE memory_id = $1)"
			       " UPDATE upload_sessions SET status = 'completed', uploaded_files = total_files"
			       " WHERE memory_id = $1 AND status = 'active'", 6, p, NULL);
	}
	if (rc == 0 && ct->mtime) {
		char sec_s[24], nsec_s[16];
		const char *p[] = { cur.item_id, sec_s, nsec_s };

		snprintf(sec_s, sizeof(sec_s), "%lld", (long long)ct->mtime->tv_sec);
		snprintf(nsec_s, sizeof(nsec_s), "%ld", ct->mtime->tv_nsec);
		rc = meta_exec(c, "set mtime",
			       "UPDATE memory_items SET mtime = to_timestamp($2), mtime_nsec = $3 WHERE id = $1",
			       3, p, NULL);
	}
	if (rc == 0 && out)
		rc = file_find(m, c, ino, out);
	rc = meta_tx_end(c, rc);
	meta_conn_put(m, c);
	return rc;
}

int meta_file_abort(struct meta *m, uint64_t ino)
{
	char s[24];
	const char *p[] = { m->user_id, s };
	PGconn *c = meta_conn_get(m);
	int rc;

	if (!c)
		return -EIO;
	snprintf(s, sizeof(s), "%" PRIu64, ino);
	rc = meta_exec(c, "abort file",
		       "DELETE FROM memories WHERE id = (SELECT memory_id FROM memory_items"
		       "                                WHERE user_id = $1 AND ino = $2)"
		       " AND NOT EXISTS (SELECT 1 FROM memory_assets a JOIN memory_items i ON a.memory_id = i.memory_id"
		       "                 WHERE i.user_id = $1 AND i.ino = $2 AND a.upload_status = 'completed')",
		       2, p, NULL);
	meta_conn_put(m, c);
	return rc;
}

int meta_library_unlink(struct meta *m, const char *name, uint64_t *ino)
{
	struct meta_file f;
	PGconn *c = meta_conn_get(m);
	int rc;

	if (!c)
		return -EIO;
	rc = meta_tx_begin(c);
	if (rc == 0)
		rc = lock_name(m, c, name);
	if (rc == 0)
		rc = library_find(m, c, name, &f);
	if (rc == 0)
		rc = tombstone_file(m, c, &f);
	rc = meta_tx_end(c, rc);
	meta_conn_put(m, c);
	if (rc == 0 && ino)
		*ino = f.ino;
	return rc;
}

int meta_library_rename(struct meta *m, const char *oldname, const char *newname,
			unsigned flags, uint64_t *replaced)
{
	struct meta_file from, to;
	PGconn *c = meta_conn_get(m);
	int rc, have_to;

	*replaced = 0;
	if (!c)
		return -EIO;
	rc = meta_tx_begin(c);
	/* Both names, in one order, so two crossing renames cannot deadlock. */
	if (rc == 0)
		rc = lock_name(m, c, strcmp(oldname, newname) < 0 ? oldname : newname);
	if (rc == 0)
		rc = lock_name(m, c, strcmp(oldname, newname) < 0 ? newname : oldname);
	if (rc == 0)
		rc = library_find(m, c, oldname, &from);
	if (rc == 0) {
		rc = library_find(m, c, newname, &to);
		have_to = rc == 0;
		rc = rc == -ENOENT ? 0 : rc;
	}
	if (rc == 0 && have_to && to.ino != from.ino) {
		if (flags & META_RENAME_NOREPLACE)
			rc = -EEXIST;
		else if ((rc = tombstone_file(m, c, &to)) == 0)
			*replaced = to.ino;
	}
	if (rc == 0) {
		const char *p[] = { from.item_id, newname };

		rc = meta_exec(c, "rename", "UPDATE memory_items SET display_name = $2 WHERE id = $1", 2, p, NULL);
	}
	rc = meta_tx_end(c, rc);
	meta_conn_put(m, c);
	return rc;
}

int meta_file_setattr(struct meta *m, uint64_t ino, unsigned flags, uint32_t mode,
		      const struct timespec *mtime, struct meta_file *out)
{
	char ino_s[24], mode_s[16], sec_s[24], nsec_s[16];
	const char *p[] = { m->user_id, ino_s, (flags & META_SET_MODE) ? mode_s : NULL,
			    (flags & META_SET_MTIME) ? sec_s : NULL, (flags & META_SET_MTIME) ? nsec_s : NULL };
	PGconn *c = meta_conn_get(m);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	snprintf(ino_s, sizeof(ino_s), "%" PRIu64, ino);
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	if (mtime) {
		snprintf(sec_s, sizeof(sec_s), "%lld", (long long)mtime->tv_sec);
		snprintf(nsec_s, sizeof(nsec_s), "%ld", mtime->tv_nsec);
	}
	rc = meta_exec(c, "set attributes",
		       "UPDATE memory_items SET mode = coalesce($3::integer, mode),"
		       " mtime = coalesce(to_timestamp($4::bigint), mtime),"
		       " mtime_nsec = coalesce($5::integer, mtime_nsec)"
		       " WHERE user_id = $1 AND ino = $2 RETURNING id", 5, p, &r);
	if (rc == 0) {
		rc = PQntuples(r) ? 0 : -ENOENT;
		PQclear(r);
	}
	if (rc == 0 && out)
		rc = file_find(m, c, ino, out);
	meta_conn_put(m, c);
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
		       " WHERE i.user_id = $1 AND" FILE_ACTIVE, 1, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	*files = meta_u64(r, 0, 0);
	*bytes = meta_u64(r, 0, 1);
	PQclear(r);
	return 0;
}
