/*
 * meta_versions.c - the versions of a file's content: recorded at close
 * (staged, uploading), when their upload lands (blob referenced, completed),
 * replaced by a newer one (kept in the trash for the grace period, unless
 * it was current only briefly), and the lifecycle moves every tombstone and
 * restore goes through.
 *
 * Copy on write: a new version is a new original asset of the same memory
 * item; the item's primary_asset_id names the current one.  A replaced
 * version keeps its asset row, tombstoned, with an inode number of its own
 * (version_ino) while the trash shows it.  One that was current for less
 * than version_min_age seconds (an editor's autosave, a file written over
 * and over) is tombstoned with its grace period already over: the deletion
 * job takes its bytes at the next sweep, so saving a file 1,000 times does
 * not keep 1,000 copies for 30 days.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define u64s meta_u64s
/* --- lifecycle ----------------------------------------------------------- */

/* Brings tombstoned asset ASSET_ID back to active; BLOB_ID receives its
 * blob, "" when it has none or was not tombstoned.  (Tombstoning is the
 * server's: mvfs_tombstone_file and mvfs_retire_version, 0009.) */
int meta_restore_asset(PGconn *c, const char *asset_id, char blob_id[META_UUID_LEN + 1])
{
	const char *p[] = { asset_id };
	PGresult *r;
	int rc;

	blob_id[0] = '\0';
	rc = meta_exec(c, "restore asset",
		       "UPDATE memory_assets SET lifecycle_status = 'active', tombstoned_at = NULL"
		       " WHERE id = $1 AND lifecycle_status = 'tombstoned' RETURNING coalesce(blob_id::text, '')",
		       1, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) > 0)
		snprintf(blob_id, META_UUID_LEN + 1, "%s", meta_val(r, 0, 0));
	PQclear(r);
	return 0;
}

int meta_retire_version(struct meta *m, PGconn *c, const char *asset_id, uint64_t ino)
{
	char age_s[16], days_s[16], ino_s[24];
	const char *p[] = { asset_id, ino ? ino_s : NULL, age_s, days_s };

	snprintf(age_s, sizeof(age_s), "%d", m->version_min_age);
	snprintf(days_s, sizeof(days_s), "%d", m->trash_days);
	u64s(ino_s, sizeof(ino_s), ino);
	return meta_exec(c, "retire version", "SELECT mvfs_retire_version($1, $2, $3, $4)", 4, p, NULL);
}

/* --- staged and uploaded -------------------------------------------------- */


/* Takes a reference on the blob for CT (making it on first sight) and
 * returns its id in BLOB_ID.  A blob that had dropped to zero references
 * is live again: its pending deletion is cancelled. */
static int blob_ref(PGconn *c, const struct meta_content *ct, char blob_id[META_UUID_LEN + 1])
{
	char size_s[24];
	const char *p[] = { ct->sha256, ct->backend, ct->key, size_s, ct->mime };
	const char *q[] = { blob_id };
	PGresult *r;
	int rc;

	u64s(size_s, sizeof(size_s), ct->size);
	rc = meta_exec(c, "reference blob",
		       "INSERT INTO blobs (content_hash, storage_backend, storage_key, bytes, mime_type, ref_count)"
		       " VALUES ($1, $2, $3, $4, $5, 1)"
		       " ON CONFLICT (user_id, content_hash) DO UPDATE"
		       "   SET ref_count = blobs.ref_count + 1, last_accessed_at = now()"
		       " RETURNING id, ref_count", 5, p, &r);
	if (rc)
		return rc;
	snprintf(blob_id, META_UUID_LEN + 1, "%s", meta_val(r, 0, 0));
	if (strcmp(meta_val(r, 0, 1), "1") == 0)
		rc = meta_exec(c, "cancel blob deletion",
			       "UPDATE asset_delete_jobs SET status = 'cancelled'"
			       " WHERE blob_id = $1 AND status = 'pending'", 1, q, NULL);
	PQclear(r);
	return rc;
}

/* The arguments of mvfs_stage and mvfs_uploaded (0009), which take the same. */
struct content_args {
	char ino[24], size[24], seq[24], sec[24], nsec[16], age[16], days[16], at[24];
	const char *p[15];
};

