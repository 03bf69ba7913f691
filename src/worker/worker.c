/*
 * worker.c - worker threads: claim a job, run its steps (worker_jobs.c),
 * record the outcome, and wait for the next; and the beat thread that
 * keeps the jobs this process holds claimed.
 *
 * Each thread has its own queue connection.  A thread that finds nothing
 * due waits for a wake-up (a notification, or the pipe that says the
 * worker stops), at most until the next sweep, which one thread at a time
 * takes.
 */
#include "worker/worker_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "meta/meta_jobs.h"
#include "util/log.h"

/* Takes the sweep when it is due; 1 when this thread should sweep. */
static int sweep_due(struct worker *w, int *wait_ms)
{
	struct timespec now;
	double left;
	int due = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&w->lock);
	left = (double)(w->next_sweep.tv_sec - now.tv_sec) + (w->next_sweep.tv_nsec - now.tv_nsec) / 1e9;
	if (left <= 0) {
		double next = (double)now.tv_sec + now.tv_nsec / 1e9 + w->cfg.interval;

		w->next_sweep.tv_sec = (time_t)next;
		w->next_sweep.tv_nsec = (long)((next - (double)(time_t)next) * 1e9);
		due = 1;
		left = w->cfg.interval;
	}
	pthread_mutex_unlock(&w->lock);
	*wait_ms = (int)(left * 1000) + 1;
	return due;
}

static void *thread_main(void *arg)
{
	struct worker_thread *t = arg;
	struct worker *w = t->w;

	while (!atomic_load(&w->stopping)) {
		struct meta_job j;
		int wait_ms, rc, made = 0;

		if (sweep_due(w, &wait_ms) && meta_jobs_sweep(t->q, &made) == 0 && made > 0)
			log_debug("jobs: the sweep found %d job%s to do", made, made == 1 ? "" : "s");
		rc = meta_jobs_claim(t->q, w->cfg.job_timeout, &j);
		if (rc > 0) {
			atomic_store(&t->held_timeout, j.visibility_timeout > 0 ? j.visibility_timeout : 300);
			worker_job_run(t, &j);
			atomic_store(&t->held_timeout, 0);
			continue;
		}
		/* nothing due (or the database is away): wait for a wake-up,
		 * at most until the next sweep */
		meta_jobs_wait(t->q, rc < 0 ? 1000 : wait_ms, w->wake[0]);
	}
	return NULL;
}

/* Seconds between beats: a third of the shortest visibility timeout of the
 * jobs held (or of this worker's own), so two beats can be late before one
 * is missed; at most the sweep interval.  *HELD: how many jobs are held. */
static double beat_period(struct worker *w, int *held)
{
	int shortest = w->cfg.job_timeout > 0 ? w->cfg.job_timeout : 300;
	double p = w->cfg.interval;

	*held = 0;
	for (int i = 0; i < w->nthreads; i++) {
		int v = atomic_load(&w->threads[i].held_timeout);

		if (v > 0) {
			(*held)++;
			if (v < shortest)
				shortest = v;
		}
	}
	if (shortest / 3.0 < p)
		p = shortest / 3.0;
	return p < 0.2 ? 0.2 : p;
}

/* Beats for the jobs this process holds until the worker stops.  A job is
 * stamped locked_at when claimed, so the first beat is due a period after. */
static void *beat_main(void *arg)
{
	struct worker *w = arg;
	struct pollfd wake = { .fd = w->wake[0], .events = POLLIN };

	while (!atomic_load(&w->stopping)) {
		int held;
		double p = beat_period(w, &held);

		if (held)
			meta_jobs_beat(w->beat_q, w->beat_prefix);	/* failures are logged there */
		poll(&wake, 1, (int)(p * 1000));
	}
	return NULL;
}

static struct meta_jobs *queue_open(const struct worker_config *cfg, const char *id, char *err, size_t errlen)
{
	return cfg->meta ? meta_jobs_open_for(cfg->meta, id, err, errlen)
			 : meta_jobs_open(&(struct meta_jobs_config){ .conninfo = cfg->conninfo,
				 .trash_days = cfg->trash_days, .worker_id = id }, err, errlen);
}

struct worker *worker_start(const struct worker_config *cfg, char *err, size_t errlen)
{
	struct worker *w = calloc(1, sizeof(*w));
	char host[64] = "host";
	uint32_t nonce = 0;
	int n = cfg->threads > 0 ? cfg->threads : 1;

