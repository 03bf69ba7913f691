/*
 * fs_import.c - writing into the filesystem without the kernel, for
 * `mvaultfs import` (src/cli/import.c).
 *
 * Each call does what the kernel's requests do for `cp -p` or `rsync -a`
 * through a mount, in the same order and through the same workers:
 * LOOKUP, MKDIR, CREATE, WRITE, SETATTR (the mtime), RELEASE, FORGET, and
 * for a name that exists, CREATE of a temporary name and RENAME over it.
 * So what import writes is recorded, named, journalled, uploaded and given
 * its variant jobs exactly as a copy through a mount would be, and nothing
 * here knows SQL or the store.  The caller stands in for the kernel: every
 * reference a reply would hand the kernel is dropped here or by
 * fs_import_put, as FORGET and RELEASE drop them.
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

void fs_import_put(struct mvfs *fs, uint64_t ino)
{
	/* what an entry reply counted, as FORGET gives it back */
	if (ino >= META_INO_FIRST && fs_inode_find(fs, ino))
		fs_inode_put(fs, ino, 1, 0);
}

int fs_import_lookup(struct mvfs *fs, uint64_t parent, const char *name, uint64_t *ino, int *is_dir)
{
	struct fuse_entry_param e;
	int rc = fs_ns_lookup(fs, parent, name, &e);

	if (rc)
		return rc;
	*ino = e.ino;
	*is_dir = S_ISDIR(e.attr.st_mode);
	return 0;
}

int fs_import_folder(struct mvfs *fs, uint64_t parent, const char *name, mode_t mode, uint64_t *ino)
{
	struct fuse_entry_param e;
	int is_dir, rc = fs_import_lookup(fs, parent, name, ino, &is_dir);

	if (rc == 0 && !is_dir) {
		fs_import_put(fs, *ino);
		return -ENOTDIR;
	}
	if (rc != -ENOENT)
		return rc;
	fs_known_making(fs, parent, name);
	rc = fs_do_mkdir(fs, parent, name, mode & 07777, &e);
	fs_known_made(fs, parent);
	if (rc == -EEXIST)	/* made meanwhile by another writer */
		return fs_import_folder(fs, parent, name, mode, ino);
	if (rc)
		return rc;
	fs_ns_dirs_changed(fs, parent, 0);
	*ino = e.ino;
	return 0;
}

/* Copies SIZE bytes of FD into H's file; 0 or -errno (-EIO: FD changed
 * size while read). */
static int copy_in(struct mvfs *fs, struct fs_handle *h, int fd, uint64_t size)
{
	enum { CHUNK = 1 << 20 };
	char *buf = malloc(CHUNK);
	uint64_t off = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (rc == 0 && off < size) {
		ssize_t n = pread(fd, buf, CHUNK, (off_t)off), w = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		while (rc == 0 && w < n) {
			ssize_t k = fs_file_write(fs, h->in, buf + w, (size_t)(n - w), (off_t)(off + (uint64_t)w));

			if (k < 0)
				rc = (int)k;
			else
				w += k;
		}
		off += (uint64_t)n;
	}
	free(buf);
	return rc;
}

/* RELEASE of H on INO: commits, closes the staging file, frees H and
 * gives back the open count; then FORGET of the create's lookup. */
static int release(struct mvfs *fs, uint64_t ino, struct fs_handle *h, char *sha256)
{
	int rc;

	pthread_mutex_lock(&h->in->lock);
	rc = fs_file_commit(fs, h->in);
	if (sha256)
		snprintf(sha256, 65, "%s", h->in->sha256);
	fs_file_unstage(h->in);
	pthread_mutex_unlock(&h->in->lock);
	fs_local_unfinished(fs, ino);
	fs_handle_free(fs, h);
	fs_inode_put(fs, ino, 0, 1);
	fs_import_put(fs, ino);
	return rc;
}

int fs_import_times(struct mvfs *fs, uint64_t ino, const struct timespec *mtime)
{
	struct stat attr = { .st_mtim = *mtime, .st_atim = *mtime }, st;

	return fs_do_setattr(fs, ino, &attr, FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME, &st);
}

/* CREATE NAME in PARENT, the bytes, the mtime, RELEASE. */
static int write_new(struct mvfs *fs, uint64_t parent, const char *name, int fd, uint64_t size, mode_t mode,
		     const struct timespec *mtime, char *sha256)
{
	struct fuse_file_info fi = { .flags = O_WRONLY | O_CREAT | O_EXCL };
	struct fuse_entry_param e;
	struct fs_handle *h;
	int rc = fs_do_create(fs, parent, name, S_IFREG | (mode & 07777), &fi, &e), rc2;

	if (rc)
		return rc;
	fs_ns_dirs_changed(fs, parent, 0);
	h = (struct fs_handle *)(uintptr_t)fi.fh;
	rc = copy_in(fs, h, fd, size);
	/* as cp -p: the times on the open file, before its close */
	if (rc == 0)
		rc = fs_import_times(fs, e.ino, mtime);
	rc2 = release(fs, e.ino, h, sha256);
	return rc ? rc : rc2;
}

int fs_import_write(struct mvfs *fs, uint64_t parent, const char *name, int fd, uint64_t size, mode_t mode,
		    const struct timespec *mtime, char sha256[65])
{
	char tmp[256];
	uint64_t ino;
	int is_dir, rc = fs_import_lookup(fs, parent, name, &ino, &is_dir);

	sha256[0] = '\0';
	if (rc == -ENOENT)
		return write_new(fs, parent, name, fd, size, mode, mtime, sha256);
	if (rc)
		return rc;
	fs_import_put(fs, ino);
	if (is_dir)
		return -EISDIR;
	/* rsync's way over a file: a temporary name renamed over it, whose
	 * content becomes a new version of the file (same memory, galleries;
	 * the replaced content goes to .trash/) */
	snprintf(tmp, sizeof(tmp), ".%.200s.import%d", name, (int)getpid());
	rc = write_new(fs, parent, tmp, fd, size, mode, mtime, sha256);
	if (rc)
		return rc;
	rc = fs_ns_rename(fs, parent, tmp, parent, name, 0);
	if (rc) {
		int gone = fs_ns_unlink(fs, parent, tmp);

		if (gone && gone != -ENOENT)
			log_warn("cannot remove '%s' after a failed import: %s", tmp, strerror(-gone));
	}
	return rc;
}
