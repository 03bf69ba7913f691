/*
 * cache_block.c - the block cache: content read from the store, kept on
 * local disk in blocks, under a size cap.
 *
 * A block is blocks/ab/<sha256>.<n>: the bytes of block n of that content
 * followed by their XXH3-64 (8 bytes, little endian).  Every read checks the
 * sum; a block that fails is dropped and fetched again, with a log line.
 * Blocks are written to a temporary name and renamed, so a crash leaves
 * whole blocks or none (and a torn one fails its sum).
 *
 * The index (every block's size and place in the LRU list, and the
 * eviction under the cap) is cache_block_index.c's.
 *
 * Reading: the blocks a read covers are taken from the cache or fetched
 * from the store in the reader's thread; a reader that goes on sequentially
 * has the next blocks fetched ahead by fetcher threads (runs of up to 4 MiB
 * of blocks in one ranged GET), or read from disk ahead when they are
 * cached, and a small file (a few blocks) is fetched whole on first read.
 * A fetch already under way is waited for, never sent twice.  Fetchers
 * fetch into the blocks kept in memory (hot slots), and a read within one
 * of them may be answered from it in place (cache_read_ref): the bytes
 * the store sent are copied only into the kernel's reply and the file.
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "backend/backend.h"
#include "util/log.h"
#include "util/sha256.h"

#define SUM_BYTES 8
#define SMALL_BLOCKS 4		/* files of up to this many blocks are fetched whole */
/* Blocks ahead of a sequential reader are fetched this many bytes (of
 * whole blocks) to a ranged GET: a store pays per request (s3rver here
 * read 1 GiB cold at 0.54 of curl's one GET in 1 MiB ranges, 0.70 in 2 and
 * 4 MiB ones), while the blocks stay 1 MiB in memory and on disk. */
#define FETCH_RUN_BYTES (4u << 20)

/* A block read last, checked, kept in memory: a reader going through a
 * block in kernel-sized pieces reads and checks it once, not once a piece.
 * Fetchers fetch into these slots (a run of blocks into as many adjacent
 * slots: they are one piece of memory) and write the cache files from
 * them, so a sequential reader is answered from the very bytes the store
 * sent, as soon as they have arrived: room for the reader's blocks and a
 * read-ahead window of 8 in flight.  A slot in use (pinned: a reply sent
 * from it, a fetcher filling it or writing it to its file) is not given to
 * another block. */
#define HOT_BLOCKS 16
struct hot_block {
	char sha256[65];
	uint64_t idx;
	size_t len;
	uint64_t used;		/* hot_clock at the last use; 0: empty, or being filled */
	int pins;		/* threads using data outside block_lock */
	char *data;		/* block_size bytes of c->hot_mem */
};

struct fetch {
	char sha256[65];
	uint64_t idx, size;
	uint64_t count;		/* blocks IDX.. of one ranged GET */
	struct fetch *next;
};

/* --- block files --------------------------------------------------------- */

/* Reads block (SHA, IDX) of LEN bytes into DST: 0, -ENOENT (not cached), or
 * -EBADMSG (failed its sum: the file is gone now). */
