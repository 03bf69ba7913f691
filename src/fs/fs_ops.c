/*
 * fs_ops.c - the FUSE low-level operations.
 *
 * Each request is one fs_do_<op>() that returns 0 or -errno and one
 * adapter here that replies exactly once.  What the tree is and how names
 * resolve is fs_ns.c; what is allowed where (docs/DESIGN.md's table of
 * operations) is decided by the workers: setattr here, the operations on
 * names in fs_names.c, files in fs_open.c, xattrs in fs_xattr.c, each
 * refusal with one log line naming the rule.  Nothing here speaks SQL or
 * talks to the store: that is meta_* and cache_*.
 *
 * Special nodes (the variant folders and files, the desktop trash:
 * fs_special.h) are known by their inode numbers: an operation on an inode
 * asks fs_special_of() once and calls that kind's worker; the names
 * ".display", ".thumb" and ".Trash-$UID" are known where names are
 * (fs_ns_lookup, and the refusals below).
 */
#include "fs/fs_ns.h"
#include "fs/fs_special.h"
#include "fs/fs_thumbs.h"
#include "fs/fs_variants.h"
#include "fs/fs_xdgtrash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache/cache.h"
#include "util/log.h"
#include "util/name.h"

static struct mvfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

const struct fs_special *fs_special_of(uint64_t ino)
{
	uint64_t base;

	return fs_vino_is(ino) ? &fs_variants_special : xdg_kind(ino, &base) ? &fs_xdg_special : NULL;
}

const struct fs_special *fs_special_of_either(uint64_t a, uint64_t b)
{
	const struct fs_special *x = fs_special_of(a), *y = fs_special_of(b);

	if (x == &fs_xdg_special || y == &fs_xdg_special)
		return &fs_xdg_special;
	return x ? x : y;
}

/* --- lookup, attributes -------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct fs_special *sp = fs_special_of(parent);
	struct fuse_entry_param e;
	int rc = sp ? sp->lookup(fs_of(req), parent, name, &e) : fs_ns_lookup(fs_of(req), parent, name, &e);

	if (rc == -ENOENT) {
		/* A negative entry, not cached: another mount may create it (a
		 * variant may be ready soon). */
		memset(&e, 0, sizeof(e));
		fuse_reply_entry(req, &e);
	} else if (rc) {
		fuse_reply_err(req, -rc);
	} else {
		if (e.entry_timeout > 0)
			fs_inode_named(fs_of(req), e.ino, parent, name);
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

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(ino);
	struct stat st;
	int rc = sp ? sp->getattr(fs_of(req), ino, &st) : fs_ns_getattr(fs_of(req), ino, &st);

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
	fs_file_catch_up(fs, &f);
	(void)fs_ns_visible(fs, &f);	/* what this mount shows is what is truncated */
	if (f.lifecycle != META_LIFE_ACTIVE) {
		log_warn("cannot truncate '%s': it is in .trash/, which is read-only", f.name);
		return -EPERM;
	}
	in = fs_inode_get(fs, ino, 0, 1);
	if (!in)
		return -ENOMEM;
	pthread_mutex_lock(&in->lock);
	fs_file_wait_commit(in);	/* its end may close the staging file */
	if (in->stage_fd >= 0) {
		rc = fs_file_truncate(fs, in, size);
	} else if (size != f.size) {
		rc = fs_file_stage(fs, in, &f, size == 0);
		if (rc == 0) {
			in->writers++;
			rc = fs_file_truncate(fs, in, size);
			if (rc == 0)
				rc = fs_file_commit(fs, in);
			fs_file_unstage(in);
		}
	}
	pthread_mutex_unlock(&in->lock);
	fs_inode_put(fs, ino, 0, 1);
	return rc;
}

/* The mode and times a setattr asks for: META_SET_* flags, with MTIME and
 * ATIME filled. */
static unsigned times_asked(const struct stat *attr, int to_set, struct timespec *mtime, struct timespec *atime)
{
	struct timespec now;
	unsigned flags = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	if (to_set & FUSE_SET_ATTR_MODE)
		flags |= META_SET_MODE;
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		flags |= META_SET_MTIME;
		*mtime = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now : attr->st_mtim;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		flags |= META_SET_ATIME;
		*atime = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? now : attr->st_atim;
	}
	return flags;
}

/* setattr of a plain file: its size through a staging file, its mode and
 * times on its row. */
