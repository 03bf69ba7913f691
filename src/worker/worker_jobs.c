/*
 * worker_jobs.c - one claimed job run to its outcome: worker_job_run, which
 * the threads of worker.c call.
 *
 * What each job type does (the database side is meta_jobs.h):
 *
 *   process_assets        the original's bytes through the cache into an
 *                         unnamed staging file, the image helper makes the
 *                         display and thumb files (media.h), they go to the
 *                         store under their SHA-256 (cache_store), then one
 *                         transaction records them
 *   asset_delete          the object leaves the store inside the transaction
 *                         that checked it may (meta_jobs_asset_delete)
 *   cleanup_pending       database only
 *   workspace_expiry      database only
 *   content_hash_compute  the bytes under their old key are read, hashed and
 *                         stored again under the hash, then recorded
 *   store_copy            a pin's copy: the content from the primary store
 *                         (through the cache) to the pinned store (-o
 *                         pin_store=), read back there and checked against
 *                         its SHA-256, with a metadata document beside it
 *   store_drop            a copy no pin holds leaves the pinned store
 *
 * Failures: bad input (not an image, corrupt, over the size limit) fails a
 * job at once with the reason; anything else (the store, the database, a
 * crashed decoder) is retried with backoff (meta_jobs_fail).  At stop, a
 * job in the middle of image work is given back to the queue untried.
 */
#include "worker/worker_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cache/cache.h"
#include "meta/meta_jobs.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/store_label.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- content in and out -------------------------------------------------- */

static int fetch_key(struct worker *w, const char *key, uint64_t size, char sha256[SHA256_HEX_LEN + 1]);

/* Copies content SHA256 (SIZE bytes) of the user whose keys start with
 * PREFIX into a new unnamed staging file, checking it hashes to SHA256:
 * through the cache when it is this cache's user (a mount's worker), else
 * (`mvaultfs worker`, acting for many users) from the store under that
 * user's key.  The key is made from the user's prefix, never taken from a
 * row the user wrote, so a job cannot be pointed at someone else's bytes.
 * Returns the fd or -errno. */
static int fetch_content(struct worker *w, const char *prefix, const char *sha256, uint64_t size)
{
	enum { CHUNK = 1 << 20 };
	char *buf = malloc(CHUNK), got_sha[SHA256_HEX_LEN + 1];
	struct cache_reader rd = { 0 };
	struct sha256 h = { 0 };
	uint64_t off = 0;
	int fd, rc = 0;

	if (strcmp(prefix, cache_key_prefix(w->cfg.cache)) != 0) {
		char key[BACKEND_KEY_MAX];

		free(buf);
		backend_key_for(prefix, sha256, key);
		if (!key[0])
			return -EINVAL;
		fd = fetch_key(w, key, size, got_sha);
		if (fd >= 0 && strcmp(got_sha, sha256) != 0) {
			close(fd);
			return -EBADMSG;
		}
		return fd;
	}
	if (!buf || sha256_init(&h) != 0) {
		free(buf);
		return -ENOMEM;
	}
	fd = cache_stage_create(w->cfg.cache);
	rc = fd < 0 ? fd : 0;
	while (rc == 0 && off < size) {
		size_t got = 0;

		rc = cache_read(w->cfg.cache, sha256, size, off, CHUNK, buf, &got, &rd);
		if (rc == 0 && got == 0)
			rc = -EIO;
		if (rc == 0 && pwrite(fd, buf, got, (off_t)off) != (ssize_t)got)
			rc = errno ? -errno : -EIO;
		if (rc == 0)
			sha256_update(&h, buf, got);
		off += got;
	}
	if (rc == 0) {
		sha256_final(&h, got_sha);
		if (strcmp(got_sha, sha256) != 0)
			rc = -EBADMSG;
	}
	sha256_release(&h);
	free(buf);
	if (rc && fd >= 0)
		close(fd);
	return rc ? rc : fd;
}

/* Stores the bytes of FD under their hash, among the keys of the user
 * whose keys start with PREFIX: *SIZE, SHA256 and KEY out. */
static int store_content(struct worker *w, const char *prefix, int fd, uint64_t *size,
			 char sha256[SHA256_HEX_LEN + 1], char key[BACKEND_KEY_MAX])
{
	struct stat st;
	int rc;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size <= 0)
		return -ENODATA;
	*size = (uint64_t)st.st_size;
	key[0] = '\0';
	rc = sha256_fd(fd, *size, sha256);
	if (rc == 0)
		backend_key_for(prefix, sha256, key);
	if (rc == 0)
		rc = cache_store(w->cfg.cache, key, sha256, fd, *size);
	return rc;
}

