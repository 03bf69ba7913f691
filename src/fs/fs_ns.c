/*
 * fs_ns.c - the tree the kernel sees, and how its names become entries.
 *
 *   /                       virtual: library, workspace, collections, galleries, .trash
 *   /library/A/B/NAME       the person's tree: folders and files, any depth
 *   /workspace/A/NAME
 *   /.trash/NAME            files only
 *   /collections/C/NAME     collections/ and galleries/ hold folders, which hold files
 *   /galleries/G/NAME
 *
 * FS_NODE_FILES folders hold files; those of the tree (library/, workspace/
 * and below) hold folders too, listed first.  The top-level folders have
 * fixed inode numbers below META_INO_FIRST (library/ and workspace/ keep
 * their mode and times in the database all the same); files, folders,
 * collections and galleries have the numbers the database gave them.  The
 * daemon remembers which of those a number is when it hands it to the
 * kernel (fs_inode.place), so a request on a folder costs no query to find
 * out what the folder is.
 */
#include "fs/fs_ns.h"
#include "fs/fs_thumbs.h"
#include "fs/fs_variants.h"
#include "fs/fs_xdgtrash.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/name.h"

/* Rows a listing page asks for: LIST_PAGE first (about what the kernel's
 * first READDIRPLUS of a folder shows), then each page of files four times
 * the last, up to LIST_PAGE_MAX.  Each page is a statement the server
 * plans afresh (0021): a 10,000-file folder took 40 pages of 256, ~15 ms
 * of server time each; it takes 7 now (files_page). */
#define LIST_PAGE 256
#define LIST_PAGE_MAX 2048

struct vdir {
	uint64_t ino;
	const char *name;
	enum fs_node_kind kind;
	enum meta_place place;		/* of its files, or of its folders */
};

static const struct vdir top_dirs[] = {
	{ META_INO_LIBRARY, "library", FS_NODE_FILES, META_PLACE_LIBRARY },
	{ META_INO_WORKSPACE, "workspace", FS_NODE_FILES, META_PLACE_WORKSPACE },
	{ META_INO_COLLECTIONS, "collections", FS_NODE_FOLDERS, META_PLACE_COLLECTION },
	{ META_INO_GALLERIES, "galleries", FS_NODE_FOLDERS, META_PLACE_GALLERY },
	{ META_INO_TRASH, ".trash", FS_NODE_FILES, META_PLACE_TRASH },
};
#define NTOP (sizeof(top_dirs) / sizeof(top_dirs[0]))

static const struct vdir *top_dir(uint64_t ino)
{
	for (size_t i = 0; i < NTOP; i++)
		if (top_dirs[i].ino == ino)
			return &top_dirs[i];
	return NULL;
}

int fs_node_of(struct mvfs *fs, uint64_t ino, struct fs_node *n)
{
	const struct vdir *v = top_dir(ino);
	struct fs_inode *in;
	struct meta_folder f;

	memset(n, 0, sizeof(*n));
	if (ino == META_INO_ROOT) {
		n->kind = FS_NODE_ROOT;
		n->name = "/";
		return 0;
	}
	if (v) {
		n->kind = v->kind;
		n->name = v->name;
		if (v->kind == FS_NODE_FILES)
			n->dir = (struct meta_dir){ .place = v->place, .ino = ino };
		else
			n->folders = v->place;
		return 0;
	}
	if (ino < META_INO_FIRST)
		return -ENOENT;
	in = fs_inode_find(fs, ino);
	if (in && in->place == 0) {
		n->kind = in->plain ? FS_NODE_PLAIN : FS_NODE_FILE;
		return 0;
	}
	if (in) {
		n->kind = FS_NODE_FILES;
		n->dir = (struct meta_dir){ .place = in->place, .ino = ino };
		return 0;
	}
	/* Not handed out by this mount (should not happen): ask. */
	if (meta_folder_get(fs->meta, ino, &f) == 0) {
		n->kind = FS_NODE_FILES;
		n->dir = (struct meta_dir){ .place = f.place, .ino = ino };
		return 0;
	}
	n->kind = FS_NODE_FILE;
	return 0;
}

void fs_ns_dir_stat(struct mvfs *fs, uint64_t ino, const struct meta_folder *f, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | (f ? f->mode : ino == META_INO_TRASH ? 0555 : 0755);
	st->st_nlink = f ? f->nlink : 2;
	if (ino == META_INO_ROOT)
		st->st_nlink = 2 + NTOP;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_mtim = f ? f->mtime : fs->mounted_at;
	st->st_ctim = f ? f->ctime : fs->mounted_at;
	st->st_atim = f ? f->atime : fs->mounted_at;
	if (f)
		fs_local_dir_times(fs, ino, st);	/* a file made here, not recorded yet */
}

