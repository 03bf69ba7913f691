/*
 * be_vblob_multipart.c - large blobs as Vercel Blob multipart uploads
 * (x-mpu-action create / upload / complete), parts in parallel.
 *
 * DESIGN
 * A put above the threshold first asks whether a content-addressed key is
 * already there with the right size (then it holds these bytes, and
 * nothing is sent).  CONCURRENCY threads take part numbers from a shared
 * counter; each reads its part into its own buffer and sends it with the
 * usual retries; the first failure stops the others.  The blob appears
 * only when complete succeeds, and a HEAD must then show its size; the
 * service has no abort, and an upload never completed is never visible.
 */
#include "backend/be_util.h"
#include "backend/vblob_internal.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mp {
	struct vblob *v;
	const char *key;
	char *pathname;
	char *mpu_url;		/* /mpu?pathname=... */
	int fd;
	uint64_t size, part_size;
	int nparts;
	char upload_id_line[600];	/* "x-mpu-upload-id: ..." */
	char key_line[1200];		/* "x-mpu-key: <encoded>" */
	char (*etag)[72];
	pthread_mutex_t lock;
	int next, rc;
};

static int check_create(struct vblob *v, struct vb_op *o, int *retry)
{
	struct mp *m = o->arg;
	const char *id = json_string_value(json_object_get(o->json, "uploadId"));
	const char *key = json_string_value(json_object_get(o->json, "key"));
	char *enc;

	if (!id || !key || !*id || strlen(id) > 500 || strchr(id, '\n') || strchr(id, '\r'))
		return vb_fail(o, retry, -EIO, "a create answer without a usable uploadId and key");
	enc = vb_qenc(key);	/* the client sends encodeURIComponent(key) */
	if (!enc)
		return -ENOMEM;
	if (strlen(enc) > 1100) {
		free(enc);
		return vb_fail(o, retry, -EIO, "an upload key too long to send back");
	}
	snprintf(m->upload_id_line, sizeof(m->upload_id_line), "x-mpu-upload-id: %s", id);
	snprintf(m->key_line, sizeof(m->key_line), "x-mpu-key: %s", enc);
	free(enc);
	return 0;
}

static int check_part(struct vblob *v, struct vb_op *o, int *retry)
{
	const char *etag = json_string_value(json_object_get(o->json, "etag"));
	char *out = o->arg;

	if (!etag || !*etag || strlen(etag) >= 72)
		return vb_fail(o, retry, -EIO, "a part answer without a usable etag");
	memcpy(out, etag, strlen(etag) + 1);
	return 0;
}

static void set_failure(struct mp *m, int rc)
{
	pthread_mutex_lock(&m->lock);
	if (!m->rc)
		m->rc = rc;
	pthread_mutex_unlock(&m->lock);
}

static void *part_worker(void *arg)
{
	struct mp *m = arg;
	char *buf = malloc(m->part_size), num[48], access[64];

	if (!buf) {
		set_failure(m, -ENOMEM);
		return NULL;
	}
	for (;;) {
		struct vb_op o = { .op = "upload part of", .key = m->key, .method = "POST", .has_body = 1,
				   .check = check_part, .url = m->mpu_url };
		uint64_t off, len;
		int i, rc;

		pthread_mutex_lock(&m->lock);
		i = m->rc ? m->nparts : m->next++;
		pthread_mutex_unlock(&m->lock);
		if (i >= m->nparts)
			break;
		off = (uint64_t)i * m->part_size;
		len = m->size - off < m->part_size ? m->size - off : m->part_size;
		rc = backend_read_source(m->fd, buf, len, off);
		if (rc) {
			log_error("vblob: cannot put '%s': reading part %d of the source: %s", m->key, i + 1,
				  rc == -EIO ? "it is shorter than its size" : strerror(-rc));
			set_failure(m, rc);
			break;
		}
		vb_put_headers(m->v, &o, access, sizeof(access));
		snprintf(num, sizeof(num), "x-mpu-part-number: %d", i + 1);
		o.headers[o.nheaders++] = "x-mpu-action: upload";
		o.headers[o.nheaders++] = m->key_line;
		o.headers[o.nheaders++] = m->upload_id_line;
		o.headers[o.nheaders++] = num;
		o.arg = m->etag[i];
		o.body = buf;
		o.body_len = len;
		rc = vb_run(m->v, &o);
		vb_op_release(&o);
		if (rc) {
			set_failure(m, rc);
			break;
		}
	}
	free(buf);
	return NULL;
}

