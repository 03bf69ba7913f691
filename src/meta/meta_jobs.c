/*
 * meta_jobs.c - the background job queue: connections, enqueue, sweep,
 * claim, complete, fail, and waiting for work.
 *
 * Each worker thread owns one connection (a job step is a short
 * transaction; images are decoded between them, with no transaction
 * open).  The connection LISTENs on mvault_jobs: an enqueue (the commit of
 * an image, a sweep that found work) wakes idle workers at once instead of
 * at their next poll.
 *
 * DESIGN: the claim is one statement, a SKIP LOCKED pick of the oldest due
 * job and its update to 'processing' with locked_at/locked_by, so two
 * workers never take one job and none waits for another.  Nothing holds a
 * transaction across a job: while it works, the worker's process beats
 * (meta_jobs_beat moves locked_at of the jobs it holds), and a worker that
 * dies stops beating, leaving its job 'processing' with an old locked_at;
 * the sweep gives it back after the job's visibility_timeout of silence,
 * counting the attempt (a job that kills its workers ends 'failed').  So a
 * slow job is never taken from a live worker, however long it runs.
 * Completing or failing checks locked_by, so a worker that was presumed
 * dead (cut off from the database past the timeout) cannot overwrite the
 * outcome of the one that took over.
 */
#include "meta/meta_jobs_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

double meta_jobs_backoff(int retry_count)
{
	double s = 30;

	if (retry_count < 1)
		return 0;
	for (int i = 1; i < retry_count && s < 3600; i++)
		s *= 2;
	return s > 3600 ? 3600 : s;
}

static void notice_ignore(void *arg, const char *message)
{
}

/* Works as mvault_app where it may, acts for the queue's user (if any),
 * and listens for wake-ups. */
static int conn_setup(struct meta_jobs *q, PGconn *c)
{
	const char *p[] = { q->user_id };
	int rc;

	rc = meta_exec(c, "become mvault_app",
		       "DO $$ BEGIN"
		       "  IF current_user <> 'mvault_app' AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app')"
		       "     AND pg_has_role('mvault_app', 'MEMBER') THEN SET ROLE mvault_app; END IF;"
		       " END $$", 0, NULL, NULL);
	if (rc == 0)
		rc = meta_exec(c, "set user", "SELECT set_config('mvault.user_id', $1, false)", 1, p, NULL);
	if (rc == 0)
		rc = meta_exec(c, "listen for jobs", "LISTEN mvault_jobs", 0, NULL, NULL);
	return rc;
}

PGconn *meta_jobs_conn(struct meta_jobs *q)
{
	if (PQstatus(q->c) == CONNECTION_OK)
		return q->c;
	meta_conn_forget(q->c);
	PQreset(q->c);
	if (PQstatus(q->c) != CONNECTION_OK || conn_setup(q, q->c) != 0) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(q->c));
		msg[strcspn(msg, "\n")] = '\0';
		/* the job threads try again every second: one line per outage */
		if (!q->down++)
			log_error("jobs: database connection lost and not re-established: %s", msg);
		return NULL;
	}
	log_warn("jobs: database connection re-established%s", q->down ? " after an outage" : "");
	q->down = 0;
	return q->c;
}

struct meta_jobs *meta_jobs_open(const struct meta_jobs_config *cfg, char *err, size_t errlen)
{
	struct meta_jobs *q = calloc(1, sizeof(*q));

	if (!q || !(q->conninfo = strdup(cfg->conninfo))) {
		snprintf(err, errlen, "out of memory");
		free(q);
		return NULL;
	}
	snprintf(q->user_id, sizeof(q->user_id), "%s", cfg->user_id ? cfg->user_id : "");
	snprintf(q->worker_id, sizeof(q->worker_id), "%s", cfg->worker_id ? cfg->worker_id : "worker");
	q->trash_days = cfg->trash_days > 0 ? cfg->trash_days : 30;
	q->c = meta_connect(cfg->conninfo, cfg->db_timeout > 0 ? cfg->db_timeout : 60);
	if (PQstatus(q->c) != CONNECTION_OK) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(q->c));
		msg[strcspn(msg, "\n")] = '\0';
		snprintf(err, errlen, "cannot connect to database '%s' for the job queue: %s",
			 PQdb(q->c) ? PQdb(q->c) : "?", msg);
		meta_jobs_free(q);
		return NULL;
	}
	PQsetNoticeProcessor(q->c, notice_ignore, NULL);
	if (conn_setup(q, q->c) != 0) {
		snprintf(err, errlen, "cannot set up the job queue connection (see the log)");
		meta_jobs_free(q);
		return NULL;
	}
	return q;
}