void fs_ns_view_entry(struct mvfs *fs, const struct meta_dir *dir, struct fuse_entry_param *e)
{
	if (dir->place == META_PLACE_COLLECTION || dir->place == META_PLACE_GALLERY)
		e->entry_timeout = 0;
	else if ((dir->place == META_PLACE_LIBRARY || dir->place == META_PLACE_WORKSPACE) && fs->known &&
		 fs->cfg.tree_timeout > 0)
		e->entry_timeout = e->attr_timeout = fs->cfg.tree_timeout;
}

int fs_ns_is_tree(const struct fs_node *n)
{
	return n->kind == FS_NODE_FILES &&
	       (n->dir.place == META_PLACE_LIBRARY || n->dir.place == META_PLACE_WORKSPACE);
}

int fs_ns_folders_in(const struct fs_node *n, struct meta_dir *in)
{
	if (fs_ns_is_tree(n)) {
		*in = n->dir;
		return 1;
	}
	if (n->kind == FS_NODE_FOLDERS) {
		*in = (struct meta_dir){ .place = n->folders,
					 .ino = n->folders == META_PLACE_COLLECTION ? META_INO_COLLECTIONS
										    : META_INO_GALLERIES };
		return 1;
	}
	return 0;
}

/* The attributes of folder INO: library/ and workspace/ and the folders
 * below them from the database, the other top-level folders virtual. */
static int dir_getattr(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	struct meta_folder f;
	int rc;

	if (ino < META_INO_FIRST && ino != META_INO_LIBRARY && ino != META_INO_WORKSPACE) {
		fs_ns_dir_stat(fs, ino, NULL, st);
		return 0;
	}
	if (fs_known_folder_get(fs, ino, &f) == 0) {
		fs_ns_dir_stat(fs, ino, &f, st);
		return 0;
	}
	uint64_t gen = fs_known_folder_gen(fs);

	rc = meta_folder_get(fs->meta, ino, &f);
	if (rc == 0) {
		fs_known_folder_put(fs, gen, &f);
		fs_ns_dir_stat(fs, ino, &f, st);
	}
	return rc;
}

void fs_ns_dirs_changed(struct mvfs *fs, uint64_t a, uint64_t b)
{
	fs_known_folder_drop(fs, a);
	if (b)
		fs_known_folder_drop(fs, b);
	fs_ns_dirs_touched(fs, a, b);
}

void fs_ns_dirs_touched(struct mvfs *fs, uint64_t a, uint64_t b)
{
	fs_known_relist(fs);
	if (!fs->se)
		return;
	fuse_lowlevel_notify_inval_inode(fs->se, a, -1, 0);
	if (b && b != a)
		fuse_lowlevel_notify_inval_inode(fs->se, b, -1, 0);
}

void fs_ns_entry(struct mvfs *fs, const struct stat *st, struct fuse_entry_param *e)
{
	struct stat copy = *st;

	memset(e, 0, sizeof(*e));
	e->ino = copy.st_ino;
	e->attr = copy;
	e->attr_timeout = fs->cfg.attr_timeout;
	e->entry_timeout = fs->cfg.entry_timeout;
}

/* Whether this mount has row F's content itself: being written here, or
 * closed here, whatever the row read a moment ago says.  In this order: a
 * commit seals into the cache before it closes the staging file, so no
 * moment falls between the two. */
static int held_here(struct mvfs *fs, const struct meta_file *f)
{
	struct fs_inode *in = fs_inode_find(fs, f->ino);
	int staged = 0;

	if (in) {
		pthread_mutex_lock(&in->lock);
		staged = in->stage_fd >= 0;
		pthread_mutex_unlock(&in->lock);
	}
	return staged || cache_holds_file(fs->cache, f->ino);
}

/* A version another mount closed is on that mount's disk only until its
 * upload is done.  Meanwhile a file that had an uploaded version shows it
 * here (size, times, hash, bytes; DECISIONS.md, "A rewrite in flight
 * elsewhere"), and a new file does not show.  A created file whose writer
 * died before its first commit stays invisible (its rows are removed by
 * the next create of that name, or expire with their upload session). */
