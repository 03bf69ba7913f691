/*
 * fs_xattr.c - extended attributes: computed user.mvault.* names and the
 * user.* attributes people and tools set, kept per inode as ext4 keeps them.
 *
 * A name falls in one of seven sets, and each set has one rule:
 *
 *   user.mvault.collection  the file's collection: set files it, remove
 *                           unfiles it.  Readable by name but not listed,
 *                           so `rsync -aX` from a tree without attributes
 *                           cannot unfile every file it touches.
 *   user.mvault.pin         the backends a file or gallery is pinned to
 *                           ("store forever"): set copies it there, remove
 *                           lets go (fs_presence.c).  Not listed, as below.
 *   user.mvault.*           computed from the rows behind the inode (id,
 *                           hash, statuses ...; on a file also what
 *                           processing found: processing_error, width,
 *                           height, color_space).  Setting one succeeds and
 *                           changes nothing (an info line when the value
 *                           differs); removing one succeeds and changes
 *                           nothing.  That is what lets `rsync -aX` copy a
 *                           backup back in, even into another library.
 *   user.xdg.tags, user.xdg.comment, user.baloo.rating
 *                           a library file's tags, title and favourite
 *                           flag, the web application's own columns
 *                           (meta_xdg_*, util/xdg.h); values are checked
 *                           (xdg_check) on every inode, and kept as user.*
 *                           on one without a library row.
 *   user.*                  stored in the database (meta_xattr_*), on files
 *                           and on collections and galleries; refused
 *                           (ENOTSUP) on the top folders.
 *   security.*, system.posix_acl_*
 *                           asked of every file by ls -l: at once, without
 *                           the database.  security.capability (the kernel
 *                           asks it at a file's first write) is ENODATA; any
 *                           other security.* (ls -l's security.selinux) and
 *                           the ACLs ENOTSUP, as a filesystem without labels
 *                           or ACLs answers: ls then asks no other file of
 *                           the mount (it remembers the device), 20,000
 *                           questions fewer for 10,000 files.  An access ACL
 *                           that is only a mode sets the mode
 *                           (fs_xattr_acl_mode, what chmod-like tools send);
 *                           any other ACL is ENOTSUP; removing one is ENODATA
 *                           (there is none).
 *   anything else           ENOTSUP: only user.* attributes are kept.
 *
 * Limits are ext4's: a name over 255 bytes is ERANGE, a value over 64 KiB
 * E2BIG, both refused before the database is asked.  Every refusal is one
 * log line quoting the name and saying why.
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "meta/meta_variants.h"
#include "util/log.h"
#include "util/name.h"
#include "util/utf8.h"
#include "util/xdg.h"

#define XATTR_PREFIX "user.mvault."
#define XATTR_COLLECTION XATTR_PREFIX "collection"
#define XATTR_PIN XATTR_PREFIX "pin"
#define XATTR_PRESENCE XATTR_PREFIX "presence"

struct xattr_field {
	const char *name;
	size_t off;		/* of a NUL-terminated string in struct meta_file */
};

static const struct xattr_field file_xattrs[] = {
	{ XATTR_PREFIX "id", offsetof(struct meta_file, memory_id) },
	{ XATTR_PREFIX "sha256", offsetof(struct meta_file, sha256) },
	{ XATTR_PREFIX "status", offsetof(struct meta_file, status) },
	{ XATTR_PREFIX "processing_status", offsetof(struct meta_file, processing_status) },
	{ XATTR_PREFIX "mime", offsetof(struct meta_file, mime) },
	{ XATTR_PREFIX "created_at", offsetof(struct meta_file, created_at) },
};

