/*
 * fs_record.c - close-time records, made after the close returned.
 *
 * A close seals the staged bytes in the journal (durable from then on) and
 * hands the record of the new version to one thread here, which makes it
 * in the database in the order the closes came.  The database is not where
 * a close becomes durable (DECISIONS.md, "Where a closed file is
 * durable"), so the closer need not wait for it: a record that fails, or
 * is lost with the daemon, is made again by the upload's record.
 *
 * Until its record is made, the inode shows the sealed version
 * (fs_inode.unrecorded and rec_*): stat and open on this mount never see
 * the older rows.  A change the record would undo or miss (setattr,
 * unlink, rename, link, xattrs) first waits for the queue (fs_record_flush).
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

/* File X->ino's rows went while it was open here (another mount made the
 * name anew and removed this unfinished one): what was written here must
 * not vanish.  Makes a conflict copy beside where the file was, seals the
 * bytes as its content and records them.  Returns 0 with *COPY set, or
 * -errno. */
static int keep_conflict_copy(struct mvfs *fs, const struct fs_sealed *x, struct meta_content *ct,
			      uint64_t *copy)
{
	struct meta_dir home = x->home.ino ? x->home
					   : (struct meta_dir){ .place = META_PLACE_LIBRARY, .ino = META_INO_LIBRARY };
	struct cache_entry e = x->e;
	struct timespec now;
	struct meta_file f;
	char name[256];
	int rc = -EEXIST;

	clock_gettime(CLOCK_REALTIME, &now);
	for (int n = 1; rc == -EEXIST && n <= 20; n++) {
		fs_conflict_name(x->name, n, name, sizeof(name));
		fs_known_making(fs, home.ino, name);
		rc = meta_create(fs->meta, &home, name, 0644, &now, &f);
		fs_known_made(fs, home.ino);
	}
	if (rc == 0) {
		e.ino = f.ino;
		rc = cache_stage_seal(fs->cache, x->fd, &e, 0);
	}
	if (rc == 0) {
		ct->seq = e.seq;
		rc = meta_file_stage(fs->meta, f.ino, ct);
		cache_stage_upload(fs->cache, &e);
	}
	if (rc) {
		log_error("'%s' was removed by another writer while open here, and what was written here could"
			  " not be kept as a conflict copy: %s", x->name, strerror(-rc));
		return rc;
	}
	log_warn("'%s' was removed by another writer while open here; what was written here is kept as '%s'",
		 x->name, name);
	fs_ns_dirs_changed(fs, home.ino, 0);
	*copy = f.ino;
	return 0;
}

/* NAME is about to be made in folder DIR by a record: announced to
 * fs_known as a name made here while it is one (a folder's names are read
 * with those), else as a name being made in the database (a record from
 * the journal after a restart, a conflict copy's name), which
 * record_announced ends after the call.  Returns what record_announced
 * takes. */
static int record_announce(struct mvfs *fs, uint64_t dir, const char *name)
{
	int here = fs_local_named(fs, dir, name);

	if (here)
		fs_known_name(fs, dir, name);
	else
		fs_known_making(fs, dir, name);
	return here;
}

static void record_announced(struct mvfs *fs, uint64_t dir, int here)
{
	if (!here)
		fs_known_made(fs, dir);
}

/* meta_create_staged of NAME in DIR, announced. */
static int create_staged(struct mvfs *fs, uint64_t ino, struct meta_dir *dir, const char *name,
			 const struct fs_made *mk, const struct meta_content *ct)
{
	int here = record_announce(fs, dir->ino, name);
	int rc = meta_create_staged(fs->meta, ino, dir, name, mk->mode, &mk->made, ct);

	record_announced(fs, dir->ino, here);
	return rc;
}

