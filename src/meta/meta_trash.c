/*
 * meta_trash.c - the trash as the desktop trash shows it: where each
 * trashed file was and when it went there, and "Empty trash".
 *
 * A trashed file keeps its place rows (user_library or workspace_assets,
 * with their folder_id), so where it was is its folder's path, walked up
 * to the top folder of its place with a recursive query: one statement for
 * a whole page of the trash.  Emptying moves the asset's tombstoned_at back
 * past the grace period, as a version that lived too briefly is retired
 * (mvfs_retire_version, 0009): from then on every rule of a file whose
 * grace period is over holds, and nothing else is needed.
 */
#include "meta/meta_trash.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_internal.h"

/* Whole files in the trash: tombstoned current assets inside the grace
 * period (as meta_place_sql's trash; %d: the grace period in days). */
#define TRASHED \
	" a.lifecycle_status = 'tombstoned' AND a.version_ino IS NULL" \
	" AND a.tombstoned_at > mvault_now() - interval '%d days'"

int meta_trash_origins(struct meta *m, const uint64_t *inos, int n, struct meta_origin *out, int *got)
{
	char sql[2048], *arr, *w;
	const char *p[2];
	PGresult *r;
	int rc;

	*got = 0;
	if (n <= 0)
		return 0;
	if (!(arr = malloc(3 + (size_t)n * 21)))
		return -ENOMEM;
	w = arr;
	*w++ = '{';
	for (int i = 0; i < n; i++)
		w += sprintf(w, "%s%" PRIu64, i ? "," : "", inos[i]);
	*w++ = '}';
	*w = '\0';
	p[0] = m->user_id;
	p[1] = arr;
	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE t AS ("
		 "  SELECT i.ino, i.display_name, a.tombstoned_at, coalesce(l.folder_id, w.folder_id) AS folder"
		 "    FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id"
		 "    LEFT JOIN user_library l ON l.memory_id = i.memory_id"
		 "    LEFT JOIN workspace_assets w ON w.memory_id = i.memory_id"
		 "   WHERE i.user_id = $1 AND i.ino = ANY ($2::bigint[]) AND" TRASHED "),"
		 " up AS ("
		 "  SELECT t.ino, f.parent_id, f.place,"
		 "         CASE WHEN f.parent_id IS NULL THEN '' ELSE f.name || '/' END AS path, 0 AS depth"
		 "    FROM t JOIN folders f ON f.id = t.folder"
		 "  UNION ALL"
		 "  SELECT up.ino, f.parent_id, f.place,"
		 "         CASE WHEN f.parent_id IS NULL THEN '' ELSE f.name || '/' END || up.path, up.depth + 1"
		 "    FROM up JOIN folders f ON f.id = up.parent_id WHERE up.depth < 256)"
		 " SELECT t.ino, coalesce(up.place || '/' || up.path, 'library/') || t.display_name,"
		 "        (extract(epoch FROM t.tombstoned_at) * 1000000)::bigint"
		 "   FROM t LEFT JOIN up ON up.ino = t.ino AND up.parent_id IS NULL",
		 m->trash_days);
	rc = meta_call(m, "trash origins", sql, 2, p, &r);
	free(arr);
	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(r) && i < n; i++) {
		struct meta_origin *o = &out[*got];
		long long us = strtoll(meta_val(r, i, 2), NULL, 10);

		o->ino = meta_u64(r, i, 0);
		if (snprintf(o->path, sizeof(o->path), "%s", meta_val(r, i, 1)) >= (int)sizeof(o->path))
			continue;	/* no path a program could use */
		o->deleted.tv_sec = (time_t)(us / 1000000);
		o->deleted.tv_nsec = (long)(us % 1000000) * 1000;
		(*got)++;
	}
	PQclear(r);
	return 0;
}

int meta_trash_purge(struct meta *m, uint64_t ino)
{
	char sql[1024], ino_s[24];
	const char *p[] = { m->user_id, ino_s };
	PGresult *r;
	int rc;

	meta_u64s(ino_s, sizeof(ino_s), ino);
	snprintf(sql, sizeof(sql),
		 "UPDATE memory_assets a SET tombstoned_at = mvault_now() - interval '%d days 1 second'"
		 "  FROM memory_items i WHERE i.user_id = $1 AND i.ino = $2 AND a.id = i.primary_asset_id"
		 "   AND" TRASHED " RETURNING a.id", m->trash_days, m->trash_days);
	rc = meta_call(m, "empty from trash", sql, 2, p, &r);
	if (rc)
		return rc;
	rc = PQntuples(r) ? 0 : -ENOENT;
	PQclear(r);
	return rc;
}
