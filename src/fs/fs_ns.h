/*
 * fs_ns.h - the namespace as the kernel sees it: what an inode number is,
 * names to entries, attributes, listings, and the rules of the model.
 * Shared by the files of src/fs only.
 */
#ifndef MVFS_FS_NS_H
#define MVFS_FS_NS_H

#include <fuse_lowlevel.h>

#include "fs/fs.h"

/* What an inode number stands for. */
enum fs_node_kind {
	FS_NODE_ROOT = 1,	/* / */
	FS_NODE_FILES,		/* a folder of files: library, workspace, .trash, a collection, a gallery */
	FS_NODE_FOLDERS,	/* collections/ or galleries/: a folder of folders */
	FS_NODE_FILE,
	FS_NODE_PLAIN,		/* a plain file: .DS_Store and the like (fs_plain.c) */
};

struct fs_node {
	enum fs_node_kind kind;
	struct meta_dir dir;		/* FS_NODE_FILES */
	enum meta_place folders;	/* FS_NODE_FOLDERS: META_PLACE_COLLECTION or _GALLERY */
	const char *name;		/* of a top-level folder, for log lines; else NULL */
};

/* What INO is.  -ENOENT for a number the mount does not know. */
int fs_node_of(struct mvfs *fs, uint64_t ino, struct fs_node *n);

/* Whether N is a folder of the person's tree (library/, workspace/ or a
 * folder below them), which holds folders and files. */
int fs_ns_is_tree(const struct fs_node *n);
/* Whether N holds folders (collections/, galleries/, the tree): 1 with IN,
 * the meta_dir to look them up in, else 0. */
int fs_ns_folders_in(const struct fs_node *n, struct meta_dir *in);

/* Entry and attributes. */
int fs_ns_lookup(struct mvfs *fs, uint64_t parent, const char *name, struct fuse_entry_param *e);
int fs_ns_getattr(struct mvfs *fs, uint64_t ino, struct stat *st);
/* An entry for collection or gallery F, with the kernel's reference counted. */
int fs_ns_folder_entry(struct mvfs *fs, const struct meta_folder *f, struct fuse_entry_param *e);
/* The attributes of a folder (virtual, or a collection or gallery). */
void fs_ns_dir_stat(struct mvfs *fs, uint64_t ino, const struct meta_folder *f, struct stat *st);
/* Folders A and B (B may be A, or 0) gained, lost or renamed an entry: the
 * kernel's attributes of them are stale.  Called after the change is in the
 * database and before its reply.  The kernel then also drops any reply
 * about them that was read before the change and arrives after it (the
 * notification moves the folder's attribute version past every request
 * already sent): DECISIONS.md, "A folder's attributes after a change in it". */
void fs_ns_dirs_changed(struct mvfs *fs, uint64_t a, uint64_t b);
/* The same for a change made here first, not in the database yet (a file
 * made here, fs_local.c): the folders' rows as read last stay good, the
 * change's times laid over them (fs_local_dir_times). */
void fs_ns_dirs_touched(struct mvfs *fs, uint64_t a, uint64_t b);
/* Fills E for attributes ST (which may point into E). */
void fs_ns_entry(struct mvfs *fs, const struct stat *st, struct fuse_entry_param *e);
/* A file's entry in a collection or gallery is not cached by the kernel:
 * a save in the file's own folder can give the file a new inode number
 * (meta_ns.c, identity across saves), and its other names must find it. */
void fs_ns_view_entry(struct mvfs *fs, const struct meta_dir *dir, struct fuse_entry_param *e);
/* Whether file F shows: uploaded, or written through this mount (open for
 * writing, or closed and waiting for upload or uploaded within the last
 * minute), whatever the status in F, which may be a moment old, says; or
 * its current version is another mount's, not uploaded yet, and it has an
 * uploaded one before it: F is then changed to show that one (size,
 * times, hash, key, upload status "completed").  Every path that reads a
 * file's row to show or read it calls this, lookups and listings to hide
 * what is not shown, getattr, open and xattrs for the substitution. */
int fs_ns_visible(struct mvfs *fs, struct meta_file *f);
/* The folder of files PARENT is, for putting a file NAME there by WHAT
 * ("create", "link", ...): 0 with *DIR, or -errno after a log line. */
int fs_ns_files_dir(struct mvfs *fs, uint64_t parent, const char *what, const char *name, struct meta_dir *dir);

/* A writable handle on IN, a new empty file called NAME in DIR (its open
 * and lookup counts held by the caller), its staging file made; LOCAL:
 * made here first (fs_local.c), with MODE.  NULL with *RC (-errno) and IN
 * as it was otherwise. */
struct fs_handle *fs_new_file(struct mvfs *fs, struct fs_inode *in, const char *name, const struct meta_dir *dir,
			      int local, mode_t mode, int *rc);
/* Creates NAME in tree folder DIR without a round trip, as fs_do_create
 * does otherwise: 0 with the handle in FI and the entry in E, -EAGAIN when
 * it cannot be made here first (not a folder of the tree, no recorder, no
 * inode numbers: the database is away), or another -errno. */
int fs_local_create(struct mvfs *fs, const struct meta_dir *dir, const char *name, mode_t mode,
		    struct fuse_file_info *fi, struct fuse_entry_param *e);
/* setattr of file INO while it is made here and open (cp -p and gio set
 * mode and times before the close), or closed with its first record still
 * queued (rsync sets them after): kept with it, recorded with its first
 * version.  0 with *ST, -EAGAIN when INO is not such a file (the
 * database's setattr then), or -errno. */
int fs_local_setattr(struct mvfs *fs, uint64_t ino, const struct stat *attr, int to_set, unsigned flags,
		     const struct timespec *mtime, const struct timespec *atime, struct stat *st);
