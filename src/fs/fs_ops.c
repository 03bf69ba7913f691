/*
 * fs_ops.c - the FUSE low-level operations.
 *
 * Each request is one fs_do_<op>() that returns 0 or -errno and one
 * adapter that replies exactly once.  The namespace today:
 *
 *   /                 virtual: library, workspace, collections, galleries
 *   /library/NAME     the user's memories (memory items), flat
 *
 * Virtual folders have fixed inode numbers below META_INO_FIRST; files have
 * the stable numbers the database gave their memory items.  Nothing here
 * speaks SQL or talks to the store: that is meta_* and cache_*.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache/cache.h"
#include "util/log.h"
#include "util/name.h"

#define LIST_PAGE 256

struct vdir {
	uint64_t ino;
	const char *name;
};

static const struct vdir top_dirs[] = {
	{ META_INO_LIBRARY, "library" },
	{ META_INO_WORKSPACE, "workspace" },
	{ META_INO_COLLECTIONS, "collections" },
	{ META_INO_GALLERIES, "galleries" },
};
#define NTOP (sizeof(top_dirs) / sizeof(top_dirs[0]))

/* An open folder: a cursor into the listing, and the page read last. */
struct fs_dir {
	uint64_t ino;
	pthread_mutex_t lock;
	off_t next_off;			/* offset of the next entry to hand out */
	int have_cursor;
	char cursor_name[256];
	uint64_t cursor_ino;
	struct meta_file *page;
	int npage, pos, eof;
};

static struct mvfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static const struct vdir *top_dir(uint64_t ino)
{
	for (size_t i = 0; i < NTOP; i++)
		if (top_dirs[i].ino == ino)
			return &top_dirs[i];
	return NULL;
}

static int is_dir_ino(uint64_t ino)
{
	return ino == META_INO_ROOT || top_dir(ino) != NULL;
}

static void dir_stat(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = ino == META_INO_ROOT ? 2 + NTOP : 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_mtim = st->st_ctim = st->st_atim = fs->mounted_at;
}

/* Fills E for attributes ST (which may point into E). */
static void entry_for(struct mvfs *fs, const struct stat *st, struct fuse_entry_param *e)
{
	struct stat copy = *st;

	memset(e, 0, sizeof(*e));
	e->ino = copy.st_ino;
	e->attr = copy;
	e->attr_timeout = fs->cfg.attr_timeout;
	e->entry_timeout = fs->cfg.entry_timeout;
}

/* Whether file F shows in listings and lookups: committed content, or a
 * file this mount is writing right now.  A created file whose writer died
 * before its first commit stays invisible (its rows are cleaned up by the
 * next create of that name, or expire with their upload session). */
static int file_visible(struct mvfs *fs, const struct meta_file *f)
{
	struct fs_inode *in;
	int staged = 0;

	if (strcmp(f->upload_status, "completed") == 0)
		return 1;
	in = fs_inode_find(fs, f->ino);
	if (in) {
		pthread_mutex_lock(&in->lock);
		staged = in->stage_fd >= 0;
		pthread_mutex_unlock(&in->lock);
	}
	return staged;
}

/* Validates NAME for a new entry, logging the rule it breaks. */
static int check_new_name(const char *name)
{
	const char *why;
	int rc = name_check(name, &why);

	if (rc)
		log_warn("refusing the name '%.64s%s': %s", name, strlen(name) > 64 ? "..." : "", why);
	return rc;
}

/* Why NAME cannot be made in folder PARENT, or 0 when it can. */
static int check_writable_dir(uint64_t parent, const char *what)
{
	if (parent == META_INO_LIBRARY)
		return 0;
	if (parent == META_INO_ROOT) {
		log_warn("cannot %s at the top level: it holds only library, workspace, collections, galleries", what);
		return -EPERM;
	}
	if (top_dir(parent)) {
		log_warn("cannot %s in %s/: not supported yet (only library/ holds files)",
			 what, top_dir(parent)->name);
		return -EOPNOTSUPP;
	}
	return is_dir_ino(parent) ? -EPERM : -ENOTDIR;
}

/* --- lookup, attributes -------------------------------------------------- */

