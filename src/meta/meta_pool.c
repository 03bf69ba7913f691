/*
 * meta_pool.c - a fixed pool of libpq connections acting for one user.
 *
 * libpq connections are not thread-safe, FUSE calls come from many threads:
 * each call borrows a connection for the length of one transaction.  A
 * connection found broken is reset once before it is handed out; every
 * statement goes through meta_exec, which maps errors with the one mapper
 * and logs the failing statement by name.
 *
 * Each connection sets mvault.user_id, which the row-level security
 * policies of the schema read.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>
#include <xxhash.h>

#include "util/log.h"

int pg_sqlstate_to_errno(const char *s)
{
	static const struct { const char *state; int err; } map[] = {
		{ "23505", EEXIST },	/* unique_violation */
		{ "23503", ENOENT },	/* foreign_key_violation: the row it names is gone */
		{ "23514", EINVAL },	/* check_violation */
		{ "23502", EINVAL },	/* not_null_violation */
		{ "22001", ENAMETOOLONG }, /* string_data_right_truncation */
		{ "22021", EINVAL },	/* character_not_in_repertoire (bad UTF-8) */
		{ "40001", EAGAIN },	/* serialization_failure */
		{ "40P01", EAGAIN },	/* deadlock_detected */
		{ "42501", EACCES },	/* insufficient_privilege (row-level security) */
		{ "53100", ENOSPC },	/* disk_full */
		{ "53200", ENOMEM },	/* out_of_memory */
		{ "57014", EINTR },	/* query_canceled */
	};

	if (!s)
		return EIO;
	/* our functions' own: MV and the errno (0009_ops.sql) */
	if (s[0] == 'M' && s[1] == 'V' && strspn(s + 2, "0123456789") == 3 && s[5] == '\0')
		return atoi(s + 2);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(s, map[i].state) == 0)
			return map[i].err;
	return EIO;
}

unsigned long long meta_u64(const PGresult *r, int row, int col)
{
	return strtoull(PQgetvalue(r, row, col), NULL, 10);
}

/* Statements sent by this process, for `mvaultfs status` and the
 * benchmarks: every statement goes through meta_exec (or meta_tx_begin and
 * meta_tx_end, which call it), so this is the one place to count.  A
 * process-wide counter, like the kernel's: it describes the process, not
 * one pool. */
static _Atomic unsigned long long statements_sent;
/* ... and the round trips they took: one each, but a pipeline's
 * (meta_pipeline) statements take one together. */
static _Atomic unsigned long long round_trips;

unsigned long long meta_statements(void)
{
	return statements_sent;
}

unsigned long long meta_round_trips(void)
{
	return round_trips;
}

/* Statements the daemon repeats are prepared once per connection: parsing
 * and planning cost more than running most of ours.  The statements kept
 * are found by their text (queries built at run time repeat their few
 * shapes too), per connection and server process: a reset connection has
 * lost them.  A connection keeps at most PREP_MAX; past that, statements
 * are simply sent with their text. */
#define PREP_BUCKETS 1024
#define PREP_MAX 512

struct prep {
	const PGconn *conn;
	int pid;			/* the server process that holds it */
	uint64_t hash;
	char *sql;
	char name[24];
	struct prep *next;
};

static struct prep *prep_table[PREP_BUCKETS];
static pthread_mutex_t prep_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned long long prep_names;

/* Whether SQL is worth preparing: not transaction control, a DO block, or
 * a statement marked META_PLAN_PER_CALL (which does not start with a verb). */
static int prep_worth(const char *sql)
{
	return strncmp(sql, "SELECT", 6) == 0 || strncmp(sql, "WITH", 4) == 0 ||
	       strncmp(sql, "INSERT", 6) == 0 || strncmp(sql, "UPDATE", 6) == 0 ||
	       strncmp(sql, "DELETE", 6) == 0;
}

/* The name C's server process knows SQL by, copied into NAME; 0 when it
 * has none yet (and may get one), -1 when it should not. */
static int prep_find(PGconn *c, const char *sql, uint64_t hash, char *name, size_t len)
{
	int pid = PQbackendPID(c), kept = 0, rc = 0;
	struct prep *p;

	pthread_mutex_lock(&prep_lock);
	for (p = prep_table[hash % PREP_BUCKETS]; p; p = p->next)
		if (p->conn == c && p->pid == pid && p->hash == hash && strcmp(p->sql, sql) == 0)
			break;
	if (p) {
		snprintf(name, len, "%s", p->name);
		rc = 1;
	} else {
		for (size_t b = 0; b < PREP_BUCKETS && kept < PREP_MAX; b++)
			for (p = prep_table[b]; p; p = p->next)
				kept += p->conn == c && p->pid == pid;
		rc = kept < PREP_MAX ? 0 : -1;
	}
	pthread_mutex_unlock(&prep_lock);
	return rc;
}

