/*
 * cache_upload.c - write-back: the uploaders, and recovery after a crash
 * (the journal and staged set they work from are cache_stage.c's).
 *
 * Uploaders take journal entries oldest first, send the bytes to the store
 * (skipped when the store already has that key), call the owner's uploaded
 * function (the database commit), and only then drop the journal entry and,
 * with the last entry of a hash, the staging file, whose blocks go into the
 * block cache.  Failures (a store or database outage) are retried with
 * backoff, forever: nothing closed is ever dropped.
 *
 * At start, every journal entry is queued again in order; its staged bytes
 * are checked against their hash before upload, and content that fails the
 * check (edited behind our back) is moved to aside/ and reported, never
 * uploaded.  Leftover temporary files are removed.
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

#include "backend/backend.h"
#include "util/log.h"
#include "util/sha256.h"

static int pause_or_stop(struct cache *c, int secs)
{
	struct timespec until;
	int stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	pthread_mutex_lock(&c->lock);
	while (!c->stopping && pthread_cond_timedwait(&c->changed, &c->lock, &until) == 0)
		;
	stop = c->stopping;
	pthread_mutex_unlock(&c->lock);
	return stop;
}

/* Moves staged content that failed its check, and its journal entry, to
 * aside/, where a person can look at it. */
static void set_aside(struct cache *c, const struct cache_entry *e, const char *why)
{
	char name[JOURNAL_NAME_MAX], from[4300], to[4300];

	log_error("staged content %s of inode %" PRIu64 " %s: not uploaded, moved to '%s'", e->sha256, e->ino,
		  why, c->aside_dir);
	cache_journal_name(e, name, sizeof(name));
	snprintf(from, sizeof(from), "%s/%s", c->journal_dir, name);
	snprintf(to, sizeof(to), "%s/%s.journal", c->aside_dir, name);
	rename(from, to);
	snprintf(from, sizeof(from), "%s/%s", c->staging_dir, e->sha256);
	snprintf(to, sizeof(to), "%s/%s", c->aside_dir, name);
	rename(from, to);
	pthread_mutex_lock(&c->lock);
	cache_staged_drop(c, e, 0);
	c->set_aside++;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
}

/* Sends one entry's bytes to the store.  0, -EAGAIN (try later), or
 * -EBADMSG (set aside). */
static int upload_bytes(struct cache *c, struct upload *u, int fd)
{
	const struct cache_entry *e = &u->e;
	char sha[SHA256_HEX_LEN + 1];
	struct backend_stat bst;
	struct stat st;
	int rc;

	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != e->size)
		return -EBADMSG;
	if (u->verify) {
		if ((rc = sha256_fd(fd, e->size, sha)) != 0)
			return -EAGAIN;
		if (strcmp(sha, e->sha256) != 0)
			return -EBADMSG;
		u->verify = 0;
	}
	if (backend_head(c->backend, e->key, &bst) == 0 && bst.size == e->size)
		return 0;	/* content-addressed: the store has these bytes */
	rc = backend_put(c->backend, e->key, fd, e->size, e->sha256);
	if (rc)
		return -EAGAIN;
	cache_count(c, &c->st.store_puts, 1);
	return 0;
}

/* After the record: the store still has the bytes.  A deletion job that
 * saw the blob unreferenced may have deleted the object between our PUT (or
 * the HEAD that made it unneeded) and our record; once recorded, the blob is
 * referenced and no deletion starts, so one look settles it.  0, or -EAGAIN
 * (the record is idempotent: it is simply made again). */
static int still_stored(struct cache *c, struct upload *u, int fd)
{
	const char *key = u->e.key;
	struct backend_stat bst;

	if (backend_head(c->backend, key, &bst) == 0 && bst.size == u->e.size)
		return 0;
	log_warn("'%s' left the store while its upload was being recorded (a deletion of the same bytes);"
		 " sending it again", key);
	if (backend_put(c->backend, key, fd, u->e.size, u->e.sha256) != 0)
		return -EAGAIN;
	cache_count(c, &c->st.store_puts, 1);
	return 0;
}

