/*
 * fs.h - the mounted filesystem: FUSE low-level requests onto meta and cache.
 *
 * One struct mvfs holds the mounted state and travels as the FUSE session's
 * userdata.  Each operation is split in two: fs_do_<op>() does the work and
 * returns 0 or -errno, and the adapter in fs_ops.c replies exactly once.
 */
#ifndef MVFS_FS_H
#define MVFS_FS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "cache/cache.h"
#include "meta/meta.h"
#include "util/sha256.h"

struct fuse_lowlevel_ops;
struct fuse_session;

/* How long the kernel keeps a tree file's name and attributes where every
 * change reaches it (DECISIONS.md, "Listings and attributes kept"). */
#define FS_TREE_TIMEOUT 60.0

struct fs_config {
	double entry_timeout;	/* seconds the kernel may cache a name */
	double attr_timeout;	/* seconds the kernel may cache attributes */
	double tree_timeout;	/* both, for files of the tree where fs_known runs (0: as above) */
	double fsync_timeout;	/* seconds fsync(2) waits for the upload */
	int variants_visible;	/* folders list .display/ and .thumb/ (else: reached by name only) */
	unsigned read_ahead_kb;	/* the kernel's readahead for the mount (max_readahead in INIT) */
	const char *store_label;	/* the primary store's backend label ("local", "s3") */
	const char *const *pin_labels;	/* the labels user.mvault.pin may name (-o pin_store=) */
	int npin_labels;
};

/* The kernel's readahead for a mount when -o read_ahead_kb is not given
 * (DECISIONS, "Reads: the kernel's readahead"). */
#define FS_READ_AHEAD_KB 4096

/*
 * What the daemon keeps about an inode the kernel knows: its lookup count
 * (the libfuse contract) and, while it is open for writing, its staging
 * file.  Content that is not being written lives only in the store.
 */
struct fs_inode {
	uint64_t ino;
	enum meta_place place;	/* a collection or gallery; 0 for a file */
	uint64_t nlookup;	/* reply_entry/create add one, forget subtracts */
	int nopen;		/* open handles */
	pthread_mutex_t lock;	/* guards everything below; never held across I/O of a commit */
	int committing;		/* a commit runs without the lock: nothing may change what it seals */
	pthread_cond_t committed;	/* broadcast when a commit ends */
	int stage_fd;		/* -1 unless open for writing */
	int writers;		/* handles open for writing */
	int dirty;		/* staged bytes not yet committed */
	int sealed;		/* stage_fd holds committed content: copy before writing */
	int write_error;	/* a write failed (-errno): the staged bytes are not what was written */
	uint64_t commits;	/* commits so far: a reader of the rows can tell it raced one */
	char sha256[65];	/* the content sealed last (at staging: the one it started from) */
	uint64_t size;		/* staged size, when stage_fd >= 0 */
	int mtime_set;		/* mtime below is newer than the row's */
	struct timespec mtime;
	struct sha256 sha;	/* hash of bytes [0, hashed) written in order */
	uint64_t hashed;
	int hash_valid;		/* 0 once a write was not sequential */
	char name[256];		/* for log lines and type sniffing */
	struct meta_dir home;	/* the folder it was created in (ino 0: not known) */
	uint64_t conflict_ino;	/* its rows went while open: commits go to this copy */
	int plain;		/* a plain file (fs_plain.c), not a memory */
	/* Sealed versions whose close-time record the recorder (fs_record.c)
	 * has not made yet, and the newest of them: what stat and open show
	 * meanwhile, and after it to a row read before it (fs_file.c,
	 * shows_sealed).  rec_sha256 "": none. */
	int unrecorded;
	struct fs_sealed *queued;	/* its record still in the recorder's queue (under its lock): what
					 * fs_record_amend changes, found without walking the queue */
	uint64_t rec_size;
	char rec_sha256[65];
	int rec_mtime_set;
	struct timespec rec_mtime;
	struct timespec rec_ctime;	/* the close's time, which the record gives the ctime */
	int holds;		/* the recorder's references (under the table's lock) */
	/* Made here, its rows not in the database yet (fs_local.c): 1 while
	 * open before its first close, 2 once that close's record is queued;
	 * 0 for a file the database has. */
	int local;
	mode_t local_mode;
	struct timespec local_made;
	int local_rows;			/* its rows were made before its queued record (fs_local.c) */
	int local_atime_set;		/* an access time set before its record */
	struct timespec local_atime;
	/* The name the kernel caches for it (entries with entry_timeout > 0),
	 * to drop when another mount changes it (fs_push.c): under the
	 * table's lock, not this inode's.  The last one handed out; NULL for
	 * none. */
	uint64_t dparent;
	char *dname;
	struct fs_inode *next;	/* hash chain */
};

