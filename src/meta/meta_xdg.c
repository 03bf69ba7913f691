/*
 * meta_xdg.c - the web application's tags, favourite flag and title as the
 * desktop's extended attributes (user.xdg.tags, user.xdg.comment,
 * user.baloo.rating; 0025_xdg_attrs.sql).
 *
 * Each call is one statement, a call of a server-side function that knows
 * the mapping: the daemon sends the attribute as it was given and reads it
 * as the library row makes it, so the web application and the mount never
 * hold two copies of one value.  An inode without a library row (a
 * workspace file, a plain file, a collection or gallery) keeps these names
 * in inode_xattrs like any user.* attribute; the set function says so
 * ('generic') and the value goes there with a second statement.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

ssize_t meta_xdg_get(struct meta *m, uint64_t ino, const char *name, void *buf, size_t size)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s, name };
	PGresult *r;
	int rc;

	meta_u64s(ino_s, sizeof(ino_s), ino);
	rc = META_ON_CONN(m, c, meta_exec(c, "read desktop xattr", "SELECT mvfs_xdg_get($1, $2, $3)", 3, p, &r));
	return rc ? rc : meta_xattr_value(r, buf, size);
}

int meta_xdg_set(struct meta *m, uint64_t ino, const char *name, const void *value, size_t len,
		 unsigned flags)
{
	const char *mode = flags & META_XATTR_CREATE ? "create" : flags & META_XATTR_REPLACE ? "replace" : "set";
	char ino_s[24], *text = NULL, outcome[16];
	const char *p[5];
	PGresult *r;
	int rc;

	if (value && !(text = strndup(value, len)))
		return -ENOMEM;
	meta_u64s(ino_s, sizeof(ino_s), ino);
	p[0] = m->user_id, p[1] = ino_s, p[2] = name, p[3] = text, p[4] = mode;
	rc = meta_call(m, "set desktop xattr", "SELECT mvfs_xdg_set($1, $2, $3, $4, $5)", 5, p, &r);
	free(text);
	if (rc)
		return rc;
	snprintf(outcome, sizeof(outcome), "%s", PQntuples(r) ? meta_val(r, 0, 0) : "");
	PQclear(r);
	if (strcmp(outcome, "ok") == 0)
		return 0;
	if (strcmp(outcome, "exists") == 0)
		return -EEXIST;
	if (strcmp(outcome, "nodata") == 0)
		return -ENODATA;
	if (strcmp(outcome, "generic") != 0)
		return -EIO;
	return value ? meta_xattr_set(m, ino, name, value, len, flags) : meta_xattr_remove(m, ino, name);
}
