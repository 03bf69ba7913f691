/*
 * worker_internal.h - what worker.c (the threads) and worker_jobs.c (the
 * jobs) share.  Not for use outside src/worker.
 */
#ifndef MVFS_WORKER_INTERNAL_H
#define MVFS_WORKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "meta/meta_jobs.h"
#include "worker/worker.h"

struct worker_thread {
	struct worker *w;
	int index;
	pthread_t thread;
	int started;
	struct meta_jobs *q;
	struct media_helper *media;
	atomic_int held_timeout;	/* the visibility timeout of the job it holds; 0: none */
};

struct worker {
	struct worker_config cfg;
	char self[4096];
	atomic_int stopping;
	int wake[2];			/* a pipe: readable once stopping */
	pthread_mutex_t lock;		/* guards the rest */
	struct timespec next_sweep;
	long done, failed, retried;
	int nthreads;
	struct worker_thread *threads;
	struct meta_jobs *beat_q;	/* the beat thread's queue connection */
	char beat_prefix[96];		/* "host:pid:nonce:", the start of this process's locked_by */
	pthread_t beat;
	int beat_started;
};

/* Counts one more in *N, one of W's done, failed, retried. */
static inline void worker_count(struct worker *w, long *n)
{
	pthread_mutex_lock(&w->lock);
	(*n)++;
	pthread_mutex_unlock(&w->lock);
}

/* worker_jobs.c: runs job J on thread T and records its outcome (done,
 * failed, or back in the queue to retry). */
void worker_job_run(struct worker_thread *t, const struct meta_job *j);

#endif