static void prep_add(PGconn *c, const char *sql, uint64_t hash, const char *name)
{
	struct prep *p = calloc(1, sizeof(*p));

	if (!p || !(p->sql = strdup(sql))) {
		free(p);
		return;		/* prepared again next time: harmless */
	}
	p->conn = c;
	p->pid = PQbackendPID(c);
	p->hash = hash;
	snprintf(p->name, sizeof(p->name), "%s", name);
	pthread_mutex_lock(&prep_lock);
	p->next = prep_table[hash % PREP_BUCKETS];
	prep_table[hash % PREP_BUCKETS] = p;
	pthread_mutex_unlock(&prep_lock);
}

void meta_conn_forget(PGconn *c)
{
	pthread_mutex_lock(&prep_lock);
	for (size_t b = 0; b < PREP_BUCKETS; b++) {
		struct prep **pp = &prep_table[b];

		while (*pp) {
			struct prep *p = *pp;

			if (p->conn == c) {
				*pp = p->next;
				free(p->sql);
				free(p);
			} else {
				pp = &p->next;
			}
		}
	}
	pthread_mutex_unlock(&prep_lock);
}

/* How the last statement of this thread that failed with its connection
 * failed, and whether the connection it borrowed has made a change that
 * committed on its own (outside a transaction block): what decides
 * whether running the work again could make a change twice. */
static __thread int lost_kind;
static __thread int borrow_changed;

/* Process-wide, for `mvaultfs status`: since when (meta_mono_ms, 0 while it
 * answers) the database has been unreachable, and how many operations
 * wait for it. */
static _Atomic long long db_down_since;
static _Atomic int db_waiting;

/* CLOCK_MONOTONIC in milliseconds. */
long long meta_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int meta_db_down(unsigned *waiting)
{
	long long since = db_down_since;

	if (waiting)
		*waiting = (unsigned)db_waiting;
	return since ? (int)((meta_mono_ms() - since) / 1000) + 1 : 0;
}

/* Waits for the result of what was sent on C, as PQexec would (the last
 * result; an error wins), and says in *OK_FIRST whether a success came
 * before an error: then the server had finished the statement. */
static PGresult *collect(PGconn *c, int sent, int *ok_first)
{
	PGresult *r, *last = NULL;

	*ok_first = 0;
	if (!sent)
		return NULL;
	while ((r = PQgetResult(c))) {
		ExecStatusType st = PQresultStatus(r);

		if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
			PQclear(r);	/* the first error says why */
			continue;
		}
		if (last && st == PGRES_FATAL_ERROR && PQresultStatus(last) != PGRES_FATAL_ERROR)
			*ok_first = 1;
		PQclear(last);
		last = r;
	}
	return last;
}

/* Whether SQL only reads: a SELECT that calls none of our functions that
 * change rows (mvault_now and mvault_ns only read the clock; the query
 * mvault_list_page runs is refused any change, as the function is STABLE)
 * and takes no number from a sequence.  Running it again changes nothing. */
static int read_only(const char *sql)
{
	const char *p;

	if (strncmp(sql, META_PLAN_PER_CALL, strlen(META_PLAN_PER_CALL)) == 0)
		sql += strlen(META_PLAN_PER_CALL);
	p = sql;
	if (strncmp(sql, "SELECT", 6) != 0 || strstr(sql, "mvfs_") || strstr(sql, "nextval") ||
	    strstr(sql, "set_config"))
		return 0;
	while ((p = strstr(p, "mvault_"))) {
		if (strncmp(p, "mvault_now(", 11) != 0 && strncmp(p, "mvault_ns(", 10) != 0 &&
		    strncmp(p, "mvault_list_page(", 17) != 0)
			return 0;
		p += 7;
	}
	return 1;
}

/* Set by notice_receive when the server's FATAL about closing a
 * connection of this thread was read. */
static __thread int fatal_seen;

/* Whether C is still there before anything is sent on it: an idle
 * connection has nothing to read, so input means the server has said
 * something on its own.  Parsed (PQisBusy), a FATAL before it closed (a
 * shutdown: 57P01) reaches notice_receive; libpq 15 keeps such a
 * connection CONNECTION_OK until it reads the end that follows, and a
 * statement sent on it then fails with no SQLSTATE (the peer's reset
 * drops the FATAL), which would make its outcome look unknown. */
static int conn_alive(PGconn *c)
{
	struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };

	if (PQstatus(c) != CONNECTION_OK)
		return 0;
	if (poll(&pfd, 1, 0) <= 0)
		return 1;
	fatal_seen = 0;
	if (!PQconsumeInput(c))
		return 0;
	PQisBusy(c);
	if (!fatal_seen)
		return PQstatus(c) == CONNECTION_OK;	/* a notice, a parameter's new value */
	/* the end follows the FATAL at once: read it, so that the connection
	 * is known broken and meta_conn_get re-establishes it */
	for (int i = 0; i < 20 && PQstatus(c) == CONNECTION_OK; i++)
		if (poll(&pfd, 1, 50) > 0 && !PQconsumeInput(c))
			break;
	return 0;
}