struct fs_inode_table {
	pthread_mutex_t lock;
	struct fs_inode **buckets;
	size_t nbuckets;
	size_t count;
};

/* An open file: what it read at open, and whether it may write.  Every
 * handle is on its mount's list until released, so an unmount can commit
 * and free the ones the kernel never released. */
struct fs_handle {
	struct fs_inode *in;
	int writable;
	int created;			/* made or truncated (O_TRUNC) by this handle's open */
	int plain;			/* on a plain file: holds a staging reference even to read */
	uint64_t size;			/* committed size at open, or at the last commit here since */
	char sha256[65];		/* committed content at open, or ... */
	uint64_t commits;		/* its inode's commits when size and sha256 were taken */
	struct cache_reader ra;		/* read-ahead state */
	struct fs_handle *prev, *next;
};

/* An open folder handle (fs_ns.c's and fs_variants.c's), on its mount's
 * list until released, so an unmount frees the ones the kernel never
 * released (a RELEASEDIR may still be queued when the session ends). */
struct fs_open_dir {
	void (*close)(struct fs_open_dir *self);
	struct fs_open_dir *prev, *next;
};

struct mvfs {
	struct meta *meta;
	struct cache *cache;
	struct fs_config cfg;
	uid_t uid;		/* owner shown for every entry */
	gid_t gid;
	struct timespec mounted_at;	/* the times of the virtual folders */
	struct fs_inode_table inodes;
	pthread_mutex_t handles_lock;
	struct fs_handle *handles;	/* open files, newest first */
	struct fs_open_dir *dirs;	/* open folders, under handles_lock */
	struct fuse_session *se;	/* for telling the kernel what changed; NULL before the session */
	int se_handlers, se_mounted;	/* what fs_session_open did, for fs_session_close */
	struct fs_push *push;		/* listens for other mounts' changes (NULL: -o push=off) */
	struct fs_recorder *rec;	/* makes close-time records (NULL: made by the closer) */
	struct fs_local *local;		/* files made here first (fs_local.c) */
	struct fs_known *known;		/* folders whose every name is known here (NULL: none) */
	struct fs_ahead *ahead;		/* files read ahead of lookups (fs_ahead.c) */
	struct fs_xdg *xdg;		/* the desktop trash (fs_xdgtrash.c; NULL: none) */
	struct fs_thumbs *thumbs;	/* the desktop's thumbnails (fs_thumbs.c; NULL: none) */
};

/* The FUSE operations table (fs_ops.c). */
extern const struct fuse_lowlevel_ops fs_ops;

/* --- the FUSE session (fs_session.c) -------------------------------------- */

struct fuse_args;

/* What libfuse's own command line said (-f, -d, -s, -o clone_fd, threads,
 * the mount point: fuse_parse_cmdline); MOUNTPOINT is malloc'd. */
struct fs_cmdline {
	char *mountpoint;
	int show_help, show_version, foreground, debug, singlethread, clone_fd;
	unsigned max_idle_threads, max_threads;
};
/* 0, or -EINVAL after libfuse's line on stderr. */
int fs_cmdline_parse(struct fuse_args *args, struct fs_cmdline *c);
/* libfuse's help for the options it takes. */
void fs_cmdline_help(void);
const char *fs_fuse_version(void);
/* Makes FS's session (fs_ops), its signal handlers, and mounts it on
 * MOUNTPOINT: 0, or -errno after libfuse's line on stderr.  Either way
 * fs_session_close ends what was made. */
int fs_session_open(struct mvfs *fs, struct fuse_args *args, const char *mountpoint);
/* fuse_daemonize: into the background unless FOREGROUND (after the mount,
 * before any thread). */
void fs_session_daemonize(int foreground);
/* Serves requests until the unmount or a signal: 0, or -EIO. */
int fs_session_run(struct mvfs *fs, const struct fs_cmdline *c);
/* Unmounts (once); fs_session_close also removes the handlers and ends
 * the session.  Both may be called after a failed or no fs_session_open. */
void fs_session_unmount(struct mvfs *fs);
void fs_session_close(struct mvfs *fs);

/* --- the kernel's readahead (fs_readahead.c) ------------------------------ */

/* Reads and answers the kernel's INIT request on the calling thread, before
 * the session loop runs.  0, or -errno (-ENODEV: the mount went away). */
