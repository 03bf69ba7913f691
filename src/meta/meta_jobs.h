/*
 * meta_jobs.h - the background job queue (background_jobs, seed 000) and
 * the database side of each job's steps.
 *
 * A struct meta_jobs is one connection to the queue, for one worker thread.
 * It works as mvault_app (row-level security applies) and runs every step
 * of a job in a transaction that acts for the job's user; what must see
 * every user's rows (finding due work, deciding that bytes may leave the
 * store) is done by SECURITY DEFINER functions (0005_jobs.sql).
 *
 * Queue semantics: enqueue is idempotent by (type, payload_hash); a claim
 * takes the oldest due job with FOR UPDATE SKIP LOCKED and stamps
 * locked_at/locked_by; a job whose worker goes silent for its
 * visibility_timeout is given back by the sweep (an attempt used); a failed
 * attempt is retried after meta_jobs_backoff() until max_retries, then the
 * job is 'failed' with the error text.  Times are mvault_now(), the clock
 * tests can move.
 *
 * Conventions as in meta.h: 0 or -errno, failures logged where they happen.
 */
#ifndef MVFS_META_JOBS_H
#define MVFS_META_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "meta/meta.h"

struct meta_jobs;

struct meta_jobs_config {
	const char *conninfo;
	const char *user_id;	/* act only for this user's jobs; NULL or "": every user */
	int trash_days;		/* grace period before bytes are deleted; 0: 30 */
	const char *worker_id;	/* written into locked_by; e.g. "host:pid:nonce:thread" */
	int db_timeout;		/* seconds of silence after which the connection counts as lost
				 * (meta_connect); 0: 60, the pool's default */
};

/* Opens one queue connection.  On failure writes a one-line reason into
 * ERR and returns NULL. */
struct meta_jobs *meta_jobs_open(const struct meta_jobs_config *cfg, char *err, size_t errlen);
/* The same database, user and grace period as the mount's M. */
struct meta_jobs *meta_jobs_open_for(struct meta *m, const char *worker_id, char *err, size_t errlen);
/* meta_jobs_free(NULL) is a no-op. */
void meta_jobs_free(struct meta_jobs *q);

enum meta_job_type {
	META_JOB_UNKNOWN = 0,
	META_JOB_PROCESS_ASSETS,	/* payload originalAssetId, recipeVersion */
	META_JOB_ASSET_DELETE,		/* payload deleteJobId (asset_delete_jobs.id) */
	META_JOB_CLEANUP_PENDING,	/* payload memoryId */
	META_JOB_WORKSPACE_EXPIRY,	/* payload memoryId */
	META_JOB_CONTENT_HASH,		/* payload assetId */
	META_JOB_STORE_COPY,		/* payload memoryId, backend, sha256: a pin's copy */
	META_JOB_STORE_DROP,		/* payload memoryId, backend: a copy no pin holds */
};

/* A claimed job. */
struct meta_job {
	char id[META_UUID_LEN + 1];
	enum meta_job_type type;
	char type_name[32];
	char user_id[META_UUID_LEN + 1];	/* "" when nobody owns the subject any more */
	char subject[META_UUID_LEN + 1];	/* the id the payload names ("" if none) */
	char recipe[16];			/* process_assets: recipeVersion */
	char backend[32];			/* store_copy, store_drop: the pinned backend's label */
	char sha256[65];			/* store_copy: the content to copy */
	int retry_count;			/* attempts that failed before this one */
	int max_retries;
	int visibility_timeout;			/* seconds of silence before it is taken over */
};

/* Seconds to wait before the next attempt of a job that has failed
 * RETRY_COUNT times (1, 2, ...): 30 s doubling, at most one hour. */
double meta_jobs_backoff(int retry_count);

/* Enqueues a job of type TYPE ("process_assets", ...) with PAYLOAD (a JSON
 * object) for USER_ID (NULL: found when claimed).  1 when this call made
 * it, 0 when an equal job already existed. */
int meta_jobs_enqueue(struct meta_jobs *q, const char *type, const char *payload, const char *user_id);

/* Finds due work and enqueues it (and gives back jobs whose worker went
 * silent).  *MADE (may be NULL) receives how many jobs it made or woke. */
int meta_jobs_sweep(struct meta_jobs *q, int *made);