/* Runs SQL on C: by the name of its prepared statement when it has one
 * (preparing it first when it is worth it), else with its text.
 * *OK_FIRST as collect's. */
static PGresult *exec_sql(PGconn *c, const char *sql, int nparams, const char *const *params, int *ok_first)
{
	const char *state;
	uint64_t hash;
	char name[24];
	PGresult *r;
	int have;

	if (!prep_worth(sql))
		return collect(c, PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0), ok_first);
	hash = XXH3_64bits(sql, strlen(sql));
	have = prep_find(c, sql, hash, name, sizeof(name));
	if (have < 0)
		return collect(c, PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0), ok_first);
	if (have == 0) {
		snprintf(name, sizeof(name), "mv%llu", ++prep_names);
		r = collect(c, PQsendPrepare(c, name, sql, nparams, NULL), ok_first);
		*ok_first = 0;	/* a statement prepared has changed nothing */
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			return r;	/* its error is the statement's */
		PQclear(r);
		prep_add(c, sql, hash, name);
	}
	r = collect(c, PQsendQueryPrepared(c, name, nparams, params, NULL, NULL, 0), ok_first);
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state && strcmp(state, "0A000") == 0 && PQtransactionStatus(c) == PQTRANS_IDLE) {
		/* "cached plan must not change result type": a newer mvaultfs
		 * changed a table under it.  Its text still runs. */
		PQclear(r);
		meta_conn_forget(c);
		r = collect(c, PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0), ok_first);
	}
	return r;
}

/* Whether a statement whose connection broke under it provably did not
 * take effect (see DECISIONS.md, issue 11): it was never sent; or it was
 * sent inside a transaction block and is not its COMMIT (the server
 * commits a block on COMMIT only, and a lost connection aborts it); or it
 * only reads; or the server answered it with the FATAL of a backend it
 * terminated (admin_shutdown, crash_shutdown, cannot_connect_now) before
 * any success: the implicit commit of a statement of its own comes at
 * Sync, after its CommandComplete, so a FATAL with none before it came
 * before any commit. */
static int lost_unrun(const char *sql, PGTransactionStatusType before, const char *state, int ok_first)
{
	if ((before == PQTRANS_INTRANS || before == PQTRANS_INERROR) && strcmp(sql, "COMMIT") != 0)
		return 1;
	if (read_only(sql))
		return 1;
	return !ok_first && state &&
	       (strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0);
}

/* The log line of statement WHAT the server refused with STATE (MSG, as
 * ERR). */
static void log_refusal(const char *what, const char *state, const char *msg, int err)
{
	/* Expected outcomes (a name taken, a retryable conflict, an answer of
	 * our functions) are not errors of the daemon; the caller decides what
	 * to say about them. */
	int expected = err == EEXIST || err == EAGAIN || (state && strncmp(state, "MV", 2) == 0);

	log_msg(expected ? LOG_LVL_DEBUG : LOG_LVL_ERROR, "database: %s failed: %s (sqlstate %s)", what,
		msg ? msg : "out of memory", state ? state : "none");
}

int meta_exec(PGconn *c, const char *what, const char *sql, int nparams,
	      const char *const *params, PGresult **res)
{
	PGTransactionStatusType before = PQtransactionStatus(c);
	PGresult *r;
	ExecStatusType st;
	const char *state;
	char *msg, *nl;
	int err, ok_first = 0;

	if (!conn_alive(c)) {
		/* nothing sent: safe to run again on a new connection */
		lost_kind = META_LOST_UNSENT;
		log_warn("database: connection lost before '%s' was sent", what);
		return -EIO;
	}
	r = exec_sql(c, sql, nparams, params, &ok_first);
	st = PQresultStatus(r);
	statements_sent++;
	round_trips++;
	log_debug("sql: %s", what);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (before == PQTRANS_IDLE && !read_only(sql) && strcmp(sql, "BEGIN") != 0)
			borrow_changed = 1;
		if (res)
			*res = r;
		else
			PQclear(r);
		return 0;
	}
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	err = PQstatus(c) == CONNECTION_BAD ? EIO : pg_sqlstate_to_errno(state);
	msg = strdup(r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	if (msg && (nl = strchr(msg, '\n')))
		*nl = '\0';
	if (PQstatus(c) == CONNECTION_BAD) {
		lost_kind = lost_unrun(sql, before, state, ok_first) ? META_LOST_UNSENT : META_LOST_UNKNOWN;
		if (lost_kind == META_LOST_UNKNOWN)
			log_error("database: connection lost after '%s' was sent (%s, sqlstate %s%s); whether it took"
				  " effect is unknown, so it is not run again", what, msg ? msg : "out of memory",
				  state ? state : "none", ok_first ? ", after its success" : "");
		else
			log_warn("database: connection lost running '%s' (%s, sqlstate %s); it did not take effect",
				 what, msg ? msg : "out of memory", state ? state : "none");
		free(msg);
		PQclear(r);
		return -EIO;
	}
	log_refusal(what, state, msg, err);
	free(msg);
	PQclear(r);
	return -err;
}

