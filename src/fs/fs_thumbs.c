/*
 * fs_thumbs.c - the desktop's thumbnails (-o desktop_thumbnails): the PNGs
 * of the freedesktop.org Thumbnail Managing Standard that file managers
 * and photo apps look for before they read a file, written for the files
 * of the tree as this mount shows them (util/xdg_thumb.h).
 *
 * Written by the mount daemon, which alone knows the mount's path (the URI
 * a program looks a thumbnail up by), whose home it is, and what each file
 * is called and when it changed as the kernel shows it.  The pixels come
 * from the thumb variant (long edge 512), scaled to 256 and 128 in an image
 * helper process (media.h): the original is never read again.
 *
 * One thread does the work, from a queue the mount's operations fill
 * without waiting:
 *
 *   made     the mount's worker made the variants of an asset: the thumb
 *            variant's bytes come with it (nothing read from the store)
 *   seen     a folder of the tree was listed: its files that have a thumb
 *            variant and no valid thumbnail get one (variants another
 *            worker made, or made before the option was on); once per
 *            folder per mount
 *   moved    a rename: the thumbnails of the old URI are rewritten with
 *            the new one (their chunks only) and the old ones removed; a
 *            folder's files below it the same
 *   removed  an unlink: the thumbnails of the URI go, unless a file has
 *            that name again
 *   changed  a setattr of the mtime: made again for the new time
 *
 * A thumbnail already there for the same URI and a time as new as the
 * file's or newer (an application's, made from the original) is never
 * overwritten.
 */
#include "fs/fs_thumbs.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs_ns.h"
#include "media/media.h"
#include "meta/meta_thumbs.h"
#include "meta/meta_variants.h"
#include "util/log.h"
#include "util/xdg_thumb.h"

#define QUEUE_MAX 100000	/* work items waiting; more are dropped with a log line */
#define SEEN_MAX 65536		/* folders scanned once per mount */

enum job_kind { JOB_MADE = 1, JOB_SEEN, JOB_MOVED, JOB_REMOVED, JOB_CHANGED };

struct job {
	enum job_kind kind;
	int fd;				/* MADE: the thumb variant (-1: none) */
	char asset_id[META_UUID_LEN + 1];
	uint64_t ino;			/* CHANGED */
	uint64_t parent, newparent;
	char name[256], newname[256];
	struct job *next;
};

struct fs_thumbs {
	struct mvfs *fs;
	char mnt[PATH_MAX];		/* the mount point, absolute */
	char root[PATH_MAX];		/* $XDG_CACHE_HOME/thumbnails */
	struct media_helper *media;
	pthread_t thread;
	pthread_mutex_t lock;		/* guards the queue, stopping and seen */
	pthread_cond_t wake;
	struct job *head, *tail;
	int queued, stopping, dropped;
	uint64_t *seen;			/* folders scanned (open addressing, 0: free) */
	int nseen;
	long written, moved, removed, kept;
};

/* snprintf that says whether it fit: 0, or -ENAMETOOLONG. */
static int fmt(char *out, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));
static int fmt(char *out, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(out, len, f, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/* --- the queue ----------------------------------------------------------- */

static void job_free(struct job *j)
{
	if (j && j->fd >= 0)
		close(j->fd);
	free(j);
}

static void push(struct fs_thumbs *t, struct job *j)
{
	pthread_mutex_lock(&t->lock);
	if (t->stopping || t->queued >= QUEUE_MAX) {
		if (!t->stopping && t->dropped++ == 0)
			log_warn("desktop thumbnails: over %d changes wait; some thumbnails are not kept up to date"
				 " (a folder's next listing after a remount makes them)", QUEUE_MAX);
		pthread_mutex_unlock(&t->lock);
		job_free(j);
		return;
	}
	if (t->tail)
		t->tail->next = j;
	else
		t->head = j;
	t->tail = j;
	t->queued++;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
}

static struct job *job_new(enum job_kind kind)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j) {
		j->kind = kind;
		j->fd = -1;
	}
	return j;
}

