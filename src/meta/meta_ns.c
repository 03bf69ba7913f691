/*
 * meta_ns.c - changing the namespace: create, commit, unlink, move, link,
 * and making, removing and renaming collections and galleries.
 *
 * Every change is one transaction.  Names are unique within a set of names
 * (meta_fs.c), which no single index can say (the name is on the item, the
 * lifecycle on the asset, the place in a third table), so every change that
 * takes or frees a name first takes a transaction-level advisory lock on
 * (user, set, name): two creators of one name serialise, and the second
 * sees the first's row.
 *
 * Lifecycle: unlink tombstones (asset tombstoned, blob loses a reference, a
 * blob left with none gets a row in the deletion outbox); a move out of the
 * trash restores (the reverse, and a pending deletion is cancelled).  The
 * place rows (library, collection, galleries) are kept while a file is in
 * the trash, so a restore puts it back where it was.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

static void u64s(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%" PRIu64, v);
}

/* Serialises every change to NAME in set SET of the user's names. */
static int lock_name(struct meta *m, PGconn *c, enum meta_place set, const char *name)
{
	char set_s[8];
	const char *p[] = { m->user_id, set_s, name };

	snprintf(set_s, sizeof(set_s), "%d", (int)meta_name_set(set));
	return meta_exec(c, "lock name",
			 "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3, 0))",
			 3, p, NULL);
}

/* Locks two names in a fixed order, so crossing moves cannot deadlock. */
static int lock_names(struct meta *m, PGconn *c, enum meta_place s1, const char *n1,
		      enum meta_place s2, const char *n2)
{
	int first = meta_name_set(s1) < meta_name_set(s2) ||
		    (meta_name_set(s1) == meta_name_set(s2) && strcmp(n1, n2) <= 0);
	int rc = first ? lock_name(m, c, s1, n1) : lock_name(m, c, s2, n2);

	if (rc == 0 && !(meta_name_set(s1) == meta_name_set(s2) && strcmp(n1, n2) == 0))
		rc = first ? lock_name(m, c, s2, n2) : lock_name(m, c, s1, n1);
	return rc;
}

/* The body of a change: a pooled connection C, a transaction begun (its
 * status in RC), and at TX_END a commit, or a rollback when RC is an error. */
#define TX_BEGIN(m, c, rc) \
	PGconn *c = meta_conn_get(m); \
	int rc; \
	if (!c) \
		return -EIO; \
	rc = meta_tx_begin(c)
#define TX_END(m, c, rc) \
	rc = meta_tx_end(c, rc); \
	meta_conn_put(m, c); \
	return rc

/* --- lifecycle ----------------------------------------------------------- */

/* Moves asset ASSET_ID between lifecycles: active -> tombstoned
 * (TO_ACTIVE 0) or back (1); BLOB_ID receives its blob, "" when it has none
 * or was not in the first state. */
static int set_lifecycle(PGconn *c, const char *asset_id, int to_active, char blob_id[META_UUID_LEN + 1])
{
	const char *p[] = { asset_id };
	PGresult *r;
	int rc;

	blob_id[0] = '\0';
	rc = meta_exec(c, to_active ? "restore asset" : "tombstone asset",
		       to_active
		       ? "UPDATE memory_assets SET lifecycle_status = 'active', tombstoned_at = NULL"
			 " WHERE id = $1 AND lifecycle_status = 'tombstoned' RETURNING coalesce(blob_id::text, '')"
		       : "UPDATE memory_assets SET lifecycle_status = 'tombstoned', tombstoned_at = mvault_now()"
			 " WHERE id = $1 AND lifecycle_status = 'active' RETURNING coalesce(blob_id::text, '')",
		       1, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) > 0)
		snprintf(blob_id, META_UUID_LEN + 1, "%s", meta_val(r, 0, 0));
	PQclear(r);
	return 0;
}

/* Tombstones asset ASSET_ID when it is active: its blob loses a reference,
 * and a blob left with none gets a row in the deletion outbox.  The object
 * is deleted only later, by the deletion job, after the grace period.
 *
 * Two statements, not one: the asset's UPDATE may wait for an upload's
 * commit that creates the blob row, and a later statement's snapshot is
 * needed to see that row. */
