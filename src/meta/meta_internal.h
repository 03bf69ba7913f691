/*
 * meta_internal.h - what the files of src/meta share: the pool, the one
 * statement runner and the one PostgreSQL error mapper.  Not for use
 * outside src/meta.
 */
#ifndef MVFS_META_INTERNAL_H
#define MVFS_META_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "meta/meta.h"

struct meta {
	char *conninfo;
	char user_id[META_UUID_LEN + 1];
	char user_name[256];
	char key_prefix[META_UUID_LEN + 4];	/* "" or "u/<user_id>/" (tops_load) */
	int trash_days;
	int version_min_age;		/* seconds; 0 keeps every replaced version */
	int db_timeout;			/* seconds an operation waits for an unreachable database */
	_Atomic int stopping;		/* meta_stop_waiting: the daemon is going */
	uint64_t top_ino[2];		/* database inode numbers of library/ and workspace/ */
	uint64_t uploads;		/* upload records made (under lock) */
	uint64_t analyze_at;		/* ... when the tables are analyzed next */
	pthread_mutex_t lock;
	pthread_cond_t freed;
	int nconns;
	PGconn **conns;
	int *busy;
	int *pids;			/* server process of each connection (under lock) */
	struct {			/* meta_usage's last answer (under lock) */
		uint64_t files, bytes;
		long long at;		/* CLOCK_MONOTONIC ms it was counted; 0: never */
		int counting;		/* a thread is counting it again */
		pthread_cond_t done;	/* ... and has stopped */
		pthread_t thread;	/* the last count in the background */
		int thread_made;	/* ... not joined yet */
	} usage;
};

/* Takes a free connection, waiting for one; reconnects a broken one.
 * Returns NULL (and logs) when the database cannot be reached. */
PGconn *meta_conn_get(struct meta *m);
void meta_conn_put(struct meta *m, PGconn *c);

/* The value of CALL, an int expression that uses connection C, run on a
 * connection borrowed from M's pool for it (-EIO when none can be had);
 * run again when a lost connection kept it from taking effect (meta_retry). */
#define META_ON_CONN(m, c, call) ({ \
	long long on_conn_start_ = meta_retry_start(); \
	int on_conn_rc_; \
	for (int on_conn_try_ = 0;; on_conn_try_++) { \
		PGconn *c = meta_conn_get(m); \
		on_conn_rc_ = c ? (call) : -EIO; \
		if (!c) \
			break; \
		meta_conn_put(m, c); \
		if (on_conn_rc_ != -EIO || !meta_retry(m, on_conn_rc_, on_conn_try_, on_conn_start_)) \
			break; \
	} \
	on_conn_rc_; \
})

/* How a statement failed with its connection (meta_exec): it provably did
 * not take effect, or it was sent and may have. */
enum { META_LOST_UNSENT = 1, META_LOST_UNKNOWN = 2 };

/* CLOCK_MONOTONIC in milliseconds. */
long long meta_mono_ms(void);
/* The start of an operation meta_retry bounds (CLOCK_MONOTONIC ms). */
long long meta_retry_start(void);
/* After attempt ATTEMPT of work that began at STARTED failed with RC:
 * 1 to run it again -- a lost connection kept it from taking effect
 * (nothing this borrow changed had committed) and db_timeout has not
 * passed, or meta_retry_pause says so -- else 0. */
int meta_retry(struct meta *m, int rc, int attempt, long long started);

/* A statement whose best plan depends on its parameters (a listing page:
 * whose library, how far into a folder of 10,000) starts with this: it is
 * planned at every call, never prepared (meta_exec.c).  A prepared one
 * went to a generic plan after five calls, chosen from whichever users and
 * pages came first: a 10,000-file folder listed in 0.6 s or in 1.9 s. */
#define META_PLAN_PER_CALL "/* planned per call */ "

/* PQconnectdb(CONNINFO), with libpq's TCP timeouts bounded by DB_TIMEOUT
 * seconds (> 0) where CONNINFO does not set them itself: tcp_user_timeout
 * (a statement sent on a link that went silent fails after DB_TIMEOUT
 * instead of waiting out TCP's retransmissions), keepalives (an idle
 * connection is found dead after about DB_TIMEOUT) and connect_timeout.
 * PQreset keeps them.  Never NULL but out of memory; check PQstatus. */
PGconn *meta_connect(const char *conninfo, int db_timeout);

/* A connection of its own (not the pool's), acting for M's user as the
 * pool's do: the caller PQfinish()es it.  NULL with ERR filled. */
PGconn *meta_conn_open(struct meta *m, char *err, size_t errlen);
/* One try at re-establishing C (reset, then acting for M's user again):
 * 0, or -EIO (PQerrorMessage says why).  The pool's own reconnects try
 * this until db_timeout. */
int meta_conn_reset(struct meta *m, PGconn *c);

/* Whether server process PID serves one of M's pooled connections: a
 * notification it sent is this mount's own change. */
int meta_own_backend(struct meta *m, int pid);