static void upload_done(struct cache *c, struct upload *u, int fd)
{
	char name[JOURNAL_NAME_MAX], path[4300], done[4400];
	struct timespec now;
	int last;

	cache_journal_name(&u->e, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", c->journal_dir, name);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", c->staging_dir, u->e.sha256);
	snprintf(done, sizeof(done), "%s/.done-%" PRIu64 "-%s", c->staging_dir, u->e.seq, u->e.sha256);
	pthread_mutex_lock(&c->lock);
	last = cache_staged_drop(c, &u->e, 1);
	/* The last entry's file leaves its name under the lock: bytes sealed
	 * again from now on get a file of their own. */
	if (last && rename(path, done) != 0)
		last = 0;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	if (last) {
		/* The bytes are local already: keep them as cached blocks. */
		cache_blocks_import(c, u->e.sha256, fd, u->e.size);
		unlink(done);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&c->stats_lock);
	c->st.uploaded_files++;
	c->st.uploaded_bytes += u->e.size;
	if (c->rate_since.tv_sec == 0 || now.tv_sec - c->rate_since.tv_sec > 10) {
		c->rate_since = now;
		c->rate_bytes = 0;
	}
	c->rate_bytes += u->e.size;
	{
		double secs = (double)(now.tv_sec - c->rate_since.tv_sec) +
			      (double)(now.tv_nsec - c->rate_since.tv_nsec) / 1e9;

		c->st.upload_rate = secs > 0.2 ? (double)c->rate_bytes / secs : c->st.upload_rate;
	}
	pthread_mutex_unlock(&c->stats_lock);
}

/* The uploads a batch of records waits for: the small files' (a record
 * sets the pace of those), for at most RECORD_WAIT_MS. */
#define RECORD_AWAITED_MAX (1024 * 1024)
#define RECORD_WAIT_MS 500

/* U, awaited by a batch, will not join it (its upload failed). */
static void sent(struct cache *c, struct upload *u)
{
	pthread_mutex_lock(&c->lock);
	c->sent += (uint64_t)u->awaited;
	u->awaited = 0;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
}

/* Puts U back at the front of the upload queue: its record made
 * (RECORDED), for an uploader to finish it, or failed, for an uploader to
 * make it with a call of its own. */
static void requeue_front(struct cache *c, struct upload *u, int recorded)
{
	pthread_mutex_lock(&c->lock);
	u->recorded = recorded;
	u->alone = !recorded;
	u->next = c->queue_head;
	c->queue_head = u;
	if (!c->queue_tail)
		c->queue_tail = u;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
}

/* Makes the records of the uploads whose bytes are in the store, in
 * batches (c->uploaded_many), while any are waiting; an uploader that finds
 * another one doing it leaves them to it.  Uploads go on meanwhile, so the
 * records of many small files are made a batch at a time: one round trip
 * and one commit each.  Each goes back to the front of the upload queue:
 * recorded, for an uploader to finish it (the store still has the bytes,
 * the journal entry goes); failed, to be made alone (with the backoff of a
 * failing one). */
static void record_batches(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->recording) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->recording = 1;
	while (c->rec_head && !c->stopping) {
		struct upload *b[CACHE_UPLOADED_MAX];
		const struct cache_entry *e[CACHE_UPLOADED_MAX];
		int rc[CACHE_UPLOADED_MAX], n = 0;
		uint64_t awaited = c->sending;
		struct timespec until;

		/* the small uploads being sent now join this batch: on a store
		 * slower than the records each would otherwise be a batch of
		 * its own */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += RECORD_WAIT_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (c->sent < awaited && c->nrec < CACHE_UPLOADED_MAX && !c->stopping &&
		       pthread_cond_timedwait(&c->changed, &c->lock, &until) == 0)
			;
		for (; c->rec_head && n < CACHE_UPLOADED_MAX; n++) {
			b[n] = c->rec_head;
			e[n] = &b[n]->e;
			c->rec_head = b[n]->next;
			c->nrec--;
		}
		if (!c->rec_head)
			c->rec_tail = NULL;
		pthread_mutex_unlock(&c->lock);
		c->uploaded_many(c->uploaded_arg, e, rc, n);
		/* the rest of each (the store still has it, its entry goes) on
		 * the uploaders, in their order: a HEAD each on a remote store */
		for (int i = n - 1; i >= 0; i--)
			requeue_front(c, b[i], rc[i] == 0);
		pthread_mutex_lock(&c->lock);
	}
	c->recording = 0;
	pthread_mutex_unlock(&c->lock);
}

