/*
 * fs_xdgtrash.c - .Trash-$UID/: the trash that file managers understand.
 *
 * GIO (Nautilus, PCManFM, Thunar: `gio trash`), KIO (Dolphin) and trash-cli
 * trash a file outside the home's file system the freedesktop.org way:
 * find $top/.Trash/$UID (none here) or $top/.Trash-$UID, create
 * info/NAME.trashinfo with O_EXCL (another NAME until one is free), write
 * "Path=" and "DeletionDate=" into it, then rename(2) the file to
 * files/NAME.  Their trash windows list files/ and read info/; "Restore" is
 * a rename from files/ back to Path, then an unlink of the .trashinfo;
 * gvfs's "Empty trash" renames each files/ entry into expunged/, then
 * deletes it there.
 *
 * DESIGN: a view of .trash/, not a second trash.  files/ lists the whole
 * files .trash/ lists, under the same names (a twin's ~suffix keeps two
 * x.jpg apart, so files/ never holds one name twice); replaced versions
 * stay in .trash/ only.  info/ lists, for each, a .trashinfo made from its
 * tombstone: Path= from the folder rows the trashed file keeps, DeletionDate=
 * from tombstoned_at in the mount's local time.  So the trash window and
 * .trash/ always agree, across mounts and restarts, with nothing stored.
 *   - a rename INTO files/ is the source's unlink (fs_ns_unlink: a tombstone
 *     exactly as rm makes, gallery and plain-file rules included); the name
 *     the trasher picked (gio's "x.2.jpg") is not kept: the file shows under
 *     its .trash/ name and info/ follows it;
 *   - a .trashinfo a program writes before its rename is kept in memory by
 *     this mount (struct pending) and checked at close; the rename that
 *     trashes its file drops it (the made one takes over);
 *   - a rename OUT of files/ is a move out of .trash/ (a restore);
 *   - unlink in files/, or a rename into expunged/, ends the file's grace
 *     period at once (meta_trash_purge): see DECISIONS.md, "The desktop
 *     trash";
 *   - a folder is not trashed whole: the trash holds files.  An empty one is
 *     removed; another gets EXDEV, on which file managers offer to delete.
 * This file is the view (entries, listings, changes); its folders and
 * files are special nodes (fs_special.h), whose workers are
 * fs_xdgtrash_nodes.c: fs_ops.c calls them for an inode number of ours.
 */
#include "fs/fs_xdgtrash.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_ns.h"
#include "fs/fs_variants.h"
#include "meta/meta_trash.h"
#include "util/log.h"
#include "util/name.h"

#define PAGE 256
#define INFO_EXT ".trashinfo"
#define PENDING_MAX 1024		/* pending .trashinfo files per mount */

static const struct meta_dir trash_dir = { META_PLACE_TRASH, META_INO_TRASH };

uint64_t xdg_ino(enum xkind k, uint64_t base)
{
	return FS_VINO_TAG | ((uint64_t)k << 56) | (base & FS_VINO_BASE_MAX);
}

/* The kind of INO (0: not ours), with its base. */
enum xkind xdg_kind(uint64_t ino, uint64_t *base)
{
	uint64_t k = (ino >> 56) & 0x3f;

	if (!(ino & FS_VINO_TAG) || (ino >> 63) || k < X_TOP || k > X_PENDING)
		return 0;
	*base = ino & FS_VINO_BASE_MAX;
	return (enum xkind)k;
}

int xdg_is_dir(enum xkind k)
{
	return k >= X_TOP && k <= X_EXPUNGED;
}

/* --- the .trashinfo format ------------------------------------------------ */

