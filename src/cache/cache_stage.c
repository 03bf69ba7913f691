/*
 * cache_stage.c - write-back: staging files, sealing them into the
 * journal, and the staged set (what waits for upload, per content and per
 * file).  The uploaders and the recovery after a crash that take entries
 * from the journal are in cache_upload.c.
 *
 * A file being written lives in an unnamed (O_TMPFILE) staging file.  At
 * close, cache_stage_seal fsyncs it, gives it the name staging/<sha256>
 * (linkat of the open file: no copy) and links it once more as its journal
 * entry, journal/<seq>_<sha256>_<ino>_<size>_<mtime>_<type>_<mime>, whose
 * name holds what the upload record needs; an fsync of the journal folder
 * makes the entry durable: from then on the content survives kill -9 and
 * power loss.  Two fsyncs per close; staging/ is not synced, a start names
 * the bytes there again from their entry.  The same bytes sealed twice
 * share one staging file; the staged set counts the journal entries per
 * hash.  (Entries of earlier versions, small key=value files named
 * <seq>-<sha256>, are written anew at start.)
 *
 * The files whose content is here are counted too (per inode), for the
 * filesystem's listings: a file closed here shows from its close on, in
 * every listing, whatever the row a listing read says.  A listing reads
 * its rows first and asks about each file a little later, so a row read
 * just before close was recorded ("pending") or just before the upload was
 * ("uploading") must still find the file held here: an inode's count goes
 * only after the upload is recorded, and an uploaded file is still
 * reported for CACHE_RECENT_SECS after that (a sweep forgets it later).
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend/backend.h"
#include "util/log.h"
#include "util/sha256.h"

struct staged {
	char sha256[65];
	int entries;		/* journal entries waiting for this content */
	uint64_t size;
	struct staged *next;
};

/* A file (inode) with content here: sealed entries waiting for upload, or
 * none and the time its last one was uploaded. */
struct staged_file {
	uint64_t ino;
	int entries;
	time_t uploaded_at;	/* monotonic seconds, when entries is 0 */
	struct cache_entry newest;	/* the last content sealed (highest seq) */
	struct staged_file *next;
};

static size_t sha_bucket(const struct cache *c, const char *sha)
{
	size_t h = 0;

	for (int i = 0; i < 16 && sha[i]; i++)
		h = h * 31 + (unsigned char)sha[i];
	return h % c->nstaged_buckets;
}

/* With c->lock held. */
struct staged *cache_staged_find(struct cache *c, const char *sha)
{
	struct staged *s = c->staged[sha_bucket(c, sha)];

	while (s && strcmp(s->sha256, sha) != 0)
		s = s->next;
	return s;
}

static time_t mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

