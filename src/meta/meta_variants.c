/*
 * meta_variants.c - display and thumb variants: what a process_assets job
 * records, and what the mount reads to show .display/ and .thumb/.
 *
 * Rows as seed 000 models them: a variant is a memory_assets row in the
 * original's memory, item and group (group_id = the original's), with
 * variant_of_asset_id, variant_type, recipe_version, transform_spec, its
 * own blob (the same content-addressed store and ref_count as originals),
 * and width/height/megapixels set in the statement that sets
 * processing_status 'completed' (the schema's check wants them together).
 *
 * DESIGN: recording takes the original's row lock first.  Unlink and
 * restore take the same lock when they tombstone or restore an original
 * with its variants (meta_ns.c), so variants are never added to an original
 * that is leaving, and a tombstone never misses a variant being added.
 */
#include "meta/meta_jobs_internal.h"
#include "meta/meta_variants.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"


/* --- process_assets: the worker's side ----------------------------------- */

int meta_jobs_original(struct meta_jobs *q, const struct meta_job *j, struct meta_original *out)
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
		rc = meta_exec(c, "read original",
			       "SELECT a.id, a.memory_id, coalesce(a.content_hash, ''), coalesce(a.storage_key, ''),"
			       " a.mime_type, coalesce(mvault_item_name(a.memory_item_id), ''), a.bytes,"
			       " a.lifecycle_status = 'active' AND a.upload_status = 'completed'"
			       "   AND a.content_hash IS NOT NULL AND a.variant_of_asset_id IS NULL,"
			       " EXISTS (SELECT 1 FROM memory_assets v WHERE v.variant_of_asset_id = a.id),"
			       " (SELECT coalesce(u.key_prefix, '') FROM memories m JOIN users u ON u.id = m.user_id"
			       "   WHERE m.id = a.memory_id)"
			       " FROM memory_assets a WHERE a.id = $1", 1, p, &r);
	if (rc == 0) {
		if (PQntuples(r) == 0) {
			rc = -ENOENT;
		} else {
			memset(out, 0, sizeof(*out));
			META_COPY(out->asset_id, r, 0, 0);
			META_COPY(out->memory_id, r, 0, 1);
			META_COPY(out->sha256, r, 0, 2);
			META_COPY(out->key, r, 0, 3);
			META_COPY(out->mime, r, 0, 4);
			META_COPY(out->name, r, 0, 5);
			out->size = meta_u64(r, 0, 6);
			out->ready = strcmp(meta_val(r, 0, 7), "t") == 0;
			out->done = strcmp(meta_val(r, 0, 8), "t") == 0;
			META_COPY(out->key_prefix, r, 0, 9);
		}
		PQclear(r);
	}
	if (rc == 0 && out->ready && !out->done)
		rc = meta_exec(c, "mark processing",
			       "UPDATE memory_assets SET processing_status = 'processing'"
			       " WHERE id = $1 AND processing_status <> 'completed'", 1, p, NULL);
	return meta_tx_end(c, rc);
}

/* The memory's status from its assets, as seed 000 derives it: pending
 * while an asset is pending or uploading, active with one uploaded asset
 * and none pending, failed when none made it.  Tombstoned and deleted
 * memories keep their status. */
static int memory_derive(PGconn *c, const char *memory_id)
{
	const char *p[] = { memory_id };

	return meta_exec(c, "derive memory status",
			 "UPDATE memories m SET (status, expires_at) = (SELECT d.s,"
			 "   CASE WHEN d.s = 'pending' THEN m.expires_at END FROM (SELECT CASE"
			 "   WHEN EXISTS (SELECT 1 FROM memory_assets a WHERE a.memory_id = m.id"
			 "     AND a.lifecycle_status = 'active' AND a.upload_status IN ('pending', 'uploading'))"
			 "     THEN 'pending'"
			 "   WHEN EXISTS (SELECT 1 FROM memory_assets a WHERE a.memory_id = m.id"
			 "     AND a.lifecycle_status = 'active' AND a.upload_status = 'completed') THEN 'active'"
			 "   ELSE 'failed' END::memory_status_t AS s) d)"
			 " WHERE m.id = $1 AND m.status IN ('pending', 'active', 'failed')", 1, p, NULL);
}