static int block_load(struct cache *c, const char *sha, uint64_t idx, size_t len, void *dst)
{
	char path[4300];
	unsigned char sum[SUM_BYTES];
	uint64_t want, got;
	struct block *b;
	ssize_t n;
	int fd;

	pthread_mutex_lock(&c->block_lock);
	b = cache_index_find(c, sha, idx);
	if (!b || b->fetching) {
		pthread_mutex_unlock(&c->block_lock);
		return -ENOENT;
	}
	cache_index_front(c, b);
	pthread_mutex_unlock(&c->block_lock);

	cache_block_path(c, sha, idx, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto bad;
	n = pread(fd, dst, len, 0);
	if (n == (ssize_t)len)
		n = pread(fd, sum, SUM_BYTES, (off_t)len);
	close(fd);
	if (n != SUM_BYTES)
		goto bad;
	want = XXH3_64bits(dst, len);
	got = 0;
	for (int i = SUM_BYTES - 1; i >= 0; i--)
		got = got << 8 | sum[i];
	if (want == got)
		return 0;
bad:
	log_warn("cache block %.12s....%" PRIu64 " failed its check (missing, short or changed): dropped,"
		 " fetching it again", sha, idx);
	unlink(path);
	pthread_mutex_lock(&c->block_lock);
	if ((b = cache_index_find(c, sha, idx)) && !b->fetching)
		cache_index_remove(c, b);
	pthread_mutex_unlock(&c->block_lock);
	return -EBADMSG;
}

/* Writes block (SHA, IDX) and puts it in the index (B, which is marked
 * fetching, or a new entry when B is NULL). */
static void block_save(struct cache *c, const char *sha, uint64_t idx, const void *data, size_t len)
{
	char path[4300], tmp[4400], dir[4300];
	unsigned char sum[SUM_BYTES];
	uint64_t x = XXH3_64bits(data, len), n;
	struct block *b;
	int fd, ok = 0;

	for (int i = 0; i < SUM_BYTES; i++, x >>= 8)
		sum[i] = (unsigned char)(x & 0xff);
	cache_block_path(c, sha, idx, path, sizeof(path));
	snprintf(dir, sizeof(dir), "%s/%.2s", c->blocks_dir, sha);
	/* Room for this block is made and held under the lock, so blocks
	 * written in parallel cannot together pass the cap. */
	pthread_mutex_lock(&c->block_lock);
	n = ++c->tmp_counter;
	if (!cache_index_evict(c, len + SUM_BYTES)) {
		/* no room even with the cache empty: served, not kept */
		b = cache_index_find(c, sha, idx);
		if (b && b->fetching)
			cache_index_remove(c, b);
		pthread_cond_broadcast(&c->fetched);
		pthread_mutex_unlock(&c->block_lock);
		return;
	}
	c->reserved += len + SUM_BYTES;
	pthread_mutex_unlock(&c->block_lock);
	snprintf(tmp, sizeof(tmp), "%s/.tmp.%" PRIu64, dir, n);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	ok = write(fd, data, len) == (ssize_t)len && write(fd, sum, SUM_BYTES) == SUM_BYTES;
	close(fd);
	ok = ok && rename(tmp, path) == 0;
	if (!ok)
		unlink(tmp);
out:
	pthread_mutex_lock(&c->block_lock);
	c->reserved -= len + SUM_BYTES;
	b = cache_index_find(c, sha, idx);
	if (ok) {
		if (!b)
			b = cache_index_add(c, sha, idx);
		if (b) {
			if (!b->fetching)
				c->st.cache_bytes -= b->bytes, c->st.cache_blocks--;
			b->fetching = 0;
			b->bytes = len + SUM_BYTES;
			c->st.cache_bytes += b->bytes;
			c->st.cache_blocks++;
			cache_index_front(c, b);
		}
	} else if (b && b->fetching) {
		cache_index_remove(c, b);
	}
	pthread_cond_broadcast(&c->fetched);
	pthread_mutex_unlock(&c->block_lock);
}

/* Fetches block IDX of content SHA (SIZE bytes in all) from the store into
 * DST (LEN bytes); the caller caches it.  A small file that is one block is
 * checked against its SHA-256 on the way. */
static int block_fetch(struct cache *c, const char *sha, uint64_t idx, uint64_t size, void *dst, size_t len)
{
	char key[BACKEND_KEY_MAX];
	size_t got = 0;
	int rc;

	cache_key_for(c, sha, key);
	cache_count(c, &c->st.store_gets, 1);
	rc = backend_get_range(c->backend, key, idx * c->cfg.block_size, len, dst, &got);
	if (rc == 0 && got != len) {
		log_error("store returned %zu of %zu bytes of block %" PRIu64 " of '%s'", got, len, idx, key);
		rc = -EIO;
	}
	if (rc == 0 && len == size) {
		struct sha256 h = { 0 };
		char hex[SHA256_HEX_LEN + 1];

		if (sha256_init(&h) == 0) {
			sha256_update(&h, dst, len);
			sha256_final(&h, hex);
			sha256_release(&h);
			if (strcmp(hex, sha) != 0) {
				log_error("content of '%s' from the store does not match its hash", key);
				rc = -EIO;
			}
		}
	}
	if (rc) {
		log_error("cannot fetch block %" PRIu64 " of '%s': %s", idx, key, strerror(-rc));
		return rc == -ENOENT ? -EIO : rc;
	}
	return 0;
}

/* Marks (SHA, IDX) as being fetched by the caller: 1 when the caller should
 * fetch it, 0 when it is cached or another thread fetches it. */
static int claim_fetch(struct cache *c, const char *sha, uint64_t idx)
{
	struct block *b;
	int mine = 0;

	pthread_mutex_lock(&c->block_lock);
	b = cache_index_find(c, sha, idx);
	if (!b && (b = cache_index_add(c, sha, idx))) {
		b->fetching = 1;
		clock_gettime(CLOCK_REALTIME, &b->since);
		mine = 1;
	}
	pthread_mutex_unlock(&c->block_lock);
	return mine;
}

static void release_fetch(struct cache *c, const char *sha, uint64_t idx)
{
	struct block *b;

	pthread_mutex_lock(&c->block_lock);
	if ((b = cache_index_find(c, sha, idx)) && b->fetching)
		cache_index_remove(c, b);
	pthread_cond_broadcast(&c->fetched);
	pthread_mutex_unlock(&c->block_lock);
}

static struct hot_block *hot_find(struct cache *c, const char *sha, uint64_t idx, size_t len);

/* Waits while a fetch of (SHA, IDX), LEN bytes, is under way and the block
 * has not arrived in memory; -ETIMEDOUT once it has taken the I/O timeout
 * (counted from its start: a second reader of a hung block gives up as
 * soon as the first one). */
static int wait_fetch(struct cache *c, const char *sha, uint64_t idx, size_t len)
{
	struct timespec until;
	struct block *b;
	int rc = 0;

	pthread_mutex_lock(&c->block_lock);
	while (rc == 0 && (b = cache_index_find(c, sha, idx)) && b->fetching && !hot_find(c, sha, idx, len)) {
		until = b->since;
		until.tv_sec += (time_t)c->cfg.io_timeout;
		rc = pthread_cond_timedwait(&c->fetched, &c->block_lock, &until) == ETIMEDOUT ? -ETIMEDOUT : 0;
	}
	pthread_mutex_unlock(&c->block_lock);
	return rc;
}

static void enqueue_fetch(struct cache *c, const char *sha, uint64_t idx, uint64_t count, uint64_t size,
			  int urgent);

/* The hot slot of (SHA, IDX), LEN bytes, or NULL (with block_lock held). */
static struct hot_block *hot_find(struct cache *c, const char *sha, uint64_t idx, size_t len)
{
	for (int i = 0; c->hot && i < HOT_BLOCKS; i++) {
		struct hot_block *h = &c->hot[i];

		if (h->used && h->idx == idx && h->len == len && strcmp(h->sha256, sha) == 0)
			return h;
	}
	return NULL;
}

/* The hot slot of (SHA, IDX), LEN bytes, pinned (its bytes stay until
 * hot_unpin), or NULL when the block is not hot. */
static struct hot_block *hot_pin(struct cache *c, const char *sha, uint64_t idx, size_t len)
{
	struct hot_block *h;

	pthread_mutex_lock(&c->block_lock);
	if ((h = hot_find(c, sha, idx, len))) {
		h->used = ++c->hot_clock;
		h->pins++;
	}
	pthread_mutex_unlock(&c->block_lock);
	return h;
}

static void hot_unpin(struct cache *c, struct hot_block *h);

/* Copies N bytes at FROM of the hot copy of (SHA, IDX), LEN bytes in all,
 * into DST: 1, or 0 when it is not hot.  A reader of part of a block (the
 * kernel asks for 128 KiB at a time where its readahead is not raised)
 * copies only that part; the copy is made outside block_lock, with the
 * slot pinned, so that readers and fetchers do not wait for it. */
static int hot_get_part(struct cache *c, const char *sha, uint64_t idx, size_t len, size_t from, size_t n, void *dst)
{
	struct hot_block *h = hot_pin(c, sha, idx, len);

	if (!h)
		return 0;
	memcpy(dst, h->data + from, n);
	hot_unpin(c, h);
	return 1;
}

/* N adjacent slots not in use (with block_lock held), those whose most
 * recent use is the oldest, emptied and pinned for the caller to fill, or
 * NULL when no N adjacent slots are free. */
static struct hot_block *hot_claim_locked(struct cache *c, int n)
{
	struct hot_block *best = NULL;
	uint64_t best_used = 0;

	for (int i = 0; c->hot && i + n <= HOT_BLOCKS; i++) {
		uint64_t used = 0;
		int j;

		for (j = i; j < i + n && !c->hot[j].pins; j++)
			used = c->hot[j].used > used ? c->hot[j].used : used;
		if (j == i + n && (!best || used < best_used))
			best = &c->hot[i], best_used = used;
	}
	for (int j = 0; best && j < n; j++) {
		best[j].used = 0;	/* not found by readers while it is filled */
		best[j].pins = 1;
	}
	return best;
}

static struct hot_block *hot_claim(struct cache *c, int n)
{
	struct hot_block *h;

	pthread_mutex_lock(&c->block_lock);
	h = hot_claim_locked(c, n);
	pthread_mutex_unlock(&c->block_lock);
	return h;
}

/* Claimed slot H now holds checked block (SHA, IDX) of LEN bytes: readers
 * find it (a reader waiting for its fetch takes it at once).  H stays
 * pinned for the caller. */
static void hot_publish(struct cache *c, struct hot_block *h, const char *sha, uint64_t idx, size_t len)
{
	pthread_mutex_lock(&c->block_lock);
	snprintf(h->sha256, sizeof(h->sha256), "%s", sha);
	h->idx = idx;
	h->len = len;
	h->used = ++c->hot_clock;
	pthread_cond_broadcast(&c->fetched);
	pthread_mutex_unlock(&c->block_lock);
}

/* Keeps a copy of checked block (SHA, IDX), LEN bytes at DATA, in the
 * least recently used free slot (none when every slot is pinned).  A block
 * already hot is only touched. */
static void hot_put(struct cache *c, const char *sha, uint64_t idx, const char *data, size_t len)
{
	struct hot_block *h;

	if (len > c->cfg.block_size)
		return;
	pthread_mutex_lock(&c->block_lock);
	if ((h = hot_find(c, sha, idx, len))) {
		h->used = ++c->hot_clock;
		pthread_mutex_unlock(&c->block_lock);
		return;
	}
	h = hot_claim_locked(c, 1);
	pthread_mutex_unlock(&c->block_lock);
	if (!h)
		return;
	memcpy(h->data, data, len);
	hot_publish(c, h, sha, idx, len);
	hot_unpin(c, h);
}

static void hot_unpin(struct cache *c, struct hot_block *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&c->block_lock);
	h->pins--;
	pthread_mutex_unlock(&c->block_lock);
}