/* --- one file ------------------------------------------------------------ */

/* The thumbnail file of URI at size I. */
static void thumb_file(const struct fs_thumbs *t, int i, const char *uri, char *out, size_t len)
{
	char name[XDG_THUMB_NAME_LEN + 1];

	xdg_thumb_name(uri, name);
	fmt(out, len, "%s/%s/%s", t->root, xdg_thumb_sizes[i].dir, name);
}

static int uri_of(const struct fs_thumbs *t, const char *rel, char *uri, size_t len)
{
	char path[PATH_MAX + META_PATH_MAX];

	if (fmt(path, sizeof(path), "%s/%s", t->mnt, rel) != 0)
		return -ENAMETOOLONG;
	return xdg_thumb_uri(path, uri, len);
}

/* Whether the thumbnail at PATH is for URI and as new as MTIME or newer:
 * then it stays. */
static int keeps(const char *path, const char *uri, int64_t mtime)
{
	static __thread struct xdg_thumb_tags tags;

	return xdg_thumb_file_tags(path, &tags) == 0 && strcmp(tags.uri, uri) == 0 && tags.mtime >= mtime;
}

/* The thumb variant of file INO into a staging file: its fd, or -errno. */
static int fetch_thumb(struct fs_thumbs *t, uint64_t ino)
{
	enum { CHUNK = 256 << 10 };
	struct meta_file f;
	struct meta_variant v;
	char *buf;
	uint64_t off = 0;
	int fd, rc;

	if ((rc = meta_file_get(t->fs->meta, ino, &f)) != 0 ||
	    (rc = meta_variant_get(t->fs->meta, f.asset_id, "thumb", &v)) != 0)
		return rc;
	if (!(buf = malloc(CHUNK)))
		return -ENOMEM;
	fd = cache_stage_create(t->fs->cache);
	rc = fd < 0 ? fd : 0;
	while (rc == 0 && off < v.size) {
		size_t got = 0;

		rc = cache_read(t->fs->cache, v.sha256, v.size, off, CHUNK, buf, &got, NULL);
		if (rc == 0 && got == 0)
			rc = -EIO;
		if (rc == 0 && pwrite(fd, buf, got, (off_t)off) != (ssize_t)got)
			rc = errno ? -errno : -EIO;
		off += got;
	}
	free(buf);
	if (rc && fd >= 0)
		close(fd);
	return rc ? rc : fd;
}

/* The whole of FD: malloc'd, *LEN; NULL on failure. */
static void *slurp(int fd, size_t *len)
{
	struct stat st;
	char *buf;

	if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size > XDG_THUMB_FILE_MAX ||
	    !(buf = malloc((size_t)st.st_size)))
		return NULL;
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		return NULL;
	}
	*len = (size_t)st.st_size;
	return buf;
}

/* Tags PNG for URI with ST's time and size and writes it as size I,
 * unless one as new is there by then. */
static int put(struct fs_thumbs *t, int i, const char *uri, const struct stat *st, const void *png, size_t len)
{
	char path[PATH_MAX], dir[PATH_MAX], name[XDG_THUMB_NAME_LEN + 1];
	size_t outlen = 0;
	void *out;
	int rc;

	thumb_file(t, i, uri, path, sizeof(path));
	if (keeps(path, uri, st->st_mtime)) {
		t->kept++;
		return 0;
	}
	if (!(out = xdg_thumb_tag(png, len, uri, st->st_mtime, st->st_size, NULL, &outlen)))
		return -errno;
	fmt(dir, sizeof(dir), "%s/%s", t->root, xdg_thumb_sizes[i].dir);
	xdg_thumb_name(uri, name);
	rc = xdg_thumb_write(dir, name, out, outlen);
	free(out);
	if (rc)
		log_warn("desktop thumbnails: cannot write '%s': %s", path, strerror(-rc));
	else
		t->written++;
	return rc;
}