static int variant_insert(PGconn *c, const struct meta_original *o, const struct meta_variant_new *v,
			  const char *blob_id, const char *recipe, const char *spec)
{
	char size_s[24], w_s[16], h_s[16];
	const char *p[] = { o->asset_id, v->type, blob_id, v->backend, v->key, size_s, v->mime, v->sha256,
			    w_s, h_s, recipe, spec };

	snprintf(size_s, sizeof(size_s), "%" PRIu64, v->size);
	snprintf(w_s, sizeof(w_s), "%d", v->width);
	snprintf(h_s, sizeof(h_s), "%d", v->height);
	return meta_exec(c, "add variant",
			 "INSERT INTO memory_assets (memory_id, memory_item_id, group_id, asset_type,"
			 "  variant_of_asset_id, variant_type, blob_id, storage_backend, storage_key, bytes, mime_type,"
			 "  content_hash, computed_by, upload_status, processing_status, width, height, megapixels,"
			 "  color_space, recipe_version, transform_spec)"
			 " SELECT memory_id, memory_item_id, group_id, $2, id, $2, $3, $4::storage_backend_t, $5, $6,"
			 "  $7, $8, 'server', 'completed', 'completed', $9::integer, $10::integer,"
			 "  round($9::numeric * $10::numeric / 1000000), 'srgb', $11, $12::jsonb"
			 " FROM memory_assets WHERE id = $1", 12, p, NULL);
}

int meta_jobs_variants_done(struct meta_jobs *q, const struct meta_job *j, const struct meta_original *o,
			    const struct meta_processed *pr)
{
	char w_s[16], h_s[16];
	const char *p[] = { o->asset_id, w_s, h_s, pr->color_space };
	const char *note = NULL;
	PGconn *c;
	PGresult *r;
	int rc;

	snprintf(w_s, sizeof(w_s), "%d", pr->width);
	snprintf(h_s, sizeof(h_s), "%d", pr->height);
	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	if (rc == 0)
		rc = meta_exec(c, "lock original",
			       "SELECT a.lifecycle_status = 'active',"
			       " EXISTS (SELECT 1 FROM memory_assets v WHERE v.variant_of_asset_id = a.id)"
			       " FROM memory_assets a WHERE a.id = $1 FOR UPDATE", 1, p, &r);
	if (rc == 0) {
		if (PQntuples(r) == 0)
			note = "skipped: the original is gone";
		else if (strcmp(meta_val(r, 0, 0), "t") != 0)
			note = "skipped: the original was removed meanwhile";
		else if (strcmp(meta_val(r, 0, 1), "t") == 0)
			note = "skipped: another worker made the variants first";
		PQclear(r);
	}
	if (rc == 0 && note && strstr(note, "removed"))
		/* pending again: a restore lets the sweep make them */
		rc = meta_exec(c, "original pending again",
			       "UPDATE memory_assets SET processing_status = 'pending'"
			       " WHERE id = $1 AND processing_status = 'processing'", 1, p, NULL);
	for (int i = 0; rc == 0 && !note && i < pr->nvariants; i++) {
		const struct meta_variant_new *v = &pr->variants[i];
		struct meta_content ct = {
			.sha256 = v->sha256, .size = v->size, .mime = v->mime, .memory_type = "image",
			.backend = v->backend, .key = v->key,
		};
		char blob_id[META_UUID_LEN + 1];

		rc = meta_ns_blob_ref(c, &ct, blob_id);
		if (rc == 0)
			rc = variant_insert(c, o, v, blob_id, j->recipe[0] ? j->recipe : "v1", pr->transform_spec);
	}
	if (rc == 0 && !note)
		rc = meta_exec(c, "original processed",
			       "UPDATE memory_assets SET processing_status = 'completed', processing_error = NULL,"
			       " width = $2::integer, height = $3::integer,"
			       " megapixels = round($2::numeric * $3::numeric / 1000000), color_space = $4"
			       " WHERE id = $1", 4, p, NULL);
	if (rc == 0 && !note)
		rc = memory_derive(c, o->memory_id);
	if (rc == 0)
		rc = meta_jobs_complete_on(q, c, j, note);
	return meta_tx_end(c, rc);
}

