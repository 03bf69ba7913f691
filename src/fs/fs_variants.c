/*
 * fs_variants.c - .display/ and .thumb/: variant files beside originals.
 *
 * DESIGN: what variants are, and nothing of the FUSE op table.  The
 * node lookup knows them as special nodes (as JuiceFS's IsSpecialNode,
 * fs_special.h): fs_ops.c asks fs_special_of() of an inode number once and
 * calls the workers here (fs_variants_special), and fs_ns_lookup() answers the names ".display" and
 * ".thumb" in a folder of files with fs_variants_dir_entry().  So the
 * namespace and file code know of variants only at those branches.
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
#include "fs/fs_special.h"
#include "meta/meta_variants.h"
#include "util/log.h"
#include "util/name.h"

#define DIR_DISPLAY ".display"
#define DIR_THUMB ".thumb"
#define PAGE 256

uint64_t fs_vino(enum fs_vkind kind, uint64_t base)
{
	if (base > FS_VINO_BASE_MAX || kind < FS_V_DISPLAY_DIR || kind > FS_V_THUMB_FILE)
		return 0;
	return FS_VINO_TAG | ((uint64_t)kind << 56) | base;
}

int fs_vino_is(uint64_t ino)
{
	enum fs_vkind kind;
	uint64_t base;

	return fs_vino_split(ino, &kind, &base);
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

static int is_dir_kind(enum fs_vkind k)
{
	return k == FS_V_DISPLAY_DIR || k == FS_V_THUMB_DIR;
}

static const char *type_of(enum fs_vkind k)
{
	return k == FS_V_DISPLAY_DIR || k == FS_V_DISPLAY_FILE ? "display" : "thumb";
}

enum fs_vkind fs_variants_dir_named(const char *name)
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

int fs_variants_reserved(struct mvfs *fs, uint64_t parent, const char *name)
{
	struct meta_dir dir;

	return fs_variants_dir_named(name) && files_dir(fs, parent, &dir) == 0;
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

/* The ready variant behind variant file KIND of original BASE: one
 * question of meta (getattr, open and xattrs of a variant file ask it). */
static int variant_of(struct mvfs *fs, enum fs_vkind kind, uint64_t base, struct meta_variant *v)
{
	return meta_variant_of_file(fs->meta, base, type_of(kind), v);
}