/* Forgets the statements C prepared: before it is reset or closed. */
void meta_conn_forget(PGconn *c);
/* meta_exec.c, for the pool: a connection was just borrowed on this thread
 * (what the last borrow lost or changed no longer counts); and the notice
 * receiver of every pooled connection (it notes the server's FATAL before
 * it closes an idle one). */
void meta_exec_borrowed(void);
void meta_notice_receive(void *arg, const PGresult *r);

/* Runs SQL with NPARAMS text parameters (NULL entries are SQL NULL).
 * WHAT names the statement in the log line of a failure.  On success, *RES
 * (when RES is not NULL) owns the result; the caller PQclear()s it.
 * Returns 0 or the mapped -errno. */
int meta_exec(PGconn *c, const char *what, const char *sql, int nparams,
	      const char *const *params, PGresult **res);

/* A statement of a pipeline (meta_pipeline): SQL with NPARAMS text
 * parameters (NULL entries are SQL NULL), named WHAT in log lines. */
struct meta_stmt {
	const char *what, *sql;
	int nparams;
	const char *const *params;
	int rc;				/* out: 0, -errno, or META_UNANSWERED */
};
/* Statements a pipeline sends before it reads their answers. */
#define META_PIPELINE_MAX 128

/* Runs the N statements of S on C, a connection of M's pool the caller
 * holds, in one round trip for each META_PIPELINE_MAX of them (libpq's
 * pipeline mode): each one its own transaction (a Sync follows each), so
 * one that fails undoes none of the others.  Each S[i].rc receives 0, the
 * mapped -errno of a statement the server refused (logged as meta_exec
 * does), or META_UNANSWERED: not sent, its answer lost with the
 * connection (it may have taken effect), or a serialization failure or
 * deadlock -- a statement to run again on its own (meta_call), so only
 * statements that change nothing the second time belong here.  Counts N
 * statements and their round trips.  Returns 0, or -EIO when the
 * connection was lost (C is then made anew, or left broken for
 * meta_conn_get). */
int meta_pipeline(struct meta *m, PGconn *c, struct meta_stmt *s, int n);

/* Runs SQL, one statement that is a change of its own (a call of one of
 * our functions), on a connection borrowed for it; a serialization failure
 * or deadlock is retried (bounded, with jitter).  As meta_exec otherwise. */
int meta_call(struct meta *m, const char *what, const char *sql, int nparams, const char *const *params,
	      PGresult **res);
/* As meta_call, for a call that changes nothing the second time it runs
 * (the close-time and upload records, idempotent by journal sequence,
 * 0011_durable_records.sql): run again after a lost connection even when
 * it was sent. */
int meta_call_idempotent(struct meta *m, const char *what, const char *sql, int nparams,
			 const char *const *params, PGresult **res);
/* The bytea value in the first column of R's first row (hex form) into
 * BUF (SIZE bytes; SIZE 0 asks only the length), and PQclear(R).  Returns
 * the length, -ENODATA for no row or NULL, -ERANGE when it does not fit. */
ssize_t meta_xattr_value(PGresult *r, void *buf, size_t size);
/* Runs SQL, which selects one boolean: 1 when it is true, 0 when false or
 * no row, or -errno. */
int meta_query_bool(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params);

/* After attempt ATTEMPT (0 for the first) of a change failed with RC:
 * when RC is -EAGAIN (a serialization failure or deadlock) and attempts
 * are left, sleeps a jittered, growing while and returns 1 (run it again);
 * else 0, with a log line when the attempts ran out. */
int meta_retry_pause(int rc, int attempt);

/* One mapper from SQLSTATE to errno.  Whether to run a change again is
 * not decided here: a serialization failure or deadlock maps to EAGAIN,
 * and meta_retry_pause is the predicate on that errno. */
int pg_sqlstate_to_errno(const char *sqlstate);

/* Transactions: begin, then commit or rollback.  meta_tx_end commits when
 * RC is 0 and rolls back otherwise; it returns RC, or the commit's error. */
int meta_tx_begin(PGconn *c);
int meta_tx_end(PGconn *c, int rc);

/* Applies the embedded migrations on C (meta_migrate.c). */
int meta_migrate(PGconn *c, char *err, size_t errlen);

/* The database's inode number of tree folder DIR (library/ and workspace/
 * themselves have one of their own), 0 for a place that is no tree folder. */
uint64_t meta_tree_ino(const struct meta *m, const struct meta_dir *dir);
/* The inode number the kernel knows for tree folder DBINO. */
uint64_t meta_kernel_ino(const struct meta *m, uint64_t dbino);

/* Serialises every change to NAME in folder KEY (a tree folder's database
 * inode number, or a collections/ / galleries/ inode) for the transaction. */
int meta_lock_name(struct meta *m, PGconn *c, uint64_t key, const char *name);

/* Finders that run on a connection the caller holds (inside its
 * transaction); each returns 0 with OUT filled, -ENOENT, or -errno. */
/* The file shown as NAME in DIR. */
int meta_find(struct meta *m, PGconn *c, const struct meta_dir *dir, const char *name,
	      struct meta_file *out);