static int fs_do_lookup(struct mvfs *fs, uint64_t parent, const char *name, struct fuse_entry_param *e)
{
	struct meta_file f;
	struct stat st;
	int rc;

	if (strlen(name) > NAME_MAX_BYTES)
		return -ENAMETOOLONG;
	if (parent == META_INO_ROOT) {
		for (size_t i = 0; i < NTOP; i++) {
			if (strcmp(name, top_dirs[i].name) == 0) {
				dir_stat(fs, top_dirs[i].ino, &st);
				entry_for(fs, &st, e);
				return 0;
			}
		}
		return -ENOENT;
	}
	if (parent != META_INO_LIBRARY)
		return is_dir_ino(parent) ? -ENOENT : -ENOTDIR;
	rc = meta_library_lookup(fs->meta, name, &f);
	if (rc)
		return rc;
	if (!file_visible(fs, &f))
		return -ENOENT;
	fs_file_stat(fs, &f, fs_inode_find(fs, f.ino), &st);
	entry_for(fs, &st, e);
	return fs_inode_get(fs, f.ino, 1, 0) ? 0 : -ENOMEM;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = fs_do_lookup(fs_of(req), parent, name, &e);

	if (rc == -ENOENT) {
		/* A negative entry, not cached: another mount may create it. */
		memset(&e, 0, sizeof(e));
		fuse_reply_entry(req, &e);
	} else if (rc) {
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_entry(req, &e);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	if (ino >= META_INO_FIRST)
		fs_inode_put(fs_of(req), ino, nlookup, 0);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		if (forgets[i].ino >= META_INO_FIRST)
			fs_inode_put(fs_of(req), forgets[i].ino, forgets[i].nlookup, 0);
	fuse_reply_none(req);
}

static int fs_do_getattr(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	struct meta_file f;
	int rc;

	if (is_dir_ino(ino)) {
		dir_stat(fs, ino, st);
		return 0;
	}
	rc = meta_file_get(fs->meta, ino, &f);
	if (rc)
		return rc;
	fs_file_stat(fs, &f, fs_inode_find(fs, ino), st);
	return 0;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int rc = fs_do_getattr(fs_of(req), ino, &st);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs_of(req)->cfg.attr_timeout);
}

/* Truncate of a file: staged when it is open for writing, else a new
 * version committed at once. */
static int set_size(struct mvfs *fs, uint64_t ino, uint64_t size)
{
	struct meta_file f;
	struct fs_inode *in;
	int rc;

	rc = meta_file_get(fs->meta, ino, &f);
	if (rc)
		return rc;
	in = fs_inode_get(fs, ino, 0, 1);
	if (!in)
		return -ENOMEM;
	pthread_mutex_lock(&in->lock);
	if (in->stage_fd >= 0) {
		rc = fs_file_truncate(in, size);
	} else if (size != f.size) {
		rc = fs_file_stage(fs, in, &f, size == 0);
		if (rc == 0) {
			in->writers++;
			rc = fs_file_truncate(in, size);
			if (rc == 0)
				rc = fs_file_commit(fs, in);
			fs_file_unstage(in);
		}
	}
	pthread_mutex_unlock(&in->lock);
	fs_inode_put(fs, ino, 0, 1);
	return rc;
}

static int fs_do_setattr(struct mvfs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *st)
{
	struct timespec now, mtime;
	unsigned flags = 0;
	int rc;

	if (is_dir_ino(ino)) {
		/* rsync -a and cp -a set the times and mode of the folder they
		 * copy into; virtual folders have none to keep, so that is
		 * accepted and changes nothing. */
		if (to_set & (FUSE_SET_ATTR_SIZE))
			return -EISDIR;
		log_debug("ignoring a change of attributes on a virtual folder");
		dir_stat(fs, ino, st);
		return 0;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0)
			return -EINVAL;
		rc = set_size(fs, ino, (uint64_t)attr->st_size);
		if (rc)
			return rc;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (to_set & FUSE_SET_ATTR_MODE)
		flags |= META_SET_MODE;
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		flags |= META_SET_MTIME;
		mtime = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now : attr->st_mtim;
	}
	if (flags) {
		struct fs_inode *in = fs_inode_find(fs, ino);

		/* A file being written keeps the time it was given past its
		 * commit (cp -p sets it before close). */
		if (in && (flags & META_SET_MTIME)) {
			pthread_mutex_lock(&in->lock);
			if (in->stage_fd >= 0) {
				in->mtime = mtime;
				in->mtime_set = 1;
			}
			pthread_mutex_unlock(&in->lock);
		}
		rc = meta_file_setattr(fs->meta, ino, flags, attr->st_mode, &mtime, NULL);
		if (rc)
			return rc;
	}
	/* Owner changes are accepted and not kept: every entry belongs to the
	 * user the mount acts for. */
	return fs_do_getattr(fs, ino, st);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int rc = fs_do_setattr(fs_of(req), ino, attr, to_set, &st);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs_of(req)->cfg.attr_timeout);
}

