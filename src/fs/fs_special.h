/*
 * fs_special.h - special nodes: folders and files of ours that are no row
 * of the database, as JuiceFS's IsSpecialNode.  Two kinds:
 *
 *   the variants     .display/, .thumb/ and their files (fs_variants.c)
 *   the desktop trash .Trash-$UID/ and what is in it (fs_xdgtrash*.c)
 *
 * A special node's inode number says what it is (bit 62 | kind << 56 |
 * base: fs_variants.h, fs_xdgtrash.h), so fs_special_of() knows it by its
 * number alone (a range test, no lookup) and gives the kind's workers, as
 * git's refs backends give theirs.  fs_ops.c's adapters ask it once per
 * inode and call the worker, which returns 0 or -errno as the fs_do_*
 * workers do (after one log line for a refusal); the adapter replies.  The
 * names that reach special nodes are known where names are: fs_ns_lookup
 * (".display" and ".thumb" in a folder of files, ".Trash-$UID" at the top).
 *
 * Every worker is set in both tables: a kind that refuses an operation
 * says so with its own errno and log line.
 */
#ifndef MVFS_FS_SPECIAL_H
#define MVFS_FS_SPECIAL_H

#include <stdint.h>
#include <sys/types.h>

struct fuse_entry_param;
struct fuse_file_info;
struct mvfs;
struct stat;
typedef struct fuse_req *fuse_req_t;

struct fs_special {
	/* NAME in special folder PARENT (-ENOTDIR for a special file) */
	int (*lookup)(struct mvfs *fs, uint64_t parent, const char *name, struct fuse_entry_param *e);
	int (*getattr)(struct mvfs *fs, uint64_t ino, struct stat *st);
	int (*setattr)(struct mvfs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *st);

	/* listings: a handle per opendir */
	int (*opendir)(struct mvfs *fs, uint64_t ino, void **dir);
	int (*readdir)(fuse_req_t req, void *dir, off_t off, char *buf, size_t size, int plus, size_t *used);
	void (*closedir)(void *dir);

	/* names in special folder PARENT; link and rename when either side is
	 * special (fs_special_of_either) */
	int (*mkdir)(struct mvfs *fs, uint64_t parent, const char *name);
	int (*rmdir)(struct mvfs *fs, uint64_t parent, const char *name);
	int (*unlink)(struct mvfs *fs, uint64_t parent, const char *name);
	int (*make)(const char *name, int symlink);	/* symlink, or mknod */
	int (*link)(const char *newname);
	int (*rename)(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
		      unsigned flags);
	/* a new file: its handle in FI->fh */
	int (*create)(struct mvfs *fs, uint64_t parent, const char *name, struct fuse_file_info *fi,
		      struct fuse_entry_param *e);

	/* files: a handle per open (FI's flags; the worker may set direct_io) */
	int (*open)(struct mvfs *fs, uint64_t ino, struct fuse_file_info *fi, void **file);
	int (*read)(struct mvfs *fs, void *file, size_t size, off_t off, char *buf, size_t *got);
	/* the bytes written, or -errno */
	ssize_t (*write)(struct mvfs *fs, void *file, const char *buf, size_t size, off_t off);
	int (*flush)(struct mvfs *fs, void *file);
	void (*release)(void *file);

	/* extended attributes: read by name, none listed */
	ssize_t (*getxattr)(struct mvfs *fs, uint64_t ino, const char *name, char *buf, size_t size);
	int (*setxattr)(const char *name);
	int (*removexattr)(const char *name);
};

extern const struct fs_special fs_variants_special;	/* fs_variants.c */
extern const struct fs_special fs_xdg_special;		/* fs_xdgtrash_nodes.c */

/* The workers of special node INO, or NULL: a node of the database's. */
const struct fs_special *fs_special_of(uint64_t ino);
/* Of an operation on two nodes (link, rename): the workers of whichever is
 * special, the desktop trash's when both are (a move into or out of it is
 * its to judge); NULL when neither is. */
const struct fs_special *fs_special_of_either(uint64_t a, uint64_t b);

#endif