static void content_args(struct meta *m, uint64_t ino, const struct meta_content *ct, struct content_args *a)
{
	u64s(a->ino, sizeof(a->ino), ino);
	u64s(a->size, sizeof(a->size), ct->size);
	u64s(a->seq, sizeof(a->seq), ct->seq);
	if (ct->mtime) {
		snprintf(a->sec, sizeof(a->sec), "%lld", (long long)ct->mtime->tv_sec);
		snprintf(a->nsec, sizeof(a->nsec), "%ld", ct->mtime->tv_nsec);
	}
	snprintf(a->age, sizeof(a->age), "%d", m->version_min_age);
	snprintf(a->days, sizeof(a->days), "%d", m->trash_days);
	a->p[0] = m->user_id;
	a->p[1] = a->ino;
	a->p[2] = ct->sha256;
	a->p[3] = a->size;
	a->p[4] = ct->mime;
	a->p[5] = ct->memory_type;
	a->p[6] = ct->backend;
	a->p[7] = ct->key;
	a->p[8] = ct->mtime ? a->sec : NULL;
	a->p[9] = ct->mtime ? a->nsec : NULL;
	a->p[10] = a->seq;
	a->p[11] = a->age;
	a->p[12] = a->days;
}

/* The calls of the close-time records, and their arguments. */
#define STAGE_SQL \
	"SELECT mvfs_stage($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)" \
	" FROM set_config('synchronous_commit', 'off', true) s, set_config('mvault.at_ns', $15, true) t"
#define CREATE_STAGED_SQL \
	"SELECT mvfs_create_staged($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"

struct record_args {
	struct content_args a;
	char home[24], mode[16], atime[32];
	const char *p[18];
};

static void stage_args(struct meta *m, uint64_t ino, const struct meta_content *ct, struct record_args *r)
{
	struct content_args *a = &r->a;

	content_args(m, ino, ct, a);
	/* Committed without waiting for the WAL flush: the journal entry is
	 * where the closed file is durable, and the upload record, which
	 * commits synchronously, before the entry goes, makes this record
	 * again if a crash lost it (0011_durable_records.sql). */
	a->p[13] = ct->base_sha;
	/* made after the close returned (fs_record.c): the times it sets are
	 * the close's (mvault_ns, 0022), not the record's */
	u64s(a->at, sizeof(a->at), ct->at_ns);
	a->p[14] = ct->at_ns ? a->at : "";
	memcpy(r->p, a->p, sizeof(a->p));
}

static void create_staged_args(struct meta *m, uint64_t ino, const struct meta_dir *dir, const char *name,
			       uint32_t mode, const struct timespec *made, const struct meta_content *ct,
			       struct record_args *r)
{
	struct content_args *a = &r->a;
	const char **p = r->p;

	content_args(m, ino, ct, a);
	if (!ct->mtime) {		/* a new file's mtime: when it was made */
		snprintf(a->sec, sizeof(a->sec), "%lld", (long long)made->tv_sec);
		snprintf(a->nsec, sizeof(a->nsec), "%ld", made->tv_nsec);
	}
	u64s(r->home, sizeof(r->home), meta_tree_ino(m, dir));
	snprintf(r->mode, sizeof(r->mode), "%u", mode & 07777);
	u64s(a->at, sizeof(a->at), ct->at_ns);
	p[0] = a->p[0];
	p[1] = a->p[1];
	p[2] = r->home;
	p[3] = name;
	p[4] = r->mode;
	for (int i = 2; i <= 7; i++)	/* sha, size, mime, type, backend, key */
		p[i + 3] = a->p[i];
	p[11] = a->sec;
	p[12] = a->nsec;
	p[13] = a->seq;
	p[14] = a->age;
	p[15] = a->days;
	p[16] = ct->at_ns ? a->at : NULL;
	if (ct->atime)
		snprintf(r->atime, sizeof(r->atime), "%lld",
			 (long long)ct->atime->tv_sec * 1000000000LL + ct->atime->tv_nsec);
	p[17] = ct->atime ? r->atime : NULL;
}

int meta_file_stage(struct meta *m, uint64_t ino, const struct meta_content *ct)
{
	struct record_args r;

	stage_args(m, ino, ct, &r);
	return meta_call_idempotent(m, "stage version", STAGE_SQL, 15, r.p, NULL);
}

int meta_create_staged(struct meta *m, uint64_t ino, const struct meta_dir *dir, const char *name, uint32_t mode,
		       const struct timespec *made, const struct meta_content *ct)
{
	struct record_args r;

	create_staged_args(m, ino, dir, name, mode, made, ct, &r);
	return meta_call_idempotent(m, "create file and record its first version", CREATE_STAGED_SQL, 18, r.p,
				    NULL);
}

