/*
 * cache.c - the cache folder, its configuration, and the calls that pick
 * between staging, cached blocks and the store.
 *
 * Layout of the cache folder (0700, and refused when others may write it:
 * staged files are the only copy of what was written):
 *   staging/<sha256>        sealed content waiting for upload
 *   journal/<seq>-<sha256>  one entry per sealed file: what to commit after upload
 *   aside/                  staged content that failed its hash check
 *   blocks/ab/<sha256>.<n>  cached block n of content, with an XXH3 trailer
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "backend/backend.h"
#include "util/log.h"

int cache_private_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -errno;
	if (stat(path, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_mode & 022) {
		log_error("refusing cache folder '%s': others may write to it (mode %03o); it holds the only"
			  " copy of files not yet uploaded: chmod go-w it", path, st.st_mode & 0777);
		return -EACCES;
	}
	if (st.st_uid != geteuid()) {
		log_error("refusing cache folder '%s': it belongs to uid %u, not to this user", path,
			  (unsigned)st.st_uid);
		return -EACCES;
	}
	return 0;
}

int cache_disk_space(const struct cache *c, uint64_t *total, uint64_t *avail)
{
	struct statvfs sv;

	if (statvfs(c->dir, &sv) != 0)
		return -errno;
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

void cache_count(struct cache *c, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&c->stats_lock);
	*field += n;
	pthread_mutex_unlock(&c->stats_lock);
}

static void config_defaults(struct cache *c)
{
	struct cache_config *cfg = &c->cfg;
	uint64_t total = 0, avail = 0;

	cache_disk_space(c, &total, &avail);
	if (!cfg->block_size)
		cfg->block_size = 1 << 20;
	if (!cfg->size_max) {
		cfg->size_max = total / 10;
		if (cfg->size_max > (10ULL << 30))
			cfg->size_max = 10ULL << 30;
	}
	if (!cfg->free_min)
		cfg->free_min = total / 20;
	/* From free space, not disk size: on a small or busy disk a quarter of
	 * its size could be more than is free, or refuse a photo while df
	 * shows plenty free.  A larger file still passes alone. */
	if (!cfg->staging_max)
		cfg->staging_max = avail / 2;
	if (cfg->uploaders <= 0)
		cfg->uploaders = 4;
	if (cfg->readahead <= 0)
		cfg->readahead = 8;
	/* One fetcher per block read ahead: the whole window is in flight. */
	if (cfg->fetchers <= 0)
		cfg->fetchers = cfg->readahead;
	if (cfg->io_timeout <= 0)
		cfg->io_timeout = 60;
}

static char *join(const char *a, const char *b)
{
	char *s;

	return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

struct cache *cache_open(const char *dir, struct backend *b, const struct cache_config *cfg)
{
	struct cache *c = calloc(1, sizeof(*c));
	int rc = -ENOMEM;

	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	c->backend = b;
	if (cfg)
		c->cfg = *cfg;
	if (!backend_key_prefix_valid(c->cfg.key_prefix ? c->cfg.key_prefix : "")) {
		log_error("cannot use cache folder '%s': the store key prefix '%s' is not one", dir,
			  c->cfg.key_prefix);
		free(c);
		errno = EINVAL;
		return NULL;
	}
	snprintf(c->key_prefix, sizeof(c->key_prefix), "%s", c->cfg.key_prefix ? c->cfg.key_prefix : "");
	c->cfg.key_prefix = c->key_prefix;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->changed, NULL);
	pthread_mutex_init(&c->block_lock, NULL);
	pthread_cond_init(&c->fetched, NULL);
	pthread_cond_init(&c->queued, NULL);
	pthread_mutex_init(&c->stats_lock, NULL);
	c->dir = strdup(dir);
	c->staging_dir = join(dir, "staging");
	c->journal_dir = join(dir, "journal");
	c->blocks_dir = join(dir, "blocks");
	c->aside_dir = join(dir, "aside");
	if (!c->dir || !c->staging_dir || !c->journal_dir || !c->blocks_dir || !c->aside_dir)
		goto fail;
	if ((rc = cache_private_dir(c->dir)) != 0 || (rc = cache_private_dir(c->staging_dir)) != 0 ||
	    (rc = cache_private_dir(c->journal_dir)) != 0 || (rc = cache_private_dir(c->blocks_dir)) != 0 ||
	    (rc = cache_private_dir(c->aside_dir)) != 0) {
		log_error("cannot use cache folder '%s': %s", dir, strerror(-rc));
		goto fail;
	}
	config_defaults(c);
	c->st.cache_max = c->cfg.size_max;
	if ((rc = cache_stage_open(c)) != 0 || (rc = cache_blocks_open(c)) != 0)
		goto fail;
	return c;
fail:
	cache_free(c);
	errno = -rc;
	return NULL;
}