static int plain_setattr(struct mvfs *fs, uint64_t ino, const struct stat *attr, int to_set, unsigned flags,
			 const struct timespec *mtime, const struct timespec *atime, struct stat *st)
{
	int rc = 0;

	if (to_set & FUSE_SET_ATTR_SIZE) {
		struct fs_inode *in = fs_inode_get(fs, ino, 0, 1);

		if (!in)
			return -ENOMEM;
		if (attr->st_size < 0 || (uint64_t)attr->st_size > META_PLAIN_MAX)
			rc = attr->st_size < 0 ? -EINVAL : -EFBIG;
		pthread_mutex_lock(&in->lock);
		if (rc == 0 && (rc = fs_plain_stage(fs, in, 0)) == 0) {
			in->writers++;
			rc = fs_file_truncate(fs, in, (uint64_t)attr->st_size);
			if (rc == 0)
				rc = fs_file_commit(fs, in);
			fs_file_unstage(in);
		}
		pthread_mutex_unlock(&in->lock);
		fs_inode_put(fs, ino, 0, 1);
	}
	if (rc == 0 && flags)
		rc = meta_plain_setattr(fs->meta, ino, flags, attr->st_mode, mtime, atime);
	return rc ? rc : fs_plain_getattr(fs, ino, st);
}

int fs_do_setattr(struct mvfs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *st)
{
	struct timespec mtime = { 0 }, atime = { 0 };
	unsigned flags = times_asked(attr, to_set, &mtime, &atime);
	struct meta_file f;
	struct fs_node n;
	int rc;

	if ((rc = fs_node_of(fs, ino, &n)) != 0)
		return rc;
	if (n.kind == FS_NODE_PLAIN)
		return plain_setattr(fs, ino, attr, to_set, flags, &mtime, &atime, st);
	if (n.kind == FS_NODE_FILE &&
	    (rc = fs_local_setattr(fs, ino, attr, to_set, flags, &mtime, &atime, st)) != -EAGAIN)
		return rc;	/* made here and open: no database yet */
	fs_record_flush_ino(fs, ino);	/* the record must not undo this */
	if (n.kind != FS_NODE_FILE) {
		struct meta_folder folder;

		if (to_set & FUSE_SET_ATTR_SIZE)
			return -EISDIR;
		/* Folders of the tree keep their mode and times (rsync -a and
		 * cp -a set them); the others have none to keep: accepted,
		 * unchanged. */
		if (flags && (fs_ns_is_tree(&n) || ino == META_INO_LIBRARY || ino == META_INO_WORKSPACE)) {
			/* the records of files made in it touch its row: before
			 * the times it is given (cp -a, rsync set them last) */
			fs_local_settle_all(fs);
			rc = meta_folder_setattr(fs->meta, ino, flags, attr->st_mode, &mtime, &atime, &folder);
			fs_known_folder_drop(fs, ino);	/* getattr's copy of its row is older */
			if (rc == 0)
				fs_local_dir_set(fs, ino);
			if (rc == 0)
				fs_ns_dir_stat(fs, ino, &folder, st);
			return rc;
		}
		log_debug("ignoring a change of attributes on a folder that keeps none");
		return fs_ns_getattr(fs, ino, st);
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0)
			return -EINVAL;
		rc = set_size(fs, ino, (uint64_t)attr->st_size);
		if (rc)
			return rc;
	}
	if (flags) {
		struct fs_inode *in = fs_inode_find(fs, ino);

		/* A file being written keeps the time it was given past its
		 * commit (cp -p sets it before close). */
		if (in && (flags & META_SET_MTIME)) {
			pthread_mutex_lock(&in->lock);
			/* not under a running commit, which records the mtime it copied */
			fs_file_wait_commit(in);
			if (in->stage_fd >= 0) {
				in->mtime = mtime;
				in->mtime_set = 1;
			}
			pthread_mutex_unlock(&in->lock);
		}
		rc = meta_file_setattr(fs->meta, ino, flags, attr->st_mode, &mtime, &atime, &f);
		if (rc)
			return rc;
		if (flags & META_SET_MTIME)
			fs_thumbs_changed(fs, ino);
		fs_file_stat(fs, &f, fs_inode_find(fs, ino), st);
		return 0;
	}
	/* Owner changes are accepted and not kept: every entry belongs to the
	 * user the mount acts for. */
	return fs_ns_getattr(fs, ino, st);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(ino);
	struct stat st;
	int rc = sp ? sp->setattr(fs_of(req), ino, attr, to_set, &st) : fs_do_setattr(fs_of(req), ino, attr, to_set, &st);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs_of(req)->cfg.attr_timeout);
}