struct meta_jobs *meta_jobs_open_for(struct meta *m, const char *worker_id, char *err, size_t errlen)
{
	struct meta_jobs_config cfg = {
		.conninfo = m->conninfo, .user_id = m->user_id, .trash_days = m->trash_days,
		.worker_id = worker_id, .db_timeout = m->db_timeout,
	};

	return meta_jobs_open(&cfg, err, errlen);
}

void meta_jobs_free(struct meta_jobs *q)
{
	if (!q)
		return;
	if (q->c) {
		meta_conn_forget(q->c);
		PQfinish(q->c);
	}
	free(q->conninfo);
	free(q);
}

static enum meta_job_type type_of(const char *s)
{
	static const struct { const char *name; enum meta_job_type type; } map[] = {
		{ "process_assets", META_JOB_PROCESS_ASSETS },
		{ "asset_delete", META_JOB_ASSET_DELETE },
		{ "cleanup_pending", META_JOB_CLEANUP_PENDING },
		{ "workspace_expiry", META_JOB_WORKSPACE_EXPIRY },
		{ "content_hash_compute", META_JOB_CONTENT_HASH },
		{ "store_copy", META_JOB_STORE_COPY },
		{ "store_drop", META_JOB_STORE_DROP },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(s, map[i].name) == 0)
			return map[i].type;
	return META_JOB_UNKNOWN;
}

int meta_jobs_enqueue(struct meta_jobs *q, const char *type, const char *payload, const char *user_id)
{
	const char *p[] = { type, payload, user_id && *user_id ? user_id : NULL };
	PGconn *c = meta_jobs_conn(q);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	rc = meta_exec(c, "enqueue job", "SELECT mvault_job_enqueue($1, $2::jsonb, $3::uuid)", 3, p, &r);
	if (rc)
		return rc;
	rc = strcmp(meta_val(r, 0, 0), "t") == 0;
	PQclear(r);
	return rc;
}