int fs_ns_visible(struct mvfs *fs, struct meta_file *f)
{
	if (f->upload == META_UPLOAD_COMPLETED || held_here(fs, f))
		return 1;
	if (!f->settled_sha256[0])
		return 0;
	f->size = f->settled_size;
	snprintf(f->sha256, sizeof(f->sha256), "%s", f->settled_sha256);
	snprintf(f->key, sizeof(f->key), "%s", f->settled_key);
	f->upload = META_UPLOAD_COMPLETED;
	f->mtime = f->settled_mtime;
	f->ctime = f->settled_ctime;
	f->settled_sha256[0] = '\0';
	return 1;
}

/* The folder of files PARENT is, for putting a file NAME there by WHAT
 * ("create", "link", ...): 0 with *DIR, or -errno after a log line. */
int fs_ns_files_dir(struct mvfs *fs, uint64_t parent, const char *what, const char *name,
		     struct meta_dir *dir)
{
	struct fs_node n;
	int rc = fs_node_of(fs, parent, &n);

	if (rc)
		return rc;
	switch (n.kind) {
	case FS_NODE_FILES:
		*dir = n.dir;
		return 0;
	case FS_NODE_ROOT:
		log_warn("cannot %s '%s' at the top level: it holds only library, workspace, collections,"
			 " galleries and .trash", what, name);
		return -EPERM;
	case FS_NODE_FOLDERS:
		log_warn("cannot %s '%s' in %s/: it holds folders only (mkdir one, then put files in it)",
			 what, name, n.name);
		return -EPERM;
	default:
		return -ENOTDIR;
	}
}

int fs_ns_check_name(const char *name)
{
	const char *why;
	int rc = name_check(name, &why);

	if (rc)
		log_warn("refusing the name '%.64s%s': %s", name, strlen(name) > 64 ? "..." : "", why);
	return rc;
}

int fs_ns_check_existing(const char *name)
{
	int rc = name_check(name, NULL);

	return rc == -ENAMETOOLONG ? rc : rc ? -ENOENT : 0;
}

int fs_ns_folder_entry(struct mvfs *fs, const struct meta_folder *f, struct fuse_entry_param *e)
{
	struct fs_inode *in = fs_inode_get(fs, f->ino, 1, 0);
	struct stat st;

	if (!in)
		return -ENOMEM;
	in->place = f->place;
	fs_ns_dir_stat(fs, f->ino, f, &st);
	fs_ns_entry(fs, &st, e);
	return 0;
}

/* Reads the next page of DIR's files from CURSOR into *FILES, grown to the
 * page's size (*CAP rows allocated); *WANT is the size of the page read
 * last, 0 at the start.  0 with *GOT rows (fewer than *WANT at the end),
 * or -errno. */
static int files_page(struct mvfs *fs, const struct meta_dir *dir, struct meta_cursor *cursor,
		      struct meta_file **files, int *cap, int *want, int *got)
{
	int next = *want <= 0 ? LIST_PAGE : *want * 4 > LIST_PAGE_MAX ? LIST_PAGE_MAX : *want * 4;

	if (next > *cap) {
		struct meta_file *grown = realloc(*files, (size_t)next * sizeof(**files));

		if (!grown)
			return -ENOMEM;
		*files = grown;
		*cap = next;
	}
	*want = next;
	return meta_list_entries(fs->meta, dir, cursor, *files, next, got);
}

/* The most names a folder may have for this mount to learn them all
 * (fs_known_fill_begin): past it, lookups ask the database as before. */
#define KNOWN_FILL_MAX 20000

/* Reads every name of tree folder INO (N, its folders IN): from then on a
 * lookup of any other name there needs no database (fs_local.c, "folders
 * whose every name is known here").  Best effort: on any failure the folder
 * is simply not known. */