/* Runs the N statements of S on C in one round trip, as meta_pipeline
 * says; N is at most META_PIPELINE_MAX, so that the answers the server
 * writes while this thread still sends fit in the socket's buffers (the
 * connection stays in blocking mode). */
static int pipeline_run(PGconn *c, struct meta_stmt *s, int n)
{
	char (*name)[24] = calloc((size_t)n, sizeof(*name));
	int *prepared = calloc((size_t)n, sizeof(*prepared));	/* 1: a Prepare of its own went first */
	int sent = 0, lost = 0;

	if (!name || !prepared) {
		free(name);
		free(prepared);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		s[i].rc = META_UNANSWERED;
	if (!conn_alive(c) || !PQenterPipelineMode(c)) {
		log_warn("database: connection lost before '%s' was sent", s[0].what);
		free(name);
		free(prepared);
		return -EIO;
	}
	/* Each statement is followed by a Sync: its own implicit transaction,
	 * so a failure undoes none of the others and aborts none of them. */
	for (; sent < n; sent++) {
		const char *sql = s[sent].sql;
		uint64_t hash = XXH3_64bits(sql, strlen(sql));
		int have = prep_find(c, sql, hash, name[sent], sizeof(name[sent])), ok;

		for (int j = 0; have == 0 && j < sent; j++)
			if (prepared[j] && strcmp(s[j].sql, sql) == 0) {	/* prepared by this pipeline */
				memcpy(name[sent], name[j], sizeof(name[sent]));
				have = 1;
			}
		if (have == 0) {
			snprintf(name[sent], sizeof(name[sent]), "mv%llu", ++prep_names);
			prepared[sent] = 1;
			if (!PQsendPrepare(c, name[sent], sql, s[sent].nparams, NULL) || !PQpipelineSync(c))
				break;
		}
		ok = have < 0 ? PQsendQueryParams(c, sql, s[sent].nparams, NULL, s[sent].params, NULL, NULL, 0)
			      : PQsendQueryPrepared(c, name[sent], s[sent].nparams, s[sent].params, NULL, NULL, 0);
		if (!ok || !PQpipelineSync(c))
			break;
	}
	if (sent > 0 && PQflush(c) != 0)
		lost = 1;
	statements_sent += (unsigned long long)sent;
	round_trips++;
	for (int i = 0; i < sent && !lost; i++) {
		int named = 1;	/* its Prepare (if any) succeeded */

		for (int prep = prepared[i]; prep >= 0 && !lost; prep--) {
			PGresult *r = PQgetResult(c), *end;
			ExecStatusType st = PQresultStatus(r);
			const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
			int err;

			if (!r || PQstatus(c) == CONNECTION_BAD) {
				lost = 1;
			} else if (prep) {
				/* one that failed leaves its statement unanswered */
				named = st == PGRES_COMMAND_OK;
				if (named)
					prep_add(c, s[i].sql, XXH3_64bits(s[i].sql, strlen(s[i].sql)), name[i]);
			} else if (!named) {
				;
			} else if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
				s[i].rc = 0;
			} else if (st == PGRES_FATAL_ERROR) {
				err = pg_sqlstate_to_errno(state);
				/* a conflict is run again on its own (meta_call
				 * retries it), and so are "cached plan must not
				 * change result type" (exec_sql runs its text) and
				 * a name an earlier Prepare of this pipeline failed
				 * to make */
				if (err != EAGAIN && !(state && (strcmp(state, "0A000") == 0 ||
								 strcmp(state, "26000") == 0))) {
					char *msg = strdup(PQresultErrorMessage(r)), *nl;

					if (msg && (nl = strchr(msg, '\n')))
						*nl = '\0';
					log_refusal(s[i].what, state, msg, err);
					free(msg);
					s[i].rc = -err;
				}
			}
			PQclear(r);
			/* the end of the statement's results, then its Sync */
			if (!lost && (end = PQgetResult(c)) != NULL) {
				PQclear(end);
				lost = 1;
			}
			if (!lost) {
				end = PQgetResult(c);
				lost = PQresultStatus(end) != PGRES_PIPELINE_SYNC;
				PQclear(end);
			}
		}
	}
	free(name);
	free(prepared);
	if (!lost && sent == n && PQexitPipelineMode(c))
		return 0;
	log_warn("database: connection lost running %d statements in one round trip ('%s' first): %s", n,
		 s[0].what, PQerrorMessage(c));
	return -EIO;
}

int meta_pipeline(struct meta *m, PGconn *c, struct meta_stmt *s, int n)
{
	int rc = 0;

	for (int i = 0; i < n; i++)
		s[i].rc = META_UNANSWERED;
	for (int i = 0; i < n && rc == 0; i += META_PIPELINE_MAX)
		rc = pipeline_run(c, s + i, n - i < META_PIPELINE_MAX ? n - i : META_PIPELINE_MAX);
	/* a connection that broke mid-way may be left in pipeline mode with
	 * answers unread: made anew, so that the next borrower finds it as
	 * any other */
	if (rc == -EIO && PQstatus(c) == CONNECTION_OK && PQpipelineStatus(c) != PQ_PIPELINE_OFF &&
	    meta_conn_reset(m, c) != 0)
		log_warn("database: cannot re-establish a connection: %s", PQerrorMessage(c));
	return rc;
}

