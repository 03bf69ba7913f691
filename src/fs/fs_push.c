/*
 * fs_push.c - telling the kernel what other mounts changed.
 *
 * The kernel caches names (entry_timeout), attributes (attr_timeout) and,
 * because files are opened with keep_cache, pages of content for as long
 * as it likes.  This mount's own changes invalidate as they reply; changes
 * made elsewhere (another mount of the same user, the web application, a
 * worker) arrive as announcements on the user's channel (meta_push.c), and
 * a thread of their own turns them into invalidations:
 *
 *   a name of inode I changed   inval_inode(I) and inval_entry(P, NAME) for
 *                               the name the kernel caches I under, which
 *                               the daemon remembers (fs_inode_named)
 *   attributes / content of I   inval_inode(I, 0, 0): attributes and pages
 *                               (a folder's: its attributes, readdir cache)
 *   anything, or missed         both, for every inode the kernel holds
 *
 * Names never travel: another user's eyes could read them, since NOTIFY
 * is not under row-level security.  A name the kernel caches for the
 * inode that the daemon did not hand out itself (a rename on this mount
 * moves the kernel's entry without a new lookup) is not dropped: it goes
 * at its entry_timeout, as before.  A new name elsewhere needs nothing:
 * negative lookups are not cached here, nor are listings.
 *
 * DESIGN: announcements are gathered for BATCH_MS after the first of a
 * burst, sorted and deduplicated, then sent to the kernel from this thread
 * only: never from a request handler (libfuse documents the deadlock of
 * inval_entry inside a request of the same folder), and never with a lock
 * held (the kernel may wait for a request on that folder to end).  An
 * rsync of 10,000 files on another mount costs this one one batch per
 * BATCH_MS at most, each a few kernel calls for the inodes it holds.
 *
 * Ending: a kernel call can wait for a folder that a request holds, and
 * after a signal ends the session loop nobody answers that request until
 * the unmount.  So fs_push_stop (before the unmount) waits 2 s at most,
 * and fs_push_free (after it: the unmount fails such requests, and the
 * thread, seeing stop, makes no further call on the closed descriptor)
 * joins before the session goes.
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define BATCH_MS 5		/* gathering after the first announcement of a burst */
#define BATCH_MAX 65536		/* past this many inodes a batch is "anything" */

struct id_set {
	uint64_t *v;
	size_t n, cap;
};

