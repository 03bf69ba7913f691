/*
 * fs_xdgtrash_nodes.c - the desktop trash as special nodes: its workers
 * (fs_xdg_special, fs_special.h), and its open .trashinfo files.
 *
 * fs_ops.c's adapters ask fs_special_of() of an inode number once; one of
 * ours (fs_xdgtrash.h) comes here, to workers that answer with the view's
 * (fs_xdgtrash.c) and return 0 or -errno, as fs_do_* do.  The name
 * .Trash-$UID at the top is known where names are: fs_ns_lookup, and the
 * adapters of rmdir and unlink (fs_xdg_top_named).  A .trashinfo is read
 * from a copy of its text made at open (direct_io: it is made again at
 * each open); one a program writes lives in the mount's memory until the
 * rename that trashes its file (struct pending).
 */
#include "fs/fs_xdgtrash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_ns.h"
#include "fs/fs_special.h"
#include "fs/fs_variants.h"
#include "meta/meta_trash.h"
#include "util/log.h"

/* --- open files -------------------------------------------------------------- */

/* An open .trashinfo: a made one's text, or a pending one by its id. */
struct xfile {
	enum xkind kind;	/* X_INFO_FILE or X_PENDING */
	uint64_t id;		/* X_PENDING */
	char *text;		/* X_INFO_FILE */
	size_t len;
};

static int xnode_open(struct mvfs *fs, uint64_t ino, struct fuse_file_info *fi, void **out)
{
	char text[META_ORIGIN_MAX * 3 + 128];
	struct xfile *h;
	struct pending *p;
	uint64_t base;
	enum xkind k = xdg_kind(ino, &base);
	int rc = 0;

	if (xdg_is_dir(k))
		return -EISDIR;
	if (k == X_INFO_FILE && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)))
		return xdg_refuse("write", "a .trashinfo", "it is made from the trashed file's record");
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	h->kind = k;
	if (k == X_INFO_FILE) {
		if ((rc = xdg_info_of(fs, base, text, sizeof(text), NULL)) >= 0 && !(h->text = strdup(text)))
			rc = -ENOMEM;
		h->len = rc > 0 ? (size_t)rc : 0;
		rc = rc < 0 ? rc : 0;
	} else {
		h->id = base;
		pthread_mutex_lock(&fs->xdg->lock);
		if (!(p = xdg_pending_find(fs->xdg, NULL, base)))
			rc = -ENOENT;
		else if (fi->flags & O_TRUNC)
			p->len = 0;
		pthread_mutex_unlock(&fs->xdg->lock);
	}
	if (rc) {
		free(h);
		return rc;
	}
	fi->direct_io = 1;	/* the text is made at each open */
	*out = h;
	return 0;
}

static int xdg_pending_write(struct mvfs *fs, uint64_t id, const char *buf, size_t size, off_t off)
{
	struct pending *p;
	int rc = 0;

	if (off < 0 || (uint64_t)off + size > XDG_INFO_MAX)
		return -EFBIG;
	pthread_mutex_lock(&fs->xdg->lock);
	if (!(p = xdg_pending_find(fs->xdg, NULL, id))) {
		rc = -ENOENT;
	} else if ((size_t)off + size > p->len) {
		char *grown = realloc(p->data, (size_t)off + size);

		if (!grown)
			rc = -ENOMEM;
		else {
			memset(grown + p->len, 0, (size_t)off + size - p->len);
			p->data = grown;
			p->len = (size_t)off + size;
		}
	}
	if (rc == 0)
		memcpy(p->data + off, buf, size);
	pthread_mutex_unlock(&fs->xdg->lock);
	return rc;
}

/* At close: a .trashinfo with content must be one (an empty one is being
 * made: gio creates it, closes it, then renames its text over it). */