int fs_session_init(struct fuse_session *se);
/* Sets the read_ahead_kb of MOUNTPOINT's bdi (/sys/class/bdi/MAJ:MIN) to
 * KB; call it after INIT was answered, which would undo it.  0 with the
 * sysfs path in ERR, or -errno with ERR saying why (-EACCES, -EROFS: not
 * root, or sysfs read-only) and what the value stays. */
int fs_readahead_set(const char *mountpoint, unsigned kb, char *err, size_t errlen);

int fs_init(struct mvfs *fs, struct meta *meta, struct cache *cache, const struct fs_config *cfg);
/* Commits what open files hold and records what the recorder queued (at
 * the unmount); meta and cache stay the caller's.  Then, once the cache's
 * uploaders stopped (their records look inodes up), fs_free releases the
 * rest of what fs_init made. */
void fs_release(struct mvfs *fs);
void fs_free(struct mvfs *fs);

/* --- inode table (fs_inode.c) -------------------------------------------- */

/* The inode for INO, made when missing, with its lookup count raised by
 * NLOOKUP and its open count by NOPEN.  Returns NULL on allocation failure. */
struct fs_inode *fs_inode_get(struct mvfs *fs, uint64_t ino, uint64_t nlookup, int nopen);
/* The inode for INO if the daemon holds it (no counts change), else NULL.
 * The pointer stays valid while the caller holds a lookup or open count. */
struct fs_inode *fs_inode_find(struct mvfs *fs, uint64_t ino);
/* Drops NLOOKUP lookups / NOPEN opens; frees the inode when both reach zero.
 * An underflow is a bug in the lookup accounting and aborts. */
void fs_inode_put(struct mvfs *fs, uint64_t ino, uint64_t nlookup, int nopen);
/* The kernel was handed (or is being handed) entry NAME in folder PARENT
 * for INO, to cache: remembered for invalidating it later.  A no-op for an
 * inode the daemon does not hold, or when memory is short. */
void fs_inode_named(struct mvfs *fs, uint64_t ino, uint64_t parent, const char *name);
/* Keeps IN alive for the recorder whatever the kernel forgets / lets it
 * go (freed when nothing else holds it). */
void fs_inode_hold(struct mvfs *fs, struct fs_inode *in);
void fs_inode_unhold(struct mvfs *fs, struct fs_inode *in);
/* The inode for INO, held (fs_inode_unhold), if the daemon has it. */
struct fs_inode *fs_inode_hold_ino(struct mvfs *fs, uint64_t ino);
/* What the kernel knows of INO: -ENOENT when it holds no reference; else 0,
 * with the folder and name it caches INO under into *PARENT and NAME (LEN
 * bytes; "" and 0 when none is known). */
int fs_inode_dentry(struct mvfs *fs, uint64_t ino, uint64_t *parent, char *name, size_t len);

/* One inode the kernel holds and the name it caches for it. */
struct fs_dent {
	uint64_t ino;
	uint64_t parent;	/* 0: no name known */
	char *name;		/* malloc'd, or NULL */
};
/* Every inode the kernel holds, into *OUT (malloc'd; the caller frees each
 * name, then the array): their count, or -ENOMEM. */
ssize_t fs_inode_all(struct mvfs *fs, struct fs_dent **out);

/* --- changes of other mounts (fs_push.c) --------------------------------- */

struct fs_push;
/* Starts the thread that listens for changes other mounts (and the web
 * application, and workers) make to this user's library and tells the
 * kernel to drop what they make stale.  Needs fs->se.  NULL with ERR. */
struct fs_push *fs_push_start(struct mvfs *fs, char *err, size_t errlen);
/* Stops it: before the unmount; waits for its thread at most 2 s (it may
 * be waiting in the kernel for a folder a pending request holds).  Then,
 * after the unmount and before the session goes, fs_push_free joins and
 * frees it.  NULL is a no-op for both. */
void fs_push_stop(struct fs_push *p);
void fs_push_free(struct fs_push *p);

/* --- close-time records (fs_record.c) ----------------------------------- */

/* A sealed version of a file, durable in the journal, to record in the
 * database: what the record and, when the file's rows went meanwhile, its
 * conflict copy need. */