int meta_records(struct meta *m, struct meta_record *recs, int n)
{
	struct record_args *args = calloc((size_t)n, sizeof(*args));
	struct meta_stmt *st = calloc((size_t)n, sizeof(*st));
	PGconn *c = NULL;
	int rc = -ENOMEM;

	if (args && st) {
		for (int i = 0; i < n; i++) {
			struct meta_record *x = &recs[i];

			if (x->dir) {
				create_staged_args(m, x->ino, x->dir, x->name, x->mode, x->made, x->ct, &args[i]);
				st[i] = (struct meta_stmt){ "create file and record its first version",
							    CREATE_STAGED_SQL, 18, args[i].p, META_UNANSWERED };
			} else {
				stage_args(m, x->ino, x->ct, &args[i]);
				st[i] = (struct meta_stmt){ "stage version", STAGE_SQL, 15, args[i].p,
							    META_UNANSWERED };
			}
		}
		/* one try: what it leaves unanswered is made with its own
		 * call, which waits for the database (db_timeout) */
		c = meta_conn_get(m);
		rc = c ? meta_pipeline(m, c, st, n) : -EIO;
		if (c)
			meta_conn_put(m, c);
	}
	for (int i = 0; i < n; i++)
		recs[i].rc = st ? st[i].rc : META_UNANSWERED;
	free(args);
	free(st);
	return rc;
}

int meta_create_at(struct meta *m, uint64_t ino, const struct meta_dir *dir, const char *name, uint32_t mode,
		   const struct timespec *made)
{
	char ino_s[24], home[24], mode_s[16], sec[24], nsec[16];
	const char *p[] = { m->user_id, home, "", "0", name, mode_s, sec, nsec, ino_s };

	u64s(ino_s, sizeof(ino_s), ino);
	u64s(home, sizeof(home), meta_tree_ino(m, dir));
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	snprintf(sec, sizeof(sec), "%lld", (long long)made->tv_sec);
	snprintf(nsec, sizeof(nsec), "%ld", made->tv_nsec);
	return meta_call_idempotent(m, "create file", "SELECT 1 FROM mvfs_create($1, $2, $3, $4, $5, $6, $7, $8, $9)",
				    9, p, NULL);
}

int meta_inos(struct meta *m, uint64_t *out, int n)
{
	char n_s[16];
	const char *p[] = { n_s };
	PGresult *r;
	int rc, got;

	snprintf(n_s, sizeof(n_s), "%d", n);
	if ((rc = meta_call(m, "inode numbers", "SELECT mvfs_inos($1)", 1, p, &r)) != 0)
		return rc;
	got = PQntuples(r) < n ? PQntuples(r) : n;
	for (int i = 0; i < got; i++)
		out[i] = meta_u64(r, i, 0);
	PQclear(r);
	return got;
}

/* After 500, 1,000, 2,000 ... upload records, then every 20,000, the
 * planner's statistics of the file tables are brought up to date (a bulk
 * import outruns autovacuum: 0012_statistics.sql).  Runs on the uploader's
 * thread, never a user's. */
static void analyze_as_it_grows(struct meta *m)
{
	uint64_t n;
	int due;

	pthread_mutex_lock(&m->lock);
	if (!m->analyze_at)
		m->analyze_at = 500;
	n = ++m->uploads;
	due = n >= m->analyze_at;
	if (due)
		m->analyze_at = n < 10000 ? n * 2 : n + 20000;
	pthread_mutex_unlock(&m->lock);
	if (due && meta_call(m, "analyze", "SELECT mvfs_analyze()", 0, NULL, NULL) == 0)
		log_info("database: statistics brought up to date after %llu upload records",
			 (unsigned long long)n);
}

/* A text array literal being written (array_add, array_end). */
struct array {
	char *text;
	size_t len;
	FILE *f;
};

/* Adds S to A as one element, quoted; NULL: an SQL NULL. */
static void array_add(struct array *a, const char *s)
{
	if (!a->f && !(a->f = open_memstream(&a->text, &a->len)))
		return;
	fputc(ftell(a->f) ? ',' : '{', a->f);
	if (!s) {
		fputs("NULL", a->f);
		return;
	}
	fputc('"', a->f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', a->f);
		fputc(*s, a->f);
	}
	fputc('"', a->f);
}

/* The literal, or NULL when it could not be written. */
static const char *array_end(struct array *a)
{
	if (!a->f)
		return NULL;
	fputc('}', a->f);
	if (fclose(a->f) != 0) {
		a->f = NULL;
		return NULL;
	}
	a->f = NULL;
	return a->text;
}

/* Makes the records of UPS[i] for every i of IDX (N of them) in one call
 * and sets their rc; 0 or the call's -errno. */
