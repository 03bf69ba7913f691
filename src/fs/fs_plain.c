/*
 * fs_plain.c - plain files: what operating systems and editors leave in
 * folders (util/name.h name_is_plain), kept beside the memories but never
 * as one (meta_plain.c).
 *
 * They use the same staging file as a memory being written: opened, a
 * plain file's bytes are loaded into one (they are small, META_PLAIN_MAX at
 * most), reads and writes go to it, and a commit writes the bytes back to
 * its row in one statement.  No hashing, no upload, no versions: a plain
 * file is what the folder holds, as on ext4.
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

void fs_plain_stat(struct mvfs *fs, const struct meta_plain *p, struct fs_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = p->ino;
	st->st_mode = S_IFREG | (p->mode & 07777);
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)p->size;
	st->st_mtim = p->mtime;
	st->st_ctim = p->ctime;
	st->st_atim = p->atime;
	if (in) {
		pthread_mutex_lock(&in->lock);
		if (in->stage_fd >= 0)
			st->st_size = (off_t)in->size;
		if (in->mtime_set)
			st->st_mtim = st->st_ctim = in->mtime;
		pthread_mutex_unlock(&in->lock);
	}
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
}

int fs_plain_entry(struct mvfs *fs, const struct meta_plain *p, struct fuse_entry_param *e)
{
	struct fs_inode *in = fs_inode_get(fs, p->ino, 1, 0);

	if (!in)
		return -ENOMEM;
	in->plain = 1;
	fs_plain_stat(fs, p, in, &e->attr);
	fs_ns_entry(fs, &e->attr, e);
	return 0;
}

int fs_plain_getattr(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	struct meta_plain p;
	int rc = meta_plain_get(fs->meta, ino, &p);

	if (rc == 0)
		fs_plain_stat(fs, &p, fs_inode_find(fs, ino), st);
	return rc;
}

int fs_plain_stage(struct mvfs *fs, struct fs_inode *in, int truncate)
{
	void *buf = NULL;
	size_t len = 0;
	int fd, rc = 0;

	if (truncate)
		fs_file_wait_commit(in);	/* as fs_file_stage */
	if (in->stage_fd >= 0)
		return truncate ? fs_file_truncate(fs, in, 0) : 0;
	if (!truncate && (rc = meta_plain_read(fs->meta, in->ino, &buf, &len)) != 0)
		return rc;
	fd = cache_stage_create(fs->cache);
	if (fd < 0) {
		free(buf);
		return fd;
	}
	if (len > 0 && (rc = cache_write_full(fd, buf, len, 0)) != 0)
		log_error("cannot stage plain file '%s': %s", in->name, strerror(-rc));
	free(buf);
	if (rc) {
		close(fd);
		return rc;
	}
	in->stage_fd = fd;
	in->size = len;
	in->sealed = 0;
	in->dirty = truncate;
	in->plain = 1;
	if (truncate) {
		in->mtime_set = 1;
		clock_gettime(CLOCK_REALTIME, &in->mtime);
	}
	return 0;
}

int fs_plain_commit(struct mvfs *fs, struct fs_inode *in)
{
	struct timespec now, mtime = in->mtime;
	uint64_t size = in->size;
	int fd = in->stage_fd, mtime_set = in->mtime_set, rc = 0;
	char name[256], *buf;

	if (in->write_error) {
		rc = in->write_error;
		log_error("not keeping '%s': a write to it failed (%s)", in->name, strerror(-rc));
		in->dirty = 0;
		in->write_error = 0;
		return rc;
	}
	if (size > META_PLAIN_MAX) {
		log_error("cannot keep '%s': %llu bytes, more than a folder's plain file may hold (%u)",
			  in->name, (unsigned long long)size, META_PLAIN_MAX);
		return -EFBIG;
	}
	snprintf(name, sizeof(name), "%s", in->name);
	/* Up to META_PLAIN_MAX bytes read and one statement: not under the
	 * lock, with the staged bytes held still by the running commit. */
	fs_file_commit_start(in);
	buf = malloc(size ? size : 1);
	if (!buf)
		rc = -ENOMEM;
	else if (size && pread(fd, buf, size, 0) != (ssize_t)size)
		rc = errno ? -errno : -EIO;
	clock_gettime(CLOCK_REALTIME, &now);
	if (rc == 0)
		rc = meta_plain_write(fs->meta, in->ino, buf, size, mtime_set ? &mtime : &now);
	free(buf);
	if (rc)
		log_error("cannot keep plain file '%s': %s", name, strerror(-rc));
	fs_file_commit_end(in);
	if (rc)
		return rc;
	in->dirty = 0;
	in->mtime_set = 0;
	in->commits++;
	return 0;
}