struct fs_sealed {
	uint64_t ino;			/* the file recorded: its own, or its conflict copy */
	int fd;				/* the sealed bytes (for a conflict copy) */
	struct cache_entry e;		/* the journal entry */
	char base[65];			/* the version it replaces ("" for a new file) */
	char name[256];
	struct meta_dir home;
	uint64_t at_ns;			/* when it was closed (microseconds, in ns) */
	int made;			/* the file is made here first: its rows come with this record */
	mode_t mode;			/* ... with this mode */
	struct timespec made_at;	/* ... made then */
	int atime_set;			/* ... and given this access time */
	struct timespec atime;
	struct fs_inode *in;		/* held while queued */
	int skip;			/* -errno: not tried, the database being away */
	int batched;			/* the recorder's batch made its first call (batch_calls) */
	int batch_rc;			/* ... which answered this */
	int failed;			/* out: -errno when the record failed */
	struct fs_sealed *next;
};
struct fs_recorder;
/* Starts the thread that records sealed versions in the database after
 * their close returned (DECISIONS.md, "Where a closed file is durable"):
 * after the daemon's fork.  0 or -errno; without it closes record their
 * versions themselves. */
int fs_record_start(struct mvfs *fs);
/* Records what is queued, then stops the thread.  NULL-safe. */
void fs_record_stop(struct mvfs *fs);
/* Hands X (malloc'd, its fd its own, its inode held) to the recorder:
 * 0, or -ENOTCONN when none runs (X stays the caller's). */
int fs_record_queue(struct mvfs *fs, struct fs_sealed *x);
/* Records X now (the recorder's and a closer's work; the caller then
 * queues X->e's upload): 0, or -errno when the file's rows went and its
 * conflict copy could not be made.  Sets *COPY to the copy's inode when
 * one was made, and X->failed when the record failed (the upload's record
 * makes it). */
int fs_record_sealed(struct mvfs *fs, struct fs_sealed *x, uint64_t *copy);
struct fs_made;
/* Makes file INO, made here first as MK says, with its first version CT
 * (the recorder's and, after a crash, the upload record's work): a name
 * another writer took meanwhile gets a conflict name, a folder removed
 * meanwhile puts it in library/.  0 with the name used in USED, -EALREADY
 * when INO was made before (CT is then recorded as any version), or
 * -errno. */
int fs_record_made(struct mvfs *fs, uint64_t ino, const struct fs_made *mk, const struct meta_content *ct,
		   char *used, size_t usedlen);
/* A change to IN (held, its lock held by the caller) made in the record
 * that makes it, while that record still waits in the queue: IN is a file
 * made here first, closed once, its one record not yet taken by the
 * recorder.  Calls FN(FS, X, ARG) under the queue's lock (FN must not
 * block on the database) and returns its result; -EAGAIN when no such
 * record waits (the caller then waits for the queue, fs_record_flush_ino,
 * and changes the rows). */
int fs_record_amend(struct mvfs *fs, struct fs_inode *in, int (*fn)(struct mvfs *fs, struct fs_sealed *x, void *arg),
		    void *arg);
/* Waits until everything queued so far is recorded: before a change that
 * a later close-time record would undo or miss (setattr, unlink, rename,
 * link, xattrs of a file). */
void fs_record_flush(struct mvfs *fs);
/* The same, only when file INO (held by the kernel) has a record queued;
 * a file made here is made in the database first (fs_local_settle). */
void fs_record_flush_ino(struct mvfs *fs, uint64_t ino);

/* --- files made here first (fs_local.c) --------------------------------- */

/* The extended attribute of a sealed file made here first, which holds
 * what makes its rows: "INO HOME PLACE MODE(octal) SEC.NSEC NAME". */
#define FS_LOCAL_NOTE "user.mvault.made"

/* A file made here first, as its note says. */
struct fs_made {
	struct meta_dir dir;
	mode_t mode;
	struct timespec made;
	char name[256];
};

struct fs_local;
int fs_local_init(struct mvfs *fs);
void fs_local_free(struct mvfs *fs);
/* The file made here called NAME in folder PARENT (its lookup count raised
 * by one), or NULL. */
struct fs_inode *fs_local_lookup(struct mvfs *fs, uint64_t parent, const char *name);
/* 1 when NAME in folder PARENT is a name made here (as above), else 0. */
int fs_local_named(struct mvfs *fs, uint64_t parent, const char *name);
/* The attributes of IN, a file made here first. */
void fs_local_stat(struct mvfs *fs, struct fs_inode *in, struct stat *st);
/* The times of folder DIR in ST, later when a file was made in it here
 * and its record has not touched the folder's row yet. */
void fs_local_dir_times(struct mvfs *fs, uint64_t dir, struct stat *st);
/* Folder DIR was given its times (setattr): the ones made here no longer
 * show over them, once its files made here are all recorded. */
