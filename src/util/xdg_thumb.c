/*
 * xdg_thumb.c - thumbnail files of the freedesktop.org Thumbnail Managing
 * Standard: URIs, names, Thumb::* chunks, atomic writes.
 *
 * The URI and the MD5 are GLib's own (g_filename_to_uri, GChecksum): a
 * program looks a thumbnail up by the MD5 of the URI it makes itself, and
 * every GTK program makes it with g_filename_to_uri, so an escaping of our
 * own that differed in one byte (which characters stay bare) would name a
 * file nobody looks at.
 *
 * A PNG is a signature and chunks (length, type, data, CRC-32 of type and
 * data).  The Thumb::* chunks are tEXt ("key\0value"); a new set goes
 * right after IHDR, where the standard's writers put them and before IDAT,
 * so a reader that stops at the first IDAT still sees them.
 */
#include "util/xdg_thumb.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

const struct xdg_thumb_size xdg_thumb_sizes[XDG_THUMB_NSIZES] = {
	{ "normal", 128 },
	{ "large", 256 },
};

static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

int xdg_thumb_uri(const char *path, char *out, size_t len)
{
	gchar *uri;
	int rc = 0;

	if (!path || path[0] != '/')
		return -EINVAL;
	uri = g_filename_to_uri(path, NULL, NULL);
	if (!uri)
		return -EINVAL;
	if (snprintf(out, len, "%s", uri) >= (int)len)
		rc = -ENAMETOOLONG;
	g_free(uri);
	return rc;
}

void xdg_thumb_name(const char *uri, char out[XDG_THUMB_NAME_LEN + 1])
{
	gchar *md5 = g_compute_checksum_for_string(G_CHECKSUM_MD5, uri, -1);

	snprintf(out, XDG_THUMB_NAME_LEN + 1, "%s.png", md5 ? md5 : "");
	g_free(md5);
}

