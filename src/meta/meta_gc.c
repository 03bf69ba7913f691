/*
 * meta_gc.c - the database side of the jobs that keep the data model's
 * deferred promises: deletion after the grace period, expiry of pending
 * memories and of workspace files, hashes for content that came without.
 *
 * Each step is one transaction acting for the job's user, and completes its
 * job in that transaction, so a crash leaves either nothing done or
 * everything done and the job completed.
 *
 * DESIGN (deletion): the outbox row (asset_delete_jobs) names a blob whose
 * ref_count reached zero.  The step locks the blob row, asks
 * mvault_blob_deletable (its assets: legal hold, grace period),
 * mvault_pin_needs (0027: a pin's copy of these bytes not made yet) and
 * mvault_blob_object_kept (0015: the object goes only when it is under
 * its owner's own key and no blob row of any user names it: users made
 * before 0015 share keys; else only the row goes) and only then deletes
 * the object, with the lock still held: a commit of the
 * same bytes (meta_file_commit's blob reference) waits on that lock and,
 * after the blob row is gone, makes a new one for content it uploads
 * again.  The rows are marked deleted and the blob row removed before the
 * commit; a failure after the object went leaves rows that the retry
 * finishes (deleting a missing object succeeds).
 */
#include "meta/meta_jobs_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* --- asset_delete -------------------------------------------------------- */

/* The outbox row of J, locked: 0 with the blob's id, backend and key, or a
 * NOTE and 1 when there is nothing to delete. */
static int outbox_row(PGconn *c, const struct meta_job *j, char blob[META_UUID_LEN + 1],
		      char *note, size_t notelen)
{
	const char *p[] = { j->subject };
	PGresult *r;
	int rc;

	if (!j->subject[0]) {
		snprintf(note, notelen, "skipped: the job names no deletion");
		return 1;
	}
	rc = meta_exec(c, "read deletion",
		       "SELECT status, coalesce(blob_id::text, '') FROM asset_delete_jobs WHERE id = $1 FOR UPDATE",
		       1, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0) {
		snprintf(note, notelen, "skipped: the deletion is gone");
		rc = 1;
	} else if (strcmp(meta_val(r, 0, 0), "pending") != 0) {
		snprintf(note, notelen, "skipped: the deletion is %s", meta_val(r, 0, 0));
		rc = 1;
	} else if (!*meta_val(r, 0, 1)) {
		snprintf(note, notelen, "nothing to delete: the blob went with another deletion");
		rc = meta_exec(c, "deletion done",
			       "UPDATE asset_delete_jobs SET status = 'completed', processed_at = mvault_now()"
			       " WHERE id = $1", 1, p, NULL);
		rc = rc ? rc : 1;
	} else {
		snprintf(blob, META_UUID_LEN + 1, "%s", meta_val(r, 0, 1));
	}
	PQclear(r);
	return rc;
}

int meta_jobs_asset_delete(struct meta_jobs *q, const struct meta_job *j, meta_jobs_delete_fn del, void *arg,
			   char *note, size_t notelen)
{
	char blob[META_UUID_LEN + 1], backend[32] = "", key[META_KEY_MAX] = "", days[16], kept[200] = "";
	const char *p[] = { blob, days };
	const char *d[] = { j->subject };
	PGconn *c;
	PGresult *r;
	int rc, stop = 0;

	snprintf(days, sizeof(days), "%d", q->trash_days);
	note[0] = '\0';
	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	if (rc == 0) {
		rc = outbox_row(c, j, blob, note, notelen);
		stop = rc == 1;
		rc = rc == 1 ? 0 : rc;
	}
	if (rc == 0 && !stop)
		rc = meta_exec(c, "lock blob",
			       "SELECT b.storage_backend, b.storage_key,"
			       " coalesce(mvault_blob_deletable(b.id, $2::integer), mvault_pin_needs(b.id)),"
			       " b.ref_count, mvault_blob_object_kept(b.id) FROM blobs b WHERE b.id = $1 FOR UPDATE",
			       2, p, &r);
	if (rc == 0 && !stop) {
		if (PQntuples(r) == 0) {
			snprintf(note, notelen, "nothing to delete: the blob is gone");
			stop = 1;
		} else if (!PQgetisnull(r, 0, 2)) {
			snprintf(note, notelen, "kept: %s", meta_val(r, 0, 2));
			/* brought back to life: this deletion is over */
			if (strcmp(meta_val(r, 0, 3), "0") != 0)
				rc = meta_exec(c, "cancel deletion",
					       "UPDATE asset_delete_jobs SET status = 'cancelled' WHERE id = $1", 1, d, NULL);
			stop = 1;
		} else {
			snprintf(backend, sizeof(backend), "%s", meta_val(r, 0, 0));
			snprintf(key, sizeof(key), "%s", meta_val(r, 0, 1));
			if (!PQgetisnull(r, 0, 4))
				snprintf(kept, sizeof(kept), "%s", meta_val(r, 0, 4));
		}
		PQclear(r);
	}
	if (rc == 0 && !stop && !kept[0]) {
		rc = del(arg, backend, key);
		if (rc)
			snprintf(note, notelen, "cannot delete '%s' from the store: %s", key, strerror(-rc));
	}
	if (rc == 0 && !stop) {
		/* its memories' edges on the store say it is gone, in the same
		 * statement (0027_storage_edges.sql) */
		rc = meta_exec(c, "forget blob",
			       "WITH gone AS (UPDATE storage_edges e SET present = false, sync_state = 'idle',"
			       "   sync_error = NULL FROM memory_assets a, blobs b"
			       "   WHERE b.id = $1 AND a.blob_id = b.id AND a.lifecycle_status = 'tombstoned'"
			       "     AND e.memory_id = a.memory_id AND e.artifact = 'asset'"
			       "     AND e.backend = b.storage_backend::text::backend_t AND e.content_hash = b.content_hash"
			       "   RETURNING 1)"
			       " SELECT mvault_blob_forget($1)", 1, p, &r);
		if (rc == 0) {
			if (kept[0])
				snprintf(note, notelen, "forgot the blob of %s (%s asset%s), the object stays: %s", key,
					 meta_val(r, 0, 0), strcmp(meta_val(r, 0, 0), "1") == 0 ? "" : "s", kept);
			else
				snprintf(note, notelen, "deleted %s (%s asset%s)", key, meta_val(r, 0, 0),
					 strcmp(meta_val(r, 0, 0), "1") == 0 ? "" : "s");
			PQclear(r);
		}
	}
	if (rc == 0)
		rc = meta_jobs_complete_on(q, c, j, note);
	return meta_tx_end(c, rc);
}