/* --- folders ------------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_dir *d;

	if (!is_dir_ino(ino)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->ino = ino;
	pthread_mutex_init(&d->lock, NULL);
	fi->fh = (uintptr_t)d;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) != 0) {
		pthread_mutex_destroy(&d->lock);
		free(d);
	}
}

static void dir_rewind(struct fs_dir *d)
{
	d->next_off = 0;
	d->have_cursor = 0;
	d->npage = d->pos = d->eof = 0;
}

/* The next listed file of folder D, reading a page when needed; 0 at the
 * end, 1 with *F set, or -errno. */
static int dir_next(struct mvfs *fs, struct fs_dir *d, struct meta_file **f)
{
	int rc;

	if (d->ino != META_INO_LIBRARY)
		return 0;
	if (d->pos == d->npage) {
		if (d->eof)
			return 0;
		if (!d->page && !(d->page = malloc(LIST_PAGE * sizeof(*d->page))))
			return -ENOMEM;
		rc = meta_library_list(fs->meta, d->have_cursor ? d->cursor_name : NULL, d->cursor_ino,
				       d->page, LIST_PAGE, &d->npage);
		if (rc)
			return rc;
		d->pos = 0;
		d->eof = d->npage < LIST_PAGE;
		if (d->npage == 0)
			return 0;
		d->have_cursor = 1;
		snprintf(d->cursor_name, sizeof(d->cursor_name), "%s", d->page[d->npage - 1].name);
		d->cursor_ino = d->page[d->npage - 1].ino;
	}
	*f = &d->page[d->pos];
	return 1;
}

/* Like dir_next, but past files that are not visible (file_visible). */
static int dir_next_visible(struct mvfs *fs, struct fs_dir *d, struct meta_file **f)
{
	int rc;

	while ((rc = dir_next(fs, d, f)) == 1 && !file_visible(fs, *f))
		d->pos++;
	return rc;
}

/* Fills BUF with entries from offset OFF.  Entry offsets: 1 ".", 2 "..",
 * then 3, 4, ... in listing order. */
static int fs_do_readdir(fuse_req_t req, struct fs_dir *d, off_t off, char *buf, size_t size,
			 int plus, size_t *used)
{
	struct mvfs *fs = fs_of(req);
	size_t len = 0;
	int rc = 0;

	if (off != d->next_off)
		dir_rewind(d);
	while (rc == 0) {
		struct fuse_entry_param e;
		struct meta_file *f = NULL;
		const char *name;
		off_t idx = d->next_off;	/* 0-based index of this entry */
		size_t n;

		memset(&e, 0, sizeof(e));
		if (idx < 2) {
			name = idx == 0 ? "." : "..";
			dir_stat(fs, idx == 0 ? d->ino : META_INO_ROOT, &e.attr);
		} else if (d->ino == META_INO_ROOT) {
			if ((size_t)(idx - 2) >= NTOP)
				break;
			name = top_dirs[idx - 2].name;
			dir_stat(fs, top_dirs[idx - 2].ino, &e.attr);
			entry_for(fs, &e.attr, &e);
		} else {
			rc = dir_next_visible(fs, d, &f);
			if (rc <= 0)
				break;
			rc = 0;
			name = f->name;
			fs_file_stat(fs, f, fs_inode_find(fs, f->ino), &e.attr);
			entry_for(fs, &e.attr, &e);
		}
		if (off > idx) {		/* skipping forward after a rewind */
			d->next_off++;
			if (f)
				d->pos++;
			continue;
		}
		n = plus ? fuse_add_direntry_plus(req, buf + len, size - len, name, &e, idx + 1)
			 : fuse_add_direntry(req, buf + len, size - len, name, &e.attr, idx + 1);
		if (n > size - len)
			break;			/* full: this entry goes in the next call */
		if (plus && f && !fs_inode_get(fs, f->ino, 1, 0))
			rc = -ENOMEM;
		len += n;
		d->next_off++;
		if (f)
			d->pos++;
	}
	*used = len;
	/* An error after some entries: hand out those, report it next time. */
	return len > 0 ? 0 : rc;
}