/* With c->lock held. */
static struct staged_file **file_slot(struct cache *c, uint64_t ino)
{
	struct staged_file **pp = &c->files[ino % c->nfile_buckets];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

/* Forgets files uploaded more than CACHE_RECENT_SECS ago, at most once a
 * second (with c->lock held). */
static void files_sweep(struct cache *c, time_t now)
{
	if (now == c->files_swept)
		return;
	c->files_swept = now;
	for (size_t i = 0; i < c->nfile_buckets; i++) {
		struct staged_file **pp = &c->files[i], *f;

		while ((f = *pp) != NULL) {
			if (f->entries == 0 && now - f->uploaded_at > CACHE_RECENT_SECS) {
				*pp = f->next;
				free(f);
			} else {
				pp = &f->next;
			}
		}
	}
}

/* Counts one more journal entry for E's file and content (with c->lock
 * held).  On failure nothing changes. */
int cache_staged_add(struct cache *c, const struct cache_entry *e)
{
	struct staged_file **fp = file_slot(c, e->ino);
	struct staged *s = cache_staged_find(c, e->sha256);
	struct staged_file *f = *fp ? NULL : calloc(1, sizeof(*f));

	if (!*fp && !f)
		return -ENOMEM;
	if (!s) {
		size_t k = sha_bucket(c, e->sha256);

		if (!(s = calloc(1, sizeof(*s)))) {
			free(f);
			return -ENOMEM;
		}
		snprintf(s->sha256, sizeof(s->sha256), "%s", e->sha256);
		s->size = e->size;
		s->next = c->staged[k];
		c->staged[k] = s;
		c->staged_bytes += e->size;
	}
	if (f) {
		f->ino = e->ino;
		*fp = f;
	}
	if (e->seq >= (*fp)->newest.seq)
		(*fp)->newest = *e;
	(*fp)->entries++;
	s->entries++;
	c->staged_files++;
	return 0;
}

/* Counts one journal entry less for E's file and content; returns 1 when it
 * was the last one for its content (with c->lock held).  UPLOADED: the
 * entry's upload is recorded, and its file is still reported for a while;
 * else (sealing failed, content set aside) the file no longer counts. */
int cache_staged_drop(struct cache *c, const struct cache_entry *e, int uploaded)
{
	struct staged_file **fp = file_slot(c, e->ino), *f = *fp;
	const char *sha = e->sha256;
	struct staged **pp = &c->staged[sha_bucket(c, sha)], *s;

	if (f && f->entries > 0 && --f->entries == 0) {
		if (uploaded) {
			f->uploaded_at = mono_now();
			files_sweep(c, f->uploaded_at);
		} else if (!f->uploaded_at) {
			*fp = f->next;
			free(f);
		}
	}

	while (*pp && strcmp((*pp)->sha256, sha) != 0)
		pp = &(*pp)->next;
	if (!(s = *pp))
		return 0;
	c->staged_files--;
	if (--s->entries > 0)
		return 0;
	*pp = s->next;
	c->staged_bytes -= s->size;
	free(s);
	return 1;
}

int cache_holds_file(struct cache *c, uint64_t ino)
{
	struct staged_file *f;
	int yes;

	pthread_mutex_lock(&c->lock);
	f = *file_slot(c, ino);
	yes = f && (f->entries > 0 || mono_now() - f->uploaded_at <= CACHE_RECENT_SECS);
	pthread_mutex_unlock(&c->lock);
	return yes;
}

int cache_file_waiting(struct cache *c, uint64_t ino, struct cache_entry *e)
{
	struct staged_file *f;
	int yes;

	pthread_mutex_lock(&c->lock);
	f = *file_slot(c, ino);
	yes = f && f->entries > 0;
	if (yes)
		*e = f->newest;
	pthread_mutex_unlock(&c->lock);
	return yes;
}

static int is_staged_now(struct cache *c, const char *sha256)
{
	int yes;

	pthread_mutex_lock(&c->lock);
	yes = cache_staged_find(c, sha256) != NULL;
	pthread_mutex_unlock(&c->lock);
	return yes;
}

int cache_stage_open_content(struct cache *c, const char *sha256)
{
	char path[4200];
	int fd;

	if (!is_staged_now(c, sha256))
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/%s", c->staging_dir, sha256);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

int cache_stage_create(struct cache *c)
{
	int fd = open(c->staging_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		int err = errno;

		log_error("cannot create a staging file in '%s': %s", c->staging_dir, strerror(err));
		return -err;
	}
	return fd;
}

int cache_stage_room(struct cache *c, const char *name, uint64_t size, uint64_t growth)
{
	uint64_t total = 0, avail = 0, staged;

	if (size > CACHE_FILE_MAX) {
		log_error("cannot make '%s' %" PRIu64 " bytes: the largest file is %" PRIu64 " bytes"
			  " (5 TiB, the largest object S3 stores)", name, size, (uint64_t)CACHE_FILE_MAX);
		return -EFBIG;
	}
	pthread_mutex_lock(&c->lock);
	staged = c->staged_bytes;
	pthread_mutex_unlock(&c->lock);
	/* A file past the cap passes alone: with nothing waiting it could
	 * never be written otherwise.  The disk's floor below still holds. */
	if (staged > 0 && staged + size > c->cfg.staging_max) {
		log_error("cannot stage '%s' (%" PRIu64 " bytes): %" PRIu64 " bytes of other files wait for"
			  " upload, and staging_max is %" PRIu64 "; ENOSPC until the store takes them"
			  " (raise it with -o staging_max=SIZE)", name, size, staged, c->cfg.staging_max);
		return -ENOSPC;
	}
	/* what is written already is off the free space: only growth counts */
	if (cache_disk_space(c, &total, &avail) == 0 && avail < growth + c->cfg.free_min / 2) {
		log_error("cannot stage '%s' (%" PRIu64 " bytes): the cache folder's disk is full (%" PRIu64
			  " bytes free, %" PRIu64 " more needed, cache_free_min/2 = %" PRIu64 " stays free); ENOSPC"
			  " (every byte of a file is staged in '%s' before its upload)", name, size, avail, growth,
			  c->cfg.free_min / 2, c->dir);
		return -ENOSPC;
	}
	return 0;
}

int cache_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* A journal entry is a hard link of the sealed content whose name holds
 * the rest: journal/<seq>_<sha256>_<ino>_<size>_<mtime|n>_<type>_<mime>
 * ('/' of the MIME type as '=').  Making one costs a link and one fsync of
 * the folder, no data of its own to write and sync. */
void cache_journal_name(const struct cache_entry *e, char *buf, size_t len)
{
	char mtime[48] = "n", mime[96];
	size_t i;

	if (e->has_mtime)
		snprintf(mtime, sizeof(mtime), "%lld.%09ld", (long long)e->mtime.tv_sec, e->mtime.tv_nsec);
	const char *m = e->mime[0] && strlen(e->mime) < sizeof(mime) ? e->mime : "application/octet-stream";

	memcpy(mime, m, strlen(m) + 1);
	for (i = 0; mime[i]; i++)
		if (mime[i] == '/')
			mime[i] = '=';
	snprintf(buf, len, "%020" PRIu64 "_%s_%" PRIu64 "_%" PRIu64 "_%s_%s_%s", e->seq, e->sha256, e->ino,
		 e->size, mtime, e->memory_type[0] ? e->memory_type : "document", mime);
}

/* Reads entry NAME back; -EINVAL when it is not one. */
int cache_journal_parse(const char *name, struct cache_entry *e)
{
	char sha[65], mtime[48], type[16], mime[128];
	unsigned long long seq, ino, size;
	int end = 0;

	memset(e, 0, sizeof(*e));
	if (sscanf(name, "%20llu_%64[0-9a-f]_%llu_%llu_%47[^_]_%15[^_]_%127s%n", &seq, sha, &ino, &size, mtime,
		   type, mime, &end) != 7 || name[end] != '\0' || strlen(sha) != 64)
		return -EINVAL;
	e->seq = seq;
	e->ino = ino;
	e->size = size;
	snprintf(e->sha256, sizeof(e->sha256), "%s", sha);
	snprintf(e->memory_type, sizeof(e->memory_type), "%s", type);
	for (char *p = mime; *p; p++)
		if (*p == '=')
			*p = '/';
	snprintf(e->mime, sizeof(e->mime), "%s", mime);
	if (strcmp(mtime, "n") != 0) {
		char *dot;

		e->mtime.tv_sec = strtoll(mtime, &dot, 10);
		e->mtime.tv_nsec = *dot == '.' ? strtol(dot + 1, NULL, 10) : 0;
		e->has_mtime = 1;
	}
	return 0;
}

/* Makes E's journal entry: a link of FD's file, durable once the folder
 * is synced. */
static int journal_write(struct cache *c, int fd, const struct cache_entry *e, unsigned flags)
{
	char name[JOURNAL_NAME_MAX], proc[64];
	int dfd = open(c->journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (dfd < 0)
		return -errno;
	cache_journal_name(e, name, sizeof(name));
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) != 0)
		rc = -errno;
	else if (!(flags & CACHE_SEAL_LATER) && fsync(dfd) != 0)
		rc = -errno;
	if (rc)
		unlinkat(dfd, name, 0);
	close(dfd);
	return rc;
}

/* An entry as earlier versions wrote it (journal/<seq>-<sha256>, a small
 * text file of key=value lines), read at start to be written anew. */
int cache_journal_read_old(const char *path, struct cache_entry *e)
{
	char line[512];
	FILE *f = fopen(path, "r");
	int have = 0;

	if (!f)
		return -errno;
	memset(e, 0, sizeof(*e));
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, '='), *nl = strchr(line, '\n');

