/*
 * be_util.c - what the remote backends share (see be_util.h).
 */
#include "backend/be_util.h"
#include "util/log.h"
#include "util/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void backend_shown_key(const char *key, char out[BACKEND_SHOWN_KEY_MAX])
{
	size_t i;

	for (i = 0; key && key[i] && i < 72; i++)
		out[i] = key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?';
	out[i] = '\0';
	if (key && key[i])
		memcpy(out + i, "...", 4);
}

int backend_read_source(int fd, void *buf, size_t size, uint64_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pread(fd, (char *)buf + done, size - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int backend_hash_source(int fd, uint64_t off, uint64_t len, char sha[65], char md5[33])
{
	enum { CHUNK = 256 << 10 };	/* stays in the CPU's cache between the read and the hash */
	struct sha256 sh = { 0 };
	EVP_MD_CTX *m = NULL;
	unsigned char d[16];
	unsigned int dn = sizeof(d);
	char *buf = malloc(CHUNK);
	uint64_t done = 0;
	int rc = 0;

	if (!buf || (sha && sha256_init(&sh)) || (md5 && (!(m = EVP_MD_CTX_new()) ||
							   !EVP_DigestInit_ex(m, EVP_md5(), NULL))))
		rc = -ENOMEM;
	while (rc == 0 && done < len) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;

		rc = backend_read_source(fd, buf, n, off + done);
		if (rc)
			break;
		if (sha)
			sha256_update(&sh, buf, n);
		if (md5)
			EVP_DigestUpdate(m, buf, n);
		done += n;
	}
	if (rc == 0 && sha)
		sha256_final(&sh, sha);
	if (rc == 0 && md5) {
		EVP_DigestFinal_ex(m, d, &dn);
		hex_encode(d, 16, md5);
	}
	sha256_release(&sh);
	EVP_MD_CTX_free(m);
	free(buf);
	return rc;
}

/* "16M", "5242880", "1G" -> bytes; 0 on nonsense. */
uint64_t backend_parse_size(const char *v)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 10);

	if (end == v)
		return 0;
	switch (toupper((unsigned char)*end)) {
	case 'K': n <<= 10; end++; break;
	case 'M': n <<= 20; end++; break;
	case 'G': n <<= 30; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	return *end ? 0 : n;
}

int backend_xfer_opt(struct backend_xfer_opts *x, const char *name, const char *v)
{
	if (!strcmp(name, "part_size"))
		return (x->part_size = backend_parse_size(v)) ? 0 : -1;
	if (!strcmp(name, "threshold"))
		return (x->threshold = backend_parse_size(v)) ? 0 : -1;
	if (!strcmp(name, "concurrency"))
		return (x->concurrency = atoi(v)) > 0 ? 0 : -1;
	if (!strcmp(name, "retries"))
		return (x->retries = atoi(v)) > 0 ? 0 : -1;
	if (!strcmp(name, "retry_base_ms"))
		return (x->retry_base_ms = atol(v)) >= 0 ? 0 : -1;
	if (!strcmp(name, "retry_cap_ms"))
		return (x->retry_cap_ms = atol(v)) >= 0 ? 0 : -1;
	if (!strcmp(name, "timeout"))
		return (x->timeout = atoi(v)) > 0 ? 0 : -1;
	return 1;
}

struct backend_xfer backend_xfer_settle(const struct backend_xfer_opts *x, uint64_t part_size,
					struct http_config *hc)
{
	struct backend_xfer t = {
		.part_size = x->part_size ? x->part_size : part_size,
		.concurrency = x->concurrency ? x->concurrency : 4,
		.retry = {
			.max_attempts = x->retries ? x->retries : 8,
			.base_ms = x->retry_base_ms ? x->retry_base_ms : 200,
			.cap_ms = x->retry_cap_ms ? x->retry_cap_ms : 10000,
		},
	};

	t.threshold = x->threshold ? x->threshold : t.part_size;
	hc->stall_timeout_s = x->timeout;
	hc->max_idle = 2 * t.concurrency + 8;
	return t;
}