int fs_xdg_info_text(const char *path, const struct timespec *deleted, char *out, size_t len)
{
	char *esc = g_uri_escape_string(path, "/", FALSE);
	char date[32];
	struct tm tm;
	time_t t = deleted->tv_sec;
	int n;

	if (!esc)
		return -ENOMEM;
	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(out, len, "[Trash Info]\nPath=%s\nDeletionDate=%s\n", esc, date);
	g_free(esc);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

int fs_xdg_info_check(const char *data, size_t len, char *why, size_t wlen)
{
	GKeyFile *kf = g_key_file_new();
	GError *err = NULL;
	char *path = NULL, *raw = NULL, *date = NULL;
	const char *end;
	struct tm tm;
	int rc = -EINVAL;

	if (memchr(data, '\0', len))
		snprintf(why, wlen, "it holds a NUL byte");
	else if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &err))
		snprintf(why, wlen, "not a key file (%s)", err->message);
	else if (!g_key_file_has_group(kf, "Trash Info"))
		snprintf(why, wlen, "no [Trash Info] group");
	else if (!(path = g_key_file_get_value(kf, "Trash Info", "Path", NULL)) || !*path)
		snprintf(why, wlen, "no Path= in [Trash Info]");
	else if (!(raw = g_uri_unescape_string(path, NULL)) || !*raw)
		snprintf(why, wlen, "Path= is not URL-escaped ('%.64s')", path);
	else if (!(date = g_key_file_get_value(kf, "Trash Info", "DeletionDate", NULL)))
		snprintf(why, wlen, "no DeletionDate= in [Trash Info]");
	else if (memset(&tm, 0, sizeof(tm)), !(end = strptime(date, "%Y-%m-%dT%H:%M:%S", &tm)) || *end)
		snprintf(why, wlen, "DeletionDate= is not YYYY-MM-DDThh:mm:ss ('%.32s')", date);
	else
		rc = 0;
	if (err)
		g_error_free(err);
	g_free(path);
	g_free(raw);
	g_free(date);
	g_key_file_free(kf);
	return rc;
}

/* --- entries ------------------------------------------------------------- */

void xdg_dir_stat(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0700;	/* as the specification asks, and KIO checks */
	st->st_nlink = 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_mtim = st->st_ctim = st->st_atim = fs->mounted_at;
}

static void xdg_info_stat(struct mvfs *fs, uint64_t ino, size_t len, const struct timespec *t, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)len;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim = st->st_ctim = st->st_atim = *t;
}

/* An entry the kernel holds (its lookup count goes up) and does not cache
 * by name: names here follow .trash/'s, which change with it. */
int xdg_entry(struct mvfs *fs, const struct stat *st, int cache, struct fuse_entry_param *e)
{
	fs_ns_entry(fs, st, e);
	if (!cache)
		e->entry_timeout = 0;
	return fs_inode_get(fs, st->st_ino, 1, 0) ? 0 : -ENOMEM;
}

/* The whole file shown as NAME in .trash/ (not a replaced version).  A
 * twin's name (x~56e4.jpg) finds its file also once it shows as the plain
 * name (x.jpg: the older twin left the trash): a trash window that listed
 * both, then empties or restores them one by one, still names each right.
 * (A name only ever changes that way: a twin's suffix is its own.) */
static int xdg_trashed(struct mvfs *fs, const char *name, struct meta_file *f)
{
	char base[NAME_MAX_BYTES + 1], hex[NAME_TWIN_HEX + 1], twin[NAME_MAX_BYTES + 1];
	int rc = fs_ns_check_existing(name);

	if (rc == 0)
		rc = meta_lookup(fs->meta, &trash_dir, name, f);
	if (rc == -ENOENT && name_twin_parse(name, base, hex) && meta_lookup(fs->meta, &trash_dir, base, f) == 0) {
		name_twin(f->display_name, f->memory_id, twin);
		rc = strcmp(twin, name) == 0 ? 0 : -ENOENT;
	}
	if (rc == 0 && (f->is_version || !fs_ns_visible(fs, f)))
		rc = -ENOENT;
	return rc;
}

/* The made .trashinfo of trashed file INO: its text into OUT (LEN). */
int xdg_info_of(struct mvfs *fs, uint64_t ino, char *out, size_t len, struct timespec *deleted)
{
	struct meta_origin *o = malloc(sizeof(*o));
	int got = 0, rc;

	if (!o)
		return -ENOMEM;
	rc = meta_trash_origins(fs->meta, &ino, 1, o, &got);
	if (rc == 0 && got == 0)
		rc = -ENOENT;
	if (rc == 0 && (rc = fs_xdg_info_text(o->path, &o->deleted, out, len)) >= 0 && deleted)
		*deleted = o->deleted;
	free(o);
	return rc;
}

/* The name of the file whose .trashinfo is NAME, into BASE; 0 or -ENOENT. */
static int xdg_info_base(const char *name, char *base)
{
	size_t n = strlen(name), e = strlen(INFO_EXT);

	if (n <= e || strcmp(name + n - e, INFO_EXT) != 0)
		return -ENOENT;
	snprintf(base, NAME_MAX_BYTES + 1, "%.*s", (int)(n - e), name);
	return 0;
}

