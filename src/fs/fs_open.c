/*
 * fs_open.c - the workers of create, open, read and fsync: what a handle on
 * a file is, and where its bytes come from (the staging file while it is
 * written, else the block cache and the store).  Plain files (fs_plain.c)
 * get a handle on a staging file holding their bytes.  The adapters that
 * reply are in fs_ops.c.
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "util/log.h"
#include "util/name.h"

/* A handle on plain file IN (open count held), its bytes staged. */
static int plain_handle(struct mvfs *fs, struct fs_inode *in, int writable, int truncate,
			struct fuse_file_info *fi)
{
	struct fs_handle *h;
	int rc;

	pthread_mutex_lock(&in->lock);
	rc = fs_plain_stage(fs, in, truncate);
	if (rc == 0)
		in->writers++;		/* every handle reads the staged bytes */
	pthread_mutex_unlock(&in->lock);
	if (rc)
		return rc;
	h = fs_handle_new(fs, in, NULL);
	if (!h) {
		pthread_mutex_lock(&in->lock);
		fs_file_unstage(in);
		pthread_mutex_unlock(&in->lock);
		return -ENOMEM;
	}
	h->writable = writable;
	h->created = truncate;
	h->plain = 1;
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	return 0;
}

/* Creates plain file NAME (.DS_Store and the like) in DIR. */
static int create_plain(struct mvfs *fs, const struct meta_dir *dir, const char *name, mode_t mode,
			const struct timespec *now, struct fuse_file_info *fi, struct fuse_entry_param *e)
{
	struct meta_plain p;
	struct fs_inode *in;
	int rc = meta_plain_create(fs->meta, dir, name, mode, now, &p);

	if (rc)
		return rc;
	if ((rc = fs_plain_entry(fs, &p, e)) != 0)
		return rc;
	in = fs_inode_get(fs, p.ino, 0, 1);
	if (!in) {
		fs_inode_put(fs, p.ino, 1, 0);
		return -ENOMEM;
	}
	snprintf(in->name, sizeof(in->name), "%s", name);
	rc = plain_handle(fs, in, 1, 1, fi);
	if (rc) {
		meta_plain_unlink(fs->meta, dir, name);
		fs_inode_put(fs, p.ino, 1, 1);
	}
	return rc;
}

struct fs_handle *fs_new_file(struct mvfs *fs, struct fs_inode *in, const char *name, const struct meta_dir *dir,
			      int local, mode_t mode, int *rc)
{
	struct fs_handle *h;

	pthread_mutex_lock(&in->lock);
	snprintf(in->name, sizeof(in->name), "%s", name);
	in->home = *dir;
	in->conflict_ino = 0;
	if (local) {
		in->local = 1;
		in->local_mode = mode & 07777;
		clock_gettime(CLOCK_REALTIME, &in->local_made);
		in->local_atime_set = 0;
		in->local_rows = 0;
	}
	*rc = fs_file_stage(fs, in, NULL, 1);
	if (*rc == 0)
		in->writers++;
	pthread_mutex_unlock(&in->lock);
	h = *rc == 0 ? fs_handle_new(fs, in, NULL) : NULL;
	if (!h) {
		pthread_mutex_lock(&in->lock);
		if (*rc == 0) {
			fs_file_unstage(in);
			*rc = -ENOMEM;
		}
		in->local = 0;
		pthread_mutex_unlock(&in->lock);
		return NULL;
	}
	h->writable = 1;
	h->created = 1;
	return h;
}

void fs_open_direct(struct fuse_file_info *fi, mode_t mode)
{
	if ((fi->flags & O_ACCMODE) == O_WRONLY && !(mode & (S_ISUID | S_ISGID)))
		fi->direct_io = 1;
}

int fs_do_create(struct mvfs *fs, uint64_t parent, const char *name, mode_t mode,
			struct fuse_file_info *fi, struct fuse_entry_param *e)
{
	struct timespec now;
	struct meta_file f;
	struct fs_inode *in;
	struct fs_handle *h;
	struct meta_dir dir;
	char conflict[256];
	int rc;

