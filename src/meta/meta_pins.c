/*
 * meta_pins.c - storage presence per backend and pins ("store forever"):
 * the mount's reads and changes (meta.h) and the database side of the
 * store_copy and store_drop jobs (meta_jobs.h).
 *
 * Every mount call is one statement: a pin is mvfs_pin_set, which writes
 * the pins, marks edges and enqueues jobs server-side; a presence is one
 * SELECT of a view (0027_storage_edges.sql).  Each job step is one
 * transaction acting for the job's user that also ends its job, so a crash
 * leaves the step undone or done with its job completed.
 *
 * DESIGN (keys): the objects of a copy are named by the worker from the
 * user's key prefix (users.key_prefix, which its user cannot change) and
 * the hash or the memory id the database gives, never from an edge's
 * location, which its user may write: a drop cannot be pointed at someone
 * else's object.
 */
#include "meta/meta_jobs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* --- the mount's side ---------------------------------------------------- */

int meta_pin_set(struct meta *m, uint64_t ino, const char *const *labels, int n)
{
	char ino_s[24], arr[256] = "{";
	const char *p[] = { m->user_id, ino_s, arr };
	PGresult *r;
	int rc;

	for (int i = 0; i < n; i++) {
		size_t len = strlen(arr);

		if (len + strlen(labels[i]) + 3 > sizeof(arr))
			return -E2BIG;
		snprintf(arr + len, sizeof(arr) - len, "%s%s", i ? "," : "", labels[i]);
	}
	strcat(arr, "}");
	meta_u64s(ino_s, sizeof(ino_s), ino);
	rc = meta_call(m, "set pins", "SELECT mvfs_pin_set($1, $2, $3::backend_t[])", 3, p, &r);
	if (rc)
		return rc;
	rc = (int)strtol(meta_val(r, 0, 0), NULL, 10);
	PQclear(r);
	return rc;
}

ssize_t meta_pin_get(struct meta *m, uint64_t ino, void *buf, size_t size)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s };
	PGresult *r;
	size_t len;
	int rc;

	meta_u64s(ino_s, sizeof(ino_s), ino);
	rc = META_ON_CONN(m, c, meta_exec(c, "read pins", "SELECT mvfs_pin_get($1, $2)", 2, p, &r));
	if (rc)
		return rc;
	if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return -ENODATA;
	}
	len = strlen(meta_val(r, 0, 0));
	if (size && size < len) {
		PQclear(r);
		return -ERANGE;
	}
	if (size)
		memcpy(buf, meta_val(r, 0, 0), len);
	PQclear(r);
	return (ssize_t)len;
}

int meta_presence(struct meta *m, uint64_t ino, int gallery, struct meta_presence *out, int max)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s };
	PGresult *r;
	int rc, n;

	meta_u64s(ino_s, sizeof(ino_s), ino);
	if (gallery)
		rc = META_ON_CONN(m, c, meta_exec(c, "read gallery presence",
			"SELECT backend, pinned, total_memories, present_memories, migrating_memories,"
			" failed_memories, bytes_left FROM gallery_backend_presence"
			" WHERE gallery_id = (SELECT g.id FROM galleries g WHERE g.ino = $2 AND g.user_id = $1)"
			" ORDER BY backend", 2, p, &r));
	else
		rc = META_ON_CONN(m, c, meta_exec(c, "read presence",
			"SELECT backend, pinned, meta_present, asset_present, sync_state, coalesce(sync_error, '')"
			" FROM memory_backend_presence"
			" WHERE memory_id = (SELECT i.memory_id FROM memory_items i WHERE i.ino = $2 AND i.user_id = $1)"
			" ORDER BY backend", 2, p, &r));
	if (rc)
		return rc;
	n = PQntuples(r) < max ? PQntuples(r) : max;
	for (int i = 0; i < n; i++) {
		struct meta_presence *o = &out[i];

		memset(o, 0, sizeof(*o));
		META_COPY(o->backend, r, i, 0);
		o->pinned = strcmp(meta_val(r, i, 1), "t") == 0;
		if (gallery) {
			o->total = meta_u64(r, i, 2);
			o->present = meta_u64(r, i, 3);
			o->migrating = meta_u64(r, i, 4);
			o->failed = meta_u64(r, i, 5);
			o->bytes_left = meta_u64(r, i, 6);
		} else {
			o->meta_present = strcmp(meta_val(r, i, 2), "t") == 0;
			o->asset_present = strcmp(meta_val(r, i, 3), "t") == 0;
			META_COPY(o->sync_state, r, i, 4);
			META_COPY(o->sync_error, r, i, 5);
		}
	}
	PQclear(r);
	return n;
}

