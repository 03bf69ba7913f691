/*
 * meta_xattr.c - user.* extended attributes kept per inode (inode_xattrs).
 *
 * One row per (user, inode, name); row-level security keeps users apart as
 * in every user table.  Each call is one statement on a borrowed
 * connection.  Values travel as text parameters in bytea's hex form
 * ("\x0a1b...") and come back through PQunescapeBytea, so that meta_exec
 * stays the one place statements are sent.
 *
 * A listing comes from mvfs_xattr_names (0025): for a library file it
 * holds the desktop names its library row has values for (meta_xdg.c).
 *
 * DESIGN: XATTR_CREATE/XATTR_REPLACE and the limit on the names of one
 * inode are decided inside the set statement from a snapshot of the inode's
 * names, which it returns with the outcome: no second round trip to learn
 * why nothing was written.  Two racing creators of one name are told apart
 * by the insert itself (ON CONFLICT ... WHERE), not by the snapshot.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static void ino_str(char *buf, size_t len, uint64_t ino)
{
	snprintf(buf, len, "%" PRIu64, ino);
}

ssize_t meta_xattr_get(struct meta *m, uint64_t ino, const char *name, void *buf, size_t size)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s, name };
	PGresult *r;
	ssize_t rc;

	ino_str(ino_s, sizeof(ino_s), ino);
	rc = META_ON_CONN(m, c, meta_exec(c, "read xattr",
					  "SELECT value FROM inode_xattrs"
					  " WHERE user_id = $1 AND ino = $2 AND name = $3", 3, p, &r));
	return rc ? rc : meta_xattr_value(r, buf, size);
}

ssize_t meta_xattr_value(PGresult *r, void *buf, size_t size)
{
	unsigned char *val;
	size_t len;
	ssize_t rc = 0;

	if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return -ENODATA;
	}
	val = PQunescapeBytea((const unsigned char *)meta_val(r, 0, 0), &len);
	PQclear(r);
	if (!val)
		return -ENOMEM;
	if (size && len > size)
		rc = -ERANGE;
	else if (size)
		memcpy(buf, val, len);
	PQfreemem(val);
	return rc ? rc : (ssize_t)len;
}

ssize_t meta_xattr_list(struct meta *m, uint64_t ino, char *buf, size_t size)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s };
	size_t len = 0;
	PGresult *r;
	int rc;

	ino_str(ino_s, sizeof(ino_s), ino);
	rc = META_ON_CONN(m, c, meta_exec(c, "list xattrs",
					  "SELECT mvfs_xattr_names($1, $2)", 2, p, &r));
	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(r); i++) {
		size_t k = (size_t)PQgetlength(r, i, 0) + 1;

		if (size && len + k > size) {
			PQclear(r);
			return -ERANGE;
		}
		if (size)
			memcpy(buf + len, meta_val(r, i, 0), k);
		len += k;
	}
	PQclear(r);
	return (ssize_t)len;
}

/* VALUE as bytea's hex input form, "\x..."; NULL when out of memory. */
static char *bytea_hex(const void *value, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *v = value;
	char *s = malloc(2 * len + 3), *o = s;

	if (!s)
		return NULL;
	*o++ = '\\';
	*o++ = 'x';
	for (size_t i = 0; i < len; i++) {
		*o++ = digits[v[i] >> 4];
		*o++ = digits[v[i] & 15];
	}
	*o = '\0';
	return s;
}

int meta_xattr_set(struct meta *m, uint64_t ino, const char *name, const void *value, size_t len,
		   unsigned flags)
{
	const char *mode = flags & META_XATTR_CREATE ? "create" : flags & META_XATTR_REPLACE ? "replace" : "set";
	char ino_s[24], *hex = bytea_hex(value, len);
	const char *p[] = { m->user_id, ino_s, name, hex, mode };
	PGresult *r;
	int rc, had, fits, wrote;

	if (!hex)
		return -ENOMEM;
	ino_str(ino_s, sizeof(ino_s), ino);
	rc = META_ON_CONN(m, c, meta_exec(c, "set xattr",
		"WITH cur AS (SELECT name FROM inode_xattrs WHERE user_id = $1::uuid AND ino = $2::bigint),"
		" ok AS (SELECT EXISTS (SELECT 1 FROM cur WHERE name = $3::text) AS had,"
		"   (SELECT coalesce(sum(octet_length(name) + 1), 0) FROM cur WHERE name <> $3::text)"
		"     + octet_length($3::text) + 1 <= " STR(META_XATTR_LIST_MAX) " AS fits),"
		" w AS (INSERT INTO inode_xattrs (user_id, ino, name, value)"
		"   SELECT $1::uuid, $2::bigint, $3::text, $4::bytea FROM ok"
		"   WHERE fits AND CASE $5::text WHEN 'create' THEN NOT had WHEN 'replace' THEN had ELSE true END"
		"   ON CONFLICT (user_id, ino, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
		"   WHERE $5::text <> 'create'"
		"   RETURNING 1)"
		" SELECT had, fits, (SELECT count(*) FROM w) FROM ok", 5, p, &r));
	free(hex);
	if (rc)
		return rc;
	had = strcmp(meta_val(r, 0, 0), "t") == 0;
	fits = strcmp(meta_val(r, 0, 1), "t") == 0;
	wrote = meta_u64(r, 0, 2) > 0;
	PQclear(r);
	if (wrote)
		return 0;
	if (!fits)
		return -ENOSPC;
	if (flags & META_XATTR_REPLACE && !had)
		return -ENODATA;
	return -EEXIST;		/* XATTR_CREATE: set before, or by a racing creator */
}

int meta_xattr_remove(struct meta *m, uint64_t ino, const char *name)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s, name };
	PGresult *r;
	int rc;

	ino_str(ino_s, sizeof(ino_s), ino);
	rc = META_ON_CONN(m, c, meta_exec(c, "remove xattr",
					  "DELETE FROM inode_xattrs WHERE user_id = $1 AND ino = $2 AND name = $3",
					  3, p, &r));
	if (rc)
		return rc;
	rc = strcmp(PQcmdTuples(r), "0") == 0 ? -ENODATA : 0;
	PQclear(r);
	return rc;
}