	if ((rc = fs_ns_files_dir(fs, parent, "create", name, &dir)) != 0)
		return rc;
	if (dir.place == META_PLACE_TRASH) {
		log_warn("cannot create '%s' in .trash/: it is read-only", name);
		return -EPERM;
	}
	if (!S_ISREG(mode)) {
		log_warn("cannot create '%s': only regular files can be created", name);
		return -EPERM;
	}
	if ((rc = fs_ns_check_name(name)) != 0)
		return rc;
	clock_gettime(CLOCK_REALTIME, &now);
	if (name_is_plain(name)) {
		fs_known_making(fs, parent, name);
		rc = create_plain(fs, &dir, name, mode, &now, fi, e);
		fs_known_made(fs, parent);
		if (rc == 0)
			fs_ns_dirs_changed(fs, parent, 0);
		return rc;
	}
	/* no round trip: made in the database with its first close's record
	 * (the folder's row too: until then its time is laid over the row) */
	if ((rc = fs_local_create(fs, &dir, name, mode, fi, e)) != -EAGAIN) {
		if (rc == 0)
			fs_ns_dirs_touched(fs, parent, 0);
		return rc;
	}
	/* a collection's or gallery's file goes into a tree folder: the names
	 * made there by this mount must be in the database to be found taken,
	 * and no folder's names are known after it (the call names none) */
	fs_local_settle_all(fs);
	if (dir.place != META_PLACE_LIBRARY && dir.place != META_PLACE_WORKSPACE)
		fs_known_forget(fs);
	fs_known_making(fs, parent, name);
	rc = meta_create(fs->meta, &dir, name, mode, &now, &f);
	if (rc == -EEXIST && !fs_ns_visible(fs, &f)) {
		/* Left by a writer that died before its first commit. */
		log_info("removing the unfinished earlier upload of '%s'", name);
		if ((rc = meta_file_abort(fs->meta, f.ino)) == 0)
			rc = meta_create(fs->meta, &dir, name, mode, &now, &f);
	}
	/* Still taken, and the kernel asked to create it (it did not know the
	 * name): another mount made it a moment ago, or is writing it and has
	 * closed it once.  Without O_EXCL this writer's bytes go to a conflict
	 * copy beside it: neither closed write is lost, and neither silently
	 * replaces the other (DECISIONS.md, "Two writers of one name"). */
	for (int n = 1; rc == -EEXIST && !(fi->flags & O_EXCL) && n <= 20; n++) {
		fs_conflict_name(name, n, conflict, sizeof(conflict));
		fs_known_name(fs, parent, conflict);
		rc = meta_create(fs->meta, &dir, conflict, mode, &now, &f);
		if (rc == 0)
			log_warn("'%s' was made by another mount a moment ago: this one writes '%s' instead",
				 name, conflict);
	}
	fs_known_made(fs, parent);
	if (rc)
		return rc;
	in = fs_inode_get(fs, f.ino, 1, 1);
	if (!in) {
		meta_file_abort(fs->meta, f.ino);
		return -ENOMEM;
	}
	if (!(h = fs_new_file(fs, in, name, &dir, 0, mode, &rc))) {
		meta_file_abort(fs->meta, f.ino);
		fs_inode_put(fs, f.ino, 1, 1);
		return rc;
	}
	fi->fh = (uintptr_t)h;
	fs_file_stat(fs, &f, in, &e->attr);
	fs_ns_entry(fs, &e->attr, e);
	fs_ns_dirs_changed(fs, parent, 0);
	return 0;
}