static const struct xattr_field folder_xattrs[] = {
	{ XATTR_PREFIX "id", offsetof(struct meta_folder, id) },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The sets of names (see the top of the file). */
enum xattr_set {
	XS_COLLECTION,
	XS_PIN,
	XS_COMPUTED,
	XS_XDG,
	XS_USER,
	XS_QUIET,
	XS_OTHER,
};

static enum xattr_set set_of(const char *name)
{
	if (strcmp(name, XATTR_COLLECTION) == 0)
		return XS_COLLECTION;
	if (strcmp(name, XATTR_PIN) == 0)
		return XS_PIN;
	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0)
		return XS_COMPUTED;
	if (xdg_name(name))
		return XS_XDG;
	if (strncmp(name, "user.", 5) == 0)
		return XS_USER;
	if (strncmp(name, "security.", 9) == 0 || strncmp(name, "system.posix_acl_", 17) == 0)
		return XS_QUIET;
	return XS_OTHER;
}

/* What an inode's attributes come from. */
struct xattr_src {
	enum { SRC_TOP, SRC_FILE, SRC_FOLDER, SRC_PLAIN } kind;
	struct meta_file f;		/* SRC_FILE */
	struct meta_folder folder;	/* SRC_FOLDER: a collection or gallery */
	char subject[300];		/* quoted, for log lines */
};

/* Fills S for INO: one round trip for a file or a collection or gallery,
 * none for a top folder.  F, when not NULL, is INO's file already read. */
static int source_of(struct mvfs *fs, uint64_t ino, const struct meta_file *f, struct xattr_src *s)
{
	struct fs_node n;
	int rc;

	if ((rc = fs_node_of(fs, ino, &n)) != 0)
		return rc;
	if (n.kind == FS_NODE_FILE) {
		s->kind = SRC_FILE;
		if (f)
			s->f = *f;
		else if ((rc = meta_file_get(fs->meta, ino, &s->f)) != 0)
			return rc;
		else
			(void)fs_ns_visible(fs, &s->f);	/* the values of the version shown */
		snprintf(s->subject, sizeof(s->subject), "'%s'", s->f.name);
	} else if (n.kind == FS_NODE_PLAIN) {
		struct meta_plain p;

		s->kind = SRC_PLAIN;
		if ((rc = meta_plain_get(fs->meta, ino, &p)) != 0)
			return rc;
		snprintf(s->subject, sizeof(s->subject), "'%s'", p.name);
	} else if (ino >= META_INO_FIRST) {
		s->kind = SRC_FOLDER;
		if ((rc = meta_folder_get(fs->meta, ino, &s->folder)) != 0)
			return rc;
		snprintf(s->subject, sizeof(s->subject), "folder '%s'", s->folder.name);
	} else {
		s->kind = SRC_TOP;
		snprintf(s->subject, sizeof(s->subject), "'%s'", n.name ? n.name : "?");
	}
	return 0;
}

/* The computed names of S: its table and the struct it reads. */
static const struct xattr_field *fields_of(const struct xattr_src *s, const char **base, size_t *n)
{
	*base = s->kind == SRC_FILE ? (const char *)&s->f : (const char *)&s->folder;
	*n = s->kind == SRC_FILE ? N(file_xattrs) : s->kind == SRC_FOLDER ? N(folder_xattrs) : 0;
	return s->kind == SRC_FILE ? file_xattrs : folder_xattrs;
}

ssize_t fs_xattr_copy_out(const char *val, size_t len, char *buf, size_t size)
{
	if (size == 0)
		return (ssize_t)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, val, len);
	return (ssize_t)len;
}

/* What processing found out about a file (meta_processing_get): one more
 * round trip, asked only for these names. */
static const char *const processing_xattrs[] = {
	XATTR_PREFIX "processing_error", XATTR_PREFIX "width", XATTR_PREFIX "height", XATTR_PREFIX "color_space",
};

/* Processing result NAME of S into VAL (LEN bytes): 1, 0 when NAME is not
 * one (or S not a file), or -errno.  *VAL is "" when there is none yet. */