static void known_fill(struct mvfs *fs, uint64_t ino, const struct fs_node *n, const struct meta_dir *in)
{
	struct meta_cursor cursor = { 0 };
	struct meta_folder *folders = NULL;
	struct meta_plain *plains = NULL;
	struct meta_file *files = NULL;
	char after[256] = "";
	uint64_t epoch;
	int got, total = 0, rc = 0, cap = 0, want = 0;

	if (!fs_known_fill_begin(fs, ino, &epoch))
		return;
	/* The names made here whose rows may not be read below, taken
	 * before the database is read: a file whose record commits meanwhile
	 * leaves them after its commit, so it is in one or the other (taken
	 * after the read, a record committed between the two was in
	 * neither, and its file was ENOENT here until the next forgetting:
	 * test_db_outage's restart during a copy lost sight of one that way) */
	fs_known_fill_local(fs, ino, epoch);
	if (!(folders = malloc(LIST_PAGE * sizeof(*folders))) || !(plains = malloc(LIST_PAGE * sizeof(*plains))))
		rc = -ENOMEM;
	for (got = LIST_PAGE; rc == 0 && got == LIST_PAGE && total <= KNOWN_FILL_MAX; total += got) {
		if ((rc = meta_folder_list(fs->meta, in, after, folders, LIST_PAGE, &got)) != 0)
			break;
		for (int i = 0; i < got; i++)
			fs_known_fill_add(fs, ino, epoch, folders[i].name);
		if (got > 0)
			snprintf(after, sizeof(after), "%s", folders[got - 1].name);
	}
	for (got = LIST_PAGE; rc == 0 && got == (want ? want : LIST_PAGE) && total <= KNOWN_FILL_MAX; total += got) {
		if ((rc = files_page(fs, &n->dir, &cursor, &files, &cap, &want, &got)) != 0)
			break;
		for (int i = 0; i < got; i++)
			fs_known_fill_add(fs, ino, epoch, files[i].name);
	}
	after[0] = '\0';
	for (got = LIST_PAGE; rc == 0 && got == LIST_PAGE && total <= KNOWN_FILL_MAX; total += got) {
		if ((rc = meta_plain_list(fs->meta, &n->dir, after, plains, LIST_PAGE, &got)) != 0)
			break;
		for (int i = 0; i < got; i++)
			fs_known_fill_add(fs, ino, epoch, plains[i].name);
		if (got > 0)
			snprintf(after, sizeof(after), "%s", plains[got - 1].name);
	}
	fs_known_fill_end(fs, ino, epoch, rc == 0 && total <= KNOWN_FILL_MAX);
	free(folders);
	free(files);
	free(plains);
}

int fs_ns_lookup(struct mvfs *fs, uint64_t parent, const char *name, struct fuse_entry_param *e)
{
	struct fs_node n;
	struct meta_folder folder;
	struct meta_dir in;
	struct meta_file f;
	struct stat st;
	enum fs_vkind vk;
	int rc;

	if ((rc = fs_node_of(fs, parent, &n)) != 0)
		return rc;
	if (n.kind == FS_NODE_FILE || n.kind == FS_NODE_PLAIN)
		return -ENOTDIR;
	if ((rc = fs_ns_check_existing(name)) != 0)
		return rc;
	switch (n.kind) {
	case FS_NODE_ROOT:
		/* the special node: the desktop trash (fs_xdgtrash.c) */
		if (fs_xdg_top_named(fs, parent, name))
			return fs_xdg_top_entry(fs, e);
		for (size_t i = 0; i < NTOP; i++) {
			if (strcmp(name, top_dirs[i].name) == 0) {
				if ((rc = dir_getattr(fs, top_dirs[i].ino, &st)) != 0)
					return rc;
				fs_ns_entry(fs, &st, e);
				return 0;
			}
		}
		return -ENOENT;
	case FS_NODE_FOLDERS:
		fs_ns_folders_in(&n, &in);
		rc = meta_folder_lookup(fs->meta, &in, name, &folder);
		return rc ? rc : fs_ns_folder_entry(fs, &folder, e);
	case FS_NODE_FILES:
		/* the special nodes: its variant folders (fs_variants.c) */
		if (n.dir.place != META_PLACE_TRASH && (vk = fs_variants_dir_named(name)) != 0)
			return fs_variants_dir_entry(fs, parent, vk, e);
		if (n.dir.place != META_PLACE_TRASH && name_is_plain(name) && !fs_known_absent(fs, parent, name)) {
			struct meta_plain p;

			rc = meta_plain_lookup(fs->meta, &n.dir, name, &p);
			if (rc != -ENOENT)
				return rc ? rc : fs_plain_entry(fs, &p, e);
		}
		if (fs_ns_folders_in(&n, &in)) {
			/* a file or a folder of the tree: one question */
			struct fs_inode *made = fs_local_lookup(fs, parent, name);
			int is_folder;

			if (made) {	/* made here, not in the database yet */
				fs_local_stat(fs, made, &st);
				fs_ns_entry(fs, &st, e);
				return 0;
			}
			if (fs_known_absent(fs, parent, name))	/* a folder made here */
				return -ENOENT;

			if (fs_ahead_find(fs, parent, name, &f) == 0) {
				rc = 0;
			} else {
				rc = meta_lookup_entry(fs->meta, &in, name, &f, &folder, &is_folder);
				if (rc == 0 && is_folder)
					return fs_ns_folder_entry(fs, &folder, e);
				if (rc == 0)	/* a rerun of a copy asks this for each file */
					fs_ahead_asked(fs, parent, &in, name);
				if (rc == -ENOENT)	/* a copy into it asks this before each file */
					known_fill(fs, parent, &n, &in);
			}
		} else {
			rc = meta_lookup(fs->meta, &n.dir, name, &f);
		}
		if (rc)
			return rc;
		if (!fs_ns_visible(fs, &f))
			return -ENOENT;
		fs_file_stat(fs, &f, fs_inode_find(fs, f.ino), &st);
		fs_ns_entry(fs, &st, e);
		fs_ns_view_entry(fs, &n.dir, e);
		return fs_inode_get(fs, f.ino, 1, 0) ? 0 : -ENOMEM;
	default:
		return -ENOTDIR;
	}
}