/* Pending .trashinfo NAME or ID (under the lock), or NULL. */
struct pending *xdg_pending_find(struct fs_xdg *x, const char *name, uint64_t id)
{
	for (struct pending *p = x->pending; p; p = p->next)
		if (name ? strcmp(p->name, name) == 0 : p->id == id)
			return p;
	return NULL;
}

void xdg_pending_drop(struct fs_xdg *x, struct pending *gone)
{
	for (struct pending **pp = &x->pending; *pp; pp = &(*pp)->next) {
		if (*pp == gone) {
			*pp = gone->next;
			free(gone->data);
			free(gone);
			x->npending--;
			return;
		}
	}
}

static void xdg_pending_stat(struct mvfs *fs, const struct pending *p, struct stat *st)
{
	xdg_info_stat(fs, xdg_ino(X_PENDING, p->id), p->len, &fs->mounted_at, st);
}

/* The attributes of our INO (kind K, base BASE). */
int xdg_getattr(struct mvfs *fs, uint64_t ino, enum xkind k, uint64_t base, struct stat *st)
{
	char text[META_ORIGIN_MAX * 3 + 128];
	struct timespec t;
	struct pending *p;
	int rc = 0;

	if (xdg_is_dir(k)) {
		xdg_dir_stat(fs, ino, st);
		return 0;
	}
	if (k == X_INFO_FILE) {
		if ((rc = xdg_info_of(fs, base, text, sizeof(text), &t)) < 0)
			return rc;
		xdg_info_stat(fs, ino, (size_t)rc, &t, st);
		return 0;
	}
	pthread_mutex_lock(&fs->xdg->lock);
	if ((p = xdg_pending_find(fs->xdg, NULL, base)) != NULL)
		xdg_pending_stat(fs, p, st);
	else
		rc = -ENOENT;
	pthread_mutex_unlock(&fs->xdg->lock);
	return rc;
}

