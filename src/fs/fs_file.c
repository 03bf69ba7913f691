/*
 * fs_file.c - a file's content while it is being written, and its commit.
 *
 * Writes go to an unnamed staging file.  Bytes written in order are hashed
 * as they arrive, so committing a file copied with cp or rsync costs no
 * second read; any other write pattern is hashed from the staging file.
 *
 * Commit (on flush, fsync, or a truncate of a closed file): SHA-256, type
 * from the first bytes, then the cache seals the staged bytes (durable:
 * fsync'd and journalled) and the database records the new version as
 * uploading; close returns.  The cache's uploaders send the bytes to the
 * store and call fs_file_uploaded, which marks the version uploaded.
 * Content is immutable per version: writing to sealed content first copies
 * it to a new staging file.
 *
 * LOCKING
 *
 * in->lock guards the inode's fields and is held to read or change them,
 * never across a commit's hashing, fsyncs or database call: stat, listings
 * and reads of a file take it for a moment and so never wait for a close
 * that takes seconds.  A commit copies what it needs under the lock (the
 * staging descriptor, size, running hash, mtime), sets in->committing and
 * lets go of the lock (fs_file_commit_start); it hashes, seals and records
 * without it, then takes it again to publish the outcome (sealed, dirty,
 * commits, sha256) and wakes the waiters (fs_file_commit_end).
 *
 * While a commit runs, nothing may change what it seals, or it would seal
 * bytes other than those it hashed: a write, a truncate, a second commit
 * (the versions are recorded in order), the end of staging and a new mtime
 * wait for it on in->committed (fs_file_wait_commit).  They find the
 * content sealed afterwards, so a write copies it first (unseal).  Readers
 * never wait: a read takes its own descriptor of the staging file under
 * the lock and reads without it.
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/mime.h"

/* Closes of files smaller than this are made durable by the recorder, a
 * batch at a time; bigger ones at the close (DECISIONS.md, "Where a closed
 * file is durable"). */
#define SEAL_LATER_MAX (8ULL << 20)

/* The content sealed here for row F when the row does not show it yet:
 * its close-time record was lost (a database crash after its asynchronous
 * commit) or never made (the database was away), and the upload's record
 * will make it.  Until then the closed bytes are what the file holds. */
static int waiting_content(struct mvfs *fs, const struct meta_file *f, struct cache_entry *w)
{
	return f->upload == META_UPLOAD_PENDING && cache_file_waiting(fs->cache, f->ino, w);
}

/* Whether IN's sealed version, whose record the recorder makes after its
 * close, is what row F (read a moment ago) should show instead of what it
 * says: while the record waits, and after it for a row read before it (its
 * ctime is older than the close's, which the record writes: 0022).  A row
 * showing that version ends the overlay.  With IN->lock held. */
static int shows_sealed(struct fs_inode *in, const struct meta_file *f)
{
	if (!in->rec_sha256[0])
		return 0;
	if (in->unrecorded > 0)
		return 1;
	if (strcmp(f->sha256, in->rec_sha256) == 0) {
		in->rec_sha256[0] = '\0';	/* recorded, and read back */
		return 0;
	}
	return f->ctime.tv_sec < in->rec_ctime.tv_sec ||
	       (f->ctime.tv_sec == in->rec_ctime.tv_sec && f->ctime.tv_nsec < in->rec_ctime.tv_nsec);
}

void fs_file_catch_up(struct mvfs *fs, struct meta_file *f)
{
	struct fs_inode *in = fs_inode_find(fs, f->ino);
	struct cache_entry w;

	if (in) {
		/* closed here, its record still queued (fs_record.c) */
		int shown = 0;

		pthread_mutex_lock(&in->lock);
		if (shows_sealed(in, f)) {
			f->size = in->rec_size;
			snprintf(f->sha256, sizeof(f->sha256), "%s", in->rec_sha256);
			if (f->upload == META_UPLOAD_PENDING)
				f->upload = META_UPLOAD_UPLOADING;
			if (in->rec_mtime_set)
				f->mtime = in->rec_mtime;
			shown = 1;
		}
		pthread_mutex_unlock(&in->lock);
		if (shown)
			return;
	}
	if (!waiting_content(fs, f, &w))
		return;
	f->size = w.size;
	snprintf(f->sha256, sizeof(f->sha256), "%s", w.sha256);
	f->upload = META_UPLOAD_UPLOADING;
	if (w.has_mtime)
		f->mtime = w.mtime;
}

