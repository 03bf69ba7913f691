/*
 * meta_thumbs.h - what the desktop's thumbnails (fs_thumbs.c) need to know
 * of the tree: the path of a folder of library/ or workspace/, and the
 * files in one (or below it) with their paths, times and sizes.
 *
 * Paths are relative to the mount's top ("library/2023/a.jpg") and use the
 * names as stored (display_name), which are the names shown in a folder
 * of the tree unless two files share one (a twin's suffix is not given).
 * Conventions as in meta.h.
 */
#ifndef MVFS_META_THUMBS_H
#define MVFS_META_THUMBS_H

#include <stdint.h>

#include "meta/meta.h"

#define META_PATH_MAX 4096

/* A current file of the tree. */
struct meta_tree_file {
	uint64_t ino;
	const char *path;		/* relative to the mount's top */
	int64_t mtime;			/* seconds */
	uint64_t size;
	int has_thumb;			/* a ready thumb variant */
};
typedef int (*meta_tree_file_fn)(void *arg, const struct meta_tree_file *f);

/* The path of tree folder DIR ("library", "library/2023") into OUT: 0,
 * -ENOENT when DIR is no folder of the tree, -ENAMETOOLONG.  One
 * statement. */
int meta_tree_path(struct meta *m, const struct meta_dir *dir, char *out, size_t len);

/* Calls FN for every current file of tree folder DIR (RECURSIVE: and of
 * every folder below it), until FN returns non-zero.  One statement.  0,
 * -ENOENT when DIR is no folder of the tree, or -errno. */
int meta_tree_files(struct meta *m, const struct meta_dir *dir, int recursive, meta_tree_file_fn fn, void *arg);

/* The same for the file whose current original is asset ASSET_ID, when it
 * is a current file of the tree (else FN is not called).  One statement. */
int meta_tree_file_of(struct meta *m, const char *asset_id, meta_tree_file_fn fn, void *arg);

#endif
