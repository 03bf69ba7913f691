/*
 * fs_variants.c - .display/ and .thumb/: variant files beside originals.
 *
 * DESIGN: a layer over fs_ops.  fs_variants_ops() makes the table the
 * session runs: a copy of fs_ops (so an operation added there is served
 * as it is) in which each operation below first asks whether the request is about a variant
 * folder or file (its inode number says so, fs_variants.h) or about the
 * names ".display" and ".thumb" in a folder of files, and answers those
 * here; everything else goes to the fs_ops operation unchanged.  So the
 * namespace and file code know nothing of variants.
 *
 * A variant folder lists, page by page, the folder's originals (meta_list,
 * the listing fs_ns.c shows) and the ready variants of that page (one
 * statement per page, meta_variants_of): "<shown name>.<webp|avif>".  A
 * lookup strips the extension and looks the original up by its shown name,
 * so twins (IMG~3f9a.jpg) work as they do beside the originals.
 *
 * Like ZFS's .zfs with snapdir=hidden, a folder of files does not list its
 * variant folders (fs_config.variants_visible: -o variants=visible does),
 * so rsync, cp -r, find and backups see only the person's files, and an
 * `rsync --delete` back into the folder has nothing of ours to delete;
 * a lookup by name reaches them all the same.
 *
 * The kernel's lookup counts cover variant inodes as any other (they are
 * in the inode table, fs_inode_get/put), so forget needs nothing here.
 * Variant content is immutable per version, but a rewrite of the original
 * brings new variants under the same inode number: opens do not keep the
 * kernel's page cache.
 */
#include "fs/fs_variants.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "fs/fs_ns.h"
#include "meta/meta_variants.h"
#include "util/log.h"
#include "util/name.h"

#define DIR_DISPLAY ".display"
#define DIR_THUMB ".thumb"
#define PAGE 256
/* Offsets of the two folders when a folder of files lists them, after its
 * own entries: far past any offset fs_ns.c hands out. */
#define VOFF (1LL << 62)

uint64_t fs_vino(enum fs_vkind kind, uint64_t base)
{
	if (base > FS_VINO_BASE_MAX || kind < FS_V_DISPLAY_DIR || kind > FS_V_THUMB_FILE)
		return 0;
	return FS_VINO_TAG | ((uint64_t)kind << 56) | base;
}

int fs_vino_split(uint64_t ino, enum fs_vkind *kind, uint64_t *base)
{
	uint64_t k = (ino >> 56) & 0x3f;

	if ((ino & ~(FS_VINO_TAG | (0x3fULL << 56) | FS_VINO_BASE_MAX)) != 0 || !(ino & FS_VINO_TAG) ||
	    k < FS_V_DISPLAY_DIR || k > FS_V_THUMB_FILE)
		return 0;
	*kind = (enum fs_vkind)k;
	*base = ino & FS_VINO_BASE_MAX;
	return 1;
}

static struct mvfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int is_dir_kind(enum fs_vkind k)
{
	return k == FS_V_DISPLAY_DIR || k == FS_V_THUMB_DIR;
}

static const char *type_of(enum fs_vkind k)
{
	return k == FS_V_DISPLAY_DIR || k == FS_V_DISPLAY_FILE ? "display" : "thumb";
}

/* Which variant folder NAME is (0: neither). */
static enum fs_vkind dir_named(const char *name)
{
	return strcmp(name, DIR_DISPLAY) == 0 ? FS_V_DISPLAY_DIR : strcmp(name, DIR_THUMB) == 0 ? FS_V_THUMB_DIR : 0;
}

/* The folder of files INO is, when it has variant folders: 0 with *DIR. */
static int files_dir(struct mvfs *fs, uint64_t ino, struct meta_dir *dir)
{
	struct fs_node n;
	int rc = fs_node_of(fs, ino, &n);

	if (rc)
		return rc;
	if (n.kind != FS_NODE_FILES || n.dir.place == META_PLACE_TRASH)
		return -ENOENT;
	*dir = n.dir;
	return 0;
}

/* Is NAME one of the variant folders of folder PARENT (a folder of files)? */
static int reserved_in(struct mvfs *fs, uint64_t parent, const char *name)
{
	struct meta_dir dir;

	return dir_named(name) && files_dir(fs, parent, &dir) == 0;
}

static const char *ext_of(const char *mime)
{
	return strcmp(mime, "image/avif") == 0 ? "avif" : "webp";
}