int fs_ns_getattr(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	struct fs_node n;
	int rc;

	if ((rc = fs_node_of(fs, ino, &n)) != 0)
		return rc;
	if (n.kind == FS_NODE_FILE)
		return fs_file_getattr(fs, ino, st);
	if (n.kind == FS_NODE_PLAIN)
		return fs_plain_getattr(fs, ino, st);
	return dir_getattr(fs, ino, st);
}

/* --- listings ------------------------------------------------------------ */

/* A page of files read on a thread of its own: its own rows, cursor and
 * answer (the thread touches nothing else of the folder). */
struct page_read {
	struct mvfs *fs;
	const struct meta_dir *dir;
	pthread_t thread;
	int running;			/* made, not joined */
	struct meta_cursor cursor;
	struct meta_file *files;
	int cap, want, got, rc;
	struct page_read *then;		/* NULL, or the page after, read next by the same thread
					 * when this one is full (its got -1 when not) */
};

/*
 * An open folder: a cursor into its listing and the page read last.
 * Entry offsets: 1 ".", 2 "..", then 3, 4, ... in listing order; a readdir
 * at another offset than the next one (a rewind or a seek) starts over.
 */
struct fs_dir {
	struct fs_open_dir open;	/* first: the mount's list of open folders */
	struct mvfs *fs;
	uint64_t ino;
	struct fs_node node;
	pthread_mutex_t lock;
	off_t next_off;
	/* files */
	struct meta_cursor cursor;
	struct meta_file *files;
	int files_cap, files_want;	/* rows allocated; the size of the page read last */
	/* the page of files after the one read last, read ahead while the
	 * kernel takes this one; and, in a folder of more than a first page,
	 * the first two pages of its second half (from the memory id halfway
	 * between the first page's last and the end), read beside the first
	 * half's pages and taken after them */
	struct page_read ahead, half, half2;
	enum { HALF_NONE, HALF_READING, HALF_NEXT, HALF_NEXT2, HALF_TAKEN } half_state;
	int files_done;			/* the page read last was the files' last */
	/* folders, listed before files in a folder of the tree */
	char folder_after[256];
	struct meta_folder *folders;
	/* plain files, listed after the files */
	char plain_after[256];
	struct meta_plain *plains;
	enum { PHASE_FOLDERS, PHASE_FILES, PHASE_PLAIN } phase;	/* what the next page holds */
	int page;			/* what the page read last holds */
	int npage, pos, eof;
	int keep;			/* 0, or 1 + fs_known_listing() of a tree folder */
};

static void dir_free(struct fs_open_dir *od);
static void read_start(struct fs_dir *d, struct page_read *pr, const struct meta_cursor *cursor, int want);

int fs_dir_open(struct mvfs *fs, uint64_t ino, struct fs_dir **out)
{
	struct fs_dir *d;
	int rc;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	if ((rc = fs_node_of(fs, ino, &d->node)) != 0 || d->node.kind == FS_NODE_FILE ||
	    d->node.kind == FS_NODE_PLAIN) {
		free(d);
		return rc ? rc : -ENOTDIR;
	}
	d->fs = fs;
	d->ino = ino;
	d->keep = fs_ns_is_tree(&d->node) ? 1 + fs_known_listing(fs, ino) : 0;
	pthread_mutex_init(&d->lock, NULL);
	fs_open_dir_track(fs, &d->open, dir_free);
	/* Its first page of files, read while the kernel opens it (and find
	 * asks statfs, and the folders are read): not when the kernel keeps
	 * what it listed before (keep 2), as it then asks for no entry. */
	if (d->node.kind == FS_NODE_FILES && d->keep != 2)
		read_start(d, &d->ahead, &d->cursor, 0);
	*out = d;
	return 0;
}

