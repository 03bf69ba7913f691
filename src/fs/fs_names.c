/*
 * fs_names.c - the workers of the operations on names: mkdir, rmdir,
 * unlink, rename and link, each 0 or -errno.
 *
 * What is allowed where (docs/DESIGN.md's table of operations) is decided
 * here, each refusal with one log line naming the rule; the adapters that
 * reply are in fs_ops.c, which refuses the variant folders' names before
 * it calls these (fs_variants.h).  fs_ns_unlink, fs_ns_rmdir and
 * fs_ns_rename are the operations as the mount does them (files made here
 * settled first, the kernel told which folders changed), shared with the
 * desktop trash (fs_xdgtrash.c).
 */
#include "fs/fs_ns.h"
#include "fs/fs_thumbs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/name.h"

/* Whether a file may move from FROM to TO; -EPERM after a log line. */
static int move_allowed(const struct meta_dir *from, const struct meta_dir *to, const char *name)
{
	if (to->place == META_PLACE_TRASH && from->place != META_PLACE_TRASH) {
		log_warn("cannot move '%s' into .trash/: rm puts a file there", name);
		return -EPERM;
	}
	if (to->place == META_PLACE_TRASH) {
		log_warn("cannot rename '%s' in .trash/: it is read-only; mv a file out to restore it", name);
		return -EPERM;
	}
	if (to->place == META_PLACE_WORKSPACE && from->place != META_PLACE_WORKSPACE) {
		log_warn("cannot move '%s' into workspace/: it takes new files only, a kept file does not go"
			 " back to being temporary", name);
		return -EPERM;
	}
	return 0;
}

int fs_do_mkdir(struct mvfs *fs, uint64_t parent, const char *name, mode_t mode, struct fuse_entry_param *e)
{
	struct meta_folder f;
	struct meta_dir in;
	struct fs_node n;
	int rc;

	if ((rc = fs_node_of(fs, parent, &n)) != 0)
		return rc;
	if (n.kind == FS_NODE_FILE)
		return -ENOTDIR;
	if (!fs_ns_folders_in(&n, &in)) {
		log_warn("cannot make folder '%s' in %s: folders are made in library/, workspace/ (any depth),"
			 " collections/ and galleries/", name,
			 n.kind == FS_NODE_ROOT ? "the top level" : n.name ? n.name : "a collection or gallery");
		return -EPERM;
	}
	if ((rc = fs_ns_check_name(name)) != 0)
		return rc;
	rc = meta_folder_create(fs->meta, &in, name, mode, &f);
	if (rc == -EEXIST)
		log_info("not making folder '%s': a file or folder has that name", name);
	return rc ? rc : fs_ns_folder_entry(fs, &f, e);
}

static int fs_do_rmdir(struct mvfs *fs, uint64_t parent, const char *name)
{
	struct meta_dir in;
	struct fs_node n;
	int rc;

	if ((rc = fs_node_of(fs, parent, &n)) != 0)
		return rc;
	if (n.kind == FS_NODE_ROOT) {
		log_warn("cannot remove '%s': the top-level folders are fixed", name);
		return -EPERM;
	}
	if (!fs_ns_folders_in(&n, &in))
		return n.kind == FS_NODE_FILE ? -ENOTDIR : -ENOENT;
	if ((rc = fs_ns_check_existing(name)) != 0)
		return rc;
	rc = meta_folder_remove(fs->meta, &in, name);
	if (rc == -ENOTEMPTY)
		log_info("not removing folder '%s': it is not empty", name);
	return rc;
}

int fs_ns_rmdir(struct mvfs *fs, uint64_t parent, const char *name)
{
	int rc;

	fs_local_settle_all(fs);	/* a file made here in it keeps it */
	rc = fs_do_rmdir(fs, parent, name);
	if (rc == 0)
		fs_ns_dirs_changed(fs, parent, 0);
	return rc;
}