/* Makes the thumbnails of file F (its thumb variant in FD, or -1: read
 * when needed) that are missing or older than the file. */
static void make(struct fs_thumbs *t, const struct meta_tree_file *f, int fd)
{
	char uri[XDG_THUMB_URI_MAX], path[PATH_MAX], why[512];
	int need = 0, own = 0, out[XDG_THUMB_NSIZES] = { -1, -1 };
	struct media_result res;
	struct stat st;
	int rc;

	if (uri_of(t, f->path, uri, sizeof(uri)) != 0 || fs_file_getattr(t->fs, f->ino, &st) != 0)
		return;
	for (int i = 0; i < XDG_THUMB_NSIZES; i++) {
		thumb_file(t, i, uri, path, sizeof(path));
		if (!keeps(path, uri, st.st_mtime))
			need |= 1 << i;
	}
	if (!need)
		return;
	if (fd < 0) {
		if (!f->has_thumb)
			return;
		if ((fd = fetch_thumb(t, f->ino)) < 0) {
			log_warn("desktop thumbnails: cannot read the thumb variant of '%s': %s", f->path,
				 strerror(-fd));
			return;
		}
		own = 1;
	}
	for (int i = 0; i < XDG_THUMB_NSIZES; i++)
		if ((out[i] = cache_stage_create(t->fs->cache)) < 0)
			goto done;
	/* xdg_thumb_sizes: normal, large */
	rc = media_desktop(t->media, fd, xdg_thumb_sizes[1].edge, xdg_thumb_sizes[0].edge, out[1], out[0], &res,
			   why, sizeof(why));
	if (rc) {
		log_warn("desktop thumbnails: cannot scale the thumb variant of '%s': %s", f->path, why);
		goto done;
	}
	for (int i = 0; i < XDG_THUMB_NSIZES; i++) {
		size_t len = 0;
		void *png;

		if (!(need & (1 << i)))
			continue;
		if (!(png = slurp(out[i], &len)))
			continue;
		put(t, i, uri, &st, png, len);
		free(png);
	}
done:
	for (int i = 0; i < XDG_THUMB_NSIZES; i++)
		if (out[i] >= 0)
			close(out[i]);
	if (own)
		close(fd);
}

/* Removes the thumbnails of URI (those that say they are URI's). */
static void drop(struct fs_thumbs *t, const char *uri)
{
	char path[PATH_MAX];
	struct xdg_thumb_tags tags;

	for (int i = 0; i < XDG_THUMB_NSIZES; i++) {
		thumb_file(t, i, uri, path, sizeof(path));
		if (xdg_thumb_file_tags(path, &tags) == 0 && strcmp(tags.uri, uri) == 0 && unlink(path) == 0)
			t->removed++;
	}
}

/* File F was called OLD (a path relative to the top): its thumbnails
 * there are carried over to its new path (their chunks rewritten), or made
 * when there are none. */
static void carry(struct fs_thumbs *t, const char *old, const struct meta_tree_file *f)
{
	char olduri[XDG_THUMB_URI_MAX], uri[XDG_THUMB_URI_MAX], path[PATH_MAX], dir[PATH_MAX];
	char name[XDG_THUMB_NAME_LEN + 1];
	static __thread struct xdg_thumb_tags tags;
	int missing = 0;

	if (uri_of(t, old, olduri, sizeof(olduri)) != 0 || uri_of(t, f->path, uri, sizeof(uri)) != 0)
		return;
	if (strcmp(olduri, uri) == 0)
		return;
	xdg_thumb_name(uri, name);
	for (int i = 0; i < XDG_THUMB_NSIZES; i++) {
		size_t len = 0, outlen = 0;
		void *png, *out = NULL;
		char dst[PATH_MAX];

		thumb_file(t, i, olduri, path, sizeof(path));
		thumb_file(t, i, uri, dst, sizeof(dst));
		png = xdg_thumb_read(path, &len);
		if (!png || xdg_thumb_tags_parse(png, len, &tags) != 0 || strcmp(tags.uri, olduri) != 0) {
			free(png);
			missing = 1;
			continue;
		}
		fmt(dir, sizeof(dir), "%s/%s", t->root, xdg_thumb_sizes[i].dir);
		if (!keeps(dst, uri, tags.mtime) &&
		    (out = xdg_thumb_tag(png, len, uri, tags.mtime, tags.size, NULL, &outlen)) &&
		    xdg_thumb_write(dir, name, out, outlen) == 0)
			t->moved++;
		free(out);
		free(png);
		unlink(path);
	}
	if (missing)
		make(t, f, -1);
}