		if (!v)
			continue;
		*v++ = '\0';
		if (nl)
			*nl = '\0';
		if (strcmp(line, "ino") == 0)
			e->ino = strtoull(v, NULL, 10), have |= 1;
		else if (strcmp(line, "sha256") == 0 && strlen(v) == 64)
			snprintf(e->sha256, sizeof(e->sha256), "%s", v), have |= 2;
		else if (strcmp(line, "size") == 0)
			e->size = strtoull(v, NULL, 10), have |= 4;
		else if (strcmp(line, "mime") == 0)
			snprintf(e->mime, sizeof(e->mime), "%s", v);
		else if (strcmp(line, "type") == 0)
			snprintf(e->memory_type, sizeof(e->memory_type), "%s", v);
		else if (strcmp(line, "mtime") == 0) {
			char *dot;

			e->mtime.tv_sec = strtoll(v, &dot, 10);
			e->mtime.tv_nsec = *dot == '.' ? strtol(dot + 1, NULL, 10) : 0;
			e->has_mtime = 1;
		}
	}
	fclose(f);
	return have == 7 ? 0 : -EINVAL;
}

/* Appends an upload to the queue (with c->lock held). */
void cache_queue_push(struct cache *c, struct upload *u)
{
	u->next = NULL;
	if (c->queue_tail)
		c->queue_tail->next = u;
	else
		c->queue_head = u;
	c->queue_tail = u;
	pthread_cond_broadcast(&c->changed);
}