static void readdir_common(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, int plus)
{
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	int rc;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&d->lock);
	rc = fs_do_readdir(req, d, off, buf, size, plus, &used);
	pthread_mutex_unlock(&d->lock);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;

	free(d->page);
	pthread_mutex_destroy(&d->lock);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	if (parent == META_INO_LIBRARY)
		log_warn("cannot make folder '%s' in library/: library/ is flat, folders are collections/ and galleries/", name);
	else if (parent == META_INO_ROOT)
		log_warn("cannot make folder '%s' at the top level: it holds only library, workspace, collections, galleries", name);
	else if (top_dir(parent))
		log_warn("cannot make folder '%s' in %s/: not supported yet", name, top_dir(parent)->name);
	fuse_reply_err(req, top_dir(parent) && parent != META_INO_LIBRARY && parent != META_INO_WORKSPACE
			    ? EOPNOTSUPP : is_dir_ino(parent) ? EPERM : ENOTDIR);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent == META_INO_ROOT) {
		log_warn("cannot remove '%s': the top-level folders are fixed", name);
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_err(req, is_dir_ino(parent) ? ENOTDIR : ENOTDIR);
}

/* --- names --------------------------------------------------------------- */

static int fs_do_unlink(struct mvfs *fs, uint64_t parent, const char *name)
{
	if (parent == META_INO_ROOT) {
		log_warn("cannot remove '%s': the top-level folders are fixed", name);
		return -EPERM;
	}
	if (parent != META_INO_LIBRARY)
		return is_dir_ino(parent) ? -ENOENT : -ENOTDIR;
	if (strlen(name) > NAME_MAX_BYTES)
		return -ENAMETOOLONG;
	return meta_library_unlink(fs->meta, name, NULL);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -fs_do_unlink(fs_of(req), parent, name));
}

static int fs_do_rename(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent,
			const char *newname, unsigned flags)
{
	uint64_t replaced;
	int rc;

	if (flags & RENAME_EXCHANGE) {
		log_warn("cannot exchange '%s' and '%s': RENAME_EXCHANGE is not supported", name, newname);
		return -EINVAL;
	}
	if (parent == META_INO_ROOT || newparent == META_INO_ROOT) {
		log_warn("cannot rename '%s' to '%s': the top-level folders are fixed", name, newname);
		return -EPERM;
	}
	if (parent != META_INO_LIBRARY || newparent != META_INO_LIBRARY) {
		if (!is_dir_ino(parent) || !is_dir_ino(newparent))
			return -ENOTDIR;
		log_warn("cannot move '%s' to '%s': moves between folders are not supported yet", name, newname);
		return -EXDEV;
	}
	if (strlen(name) > NAME_MAX_BYTES)
		return -ENAMETOOLONG;
	if ((rc = check_new_name(newname)) != 0)
		return rc;
	return meta_library_rename(fs->meta, name, newname,
				   (flags & RENAME_NOREPLACE) ? META_RENAME_NOREPLACE : 0, &replaced);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fuse_reply_err(req, -fs_do_rename(fs_of(req), parent, name, newparent, newname, flags));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	log_warn("cannot link '%s': hard links are not supported yet (they will add to galleries)", newname);
	fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	log_warn("cannot make symbolic link '%s': a memories library holds files only", name);
	fuse_reply_err(req, EPERM);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	log_warn("cannot make '%s': only regular files can be created (with open/creat)", name);
	fuse_reply_err(req, EPERM);
}

