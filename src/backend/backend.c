/*
 * backend.c - choosing a backend from a URL, and the content-addressed key.
 *
 * backend_open() looks the URL's scheme up in a static table that maps each
 * scheme to a constructor; a URL without "scheme://" is a local path.  Adding
 * a store means adding one file and one row here.  Schemes we know of but do
 * not implement yet have a NULL constructor, so the user gets "not supported"
 * rather than "invalid URL".
 */
#include "backend/backend.h"
#include "backend/be_local.h"
#include "backend/be_s3.h"
#include "backend/be_icp.h"
#include "backend/be_vblob.h"
#include "util/log.h"

#include <errno.h>
#include <string.h>

struct backend_scheme {
	const char *scheme;	/* without "://" */
	/* REST is what follows "scheme://"; URL is the whole URL, for messages. */
	struct backend *(*open)(const char *rest, const char *url, const struct backend_config *cfg);
};

static struct backend *open_local(const char *rest, const char *url, const struct backend_config *cfg)
{
	if (!*rest) {
		log_error("cannot open store '%s': no path after file://", url);
		errno = EINVAL;
		return NULL;
	}
	return local_backend_open(rest);
}

static const struct backend_scheme schemes[] = {
	{ "file", open_local },
	{ "s3", s3_backend_open },
	{ "vblob", vblob_backend_open },
	{ "icp", icp_backend_open },
};

/* Length of the scheme when URL starts with "scheme://" (letters, digits,
 * '+', '-', '.', starting with a letter, as RFC 3986 says), else 0. */
static size_t scheme_len(const char *url)
{
	size_t i = 0;

	if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
		return 0;
	while (url[i] && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.", url[i]))
		i++;
	return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

struct backend *backend_open(const char *url, const struct backend_config *cfg)
{
	size_t n, i;

	if (!url || !*url) {
		log_error("cannot open store: empty URL");
		errno = EINVAL;
		return NULL;
	}
	n = scheme_len(url);
	if (n == 0)
		return local_backend_open(url);
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strlen(schemes[i].scheme) != n || strncasecmp(url, schemes[i].scheme, n) != 0)
			continue;
		if (!schemes[i].open) {
			log_error("cannot open store '%.*s://...': the %s backend is not supported yet",
				  (int)n, url, schemes[i].scheme);
			errno = EPROTONOSUPPORT;
			return NULL;
		}
		return schemes[i].open(url + n + 3, url, cfg);
	}
	/* Quote only the scheme: the rest of an unknown URL may hold a secret. */
	log_error("cannot open store '%.*s://...': unknown scheme", (int)n, url);
	errno = EINVAL;
	return NULL;
}

int backend_key_valid(const char *key)
{
	size_t len, i, start = 0;

	if (!key)
		return 0;
	len = strnlen(key, 1025);
	if (len == 0 || len > 1024)
		return 0;
	for (i = 0; i <= len; i++) {
		size_t n = i - start;
		char c = key[i];

		if (i < len && c != '/') {
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			      c == '.' || c == '_' || c == '-'))
				return 0;
			continue;
		}
		if (n == 0 || (n == 1 && key[start] == '.') || (n == 2 && key[start] == '.' && key[start + 1] == '.'))
			return 0;
		start = i + 1;
	}
	return 1;
}

int backend_key_prefix_valid(const char *prefix)
{
	char k[BACKEND_KEY_PREFIX_MAX + 1];
	size_t n;

	if (!prefix)
		return 0;
	n = strlen(prefix);
	if (n == 0)
		return 1;
	if (n > BACKEND_KEY_PREFIX_MAX || prefix[n - 1] != '/' || strncmp(prefix, "sha256/", 7) == 0)
		return 0;
	memcpy(k, prefix, n - 1);	/* a valid key once its last '/' goes */
	k[n - 1] = '\0';
	return backend_key_valid(k);
}

void backend_key_for(const char *prefix, const char *sha256_hex, char out[BACKEND_KEY_MAX])
{
	const char *h = sha256_hex;
	size_t n;
	int i;

	out[0] = '\0';
	if (!h || !backend_key_prefix_valid(prefix))
		return;
	for (i = 0; i < 64; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return;
	if (h[64] != '\0')
		return;
	/* PREFIX (at most 48) + "sha256/" + "ab/" + "cd/" + 64 + NUL = at most
	 * 126 bytes, within BACKEND_KEY_MAX. */
	n = strlen(prefix);
	memcpy(out, prefix, n);
	memcpy(out + n, "sha256/", 7);
	out[n + 7] = h[0];
	out[n + 8] = h[1];
	out[n + 9] = '/';
	out[n + 10] = h[2];
	out[n + 11] = h[3];
	out[n + 12] = '/';
	memcpy(out + n + 13, h, 65);
}

const char *backend_key_sha(const char *key)
{
	char want[BACKEND_KEY_MAX], prefix[BACKEND_KEY_PREFIX_MAX + 1];
	const char *slash = key ? strrchr(key, '/') : NULL;
	size_t plen;

	if (!slash || strlen(slash + 1) != 64)
		return NULL;
	/* the prefix is whatever precedes "sha256/ab/cd/<sha>" */
	if ((size_t)(slash + 1 - key) < 13)
		return NULL;
	plen = (size_t)(slash + 1 - key) - 13;
	if (plen > BACKEND_KEY_PREFIX_MAX)
		return NULL;
	memcpy(prefix, key, plen);
	prefix[plen] = '\0';
	backend_key_for(prefix, slash + 1, want);
	return want[0] && strcmp(want, key) == 0 ? slash + 1 : NULL;
}

