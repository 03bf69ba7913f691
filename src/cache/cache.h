/*
 * cache.h - the layer between the filesystem and the object store.
 *
 * Two jobs, both on local disk under the cache folder:
 *
 *  - Write-back.  A written file is staged; at close its content is sealed
 *    under its SHA-256 (fsync'd, with a journal entry) and close returns.
 *    Uploader threads send sealed content to the store, oldest first, and
 *    then call the owner's "uploaded" function (the commit that marks the
 *    asset uploaded).  After a crash, cache_start finds every journal entry,
 *    checks the staged bytes against their hash and resumes the upload.
 *
 *  - Block cache.  Content read from the store is kept in blocks keyed by
 *    (sha256, block index), each with an XXH3 checksum, under a size cap
 *    with LRU eviction; it survives restarts.  Sequential reads are detected
 *    and read ahead by fetcher threads.
 *
 * src/fs never talks to a backend: every byte goes through here.
 */
#ifndef MVFS_CACHE_H
#define MVFS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct backend;
struct cache;

struct cache_config {
	uint64_t size_max;	/* block cache cap in bytes; 0: 10% of the disk, at most 10 GiB */
	uint64_t free_min;	/* free space the cache leaves on its disk; 0: 5% of the disk */
	uint32_t block_size;	/* 0: 1 MiB */
	uint64_t staging_max;	/* staged bytes waiting for upload; 0: half the disk's free space at mount */
	int uploaders;		/* upload threads; 0: 4 */
	int fetchers;		/* block fetch threads; 0: as many as READAHEAD */
	int readahead;		/* blocks read ahead of a sequential reader; 0: 8 */
	double io_timeout;	/* seconds a read of uncached content may take; 0: 60 */
	/* What the mount user's object keys start with (backend_key_for):
	 * "u/<uuid>/", or "" (NULL too) for a user with the shared keys of
	 * before.  Copied; a prefix backend_key_prefix_valid refuses makes
	 * cache_open fail with EINVAL. */
	const char *key_prefix;
};

/* The longest store key (backend.h's BACKEND_KEY_MAX, checked in cache.c). */
#define CACHE_KEY_MAX 128

/* What the journal keeps about sealed content: enough to commit it after a
 * crash without anything else. */
struct cache_entry {
	uint64_t ino;			/* the file it is the content of */
	char sha256[65];
	uint64_t size;
	char mime[128];
	char memory_type[16];
	struct timespec mtime;
	int has_mtime;
	uint64_t seq;			/* journal order (oldest first) */
	char key[CACHE_KEY_MAX];	/* the store key of its bytes (cache_key_for): set by
					 * cache_stage_seal and at recovery, not journaled */
};

/* Called by an uploader once E's bytes are in the store.  Returns 0 (the
 * journal entry goes), or -errno: the upload is tried again later. */
typedef int (*cache_uploaded_fn)(void *arg, const struct cache_entry *e);
/* Called with the N (<= CACHE_UPLOADED_MAX) entries E whose bytes went to
 * the store while an earlier batch was recorded: RC[i] as cache_uploaded_fn
 * returns for E[i].  An entry whose rc is not 0 goes back to an uploader,
 * which calls cache_uploaded_fn for it alone. */
typedef void (*cache_uploaded_many_fn)(void *arg, const struct cache_entry *const *e, int *rc, int n);
#define CACHE_UPLOADED_MAX 32

/* Opens the cache folder DIR (created 0700 when missing; refused when
 * another user could write to it) in front of backend B (borrowed: the
 * caller frees it after cache_free).  Rebuilds the block index.  Returns
 * NULL with errno set and a log line naming DIR on failure. */
struct cache *cache_open(const char *dir, struct backend *b, const struct cache_config *cfg);
/* Starts the uploader and fetcher threads; journal entries left by an
 * earlier run are checked and queued first.  FN is called for each upload;
 * MANY, when not NULL, for uploads done close together instead. */
int cache_start(struct cache *c, cache_uploaded_fn fn, cache_uploaded_many_fn many, void *arg);
/* Stops the threads (an upload in flight finishes); content still waiting
 * stays journalled for the next start, and a log line says how much. */