/* --- attributes ---------------------------------------------------------- */

static void dir_stat(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_mtim = st->st_ctim = st->st_atim = fs->mounted_at;
}

static void file_stat(struct mvfs *fs, uint64_t ino, const struct meta_variant *v, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)v->size;
	st->st_blksize = 1 << 20;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim = st->st_ctim = st->st_atim = v->mtime;
}

/* The ready variant behind variant file KIND of original BASE. */
static int variant_of(struct mvfs *fs, enum fs_vkind kind, uint64_t base, struct meta_variant *v)
{
	struct meta_file f;
	int rc = meta_file_get(fs->meta, base, &f);

	if (rc)
		return rc;
	if (strcmp(f.lifecycle_status, "active") != 0)
		return -ENOENT;
	return meta_variant_get(fs->meta, f.asset_id, type_of(kind), v);
}

static int v_getattr(struct mvfs *fs, uint64_t ino, enum fs_vkind kind, uint64_t base, struct stat *st)
{
	struct meta_variant v;
	struct meta_dir dir;
	int rc;

	if (is_dir_kind(kind)) {
		if ((rc = files_dir(fs, base, &dir)) != 0)
			return rc;
		dir_stat(fs, ino, st);
		return 0;
	}
	if ((rc = variant_of(fs, kind, base, &v)) != 0)
		return rc;
	file_stat(fs, ino, &v, st);
	return 0;
}

/* An entry the kernel will hold: its lookup count goes up. */
static int entry(struct mvfs *fs, const struct stat *st, struct fuse_entry_param *e)
{
	fs_ns_entry(fs, st, e);
	return fs_inode_get(fs, st->st_ino, 1, 0) ? 0 : -ENOMEM;
}

/* NAME in variant folder KIND of folder BASE. */
static int v_lookup(struct mvfs *fs, enum fs_vkind kind, uint64_t base, const char *name,
		    struct fuse_entry_param *e)
{
	char orig[NAME_MAX_BYTES + 1];
	const char *dot = strrchr(name, '.');
	struct meta_variant v;
	struct meta_dir dir;
	struct meta_file f;
	struct stat st;
	enum fs_vkind fk = kind == FS_V_DISPLAY_DIR ? FS_V_DISPLAY_FILE : FS_V_THUMB_FILE;
	int rc;

	if ((rc = files_dir(fs, base, &dir)) != 0)
		return rc;
	if (!dot || dot == name || (strcmp(dot, ".webp") != 0 && strcmp(dot, ".avif") != 0) ||
	    (size_t)(dot - name) > NAME_MAX_BYTES)
		return -ENOENT;
	snprintf(orig, sizeof(orig), "%.*s", (int)(dot - name), name);
	if ((rc = meta_lookup(fs->meta, &dir, orig, &f)) != 0)
		return rc;
	if (!fs_ns_visible(fs, &f))
		return -ENOENT;
	if ((rc = meta_variant_get(fs->meta, f.asset_id, type_of(fk), &v)) != 0)
		return rc;
	if (strcmp(dot + 1, ext_of(v.mime)) != 0)
		return -ENOENT;
	file_stat(fs, fs_vino(fk, f.ino), &v, &st);
	return entry(fs, &st, e);
}

/* --- variant folders: listings ------------------------------------------- */

struct vent {
	char name[NAME_MAX_BYTES + 1];
	struct stat st;
};

struct vdir {
	struct fs_open_dir open;	/* first: the mount's list of open folders */
	struct mvfs *fs;
	uint64_t ino;
	enum fs_vkind kind;
	struct meta_dir dir;
	pthread_mutex_t lock;
	off_t next_off;			/* offset of the next entry to hand out */
	struct meta_cursor cursor;
	struct meta_file *files;
	struct meta_variant *vars;
	struct vent *ents;
	int nent, pos, eof;
};

static void vdir_rewind(struct vdir *d)
{
	d->next_off = 0;
	memset(&d->cursor, 0, sizeof(d->cursor));
	d->nent = d->pos = d->eof = 0;
}