static int xdg_pending_close(struct mvfs *fs, uint64_t id)
{
	char why[256];
	struct pending *p;
	int rc = 0;

	pthread_mutex_lock(&fs->xdg->lock);
	p = xdg_pending_find(fs->xdg, NULL, id);
	if (p && p->len > 0 && (rc = fs_xdg_info_check(p->data, p->len, why, sizeof(why))) != 0) {
		log_warn("refusing '%s' in the desktop trash's info/: %s (the freedesktop.org trash"
			 " specification's .trashinfo)", p->name, why);
		xdg_pending_drop(fs->xdg, p);
	}
	pthread_mutex_unlock(&fs->xdg->lock);
	return rc;
}

/* --- the special node's workers (fs_special.h) --------------------------- */

static enum xkind kind_of(uint64_t ino)
{
	uint64_t base;

	return xdg_kind(ino, &base);
}

static int xnode_lookup(struct mvfs *fs, uint64_t parent, const char *name, struct fuse_entry_param *e)
{
	return xdg_lookup(fs, kind_of(parent), name, e);
}

static int xnode_getattr(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	uint64_t b;
	enum xkind k = xdg_kind(ino, &b);

	return xdg_getattr(fs, ino, k, b, st);
}

/* A pending .trashinfo's size; mode, owner and times: accepted, and nothing
 * kept (the view makes them). */
static int xnode_setattr(struct mvfs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *st)
{
	struct pending *p;
	uint64_t b;
	enum xkind k = xdg_kind(ino, &b);
	int rc = 0, grow;

	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (k != X_PENDING)
			return xdg_is_dir(k) ? -EISDIR : -EPERM;
		if (attr->st_size < 0 || attr->st_size > XDG_INFO_MAX)
			return attr->st_size < 0 ? -EINVAL : -EFBIG;
		pthread_mutex_lock(&fs->xdg->lock);
		if ((p = xdg_pending_find(fs->xdg, NULL, b)) != NULL && (size_t)attr->st_size < p->len)
			p->len = (size_t)attr->st_size;
		grow = p && (size_t)attr->st_size > p->len;
		pthread_mutex_unlock(&fs->xdg->lock);
		if (grow)
			rc = xdg_pending_write(fs, b, "", 0, attr->st_size);	/* grows it with zeros */
	}
	return rc ? rc : xdg_getattr(fs, ino, k, b, st);
}

static int xnode_opendir(struct mvfs *fs, uint64_t ino, void **dir)
{
	enum xkind k = kind_of(ino);

	return xdg_is_dir(k) ? xdg_dir_open(fs, ino, k, (struct xdir **)dir) : -ENOTDIR;
}

static int xnode_readdir(fuse_req_t req, void *dir, off_t off, char *buf, size_t size, int plus, size_t *used)
{
	return xdg_dir_read(req, dir, off, buf, size, plus, used);
}

static void xnode_closedir(void *dir)
{
	xdg_dir_close(dir);
}

static int xnode_mkdir(struct mvfs *fs, uint64_t parent, const char *name)
{
	return xdg_refuse("make folder", name, "it holds files/, info/ and expunged/ only");
}

static int xnode_rmdir(struct mvfs *fs, uint64_t parent, const char *name)
{
	return kind_of(parent) == X_TOP ? xdg_refuse("remove", name, "its folders are fixed") : -ENOENT;
}

static int xnode_unlink(struct mvfs *fs, uint64_t parent, const char *name)
{
	return xdg_unlink(fs, kind_of(parent), name);
}

static int xnode_make(const char *name, int symlink)
{
	return xdg_refuse("make", name, symlink ? "it holds no symbolic links"
						: "only .trashinfo files are made there, in info/");
}

static int xnode_link(const char *newname)
{
	return xdg_refuse("link", newname, "it holds no hard links");
}

/* A new .trashinfo in info/: pending until the rename that trashes its file. */
static int xnode_create(struct mvfs *fs, uint64_t parent, const char *name, struct fuse_file_info *fi,
			struct fuse_entry_param *e)
{
	enum xkind k = kind_of(parent);
	struct xfile *h;
	struct stat st;
	int rc;