void cache_stop(struct cache *c);
/* cache_free(NULL) is a no-op; calls cache_stop when needed. */
void cache_free(struct cache *c);

/* The backend's name ("local", "s3"), for the rows that record where
 * content lives. */
const char *cache_backend_name(const struct cache *c);
/* The store key of content SHA256 of this cache's user (its key_prefix):
 * the key every read, upload and record of this cache uses.  OUT gets ""
 * for a bad hash (see backend_key_for). */
void cache_key_for(const struct cache *c, const char *sha256, char *out);
/* This cache's key prefix ("" for the shared keys). */
const char *cache_key_prefix(const struct cache *c);

/* --- write-back ---------------------------------------------------------- */

/* A new, empty staging file for content being written; returns an fd open
 * read-write (the caller closes it) or -errno.  It has no name until it is
 * sealed: a crash before close leaves nothing behind. */
int cache_stage_create(struct cache *c);
/* The largest file: 5 TiB, the largest object S3 stores.  Every byte of a
 * file is staged, hashed and uploaded, so a sparse file is no cheaper. */
#define CACHE_FILE_MAX (5ULL << 40)

/* Whether file NAME growing by GROWTH bytes to SIZE may be staged beside
 * what is sealed already: 0; -EFBIG past CACHE_FILE_MAX; -ENOSPC when
 * other files wait for upload and SIZE would take them past staging_max (a
 * file bigger than the cap passes when nothing else waits), or when the
 * disk's free-space floor would be passed.  Logs one line saying which
 * limit and how to raise it.  (Files being written at the same time are
 * counted once sealed.) */
int cache_stage_room(struct cache *c, const char *name, uint64_t size, uint64_t growth);
enum cache_seal_flags {
	/* the caller makes the seal durable later, with cache_stage_sync
	 * before anything outside the cache (a row) refers to it */
	CACHE_SEAL_LATER = 1 << 0,
};
/* Seals the E->size bytes of staging file FD, whose SHA-256 is E->sha256:
 * links them under their hash, fsyncs, and writes the journal entry.  When
 * this returns 0 the content survives a crash of the daemon; without
 * CACHE_SEAL_LATER, of the machine too.  FD stays the caller's and must
 * not be written again (write to a new stage). */
int cache_stage_seal(struct cache *c, int fd, struct cache_entry *e, unsigned flags);
/* Makes content sealed with CACHE_SEAL_LATER durable: with FD, that
 * file's bytes; with -1, the journal's names of every entry sealed so far.
 * Call it for each such file, then once with -1.  0 or -errno (logged). */
int cache_stage_sync(struct cache *c, int fd);
/* Gives sealed entry E, sealed with CACHE_SEAL_LATER and not yet queued
 * for upload, the modification time MTIME: renames its journal entry (the
 * name holds the time) and updates E.  Durable with the next
 * cache_stage_sync(c, -1), like the seal itself.  0 or -errno (E then
 * unchanged). */
int cache_stage_retime(struct cache *c, struct cache_entry *e, const struct timespec *mtime);
/* Queues sealed entry E for upload.  Separate from sealing so that the
 * owner can record the staged version before its upload is recorded. */
int cache_stage_upload(struct cache *c, const struct cache_entry *e);
/* Waits until content SHA256 is no longer waiting for upload, for at most
 * TIMEOUT seconds: 0, -ETIMEDOUT, or -EIO when it was set aside. */
int cache_wait_uploaded(struct cache *c, const char *sha256, double timeout);
/* Does the cache hold content closed in file INO (E->ino of a sealed
 * entry): sealed and waiting for upload, or uploaded from here within the
 * last minute?  From the seal until well after the upload is recorded, so
 * a caller that read the file's row a moment before (still "pending" or
 * "uploading") and asks now gets yes.  Entries set aside do not count. */
int cache_holds_file(struct cache *c, uint64_t ino);
/* The newest content sealed here for file INO that is still waiting for
 * its upload: 1 with *E filled, else 0.  For a row that does not show it
 * yet (its close-time record lost in a database crash, or not made while
 * the database was away): the upload's record will. */