static int fs_do_unlink(struct mvfs *fs, uint64_t parent, const char *name)
{
	struct fs_node n;
	int rc;

	if ((rc = fs_ns_check_existing(name)) != 0)
		return rc;
	if ((rc = fs_node_of(fs, parent, &n)) != 0)
		return rc;
	if (n.kind == FS_NODE_ROOT) {
		log_warn("cannot remove '%s': the top-level folders are fixed", name);
		return -EPERM;
	}
	if (n.kind == FS_NODE_FOLDERS)
		return -EISDIR;
	if (n.kind != FS_NODE_FILES)
		return -ENOTDIR;
	if (n.dir.place == META_PLACE_TRASH) {
		log_warn("cannot remove '%s' from .trash/: it is read-only; files leave it when the grace"
			 " period ends, or by mv to restore them", name);
		return -EPERM;
	}
	if (name_is_plain(name) && (rc = meta_plain_unlink(fs->meta, &n.dir, name)) != -ENOENT)
		return rc;
	return meta_unlink(fs->meta, &n.dir, name, NULL);
}

int fs_ns_unlink(struct mvfs *fs, uint64_t parent, const char *name)
{
	int rc;

	fs_local_settle_all(fs);	/* the name may be one made here; the trash keeps the version closed last */
	rc = fs_do_unlink(fs, parent, name);
	if (rc == 0)
		fs_ns_dirs_changed(fs, parent, 0);
	if (rc == 0)
		fs_thumbs_removed(fs, parent, name);
	return rc;
}

/* Renames or moves folder NAME of FROM (collections and galleries among
 * themselves, folders of the tree anywhere in their place's tree). */
static int rename_folder(struct mvfs *fs, const struct fs_node *from, const char *name, const struct fs_node *to,
			 const char *newname, unsigned mflags)
{
	struct meta_dir fin, tin;
	int rc;

	fs_ns_folders_in(from, &fin);
	if (!fs_ns_folders_in(to, &tin) || fs_ns_is_tree(from) != fs_ns_is_tree(to) ||
	    (from->kind == FS_NODE_FOLDERS && from->folders != to->folders)) {
		log_warn("cannot move folder '%s' there: a collection stays in collections/, a gallery in"
			 " galleries/, and a folder of library/ or workspace/ in their tree", name);
		return -EPERM;
	}
	rc = meta_folder_rename(fs->meta, &fin, name, &tin, newname, mflags);
	if (rc == -EINVAL)
		log_warn("cannot move folder '%s' into itself or a folder below it", name);
	else if (rc == -EXDEV)
		log_info("moving folder '%s' between library/ and workspace/ is a copy (EXDEV)", name);
	else if (rc == -ENOTEMPTY)
		log_info("cannot move folder '%s' over '%s': that folder is not empty", name, newname);
	return rc;
}

