/*
 * meta_migrate.c - brings a database to the schema this binary expects.
 *
 * Migrations are embedded (meta_migrations[], from the files in src/meta/sql) and
 * recorded in schema_migrations.  A session advisory lock serialises daemons
 * that start together against one database: the second waits, then finds
 * nothing left to do.  Each migration runs in its own transaction, so a
 * failure leaves the database at the previous version.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_migrations.h"
#include "util/log.h"

/* Arbitrary but fixed: "mvaultfs" in ASCII, as the advisory lock's key. */
#define MIGRATE_LOCK_KEY "7887654972706673"

static int applied(PGconn *c, int version, int *yes)
{
	char v[16];
	const char *p[] = { v };
	PGresult *r;
	int rc;

	snprintf(v, sizeof(v), "%d", version);
	rc = meta_exec(c, "read schema version",
		       "SELECT 1 FROM schema_migrations WHERE version = $1", 1, p, &r);
	if (rc)
		return rc;
	*yes = PQntuples(r) > 0;
	PQclear(r);
	return 0;
}

static int apply(PGconn *c, const struct meta_migration *mig, char *err, size_t errlen)
{
	char v[16];
	const char *p[] = { v, mig->name };
	PGresult *r;
	int rc = meta_tx_begin(c);

	if (rc)
		return rc;
	/* Simple-query protocol: a migration is many statements. */
	r = PQexec(c, mig->sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorMessage(r);
		int n = (int)strcspn(msg, "\n");

		snprintf(err, errlen, "migration %s failed: %.*s", mig->name, n, msg);
		log_error("database: %s", err);
		rc = -pg_sqlstate_to_errno(PQresultErrorField(r, PG_DIAG_SQLSTATE));
	}
	PQclear(r);
	snprintf(v, sizeof(v), "%d", mig->version);
	if (rc == 0)
		rc = meta_exec(c, "record migration",
			       "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, p, NULL);
	rc = meta_tx_end(c, rc);
	if (rc == 0)
		log_info("database: applied migration %s", mig->name);
	return rc;
}

/* 1 when every embedded migration is recorded: a user's login role, which
 * may not create anything, then never tries to. */
static int current(PGconn *c)
{
	PGresult *r;
	int n = 0, yes;

	for (const struct meta_migration *mig = meta_migrations; mig->sql; mig++)
		n++;
	if (meta_exec(c, "find schema_migrations", "SELECT to_regclass('schema_migrations') IS NOT NULL",
		      0, NULL, &r) != 0)
		return 0;
	yes = PQntuples(r) == 1 && strcmp(meta_val(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!yes || meta_exec(c, "count migrations", "SELECT count(*) FROM schema_migrations", 0, NULL, &r) != 0)
		return 0;
	yes = PQntuples(r) == 1 && strtol(meta_val(r, 0, 0), NULL, 10) >= n;
	PQclear(r);
	return yes;
}

int meta_migrate(PGconn *c, char *err, size_t errlen)
{
	int rc, yes = 0;

	if (current(c))
		return 0;
	rc = meta_exec(c, "lock migrations", "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, NULL);
	if (rc) {
		snprintf(err, errlen, "cannot lock the schema for migration: %s", strerror(-rc));
		return rc;
	}
	rc = meta_exec(c, "create schema_migrations",
		       "CREATE TABLE IF NOT EXISTS schema_migrations ("
		       " version integer PRIMARY KEY, name text NOT NULL,"
		       " applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL, NULL);
	for (const struct meta_migration *mig = meta_migrations; rc == 0 && mig->sql; mig++) {
		rc = applied(c, mig->version, &yes);
		if (rc == 0 && !yes)
			rc = apply(c, mig, err, errlen);
	}
	if (rc == -EACCES && !*err)
		snprintf(err, errlen, "the database's schema is older than this mvaultfs and this role may not"
			 " change it: run `mvaultfs db migrate` as the database's owner role");
	else if (rc && !*err)
		snprintf(err, errlen, "cannot migrate the schema: %s", strerror(-rc));
	meta_exec(c, "unlock migrations", "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", 0, NULL, NULL);
	return rc;
}