static int variants_getattr(struct mvfs *fs, uint64_t ino, struct stat *st)
{
	struct meta_variant v;
	struct meta_dir dir;
	enum fs_vkind kind;
	uint64_t base;
	int rc;

	if (!fs_vino_split(ino, &kind, &base))
		return -ENOENT;
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

int fs_variants_dir_entry(struct mvfs *fs, uint64_t parent, enum fs_vkind kind, struct fuse_entry_param *e)
{
	struct stat st;

	dir_stat(fs, fs_vino(kind, parent), &st);
	return entry(fs, &st, e);
}

/* NAME in variant folder PARENT. */
static int variants_lookup(struct mvfs *fs, uint64_t parent, const char *name, struct fuse_entry_param *e)
{
	char orig[NAME_MAX_BYTES + 1];
	const char *dot = strrchr(name, '.');
	struct meta_variant v;
	struct meta_dir dir;
	struct meta_file f;
	struct stat st;
	enum fs_vkind kind, fk;
	uint64_t base;
	int rc;

	if (!fs_vino_split(parent, &kind, &base))
		return -ENOENT;
	if (!is_dir_kind(kind))
		return -ENOTDIR;
	fk = kind == FS_V_DISPLAY_DIR ? FS_V_DISPLAY_FILE : FS_V_THUMB_FILE;
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

struct fs_vdir {
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

static void vdir_rewind(struct fs_vdir *d)
{
	d->next_off = 0;
	memset(&d->cursor, 0, sizeof(d->cursor));
	d->nent = d->pos = d->eof = 0;
}

/* The next page of entries: 1 when d->pos points at one, 0 at the end. */
static int vdir_fill(struct fs_vdir *d)
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

static int variants_opendir(struct mvfs *fs, uint64_t ino, void **out)
{
	struct fs_vdir *d;
	enum fs_vkind kind;
	uint64_t base;
	int rc;

	if (!fs_vino_split(ino, &kind, &base))
		return -ENOENT;
	if (!is_dir_kind(kind))
		return -ENOTDIR;
	if (!(d = calloc(1, sizeof(*d))))
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

static void variants_closedir(void *dir)
{
	struct fs_vdir *d = dir;

	if (!d)
		return;
	fs_open_dir_untrack(d->fs, &d->open);
	vdir_free(&d->open);
}

static void vdir_free(struct fs_open_dir *od)
{
	struct fs_vdir *d = (struct fs_vdir *)od;

	pthread_mutex_destroy(&d->lock);
	free(d->files);
	free(d->vars);
	free(d->ents);
	free(d);
}

/* Adds one entry to BUF; 0 when it does not fit.  With PLUS the kernel
 * holds the inode afterwards (except for "." and ".."). */
static size_t add_entry(fuse_req_t req, struct mvfs *fs, char *buf, size_t room, const char *name, const struct stat *st,
			off_t next, int plus, int counted)
{
	struct fuse_entry_param e;
	size_t n;

	if (!plus)
		return fuse_add_direntry(req, buf, room, name, st, next);
	fs_ns_entry(fs, st, &e);
	if (!counted)
		e.ino = 0;
	n = fuse_add_direntry_plus(req, buf, room, name, &e, next);
	if (n <= room && counted && !fs_inode_get(fs, st->st_ino, 1, 0))
		return 0;
	return n;
}

static int variants_readdir(fuse_req_t req, void *dir, off_t off, char *buf, size_t size, int plus, size_t *used)
{
	struct fs_vdir *d = dir;
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
		n = add_entry(req, fs, buf + len, size - len, name, &st, d->next_off + 1, plus, counted);
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


size_t fs_variants_dirs_listed(fuse_req_t req, uint64_t ino, off_t off, char *buf, size_t size, int plus)
{
	struct mvfs *fs = fuse_req_userdata(req);
	static const enum fs_vkind kinds[] = { FS_V_DISPLAY_DIR, FS_V_THUMB_DIR };
	struct meta_dir dir;
	size_t len = 0;

	if (!fs->cfg.variants_visible || files_dir(fs, ino, &dir) != 0)
		return 0;
	for (int i = 0; i < 2; i++) {
		off_t my = FS_VARIANTS_OFF + i + 1;
		struct stat st;
		size_t n;

		if (off >= my)
			continue;
		if (meta_variants_any(fs->meta, &dir, type_of(kinds[i])) != 1)
			continue;
		dir_stat(fs, fs_vino(kinds[i], ino), &st);
		n = add_entry(req, fs, buf + len, size - len, kinds[i] == FS_V_DISPLAY_DIR ? DIR_DISPLAY : DIR_THUMB,
			      &st, my, plus, 1);
		if (n == 0 || n > size - len)
			break;
		len += n;
	}
	return len;
}

/* --- refusals ------------------------------------------------------------ */

int fs_variants_refuse(const char *what, const char *name)
{
	log_warn("cannot %s '%s': %s/ and %s/ are made by mvaultfs and read-only", what, name ? name : "",
		 DIR_DISPLAY, DIR_THUMB);
	return -EROFS;
}

int fs_variants_refuse_name(struct mvfs *fs, uint64_t parent, const char *name, const char *what)
{
	if (fs_vino_is(parent) || fs_variants_reserved(fs, parent, name))
		return fs_variants_refuse(what, name);
	return 0;
}

/* --- variant files: content ---------------------------------------------- */

struct fs_vfile {
	char sha256[65];
	uint64_t size;
	struct cache_reader ra;
};

static int variants_open(struct mvfs *fs, uint64_t ino, struct fuse_file_info *fi, void **out)
{
	struct meta_variant v;
	struct fs_vfile *h;
	enum fs_vkind kind;
	uint64_t base;
	int rc;

	if (!fs_vino_split(ino, &kind, &base))
		return -ENOENT;
	if (is_dir_kind(kind))
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return fs_variants_refuse("write", "a variant");
	if ((rc = variant_of(fs, kind, base, &v)) != 0)
		return rc;
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	snprintf(h->sha256, sizeof(h->sha256), "%s", v.sha256);
	h->size = v.size;
	fi->keep_cache = 0;	/* a rewritten original brings new variants under this number */
	*out = h;
	return 0;
}

static int variants_read(struct mvfs *fs, void *file, size_t size, off_t off, char *buf, size_t *got)
{
	struct fs_vfile *h = file;
	int rc = 0;

	*got = 0;
	if ((uint64_t)off < h->size) {
		rc = cache_read(fs->cache, h->sha256, h->size, (uint64_t)off, size, buf, got, &h->ra);
		if (rc)
			log_error("cannot read variant %.12s... at %lld: %s", h->sha256, (long long)off,
				  strerror(-rc));
	}
	return rc == -ENOENT ? -EIO : rc;
}

static void variants_release(void *file)
{
	free(file);
}

/* --- extended attributes ------------------------------------------------- */

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

static ssize_t variants_getxattr(struct mvfs *fs, uint64_t ino, const char *name, char *buf, size_t size)
{
	struct meta_variant v;
	enum fs_vkind kind;
	uint64_t base;
	char val[600];
	int n;

	if (!fs_vino_split(ino, &kind, &base) || is_dir_kind(kind) || variant_of(fs, kind, base, &v) != 0 ||
	    (n = variant_xattr(&v, name, val, sizeof(val))) < 0)
		return -ENODATA;
	return fs_xattr_copy_out(val, (size_t)n, buf, size);
}

/* --- the special node's workers (fs_special.h) --------------------------- */

/* Nothing is made, changed or removed in a variant folder, nor set on a
 * variant: EROFS after one line (fs_variants_refuse). */

static int variants_setattr(struct mvfs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *st)
{
	return fs_variants_refuse("change", "a variant");
}

static int variants_mkdir(struct mvfs *fs, uint64_t parent, const char *name)
{
	int rc = fs_variants_refuse("make folder", name);

	return fs_variants_dir_named(name) ? -EEXIST : rc;	/* that variant folder exists */
}

static int variants_rmdir(struct mvfs *fs, uint64_t parent, const char *name)
{
	return fs_variants_refuse("remove", name);
}

static int variants_make(const char *name, int symlink)
{
	return fs_variants_refuse("make", name);
}

static int variants_link(const char *newname)
{
	return fs_variants_refuse("link", newname);
}

static int variants_rename(struct mvfs *fs, uint64_t parent, const char *name, uint64_t newparent,
			   const char *newname, unsigned flags)
{
	int rc = fs_variants_refuse_name(fs, parent, name, "rename");

	return rc ? rc : fs_variants_refuse_name(fs, newparent, newname, "rename onto");
}

static int variants_create(struct mvfs *fs, uint64_t parent, const char *name, struct fuse_file_info *fi,
			   struct fuse_entry_param *e)
{
	return fs_variants_refuse("create", name);
}

static ssize_t variants_write(struct mvfs *fs, void *file, const char *buf, size_t size, off_t off)
{
	return -EROFS;	/* opened read-only: refused at open */
}

static int variants_flush(struct mvfs *fs, void *file)
{
	return 0;
}

static int variants_setxattr(const char *name)
{
	log_warn("cannot set '%s' on a variant: variants are read-only", name);
	return -EROFS;
}

static int variants_removexattr(const char *name)
{
	log_warn("cannot remove '%s' from a variant: variants are read-only", name);
	return -EROFS;
}

const struct fs_special fs_variants_special = {
	.lookup = variants_lookup,
	.getattr = variants_getattr,
	.setattr = variants_setattr,
	.opendir = variants_opendir,
	.readdir = variants_readdir,
	.closedir = variants_closedir,
	.mkdir = variants_mkdir,
	.rmdir = variants_rmdir,
	.unlink = variants_rmdir,	/* the same refusal: "cannot remove" */
	.make = variants_make,
	.link = variants_link,
	.rename = variants_rename,
	.create = variants_create,
	.open = variants_open,
	.read = variants_read,
	.write = variants_write,
	.flush = variants_flush,
	.release = variants_release,
	.getxattr = variants_getxattr,
	.setxattr = variants_setxattr,
	.removexattr = variants_removexattr,
};