/* --- cleanup_pending ----------------------------------------------------- */

int meta_jobs_cleanup_pending(struct meta_jobs *q, const struct meta_job *j, char *note, size_t notelen)
{
	const char *p[] = { j->subject };
	PGconn *c;
	PGresult *r;
	int rc;

	snprintf(note, notelen, "skipped: the memory is no longer pending past its expiry");
	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	/* The rows its create made go, as meta_file_abort removes them; a
	 * memory with uploaded content is not pending and stays. */
	if (rc == 0 && j->subject[0]) {
		rc = meta_exec(c, "remove expired pending memory",
			       "DELETE FROM memories m WHERE id = $1 AND status = 'pending'"
			       " AND expires_at <= mvault_now()"
			       " AND NOT EXISTS (SELECT 1 FROM memory_assets a WHERE a.memory_id = m.id"
			       "                 AND a.upload_status = 'completed')"
			       " RETURNING coalesce(title, '')", 1, p, &r);
		if (rc == 0) {
			if (PQntuples(r) > 0)
				snprintf(note, notelen, "removed pending memory '%s'", meta_val(r, 0, 0));
			PQclear(r);
		}
	}
	if (rc == 0)
		rc = meta_jobs_complete_on(q, c, j, note);
	return meta_tx_end(c, rc);
}

/* --- workspace_expiry ---------------------------------------------------- */

int meta_jobs_workspace_expire(struct meta_jobs *q, const struct meta_job *j, char *note, size_t notelen)
{
	char asset[META_UUID_LEN + 1] = "", name[256] = "";
	const char *p[] = { j->subject };
	PGconn *c;
	PGresult *r;
	int rc;

	snprintf(note, notelen, "skipped: not an active workspace file past its expiry");
	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	if (rc == 0 && j->subject[0]) {
		rc = meta_exec(c, "read expired workspace file",
			       "SELECT i.primary_asset_id, coalesce(mvault_item_name(i.id), '') FROM workspace_assets w"
			       " JOIN memory_items i ON i.memory_id = w.memory_id"
			       " JOIN memory_assets a ON a.id = i.primary_asset_id"
			       " WHERE w.memory_id = $1 AND w.expires_at <= mvault_now()"
			       "   AND a.lifecycle_status = 'active' AND a.upload_status = 'completed'"
			       " FOR UPDATE OF w", 1, p, &r);
		if (rc == 0) {
			if (PQntuples(r) > 0) {
				snprintf(asset, sizeof(asset), "%s", meta_val(r, 0, 0));
				snprintf(name, sizeof(name), "%s", meta_val(r, 0, 1));
			}
			PQclear(r);
		}
	}
	if (rc == 0 && asset[0])
		rc = meta_ns_tombstone(c, j->user_id, asset, j->subject);
	/* Its place becomes library/: a restore from .trash/ lands there (a
	 * kept file does not go back to being temporary). */
	if (rc == 0 && asset[0])
		rc = meta_exec(c, "workspace row to library",
			       "WITH w AS (DELETE FROM workspace_assets WHERE memory_id = $1"
			       "           RETURNING user_id, memory_id, asset_type, temp_storage_path,"
			       "                     file_size_bytes, mime_type)"
			       " INSERT INTO user_library (user_id, memory_id, asset_type, storage_path,"
			       "   file_size_bytes, mime_type)"
			       " SELECT user_id, memory_id, asset_type, temp_storage_path, file_size_bytes, mime_type"
			       " FROM w ON CONFLICT (memory_id) DO NOTHING", 1, p, NULL);
	if (rc == 0 && asset[0])
		snprintf(note, notelen, "expired workspace file '%s' moved to the trash", name[0] ? name : asset);
	if (rc == 0)
		rc = meta_jobs_complete_on(q, c, j, note);
	return meta_tx_end(c, rc);
}

