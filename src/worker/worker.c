/*
 * worker.c - worker threads: claim a job, run its steps, record the
 * outcome, and wait for the next.
 *
 * What each job type does (the database side is meta_jobs.h):
 *
 *   process_assets        the original's bytes through the cache into an
 *                         unnamed staging file, the image helper makes the
 *                         display and thumb files (media.h), they go to the
 *                         store under their SHA-256 (cache_store), then one
 *                         transaction records them
 *   asset_delete          the object leaves the store inside the transaction
 *                         that checked it may (meta_jobs_asset_delete)
 *   cleanup_pending       database only
 *   workspace_expiry      database only
 *   content_hash_compute  the bytes under their old key are read, hashed and
 *                         stored again under the hash, then recorded
 *
 * Failures: bad input (not an image, corrupt, over the size limit) fails a
 * job at once with the reason; anything else (the store, the database, a
 * crashed decoder) is retried with backoff (meta_jobs_fail).  At stop, a
 * job in the middle of image work is given back to the queue untried.
 */
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cache/cache.h"
#include "meta/meta_jobs.h"
#include "util/log.h"
#include "util/sha256.h"

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

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void count(struct worker *w, long *n)
{
	pthread_mutex_lock(&w->lock);
	(*n)++;
	pthread_mutex_unlock(&w->lock);
}

/* --- content in and out -------------------------------------------------- */

static int fetch_key(struct worker *w, const char *key, uint64_t size, char sha256[SHA256_HEX_LEN + 1]);

/* Copies content SHA256 (SIZE bytes) of the user whose keys start with
 * PREFIX into a new unnamed staging file, checking it hashes to SHA256:
 * through the cache when it is this cache's user (a mount's worker), else
 * (`mvaultfs worker`, acting for many users) from the store under that
 * user's key.  The key is made from the user's prefix, never taken from a
 * row the user wrote, so a job cannot be pointed at someone else's bytes.
 * Returns the fd or -errno. */
static int fetch_content(struct worker *w, const char *prefix, const char *sha256, uint64_t size)
{
	enum { CHUNK = 1 << 20 };
	char *buf = malloc(CHUNK), got_sha[SHA256_HEX_LEN + 1];
	struct cache_reader rd = { 0 };
	struct sha256 h = { 0 };
	uint64_t off = 0;
	int fd, rc = 0;

	if (strcmp(prefix, cache_key_prefix(w->cfg.cache)) != 0) {
		char key[BACKEND_KEY_MAX];

		free(buf);
		backend_key_for(prefix, sha256, key);
		if (!key[0])
			return -EINVAL;
		fd = fetch_key(w, key, size, got_sha);
		if (fd >= 0 && strcmp(got_sha, sha256) != 0) {
			close(fd);
			return -EBADMSG;
		}
		return fd;
	}
	if (!buf || sha256_init(&h) != 0) {
		free(buf);
		return -ENOMEM;
	}
	fd = cache_stage_create(w->cfg.cache);
	rc = fd < 0 ? fd : 0;
	while (rc == 0 && off < size) {
		size_t got = 0;

		rc = cache_read(w->cfg.cache, sha256, size, off, CHUNK, buf, &got, &rd);
		if (rc == 0 && got == 0)
			rc = -EIO;
		if (rc == 0 && pwrite(fd, buf, got, (off_t)off) != (ssize_t)got)
			rc = errno ? -errno : -EIO;
		if (rc == 0)
			sha256_update(&h, buf, got);
		off += got;
	}
	if (rc == 0) {
		sha256_final(&h, got_sha);
		if (strcmp(got_sha, sha256) != 0)
			rc = -EBADMSG;
	}
	sha256_release(&h);
	free(buf);
	if (rc && fd >= 0)
		close(fd);
	return rc ? rc : fd;
}

/* Stores the bytes of FD under their hash, among the keys of the user
 * whose keys start with PREFIX: *SIZE, SHA256 and KEY out. */
static int store_content(struct worker *w, const char *prefix, int fd, uint64_t *size,
			 char sha256[SHA256_HEX_LEN + 1], char key[BACKEND_KEY_MAX])
{
	struct stat st;
	int rc;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size <= 0)
		return -ENODATA;
	*size = (uint64_t)st.st_size;
	key[0] = '\0';
	rc = sha256_fd(fd, *size, sha256);
	if (rc == 0)
		backend_key_for(prefix, sha256, key);
	if (rc == 0)
		rc = cache_store(w->cfg.cache, key, sha256, fd, *size);
	return rc;
}

/* --- process_assets ------------------------------------------------------ */