int meta_jobs_sweep(struct meta_jobs *q, int *made)
{
	char days[16];
	const char *p[] = { days };
	PGconn *c = meta_jobs_conn(q);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	snprintf(days, sizeof(days), "%d", q->trash_days);
	rc = meta_exec(c, "sweep jobs", "SELECT mvault_jobs_sweep($1)", 1, p, &r);
	if (rc)
		return rc;
	if (made)
		*made = (int)strtol(meta_val(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

/* The claim, of the jobs of the users WHO says ($1). */
#define CLAIM_SQL(who) \
	"WITH pick AS (SELECT id FROM background_jobs" \
	"   WHERE status IN ('pending', 'retry') AND run_at <= mvault_now() AND " who \
	"   ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED)" \
	" UPDATE background_jobs j SET status = 'processing', locked_at = mvault_now()," \
	"   locked_by = $2, started_at = mvault_now()," \
	"   visibility_timeout = coalesce($3::integer, j.visibility_timeout)," \
	"   user_id = coalesce(j.user_id, mvault_job_owner(j.payload))" \
	" FROM pick WHERE j.id = pick.id" \
	" RETURNING j.id, j.type, coalesce(j.user_id::text, '')," \
	"   coalesce(j.payload->>'originalAssetId', j.payload->>'deleteJobId'," \
	"            j.payload->>'memoryId', j.payload->>'assetId', '')," \
	"   coalesce(j.payload->>'recipeVersion', ''), j.retry_count, j.max_retries," \
	"   coalesce(j.visibility_timeout, 300), coalesce(j.payload->>'backend', '')," \
	"   coalesce(j.payload->>'sha256', '')"

int meta_jobs_claim(struct meta_jobs *q, int visibility_timeout, struct meta_job *out)
{
	char vt[16];
	const char *p[] = { q->user_id[0] ? q->user_id : NULL, q->worker_id, visibility_timeout > 0 ? vt : NULL };
	PGconn *c = meta_jobs_conn(q);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	snprintf(vt, sizeof(vt), "%d", visibility_timeout);
	/* Two texts, not ($1 IS NULL OR user_id = $1): the claim is prepared,
	 * and the generic plan PostgreSQL may keep after five runs cannot
	 * decide the OR, so a mount's claim walked every user's due jobs
	 * (background_jobs_due_idx) until it found one of its own: at 1/100
	 * scale, all 4,000 for a user with none (docs/SCALE.md, finding 2).
	 * A mount's own text uses background_jobs_user_due_idx in any plan
	 * (and is what Citus can route to one shard). */
	if (q->user_id[0])
		rc = meta_exec(c, "claim job", CLAIM_SQL("user_id = $1::uuid"), 3, p, &r);
	else
		rc = meta_exec(c, "claim job", CLAIM_SQL("($1::uuid IS NULL OR user_id = $1::uuid)"), 3, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", meta_val(r, 0, 0));
	snprintf(out->type_name, sizeof(out->type_name), "%s", meta_val(r, 0, 1));
	out->type = type_of(out->type_name);
	snprintf(out->user_id, sizeof(out->user_id), "%s", meta_val(r, 0, 2));
	/* a subject that is not a uuid names nothing */
	if (strlen(meta_val(r, 0, 3)) == META_UUID_LEN)
		snprintf(out->subject, sizeof(out->subject), "%s", meta_val(r, 0, 3));
	snprintf(out->recipe, sizeof(out->recipe), "%s", meta_val(r, 0, 4));
	out->retry_count = (int)strtol(meta_val(r, 0, 5), NULL, 10);
	out->max_retries = (int)strtol(meta_val(r, 0, 6), NULL, 10);
	out->visibility_timeout = (int)strtol(meta_val(r, 0, 7), NULL, 10);
	snprintf(out->backend, sizeof(out->backend), "%s", meta_val(r, 0, 8));
	snprintf(out->sha256, sizeof(out->sha256), "%s", meta_val(r, 0, 9));
	PQclear(r);
	return 1;
}

/* Drops the notifications already received; 1 when there was one. */
static int drain(PGconn *c);

int meta_jobs_beat(struct meta_jobs *q, const char *prefix)
{
	const char *p[] = { prefix };
	PGconn *c = meta_jobs_conn(q);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	/* this connection LISTENs like every queue connection but never
	 * waits: what it was told is dropped here */
	if (PQconsumeInput(c))
		drain(c);
	rc = meta_exec(c, "beat", "UPDATE background_jobs SET locked_at = mvault_now()"
		       " WHERE status = 'processing' AND starts_with(locked_by, $1)", 1, p, &r);
	if (rc)
		return rc;
	rc = (int)strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return rc;
}

PGconn *meta_jobs_tx_begin(struct meta_jobs *q, const struct meta_job *j, int *rc)
{
	const char *p[] = { j->user_id };
	PGconn *c = meta_jobs_conn(q);

	if (!c) {
		*rc = -EIO;
		return NULL;
	}
	*rc = meta_tx_begin(c);
	if (*rc == 0)
		*rc = meta_exec(c, "act for the job's user", "SELECT set_config('mvault.user_id', $1, true)",
				1, p, NULL);
	return c;
}

int meta_jobs_complete_on(struct meta_jobs *q, PGconn *c, const struct meta_job *j, const char *note)
{
	const char *p[] = { j->id, q->worker_id, note };
	PGresult *r;
	int rc;

	rc = meta_exec(c, "complete job",
		       "UPDATE background_jobs SET status = 'completed', completed_at = mvault_now(),"
		       " locked_at = NULL, locked_by = NULL, error = $3"
		       " WHERE id = $1 AND locked_by = $2 AND status = 'processing' RETURNING 1", 3, p, &r);
	if (rc)
		return rc;
	/* Presumed dead and taken over: the work done stands (every step is
	 * idempotent), the other worker's outcome is the job's. */
	if (PQntuples(r) == 0)
		log_warn("jobs: %s job %s was taken over by another worker before it completed here",
			 j->type_name, j->id);
	PQclear(r);
	return 0;
}

int meta_jobs_complete(struct meta_jobs *q, const struct meta_job *j, const char *note)
{
	PGconn *c = meta_jobs_conn(q);

	if (!c)
		return -EIO;
	return meta_jobs_complete_on(q, c, j, note);
}

int meta_jobs_fail_on(struct meta_jobs *q, PGconn *c, const struct meta_job *j, const char *error,
		      int permanent)
{
	char delay[32];
	const char *p[] = { j->id, q->worker_id, error, permanent ? "t" : "f", delay };
	PGresult *r;
	int rc;

	snprintf(delay, sizeof(delay), "%.0f", meta_jobs_backoff(j->retry_count + 1));
	rc = meta_exec(c, "fail job",
		       "UPDATE background_jobs SET retry_count = retry_count + 1,"
		       " status = CASE WHEN $4::boolean OR retry_count + 1 > max_retries THEN 'failed' ELSE 'retry' END,"
		       " completed_at = CASE WHEN $4::boolean OR retry_count + 1 > max_retries THEN mvault_now() END,"
		       " run_at = mvault_now() + make_interval(secs => $5::double precision),"
		       " error = $3, locked_at = NULL, locked_by = NULL"
		       " WHERE id = $1 AND locked_by = $2 AND status = 'processing' RETURNING status",
		       5, p, &r);
	if (rc)
		return rc;
	rc = PQntuples(r) > 0 && strcmp(meta_val(r, 0, 0), "failed") == 0;
	PQclear(r);
	return rc;
}

int meta_jobs_fail(struct meta_jobs *q, const struct meta_job *j, const char *error, int permanent)
{
	PGconn *c = meta_jobs_conn(q);

	if (!c)
		return -EIO;
	return meta_jobs_fail_on(q, c, j, error, permanent);
}

int meta_jobs_release(struct meta_jobs *q, const struct meta_job *j)
{
	const char *p[] = { j->id, q->worker_id };
	PGconn *c = meta_jobs_conn(q);

	if (!c)
		return -EIO;
	return meta_exec(c, "release job",
			 "UPDATE background_jobs SET status = CASE WHEN retry_count > 0 THEN 'retry' ELSE 'pending' END,"
			 " run_at = mvault_now(), locked_at = NULL, locked_by = NULL"
			 " WHERE id = $1 AND locked_by = $2 AND status = 'processing'", 2, p, NULL);
}

/* Drops the notifications already received; 1 when there was one. */
static int drain(PGconn *c)
{
	PGnotify *n;
	int any = 0;

	while ((n = PQnotifies(c)) != NULL) {
		any = 1;
		PQfreemem(n);
	}
	return any;
}

int meta_jobs_wait(struct meta_jobs *q, int timeout_ms, int wake_fd)
{
	PGconn *c = meta_jobs_conn(q);
	struct pollfd fds[2];
	int n = 0, rc;

	if (!c) {
		/* the database is away: wait here (a wake-up still ends it),
		 * not in a loop of reconnects */
		struct pollfd w = { .fd = wake_fd, .events = POLLIN };

		poll(&w, wake_fd >= 0 ? 1 : 0, timeout_ms);
		return -EIO;
	}
	if (PQconsumeInput(c) && drain(c))
		return 1;
	fds[n++] = (struct pollfd){ .fd = PQsocket(c), .events = POLLIN };
	if (wake_fd >= 0)
		fds[n++] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
	rc = poll(fds, (nfds_t)n, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc == 0)
		return 0;
	if (n > 1 && fds[1].revents)
		return 1;
	if (!PQconsumeInput(c))
		return -EIO;	/* the next call reconnects */
	return drain(c);
}