void fs_file_stat(struct mvfs *fs, const struct meta_file *f, struct fs_inode *in, struct stat *st)
{
	struct cache_entry w;

	memset(st, 0, sizeof(*st));
	st->st_ino = f->ino;
	st->st_mode = S_IFREG | (f->mode & 07777);
	st->st_nlink = f->nlink;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)f->size;
	st->st_mtim = f->mtime;
	st->st_ctim = f->ctime;
	st->st_atim = f->atime;
	if (waiting_content(fs, f, &w)) {
		st->st_size = (off_t)w.size;
		if (w.has_mtime)
			st->st_mtim = w.mtime;
	}
	if (in) {
		pthread_mutex_lock(&in->lock);
		if (shows_sealed(in, f)) {
			st->st_size = (off_t)in->rec_size;
			if (in->rec_mtime_set)
				st->st_mtim = in->rec_mtime;
			st->st_ctim = in->rec_ctime;
		}
		if (in->stage_fd >= 0)
			st->st_size = (off_t)in->size;
		if (in->mtime_set) {	/* changed here, not yet recorded */
			st->st_mtim = in->mtime;
			if (in->mtime.tv_sec > st->st_ctim.tv_sec ||
			    (in->mtime.tv_sec == st->st_ctim.tv_sec && in->mtime.tv_nsec > st->st_ctim.tv_nsec))
				st->st_ctim = in->mtime;
		}
		pthread_mutex_unlock(&in->lock);
		/* Removed while still open: fstat says 0 links, as POSIX file
		 * systems do (.trash/ still shows it until its grace period ends). */
		if (__atomic_load_n(&in->nopen, __ATOMIC_RELAXED) > 0 && !f->is_version &&
		    f->lifecycle != META_LIFE_ACTIVE)
			st->st_nlink = 0;
	}
	st->st_blksize = 1 << 20;
	st->st_blocks = (st->st_size + 511) / 512;
}

int fs_file_getattr(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	struct fs_inode *in = fs_inode_find(fs, ino);
	struct meta_file f;
	int rc, local = 0;

	if (in) {
		pthread_mutex_lock(&in->lock);
		local = in->local;
		pthread_mutex_unlock(&in->lock);
	}
	if (local) {	/* made here, not in the database yet */
		fs_local_stat(fs, in, st);
		return 0;
	}

	for (int tries = 0;; tries++) {
		uint64_t before = 0, after = 0;

		if (in) {
			pthread_mutex_lock(&in->lock);
			before = in->commits;
			pthread_mutex_unlock(&in->lock);
		}
		if ((rc = meta_file_get(fs->meta, ino, &f)) != 0)
			return rc;
		if (in) {
			pthread_mutex_lock(&in->lock);
			after = in->commits;
			pthread_mutex_unlock(&in->lock);
		}
		if (before == after || tries == 3)
			break;
	}
	(void)fs_ns_visible(fs, &f);	/* another mount's upload in flight: the version before */
	fs_file_stat(fs, &f, in, st);
	return 0;
}

static void hash_reset(struct fs_inode *in, int valid)
{
	if (!in->sha.ctx && sha256_init(&in->sha) != 0)
		valid = 0;
	else if (in->sha.ctx) {
		char discard[SHA256_HEX_LEN + 1];

		sha256_final(&in->sha, discard);	/* resets the context */
	}
	in->hashed = 0;
	in->hash_valid = valid;
}

void fs_file_wait_commit(struct fs_inode *in)
{
	while (in->committing)
		pthread_cond_wait(&in->committed, &in->lock);
}

void fs_file_commit_start(struct fs_inode *in)
{
	in->committing = 1;
	pthread_mutex_unlock(&in->lock);
}

void fs_file_commit_end(struct fs_inode *in)
{
	pthread_mutex_lock(&in->lock);
	in->committing = 0;
	pthread_cond_broadcast(&in->committed);
}