/* The next page of entries: 1 when d->pos points at one, 0 at the end. */
static int vdir_fill(struct vdir *d)
{
	struct mvfs *fs = d->fs;
	enum fs_vkind fk = d->kind == FS_V_DISPLAY_DIR ? FS_V_DISPLAY_FILE : FS_V_THUMB_FILE;

	while (d->pos >= d->nent) {
		const char *ids[PAGE];
		int n = 0, k = 0, nv = 0, rc;

		if (d->eof)
			return 0;
		rc = meta_list(fs->meta, &d->dir, &d->cursor, d->files, PAGE, &n);
		if (rc)
			return rc;
		d->eof = n < PAGE;
		for (int i = 0; i < n; i++)
			if (fs_ns_visible(fs, &d->files[i]))
				ids[k++] = d->files[i].asset_id;
		rc = k ? meta_variants_of(fs->meta, ids, k, type_of(fk), d->vars, &nv) : 0;
		if (rc)
			return rc;
		d->nent = d->pos = 0;
		/* in the originals' order */
		for (int i = 0; i < n; i++) {
			const struct meta_file *f = &d->files[i];

			for (int j = 0; j < nv; j++) {
				struct vent *e = &d->ents[d->nent];
				const char *ext = ext_of(d->vars[j].mime);

				if (strcmp(d->vars[j].original_id, f->asset_id) != 0)
					continue;
				if (snprintf(e->name, sizeof(e->name), "%s.%s", f->name, ext) > NAME_MAX_BYTES) {
					log_debug("no variant entry for '%s': the name would be too long", f->name);
					break;
				}
				file_stat(fs, fs_vino(fk, f->ino), &d->vars[j], &e->st);
				d->nent++;
				break;
			}
		}
	}
	return 1;
}

static void vdir_free(struct fs_open_dir *od);

static int vdir_open(struct mvfs *fs, uint64_t ino, enum fs_vkind kind, uint64_t base, struct vdir **out)
{
	struct vdir *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	if ((rc = files_dir(fs, base, &d->dir)) != 0) {
		free(d);
		return rc;
	}
	d->files = malloc(PAGE * sizeof(*d->files));
	d->vars = malloc(PAGE * sizeof(*d->vars));
	d->ents = malloc(PAGE * sizeof(*d->ents));
	if (!d->files || !d->vars || !d->ents) {
		free(d->files);
		free(d->vars);
		free(d->ents);
		free(d);
		return -ENOMEM;
	}
	d->fs = fs;
	d->ino = ino;
	d->kind = kind;
	pthread_mutex_init(&d->lock, NULL);
	fs_open_dir_track(fs, &d->open, vdir_free);
	*out = d;
	return 0;
}

static void vdir_close(struct vdir *d)
{
	if (!d)
		return;
	fs_open_dir_untrack(d->fs, &d->open);
	vdir_free(&d->open);
}

static void vdir_free(struct fs_open_dir *od)
{
	struct vdir *d = (struct vdir *)od;

	pthread_mutex_destroy(&d->lock);
	free(d->files);
	free(d->vars);
	free(d->ents);
	free(d);
}

/* Adds one entry to BUF; 0 when it does not fit.  With PLUS the kernel
 * holds the inode afterwards (except for "." and ".."). */
static size_t add_entry(fuse_req_t req, char *buf, size_t room, const char *name, const struct stat *st,
			off_t next, int plus, int counted)
{
	struct fuse_entry_param e;
	size_t n;

	if (!plus)
		return fuse_add_direntry(req, buf, room, name, st, next);
	fs_ns_entry(fs_of(req), st, &e);
	if (!counted)
		e.ino = 0;
	n = fuse_add_direntry_plus(req, buf, room, name, &e, next);
	if (n <= room && counted && !fs_inode_get(fs_of(req), st->st_ino, 1, 0))
		return 0;
	return n;
}

static int vdir_read(fuse_req_t req, struct vdir *d, off_t off, char *buf, size_t size, int plus, size_t *used)
{
	struct mvfs *fs = d->fs;
	size_t len = 0;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (off != d->next_off)
		vdir_rewind(d);
	for (;;) {
		struct stat st;
		const char *name;
		int counted = 0;
		size_t n;

		if (d->next_off < 2) {
			name = d->next_off == 0 ? "." : "..";
			if (d->next_off == 0)
				dir_stat(fs, d->ino, &st);
			else
				fs_ns_dir_stat(fs, d->dir.ino, NULL, &st);
		} else {
			if ((rc = vdir_fill(d)) <= 0)
				break;
			rc = 0;
			name = d->ents[d->pos].name;
			st = d->ents[d->pos].st;
			counted = 1;
		}
		if (off > d->next_off) {	/* skipping forward after a rewind */
			if (d->next_off >= 2)
				d->pos++;
			d->next_off++;
			continue;
		}
		n = add_entry(req, buf + len, size - len, name, &st, d->next_off + 1, plus, counted);
		if (n == 0 || n > size - len)
			break;
		len += n;
		if (d->next_off >= 2)
			d->pos++;
		d->next_off++;
	}
	pthread_mutex_unlock(&d->lock);
	*used = len;
	return len > 0 ? 0 : rc < 0 ? rc : 0;
}