int xdg_lookup(struct mvfs *fs, enum xkind k, const char *name, struct fuse_entry_param *e)
{
	static const char *const subdirs[] = { "files", "info", "expunged" };
	char base[NAME_MAX_BYTES + 1], text[META_ORIGIN_MAX * 3 + 128];
	struct timespec t;
	struct meta_file f;
	struct pending *p;
	struct stat st;
	int rc;

	switch (k) {
	case X_TOP:
		for (int i = 0; i < 3; i++) {
			if (strcmp(name, subdirs[i]) == 0) {
				xdg_dir_stat(fs, xdg_ino(X_FILES + i, 0), &st);
				return xdg_entry(fs, &st, 1, e);
			}
		}
		return -ENOENT;
	case X_FILES:
		if ((rc = xdg_trashed(fs, name, &f)) != 0)
			return rc;
		fs_file_stat(fs, &f, fs_inode_find(fs, f.ino), &st);
		return xdg_entry(fs, &st, 0, e);
	case X_INFO:
		pthread_mutex_lock(&fs->xdg->lock);
		if ((p = xdg_pending_find(fs->xdg, name, 0)) != NULL)
			xdg_pending_stat(fs, p, &st);
		pthread_mutex_unlock(&fs->xdg->lock);
		if (p)
			return xdg_entry(fs, &st, 0, e);
		if ((rc = xdg_info_base(name, base)) != 0 || (rc = xdg_trashed(fs, base, &f)) != 0)
			return rc;
		if ((rc = xdg_info_of(fs, f.ino, text, sizeof(text), &t)) < 0)
			return rc;
		xdg_info_stat(fs, xdg_ino(X_INFO_FILE, f.ino), (size_t)rc, &t, &st);
		return xdg_entry(fs, &st, 0, e);
	case X_EXPUNGED:
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
}

/* --- listings -------------------------------------------------------------- */

struct xent {
	char name[NAME_MAX_BYTES + 1];
	struct stat st;
	int counted;			/* the kernel holds the inode after readdirplus */
};

struct xdir {
	struct fs_open_dir open;	/* first: the mount's list of open folders */
	struct mvfs *fs;
	uint64_t ino;
	enum xkind kind;
	pthread_mutex_t lock;
	off_t next_off;
	struct meta_cursor cursor;
	struct meta_file *files;
	struct meta_origin *origins;
	struct xent *ents;
	int nent, pos, eof, pending_done;
};

static void xdir_rewind(struct xdir *d)
{
	d->next_off = 0;
	memset(&d->cursor, 0, sizeof(d->cursor));
	d->nent = d->pos = d->eof = d->pending_done = 0;
}

/* The trash's next page: its whole files as files/ or info/ shows them. */
static int page_of_trash(struct xdir *d)
{
	struct mvfs *fs = d->fs;
	uint64_t inos[PAGE];
	int n = 0, k = 0, got = 0, rc;

	if ((rc = meta_list(fs->meta, &trash_dir, &d->cursor, d->files, PAGE, &n)) != 0)
		return rc;
	d->eof = n < PAGE || d->cursor.versions;
	for (int i = 0; i < n; i++)
		if (!d->files[i].is_version && fs_ns_visible(fs, &d->files[i]))
			inos[k++] = d->files[i].ino;
	if (d->kind == X_FILES) {
		for (int i = 0; i < n; i++) {
			struct meta_file *f = &d->files[i];

			if (f->is_version || !fs_ns_visible(fs, f))
				continue;
			snprintf(d->ents[d->nent].name, sizeof(d->ents[0].name), "%s", f->name);
			fs_file_stat(fs, f, fs_inode_find(fs, f->ino), &d->ents[d->nent].st);
			d->ents[d->nent++].counted = 1;
		}
		return 0;
	}
	if (k && (rc = meta_trash_origins(fs->meta, inos, k, d->origins, &got)) != 0)
		return rc;
	for (int i = 0; i < n; i++) {	/* in the trash's order */
		const struct meta_file *f = &d->files[i];
		char text[META_ORIGIN_MAX * 3 + 128];
		struct xent *e = &d->ents[d->nent];
		int j, len;

		for (j = 0; j < got && d->origins[j].ino != f->ino; j++)
			;
		if (f->is_version || j == got)
			continue;
		if (snprintf(e->name, sizeof(e->name), "%s" INFO_EXT, f->name) >= (int)sizeof(e->name))
			continue;	/* no room for the suffix: files/ shows it alone */
		if ((len = fs_xdg_info_text(d->origins[j].path, &d->origins[j].deleted, text, sizeof(text))) < 0)
			continue;
		xdg_info_stat(fs, xdg_ino(X_INFO_FILE, f->ino), (size_t)len, &d->origins[j].deleted, &e->st);
		e->counted = 1;
		d->nent++;
	}
	return 0;
}

/* The pending .trashinfo files, after info/'s made ones. */
static void page_of_pending(struct xdir *d)
{
	struct fs_xdg *x = d->fs->xdg;

	pthread_mutex_lock(&x->lock);
	for (struct pending *p = x->pending; p && d->nent < PAGE; p = p->next) {
		snprintf(d->ents[d->nent].name, sizeof(d->ents[0].name), "%s", p->name);
		xdg_pending_stat(d->fs, p, &d->ents[d->nent].st);
		d->ents[d->nent++].counted = 1;
	}
	pthread_mutex_unlock(&x->lock);
	d->pending_done = 1;
}

/* Fills the next page: 1 when d->pos points at an xdg_entry, 0 at the end. */
static int xdir_fill(struct xdir *d)
{
	static const char *const subdirs[] = { "files", "info" };
	int rc;

	while (d->pos >= d->nent) {
		d->nent = d->pos = 0;
		if (d->kind == X_TOP && !d->eof) {
			for (int i = 0; i < 2; i++) {
				snprintf(d->ents[i].name, sizeof(d->ents[0].name), "%s", subdirs[i]);
				xdg_dir_stat(d->fs, xdg_ino(X_FILES + i, 0), &d->ents[i].st);
				d->ents[i].counted = 1;
			}
			d->nent = 2;
			d->eof = 1;
		} else if ((d->kind == X_FILES || d->kind == X_INFO) && !d->eof) {
			if ((rc = page_of_trash(d)) != 0)
				return rc;
		} else if (d->kind == X_INFO && !d->pending_done) {
			page_of_pending(d);
		} else {
			return 0;
		}
	}
	return 1;
}

static void xdg_dir_free(struct fs_open_dir *od)
{
	struct xdir *d = (struct xdir *)od;

	pthread_mutex_destroy(&d->lock);
	free(d->files);
	free(d->origins);
	free(d->ents);
	free(d);
}

int xdg_dir_open(struct mvfs *fs, uint64_t ino, enum xkind k, struct xdir **out)
{
	struct xdir *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->files = malloc(PAGE * sizeof(*d->files));
	d->origins = malloc(PAGE * sizeof(*d->origins));
	d->ents = malloc(PAGE * sizeof(*d->ents));
	if (!d->files || !d->origins || !d->ents) {
		free(d->files);
		free(d->origins);
		free(d->ents);
		free(d);
		return -ENOMEM;
	}
	d->fs = fs;
	d->ino = ino;
	d->kind = k;
	pthread_mutex_init(&d->lock, NULL);
	fs_open_dir_track(fs, &d->open, xdg_dir_free);
	*out = d;
	return 0;
}

void xdg_dir_close(struct xdir *d)
{
	fs_open_dir_untrack(d->fs, &d->open);
	xdg_dir_free(&d->open);
}

int xdg_dir_read(fuse_req_t req, struct xdir *d, off_t off, char *buf, size_t size, int plus, size_t *used)
{
	struct mvfs *fs = d->fs;
	size_t len = 0;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (off != d->next_off)
		xdir_rewind(d);
	for (;;) {
		struct fuse_entry_param e;
		const char *name;
		int counted = 0;
		size_t n;

		if (d->next_off < 2) {
			name = d->next_off == 0 ? "." : "..";
			xdg_dir_stat(fs, d->next_off == 0 ? d->ino : xdg_ino(X_TOP, 0), &e.attr);
			if (d->next_off == 1 && d->kind == X_TOP)
				fs_ns_dir_stat(fs, META_INO_ROOT, NULL, &e.attr);
		} else {
			if ((rc = xdir_fill(d)) <= 0)
				break;
			rc = 0;
			name = d->ents[d->pos].name;
			e.attr = d->ents[d->pos].st;
			counted = d->ents[d->pos].counted;
		}
		if (off > d->next_off) {	/* skipping forward after a rewind */
			if (d->next_off >= 2)
				d->pos++;
			d->next_off++;
			continue;
		}
		fs_ns_entry(fs, &e.attr, &e);
		if (d->kind != X_TOP)
			e.entry_timeout = 0;
		if (!counted)
			e.ino = 0;
		n = plus ? fuse_add_direntry_plus(req, buf + len, size - len, name, &e, d->next_off + 1)
			 : fuse_add_direntry(req, buf + len, size - len, name, &e.attr, d->next_off + 1);
		if (n > size - len)
			break;
		if (plus && counted && !fs_inode_get(fs, e.attr.st_ino, 1, 0)) {
			rc = -ENOMEM;
			break;
		}
		len += n;
		if (d->next_off >= 2)
			d->pos++;
		d->next_off++;
	}
	pthread_mutex_unlock(&d->lock);
	*used = len;
	return len > 0 ? 0 : rc < 0 ? rc : 0;
}

/* --- changes --------------------------------------------------------------- */

int xdg_refuse(const char *what, const char *name, const char *why)
{
	log_warn("cannot %s '%s' in the desktop trash: %s", what, name, why);
	return -EPERM;
}

/* Trashes NAME of folder PARENT as the desktop asked, by a rename to
 * files/NEWNAME: as rm does (or rmdir, for an empty folder). */
static int trash_in(struct mvfs *fs, uint64_t parent, const char *name, const char *newname)
{
	struct fs_node n;
	struct meta_dir in;
	enum fs_vkind vk;
	uint64_t vb;
	struct pending *p;
	char info[NAME_MAX_BYTES + sizeof(INFO_EXT)];
	int rc;

	if (fs_vino_split(parent, &vk, &vb)) {
		log_warn("cannot trash '%s': .display/ and .thumb/ are made by mvaultfs and read-only", name);
		return -EROFS;
	}
	if ((rc = fs_node_of(fs, parent, &n)) != 0)
		return rc;
	if (fs_ns_folders_in(&n, &in) && meta_folder_lookup(fs->meta, &in, name, NULL) == 0) {
		rc = fs_ns_rmdir(fs, parent, name);
		if (rc == -ENOTEMPTY) {
			log_warn("cannot trash folder '%s' whole: the trash holds files; trash the files in it,"
				 " or delete it (rm -r puts every file in it into the trash)", name);
			rc = -EXDEV;
		}
	} else {
		rc = fs_ns_unlink(fs, parent, name);
	}
	if (rc)
		return rc;
	/* the trasher's .trashinfo: the one made from the tombstone replaces it */
	snprintf(info, sizeof(info), "%s" INFO_EXT, newname);
	pthread_mutex_lock(&fs->xdg->lock);
	if ((p = xdg_pending_find(fs->xdg, info, 0)) != NULL)
		xdg_pending_drop(fs->xdg, p);
	pthread_mutex_unlock(&fs->xdg->lock);
	return 0;
}

/* Ends the grace period of NAME of files/ ("Empty trash", "Delete"). */
static int purge(struct mvfs *fs, const char *name)
{
	struct meta_file f;
	int rc = xdg_trashed(fs, name, &f);

	if (rc == 0)
		rc = meta_trash_purge(fs->meta, f.ino);
	if (rc == 0) {
		log_info("'%s' emptied from the trash: its bytes go at the deletion job's next sweep", name);
		fs_ns_dirs_changed(fs, META_INO_TRASH, 0);
	}
	return rc;
}

int xdg_rename(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
		    unsigned flags)
{
	uint64_t b1, b2;
	enum xkind from = xdg_kind(parent, &b1), to = xdg_kind(newparent, &b2);
	struct pending *p, *q;
	int rc = 0;

	if (!from && to == X_FILES)
		return trash_in(fs, parent, name, newname);
	if (from == X_FILES && to == X_EXPUNGED)
		return purge(fs, name);
	if (from == X_FILES && !to) {	/* a restore: a move out of .trash/ */
		struct meta_file f;

		if ((rc = xdg_trashed(fs, name, &f)) != 0)
			return rc;
		return fs_ns_rename(fs, META_INO_TRASH, f.name, newparent, newname, flags);
	}
	if (from == X_INFO && to == X_INFO) {	/* a .trashinfo written aside, then renamed into place */
		pthread_mutex_lock(&fs->xdg->lock);
		p = xdg_pending_find(fs->xdg, name, 0);
		q = xdg_pending_find(fs->xdg, newname, 0);
		if (!p)
			rc = -EPERM;
		else if (q && q != p && (flags & RENAME_NOREPLACE))
			rc = -EEXIST;
		if (rc == 0 && q && q != p)
			xdg_pending_drop(fs->xdg, q);
		if (rc == 0)
			snprintf(p->name, sizeof(p->name), "%s", newname);
		pthread_mutex_unlock(&fs->xdg->lock);
		if (rc == 0 && !p)
			rc = -ENOENT;
		if (rc == -EPERM)
			xdg_refuse("rename", name, "the .trashinfo of a trashed file goes with it");
		return rc;
	}
	return xdg_refuse("rename", name, "files go into files/ by a rename, and out of it by a rename to where they"
		      " belong (or into expunged/ to delete them)");
}

int xdg_unlink(struct mvfs *fs, enum xkind k, const char *name)
{
	char base[NAME_MAX_BYTES + 1];
	struct meta_file f;
	struct pending *p;

	switch (k) {
	case X_FILES:
		return purge(fs, name);
	case X_INFO:
		pthread_mutex_lock(&fs->xdg->lock);
		if ((p = xdg_pending_find(fs->xdg, name, 0)) != NULL)
			xdg_pending_drop(fs->xdg, p);
		pthread_mutex_unlock(&fs->xdg->lock);
		if (p)
			return 0;
		if (xdg_info_base(name, base) == 0 && xdg_trashed(fs, base, &f) == 0)
			return xdg_refuse("remove", name, "it says where a trashed file was and goes with it: remove"
				      " files/ entry to delete the file, or rename it out to restore it");
		return -ENOENT;
	case X_TOP:
		return -EISDIR;
	default:
		return -ENOENT;
	}
}

/* A new .trashinfo NAME in info/, being written: its attributes into ST. */
int xdg_pending_new(struct mvfs *fs, const char *name, struct stat *st)
{
	char base[NAME_MAX_BYTES + 1];
	struct fs_xdg *x = fs->xdg;
	struct meta_file f;
	struct pending *p;
	int rc;

	if ((rc = fs_ns_check_name(name)) != 0)
		return rc;
	if (xdg_info_base(name, base) == 0 && xdg_trashed(fs, base, &f) == 0)
		return -EEXIST;
	if (!(p = calloc(1, sizeof(*p))))
		return -ENOMEM;
	snprintf(p->name, sizeof(p->name), "%s", name);
	pthread_mutex_lock(&x->lock);
	if (xdg_pending_find(x, name, 0)) {
		rc = -EEXIST;
	} else if (x->npending >= PENDING_MAX) {
		log_warn("cannot make '%s' in the desktop trash: %d .trashinfo files wait for their rename"
			 " already", name, PENDING_MAX);
		rc = -ENOSPC;
	} else {
		p->id = ++x->serial;
		p->next = x->pending;
		x->pending = p;
		x->npending++;
		xdg_pending_stat(fs, p, st);
	}
	pthread_mutex_unlock(&x->lock);
	if (rc)
		free(p);
	return rc;
}