int fs_record_made(struct mvfs *fs, uint64_t ino, const struct fs_made *mk, const struct meta_content *ct,
		   char *used, size_t usedlen)
{
	struct meta_dir dir = mk->dir;
	char name[256];
	int rc;

	snprintf(name, sizeof(name), "%s", mk->name);
	rc = create_staged(fs, ino, &dir, name, mk, ct);
	if (rc == -ENOENT) {	/* its folder went meanwhile */
		dir = (struct meta_dir){ .place = META_PLACE_LIBRARY, .ino = META_INO_LIBRARY };
		rc = create_staged(fs, ino, &dir, name, mk, ct);
	}
	if (rc == -EEXIST) {
		struct meta_file f;

		/* left by a writer that died before its first commit (as
		 * fs_do_create removes it) */
		if (meta_lookup(fs->meta, &dir, name, &f) == 0 && !fs_ns_visible(fs, &f) &&
		    meta_file_abort(fs->meta, f.ino) == 0) {
			log_info("removed the unfinished earlier upload of '%s'", name);
			rc = create_staged(fs, ino, &dir, name, mk, ct);
		}
	}
	/* another writer made the name meanwhile (DECISIONS.md, "Two writers
	 * of one name"): neither closed write is lost */
	for (int n = 1; rc == -EEXIST && n <= 20; n++) {
		fs_conflict_name(mk->name, n, name, sizeof(name));
		rc = create_staged(fs, ino, &dir, name, mk, ct);
	}
	if (rc == 0 && (dir.ino != mk->dir.ino || strcmp(name, mk->name) != 0))
		/* the kernel keeps the name it was made under until
		 * entry_timeout: an inval_entry here could wait for a folder
		 * an unlink holds while it waits for this thread */
		log_warn("'%s' was made by another writer meanwhile, or its folder removed: what was written here"
			 " is kept as '%s'%s", mk->name, name, dir.ino != mk->dir.ino ? " in library/" : "");
	/* its rows touched the folder: a reply about the folder read before
	 * them must not be cached as current (as fs_ns_dirs_changed after
	 * any change in a folder) */
	if (rc == 0)
		fs_ns_dirs_changed(fs, mk->dir.ino, dir.ino);
	if (used)
		snprintf(used, usedlen, "%s", name);
	return rc;
}

/* The content X records. */
static struct meta_content content_of(struct mvfs *fs, const struct fs_sealed *x)
{
	return (struct meta_content){
		.sha256 = x->e.sha256, .size = x->e.size, .mime = x->e.mime, .memory_type = x->e.memory_type,
		.backend = cache_backend_name(fs->cache), .key = x->e.key,
		.mtime = x->e.has_mtime ? &x->e.mtime : NULL, .seq = x->e.seq, .at_ns = x->at_ns,
		.atime = x->made && x->atime_set ? &x->atime : NULL,
		.base_sha = x->base[0] ? x->base : NULL,
	};
}

int fs_record_sealed(struct mvfs *fs, struct fs_sealed *x, uint64_t *copy)
{
	struct meta_content ct = content_of(fs, x);
	struct meta_file gone;
	int rc;

	/* The staged version is recorded before its upload can be, so the
	 * upload's record never races this one. */
	if (x->made && !x->skip) {
		struct fs_made mk = { .dir = x->home, .mode = x->mode, .made = x->made_at };
		char used[256];

		if (x->batched && x->batch_rc == 0) {
			/* made by the batch's call, as fs_record_made's first
			 * (which any other answer sends again, to take its
			 * other ways) */
			fs_ns_dirs_changed(fs, x->home.ino, x->home.ino);
			x->made = 2;
			return 0;
		}

		snprintf(mk.name, sizeof(mk.name), "%s", x->name);
		rc = fs_record_made(fs, x->ino, &mk, &ct, used, sizeof(used));
		if (rc == 0) {
			x->made = 2;	/* made, maybe under another name */
			snprintf(x->name, sizeof(x->name), "%s", used);
			return 0;
		}
		if (rc != -EALREADY) {
			log_warn("cannot make '%s' in the database yet (%s); it is kept and recorded after its upload",
				 x->name, strerror(-rc));
			x->failed = rc;
			return 0;
		}
		x->made = 2;	/* made before (a record made again): its content as any */
	}
	rc = x->skip ? x->skip : x->batched && !x->made ? x->batch_rc : meta_file_stage(fs->meta, x->ino, &ct);
	if (rc == -ENOENT && meta_file_get(fs->meta, x->ino, &gone) == -ENOENT) {
		/* not in the trash (a removal keeps POSIX's rule, below): its
		 * rows are gone, made anew by another writer (the caller's
		 * upload of X is a no-op: the entry leaves once recorded) */
		return keep_conflict_copy(fs, x, &ct, copy);
	}
	if (rc == -ENOENT)
		log_info("'%s' was removed while open; its last writes are dropped", x->name);
	else if (rc)
		/* The bytes are durable and journalled: the upload records them. */
		log_warn("cannot record '%s' yet (%s); it is kept and recorded after its upload",
			 x->name, strerror(-rc));
	x->failed = rc != -ENOENT ? rc : 0;
	return 0;
}