/* --- the layer over fs_ops ----------------------------------------------- */

static void reply_entry_or_err(fuse_req_t req, int rc, struct fuse_entry_param *e)
{
	if (rc == -ENOENT) {
		memset(e, 0, sizeof(*e));	/* negative, not cached: it may be ready soon */
		fuse_reply_entry(req, e);
	} else if (rc) {
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_entry(req, e);
	}
}

static void vop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mvfs *fs = fs_of(req);
	struct fuse_entry_param e;
	enum fs_vkind kind;
	uint64_t base;
	struct stat st;
	int rc;

	if (fs_vino_split(parent, &kind, &base)) {
		rc = is_dir_kind(kind) ? v_lookup(fs, kind, base, name, &e) : -ENOTDIR;
		reply_entry_or_err(req, rc, &e);
		return;
	}
	if ((kind = dir_named(name)) != 0) {
		struct meta_dir dir;

		rc = files_dir(fs, parent, &dir);
		if (rc == 0) {
			dir_stat(fs, fs_vino(kind, parent), &st);
			rc = entry(fs, &st, &e);
		}
		if (rc != -ENOENT) {
			reply_entry_or_err(req, rc, &e);
			return;
		}
	}
	fs_ops.lookup(req, parent, name);
}

static void vop_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mvfs *fs = fs_of(req);
	enum fs_vkind kind;
	uint64_t base;
	struct stat st;
	int rc;

	if (!fs_vino_split(ino, &kind, &base)) {
		fs_ops.getattr(req, ino, fi);
		return;
	}
	rc = v_getattr(fs, ino, kind, base, &st);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

static int refuse(const char *what, const char *name)
{
	log_warn("cannot %s '%s': %s/ and %s/ are made by mvaultfs and read-only", what, name ? name : "",
		 DIR_DISPLAY, DIR_THUMB);
	return EROFS;
}

static void vop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	enum fs_vkind kind;
	uint64_t base;

	if (fs_vino_split(ino, &kind, &base))
		fuse_reply_err(req, refuse("change", "a variant"));
	else
		fs_ops.setattr(req, ino, attr, to_set, fi);
}

static void vop_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mvfs *fs = fs_of(req);
	enum fs_vkind kind;
	uint64_t base;
	struct vdir *d;
	int rc;

	/* Another folder's handle is fs_ops' own (struct fs_dir). */
	if (!fs_vino_split(ino, &kind, &base)) {
		fs_ops.opendir(req, ino, fi);
		return;
	}
	if (!is_dir_kind(kind)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	rc = vdir_open(fs, ino, kind, base, &d);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0)
		vdir_close(d);
}

/* After the last entry of folder of files INO: its variant folders (those
 * with a ready variant) when the mount lists them, from offset OFF on. */