/* Claims the oldest due job: 1 with OUT filled, 0 when none is due.
 * VISIBILITY_TIMEOUT > 0 replaces the job's own (seconds this worker may
 * stay silent, see meta_jobs_beat, before the sweep gives the job to
 * another); 0 keeps it. */
int meta_jobs_claim(struct meta_jobs *q, int visibility_timeout, struct meta_job *out);
/* A sign of life for every job in 'processing' whose locked_by starts with
 * PREFIX (one process's threads, "host:pid:nonce:"): their locked_at is now, so
 * the sweep leaves them be for another visibility timeout.  Returns how
 * many jobs it touched, or -errno. */
int meta_jobs_beat(struct meta_jobs *q, const char *prefix);
/* Ends J successfully; NOTE (may be NULL) is kept in the error column as a
 * remark (e.g. "skipped: the original was removed"). */
int meta_jobs_complete(struct meta_jobs *q, const struct meta_job *j, const char *note);
/* Ends an attempt of J that failed with ERROR: retried after the backoff,
 * or 'failed' when PERMANENT or out of retries.  Returns 1 when the job is
 * now failed for good, 0 when it will be retried, or -errno. */
int meta_jobs_fail(struct meta_jobs *q, const struct meta_job *j, const char *error, int permanent);
/* Gives J back untried (the worker is stopping): due at once, no attempt
 * counted. */
int meta_jobs_release(struct meta_jobs *q, const struct meta_job *j);

/* Waits up to TIMEOUT_MS for a wake-up (NOTIFY mvault_jobs) or for WAKE_FD
 * (may be -1) to become readable: 1 woken, 0 timed out, -errno. */
int meta_jobs_wait(struct meta_jobs *q, int timeout_ms, int wake_fd);

/* --- process_assets (meta_variants.c) ------------------------------------ */

/* The original a process_assets job works on. */
struct meta_original {
	char asset_id[META_UUID_LEN + 1];
	char memory_id[META_UUID_LEN + 1];
	char sha256[65];
	char key[META_KEY_MAX];		/* as its row says (written by its user: not trusted) */
	char key_prefix[META_UUID_LEN + 4];	/* its user's store key prefix (meta_key_prefix) */
	char mime[128];
	char name[256];			/* display name, for log lines */
	uint64_t size;
	int ready;			/* active, uploaded, hashed: variants can be made */
	int done;			/* it already has its variants */
};

/* Reads the original of J and, when it is ready and not done, marks it
 * processing.  -ENOENT when it no longer exists. */
int meta_jobs_original(struct meta_jobs *q, const struct meta_job *j, struct meta_original *out);

/* One variant made, in the store already. */
struct meta_variant_new {
	const char *type;		/* "display" or "thumb" */
	const char *sha256;
	const char *key;
	const char *backend;		/* storage_backend_t */
	const char *mime;
	uint64_t size;
	int width, height;
};

/* What processing found out about the original. */
struct meta_processed {
	int width, height;		/* as shown (EXIF orientation applied) */
	const char *color_space;	/* e.g. "srgb", "cmyk", "b-w" */
	const char *transform_spec;	/* JSON, seed 000's transformSpec */
	const struct meta_variant_new *variants;
	int nvariants;
};

/* Records the variants of O (blob references, variant asset rows), the
 * original's dimensions and processing_status 'completed', the memory's
 * derived status, and completes J: one transaction.  An original that was
 * removed meanwhile gets nothing (the job completes as skipped). */
int meta_jobs_variants_done(struct meta_jobs *q, const struct meta_job *j, const struct meta_original *o,
			    const struct meta_processed *p);
/* An attempt of J failed with REASON: the job is retried or failed (see
 * meta_jobs_fail); once it has failed for good the original's
 * processing_status is 'failed' with REASON in processing_error. */
int meta_jobs_variants_failed(struct meta_jobs *q, const struct meta_job *j, const char *reason, int permanent);

/* --- deletion, expiry, hashes (meta_gc.c) -------------------------------- */

/* Deletes an object from the store: 0 (also when it was not there) or -errno. */
typedef int (*meta_jobs_delete_fn)(void *arg, const char *backend, const char *key);

/* Runs asset_delete job J: locks its blob; when nothing references it, no
 * asset using it is under legal hold and every such asset is past the grace
 * period, calls DEL for its object and marks the rows deleted, all before
 * the commit (a commit of the same bytes waits for it).  Otherwise the
 * outbox row stays or is cancelled.  Completes J; NOTE receives what
 * happened. */