static int uploads_call(struct meta *m, struct meta_uploaded *ups, const int *idx, int n)
{
	enum { INO, SEQ, SHA, SIZE, MIME, TYPE, BACKEND, KEY, SEC, NSEC, NARRAYS };
	struct array arr[NARRAYS] = { 0 };
	const char *p[3 + NARRAYS];
	PGresult *r = NULL;
	int rc = 0;

	for (int i = 0; i < n; i++) {
		struct content_args a;

		content_args(m, ups[idx[i]].ino, ups[idx[i]].ct, &a);
		/* content_args' order: user, ino, sha, size, mime, type,
		 * backend, key, sec, nsec, seq, age, days */
		array_add(&arr[INO], a.p[1]);
		array_add(&arr[SEQ], a.p[10]);
		for (int k = SHA; k <= NSEC; k++)
			array_add(&arr[k], a.p[k]);
	}
	{
		char age[16], days[16];

		p[0] = m->user_id;
		snprintf(age, sizeof(age), "%d", m->version_min_age);
		snprintf(days, sizeof(days), "%d", m->trash_days);
		p[1] = age;
		p[2] = days;
		for (int k = 0; k < NARRAYS; k++)
			if (!(p[3 + k] = array_end(&arr[k])))
				rc = -ENOMEM;
		/* The journal entries go once this returns: committed durably,
		 * whatever the server's default. */
		if (rc == 0)
			rc = meta_call_idempotent(m, "record uploads",
						  "SELECT mvfs_uploaded_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
						  " $11, $12, $13) FROM set_config('synchronous_commit', 'on', true)",
						  3 + NARRAYS, p, &r);
	}
	for (int k = 0; k < NARRAYS; k++) {
		if (arr[k].f)
			fclose(arr[k].f);
		free(arr[k].text);
	}
	for (int i = 0; i < n; i++)
		ups[idx[i]].rc = rc;
	if (rc)
		return rc;
	{
		/* {said,...}: each element quoted when it must be ("" for
		 * the empty answer) */
		const char *w = meta_val(r, 0, 0);

		for (int i = 0; i < n && *w; i++) {
			char said[16] = "";
			size_t len = 0;

			w++;	/* '{' or ',' */
			if (*w == '"')
				w++;
			while (*w && *w != '"' && *w != ',' && *w != '}') {
				if (len < sizeof(said) - 1)
					said[len++] = *w;
				w++;
			}
			said[len] = '\0';
			if (*w == '"')
				w++;
			if (said[0] == '!') {
				int err = pg_sqlstate_to_errno(said + 1);
				/* as meta_exec says a refusal: our functions'
				 * answers and conflicts are not the daemon's errors */
				int expected = err == EAGAIN || strncmp(said + 1, "MV", 2) == 0;

				ups[idx[i]].rc = -err;
				log_msg(expected ? LOG_LVL_DEBUG : LOG_LVL_ERROR,
					"database: the upload record of inode %llu failed (sqlstate %s)",
					(unsigned long long)ups[idx[i]].ino, said + 1);
				continue;
			}
			if (strcmp(said, "superseded") == 0)
				log_info("a version of inode %llu uploaded after a newer one was written: kept as a"
					 " removed old version", (unsigned long long)ups[idx[i]].ino);
			ups[idx[i]].rc = strcmp(said, "gone") == 0 ? -ENOENT : 0;
		}
	}
	PQclear(r);
	return 0;
}

int meta_files_uploaded(struct meta *m, struct meta_uploaded *ups, int n)
{
	int idx[META_UPLOADS_MAX], again, rc = 0, made = n;

	if (n > META_UPLOADS_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		idx[i] = i;
	/* a record that met a serialization failure or a deadlock (undone
	 * alone) is made again, as meta_call does with a call of its own */
	for (int attempt = 0; n > 0; attempt++) {
		if ((rc = uploads_call(m, ups, idx, n)) != 0)
			return rc;
		again = 0;
		for (int i = 0; i < n; i++)
			if (ups[idx[i]].rc == -EAGAIN)
				idx[again++] = idx[i];
		if (!again || !meta_retry_pause(-EAGAIN, attempt))
			break;
		n = again;
	}
	for (int i = 0; i < made; i++)
		analyze_as_it_grows(m);
	return 0;
}

int meta_file_uploaded(struct meta *m, uint64_t ino, const struct meta_content *ct)
{
	struct meta_uploaded u = { ino, ct, 0 };
	int rc = meta_files_uploaded(m, &u, 1);

	return rc ? rc : u.rc;
}

int meta_file_abort(struct meta *m, uint64_t ino)
{
	char s[24];
	const char *p[] = { m->user_id, s };
	PGconn *c = meta_conn_get(m);
	int rc;

	if (!c)
		return -EIO;
	u64s(s, sizeof(s), ino);
	/* one function: it locks the memory first, as a record of its content
	 * does (0016), so a close on another mount is never removed */
	rc = meta_exec(c, "abort file", "SELECT mvfs_abort($1, $2)", 2, p, NULL);
	meta_conn_put(m, c);
	return rc;
}

/* --- for the background jobs (meta_jobs_internal.h) ---------------------- */

/* The commit path's blob reference, for variants and server-side hashes:
 * the same dedup as a file's own content. */
int meta_ns_blob_ref(PGconn *c, const struct meta_content *ct, char blob_id[META_UUID_LEN + 1])
{
	return blob_ref(c, ct, blob_id);
}
