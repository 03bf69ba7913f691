/*
 * fs_variants.h - the .display/ and .thumb/ folders: generated variants of
 * the originals in a folder, as read-only files.
 *
 *   library/IMG_0001.jpg
 *   library/.display/IMG_0001.jpg.webp     (or .avif)
 *   library/.thumb/IMG_0001.jpg.webp
 *
 * Every folder of files but .trash/ has both (collections and galleries
 * too), reached by name; a listing of the folder does not show them unless
 * the mount says so (-o variants=visible: once some variant in it is
 * ready).  They list only ready variants.  Writes are EROFS.
 *
 * INODE NUMBERS.  Database inode numbers come from a sequence starting at
 * 1000 and stay far below 2^56; virtual folders below 1000.  A variant
 * folder or file gets
 *
 *     bit 62 set | kind << 56 | base
 *
 * kind 1 .display folder, 2 .thumb folder (base: the folder's inode);
 * kind 3 display file, 4 thumb file (base: the original's inode).  So the
 * numbers are stable (same folder or original, same number, on every mount),
 * never collide with the database's, and keep bit 63 clear for tools that
 * read st_ino as signed.  A variant file has one number wherever its
 * original appears, as the original does.
 */
#ifndef MVFS_FS_VARIANTS_H
#define MVFS_FS_VARIANTS_H

#include <stdint.h>

struct fuse_lowlevel_ops;

enum fs_vkind {
	FS_V_DISPLAY_DIR = 1,
	FS_V_THUMB_DIR = 2,
	FS_V_DISPLAY_FILE = 3,
	FS_V_THUMB_FILE = 4,
};

#define FS_VINO_TAG (1ULL << 62)
#define FS_VINO_BASE_MAX ((1ULL << 56) - 1)

/* The inode number of variant KIND of BASE; 0 when BASE is out of range. */
uint64_t fs_vino(enum fs_vkind kind, uint64_t base);
/* Whether INO is a variant folder or file: 1 with *KIND and *BASE, else 0. */
int fs_vino_split(uint64_t ino, enum fs_vkind *kind, uint64_t *base);

/* Fills OPS with the mount's operations: fs_ops with the variant folders
 * and files on top.  Requests about anything else go to fs_ops unchanged. */
void fs_variants_ops(struct fuse_lowlevel_ops *ops);

#endif