/* --- files --------------------------------------------------------------- */

static int fs_do_create(struct mvfs *fs, uint64_t parent, const char *name, mode_t mode,
			struct fuse_file_info *fi, struct fuse_entry_param *e)
{
	struct timespec now;
	struct meta_file f;
	struct fs_inode *in;
	struct fs_handle *h;
	int rc;

	if ((rc = check_writable_dir(parent, "create a file")) != 0)
		return rc;
	if (!S_ISREG(mode)) {
		log_warn("cannot create '%s': only regular files can be created", name);
		return -EPERM;
	}
	if ((rc = check_new_name(name)) != 0)
		return rc;
	clock_gettime(CLOCK_REALTIME, &now);
	rc = meta_library_create(fs->meta, name, mode, &now, &f);
	if (rc == -EEXIST && !file_visible(fs, &f)) {
		/* Left by a writer that died before its first commit. */
		log_info("removing the unfinished earlier upload of '%s'", name);
		if ((rc = meta_file_abort(fs->meta, f.ino)) == 0)
			rc = meta_library_create(fs->meta, name, mode, &now, &f);
	}
	if (rc)
		return rc;
	in = fs_inode_get(fs, f.ino, 1, 1);
	if (!in) {
		meta_file_abort(fs->meta, f.ino);
		return -ENOMEM;
	}
	pthread_mutex_lock(&in->lock);
	snprintf(in->name, sizeof(in->name), "%s", name);
	rc = fs_file_stage(fs, in, NULL, 1);
	if (rc == 0)
		in->writers++;
	pthread_mutex_unlock(&in->lock);
	h = rc == 0 ? fs_handle_new(fs, in, NULL) : NULL;
	if (!h) {
		if (rc == 0) {
			pthread_mutex_lock(&in->lock);
			fs_file_unstage(in);
			pthread_mutex_unlock(&in->lock);
		}
		meta_file_abort(fs->meta, f.ino);
		fs_inode_put(fs, f.ino, 1, 1);
		return rc ? rc : -ENOMEM;
	}
	h->writable = 1;
	fi->fh = (uintptr_t)h;
	fs_file_stat(fs, &f, in, &e->attr);
	entry_for(fs, &e->attr, e);
	return 0;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int rc = fs_do_create(fs_of(req), parent, name, mode, fi, &e);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_create(req, &e, fi);
}

static int fs_do_open(struct mvfs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct meta_file f;
	struct fs_inode *in;
	struct fs_handle *h;
	int rc;

	if (is_dir_ino(ino))
		return -EISDIR;
	rc = meta_file_get(fs->meta, ino, &f);
	if (rc)
		return rc;
	in = fs_inode_get(fs, ino, 0, 1);
	if (!in)
		return -ENOMEM;
	h = fs_handle_new(fs, in, &f);
	if (!h) {
		fs_inode_put(fs, ino, 0, 1);
		return -ENOMEM;
	}
	pthread_mutex_lock(&in->lock);
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		int fresh = strcmp(f.upload_status, "completed") != 0;

		if (!in->name[0])
			snprintf(in->name, sizeof(in->name), "%s", f.name);
		rc = fs_file_stage(fs, in, fresh ? NULL : &f, fresh || (fi->flags & O_TRUNC));
		if (rc == 0) {
			in->writers++;
			h->writable = 1;
		}
	} else {
		/* Content under an inode changes only through this mount's
		 * commits, so the kernel may keep its cached pages. */
		fi->keep_cache = in->stage_fd < 0;
	}
	pthread_mutex_unlock(&in->lock);
	if (rc) {
		fs_handle_free(fs, h);
		fs_inode_put(fs, ino, 0, 1);
		return rc;
	}
	fi->fh = (uintptr_t)h;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int rc = fs_do_open(fs_of(req), ino, fi);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_open(req, fi);
}