/* The user's file with inode INO, whatever its lifecycle. */
int meta_find_ino(struct meta *m, PGconn *c, uint64_t ino, struct meta_file *out);
/* Runs UPDATE, an UPDATE of memory_items ... RETURNING *, and reads the
 * file it changed, as it is now, into OUT: one statement.  -ENOENT when it
 * changed none. */
int meta_change_file(PGconn *c, const char *what, const char *update, int n, const char *const *p,
		     struct meta_file *out);
/* The oldest active file whose display name is exactly DISPLAY_NAME in
 * tree folder DBINO (database inode number) of PLACE (library or workspace). */
int meta_find_named(struct meta *m, PGconn *c, enum meta_place place, uint64_t dbino,
		    const char *display_name, struct meta_file *out);
/* Runs CALL, a statement that calls one of our functions which changes
 * file rows and returns (ino, nlink, ctime_ns) of the file as they are now
 * ($1 is the user), and reads that file into OUT in the same statement
 * (meta_call: its own transaction, retried on a conflict).  The rest of
 * the file is read as it was when the statement began: CALL must change
 * nothing else about it. */
int meta_call_file(struct meta *m, const char *what, const char *call, int n, const char *const *p,
		   struct meta_file *out);
/* The folder called NAME in IN (OUT may be NULL). */
int meta_find_folder(struct meta *m, PGconn *c, const struct meta_dir *in, const char *name,
		     struct meta_folder *out);
/* Whether tree folder DBINO holds a folder called NAME: 1, 0, or -errno. */
int meta_has_subfolder(PGconn *c, uint64_t dbino, const char *name);
/* The tree folder file F lives in: its place (library or workspace) and
 * database inode number. */
int meta_home_of(PGconn *c, const struct meta_file *f, enum meta_place *place, uint64_t *dbino);

/* The columns of a folder of the tree (alias f), as meta_folder_row reads
 * them from column COL on. */
#define META_TREE_COLS \
	"f.ino, f.id, f.name, f.mode, f.mtime_ns, f.ctime_ns, f.atime_ns," \
	" (extract(epoch FROM f.created_at) * 1000000)::bigint," \
	" 2 + (SELECT count(*) FROM folders s WHERE s.parent_id = f.id), f.place"
#define META_TREE_NCOLS 10
void meta_folder_row(const struct meta *m, const PGresult *r, int row, int col, struct meta_folder *out);

/* The FROM and WHERE of the files of DIR, as listings walk them: $1 is the
 * user, $2 the folder's inode (all places but the trash: *HAS_INO).
 * CURSOR receives the column that orders the listing. */
int meta_place_sql(const struct meta *m, const struct meta_dir *dir, char *from, size_t flen,
		   char *where, size_t wlen, const char **cursor, int *has_ino);

/* The body of a change: a pooled connection C, a transaction begun (its
 * status in RC), and at TX_END a commit, or a rollback when RC is an error.
 * A transaction that ends in a serialization failure or a deadlock
 * (-EAGAIN) runs again from TX_BEGIN, a bounded number of times with
 * jitter (meta_retry_pause), and so does one a lost connection aborted
 * (meta_retry, within db_timeout): the body must change nothing but the
 * database until TX_END. */
#define TX_BEGIN(m, c, rc) \
	for (long long tx_start_ = meta_retry_start(), tx_attempt_ = 0;; tx_attempt_++) { \
	PGconn *c = meta_conn_get(m); \
	int rc; \
	if (!c) \
		return -EIO; \
	rc = meta_tx_begin(c)
#define TX_END(m, c, rc) \
	rc = meta_tx_end(c, rc); \
	meta_conn_put(m, c); \
	if (meta_retry(m, rc, (int)tx_attempt_, tx_start_)) \
		continue; \
	return rc; \
	}

/* Lifecycle moves (meta_versions.c), on the caller's transaction. */
/* Asset ASSET_ID tombstoned -> active; BLOB_ID receives its blob, "" when
 * it has none or was not tombstoned. */
int meta_restore_asset(PGconn *c, const char *asset_id, char blob_id[META_UUID_LEN + 1]);
/* An original a newer version replaced is tombstoned (its blob reference
 * dropped, a blob left with none in the deletion outbox); it gets an inode
 * number of its own (INO, or a new one when 0) and stays in the trash for
 * the grace period, or, when it was current for less than version_min_age,
 * its grace period is over at once (still reachable by that number while
 * a process holds it open). */
int meta_retire_version(struct meta *m, PGconn *c, const char *asset_id, uint64_t ino);

static inline void meta_u64s(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Row helpers: column COL of row ROW as text / unsigned integer. */
static inline const char *meta_val(const PGresult *r, int row, int col)
{ return PQgetvalue(r, row, col); }
unsigned long long meta_u64(const PGresult *r, int row, int col);
/* Copies column COL of row ROW of R into the char array DST, cut to fit. */
#define META_COPY(dst, r, row, col) snprintf((dst), sizeof(dst), "%s", meta_val((r), (row), (col)))

#endif