static size_t tail_entries(fuse_req_t req, fuse_ino_t ino, off_t off, char *buf, size_t size, int plus)
{
	struct mvfs *fs = fs_of(req);
	static const enum fs_vkind kinds[] = { FS_V_DISPLAY_DIR, FS_V_THUMB_DIR };
	struct meta_dir dir;
	size_t len = 0;

	if (!fs->cfg.variants_visible || files_dir(fs, ino, &dir) != 0)
		return 0;
	for (int i = 0; i < 2; i++) {
		off_t my = VOFF + i + 1;
		struct stat st;
		size_t n;

		if (off >= my)
			continue;
		if (meta_variants_any(fs->meta, &dir, type_of(kinds[i])) != 1)
			continue;
		dir_stat(fs, fs_vino(kinds[i], ino), &st);
		n = add_entry(req, buf + len, size - len, kinds[i] == FS_V_DISPLAY_DIR ? DIR_DISPLAY : DIR_THUMB,
			      &st, my, plus, 1);
		if (n == 0 || n > size - len)
			break;
		len += n;
	}
	return len;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
			   int plus)
{
	enum fs_vkind kind;
	uint64_t base;
	char *buf;
	size_t used = 0;
	int rc = 0;

	if (!fs_vino_split(ino, &kind, &base) && off < VOFF) {
		/* the folder's own entries first; at their end, the variant folders */
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		rc = fs_dir_read(req, (struct fs_dir *)(uintptr_t)fi->fh, off, buf, size, plus, &used);
		if (rc == 0 && used == 0)
			used = tail_entries(req, ino, off, buf, size, plus);
	} else if (!fs_vino_split(ino, &kind, &base)) {
		buf = malloc(size);
		if (buf)
			used = tail_entries(req, ino, off, buf, size, plus);
	} else {
		buf = malloc(size);
		if (buf)
			rc = vdir_read(req, (struct vdir *)(uintptr_t)fi->fh, off, buf, size, plus, &used);
	}
	if (!buf)
		fuse_reply_err(req, ENOMEM);
	else if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void vop_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 0);
}

static void vop_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 1);
}

static void vop_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	enum fs_vkind kind;
	uint64_t base;

	if (!fs_vino_split(ino, &kind, &base)) {
		fs_ops.releasedir(req, ino, fi);
		return;
	}
	vdir_close((struct vdir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Names: nothing is made, removed or renamed in a variant folder, and the
 * variant folders themselves are fixed. */
static int name_refusal(struct mvfs *fs, fuse_ino_t parent, const char *name, const char *what)
{
	enum fs_vkind kind;
	uint64_t base;

	if (fs_vino_split(parent, &kind, &base))
		return refuse(what, name);
	if (reserved_in(fs, parent, name))
		return refuse(what, name);
	return 0;
}

static void vop_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	int err = name_refusal(fs_of(req), parent, name, "make folder");

	if (err)
		fuse_reply_err(req, err == EROFS && dir_named(name) ? EEXIST : err);
	else
		fs_ops.mkdir(req, parent, name, mode);
}

static void vop_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int err = name_refusal(fs_of(req), parent, name, "remove");

	if (err)
		fuse_reply_err(req, err);
	else
		fs_ops.rmdir(req, parent, name);
}

static void vop_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mvfs *fs = fs_of(req);
	enum fs_vkind kind;
	uint64_t base;

	if (fs_vino_split(parent, &kind, &base))
		fuse_reply_err(req, refuse("remove", name));
	else if (reserved_in(fs, parent, name))
		fuse_reply_err(req, EISDIR);
	else
		fs_ops.unlink(req, parent, name);
}

static void vop_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	struct mvfs *fs = fs_of(req);
	int err = name_refusal(fs, parent, name, "rename");

	if (!err)
		err = name_refusal(fs, newparent, newname, "rename onto");
	if (err)
		fuse_reply_err(req, err);
	else
		fs_ops.rename(req, parent, name, newparent, newname, flags);
}

static void vop_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	enum fs_vkind kind;
	uint64_t base;
	int err = fs_vino_split(ino, &kind, &base) ? refuse("link", newname)
						    : name_refusal(fs_of(req), newparent, newname, "link");

	if (err)
		fuse_reply_err(req, err);
	else
		fs_ops.link(req, ino, newparent, newname);
}

static void vop_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	int err = name_refusal(fs_of(req), parent, name, "make");

	if (err)
		fuse_reply_err(req, err);
	else
		fs_ops.symlink(req, link, parent, name);
}

static void vop_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	int err = name_refusal(fs_of(req), parent, name, "make");

	if (err)
		fuse_reply_err(req, err);
	else
		fs_ops.mknod(req, parent, name, mode, rdev);
}

static void vop_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct mvfs *fs = fs_of(req);
	enum fs_vkind kind;
	uint64_t base;

	if (fs_vino_split(parent, &kind, &base))
		fuse_reply_err(req, refuse("create", name));
	else if (reserved_in(fs, parent, name))
		fuse_reply_err(req, EEXIST);
	else
		fs_ops.create(req, parent, name, mode, fi);
}

/* --- variant files: content ---------------------------------------------- */

struct vfile {
	char sha256[65];
	uint64_t size;
	struct cache_reader ra;
};