int fs_do_open(struct mvfs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct meta_file f;
	struct fs_inode *in;
	struct fs_handle *h;
	int rc;

	struct fs_node n;

	if ((rc = fs_node_of(fs, ino, &n)) != 0)
		return rc;
	if (n.kind == FS_NODE_PLAIN) {
		in = fs_inode_get(fs, ino, 0, 1);
		if (!in)
			return -ENOMEM;
		rc = plain_handle(fs, in, (fi->flags & O_ACCMODE) != O_RDONLY,
				  (fi->flags & O_ACCMODE) != O_RDONLY && (fi->flags & O_TRUNC), fi);
		if (rc)
			fs_inode_put(fs, ino, 0, 1);
		return rc;
	}
	if (n.kind != FS_NODE_FILE)
		return -EISDIR;
	if ((rc = fs_local_open_read(fs, ino, fi)) != -EAGAIN)
		return rc;
	fs_local_settle(fs, ino);	/* made here: its rows first */
	/* the commits before the rows are read: one that ends meanwhile is
	 * followed at the first read (follow_commits), not missed */
	uint64_t commits = 0;

	if ((in = fs_inode_find(fs, ino)) != NULL) {
		pthread_mutex_lock(&in->lock);
		commits = in->commits;
		pthread_mutex_unlock(&in->lock);
	}
	rc = meta_file_get(fs->meta, ino, &f);
	if (rc)
		return rc;
	fs_file_catch_up(fs, &f);
	/* Another mount's version not uploaded yet: the one before is read,
	 * and is what a writer here starts from (its base). */
	(void)fs_ns_visible(fs, &f);
	if ((fi->flags & O_ACCMODE) != O_RDONLY && f.lifecycle != META_LIFE_ACTIVE) {
		log_warn("cannot write '%s': it is in .trash/, which is read-only", f.name);
		return -EROFS;
	}
	in = fs_inode_get(fs, ino, 0, 1);
	if (!in)
		return -ENOMEM;
	h = fs_handle_new(fs, in, &f);
	if (!h) {
		fs_inode_put(fs, ino, 0, 1);
		return -ENOMEM;
	}
	pthread_mutex_lock(&in->lock);
	h->commits = commits;
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		/* never committed: nothing to copy (content being uploaded is);
		 * bytes another handle is writing stay unless O_TRUNC */
		int fresh = f.upload == META_UPLOAD_PENDING;

		if (!in->name[0])
			snprintf(in->name, sizeof(in->name), "%s", f.name);
		rc = fs_file_stage(fs, in, fresh ? NULL : &f, (fi->flags & O_TRUNC) != 0);
		if (rc == 0) {
			in->writers++;
			h->writable = 1;
			h->created = fresh || (fi->flags & O_TRUNC);
			fs_open_direct(fi, f.mode);
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

/* A descriptor reads what the file holds now, as on a local disk: after a
 * version was committed here since H took its content (another descriptor
 * of this mount wrote, appended or truncated the file and closed it), H
 * takes the file's content anew.  Without it H went on reading the version
 * it was opened on, and its short reads made the kernel shrink the file
 * (tail -f of a file appended by another process saw nothing new). */
static int follow_commits(struct mvfs *fs, struct fs_handle *h)
{
	struct fs_inode *in = h->in;
	struct meta_file f;
	uint64_t commits;
	int rc;

	pthread_mutex_lock(&in->lock);
	commits = in->commits;
	pthread_mutex_unlock(&in->lock);
	if (commits == h->commits || h->plain)
		return 0;
	if ((rc = meta_file_get(fs->meta, in->ino, &f)) != 0)
		return rc;
	fs_file_catch_up(fs, &f);
	pthread_mutex_lock(&in->lock);	/* another read of H may copy them meanwhile */
	h->size = f.size;
	snprintf(h->sha256, sizeof(h->sha256), "%s", f.sha256);
	h->commits = commits;
	pthread_mutex_unlock(&in->lock);
	memset(&h->ra, 0, sizeof(h->ra));
	return 0;
}

int fs_do_read(struct mvfs *fs, struct fs_handle *h, size_t size, off_t off, char *buf, size_t *got,
	       struct cache_ref *ref)
{
	struct fs_inode *in = h->in;
	int fd = -1, staged, err = 0, rc;
	ssize_t n = 0;

	/* A descriptor of its own: the read needs no lock, and a write that
	 * replaces the staging file meanwhile (unseal) cannot close it. */
	pthread_mutex_lock(&in->lock);
	staged = in->stage_fd >= 0;
	if (staged && (fd = fcntl(in->stage_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		n = pread(in->stage_fd, buf, size, off);	/* out of descriptors */
		err = errno;
	}
	pthread_mutex_unlock(&in->lock);
	if (fd >= 0) {
		n = pread(fd, buf, size, off);
		err = errno;
		close(fd);
	}
	if (staged) {
		*got = n < 0 ? 0 : (size_t)n;
		return n < 0 ? -err : 0;
	}
	if ((rc = follow_commits(fs, h)) != 0)
		return rc;
	char sha[65];
	uint64_t have;

	pthread_mutex_lock(&in->lock);
	snprintf(sha, sizeof(sha), "%s", h->sha256);
	have = h->size;
	pthread_mutex_unlock(&in->lock);
	if ((uint64_t)off >= have) {
		*got = 0;
		return 0;
	}
	rc = cache_read_ref(fs->cache, sha, have, (uint64_t)off, size, buf, got, &h->ra, ref);
	if (rc)
		log_error("cannot read '%s' at %lld: %s", in->name[0] ? in->name : sha, (long long)off,
			  strerror(-rc));
	return rc == -ENOENT ? -EIO : rc;	/* a row without its object */
}

int fs_commit_handle(struct mvfs *fs, struct fs_handle *h)
{
	int rc = 0;

	if (!h->writable)
		return 0;
	pthread_mutex_lock(&h->in->lock);
	rc = fs_file_commit(fs, h->in);
	pthread_mutex_unlock(&h->in->lock);
	return rc;
}

/* fsync(2) returns once the file's content is in the store. */
int fs_do_fsync(struct mvfs *fs, struct fs_handle *h)
{
	char sha[65] = "";
	int rc = fs_commit_handle(fs, h);

	if (rc)
		return rc;
	pthread_mutex_lock(&h->in->lock);
	snprintf(sha, sizeof(sha), "%s", h->in->sha256[0] ? h->in->sha256 : h->sha256);
	pthread_mutex_unlock(&h->in->lock);
	if (!sha[0])
		return 0;
	rc = cache_wait_uploaded(fs->cache, sha, fs->cfg.fsync_timeout);
	if (rc == -ETIMEDOUT) {
		log_error("fsync of '%s': its upload did not finish within %.0f s", h->in->name,
			  fs->cfg.fsync_timeout);
		rc = -EIO;
	}
	return rc;
}
