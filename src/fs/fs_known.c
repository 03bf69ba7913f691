/*
 * fs_known.c - folders whose every name is known here.
 *
 * Split from fs_local.c (files made here first), which fills a folder's
 * names with its own (fs_known_fill_local) and is the only other user.
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * A folder this mount made (mkdir) holds only the names this mount put in
 * it, as long as nobody else writes to it: a lookup of any other name
 * there is answered "no such file" without the database.  That is most of
 * what a copy into a new folder asks (cp, tar, rsync look each name up
 * before they make it).  Known only where no other writer can go unseen:
 * the embedded default (a private cluster) or a mount told of others'
 * changes (push), where any change from elsewhere forgets every folder.
 * A name is added before the operation that makes it, and never removed
 * (one too many costs a database lookup, one too few would hide a file).
 */
#define KNOWN_MAX_NAMES (1u << 20)

struct known_name {
	uint64_t dir;
	struct known_name *next;
	char name[];
};

struct known_dir {
	uint64_t ino;
	int filling;		/* its names are being read (fs_known_fill_*): none known absent yet */
	struct known_dir *next;
};

#define KNOWN_DIRS 1024

/* A folder in which names are being made in the database, from the
 * announcement (fs_known_making) to the commit (fs_known_made). */
struct making {
	uint64_t dir;
	int n;
	struct making *next;
};

/* Folders whose listing the kernel may keep (fs_known_listing). */
#define LISTED_SLOTS 4096

/* Folder rows kept for getattr (fs_known_folder_get), by ino % ROW_SLOTS. */
#define ROW_SLOTS 256

struct known_row {
	uint64_t epoch;		/* k->epoch when it was read: every folder forgotten since, it goes too */
	struct timespec at;	/* CLOCK_MONOTONIC, when it was read */
	struct meta_folder f;	/* f.ino 0: empty */
};

struct fs_known {
	pthread_mutex_t lock;
	size_t n;
	struct known_name *names[KNOWN_DIRS * 16];
	struct known_dir *dirs[KNOWN_DIRS];
	uint64_t gen;		/* one more at each change from elsewhere */
	uint64_t epoch;		/* one more each time every folder is forgotten */
	struct {
		uint64_t ino, gen;
	} listed[LISTED_SLOTS];	/* by ino % LISTED_SLOTS: listed at that gen */
	struct known_row rows[ROW_SLOTS];
	uint64_t row_changes;	/* one more at each fs_known_folder_drop */
	struct making *making;	/* folders with names being made in the database */
	int making_lost;	/* ... and names whose folder could not be noted */
	int off;		/* fs_known_off: nothing is learned any more */
};

static size_t kbucket(uint64_t dir, const char *name)
{
	return (size_t)(fs_name_hash(dir, name) % KNOWN_DIRS) * 16 + (size_t)((dir * 0x9e3779b97f4a7c15ULL) >> 60);
}

static struct known_dir *dir_find_locked(struct fs_known *k, uint64_t ino)
{
	for (struct known_dir *d = k->dirs[ino % KNOWN_DIRS]; d; d = d->next)
		if (d->ino == ino)
			return d;
	return NULL;
}

static int dir_known_locked(struct fs_known *k, uint64_t ino)
{
	return dir_find_locked(k, ino) != NULL;
}

static void forget_all_locked(struct fs_known *k)
{
	for (size_t i = 0; i < KNOWN_DIRS * 16; i++) {
		while (k->names[i]) {
			struct known_name *n = k->names[i];

			k->names[i] = n->next;
			free(n);
		}
	}
	for (size_t i = 0; i < KNOWN_DIRS; i++) {
		while (k->dirs[i]) {
			struct known_dir *d = k->dirs[i];

			k->dirs[i] = d->next;
			free(d);
		}
	}
	k->n = 0;
	k->epoch++;
}

int fs_known_start(struct mvfs *fs)
{
	struct fs_known *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	k->gen = 1;
	fs->known = k;
	return 0;
}

void fs_known_off(struct mvfs *fs)
{
	struct fs_known *k = fs->known;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->off = 1;
	forget_all_locked(k);
	k->epoch++;
	k->gen++;
	pthread_mutex_unlock(&k->lock);
}

void fs_known_free(struct mvfs *fs)
{
	struct fs_known *k = fs->known;

	if (!k)
		return;
	forget_all_locked(k);
	while (k->making) {
		struct making *m = k->making;

		k->making = m->next;
		free(m);
	}
	pthread_mutex_destroy(&k->lock);
	free(k);
	fs->known = NULL;
}

