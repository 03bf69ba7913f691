/*
 * meta_internal.h - what the files of src/meta share: the pool, the one
 * statement runner and the one PostgreSQL error mapper.  Not for use
 * outside src/meta.
 */
#ifndef MVFS_META_INTERNAL_H
#define MVFS_META_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>

#include "meta/meta.h"

struct meta {
	char *conninfo;
	char user_id[META_UUID_LEN + 1];
	int trash_days;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	int nconns;
	PGconn **conns;
	int *busy;
};

/* Takes a free connection, waiting for one; reconnects a broken one.
 * Returns NULL (and logs) when the database cannot be reached. */
PGconn *meta_conn_get(struct meta *m);
void meta_conn_put(struct meta *m, PGconn *c);

/* The value of CALL, an int expression that uses connection C, run on a
 * connection borrowed from M's pool for it (-EIO when none can be had). */
#define META_ON_CONN(m, c, call) ({ \
	PGconn *c = meta_conn_get(m); \
	int on_conn_rc_ = c ? (call) : -EIO; \
	if (c) \
		meta_conn_put(m, c); \
	on_conn_rc_; \
})

/* Runs SQL with NPARAMS text parameters (NULL entries are SQL NULL).
 * WHAT names the statement in the log line of a failure.  On success, *RES
 * (when RES is not NULL) owns the result; the caller PQclear()s it.
 * Returns 0 or the mapped -errno. */
int meta_exec(PGconn *c, const char *what, const char *sql, int nparams,
	      const char *const *params, PGresult **res);

/* One mapper from SQLSTATE to errno. */
int pg_sqlstate_to_errno(const char *sqlstate);
/* Whether a failure with this SQLSTATE is worth running the transaction
 * again (serialization failure, deadlock). */
int pg_sqlstate_is_retryable(const char *sqlstate);

/* Transactions: begin, then commit or rollback.  meta_tx_end commits when
 * RC is 0 and rolls back otherwise; it returns RC, or the commit's error. */
int meta_tx_begin(PGconn *c);
int meta_tx_end(PGconn *c, int rc);

/* Applies the embedded migrations on C (meta_migrate.c). */
int meta_migrate(PGconn *c, char *err, size_t errlen);

/* Finders that run on a connection the caller holds (inside its
 * transaction); each returns 0 with OUT filled, -ENOENT, or -errno. */
/* The file shown as NAME in DIR. */
int meta_find(struct meta *m, PGconn *c, const struct meta_dir *dir, const char *name,
	      struct meta_file *out);
/* The user's file with inode INO, whatever its lifecycle. */
int meta_find_ino(struct meta *m, PGconn *c, uint64_t ino, struct meta_file *out);
/* The oldest file whose display name is exactly DISPLAY_NAME in the set of
 * names of place SET (library, workspace or trash). */
int meta_find_exact(struct meta *m, PGconn *c, enum meta_place set, const char *display_name,
		    struct meta_file *out);
/* The collection or gallery called NAME (OUT may be NULL). */
int meta_find_folder(struct meta *m, PGconn *c, enum meta_place place, const char *name,
		     struct meta_folder *out);
/* The collection or gallery with inode INO. */
int meta_folder_get_on(struct meta *m, PGconn *c, uint64_t ino, struct meta_folder *out);
/* Which set of names PLACE's files share: library, workspace or trash. */
enum meta_place meta_name_set(enum meta_place place);

/* Row helpers: column COL of row ROW as text / unsigned integer. */
static inline const char *meta_val(const PGresult *r, int row, int col)
{ return PQgetvalue(r, row, col); }
unsigned long long meta_u64(const PGresult *r, int row, int col);
/* Copies column COL of row ROW of R into the char array DST, cut to fit. */
#define META_COPY(dst, r, row, col) snprintf((dst), sizeof(dst), "%s", meta_val((r), (row), (col)))

#endif