int meta_jobs_variants_failed(struct meta_jobs *q, const struct meta_job *j, const char *reason, int permanent)
{
	const char *p[] = { j->subject, reason };
	PGconn *c;
	int rc, final = 0;

	if (!(c = meta_jobs_tx_begin(q, j, &rc)))
		return rc;
	if (rc == 0) {
		rc = meta_jobs_fail_on(q, c, j, reason, permanent);
		final = rc == 1;
		rc = rc < 0 ? rc : 0;
	}
	/* The reason shows at once; the status says whether it is final. */
	if (rc == 0 && j->subject[0])
		rc = meta_exec(c, final ? "original failed" : "original waits for a retry",
			       final ? "UPDATE memory_assets SET processing_status = 'failed', processing_error = $2,"
				       " width = NULL, height = NULL, megapixels = NULL WHERE id = $1"
				     : "UPDATE memory_assets SET processing_status = 'pending',"
				       " processing_error = 'will retry: ' || $2"
				       " WHERE id = $1 AND processing_status <> 'completed'", 2, p, NULL);
	rc = meta_tx_end(c, rc);
	return rc ? rc : final;
}

/* --- the mount's side ---------------------------------------------------- */

#define VARIANT_COLS \
	"variant_of_asset_id, variant_type, coalesce(content_hash, ''), coalesce(storage_key, ''), mime_type," \
	" bytes, coalesce(width, 0), coalesce(height, 0), (extract(epoch FROM created_at) * 1000000)::bigint"
#define VARIANT_READY " AND lifecycle_status = 'active' AND upload_status = 'completed'"

static void variant_from_row(const PGresult *r, int row, struct meta_variant *v)
{
	long long us;

	memset(v, 0, sizeof(*v));
	META_COPY(v->original_id, r, row, 0);
	META_COPY(v->type, r, row, 1);
	META_COPY(v->sha256, r, row, 2);
	META_COPY(v->key, r, row, 3);
	META_COPY(v->mime, r, row, 4);
	v->size = meta_u64(r, row, 5);
	v->width = atoi(meta_val(r, row, 6));
	v->height = atoi(meta_val(r, row, 7));
	us = strtoll(meta_val(r, row, 8), NULL, 10);
	v->mtime.tv_sec = us / 1000000;
	v->mtime.tv_nsec = (us % 1000000) * 1000;
}

/* The one variant statement SQL (N parameters P) answers: -ENOENT for none. */
static int variant_one(struct meta *m, const char *what, const char *sql, int n, const char *const *p,
		       struct meta_variant *out)
{
	PGconn *c = meta_conn_get(m);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	rc = meta_exec(c, what, sql, n, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else
		variant_from_row(r, 0, out);
	PQclear(r);
	return rc;
}

int meta_variant_get(struct meta *m, const char *original_id, const char *type, struct meta_variant *out)
{
	const char *p[] = { original_id, type };

	return variant_one(m, "variant", "SELECT " VARIANT_COLS " FROM memory_assets"
			   " WHERE variant_of_asset_id = $1 AND variant_type = $2" VARIANT_READY, 2, p, out);
}

int meta_variant_of_file(struct meta *m, uint64_t ino, const char *type, struct meta_variant *out)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s, type };

	snprintf(ino_s, sizeof(ino_s), "%" PRIu64, ino);
	/* a replaced version (a.version_ino) is tombstoned: never active */
	return variant_one(m, "variant of a file", "SELECT " VARIANT_COLS " FROM memory_assets"
			   " WHERE variant_type = $3 AND variant_of_asset_id = (SELECT a.id FROM memory_items i"
			   "   JOIN memory_assets a ON a.id = i.primary_asset_id"
			   "   WHERE i.user_id = $1 AND i.ino = $2 AND a.lifecycle_status = 'active')" VARIANT_READY,
			   3, p, out);
}