int meta_pin_progress(struct meta *m, struct meta_pin_progress *out, int max)
{
	PGresult *r;
	int rc, n;

	/* ix_edges_sync_state: only edges being copied or failed are read;
	 * row-level security keeps them the user's.  The pace: the bytes
	 * copied to that backend in the last 10 minutes (its present edges,
	 * through ix_edges_backend_present: a pin store's, never the primary's,
	 * which is not copying), over the time since the first of them. */
	rc = META_ON_CONN(m, c, meta_exec(c, "read pin progress",
		"SELECT g.backend, g.copying, g.bytes, g.failed,"
		" coalesce(d.bytes, 0), coalesce(extract(epoch FROM now() - d.since), 0)::bigint"
		" FROM (SELECT backend, count(*) FILTER (WHERE sync_state = 'migrating') AS copying,"
		"   coalesce(sum(size_bytes) FILTER (WHERE sync_state = 'migrating'), 0) AS bytes,"
		"   count(*) FILTER (WHERE sync_state = 'failed') AS failed"
		"   FROM storage_edges WHERE sync_state IN ('migrating', 'failed') AND artifact = 'asset'"
		"   GROUP BY backend) g"
		" LEFT JOIN LATERAL (SELECT sum(e.size_bytes) AS bytes, min(e.last_synced_at) AS since"
		"   FROM storage_edges e WHERE e.backend = g.backend AND e.artifact = 'asset' AND e.present"
		"   AND e.sync_state = 'idle' AND e.last_synced_at > now() - interval '10 minutes') d ON g.copying > 0"
		" ORDER BY g.backend", 0, NULL, &r));
	if (rc)
		return rc;
	n = PQntuples(r) < max ? PQntuples(r) : max;
	for (int i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		META_COPY(out[i].backend, r, i, 0);
		out[i].copying = meta_u64(r, i, 1);
		out[i].bytes_left = meta_u64(r, i, 2);
		out[i].failed = meta_u64(r, i, 3);
		out[i].recent_bytes = meta_u64(r, i, 4);
		out[i].recent_secs = meta_u64(r, i, 5);
	}
	PQclear(r);
	return n;
}

/* --- store_copy ---------------------------------------------------------- */

int meta_jobs_pin_source(struct meta_jobs *q, const struct meta_job *j, struct meta_pin_copy *out)
{
	const char *p[] = { j->subject, j->backend, j->sha256 };
	PGconn *c;
	PGresult *r;
	int rc;

	if (!j->subject[0])
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	if (rc == 0)
		rc = meta_exec(c, "read pinned content",
			       "SELECT m.id, coalesce(a.content_hash, ''), coalesce(u.key_prefix, ''), a.mime_type,"
			       " m.type, to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
			       " a.bytes, CASE WHEN NOT mvault_pinned(m.id, $2::backend_t) THEN 'no longer pinned there'"
			       "   WHEN a.content_hash IS DISTINCT FROM $3 THEN 'its content changed since'"
			       "   WHEN a.upload_status <> 'completed' OR a.blob_id IS NULL OR a.lifecycle_status = 'deleted'"
			       "   THEN 'its content is not in the store' ELSE '' END"
			       " FROM memories m JOIN users u ON u.id = m.user_id"
			       " JOIN memory_items i ON i.memory_id = m.id JOIN memory_assets a ON a.id = i.primary_asset_id"
			       " WHERE m.id = $1 LIMIT 1", 3, p, &r);
	if (rc == 0) {
		if (PQntuples(r) == 0) {
			rc = -ENOENT;
		} else {
			META_COPY(out->memory_id, r, 0, 0);
			META_COPY(out->sha256, r, 0, 1);
			META_COPY(out->key_prefix, r, 0, 2);
			META_COPY(out->mime, r, 0, 3);
			META_COPY(out->type, r, 0, 4);
			META_COPY(out->created_at, r, 0, 5);
			out->size = meta_u64(r, 0, 6);
			META_COPY(out->why, r, 0, 7);
			out->ready = !out->why[0];
		}
		PQclear(r);
	}
	if (rc == 0 && out->ready)
		rc = meta_exec(c, "mark copying",
			       "UPDATE storage_edges SET sync_state = 'migrating', sync_error = NULL"
			       " WHERE memory_id = $1 AND backend = $2::backend_t AND sync_state = 'failed'", 2, p, NULL);
	return meta_tx_end(c, rc);
}