/* --- process_assets ------------------------------------------------------ */

static void job_process(struct worker_thread *t, const struct meta_job *j)
{
	struct worker *w = t->w;
	const struct media_recipe *r = &w->cfg.recipe;
	struct meta_original o;
	struct media_result res;
	char why[512] = "", spec[256];
	char dsha[SHA256_HEX_LEN + 1], tsha[SHA256_HEX_LEN + 1], dkey[BACKEND_KEY_MAX], tkey[BACKEND_KEY_MAX];
	int in = -1, dfd = -1, tfd = -1, rc, fail;
	double t0 = now_s(), t_fetch = 0, t_media = 0;

	rc = meta_jobs_original(t->q, j, &o);
	if (rc == -ENOENT || (rc == 0 && (!o.ready || o.done))) {
		meta_jobs_complete(t->q, j, rc ? "skipped: the original is gone"
					 : o.done ? "skipped: it has its variants" : "skipped: not an uploaded original");
		worker_count(w, &w->done);
		return;
	}
	if (rc == 0) {
		in = fetch_content(w, o.key_prefix, o.sha256, o.size);
		rc = in < 0 ? in : 0;
		if (rc)
			snprintf(why, sizeof(why), "cannot read the original: %s", rc == -EBADMSG
				 ? "its bytes do not match their hash" : strerror(-rc));
	}
	if (rc == 0 && ((dfd = cache_stage_create(w->cfg.cache)) < 0 || (tfd = cache_stage_create(w->cfg.cache)) < 0)) {
		rc = dfd < 0 ? dfd : tfd;
		snprintf(why, sizeof(why), "no room for the variants: %s", strerror(-rc));
	}
	fail = 0;
	t_fetch = now_s();
	if (rc == 0) {
		fail = media_make(t->media, r, in, dfd, tfd, &res, why, sizeof(why));
		rc = fail ? -EIO : 0;
	}
	t_media = now_s();
	if (rc == 0) {
		uint64_t dsize = 0, tsize = 0;
		struct meta_variant_new v[2] = {
			{ "display", dsha, dkey, cache_backend_name(w->cfg.cache), media_display_mime(r->display_format),
			  0, res.display_width, res.display_height },
			{ "thumb", tsha, tkey, cache_backend_name(w->cfg.cache), "image/webp", 0,
			  res.thumb_width, res.thumb_height },
		};
		struct meta_processed p = {
			.width = res.width, .height = res.height, .color_space = res.color_space,
			.transform_spec = spec, .variants = v, .nvariants = 2,
		};

		media_transform_spec(r, spec, sizeof(spec));
		rc = store_content(w, o.key_prefix, dfd, &dsize, dsha, dkey);
		if (rc == 0)
			rc = store_content(w, o.key_prefix, tfd, &tsize, tsha, tkey);
		if (rc)
			snprintf(why, sizeof(why), "cannot store the variants: %s", strerror(-rc));
		v[0].size = dsize;
		v[1].size = tsize;
		if (rc == 0 && (rc = meta_jobs_variants_done(t->q, j, &o, &p)) != 0)
			snprintf(why, sizeof(why), "cannot record the variants: %s", strerror(-rc));
		if (rc == 0) {
			log_info("variants of '%s' (%dx%d %s): display %dx%d %s %llu bytes, thumb %dx%d %llu bytes,"
				 " %.2f s (read %.2f, decode and encode %.2f, store and record %.2f)",
				 o.name[0] ? o.name : j->subject,
				 res.width, res.height, res.loader, res.display_width, res.display_height,
				 r->display_format, (unsigned long long)dsize, res.thumb_width, res.thumb_height,
				 (unsigned long long)tsize, now_s() - t0, t_fetch - t0, t_media - t_fetch,
				 now_s() - t_media);
			worker_count(w, &w->done);
			if (w->cfg.made)
				w->cfg.made(w->cfg.made_arg, o.asset_id, tfd);
		}
	}
	if (rc && atomic_load(&w->stopping)) {
		meta_jobs_release(t->q, j);
	} else if (rc) {
		int permanent = fail == MEDIA_BAD_INPUT || fail == MEDIA_TOO_BIG;
		int final = meta_jobs_variants_failed(t->q, j, why, permanent);

		log_warn("no variants for '%s'%s: %s", o.name[0] ? o.name : j->subject,
			 final == 0 ? " (will retry)" : "", why);
		worker_count(w, final == 0 ? &w->retried : &w->failed);
	}
	if (in >= 0)
		close(in);
	if (dfd >= 0)
		close(dfd);
	if (tfd >= 0)
		close(tfd);
}