static int processing_value(struct mvfs *fs, const struct xattr_src *s, const char *name, char *val, size_t len)
{
	struct meta_processing p;
	size_t i;
	int rc;

	for (i = 0; i < N(processing_xattrs) && strcmp(name, processing_xattrs[i]) != 0; i++)
		;
	if (i == N(processing_xattrs) || s->kind != SRC_FILE)
		return 0;
	*val = '\0';
	if ((rc = meta_processing_get(fs->meta, s->f.asset_id, &p)) != 0)
		return rc == -ENODATA ? 1 : rc;
	if (i == 0)
		snprintf(val, len, "%s", p.error);
	else if (i == 3)
		snprintf(val, len, "%s", p.color_space);
	else if (i == 1 ? p.width : p.height)
		snprintf(val, len, "%d", i == 1 ? p.width : p.height);
	return 1;
}

/* The value of computed NAME of S (a pointer into S, or a constant), or NULL. */
static const char *computed_value(const struct xattr_src *s, const char *name)
{
	const char *base;
	size_t n;
	const struct xattr_field *fields = fields_of(s, &base, &n);

	/* the statuses meta reads as enums, shown as the words they are */
	if (s->kind == SRC_FILE && strcmp(name, XATTR_PREFIX "upload_status") == 0)
		return meta_upload_name(s->f.upload);
	if (s->kind == SRC_FILE && strcmp(name, XATTR_PREFIX "lifecycle_status") == 0)
		return meta_lifecycle_name(s->f.lifecycle);
	for (size_t i = 0; i < n; i++) {
		const char *val = base + fields[i].off;

		if (strcmp(name, fields[i].name) == 0)
			return *val ? val : NULL;	/* e.g. no hash before the first commit */
	}
	return NULL;
}

/* Whether S may be pinned and has a presence: a file, or a gallery. */
static int pinnable(const struct xattr_src *s)
{
	return s->kind == SRC_FILE || (s->kind == SRC_FOLDER && s->folder.place == META_PLACE_GALLERY);
}

/* For user.mvault.presence, "", for user.mvault.presence.NAME, ".NAME";
 * NULL for any other name. */
static const char *presence_name(const char *name)
{
	size_t len = strlen(XATTR_PRESENCE);

	if (strncmp(name, XATTR_PRESENCE, len) != 0 || (name[len] && (name[len] != '.' || !name[len + 1])))
		return NULL;
	return name + len;
}

/* Sets (VALUE) or removes (VALUE NULL) the pins of INO: 0 or -errno after
 * a log line. */
static int set_pin(struct mvfs *fs, uint64_t ino, const char *value, size_t size)
{
	struct xattr_src s;
	int rc;

	if ((rc = source_of(fs, ino, NULL, &s)) != 0)
		return rc;
	if (!pinnable(&s)) {
		log_warn("cannot pin %s: only files and galleries are pinned", s.subject);
		return -ENOTSUP;
	}
	/* letting go is allowed in .trash/: a removed file's own pin would
	 * otherwise hold its copy for ever once the file leaves the trash */
	if (value && s.kind == SRC_FILE && s.f.lifecycle != META_LIFE_ACTIVE) {
		log_warn("cannot pin %s: it is in .trash/, which is read-only", s.subject);
		return -EROFS;
	}
	return fs_pin_set(fs, ino, s.subject, value, size);
}

/* Whether NAME may be stored: 0, or -errno after a log line. */
static int check_name(const char *name, uint64_t ino)
{
	size_t len = strlen(name);

	if (len > META_XATTR_NAME_MAX) {
		log_warn("cannot keep attribute '%.40s...' on inode %llu: its name is %zu bytes, the limit is %d",
			 name, (unsigned long long)ino, len, META_XATTR_NAME_MAX);
		return -ERANGE;
	}
	if (!utf8_valid(name, len)) {
		log_warn("cannot keep attribute '%s' on inode %llu: its name is not valid UTF-8", name,
			 (unsigned long long)ino);
		return -EINVAL;
	}
	return 0;
}

/* --- reading ------------------------------------------------------------- */

/* How often the kernel asked for security.capability: before each write
 * through its page cache (the root's stats, capability_asked). */
static uint64_t capability_asked;