struct fs_push {
	struct mvfs *fs;
	struct meta_push *mp;
	pthread_t thread;
	int wake[2];		/* written to by fs_push_stop */
	_Atomic int stop;	/* checked before every kernel call */
	int joined;
	/* the batch being gathered (this thread only) */
	struct id_set names, attrs;
	int all;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_add(struct id_set *s, uint64_t v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts S and drops duplicates. */
static void set_settle(struct id_set *s)
{
	size_t k = 0;

	if (s->n == 0)
		return;		/* s->v may be NULL, which qsort may not be given */
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	for (size_t i = 0; i < s->n; i++)
		if (k == 0 || s->v[k - 1] != s->v[i])
			s->v[k++] = s->v[i];
	s->n = k;
}

static int set_has(const struct id_set *s, uint64_t v)
{
	return s->n && bsearch(&v, s->v, s->n, sizeof(*s->v), cmp_u64) != NULL;
}

static void gather(void *arg, enum meta_push_kind kind, uint64_t ino)
{
	struct fs_push *p = arg;
	int rc = 0;

	if (p->all)
		return;
	if (kind == META_PUSH_ALL || p->names.n + p->attrs.n >= BATCH_MAX)
		p->all = 1;
	else
		rc = set_add(kind == META_PUSH_NAME ? &p->names : &p->attrs, ino);
	if (rc)
		p->all = 1;	/* no room to remember which: all of them */
}

/* Whether the kernel may hold INO: a top-level folder, or one it was given. */
static int held(struct mvfs *fs, uint64_t ino)
{
	return ino < META_INO_FIRST || fs_inode_find(fs, ino) != NULL;
}

/* Drops the kernel's cached name of INO and its attributes and pages.
 * Returns the kernel calls made. */
static int drop_name(struct mvfs *fs, uint64_t ino)
{
	char name[256];
	uint64_t parent;
	int calls = 0;

	if (ino < META_INO_FIRST) {
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
		return 1;
	}
	if (fs_inode_dentry(fs, ino, &parent, name, sizeof(name)) != 0)
		return 0;
	if (parent) {
		fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
		calls++;
	}
	fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	return calls + 1;
}

static int drop_all(struct fs_push *p)
{
	struct mvfs *fs = p->fs;
	struct fs_dent *d;
	ssize_t n = fs_inode_all(fs, &d);
	int calls = 0;

	for (uint64_t ino = META_INO_LIBRARY; ino <= META_INO_TRASH; ino++, calls++)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	if (n < 0) {
		log_error("push: out of memory listing the inodes the kernel holds: some may stay stale"
			  " until the kernel's timeouts");
		return calls;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (p->stop) {
			free(d[i].name);
			continue;
		}
		if (d[i].parent) {
			fuse_lowlevel_notify_inval_entry(fs->se, d[i].parent, d[i].name, strlen(d[i].name));
			calls++;
		}
		fuse_lowlevel_notify_inval_inode(fs->se, d[i].ino, 0, 0);
		calls++;
		free(d[i].name);
	}
	free(d);
	return calls;
}

/* Sends the batch to the kernel and starts a new one. */
static void apply(struct fs_push *p)
{
	struct mvfs *fs = p->fs;
	int calls = 0;

	fs_known_forget(fs);	/* a folder made here may have names from elsewhere now */
	if (p->all) {
		calls = drop_all(p);
	} else {
		set_settle(&p->names);
		set_settle(&p->attrs);
		for (size_t i = 0; i < p->names.n && !p->stop; i++)
			calls += drop_name(fs, p->names.v[i]);
		for (size_t i = 0; i < p->attrs.n && !p->stop; i++) {
			uint64_t ino = p->attrs.v[i];

			if (!set_has(&p->names, ino) && held(fs, ino)) {
				fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
				calls++;
			}
		}
	}
	log_debug("push: %s%zu names, %zu attributes changed elsewhere: %d kernel calls",
		  p->all ? "anything (or missed): " : "", p->names.n, p->attrs.n, calls);
	p->names.n = p->attrs.n = 0;
	p->all = 0;
}

static void *push_thread(void *arg)
{
	struct fs_push *p = arg;

	while (!p->stop) {
		int rc = meta_push_wait(p->mp, 1000, p->wake[0], gather, p);

		if (rc == META_PUSH_MISSED)
			p->all = 1;
		else if (rc != 1)
			continue;
		/* a burst: what follows within BATCH_MS goes in the same batch */
		for (long long end = now_ms() + BATCH_MS, left; !p->stop && (left = end - now_ms()) > 0;) {
			rc = meta_push_wait(p->mp, (int)left, p->wake[0], gather, p);
			if (rc == META_PUSH_MISSED)
				p->all = 1;
			else if (rc < 0)
				break;
		}
		if (!p->stop)
			apply(p);
	}
	return NULL;
}

struct fs_push *fs_push_start(struct mvfs *fs, char *err, size_t errlen)
{
	struct fs_push *p = calloc(1, sizeof(*p));
	int rc;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->fs = fs;
	p->wake[0] = p->wake[1] = -1;
	if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
		free(p);
		return NULL;
	}
	p->mp = meta_push_open(fs->meta, err, errlen);
	if (!p->mp) {
		close(p->wake[0]);
		close(p->wake[1]);
		free(p);
		return NULL;
	}
	if ((rc = pthread_create(&p->thread, NULL, push_thread, p)) != 0) {
		snprintf(err, errlen, "cannot start its thread: %s", strerror(rc));
		meta_push_free(p->mp);
		close(p->wake[0]);
		close(p->wake[1]);
		free(p);
		return NULL;
	}
	return p;
}

void fs_push_stop(struct fs_push *p)
{
	struct timespec until;

	if (!p || p->joined)
		return;
	p->stop = 1;
	if (write(p->wake[1], "x", 1) < 0)
		log_warn("push: cannot wake the listening thread (%s); it ends within a second", strerror(errno));
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	if (pthread_timedjoin_np(p->thread, NULL, &until) == 0)
		p->joined = 1;
	else
		log_warn("push: the listening thread waits in the kernel (a request the ended loop will"
			 " not answer holds a folder); it ends with the unmount");
}

void fs_push_free(struct fs_push *p)
{
	if (!p)
		return;
	fs_push_stop(p);
	if (!p->joined)
		pthread_join(p->thread, NULL);
	meta_push_free(p->mp);
	close(p->wake[0]);
	close(p->wake[1]);
	free(p->names.v);
	free(p->attrs.v);
	free(p);
}
