/*
 * mounts.h - what is mounted where, from /proc/self/mountinfo through
 * libmount (its escapes, its field rules), for the mount point checks of
 * src/cli/mount.c and the readahead of src/fs/fs_readahead.c.
 */
#ifndef MVFS_MOUNTS_H
#define MVFS_MOUNTS_H

#include <sys/types.h>

/* The last mount on PATH, an absolute path spelled as mountinfo shows it
 * (no symbolic link resolved: PATH itself is never stat'ed, so a FUSE
 * mount that does not answer yet is found too).  0 with *DEV its device
 * number (DEV may be NULL); -ENOENT when nothing is mounted on PATH;
 * -errno when mountinfo cannot be read. */
int mounts_find(const char *path, dev_t *dev);

#endif