void cache_ref_drop(struct cache *c, struct cache_ref *ref)
{
	if (!ref)
		return;
	hot_unpin(c, ref->pin);
	ref->data = NULL;
	ref->pin = NULL;
}

/* Caches block (SHA, IDX), LEN bytes at DATA, just fetched: first a copy
 * in memory, where a reader waiting for it takes it at once, then its
 * file. */
static void block_keep(struct cache *c, const char *sha, uint64_t idx, const char *data, size_t len)
{
	hot_put(c, sha, idx, data, len);
	block_save(c, sha, idx, data, len);
}

/* One block into DST: hot in memory, cached, fetched by us, or waited for.
 * A block read from its file is not kept in memory: the whole block was
 * asked for, so the kernel's page cache keeps it.  With PIN, a block hot
 * in memory (or arriving there) is not copied: *PIN is its slot, pinned,
 * and DST is untouched; *PIN is NULL when DST has the bytes. */
static int block_get(struct cache *c, const char *sha, uint64_t idx, uint64_t size, void *dst, size_t len,
		     struct hot_block **pin)
{
	if (pin)
		*pin = NULL;
	for (int tries = 0; tries < 3; tries++) {
		int rc;

		if (pin ? (*pin = hot_pin(c, sha, idx, len)) != NULL : hot_get_part(c, sha, idx, len, 0, len, dst)) {
			cache_count(c, &c->st.hits, 1);
			return 0;
		}
		if ((rc = block_load(c, sha, idx, len, dst)) == 0) {
			cache_count(c, &c->st.hits, 1);
			return 0;
		}
		if (claim_fetch(c, sha, idx)) {
			cache_count(c, &c->st.misses, 1);
			if (!c->nfetchers) {
				rc = block_fetch(c, sha, idx, size, dst, len);
				if (rc)
					release_fetch(c, sha, idx);
				else
					block_save(c, sha, idx, dst, len);
				return rc;
			}
			/* A fetcher does it, so that this reader can give up
			 * after the I/O timeout even when the store hangs. */
			enqueue_fetch(c, sha, idx, 1, size, 1);
		}
		if ((rc = wait_fetch(c, sha, idx, len)) != 0) {
			log_error("gave up waiting %.0f s for block %" PRIu64 " of %.12s... from the store",
				  c->cfg.io_timeout, idx, sha);
			return -EIO;
		}
	}
	return -EIO;
}