void fs_local_dir_set(struct mvfs *fs, uint64_t dir);
/* Its name is in the database now, or never will be: no longer found here. */
void fs_local_forget(struct mvfs *fs, struct fs_inode *in);
/* Writes IN's note on FD, its sealed bytes, before they are made durable:
 * 0 or -errno (no extended attributes there: record it at close). */
int fs_local_note(struct fs_inode *in, int fd);
/* The record of X, sealed content of IN made here first, was made
 * (X->made 2) or not (the database away): IN is found in the database from
 * now on, or here until its upload's record makes it (IN->local 3; returns
 * 1: IN must stay held until then). */
int fs_local_recorded(struct mvfs *fs, struct fs_inode *in, const struct fs_sealed *x);
/* The upload's record made file INO: if it waited for that here (local 3),
 * it is found in the database from now on.  1 then, else 0. */
int fs_local_uploaded(struct mvfs *fs, uint64_t ino);
/* Reads NOTE, the note of file INO, into OUT: 0 or -EINVAL. */
int fs_local_parse(const char *note, uint64_t ino, struct fs_made *out);
/* Makes sure file INO (held by the kernel), if made here, is in the
 * database: made now while open, else its queued record waited for.
 * 0 or -errno (the database away). */
int fs_local_settle(struct mvfs *fs, uint64_t ino);
/* At the last close of file INO: if it is made here and its commit failed
 * (still local 1 with no writer left), made in the database now, empty.
 * Never waits for the recorder. */
void fs_local_unfinished(struct mvfs *fs, uint64_t ino);
/* The same for every file made here (before an unlink, rename, rmdir or
 * listing, which may name one), then waits for every queued record. */
void fs_local_settle_all(struct mvfs *fs);