static int fs_do_rename(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent,
			const char *newname, unsigned flags)
{
	unsigned mflags = (flags & RENAME_NOREPLACE) ? META_MOVE_NOREPLACE : 0;
	struct fs_node from, to;
	uint64_t replaced;
	int rc;

	if (flags & RENAME_EXCHANGE) {
		log_warn("cannot exchange '%s' and '%s': RENAME_EXCHANGE is not supported", name, newname);
		return -EINVAL;
	}
	if ((rc = fs_ns_check_existing(name)) != 0)
		return rc;
	if ((rc = fs_node_of(fs, parent, &from)) != 0 || (rc = fs_node_of(fs, newparent, &to)) != 0)
		return rc;
	if (from.kind == FS_NODE_ROOT || to.kind == FS_NODE_ROOT) {
		log_warn("cannot rename '%s' to '%s': the top-level folders are fixed", name, newname);
		return -EPERM;
	}
	if ((rc = fs_ns_check_name(newname)) != 0)
		return rc;
	/* The common case first: a file renamed within its place's tree, with
	 * no query to ask whether NAME is a folder (meta_move says ENOENT). */
	if (fs_ns_is_tree(&from) && fs_ns_is_tree(&to) && from.dir.place == to.dir.place &&
	    !name_is_plain(name) && !name_is_plain(newname)) {
		rc = meta_move(fs->meta, &from.dir, name, &to.dir, newname, mflags, &replaced);
		if (rc != -ENOENT || meta_folder_lookup(fs->meta, &from.dir, name, NULL) != 0)
			return rc;
		return rename_folder(fs, &from, name, &to, newname, mflags);
	}
	if (from.kind == FS_NODE_FOLDERS ||
	    (fs_ns_is_tree(&from) && meta_folder_lookup(fs->meta, &from.dir, name, NULL) == 0))
		return rename_folder(fs, &from, name, &to, newname, mflags);
	if (from.kind != FS_NODE_FILES)
		return -ENOTDIR;
	if (to.kind == FS_NODE_FOLDERS) {
		log_warn("cannot move '%s' into %s/: it holds folders only (mkdir one, then put files in it)",
			 name, to.name);
		return -EPERM;
	}
	if (to.kind != FS_NODE_FILES)
		return -ENOTDIR;
	if ((rc = move_allowed(&from.dir, &to.dir, name)) != 0)
		return rc;
	if (name_is_plain(name) && meta_plain_lookup(fs->meta, &from.dir, name, NULL) == 0) {
		if (!name_is_plain(newname)) {
			log_info("'%s' to '%s': a plain file does not become a memory by a rename (EXDEV: copy it)",
				 name, newname);
			return -EXDEV;
		}
		return meta_plain_rename(fs->meta, &from.dir, name, &to.dir, newname, mflags);
	}
	if (name_is_plain(newname)) {
		log_info("'%s' to '%s': a memory does not become a plain file by a rename (EXDEV: copy it)",
			 name, newname);
		return -EXDEV;
	}
	/* through a collection or a gallery a file lands in a tree folder the
	 * call does not name: no folder's names are known after it */
	if (!fs_ns_is_tree(&from) || !fs_ns_is_tree(&to))
		fs_known_forget(fs);
	rc = meta_move(fs->meta, &from.dir, name, &to.dir, newname, mflags, &replaced);
	if (rc == -EPERM)
		log_warn("cannot move '%s' out of .trash/: it is a replaced version; cp it over the file to"
			 " bring it back", name);
	return rc;
}

int fs_ns_rename(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
		 unsigned flags)
{
	struct fs_node from, to;
	int rc = -EAGAIN, here = 0;

	/* the common case of rsync: its temporary file, closed, renamed to a
	 * new name before its record was made */
	if (!(flags & RENAME_EXCHANGE) && fs_ns_check_name(newname) == 0 && !name_is_plain(name) &&
	    !name_is_plain(newname) && fs_node_of(fs, parent, &from) == 0 && fs_node_of(fs, newparent, &to) == 0 &&
	    fs_ns_is_tree(&from) && fs_ns_is_tree(&to) && from.dir.place == to.dir.place)
		here = (rc = fs_local_move(fs, &from.dir, name, &to.dir, newname)) == 0;
	if (rc == -EAGAIN) {
		fs_local_settle_all(fs);	/* either name may be one made here; a replaced file's last
						 * version is the one closed last */
		fs_known_making(fs, newparent, newname);
		rc = fs_do_rename(fs, parent, name, newparent, newname, flags);
		fs_known_made(fs, newparent);
	}
	if (rc == 0 && here) {
		/* and no desktop thumbnail to carry: it has no variants yet */
		fs_ns_dirs_touched(fs, parent, newparent);
	} else if (rc == 0) {
		fs_ns_dirs_changed(fs, parent, newparent);
		fs_thumbs_moved(fs, parent, name, newparent, newname);
	}
	return rc;
}

int fs_do_link(struct mvfs *fs, uint64_t ino, uint64_t newparent, const char *newname,
		      struct fuse_entry_param *e)
{
	struct meta_dir dir;
	struct meta_file f;
	struct stat st;
	int rc;

	if ((rc = fs_ns_files_dir(fs, newparent, "link", newname, &dir)) != 0)
		return rc;
	if (dir.place != META_PLACE_GALLERY) {
		log_warn("cannot link '%s': hard links add a file to a gallery, and only there", newname);
		return -EPERM;
	}
	rc = meta_link(fs->meta, ino, &dir, newname, &f);
	if (rc == -EPERM)
		log_warn("cannot link as '%s': a gallery shows a file under its own name", newname);
	if (rc)
		return rc;
	fs_file_stat(fs, &f, fs_inode_find(fs, f.ino), &st);
	fs_ns_entry(fs, &st, e);
	return fs_inode_get(fs, f.ino, 1, 0) ? 0 : -ENOMEM;
}