int fs_file_stage(struct mvfs *fs, struct fs_inode *in, const struct meta_file *f, int truncate)
{
	int fd, rc;

	/* Staging is not closed under a running commit (fs_file_unstage
	 * waits for it), so only a truncate, which changes the bytes, waits. */
	if (truncate)
		fs_file_wait_commit(in);
	if (in->stage_fd >= 0) {
		if (truncate)
			return fs_file_truncate(fs, in, 0);
		return 0;
	}
	fd = cache_stage_create(fs->cache);
	if (fd < 0)
		return fd;
	in->size = 0;
	if (f && !truncate && f->size > 0) {
		rc = cache_stage_fill(fs->cache, f->sha256, f->size, fd);
		if (rc) {
			close(fd);
			return rc;
		}
		in->size = f->size;
	}
	in->stage_fd = fd;
	in->sealed = 0;
	/* what this writer starts from: a version another writer records
	 * meanwhile is kept when this one replaces it (mvfs_stage, 0016) */
	snprintf(in->sha256, sizeof(in->sha256), "%s", f ? f->sha256 : "");
	/* A new or truncated file starts dirty: its (empty) content is the
	 * new version, even if nothing is written before close. */
	in->dirty = !f || truncate;
	if (f && truncate) {		/* O_TRUNC changes the file now, written or not */
		in->mtime_set = 1;
		clock_gettime(CLOCK_REALTIME, &in->mtime);
	}
	hash_reset(in, in->size == 0);
	if (f)
		snprintf(in->name, sizeof(in->name), "%s", f->name);
	return 0;
}

/* Before sealed content changes: a private copy to change (called with
 * IN->lock held). */
static int unseal(struct mvfs *fs, struct fs_inode *in)
{
	char *buf;
	uint64_t off = 0;
	int fd, rc = 0;

	if (!in->sealed)
		return 0;
	fd = cache_stage_create(fs->cache);
	if (fd < 0)
		return fd;
	buf = malloc(1 << 20);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (rc == 0 && off < in->size) {
		ssize_t n = pread(in->stage_fd, buf, 1 << 20, (off_t)off);

		if (n <= 0)
			rc = n < 0 ? -errno : -EIO;
		else if ((rc = cache_write_full(fd, buf, (size_t)n, (off_t)off)) == 0)
			off += (uint64_t)n;
	}
	free(buf);
	if (rc) {
		log_error("cannot copy '%s' to change it: %s", in->name, strerror(-rc));
		close(fd);
		return rc;
	}
	close(in->stage_fd);
	in->stage_fd = fd;
	in->sealed = 0;
	return 0;
}

ssize_t fs_file_write(struct mvfs *fs, struct fs_inode *in, const void *buf, size_t len, off_t off)
{
	ssize_t n;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	fs_file_wait_commit(in);
	if (in->stage_fd < 0)
		rc = -EBADF;
	if (rc == 0 && (uint64_t)off + len > in->size)
		rc = cache_stage_room(fs->cache, in->name, (uint64_t)off + len, (uint64_t)off + len - in->size);
	if (rc == 0)
		rc = unseal(fs, in);
	if (rc) {
		/* Nothing was written (no room, or no copy to write into): the
		 * file keeps the writes that succeeded, as on ext4, and neither
		 * it nor a later write is lost at close. */
		pthread_mutex_unlock(&in->lock);
		return rc;
	}
	n = pwrite(in->stage_fd, buf, len, off);
	if (n < 0) {
		n = -errno;
		in->write_error = (int)n;
		log_error("cannot stage a write to '%s': %s", in->name, strerror(errno));
	} else {
		if (in->hash_valid && (uint64_t)off == in->hashed) {
			sha256_update(&in->sha, buf, (size_t)n);
			in->hashed += (uint64_t)n;
		} else if (in->hash_valid && (uint64_t)off < in->hashed) {
			in->hash_valid = 0;	/* rewrite of hashed bytes */
		}
		if ((uint64_t)off + (uint64_t)n > in->size)
			in->size = (uint64_t)off + (uint64_t)n;
		in->dirty = 1;
		in->mtime_set = 1;
		clock_gettime(CLOCK_REALTIME, &in->mtime);
	}
	pthread_mutex_unlock(&in->lock);
	return n;
}