int meta_tx_begin(PGconn *c)
{
	return meta_exec(c, "begin", "BEGIN", 0, NULL, NULL);
}

int meta_tx_end(PGconn *c, int rc)
{
	if (rc == 0)
		return meta_exec(c, "commit", "COMMIT", 0, NULL, NULL);
	/* a lost connection has lost its transaction with it */
	if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
		meta_exec(c, "rollback", "ROLLBACK", 0, NULL, NULL);
	return rc;
}

#define RETRY_ATTEMPTS 6

int meta_retry_pause(int rc, int attempt)
{
	struct timespec ts;

	if (rc != -EAGAIN)
		return 0;
	if (attempt + 1 >= RETRY_ATTEMPTS) {
		log_error("database: a change kept conflicting with other changes; giving up after %d tries",
			  RETRY_ATTEMPTS);
		return 0;
	}
	ts.tv_sec = 0;
	ts.tv_nsec = (long)(1 + rand() % (5 << (attempt + 1))) * 1000000L;
	nanosleep(&ts, NULL);
	return 1;
}

long long meta_retry_start(void)
{
	return meta_mono_ms();
}

int meta_retry(struct meta *m, int rc, int attempt, long long started)
{
	if (rc == -EIO && lost_kind == META_LOST_UNSENT && !borrow_changed) {
		/* it did not take effect: run it again on a connection that
		 * meta_conn_get re-establishes (waiting for it), while the
		 * operation has not waited db_timeout */
		lost_kind = 0;
		return !m->stopping && meta_mono_ms() - started < m->db_timeout * 1000LL;
	}
	return meta_retry_pause(rc, attempt);
}

static int call(struct meta *m, const char *what, const char *sql, int nparams, const char *const *params,
		PGresult **res, int idempotent)
{
	long long started = meta_mono_ms();

	/* One statement, its own transaction: a serialization failure or a
	 * deadlock is run again (bounded, with jitter) before an errno
	 * reaches the caller, and so is one that a lost connection kept
	 * from taking effect. */
	for (int attempt = 0;; attempt++) {
		PGconn *c = meta_conn_get(m);
		int rc;

		if (!c)
			return -EIO;
		rc = meta_exec(c, what, sql, nparams, params, res);
		meta_conn_put(m, c);
		if (idempotent && rc == -EIO && lost_kind == META_LOST_UNKNOWN) {
			log_warn("database: '%s' is idempotent: running it again", what);
			lost_kind = META_LOST_UNSENT;
		}
		if (!meta_retry(m, rc, attempt, started))
			return rc;
	}
}

int meta_call(struct meta *m, const char *what, const char *sql, int nparams, const char *const *params,
	      PGresult **res)
{
	return call(m, what, sql, nparams, params, res, 0);
}

int meta_call_idempotent(struct meta *m, const char *what, const char *sql, int nparams,
			 const char *const *params, PGresult **res)
{
	return call(m, what, sql, nparams, params, res, 1);
}

int meta_query_bool(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params)
{
	PGresult *r;
	int rc = meta_exec(c, what, sql, nparams, params, &r);

	if (rc)
		return rc;
	rc = PQntuples(r) > 0 && strcmp(meta_val(r, 0, 0), "t") == 0;
	PQclear(r);
	return rc;
}

/* Makes C act for the pool's user: it works as mvault_app, a role that
 * row-level security applies to (when the connected role may become it),
 * and names the user in mvault.user_id, which the policies read. */
static int conn_setup(struct meta *m, PGconn *c)
{
	const char *p[] = { m->user_id };
	int rc;

	rc = meta_exec(c, "become mvault_app",
		       "DO $$ BEGIN"
		       "  IF current_user <> 'mvault_app' AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app')"
		       "     AND pg_has_role('mvault_app', 'MEMBER') THEN SET ROLE mvault_app; END IF;"
		       " END $$", 0, NULL, NULL);
	if (rc == 0)
		rc = meta_exec(c, "set user", "SELECT set_config('mvault.user_id', $1, false)", 1, p, NULL);
	if (rc == 0) {
		/* which server processes are this pool's (meta_own_backend) */
		pthread_mutex_lock(&m->lock);
		for (int i = 0; i < m->nconns; i++)
			if (m->conns[i] == c)
				m->pids[i] = PQbackendPID(c);
		pthread_mutex_unlock(&m->lock);
	}
	return rc;
}

/* Notices ("already exists, skipping") are not worth a line; what libpq
 * hands here as a notice when it reads it on an idle connection -- the
 * server's FATAL before it closes one -- is. */
static void notice_receive(void *arg, const PGresult *r)
{
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) {
		fatal_seen = 1;
		log_warn("database: the server closed an idle connection: %s (sqlstate %s)",
			 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), state ? state : "none");
	}
}