/* --- content_hash_compute ------------------------------------------------ */

int meta_jobs_unhashed(struct meta_jobs *q, const struct meta_job *j, struct meta_unhashed *out)
{
	const char *p[] = { j->subject };
	PGconn *c;
	PGresult *r;
	int rc;

	if (!j->subject[0])
		return -ENOENT;
	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	if (rc == 0)
		rc = meta_exec(c, "read unhashed asset",
			       "SELECT id, coalesce(storage_backend::text, ''), coalesce(storage_key, ''), mime_type, bytes,"
			       " content_hash IS NULL AND upload_status = 'completed' AND lifecycle_status = 'active'"
			       "   AND storage_key IS NOT NULL,"
			       " (SELECT coalesce(u.key_prefix, '') FROM memories m JOIN users u ON u.id = m.user_id"
			       "   WHERE m.id = memory_id)"
			       " FROM memory_assets WHERE id = $1", 1, p, &r);
	if (rc == 0) {
		if (PQntuples(r) == 0) {
			rc = -ENOENT;
		} else {
			memset(out, 0, sizeof(*out));
			snprintf(out->asset_id, sizeof(out->asset_id), "%s", meta_val(r, 0, 0));
			snprintf(out->backend, sizeof(out->backend), "%s", meta_val(r, 0, 1));
			snprintf(out->key, sizeof(out->key), "%s", meta_val(r, 0, 2));
			snprintf(out->mime, sizeof(out->mime), "%s", meta_val(r, 0, 3));
			out->size = meta_u64(r, 0, 4);
			out->ready = strcmp(meta_val(r, 0, 5), "t") == 0;
			snprintf(out->key_prefix, sizeof(out->key_prefix), "%s", meta_val(r, 0, 6));
		}
		PQclear(r);
	}
	return meta_tx_end(c, rc);
}

int meta_jobs_hash_done(struct meta_jobs *q, const struct meta_job *j, const struct meta_unhashed *u,
			const char *sha256, const char *backend, const char *key)
{
	char blob_id[META_UUID_LEN + 1];
	const char *p[] = { u->asset_id };
	const char *note = NULL;
	PGconn *c;
	PGresult *r;
	int rc;

	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	if (rc == 0)
		rc = meta_exec(c, "lock unhashed asset",
			       "SELECT content_hash IS NULL AND lifecycle_status = 'active'"
			       " FROM memory_assets WHERE id = $1 FOR UPDATE", 1, p, &r);
	if (rc == 0) {
		if (PQntuples(r) == 0 || strcmp(meta_val(r, 0, 0), "t") != 0)
			note = "skipped: the asset changed meanwhile";
		PQclear(r);
	}
	if (rc == 0 && !note) {
		struct meta_content ct = {
			.sha256 = sha256, .size = u->size, .mime = u->mime, .memory_type = "document",
			.backend = backend, .key = key,
		};

		rc = meta_ns_blob_ref(c, &ct, blob_id);
	}
	if (rc == 0 && !note) {
		const char *s[] = { u->asset_id, sha256, blob_id, backend, key };

		rc = meta_exec(c, "record hash",
			       "UPDATE memory_assets SET content_hash = $2, computed_by = 'server', blob_id = $3,"
			       " storage_backend = $4::storage_backend_t, storage_key = $5 WHERE id = $1", 5, s, NULL);
	}
	if (rc == 0 && !note)
		rc = meta_exec(c, "enqueue variants",
			       "SELECT mvault_job_enqueue('process_assets',"
			       "  jsonb_build_object('originalAssetId', a.id, 'recipeVersion', 'v1'), m.user_id)"
			       " FROM memory_assets a JOIN memories m ON m.id = a.memory_id"
			       " WHERE a.id = $1 AND a.variant_of_asset_id IS NULL AND a.mime_type LIKE 'image/%'",
			       1, p, NULL);
	if (rc == 0)
		rc = meta_jobs_complete_on(q, c, j, note);
	return meta_tx_end(c, rc);
}