/* --- read-ahead ---------------------------------------------------------- */

static void release_fetches(struct cache *c, const char *sha, uint64_t idx, uint64_t count)
{
	for (uint64_t i = 0; i < count; i++)
		release_fetch(c, sha, idx + i);
}

/* Hands claimed blocks IDX.. IDX+COUNT-1 of SHA to the fetcher threads, for
 * one ranged GET: at the front of their queue when a reader waits for it
 * (URGENT), else behind. */
static void enqueue_fetch(struct cache *c, const char *sha, uint64_t idx, uint64_t count, uint64_t size,
			  int urgent)
{
	struct fetch *f = calloc(1, sizeof(*f));

	if (!f) {
		release_fetches(c, sha, idx, count);
		return;
	}
	snprintf(f->sha256, sizeof(f->sha256), "%s", sha);
	f->idx = idx;
	f->count = count;
	f->size = size;
	pthread_mutex_lock(&c->block_lock);
	if (urgent) {
		f->next = c->fetch_head;
		c->fetch_head = f;
		if (!c->fetch_tail)
			c->fetch_tail = f;
	} else {
		if (c->fetch_tail)
			c->fetch_tail->next = f;
		else
			c->fetch_head = f;
		c->fetch_tail = f;
	}
	/* one fetcher for one fetch: waking them all (and the readers
	 * waiting for blocks) at every queued run and every arrived block
	 * was 15 % of the daemon's CPU in task switches reading cold */
	pthread_cond_signal(&c->queued);
	pthread_mutex_unlock(&c->block_lock);
}

