/*
 * fs_xdgtrash_ops.c - the desktop trash's layer over the mount's
 * operations, and its open .trashinfo files.
 *
 * Each operation asks first whether the request is about the desktop
 * trash: an inode number of ours (fs_xdgtrash.h), or .Trash-$UID at the
 * top; those are answered here with the view's workers (fs_xdgtrash.c),
 * everything else goes to the table below unchanged.  A .trashinfo is read
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
#include "fs/fs_variants.h"
#include "meta/meta_trash.h"
#include "util/log.h"

static struct mvfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_xdg *X(fuse_req_t req)
{
	return fs_of(req)->xdg;
}

/* --- open files -------------------------------------------------------------- */

/* An open .trashinfo: a made one's text, or a pending one by its id. */
struct xfile {
	uint64_t id;		/* X_PENDING */
	char *text;		/* X_INFO_FILE */
	size_t len;
};

static int xdg_open(struct mvfs *fs, enum xkind k, uint64_t base, struct fuse_file_info *fi, struct xfile **out)
{
	char text[META_ORIGIN_MAX * 3 + 128];
	struct xfile *h;
	struct pending *p;
	int rc = 0;

	if (xdg_is_dir(k))
		return -EISDIR;
	if (k == X_INFO_FILE && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)))
		return xdg_refuse("write", "a .trashinfo", "it is made from the trashed file's record");
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
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

/* --- the layer --------------------------------------------------------------- */

#define OURS(ino, k, b) ((k = xdg_kind((ino), &(b))) != 0)

static void reply_entry(fuse_req_t req, int rc, struct fuse_entry_param *e)
{
	if (rc == -ENOENT) {
		memset(e, 0, sizeof(*e));	/* negative, not cached */
		fuse_reply_entry(req, e);
	} else if (rc) {
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_entry(req, e);
	}
}

static void xop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mvfs *fs = fs_of(req);
	struct fuse_entry_param e;
	enum xkind k;
	uint64_t b;
	struct stat st;

	if (OURS(parent, k, b)) {
		reply_entry(req, xdg_lookup(fs, k, name, &e), &e);
	} else if (parent == META_INO_ROOT && strcmp(name, fs->xdg->top) == 0) {
		xdg_dir_stat(fs, xdg_ino(X_TOP, 0), &st);
		reply_entry(req, xdg_entry(fs, &st, 1, &e), &e);
	} else {
		X(req)->below.lookup(req, parent, name);
	}
}

static void xop_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	enum xkind k;
	uint64_t b;
	int rc;

	if (!OURS(ino, k, b)) {
		X(req)->below.getattr(req, ino, fi);
		return;
	}
	if ((rc = xdg_getattr(fs_of(req), ino, k, b, &st)) != 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs_of(req)->cfg.attr_timeout);
}

static void xop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct mvfs *fs = fs_of(req);
	struct pending *p;
	struct stat st;
	enum xkind k;
	uint64_t b;
	int rc = 0, grow;

	if (!OURS(ino, k, b)) {
		X(req)->below.setattr(req, ino, attr, to_set, fi);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (k != X_PENDING) {
			fuse_reply_err(req, xdg_is_dir(k) ? EISDIR : EPERM);
			return;
		}
		if (attr->st_size < 0 || attr->st_size > XDG_INFO_MAX) {
			fuse_reply_err(req, attr->st_size < 0 ? EINVAL : EFBIG);
			return;
		}
		pthread_mutex_lock(&fs->xdg->lock);
		if ((p = xdg_pending_find(fs->xdg, NULL, b)) != NULL && (size_t)attr->st_size < p->len)
			p->len = (size_t)attr->st_size;
		grow = p && (size_t)attr->st_size > p->len;
		pthread_mutex_unlock(&fs->xdg->lock);
		if (grow)
			rc = xdg_pending_write(fs, b, "", 0, attr->st_size);	/* grows it with zeros */
	}
	/* mode, owner and times: accepted, and nothing kept (the view makes them) */
	if (rc == 0)
		rc = xdg_getattr(fs, ino, k, b, &st);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

static void xop_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct xdir *d;
	enum xkind k;
	uint64_t b;
	int rc;

	if (!OURS(ino, k, b)) {
		X(req)->below.opendir(req, ino, fi);
		return;
	}
	if (!xdg_is_dir(k)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if ((rc = xdg_dir_open(fs_of(req), ino, k, &d)) != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0)
		xdg_dir_close(d);
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
			   int plus)
{
	size_t used = 0;
	enum xkind k;
	uint64_t b;
	char *buf;
	int rc;

	if (!OURS(ino, k, b)) {
		if (plus)
			X(req)->below.readdirplus(req, ino, size, off, fi);
		else
			X(req)->below.readdir(req, ino, size, off, fi);
		return;
	}
	if (!(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = xdg_dir_read(req, (struct xdir *)(uintptr_t)fi->fh, off, buf, size, plus, &used);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void xop_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 0);
}

static void xop_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 1);
}

