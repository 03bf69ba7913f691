/*
 * cache_block_index.c - where each cached block is: the index of the block
 * cache (cache_block.c), in memory under block_lock, and its LRU order.
 *
 * The index (every block's size and place in the LRU list) is rebuilt at
 * start from one walk of blocks/, oldest access first.  Over the cap, or
 * under the disk's free-space floor, the least recently used blocks go.
 */
#include "cache/cache_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t block_bucket(const struct cache *c, const char *sha, uint64_t idx)
{
	size_t h = (size_t)idx * 0x9e3779b97f4a7c15ULL;

	for (int i = 0; i < 16; i++)
		h = h * 31 + (unsigned char)sha[i];
	return h % c->nblock_buckets;
}

void cache_block_path(const struct cache *c, const char *sha, uint64_t idx, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%.2s/%s.%" PRIu64, c->blocks_dir, sha, sha, idx);
}

struct block *cache_index_find(struct cache *c, const char *sha, uint64_t idx)
{
	struct block *b = c->blocks[block_bucket(c, sha, idx)];

	while (b && (b->idx != idx || strcmp(b->sha256, sha) != 0))
		b = b->next;
	return b;
}

static void lru_unlink(struct cache *c, struct block *b)
{
	if (b->lru_prev)
		b->lru_prev->lru_next = b->lru_next;
	else if (c->lru_head == b)
		c->lru_head = b->lru_next;
	if (b->lru_next)
		b->lru_next->lru_prev = b->lru_prev;
	else if (c->lru_tail == b)
		c->lru_tail = b->lru_prev;
	b->lru_prev = b->lru_next = NULL;
}

void cache_index_front(struct cache *c, struct block *b)
{
	lru_unlink(c, b);
	b->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = b;
	c->lru_head = b;
	if (!c->lru_tail)
		c->lru_tail = b;
}

struct block *cache_index_add(struct cache *c, const char *sha, uint64_t idx)
{
	struct block *b = calloc(1, sizeof(*b));
	size_t k;

	if (!b)
		return NULL;
	snprintf(b->sha256, sizeof(b->sha256), "%s", sha);
	b->idx = idx;
	k = block_bucket(c, sha, idx);
	b->next = c->blocks[k];
	c->blocks[k] = b;
	return b;
}

void cache_index_remove(struct cache *c, struct block *b)
{
	struct block **pp = &c->blocks[block_bucket(c, b->sha256, b->idx)];

	while (*pp && *pp != b)
		pp = &(*pp)->next;
	if (*pp)
		*pp = b->next;
	lru_unlink(c, b);
	if (!b->fetching) {
		c->st.cache_bytes -= b->bytes;
		c->st.cache_blocks--;
	}
	free(b);
}

/* Drops least recently used blocks while over the cap or under the free
 * space floor (with block_lock held; stats under it too for cache_*).
 * Returns whether INCOMING bytes now fit: a cache with nothing left to drop
 * may still be short (the disk is full of other things, or of a staged
 * file whose blocks are being imported), and then the block is not kept
 * rather than written into the floor. */
int cache_index_evict(struct cache *c, uint64_t incoming)
{
	uint64_t total = 0, avail = UINT64_MAX;

	cache_disk_space(c, &total, &avail);
	/* blocks being written right now are not off the free space yet */
	if (avail != UINT64_MAX)
		avail = avail > c->reserved ? avail - c->reserved : 0;
	while (c->lru_tail && (c->st.cache_bytes + c->reserved + incoming > c->cfg.size_max ||
			       (avail != UINT64_MAX && avail < c->cfg.free_min + incoming))) {
		struct block *b = c->lru_tail;
		char path[4300];

		cache_block_path(c, b->sha256, b->idx, path, sizeof(path));
		unlink(path);
		if (avail != UINT64_MAX)
			avail += b->bytes;
		cache_index_remove(c, b);
	}
	return c->st.cache_bytes + c->reserved + incoming <= c->cfg.size_max &&
	       (avail == UINT64_MAX || avail >= c->cfg.free_min + incoming);
}

/* --- start ---------------------------------------------------------------- */

struct found {
	char sha256[65];
	uint64_t idx, bytes;
	time_t atime;
};

static int cmp_found(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	return x->atime < y->atime ? -1 : x->atime > y->atime;
}

/* Rebuilds the index from blocks/: one readdir per subfolder and one
 * fstatat per block, then the LRU list in access order. */
int cache_index_rebuild(struct cache *c)
{
	struct found *list = NULL;
	size_t n = 0, cap = 0;
	DIR *top = opendir(c->blocks_dir);
	struct dirent *sub;

	if (!top)
		return -errno;
	while ((sub = readdir(top))) {
		struct dirent *de;
		int dfd;
		DIR *d;

		if (sub->d_name[0] == '.')
			continue;
		dfd = openat(dirfd(top), sub->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || !(d = fdopendir(dfd))) {
			if (dfd >= 0)
				close(dfd);
			continue;
		}
		while ((de = readdir(d))) {
			struct stat st;
			char *dot;

			if (de->d_name[0] == '.') {
				if (strncmp(de->d_name, ".tmp.", 5) == 0)
					unlinkat(dirfd(d), de->d_name, 0);
				continue;
			}
			dot = strchr(de->d_name, '.');
			if (!dot || dot - de->d_name != 64 || fstatat(dirfd(d), de->d_name, &st, 0) != 0)
				continue;
			if (n == cap) {
				struct found *l = realloc(list, (cap = cap ? cap * 2 : 1024) * sizeof(*l));

				if (!l)
					break;
				list = l;
			}
			memcpy(list[n].sha256, de->d_name, 64);
			list[n].sha256[64] = '\0';
			list[n].idx = strtoull(dot + 1, NULL, 10);
			list[n].bytes = (uint64_t)st.st_size;
			list[n].atime = st.st_atime > st.st_mtime ? st.st_atime : st.st_mtime;
			n++;
		}
		closedir(d);
	}
	closedir(top);
	if (n)
		qsort(list, n, sizeof(*list), cmp_found);
	pthread_mutex_lock(&c->block_lock);
	for (size_t i = 0; i < n; i++) {
		struct block *b = cache_index_add(c, list[i].sha256, list[i].idx);

		if (!b)
			break;
		b->bytes = list[i].bytes;
		c->st.cache_bytes += b->bytes;
		c->st.cache_blocks++;
		cache_index_front(c, b);
	}
	cache_index_evict(c, 0);
	pthread_mutex_unlock(&c->block_lock);
	free(list);
	return 0;
}

void cache_index_free(struct cache *c)
{
	for (size_t i = 0; c->blocks && i < c->nblock_buckets; i++) {
		struct block *b = c->blocks[i], *bn;

		for (; b; b = bn) {
			bn = b->next;
			free(b);
		}
	}
	free(c->blocks);
	c->blocks = NULL;
}