static void queue_fetch(struct cache *c, const char *sha, uint64_t idx, uint64_t size)
{
	if (c->nfetchers && claim_fetch(c, sha, idx))
		enqueue_fetch(c, sha, idx, 1, size, 0);
}

/* Blocks IDX.. IDX+COUNT-1 of SHA ahead of a sequential reader: those not
 * cached are claimed and fetched, each contiguous run of them in one
 * ranged GET; the files of those cached are read into the page cache in
 * the background (POSIX_FADV_WILLNEED), so that a reader of the block
 * cache finds the next blocks read from the disk already instead of
 * waiting for each in turn. */
static void queue_run(struct cache *c, const char *sha, uint64_t idx, uint64_t count, uint64_t size)
{
	uint64_t run = 0;

	for (uint64_t i = idx; i < idx + count; i++) {
		char path[4300];
		struct block *b;
		int cached = 0, claimed = 0, fd;

		pthread_mutex_lock(&c->block_lock);
		b = cache_index_find(c, sha, i);
		if (b)
			cached = !b->fetching;
		else if (c->nfetchers && (b = cache_index_add(c, sha, i))) {
			b->fetching = 1;
			clock_gettime(CLOCK_REALTIME, &b->since);
			claimed = 1;
		}
		pthread_mutex_unlock(&c->block_lock);
		run += claimed;
		if (run && (!claimed || i + 1 == idx + count)) {
			/* the run ends before this block, or with it */
			enqueue_fetch(c, sha, (claimed ? i + 1 : i) - run, run, size, 0);
			run = 0;
		}
		if (!cached)
			continue;
		cache_block_path(c, sha, i, path, sizeof(path));
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
			close(fd);
		}
	}
}