/* --- the jobs ------------------------------------------------------------ */

/* The meta_dir of tree folder INO: 0, or -ENOENT for anything else. */
static int tree_dir(struct fs_thumbs *t, uint64_t ino, struct meta_dir *dir)
{
	struct fs_node n;

	if (fs_node_of(t->fs, ino, &n) != 0 || !fs_ns_is_tree(&n))
		return -ENOENT;
	*dir = n.dir;
	return 0;
}

static int on_made(void *arg, const struct meta_tree_file *f)
{
	struct job *j = ((void **)arg)[1];

	make(((void **)arg)[0], f, j->fd);
	return 1;
}

/* Whether F's thumbnails are there for its path and the time its row
 * gives: then a listing's scan asks nothing more of the database. */
static int has_all(struct fs_thumbs *t, const struct meta_tree_file *f)
{
	char uri[XDG_THUMB_URI_MAX], path[PATH_MAX];

	if (uri_of(t, f->path, uri, sizeof(uri)) != 0)
		return 1;
	for (int i = 0; i < XDG_THUMB_NSIZES; i++) {
		thumb_file(t, i, uri, path, sizeof(path));
		if (!keeps(path, uri, f->mtime))
			return 0;
	}
	return 1;
}

static int on_seen(void *arg, const struct meta_tree_file *f)
{
	struct fs_thumbs *t = arg;

	if (f->has_thumb && !has_all(t, f))
		make(t, f, -1);
	return t->stopping;
}

struct moved_dir {
	struct fs_thumbs *t;
	const char *oldprefix, *newprefix;
};

static int on_moved(void *arg, const struct meta_tree_file *f)
{
	struct moved_dir *d = arg;
	size_t n = strlen(d->newprefix);
	char old[META_PATH_MAX * 2];

	if (strncmp(f->path, d->newprefix, n) != 0)
		return 0;
	if (fmt(old, sizeof(old), "%s%s", d->oldprefix, f->path + n) == 0)
		carry(d->t, old, f);
	return d->t->stopping;
}

static int on_one(void *arg, const struct meta_tree_file *f)
{
	make(arg, f, -1);
	return 1;
}

/* A name of tree folder DIR (path DPATH) that changed: F is what has it
 * now, when a file does. */
static int file_at(struct fs_thumbs *t, const struct meta_dir *dir, const char *name, struct meta_file *f)
{
	int rc = meta_lookup(t->fs->meta, dir, name, f);

	return rc == 0 && strcmp(f->name, name) == 0 ? 0 : rc ? rc : -ENOENT;
}