static void xop_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct xdir *d = (struct xdir *)(uintptr_t)fi->fh;
	enum xkind k;
	uint64_t b;

	if (!OURS(ino, k, b)) {
		X(req)->below.releasedir(req, ino, fi);
		return;
	}
	xdg_dir_close(d);
	fuse_reply_err(req, 0);
}

static void xop_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	enum xkind k;
	uint64_t b;

	if (OURS(parent, k, b))
		fuse_reply_err(req, -xdg_refuse("make folder", name, "it holds files/, info/ and expunged/ only"));
	else
		X(req)->below.mkdir(req, parent, name, mode);
}

static void xop_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	enum xkind k;
	uint64_t b;

	if (OURS(parent, k, b))
		fuse_reply_err(req, k == X_TOP ? -xdg_refuse("remove", name, "its folders are fixed") : ENOENT);
	else if (parent == META_INO_ROOT && strcmp(name, X(req)->top) == 0)
		fuse_reply_err(req, -xdg_refuse("remove", name, "it is a view of .trash/"));
	else
		X(req)->below.rmdir(req, parent, name);
}

static void xop_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	enum xkind k;
	uint64_t b;

	if (OURS(parent, k, b))
		fuse_reply_err(req, -xdg_unlink(fs_of(req), k, name));
	else if (parent == META_INO_ROOT && strcmp(name, X(req)->top) == 0)
		fuse_reply_err(req, EISDIR);
	else
		X(req)->below.unlink(req, parent, name);
}

static void xop_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	enum xkind k1, k2;
	uint64_t b1, b2;

	if (OURS(parent, k1, b1) || OURS(newparent, k2, b2))
		fuse_reply_err(req, -xdg_rename(fs_of(req), parent, name, newparent, newname, flags));
	else
		X(req)->below.rename(req, parent, name, newparent, newname, flags);
}

static void xop_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	enum xkind k;
	uint64_t b;

	if (OURS(ino, k, b) || OURS(newparent, k, b))
		fuse_reply_err(req, -xdg_refuse("link", newname, "it holds no hard links"));
	else
		X(req)->below.link(req, ino, newparent, newname);
}

static void xop_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	enum xkind k;
	uint64_t b;

	if (OURS(parent, k, b))
		fuse_reply_err(req, -xdg_refuse("make", name, "it holds no symbolic links"));
	else
		X(req)->below.symlink(req, link, parent, name);
}

static void xop_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	enum xkind k;
	uint64_t b;

	if (OURS(parent, k, b))
		fuse_reply_err(req, -xdg_refuse("make", name, "only .trashinfo files are made there, in info/"));
	else
		X(req)->below.mknod(req, parent, name, mode, rdev);
}

static void xop_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct mvfs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct xfile *h;
	struct stat st;
	enum xkind k;
	uint64_t b;
	int rc;

	if (!OURS(parent, k, b)) {
		X(req)->below.create(req, parent, name, mode, fi);
		return;
	}
	if (k != X_INFO) {
		fuse_reply_err(req, -xdg_refuse("create", name, k == X_FILES ? "a file goes into files/ by a rename"
							    : "only .trashinfo files are made there, in info/"));
		return;
	}
	if ((rc = xdg_pending_new(fs, name, &st)) == 0 && !(h = calloc(1, sizeof(*h))))
		rc = -ENOMEM;
	if (rc == 0) {
		h->id = st.st_ino & FS_VINO_BASE_MAX;
		if ((rc = xdg_entry(fs, &st, 0, &e)) != 0)
			free(h);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	if (fuse_reply_create(req, &e, fi) != 0)
		free(h);
}

static void xop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct xfile *h;
	enum xkind k;
	uint64_t b;
	int rc;

	if (!OURS(ino, k, b)) {
		X(req)->below.open(req, ino, fi);
		return;
	}
	if ((rc = xdg_open(fs_of(req), k, b, fi, &h)) != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) != 0) {
		free(h->text);
		free(h);
	}
}