int xdg_thumb_root(char *out, size_t len)
{
	const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;

	/* the base directory specification: a relative value is invalid */
	if (cache && cache[0] == '/')
		n = snprintf(out, len, "%s/thumbnails", cache);
	else if (home && home[0] == '/')
		n = snprintf(out, len, "%s/.cache/thumbnails", home);
	else
		return -ENOENT;
	return n < (int)len ? 0 : -ENAMETOOLONG;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Walks the chunks of PNG: calls FN for each with its offset and data
 * length, until FN returns non-zero or IEND.  0, or -EINVAL for no PNG (a
 * bad signature, or a chunk running past the end). */
typedef int (*chunk_fn)(void *arg, const unsigned char *png, size_t off, uint32_t dlen);
static int chunks(const void *png, size_t len, chunk_fn fn, void *arg)
{
	const unsigned char *p = png;
	size_t off = sizeof(png_sig);

	if (len < off || memcmp(p, png_sig, sizeof(png_sig)) != 0)
		return -EINVAL;
	while (off + 12 <= len) {
		uint32_t dlen = be32(p + off);

		if (dlen > len - off - 12)
			return -EINVAL;
		if (fn(arg, p, off, dlen))
			return 0;
		if (memcmp(p + off + 4, "IEND", 4) == 0)
			return 0;
		off += 12 + (size_t)dlen;
	}
	return -EINVAL;
}

/* Whether the chunk at OFF is a tEXt chunk of a Thumb:: key. */
static int is_thumb_text(const unsigned char *png, size_t off, uint32_t dlen)
{
	return memcmp(png + off + 4, "tEXt", 4) == 0 && dlen > 7 && memcmp(png + off + 8, "Thumb::", 7) == 0;
}

static int64_t parse_i64(const char *v, size_t n)
{
	char buf[32], *end;
	long long x;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	errno = 0;
	x = strtoll(buf, &end, 10);
	return errno || *end || x < 0 ? -1 : (int64_t)x;
}

static int read_tag(void *arg, const unsigned char *png, size_t off, uint32_t dlen)
{
	struct xdg_thumb_tags *t = arg;
	const char *d = (const char *)png + off + 8;
	const char *nul;
	size_t vlen;

	if (memcmp(png + off + 4, "IDAT", 4) == 0)
		return 1;	/* the standard's chunks come before the pixels */
	if (!is_thumb_text(png, off, dlen) || !(nul = memchr(d, '\0', dlen)))
		return 0;
	vlen = dlen - (size_t)(nul + 1 - d);
	if (strcmp(d, "Thumb::URI") == 0 && vlen < sizeof(t->uri)) {
		memcpy(t->uri, nul + 1, vlen);
		t->uri[vlen] = '\0';
	} else if (strcmp(d, "Thumb::MTime") == 0) {
		t->mtime = parse_i64(nul + 1, vlen);
	} else if (strcmp(d, "Thumb::Size") == 0) {
		t->size = parse_i64(nul + 1, vlen);
	}
	return 0;
}

int xdg_thumb_tags_parse(const void *png, size_t len, struct xdg_thumb_tags *t)
{
	t->uri[0] = '\0';
	t->mtime = -1;
	t->size = -1;
	return chunks(png, len, read_tag, t);
}

/* Appends a tEXt chunk KEY=VALUE at *W. */
static unsigned char *put_text(unsigned char *w, const char *key, const char *value)
{
	size_t kl = strlen(key) + 1, vl = strlen(value);
	uLong crc;

	put_be32(w, (uint32_t)(kl + vl));
	memcpy(w + 4, "tEXt", 4);
	memcpy(w + 8, key, kl);
	memcpy(w + 8 + kl, value, vl);
	crc = crc32(0L, w + 4, (uInt)(4 + kl + vl));
	put_be32(w + 8 + kl + vl, (uint32_t)crc);
	return w + 12 + kl + vl;
}

struct retag {
	unsigned char *w;
	const char *texts[4][2];
	int ntexts;
};

static int copy_chunk(void *arg, const unsigned char *png, size_t off, uint32_t dlen)
{
	struct retag *r = arg;

	if (is_thumb_text(png, off, dlen))
		return 0;	/* replaced */
	memcpy(r->w, png + off, 12 + (size_t)dlen);
	r->w += 12 + (size_t)dlen;
	if (memcmp(png + off + 4, "IHDR", 4) == 0)
		for (int i = 0; i < r->ntexts; i++)
			r->w = put_text(r->w, r->texts[i][0], r->texts[i][1]);
	return 0;
}

void *xdg_thumb_tag(const void *png, size_t len, const char *uri, int64_t mtime, int64_t size, const char *mime,
		    size_t *outlen)
{
	char mt[24], sz[24];
	struct retag r = { 0 };
	unsigned char *out;
	size_t extra = 0;

	snprintf(mt, sizeof(mt), "%lld", (long long)mtime);
	snprintf(sz, sizeof(sz), "%lld", (long long)size);
	r.texts[r.ntexts][0] = "Thumb::URI";
	r.texts[r.ntexts++][1] = uri;
	r.texts[r.ntexts][0] = "Thumb::MTime";
	r.texts[r.ntexts++][1] = mt;
	if (size >= 0) {
		r.texts[r.ntexts][0] = "Thumb::Size";
		r.texts[r.ntexts++][1] = sz;
	}
	if (mime) {
		r.texts[r.ntexts][0] = "Thumb::Mimetype";
		r.texts[r.ntexts++][1] = mime;
	}
	for (int i = 0; i < r.ntexts; i++)
		extra += 12 + strlen(r.texts[i][0]) + 1 + strlen(r.texts[i][1]);
	if (len < sizeof(png_sig) || memcmp(png, png_sig, sizeof(png_sig)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	if (!(out = malloc(len + extra)))
		return NULL;
	memcpy(out, png_sig, sizeof(png_sig));
	r.w = out + sizeof(png_sig);
	if (chunks(png, len, copy_chunk, &r) != 0) {
		free(out);
		errno = EINVAL;
		return NULL;
	}
	*outlen = (size_t)(r.w - out);
	return out;
}

void *xdg_thumb_read(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), e;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > XDG_THUMB_FILE_MAX) {
		e = fstat(fd, &st) != 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL : EFBIG;
		close(fd);
		errno = e;
		return NULL;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

int xdg_thumb_file_tags(const char *path, struct xdg_thumb_tags *t)
{
	size_t len = 0;
	void *buf = xdg_thumb_read(path, &len);
	int rc;

	if (!buf)
		return -errno;
	rc = xdg_thumb_tags_parse(buf, len, t);
	free(buf);
	return rc;
}

int xdg_thumb_write(const char *dir, const char *name, const void *buf, size_t len)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	const char *p = buf;
	size_t done = 0;
	int fd, rc = 0;

	if (snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.mvaultfs-XXXXXX", dir, name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if (g_mkdir_with_parents(dir, 0700) != 0)
		return -errno;
	fd = mkostemp(tmp, O_CLOEXEC);	/* 0600 */
	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);

		if (n < 0) {
			rc = -errno;
			break;
		}
		done += (size_t)n;
	}
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, dst) != 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}
