/*
 * meta_jobs_internal.h - what meta_jobs.c, meta_variants.c, meta_gc.c and
 * the hooks in meta_ns.c share.  Not for use outside src/meta.
 */
#ifndef MVFS_META_JOBS_INTERNAL_H
#define MVFS_META_JOBS_INTERNAL_H

#include "meta/meta_internal.h"
#include "meta/meta_jobs.h"

struct meta_jobs {
	PGconn *c;
	char *conninfo;
	char user_id[META_UUID_LEN + 1];	/* "" for every user */
	char worker_id[128];
	int trash_days;
	int down;		/* a reconnect failed: said once, until it works again */
};

/* The connection, reconnected (role, user, LISTEN) when it was lost; NULL
 * when the database cannot be reached. */
PGconn *meta_jobs_conn(struct meta_jobs *q);

/* A job step's start: Q's connection with a transaction begun, acting
 * for J's user, *RC its outcome (end it with meta_tx_end whatever *RC
 * is); NULL with *RC -EIO when Q has no connection (nothing to end). */
PGconn *meta_jobs_tx_begin(struct meta_jobs *q, const struct meta_job *j, int *rc);
/* Completes J inside the caller's transaction. */
int meta_jobs_complete_on(struct meta_jobs *q, PGconn *c, const struct meta_job *j, const char *note);

/* meta_jobs_fail inside the caller's transaction. */
int meta_jobs_fail_on(struct meta_jobs *q, PGconn *c, const struct meta_job *j, const char *error,
		      int permanent);

/* meta_ns.c: the commit path's blob reference (dedup: ref_count up, or a new
 * blob row; a blob brought back from zero has its pending deletion
 * cancelled), and the unlink path's tombstone of a whole file. */
int meta_ns_blob_ref(PGconn *c, const struct meta_content *ct, char blob_id[META_UUID_LEN + 1]);
int meta_ns_tombstone(PGconn *c, const char *user_id, const char *asset_id, const char *memory_id);

#endif