int meta_jobs_asset_delete(struct meta_jobs *q, const struct meta_job *j, meta_jobs_delete_fn del, void *arg,
			   char *note, size_t notelen);

/* cleanup_pending: removes a memory still pending past its expires_at (the
 * rows a create made, as meta_file_abort does).  Completes J. */
int meta_jobs_cleanup_pending(struct meta_jobs *q, const struct meta_job *j, char *note, size_t notelen);

/* workspace_expiry: tombstones a workspace file past its expires_at the
 * way rm does; its workspace row becomes a library row, so a restore from
 * .trash/ brings it back into library/.  Completes J. */
int meta_jobs_workspace_expire(struct meta_jobs *q, const struct meta_job *j, char *note, size_t notelen);

/* An asset whose content has no hash yet. */
struct meta_unhashed {
	char asset_id[META_UUID_LEN + 1];
	char backend[32];
	char key[META_KEY_MAX];		/* where its bytes are now */
	char key_prefix[META_UUID_LEN + 4];	/* its user's store key prefix (meta_key_prefix) */
	char mime[128];
	uint64_t size;
	int ready;			/* still active, uploaded and without a hash */
};
int meta_jobs_unhashed(struct meta_jobs *q, const struct meta_job *j, struct meta_unhashed *out);
/* Records that U's bytes hash to SHA256 and are stored under KEY on
 * BACKEND (content-addressed; the caller stored them there): blob
 * reference (dedup), computed_by 'server', and a process_assets job for an
 * image.  The object under the former key stays: another user's asset may
 * name it, which this user cannot see.  Completes J. */
int meta_jobs_hash_done(struct meta_jobs *q, const struct meta_job *j, const struct meta_unhashed *u,
			const char *sha256, const char *backend, const char *key);

/* --- store_copy, store_drop: pins (meta_pins.c) ------------------------ */

/* What a store_copy job copies: the memory's current content, if it is
 * still the job's and still pinned to the job's backend. */
struct meta_pin_copy {
	char memory_id[META_UUID_LEN + 1];
	char sha256[65];
	char key_prefix[META_UUID_LEN + 4];	/* its user's store key prefix (meta_key_prefix) */
	char mime[128];
	char type[16];				/* memory_type_t */
	char created_at[40];
	uint64_t size;
	int ready;				/* to be copied now; else WHY says why not */
	char why[160];
};

/* Reads what J copies, and marks the memory's edges on J's backend
 * 'migrating' again (a retry after a failure).  -ENOENT when the memory
 * is gone. */
int meta_jobs_pin_source(struct meta_jobs *q, const struct meta_job *j, struct meta_pin_copy *out);
/* The copy of C is on J's backend (its content under ASSET_KEY, the
 * metadata document under META_KEY): both edges there present and 'idle',
 * and J completed, in one transaction.  A memory let go of meanwhile gets
 * its copy dropped (store_drop); one whose content changed meanwhile
 * keeps its edges as they are (the new content has its own job). */
int meta_jobs_pin_copied(struct meta_jobs *q, const struct meta_job *j, const struct meta_pin_copy *c,
			 const char *asset_key, const char *meta_key);
/* An attempt of J failed with WHY: the memory's edges on J's backend
 * 'failed' with WHY (shown in its presence), and J retried or failed for
 * good (PERMANENT), in one transaction.  Returns as meta_jobs_fail. */
int meta_jobs_pin_failed(struct meta_jobs *q, const struct meta_job *j, const char *why, int permanent);

/* Removes a copy from the pinned store BACKEND: the objects of the user
 * whose keys start with KEY_PREFIX: content SHA256 (NULL: it stays,
 * another pinned memory has the same bytes there) and the metadata
 * document of MEMORY_ID.  Keys are made by the callee from these, never
 * read from rows.  0 (also when they were not there) or -errno. */
typedef int (*meta_jobs_drop_fn)(void *arg, const char *backend, const char *key_prefix, const char *sha256,
				 const char *memory_id);
/* Runs store_drop job J: unless a pin holds the memory on J's backend
 * again, calls DROP and removes the edges there, with them locked, and
 * completes J.  NOTE receives what happened. */
int meta_jobs_pin_drop(struct meta_jobs *q, const struct meta_job *j, meta_jobs_drop_fn drop, void *arg,
		       char *note, size_t notelen);

#endif