/* DB_TIMEOUT: meta_connect's (0 for a one-off command, which adds none). */
static PGconn *conn_open(const char *conninfo, int db_timeout, char *err, size_t errlen)
{
	PGconn *c = meta_connect(conninfo, db_timeout);

	if (PQstatus(c) != CONNECTION_OK) {
		if (err) {
			char *msg = strdup(PQerrorMessage(c)), *nl;

			if (msg && (nl = strchr(msg, '\n')))
				*nl = '\0';
			snprintf(err, errlen, "cannot connect to database '%s' at %s%s%s: %s",
				 PQdb(c) ? PQdb(c) : "?", PQhost(c) ? PQhost(c) : "?",
				 PQport(c) && *PQport(c) ? ":" : "", PQport(c) ? PQport(c) : "",
				 msg ? msg : "out of memory");
			free(msg);
		}
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeReceiver(c, notice_receive, NULL);
	return c;
}

int meta_conn_reset(struct meta *m, PGconn *c)
{
	meta_conn_forget(c);
	PQreset(c);
	return PQstatus(c) == CONNECTION_OK && conn_setup(m, c) == 0 ? 0 : -EIO;
}

PGconn *meta_conn_open(struct meta *m, char *err, size_t errlen)
{
	PGconn *c = conn_open(m->conninfo, m->db_timeout, err, errlen);

	if (c && conn_setup(m, c) != 0) {
		snprintf(err, errlen, "cannot make a new connection act for user '%s' (see the log)", m->user_name);
		PQfinish(c);
		return NULL;
	}
	return c;
}

int meta_own_backend(struct meta *m, int pid)
{
	int own = 0;

	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < m->nconns && !own; i++)
		own = m->pids[i] == pid;
	pthread_mutex_unlock(&m->lock);
	return own;
}

/* Re-establishes C, waiting for the database with a growing pause while
 * db_timeout allows; 0, or -EIO after one line saying why. */
static int conn_revive(struct meta *m, PGconn *c)
{
	long long start = meta_mono_ms(), zero = 0;
	int pause_ms = 50, waiting = 0, rc = 0;

	for (;;) {
		char *msg, *nl;

		if (meta_conn_reset(m, c) == 0)
			break;
		msg = strdup(PQerrorMessage(c));
		if (msg && (nl = strchr(msg, '\n')))
			*nl = '\0';
		if (m->stopping) {
			log_warn("database: unreachable at shutdown; not waiting for it: %s", msg ? msg : "out of memory");
			free(msg);
			rc = -EIO;
			break;
		}
		if (meta_mono_ms() - start >= m->db_timeout * 1000LL) {
			log_error("database: unreachable for %d s (db_timeout); giving up: %s", m->db_timeout,
				  msg ? msg : "out of memory");
			free(msg);
			rc = -EIO;
			break;
		}
		if (!waiting++) {
			db_waiting++;
			if (atomic_compare_exchange_strong(&db_down_since, &zero, meta_mono_ms()))
				log_warn("database: unreachable (%s); operations wait for it up to %d s (db_timeout)",
					 msg ? msg : "out of memory", m->db_timeout);
		}
		free(msg);
		{
			/* no later than db_timeout: the last try comes at it */
			long long left = start + m->db_timeout * 1000LL - meta_mono_ms(), ms = pause_ms < left ? pause_ms : left;
			struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

			if (ms > 0)
				nanosleep(&ts, NULL);
		}
		pause_ms = pause_ms < 1000 ? pause_ms * 2 : 1000;
	}
	if (waiting)
		db_waiting--;
	if (rc == 0) {
		db_down_since = 0;
		log_warn("database: connection re-established");
	}
	return rc;
}

void meta_stop_waiting(struct meta *m)
{
	if (m)
		m->stopping = 1;
}

PGconn *meta_conn_get(struct meta *m)
{
	PGconn *c = NULL;
	int i;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		for (i = 0; i < m->nconns; i++)
			if (!m->busy[i])
				break;
		if (i < m->nconns)
			break;
		pthread_cond_wait(&m->freed, &m->lock);
	}
	m->busy[i] = 1;
	c = m->conns[i];
	pthread_mutex_unlock(&m->lock);

	if (PQstatus(c) != CONNECTION_OK && conn_revive(m, c) != 0) {
		meta_conn_put(m, c);
		return NULL;
	}
	/* a new borrow: what the last one did no longer counts */
	lost_kind = 0;
	borrow_changed = 0;
	return c;
}

void meta_conn_put(struct meta *m, PGconn *c)
{
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < m->nconns; i++)
		if (m->conns[i] == c)
			m->busy[i] = 0;
	pthread_cond_signal(&m->freed);
	pthread_mutex_unlock(&m->lock);
}

static int user_ensure(struct meta *m, PGconn *c, const char *name);

/* Who M acts for.  A user's login role acts for its user and nobody else;
 * a trusted role (a superuser or the owner side) for the user asked for,
 * made if missing; any other role for nobody (DECISIONS.md, "Who a
 * connection acts for"). */