int cache_file_waiting(struct cache *c, uint64_t ino, struct cache_entry *e);
/* Extended attribute NAME of E's journal entry (a note its writer left on
 * the bytes before sealing them) into BUF, NUL-terminated: its length, or
 * -errno (-ENODATA: none). */
ssize_t cache_entry_note(struct cache *c, const struct cache_entry *e, const char *name, char *buf, size_t len);

/* --- reading ------------------------------------------------------------- */

/* Where a reader of one open file stands, for read-ahead. */
struct cache_reader {
	uint64_t next_block;	/* block after the last one read */
	uint64_t ahead;		/* first block not asked for ahead of it yet */
	int sequential;		/* consecutive sequential reads */
};

/* Reads up to LEN bytes at OFF of content SHA256 (SIZE bytes in all) into
 * DST: from staging, from cached blocks, or from the store (then cached).
 * *GOT is how many bytes (short only at the end).  R (may be NULL) tracks a
 * sequential reader.  -EIO when the store cannot give the bytes within the
 * I/O timeout or they fail their check. */
int cache_read(struct cache *c, const char *sha256, uint64_t size, uint64_t off, size_t len,
	       void *dst, size_t *got, struct cache_reader *r);
/* A read's bytes where they are in the cache's memory (cache_read_ref). */
struct cache_ref {
	const char *data;	/* NULL: the bytes were copied into DST */
	void *pin;		/* what keeps DATA in place until cache_ref_drop */
};
/* cache_read, but where the bytes asked for are within one block held in
 * memory (a block just fetched, which a sequential reader asks for as
 * soon as it arrives), REF->data points at them there instead of a copy
 * into DST, and they stay there until cache_ref_drop(REF): a reply is sent
 * from them straight.  REF->data is NULL when DST holds them. */
int cache_read_ref(struct cache *c, const char *sha256, uint64_t size, uint64_t off, size_t len,
		   void *dst, size_t *got, struct cache_reader *r, struct cache_ref *ref);
/* Lets go of REF's bytes (nothing when it has none). */
void cache_ref_drop(struct cache *c, struct cache_ref *ref);
/* Copies the SIZE bytes of content SHA256 into staging fd FD (copy on
 * write of an existing file).  Returns 0 or -errno. */
int cache_stage_fill(struct cache *c, const char *sha256, uint64_t size, int fd);
/* Writes all LEN bytes of BUF at OFF of FD, retrying short writes, so that
 * a full disk answers -ENOSPC rather than a short count.  0 or -errno. */
int cache_write_full(int fd, const void *buf, size_t len, off_t off);

/* Sends SIZE bytes of FD (content hash SHA256) to the store under KEY
 * right now (for content made by the daemon itself, like variants: KEY is
 * the key of the job's user, which need not be this cache's).  0 or
 * -errno (-EINVAL for an invalid key). */
int cache_store(struct cache *c, const char *key, const char *sha256, int fd, uint64_t size);

/* --- numbers ------------------------------------------------------------- */

struct cache_stats {
	uint64_t staged_files, staged_bytes;	/* waiting for upload */
	uint64_t set_aside;			/* staged content that failed its check */
	uint64_t uploaded_files, uploaded_bytes;
	double upload_rate;			/* bytes/s over the last uploads */
	uint64_t cache_bytes, cache_blocks, cache_max;
	uint64_t hits, misses;			/* block lookups */
	uint64_t reads_in_place;		/* reads answered from a block in memory, not a copy */
	uint64_t store_gets;			/* ranged GETs sent to the store */
	uint64_t store_puts;
	/* uploads retrying now: refused by the store, or sent but waiting
	 * to be recorded (the database) */
	uint64_t store_failing, record_waiting;
};
void cache_stats(struct cache *c, struct cache_stats *st);
/* The folder where staged content that failed its check is kept. */
const char *cache_aside_dir(const struct cache *c);

/* Space of the store: total and available bytes, or -ENOTSUP. */
int cache_space(struct cache *c, uint64_t *total, uint64_t *avail);

#endif