static void *uploader_main(void *arg)
{
	struct cache *c = arg;

	for (;;) {
		struct upload *u;
		char path[4200];
		int fd, rc, backoff = 1, warned = 0, batched;
		uint64_t *waiting_on = NULL;

		pthread_mutex_lock(&c->lock);
		while (!c->stopping && !c->queue_head)
			pthread_cond_wait(&c->changed, &c->lock);
		if (c->stopping) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		u = c->queue_head;
		c->queue_head = u->next;
		if (!c->queue_head)
			c->queue_tail = NULL;
		batched = c->uploaded_many && !u->alone && !u->recorded;
		/* a small one: a batch waits for it (record_batches) */
		u->awaited = batched && u->e.size <= RECORD_AWAITED_MAX;
		c->sending += (uint64_t)u->awaited;
		pthread_mutex_unlock(&c->lock);

		snprintf(path, sizeof(path), "%s/%s", c->staging_dir, u->e.sha256);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			sent(c, u);
			set_aside(c, &u->e, "is missing from staging");
			free(u);
			continue;
		}
		if (u->recorded) {	/* by a batch (record_batches) */
			if (still_stored(c, u, fd) == 0) {
				upload_done(c, u, fd);
				free(u);
				close(fd);
				continue;
			}
			u->recorded = 0;	/* its bytes again, its record alone */
			u->alone = 1;
		}
		for (;;) {
			/* which side keeps it waiting, for `mvaultfs status` */
			uint64_t *side = &c->st.store_failing;

			rc = upload_bytes(c, u, fd);
			if (rc != 0 && batched) {	/* no batch waits for it */
				sent(c, u);
				batched = 0;
			}
			if (rc == 0 && waiting_on == &c->st.store_failing) {
				/* the store took it: the record may wait a while */
				cache_count(c, waiting_on, (uint64_t)-1);
				waiting_on = NULL;
			}
			if (rc == 0 && batched)
				break;	/* recorded in a batch (record_batches) */
			if (rc == 0) {
				side = &c->st.record_waiting;
				rc = c->uploaded(c->uploaded_arg, &u->e) == 0 ? 0 : -EAGAIN;
			}
			if (rc == 0) {
				side = &c->st.store_failing;
				rc = still_stored(c, u, fd);
			}
			if (waiting_on)
				cache_count(c, waiting_on, (uint64_t)-1);
			waiting_on = rc == -EAGAIN ? side : NULL;
			if (waiting_on)
				cache_count(c, waiting_on, 1);
			if (rc != -EAGAIN)
				break;
			if (!warned++)
				log_warn("upload of %.12s... (inode %" PRIu64 ") failed; retrying with backoff",
					 u->e.sha256, u->e.ino);
			if (pause_or_stop(c, backoff))
				break;
			backoff = backoff < 32 ? backoff * 2 : 60;
		}
		if (waiting_on)
			cache_count(c, waiting_on, (uint64_t)-1);
		if (rc == 0 && batched) {
			close(fd);
			pthread_mutex_lock(&c->lock);
			u->next = NULL;
			if (c->rec_tail)
				c->rec_tail->next = u;
			else
				c->rec_head = u;
			c->rec_tail = u;
			c->nrec++;
			c->sent += (uint64_t)u->awaited;
			u->awaited = 0;
			pthread_cond_broadcast(&c->changed);
			pthread_mutex_unlock(&c->lock);
			record_batches(c);
			continue;
		}
		if (rc == 0) {
			if (warned)
				log_info("upload of %.12s... done after %d tries", u->e.sha256, warned + 1);
			upload_done(c, u, fd);
			free(u);
		} else if (rc == -EBADMSG) {
			set_aside(c, &u->e, "does not match its hash (changed behind mvaultfs' back)");
			free(u);
		} else {
			/* stopping: back to the front of the queue, journalled */
			pthread_mutex_lock(&c->lock);
			u->next = c->queue_head;
			c->queue_head = u;
			if (!c->queue_tail)
				c->queue_tail = u;
			pthread_mutex_unlock(&c->lock);
		}
		close(fd);
	}
}

/* Staging files no journal entry names: sealed by a run killed before it
 * wrote the entry (its close never returned), or finished uploads whose
 * cleanup was cut short.  Neither is anything's only copy. */
static void discard_orphans(struct cache *c)
{
	struct dirent *de;
	DIR *d = opendir(c->staging_dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		int orphan;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_name[0] == '.') {
			orphan = 1;	/* .done-* */
		} else {
			pthread_mutex_lock(&c->lock);
			orphan = strlen(de->d_name) == 64 && !cache_staged_find(c, de->d_name);
			pthread_mutex_unlock(&c->lock);
		}
		if (orphan) {
			log_info("discarding staging file '%s' that no journal entry names", de->d_name);
			unlinkat(dirfd(d), de->d_name, 0);
		}
	}
	closedir(d);
}

static int cmp_upload(const void *a, const void *b)
{
	const struct upload *x = *(struct upload *const *)a, *y = *(struct upload *const *)b;

	return x->e.seq < y->e.seq ? -1 : x->e.seq > y->e.seq;
}

/* Entry NAME of the journal, read into E, its bytes named staging/<sha256>
 * again when a crash took that name; an entry of an earlier version is
 * written anew (a link of its staged bytes) and its text file removed. */