static void add_name_locked(struct fs_known *k, uint64_t dir, const char *name)
{
	size_t b = kbucket(dir, name), len = strlen(name);
	struct known_name *n;

	for (n = k->names[b]; n; n = n->next)
		if (n->dir == dir && strcmp(n->name, name) == 0)
			return;
	if (k->n >= KNOWN_MAX_NAMES || !(n = malloc(sizeof(*n) + len + 1))) {
		forget_all_locked(k);	/* too many to keep: the database answers */
		return;
	}
	n->dir = dir;
	memcpy(n->name, name, len + 1);
	n->next = k->names[b];
	k->names[b] = n;
	k->n++;
}

void fs_known_name(struct mvfs *fs, uint64_t dir, const char *name)
{
	struct fs_known *k = fs->known;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	if (dir_known_locked(k, dir))
		add_name_locked(k, dir, name);
	pthread_mutex_unlock(&k->lock);
}

void fs_known_making(struct mvfs *fs, uint64_t dir, const char *name)
{
	struct fs_known *k = fs->known;
	struct making *m;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	if (dir_known_locked(k, dir))
		add_name_locked(k, dir, name);
	for (m = k->making; m && m->dir != dir; m = m->next)
		;
	if (!m && (m = calloc(1, sizeof(*m))) != NULL) {
		m->dir = dir;
		m->next = k->making;
		k->making = m;
	}
	if (m)
		m->n++;
	else		/* no memory: no folder is learned until it is made */
		k->making_lost++;
	pthread_mutex_unlock(&k->lock);
}

void fs_known_made(struct mvfs *fs, uint64_t dir)
{
	struct fs_known *k = fs->known;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	struct making **pp, *m;

	for (pp = &k->making; (m = *pp) != NULL; pp = &m->next) {
		if (m->dir == dir) {
			if (--m->n <= 0) {
				*pp = m->next;
				free(m);
			}
			break;
		}
	}
	if (!m && k->making_lost > 0)
		k->making_lost--;
	pthread_mutex_unlock(&k->lock);
}

void fs_known_dir(struct mvfs *fs, uint64_t ino)
{
	struct fs_known *k = fs->known;
	struct known_dir *d;

	if (!k || !(d = calloc(1, sizeof(*d))))
		return;
	pthread_mutex_lock(&k->lock);
	if (k->off || dir_known_locked(k, ino)) {
		free(d);
	} else {
		d->ino = ino;
		d->next = k->dirs[ino % KNOWN_DIRS];
		k->dirs[ino % KNOWN_DIRS] = d;
	}
	pthread_mutex_unlock(&k->lock);
}