/* --- content_hash_compute ------------------------------------------------ */

static int delete_object(void *arg, const char *backend, const char *key)
{
	struct worker *w = arg;

	if (strcmp(backend, cache_backend_name(w->cfg.cache)) != 0)
		return -EXDEV;
	return backend_del(w->cfg.backend, key);
}

/* Reads object KEY (SIZE bytes) of store B, hashing it into SHA256 and,
 * when FD >= 0, writing it there.  0 or -errno. */
static int read_object(struct backend *b, const char *key, uint64_t size, int fd, char sha256[SHA256_HEX_LEN + 1])
{
	enum { CHUNK = 1 << 20 };
	char *buf = malloc(CHUNK);
	struct sha256 h = { 0 };
	uint64_t off = 0;
	int rc = 0;

	if (!buf || sha256_init(&h) != 0) {
		free(buf);
		return -ENOMEM;
	}
	while (rc == 0 && off < size) {
		size_t got = 0;

		rc = backend_get_range(b, key, off, CHUNK, buf, &got);
		if (rc == 0 && got == 0)
			rc = -EIO;	/* shorter than its row says */
		if (rc == 0 && fd >= 0 && pwrite(fd, buf, got, (off_t)off) != (ssize_t)got)
			rc = errno ? -errno : -EIO;
		if (rc == 0)
			sha256_update(&h, buf, got);
		off += got;
	}
	if (rc == 0)
		sha256_final(&h, sha256);
	sha256_release(&h);
	free(buf);
	return rc;
}

/* Reads object KEY (SIZE bytes) from the store into a staging file, hashing
 * it.  Returns the fd or -errno. */