static void vop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mvfs *fs = fs_of(req);
	struct meta_variant v;
	struct vfile *h;
	enum fs_vkind kind;
	uint64_t base;
	int rc;

	if (!fs_vino_split(ino, &kind, &base)) {
		fs_ops.open(req, ino, fi);
		return;
	}
	if (is_dir_kind(kind)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, refuse("write", "a variant"));
		return;
	}
	rc = variant_of(fs, kind, base, &v);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	snprintf(h->sha256, sizeof(h->sha256), "%s", v.sha256);
	h->size = v.size;
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;	/* a rewritten original brings new variants under this number */
	if (fuse_reply_open(req, fi) != 0)
		free(h);
}

static void vop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct mvfs *fs = fs_of(req);
	enum fs_vkind kind;
	uint64_t base;
	struct vfile *h;
	size_t got = 0;
	char *buf;
	int rc = 0;

	if (!fs_vino_split(ino, &kind, &base)) {
		fs_ops.read(req, ino, size, off, fi);
		return;
	}
	h = (struct vfile *)(uintptr_t)fi->fh;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if ((uint64_t)off < h->size) {
		rc = cache_read(fs->cache, h->sha256, h->size, (uint64_t)off, size, buf, &got, &h->ra);
		if (rc)
			log_error("cannot read variant %.12s... at %lld: %s", h->sha256, (long long)off,
				  strerror(-rc));
	}
	if (rc)
		fuse_reply_err(req, rc == -ENOENT ? EIO : -rc);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

static void vop_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	enum fs_vkind kind;
	uint64_t base;

	if (fs_vino_split(ino, &kind, &base))
		fuse_reply_err(req, EROFS);
	else
		fs_ops.write(req, ino, buf, size, off, fi);
}

static void vop_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	enum fs_vkind kind;
	uint64_t base;

	if (fs_vino_split(ino, &kind, &base))
		fuse_reply_err(req, 0);
	else
		fs_ops.flush(req, ino, fi);
}

static void vop_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	enum fs_vkind kind;
	uint64_t base;

	if (fs_vino_split(ino, &kind, &base))
		fuse_reply_err(req, 0);
	else
		fs_ops.fsync(req, ino, datasync, fi);
}

static void vop_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	enum fs_vkind kind;
	uint64_t base;

	if (!fs_vino_split(ino, &kind, &base)) {
		fs_ops.release(req, ino, fi);
		return;
	}
	free((struct vfile *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* --- extended attributes ------------------------------------------------- */

/* What processing found out, on originals: names and how each is shown. */
static const char *const proc_xattrs[] = {
	"user.mvault.processing_error", "user.mvault.width", "user.mvault.height", "user.mvault.color_space",
};
#define NPROC (sizeof(proc_xattrs) / sizeof(proc_xattrs[0]))

static int proc_value(const struct meta_processing *p, size_t i, char *out, size_t len)
{
	switch (i) {
	case 0:
		return snprintf(out, len, "%s", p->error);
	case 1:
		return p->width ? snprintf(out, len, "%d", p->width) : 0;
	case 2:
		return p->height ? snprintf(out, len, "%d", p->height) : 0;
	default:
		return snprintf(out, len, "%s", p->color_space);
	}
}

static void reply_value(fuse_req_t req, const char *val, size_t n, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, n);
	else if (size < n)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, n);
}

/* A variant file's own attributes: its hash, type and size in pixels. */
static int variant_xattr(const struct meta_variant *v, const char *name, char *out, size_t len)
{
	if (strcmp(name, "user.mvault.sha256") == 0)
		return snprintf(out, len, "%s", v->sha256);
	if (strcmp(name, "user.mvault.mime") == 0)
		return snprintf(out, len, "%s", v->mime);
	if (strcmp(name, "user.mvault.width") == 0)
		return snprintf(out, len, "%d", v->width);
	if (strcmp(name, "user.mvault.height") == 0)
		return snprintf(out, len, "%d", v->height);
	return -1;
}

/* The processing results of file INO, and the file itself into F. */
static int original_processing(struct mvfs *fs, fuse_ino_t ino, struct meta_processing *p, struct meta_file *f)
{
	struct fs_node n;
	int rc;

	if ((rc = fs_node_of(fs, ino, &n)) != 0)
		return rc;
	if (n.kind != FS_NODE_FILE)
		return -ENODATA;
	if ((rc = meta_file_get(fs->meta, ino, f)) != 0)
		return rc;
	return meta_processing_get(fs->meta, f->asset_id, p);
}