int fs_known_absent(struct mvfs *fs, uint64_t dir, const char *name)
{
	struct fs_known *k = fs->known;
	int absent = 0;

	if (!k)
		return 0;
	pthread_mutex_lock(&k->lock);
	struct known_dir *d = dir_find_locked(k, dir);

	if (d && !d->filling) {
		absent = 1;
		for (struct known_name *n = k->names[kbucket(dir, name)]; n; n = n->next) {
			if (n->dir == dir && strcmp(n->name, name) == 0) {
				absent = 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&k->lock);
	return absent;
}

/*
 * A folder of the tree this mount did not make becomes known too, once a
 * lookup in it found no such name (what a copy into it asks before each
 * file): its names are read once, and from then on a lookup of any other
 * name there needs no database, as in a folder made here.  The folder is
 * marked first, so a name made here while its names are read is added as
 * it is made; a forgetting meanwhile (a change from elsewhere) discards
 * what was read.
 */
int fs_known_fill_begin(struct mvfs *fs, uint64_t dir, uint64_t *epoch)
{
	struct fs_known *k = fs->known;
	struct known_dir *d;

	if (!k || !(d = calloc(1, sizeof(*d))))
		return 0;
	pthread_mutex_lock(&k->lock);
	struct making *m;

	for (m = k->making; m && m->dir != dir; m = m->next)
		;
	/* known already, or a name announced before now may commit after the
	 * names are read: in neither, it would be ENOENT here */
	if (k->off || dir_known_locked(k, dir) || m || k->making_lost) {
		pthread_mutex_unlock(&k->lock);
		free(d);
		return 0;
	}
	d->ino = dir;
	d->filling = 1;
	d->next = k->dirs[dir % KNOWN_DIRS];
	k->dirs[dir % KNOWN_DIRS] = d;
	*epoch = k->epoch;
	pthread_mutex_unlock(&k->lock);
	return 1;
}

void fs_known_fill_add(struct mvfs *fs, uint64_t dir, uint64_t epoch, const char *name)
{
	struct fs_known *k = fs->known;

	pthread_mutex_lock(&k->lock);
	if (k->epoch == epoch)
		add_name_locked(k, dir, name);
	pthread_mutex_unlock(&k->lock);
}


void fs_known_fill_end(struct mvfs *fs, uint64_t dir, uint64_t epoch, int ok)
{
	struct fs_known *k = fs->known;

	pthread_mutex_lock(&k->lock);
	if (k->epoch == epoch) {
		for (struct known_dir **p = &k->dirs[dir % KNOWN_DIRS]; *p; p = &(*p)->next) {
			struct known_dir *d = *p;

			if (d->ino != dir)
				continue;
			if (ok) {
				d->filling = 0;
			} else {
				*p = d->next;
				free(d);
			}
			break;
		}
	}
	pthread_mutex_unlock(&k->lock);
}

void fs_known_forget(struct mvfs *fs)
{
	struct fs_known *k = fs->known;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	forget_all_locked(k);
	k->gen++;	/* and no listing either */
	pthread_mutex_unlock(&k->lock);
}

/*
 * The kernel keeps a folder's listing between opens (FOPEN_CACHE_DIR with
 * keep_cache) where no writer can go unseen.  It drops it itself when this
 * mount changes the folder through it (create, unlink, rename, mkdir bump
 * the folder's version) or when told (inval_inode of the folder, which the
 * push thread sends for folders it holds); an open answers keep_cache = 0,
 * which drops it too, when the folder may have changed otherwise: after
 * any change from elsewhere (a new name elsewhere names no folder the
 * kernel holds), or any change this mount made in any folder
 * (fs_known_relist): a move into a collection puts the file in library/,
 * a folder the kernel did not see change.  So a listing is kept only while
 * nothing changes at all, which is what repeated listings of a library
 * that is not being written need.  A slot shared by two folders only costs
 * a listing.
 */
int fs_known_listing(struct mvfs *fs, uint64_t ino)
{
	struct fs_known *k = fs->known;
	int keep;

	if (!k)
		return 0;
	pthread_mutex_lock(&k->lock);
	keep = k->listed[ino % LISTED_SLOTS].ino == ino && k->listed[ino % LISTED_SLOTS].gen == k->gen;
	k->listed[ino % LISTED_SLOTS].ino = ino;
	k->listed[ino % LISTED_SLOTS].gen = k->gen;
	pthread_mutex_unlock(&k->lock);
	return keep;
}

void fs_known_relist(struct mvfs *fs)
{
	struct fs_known *k = fs->known;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->gen++;
	pthread_mutex_unlock(&k->lock);
}

uint64_t fs_known_epoch(struct mvfs *fs)
{
	struct fs_known *k = fs->known;
	uint64_t epoch;

	if (!k)
		return 0;
	pthread_mutex_lock(&k->lock);
	epoch = k->epoch;
	pthread_mutex_unlock(&k->lock);
	return epoch;
}

uint64_t fs_known_folder_gen(struct mvfs *fs)
{
	struct fs_known *k = fs->known;
	uint64_t changes;

	if (!k)
		return 0;
	pthread_mutex_lock(&k->lock);
	changes = k->row_changes;
	pthread_mutex_unlock(&k->lock);
	return changes;
}

void fs_known_folder_put(struct mvfs *fs, uint64_t gen, const struct meta_folder *f)
{
	struct fs_known *k = fs->known;
	struct known_row *r;

	if (!k || fs->cfg.attr_timeout <= 0 || (f->place != META_PLACE_LIBRARY && f->place != META_PLACE_WORKSPACE))
		return;
	pthread_mutex_lock(&k->lock);
	if (gen == k->row_changes && !k->off) {	/* no folder dropped while it was read */
		r = &k->rows[f->ino % ROW_SLOTS];
		r->epoch = k->epoch;
		clock_gettime(CLOCK_MONOTONIC, &r->at);
		r->f = *f;
	}
	pthread_mutex_unlock(&k->lock);
}

void fs_known_folder_drop(struct mvfs *fs, uint64_t ino)
{
	struct fs_known *k = fs->known;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->row_changes++;
	if (k->rows[ino % ROW_SLOTS].f.ino == ino)
		k->rows[ino % ROW_SLOTS].f.ino = 0;
	pthread_mutex_unlock(&k->lock);
}

int fs_known_folder_get(struct mvfs *fs, uint64_t ino, struct meta_folder *f)
{
	struct fs_known *k = fs->known;
	struct known_row *r;
	struct timespec now;
	int rc = -ENOENT;

	if (!k)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&k->lock);
	r = &k->rows[ino % ROW_SLOTS];
	if (r->f.ino == ino && r->epoch == k->epoch &&
	    (double)(now.tv_sec - r->at.tv_sec) + (now.tv_nsec - r->at.tv_nsec) / 1e9 < fs->cfg.attr_timeout) {
		*f = r->f;
		rc = 0;
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}
