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
 *
 * A special node (fs_special.h): the operations (fs_ops.c) ask
 * fs_special_of() of the inode first and call the workers of
 * fs_variants_special once; the name lookup (fs_ns_lookup) knows the two
 * folder names.
 */
#ifndef MVFS_FS_VARIANTS_H
#define MVFS_FS_VARIANTS_H

#include <stdint.h>
#include <sys/types.h>

struct fuse_entry_param;
struct fuse_file_info;
struct mvfs;
struct stat;
typedef struct fuse_req *fuse_req_t;

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
/* Whether INO is a variant folder or file, by its number alone (as
 * fs_special_of asks before an operation on an inode). */
int fs_vino_is(uint64_t ino);

/* --- names, and listings of folders of files (fs_ns.c, fs_ops.c) -------- */

/* Which variant folder NAME names (FS_V_DISPLAY_DIR, FS_V_THUMB_DIR), or 0. */
enum fs_vkind fs_variants_dir_named(const char *name);
/* The entry of variant folder KIND of folder of files PARENT (fs_ns_lookup
 * asks, the folder's node in hand), the kernel's lookup count taken. */
int fs_variants_dir_entry(struct mvfs *fs, uint64_t parent, enum fs_vkind kind, struct fuse_entry_param *e);
/* Whether NAME in PARENT is one of PARENT's variant folders, or PARENT is a
 * variant folder: nothing is made, removed or renamed there.  -EROFS after
 * a log line naming WHAT was refused, else 0. */
int fs_variants_refuse_name(struct mvfs *fs, uint64_t parent, const char *name, const char *what);
/* Whether NAME is a variant folder of folder of files PARENT. */
int fs_variants_reserved(struct mvfs *fs, uint64_t parent, const char *name);
/* -EROFS after one log line: WHAT of NAME is refused, variants being ours. */
int fs_variants_refuse(const char *what, const char *name);

/* The folders' and files' own workers are fs_variants_special
 * (fs_special.h): lookup in a variant folder, attributes, listings, opens
 * and reads of variant files, a variant file's attributes by name (hash,
 * type, size in pixels), and the refusals of every change. */

/* Offsets of a folder of files' variant folders in its listing, after its
 * own entries: far past any offset fs_ns.c hands out. */
#define FS_VARIANTS_OFF (1LL << 62)
/* After the last entry of folder of files INO: its variant folders (those
 * with a ready variant) when the mount lists them, from offset OFF on.
 * Returns the bytes added to BUF. */
size_t fs_variants_dirs_listed(fuse_req_t req, uint64_t ino, off_t off, char *buf, size_t size, int plus);

#endif