static void do_moved(struct fs_thumbs *t, const struct job *j)
{
	struct meta_dir from, to;
	struct meta_folder folder;
	struct meta_file f;
	char fpath[META_PATH_MAX], tpath[META_PATH_MAX], old[META_PATH_MAX * 2], new[META_PATH_MAX * 2];

	if (tree_dir(t, j->newparent, &to) != 0 || meta_tree_path(t->fs->meta, &to, tpath, sizeof(tpath)) != 0)
		return;		/* into a collection or gallery: the file stays in its folder */
	if (fmt(new, sizeof(new), "%s/%s", tpath, j->newname) != 0)
		return;
	if (tree_dir(t, j->parent, &from) != 0 || meta_tree_path(t->fs->meta, &from, fpath, sizeof(fpath)) != 0) {
		/* from the trash, a collection, a gallery: made at its place */
		if (file_at(t, &to, j->newname, &f) == 0)
			meta_tree_file_of(t->fs->meta, f.asset_id, on_one, t);
		return;
	}
	if (fmt(old, sizeof(old), "%s/%s", fpath, j->name) != 0)
		return;
	if (file_at(t, &to, j->newname, &f) == 0) {
		struct meta_tree_file tf = { .ino = f.ino, .path = new, .mtime = f.mtime.tv_sec, .size = f.size,
					     .has_thumb = 1 };

		carry(t, old, &tf);
	} else if (meta_folder_lookup(t->fs->meta, &to, j->newname, &folder) == 0) {
		struct meta_dir d = { to.place, folder.ino };
		char oldp[META_PATH_MAX * 2 + 1], newp[META_PATH_MAX * 2 + 1];
		struct moved_dir md = { t, oldp, newp };

		fmt(oldp, sizeof(oldp), "%s/", old);
		fmt(newp, sizeof(newp), "%s/", new);
		meta_tree_files(t->fs->meta, &d, 1, on_moved, &md);
	}
}

static void do_removed(struct fs_thumbs *t, const struct job *j)
{
	struct meta_dir dir;
	struct meta_file f;
	char dpath[META_PATH_MAX], rel[META_PATH_MAX * 2], uri[XDG_THUMB_URI_MAX];

	if (tree_dir(t, j->parent, &dir) != 0 || meta_tree_path(t->fs->meta, &dir, dpath, sizeof(dpath)) != 0)
		return;		/* out of a gallery: it keeps its place in the tree */
	if (fmt(rel, sizeof(rel), "%s/%s", dpath, j->name) != 0 || uri_of(t, rel, uri, sizeof(uri)) != 0)
		return;
	if (file_at(t, &dir, j->name, &f) == 0)
		meta_tree_file_of(t->fs->meta, f.asset_id, on_one, t);	/* another file has the name now */
	else
		drop(t, uri);
}

static void run(struct fs_thumbs *t, struct job *j)
{
	struct meta_dir dir;
	struct meta_file f;

	switch (j->kind) {
	case JOB_MADE:
		meta_tree_file_of(t->fs->meta, j->asset_id, on_made, (void *[]){ t, j });
		break;
	case JOB_SEEN:
		if (tree_dir(t, j->parent, &dir) == 0)
			meta_tree_files(t->fs->meta, &dir, 0, on_seen, t);
		break;
	case JOB_MOVED:
		do_moved(t, j);
		break;
	case JOB_REMOVED:
		do_removed(t, j);
		break;
	case JOB_CHANGED:
		if (meta_file_get(t->fs->meta, j->ino, &f) == 0)
			meta_tree_file_of(t->fs->meta, f.asset_id, on_one, t);
		break;
	}
}

