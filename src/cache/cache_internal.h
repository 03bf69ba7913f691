/*
 * cache_internal.h - what the files of src/cache share.  Not for use
 * outside src/cache.
 */
#ifndef MVFS_CACHE_INTERNAL_H
#define MVFS_CACHE_INTERNAL_H

#include <pthread.h>

#include "backend/backend.h"
#include "cache/cache.h"

/* How long a file uploaded from here still counts as held here: longer than
 * a listing keeps rows it read before showing them (cache_holds_file). */
#define CACHE_RECENT_SECS 60

struct staged;
struct staged_file;
struct upload;
struct block;
struct fetch;
struct hot_block;

struct cache {
	struct backend *backend;
	struct cache_config cfg;
	char key_prefix[BACKEND_KEY_PREFIX_MAX + 1];	/* cfg.key_prefix, copied */
	char *dir, *staging_dir, *journal_dir, *blocks_dir, *aside_dir;

	/* write-back (cache_stage.c), under lock */
	pthread_mutex_t lock;
	pthread_cond_t changed;		/* queue or staged set changed */
	struct staged **staged;		/* sha256 -> journal entries waiting */
	size_t nstaged_buckets;
	struct upload *queue_head, *queue_tail;
	uint64_t last_seq;
	cache_uploaded_fn uploaded;
	cache_uploaded_many_fn uploaded_many;
	void *uploaded_arg;
	struct upload *rec_head, *rec_tail;	/* in the store, their record to make */
	int nrec;			/* ... how many */
	uint64_t sending, sent;		/* awaited uploads begun, and done or failed */
	int recording;			/* an uploader is making a batch of them */
	pthread_t *uploaders;
	int nuploaders;
	int stopping;
	uint64_t staged_files, staged_bytes, set_aside;
	struct staged_file **files;	/* inode -> its entries waiting, or when its last went */
	size_t nfile_buckets;
	time_t files_swept;		/* monotonic seconds of the last sweep of uploaded files */

	/* block cache (cache_block.c), under block_lock */
	pthread_mutex_t block_lock;
	pthread_cond_t fetched;		/* a block arrived (in memory or its file), or its fetch failed */
	pthread_cond_t queued;		/* a fetch was queued, or the fetchers stop: for them alone */
	struct block **blocks;
	size_t nblock_buckets;
	struct block *lru_head, *lru_tail;	/* head: most recent */
	struct fetch *fetch_head, *fetch_tail;	/* read-ahead queue */
	pthread_t *fetchers;
	int nfetchers;
	uint64_t tmp_counter;
	uint64_t reserved;		/* bytes of blocks being written */
	struct hot_block *hot;		/* blocks read last, checked, in memory */
	char *hot_mem;			/* their bytes: one piece, a block a slot */
	uint64_t hot_clock;
	void *runs_free;		/* fetchers' run buffers not in use, linked */

	/* numbers (cache_stats), under stats_lock */
	pthread_mutex_t stats_lock;
	struct cache_stats st;
	struct timespec rate_since;
	uint64_t rate_bytes;
};

/* cache_block_index.c: the block cache's index, with block_lock held
 * (but for rebuild and free, which take it or need none). */
struct block {
	char sha256[65];
	uint64_t idx;
	uint64_t bytes;		/* on disk, with the sum */
	int fetching;		/* being fetched: not on disk yet */
	struct timespec since;	/* when that fetch began */
	struct block *next;	/* hash chain */
	struct block *lru_prev, *lru_next;
};
/* The file of block IDX of content SHA: blocks/ab/<sha>.<idx>. */
void cache_block_path(const struct cache *c, const char *sha, uint64_t idx, char *buf, size_t len);
/* The entry of block (SHA, IDX), or NULL. */
struct block *cache_index_find(struct cache *c, const char *sha, uint64_t idx);
/* A new entry (not counted, not in the LRU list), or NULL (ENOMEM). */
struct block *cache_index_add(struct cache *c, const char *sha, uint64_t idx);
/* Takes B out (uncounting it unless it is being fetched) and frees it. */
void cache_index_remove(struct cache *c, struct block *b);
/* Moves B to the front of the LRU list (most recently used). */
void cache_index_front(struct cache *c, struct block *b);
/* Drops least recently used blocks while over the cap or under the free
 * space floor; whether INCOMING bytes now fit. */