static int user_find(struct meta *m, PGconn *c, const struct meta_config *cfg, char *err, size_t errlen)
{
	PGresult *r;
	int rc, trusted;

	rc = meta_exec(c, "who am I", "SELECT user_id, user_name, trusted, session_user FROM mvault_whoami()",
		       0, NULL, &r);
	if (rc) {
		snprintf(err, errlen, "cannot tell whom this database role acts for: %s", strerror(-rc));
		return rc;
	}
	trusted = strcmp(meta_val(r, 0, 2), "t") == 0;
	if (!PQgetisnull(r, 0, 0)) {
		snprintf(m->user_id, sizeof(m->user_id), "%s", meta_val(r, 0, 0));
		snprintf(m->user_name, sizeof(m->user_name), "%s", meta_val(r, 0, 1));
		if (cfg->user_given && strcmp(cfg->user_name, m->user_name) != 0) {
			snprintf(err, errlen, "database role '%s' acts for user '%s' only, not '%s'",
				 meta_val(r, 0, 3), m->user_name, cfg->user_name);
			rc = -EACCES;
		}
	} else if (!trusted) {
		snprintf(err, errlen, "database role '%s' acts for no mvaultfs user: the database's owner adds"
			 " one with `mvaultfs user add NAME`", meta_val(r, 0, 3));
		rc = -EACCES;
	} else if ((rc = user_ensure(m, c, cfg->user_name)) != 0) {
		snprintf(err, errlen, "cannot find or create user '%s': %s", cfg->user_name, strerror(-rc));
	} else {
		snprintf(m->user_name, sizeof(m->user_name), "%s", cfg->user_name);
	}
	PQclear(r);
	return rc;
}

const char *meta_user_name(const struct meta *m)
{
	return m->user_name;
}

static int user_ensure(struct meta *m, PGconn *c, const char *name)
{
	const char *p[] = { name };
	PGresult *r;
	int rc;

	rc = meta_exec(c, "find or create user", "SELECT mvault_user_ensure($1)", 1, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return -ENOENT;
	}
	snprintf(m->user_id, sizeof(m->user_id), "%s", meta_val(r, 0, 0));
	PQclear(r);
	return 0;
}

/* The database inode numbers of the user's library/ and workspace/ (made
 * on first use), and the user's store key prefix: NULL (the shared keys of
 * a user made before 0015) or "u/<id>/", nothing else (the trigger of
 * 0015 keeps users from choosing theirs; refusing anything else here means
 * a prefix someone did set cannot point this mount at another user's
 * objects). */
static int tops_load(struct meta *m, PGconn *c)
{
	const char *p[] = { m->user_id };
	PGresult *r;
	int rc;

	/* made in one statement, read in the next (whose snapshot sees them) */
	rc = meta_exec(c, "make top folders",
		       "SELECT mvault_top_folder($1, 'library'), mvault_top_folder($1, 'workspace')", 1, p, NULL);
	if (rc == 0)
		rc = meta_exec(c, "top folders",
			       "SELECT (SELECT ino FROM folders WHERE user_id = $1 AND place = 'library'"
			       "        AND parent_id IS NULL),"
			       " (SELECT ino FROM folders WHERE user_id = $1 AND place = 'workspace'"
			       "  AND parent_id IS NULL),"
			       " (SELECT coalesce(key_prefix, '') FROM users WHERE id = $1)", 1, p, &r);
	if (rc)
		return rc;
	m->top_ino[0] = meta_u64(r, 0, 0);
	m->top_ino[1] = meta_u64(r, 0, 1);
	snprintf(m->key_prefix, sizeof(m->key_prefix), "u/%s/", m->user_id);
	if (!*meta_val(r, 0, 2)) {
		m->key_prefix[0] = '\0';
	} else if (strcmp(meta_val(r, 0, 2), m->key_prefix) != 0) {
		log_error("user %s has store key prefix '%s', not its own ('%s')", m->user_id, meta_val(r, 0, 2),
			  m->key_prefix);
		PQclear(r);
		return -EPERM;
	}
	PQclear(r);
	return m->top_ino[0] && m->top_ino[1] ? 0 : -ENOENT;
}

const char *meta_key_prefix(const struct meta *m)
{
	return m->key_prefix;
}

