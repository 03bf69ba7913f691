/*
 * be_s3_multipart.c - large objects as S3 multipart uploads, parts in
 * parallel, resumable.
 *
 * DESIGN
 * A put above the threshold first asks whether the object is already there
 * with the right size (content-addressed keys: then it is these bytes, and
 * nothing is sent).  Then it looks for an unfinished upload of the same key
 * (ListMultipartUploads) and the parts the service still holds (ListParts):
 * a held part is reused only when its size and its ETag (the MD5 of its
 * bytes) match the part read from the source now, so a resumed object can
 * never mix in bytes of another source.  Services without these listings
 * (s3rver answers NotImplemented) simply start a new upload.
 *
 * Worker threads take part numbers from a shared counter, as many at a
 * time as the pace allows (struct s3_pace: it starts at -o s3_concurrency
 * and grows while the upload's rate grows, up to S3_PACE_CAP); each sends
 * its part straight from the source file (libcurl's read
 * callback preads into its send buffer: no part-sized buffer, so memory
 * does not grow with the part size or the parts in flight), with the usual
 * retries.  A part is read ahead of sending only when it must be: once, in
 * small pieces, for its SHA-256 when the payload is signed (plain http;
 * over https UNSIGNED-PAYLOAD needs none) and its MD5 when a held part of
 * a resumed upload is to be compared.  The first failure stops the others.  A
 * failure on a retryable error (budget spent: the network or the service is
 * down) leaves the upload in place for the next attempt to resume; any other
 * failure (a bad source, a refused request) aborts it.  The object exists
 * only after CompleteMultipartUpload succeeds and a HEAD shows its size, so
 * a caller never records a half-sent object as stored.
 */
#include "backend/be_util.h"
#include "backend/s3_internal.h"
#include "util/log.h"
#include "util/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct mp {
	struct s3 *s;
	const char *key;
	char *name;
	int fd;
	uint64_t size, part_size;
	int nparts;
	char upload_id[512];
	char (*etag)[72];	/* per part: its ETag, quoted as S3 gives it */
	char (*held)[72];	/* per part: the ETag the service holds, "" when none */
	pthread_mutex_t lock;
	pthread_cond_t slot;	/* a part finished, the pace changed or the upload failed */
	struct s3_pace pace;	/* how many parts may be in flight */
	int active;		/* parts being read or sent now */
	int next;		/* next part index to take */
	int rc;			/* first failure */
	int transient;		/* ... and whether it was a spent retry budget */
	uint64_t sent, reused;	/* bytes */
};

static uint64_t part_len(const struct mp *m, int i)
{
	uint64_t off = (uint64_t)i * m->part_size;

	return m->size - off < m->part_size ? m->size - off : m->part_size;
}

