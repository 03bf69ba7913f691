/*
 * fs_ahead.c - lookups that walk a folder read its next files ahead.
 *
 * rsync's rerun (and cp -u, a backup tool's second pass) looks up every
 * name of the copy in the destination, folder by folder in name order.
 * After a remount the kernel knows none of them, so each is a LOOKUP and a
 * database round trip: 200 files took 0.15-0.19 s against a local
 * folder's 0.04 for the whole rerun.  When lookups in one folder have gone
 * to the database for files AHEAD_AFTER times in a row, the next AHEAD_ROWS
 * files of that folder by name are read in one statement
 * (meta_lookup_ahead) and the lookups of those names answered from them.
 *
 * The rows are used only while they are what the database would answer
 * for this mount: no statement that may change rows has started since
 * they were read, nor was one under way (meta_changes: the records of
 * this mount's closes and uploads, every change made through it), no
 * change of another mount was announced (fs_known's epoch: push), and for
 * no longer than the entry timeout, at most AHEAD_SECS: what the kernel
 * itself keeps of a lookup without asking.  A row answers a lookup only
 * when its shown name is its display name and the name asked (the rows
 * meta_lookup_entry would choose from), and only when its content is
 * uploaded: a file whose upload goes on elsewhere is hidden or shows its
 * last uploaded version here (fs_ns_visible), and what the kernel does not
 * keep (a name not shown) must not be kept here either, or the upload's
 * end would show late, after the announcement.  Everything else is asked
 * as before.  One folder at a time: the walk a copy makes.
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AHEAD_ROWS 128
#define AHEAD_AFTER 2
#define AHEAD_SECS 1.0

struct fs_ahead {
	pthread_mutex_t lock;
	uint64_t dir;		/* folder of the last lookup that asked the database */
	int asked;		/* ... such lookups there in a row */
	int reading;		/* a thread reads rows ahead now */
	uint64_t changes;	/* meta_changes when the rows were read */
	uint64_t epoch;		/* fs_known_epoch then */
	struct timespec at;	/* CLOCK_MONOTONIC, then */
	uint64_t rows_dir;	/* the folder the rows are of (0: none) */
	int n;
	struct meta_file *rows;	/* AHEAD_ROWS; swapped with a reader's, never copied */
};

/* Lookups answered from rows read ahead (the root's stats, lookups_ahead). */
static _Atomic unsigned long long hits;

int fs_ahead_init(struct mvfs *fs)
{
	fs->ahead = calloc(1, sizeof(*fs->ahead));
	if (!fs->ahead)
		return -ENOMEM;
	pthread_mutex_init(&fs->ahead->lock, NULL);
	return 0;
}

void fs_ahead_free(struct mvfs *fs)
{
	if (!fs->ahead)
		return;
	pthread_mutex_destroy(&fs->ahead->lock);
	free(fs->ahead->rows);
	free(fs->ahead);
	fs->ahead = NULL;
}

static double max_age(const struct mvfs *fs)
{
	return fs->cfg.entry_timeout < AHEAD_SECS ? fs->cfg.entry_timeout : AHEAD_SECS;
}

/* Whether A's rows are still what the database would answer. */
static int current_locked(struct mvfs *fs, const struct fs_ahead *a)
{
	struct timespec now;
	int under_way;

	if (!a->rows_dir || meta_changes(&under_way) != a->changes || under_way || fs_known_epoch(fs) != a->epoch)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - a->at.tv_sec) + (now.tv_nsec - a->at.tv_nsec) / 1e9 < max_age(fs);
}

int fs_ahead_find(struct mvfs *fs, uint64_t dir, const char *name, struct meta_file *f)
{
	struct fs_ahead *a = fs->ahead;
	int rc = -ENOENT;

	if (!a)
		return rc;
	pthread_mutex_lock(&a->lock);
	if (a->rows_dir == dir && current_locked(fs, a)) {
		for (int i = 0; i < a->n; i++)
			if (strcmp(a->rows[i].display_name, name) == 0 && strcmp(a->rows[i].name, name) == 0 &&
			    a->rows[i].upload == META_UPLOAD_COMPLETED) {
				*f = a->rows[i];
				hits++;
				rc = 0;
				break;
			}
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void fs_ahead_asked(struct mvfs *fs, uint64_t dir, const struct meta_dir *in, const char *name)
{
	struct fs_ahead *a = fs->ahead;
	struct meta_file *rows;
	struct timespec at;
	uint64_t changes, epoch;
	int n = 0, under_way;

	if (!a || max_age(fs) <= 0)
		return;
	pthread_mutex_lock(&a->lock);
	if (a->dir != dir) {
		a->dir = dir;
		a->asked = 0;
	}
	if (++a->asked < AHEAD_AFTER || a->reading) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	a->asked = 0;
	a->reading = 1;
	pthread_mutex_unlock(&a->lock);

	/* the counts first: a change that starts during the read outdates it */
	changes = meta_changes(&under_way);
	epoch = fs_known_epoch(fs);
	clock_gettime(CLOCK_MONOTONIC, &at);
	rows = under_way ? NULL : malloc(sizeof(*rows) * AHEAD_ROWS);
	if (rows && meta_lookup_ahead(fs->meta, in, name, rows, AHEAD_ROWS, &n) != 0)
		n = 0;

	pthread_mutex_lock(&a->lock);
	a->reading = 0;
	if (n > 0) {
		struct meta_file *old = a->rows;

		a->rows = rows;
		rows = old;
		a->n = n;
		a->rows_dir = dir;
		a->changes = changes;
		a->epoch = epoch;
		a->at = at;
	}
	pthread_mutex_unlock(&a->lock);
	free(rows);
}

unsigned long long fs_ahead_hits(void)
{
	return hits;
}