/* --- folders ------------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(ino);
	struct fs_dir *d = NULL;
	void *sd = NULL;
	int rc;

	/* the handle is the special kind's for a special folder, else a struct fs_dir */
	if (sp) {
		if ((rc = sp->opendir(fs_of(req), ino, &sd)) != 0) {
			fuse_reply_err(req, -rc);
			return;
		}
		fi->fh = (uintptr_t)sd;
		if (fuse_reply_open(req, fi) != 0)
			sp->closedir(sd);
		return;
	}
	fs_local_settle_all(fs_of(req));	/* files made here are listed from the database */
	rc = fs_dir_open(fs_of(req), ino, &d);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)d;
	fs_dir_cache(d, fi);
	if (fuse_reply_open(req, fi) != 0)
		fs_dir_close(d);
}

/* A folder's own entries, then (from offset FS_VARIANTS_OFF) its variant
 * folders when the mount lists them; a special folder's entries. */
static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
			   int plus)
{
	const struct fs_special *sp = fs_special_of(ino);
	char *buf = malloc(size);
	size_t used = 0;
	int rc = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (sp)
		rc = sp->readdir(req, (void *)(uintptr_t)fi->fh, off, buf, size, plus, &used);
	else if (off < FS_VARIANTS_OFF)
		rc = fs_dir_read(req, (struct fs_dir *)(uintptr_t)fi->fh, off, buf, size, plus, &used);
	if (rc == 0 && used == 0 && !sp)
		used = fs_variants_dirs_listed(req, ino, off, buf, size, plus);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(ino);

	if (sp)
		sp->closedir((void *)(uintptr_t)fi->fh);
	else
		fs_dir_close((struct fs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	const struct fs_special *sp = fs_special_of(parent);
	struct fuse_entry_param e;
	struct mvfs *fs = fs_of(req);
	int rc;

	if (sp) {
		fuse_reply_err(req, -sp->mkdir(fs, parent, name));
		return;
	}
	if ((rc = fs_variants_refuse_name(fs, parent, name, "make folder")) != 0) {
		/* a variant folder of PARENT exists */
		fuse_reply_err(req, fs_variants_dir_named(name) ? EEXIST : -rc);
		return;
	}
	fs_known_making(fs, parent, name);
	rc = fs_do_mkdir(fs, parent, name, mode, &e);
	fs_known_made(fs, parent);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fs_known_dir(fs, e.ino);	/* new and empty: its names are the ones made here */
	fs_ns_dirs_changed(fs, parent, 0);
	fs_inode_named(fs, e.ino, parent, name);
	fuse_reply_entry(req, &e);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct fs_special *sp = fs_special_of(parent);
	struct mvfs *fs = fs_of(req);
	int rc = sp			      ? sp->rmdir(fs, parent, name)
		 : fs_xdg_top_named(fs, parent, name) ? xdg_refuse("remove", name, "it is a view of .trash/")
						       : fs_variants_refuse_name(fs, parent, name, "remove");

	fuse_reply_err(req, -(rc || sp ? rc : fs_ns_rmdir(fs, parent, name)));
}

/* --- names --------------------------------------------------------------- */

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct fs_special *sp = fs_special_of(parent);
	struct mvfs *fs = fs_of(req);

	if (sp)
		fuse_reply_err(req, -sp->unlink(fs, parent, name));
	else if (fs_variants_reserved(fs, parent, name) || fs_xdg_top_named(fs, parent, name))
		fuse_reply_err(req, EISDIR);
	else
		fuse_reply_err(req, -fs_ns_unlink(fs, parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	const struct fs_special *sp = fs_special_of_either(parent, newparent);
	struct mvfs *fs = fs_of(req);
	int rc = sp ? 0 : fs_variants_refuse_name(fs, parent, name, "rename");

	if (rc == 0 && !sp)
		rc = fs_variants_refuse_name(fs, newparent, newname, "rename onto");
	if (rc == 0)
		rc = sp ? sp->rename(fs, parent, name, newparent, newname, flags)
			: fs_ns_rename(fs, parent, name, newparent, newname, flags);
	fuse_reply_err(req, -rc);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fuse_entry_param e;
	const struct fs_special *sp = fs_special_of_either(ino, newparent);
	struct mvfs *fs = fs_of(req);
	int rc;

	rc = sp ? sp->link(newname) : fs_variants_refuse_name(fs, newparent, newname, "link");
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fs_record_flush_ino(fs, ino);
	rc = fs_do_link(fs, ino, newparent, newname, &e);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fs_ns_dirs_changed(fs, newparent, 0);
	fuse_reply_entry(req, &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	const struct fs_special *sp = fs_special_of(parent);
	int rc = sp ? sp->make(name, 1) : fs_variants_refuse_name(fs_of(req), parent, name, "make");

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	log_warn("cannot make symbolic link '%s': a memories library holds files only", name);
	fuse_reply_err(req, EPERM);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	const struct fs_special *sp = fs_special_of(parent);
	int rc = sp ? sp->make(name, 0) : fs_variants_refuse_name(fs_of(req), parent, name, "make");

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	log_warn("cannot make '%s': only regular files can be created (with open/creat)", name);
	fuse_reply_err(req, EPERM);
}

/* --- files --------------------------------------------------------------- */

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(parent);
	struct fuse_entry_param e;
	struct mvfs *fs = fs_of(req);
	int rc = sp					    ? sp->create(fs, parent, name, fi, &e)
		 : fs_variants_reserved(fs, parent, name) ? -EEXIST
							    : fs_do_create(fs, parent, name, mode, fi, &e);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (e.entry_timeout > 0)
		fs_inode_named(fs, e.ino, parent, name);
	if (!sp)
		fs_open_direct(fi, e.attr.st_mode);
	if (fuse_reply_create(req, &e, fi) != 0 && sp)
		sp->release((void *)(uintptr_t)fi->fh);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(ino);
	struct mvfs *fs = fs_of(req);
	void *sf = NULL;
	int rc;

	/* the handle is the special kind's for a special file, else a struct fs_handle */
	if (sp) {
		if ((rc = sp->open(fs, ino, fi, &sf)) != 0) {
			fuse_reply_err(req, -rc);
			return;
		}
		fi->fh = (uintptr_t)sf;
		if (fuse_reply_open(req, fi) != 0)
			sp->release(sf);
		return;
	}
	if ((rc = fs_do_open(fs, ino, fi)) != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_open(req, fi);
	/* O_TRUNC changed the file's times; the kernel keeps the attributes
	 * it had (atomic O_TRUNC sends no setattr), so tell it. */
	if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY && fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(ino);
	struct mvfs *fs = fs_of(req);
	char *buf = malloc(size ? size : 1);
	struct cache_ref ref = { 0 };
	size_t got = 0;
	int rc;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (sp)
		rc = sp->read(fs, (void *)(uintptr_t)fi->fh, size, off, buf, &got);
	else
		rc = fs_do_read(fs, (struct fs_handle *)(uintptr_t)fi->fh, size, off, buf, &got, &ref);
	if (rc) {
		fuse_reply_err(req, -rc);
	} else if (ref.data) {
		/* straight from the block in the cache's memory, which stays
		 * pinned until the reply is written (one buffer: libfuse
		 * writes it to /dev/fuse as it is, without a copy) */
		struct fuse_bufvec v = FUSE_BUFVEC_INIT(got);

		v.buf[0].mem = (void *)ref.data;
		fuse_reply_data(req, &v, FUSE_BUF_NO_SPLICE);
	} else {
		fuse_reply_buf(req, buf, got);
	}
	cache_ref_drop(fs->cache, &ref);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(ino);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	ssize_t n = sp		   ? sp->write(fs_of(req), (void *)(uintptr_t)fi->fh, buf, size, off)
		    : h->writable ? fs_file_write(fs_of(req), h->in, buf, size, off)
				  : -EBADF;

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* close(2).  A file this handle made or truncated, still empty, is left
 * for release: a shell's `> file` closes a duplicate of the descriptor
 * before writing, and committing there would make an empty version first
 * (and, over an existing file, a stray empty version with a blob row). */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(ino);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	int rc = sp ? sp->flush(fs_of(req), (void *)(uintptr_t)fi->fh) : 0;

	if (!sp && h->writable) {
		pthread_mutex_lock(&h->in->lock);
		if (!(h->in->size == 0 && h->created))
			rc = fs_file_commit(fs_of(req), h->in);
		pthread_mutex_unlock(&h->in->lock);
	}
	fuse_reply_err(req, -rc);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	/* a special node keeps nothing to make durable: it is made from records */
	fuse_reply_err(req, fs_special_of(ino) ? 0 : -fs_do_fsync(fs_of(req), (struct fs_handle *)(uintptr_t)fi->fh));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct fs_special *sp = fs_special_of(ino);
	struct mvfs *fs = fs_of(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	if (sp) {
		sp->release((void *)(uintptr_t)fi->fh);
		fuse_reply_err(req, 0);
		return;
	}
	if (h->writable || h->plain) {
		pthread_mutex_lock(&h->in->lock);
		/* Pages written through mmap can arrive after the last flush. */
		if (h->writable)
			fs_file_commit(fs, h->in);
		fs_file_unstage(h->in);
		pthread_mutex_unlock(&h->in->lock);
		/* made here, and its commit failed: made in the database now,
		 * empty, rather than left to this mount alone (never waits
		 * for the recorder: a RELEASE that waits holds up the
		 * kernel's other background requests) */
		fs_local_unfinished(fs, ino);
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
	meta_usage(fs->meta, &files, &bytes);	/* the last figure counted: no wait */
	if (cache_space(fs->cache, &total, &avail) != 0) {
		/* an object store without a size: what is kept, and 1 TiB more */
		total = bytes + (1ULL << 40);
		avail = 1ULL << 40;
	}
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

/* --- extended attributes (fs_xattr.c) ------------------------------------ */

static void reply_xattr(fuse_req_t req, ssize_t n, const char *buf, size_t size)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	const struct fs_special *sp = fs_special_of(ino);
	char *buf = NULL;
	ssize_t n;

	if ((n = fs_xattr_quiet(name)) != 0) {	/* ls -l's: one answer everywhere, at once */
		fuse_reply_err(req, (int)-n);
		return;
	}
	buf = size ? malloc(size) : NULL;
	n = size && !buf ? -ENOMEM
	    : sp	     ? sp->getxattr(fs_of(req), ino, name, buf, size)
			     : fs_do_getxattr(fs_of(req), ino, name, buf, size);

	reply_xattr(req, n, buf, size);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;

	/* what a special node is, is readable by name; nothing of it is listed */
	reply_xattr(req, size && !buf	       ? -ENOMEM
			 : fs_special_of(ino) ? 0
					   : fs_do_listxattr(fs_of(req), ino, buf, size),
		    buf, size);
	free(buf);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	const struct fs_special *sp = fs_special_of(ino);
	struct mvfs *fs = fs_of(req);
	struct stat cur, st;
	mode_t mode;
	int rc;

	if (sp) {
		fuse_reply_err(req, -sp->setxattr(name));
		return;
	}
	fs_record_flush_ino(fs, ino);
	if (strncmp(name, "system.posix_acl_", 17) != 0) {
		fuse_reply_err(req, -fs_do_setxattr(fs, ino, name, value, size, flags));
		return;
	}
	/* an ACL a chmod-like tool set: the mode it stands for is the mode;
	 * the kernel, which keeps no ACLs here, is told the attributes it
	 * holds changed before the call returns */
	if ((rc = fs_xattr_acl_mode(ino, name, value, size, &mode)) == 0 &&
	    (rc = fs_ns_getattr(fs, ino, &cur)) == 0) {
		cur.st_mode = (cur.st_mode & ~0777) | mode;
		rc = fs_do_setattr(fs, ino, &cur, FUSE_SET_ATTR_MODE, &st);
	}
	if (rc == 0 && fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	fuse_reply_err(req, -rc);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	const struct fs_special *sp = fs_special_of(ino);

	if (sp) {
		fuse_reply_err(req, -sp->removexattr(name));
		return;
	}
	fs_record_flush_ino(fs_of(req), ino);
	fuse_reply_err(req, -fs_do_removexattr(fs_of(req), ino, name));
}

/* --- session ------------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mvfs *fs = userdata;

	/* O_TRUNC arrives with open, not as a separate truncate: one new
	 * version per rewrite, not an empty one first. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* No ACLs: with FUSE_CAP_POSIX_ACL the kernel would ask each inode's
	 * (one round trip a file at a cold `ls -l`); without it, the ACL
	 * asked is ENOTSUP and ls asks no other file of the mount.  The
	 * kernel checks mode bits itself all the same (default_permissions,
	 * fs_session_open). */
	conn->want &= ~FUSE_CAP_POSIX_ACL;
	/* Always readdirplus: ls -l needs every entry's attributes. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* statfs's first figure, counted now: find (fts), df and file
	 * managers ask it before anything else, and the count walks every file
	 * of the user (a cold find of 10,000 files waited ~60 ms for it) */
	meta_usage_start(fs->meta);
	conn->max_write = 1 << 20;
	/* libfuse clips it to what the kernel offered (its bdi's readahead,
	 * 128 KiB): fs_readahead_set raises the bdi after this reply */
	conn->max_readahead = fs->cfg.read_ahead_kb ? fs->cfg.read_ahead_kb << 10 : 128u << 10;
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