static int send_parts(struct mp *m)
{
	backend_run_threads(m->v->x.concurrency < m->nparts ? m->v->x.concurrency : m->nparts, part_worker, m);
	return m->rc;
}

static int complete_upload(struct mp *m)
{
	struct vb_op o = { .op = "complete upload of", .key = m->key, .method = "POST", .has_body = 1,
			   .check = vb_check_put, .arg = m->pathname, .url = m->mpu_url };
	json_t *parts = json_array();
	char access[64], *body = NULL;
	int i, rc = -ENOMEM;

	for (i = 0; parts && i < m->nparts; i++)
		if (json_array_append_new(parts, json_pack("{s:i,s:s}", "partNumber", i + 1, "etag", m->etag[i])))
			goto out;
	body = parts ? json_dumps(parts, JSON_COMPACT) : NULL;
	if (!body)
		goto out;
	vb_put_headers(m->v, &o, access, sizeof(access));
	o.headers[o.nheaders++] = "content-type: application/json";
	o.headers[o.nheaders++] = "x-mpu-action: complete";
	o.headers[o.nheaders++] = m->key_line;
	o.headers[o.nheaders++] = m->upload_id_line;
	o.body = body;
	o.body_len = strlen(body);
	rc = vb_run(m->v, &o);
	vb_op_release(&o);
out:
	free(body);
	json_decref(parts);
	return rc;
}

int vb_put_multipart(struct vblob *v, const char *key, int fd, uint64_t size)
{
	struct mp m = { .v = v, .key = key, .fd = fd, .size = size, .part_size = v->x.part_size };
	struct vb_op o = { .op = "start upload of", .key = key, .method = "POST", .check = check_create,
			   .arg = &m };
	struct vb_head_ans h = { 0 };
	char access[64];
	int rc;

	/* A content-addressed key already there with this size holds these bytes. */
	if (backend_key_sha(key) && vb_head_ans(v, key, &h, 1) == 0 && h.size == size) {
		free(h.url);
		return 0;
	}
	free(h.url);
	while ((size + m.part_size - 1) / m.part_size > VB_MAX_PARTS)
		m.part_size += 1u << 20;
	m.nparts = (int)((size + m.part_size - 1) / m.part_size);
	m.pathname = vb_pathname_of(v, key);
	m.mpu_url = m.pathname ? vb_api_url(v, "/mpu", "pathname", m.pathname) : NULL;
	m.etag = calloc((size_t)m.nparts, sizeof(*m.etag));
	if (!m.mpu_url || !m.etag) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&m.lock, NULL);
	o.url = m.mpu_url;
	vb_put_headers(v, &o, access, sizeof(access));
	o.headers[o.nheaders++] = "x-mpu-action: create";
	rc = vb_run(v, &o);
	vb_op_release(&o);
	if (rc == 0)
		rc = send_parts(&m);
	if (rc == 0)
		rc = complete_upload(&m);
	if (rc == 0 && (rc = vb_head_ans(v, key, &h, 0)) == 0 && h.size != size) {
		log_error("vblob: cannot put '%s': the completed blob holds %llu bytes, not %llu", key,
			  (unsigned long long)h.size, (unsigned long long)size);
		rc = -EIO;
	}
	free(h.url);
	pthread_mutex_destroy(&m.lock);
	if (rc == 0)
		log_debug("vblob: put '%s': %llu bytes in %d parts", key, (unsigned long long)size, m.nparts);
out:
	free(m.etag);
	free(m.mpu_url);
	free(m.pathname);
	return rc;
}