static int recover_entry(struct cache *c, const char *name, struct cache_entry *e)
{
	char path[4300], staged[4300], entry[JOURNAL_NAME_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", c->journal_dir, name);
	if (cache_journal_parse(name, e) == 0) {
		cache_key_for(c, e->sha256, e->key);
		snprintf(staged, sizeof(staged), "%s/%s", c->staging_dir, e->sha256);
		if (link(path, staged) != 0 && errno != EEXIST)
			return -errno;
		return 0;
	}
	if ((rc = cache_journal_read_old(path, e)) != 0)
		return rc;
	cache_key_for(c, e->sha256, e->key);
	e->seq = strtoull(name, NULL, 10);
	cache_journal_name(e, entry, sizeof(entry));
	snprintf(staged, sizeof(staged), "%s/%s", c->staging_dir, e->sha256);
	snprintf(path, sizeof(path), "%s/%s", c->journal_dir, entry);
	if (link(staged, path) != 0 && errno != EEXIST)
		return -errno;
	if ((rc = cache_fsync_path(c->journal_dir)) != 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", c->journal_dir, name);
	unlink(path);
	return 0;
}

/* Queues every journal entry left by an earlier run, oldest first. */
static int recover(struct cache *c)
{
	struct upload **list = NULL, *u;
	size_t n = 0, cap = 0, nnames = 0;
	char **names = NULL;
	struct dirent *de;
	DIR *d;

	/* the names first: an entry written anew joins the folder meanwhile */
	d = opendir(c->journal_dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char **l = realloc(names, (nnames + 1) * sizeof(*names));

		if (!l || !(l[nnames] = strdup(de->d_name))) {
			names = l ? l : names;
			break;
		}
		names = l;
		nnames++;
	}
	closedir(d);
	for (size_t i = 0; i < nnames; i++) {
		const char *name = names[i];
		char path[4300];
		struct cache_entry e;

		if (name[0] == '.') {
			if (strncmp(name, ".tmp-", 5) == 0) {
				snprintf(path, sizeof(path), "%s/%s", c->journal_dir, name);
				unlink(path);	/* a journal entry never finished: its file was not closed */
			}
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", c->journal_dir, name);
		if (recover_entry(c, name, &e) != 0) {
			log_error("journal entry '%s' is unreadable or its bytes are gone; moved aside", path);
			char to[4300];

			snprintf(to, sizeof(to), "%s/%s.journal", c->aside_dir, name);
			rename(path, to);
			continue;
		}
		if (n == cap) {
			struct upload **l = realloc(list, (cap = cap ? cap * 2 : 64) * sizeof(*l));

			if (!l)
				break;
			list = l;
		}
		u = calloc(1, sizeof(*u));
		if (!u)
			break;
		u->e = e;
		u->verify = 1;
		list[n++] = u;
	}
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (n)
		qsort(list, n, sizeof(*list), cmp_upload);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		cache_staged_add(c, &list[i]->e);
		if (list[i]->e.seq > c->last_seq)
			c->last_seq = list[i]->e.seq;
		cache_queue_push(c, list[i]);
	}
	pthread_mutex_unlock(&c->lock);
	discard_orphans(c);
	if (n)
		log_info("resuming %zu upload(s) left by the last run", n);
	free(list);
	return 0;
}

int cache_stage_start(struct cache *c)
{
	int rc = recover(c);

	if (rc)
		return rc;
	c->uploaders = calloc((size_t)c->cfg.uploaders, sizeof(*c->uploaders));
	if (!c->uploaders)
		return -ENOMEM;
	for (int i = 0; i < c->cfg.uploaders; i++) {
		if (pthread_create(&c->uploaders[i], NULL, uploader_main, c) != 0)
			return -EAGAIN;
		c->nuploaders++;
	}
	return 0;
}

void cache_stage_stop(struct cache *c)
{
	uint64_t files, bytes;

	if (!c->nuploaders)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = 1;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nuploaders; i++)
		pthread_join(c->uploaders[i], NULL);
	/* uploads whose records no batch made: journalled, for the next start */
	pthread_mutex_lock(&c->lock);
	while (c->rec_head) {
		struct upload *u = c->rec_head;

		c->rec_head = u->next;
		cache_queue_push(c, u);
	}
	c->rec_tail = NULL;
	c->nrec = 0;
	pthread_mutex_unlock(&c->lock);
	c->nuploaders = 0;
	free(c->uploaders);
	c->uploaders = NULL;
	pthread_mutex_lock(&c->lock);
	files = c->staged_files;
	bytes = c->staged_bytes;
	pthread_mutex_unlock(&c->lock);
	if (files)
		log_warn("%" PRIu64 " file(s), %" PRIu64 " bytes, are not uploaded yet; they are kept in '%s'"
			 " and uploaded by the next mount", files, bytes, c->staging_dir);
}