/* A read-only open of file INO, made here and closed with its first record
 * still queued (rsync opens its temporary file to fchmod it): a handle on
 * its sealed bytes, without the rows.  0 with FI set, -EAGAIN when INO is
 * not such a file (the rows first then), or -errno. */
int fs_local_open_read(struct mvfs *fs, uint64_t ino, struct fuse_file_info *fi);
/* rename(2) of NAME in tree folder FROM, a file made here and closed with
 * its first record still queued, to NEWNAME in tree folder TO of the same
 * place, which is known not to have that name (fs_known_absent): made in
 * that record, without a round trip (rsync renames its temporary file
 * after the close).  0, or -EAGAIN when it cannot be (the database's
 * rename then). */
int fs_local_move(struct mvfs *fs, const struct meta_dir *from, const char *name, const struct meta_dir *to,
		  const char *newname);
/* --- removing and renaming (fs_names.c) ---------------------------------- */

/* unlink(2), rmdir(2) and rename(2) as the mount does them, for another
 * view that means the same (the desktop trash, fs_xdgtrash.c): files made
 * here settled first, the kernel told which folders changed.  0 or -errno,
 * after one log line for a refusal. */
int fs_ns_unlink(struct mvfs *fs, uint64_t parent, const char *name);
int fs_ns_rmdir(struct mvfs *fs, uint64_t parent, const char *name);
int fs_ns_rename(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
		 unsigned flags);

/* The workers of setattr (fs_ops.c), mkdir and link (fs_names.c), for
 * fs_import.c too: 0 or -errno, ST / E filled as their replies need. */
int fs_do_setattr(struct mvfs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *st);
int fs_do_mkdir(struct mvfs *fs, uint64_t parent, const char *name, mode_t mode, struct fuse_entry_param *e);
int fs_do_link(struct mvfs *fs, uint64_t ino, uint64_t newparent, const char *newname, struct fuse_entry_param *e);

/* --- the workers of file operations (fs_open.c) -------------------------- */

/* Creates NAME in PARENT, open, as create(2) through the kernel: the
 * kernel drops what it has of PARENT itself; what the database changed of
 * it is dropped here (fs_ns_dirs_changed). */
int fs_do_create(struct mvfs *fs, uint64_t parent, const char *name, mode_t mode, struct fuse_file_info *fi,
		 struct fuse_entry_param *e);
int fs_do_open(struct mvfs *fs, uint64_t ino, struct fuse_file_info *fi);
/* A file opened for writing only is written past the kernel's page cache
 * (FOPEN_DIRECT_IO): each write(2) reaches the daemon as it is, without a
 * copy into pages nobody reads through that descriptor and without the
 * security.capability question the cached path asks before every write.
 * Not for O_RDWR (it may be mmap'ed shared, which direct I/O refuses) nor
 * for a file with set-id bits (the cached path has the kernel clear them
 * at a write; DECISIONS.md, "Writes past the page cache"). */
void fs_open_direct(struct fuse_file_info *fi, mode_t mode);
/* Up to SIZE bytes of H at OFF into BUF; *GOT how many.  With REF (may be
 * NULL) the bytes may be left where the cache holds them instead
 * (cache_read_ref): the caller replies from REF->data when it is set, then
 * drops REF. */
int fs_do_read(struct mvfs *fs, struct fs_handle *h, size_t size, off_t off, char *buf, size_t *got,
	       struct cache_ref *ref);
/* Commits what H wrote (a no-op for a read-only handle). */
int fs_commit_handle(struct mvfs *fs, struct fs_handle *h);
/* fsync(2): commits, then waits until the content is in the store. */
int fs_do_fsync(struct mvfs *fs, struct fs_handle *h);

/* Checks NAME for a new entry: 0, or -errno after a log line naming the rule. */
int fs_ns_check_name(const char *name);
/* Checks NAME for an existing entry: a name no entry can have is -ENOENT
 * (too long: -ENAMETOOLONG) without asking the database. */
int fs_ns_check_existing(const char *name);

/* Listings: a handle per opendir. */
struct fs_dir;
int fs_dir_open(struct mvfs *fs, uint64_t ino, struct fs_dir **out);
/* How the kernel may cache D's listing (fs_known_listing): sets FI's
 * cache_readdir and keep_cache for a tree folder. */
void fs_dir_cache(const struct fs_dir *d, struct fuse_file_info *fi);
/* Fills BUF (SIZE bytes) with entries from offset OFF; *USED is how much. */
int fs_dir_read(fuse_req_t req, struct fs_dir *d, off_t off, char *buf, size_t size, int plus,
		size_t *used);
void fs_dir_close(struct fs_dir *d);

/* --- plain files (fs_plain.c) -------------------------------------------- */

/* The attributes of plain file P, with what IN (may be NULL) is writing. */
void fs_plain_stat(struct mvfs *fs, const struct meta_plain *p, struct fs_inode *in, struct stat *st);
/* An entry for plain file P, with the kernel's reference counted. */
int fs_plain_entry(struct mvfs *fs, const struct meta_plain *p, struct fuse_entry_param *e);
int fs_plain_getattr(struct mvfs *fs, uint64_t ino, struct stat *st);
/* Loads plain file IN into a staging file (empty when TRUNCATE).  Called
 * with IN->lock held; a TRUNCATE waits for a running commit. */
int fs_plain_stage(struct mvfs *fs, struct fs_inode *in, int truncate);
/* Writes IN's staged bytes back to its row.  Called by fs_file_commit with
 * IN->lock held and no commit of IN running; lets go of the lock for the
 * read and the statement, as fs_file_commit. */
int fs_plain_commit(struct mvfs *fs, struct fs_inode *in);

#endif