	if (k != X_INFO)
		return xdg_refuse("create", name, k == X_FILES ? "a file goes into files/ by a rename"
						       : "only .trashinfo files are made there, in info/");
	if ((rc = xdg_pending_new(fs, name, &st)) != 0)
		return rc;
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	h->kind = X_PENDING;
	h->id = st.st_ino & FS_VINO_BASE_MAX;
	if ((rc = xdg_entry(fs, &st, 0, e)) != 0) {
		free(h);
		return rc;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	return 0;
}

static int xnode_read(struct mvfs *fs, void *file, size_t size, off_t off, char *buf, size_t *got)
{
	struct xfile *h = file;
	struct pending *p;
	int rc = 0;

	*got = 0;
	if (h->text) {
		if ((size_t)off < h->len) {
			*got = h->len - (size_t)off < size ? h->len - (size_t)off : size;
			memcpy(buf, h->text + off, *got);
		}
		return 0;
	}
	/* into the adapter's buffer: no lock is held across the reply */
	pthread_mutex_lock(&fs->xdg->lock);
	if (!(p = xdg_pending_find(fs->xdg, NULL, h->id)))
		rc = -ENOENT;
	else if ((size_t)off < p->len) {
		*got = p->len - (size_t)off < size ? p->len - (size_t)off : size;
		memcpy(buf, p->data + off, *got);
	}
	pthread_mutex_unlock(&fs->xdg->lock);
	return rc;
}

static ssize_t xnode_write(struct mvfs *fs, void *file, const char *buf, size_t size, off_t off)
{
	struct xfile *h = file;
	int rc = h->kind == X_PENDING ? xdg_pending_write(fs, h->id, buf, size, off) : -EBADF;

	return rc ? rc : (ssize_t)size;
}

static int xnode_flush(struct mvfs *fs, void *file)
{
	struct xfile *h = file;

	return h->kind == X_PENDING ? xdg_pending_close(fs, h->id) : 0;
}

static void xnode_release(void *file)
{
	struct xfile *h = file;

	free(h->text);
	free(h);
}

static ssize_t xnode_getxattr(struct mvfs *fs, uint64_t ino, const char *name, char *buf, size_t size)
{
	return -ENODATA;
}

static int xnode_setxattr(const char *name)
{
	return -ENOTSUP;
}

static int xnode_removexattr(const char *name)
{
	return -ENODATA;
}

const struct fs_special fs_xdg_special = {
	.lookup = xnode_lookup,
	.getattr = xnode_getattr,
	.setattr = xnode_setattr,
	.opendir = xnode_opendir,
	.readdir = xnode_readdir,
	.closedir = xnode_closedir,
	.mkdir = xnode_mkdir,
	.rmdir = xnode_rmdir,
	.unlink = xnode_unlink,
	.make = xnode_make,
	.link = xnode_link,
	.rename = xdg_rename,
	.create = xnode_create,
	.open = xnode_open,
	.read = xnode_read,
	.write = xnode_write,
	.flush = xnode_flush,
	.release = xnode_release,
	.getxattr = xnode_getxattr,
	.setxattr = xnode_setxattr,
	.removexattr = xnode_removexattr,
};

/* --- the name at the top, and the mount's state -------------------------------- */

int fs_xdg_top_named(struct mvfs *fs, uint64_t parent, const char *name)
{
	return parent == META_INO_ROOT && fs->xdg && strcmp(name, fs->xdg->top) == 0;
}

int fs_xdg_top_entry(struct mvfs *fs, struct fuse_entry_param *e)
{
	struct stat st;

	xdg_dir_stat(fs, xdg_ino(X_TOP, 0), &st);
	return xdg_entry(fs, &st, 1, e);
}

int fs_xdgtrash_init(struct mvfs *fs)
{
	struct fs_xdg *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	snprintf(x->top, sizeof(x->top), ".Trash-%lu", (unsigned long)fs->uid);
	pthread_mutex_init(&x->lock, NULL);
	fs->xdg = x;
	return 0;
}

void fs_xdgtrash_free(struct mvfs *fs)
{
	struct fs_xdg *x = fs->xdg;

	if (!x)
		return;
	while (x->pending)
		xdg_pending_drop(x, x->pending);
	pthread_mutex_destroy(&x->lock);
	free(x);
	fs->xdg = NULL;
}
