/*
 * meta_exec.c - the statement path: every statement of src/meta goes
 * through meta_exec (or meta_tx_begin/meta_tx_end and meta_call, which
 * call it) on a connection borrowed from the pool (meta_pool.c).
 *
 * meta_exec maps errors with the one mapper (pg_sqlstate_to_errno), logs
 * the failing statement by name, counts what is sent, and prepares the
 * statements the daemon repeats, once per connection.  A statement that
 * fails with its connection is told apart (META_LOST_*): one that provably
 * took no effect (a read, one inside a transaction that is lost with it,
 * one the server refused before running it) is run again by meta_retry on
 * the re-established connection; one of unknown outcome only when the
 * caller says it is idempotent (meta_call_idempotent).  Serialization
 * failures and deadlocks are retried with jitter.
 */
#include "meta/meta_internal.h"

#include <errno.h>
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

/* Statements that may change rows (not read_only): sent, and answered or
 * lost.  Counted around each, so that a copy of rows read while none was
 * under way is known to be current as long as no other starts
 * (meta_changes). */
static _Atomic unsigned long long changes_begun, changes_ended;

unsigned long long meta_changes(int *under_way)
{
	unsigned long long ended = changes_ended, begun = changes_begun;

	if (under_way)
		*under_way = begun != ended;
	return begun;
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

void meta_exec_borrowed(void)
{
	/* a new borrow: what the last one did no longer counts */
	lost_kind = 0;
	borrow_changed = 0;
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

/* Set by meta_notice_receive when the server's FATAL about closing a
 * connection of this thread was read. */
static __thread int fatal_seen;

/* Notices ("already exists, skipping") are not worth a line; what libpq
 * hands here as a notice when it reads it on an idle connection -- the
 * server's FATAL before it closes one -- is. */
void meta_notice_receive(void *arg, const PGresult *r)
{
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) {
		fatal_seen = 1;
		log_warn("database: the server closed an idle connection: %s (sqlstate %s)",
			 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), state ? state : "none");
	}
}

/* Whether C is still there before anything is sent on it: an idle
 * connection has nothing to read, so input means the server has said
 * something on its own.  Parsed (PQisBusy), a FATAL before it closed (a
 * shutdown: 57P01) reaches meta_notice_receive; libpq 15 keeps such a
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
	int err, ok_first = 0, changing;

	if (!conn_alive(c)) {
		/* nothing sent: safe to run again on a new connection */
		lost_kind = META_LOST_UNSENT;
		log_warn("database: connection lost before '%s' was sent", what);
		return -EIO;
	}
	changing = !read_only(sql);
	if (changing)
		changes_begun++;
	r = exec_sql(c, sql, nparams, params, &ok_first);
	if (changing)
		changes_ended++;
	st = PQresultStatus(r);
	statements_sent++;
	round_trips++;
	log_debug("sql: %s", what);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (before == PQTRANS_IDLE && changing && strcmp(sql, "BEGIN") != 0)
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
	changes_begun++;
	for (int i = 0; i < n && rc == 0; i += META_PIPELINE_MAX)
		rc = pipeline_run(c, s + i, n - i < META_PIPELINE_MAX ? n - i : META_PIPELINE_MAX);
	changes_ended++;
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