static void *thread_main(void *arg)
{
	struct fs_thumbs *t = arg;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct job *j;

		while (!t->head && !t->stopping)
			pthread_cond_wait(&t->wake, &t->lock);
		if (t->stopping)
			break;
		j = t->head;
		t->head = j->next;
		if (!t->head)
			t->tail = NULL;
		t->queued--;
		pthread_mutex_unlock(&t->lock);
		run(t, j);
		job_free(j);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* --- the mount's side ---------------------------------------------------- */

int fs_thumbs_start(struct mvfs *fs, const char *mountpoint, char *err, size_t errlen)
{
	struct fs_thumbs *t = calloc(1, sizeof(*t));
	static const struct media_limits lim = { .timeout_s = 30, .memory_mb = 512, .threads = 1 };
	int rc;

	if (!t || !(t->seen = calloc(SEEN_MAX, sizeof(*t->seen)))) {
		free(t);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->fs = fs;
	if (!realpath(mountpoint, t->mnt) || (rc = xdg_thumb_root(t->root, sizeof(t->root))) != 0) {
		snprintf(err, errlen, "%s", t->mnt[0] ? "no thumbnails folder: set XDG_CACHE_HOME or HOME"
						       : "the mount point has no absolute path");
		free(t->seen);
		free(t);
		return -ENOENT;
	}
	if (!(t->media = media_helper_new("/proc/self/exe", &lim))) {
		snprintf(err, errlen, "out of memory");
		free(t->seen);
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	if ((rc = pthread_create(&t->thread, NULL, thread_main, t)) != 0) {
		snprintf(err, errlen, "cannot start its thread: %s", strerror(rc));
		media_helper_free(t->media);
		free(t->seen);
		free(t);
		return -rc;
	}
	fs->thumbs = t;
	log_info("desktop thumbnails: written into %s/{normal,large} for '%s'", t->root, t->mnt);
	return 0;
}

void fs_thumbs_stop(struct mvfs *fs)
{
	struct fs_thumbs *t = fs->thumbs;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = 1;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
	media_helper_cancel(t->media);
	pthread_join(t->thread, NULL);
	while (t->head) {
		struct job *j = t->head;

		t->head = j->next;
		job_free(j);
	}
	log_info("desktop thumbnails: %ld written, %ld carried over to a new name, %ld removed, %ld newer kept",
		 t->written, t->moved, t->removed, t->kept);
	media_helper_free(t->media);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->wake);
	free(t->seen);
	free(t);
	fs->thumbs = NULL;
}

void fs_thumbs_made(void *arg, const char *asset_id, int thumb_fd)
{
	struct mvfs *fs = arg;
	struct job *j;

	if (!fs->thumbs || !(j = job_new(JOB_MADE)))
		return;
	snprintf(j->asset_id, sizeof(j->asset_id), "%s", asset_id);
	j->fd = thumb_fd >= 0 ? dup(thumb_fd) : -1;
	push(fs->thumbs, j);
}

void fs_thumbs_seen(struct mvfs *fs, uint64_t dir)
{
	struct fs_thumbs *t = fs->thumbs;
	struct job *j;
	size_t h;
	int fresh = 0;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	/* at most half the table is used, so a probe always ends; past that,
	 * folders are not scanned at their listing (their files' thumbnails
	 * are still made when their variants are) */
	for (h = (size_t)(dir * 0x9E3779B97F4A7C15ULL) % SEEN_MAX; t->nseen < SEEN_MAX / 2; h = (h + 1) % SEEN_MAX) {
		if (t->seen[h] == dir)
			break;
		if (t->seen[h] == 0) {
			t->seen[h] = dir;
			t->nseen++;
			fresh = 1;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (fresh && (j = job_new(JOB_SEEN))) {
		j->parent = dir;
		push(t, j);
	}
}

void fs_thumbs_moved(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent, const char *newname)
{
	struct job *j;

	if (!fs->thumbs || !(j = job_new(JOB_MOVED)))
		return;
	j->parent = parent;
	j->newparent = newparent;
	snprintf(j->name, sizeof(j->name), "%s", name);
	snprintf(j->newname, sizeof(j->newname), "%s", newname);
	push(fs->thumbs, j);
}

void fs_thumbs_removed(struct mvfs *fs, uint64_t parent, const char *name)
{
	struct job *j;

	if (!fs->thumbs || !(j = job_new(JOB_REMOVED)))
		return;
	j->parent = parent;
	snprintf(j->name, sizeof(j->name), "%s", name);
	push(fs->thumbs, j);
}

void fs_thumbs_changed(struct mvfs *fs, uint64_t ino)
{
	struct job *j;

	if (!fs->thumbs || !(j = job_new(JOB_CHANGED)))
		return;
	j->ino = ino;
	push(fs->thumbs, j);
}