static int tombstone_asset(PGconn *c, const char *asset_id)
{
	char blob_id[META_UUID_LEN + 1];
	int rc = set_lifecycle(c, asset_id, 0, blob_id);

	if (rc || !blob_id[0])
		return rc;
	{
		const char *q[] = { asset_id, blob_id };

		return meta_exec(c, "release blob",
				 "WITH b AS (UPDATE blobs SET ref_count = ref_count - 1 WHERE id = $2"
				 "           RETURNING id, ref_count, storage_backend, storage_key)"
				 " INSERT INTO asset_delete_jobs (asset_id, backend, backend_key, blob_id)"
				 "   SELECT $1, storage_backend, storage_key, id FROM b WHERE ref_count = 0",
				 2, q, NULL);
	}
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

/* Brings a tombstoned file back: asset and memory active, the blob's
 * reference back, and its pending deletion cancelled. */
static int restore_file(struct meta *m, PGconn *c, const struct meta_file *f)
{
	const char *q[] = { f->memory_id, m->user_id };
	char blob_id[META_UUID_LEN + 1];
	/* two statements, as in tombstone_asset */
	int rc = set_lifecycle(c, f->asset_id, 1, blob_id);

	if (rc == 0 && blob_id[0]) {
		const char *b[] = { blob_id };

		rc = meta_exec(c, "take blob back",
			       "WITH b AS (UPDATE blobs SET ref_count = ref_count + 1 WHERE id = $1 RETURNING id)"
			       " UPDATE asset_delete_jobs SET status = 'cancelled'"
			       " WHERE blob_id = (SELECT id FROM b) AND status = 'pending'", 1, b, NULL);
	}
	if (rc == 0)
		rc = meta_exec(c, "restore memory",
			       "UPDATE memories SET status = CASE WHEN EXISTS (SELECT 1 FROM memory_assets"
			       "   WHERE memory_id = $1 AND upload_status <> 'completed' AND lifecycle_status = 'active')"
			       "   THEN 'pending'::memory_status_t ELSE 'active' END, updated_by = $2"
			       " WHERE id = $1", 2, q, NULL);
	return rc;
}

/* --- places -------------------------------------------------------------- */

/* A library row for file F (with collection COLL_INO when not 0). */
static int library_add(struct meta *m, PGconn *c, const struct meta_file *f, uint64_t coll_ino)
{
	char ino_s[24];
	const char *p[] = { m->user_id, f->memory_id, coll_ino ? ino_s : NULL };

	u64s(ino_s, sizeof(ino_s), coll_ino);
	return meta_exec(c, "add to library",
			 "INSERT INTO user_library (user_id, memory_id, asset_type, storage_path,"
			 "   file_size_bytes, mime_type, collection_id)"
			 " SELECT $1, mm.id, mm.type::text, coalesce(a.storage_key, ''), a.bytes, a.mime_type,"
			 "   (SELECT id FROM user_collections WHERE ino = $3::bigint)"
			 " FROM memories mm JOIN memory_items i ON i.memory_id = mm.id"
			 " JOIN memory_assets a ON a.id = i.primary_asset_id"
			 " WHERE mm.id = $2 LIMIT 1", 3, p, NULL);
}

static int collection_set(PGconn *c, const struct meta_file *f, uint64_t coll_ino)
{
	char ino_s[24];
	const char *p[] = { f->memory_id, coll_ino ? ino_s : NULL };

	u64s(ino_s, sizeof(ino_s), coll_ino);
	return meta_exec(c, "set collection",
			 "UPDATE user_library SET collection_id = (SELECT id FROM user_collections"
			 "                                          WHERE ino = $2::bigint)"
			 " WHERE memory_id = $1", 2, p, NULL);
}

static int gallery_add(struct meta *m, PGconn *c, const struct meta_file *f, uint64_t gallery_ino)
{
	char ino_s[24];
	const char *p[] = { f->memory_id, ino_s, m->user_id };

	u64s(ino_s, sizeof(ino_s), gallery_ino);
	return meta_exec(c, "add to gallery",
			 "INSERT INTO gallery_items (gallery_id, memory_id, user_id)"
			 " SELECT id, $1, $3 FROM galleries WHERE ino = $2"
			 " ON CONFLICT (gallery_id, memory_id) DO NOTHING", 3, p, NULL);
}

static int gallery_remove(PGconn *c, const struct meta_file *f, uint64_t gallery_ino)
{
	char ino_s[24];
	const char *p[] = { f->memory_id, ino_s };

	u64s(ino_s, sizeof(ino_s), gallery_ino);
	return meta_exec(c, "remove from gallery",
			 "DELETE FROM gallery_items WHERE memory_id = $1"
			 " AND gallery_id = (SELECT id FROM galleries WHERE ino = $2)", 2, p, NULL);
}

/* A workspace file becomes a library file: its expiry goes with it. */
static int promote(struct meta *m, PGconn *c, const struct meta_file *f, uint64_t coll_ino)
{
	const char *p[] = { f->memory_id };
	int rc = meta_exec(c, "leave workspace", "DELETE FROM workspace_assets WHERE memory_id = $1",
			   1, p, NULL);

	return rc ? rc : library_add(m, c, f, coll_ino);
}

/* Puts F, which now is in library/ (unfiled or in a collection), into DIR:
 * the collection of DIR, or a gallery (leaving any collection). */
static int file_into(struct meta *m, PGconn *c, const struct meta_file *f, const struct meta_dir *dir)
{
	switch (dir->place) {
	case META_PLACE_COLLECTION:
		return collection_set(c, f, dir->ino);
	case META_PLACE_GALLERY:
		return gallery_add(m, c, f, dir->ino);
	default:
		return 0;
	}
}

/* --- create, commit, abort ----------------------------------------------- */

int meta_create(struct meta *m, const struct meta_dir *dir, const char *name, uint32_t mode,
		const struct timespec *mtime, struct meta_file *out)
{
	char mode_s[16], sec_s[24], nsec_s[16], mem[META_UUID_LEN + 1];
	const char *p[] = { m->user_id, name, mode_s, sec_s, nsec_s, mem };
	const char *q[] = { m->user_id, name };
	PGresult *r;

	if (dir->place == META_PLACE_TRASH)
		return -EPERM;
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	snprintf(sec_s, sizeof(sec_s), "%lld", (long long)mtime->tv_sec);
	snprintf(nsec_s, sizeof(nsec_s), "%ld", mtime->tv_nsec);

	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = lock_name(m, c, dir->place, name);
	if (rc == 0 && dir->place != META_PLACE_LIBRARY && dir->place != META_PLACE_WORKSPACE) {
		struct meta_folder folder;

		rc = meta_folder_get_on(m, c, dir->ino, &folder);
	}
	if (rc == 0) {
		rc = meta_find_exact(m, c, dir->place, name, out);
		rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
	}
	/* The memory first: the assets' row-level security policy looks it up. */
	if (rc == 0)
		rc = meta_exec(c, "create memory",
			       "INSERT INTO memories (user_id, type, title, status, expires_at, created_by)"
			       " VALUES ($1, 'document', $2, 'pending', now() + interval '24 hours', $1)"
			       " RETURNING id", 2, q, &r);
	if (rc == 0) {
		snprintf(mem, sizeof(mem), "%s", meta_val(r, 0, 0));
		PQclear(r);
		/* Ids are chosen up front so the item can name its asset and the
		 * asset its item (foreign keys are checked at the end). */
		rc = meta_exec(c, "create file",
			       "WITH ids AS (SELECT gen_random_uuid() AS item, gen_random_uuid() AS asset),"
			       " item AS (INSERT INTO memory_items (id, memory_id, user_id, display_name,"
			       "            primary_asset_id, mode, mtime, mtime_nsec)"
			       "   SELECT item, $6, $1, $2, asset, $3, to_timestamp($4), $5 FROM ids),"
			       " asset AS (INSERT INTO memory_assets (id, memory_id, memory_item_id, group_id, asset_type)"
			       "   SELECT asset, $6, item, gen_random_uuid(), 'original' FROM ids)"
			       " INSERT INTO upload_sessions (user_id, memory_id, session_token, total_files, expires_at)"
			       "   VALUES ($1, $6, gen_random_uuid()::text, 1, now() + interval '24 hours')",
			       6, p, NULL);
	}
	if (rc == 0 && dir->place == META_PLACE_WORKSPACE) {
		const char *w[] = { m->user_id, mem };

		rc = meta_exec(c, "add to workspace",
			       "INSERT INTO workspace_assets (user_id, memory_id, asset_type, temp_storage_path,"
			       "   file_size_bytes, mime_type, expires_at)"
			       " VALUES ($1, $2, 'document', '', 0, 'application/octet-stream',"
			       "   mvault_now() + interval '7 days')", 2, w, NULL);
	} else if (rc == 0) {
		struct meta_file f = { 0 };

		snprintf(f.memory_id, sizeof(f.memory_id), "%s", mem);
		rc = library_add(m, c, &f, dir->place == META_PLACE_COLLECTION ? dir->ino : 0);
		if (rc == 0 && dir->place == META_PLACE_GALLERY)
			rc = gallery_add(m, c, &f, dir->ino);
	}
	if (rc == 0)
		rc = meta_find_exact(m, c, dir->place, name, out);
	TX_END(m, c, rc);
}

/* Takes a reference on the blob for CT (making it on first sight) and
 * returns its id in BLOB_ID.  A blob that had dropped to zero references
 * is live again: its pending deletion is cancelled. */
static int blob_ref(PGconn *c, const struct meta_content *ct, char blob_id[META_UUID_LEN + 1])
{
	char size_s[24];
	const char *p[] = { ct->sha256, ct->backend, ct->key, size_s, ct->mime };
	const char *q[] = { blob_id };
	PGresult *r;
	int rc;

	u64s(size_s, sizeof(size_s), ct->size);
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

/* Records content CT as the file's current version, not yet in the store
 * (upload 'uploading'): fills a created file's asset, or makes a new asset
 * and tombstones the old one (copy on write).  The memory no longer expires
 * as an abandoned upload: its bytes are durable in staging. */
static int stage_content(struct meta *m, PGconn *c, struct meta_file *cur, const struct meta_content *ct)
{
	char size_s[24], seq_s[24];
	PGresult *r;
	int rc = 0;

	u64s(size_s, sizeof(size_s), ct->size);
	u64s(seq_s, sizeof(seq_s), ct->seq);
	if (strcmp(cur->sha256, ct->sha256) == 0 && strcmp(cur->upload_status, "pending") != 0) {
		/* the same bytes again: nothing changes but the time */
	} else if (strcmp(cur->upload_status, "pending") == 0) {
		const char *p[] = { cur->asset_id, ct->sha256, size_s, ct->mime, ct->backend, ct->key, seq_s };

		rc = meta_exec(c, "stage asset",
			       "UPDATE memory_assets SET content_hash = $2, computed_by = 'client', bytes = $3,"
			       " mime_type = $4, storage_backend = $5, storage_key = $6, upload_status = 'uploading',"
			       " staged_seq = $7 WHERE id = $1", 7, p, NULL);
	} else {
		const char *p[] = { cur->memory_id, cur->item_id, ct->sha256, size_s, ct->mime, ct->backend,
				    ct->key, seq_s };
		char new_asset[META_UUID_LEN + 1];

		rc = meta_exec(c, "new asset version",
			       "INSERT INTO memory_assets (memory_id, memory_item_id, group_id, asset_type,"
			       " content_hash, computed_by, bytes, mime_type, storage_backend, storage_key, upload_status,"
			       " staged_seq)"
			       " VALUES ($1, $2, gen_random_uuid(), 'original', $3, 'client', $4, $5, $6, $7,"
			       " 'uploading', $8) RETURNING id", 8, p, &r);
		if (rc == 0) {
			snprintf(new_asset, sizeof(new_asset), "%s", meta_val(r, 0, 0));
			PQclear(r);
			rc = tombstone_asset(c, cur->asset_id);
		}
		if (rc == 0) {
			const char *q[] = { cur->item_id, new_asset };

			rc = meta_exec(c, "switch primary asset",
				       "UPDATE memory_items SET primary_asset_id = $2 WHERE id = $1", 2, q, NULL);
		}
	}
	if (rc == 0) {
		const char *p[] = { cur->memory_id, m->user_id, ct->memory_type, size_s, ct->mime, ct->key };

		rc = meta_exec(c, "stage memory",
			       "WITH mem AS (UPDATE memories SET expires_at = NULL, type = $3::memory_type_t,"
			       "               status = CASE WHEN status = 'active' THEN 'pending' ELSE status END,"
			       "               updated_by = $2 WHERE id = $1),"
			       " lib AS (UPDATE user_library SET storage_path = $6, file_size_bytes = $4,"
			       "           mime_type = $5, asset_type = $3 WHERE memory_id = $1)"
			       " UPDATE workspace_assets SET temp_storage_path = $6, file_size_bytes = $4,"
			       "   mime_type = $5, asset_type = $3 WHERE memory_id = $1", 6, p, NULL);
	}
	if (rc == 0 && ct->mtime) {
		char sec_s[24], nsec_s[16];
		const char *p[] = { cur->item_id, sec_s, nsec_s };

		snprintf(sec_s, sizeof(sec_s), "%lld", (long long)ct->mtime->tv_sec);
		snprintf(nsec_s, sizeof(nsec_s), "%ld", ct->mtime->tv_nsec);
		rc = meta_exec(c, "set mtime",
			       "UPDATE memory_items SET mtime = to_timestamp($2), mtime_nsec = $3 WHERE id = $1",
			       3, p, NULL);
	}
	return rc;
}

/* Marks version ASSET_ID of file CUR, whose bytes CT are now in the store,
 * as uploaded: its blob row (made or found) and upload completed.  The
 * version may have been removed meanwhile (rm, or a newer version): it is
 * recorded all the same, holding no reference on its blob, and a blob left
 * with none goes to the deletion outbox, so the store never keeps bytes no
 * row knows of.  The asset row is locked first: an unlink racing this
 * commit either sees the blob and drops its reference, or waits. */
static int complete_content(struct meta *m, PGconn *c, const struct meta_file *cur, const char *asset_id,
			    const struct meta_content *ct)
{
	char size_s[24], blob_id[META_UUID_LEN + 1];
	const char *p[] = { asset_id };
	int active, refs, rc;
	PGresult *r;

	rc = meta_exec(c, "lock version", "SELECT lifecycle_status FROM memory_assets WHERE id = $1 FOR UPDATE",
		       1, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0 || strcmp(meta_val(r, 0, 0), "deleted") == 0) {
		PQclear(r);
		return 0;
	}
	active = strcmp(meta_val(r, 0, 0), "active") == 0;
	PQclear(r);
	u64s(size_s, sizeof(size_s), ct->size);
	{
		const char *q[] = { ct->sha256, ct->backend, ct->key, size_s, ct->mime, active ? "1" : "0" };

		rc = meta_exec(c, "reference blob",
			       "INSERT INTO blobs (content_hash, storage_backend, storage_key, bytes, mime_type, ref_count)"
			       " VALUES ($1, $2, $3, $4, $5, $6::integer)"
			       " ON CONFLICT (content_hash) DO UPDATE"
			       "   SET ref_count = blobs.ref_count + $6::integer, last_accessed_at = now()"
			       " RETURNING id, ref_count", 6, q, &r);
	}
	if (rc)
		return rc;
	snprintf(blob_id, sizeof(blob_id), "%s", meta_val(r, 0, 0));
	refs = atoi(meta_val(r, 0, 1));
	PQclear(r);
	{
		const char *q[] = { asset_id, blob_id };

		rc = meta_exec(c, "complete asset",
			       "UPDATE memory_assets SET blob_id = $2, upload_status = 'completed' WHERE id = $1",
			       2, q, NULL);
	}
	if (rc == 0 && active && refs == 1) {
		const char *q[] = { blob_id };

		rc = meta_exec(c, "cancel blob deletion",
			       "UPDATE asset_delete_jobs SET status = 'cancelled'"
			       " WHERE blob_id = $1 AND status = 'pending'", 1, q, NULL);
	}
	if (rc == 0 && !active && refs == 0) {
		const char *q[] = { asset_id, blob_id };

		rc = meta_exec(c, "queue blob deletion",
			       "INSERT INTO asset_delete_jobs (asset_id, backend, backend_key, blob_id)"
			       " SELECT $1, storage_backend, storage_key, id FROM blobs b WHERE id = $2"
			       " AND NOT EXISTS (SELECT 1 FROM asset_delete_jobs j WHERE j.blob_id = b.id"
			       "                 AND j.status = 'pending')", 2, q, NULL);
	}
	if (rc == 0 && active) {
		const char *q[] = { cur->memory_id, m->user_id };

		rc = meta_exec(c, "activate memory",
			       "WITH mem AS (UPDATE memories SET updated_by = $2, status ="
			       "   CASE WHEN EXISTS (SELECT 1 FROM memory_assets WHERE memory_id = $1"
			       "     AND lifecycle_status = 'active' AND upload_status <> 'completed')"
			       "   THEN 'pending'::memory_status_t ELSE 'active' END"
			       "   WHERE id = $1 AND status <> 'tombstoned')"
			       " UPDATE upload_sessions SET status = 'completed', uploaded_files = total_files"
			       " WHERE memory_id = $1 AND status = 'active'", 2, q, NULL);
	}
	return rc;
}

int meta_file_stage(struct meta *m, uint64_t ino, const struct meta_content *ct)
{
	struct meta_file cur;

	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find_ino(m, c, ino, &cur);
	if (rc == 0 && strcmp(cur.lifecycle_status, "active") != 0)
		rc = -ENOENT;
	if (rc == 0)
		rc = stage_content(m, c, &cur, ct);
	TX_END(m, c, rc);
}

/* The asset of file CUR that holds version SHA256 and waits for its
 * upload, into ASSET_ID: 1, 0 when there is none, or -errno. */
static int waiting_version(PGconn *c, const struct meta_file *cur, const char *sha256,
			   char asset_id[META_UUID_LEN + 1])
{
	const char *p[] = { cur->item_id, sha256 };
	PGresult *r;
	int rc;

	rc = meta_exec(c, "waiting version",
		       "SELECT id FROM memory_assets WHERE memory_item_id = $1 AND content_hash = $2"
		       " AND upload_status <> 'completed' AND lifecycle_status <> 'deleted'"
		       " ORDER BY created_at DESC LIMIT 1", 2, p, &r);
	if (rc)
		return rc;
	rc = PQntuples(r) > 0;
	if (rc)
		snprintf(asset_id, META_UUID_LEN + 1, "%s", meta_val(r, 0, 0));
	PQclear(r);
	return rc;
}

/* Records content CT of file CUR as an old version, already replaced: an
 * asset row in the trash, waiting for its upload record.  1 with its id in
 * ASSET_ID, or -errno. */
static int superseded_version(PGconn *c, const struct meta_file *cur, const struct meta_content *ct,
			      char asset_id[META_UUID_LEN + 1])
{
	char size_s[24], seq_s[24];
	const char *p[] = { cur->memory_id, cur->item_id, ct->sha256, size_s, ct->mime, ct->backend, ct->key,
			    seq_s };
	PGresult *r;
	int rc;

	u64s(size_s, sizeof(size_s), ct->size);
	u64s(seq_s, sizeof(seq_s), ct->seq);
	rc = meta_exec(c, "old version",
		       "INSERT INTO memory_assets (memory_id, memory_item_id, group_id, asset_type, content_hash,"
		       " computed_by, bytes, mime_type, storage_backend, storage_key, upload_status, lifecycle_status,"
		       " tombstoned_at, staged_seq)"
		       " VALUES ($1, $2, gen_random_uuid(), 'original', $3, 'client', $4, $5, $6, $7, 'uploading',"
		       " 'tombstoned', mvault_now(), $8) RETURNING id", 8, p, &r);
	if (rc)
		return rc;
	snprintf(asset_id, META_UUID_LEN + 1, "%s", meta_val(r, 0, 0));
	PQclear(r);
	log_info("a version of '%s' uploaded after a newer one was written: kept as a removed old version",
		 cur->name);
	return 1;
}

int meta_file_uploaded(struct meta *m, uint64_t ino, const struct meta_content *ct)
{
	char asset_id[META_UUID_LEN + 1];
	struct meta_file cur;
	const char *p[2];
	PGresult *r;
	int found = 0;

	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find_ino(m, c, ino, &cur);
	if (rc == 0)
		rc = found = waiting_version(c, &cur, ct->sha256, asset_id);
	/* None waiting: done already, or never recorded (the record at close
	 * failed, or a crash came between the journal entry and it).  Then it
	 * becomes the file's content if it is newer than what the file has;
	 * else it is kept as a removed old version, so its bytes in the store
	 * stay known (and are deleted after the grace period). */
	if (rc == 0 && strcmp(cur.lifecycle_status, "active") == 0) {
		p[0] = cur.item_id;
		p[1] = ct->sha256;
		rc = meta_exec(c, "version known?",
			       "SELECT (SELECT count(*) FROM memory_assets WHERE memory_item_id = $1 AND content_hash = $2),"
			       " (SELECT coalesce(staged_seq, 0) FROM memory_assets a JOIN memory_items i"
			       "  ON a.id = i.primary_asset_id WHERE i.id = $1)", 2, p, &r);
		if (rc == 0) {
			int known = strcmp(meta_val(r, 0, 0), "0") != 0;
			uint64_t cur_seq = meta_u64(r, 0, 1);

			PQclear(r);
			if (!known && cur_seq > ct->seq)
				rc = found = superseded_version(c, &cur, ct, asset_id);
			else if (!known && (rc = stage_content(m, c, &cur, ct)) == 0 &&
				 (rc = meta_find_ino(m, c, ino, &cur)) == 0)
				rc = found = waiting_version(c, &cur, ct->sha256, asset_id);
		}
	}
	if (rc > 0)
		rc = 0;
	if (rc == 0 && found)
		rc = complete_content(m, c, &cur, asset_id, ct);
	if (rc == -ENOENT)
		rc = 0;		/* the file is gone: nothing to record */
	TX_END(m, c, rc);
}

int meta_file_abort(struct meta *m, uint64_t ino)
{
	char s[24];
	const char *p[] = { m->user_id, s };
	PGconn *c = meta_conn_get(m);
	int rc;

	if (!c)
		return -EIO;
	u64s(s, sizeof(s), ino);
	rc = meta_exec(c, "abort file",
		       "DELETE FROM memories WHERE id = (SELECT memory_id FROM memory_items"
		       "                                WHERE user_id = $1 AND ino = $2)"
		       " AND NOT EXISTS (SELECT 1 FROM memory_assets a JOIN memory_items i ON a.memory_id = i.memory_id"
		       "                 WHERE i.user_id = $1 AND i.ino = $2 AND a.upload_status = 'completed')",
		       2, p, NULL);
	meta_conn_put(m, c);
	return rc;
}

/* --- unlink, move, link -------------------------------------------------- */

int meta_unlink(struct meta *m, const struct meta_dir *dir, const char *name, uint64_t *ino)
{
	struct meta_file f;

	if (dir->place == META_PLACE_TRASH)
		return -EPERM;
	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find(m, c, dir, name, &f);
	if (rc == 0)
		rc = lock_name(m, c, dir->place, f.display_name);
	/* again, under the lock: another mount may have changed it meanwhile */
	if (rc == 0)
		rc = meta_find(m, c, dir, name, &f);
	if (rc == 0)
		rc = dir->place == META_PLACE_GALLERY ? gallery_remove(c, &f, dir->ino) : tombstone_file(m, c, &f);
	if (rc == 0 && ino)
		*ino = f.ino;
	TX_END(m, c, rc);
}

/* Takes F out of FROM, before it goes into a folder of the library. */
static int file_out_of(struct meta *m, PGconn *c, const struct meta_file *f, const struct meta_dir *from,
		       const struct meta_dir *to)
{
	switch (from->place) {
	case META_PLACE_TRASH:
		return restore_file(m, c, f);
	case META_PLACE_WORKSPACE:
		return promote(m, c, f, 0);
	case META_PLACE_COLLECTION:
		return to->place == META_PLACE_COLLECTION ? 0 : collection_set(c, f, 0);
	case META_PLACE_GALLERY:
		return gallery_remove(c, f, from->ino);
	default:
		return 0;
	}
}

int meta_move(struct meta *m, const struct meta_dir *from, const char *name,
	      const struct meta_dir *to, const char *newname, unsigned flags, uint64_t *replaced)
{
	struct meta_file f, target;
	const char *newdisp;
	int same_folder = from->place == to->place && from->ino == to->ino;

	*replaced = 0;
	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find(m, c, from, name, &f);
	/* A name that stays as it is keeps its stored form (a twin's suffix
	 * is not written into it). */
	newdisp = rc == 0 && strcmp(newname, f.name) == 0 ? f.display_name : newname;
	if (rc == 0)
		rc = lock_names(m, c, from->place, f.display_name, to->place, newdisp);
	/* again, under the locks: a crossing move may have won meanwhile */
	if (rc == 0) {
		uint64_t was = f.ino;

		rc = meta_find(m, c, from, name, &f);
		if (rc == 0 && f.ino != was)
			rc = -ENOENT;	/* the file moved away; the name is another's now */
		if (rc == 0)
			newdisp = strcmp(newname, f.name) == 0 ? f.display_name : newname;
	}
	if (rc == 0 && same_folder && newdisp == f.display_name)
		goto done;		/* mv a a */
	if (rc == 0) {
		rc = meta_find_exact(m, c, to->place, newdisp, &target);
		if (rc == 0 && target.ino != f.ino) {
			if (flags & META_MOVE_NOREPLACE)
				rc = -EEXIST;
			else if ((rc = tombstone_file(m, c, &target)) == 0)
				*replaced = target.ino;
		} else if (rc == -ENOENT || rc == 0) {
			rc = 0;
		}
	}
	if (rc == 0 && newdisp != f.display_name) {
		const char *p[] = { f.item_id, newdisp };

		rc = meta_exec(c, "rename", "UPDATE memory_items SET display_name = $2 WHERE id = $1", 2, p, NULL);
	}
	if (rc == 0 && !same_folder) {
		rc = file_out_of(m, c, &f, from, to);
		if (rc == 0)
			rc = file_into(m, c, &f, to);
	}
done:
	TX_END(m, c, rc);
}

int meta_link(struct meta *m, uint64_t ino, const struct meta_dir *dir, const char *newname,
	      struct meta_file *out)
{
	struct meta_file f, there;

	if (dir->place != META_PLACE_GALLERY)
		return -EPERM;
	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find_ino(m, c, ino, &f);
	if (rc == 0 && strcmp(f.lifecycle_status, "active") != 0)
		rc = -ENOENT;
	if (rc == 0 && strcmp(newname, f.display_name) != 0 && strcmp(newname, f.name) != 0)
		rc = -EINVAL;
	if (rc == 0)
		rc = lock_name(m, c, META_PLACE_LIBRARY, f.display_name);
	if (rc == 0) {
		rc = meta_find(m, c, dir, newname, &there);
		rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
	}
	if (rc == 0) {
		const char *p[] = { f.memory_id };
		PGresult *r;

		rc = meta_exec(c, "in workspace?", "SELECT 1 FROM workspace_assets WHERE memory_id = $1", 1, p, &r);
		if (rc == 0) {
			int in_ws = PQntuples(r) > 0;

			PQclear(r);
			if (in_ws)
				rc = promote(m, c, &f, 0);
		}
	}
	if (rc == 0)
		rc = gallery_add(m, c, &f, dir->ino);
	if (rc == 0)
		rc = meta_find_ino(m, c, ino, out);
	TX_END(m, c, rc);
}

int meta_file_collection(struct meta *m, uint64_t ino, char *name, size_t len)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s };
	PGconn *c = meta_conn_get(m);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	u64s(ino_s, sizeof(ino_s), ino);
	rc = meta_exec(c, "collection of file",
		       "SELECT uc.name FROM memory_items i JOIN user_library l ON l.memory_id = i.memory_id"
		       " JOIN user_collections uc ON uc.id = l.collection_id WHERE i.user_id = $1 AND i.ino = $2",
		       2, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	rc = PQntuples(r) ? 0 : -ENODATA;
	if (rc == 0)
		snprintf(name, len, "%s", meta_val(r, 0, 0));
	PQclear(r);
	return rc;
}

int meta_file_set_collection(struct meta *m, uint64_t ino, const char *name)
{
	struct meta_folder coll;
	struct meta_file f;
	PGresult *r;

	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find_ino(m, c, ino, &f);
	if (rc == 0 && strcmp(f.lifecycle_status, "active") != 0)
		rc = -EPERM;
	if (rc == 0 && name)
		rc = meta_find_folder(m, c, META_PLACE_COLLECTION, name, &coll);
	if (rc == 0) {
		const char *p[] = { f.memory_id };

		rc = meta_exec(c, "in library?", "SELECT 1 FROM user_library WHERE memory_id = $1", 1, p, &r);
		if (rc == 0) {
			rc = PQntuples(r) ? 0 : -EPERM;
			PQclear(r);
		}
	}
	if (rc == 0)
		rc = collection_set(c, &f, name ? coll.ino : 0);
	TX_END(m, c, rc);
}

int meta_file_setattr(struct meta *m, uint64_t ino, unsigned flags, uint32_t mode,
		      const struct timespec *mtime)
{
	char ino_s[24], mode_s[16], sec_s[24], nsec_s[16];
	const char *p[] = { m->user_id, ino_s, (flags & META_SET_MODE) ? mode_s : NULL,
			    (flags & META_SET_MTIME) ? sec_s : NULL, (flags & META_SET_MTIME) ? nsec_s : NULL };
	PGconn *c;
	PGresult *r;
	int rc;

	u64s(ino_s, sizeof(ino_s), ino);
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	if (mtime) {
		snprintf(sec_s, sizeof(sec_s), "%lld", (long long)mtime->tv_sec);
		snprintf(nsec_s, sizeof(nsec_s), "%ld", mtime->tv_nsec);
	}
	c = meta_conn_get(m);
	if (!c)
		return -EIO;
	rc = meta_exec(c, "set attributes",
		       "UPDATE memory_items SET mode = coalesce($3::integer, mode),"
		       " mtime = coalesce(to_timestamp($4::bigint), mtime),"
		       " mtime_nsec = coalesce($5::integer, mtime_nsec)"
		       " WHERE user_id = $1 AND ino = $2 RETURNING id", 5, p, &r);
	if (rc == 0) {
		rc = PQntuples(r) ? 0 : -ENOENT;
		PQclear(r);
	}
	meta_conn_put(m, c);
	return rc;
}

/* --- collections and galleries ------------------------------------------- */

static const char *folder_table(enum meta_place place)
{
	return place == META_PLACE_COLLECTION ? "user_collections" : "galleries";
}

/* How many files folder F shows. */
static int folder_count(struct meta *m, PGconn *c, const struct meta_folder *f, long *n)
{
	const char *p[] = { f->id };
	PGresult *r;
	int rc;

	rc = meta_exec(c, "folder count",
		       f->place == META_PLACE_COLLECTION
		       ? "SELECT count(*) FROM user_library x JOIN memory_items i ON i.memory_id = x.memory_id"
			 " JOIN memory_assets a ON a.id = i.primary_asset_id"
			 " WHERE x.collection_id = $1 AND a.lifecycle_status = 'active'"
		       : "SELECT count(*) FROM gallery_items x JOIN memory_items i ON i.memory_id = x.memory_id"
			 " JOIN memory_assets a ON a.id = i.primary_asset_id"
			 " WHERE x.gallery_id = $1 AND a.lifecycle_status = 'active'", 1, p, &r);
	if (rc)
		return rc;
	*n = (long)meta_u64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* Deletes folder F, which shows no file: the rows of files in the trash
 * let go of it. */
static int folder_delete(PGconn *c, const struct meta_folder *f)
{
	const char *p[] = { f->id };
	int rc = 0;

	if (f->place == META_PLACE_COLLECTION)
		rc = meta_exec(c, "empty collection",
			       "UPDATE user_library SET collection_id = NULL WHERE collection_id = $1", 1, p, NULL);
	if (rc == 0)
		rc = meta_exec(c, "delete folder",
			       f->place == META_PLACE_COLLECTION ? "DELETE FROM user_collections WHERE id = $1"
								 : "DELETE FROM galleries WHERE id = $1",
			       1, p, NULL);
	return rc;
}

int meta_folder_create(struct meta *m, enum meta_place place, const char *name, struct meta_folder *out)
{
	char sql[256];
	const char *p[] = { m->user_id, name };

	if (place != META_PLACE_COLLECTION && place != META_PLACE_GALLERY)
		return -EPERM;
	snprintf(sql, sizeof(sql), "INSERT INTO %s (user_id, name) VALUES ($1, $2)", folder_table(place));
	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_exec(c, "create folder", sql, 2, p, NULL);
	if (rc == 0)
		rc = meta_find_folder(m, c, place, name, out);
	TX_END(m, c, rc);
}

int meta_folder_remove(struct meta *m, enum meta_place place, const char *name)
{
	struct meta_folder f;
	long n = 0;

	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find_folder(m, c, place, name, &f);
	if (rc == 0)
		rc = folder_count(m, c, &f, &n);
	if (rc == 0 && n > 0)
		rc = -ENOTEMPTY;
	if (rc == 0)
		rc = folder_delete(c, &f);
	TX_END(m, c, rc);
}

int meta_folder_rename(struct meta *m, enum meta_place place, const char *name, const char *newname,
		       unsigned flags)
{
	struct meta_folder f, target;
	char sql[256];
	long n = 0;

	snprintf(sql, sizeof(sql), "UPDATE %s SET name = $2 WHERE id = $1", folder_table(place));
	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find_folder(m, c, place, name, &f);
	if (rc == 0 && strcmp(name, newname) != 0) {
		rc = meta_find_folder(m, c, place, newname, &target);
		if (rc == 0) {
			/* POSIX: a folder may replace an empty one */
			if (flags & META_MOVE_NOREPLACE)
				rc = -EEXIST;
			else if ((rc = folder_count(m, c, &target, &n)) == 0)
				rc = n > 0 ? -ENOTEMPTY : folder_delete(c, &target);
		} else if (rc == -ENOENT) {
			rc = 0;
		}
		if (rc == 0) {
			const char *p[] = { f.id, newname };

			rc = meta_exec(c, "rename folder", sql, 2, p, NULL);
		}
	}
	TX_END(m, c, rc);
}

/* --- for the background jobs (meta_jobs_internal.h) ---------------------- */

/* The commit path's blob reference, for variants and server-side hashes:
 * the same dedup as a file's own content. */
int meta_ns_blob_ref(PGconn *c, const struct meta_content *ct, char blob_id[META_UUID_LEN + 1])
{
	return blob_ref(c, ct, blob_id);
}

/* The unlink path's tombstone of a whole file, for workspace expiry: on
 * the caller's connection and transaction, acting for USER_ID. */
int meta_ns_tombstone(PGconn *c, const char *user_id, const char *asset_id, const char *memory_id)
{
	struct meta m = { 0 };
	struct meta_file f = { 0 };

	snprintf(m.user_id, sizeof(m.user_id), "%s", user_id);
	snprintf(f.asset_id, sizeof(f.asset_id), "%s", asset_id);
	snprintf(f.memory_id, sizeof(f.memory_id), "%s", memory_id);
	return tombstone_file(&m, c, &f);
}