int cache_index_evict(struct cache *c, uint64_t incoming);
/* Rebuilds the index from blocks/ at start.  0 or -errno. */
int cache_index_rebuild(struct cache *c);
/* Frees the index. */
void cache_index_free(struct cache *c);

/* cache_block.c */
int cache_blocks_open(struct cache *c);
int cache_blocks_start(struct cache *c);
void cache_blocks_stop(struct cache *c);
void cache_blocks_free(struct cache *c);
/* With REF (may be NULL), as cache_read_ref. */
int cache_blocks_read(struct cache *c, const char *sha256, uint64_t size, uint64_t off, size_t len,
		      void *dst, size_t *got, struct cache_reader *r, struct cache_ref *ref);
/* Keeps the SIZE bytes of FD (content SHA256) as cached blocks, when there
 * is room; best effort. */
void cache_blocks_import(struct cache *c, const char *sha256, int fd, uint64_t size);

/* cache_stage.c */
int cache_stage_open(struct cache *c);
void cache_stage_free(struct cache *c);
/* An fd on the staged content SHA256, or -ENOENT when it is not staged. */
int cache_stage_open_content(struct cache *c, const char *sha256);

/* A journal entry waiting for its upload, in c->queue. */
struct upload {
	struct cache_entry e;
	int verify;		/* recovered after a restart: check the hash first */
	int alone;		/* its record is made with a call of its own */
	int recorded;		/* recorded by a batch: the rest of it is left */
	int awaited;		/* counted in c->sending, not yet in c->sent */
	struct upload *next;
};

/* The longest journal entry name (cache_stage.c says what one holds). */
#define JOURNAL_NAME_MAX 256

/* The staged set, with c->lock held.  The entry of content SHA, or NULL. */
struct staged *cache_staged_find(struct cache *c, const char *sha);
/* Counts one more journal entry for E's file and content.  0, or -ENOMEM
 * and nothing changes. */
int cache_staged_add(struct cache *c, const struct cache_entry *e);
/* Counts one journal entry less for E's file and content; returns 1 when it
 * was the last one for its content.  UPLOADED: the entry's upload is
 * recorded, and its file is still reported for a while; else (sealing
 * failed, content set aside) the file no longer counts. */
int cache_staged_drop(struct cache *c, const struct cache_entry *e, int uploaded);
/* Appends U to the upload queue and wakes the uploaders (c->lock held). */
void cache_queue_push(struct cache *c, struct upload *u);

/* The journal entry name of E into BUF (JOURNAL_NAME_MAX bytes). */
void cache_journal_name(const struct cache_entry *e, char *buf, size_t len);
/* Reads entry NAME back into E; -EINVAL when it is not one. */
int cache_journal_parse(const char *name, struct cache_entry *e);
/* An entry as earlier versions wrote it (journal/<seq>-<sha256>, a small
 * text file of key=value lines) into E: 0, -errno, or -EINVAL. */
int cache_journal_read_old(const char *path, struct cache_entry *e);
/* fsync of the folder PATH: 0 or -errno. */
int cache_fsync_path(const char *path);

/* cache_upload.c */
/* Queues the journal entries an earlier run left, then starts the
 * uploaders.  0 or -errno. */
int cache_stage_start(struct cache *c);
/* Stops the uploaders (an upload in flight goes back to the queue, still
 * journalled) and says what is left for the next mount. */
void cache_stage_stop(struct cache *c);

/* cache.c */
/* Free bytes on the cache folder's disk, and its size. */
int cache_disk_space(const struct cache *c, uint64_t *total, uint64_t *avail);
void cache_count(struct cache *c, uint64_t *field, uint64_t n);
/* mkdir DIR 0700, or check that it is a folder nobody else can write to. */
int cache_private_dir(const char *path);

#endif