int fs_xattr_quiet(const char *name)
{
	if (set_of(name) != XS_QUIET)
		return 0;
	if (strcmp(name, "security.capability") == 0) {
		__atomic_add_fetch(&capability_asked, 1, __ATOMIC_RELAXED);
		return -ENODATA;
	}
	return -ENOTSUP;
}

ssize_t fs_do_getxattr(struct mvfs *fs, uint64_t ino, const char *name, char *buf, size_t size)
{
	char pval[600];
	struct xattr_src s;
	const char *val;
	int rc;

	if (ino == META_INO_ROOT && strcmp(name, FS_XATTR_STATS) == 0)
		return fs_xattr_stats(fs->cache, buf, size);
	if (ino == META_INO_ROOT && strcmp(name, FS_XATTR_ASIDE) == 0)
		return fs_xattr_aside(fs->cache, buf, size);
	if (ino == META_INO_ROOT && strcmp(name, FS_XATTR_PINS) == 0)
		return fs_xattr_pins(fs, buf, size);
	if (set_of(name) != XS_QUIET && set_of(name) != XS_OTHER)
		fs_local_settle(fs, ino);	/* made here: its rows first */
	switch (set_of(name)) {
	case XS_QUIET:
		return fs_xattr_quiet(name);
	case XS_OTHER:
		log_info("no attribute '%s' on inode %llu: only user.* attributes are kept", name,
			 (unsigned long long)ino);
		return -ENOTSUP;
	case XS_COLLECTION: {
		char coll[NAME_MAX_BYTES + 1];

		if (ino < META_INO_FIRST)
			return -ENODATA;
		rc = meta_file_collection(fs->meta, ino, coll, sizeof(coll));
		return rc ? rc : fs_xattr_copy_out(coll, strlen(coll), buf, size);
	}
	case XS_PIN:
		if ((rc = source_of(fs, ino, NULL, &s)) != 0)
			return rc;
		return pinnable(&s) ? meta_pin_get(fs->meta, ino, buf, size) : -ENODATA;
	case XS_COMPUTED:
		if ((rc = source_of(fs, ino, NULL, &s)) != 0)
			return rc;
		if (pinnable(&s) && presence_name(name))
			return fs_presence_get(fs, ino, s.kind == SRC_FOLDER, presence_name(name)[0] ?
					       presence_name(name) + 1 : NULL, buf, size);
		if ((rc = processing_value(fs, &s, name, pval, sizeof(pval))) != 0)
			val = rc > 0 && *pval ? pval : NULL;
		else
			val = computed_value(&s, name);
		if (rc < 0)
			return rc;
		return val ? fs_xattr_copy_out(val, strlen(val), buf, size) : -ENODATA;
	case XS_XDG:
		return ino < META_INO_FIRST ? -ENODATA : meta_xdg_get(fs->meta, ino, name, buf, size);
	case XS_USER:
		if (strlen(name) > META_XATTR_NAME_MAX)
			return -ERANGE;
		if (ino < META_INO_FIRST || !utf8_valid(name, strlen(name)))
			return -ENODATA;	/* none can be stored */
		return meta_xattr_get(fs->meta, ino, name, buf, size);
	}
	return -ENODATA;
}

ssize_t fs_xattr_names(struct mvfs *fs, uint64_t ino, char *buf, size_t size)
{
	struct xattr_src s;
	ssize_t n;
	int rc;

	if ((rc = source_of(fs, ino, NULL, &s)) != 0)
		return rc;
	if (ino < META_INO_FIRST)
		return 0;
	n = meta_xattr_list(fs->meta, ino, buf, size);
	if (n == -ERANGE && size)
		log_debug("listing the attributes of %s: %zu bytes are not enough", s.subject, size);
	return n;
}

ssize_t fs_do_listxattr(struct mvfs *fs, uint64_t ino, char *buf, size_t size)
{
	fs_local_settle(fs, ino);	/* made here: its rows first */
	return fs_xattr_names(fs, ino, buf, size);
}

/* --- changing ------------------------------------------------------------ */

