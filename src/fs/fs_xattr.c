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
#include <stdio.h>
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
	{ XATTR_PREFIX "processing_status", offsetof(struct meta_file, processing_status) },
	{ XATTR_PREFIX "lifecycle_status", offsetof(struct meta_file, lifecycle_status) },
	{ XATTR_PREFIX "mime", offsetof(struct meta_file, mime) },
	{ XATTR_PREFIX "created_at", offsetof(struct meta_file, created_at) },
};

static const struct xattr_field folder_xattrs[] = {
	{ XATTR_PREFIX "id", offsetof(struct meta_folder, id) },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The table and the struct that answer for F or FOLDER. */
static const struct xattr_field *fields_of(const struct meta_file *f, const struct meta_folder *folder,
					   const char **base, size_t *n)
{
	if (f) {
		*base = (const char *)f;
		*n = N(file_xattrs);
		return file_xattrs;
	}
	*base = (const char *)folder;
	*n = folder ? N(folder_xattrs) : 0;
	return folder_xattrs;
}

static ssize_t copy_out(const char *val, size_t len, char *buf, size_t size)
{
	if (size == 0)
		return (ssize_t)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, val, len);
	return (ssize_t)len;
}

ssize_t fs_xattr_get(const struct meta_file *f, const struct meta_folder *folder, const char *name,
		     char *buf, size_t size)
{
	const char *base;
	size_t n;
	const struct xattr_field *fields = fields_of(f, folder, &base, &n);

	for (size_t i = 0; i < n; i++) {
		const char *val = base + fields[i].off;

		if (strcmp(name, fields[i].name) != 0)
			continue;
		if (!*val)
			return -ENODATA;	/* e.g. no hash before the first commit */
		return copy_out(val, strlen(val), buf, size);
	}
	return -ENODATA;
}

ssize_t fs_xattr_list(const struct meta_file *f, const struct meta_folder *folder, char *buf, size_t size)
{
	char names[512];
	const char *base;
	size_t len = 0, n;
	const struct xattr_field *fields = fields_of(f, folder, &base, &n);

	for (size_t i = 0; i < n; i++) {
		const char *val = base + fields[i].off;
		size_t k = strlen(fields[i].name) + 1;

		if (!*val)
			continue;
		memcpy(names + len, fields[i].name, k);
		len += k;
	}
	return copy_out(names, len, buf, size);
}

/* user.mvault.collection: the one attribute that can be set. */
#define XATTR_COLLECTION XATTR_PREFIX "collection"

int fs_xattr_is_collection(const char *name)
{
	return strcmp(name, XATTR_COLLECTION) == 0;
}

int fs_xattr_ours(const char *name)
{
	return strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0;
}

int fs_xattr_set(const char *name)
{
	if (fs_xattr_is_collection(name))
		return 0;
	return fs_xattr_ours(name) ? -EPERM : -ENOTSUP;
}

ssize_t fs_xattr_stats(struct cache *cache, char *buf, size_t size)
{
	struct cache_stats st;
	char text[1024];
	int n;

	cache_stats(cache, &st);
	n = snprintf(text, sizeof(text),
		     "staged_files %llu\nstaged_bytes %llu\nset_aside %llu\nuploaded_files %llu\n"
		     "uploaded_bytes %llu\nupload_rate %.0f\ncache_bytes %llu\ncache_blocks %llu\n"
		     "cache_max %llu\nhits %llu\nmisses %llu\nstore_gets %llu\nstore_puts %llu\n",
		     (unsigned long long)st.staged_files, (unsigned long long)st.staged_bytes,
		     (unsigned long long)st.set_aside, (unsigned long long)st.uploaded_files,
		     (unsigned long long)st.uploaded_bytes, st.upload_rate,
		     (unsigned long long)st.cache_bytes, (unsigned long long)st.cache_blocks,
		     (unsigned long long)st.cache_max, (unsigned long long)st.hits,
		     (unsigned long long)st.misses, (unsigned long long)st.store_gets,
		     (unsigned long long)st.store_puts);
	return copy_out(text, (size_t)n, buf, size);
}

ssize_t fs_xattr_aside(struct cache *cache, char *buf, size_t size)
{
	const char *dir = cache_aside_dir(cache);

	return copy_out(dir, strlen(dir), buf, size);
}