	if (!w || !(w->threads = calloc((size_t)n, sizeof(*w->threads)))) {
		free(w);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->cfg = *cfg;
	if (w->cfg.interval <= 0)
		w->cfg.interval = 5;
	snprintf(w->self, sizeof(w->self), "%s", cfg->self ? cfg->self : "/proc/self/exe");
	pthread_mutex_init(&w->lock, NULL);
	atomic_init(&w->stopping, 0);
	if (pipe2(w->wake, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
		w->wake[0] = w->wake[1] = -1;
		worker_stop(w);
		return NULL;
	}
	gethostname(host, sizeof(host) - 1);
	/* Host and pid do not tell processes apart: containers with one
	 * hostname each run their worker as pid 1.  Two workers with one
	 * stamp would beat for each other's jobs (a dead one's would never
	 * be taken over) and complete each other's. */
	if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
		nonce = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
	snprintf(w->beat_prefix, sizeof(w->beat_prefix), "%s:%d:%08x:", host, (int)getpid(), nonce);
	for (int i = 0; i < n; i++) {
		struct worker_thread *t = &w->threads[i];
		char id[128];

		t->w = w;
		t->index = i;
		w->nthreads++;
		snprintf(id, sizeof(id), "%s%d", w->beat_prefix, i);
		atomic_init(&t->held_timeout, 0);
		t->q = queue_open(cfg, id, err, errlen);
		t->media = media_helper_new(w->self, &cfg->limits);
		if (!t->q || !t->media) {
			if (t->q && !t->media)
				snprintf(err, errlen, "out of memory");
			worker_stop(w);
			return NULL;
		}
	}
	{
		char id[128];

		snprintf(id, sizeof(id), "%sbeat", w->beat_prefix);
		if (!(w->beat_q = queue_open(cfg, id, err, errlen))) {
			worker_stop(w);
			return NULL;
		}
	}
	for (int i = 0; i < n; i++) {
		if (pthread_create(&w->threads[i].thread, NULL, thread_main, &w->threads[i]) != 0) {
			snprintf(err, errlen, "cannot start worker thread %d: %s", i, strerror(errno));
			worker_stop(w);
			return NULL;
		}
		w->threads[i].started = 1;
	}
	if (pthread_create(&w->beat, NULL, beat_main, w) != 0) {
		snprintf(err, errlen, "cannot start the beat thread: %s", strerror(errno));
		worker_stop(w);
		return NULL;
	}
	w->beat_started = 1;
	log_info("jobs: %d worker thread%s for %s; display variants as %s", n, n == 1 ? "" : "s",
		 cfg->meta ? "this mount's user" : "every user", cfg->recipe.display_format);
	return w;
}

/* The largest resident size this process has had, in KiB. */
static long self_peak_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

void worker_stop(struct worker *w)
{
	long helper_kb = 0;

	if (!w)
		return;
	atomic_store(&w->stopping, 1);
	if (w->wake[1] >= 0 && write(w->wake[1], "x", 1) < 0)
		log_warn("jobs: cannot wake the worker threads: %s", strerror(errno));
	for (int i = 0; i < w->nthreads; i++)
		if (w->threads[i].media)
			media_helper_cancel(w->threads[i].media);
	if (w->beat_started)
		pthread_join(w->beat, NULL);
	meta_jobs_free(w->beat_q);
	for (int i = 0; i < w->nthreads; i++) {
		struct worker_thread *t = &w->threads[i];

		if (t->started)
			pthread_join(t->thread, NULL);
		if (t->media) {
			media_helper_stop(t->media);	/* reaped: its peak is known */
			if (media_helper_peak_kb(t->media) > helper_kb)
				helper_kb = media_helper_peak_kb(t->media);
		}
		media_helper_free(t->media);
		meta_jobs_free(t->q);
	}
	if (w->nthreads && w->threads[0].started)
		log_info("jobs: stopped; %ld done, %ld failed, %ld to be retried; peak RSS: this process %ld KiB,"
			 " image helper %ld KiB", w->done, w->failed, w->retried, self_peak_kb(), helper_kb);
	if (w->wake[0] >= 0)
		close(w->wake[0]);
	if (w->wake[1] >= 0)
		close(w->wake[1]);
	pthread_mutex_destroy(&w->lock);
	free(w->threads);
	free(w);
}
