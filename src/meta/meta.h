/*
 * meta.h - the metadata engine: PostgreSQL behind typed calls.
 *
 * Everything the filesystem knows about names, inodes, memories and blobs
 * comes from here; nothing outside src/meta sees SQL or libpq.  A struct meta
 * is a small pool of connections acting for one user, safe to use from every
 * FUSE thread at once.
 *
 * Conventions: functions return 0 or -errno.  PostgreSQL errors are mapped by
 * one function (pg_sqlstate_to_errno in meta_exec.c): a unique violation is
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

/* Connections a pool keeps open when the config says 0: the mount's
 * default for -o db_connections (mvaultfs --help). */
#define META_POOL_DEFAULT 8

struct meta_config {
	const char *conninfo;	/* libpq URI or key=value string */
	const char *user_name;	/* whose library this mount shows (trusted roles only) */
	int user_given;		/* user_name was asked for, not a default */
	int for_nobody;		/* acts for no user (`mvaultfs worker` for every user):
				 * user_name is not looked up, nor made */
	int pool_size;		/* connections kept open; 0 = META_POOL_DEFAULT */
	int trash_days;		/* grace period of tombstoned files; 0 = default (30) */
	int version_min_age;	/* seconds a replaced version must have been current to be
				 * kept in the trash; 0 = default (300), < 0: keep every one */
	int db_timeout;		/* seconds an operation waits for an unreachable database
				 * before it fails with EIO; 0 = default (60) */
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

/* An asset's upload_status and lifecycle_status (the PostgreSQL enums
 * asset_upload_status_t and asset_lifecycle_status_t, 0001): read from a
 * row once, into these; meta_upload_name and meta_lifecycle_name give the
 * words back (user.mvault.upload_status, lifecycle_status). */
enum meta_upload {
	META_UPLOAD_PENDING,		/* not in the store yet */
	META_UPLOAD_UPLOADING,		/* a version of this mount, on its way */
	META_UPLOAD_COMPLETED,		/* in the store */
	META_UPLOAD_FAILED,
};
enum meta_lifecycle {
	META_LIFE_ACTIVE,		/* shown in its folders */
	META_LIFE_TOMBSTONED,		/* in .trash/ until the grace period ends */
	META_LIFE_DELETED,
};
const char *meta_upload_name(enum meta_upload u);
const char *meta_lifecycle_name(enum meta_lifecycle l);

/* The folders that hold files. */
enum meta_place {
	META_PLACE_LIBRARY = 1,		/* a folder of the person's tree in library/ (user_library) */
	META_PLACE_WORKSPACE,		/* a folder of workspace/: temporary, until expires_at */
	META_PLACE_COLLECTION,		/* library files with this collection_id */
	META_PLACE_GALLERY,		/* gallery_items of one gallery */
	META_PLACE_TRASH,		/* tombstoned files and replaced versions, inside the grace period */
};

/* A folder that holds files: its place and its inode number.  For library/
 * and workspace/ themselves that is META_INO_LIBRARY / META_INO_WORKSPACE;
 * for .trash/ META_INO_TRASH.  Folders of the tree (LIBRARY, WORKSPACE) hold
 * folders too; a collection or gallery holds files only.  collections/ and
 * galleries/ hold folders only: as a meta_dir they are
 * { META_PLACE_COLLECTION, META_INO_COLLECTIONS } and
 * { META_PLACE_GALLERY, META_INO_GALLERIES }. */
struct meta_dir {
	enum meta_place place;
	uint64_t ino;
};

/* One file (a memory item and its original asset) as the filesystem shows
 * it; in the trash also a replaced version of a file (its own inode number,
 * its name marked with when it was replaced). */
struct meta_file {
	uint64_t ino;
	char name[256];			/* display_name, with a ~suffix for a twin */
	char display_name[1024];	/* as stored (cut at 1023 bytes: then it is no file name anyway) */
	uint32_t mode;			/* permission bits */
	uint64_t size;			/* bytes of the current original */
	struct timespec mtime;
	struct timespec ctime;		/* last change of the file's metadata or content */
	struct timespec atime;
	struct timespec crtime;		/* created_at */
	uint32_t nlink;			/* the places it appears in */
	int is_version;			/* a replaced version, in the trash */
	char memory_id[META_UUID_LEN + 1];
	char item_id[META_UUID_LEN + 1];
	char asset_id[META_UUID_LEN + 1];
	char sha256[65];		/* "" until the content is committed */
	char key[META_KEY_MAX];		/* storage key, "" until committed */
	char status[META_STATUS_MAX];	/* memory status: pending, active, ... */
	enum meta_upload upload;
	char processing_status[META_STATUS_MAX];
	enum meta_lifecycle lifecycle;
	char mime[128];
	char created_at[40];		/* ISO 8601 */
	/* While the current version is not uploaded yet: the last version
	 * that was (settled_sha256 "" when there is none), with the size,
	 * mtime and ctime the file had then.  Another mount shows it until
	 * the upload is done (0024; fs_ns_visible). */
	uint64_t settled_size;
	char settled_sha256[65];
	char settled_key[META_KEY_MAX];
	struct timespec settled_mtime;
	struct timespec settled_ctime;
};

/* A folder: a collection, a gallery, or a folder of the person's tree in
 * library/ or workspace/ (including those two themselves). */
struct meta_folder {
	uint64_t ino;			/* as the kernel knows it */
	enum meta_place place;		/* COLLECTION, GALLERY, or LIBRARY / WORKSPACE for the tree */
	char id[META_UUID_LEN + 1];
	char name[256];
	uint32_t mode;			/* permission bits */
	uint32_t nlink;			/* 2 + its folders, as on ext4 */
	struct timespec mtime;
	struct timespec ctime;
	struct timespec atime;
	struct timespec crtime;
};

/* Opens the pool, applies pending migrations (under an advisory lock, so
 * two daemons starting together are safe) and makes sure the user exists.
 * Connections then work as the role mvault_app where they may, so that
 * row-level security applies to them.  On failure writes a one-line reason
 * naming the database into ERR and returns NULL. */
struct meta *meta_open(const struct meta_config *cfg, char *err, size_t errlen);
/* What the mount user's store keys start with, read once at meta_open from
 * the users row: "u/<user id>/" for users made since migration 0015, ""
 * for users made before (they keep the shared "sha256/..." keys).  Owned
 * by M; give it to the cache (cache_config.key_prefix). */
const char *meta_key_prefix(const struct meta *m);
/* meta_free(NULL) is a no-op. */
void meta_free(struct meta *m);
/* The name of the user M acts for: its login role's user, or the one
 * asked for (a trusted role). */
const char *meta_user_name(const struct meta *m);

/* At shutdown: operations stop waiting for an unreachable database (they
 * fail at once; a journalled upload is recorded by the next mount). */
void meta_stop_waiting(struct meta *m);

/* For how many seconds the database has been unreachable (0: it answers),
 * and in *WAITING (when not NULL) how many operations wait for it. */
int meta_db_down(unsigned *waiting);

/* How many SQL statements this process has sent, and in how many round
 * trips (one each, but the close-time records of a batch, meta_records,
 * go together). */
unsigned long long meta_statements(void);
unsigned long long meta_round_trips(void);
/* How many statements that may change rows this process has started; in
 * *UNDER_WAY (when not NULL) whether one has not been answered yet.  Rows
 * read while none was under way are current while the count stays. */
unsigned long long meta_changes(int *under_way);

/* Applies pending migrations on CONNINFO and returns; for `mvaultfs db migrate`. */
int meta_migrate_only(const char *conninfo, char *err, size_t errlen);

/* `mvaultfs user add`: on the database CONNINFO (as its owner side: a
 * superuser or a member of mvault_admin), brings the schema up to date,
 * makes user NAME if missing and gives it login role ROLE (made if
 * missing) with PASSWORD (NULL: the role's password is left as it is).
 * NAME NULL: ROLE becomes a role for `mvaultfs worker` instead (every
 * user's jobs, no names readable).
 * Only a SCRAM verifier of the password reaches the server.  Fills PGPASS
 * with the ~/.pgpass line that logs in as ROLE (empty without PASSWORD)
 * and URI with a conninfo without password.  0 or -errno with ERR set. */
int meta_user_add(const char *conninfo, const char *name, const char *role, const char *password,
		  char *pgpass, size_t pgpass_len, char *uri, size_t uri_len, char *err, size_t errlen);

/* --- files: reading (meta_files.c) --------------------------------------- */

/* The file shown as NAME in DIR (a twin's ~suffix resolved; in the trash,
 * a replaced version's marked name too).  -ENOENT. */
int meta_lookup(struct meta *m, const struct meta_dir *dir, const char *name, struct meta_file *out);
/* What NAME is in DIR, as a lookup of the filesystem asks: a file (0,
 * FILE filled, *IS_FOLDER 0) or, in a folder of the tree, a folder (0,
 * FOLDER filled, *IS_FOLDER 1); -ENOENT for neither.  One statement,
 * whatever the answer (a name in a twin's form that is no file's display
 * name takes a second).  In other places: meta_lookup. */
int meta_lookup_entry(struct meta *m, const struct meta_dir *dir, const char *name, struct meta_file *file,
		      struct meta_folder *folder, int *is_folder);
/* Up to MAX files of tree folder DIR (library/ or workspace/) whose display
 * names sort after NAME, in that order, into OUT (*N of them): each
 * as meta_lookup_entry gives it for a lookup of its name when its shown
 * name (name) is its display name.  One statement. */
int meta_lookup_ahead(struct meta *m, const struct meta_dir *dir, const char *name, struct meta_file *out,
		      int max, int *n);
/* The user's file (or replaced version) with inode number INO, whatever its
 * place or lifecycle (an open file that was removed keeps its attributes).
 * -ENOENT. */
int meta_file_get(struct meta *m, uint64_t ino, struct meta_file *out);

/* A file in the user's library (not only in workspace/, not in the trash)
 * whose current content has hash SHA256 (64 hex digits), into OUT: one
 * whose upload is done when there is one.  -ENOENT when none has.  One
 * statement.  For `mvaultfs import`, which adds no copy of what the
 * library holds. */
int meta_find_content(struct meta *m, const char *sha256, struct meta_file *out);

/* Where a listing stands: past the entry with this memory id and inode;
 * VERSIONS once the trash's files are done and its replaced versions are
 * being listed.  UNTIL, when set, ends the listing before that memory id:
 * one part of a folder read beside another (fs_ns.c; not in the trash). */
struct meta_cursor {
	char memory_id[META_UUID_LEN + 1];	/* "" at the start */
	uint64_t ino;
	int versions;
	char until[META_UUID_LEN + 1];		/* "" for none */
};
/* Up to MAX files of DIR after CURSOR (which moves on), one statement per
 * page.  *N receives the count; fewer than MAX means the end. */
int meta_list(struct meta *m, const struct meta_dir *dir, struct meta_cursor *cursor,
	      struct meta_file *out, int max, int *n);
/* The same pages, with only what a listing entry shows: its name, what
 * stat gives, and what fs_ns_visible and fs_file_stat read (hash, upload
 * status, lifecycle, the settled version's size, hash and times); the
 * storage keys, memory status, item and asset ids, processing status, MIME
 * type and creation time are left empty.  For the folder listings of
 * fs_ns.c (the trash's pages are whole either way). */
int meta_list_entries(struct meta *m, const struct meta_dir *dir, struct meta_cursor *cursor,
		      struct meta_file *out, int max, int *n);

/* Counts for statfs: active files and the bytes of their originals.  The
 * count walks every file of the user (~60 ms for 10,000 files after a
 * start), so statfs never waits for one but the first: the answer is the
 * last figure counted, and one older than META_USAGE_MS starts a new count
 * in the background for the next question (one at a time however often df
 * or a file manager asks).  meta_usage_start counts the first figure in the
 * background (at mount: find, df and file managers ask statfs first);
 * meta_usage waits for it then.  0, or -errno when it was never counted and
 * cannot be.  meta_usage_end waits for a count in the background (meta_free
 * calls it). */
#define META_USAGE_MS 5000
int meta_usage(struct meta *m, uint64_t *files, uint64_t *bytes);
void meta_usage_start(struct meta *m);
void meta_usage_end(struct meta *m);

/* --- folders (meta_folders.c) -------------------------------------------- */

/* Folders are looked up, listed, made, removed and renamed IN a folder that
 * holds folders: collections/ or galleries/ (as their meta_dir, see above),
 * or a folder of the tree (library/, workspace/ or one below them). */

/* The folder called NAME in IN.  -ENOENT. */
int meta_folder_lookup(struct meta *m, const struct meta_dir *in, const char *name, struct meta_folder *out);
/* The folder with inode number INO (library/ and workspace/ themselves too).
 * -ENOENT. */
int meta_folder_get(struct meta *m, uint64_t ino, struct meta_folder *out);
/* Up to MAX folders of IN whose names sort after AFTER ("" from the start). */
int meta_folder_list(struct meta *m, const struct meta_dir *in, const char *after,
		     struct meta_folder *out, int max, int *n);

/* Makes folder NAME in IN.  -EEXIST when a folder or file has that name. */
int meta_folder_create(struct meta *m, const struct meta_dir *in, const char *name, uint32_t mode,
		       struct meta_folder *out);
/* Removes folder NAME of IN when it shows nothing: -ENOTEMPTY otherwise
 * (files of it in the trash then belong to its parent). */
int meta_folder_remove(struct meta *m, const struct meta_dir *in, const char *name);
/* Renames or moves folder NAME of FROM to NEWNAME in TO, in one statement
 * whatever it holds.  Over an empty folder it replaces it; over one that is
 * not empty -ENOTEMPTY; over a file -ENOTDIR; into itself or a folder below
 * it -EINVAL; between library/ and workspace/ -EXDEV; with
 * META_MOVE_NOREPLACE over anything -EEXIST. */
int meta_folder_rename(struct meta *m, const struct meta_dir *from, const char *name,
		       const struct meta_dir *to, const char *newname, unsigned flags);

enum meta_setattr_flags {
	META_SET_MODE = 1 << 0,
	META_SET_MTIME = 1 << 1,
	META_SET_ATIME = 1 << 2,
};
/* Changes the mode and times of folder INO of the tree (collections and
 * galleries keep none: accepted, unchanged).  OUT receives the result. */
int meta_folder_setattr(struct meta *m, uint64_t ino, unsigned flags, uint32_t mode,
			const struct timespec *mtime, const struct timespec *atime, struct meta_folder *out);

/* --- files: changing (meta_ns.c) ------------------------------------------ */

/* Creates a pending memory called NAME in DIR (not the trash): upload
 * session, memory (pending, expires in 24 h), item, original asset (upload
 * pending), and its places: a library row in DIR's folder (for a
 * collection or gallery, in library/ itself, with that membership) or a
 * workspace row (expires in 7 days).  -EEXIST when a file already has that
 * name there (OUT then describes that file); -EISDIR when a folder has. */
int meta_create(struct meta *m, const struct meta_dir *dir, const char *name, uint32_t mode,
		const struct timespec *mtime, struct meta_file *out);

/* Removes NAME from DIR.  In a gallery: the membership only.  Elsewhere:
 * tombstones the file (asset lifecycle tombstoned, memory tombstoned, blob
 * ref_count down and an asset_delete_jobs row when it reaches zero); it
 * shows in the trash until the grace period ends.  *INO (may be NULL)
 * receives the file's inode number.  One statement (a name in a twin's
 * form is looked up first).  -ENOENT; -EPERM in the trash. */
int meta_unlink(struct meta *m, const struct meta_dir *dir, const char *name, uint64_t *ino);

enum meta_move_flags { META_MOVE_NOREPLACE = 1 << 0 };
/* Moves NAME in FROM to NEWNAME in TO, in one transaction: a rename within
 * a folder, a move between folders of the tree; a change of collection;
 * adding to, moving between or leaving galleries; promoting a workspace
 * file to the library (expiry cleared); restoring from the trash
 * (lifecycle active, ref_count up, a pending deletion cancelled).  Which
 * moves are allowed is the caller's rule; this carries them out.
 *
 * Over an existing file: when the moved file is a fresh one (a single
 * version, in no gallery: an editor's or rsync's temporary file) its
 * content becomes a new version of the file it replaces, which keeps its
 * memory id, collection and galleries and takes the moved file's inode
 * number (what the kernel now holds for the name); the replaced version
 * goes to the trash.  Otherwise the file replaced is tombstoned.  *REPLACED
 * receives the inode number that no longer shows (0 for none).  -EEXIST
 * with META_MOVE_NOREPLACE; -EISDIR over a folder. */
int meta_move(struct meta *m, const struct meta_dir *from, const char *name,
	      const struct meta_dir *to, const char *newname, unsigned flags, uint64_t *replaced);

/* Adds file INO to gallery DIR under NEWNAME, which must be the name it
 * already has (or its twin form; -EPERM otherwise: the model forbids it, as
 * the README says); a workspace file is promoted.  -EEXIST when the gallery
 * already shows a file by that name, or this file; -EPERM outside galleries.  OUT receives the file as it is
 * now.  One statement (a name in a twin's form is checked first). */
int meta_link(struct meta *m, uint64_t ino, const struct meta_dir *dir, const char *newname,
	      struct meta_file *out);

/* The collection file INO is in, into NAME (256 bytes): 0, or -ENODATA
 * when it is in none. */
int meta_file_collection(struct meta *m, uint64_t ino, char *name, size_t len);
/* Puts library file INO into the collection called NAME (-ENOENT when there
 * is none), or into none when NAME is NULL.  -EPERM for a file that is not
 * in library/ (workspace, trash). */
int meta_file_set_collection(struct meta *m, uint64_t ino, const char *name);

/* Changes the mode and/or times of file INO; OUT receives the file as it
 * is now (one statement). */
int meta_file_setattr(struct meta *m, uint64_t ino, unsigned flags, uint32_t mode,
		      const struct timespec *mtime, const struct timespec *atime, struct meta_file *out);

/* --- versions of a file's content (meta_versions.c) ---------------------- */

/* What a commit records about content that is now in the store. */
struct meta_content {
	const char *sha256;		/* 64 hex digits */
	uint64_t size;
	const char *mime;
	const char *memory_type;	/* memory_type_t */
	const char *backend;		/* storage_backend_t: "local", "s3" */
	const char *key;		/* storage key */
	const struct timespec *mtime;	/* the file's new mtime, or NULL: unchanged */
	const struct timespec *atime;	/* its access time, or NULL: unchanged (meta_create_staged) */
	uint64_t seq;			/* order of the close that made it (write-back journal) */
	uint64_t at_ns;			/* when it was closed (ns since the epoch), the ctime it
					 * gives; 0: when the database makes the record */
	const char *base_sha;		/* the version the writer started from, or NULL: when
					 * another is current by now, that one is kept in
					 * the trash whatever its age */
};

/* Records C as the content of file INO, staged locally and not yet in the
 * store (write-back, at close): the asset gets its hash, size and type with
 * upload_status 'uploading' (a file with content already gets a new asset,
 * the old one becomes a replaced version: copy on write, so the inode keeps
 * its number); the memory no longer expires as an abandoned upload.
 * -ENOENT when the file was removed meanwhile. */
int meta_file_stage(struct meta *m, uint64_t ino, const struct meta_content *c);
/* Makes file INO (a number from meta_inos), called NAME with MODE in tree
 * folder DIR, and records C as its first version, in one call (0023): as
 * meta_create then meta_file_stage.  MADE is when it was made (its mtime
 * when C has none).  0 or -errno: -EEXIST when the name is taken (a file or
 * a folder), -ENOENT when DIR is gone, -EALREADY when INO was made before
 * (a record made again; the file may be gone since). */
int meta_create_staged(struct meta *m, uint64_t ino, const struct meta_dir *dir, const char *name, uint32_t mode,
		       const struct timespec *made, const struct meta_content *c);
/* A close-time record of a batch (meta_records): file INO's version CT,
 * as meta_file_stage when DIR is NULL, else as meta_create_staged (a file
 * made here first, called NAME with MODE in DIR, made at MADE). */
struct meta_record {
	uint64_t ino;
	const struct meta_content *ct;
	const struct meta_dir *dir;
	const char *name;
	uint32_t mode;
	const struct timespec *made;
	int rc;				/* out: as that call returns, or META_UNANSWERED */
};
/* A record with no answer: not sent, or its answer lost (it may have been
 * made), or a conflict worth trying again: make it with its own call. */
#define META_UNANSWERED 1
/* Makes the N records of RECS in one round trip (each its own
 * transaction, in their order; records of one file then see each other's
 * commit).  Each RECS[i].rc is what its own call would have returned,
 * except META_UNANSWERED (above).  0, or -errno when the batch could not
 * be sent or its connection was lost (the records left unanswered). */
int meta_records(struct meta *m, struct meta_record *recs, int n);
/* Makes file INO as meta_create_staged, without content yet (a file made
 * here that another operation needs in the database before its close). */
int meta_create_at(struct meta *m, uint64_t ino, const struct meta_dir *dir, const char *name, uint32_t mode,
		   const struct timespec *made);
/* Takes up to N (<= 1024) inode numbers for files this mount will make
 * (meta_create_staged) into OUT: how many, or -errno. */
int meta_inos(struct meta *m, uint64_t *out, int n);
/* Records that content C of file INO is now in the store, in one
 * transaction: the blob row (created with ref_count 1, or its ref_count
 * raised: same bytes, one blob), the asset (upload completed), the memory
 * (active once none of its assets waits), the upload session (completed).
 * Stages C first when the staging commit never happened (a crash).
 * Idempotent; a version replaced meanwhile is a no-op; -ENOENT (and no
 * change) for a file that has no rows. */
int meta_file_uploaded(struct meta *m, uint64_t ino, const struct meta_content *c);
/* An upload record of a batch (meta_files_uploaded): file INO's content
 * CT is in the store. */
struct meta_uploaded {
	uint64_t ino;
	const struct meta_content *ct;
	int rc;				/* out: as meta_file_uploaded returns */
};
/* The most upload records one call makes (META_UPLOADS_MAX). */
#define META_UPLOADS_MAX 32
/* Makes the N (<= META_UPLOADS_MAX) upload records of UPS in one round
 * trip and one transaction, committed durably, in their order; each
 * UPS[i].rc is what meta_file_uploaded would have returned for it.  A
 * record that fails is undone alone (the others commit), and one that
 * met a conflict is made again.  0, or -errno when the batch could not be
 * made (every rc that -errno; making a record again changes nothing). */
int meta_files_uploaded(struct meta *m, struct meta_uploaded *ups, int n);

/* Removes a file that never had content (a failed first commit): every
 * row its create made goes, as if it never existed.  Files with content
 * recorded, uploaded or only staged (its bytes in the journal, waiting for
 * the store), are left alone. */
int meta_file_abort(struct meta *m, uint64_t ino);

/* --- plain files (meta_plain.c) ------------------------------------------ */

/* What operating systems and editors leave in folders (.DS_Store, ._*,
 * Thumbs.db, desktop.ini, .directory, lock and swap files: name_is_plain)
 * is kept as a plain file: in its folder, with its bytes in the database,
 * never a memory.  DIR is a folder of the tree, a collection or a gallery. */
struct meta_plain {
	uint64_t ino;
	char name[256];
	uint32_t mode;			/* permission bits */
	uint64_t size;
	struct timespec mtime;
	struct timespec ctime;
	struct timespec atime;
	struct timespec crtime;
};
#define META_PLAIN_MAX (32u << 20)	/* bytes a plain file may hold (-EFBIG) */

/* The plain file NAME of DIR / with inode INO.  -ENOENT. */
int meta_plain_lookup(struct meta *m, const struct meta_dir *dir, const char *name, struct meta_plain *out);
int meta_plain_get(struct meta *m, uint64_t ino, struct meta_plain *out);
/* Up to MAX plain files of DIR whose names sort after AFTER. */
int meta_plain_list(struct meta *m, const struct meta_dir *dir, const char *after, struct meta_plain *out,
		    int max, int *n);
/* Makes empty plain file NAME in DIR.  -EEXIST when it exists. */
int meta_plain_create(struct meta *m, const struct meta_dir *dir, const char *name, uint32_t mode,
		      const struct timespec *now, struct meta_plain *out);
/* The bytes of plain file INO: *BUF (malloc'd, the caller frees) and *LEN. */
int meta_plain_read(struct meta *m, uint64_t ino, void **buf, size_t *len);
/* Replaces the bytes of plain file INO (mtime MTIME, ctime now). */
int meta_plain_write(struct meta *m, uint64_t ino, const void *buf, size_t len, const struct timespec *mtime);
/* Changes mode and times (META_SET_*) of plain file INO. */
int meta_plain_setattr(struct meta *m, uint64_t ino, unsigned flags, uint32_t mode,
		       const struct timespec *mtime, const struct timespec *atime);
/* Removes plain file NAME of DIR (at once: it is no memory). */
int meta_plain_unlink(struct meta *m, const struct meta_dir *dir, const char *name);
/* Renames plain file NAME of FROM to NEWNAME of TO, replacing a plain file
 * there (-EEXIST with META_MOVE_NOREPLACE). */
int meta_plain_rename(struct meta *m, const struct meta_dir *from, const char *name, const struct meta_dir *to,
		      const char *newname, unsigned flags);

/* --- extended attributes (meta_xattr.c) ---------------------------------- */

/* The user.* attributes kept per inode (a file, a collection, a gallery:
 * any INO >= META_INO_FIRST), each call one statement.  NAME is a
 * NUL-terminated UTF-8 name of at most META_XATTR_NAME_MAX bytes, values
 * are bytes of at most META_XATTR_VALUE_MAX; the caller checks both (the
 * table refuses the rest with -EINVAL).  The user.mvault.* names are the
 * filesystem's and are never stored. */
#define META_XATTR_NAME_MAX 255
#define META_XATTR_VALUE_MAX 65536
/* What the stored names of one inode may add up to in a listing (each name
 * and its NUL), leaving room for the computed names within the kernel's
 * 64 KiB listxattr limit. */
#define META_XATTR_LIST_MAX (65536 - 2048)

/* Value of NAME on INO into BUF (SIZE bytes; SIZE 0 asks only the length).
 * Returns the length, -ENODATA when INO has no such attribute, -ERANGE when
 * it does not fit in BUF. */
ssize_t meta_xattr_get(struct meta *m, uint64_t ino, const char *name, void *buf, size_t size);
/* The NUL-terminated names stored for INO, one after the other, into BUF
 * (SIZE bytes; SIZE 0 asks only the length).  Returns their length, 0 for
 * none, -ERANGE when they do not fit. */
ssize_t meta_xattr_list(struct meta *m, uint64_t ino, char *buf, size_t size);

enum meta_xattr_flags {
	META_XATTR_CREATE = 1 << 0,	/* -EEXIST when NAME is already set */
	META_XATTR_REPLACE = 1 << 1,	/* -ENODATA when NAME is not set */
};
/* Sets NAME on INO to the LEN bytes at VALUE.  -EEXIST / -ENODATA as FLAGS
 * say; -ENOSPC when a new name would take INO's names past
 * META_XATTR_LIST_MAX.  Nothing changes on failure. */
int meta_xattr_set(struct meta *m, uint64_t ino, const char *name, const void *value, size_t len,
		   unsigned flags);
/* Removes NAME from INO: 0, or -ENODATA when it was not set. */
int meta_xattr_remove(struct meta *m, uint64_t ino, const char *name);

/* --- desktop attributes (meta_xdg.c) ------------------------------------- */

/* user.xdg.tags, user.xdg.comment and user.baloo.rating (util/xdg.h): for
 * a file with a library row, its tags, title and favourite flag, which the
 * web application reads and writes (0025_xdg_attrs.sql); for any other
 * inode, user.* attributes as meta_xattr_* keeps them.  NAME is one of the
 * three; a value was checked with xdg_check(). */

/* As meta_xattr_get. */
ssize_t meta_xdg_get(struct meta *m, uint64_t ino, const char *name, void *buf, size_t size);
/* Sets NAME on INO to the LEN bytes at VALUE (NULL: removes it).  Returns
 * 0, -EEXIST / -ENODATA as FLAGS say (meta_xattr_flags), -ENODATA for the
 * removal of what is not set, or as meta_xattr_set.  One statement for a
 * library file; one more for another inode. */
int meta_xdg_set(struct meta *m, uint64_t ino, const char *name, const void *value, size_t len,
		 unsigned flags);

/* --- storage presence and pins (meta_pins.c) ----------------------------- */

/*
 * Where a memory's metadata and content are, per backend (seed 001's
 * storage_edges, kept by 0027_storage_edges.sql), and the pins that ask
 * for a copy on another backend ("store forever").  Backends are named by
 * seed 001's labels (util/store_label.h).
 */

/* Sets the pins of the file or gallery INO to the N backend LABELS (N 0:
 * unpins): the copies of what is newly pinned are enqueued, those no pin
 * holds any more are dropped.  One statement.  Returns how many memories
 * INO covers, -ENOENT (no such file or gallery), -ENOTSUP (a folder or a
 * collection) or -errno. */
int meta_pin_set(struct meta *m, uint64_t ino, const char *const *labels, int n);
/* The pins set on INO itself, labels joined by ',', as meta_xattr_get
 * (-ENODATA: none). */
ssize_t meta_pin_get(struct meta *m, uint64_t ino, void *buf, size_t size);

/* One backend's part in a file's or a gallery's presence. */
struct meta_presence {
	char backend[32];
	int pinned;
	/* a file */
	int meta_present, asset_present;
	char sync_state[16];		/* idle, migrating, failed */
	char sync_error[200];
	/* a gallery: how many of its memories have their content there */
	uint64_t total, present, migrating, failed, bytes_left;
};
/* The presence of file INO (GALLERY 0) or gallery INO (GALLERY 1) on each
 * backend, by label: up to MAX rows into OUT.  One statement.  Returns how
 * many, or -errno. */
int meta_presence(struct meta *m, uint64_t ino, int gallery, struct meta_presence *out, int max);

/* Copies for pins of the user, per backend: in progress (with the bytes
 * they hold) and failed. */
struct meta_pin_progress {
	char backend[32];
	uint64_t copying, bytes_left, failed;
	/* copied in the last 10 minutes, and seconds since the first of those
	 * copies ended: the pace an ETA is made from (0: none yet) */
	uint64_t recent_bytes, recent_secs;
};
/* Up to MAX rows into OUT, one statement; how many, or -errno. */
int meta_pin_progress(struct meta *m, struct meta_pin_progress *out, int max);

/* --- changes pushed by other mounts (meta_push.c) ------------------------ */

/*
 * Every committed change of the user's namespace is announced on a channel
 * of the user's own (0019_push.sql): inode numbers and a kind, never a
 * name.  A struct meta_push is one connection, outside the pool, that
 * listens on it; one thread calls meta_push_wait.
 */
struct meta_push;

enum meta_push_kind {
	META_PUSH_NAME = 1,	/* a name of the inode appeared, went or changed */
	META_PUSH_ATTR,		/* its attributes or content (a folder: its entries) changed */
	META_PUSH_ALL,		/* anything may have changed (INO is 0) */
};

/* Called for each announced inode, as the kernel numbers it (library/ and
 * workspace/ are META_INO_LIBRARY / _WORKSPACE). */
typedef void (*meta_push_fn)(void *arg, enum meta_push_kind kind, uint64_t ino);

/* Opens the listening connection of M's user.  NULL with ERR filled. */
struct meta_push *meta_push_open(struct meta *m, char *err, size_t errlen);
void meta_push_free(struct meta_push *p);
/* Waits up to TIMEOUT_MS, or until WAKE_FD (-1: none) is readable, for
 * announcements, and hands each inode of those another session sent to FN
 * (this mount's own pooled connections' are skipped: the kernel heard of
 * those from the replies).  Returns 1 when something arrived, 0 when
 * nothing did, META_PUSH_MISSED when the connection was lost and is
 * listening again (anything may have changed meanwhile: announcements are
 * not kept for a listener that is away), or -EIO while the database cannot
 * be reached (the wait still lasted TIMEOUT_MS, or until WAKE_FD). */
#define META_PUSH_MISSED 2
int meta_push_wait(struct meta_push *p, int timeout_ms, int wake_fd, meta_push_fn fn, void *arg);
/* Server process id of the listening connection (0 while it is down). */
int meta_push_backend(const struct meta_push *p);

#endif
