/*
 * meta_versions.c - the versions of a file's content: recorded at close
 * (staged, uploading), when their upload lands (blob referenced, completed),
 * replaced by a newer one (kept in the trash for the grace period, unless
 * it was current only briefly), and the lifecycle moves every tombstone and
 * restore goes through.
 *
 * Copy on write: a new version is a new original asset of the same memory
 * item; the item's primary_asset_id names the current one.  A replaced
 * version keeps its asset row, tombstoned, with an inode number of its own
 * (version_ino) while the trash shows it.  One that was current for less
 * than version_min_age seconds (an editor's autosave, a file written over
 * and over) is tombstoned with its grace period already over: the deletion
 * job takes its bytes at the next sweep, so saving a file 1,000 times does
 * not keep 1,000 copies for 30 days.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define u64s meta_u64s
/* --- lifecycle ----------------------------------------------------------- */

static int release_blob(PGconn *c, const char *asset_id, const char *blob_id);

/* Moves asset ASSET_ID between lifecycles: active -> tombstoned
 * (TO_ACTIVE 0) or back (1); BLOB_ID receives its blob, "" when it has none
 * or was not in the first state. */
int meta_set_lifecycle(PGconn *c, const char *asset_id, int to_active, char blob_id[META_UUID_LEN + 1])
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
int meta_tombstone_asset(PGconn *c, const char *asset_id)
{
	char blob_id[META_UUID_LEN + 1];
	int rc = meta_set_lifecycle(c, asset_id, 0, blob_id);

	if (rc || !blob_id[0])
		return rc;
	return release_blob(c, asset_id, blob_id);
}

/* Drops the reference asset ASSET_ID held on blob BLOB_ID: a blob left with
 * none gets a row in the deletion outbox. */
static int release_blob(PGconn *c, const char *asset_id, const char *blob_id)
{
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


int meta_retire_version(struct meta *m, PGconn *c, const char *asset_id, uint64_t ino)
{
	char age_s[16], days_s[16], ino_s[24], blob_id[META_UUID_LEN + 1];
	const char *p[] = { asset_id, age_s, days_s, ino ? ino_s : NULL };
	PGresult *r;
	int rc;

	snprintf(age_s, sizeof(age_s), "%d", m->version_min_age);
	snprintf(days_s, sizeof(days_s), "%d", m->trash_days);
	u64s(ino_s, sizeof(ino_s), ino);
	rc = meta_exec(c, "retire version",
		       "UPDATE memory_assets SET lifecycle_status = 'tombstoned',"
		       "   tombstoned_at = CASE WHEN created_at > now() - make_interval(secs => $2::integer)"
		       "     THEN mvault_now() - make_interval(days => $3::integer, secs => 1) ELSE mvault_now() END,"
		       "   version_ino = coalesce($4::bigint, nextval('fs_ino_seq'))"
		       " WHERE id = $1 AND lifecycle_status = 'active' RETURNING coalesce(blob_id::text, '')",
		       4, p, &r);
	if (rc)
		return rc;
	blob_id[0] = '\0';
	if (PQntuples(r) > 0)
		snprintf(blob_id, sizeof(blob_id), "%s", meta_val(r, 0, 0));
	PQclear(r);
	return blob_id[0] ? release_blob(c, asset_id, blob_id) : 0;
}

/* --- staged and uploaded -------------------------------------------------- */


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
			const char *q[] = { cur->item_id, new_asset };

			snprintf(new_asset, sizeof(new_asset), "%s", meta_val(r, 0, 0));
			PQclear(r);
			/* the new one current first: the old one then leaves no folder */
			rc = meta_exec(c, "switch primary asset",
				       "UPDATE memory_items SET primary_asset_id = $2 WHERE id = $1", 2, q, NULL);
		}
		if (rc == 0)
			rc = meta_retire_version(m, c, cur->asset_id, 0);
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

/* --- for the background jobs (meta_jobs_internal.h) ---------------------- */

/* The commit path's blob reference, for variants and server-side hashes:
 * the same dedup as a file's own content. */
int meta_ns_blob_ref(PGconn *c, const struct meta_content *ct, char blob_id[META_UUID_LEN + 1])
{
	return blob_ref(c, ct, blob_id);
}