int meta_jobs_pin_copied(struct meta_jobs *q, const struct meta_job *j, const struct meta_pin_copy *cp,
			 const char *asset_key, const char *meta_key)
{
	char size[24];
	const char *p[] = { cp->memory_id, j->backend, cp->sha256, size, asset_key, meta_key };
	PGconn *c;
	PGresult *r;
	int rc;

	meta_u64s(size, sizeof(size), cp->size);
	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	/* the edges are written only while the copy is of the current
	 * content (the memory's row locked: a new version waits); a copy no
	 * pin holds any more is a copy there all the same, then dropped */
	if (rc == 0)
		rc = meta_exec(c, "record copy",
			"WITH cur AS (SELECT m.id, m.type FROM memories m JOIN memory_items i ON i.memory_id = m.id"
			"   JOIN memory_assets a ON a.id = i.primary_asset_id"
			"   WHERE m.id = $1 AND a.content_hash = $3 FOR UPDATE OF m),"
			" e AS (INSERT INTO storage_edges AS e (memory_id, memory_type, artifact, backend, present, location,"
			"   content_hash, size_bytes, sync_state, last_synced_at)"
			"   SELECT cur.id, cur.type, x.artifact, $2::backend_t, true, x.loc, x.sha, x.size, 'idle', now()"
			"   FROM cur, (VALUES ('asset'::artifact_t, $5, $3, $4::bigint),"
			"                     ('metadata'::artifact_t, $6, NULL, NULL)) x (artifact, loc, sha, size)"
			"   ON CONFLICT (memory_id, memory_type, artifact, backend) DO UPDATE"
			"     SET present = true, location = EXCLUDED.location, content_hash = EXCLUDED.content_hash,"
			"         size_bytes = EXCLUDED.size_bytes, sync_state = 'idle', sync_error = NULL,"
			"         last_synced_at = now()"
			"   RETURNING 1)"
			" SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM cur) > 0 AND NOT mvault_pinned($1, $2::backend_t)",
			6, p, &r);
	if (rc == 0) {
		int unpinned = strcmp(meta_val(r, 0, 1), "t") == 0;

		PQclear(r);
		if (unpinned)
			rc = meta_exec(c, "drop unpinned copy", "SELECT mvault_pin_release($1, $2::backend_t)", 2, p, NULL);
	}
	if (rc == 0)
		rc = meta_jobs_complete_on(q, c, j, NULL);
	return meta_tx_end(c, rc);
}

int meta_jobs_pin_failed(struct meta_jobs *q, const struct meta_job *j, const char *why, int permanent)
{
	const char *p[] = { j->subject, j->backend, why };
	PGconn *c;
	int rc, final = 0;

	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	if (rc == 0 && j->subject[0])
		rc = meta_exec(c, "record failed copy",
			       "UPDATE storage_edges SET sync_state = 'failed', sync_error = left($3, 500)"
			       " WHERE memory_id = $1 AND backend = $2::backend_t AND sync_state <> 'idle'", 3, p, NULL);
	if (rc == 0) {
		final = meta_jobs_fail_on(q, c, j, why, permanent);
		rc = final < 0 ? final : 0;
	}
	rc = meta_tx_end(c, rc);
	return rc ? rc : final;
}

/* --- store_drop ---------------------------------------------------------- */

int meta_jobs_pin_drop(struct meta_jobs *q, const struct meta_job *j, meta_jobs_drop_fn drop, void *arg,
		       char *note, size_t notelen)
{
	char mem[META_UUID_LEN + 1] = "", sha[65] = "", prefix[META_UUID_LEN + 4] = "";
	const char *p[] = { j->subject, j->backend };
	PGconn *c;
	PGresult *r;
	int rc, go = 0, shared = 0;

	snprintf(note, notelen, "skipped: nothing of that memory is on %s", j->backend);
	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	/* the edges locked: a pin made again meanwhile waits for this, then
	 * finds them gone and copies afresh */
	if (rc == 0 && j->subject[0])
		rc = meta_exec(c, "lock copy",
			"SELECT m.id, coalesce(e.content_hash, ''), coalesce(u.key_prefix, ''),"
			" mvault_pinned(m.id, $2::backend_t),"
			" e.content_hash IS NOT NULL AND EXISTS (SELECT 1 FROM storage_edges o"
			"   WHERE o.backend = e.backend AND o.artifact = 'asset' AND o.content_hash = e.content_hash"
			"     AND o.memory_id <> m.id AND mvault_pinned(o.memory_id, o.backend))"
			" FROM storage_edges e JOIN memories m ON m.id = e.memory_id JOIN users u ON u.id = m.user_id"
			" WHERE e.memory_id = $1 AND e.backend = $2::backend_t AND e.artifact = 'asset'"
			" FOR UPDATE OF e", 2, p, &r);
	if (rc == 0 && j->subject[0]) {
		if (PQntuples(r) > 0) {
			META_COPY(mem, r, 0, 0);
			META_COPY(sha, r, 0, 1);
			META_COPY(prefix, r, 0, 2);
			if (strcmp(meta_val(r, 0, 3), "t") == 0)
				snprintf(note, notelen, "skipped: pinned to %s again", j->backend);
			else
				go = 1;
			shared = strcmp(meta_val(r, 0, 4), "t") == 0;
		}
		PQclear(r);
	}
	if (rc == 0 && go) {
		rc = drop(arg, j->backend, prefix, shared || !sha[0] ? NULL : sha, mem);
		if (rc)
			snprintf(note, notelen, "cannot drop the copy of %s from %s: %s", mem, j->backend, strerror(-rc));
	}
	if (rc == 0 && go) {
		rc = meta_exec(c, "forget copy", "DELETE FROM storage_edges WHERE memory_id = $1 AND backend = $2::backend_t",
			       2, p, NULL);
		snprintf(note, notelen, "dropped the copy of memory %s from %s%s", mem, j->backend,
			 shared ? " (its bytes stay: another pinned memory has them there)" : "");
	}
	if (rc == 0)
		rc = meta_jobs_complete_on(q, c, j, note);
	return meta_tx_end(c, rc);
}