static int fs_do_read(struct mvfs *fs, struct fs_handle *h, size_t size, off_t off, char *buf, size_t *got)
{
	struct fs_inode *in = h->in;
	int rc = 1;

	pthread_mutex_lock(&in->lock);
	if (in->stage_fd >= 0) {
		ssize_t n = pread(in->stage_fd, buf, size, off);

		rc = n < 0 ? -errno : 0;
		*got = n < 0 ? 0 : (size_t)n;
	}
	pthread_mutex_unlock(&in->lock);
	if (rc <= 0)
		return rc;
	if ((uint64_t)off >= h->size) {
		*got = 0;
		return 0;
	}
	if (size > h->size - (uint64_t)off)
		size = (size_t)(h->size - (uint64_t)off);
	rc = cache_read(fs->cache, h->key, (uint64_t)off, size, buf, got);
	if (rc)
		log_error("cannot read '%s' at %lld: %s", in->name[0] ? in->name : h->key,
			  (long long)off, strerror(-rc));
	return rc == -ENOENT ? -EIO : rc;	/* a row without its object */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t got = 0;
	int rc;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fs_do_read(fs_of(req), h, size, off, buf, &got);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	ssize_t n = h->writable ? fs_file_write(h->in, buf, size, off) : -EBADF;

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static int commit_handle(struct mvfs *fs, struct fs_handle *h)
{
	int rc = 0;

	if (!h->writable)
		return 0;
	pthread_mutex_lock(&h->in->lock);
	rc = fs_file_commit(fs, h->in);
	pthread_mutex_unlock(&h->in->lock);
	return rc;
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -commit_handle(fs_of(req), (struct fs_handle *)(uintptr_t)fi->fh));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -commit_handle(fs_of(req), (struct fs_handle *)(uintptr_t)fi->fh));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mvfs *fs = fs_of(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	if (h->writable) {
		pthread_mutex_lock(&h->in->lock);
		/* Pages written through mmap can arrive after the last flush. */
		fs_file_commit(fs, h->in);
		fs_file_unstage(h->in);
		pthread_mutex_unlock(&h->in->lock);
	}
	fs_handle_free(fs, h);
	fs_inode_put(fs, ino, 0, 1);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct mvfs *fs = fs_of(req);
	uint64_t total = 0, avail = 0, files = 0, bytes = 0;
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	if (cache_space(fs->cache, &total, &avail) != 0) {
		meta_usage(fs->meta, &files, &bytes);
		total = bytes + (1ULL << 40);	/* an object store without a size */
		avail = 1ULL << 40;
	}
	meta_usage(fs->meta, &files, &bytes);
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = total / 4096;
	sv.f_bfree = avail / 4096;
	sv.f_bavail = avail / 4096;
	sv.f_files = files + 1000000;
	sv.f_ffree = 1000000;
	sv.f_favail = 1000000;
	sv.f_namemax = NAME_MAX_BYTES;
	fuse_reply_statfs(req, &sv);
}

/* --- extended attributes ------------------------------------------------- */

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct meta_file f;
	ssize_t n;
	char *buf;
	int rc;

	/* ls -l asks every file for security.selinux and POSIX ACLs: answer
	 * those without a database round trip. */
	if (is_dir_ino(ino) || !fs_xattr_ours(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	rc = meta_file_get(fs_of(req)->meta, ino, &f);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	buf = size ? malloc(size) : NULL;
	n = fs_xattr_get(&f, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct meta_file f;
	ssize_t n;
	char *buf;
	int rc = 0;

	if (!is_dir_ino(ino))
		rc = meta_file_get(fs_of(req)->meta, ino, &f);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	buf = size ? malloc(size) : NULL;
	n = fs_xattr_list(is_dir_ino(ino) ? NULL : &f, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	int rc = fs_xattr_set(name);

	if (rc == -EPERM)
		log_warn("cannot set '%s': it is read-only", name);
	fuse_reply_err(req, -rc);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -fs_xattr_set(name));
}

/* --- session ------------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* O_TRUNC arrives with open, not as a separate truncate: one new
	 * version per rewrite, not an empty one first. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Always readdirplus: ls -l needs every entry's attributes. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.unlink = op_unlink,
	.rename = op_rename,
	.link = op_link,
	.symlink = op_symlink,
	.mknod = op_mknod,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
};
