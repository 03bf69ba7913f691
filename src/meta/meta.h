/*
 * meta.h - the metadata engine: PostgreSQL behind typed calls.
 *
 * Everything the filesystem knows about names, inodes, memories and blobs
 * comes from here; nothing outside src/meta sees SQL or libpq.  A struct meta
 * is a small pool of connections acting for one user, safe to use from every
 * FUSE thread at once.
 *
 * Conventions: functions return 0 or -errno.  PostgreSQL errors are mapped by
 * one function (pg_sqlstate_to_errno in meta_pool.c): a unique violation is
 * -EEXIST, a lost connection -EIO after one reconnect attempt, a full disk
 * -ENOSPC.  The failing statement and PostgreSQL's message are logged once,
 * where they happen.  On failure, output structs are left unspecified and
 * the database is unchanged (every change runs in one transaction).
 */
#ifndef MVFS_META_H
#define MVFS_META_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct meta;

struct meta_config {
	const char *conninfo;	/* libpq URI or key=value string */
	const char *user_name;	/* whose library this mount shows */
	int pool_size;		/* connections kept open; 0 = default (4) */
};

/* Inode numbers of the virtual folders; every memory item, collection and
 * gallery gets a number >= META_INO_FIRST from the fs_ino_seq sequence. */
enum meta_ino {
	META_INO_ROOT = 1,
	META_INO_LIBRARY = 2,
	META_INO_WORKSPACE = 3,
	META_INO_COLLECTIONS = 4,
	META_INO_GALLERIES = 5,
	META_INO_TRASH = 6,
	META_INO_FIRST = 1000,
};

#define META_UUID_LEN 36
#define META_KEY_MAX 128
#define META_STATUS_MAX 16

/* One file (a memory item and its original asset) as the filesystem shows it. */
struct meta_file {
	uint64_t ino;
	char name[256];			/* display_name */
	uint32_t mode;			/* permission bits */
	uint64_t size;			/* bytes of the current original */
	struct timespec mtime;
	struct timespec ctime;		/* last change of the row */
	struct timespec crtime;		/* created_at */
	uint32_t nlink;
	char memory_id[META_UUID_LEN + 1];
	char item_id[META_UUID_LEN + 1];
	char asset_id[META_UUID_LEN + 1];
	char sha256[65];		/* "" until the content is committed */
	char key[META_KEY_MAX];		/* storage key, "" until committed */
	char status[META_STATUS_MAX];	/* memory status: pending, active, ... */
	char upload_status[META_STATUS_MAX];
};

/* Opens the pool, applies pending migrations (under an advisory lock, so
 * two daemons starting together are safe) and makes sure the user exists.
 * On failure writes a one-line reason naming the database into ERR and
 * returns NULL. */
struct meta *meta_open(const struct meta_config *cfg, char *err, size_t errlen);
/* meta_free(NULL) is a no-op. */
void meta_free(struct meta *m);

/* Applies pending migrations on CONNINFO and returns; for `mvaultfs db migrate`. */
int meta_migrate_only(const char *conninfo, char *err, size_t errlen);

/* --- library/ ----------------------------------------------------------- */

/* The active file called NAME in the user's library.  -ENOENT when none. */
int meta_library_lookup(struct meta *m, const char *name, struct meta_file *out);
/* The active file with inode number INO.  -ENOENT when none. */
int meta_file_get(struct meta *m, uint64_t ino, struct meta_file *out);

/* Up to MAX files of the library whose (name, ino) sort after (AFTER_NAME,
 * AFTER_INO), in that order: one SQL statement per page.  AFTER_NAME NULL
 * starts at the beginning.  *N receives the count. */
int meta_library_list(struct meta *m, const char *after_name, uint64_t after_ino,
		      struct meta_file *out, int max, int *n);

/* Creates a pending memory called NAME in the library: upload session,
 * memory (pending, expires in 24 h), item, original asset (upload pending),
 * library row.  -EEXIST when an active file already has that name; OUT
 * then describes that file. */
int meta_library_create(struct meta *m, const char *name, uint32_t mode,
			const struct timespec *mtime, struct meta_file *out);

/* What a commit records about content that is now in the store. */
struct meta_content {
	const char *sha256;		/* 64 hex digits */
	uint64_t size;
	const char *mime;
	const char *memory_type;	/* memory_type_t */
	const char *backend;		/* storage_backend_t: "local", "s3" */
	const char *key;		/* storage key */
	const struct timespec *mtime;	/* the file's new mtime, or NULL: unchanged */
};

/* Is there a blob with this hash whose object is in the store?  1 yes, 0 no,
 * or -errno. */
int meta_blob_exists(struct meta *m, const char *sha256);

/* Makes C the content of file INO in one transaction: the blob row (created
 * with ref_count 1, or its ref_count raised: same bytes, one blob), the asset
 * (upload completed), the memory (active), the library row, the upload
 * session (completed).  When the file already had committed content, that
 * content's asset is tombstoned and a new asset row takes its place (copy on
 * write), so the inode keeps its number.  Refreshes OUT.  -ENOENT when the
 * file was unlinked meanwhile (nothing is committed). */
int meta_file_commit(struct meta *m, uint64_t ino, const struct meta_content *c,
		     struct meta_file *out);

/* Removes a file whose content never reached the store (a failed first
 * write): every row its create made goes, as if it never existed.  Files
 * that have committed content are left alone (-EBUSY). */
int meta_file_abort(struct meta *m, uint64_t ino);

/* Tombstones the active library file NAME: asset lifecycle tombstoned,
 * memory tombstoned, blob ref_count down and an asset_delete_jobs row when
 * it reaches zero.  The object stays in the store.  *INO receives the
 * tombstoned inode. */
int meta_library_unlink(struct meta *m, const char *name, uint64_t *ino);

enum meta_rename_flags { META_RENAME_NOREPLACE = 1 << 0 };
/* Renames library file OLDNAME to NEWNAME.  An active file already called
 * NEWNAME is tombstoned as by unlink (its inode in *REPLACED, else 0), or
 * -EEXIST with META_RENAME_NOREPLACE. */
int meta_library_rename(struct meta *m, const char *oldname, const char *newname,
			unsigned flags, uint64_t *replaced);

enum meta_setattr_flags {
	META_SET_MODE = 1 << 0,
	META_SET_MTIME = 1 << 1,
};
/* Changes the mode and/or mtime of file INO. */
int meta_file_setattr(struct meta *m, uint64_t ino, unsigned flags, uint32_t mode,
		      const struct timespec *mtime, struct meta_file *out);

/* Counts for statfs: active files and the bytes of their originals. */
int meta_usage(struct meta *m, uint64_t *files, uint64_t *bytes);

#endif