int fs_xattr_set_computed(const char *subject, const char *name, const char *cur, size_t curlen,
			  const char *value, size_t size, int flags)
{
	if ((flags & XATTR_CREATE) && cur) {
		log_info("cannot create '%s' on %s: it exists (XATTR_CREATE), computed by the filesystem",
			 name, subject);
		return -EEXIST;
	}
	if ((flags & XATTR_REPLACE) && !cur) {
		log_info("cannot replace '%s' on %s: it has no value (XATTR_REPLACE)", name, subject);
		return -ENODATA;
	}
	if (!cur || curlen != size || memcmp(cur, value, size) != 0)
		log_info("ignored a new value of '%s' on %s: the filesystem computes it", name, subject);
	return 0;
}

/* Files a file in a collection, or unfiles it (VALUE NULL).  The one way
 * out of a collection back to library/ only: mv refuses to move a file onto
 * another name of the same inode, and the kernel never asks. */
static int set_collection(struct mvfs *fs, uint64_t ino, const char *value, size_t size)
{
	char name[NAME_MAX_BYTES + 1];
	struct fs_node n;
	int rc;

	if ((rc = fs_node_of(fs, ino, &n)) != 0)
		return rc;
	if (n.kind != FS_NODE_FILE) {
		log_warn("cannot set '" XATTR_COLLECTION "' on inode %llu: only files are in collections",
			 (unsigned long long)ino);
		return -EPERM;
	}
	if (value) {
		if (size == 0 || size > NAME_MAX_BYTES)
			return size ? -ENAMETOOLONG : -EINVAL;
		memcpy(name, value, size);
		name[size] = '\0';
		if ((rc = fs_ns_check_existing(name)) != 0)
			return rc;
	}
	rc = meta_file_set_collection(fs->meta, ino, value ? name : NULL);
	if (rc == -EPERM)
		log_warn("cannot file inode %llu in a collection: only library files are in collections",
			 (unsigned long long)ino);
	return rc;
}

/* Whether the user.* attributes of INO may change: 0 with S filled, or
 * -errno after a log line.  WHAT is "set" or "remove". */
static int user_writable(struct mvfs *fs, uint64_t ino, const char *name, const char *what,
			 struct xattr_src *s)
{
	int rc = check_name(name, ino);

	if (rc || (rc = source_of(fs, ino, NULL, s)) != 0)
		return rc;
	if (s->kind == SRC_TOP) {
		log_warn("cannot %s '%s' on top folder %s: only files, collections and galleries keep"
			 " attributes", what, name, s->subject);
		return -ENOTSUP;
	}
	if (s->kind == SRC_FILE && s->f.lifecycle != META_LIFE_ACTIVE) {
		log_warn("cannot %s '%s' on %s: it is in .trash/, which is read-only", what, name, s->subject);
		return -EROFS;
	}
	return 0;
}

/* POSIX ACL entries (linux/posix_acl_xattr.h): version 2, then 8-byte
 * entries of tag, permissions and id. */
#define ACL_XATTR_VERSION 2
enum { ACL_TAG_USER_OBJ = 0x01, ACL_TAG_GROUP_OBJ = 0x04, ACL_TAG_OTHER = 0x20 };

