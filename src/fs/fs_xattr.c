/*
 * fs_xattr.c - the user.mvault.* extended attributes.
 *
 * They are read-only views of the rows behind a file: a table of names and
 * the field each one shows.  Setting one of ours is EPERM; any other name
 * is ENOTSUP, since a memory has nowhere to keep arbitrary attributes.
 */
#include "fs/fs.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define XATTR_PREFIX "user.mvault."

struct xattr_field {
	const char *name;
	size_t off;		/* of a NUL-terminated string in struct meta_file */
};

static const struct xattr_field file_xattrs[] = {
	{ XATTR_PREFIX "id", offsetof(struct meta_file, memory_id) },
	{ XATTR_PREFIX "sha256", offsetof(struct meta_file, sha256) },
	{ XATTR_PREFIX "status", offsetof(struct meta_file, status) },
	{ XATTR_PREFIX "upload_status", offsetof(struct meta_file, upload_status) },
};

#define NFILE_XATTRS (sizeof(file_xattrs) / sizeof(file_xattrs[0]))

static ssize_t copy_out(const char *val, size_t len, char *buf, size_t size)
{
	if (size == 0)
		return (ssize_t)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, val, len);
	return (ssize_t)len;
}

ssize_t fs_xattr_get(const struct meta_file *f, const char *name, char *buf, size_t size)
{
	for (size_t i = 0; f && i < NFILE_XATTRS; i++) {
		const char *val = (const char *)f + file_xattrs[i].off;

		if (strcmp(name, file_xattrs[i].name) != 0)
			continue;
		if (!*val)
			return -ENODATA;	/* e.g. no hash before the first commit */
		return copy_out(val, strlen(val), buf, size);
	}
	return -ENODATA;
}

ssize_t fs_xattr_list(const struct meta_file *f, char *buf, size_t size)
{
	char names[256];
	size_t len = 0;

	for (size_t i = 0; f && i < NFILE_XATTRS; i++) {
		const char *val = (const char *)f + file_xattrs[i].off;
		size_t n = strlen(file_xattrs[i].name) + 1;

		if (!*val)
			continue;
		memcpy(names + len, file_xattrs[i].name, n);
		len += n;
	}
	return copy_out(names, len, buf, size);
}

int fs_xattr_ours(const char *name)
{
	return strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0;
}

int fs_xattr_set(const char *name)
{
	return fs_xattr_ours(name) ? -EPERM : -ENOTSUP;
}
