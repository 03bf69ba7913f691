/*
 * worker.h - the threads that run background jobs.
 *
 * A mount runs them for its user (-o workers=N); `mvaultfs worker` runs
 * them for every user, without a mount, so any number of machines can
 * share one queue.  Each thread has its own queue connection and its own
 * image helper process (media.h), claims one job at a time, and in between
 * waits for a wake-up; one idle thread sweeps for due work every interval.
 * One more thread beats while any job is held: it keeps the jobs of a live
 * process from being taken over however long they run (meta_jobs_beat).
 */
#ifndef MVFS_WORKER_H
#define MVFS_WORKER_H

#include <stddef.h>

#include "media/media.h"

struct meta;
struct cache;
struct backend;
struct worker;

/* A store that pins copy to (-o pin_store=NAME=URL), by its label. */
struct worker_store {
	const char *label;		/* seed 001's backend_t label, e.g. "icp-canister" */
	struct backend *backend;
};

struct worker_config {
	int threads;			/* worker threads; 0: 1 */
	struct meta *meta;		/* a mount's: its jobs only; NULL: every user's */
	const char *conninfo;		/* without META: the database */
	int trash_days;			/* without META: the grace period; 0: 30 */
	struct cache *cache;		/* content in and out */
	struct backend *backend;	/* deleting objects; reading keys that are not hashes */
	struct media_recipe recipe;
	struct media_limits limits;
	double interval;		/* seconds between sweeps for due work; 0: 5 */
	int job_timeout;		/* seconds a claimed job may go without a beat of
					 * this process before the sweep gives it to another
					 * worker; 0: the job's own (visibility_timeout, 300) */
	const char *self;		/* binary for the image helper; NULL: /proc/self/exe */
	const struct worker_store *pin_stores;	/* where store_copy jobs copy to (may be none) */
	int npin_stores;
	/* Called after the variants of original ASSET_ID were recorded, with
	 * the thumb variant's bytes in THUMB_FD (the worker's: dup it to keep
	 * it); NULL: nothing is told. */
	void (*made)(void *arg, const char *asset_id, int thumb_fd);
	void *made_arg;
};

/* Starts the threads.  On failure (a queue connection cannot be opened)
 * writes a one-line reason into ERR and returns NULL. */
struct worker *worker_start(const struct worker_config *cfg, char *err, size_t errlen);
/* Stops the threads: a job being processed is given back to the queue
 * (its image helper is killed), others finish.  Logs what was done.
 * NULL is a no-op. */
void worker_stop(struct worker *w);

#endif