/* A buffer for a run of blocks (FETCH_RUN_BYTES), from those fetchers gave
 * back: as many exist as runs were ever fetched at once (two or three for
 * a reader), not one per fetcher. */
static char *run_take(struct cache *c)
{
	void *p;

	pthread_mutex_lock(&c->block_lock);
	if ((p = c->runs_free))
		c->runs_free = *(void **)p;
	pthread_mutex_unlock(&c->block_lock);
	return p ? p : malloc(FETCH_RUN_BYTES);
}

static void run_give(struct cache *c, char *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&c->block_lock);
	*(void **)p = c->runs_free;
	c->runs_free = p;
	pthread_mutex_unlock(&c->block_lock);
}

static void *fetcher_main(void *arg)
{
	struct cache *c = arg;
	uint64_t bs = c->cfg.block_size, nrun = FETCH_RUN_BYTES / bs ? FETCH_RUN_BYTES / bs : 1;

	for (;;) {
		struct hot_block *h = NULL;
		struct fetch *f;
		size_t len;
		char *dst, *run = NULL;

		pthread_mutex_lock(&c->block_lock);
		while (!c->stopping && !c->fetch_head)
			pthread_cond_wait(&c->queued, &c->block_lock);
		if (c->stopping) {
			pthread_mutex_unlock(&c->block_lock);
			break;
		}
		f = c->fetch_head;
		c->fetch_head = f->next;
		if (!c->fetch_head)
			c->fetch_tail = NULL;
		pthread_mutex_unlock(&c->block_lock);
		len = (size_t)(f->size - f->idx * bs < f->count * bs ? f->size - f->idx * bs : f->count * bs);
		/* straight into as many adjacent hot slots (no copy: the file
		 * is written and the reader answered from them), else into a
		 * run buffer, copied into slots block by block */
		if (f->count <= nrun && !(h = hot_claim(c, (int)f->count)))
			run = run_take(c);
		dst = h ? h->data : run;
		if (!dst || block_fetch(c, f->sha256, f->idx, f->size, dst, len) != 0) {
			release_fetches(c, f->sha256, f->idx, f->count);
			for (uint64_t i = 0; h && i < f->count; i++)
				hot_unpin(c, &h[i]);
		} else if (h) {
			for (uint64_t i = 0; i < f->count; i++)
				hot_publish(c, &h[i], f->sha256, f->idx + i, (size_t)(len - i * bs < bs ? len - i * bs : bs));
			for (uint64_t i = 0; i < f->count; i++) {
				block_save(c, f->sha256, f->idx + i, h[i].data, h[i].len);
				hot_unpin(c, &h[i]);
			}
		} else {
			for (uint64_t i = 0; i < f->count; i++)
				block_keep(c, f->sha256, f->idx + i, run + i * bs,
					   (size_t)(len - i * bs < bs ? len - i * bs : bs));
		}
		run_give(c, run);
		free(f);
	}
	return NULL;
}