/* Strips quotes: "\"abc\"" -> "abc". */
static void unquote(const char *in, char *out, size_t len)
{
	size_t n = strlen(in);

	if (n >= 2 && in[0] == '"' && in[n - 1] == '"') {
		in++;
		n -= 2;
	}
	if (n >= len)
		n = len - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

/* ---- resuming ---------------------------------------------------------------- */

/* Finds an unfinished upload of exactly M->name; 1 found, 0 not (or the
 * service cannot list them). */
static int find_upload(struct mp *m)
{
	struct s3_op o = { .op = "list uploads of", .key = m->key, .method = "GET", .check = s3_check_xml,
			   .arg = "ListMultipartUploadsResult", .max_attempts = 2, .quiet = 1 };
	char key[1100], id[512];
	xmlNode *u = NULL;
	int found = 0;

	o.params[o.nparams++] = (struct sigv4_param){ "uploads", "" };
	o.params[o.nparams++] = (struct sigv4_param){ "prefix", m->name };
	if (s3_run(m->s, &o) != 0) {
		s3_op_release(&o);
		return 0;
	}
	while (!found && (u = s3_xml_child(o.xml, u, "Upload"))) {
		if (s3_xml_get(u, "Key", key, sizeof(key)) != 1 || strcmp(key, m->name) != 0)
			continue;
		if (s3_xml_get(u, "UploadId", id, sizeof(id)) == 1 && id[0]) {
			snprintf(m->upload_id, sizeof(m->upload_id), "%s", id);
			found = 1;
		}
	}
	s3_op_release(&o);
	return found;
}

/* Fills M->held from ListParts; 0, or -errno when the upload is gone. */
static int list_parts(struct mp *m)
{
	char marker[16] = "", num[16], size_s[32], etag[72], trunc[8];
	int rc = 0, more = 1;

	while (rc == 0 && more) {
		struct s3_op o = { .op = "list parts of", .key = m->key, .method = "GET", .check = s3_check_xml,
				   .arg = "ListPartsResult", .max_attempts = 3, .name = m->name, .quiet_404 = 1 };
		xmlNode *part = NULL;

		o.params[o.nparams++] = (struct sigv4_param){ "uploadId", m->upload_id };
		if (marker[0])
			o.params[o.nparams++] = (struct sigv4_param){ "part-number-marker", marker };
		rc = s3_run(m->s, &o);
		if (rc) {
			s3_op_release(&o);
			break;
		}
		while ((part = s3_xml_child(o.xml, part, "Part"))) {
			long n;

			s3_xml_get(part, "PartNumber", num, sizeof(num));
			s3_xml_get(part, "Size", size_s, sizeof(size_s));
			s3_xml_get(part, "ETag", etag, sizeof(etag));
			n = atol(num);
			if (n >= 1 && n <= m->nparts && strtoull(size_s, NULL, 10) == part_len(m, (int)n - 1))
				snprintf(m->held[n - 1], sizeof(m->held[0]), "%s", etag);
		}
		s3_xml_get(o.xml, "IsTruncated", trunc, sizeof(trunc));
		more = strcmp(trunc, "true") == 0 &&
		       s3_xml_get(o.xml, "NextPartNumberMarker", marker, sizeof(marker)) == 1 && marker[0];
		s3_op_release(&o);
	}
	return rc;
}

/* ---- the upload ------------------------------------------------------------------ */

static int create_upload(struct mp *m, const char *sha256_hex)
{
	struct s3_op o = { .op = "start upload of", .key = m->key, .method = "POST", .has_body = 1,
			   .check = s3_check_xml, .arg = "InitiateMultipartUploadResult", .name = m->name };
	int rc;

	o.params[o.nparams++] = (struct sigv4_param){ "uploads", "" };
	if (sha256_hex)
		o.headers[o.nheaders++] = (struct sigv4_header){ "x-amz-meta-sha256", sha256_hex };
	rc = s3_run(m->s, &o);
	if (rc == 0) {
		if (s3_xml_get(o.xml, "UploadId", m->upload_id, sizeof(m->upload_id)) != 1 || !m->upload_id[0]) {
			log_error("s3: cannot start upload of '%s': no UploadId in the answer", m->key);
			rc = -EIO;
		}
	}
	m->transient = rc && o.transient;
	s3_op_release(&o);
	return rc;
}

static int check_part(struct s3 *s, struct s3_op *o, int *retry)
{
	if (!o->resp.etag[0])
		return s3_fail(o, retry, -EIO, "no ETag in the answer to a part upload");
	return 0;
}

static void set_failure(struct mp *m, int rc, int transient)
{
	pthread_mutex_lock(&m->lock);
	if (!m->rc) {
		m->rc = rc;
		m->transient = transient;
	}
	pthread_cond_broadcast(&m->slot);
	pthread_mutex_unlock(&m->lock);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The next part index to send once the pace allows one more in flight;
 * M->nparts when there is none left or the upload failed. */
static int take_part(struct mp *m)
{
	int i;

	pthread_mutex_lock(&m->lock);
	while (!m->rc && m->next < m->nparts && m->active >= m->pace.limit)
		pthread_cond_wait(&m->slot, &m->lock);
	i = m->rc || m->next >= m->nparts ? m->nparts : m->next++;
	if (i < m->nparts)
		m->active++;
	pthread_mutex_unlock(&m->lock);
	return i;
}

/* Part I is done: SENT bytes went over the wire (0 when it was reused or
 * failed), which is what the pace measures. */
static void part_done(struct mp *m, int i, uint64_t sent)
{
	pthread_mutex_lock(&m->lock);
	m->active--;
	if (sent) {
		m->sent += sent;
		s3_pace_done(&m->pace, sent, now_s());
	} else if (!m->rc) {
		m->reused += part_len(m, i);
	}
	pthread_cond_broadcast(&m->slot);
	pthread_mutex_unlock(&m->lock);
}

static void *part_worker(void *arg)
{
	struct mp *m = arg;
	char num[16], md5[33], held[72], sha[SHA256_HEX_LEN + 1];

	for (;;) {
		struct s3_op o = { .op = "upload part of", .key = m->key, .method = "PUT", .has_body = 1,
				   .check = check_part, .name = m->name, .body_from_fd = 1, .body_fd = m->fd };
		int signed_payload = !m->s->unsigned_payload;
		uint64_t len;
		int i, rc = 0;

		i = take_part(m);
		if (i >= m->nparts)
			break;
		len = part_len(m, i);
		/* One pass over the part when it must be read before sending:
		 * its MD5 to compare with a held part, its SHA-256 to sign. */
		if (m->held[i][0] || signed_payload)
			rc = backend_hash_source(m->fd, (uint64_t)i * m->part_size, len, signed_payload ? sha : NULL,
						 m->held[i][0] ? md5 : NULL);
		if (rc) {
			log_error("s3: cannot put '%s': reading part %d of the source: %s", m->key, i + 1,
				  rc == -EIO ? "it is shorter than its size" : strerror(-rc));
			set_failure(m, rc, 0);
			part_done(m, i, 0);
			break;
		}
		if (m->held[i][0]) {
			unquote(m->held[i], held, sizeof(held));
			if (strcmp(held, md5) == 0) {
				snprintf(m->etag[i], sizeof(m->etag[0]), "%s", m->held[i]);
				part_done(m, i, 0);
				continue;
			}
		}
		snprintf(num, sizeof(num), "%d", i + 1);
		o.params[o.nparams++] = (struct sigv4_param){ "partNumber", num };
		o.params[o.nparams++] = (struct sigv4_param){ "uploadId", m->upload_id };
		o.body_off = (uint64_t)i * m->part_size;
		o.body_len = len;
		o.payload_hash = signed_payload ? sha : NULL;
		rc = s3_run(m->s, &o);
		if (rc == 0 && strlen(o.resp.etag) >= sizeof(m->etag[0]))
			rc = -EIO;	/* not an MD5 ETag: cannot be sent back whole */
		if (rc == 0)
			memcpy(m->etag[i], o.resp.etag, strlen(o.resp.etag) + 1);
		else
			set_failure(m, rc, o.transient);
		s3_op_release(&o);
		part_done(m, i, rc ? 0 : len);
		if (rc)
			break;
	}
	return NULL;
}

static int send_parts(struct mp *m)
{
	s3_pace_init(&m->pace, m->s->concurrency, S3_PACE_CAP);
	backend_run_threads(m->pace.cap < m->nparts ? m->pace.cap : m->nparts, part_worker, m);
	if (m->pace.limit != m->pace.start)
		log_info("s3: put '%s': %d parts in flight, grown from %d while the rate grew (%.0f MB/s)", m->key,
			 m->pace.limit, m->pace.start, m->pace.rate_prev / 1e6);
	return m->rc;
}

static int complete_upload(struct mp *m)
{
	struct s3_op o = { .op = "complete upload of", .key = m->key, .method = "POST", .has_body = 1,
			   .check = s3_check_xml, .arg = "CompleteMultipartUploadResult", .name = m->name };
	size_t cap = (size_t)m->nparts * 128 + 128, len = 0;
	char *body = malloc(cap);
	uint64_t size = 0;
	int i, rc;

	if (!body)
		return -ENOMEM;
	len += (size_t)snprintf(body + len, cap - len, "<CompleteMultipartUpload>");
	for (i = 0; i < m->nparts; i++)
		len += (size_t)snprintf(body + len, cap - len, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
					i + 1, m->etag[i]);
	len += (size_t)snprintf(body + len, cap - len, "</CompleteMultipartUpload>");
	o.params[o.nparams++] = (struct sigv4_param){ "uploadId", m->upload_id };
	o.body = body;
	o.body_len = len;
	o.quiet_404 = 1;
	rc = s3_run(m->s, &o);
	/* A retried completion whose first try succeeded finds the upload gone:
	 * the object tells whether it worked. */
	if (rc == -ENOENT && s3_head_size(m->s, m->key, &size) == 0 && size == m->size)
		rc = 0;
	else if (rc == -ENOENT)
		log_error("s3: cannot complete upload of '%s': the service no longer knows the upload", m->key);
	m->transient = rc && o.transient;
	s3_op_release(&o);
	free(body);
	return rc;
}

static void abort_upload(struct mp *m)
{
	struct s3_op o = { .op = "abort upload of", .key = m->key, .method = "DELETE", .name = m->name,
			   .max_attempts = 3, .quiet_404 = 1 };

	o.params[o.nparams++] = (struct sigv4_param){ "uploadId", m->upload_id };
	if (s3_run(m->s, &o) != 0 && o.resp.status != 404)
		log_warn("s3: the unfinished upload of '%s' stays in the bucket (a lifecycle rule for"
			 " incomplete uploads removes such leftovers)", m->key);
	s3_op_release(&o);
}

/* The SHA-256 a content-addressed key names, or NULL. */
static const char *key_sha(const char *key)
{
	return backend_key_sha(key);
}

int s3_put_multipart(struct s3 *s, const char *key, int fd, uint64_t size, const char *sha256_hex)
{
	struct mp m = { .s = s, .key = key, .fd = fd, .size = size };
	const char *sha = sha256_hex ? sha256_hex : key_sha(key);
	uint64_t have = 0;
	char probe;
	int rc, resumed;

	/* A source that cannot be read fails before anything is sent. */
	if (pread(fd, &probe, 1, 0) < 0) {
		rc = -errno;
		log_error("s3: cannot put '%s': reading the source: %s", key, strerror(-rc));
		return rc;
	}
	m.part_size = s3_part_size(size, s->part_size);
	m.nparts = (int)((size + m.part_size - 1) / m.part_size);
	/* Content-addressed and already whole: these bytes are there. */
	if (key_sha(key) && s3_head_size(s, key, &have) == 0 && have == size)
		return 0;
	m.name = s3_object_name(s, key);
	m.etag = calloc((size_t)m.nparts, sizeof(*m.etag));
	m.held = calloc((size_t)m.nparts, sizeof(*m.held));
	if (!m.name || !m.etag || !m.held) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&m.lock, NULL);
	pthread_cond_init(&m.slot, NULL);
	resumed = find_upload(&m) && list_parts(&m) == 0;
	if (!resumed) {
		rc = create_upload(&m, sha);
		if (rc)
			goto out_lock;
	}
	rc = send_parts(&m);
	if (rc == 0)
		rc = complete_upload(&m);
	if (rc == 0 && (s3_head_size(s, key, &have) != 0 || have != size)) {
		log_error("s3: cannot put '%s': after the upload the store holds %llu bytes, not %llu", key,
			  (unsigned long long)have, (unsigned long long)size);
		rc = -EIO;
	}
	if (rc && m.transient)
		log_warn("s3: the upload of '%s' is left for the next attempt to resume (%llu of %llu bytes sent)",
			 key, (unsigned long long)(m.sent + m.reused), (unsigned long long)size);
	else if (rc)
		abort_upload(&m);
	else if (resumed)
		log_info("s3: put '%s': resumed an upload, reusing %llu of %llu bytes", key,
			 (unsigned long long)m.reused, (unsigned long long)size);
out_lock:
	pthread_cond_destroy(&m.slot);
	pthread_mutex_destroy(&m.lock);
out:
	free(m.name);
	free(m.etag);
	free(m.held);
	return rc;
}