struct meta *meta_open(const struct meta_config *cfg, char *err, size_t errlen)
{
	struct meta *m = calloc(1, sizeof(*m));
	int n = cfg->pool_size > 0 ? cfg->pool_size : META_POOL_DEFAULT;
	int rc;

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->freed, NULL);
	m->trash_days = cfg->trash_days > 0 ? cfg->trash_days : 30;
	m->db_timeout = cfg->db_timeout > 0 ? cfg->db_timeout : 60;
	m->version_min_age = cfg->version_min_age > 0 ? cfg->version_min_age : cfg->version_min_age < 0 ? 0 : 300;
	m->conninfo = strdup(cfg->conninfo);
	m->conns = calloc((size_t)n, sizeof(*m->conns));
	m->busy = calloc((size_t)n, sizeof(*m->busy));
	m->pids = calloc((size_t)n, sizeof(*m->pids));
	if (!m->conninfo || !m->conns || !m->busy || !m->pids) {
		snprintf(err, errlen, "out of memory");
		meta_free(m);
		return NULL;
	}
	m->conns[0] = conn_open(cfg->conninfo, m->db_timeout, err, errlen);
	if (!m->conns[0]) {
		meta_free(m);
		return NULL;
	}
	m->nconns = 1;
	rc = meta_migrate(m->conns[0], err, errlen);
	if (rc == 0 && !cfg->for_nobody)
		rc = user_find(m, m->conns[0], cfg, err, errlen);
	if (rc == 0)
		rc = conn_setup(m, m->conns[0]);
	if (rc == 0 && !cfg->for_nobody && (rc = tops_load(m, m->conns[0])) != 0)
		snprintf(err, errlen, "cannot find the top folders of user '%s': %s", m->user_name, strerror(-rc));
	for (int i = 1; rc == 0 && i < n; i++) {
		m->conns[i] = conn_open(cfg->conninfo, m->db_timeout, err, errlen);
		if (!m->conns[i]) {
			rc = -EIO;
			break;
		}
		m->nconns++;
		rc = conn_setup(m, m->conns[i]);
	}
	if (rc) {
		meta_free(m);
		return NULL;
	}
	return m;
}

void meta_free(struct meta *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nconns; i++) {
		meta_conn_forget(m->conns[i]);
		PQfinish(m->conns[i]);
	}
	free(m->conns);
	free(m->busy);
	free(m->pids);
	free(m->conninfo);
	pthread_cond_destroy(&m->freed);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int meta_migrate_only(const char *conninfo, char *err, size_t errlen)
{
	PGconn *c = conn_open(conninfo, 0, err, errlen);
	int rc;

	if (!c)
		return -EIO;
	rc = meta_migrate(c, err, errlen);
	meta_conn_forget(c);
	PQfinish(c);
	return rc;
}

/* Appends S to OUT for a ~/.pgpass field (':' and '\\' escaped). */
static void pgpass_field(GString *out, const char *s)
{
	for (; *s; s++) {
		if (*s == ':' || *s == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *s);
	}
}

int meta_user_add(const char *conninfo, const char *name, const char *role, const char *password,
		  char *pgpass, size_t pgpass_len, char *uri, size_t uri_len, char *err, size_t errlen)
{
	PGconn *c = conn_open(conninfo, 0, err, errlen);
	const char *host, *port, *db;
	char *verifier = NULL;
	int rc;

	pgpass[0] = uri[0] = '\0';
	if (!c)
		return -EIO;
	rc = meta_migrate(c, err, errlen);
	if (rc == 0 && password) {
		verifier = PQencryptPasswordConn(c, password, role, "scram-sha-256");
		if (!verifier) {
			snprintf(err, errlen, "cannot make a password verifier: %s", PQerrorMessage(c));
			rc = -EIO;
		}
	}
	if (rc == 0 && name) {
		const char *p[] = { name, role, verifier };

		rc = meta_exec(c, "add user", "SELECT mvault_login_add($1, $2, $3)", 3, p, NULL);
		if (rc)
			snprintf(err, errlen, "cannot give user '%s' the login role '%s': %s%s", name, role,
				 strerror(-rc), rc == -EACCES ? " (run it as the database's owner role)" : "");
	} else if (rc == 0) {
		const char *p[] = { role, verifier };

		rc = meta_exec(c, "add worker role", "SELECT mvault_worker_add($1, $2)", 2, p, NULL);
		if (rc)
			snprintf(err, errlen, "cannot make '%s' a worker's role: %s%s", role, strerror(-rc),
				 rc == -EACCES ? " (run it as the database's owner role)" : "");
	}
	if (rc == 0) {
		GString *line = g_string_new(NULL);

		host = PQhost(c);
		port = PQport(c);
		db = PQdb(c);
		/* a socket directory is "localhost" to ~/.pgpass */
		pgpass_field(line, !host || !*host || host[0] == '/' ? "localhost" : host);
		g_string_append_c(line, ':');
		pgpass_field(line, port && *port ? port : "*");
		g_string_append_c(line, ':');
		pgpass_field(line, db);
		g_string_append_c(line, ':');
		pgpass_field(line, role);
		g_string_append_c(line, ':');
		if (password) {
			pgpass_field(line, password);
			snprintf(pgpass, pgpass_len, "%s", line->str);
		}
		memset(line->str, 0, line->len);
		g_string_free(line, TRUE);
		if (host && host[0] == '/')
			snprintf(uri, uri_len, "host=%s port=%s dbname=%s user=%s", host, port, db, role);
		else
			snprintf(uri, uri_len, "postgresql://%s@%s:%s/%s", role, host, port, db);
	}
	PQfreemem(verifier);
	meta_conn_forget(c);
	PQfinish(c);
	return rc;
}
