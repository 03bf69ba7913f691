/*
 * meta_s3conf.c - reading the user's row of s3_configurations.
 *
 * One statement on the (user_id, is_active) index: the row for the asked
 * bucket first, else the default.  Row-level security already limits the
 * connection to the mount's user; the user_id condition keeps the query on
 * its index all the same.
 */
#include "meta/meta_s3conf.h"
#include "meta/meta_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int meta_s3conf_get(struct meta *m, const char *bucket, struct meta_s3conf *out)
{
	const char *p[] = { m->user_id, bucket && *bucket ? bucket : NULL };
	PGresult *r = NULL;
	PGconn *c;
	int rc;

	memset(out, 0, sizeof(*out));
	c = meta_conn_get(m);
	if (!c)
		return -EIO;
	rc = meta_exec(c, "read s3_configurations",
		       "SELECT name, bucket, region, coalesce(endpoint, ''), path_style,"
		       "       access_key_id, secret_access_key"
		       "  FROM s3_configurations"
		       " WHERE user_id = $1 AND is_active"
		       "   AND (bucket = $2 OR is_default)"
		       " ORDER BY (bucket = $2) IS TRUE DESC, is_default DESC, updated_at DESC"
		       " LIMIT 1", 2, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return -ENOENT;
	}
	snprintf(out->name, sizeof(out->name), "%s", meta_val(r, 0, 0));
	snprintf(out->bucket, sizeof(out->bucket), "%s", meta_val(r, 0, 1));
	snprintf(out->region, sizeof(out->region), "%s", meta_val(r, 0, 2));
	snprintf(out->endpoint, sizeof(out->endpoint), "%s", meta_val(r, 0, 3));
	out->path_style = strcmp(meta_val(r, 0, 4), "t") == 0;
	out->access_key_enc = strdup(meta_val(r, 0, 5));
	out->secret_key_enc = strdup(meta_val(r, 0, 6));
	PQclear(r);
	if (!out->access_key_enc || !out->secret_key_enc) {
		meta_s3conf_release(out);
		return -ENOMEM;
	}
	return 0;
}

void meta_s3conf_release(struct meta_s3conf *c)
{
	if (!c)
		return;
	free(c->access_key_enc);
	free(c->secret_key_enc);
	c->access_key_enc = c->secret_key_enc = NULL;
}