void fs_dir_cache(const struct fs_dir *d, struct fuse_file_info *fi)
{
	if (!d->keep || !d->fs->known || d->fs->cfg.tree_timeout <= 0)
		return;
	fi->cache_readdir = 1;
	fi->keep_cache = d->keep == 2;
}

void fs_dir_close(struct fs_dir *d)
{
	if (!d)
		return;
	/* the desktop thumbnails' scan of its files after the listing, not
	 * beside it: both read the same rows, and on a cold cache the scan
	 * made the listing's first page wait for the disk twice as long */
	if (fs_ns_is_tree(&d->node))
		fs_thumbs_seen(d->fs, d->ino);
	fs_open_dir_untrack(d->fs, &d->open);
	dir_free(&d->open);
}

static int read_join(struct page_read *pr);

static void dir_free(struct fs_open_dir *od)
{
	struct fs_dir *d = (struct fs_dir *)od;

	read_join(&d->ahead);
	read_join(&d->half);
	free(d->ahead.files);
	free(d->half.files);
	free(d->half2.files);
	free(d->files);
	free(d->folders);
	free(d->plains);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static void *read_main(void *arg)
{
	struct page_read *pr = arg;

	pr->rc = files_page(pr->fs, pr->dir, &pr->cursor, &pr->files, &pr->cap, &pr->want, &pr->got);
	if (pr->then) {
		struct page_read *t = pr->then;

		t->got = -1;
		if (pr->rc == 0 && pr->got == pr->want) {
			t->cursor = pr->cursor;
			t->want = pr->want;
			t->rc = files_page(pr->fs, pr->dir, &t->cursor, &t->files, &t->cap, &t->want, &t->got);
		}
	}
	return NULL;
}

/* Starts reading the page after CURSOR, the page before it having been of
 * WANT rows (0: none), into PR. */
static void read_start(struct fs_dir *d, struct page_read *pr, const struct meta_cursor *cursor, int want)
{
	pr->fs = d->fs;
	pr->dir = &d->node.dir;
	pr->cursor = *cursor;
	pr->want = want;
	if (pr->then) {
		pr->then->fs = d->fs;
		pr->then->dir = &d->node.dir;
	}
	pr->running = pthread_create(&pr->thread, NULL, read_main, pr) == 0;
}

/* Waits for PR's page: 1 when there was one (its answer in PR), else 0. */
static int read_join(struct page_read *pr)
{
	if (!pr->running)
		return 0;
	pthread_join(pr->thread, NULL);
	pr->running = 0;
	return 1;
}

/* Takes PR's page as the folder's page read last (the rows swap places). */
static int read_take(struct fs_dir *d, struct page_read *pr)
{
	struct meta_file *rows = d->files;
	int cap = d->files_cap;

	d->files = pr->files;
	d->files_cap = pr->cap;
	pr->files = rows;
	pr->cap = cap;
	d->cursor = pr->cursor;
	d->files_want = pr->want;
	d->npage = pr->got;
	return pr->rc;
}

/* The memory id halfway between memory id FROM, the last of a first page
 * of N files, and the end of them all, into OUT: 0, or -1 when the rest of
 * the folder is likely less than a page of LIST_PAGE_MAX (memory ids are
 * random: a folder's spread evenly, so the first page's share of the ids
 * is its share of the files). */
static int halfway(const char *from, int n, char *out, size_t len)
{
	char hex[17];
	size_t k = 0;
	uint64_t v;

	for (const char *p = from; *p && k < 16; p++)
		if (*p != '-')
			hex[k++] = *p;
	hex[k] = '\0';
	if (k < 16 || strspn(hex, "0123456789abcdef") != 16)
		return -1;
	v = strtoull(hex, NULL, 16);
	if (UINT64_MAX - v < 2 || (double)n * (double)(UINT64_MAX - v) < (double)LIST_PAGE_MAX * (double)v)
		return -1;
	v += (UINT64_MAX - v) / 2;
	snprintf(out, len, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-0000-000000000000", v >> 32,
		 (v >> 16) & 0xffff, v & 0xffff);
	return 0;
}

/* The next page of files into d->files: the one read ahead when there is
 * one, else read now; then, when it is a full page (more may follow), the
 * one after it starts.  A cold `find` of 10,000 files waited for each of
 * its 7 pages (~30 ms of the server's time each) between two READDIRPLUS
 * requests; now the server reads the next one while the kernel takes this
 * one.  After a full first page, when the rest looks like more than a
 * page of LIST_PAGE_MAX, the second half of the folder is read beside the
 * first (its first two pages of up to LIST_PAGE_MAX rows, then on as the
 * first half's pages were), on a second connection: two server processes
 * at work instead of one.  d->files_done says whether the page was the
 * files' last. */
static int files_next(struct fs_dir *d)
{
	int rc, first = d->files_want == 0;

	if (d->half_state == HALF_NEXT) {
		read_join(&d->half);
		rc = read_take(d, &d->half);
		d->half_state = d->half2.got >= 0 ? HALF_NEXT2 : HALF_TAKEN;
		log_debug("listing: a page of %d read ahead (second half)", d->npage);
	} else if (d->half_state == HALF_NEXT2) {
		rc = read_take(d, &d->half2);
		d->half_state = HALF_TAKEN;
		log_debug("listing: a page of %d read ahead (second half)", d->npage);
	} else if (read_join(&d->ahead)) {
		rc = read_take(d, &d->ahead);
		log_debug("listing: a page of %d read ahead", d->npage);
	} else {
		rc = files_page(d->fs, &d->node.dir, &d->cursor, &d->files, &d->files_cap, &d->files_want,
				&d->npage);
		log_debug("listing: a page of %d read while the kernel waited", d->npage);
	}
	if (rc)
		return rc;
	d->files_done = 0;
	if (d->npage == d->files_want) {
		if (first && d->half_state == HALF_NONE && d->node.dir.place != META_PLACE_TRASH &&
		    d->npage > 0 && halfway(d->files[d->npage - 1].memory_id, d->npage, d->cursor.until,
					    sizeof(d->cursor.until)) == 0) {
			struct meta_cursor from = { 0 };

			snprintf(from.memory_id, sizeof(from.memory_id), "%s", d->cursor.until);
			d->half.then = &d->half2;
			read_start(d, &d->half, &from, LIST_PAGE_MAX);
			d->half_state = HALF_READING;
		}
		if (d->half_state != HALF_NEXT2)	/* else that page is read */
			read_start(d, &d->ahead, &d->cursor, d->files_want);
	} else if (d->half_state == HALF_READING) {
		d->half_state = HALF_NEXT;	/* the first half is done */
	} else {
		/* the files' last page: the other pages' rows are not needed
		 * again (up to 4.4 MB each) unless the folder is read anew */
		d->files_done = 1;
		free(d->ahead.files);
		free(d->half.files);
		free(d->half2.files);
		d->ahead.files = d->half.files = d->half2.files = NULL;
		d->ahead.cap = d->half.cap = d->half2.cap = 0;
	}
	return 0;
}

static void dir_rewind(struct fs_dir *d)
{
	read_join(&d->ahead);
	read_join(&d->half);
	d->half_state = HALF_NONE;
	d->files_done = 0;
	d->next_off = 0;
	memset(&d->cursor, 0, sizeof(d->cursor));
	d->folder_after[0] = '\0';
	d->plain_after[0] = '\0';
	d->files_want = 0;
	d->phase = d->page = PHASE_FOLDERS;
	d->npage = d->pos = d->eof = 0;
}

/* Reads the next page when the last one is used up; 0 at the end, 1 when
 * d->pos points at an entry, or -errno.  Folders come first (collections/,
 * galleries/ and the tree), then files (every folder of files), then plain
 * files (every folder of files but the trash). */
static int dir_fill(struct fs_dir *d)
{
	struct mvfs *fs = d->fs;
	struct meta_dir in;
	int rc, files = d->node.kind == FS_NODE_FILES;

	while (d->pos >= d->npage) {
		if (d->eof)
			return 0;
		d->pos = 0;
		d->page = d->phase;
		switch (d->phase) {
		case PHASE_FOLDERS:
			if (!fs_ns_folders_in(&d->node, &in)) {
				d->npage = 0;
				d->phase = PHASE_FILES;
				continue;
			}
			if (!d->folders && !(d->folders = malloc(LIST_PAGE * sizeof(*d->folders))))
				return -ENOMEM;
			rc = meta_folder_list(fs->meta, &in, d->folder_after, d->folders, LIST_PAGE, &d->npage);
			if (rc)
				return rc;
			if (d->npage > 0)
				snprintf(d->folder_after, sizeof(d->folder_after), "%s",
					 d->folders[d->npage - 1].name);
			if (d->npage < LIST_PAGE) {
				d->phase = PHASE_FILES;
				d->eof = !files;
			}
			break;
		case PHASE_FILES:
			rc = files_next(d);
			if (rc)
				return rc;
			if (d->files_done) {
				d->phase = PHASE_PLAIN;
				d->eof = d->node.dir.place == META_PLACE_TRASH;
			}
			break;
		default:
			if (!d->plains && !(d->plains = malloc(LIST_PAGE * sizeof(*d->plains))))
				return -ENOMEM;
			rc = meta_plain_list(fs->meta, &d->node.dir, d->plain_after, d->plains, LIST_PAGE, &d->npage);
			if (rc)
				return rc;
			if (d->npage > 0)
				snprintf(d->plain_after, sizeof(d->plain_after), "%s", d->plains[d->npage - 1].name);
			d->eof = d->npage < LIST_PAGE;
			break;
		}
	}
	return 1;
}

/* The entry at the listing's position (past invisible files): its name and
 * attributes, and the inode the kernel will hold for it (0 for none).
 * 0 at the end, 1 with an entry, or -errno. */
static int dir_peek(struct fs_dir *d, const char **name, struct stat *st, uint64_t *ref, enum meta_place *place,
		    int *plain)
{
	struct mvfs *fs = d->fs;
	off_t idx = d->next_off;
	int rc;

	*ref = 0;
	*place = 0;
	*plain = 0;
	if (idx < 2) {
		*name = idx == 0 ? "." : "..";
		fs_ns_dir_stat(fs, idx == 0 ? d->ino : META_INO_ROOT, NULL, st);
		return 1;
	}
	if (d->node.kind == FS_NODE_ROOT) {
		if ((size_t)(idx - 2) >= NTOP)
			return 0;
		*name = top_dirs[idx - 2].name;
		fs_ns_dir_stat(fs, top_dirs[idx - 2].ino, NULL, st);
		return 1;
	}
	for (;;) {
		if ((rc = dir_fill(d)) <= 0)
			return rc;
		if (d->page == PHASE_PLAIN) {
			const struct meta_plain *p = &d->plains[d->pos];

			*name = p->name;
			fs_plain_stat(fs, p, fs_inode_find(fs, p->ino), st);
			*ref = p->ino;
			*plain = 1;
			return 1;
		}
		if (d->page == PHASE_FOLDERS) {
			const struct meta_folder *f = &d->folders[d->pos];

			*name = f->name;
			fs_ns_dir_stat(fs, f->ino, f, st);
			*ref = f->ino;
			*place = f->place;
			return 1;
		}
		if (fs_ns_visible(fs, &d->files[d->pos])) {
			const struct meta_file *f = &d->files[d->pos];

			*name = f->name;
			fs_file_stat(fs, f, fs_inode_find(fs, f->ino), st);
			*ref = f->ino;
			return 1;
		}
		d->pos++;
	}
}

static void dir_advance(struct fs_dir *d)
{
	if (d->next_off >= 2 && d->node.kind != FS_NODE_ROOT)
		d->pos++;
	d->next_off++;
}

int fs_dir_read(fuse_req_t req, struct fs_dir *d, off_t off, char *buf, size_t size, int plus,
		size_t *used)
{
	struct mvfs *fs = d->fs;
	size_t len = 0;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (off != d->next_off)
		dir_rewind(d);
	while (rc == 0) {
		struct fuse_entry_param e;
		enum meta_place place;
		int plain;
		const char *name;
		uint64_t ref;
		size_t n;

		rc = dir_peek(d, &name, &e.attr, &ref, &place, &plain);
		if (rc <= 0)
			break;
		rc = 0;
		if (off > d->next_off) {	/* skipping forward after a rewind */
			dir_advance(d);
			continue;
		}
		fs_ns_entry(fs, &e.attr, &e);
		if (d->node.kind == FS_NODE_FILES && d->page == PHASE_FILES)
			fs_ns_view_entry(fs, &d->node.dir, &e);
		if (d->next_off < 2)
			e.ino = 0;		/* "." and "..": no lookup reference */
		n = plus ? fuse_add_direntry_plus(req, buf + len, size - len, name, &e, d->next_off + 1)
			 : fuse_add_direntry(req, buf + len, size - len, name, &e.attr, d->next_off + 1);
		if (n > size - len)
			break;			/* full: this entry goes in the next call */
		if (plus && ref) {
			struct fs_inode *in = fs_inode_get(fs, ref, 1, 0);

			if (!in)
				rc = -ENOMEM;
			else if (place)
				in->place = place;
			else if (plain)
				in->plain = 1;
			if (in && e.entry_timeout > 0)
				fs_inode_named(fs, ref, d->ino, name);
		}
		len += n;
		dir_advance(d);
	}
	pthread_mutex_unlock(&d->lock);
	*used = len;
	/* An error after some entries: hand out those, report it next time. */
	return len > 0 ? 0 : rc < 0 ? rc : 0;
}
