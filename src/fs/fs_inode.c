/*
 * fs_inode.c - the inodes the kernel currently knows, by number.
 *
 * A chained hash table under one mutex.  Inodes are few (what the kernel
 * has looked up and not forgotten), the critical sections are a handful of
 * pointer moves, so one lock is enough; per-inode state has its own lock.
 */
#include "fs/fs.h"
#include "fs/fs_xdgtrash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static size_t bucket_of(const struct fs_inode_table *t, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 20) % t->nbuckets;
}

static int table_grow(struct fs_inode_table *t)
{
	size_t n = t->nbuckets * 2;
	struct fs_inode **b = calloc(n, sizeof(*b));

	if (!b)
		return -1;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct fs_inode *in = t->buckets[i], *next;

		for (; in; in = next) {
			size_t k = (size_t)((in->ino * 0x9e3779b97f4a7c15ULL) >> 20) % n;

			next = in->next;
			in->next = b[k];
			b[k] = in;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
	return 0;
}

static struct fs_inode *find_locked(struct fs_inode_table *t, uint64_t ino)
{
	struct fs_inode *in = t->buckets[bucket_of(t, ino)];

	while (in && in->ino != ino)
		in = in->next;
	return in;
}

struct fs_inode *fs_inode_get(struct mvfs *fs, uint64_t ino, uint64_t nlookup, int nopen)
{
	struct fs_inode_table *t = &fs->inodes;
	struct fs_inode *in;

	pthread_mutex_lock(&t->lock);
	in = find_locked(t, ino);
	if (!in) {
		if (t->count >= t->nbuckets)
			table_grow(t);	/* on failure the chains just get longer */
		in = calloc(1, sizeof(*in));
		if (!in) {
			pthread_mutex_unlock(&t->lock);
			return NULL;
		}
		in->ino = ino;
		in->stage_fd = -1;
		pthread_mutex_init(&in->lock, NULL);
		pthread_cond_init(&in->committed, NULL);
		size_t k = bucket_of(t, ino);
		in->next = t->buckets[k];
		t->buckets[k] = in;
		t->count++;
	}
	in->nlookup += nlookup;
	in->nopen += nopen;
	pthread_mutex_unlock(&t->lock);
	return in;
}

struct fs_inode *fs_inode_find(struct mvfs *fs, uint64_t ino)
{
	struct fs_inode *in;

	pthread_mutex_lock(&fs->inodes.lock);
	in = find_locked(&fs->inodes, ino);
	pthread_mutex_unlock(&fs->inodes.lock);
	return in;
}

static void inode_free(struct fs_inode *in)
{
	free(in->dname);
	if (in->stage_fd >= 0)
		close(in->stage_fd);
	sha256_release(&in->sha);
	pthread_cond_destroy(&in->committed);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

void fs_inode_put(struct mvfs *fs, uint64_t ino, uint64_t nlookup, int nopen)
{
	struct fs_inode_table *t = &fs->inodes;
	struct fs_inode **pp, *in;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->buckets[bucket_of(t, ino)]; *pp && (*pp)->ino != ino; pp = &(*pp)->next)
		;
	in = *pp;
	if (!in || in->nlookup < nlookup || in->nopen < nopen) {
		log_error("BUG: inode %llu released more often than it was referenced",
			  (unsigned long long)ino);
		abort();
	}
	in->nlookup -= nlookup;
	in->nopen -= nopen;
	if (in->nlookup == 0 && in->nopen == 0 && in->holds == 0) {
		*pp = in->next;
		t->count--;
	} else {
		in = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	if (in)
		inode_free(in);
}

void fs_inode_hold(struct mvfs *fs, struct fs_inode *in)
{
	pthread_mutex_lock(&fs->inodes.lock);
	in->holds++;
	pthread_mutex_unlock(&fs->inodes.lock);
}

struct fs_inode *fs_inode_hold_ino(struct mvfs *fs, uint64_t ino)
{
	struct fs_inode *in;

	pthread_mutex_lock(&fs->inodes.lock);
	in = find_locked(&fs->inodes, ino);
	if (in)
		in->holds++;
	pthread_mutex_unlock(&fs->inodes.lock);
	return in;
}

void fs_inode_unhold(struct mvfs *fs, struct fs_inode *in)
{
	struct fs_inode_table *t = &fs->inodes;
	struct fs_inode **pp;
	int gone = 0;

	pthread_mutex_lock(&t->lock);
	if (--in->holds == 0 && in->nlookup == 0 && in->nopen == 0) {
		for (pp = &t->buckets[bucket_of(t, in->ino)]; *pp != in; pp = &(*pp)->next)
			;
		*pp = in->next;
		t->count--;
		gone = 1;
	}
	pthread_mutex_unlock(&t->lock);
	if (gone)
		inode_free(in);
}

void fs_inode_named(struct mvfs *fs, uint64_t ino, uint64_t parent, const char *name)
{
	struct fs_inode *in;

	pthread_mutex_lock(&fs->inodes.lock);
	in = find_locked(&fs->inodes, ino);
	if (in && (in->dparent != parent || !in->dname || strcmp(in->dname, name) != 0)) {
		char *copy = strdup(name);

		free(in->dname);
		in->dname = copy;
		in->dparent = copy ? parent : 0;
	}
	pthread_mutex_unlock(&fs->inodes.lock);
}

int fs_inode_dentry(struct mvfs *fs, uint64_t ino, uint64_t *parent, char *name, size_t len)
{
	struct fs_inode *in;
	int rc = -ENOENT;

	pthread_mutex_lock(&fs->inodes.lock);
	in = find_locked(&fs->inodes, ino);
	if (in) {
		*parent = in->dname ? in->dparent : 0;
		snprintf(name, len, "%s", in->dname ? in->dname : "");
		rc = 0;
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	return rc;
}

ssize_t fs_inode_all(struct mvfs *fs, struct fs_dent **out)
{
	struct fs_inode_table *t = &fs->inodes;
	struct fs_dent *d;
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	d = calloc(t->count ? t->count : 1, sizeof(*d));
	for (size_t i = 0; d && i < t->nbuckets; i++) {
		for (struct fs_inode *in = t->buckets[i]; in; in = in->next) {
			d[n].ino = in->ino;
			if (in->dname && (d[n].name = strdup(in->dname)) != NULL)
				d[n].parent = in->dparent;
			n++;
		}
	}
	pthread_mutex_unlock(&t->lock);
	*out = d;
	return d ? (ssize_t)n : -ENOMEM;
}

int fs_init(struct mvfs *fs, struct meta *meta, struct cache *cache, const struct fs_config *cfg)
{
	fs->meta = meta;
	fs->cache = cache;
	fs->cfg = *cfg;
	fs->uid = getuid();
	fs->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs->mounted_at);
	pthread_mutex_init(&fs->handles_lock, NULL);
	fs->handles = NULL;
	fs->dirs = NULL;
	pthread_mutex_init(&fs->inodes.lock, NULL);
	fs->inodes.nbuckets = 1024;
	fs->inodes.count = 0;
	fs->inodes.buckets = calloc(fs->inodes.nbuckets, sizeof(*fs->inodes.buckets));
	if (!fs->inodes.buckets)
		return -ENOMEM;
	fs->rec = NULL;		/* started after the daemon's fork (src/cli/mount.c) */
	fs->local = NULL;
	fs->known = NULL;	/* started with the session (src/cli/mount.c) */
	fs->xdg = NULL;
	if (fs_xdgtrash_init(fs) != 0 || fs_ahead_init(fs) != 0)
		return -ENOMEM;
	return fs_local_init(fs);
}

void fs_release(struct mvfs *fs)
{
	fs_handles_close_all(fs);
	fs_record_stop(fs);	/* what the closes queued, recorded first */
	fs_known_free(fs);
	pthread_mutex_destroy(&fs->handles_lock);
}

void fs_free(struct mvfs *fs)
{
	struct fs_inode_table *t = &fs->inodes;

	fs_local_free(fs);
	fs_xdgtrash_free(fs);
	fs_ahead_free(fs);
	for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
		struct fs_inode *in = t->buckets[i], *next;

		for (; in; in = next) {
			next = in->next;
			inode_free(in);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	pthread_mutex_destroy(&t->lock);
}