int fs_xattr_acl_mode(uint64_t ino, const char *name, const char *value, size_t size, mode_t *mode)
{
	const unsigned char *v = (const unsigned char *)value;
	unsigned seen = 0;

	if (strcmp(name, "system.posix_acl_access") != 0) {
		log_warn("cannot set '%s' on inode %llu: only user.* attributes are kept (no default ACLs)",
			 name, (unsigned long long)ino);
		return -ENOTSUP;
	}
	if (size < 4 || (size - 4) % 8 != 0 || (v[0] | v[1] << 8 | v[2] << 16 | (uint32_t)v[3] << 24) !=
	    ACL_XATTR_VERSION) {
		log_warn("cannot set '%s' on inode %llu: not a POSIX ACL (%zu bytes)", name,
			 (unsigned long long)ino, size);
		return -EINVAL;
	}
	*mode = 0;
	for (size_t off = 4; off < size; off += 8) {
		unsigned tag = v[off] | v[off + 1] << 8, perm = (v[off + 2] | v[off + 3] << 8) & 7;

		if (tag == ACL_TAG_USER_OBJ)
			*mode |= perm << 6;
		else if (tag == ACL_TAG_GROUP_OBJ)
			*mode |= perm << 3;
		else if (tag == ACL_TAG_OTHER)
			*mode |= perm;
		else {
			log_warn("cannot set '%s' on inode %llu: an ACL beyond the mode's owner, group and other"
				 " (tag %#x); only user.* attributes are kept", name, (unsigned long long)ino, tag);
			return -ENOTSUP;
		}
		seen |= tag;
	}
	if (seen != (ACL_TAG_USER_OBJ | ACL_TAG_GROUP_OBJ | ACL_TAG_OTHER)) {
		log_warn("cannot set '%s' on inode %llu: an ACL without owner, group and other entries", name,
			 (unsigned long long)ino);
		return -EINVAL;
	}
	return 0;
}

/* Whether VALUE may be given to desktop attribute NAME: 0, or -errno after
 * a log line.  Checked on every inode: a workspace file's become its
 * library row's when it is promoted. */
static int xdg_value_ok(uint64_t ino, const char *name, const char *value, size_t size)
{
	const char *why;
	int rc = xdg_check(name, value, size, &why);

	if (rc)
		log_warn("cannot set '%s' on inode %llu: %s (%s)", name, (unsigned long long)ino, why,
			 strerror(-rc));
	return rc;
}

int fs_do_setxattr(struct mvfs *fs, uint64_t ino, const char *name, const char *value, size_t size,
		   int flags)
{
	char pval[600];
	struct xattr_src s;
	const char *cur;
	int rc;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE) || (flags & XATTR_CREATE && flags & XATTR_REPLACE)) {
		log_warn("cannot set '%s' on inode %llu: unknown flags %#x", name, (unsigned long long)ino,
			 (unsigned)flags);
		return -EINVAL;
	}
	switch (set_of(name)) {
	case XS_COLLECTION:
		return set_collection(fs, ino, value, size);
	case XS_PIN:
		return set_pin(fs, ino, value, size);
	case XS_COMPUTED:
		if ((rc = source_of(fs, ino, NULL, &s)) != 0)
			return rc;
		if ((rc = processing_value(fs, &s, name, pval, sizeof(pval))) < 0)
			return rc;
		cur = rc > 0 ? (*pval ? pval : NULL) : computed_value(&s, name);
		return fs_xattr_set_computed(s.subject, name, cur, cur ? strlen(cur) : 0, value, size, flags);
	case XS_XDG:
	case XS_USER:
		break;
	default:
		log_warn("cannot set '%s' on inode %llu: only user.* attributes are kept", name,
			 (unsigned long long)ino);
		return -ENOTSUP;
	}
	if (size > META_XATTR_VALUE_MAX) {
		log_warn("cannot set '%s' on inode %llu: its value is %zu bytes, the limit is %d", name,
			 (unsigned long long)ino, size, META_XATTR_VALUE_MAX);
		return -E2BIG;
	}
	if (set_of(name) == XS_XDG && (rc = xdg_value_ok(ino, name, value, size)) != 0)
		return rc;
	if ((rc = user_writable(fs, ino, name, "set", &s)) != 0)
		return rc;
	rc = (set_of(name) == XS_XDG ? meta_xdg_set : meta_xattr_set)(fs->meta, ino, name, value, size,
			(flags & XATTR_CREATE ? META_XATTR_CREATE : 0) |
			(flags & XATTR_REPLACE ? META_XATTR_REPLACE : 0));
	if (rc == -EEXIST)
		log_info("cannot create '%s' on %s: it exists (XATTR_CREATE)", name, s.subject);
	else if (rc == -ENODATA)
		log_info("cannot replace '%s' on %s: it is not set (XATTR_REPLACE)", name, s.subject);
	else if (rc == -ENOSPC)
		log_warn("cannot set '%s' on %s: its attribute names would pass %d bytes", name, s.subject,
			 META_XATTR_LIST_MAX);
	else if (rc)
		log_error("cannot set '%s' on %s: %s", name, s.subject, strerror(-rc));
	return rc;
}