int cache_blocks_read(struct cache *c, const char *sha, uint64_t size, uint64_t off, size_t len,
		      void *dst, size_t *got, struct cache_reader *r, struct cache_ref *ref)
{
	uint64_t bs = c->cfg.block_size, first = off / bs, last = (off + len - 1) / bs;
	uint64_t nblocks = (size + bs - 1) / bs;
	uint64_t nrun = FETCH_RUN_BYTES / bs ? FETCH_RUN_BYTES / bs : 1;
	char *buf = NULL;
	/* a read within one block may be answered from its hot slot */
	int one = ref && first == last;
	int rc = 0;

	if (ref)
		ref->data = NULL, ref->pin = NULL;
	if (nrun > (uint64_t)c->cfg.readahead)
		nrun = (uint64_t)c->cfg.readahead;
	*got = 0;
	if (len == 0)
		return 0;
	/* Read-ahead: a small file whole; a sequential reader's next blocks. */
	if (nblocks > 1 && nblocks <= SMALL_BLOCKS && (!r || r->next_block == 0)) {
		for (uint64_t i = 0; i < nblocks; i++)
			if (i < first || i > last)
				queue_fetch(c, sha, i, size);
	} else if (r) {
		uint64_t ra = (uint64_t)c->cfg.readahead, upto = last + ra, from, to;
		int near;

		/* under the lock: the kernel sends a reader's requests several at
		 * once, on as many threads, and they arrive out of order */
		pthread_mutex_lock(&c->block_lock);
		near = first + ra >= r->next_block && first <= r->next_block + ra;
		r->sequential = near ? r->sequential + 1 : 0;
		if (!near || last + 1 > r->next_block)
			r->next_block = last + 1;
		/* each block once: after those asked for already, or after this
		 * read when the reader jumped ahead or went back */
		if (r->ahead <= last || r->ahead > upto + ra)
			r->ahead = last + 1;
		from = to = r->ahead;
		/* runs of blocks, while a whole one fits the window */
		while (r->sequential >= 1 && to < nblocks && (to + nrun - 1 <= upto || upto + 1 >= nblocks))
			to += nblocks - to < nrun ? nblocks - to : nrun;
		r->ahead = to;
		pthread_mutex_unlock(&c->block_lock);
		for (uint64_t i = from; i < to; i += nrun)
			queue_run(c, sha, i, to - i < nrun ? to - i : nrun, size);
	}

	for (uint64_t i = first; i <= last && rc == 0; i++) {
		uint64_t bstart = i * bs, blen = size - bstart < bs ? size - bstart : bs;
		uint64_t from = off > bstart ? off - bstart : 0;
		uint64_t upto = off + len < bstart + blen ? off + len - bstart : blen;
		int whole = from == 0 && upto == blen;
		char *target = whole ? (char *)dst + *got : NULL;

		struct hot_block *h = NULL;

		if (!whole && !one && hot_get_part(c, sha, i, (size_t)blen, (size_t)from, (size_t)(upto - from),
						   (char *)dst + *got)) {
			cache_count(c, &c->st.hits, 1);
			*got += (size_t)(upto - from);
			continue;
		}
		if (one && (h = hot_pin(c, sha, i, (size_t)blen)))
			cache_count(c, &c->st.hits, 1);
		else if (!whole && !buf && !(buf = malloc(bs)))
			rc = -ENOMEM;
		else
			rc = block_get(c, sha, i, size, whole ? target : buf, (size_t)blen, one ? &h : NULL);
		if (rc == 0 && h) {
			/* the reply is sent from the slot */
			ref->data = h->data + from;
			ref->pin = h;
			cache_count(c, &c->st.reads_in_place, 1);
			*got += (size_t)(upto - from);
			continue;
		}
		if (rc == 0 && !whole) {
			memcpy((char *)dst + *got, buf + from, (size_t)(upto - from));
			/* the rest of it is asked for next */
			hot_put(c, sha, i, buf, (size_t)blen);
		}
		if (rc == 0)
			*got += (size_t)(upto - from);
	}
	free(buf);
	return rc;
}