static void vop_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct mvfs *fs = fs_of(req);
	struct meta_processing p;
	struct meta_variant v;
	struct meta_file f;
	enum fs_vkind kind;
	uint64_t base;
	char val[600];
	int n = -1, rc;

	if (fs_vino_split(ino, &kind, &base)) {
		if (is_dir_kind(kind) || (rc = variant_of(fs, kind, base, &v)) != 0 ||
		    (n = variant_xattr(&v, name, val, sizeof(val))) < 0)
			fuse_reply_err(req, ENODATA);
		else
			reply_value(req, val, (size_t)n, size);
		return;
	}
	for (size_t i = 0; i < NPROC; i++) {
		if (strcmp(name, proc_xattrs[i]) != 0)
			continue;
		rc = original_processing(fs, ino, &p, &f);
		if (rc == 0 && (n = proc_value(&p, i, val, sizeof(val))) > 0)
			reply_value(req, val, (size_t)n, size);
		else
			fuse_reply_err(req, rc && rc != -ENODATA ? -rc : ENODATA);
		return;
	}
	fs_ops.getxattr(req, ino, name, size);
}

static void vop_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	enum fs_vkind kind;
	uint64_t base;

	/* what a variant is, is readable by name; nothing of it is listed */
	if (fs_vino_split(ino, &kind, &base))
		reply_value(req, "", 0, size);
	else
		fs_ops.listxattr(req, ino, size);
}

/* Setting what processing found: computed, so it changes nothing. */
static int set_proc(struct mvfs *fs, fuse_ino_t ino, size_t i, const char *value, size_t size, int flags)
{
	struct meta_processing p;
	struct meta_file f;
	char val[600], subject[300];
	int n = 0, rc;

	f.name[0] = '\0';
	rc = original_processing(fs, ino, &p, &f);
	if (rc && rc != -ENODATA)
		return rc;
	if (rc == 0)
		n = proc_value(&p, i, val, sizeof(val));
	if (f.name[0])
		snprintf(subject, sizeof(subject), "'%s'", f.name);
	else
		snprintf(subject, sizeof(subject), "inode %llu", (unsigned long long)ino);
	return fs_xattr_set_computed(subject, proc_xattrs[i], n > 0 ? val : NULL, n > 0 ? (size_t)n : 0,
				     value, size, flags);
}

static void vop_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			 int flags)
{
	enum fs_vkind kind;
	uint64_t base;

	if (fs_vino_split(ino, &kind, &base)) {
		log_warn("cannot set '%s' on a variant: variants are read-only", name);
		fuse_reply_err(req, EROFS);
		return;
	}
	for (size_t i = 0; i < NPROC; i++) {
		if (strcmp(name, proc_xattrs[i]) == 0) {
			fuse_reply_err(req, -set_proc(fs_of(req), ino, i, value, size, flags));
			return;
		}
	}
	fs_ops.setxattr(req, ino, name, value, size, flags);
}

static void vop_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	enum fs_vkind kind;
	uint64_t base;

	if (fs_vino_split(ino, &kind, &base)) {
		log_warn("cannot remove '%s' from a variant: variants are read-only", name);
		fuse_reply_err(req, EROFS);
	} else {
		fs_ops.removexattr(req, ino, name);
	}
}

void fs_variants_ops(struct fuse_lowlevel_ops *ops)
{
	*ops = fs_ops;
	ops->lookup = vop_lookup;
	ops->getattr = vop_getattr;
	ops->setattr = vop_setattr;
	ops->opendir = vop_opendir;
	ops->readdir = vop_readdir;
	ops->readdirplus = vop_readdirplus;
	ops->releasedir = vop_releasedir;
	ops->mkdir = vop_mkdir;
	ops->rmdir = vop_rmdir;
	ops->unlink = vop_unlink;
	ops->rename = vop_rename;
	ops->link = vop_link;
	ops->symlink = vop_symlink;
	ops->mknod = vop_mknod;
	ops->create = vop_create;
	ops->open = vop_open;
	ops->read = vop_read;
	ops->write = vop_write;
	ops->flush = vop_flush;
	ops->fsync = vop_fsync;
	ops->release = vop_release;
	ops->getxattr = vop_getxattr;
	ops->listxattr = vop_listxattr;
	ops->setxattr = vop_setxattr;
	ops->removexattr = vop_removexattr;
}