int cache_start(struct cache *c, cache_uploaded_fn fn, cache_uploaded_many_fn many, void *arg)
{
	int rc;

	c->uploaded = fn;
	c->uploaded_many = many;
	c->uploaded_arg = arg;
	rc = cache_blocks_start(c);
	if (rc == 0)
		rc = cache_stage_start(c);
	return rc;
}

void cache_stop(struct cache *c)
{
	cache_stage_stop(c);
	cache_blocks_stop(c);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	cache_stop(c);
	cache_stage_free(c);
	cache_blocks_free(c);
	free(c->dir);
	free(c->staging_dir);
	free(c->journal_dir);
	free(c->blocks_dir);
	free(c->aside_dir);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->changed);
	pthread_mutex_destroy(&c->block_lock);
	pthread_cond_destroy(&c->fetched);
	pthread_cond_destroy(&c->queued);
	pthread_mutex_destroy(&c->stats_lock);
	free(c);
}

const char *cache_backend_name(const struct cache *c)
{
	return c->backend->ops->name;
}

_Static_assert(CACHE_KEY_MAX == BACKEND_KEY_MAX, "cache_entry.key holds every store key");

void cache_key_for(const struct cache *c, const char *sha256, char *out)
{
	backend_key_for(c->key_prefix, sha256, out);
}

const char *cache_key_prefix(const struct cache *c)
{
	return c->key_prefix;
}

int cache_read(struct cache *c, const char *sha256, uint64_t size, uint64_t off, size_t len,
	       void *dst, size_t *got, struct cache_reader *r)
{
	return cache_read_ref(c, sha256, size, off, len, dst, got, r, NULL);
}

int cache_read_ref(struct cache *c, const char *sha256, uint64_t size, uint64_t off, size_t len,
		   void *dst, size_t *got, struct cache_reader *r, struct cache_ref *ref)
{
	int fd = cache_stage_open_content(c, sha256);

	*got = 0;
	if (ref)
		ref->data = NULL, ref->pin = NULL;
	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	if (fd >= 0) {
		size_t done = 0;
		int rc = 0;

		while (done < len) {
			ssize_t n = pread(fd, (char *)dst + done, len - done, (off_t)(off + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = n < 0 ? -errno : -EIO;
				break;
			}
			done += (size_t)n;
		}
		close(fd);
		*got = done;
		if (rc)
			log_error("cannot read staged content %.12s...: %s", sha256, strerror(-rc));
		return rc;
	}
	return cache_blocks_read(c, sha256, size, off, len, dst, got, r, ref);
}

int cache_write_full(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		/* a short write is retried: a full disk then says ENOSPC */
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int cache_stage_fill(struct cache *c, const char *sha256, uint64_t size, int fd)
{
	uint32_t chunk = c->cfg.block_size;
	char *buf = malloc(chunk);
	uint64_t off = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (rc == 0 && off < size) {
		size_t got = 0;

		rc = cache_read(c, sha256, size, off, chunk, buf, &got, NULL);
		if (rc == 0 && got == 0)
			rc = -EIO;	/* content shorter than its row says */
		if (rc == 0)
			rc = cache_write_full(fd, buf, got, (off_t)off);
		off += got;
	}
	free(buf);
	if (rc)
		log_error("cannot copy content %.12s... into staging: %s", sha256, strerror(-rc));
	return rc;
}

int cache_store(struct cache *c, const char *key, const char *sha256, int fd, uint64_t size)
{
	int rc;

	if (!key || !backend_key_valid(key))
		return -EINVAL;
	rc = backend_put(c->backend, key, fd, size, sha256);
	if (rc == 0)
		cache_count(c, &c->st.store_puts, 1);
	return rc;
}

void cache_stats(struct cache *c, struct cache_stats *st)
{
	pthread_mutex_lock(&c->stats_lock);
	*st = c->st;
	pthread_mutex_unlock(&c->stats_lock);
	pthread_mutex_lock(&c->lock);
	st->staged_files = c->staged_files;
	st->staged_bytes = c->staged_bytes;
	st->set_aside = c->set_aside;
	pthread_mutex_unlock(&c->lock);
}

const char *cache_aside_dir(const struct cache *c)
{
	return c->aside_dir;
}

int cache_space(struct cache *c, uint64_t *total, uint64_t *avail)
{
	return backend_space(c->backend, total, avail);
}