int backend_url_split(const char *rest, const char *url, int (*opt)(void *arg, const char *name, const char *value),
		      void *arg, char **head, char **prefix)
{
	char *copy = strdup(rest), *q, *slash, *tok, *save = NULL;
	size_t plen;

	*head = *prefix = NULL;
	if (!copy)
		return -ENOMEM;
	q = strchr(copy, '?');
	if (q) {
		*q++ = '\0';
		for (tok = strtok_r(q, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(tok, '=');

			if (eq)
				*eq++ = '\0';
			if (opt(arg, tok, eq ? eq : "1") != 0) {
				log_error("cannot open store '%s': bad option '%s'", url, tok);
				free(copy);
				return -EINVAL;
			}
		}
	}
	slash = strchr(copy, '/');
	if (slash)
		*slash++ = '\0';
	while (slash && *slash == '/')
		slash++;
	plen = slash ? strlen(slash) : 0;
	while (plen && slash[plen - 1] == '/')
		slash[--plen] = '\0';
	if (plen && !backend_key_valid(slash)) {
		log_error("cannot open store '%s': the prefix must be like a key ([A-Za-z0-9._-] and '/')", url);
		free(copy);
		return -EINVAL;
	}
	*head = strdup(copy);
	if (asprintf(prefix, "%s%s", plen ? slash : "", plen ? "/" : "") < 0)
		*prefix = NULL;
	free(copy);
	if (*head && *prefix)
		return 0;
	free(*head);
	free(*prefix);
	*head = *prefix = NULL;
	return -ENOMEM;
}

int backend_list_add(struct backend_list_acc *acc, const char *key, uint64_t size)
{
	if (acc->n == acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 1024;
		struct backend_list_item *v = realloc(acc->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		acc->v = v;
		acc->cap = cap;
	}
	if (!(acc->v[acc->n].key = strdup(key)))
		return -ENOMEM;
	acc->v[acc->n++].size = size;
	return 0;
}

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct backend_list_item *)a)->key, ((const struct backend_list_item *)b)->key);
}

int backend_list_emit(struct backend_list_acc *acc, int rc, backend_list_cb cb, void *arg)
{
	size_t i;

	if (rc == 0 && acc->n)
		qsort(acc->v, acc->n, sizeof(*acc->v), item_cmp);
	for (i = 0; i < acc->n; i++) {
		if (rc == 0)
			rc = cb(acc->v[i].key, acc->v[i].size, arg);
		free(acc->v[i].key);
	}
	free(acc->v);
	acc->v = NULL;
	acc->n = acc->cap = 0;
	return rc;
}

void backend_run_threads(int n, void *(*fn)(void *), void *arg)
{
	pthread_t *th = n > 0 ? calloc((size_t)n, sizeof(*th)) : NULL;
	int i, started = 0;

	for (i = 0; th && i < n; i++) {
		if (pthread_create(&th[i], NULL, fn, arg) != 0)
			break;
		started++;
	}
	if (started == 0)
		fn(arg);	/* no thread to be had: do it here */
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
}

int backend_check_range(long status, const char *content_range, int64_t content_length, size_t got,
			uint64_t off, size_t len, uint64_t *total, char *why, size_t whylen)
{
	unsigned long long a, z, t;

	if (status == 206) {
		if (sscanf(content_range, "bytes %llu-%llu/%llu", &a, &z, &t) != 3 || z < a || z >= t) {
			snprintf(why, whylen, "a ranged answer without a valid Content-Range ('%.60s')", content_range);
			return -1;
		}
		if (a != off || z - a + 1 != got || z >= off + len || (z != off + len - 1 && z != t - 1)) {
			snprintf(why, whylen, "the answer holds bytes %llu-%llu (%zu received), not the %zu asked for"
				 " at %llu", a, z, got, len, (unsigned long long)off);
			return -1;
		}
	} else if (status == 200) {
		/* the whole object: only right when we asked from 0 and it fits */
		if (off != 0 || (content_length >= 0 && (uint64_t)content_length != got)) {
			snprintf(why, whylen, "a whole-object answer (%zu bytes) to a ranged request", got);
			return -1;
		}
		t = got;
	} else {
		snprintf(why, whylen, "unexpected status %ld to a ranged GET", status);
		return -1;
	}
	if (content_length >= 0 && (uint64_t)content_length != got) {
		snprintf(why, whylen, "%zu bytes received of the %lld announced", got, (long long)content_length);
		return -1;
	}
	*total = t;
	return 0;
}

int backend_sha_matches(const void *buf, size_t len, const char *want)
{
	char hash[SHA256_HEX_LEN + 1];
	struct sha256 sh;

	if (sha256_init(&sh))
		return -ENOMEM;
	sha256_update(&sh, buf, len);
	sha256_final(&sh, hash);
	sha256_release(&sh);
	return strcmp(hash, want) == 0;
}

void backend_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void backend_wipe_free(char *p)
{
	if (p) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}
