/*
 * cache.h - the layer between the filesystem and the object store.
 *
 * Today it stages written files on local disk and passes reads and uploads
 * through to the backend; the block cache and write-back uploader (issue 5)
 * grow here behind the same calls, so src/fs never talks to a backend.
 */
#ifndef MVFS_CACHE_H
#define MVFS_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct backend;
struct cache;

/* Opens the cache folder DIR (created 0700 when missing) in front of
 * backend B (borrowed: the caller frees it after cache_free).  Returns NULL
 * with errno set and a log line naming DIR on failure. */
struct cache *cache_open(const char *dir, struct backend *b);
/* cache_free(NULL) is a no-op. */
void cache_free(struct cache *c);

/* The backend's name ("local", "s3"), for the rows that record where
 * content lives. */
const char *cache_backend_name(const struct cache *c);

/* A new, empty staging file for content being written; returns an fd open
 * read-write (the caller closes it) or -errno.  The file has no name: a
 * crash leaves nothing behind. */
int cache_stage_create(struct cache *c);

/* Copies the SIZE bytes of object KEY into staging fd FD (from offset 0), for
 * copy-on-write of an existing file.  Returns 0 or -errno. */
int cache_stage_fill(struct cache *c, const char *key, uint64_t size, int fd);

/* Sends the SIZE bytes of FD to the store under KEY; returns once the store
 * has all of them (0) or failed (-errno: -ENOSPC when it is full). */
int cache_store(struct cache *c, const char *key, int fd, uint64_t size, const char *sha256);

/* Reads up to LEN bytes of object KEY at OFF into DST; *GOT is how many. */
int cache_read(struct cache *c, const char *key, uint64_t off, size_t len, void *dst, size_t *got);

/* Space of the store: total and available bytes, or -ENOTSUP. */
int cache_space(struct cache *c, uint64_t *total, uint64_t *avail);

#endif
