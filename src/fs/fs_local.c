/*
 * fs_local.c - files made here first: create(2) without a round trip.
 *
 * A create in a folder of the tree (library/ and workspace/ and their
 * folders) takes an inode number this mount reserved ahead (mvfs_inos,
 * 64 at a time) and answers at once.  The file's rows are made with its
 * first close-time record, in one call (mvfs_create_staged), by the
 * recorder (fs_record.c) after the close returned.  Until then this mount
 * knows the file by its inode (fs_inode.local) and finds its name here
 * (lookups, fs_ns.c); the journal entry of its bytes holds its name
 * (the "user.mvault.made" attribute of the sealed file), so a crash before
 * the record loses nothing: the upload's record makes the file from it
 * (fs_file_uploaded), once (an idempotency key per inode number, 0023).
 *
 * Whatever needs the file in the database before that (a second open, a
 * setattr, xattrs, a link, and every unlink, rename, rmdir and listing,
 * which may name it) settles it first: a file still open is made at once
 * (meta_create_at), a closed one waits for its queued record.
 *
 * DECISIONS.md, "A create made here first".
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "util/log.h"

#define INO_BATCH 64
#define LOCAL_BUCKETS 1024

/* A name made here whose rows are not in the database yet. */
struct local_name {
	uint64_t parent;		/* the folder's inode number, as the kernel knows it */
	struct fs_inode *in;		/* its name is in->name */
	struct local_name *next;
};

/* A folder a file was made in here, and when: its time until the file's
 * record touches its row. */
struct touched {
	uint64_t dir;
	struct timespec at;
	int pending;		/* its files made here whose rows are not made yet */
	struct timespec done;	/* CLOCK_MONOTONIC when pending came to 0 */
	struct touched *next;
};

struct fs_local {
	pthread_mutex_t lock;
	struct touched *touched[LOCAL_BUCKETS];
	uint64_t inos[INO_BATCH];	/* reserved, not yet used: inos[next..count) */
	int next, count;
	size_t n;			/* names below */
	struct local_name *names[LOCAL_BUCKETS];
};

static size_t bucket(uint64_t parent, const char *name)
{
	return (size_t)(fs_name_hash(parent, name) % LOCAL_BUCKETS);
}

int fs_local_init(struct mvfs *fs)
{
	struct fs_local *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	fs->local = l;
	return 0;
}

void fs_local_free(struct mvfs *fs)
{
	struct fs_local *l = fs->local;

	if (!l)
		return;
	for (size_t i = 0; i < LOCAL_BUCKETS; i++) {
		while (l->names[i]) {
			struct local_name *n = l->names[i];

			l->names[i] = n->next;
			free(n);
		}
		while (l->touched[i]) {
			struct touched *t = l->touched[i];

			l->touched[i] = t->next;
			free(t);
		}
	}
	pthread_mutex_destroy(&l->lock);
	free(l);
	fs->local = NULL;
}

/* An inode number for a new file: 0 when none can be had (the database
 * is away), and the create goes the synchronous way. */