int fs_do_removexattr(struct mvfs *fs, uint64_t ino, const char *name)
{
	struct xattr_src s;
	int rc;

	switch (set_of(name)) {
	case XS_COLLECTION:
		return set_collection(fs, ino, NULL, 0);
	case XS_PIN:
		return set_pin(fs, ino, NULL, 0);
	case XS_COMPUTED:
		/* rsync removes what its source lacks: nothing to do, not an error */
		log_debug("kept '%s' on inode %llu: the filesystem computes it", name, (unsigned long long)ino);
		return 0;
	case XS_XDG:
	case XS_USER:
		break;
	case XS_QUIET:
		return -ENODATA;	/* there is none (setfacl -b, -k) */
	default:
		log_warn("cannot remove '%s' from inode %llu: only user.* attributes are kept", name,
			 (unsigned long long)ino);
		return -ENOTSUP;
	}
	if ((rc = user_writable(fs, ino, name, "remove", &s)) != 0)
		return rc;
	rc = set_of(name) == XS_XDG ? meta_xdg_set(fs->meta, ino, name, NULL, 0, 0)
				    : meta_xattr_remove(fs->meta, ino, name);
	if (rc == -ENODATA)
		log_info("cannot remove '%s' from %s: it is not set", name, s.subject);
	else if (rc)
		log_error("cannot remove '%s' from %s: %s", name, s.subject, strerror(-rc));
	return rc;
}

/* --- the root's numbers -------------------------------------------------- */

ssize_t fs_xattr_stats(struct cache *cache, char *buf, size_t size)
{
	struct cache_stats st;
	char text[1024];
	unsigned db_waiting;
	int n, db_down;

	cache_stats(cache, &st);
	db_down = meta_db_down(&db_waiting);
	n = snprintf(text, sizeof(text),
		     "staged_files %llu\nstaged_bytes %llu\nset_aside %llu\nuploaded_files %llu\n"
		     "uploaded_bytes %llu\nupload_rate %.0f\ncache_bytes %llu\ncache_blocks %llu\n"
		     "cache_max %llu\nhits %llu\nmisses %llu\nreads_in_place %llu\nstore_gets %llu\nstore_puts %llu\n"
		     "db_statements %llu\ndb_down_secs %d\ndb_waiting %u\nstore_failing %llu\n"
		     "record_waiting %llu\ncapability_asked %llu\nlookups_ahead %llu\nstore %s\n",
		     (unsigned long long)st.staged_files, (unsigned long long)st.staged_bytes,
		     (unsigned long long)st.set_aside, (unsigned long long)st.uploaded_files,
		     (unsigned long long)st.uploaded_bytes, st.upload_rate,
		     (unsigned long long)st.cache_bytes, (unsigned long long)st.cache_blocks,
		     (unsigned long long)st.cache_max, (unsigned long long)st.hits,
		     (unsigned long long)st.misses, (unsigned long long)st.reads_in_place,
		     (unsigned long long)st.store_gets,
		     (unsigned long long)st.store_puts, meta_statements(), db_down, db_waiting,
		     (unsigned long long)st.store_failing, (unsigned long long)st.record_waiting,
		     (unsigned long long)__atomic_load_n(&capability_asked, __ATOMIC_RELAXED),
		     fs_ahead_hits(), cache_backend_name(cache));
	return fs_xattr_copy_out(text, (size_t)n, buf, size);
}

ssize_t fs_xattr_aside(struct cache *cache, char *buf, size_t size)
{
	const char *dir = cache_aside_dir(cache);

	return fs_xattr_copy_out(dir, strlen(dir), buf, size);
}
