/*
 * fs_xdgtrash.h - the desktop trash: the freedesktop.org Trash
 * specification's per-volume trash at the mount's top, as a view of .trash/.
 *
 *   .Trash-$UID/files/NAME                 the whole files .trash/ shows, same names
 *   .Trash-$UID/info/NAME.trashinfo        where each was and when it went, made from its tombstone
 *   .Trash-$UID/expunged/                  a rename into it deletes (gvfs's "Empty trash")
 *
 * $UID is the mounting user's (every entry belongs to it).  The folder is
 * reached by name and not listed at the top, like .display/ and .thumb/.
 *
 * Special nodes (fs_special.h): fs_ops.c calls the workers of
 * fs_xdg_special (fs_xdgtrash_nodes.c) for an inode number of ours.
 * Shared by fs_xdgtrash.c (the view), fs_xdgtrash_nodes.c (the workers) and
 * fs_ops.c (a refusal at the top) below the public part.
 *
 * INODE NUMBERS: as variants' (fs_variants.h), bit 62 | kind << 56 | base,
 * with kinds 16 and up: the folders (base 0), a made .trashinfo (base: the
 * trashed file's inode), and one a program is writing (base: a serial).
 */
#ifndef MVFS_FS_XDGTRASH_H
#define MVFS_FS_XDGTRASH_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fs/fs.h"

/* The desktop trash of mount FS (fs_init): 0 or -ENOMEM.
 * fs_xdgtrash_free(FS) releases it; a no-op without it. */
int fs_xdgtrash_init(struct mvfs *fs);
void fs_xdgtrash_free(struct mvfs *fs);
/* Whether NAME in PARENT is .Trash-$UID at the top; its entry, the
 * kernel's lookup count taken (fs_ns_lookup asks). */
int fs_xdg_top_named(struct mvfs *fs, uint64_t parent, const char *name);
int fs_xdg_top_entry(struct mvfs *fs, struct fuse_entry_param *e);

/* The .trashinfo text of a file that was at PATH (relative to the mount's
 * top) and went to the trash at DELETED: into OUT (LEN bytes), its length,
 * or -ENAMETOOLONG when it does not fit. */
int fs_xdg_info_text(const char *path, const struct timespec *deleted, char *out, size_t len);
/* Whether DATA (LEN bytes) is a .trashinfo as the specification says: a
 * [Trash Info] group with a URL-escaped Path= and a DeletionDate= of the
 * form YYYY-MM-DDThh:mm:ss.  0, or -EINVAL with WHY (WLEN bytes) saying
 * what is wrong. */
int fs_xdg_info_check(const char *data, size_t len, char *why, size_t wlen);

/* --- inside: fs_xdgtrash.c (the view), fs_xdgtrash_nodes.c (the workers) ------ */

#define XDG_INFO_MAX (64 * 1024)	/* bytes of a .trashinfo a program writes */

enum xkind {
	X_TOP = 16,		/* .Trash-$UID */
	X_FILES,
	X_INFO,
	X_EXPUNGED,
	X_INFO_FILE,		/* base: the trashed file's inode */
	X_PENDING,		/* base: a serial */
};

/* A .trashinfo a program is writing, before the rename that trashes its
 * file: kept by this mount only, in memory. */
struct pending {
	uint64_t id;
	char name[256];
	char *data;
	size_t len;
	struct pending *next;
};

/* The desktop trash of a mount (struct mvfs.xdg). */
struct fs_xdg {
	char top[32];			/* ".Trash-$UID" */
	pthread_mutex_t lock;		/* guards the pending list */
	struct pending *pending;
	int npending;
	uint64_t serial;
};

/* Inode numbers: ours (K, BASE), and which kind INO is (0: not ours). */
uint64_t xdg_ino(enum xkind k, uint64_t base);
enum xkind xdg_kind(uint64_t ino, uint64_t *base);
int xdg_is_dir(enum xkind k);

/* Attributes and entries: a folder of ours; any INO of ours (0 or -errno);
 * NAME in our folder of kind K (its lookup count raised; -ENOENT). */
void xdg_dir_stat(struct mvfs *fs, uint64_t ino, struct stat *st);
int xdg_getattr(struct mvfs *fs, uint64_t ino, enum xkind k, uint64_t base, struct stat *st);
int xdg_lookup(struct mvfs *fs, enum xkind k, const char *name, struct fuse_entry_param *e);
/* An entry for ST the kernel holds (not cached by name unless CACHE). */
int xdg_entry(struct mvfs *fs, const struct stat *st, int cache, struct fuse_entry_param *e);
/* The .trashinfo text of trashed file INO into OUT (LEN bytes): its
 * length, or -errno (-ENOENT: not in the trash); *DELETED may be NULL. */
int xdg_info_of(struct mvfs *fs, uint64_t ino, char *out, size_t len, struct timespec *deleted);

/* Listings of our folders (X_TOP, X_FILES, X_INFO, X_EXPUNGED). */
struct xdir;
int xdg_dir_open(struct mvfs *fs, uint64_t ino, enum xkind k, struct xdir **out);
int xdg_dir_read(fuse_req_t req, struct xdir *d, off_t off, char *buf, size_t size, int plus, size_t *used);
void xdg_dir_close(struct xdir *d);

/* The changes, as fs_ops' workers: 0 or -errno after a log line for a
 * refusal.  A rename with either folder ours; an unlink in our folder K. */
int xdg_rename(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
	       unsigned flags);
int xdg_unlink(struct mvfs *fs, enum xkind k, const char *name);
/* -EPERM, after a log line saying why WHAT of NAME is refused. */
int xdg_refuse(const char *what, const char *name, const char *why);

/* Pending .trashinfo files: a new one called NAME (-EEXIST when info/ has
 * that name), its attributes into ST; one by NAME or else by ID (under
 * x->lock; NULL: none); dropping one (under x->lock). */
int xdg_pending_new(struct mvfs *fs, const char *name, struct stat *st);
struct pending *xdg_pending_find(struct fs_xdg *x, const char *name, uint64_t id);
void xdg_pending_drop(struct fs_xdg *x, struct pending *p);

#endif