static int fetch_key(struct worker *w, const char *key, uint64_t size, char sha256[SHA256_HEX_LEN + 1])
{
	int fd = cache_stage_create(w->cfg.cache), rc;

	if (fd < 0)
		return fd;
	rc = read_object(w->cfg.backend, key, size, fd, sha256);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Content that came without a hash lives under a key that is not one: it
 * is read from the store directly (the cache knows content by hash only),
 * then stored again under its hash so every reader finds it there. */
static int job_hash(struct worker_thread *t, const struct meta_job *j, char *why, size_t len)
{
	struct worker *w = t->w;
	char sha[SHA256_HEX_LEN + 1], key[BACKEND_KEY_MAX];
	struct meta_unhashed u;
	int fd, rc;

	rc = meta_jobs_unhashed(t->q, j, &u);
	if (rc == -ENOENT || (rc == 0 && !u.ready))
		return meta_jobs_complete(t->q, j, "skipped: nothing to hash");
	if (rc)
		return rc;
	if (strcmp(u.backend, cache_backend_name(w->cfg.cache)) != 0) {
		snprintf(why, len, "its bytes are on '%s', this worker's store is '%s'", u.backend,
			 cache_backend_name(w->cfg.cache));
		return -EXDEV;
	}
	/* A row names any key its user wrote: not one of the content-addressed
	 * keys of someone else (another user's prefix, or the shared keys for
	 * a user who has a prefix of their own). */
	if (u.key_prefix[0] ? (strncmp(u.key, "u/", 2) == 0 || backend_key_sha(u.key)) &&
			      strncmp(u.key, u.key_prefix, strlen(u.key_prefix)) != 0
			    : strncmp(u.key, "u/", 2) == 0) {
		snprintf(why, len, "its key '%s' is not its user's: not read", u.key);
		return -EPERM;
	}
	fd = fetch_key(w, u.key, u.size, sha);
	if (fd < 0) {
		snprintf(why, len, "cannot read '%s': %s", u.key, strerror(-fd));
		return fd;
	}
	backend_key_for(u.key_prefix, sha, key);
	rc = cache_store(w->cfg.cache, key, sha, fd, u.size);
	close(fd);
	if (rc) {
		snprintf(why, len, "cannot store it under its hash: %s", strerror(-rc));
		return rc;
	}
	rc = meta_jobs_hash_done(t->q, j, &u, sha, cache_backend_name(w->cfg.cache), key);
	if (rc == 0)
		log_info("hashed asset %s: sha256 %.12s..., stored under %s", u.asset_id, sha, key);
	return rc;
}

/* --- store_copy, store_drop: pins (store forever) ------------------------ */

static struct backend *pin_store(struct worker *w, const char *label)
{
	for (int i = 0; i < w->cfg.npin_stores; i++)
		if (strcmp(w->cfg.pin_stores[i].label, label) == 0)
			return w->cfg.pin_stores[i].backend;
	return NULL;
}

/* The key of the metadata document of memory ID under PREFIX:
 * PREFIX "meta/<id>.json"; "" for an id that is not a uuid or a bad
 * prefix (every backend refuses "" with -EINVAL). */
static void meta_doc_key(const char *prefix, const char *id, char out[BACKEND_KEY_MAX])
{
	out[0] = '\0';
	if (strlen(id) == 36 && strspn(id, "0123456789abcdef-") == 36 && backend_key_prefix_valid(prefix))
		snprintf(out, BACKEND_KEY_MAX, "%smeta/%s.json", prefix, id);
}

/* S as a JSON string body: quotes, backslashes and control characters
 * escaped.  OUT holds LEN bytes; a value that does not fit is cut. */
static void json_text(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(out + o, len - o, "\\%c", ch);
		else if (ch < 0x20)
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

/* Writes the metadata document of C to B under KEY: what the memory is
 * without the database (its id, type, content hash and key, size, type of
 * content, when it was made).  Names and titles stay out: a worker cannot
 * read them (0018), and a copy meant to last should not hold a name that
 * the person changes later. */
static int put_meta_doc(struct worker *w, struct backend *b, const struct meta_pin_copy *c, const char *key,
			const char *asset_key)
{
	char doc[1024], mime[300];
	int fd, n, rc;

	json_text(c->mime, mime, sizeof(mime));
	n = snprintf(doc, sizeof(doc),
		     "{\"memoryId\":\"%s\",\"type\":\"%s\",\"sha256\":\"%s\",\"size\":%llu,\"mime\":\"%s\","
		     "\"createdAt\":\"%s\",\"contentKey\":\"%s\"}\n",
		     c->memory_id, c->type, c->sha256, (unsigned long long)c->size, mime, c->created_at, asset_key);
	if (n < 0 || (size_t)n >= sizeof(doc))
		return -EOVERFLOW;
	if ((fd = cache_stage_create(w->cfg.cache)) < 0)
		return fd;
	rc = pwrite(fd, doc, (size_t)n, 0) == n ? 0 : errno ? -errno : -EIO;
	if (rc == 0)
		rc = backend_put(b, key, fd, (uint64_t)n, NULL);
	close(fd);
	return rc;
}

/* Whether a failed copy is worth retrying: not when the pinned store
 * refuses us (permissions, a read-only or broken folder, a bad key, too
 * big); the person sees the reason and pins again once it is fixed. */
static int copy_failure_permanent(int rc)
{
	return rc == -EACCES || rc == -EPERM || rc == -EROFS || rc == -EINVAL || rc == -EFBIG || rc == -ENXIO ||
	       rc == -ENOTDIR;
}

/* Copies the memory's content from the primary store to the pinned one,
 * checks it there by its SHA-256, writes its metadata document beside it
 * and records the copy.  A failure marks the memory's edges 'failed'. */
static void job_pin_copy(struct worker_thread *t, const struct meta_job *j)
{
	struct worker *w = t->w;
	struct backend *b = pin_store(w, j->backend);
	char why[512] = "", key[BACKEND_KEY_MAX] = "", mkey[BACKEND_KEY_MAX] = "", got[SHA256_HEX_LEN + 1];
	struct meta_pin_copy c;
	int fd = -1, rc, final;

	rc = meta_jobs_pin_source(t->q, j, &c);
	if (rc == -ENOENT || (rc == 0 && !c.ready)) {
		snprintf(why, sizeof(why), "skipped: %s", rc ? "the memory is gone" : c.why);
		meta_jobs_complete(t->q, j, why);
		log_info("jobs: store_copy of memory %s to %s %s", j->subject, j->backend, why);
		worker_count(w, &w->done);
		return;
	}
	if (rc)
		snprintf(why, sizeof(why), "cannot read what to copy: %s", strerror(-rc));
	if (rc == 0 && !b) {
		rc = -EXDEV;
		snprintf(why, sizeof(why), "this worker has no store for '%s' (-o pin_store=%s=URL)", j->backend,
			 store_label_short(j->backend));
	}
	if (rc == 0) {
		backend_key_for(c.key_prefix, c.sha256, key);
		meta_doc_key(c.key_prefix, c.memory_id, mkey);
		fd = fetch_content(w, c.key_prefix, c.sha256, c.size);
		rc = fd < 0 ? fd : 0;
		if (rc)
			snprintf(why, sizeof(why), "cannot read it from the primary store: %s",
				 rc == -EBADMSG ? "its bytes do not match their hash" : strerror(-rc));
	}
	if (rc == 0 && (rc = backend_put(b, key, fd, c.size, c.sha256)) != 0)
		snprintf(why, sizeof(why), "cannot store it on %s: %s", j->backend, strerror(-rc));
	if (rc == 0 && (rc = read_object(b, key, c.size, -1, got)) != 0)
		snprintf(why, sizeof(why), "cannot read it back from %s: %s", j->backend, strerror(-rc));
	if (rc == 0 && strcmp(got, c.sha256) != 0) {
		rc = -EIO;
		snprintf(why, sizeof(why), "its copy on %s does not match its SHA-256 (%.12s... read back)",
			 j->backend, got);
	}
	if (rc == 0 && (rc = put_meta_doc(w, b, &c, mkey, key)) != 0)
		snprintf(why, sizeof(why), "cannot store its metadata on %s: %s", j->backend, strerror(-rc));
	if (fd >= 0)
		close(fd);
	if (rc == 0 && (rc = meta_jobs_pin_copied(t->q, j, &c, key, mkey)) != 0)
		snprintf(why, sizeof(why), "cannot record the copy: %s", strerror(-rc));
	if (rc == 0) {
		log_info("jobs: copied memory %s (%llu bytes, sha256 %.12s...) to %s, checked there", c.memory_id,
			 (unsigned long long)c.size, c.sha256, j->backend);
		worker_count(w, &w->done);
		return;
	}
	if (atomic_load(&w->stopping)) {
		meta_jobs_release(t->q, j);
		return;
	}
	final = meta_jobs_pin_failed(t->q, j, why, copy_failure_permanent(rc));
	log_warn("jobs: cannot copy memory %s to %s%s: %s", j->subject, j->backend, final == 0 ? " (will retry)" : "",
		 why);
	worker_count(w, final == 0 ? &w->retried : &w->failed);
}

/* meta_jobs_drop_fn: the copy's objects leave the pinned store. */
static int drop_copy(void *arg, const char *label, const char *prefix, const char *sha256, const char *memory_id)
{
	struct worker *w = arg;
	struct backend *b = pin_store(w, label);
	char key[BACKEND_KEY_MAX];
	int rc = 0;

	if (!b)
		return -EXDEV;
	if (sha256) {
		backend_key_for(prefix, sha256, key);
		rc = backend_del(b, key);
	}
	meta_doc_key(prefix, memory_id, key);
	return rc ? rc : backend_del(b, key);
}

void worker_job_run(struct worker_thread *t, const struct meta_job *j)
{
	struct worker *w = t->w;
	char note[512] = "";
	int rc;

	switch (j->type) {
	case META_JOB_PROCESS_ASSETS:
		job_process(t, j);
		return;
	case META_JOB_ASSET_DELETE:
		rc = meta_jobs_asset_delete(t->q, j, delete_object, w, note, sizeof(note));
		if (rc == -EXDEV)
			snprintf(note, sizeof(note), "the object is in another store than this worker's ('%s')",
				 cache_backend_name(w->cfg.cache));
		break;
	case META_JOB_CLEANUP_PENDING:
		rc = meta_jobs_cleanup_pending(t->q, j, note, sizeof(note));
		break;
	case META_JOB_WORKSPACE_EXPIRY:
		rc = meta_jobs_workspace_expire(t->q, j, note, sizeof(note));
		break;
	case META_JOB_CONTENT_HASH:
		rc = job_hash(t, j, note, sizeof(note));
		break;
	case META_JOB_STORE_COPY:
		job_pin_copy(t, j);
		return;
	case META_JOB_STORE_DROP:
		rc = meta_jobs_pin_drop(t->q, j, drop_copy, w, note, sizeof(note));
		if (rc == -EXDEV)
			snprintf(note, sizeof(note), "this worker has no store for '%s' (-o pin_store=%s=URL)",
				 j->backend, store_label_short(j->backend));
		break;
	default:
		meta_jobs_fail(t->q, j, "unknown job type: no worker does it", 1);
		log_warn("jobs: failed %s job %s: unknown type", j->type_name, j->id);
		worker_count(w, &w->failed);
		return;
	}
	if (rc == 0) {
		if (note[0])
			log_info("jobs: %s: %s", j->type_name, note);
		worker_count(w, &w->done);
		return;
	}
	if (!note[0])
		snprintf(note, sizeof(note), "%s", strerror(-rc));
	rc = meta_jobs_fail(t->q, j, note, 0);
	log_warn("jobs: %s job %s failed%s: %s", j->type_name, j->id, rc == 0 ? " (will retry)" : "", note);
	worker_count(w, rc == 0 ? &w->retried : &w->failed);
}