static void xop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs_xdg *x = X(req);
	struct xfile *h = (struct xfile *)(uintptr_t)fi->fh;
	struct pending *p;
	char *copy = NULL;
	size_t n = 0;
	enum xkind k;
	uint64_t b;
	int rc = 0;

	if (!OURS(ino, k, b)) {
		x->below.read(req, ino, size, off, fi);
		return;
	}
	if (h->text) {
		/* a copy: the reply's write can end the kernel's last use of the
		 * handle, and its RELEASE (freeing the text) be served on another
		 * thread before writev returns */
		char buf[4096];

		n = (size_t)off < h->len ? h->len - (size_t)off : 0;
		n = n < size ? n : size;
		if (n > sizeof(buf))
			n = sizeof(buf);	/* a short read: the caller reads on */
		memcpy(buf, h->text + (n ? (size_t)off : 0), n);
		fuse_reply_buf(req, buf, n);
		return;
	}
	/* a copy, so that no lock is held across the reply */
	pthread_mutex_lock(&x->lock);
	if (!(p = xdg_pending_find(x, NULL, h->id)))
		rc = -ENOENT;
	else if ((size_t)off < p->len) {
		n = p->len - (size_t)off < size ? p->len - (size_t)off : size;
		if ((copy = malloc(n)) != NULL)
			memcpy(copy, p->data + off, n);
		else
			rc = -ENOMEM;
	}
	pthread_mutex_unlock(&x->lock);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, copy ? copy : "", copy ? n : 0);
	free(copy);
}

static void xop_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct xfile *h = (struct xfile *)(uintptr_t)fi->fh;
	enum xkind k;
	uint64_t b;
	int rc;

	if (!OURS(ino, k, b)) {
		X(req)->below.write(req, ino, buf, size, off, fi);
		return;
	}
	rc = k == X_PENDING ? xdg_pending_write(fs_of(req), h->id, buf, size, off) : -EBADF;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

static void xop_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct xfile *h = (struct xfile *)(uintptr_t)fi->fh;
	enum xkind k;
	uint64_t b;

	if (!OURS(ino, k, b))
		X(req)->below.flush(req, ino, fi);
	else
		fuse_reply_err(req, k == X_PENDING ? -xdg_pending_close(fs_of(req), h->id) : 0);
}

static void xop_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	enum xkind k;
	uint64_t b;

	if (!OURS(ino, k, b))
		X(req)->below.fsync(req, ino, datasync, fi);
	else
		fuse_reply_err(req, 0);	/* nothing to make durable: it is made again from the record */
}

static void xop_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct xfile *h = (struct xfile *)(uintptr_t)fi->fh;
	enum xkind k;
	uint64_t b;

	if (!OURS(ino, k, b)) {
		X(req)->below.release(req, ino, fi);
		return;
	}
	free(h->text);
	free(h);
	fuse_reply_err(req, 0);
}

static void xop_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	enum xkind k;
	uint64_t b;

	if (OURS(ino, k, b))
		fuse_reply_err(req, ENODATA);
	else
		X(req)->below.getxattr(req, ino, name, size);
}

static void xop_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	enum xkind k;
	uint64_t b;

	if (!OURS(ino, k, b))
		X(req)->below.listxattr(req, ino, size);
	else if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, "", 0);
}

static void xop_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			 int flags)
{
	enum xkind k;
	uint64_t b;

	if (OURS(ino, k, b))
		fuse_reply_err(req, ENOTSUP);
	else
		X(req)->below.setxattr(req, ino, name, value, size, flags);
}

static void xop_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	enum xkind k;
	uint64_t b;

	if (OURS(ino, k, b))
		fuse_reply_err(req, ENODATA);
	else
		X(req)->below.removexattr(req, ino, name);
}

int fs_xdgtrash_ops(struct mvfs *fs, struct fuse_lowlevel_ops *ops)
{
	struct fs_xdg *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->below = *ops;
	snprintf(x->top, sizeof(x->top), ".Trash-%lu", (unsigned long)fs->uid);
	pthread_mutex_init(&x->lock, NULL);
	fs->xdg = x;
	ops->lookup = xop_lookup;
	ops->getattr = xop_getattr;
	ops->setattr = xop_setattr;
	ops->opendir = xop_opendir;
	ops->readdir = xop_readdir;
	ops->readdirplus = xop_readdirplus;
	ops->releasedir = xop_releasedir;
	ops->mkdir = xop_mkdir;
	ops->rmdir = xop_rmdir;
	ops->unlink = xop_unlink;
	ops->rename = xop_rename;
	ops->link = xop_link;
	ops->symlink = xop_symlink;
	ops->mknod = xop_mknod;
	ops->create = xop_create;
	ops->open = xop_open;
	ops->read = xop_read;
	ops->write = xop_write;
	ops->flush = xop_flush;
	ops->fsync = xop_fsync;
	ops->release = xop_release;
	ops->getxattr = xop_getxattr;
	ops->listxattr = xop_listxattr;
	ops->setxattr = xop_setxattr;
	ops->removexattr = xop_removexattr;
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