int cache_stage_seal(struct cache *c, int fd, struct cache_entry *e, unsigned flags)
{
	char path[4200], proc[64];
	struct timespec now;
	int rc, counted;

	cache_key_for(c, e->sha256, e->key);
	snprintf(path, sizeof(path), "%s/%s", c->staging_dir, e->sha256);
	if (!(flags & CACHE_SEAL_LATER) && fsync(fd) != 0) {
		rc = -errno;
		log_error("cannot make staged '%.12s...' durable: %s", e->sha256, strerror(-rc));
		return rc;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	/* Name the unnamed staging file (the same bytes may be there already)
	 * and count it, under the lock: an upload of the same bytes finishing
	 * now either sees this entry or has moved its file out of the way. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	pthread_mutex_lock(&c->lock);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0 && errno != EEXIST) {
		rc = -errno;
		pthread_mutex_unlock(&c->lock);
		log_error("cannot seal staged content as '%s': %s", path, strerror(-rc));
		return rc;
	}
	e->seq = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	if (e->seq <= c->last_seq)
		e->seq = c->last_seq + 1;
	c->last_seq = e->seq;
	rc = cache_staged_add(c, e);
	counted = rc == 0;
	pthread_mutex_unlock(&c->lock);
	/* staging/<sha256> is not synced: the entry is the durable name, and
	 * a start links staging/ again from it */
	if (rc == 0)
		rc = journal_write(c, fd, e, flags);
	if (rc) {
		log_error("cannot journal staged '%.12s...': %s", e->sha256, strerror(-rc));
		pthread_mutex_lock(&c->lock);
		if (counted ? cache_staged_drop(c, e, 0) : !cache_staged_find(c, e->sha256))
			unlink(path);
		pthread_cond_broadcast(&c->changed);
		pthread_mutex_unlock(&c->lock);
	}
	return rc;
}

int cache_stage_sync(struct cache *c, int fd)
{
	int rc = 0;

	if (fd >= 0) {
		if (fsync(fd) != 0)
			rc = -errno;
	} else {
		rc = cache_fsync_path(c->journal_dir);
	}
	if (rc)
		log_error("cannot make closed content durable in '%s' (%s): %s; it stays for its upload, but a"
			  " crash of this machine before then may lose it", c->journal_dir,
			  fd >= 0 ? "its bytes" : "the journal's names", strerror(-rc));
	return rc;
}

int cache_stage_retime(struct cache *c, struct cache_entry *e, const struct timespec *mtime)
{
	char from[JOURNAL_NAME_MAX], to[JOURNAL_NAME_MAX];
	struct cache_entry moved = *e;
	int dfd, rc = 0;

	moved.mtime = *mtime;
	moved.has_mtime = 1;
	cache_journal_name(e, from, sizeof(from));
	cache_journal_name(&moved, to, sizeof(to));
	if ((dfd = open(c->journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	pthread_mutex_lock(&c->lock);
	if (renameat(dfd, from, dfd, to) != 0) {
		rc = -errno;
	} else {
		struct staged_file *f = *file_slot(c, e->ino);

		if (f && f->newest.seq == e->seq)
			f->newest = moved;
		*e = moved;
	}
	pthread_mutex_unlock(&c->lock);
	close(dfd);
	if (rc)
		log_warn("cannot give journal entry '%s' its new time: %s", from, strerror(-rc));
	return rc;
}

ssize_t cache_entry_note(struct cache *c, const struct cache_entry *e, const char *name, char *buf, size_t len)
{
	char entry[JOURNAL_NAME_MAX], path[4200];
	ssize_t n;

	if (len == 0)
		return -ERANGE;
	cache_journal_name(e, entry, sizeof(entry));
	snprintf(path, sizeof(path), "%s/%s", c->journal_dir, entry);
	n = getxattr(path, name, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

int cache_stage_upload(struct cache *c, const struct cache_entry *e)
{
	struct upload *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;	/* journalled: the next start uploads it */
	u->e = *e;
	pthread_mutex_lock(&c->lock);
	cache_queue_push(c, u);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cache_wait_uploaded(struct cache *c, const char *sha256, double timeout)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)timeout;
	pthread_mutex_lock(&c->lock);
	while (rc == 0 && cache_staged_find(c, sha256))
		rc = pthread_cond_timedwait(&c->changed, &c->lock, &until) == 0 ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Sleeps SECS or until the cache stops; returns 1 when stopping. */
int cache_stage_open(struct cache *c)
{
	c->nstaged_buckets = 4096;
	c->staged = calloc(c->nstaged_buckets, sizeof(*c->staged));
	c->nfile_buckets = 4096;
	c->files = calloc(c->nfile_buckets, sizeof(*c->files));
	return c->staged && c->files ? 0 : -ENOMEM;
}

void cache_stage_free(struct cache *c)
{
	struct upload *u, *un;

	for (u = c->queue_head; u; u = un) {
		un = u->next;
		free(u);
	}
	c->queue_head = c->queue_tail = NULL;
	for (size_t i = 0; c->staged && i < c->nstaged_buckets; i++) {
		struct staged *s = c->staged[i], *sn;

		for (; s; s = sn) {
			sn = s->next;
			free(s);
		}
	}
	free(c->staged);
	c->staged = NULL;
	for (size_t i = 0; c->files && i < c->nfile_buckets; i++) {
		struct staged_file *f = c->files[i], *fn;

		for (; f; f = fn) {
			fn = f->next;
			free(f);
		}
	}
	free(c->files);
	c->files = NULL;
}