int fs_file_truncate(struct mvfs *fs, struct fs_inode *in, uint64_t size)
{
	int rc;

	fs_file_wait_commit(in);
	if (size > in->size && (rc = cache_stage_room(fs->cache, in->name, size, size - in->size)) != 0)
		return rc;
	if ((rc = unseal(fs, in)) != 0)
		return rc;
	if (ftruncate(in->stage_fd, (off_t)size) != 0) {
		int err = errno;

		log_error("cannot truncate staged '%s': %s", in->name, strerror(err));
		return -err;
	}
	if (size < in->hashed || !in->hash_valid)
		hash_reset(in, size == 0);
	in->size = size;
	in->dirty = 1;
	in->mtime_set = 1;
	clock_gettime(CLOCK_REALTIME, &in->mtime);
	return 0;
}

/* What a commit works on, copied from the inode under its lock.  While the
 * commit runs nothing changes the staged bytes, so the copy stays true. */
struct snapshot {
	int fd;				/* the staging file, open until the commit ends */
	uint64_t size;
	char sha[SHA256_HEX_LEN + 1];	/* "" when the bytes must be hashed from FD */
	int mtime_set;
	struct timespec mtime;
	char name[256];
	uint64_t ino;			/* the file the commit records: its own, or its conflict copy */
	char base[SHA256_HEX_LEN + 1];	/* the version this writer replaces ("" for a new file) */
	struct meta_dir home;
};

/* Copies what a commit of IN needs (with IN->lock held). */
static void snapshot_take(struct fs_inode *in, struct snapshot *s)
{
	s->fd = in->stage_fd;
	s->size = in->size;
	s->sha[0] = '\0';
	if (in->hash_valid && in->hashed == in->size)
		sha256_final(&in->sha, s->sha);
	hash_reset(in, 0);	/* later writes rehash from the file */
	s->mtime_set = in->mtime_set;
	s->mtime = in->mtime;
	snprintf(s->name, sizeof(s->name), "%s", in->name);
	s->ino = in->conflict_ino ? in->conflict_ino : in->ino;
	snprintf(s->base, sizeof(s->base), "%s", in->sha256);
	s->home = in->home;
}

void fs_conflict_name(const char *name, int n, char *out, size_t len)
{
	const char *dot = strrchr(name, '.');
	size_t stem = dot && dot != name ? (size_t)(dot - name) : strlen(name);
	char host[64] = "here", when[32], num[16] = "";
	time_t now = time(NULL);
	struct tm tm;

	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, "/.")] = '\0';
	strftime(when, sizeof(when), "%Y-%m-%d %H.%M.%S", localtime_r(&now, &tm));
	if (n > 1)
		snprintf(num, sizeof(num), " %d", n);
	/* the stem gives way, so the whole stays a valid name */
	snprintf(out, len, "%.*s (conflict %s %s%s)%s",
		 (int)(stem > 160 ? 160 : stem), name, host, when, num, dot && dot != name ? dot : "");
}

/* Hands sealed version X of IN to the recorder, IN showing it until it is
 * recorded: 0, or -errno when the closer must record it itself. */
static int queue_record(struct mvfs *fs, struct fs_inode *in, const struct fs_sealed *x)
{
	struct fs_sealed *q;
	int rc;

	if (!fs->rec || !(q = malloc(sizeof(*q))))
		return -ENOMEM;
	*q = *x;
	q->in = in;
	if ((q->fd = dup(x->fd)) < 0) {
		free(q);
		return -errno;
	}
	fs_inode_hold(fs, in);
	pthread_mutex_lock(&in->lock);
	in->unrecorded++;
	if (x->made)
		in->local = 2;	/* closed: its record makes it */
	in->rec_size = x->e.size;
	snprintf(in->rec_sha256, sizeof(in->rec_sha256), "%s", x->e.sha256);
	in->rec_mtime_set = x->e.has_mtime;
	in->rec_mtime = x->e.mtime;
	in->rec_ctime = (struct timespec){ .tv_sec = (time_t)(x->at_ns / 1000000000ULL),
					   .tv_nsec = (long)(x->at_ns % 1000000000ULL) };
	pthread_mutex_unlock(&in->lock);
	if ((rc = fs_record_queue(fs, q)) != 0) {
		pthread_mutex_lock(&in->lock);
		if (--in->unrecorded == 0)
			in->rec_sha256[0] = '\0';
		pthread_mutex_unlock(&in->lock);
		fs_inode_unhold(fs, in);
		close(q->fd);
		free(q);
	}
	return rc;
}