/* How long a record waits in the queue before the recorder takes it, when
 * nobody waits for it: what a writer does right after its close (rsync
 * sets the times and mode of its temporary file and renames it) is then
 * made in the record itself (fs_record_amend) instead of waiting for it. */
#define LINGER_NS (20 * 1000000LL)

struct fs_recorder {
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* something queued, someone waits, or stop (CLOCK_MONOTONIC) */
	pthread_cond_t done;	/* the queue drained */
	struct fs_sealed *head, **tail;
	struct timespec head_at;	/* when the first record now queued was queued */
	uint64_t queued, recorded;	/* counts, for fs_record_flush */
	int waiting;		/* fs_record_flush callers: no lingering */
	int stop;
	pthread_t thread;
};

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* The record of X is made (or given up): the inode shows its rows again
 * once nothing of it waits; then X's upload starts (so once it is done,
 * as `mvaultfs sync` sees it, the rows are what this mount shows). */
static void settle(struct mvfs *fs, struct fs_sealed *x, uint64_t copy)
{
	struct fs_inode *in = x->in;

	int keep = x->made ? fs_local_recorded(fs, in, x) : 0;

	pthread_mutex_lock(&in->lock);
	if (copy)
		in->conflict_ino = copy;
	in->unrecorded--;	/* the overlay ends when a row shows it (shows_sealed) */
	pthread_mutex_unlock(&in->lock);
	cache_stage_upload(fs->cache, &x->e);
	if (!keep)		/* else held until its upload's record makes it */
		fs_inode_unhold(fs, in);
	close(x->fd);
	free(x);
}

/* X's record is to be made for the file its earlier record copied, when
 * it made a conflict copy: 1 when X->ino changed. */
static int follow_copy(struct fs_sealed *x)
{
	int moved = 0;

	pthread_mutex_lock(&x->in->lock);
	if (x->ino == x->in->ino && x->in->conflict_ino) {
		x->ino = x->in->conflict_ino;
		moved = 1;
	}
	pthread_mutex_unlock(&x->in->lock);
	return moved;
}

/* Makes the first call of each record of BATCH (fs_record_sealed's:
 * meta_create_staged for a file made here, else meta_file_stage) in one
 * round trip (meta_records), and keeps each answer in its record
 * (batched, batch_rc).  A record left without one makes its call itself. */
static void batch_calls(struct mvfs *fs, struct fs_sealed *batch)
{
	struct meta_record *recs;
	struct meta_content *cts;
	struct fs_sealed *x;
	int n = 0, i = 0, *here;

	for (x = batch; x; x = x->next)
		n++;
	recs = calloc((size_t)n, sizeof(*recs));
	cts = calloc((size_t)n, sizeof(*cts));
	here = calloc((size_t)n, sizeof(*here));
	if (n < 2 || !recs || !cts || !here) {	/* one record: its own call is one round trip too */
		free(recs);
		free(cts);
		free(here);
		return;
	}
	for (x = batch; x; x = x->next, i++) {
		follow_copy(x);
		cts[i] = content_of(fs, x);
		recs[i] = (struct meta_record){ .ino = x->ino, .ct = &cts[i] };
		if (x->made) {
			recs[i].dir = &x->home;
			recs[i].name = x->name;
			recs[i].mode = x->mode;
			recs[i].made = &x->made_at;
			here[i] = record_announce(fs, x->home.ino, x->name);	/* as fs_record_made */
		}
	}
	meta_records(fs->meta, recs, n);
	for (i = 0, x = batch; x; x = x->next, i++) {
		x->batched = recs[i].rc != META_UNANSWERED;
		x->batch_rc = recs[i].rc;
		if (x->made)
			record_announced(fs, x->home.ino, here[i]);
	}
	free(recs);
	free(cts);
	free(here);
}

