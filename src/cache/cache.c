/*
 * cache.c - staging of written files, and the pass-through to the backend.
 *
 * Staging files are O_TMPFILE files in DIR/staging: they exist only while a
 * file is open for writing and vanish with the process.  (Write-back with a
 * journal that survives crashes replaces this in issue 5.)
 */
#include "cache/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "util/log.h"

struct cache {
	struct backend *backend;
	char *staging;		/* DIR/staging */
};

static int mkdir_private(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

struct cache *cache_open(const char *dir, struct backend *b)
{
	struct cache *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return NULL;
	c->backend = b;
	if (asprintf(&c->staging, "%s/staging", dir) < 0) {
		c->staging = NULL;
		cache_free(c);
		errno = ENOMEM;
		return NULL;
	}
	if ((rc = mkdir_private(dir)) != 0 || (rc = mkdir_private(c->staging)) != 0) {
		log_error("cannot use cache folder '%s': %s", dir, strerror(-rc));
		cache_free(c);
		errno = -rc;
		return NULL;
	}
	return c;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	free(c->staging);
	free(c);
}

const char *cache_backend_name(const struct cache *c)
{
	return c->backend->ops->name;
}

int cache_stage_create(struct cache *c)
{
	int fd = open(c->staging, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		int err = errno;

		log_error("cannot create a staging file in '%s': %s", c->staging, strerror(err));
		return -err;
	}
	return fd;
}

int cache_stage_fill(struct cache *c, const char *key, uint64_t size, int fd)
{
	enum { CHUNK = 1 << 20 };
	char *buf = malloc(CHUNK);
	uint64_t off = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (rc == 0 && off < size) {
		size_t got = 0;

		rc = backend_get_range(c->backend, key, off, CHUNK, buf, &got);
		if (rc == 0 && got == 0)
			rc = -EIO;	/* object shorter than its row says */
		if (rc == 0 && pwrite(fd, buf, got, (off_t)off) != (ssize_t)got)
			rc = errno ? -errno : -EIO;
		off += got;
	}
	free(buf);
	if (rc)
		log_error("cannot copy '%s' into staging: %s", key, strerror(-rc));
	return rc;
}

int cache_store(struct cache *c, const char *key, int fd, uint64_t size, const char *sha256)
{
	return backend_put(c->backend, key, fd, size, sha256);
}

int cache_read(struct cache *c, const char *key, uint64_t off, size_t len, void *dst, size_t *got)
{
	return backend_get_range(c->backend, key, off, len, dst, got);
}

int cache_space(struct cache *c, uint64_t *total, uint64_t *avail)
{
	return backend_space(c->backend, total, avail);
}