static uint64_t take_ino(struct mvfs *fs)
{
	struct fs_local *l = fs->local;
	uint64_t ino = 0;

	pthread_mutex_lock(&l->lock);
	if (l->next >= l->count) {
		int got = meta_inos(fs->meta, l->inos, INO_BATCH);

		l->next = 0;
		l->count = got > 0 ? got : 0;
	}
	if (l->next < l->count)
		ino = l->inos[l->next++];
	pthread_mutex_unlock(&l->lock);
	return ino;
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Folder DIR got a file made here at AT (with l->lock held). */
static void touch_locked(struct fs_local *l, uint64_t dir, const struct timespec *at)
{
	struct touched *t;

	for (t = l->touched[dir % LOCAL_BUCKETS]; t; t = t->next) {
		if (t->dir == dir) {
			if (ts_before(&t->at, at))
				t->at = *at;
			t->pending++;
			return;
		}
	}
	if (!(t = malloc(sizeof(*t))))
		return;		/* its time shows when the record is made */
	t->dir = dir;
	t->at = *at;
	t->pending = 1;
	t->next = l->touched[dir % LOCAL_BUCKETS];
	l->touched[dir % LOCAL_BUCKETS] = t;
}

/* One of folder DIR's files made here has its rows now (l->lock held).
 * Once none waits, the folder's row has every touch; the entry still
 * covers rows read before the last record (a listing's page is read once
 * and answered over several requests) for TOUCH_GRACE_S, then goes at a
 * read of the row that shows it, or at once when the folder is given its
 * times. */
#define TOUCH_GRACE_S 10

static void untouch_locked(struct fs_local *l, uint64_t dir)
{
	for (struct touched *t = l->touched[dir % LOCAL_BUCKETS]; t; t = t->next) {
		if (t->dir == dir) {
			if (--t->pending <= 0)
				clock_gettime(CLOCK_MONOTONIC, &t->done);
			return;
		}
	}
}

void fs_local_dir_set(struct mvfs *fs, uint64_t dir)
{
	struct fs_local *l = fs->local;
	struct touched **pp, *t;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	for (pp = &l->touched[dir % LOCAL_BUCKETS]; (t = *pp) != NULL; pp = &t->next) {
		if (t->dir == dir && t->pending <= 0) {
			*pp = t->next;
			free(t);
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

void fs_local_dir_times(struct mvfs *fs, uint64_t dir, struct stat *st)
{
	struct fs_local *l = fs->local;
	struct touched **pp, *t;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	for (pp = &l->touched[dir % LOCAL_BUCKETS]; (t = *pp) != NULL; pp = &t->next) {
		if (t->dir != dir)
			continue;
		if (ts_before(&st->st_mtim, &t->at)) {
			st->st_mtim = t->at;
			if (ts_before(&st->st_ctim, &t->at))
				st->st_ctim = t->at;
		} else if (t->pending <= 0) {
			struct timespec now;

			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - t->done.tv_sec > TOUCH_GRACE_S) {
				*pp = t->next;	/* the row shows it */
				free(t);
			}
		}
		break;
	}
	pthread_mutex_unlock(&l->lock);
}

/* Adds N (IN, in folder PARENT) to the names made here, then to fs_known's
 * names of PARENT: a folder's names read meanwhile (fs_known_fill_local
 * before the database, under l->lock too) have it from one or the other,
 * and still after its record, when it leaves the names made here. */
static void name_add(struct mvfs *fs, uint64_t parent, struct fs_inode *in, struct local_name *n)
{
	struct fs_local *l = fs->local;
	size_t b = bucket(parent, in->name);

	n->parent = parent;
	n->in = in;
	pthread_mutex_lock(&l->lock);
	touch_locked(l, parent, &in->local_made);	/* a new name changes its folder now */
	n->next = l->names[b];
	l->names[b] = n;
	l->n++;
	fs_known_name(fs, parent, in->name);
	pthread_mutex_unlock(&l->lock);
}

void fs_local_forget(struct mvfs *fs, struct fs_inode *in)
{
	struct fs_local *l = fs->local;
	struct local_name *gone = NULL;

	if (!l)
		return;
	/* found under the folder and name it was made with: neither changes
	 * while it is listed here (fs_local_recorded renames it after) */
	pthread_mutex_lock(&l->lock);
	for (struct local_name **pp = &l->names[bucket(in->home.ino, in->name)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->in == in) {
			gone = *pp;
			*pp = gone->next;
			l->n--;
			untouch_locked(l, gone->parent);
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
	free(gone);
}

static struct fs_inode *named_locked(struct fs_local *l, uint64_t parent, const char *name)
{
	if (l->n)
		for (struct local_name *n = l->names[bucket(parent, name)]; n; n = n->next)
			if (n->parent == parent && strcmp(n->in->name, name) == 0)
				return n->in;
	return NULL;
}

int fs_local_named(struct mvfs *fs, uint64_t parent, const char *name)
{
	struct fs_local *l = fs->local;
	int named;

	if (!l)
		return 0;
	pthread_mutex_lock(&l->lock);
	named = named_locked(l, parent, name) != NULL;
	pthread_mutex_unlock(&l->lock);
	return named;
}

struct fs_inode *fs_local_lookup(struct mvfs *fs, uint64_t parent, const char *name)
{
	struct fs_local *l = fs->local;
	struct fs_inode *in;

	if (!l)
		return NULL;
	pthread_mutex_lock(&l->lock);
	in = named_locked(l, parent, name);
	/* a lookup count, taken while the name still holds the inode */
	if (in && !fs_inode_get(fs, in->ino, 1, 0))
		in = NULL;
	pthread_mutex_unlock(&l->lock);
	return in;
}

void fs_local_stat(struct mvfs *fs, struct fs_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	pthread_mutex_lock(&in->lock);
	st->st_mode = S_IFREG | (in->local_mode & 07777);
	st->st_mtim = st->st_ctim = st->st_atim = in->local_made;
	if (in->local_atime_set)
		st->st_atim = in->local_atime;
	if (in->rec_sha256[0]) {
		st->st_size = (off_t)in->rec_size;
		st->st_ctim = in->rec_ctime;
		if (in->rec_mtime_set)
			st->st_mtim = in->rec_mtime;
	}
	if (in->stage_fd >= 0)
		st->st_size = (off_t)in->size;
	if (in->mtime_set)
		st->st_mtim = in->mtime;
	pthread_mutex_unlock(&in->lock);
	st->st_blksize = 1 << 20;	/* as fs_file_stat: what cp and rsync size their writes by */
	st->st_blocks = (st->st_size + 511) / 512;
}

int fs_local_create(struct mvfs *fs, const struct meta_dir *dir, const char *name, mode_t mode,
		    struct fuse_file_info *fi, struct fuse_entry_param *e)
{
	struct local_name *n;
	struct fs_handle *h;
	struct fs_inode *in;
	uint64_t ino;
	int rc;

	if (!fs->rec || !fs->local || (dir->place != META_PLACE_LIBRARY && dir->place != META_PLACE_WORKSPACE))
		return -EAGAIN;
	if (!(n = calloc(1, sizeof(*n))) || !(ino = take_ino(fs))) {
		free(n);
		return -EAGAIN;
	}
	in = fs_inode_get(fs, ino, 1, 1);
	if (!in) {
		free(n);
		return -ENOMEM;
	}
	if (!(h = fs_new_file(fs, in, name, dir, 1, mode, &rc))) {
		fs_inode_put(fs, ino, 1, 1);
		free(n);
		return rc;
	}
	name_add(fs, dir->ino, in, n);
	fi->fh = (uintptr_t)h;
	fs_local_stat(fs, in, &e->attr);
	fs_ns_entry(fs, &e->attr, e);
	return 0;
}

int fs_local_note(struct fs_inode *in, int fd)
{
	char note[400];
	int len;

	len = snprintf(note, sizeof(note), "%llu %llu %d %o %lld.%09ld %s", (unsigned long long)in->ino,
		       (unsigned long long)in->home.ino, (int)in->home.place, in->local_mode,
		       (long long)in->local_made.tv_sec, in->local_made.tv_nsec, in->name);
	if (len < 0 || (size_t)len >= sizeof(note))
		return -ENAMETOOLONG;
	return fsetxattr(fd, FS_LOCAL_NOTE, note, (size_t)len, 0) == 0 ? 0 : -errno;
}

int fs_local_parse(const char *note, uint64_t ino, struct fs_made *out)
{
	unsigned long long n, home;
	int place, used = 0;
	unsigned int mode;
	long long sec;
	long nsec;

	if (sscanf(note, "%llu %llu %d %o %lld.%ld %n", &n, &home, &place, &mode, &sec, &nsec, &used) != 6 ||
	    !used || n != ino || (place != META_PLACE_LIBRARY && place != META_PLACE_WORKSPACE))
		return -EINVAL;
	out->dir = (struct meta_dir){ .place = (enum meta_place)place, .ino = home };
	out->mode = mode & 07777;
	out->made = (struct timespec){ .tv_sec = (time_t)sec, .tv_nsec = nsec };
	snprintf(out->name, sizeof(out->name), "%s", note + used);
	return out->name[0] ? 0 : -EINVAL;
}

int fs_local_recorded(struct mvfs *fs, struct fs_inode *in, const struct fs_sealed *x)
{
	if (x->made == 2)	/* in the database now: found there */
		fs_local_forget(fs, in);
	pthread_mutex_lock(&in->lock);
	if (x->made == 2) {
		in->local = 0;
		snprintf(in->name, sizeof(in->name), "%s", x->name);
	} else {
		in->local = 3;	/* its upload's record makes it (fs_file_uploaded) */
	}
	pthread_mutex_unlock(&in->lock);
	return x->made != 2;
}

int fs_local_uploaded(struct mvfs *fs, uint64_t ino)
{
	struct fs_inode *in = fs_inode_hold_ino(fs, ino);
	int held;

	if (!in)
		return 0;
	pthread_mutex_lock(&in->lock);
	held = in->local == 3;
	if (held)
		in->local = 0;
	pthread_mutex_unlock(&in->lock);
	if (held) {
		fs_local_forget(fs, in);
		fs_inode_unhold(fs, in);	/* the hold its failed record kept */
	}
	fs_inode_unhold(fs, in);
	return held;
}

/* A setattr of a closed file whose record still waits goes into that
 * record (rsync sets the times and mode of its temporary file after the
 * close): the mode into the note on its sealed bytes, the time into its
 * journal entry's name, both durable with the record's batch
 * (fs_record.c).  The access time goes into the record only: a crash
 * before it loses that (the file then shows its mtime as its atime). */
struct amend_attr {
	unsigned flags;
	mode_t mode;
	const struct timespec *mtime, *atime;
};

static int amend_attr(struct mvfs *fs, struct fs_sealed *x, void *arg)
{
	const struct amend_attr *a = arg;
	struct fs_inode *in = x->in;
	mode_t was = in->local_mode;

	if (a->flags & META_SET_MODE) {
		in->local_mode = a->mode;
		if (fs_local_note(in, x->fd) != 0) {
			in->local_mode = was;
			return -EAGAIN;
		}
		x->mode = a->mode;
	}
	if (a->flags & META_SET_MTIME) {
		if (cache_stage_retime(fs->cache, &x->e, a->mtime) != 0)
			return -EAGAIN;	/* the mode is in both: set again on the rows */
		in->rec_mtime = *a->mtime;
		in->rec_mtime_set = 1;
	}
	if (a->flags & META_SET_ATIME) {	/* set by the record (0028); not in the journal */
		x->atime = in->local_atime = *a->atime;
		x->atime_set = in->local_atime_set = 1;
	}
	return 0;
}

/* A rename of a closed file whose record still waits, to a name its new
 * folder is known not to have, goes into that record the same way: the
 * name and folder into the note on its bytes. */
struct amend_move {
	struct meta_dir to;
	const char *name;
};

static int amend_move(struct mvfs *fs, struct fs_sealed *x, void *arg)
{
	const struct amend_move *a = arg;
	struct fs_inode *in = x->in;
	struct meta_dir was = in->home;
	char name[256];

	(void)fs;
	snprintf(name, sizeof(name), "%s", in->name);
	in->home = a->to;
	snprintf(in->name, sizeof(in->name), "%s", a->name);
	if (fs_local_note(in, x->fd) != 0) {
		in->home = was;
		snprintf(in->name, sizeof(in->name), "%s", name);
		return -EAGAIN;
	}
	x->home = a->to;
	snprintf(x->name, sizeof(x->name), "%s", a->name);
	return 0;
}

int fs_local_open_read(struct mvfs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct fs_inode *in = fs->local ? fs_inode_find(fs, ino) : NULL;
	struct meta_file f;
	struct fs_handle *h;
	int ok;

	if (!in || (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EAGAIN;
	memset(&f, 0, sizeof(f));
	pthread_mutex_lock(&in->lock);
	ok = in->local == 2 && in->stage_fd < 0 && in->rec_sha256[0];
	if (ok) {
		f.size = in->rec_size;
		snprintf(f.sha256, sizeof(f.sha256), "%s", in->rec_sha256);
	}
	uint64_t commits = in->commits;	/* of the version just taken */

	pthread_mutex_unlock(&in->lock);
	if (!ok || !(in = fs_inode_get(fs, ino, 0, 1)))
		return -EAGAIN;
	if (!(h = fs_handle_new(fs, in, &f))) {
		fs_inode_put(fs, ino, 0, 1);
		return -ENOMEM;
	}
	pthread_mutex_lock(&in->lock);
	h->commits = commits;
	pthread_mutex_unlock(&in->lock);
	fi->keep_cache = 1;	/* its sealed bytes, read from staging */
	fi->fh = (uintptr_t)h;
	return 0;
}

int fs_local_move(struct mvfs *fs, const struct meta_dir *from, const char *name, const struct meta_dir *to,
		  const char *newname)
{
	struct amend_move a = { .to = *to, .name = newname };
	struct fs_local *l = fs->local;
	struct local_name **pp, *n = NULL;
	struct timespec now;
	int rc = -EAGAIN;

	if (!l || !fs->rec || strlen(newname) >= sizeof(((struct fs_inode *)0)->name) ||
	    !fs_known_absent(fs, to->ino, newname))
		return -EAGAIN;
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&l->lock);
	for (pp = &l->names[bucket(from->ino, name)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->parent == from->ino && strcmp((*pp)->in->name, name) == 0) {
			n = *pp;
			break;
		}
	}
	if (n) {
		pthread_mutex_lock(&n->in->lock);
		rc = fs_record_amend(fs, n->in, amend_move, &a);
		pthread_mutex_unlock(&n->in->lock);
	}
	if (rc == 0) {
		size_t b = bucket(to->ino, newname);

		*pp = n->next;
		n->parent = to->ino;
		n->next = l->names[b];
		l->names[b] = n;
		fs_known_name(fs, to->ino, newname);	/* as name_add */
		/* the file's record now waits in the new folder ... */
		touch_locked(l, to->ino, &now);
		untouch_locked(l, from->ino);
		/* ... and the old one changed now too (its time, no wait) */
		touch_locked(l, from->ino, &now);
		untouch_locked(l, from->ino);
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

int fs_local_setattr(struct mvfs *fs, uint64_t ino, const struct stat *attr, int to_set, unsigned flags,
		     const struct timespec *mtime, const struct timespec *atime, struct stat *st)
{
	struct fs_inode *in = fs->local ? fs_inode_find(fs, ino) : NULL;
	int rc = 0;

	if (!in)
		return -EAGAIN;
	pthread_mutex_lock(&in->lock);
	fs_file_wait_commit(in);
	if (in->local == 2 && !(to_set & FUSE_SET_ATTR_SIZE)) {
		struct amend_attr a = { .flags = flags, .mode = attr->st_mode & 07777, .mtime = mtime, .atime = atime };

		rc = fs_record_amend(fs, in, amend_attr, &a);
		pthread_mutex_unlock(&in->lock);
		if (rc == 0)
			fs_local_stat(fs, in, st);
		return rc;
	}
	if (in->local != 1 || in->stage_fd < 0) {
		pthread_mutex_unlock(&in->lock);
		return -EAGAIN;
	}
	if (to_set & FUSE_SET_ATTR_SIZE)
		rc = attr->st_size < 0 ? -EINVAL : fs_file_truncate(fs, in, (uint64_t)attr->st_size);
	if (rc == 0 && (flags & META_SET_MODE))
		in->local_mode = attr->st_mode & 07777;
	if (rc == 0 && (flags & META_SET_MTIME)) {	/* recorded with its first version */
		in->mtime = *mtime;
		in->mtime_set = 1;
	}
	if (rc == 0 && (flags & META_SET_ATIME)) {
		in->local_atime = *atime;
		in->local_atime_set = 1;
	}
	pthread_mutex_unlock(&in->lock);
	if (rc == 0)
		fs_local_stat(fs, in, st);
	return rc;
}

/* Makes IN, a file made here, still open (local 1) or closed with its
 * record failed (3: its content is recorded by its upload's record), in
 * the database now, without content. */
static int make_now(struct mvfs *fs, struct fs_inode *in)
{
	struct meta_dir dir;
	struct timespec made;
	char name[256];
	mode_t mode;
	int rc, was;

	pthread_mutex_lock(&in->lock);
	was = in->local;
	if (was != 1 && was != 3) {
		pthread_mutex_unlock(&in->lock);
		return 0;
	}
	dir = in->home;
	made = in->local_made;
	mode = in->local_mode;
	/* its rows are being made under this name and mode: a close meanwhile
	 * queues a record that finds them (EALREADY), so nothing may go into
	 * that record any more (fs_record_amend) */
	in->local_rows = 1;
	snprintf(name, sizeof(name), "%s", in->name);
	pthread_mutex_unlock(&in->lock);
	fs_known_name(fs, dir.ino, name);	/* it leaves the names made here below */
	rc = meta_create_at(fs->meta, in->ino, &dir, name, mode, &made);
	if (rc == -EALREADY)
		rc = 0;
	if (rc) {
		log_warn("cannot make '%s' in the database yet (%s); it is made with its first close", name,
			 strerror(-rc));
		return rc;
	}
	fs_ns_dirs_changed(fs, dir.ino, 0);	/* its row was touched: see fs_record_made */
	pthread_mutex_lock(&in->lock);
	if (in->local != was)
		was = 0;	/* someone else settled it meanwhile, or it was closed */
	else
		in->local = 0;
	pthread_mutex_unlock(&in->lock);
	if (was) {
		fs_local_forget(fs, in);
		if (was == 3)
			fs_inode_unhold(fs, in);	/* the hold its failed record kept */
	}
	return 0;
}

int fs_local_settle(struct mvfs *fs, uint64_t ino)
{
	struct fs_inode *in = fs->local ? fs_inode_find(fs, ino) : NULL;
	int local;

	if (!in)
		return 0;
	pthread_mutex_lock(&in->lock);
	local = in->local;
	pthread_mutex_unlock(&in->lock);
	if (local == 1 || local == 3)
		return make_now(fs, in);
	if (local == 2)
		fs_record_flush(fs);
	return 0;
}

void fs_local_unfinished(struct mvfs *fs, uint64_t ino)
{
	struct fs_inode *in = fs->local ? fs_inode_find(fs, ino) : NULL;
	int open;

	if (!in)
		return;
	pthread_mutex_lock(&in->lock);
	open = in->local == 1 && in->writers == 0;
	pthread_mutex_unlock(&in->lock);
	if (open)
		make_now(fs, in);
}

void fs_local_settle_all(struct mvfs *fs)
{
	struct fs_local *l = fs->local;

	while (l) {
		struct fs_inode *open = NULL;

		pthread_mutex_lock(&l->lock);
		for (size_t b = 0; l->n && b < LOCAL_BUCKETS && !open; b++) {
			for (struct local_name *x = l->names[b]; x && !open; x = x->next) {
				pthread_mutex_lock(&x->in->lock);
				if (x->in->local == 1 || x->in->local == 3)
					open = x->in;
				pthread_mutex_unlock(&x->in->lock);
			}
		}
		if (open)	/* kept while it is made, as the recorder keeps its own */
			fs_inode_hold(fs, open);
		pthread_mutex_unlock(&l->lock);
		if (!open)
			break;
		int rc = make_now(fs, open);

		fs_inode_unhold(fs, open);
		if (rc)
			break;		/* the database is away: the rest the same */
	}
	fs_record_flush(fs);
}

void fs_known_fill_local(struct mvfs *fs, uint64_t dir, uint64_t epoch)
{
	struct fs_local *l = fs->local;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < LOCAL_BUCKETS; i++)
		for (struct local_name *n = l->names[i]; n; n = n->next)
			if (n->parent == dir)
				fs_known_fill_add(fs, dir, epoch, n->in->name);
	pthread_mutex_unlock(&l->lock);
}
