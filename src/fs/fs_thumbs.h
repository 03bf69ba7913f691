/*
 * fs_thumbs.h - the desktop's thumbnails of the files of the tree
 * (-o desktop_thumbnails; fs_thumbs.c says how).  Every call below is a
 * no-op when the mount writes none (fs->thumbs NULL), and none waits: each
 * puts work on the thumbnails thread's queue.
 */
#ifndef MVFS_FS_THUMBS_H
#define MVFS_FS_THUMBS_H

#include <stddef.h>
#include <stdint.h>

#include "fs/fs.h"

/* Starts writing thumbnails for the files shown under MOUNTPOINT into the
 * daemon user's $XDG_CACHE_HOME/thumbnails (after the daemon's fork).  0,
 * or -errno with ERR saying why (no home, no absolute mount point). */
int fs_thumbs_start(struct mvfs *fs, const char *mountpoint, char *err, size_t errlen);
/* Stops the thread (what still waits is dropped) and frees it.  A no-op
 * when none runs. */
void fs_thumbs_stop(struct mvfs *fs);

/* The worker's "variants made" function (worker_config.made): the
 * original ASSET_ID has a new thumb variant, whose bytes are in THUMB_FD
 * (duplicated; the caller keeps its own).  ARG is the struct mvfs. */
void fs_thumbs_made(void *arg, const char *asset_id, int thumb_fd);
/* Folder DIR of the tree was listed (its handle released): its files'
 * missing thumbnails are made (once per folder per mount). */
void fs_thumbs_seen(struct mvfs *fs, uint64_t dir);
/* NAME in PARENT was renamed to NEWNAME in NEWPARENT (a file or a folder). */
void fs_thumbs_moved(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent, const char *newname);
/* NAME in PARENT was removed. */
void fs_thumbs_removed(struct mvfs *fs, uint64_t parent, const char *name);
/* File INO's mtime was set. */
void fs_thumbs_changed(struct mvfs *fs, uint64_t ino);

#endif