/* The slow part of a commit of file INO, without its inode's lock: hash,
 * type, seal, record.  Returns 0 or -errno; *ABORTED is set when a failed
 * seal removed a file that never had content (its changes are gone). */
static int seal_and_record(struct mvfs *fs, struct fs_inode *in, struct snapshot *s, int *aborted,
			   uint64_t *copy)
{
	uint64_t ino = s->ino;
	unsigned char head[MIME_SNIFF_BYTES];
	struct cache_entry e;
	struct fs_sealed x;
	struct timespec now;
	struct mime_type type;
	int rc, local, noted = 0, later;
	ssize_t nhead;

	*aborted = 0;
	pthread_mutex_lock(&in->lock);
	local = ino == in->ino && in->local == 1;
	pthread_mutex_unlock(&in->lock);
	if (!s->sha[0] && (rc = sha256_fd(s->fd, s->size, s->sha)) != 0) {
		log_error("cannot hash staged '%s': %s", s->name, strerror(-rc));
		return rc;
	}
	nhead = pread(s->fd, head, sizeof(head), 0);
	type = mime_sniff(head, nhead > 0 ? (size_t)nhead : 0, s->name);

	memset(&e, 0, sizeof(e));
	e.ino = ino;
	snprintf(e.sha256, sizeof(e.sha256), "%s", s->sha);
	e.size = s->size;
	snprintf(e.mime, sizeof(e.mime), "%s", type.mime);
	snprintf(e.memory_type, sizeof(e.memory_type), "%s", type.memory_type);
	if (s->mtime_set) {
		e.mtime = s->mtime;
		e.has_mtime = 1;
	}
	/* made here first: its name goes with the bytes into the journal,
	 * durable with them (fs_local.c) */
	if (local && (noted = fs_local_note(in, s->fd)) != 0)
		log_info("'%s': no note on its staged bytes (%s); it is made at its close", s->name,
			 strerror(-noted));
	/* the recorder makes it durable before its record (fs_record.c); a
	 * big file's flush is its own bytes' time, and in the recorder it
	 * would hold every record behind it (and the listings that wait for
	 * them) */
	later = fs->rec && noted == 0 && s->size < SEAL_LATER_MAX;
	rc = cache_stage_seal(fs->cache, s->fd, &e, later ? CACHE_SEAL_LATER : 0);
	if (rc) {
		log_error("cannot keep '%s' (%llu bytes): %s", s->name, (unsigned long long)s->size,
			  strerror(-rc));
		/* A file that never had content must not stay behind half made. */
		if (local) {
			fs_local_forget(fs, in);
			pthread_mutex_lock(&in->lock);
			in->local = 0;
			pthread_mutex_unlock(&in->lock);
			*aborted = 1;
		} else {
			*aborted = meta_file_abort(fs->meta, ino) == 0;
		}
		return rc;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	x = (struct fs_sealed){ .ino = ino, .fd = s->fd, .e = e, .home = s->home,
				.at_ns = ((uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000) * 1000 };
	snprintf(x.base, sizeof(x.base), "%s", s->base);
	snprintf(x.name, sizeof(x.name), "%s", s->name);
	if (local) {
		x.made = 1;
		pthread_mutex_lock(&in->lock);
		x.mode = in->local_mode;
		x.made_at = in->local_made;
		x.atime_set = in->local_atime_set;
		x.atime = in->local_atime;
		pthread_mutex_unlock(&in->lock);
	}
	if (later && queue_record(fs, in, &x) == 0)
		return 0;
	if (later && (cache_stage_sync(fs->cache, s->fd) != 0 || cache_stage_sync(fs->cache, -1) != 0))
		log_error("'%s' is recorded without its bytes known durable; its upload keeps them", s->name);
	rc = fs_record_sealed(fs, &x, copy);
	if (x.made && fs_local_recorded(fs, in, &x))
		fs_inode_hold(fs, in);	/* until its upload's record makes it */
	cache_stage_upload(fs->cache, &x.e);
	return rc;
}

/* A write to IN failed inside its staging file, which is not what was
 * written then: never keep that version.  A file with content keeps its
 * last version; a new one stays, empty (it must not vanish because a write
 * failed).  Returns the write's error, for the close to report. */
static int drop_failed_writes(struct mvfs *fs, struct fs_inode *in)
{
	int rc = in->write_error, had = 1, local;
	struct meta_file f;
	char name[256];

	in->write_error = 0;
	snprintf(name, sizeof(name), "%s", in->name);
	local = in->local;	/* made here: no version yet */
	fs_file_commit_start(in);
	if (local)
		had = 0;
	else if (meta_file_get(fs->meta, in->ino, &f) == 0)
		had = f.sha256[0] != '\0';
	fs_file_commit_end(in);
	had = had || in->rec_sha256[0];	/* closed before, its record still to come */
	if (!had && !in->sealed && ftruncate(in->stage_fd, 0) == 0) {
		log_error("'%s' is kept empty: a write to it failed (%s)", name, strerror(-rc));
		hash_reset(in, 1);
		in->size = 0;
		in->dirty = 1;
		fs_file_commit(fs, in);
		return rc;
	}
	log_error("not keeping the changes to '%s': a write to it failed (%s); it keeps its last version",
		  name, strerror(-rc));
	in->dirty = 0;
	return rc;
}

int fs_file_commit(struct mvfs *fs, struct fs_inode *in)
{
	struct snapshot s;
	uint64_t copy = 0;
	int rc, aborted;

	fs_file_wait_commit(in);
	if (in->stage_fd < 0 || !in->dirty)
		return 0;
	if (in->plain)
		return fs_plain_commit(fs, in);
	if (in->write_error)
		return drop_failed_writes(fs, in);
	snapshot_take(in, &s);
	fs_file_commit_start(in);
	rc = seal_and_record(fs, in, &s, &aborted, &copy);
	fs_file_commit_end(in);
	if (copy)
		in->conflict_ino = copy;
	if (rc) {
		if (aborted)
			in->dirty = 0;
		return rc;
	}
	/* Published only now, after the record: fs_file_getattr reads the
	 * rows again when this count moved while it read them. */
	in->sealed = 1;
	in->dirty = 0;
	in->commits++;
	snprintf(in->sha256, sizeof(in->sha256), "%s", s.sha);
	in->mtime_set = 0;
	return 0;
}

/* The content E's upload record names. */
static void uploaded_content(struct mvfs *fs, const struct cache_entry *e, struct meta_content *ct)
{
	*ct = (struct meta_content){
		.sha256 = e->sha256, .size = e->size, .mime = e->mime[0] ? e->mime : "application/octet-stream",
		.memory_type = e->memory_type[0] ? e->memory_type : "document",
		.backend = cache_backend_name(fs->cache), .key = e->key,
		.mtime = e->has_mtime ? &e->mtime : NULL, .seq = e->seq,
	};
}

int fs_file_uploaded(void *arg, const struct cache_entry *e)
{
	struct mvfs *fs = arg;
	struct meta_content ct;

	char note[400];
	struct fs_made mk;
	int rc;

	uploaded_content(fs, e, &ct);
	rc = meta_file_uploaded(fs->meta, e->ino, &ct);
	/* A file made here first whose rows are not there: its close-time
	 * record failed, or was lost with the daemon.  Its entry's note makes
	 * it, once (fs_local.c). */
	if (rc == -ENOENT && cache_entry_note(fs->cache, e, FS_LOCAL_NOTE, note, sizeof(note)) > 0 &&
	    fs_local_parse(note, e->ino, &mk) == 0) {
		rc = fs_record_made(fs, e->ino, &mk, &ct, NULL, 0);
		if (rc == 0 || rc == -EALREADY)
			rc = meta_file_uploaded(fs->meta, e->ino, &ct);
		else
			log_warn("cannot make '%s' in the database yet (%s)", mk.name, strerror(-rc));
	}
	if (rc == 0)
		fs_local_uploaded(fs, e->ino);
	return rc == -ENOENT ? 0 : rc;	/* removed: the entry goes */
}

void fs_files_uploaded(void *arg, const struct cache_entry *const *e, int *rc, int n)
{
	struct mvfs *fs = arg;
	struct meta_content ct[META_UPLOADS_MAX];
	struct meta_uploaded ups[META_UPLOADS_MAX];
	int all;

	for (int i = 0; i < n; i++) {
		uploaded_content(fs, e[i], &ct[i]);
		ups[i] = (struct meta_uploaded){ .ino = e[i]->ino, .ct = &ct[i] };
	}
	all = n <= META_UPLOADS_MAX ? meta_files_uploaded(fs->meta, ups, n) : -EINVAL;
	for (int i = 0; i < n; i++) {
		rc[i] = all ? all : ups[i].rc;
		if (rc[i] == -ENOENT)	/* no rows: fs_file_uploaded's ways */
			rc[i] = fs_file_uploaded(fs, e[i]);
		else if (rc[i] == 0)
			fs_local_uploaded(fs, e[i]->ino);
	}
}

void fs_file_unstage(struct fs_inode *in)
{
	fs_file_wait_commit(in);
	if (--in->writers > 0 || in->stage_fd < 0)
		return;
	if (in->dirty)
		log_error("'%s' closed with changes that could not be committed; they are dropped",
			  in->name);
	close(in->stage_fd);
	in->stage_fd = -1;
	in->dirty = 0;
	in->sealed = 0;
	in->mtime_set = 0;
	in->write_error = 0;
}

struct fs_handle *fs_handle_new(struct mvfs *fs, struct fs_inode *in, const struct meta_file *f)
{
	struct fs_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->in = in;
	if (f) {
		h->size = f->size;
		snprintf(h->sha256, sizeof(h->sha256), "%s", f->sha256);
	}
	pthread_mutex_lock(&in->lock);
	h->commits = in->commits;
	pthread_mutex_unlock(&in->lock);
	pthread_mutex_lock(&fs->handles_lock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->handles_lock);
	return h;
}

void fs_handle_free(struct mvfs *fs, struct fs_handle *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&fs->handles_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->handles_lock);
	free(h);
}

void fs_handles_close_all(struct mvfs *fs)
{
	struct fs_handle *h;

	while ((h = fs->handles) != NULL) {
		if (h->writable) {
			pthread_mutex_lock(&h->in->lock);
			if (h->in->dirty)
				log_warn("'%s' is still open for writing at unmount: committing what was written",
					 h->in->name);
			fs_file_commit(fs, h->in);
			fs_file_unstage(h->in);
			pthread_mutex_unlock(&h->in->lock);
		}
		fs_handle_free(fs, h);
	}
	pthread_mutex_lock(&fs->handles_lock);
	while (fs->dirs) {
		struct fs_open_dir *d = fs->dirs;

		fs->dirs = d->next;
		if (fs->dirs)
			fs->dirs->prev = NULL;
		pthread_mutex_unlock(&fs->handles_lock);
		d->close(d);
		pthread_mutex_lock(&fs->handles_lock);
	}
	pthread_mutex_unlock(&fs->handles_lock);
}

void fs_open_dir_track(struct mvfs *fs, struct fs_open_dir *d, void (*close)(struct fs_open_dir *))
{
	d->close = close;
	d->prev = NULL;
	pthread_mutex_lock(&fs->handles_lock);
	d->next = fs->dirs;
	if (d->next)
		d->next->prev = d;
	fs->dirs = d;
	pthread_mutex_unlock(&fs->handles_lock);
}

void fs_open_dir_untrack(struct mvfs *fs, struct fs_open_dir *d)
{
	pthread_mutex_lock(&fs->handles_lock);
	if (d->prev)
		d->prev->next = d->next;
	else if (fs->dirs == d)
		fs->dirs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->prev = d->next = NULL;
	pthread_mutex_unlock(&fs->handles_lock);
}