void cache_blocks_import(struct cache *c, const char *sha, int fd, uint64_t size)
{
	uint64_t bs = c->cfg.block_size;
	char *buf;

	if (size > c->cfg.size_max / 2)
		return;		/* would push out most of the cache */
	buf = malloc(bs);
	if (!buf)
		return;
	for (uint64_t i = 0; i * bs < size; i++) {
		uint64_t blen = size - i * bs < bs ? size - i * bs : bs;

		if (!claim_fetch(c, sha, i))
			continue;
		if (pread(fd, buf, (size_t)blen, (off_t)(i * bs)) != (ssize_t)blen) {
			release_fetch(c, sha, i);
			break;
		}
		block_save(c, sha, i, buf, (size_t)blen);
	}
	free(buf);
}

/* --- start and stop ------------------------------------------------------ */

int cache_blocks_open(struct cache *c)
{
	c->nblock_buckets = 1 << 16;
	c->blocks = calloc(c->nblock_buckets, sizeof(*c->blocks));
	c->hot = calloc(HOT_BLOCKS, sizeof(*c->hot));
	c->hot_mem = malloc((size_t)HOT_BLOCKS * c->cfg.block_size);
	if (!c->blocks || !c->hot || !c->hot_mem)
		return -ENOMEM;
	for (int i = 0; i < HOT_BLOCKS; i++)
		c->hot[i].data = c->hot_mem + (size_t)i * c->cfg.block_size;
	return cache_index_rebuild(c);
}

int cache_blocks_start(struct cache *c)
{
	c->fetchers = calloc((size_t)c->cfg.fetchers, sizeof(*c->fetchers));
	if (!c->fetchers)
		return -ENOMEM;
	for (int i = 0; i < c->cfg.fetchers; i++) {
		if (pthread_create(&c->fetchers[i], NULL, fetcher_main, c) != 0)
			return -EAGAIN;
		c->nfetchers++;
	}
	return 0;
}

void cache_blocks_stop(struct cache *c)
{
	struct fetch *f, *fn;

	if (!c->nfetchers)
		return;
	pthread_mutex_lock(&c->block_lock);
	c->stopping = 1;
	pthread_cond_broadcast(&c->queued);
	pthread_cond_broadcast(&c->fetched);
	pthread_mutex_unlock(&c->block_lock);
	for (int i = 0; i < c->nfetchers; i++)
		pthread_join(c->fetchers[i], NULL);
	c->nfetchers = 0;
	free(c->fetchers);
	c->fetchers = NULL;
	for (f = c->fetch_head; f; f = fn) {
		fn = f->next;
		release_fetches(c, f->sha256, f->idx, f->count);
		free(f);
	}
	c->fetch_head = c->fetch_tail = NULL;
}

void cache_blocks_free(struct cache *c)
{
	cache_index_free(c);
	free(c->hot_mem);
	c->hot_mem = NULL;
	free(c->hot);
	c->hot = NULL;
	while (c->runs_free) {
		void *p = c->runs_free;

		c->runs_free = *(void **)p;
		free(p);
	}
}