int meta_variants_of(struct meta *m, const char *const *ids, int n, const char *type,
		     struct meta_variant *out, int *nout)
{
	size_t len = 3 + (size_t)n * (META_UUID_LEN + 1);
	char *arr = malloc(len), *w = arr;
	const char *p[] = { arr, type };
	PGconn *c;
	PGresult *r;
	int rc;

	*nout = 0;
	if (!arr)
		return -ENOMEM;
	*w++ = '{';
	for (int i = 0; i < n; i++)
		w += sprintf(w, "%s%s", i ? "," : "", ids[i]);
	*w++ = '}';
	*w = '\0';
	c = meta_conn_get(m);
	if (!c) {
		free(arr);
		return -EIO;
	}
	rc = meta_exec(c, "variants of a page", "SELECT " VARIANT_COLS " FROM memory_assets"
		       " WHERE variant_of_asset_id = ANY ($1::uuid[]) AND variant_type = $2" VARIANT_READY,
		       2, p, &r);
	meta_conn_put(m, c);
	free(arr);
	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(r) && i < n; i++)
		variant_from_row(r, i, &out[(*nout)++]);
	PQclear(r);
	return 0;
}

int meta_variants_any(struct meta *m, const struct meta_dir *dir, const char *type)
{
	char ino_s[24], sql[2048], from[256], where[512];
	const char *p[] = { m->user_id, ino_s, type }, *cursor;
	int has_ino, rc;
	PGconn *c;
	PGresult *r;

	/* The folders' memberships as meta_files.c walks them. */
	if (dir->place == META_PLACE_TRASH ||
	    meta_place_sql(m, dir, from, sizeof(from), where, sizeof(where), &cursor, &has_ino) != 0)
		return 0;
	snprintf(ino_s, sizeof(ino_s), "%" PRIu64, meta_tree_ino(m, dir) ? meta_tree_ino(m, dir) : dir->ino);
	snprintf(sql, sizeof(sql),
		 "SELECT EXISTS (SELECT 1 FROM %s JOIN memory_assets a ON a.id = i.primary_asset_id"
		 " JOIN memory_assets v ON v.variant_of_asset_id = a.id AND v.variant_type = $3"
		 "   AND v.lifecycle_status = 'active' AND v.upload_status = 'completed'"
		 " WHERE %s)", from, where);
	c = meta_conn_get(m);
	if (!c)
		return -EIO;
	rc = meta_exec(c, "any variants", sql, 3, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	rc = strcmp(meta_val(r, 0, 0), "t") == 0;
	PQclear(r);
	return rc;
}

int meta_processing_get(struct meta *m, const char *asset_id, struct meta_processing *out)
{
	const char *p[] = { asset_id };
	PGconn *c = meta_conn_get(m);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	rc = meta_exec(c, "processing",
		       "SELECT processing_status, coalesce(processing_error, ''), coalesce(width, 0),"
		       " coalesce(height, 0), coalesce(color_space, '') FROM memory_assets WHERE id = $1",
		       1, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	if (PQntuples(r) == 0) {
		rc = -ENOENT;
	} else {
		memset(out, 0, sizeof(*out));
		META_COPY(out->status, r, 0, 0);
		META_COPY(out->error, r, 0, 1);
		out->width = atoi(meta_val(r, 0, 2));
		out->height = atoi(meta_val(r, 0, 3));
		META_COPY(out->color_space, r, 0, 4);
	}
	PQclear(r);
	return rc;
}