static void *recorder_main(void *arg)
{
	struct mvfs *fs = arg;
	struct fs_recorder *r = fs->rec;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct fs_sealed *batch = r->head;

		uint64_t n = 0;

		if (!batch) {
			if (r->stop)
				break;
			pthread_cond_wait(&r->wake, &r->lock);
			continue;
		}
		if (!r->stop && !r->waiting) {
			struct timespec now, due;
			int64_t at = ns_of(&r->head_at) + LINGER_NS;

			clock_gettime(CLOCK_MONOTONIC, &now);
			if (ns_of(&now) < at) {
				due = (struct timespec){ .tv_sec = at / 1000000000LL, .tv_nsec = at % 1000000000LL };
				pthread_cond_timedwait(&r->wake, &r->lock, &due);
				continue;
			}
		}
		for (struct fs_sealed *x = batch; x; x = x->next)
			if (x->in->queued == x)
				x->in->queued = NULL;	/* taken: no amending any more */
		r->head = NULL;
		r->tail = &r->head;
		pthread_mutex_unlock(&r->lock);
		int down = 0;

		/* The closes sealed without waiting for the disk: their bytes
		 * and journal names become durable here, for the whole batch
		 * at once, before any row refers to them. */
		for (struct fs_sealed *x = batch; x; x = x->next)
			cache_stage_sync(fs->cache, x->fd);
		cache_stage_sync(fs->cache, -1);
		batch_calls(fs, batch);

		/* the batch's answers hold while each record took its plain
		 * way; after one that took another (a conflict copy, a name
		 * made anew), those of the records after it may not, and
		 * their calls are made again, one each: each is idempotent */
		int trust = 1;

		for (; batch; n++) {
			struct fs_sealed *x = batch;
			uint64_t copy = 0;

			batch = x->next;
			/* the database failed the batch's last record (away, and
			 * waited for up to db_timeout): the rest go to their
			 * uploads' records at once instead of waiting each */
			x->skip = down;
			/* an earlier record of this file made a conflict copy */
			if (follow_copy(x) || !trust)
				x->batched = 0;
			if (!x->batched || x->batch_rc != 0)
				trust = 0;
			fs_record_sealed(fs, x, &copy);
			if (copy)
				trust = 0;
			if (x->failed && !x->skip)
				down = x->failed;
			settle(fs, x, copy);
		}
		pthread_mutex_lock(&r->lock);
		r->recorded += n;
		pthread_cond_broadcast(&r->done);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int fs_record_start(struct mvfs *fs)
{
	struct fs_recorder *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	pthread_condattr_t mono;

	pthread_condattr_init(&mono);
	pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, &mono);
	pthread_condattr_destroy(&mono);
	pthread_cond_init(&r->done, NULL);
	r->tail = &r->head;
	fs->rec = r;
	if ((rc = pthread_create(&r->thread, NULL, recorder_main, fs)) != 0) {
		fs->rec = NULL;
		pthread_cond_destroy(&r->done);
		pthread_cond_destroy(&r->wake);
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -rc;
	}
	return 0;
}

void fs_record_stop(struct mvfs *fs)
{
	struct fs_recorder *r = fs->rec;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	fs->rec = NULL;
	pthread_cond_destroy(&r->done);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int fs_record_queue(struct mvfs *fs, struct fs_sealed *x)
{
	struct fs_recorder *r = fs->rec;

	if (!r)
		return -ENOTCONN;
	x->next = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->stop) {
		pthread_mutex_unlock(&r->lock);
		return -ENOTCONN;
	}
	if (!r->head)
		clock_gettime(CLOCK_MONOTONIC, &r->head_at);
	*r->tail = x;
	r->tail = &x->next;
	x->in->queued = x;
	r->queued++;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int fs_record_amend(struct mvfs *fs, struct fs_inode *in, int (*fn)(struct mvfs *fs, struct fs_sealed *x, void *arg),
		    void *arg)
{
	struct fs_recorder *r = fs->rec;
	struct fs_sealed *x;
	int rc = -EAGAIN;

	if (!r || in->unrecorded != 1 || in->local != 2 || in->local_rows)
		return -EAGAIN;
	pthread_mutex_lock(&r->lock);
	x = in->queued;
	if (x && x->made == 1 && x->ino == in->ino)
		rc = fn(fs, x, arg);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void fs_record_flush(struct mvfs *fs)
{
	struct fs_recorder *r = fs->rec;

	if (!r)
		return;
	uint64_t upto;

	pthread_mutex_lock(&r->lock);
	upto = r->queued;
	if (r->recorded < upto) {
		r->waiting++;
		pthread_cond_signal(&r->wake);
		while (r->recorded < upto)
			pthread_cond_wait(&r->done, &r->lock);
		r->waiting--;
	}
	pthread_mutex_unlock(&r->lock);
}

void fs_record_flush_ino(struct mvfs *fs, uint64_t ino)
{
	struct fs_inode *in = fs_inode_find(fs, ino);
	int waiting = 0;

	if (!in)
		return;
	fs_local_settle(fs, ino);	/* made here: in the database first */
	pthread_mutex_lock(&in->lock);
	waiting = in->unrecorded > 0;
	pthread_mutex_unlock(&in->lock);
	if (waiting)
		fs_record_flush(fs);
}