static void job_process(struct worker_thread *t, const struct meta_job *j)
{
	struct worker *w = t->w;
	const struct media_recipe *r = &w->cfg.recipe;
	struct meta_original o;
	struct media_result res;
	char why[512] = "", spec[256];
	char dsha[SHA256_HEX_LEN + 1], tsha[SHA256_HEX_LEN + 1], dkey[BACKEND_KEY_MAX], tkey[BACKEND_KEY_MAX];
	int in = -1, dfd = -1, tfd = -1, rc, fail;
	double t0 = now_s(), t_fetch = 0, t_media = 0;

	rc = meta_jobs_original(t->q, j, &o);
	if (rc == -ENOENT || (rc == 0 && (!o.ready || o.done))) {
		meta_jobs_complete(t->q, j, rc ? "skipped: the original is gone"
					 : o.done ? "skipped: it has its variants" : "skipped: not an uploaded original");
		count(w, &w->done);
		return;
	}
	if (rc == 0) {
		in = fetch_content(w, o.key_prefix, o.sha256, o.size);
		rc = in < 0 ? in : 0;
		if (rc)
			snprintf(why, sizeof(why), "cannot read the original: %s", rc == -EBADMSG
				 ? "its bytes do not match their hash" : strerror(-rc));
	}
	if (rc == 0 && ((dfd = cache_stage_create(w->cfg.cache)) < 0 || (tfd = cache_stage_create(w->cfg.cache)) < 0)) {
		rc = dfd < 0 ? dfd : tfd;
		snprintf(why, sizeof(why), "no room for the variants: %s", strerror(-rc));
	}
	fail = 0;
	t_fetch = now_s();
	if (rc == 0) {
		fail = media_make(t->media, r, in, dfd, tfd, &res, why, sizeof(why));
		rc = fail ? -EIO : 0;
	}
	t_media = now_s();
	if (rc == 0) {
		uint64_t dsize = 0, tsize = 0;
		struct meta_variant_new v[2] = {
			{ "display", dsha, dkey, cache_backend_name(w->cfg.cache), media_display_mime(r->display_format),
			  0, res.display_width, res.display_height },
			{ "thumb", tsha, tkey, cache_backend_name(w->cfg.cache), "image/webp", 0,
			  res.thumb_width, res.thumb_height },
		};
		struct meta_processed p = {
			.width = res.width, .height = res.height, .color_space = res.color_space,
			.transform_spec = spec, .variants = v, .nvariants = 2,
		};

		media_transform_spec(r, spec, sizeof(spec));
		rc = store_content(w, o.key_prefix, dfd, &dsize, dsha, dkey);
		if (rc == 0)
			rc = store_content(w, o.key_prefix, tfd, &tsize, tsha, tkey);
		if (rc)
			snprintf(why, sizeof(why), "cannot store the variants: %s", strerror(-rc));
		v[0].size = dsize;
		v[1].size = tsize;
		if (rc == 0 && (rc = meta_jobs_variants_done(t->q, j, &o, &p)) != 0)
			snprintf(why, sizeof(why), "cannot record the variants: %s", strerror(-rc));
		if (rc == 0) {
			log_info("variants of '%s' (%dx%d %s): display %dx%d %s %llu bytes, thumb %dx%d %llu bytes,"
				 " %.2f s (read %.2f, decode and encode %.2f, store and record %.2f)",
				 o.name[0] ? o.name : j->subject,
				 res.width, res.height, res.loader, res.display_width, res.display_height,
				 r->display_format, (unsigned long long)dsize, res.thumb_width, res.thumb_height,
				 (unsigned long long)tsize, now_s() - t0, t_fetch - t0, t_media - t_fetch,
				 now_s() - t_media);
			count(w, &w->done);
			if (w->cfg.made)
				w->cfg.made(w->cfg.made_arg, o.asset_id, tfd);
		}
	}
	if (rc && atomic_load(&w->stopping)) {
		meta_jobs_release(t->q, j);
	} else if (rc) {
		int permanent = fail == MEDIA_BAD_INPUT || fail == MEDIA_TOO_BIG;
		int final = meta_jobs_variants_failed(t->q, j, why, permanent);

		log_warn("no variants for '%s'%s: %s", o.name[0] ? o.name : j->subject,
			 final == 0 ? " (will retry)" : "", why);
		count(w, final == 0 ? &w->retried : &w->failed);
	}
	if (in >= 0)
		close(in);
	if (dfd >= 0)
		close(dfd);
	if (tfd >= 0)
		close(tfd);
}

/* --- content_hash_compute ------------------------------------------------ */

static int delete_object(void *arg, const char *backend, const char *key)
{
	struct worker *w = arg;

	if (strcmp(backend, cache_backend_name(w->cfg.cache)) != 0)
		return -EXDEV;
	return backend_del(w->cfg.backend, key);
}

/* Reads object KEY (SIZE bytes) from the store into a staging file, hashing
 * it.  Returns the fd or -errno. */