/* The hash of NAME in folder PARENT, for the tables of names (FNV-1a). */
static inline uint64_t fs_name_hash(uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ULL ^ parent;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

/* Files read ahead of lookups that walk a folder (fs_ahead.c). */
struct fs_ahead;
int fs_ahead_init(struct mvfs *fs);
void fs_ahead_free(struct mvfs *fs);
/* The file DIR holds as NAME, from rows read ahead that are still current
 * (0, F filled), or -ENOENT: ask the database. */
int fs_ahead_find(struct mvfs *fs, uint64_t dir, const char *name, struct meta_file *f);
/* A lookup of NAME in DIR (IN, a folder of the tree) asked the database and
 * found a file: after a few in a row, the files after NAME are read ahead. */
void fs_ahead_asked(struct mvfs *fs, uint64_t dir, const struct meta_dir *in, const char *name);
/* Lookups answered from rows read ahead, in this process. */
unsigned long long fs_ahead_hits(void);

/* Folders whose every name this mount knows (fs_known.c): a lookup of
 * another name there needs no database.  Started only where no other
 * writer can go unseen (fs_known_start: the embedded default, or push). */
struct fs_known;
int fs_known_start(struct mvfs *fs);
/* Started before the threads that make names (they announce them to it),
 * and turned off here when the condition it needs did not come (the push
 * listener would not start): from then on it learns nothing. */
void fs_known_off(struct mvfs *fs);
void fs_known_free(struct mvfs *fs);
/* One more each time every folder is forgotten (a change from elsewhere,
 * announced by push); 0 when nothing is known here. */
uint64_t fs_known_epoch(struct mvfs *fs);
/* Folder INO was made here: every name in it is known from now on. */
void fs_known_dir(struct mvfs *fs, uint64_t ino);
/* NAME is about to be made in (or moved into) folder DIR here first, among
 * the names made here (fs_local.c), which a folder's names are read with. */
void fs_known_name(struct mvfs *fs, uint64_t dir, const char *name);
/* NAME is about to be made in (or moved into) folder DIR in the database:
 * as fs_known_name, and until fs_known_made(DIR) after the call that makes
 * it, DIR's names are not learned (fs_known_fill_begin answers 0): read
 * meanwhile, they could miss a name that commits after the read. */
void fs_known_making(struct mvfs *fs, uint64_t dir, const char *name);
void fs_known_made(struct mvfs *fs, uint64_t dir);
/* Folder DIR's names are about to be read: 1 (with *EPOCH) when the caller
 * reads them, adds each with fs_known_fill_add and ends with
 * fs_known_fill_end (OK 0: not all read); 0 when known or being read. */
int fs_known_fill_begin(struct mvfs *fs, uint64_t dir, uint64_t *epoch);
void fs_known_fill_add(struct mvfs *fs, uint64_t dir, uint64_t epoch, const char *name);
/* ... and the names of the files made here in DIR whose rows may not be
 * in the database yet (the names made here, fs_local_lookup): called
 * before the database is read, so that a record committed meanwhile is
 * in one of the two. */
void fs_known_fill_local(struct mvfs *fs, uint64_t dir, uint64_t epoch);
void fs_known_fill_end(struct mvfs *fs, uint64_t dir, uint64_t epoch, int ok);
/* 1 when folder DIR's names are known and NAME is not one of them. */
int fs_known_absent(struct mvfs *fs, uint64_t dir, const char *name);
/* Another writer changed something: no folder is known any more, and no
 * listing is kept. */
void fs_known_forget(struct mvfs *fs);
/* At an open of tree folder INO: 1 when the kernel may keep the listing it
 * has of it (nothing changed it unseen since the last open), else 0; the
 * listing read now may be kept from the next open on.  0 without fs_known. */
int fs_known_listing(struct mvfs *fs, uint64_t ino);
/* This mount changed a folder's names or attributes (the kernel may not
 * know which). */
void fs_known_relist(struct mvfs *fs);
/* The row of tree folder INO read at most attr_timeout ago, with neither
 * it dropped (fs_known_folder_drop: this mount changed it in the
 * database) nor every folder forgotten since (a change from elsewhere):
 * 0 with *F, else -ENOENT.  The kernel drops a folder's attributes at
 * every create in it and asks again before the next (to check the
 * folder's permission): this answers that from memory.  Times of files
 * made here but not recorded yet are laid over it as over any row
 * (fs_local_dir_times).  Call fs_known_folder_gen before the read and
 * fs_known_folder_put after it, so that a row changed meanwhile is not
 * kept. */
int fs_known_folder_get(struct mvfs *fs, uint64_t ino, struct meta_folder *f);
uint64_t fs_known_folder_gen(struct mvfs *fs);
void fs_known_folder_drop(struct mvfs *fs, uint64_t ino);
void fs_known_folder_put(struct mvfs *fs, uint64_t gen, const struct meta_folder *f);

/* --- files (fs_file.c) --------------------------------------------------- */

/* The attributes of file F, with the staged size and mtime of IN (may be
 * NULL) when it is being written. */
void fs_file_stat(struct mvfs *fs, const struct meta_file *f, struct fs_inode *in, struct stat *st);
/* Row F as the file is: when its close-time record is missing (lost in a
 * database crash, or the database was away) but its closed content waits
 * here for upload, that content's hash, size and mtime. */
void fs_file_catch_up(struct mvfs *fs, struct meta_file *f);
/* The attributes of file INO as getattr reports them: its rows, and what
 * is being written here; read again when a commit raced the rows' read. */
int fs_file_getattr(struct mvfs *fs, uint64_t ino, struct stat *st);
/* Starts writing IN (a file with committed content F, or F NULL for a new,
 * empty file): makes its staging file, filled with the current content
 * unless TRUNCATE.  Called with IN->lock held; a TRUNCATE waits for a
 * running commit. */
int fs_file_stage(struct mvfs *fs, struct fs_inode *in, const struct meta_file *f, int truncate);
/* Writes LEN bytes at OFF into IN's staging file, once no commit of IN
 * runs.  Returns bytes written or -errno: -EFBIG past CACHE_FILE_MAX,
 * -ENOSPC when staging or its disk has no room (cache_stage_room); such a
 * refusal writes nothing and leaves IN as it was, to be committed at close
 * with the writes that succeeded. */
ssize_t fs_file_write(struct mvfs *fs, struct fs_inode *in, const void *buf, size_t len, off_t off);
/* Truncates IN's staging file to SIZE (-EFBIG, -ENOSPC as fs_file_write;
 * IN unchanged then).  Called with IN->lock held; waits
 * for a running commit first (a caller that looked at IN->stage_fd without
 * holding a writer's count waits before it looks). */
int fs_file_truncate(struct mvfs *fs, struct fs_inode *in, uint64_t size);
/* When IN has staged changes: hashes them, seals them in the cache (durable
 * from then on, uploaded in the background) and records the new version.
 * After a write failed inside the staging file: no version of those bytes;
 * the file keeps its last one, or stays empty when new, and the write's
 * -errno is returned.  A file whose first content cannot be sealed is
 * removed again (nothing half-committed stays).  Called with IN->lock held; waits for a commit of
 * IN already running, and lets go of the lock while it hashes, seals and
 * records (IN->committing set), so what the caller read of IN before may
 * have changed when it returns, with the lock held again. */
int fs_file_commit(struct mvfs *fs, struct fs_inode *in);
/* Waits until no commit of IN runs (with IN->lock held).  Whatever changes
 * the staged bytes, the staging file or the mtime to record calls it
 * first; readers of IN do not. */
void fs_file_wait_commit(struct fs_inode *in);
/* The slow part of a commit of IN between the two: start marks IN
 * committing and lets go of IN->lock (held); end takes the lock again and
 * wakes those waiting for the commit. */
void fs_file_commit_start(struct fs_inode *in);
void fs_file_commit_end(struct fs_inode *in);
/* The cache's "uploaded" function: records in the database that content
 * E is in the store.  ARG is the struct mvfs. */
int fs_file_uploaded(void *arg, const struct cache_entry *e);
/* The cache's uploaded_many function (cache_uploaded_many_fn): the records
 * of a batch in one call (meta_files_uploaded); one with no rows takes
 * fs_file_uploaded's ways. */
void fs_files_uploaded(void *arg, const struct cache_entry *const *e, int *rc, int n);
/* Ends writing IN: closes its staging file once no writer is left (after
 * a running commit).  Called with IN->lock held. */
void fs_file_unstage(struct fs_inode *in);

/* A handle on IN (which holds an open count for it), describing committed
 * content F (NULL for a new file).  NULL on allocation failure. */
struct fs_handle *fs_handle_new(struct mvfs *fs, struct fs_inode *in, const struct meta_file *f);
/* Takes H off the mount's list and frees it (its inode's counts are the
 * caller's).  NULL is a no-op. */
void fs_handle_free(struct mvfs *fs, struct fs_handle *h);
/* The name of the copy that keeps what was written to NAME here when
 * another writer took the name meanwhile: "IMG_1 (conflict HOST
 * 2026-12-07 10.31.07).jpg", with " N" before ")" for the Nth try. */
void fs_conflict_name(const char *name, int n, char *out, size_t len);

/* At unmount: commits what handles the kernel never released still hold,
 * and frees them and the folder handles left open. */
void fs_handles_close_all(struct mvfs *fs);
/* Puts folder handle D on the mount's list (CLOSE frees it) / takes it off. */
void fs_open_dir_track(struct mvfs *fs, struct fs_open_dir *d, void (*close)(struct fs_open_dir *));
void fs_open_dir_untrack(struct mvfs *fs, struct fs_open_dir *d);

/* --- writing without the kernel (fs_import.c) ---------------------------- */

/* `mvaultfs import` stands in for the kernel: each call does what the
 * kernel's requests for cp -p or rsync -a through a mount do, through the
 * same workers, so the files land as a copy through a mount would make
 * them.  Inode numbers handed out hold a reference (as an entry reply
 * does) that fs_import_put gives back (as FORGET does). */

/* What NAME in folder PARENT is: 0 with *INO (referenced) and *IS_DIR;
 * -ENOENT, or another -errno. */
int fs_import_lookup(struct mvfs *fs, uint64_t parent, const char *name, uint64_t *ino, int *is_dir);
/* Folder NAME in PARENT, made with MODE when missing: 0 with *INO
 * (referenced); -ENOTDIR when a file has the name, -EPERM where no folder
 * can be (a gallery), or another -errno (logged). */
int fs_import_folder(struct mvfs *fs, uint64_t parent, const char *name, mode_t mode, uint64_t *ino);
/* Sets the mtime and atime of file or folder INO to MTIME (as cp -p and
 * rsync -a do): 0 or -errno. */
int fs_import_times(struct mvfs *fs, uint64_t ino, const struct timespec *mtime);
/* Gives back the reference of INO (0 or a top folder: a no-op). */
void fs_import_put(struct mvfs *fs, uint64_t ino);
/* Writes the SIZE bytes of FD as file NAME of folder PARENT, with MODE's
 * permission bits and mtime and atime MTIME: created when NAME is free
 * (as cp -p does), else written under a temporary name and renamed over
 * it (as rsync does: a new version of that file).  When it returns 0 the
 * content is sealed in the journal, durable as a closed file is, and
 * SHA256 holds its hash; the upload follows in the background.  -EISDIR
 * when a folder has the name; else as create, write and rename fail. */
int fs_import_write(struct mvfs *fs, uint64_t parent, const char *name, int fd, uint64_t size, mode_t mode,
		    const struct timespec *mtime, char sha256[65]);

/* --- extended attributes (fs_xattr.c) ------------------------------------ */

/* The workers of getxattr, listxattr, setxattr and removexattr on INO (the
 * rules for each set of names are at the top of fs_xattr.c).  Get and list
 * fill BUF (SIZE 0: only the length) and return the length or -errno
 * (-ENODATA: no such attribute, -ERANGE: BUF too small); set and remove
 * return 0 or -errno, after one log line for a refusal. */
ssize_t fs_do_getxattr(struct mvfs *fs, uint64_t ino, const char *name, char *buf, size_t size);
ssize_t fs_do_listxattr(struct mvfs *fs, uint64_t ino, char *buf, size_t size);
int fs_do_setxattr(struct mvfs *fs, uint64_t ino, const char *name, const char *value, size_t size,
		   int flags);
int fs_do_removexattr(struct mvfs *fs, uint64_t ino, const char *name);
/* What reading NAME answers on any inode, special nodes too, when it is one
 * ls -l asks of every file (security.*, system.posix_acl_*): -ENOTSUP, or
 * -ENODATA for security.capability; 0 for any other name. */
int fs_xattr_quiet(const char *name);
/* The mode bits (0777) POSIX ACL VALUE of attribute NAME stands for: 0, or
 * -ENOTSUP for one beyond owner, group and other (or a default ACL),
 * -EINVAL for one that is not an ACL, each logged. */
int fs_xattr_acl_mode(uint64_t ino, const char *name, const char *value, size_t size, mode_t *mode);
/* The names of INO's attributes as listxattr gives them: the stored
 * user.* ones only.  The computed user.mvault.* names are readable by name
 * and not listed (as CephFS's ceph.* attributes): their values change on
 * their own (upload, processing status) and differ in every library (ids),
 * so a listed one would break `rsync -aX` (ERANGE between its size query
 * and its read) and make every rerun rewrite it.  Into BUF as
 * fs_do_listxattr. */
ssize_t fs_xattr_names(struct mvfs *fs, uint64_t ino, char *buf, size_t size);
/* The answer to setting computed NAME of SUBJECT (quoted, for the log),
 * whose value is CUR (CURLEN bytes; NULL: it has none), to VALUE with
 * setxattr FLAGS: 0, changing nothing (one info line when VALUE differs),
 * -EEXIST for XATTR_CREATE of a name with a value, -ENODATA for
 * XATTR_REPLACE of one without. */
int fs_xattr_set_computed(const char *subject, const char *name, const char *cur, size_t curlen,
			  const char *value, size_t size, int flags);
/* The mount's numbers (staged files, cache, uploads) as "name value" lines,
 * and "store NAME" (the backend: local, s3, icp-canister):
 * the root folder's user.mvault.stats, read by `mvaultfs status` and `sync`. */
#define FS_XATTR_STATS "user.mvault.stats"
ssize_t fs_xattr_stats(struct cache *cache, char *buf, size_t size);
/* VAL (LEN bytes) into BUF as getxattr answers: the length (SIZE 0: only
 * that), or -ERANGE when SIZE is too small. */
ssize_t fs_xattr_copy_out(const char *val, size_t len, char *buf, size_t size);

/* --- presence and pins (fs_presence.c) ----------------------------------- */

/* user.mvault.presence (WHICH NULL) or user.mvault.presence.WHICH (a
 * backend's name or label) of file INO (GALLERY 0) or gallery INO
 * (GALLERY 1), into BUF as fs_do_getxattr.  One statement. */
ssize_t fs_presence_get(struct mvfs *fs, uint64_t ino, int gallery, const char *which, char *buf, size_t size);
/* Sets the pins of file or gallery INO (SUBJECT quoted, for the log) to
 * the comma-separated names in VALUE (SIZE bytes; VALUE NULL or empty:
 * unpins).  A name that is not a pin store of this mount (-o pin_store=),
 * or is the primary store, is -EINVAL after a log line.  One statement. */
int fs_pin_set(struct mvfs *fs, uint64_t ino, const char *subject, const char *value, size_t size);
/* The root's user.mvault.pins: copies for pins in progress, per backend,
 * as "BACKEND COPYING BYTES_LEFT FAILED" lines, read by `mvaultfs status`. */
#define FS_XATTR_PINS "user.mvault.pins"
ssize_t fs_xattr_pins(struct mvfs *fs, char *buf, size_t size);

/* The root's user.mvault.aside: the folder of staged content set aside. */
#define FS_XATTR_ASIDE "user.mvault.aside"
ssize_t fs_xattr_aside(struct cache *cache, char *buf, size_t size);

#endif
