/*
 * meta_pool.c - a fixed pool of libpq connections acting for one user.
 *
 * libpq connections are not thread-safe, FUSE calls come from many threads:
 * each call borrows a connection for the length of one transaction.  A
 * connection found broken is re-established before it is handed out,
 * waiting for the database up to db_timeout.  Statements go through
 * meta_exec (meta_exec.c).
 *
 * Each connection sets mvault.user_id, which the row-level security
 * policies of the schema read.  Opening the pool finds the user it acts
 * for; the one-off commands (migrate, user add with its .pgpass line) are
 * here too.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>

#include "util/log.h"

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
	PQsetNoticeReceiver(c, meta_notice_receive, NULL);
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
	meta_exec_borrowed();
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
	pthread_cond_init(&m->usage.done, NULL);
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
	meta_usage_end(m);
	for (int i = 0; i < m->nconns; i++) {
		meta_conn_forget(m->conns[i]);
		PQfinish(m->conns[i]);
	}
	free(m->conns);
	free(m->busy);
	free(m->pids);
	free(m->conninfo);
	pthread_cond_destroy(&m->usage.done);
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