static int fetch_key(struct worker *w, const char *key, uint64_t size, char sha256[SHA256_HEX_LEN + 1])
{
	enum { CHUNK = 1 << 20 };
	char *buf = malloc(CHUNK);
	struct sha256 h = { 0 };
	uint64_t off = 0;
	int fd, rc;

	if (!buf || sha256_init(&h) != 0) {
		free(buf);
		return -ENOMEM;
	}
	fd = cache_stage_create(w->cfg.cache);
	rc = fd < 0 ? fd : 0;
	while (rc == 0 && off < size) {
		size_t got = 0;

		rc = backend_get_range(w->cfg.backend, key, off, CHUNK, buf, &got);
		if (rc == 0 && got == 0)
			rc = -EIO;	/* shorter than its row says */
		if (rc == 0 && pwrite(fd, buf, got, (off_t)off) != (ssize_t)got)
			rc = errno ? -errno : -EIO;
		if (rc == 0)
			sha256_update(&h, buf, got);
		off += got;
	}
	if (rc == 0)
		sha256_final(&h, sha256);
	sha256_release(&h);
	free(buf);
	if (rc && fd >= 0)
		close(fd);
	return rc ? rc : fd;
}

/* Content that came without a hash lives under a key that is not one: it
 * is read from the store directly (the cache knows content by hash only),
 * then stored again under its hash so every reader finds it there. */
static int job_hash(struct worker_thread *t, const struct meta_job *j, char *why, size_t len)
{
	struct worker *w = t->w;
	char sha[SHA256_HEX_LEN + 1], key[BACKEND_KEY_MAX];
	struct meta_unhashed u;
	int fd, rc;

	rc = meta_jobs_unhashed(t->q, j, &u);
	if (rc == -ENOENT || (rc == 0 && !u.ready))
		return meta_jobs_complete(t->q, j, "skipped: nothing to hash");
	if (rc)
		return rc;
	if (strcmp(u.backend, cache_backend_name(w->cfg.cache)) != 0) {
		snprintf(why, len, "its bytes are on '%s', this worker's store is '%s'", u.backend,
			 cache_backend_name(w->cfg.cache));
		return -EXDEV;
	}
	/* A row names any key its user wrote: not one of the content-addressed
	 * keys of someone else (another user's prefix, or the shared keys for
	 * a user who has a prefix of their own). */
	if (u.key_prefix[0] ? (strncmp(u.key, "u/", 2) == 0 || backend_key_sha(u.key)) &&
			      strncmp(u.key, u.key_prefix, strlen(u.key_prefix)) != 0
			    : strncmp(u.key, "u/", 2) == 0) {
		snprintf(why, len, "its key '%s' is not its user's: not read", u.key);
		return -EPERM;
	}
	fd = fetch_key(w, u.key, u.size, sha);
	if (fd < 0) {
		snprintf(why, len, "cannot read '%s': %s", u.key, strerror(-fd));
		return fd;
	}
	backend_key_for(u.key_prefix, sha, key);
	rc = cache_store(w->cfg.cache, key, sha, fd, u.size);
	close(fd);
	if (rc) {
		snprintf(why, len, "cannot store it under its hash: %s", strerror(-rc));
		return rc;
	}
	rc = meta_jobs_hash_done(t->q, j, &u, sha, cache_backend_name(w->cfg.cache), key);
	if (rc == 0)
		log_info("hashed asset %s: sha256 %.12s..., stored under %s", u.asset_id, sha, key);
	return rc;
}

/* --- the loop ------------------------------------------------------------ */

static void job_run(struct worker_thread *t, const struct meta_job *j)
{
	struct worker *w = t->w;
	char note[512] = "";
	int rc;

	switch (j->type) {
	case META_JOB_PROCESS_ASSETS:
		job_process(t, j);
		return;
	case META_JOB_ASSET_DELETE:
		rc = meta_jobs_asset_delete(t->q, j, delete_object, w, note, sizeof(note));
		if (rc == -EXDEV)
			snprintf(note, sizeof(note), "the object is in another store than this worker's ('%s')",
				 cache_backend_name(w->cfg.cache));
		break;
	case META_JOB_CLEANUP_PENDING:
		rc = meta_jobs_cleanup_pending(t->q, j, note, sizeof(note));
		break;
	case META_JOB_WORKSPACE_EXPIRY:
		rc = meta_jobs_workspace_expire(t->q, j, note, sizeof(note));
		break;
	case META_JOB_CONTENT_HASH:
		rc = job_hash(t, j, note, sizeof(note));
		break;
	default:
		meta_jobs_fail(t->q, j, "unknown job type: no worker does it", 1);
		log_warn("jobs: failed %s job %s: unknown type", j->type_name, j->id);
		count(w, &w->failed);
		return;
	}
	if (rc == 0) {
		if (note[0])
			log_info("jobs: %s: %s", j->type_name, note);
		count(w, &w->done);
		return;
	}
	if (!note[0])
		snprintf(note, sizeof(note), "%s", strerror(-rc));
	rc = meta_jobs_fail(t->q, j, note, 0);
	log_warn("jobs: %s job %s failed%s: %s", j->type_name, j->id, rc == 0 ? " (will retry)" : "", note);
	count(w, rc == 0 ? &w->retried : &w->failed);
}

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
			job_run(t, &j);
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
