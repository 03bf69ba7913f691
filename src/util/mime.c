/*
 * mime.c - magic-byte sniffing for the formats a memories library holds.
 *
 * A table of (offset, magic) signatures, checked in order; the first match
 * wins.  Container formats that share a prefix (RIFF, ISO-BMFF "ftyp") are
 * told apart by the bytes after it.
 */
#include "mime.h"

#include <string.h>
#include <strings.h>

#include "util/utf8.h"

struct sig {
	size_t off;
	const char *magic;
	size_t len;
	const char *mime;
	const char *type;
};

#define SIG(off, m, mime, type) { off, m, sizeof(m) - 1, mime, type }

static const struct sig sigs[] = {
	SIG(0, "\xff\xd8\xff", "image/jpeg", "image"),
	SIG(0, "\x89PNG\r\n\x1a\n", "image/png", "image"),
	SIG(0, "GIF87a", "image/gif", "image"),
	SIG(0, "GIF89a", "image/gif", "image"),
	SIG(8, "WEBP", "image/webp", "image"),	/* after RIFF....: checked with RIFF below */
	SIG(0, "II*\0", "image/tiff", "image"),
	SIG(0, "MM\0*", "image/tiff", "image"),
	SIG(0, "BM", "image/bmp", "image"),
	SIG(4, "ftypheic", "image/heic", "image"),
	SIG(4, "ftypheix", "image/heic", "image"),
	SIG(4, "ftypmif1", "image/heif", "image"),
	SIG(4, "ftypmsf1", "image/heif", "image"),
	SIG(4, "ftypavif", "image/avif", "image"),
	SIG(4, "ftypqt  ", "video/quicktime", "video"),
	SIG(4, "ftyp3gp", "video/3gpp", "video"),
	SIG(4, "ftypM4A ", "audio/mp4", "audio"),
	SIG(4, "ftyp", "video/mp4", "video"),
	SIG(0, "\x1a\x45\xdf\xa3", "video/x-matroska", "video"),
	SIG(8, "AVI ", "video/x-msvideo", "video"),
	SIG(8, "WAVE", "audio/wav", "audio"),
	SIG(0, "ID3", "audio/mpeg", "audio"),
	SIG(0, "\xff\xfb", "audio/mpeg", "audio"),
	SIG(0, "fLaC", "audio/flac", "audio"),
	SIG(0, "OggS", "audio/ogg", "audio"),
	SIG(0, "%PDF-", "application/pdf", "document"),
	SIG(0, "PK\x03\x04", "application/zip", "document"),
};

/* Valid UTF-8 without control characters other than line breaks and tabs;
 * a sequence cut by the end of the sniffed bytes still counts. */
static int looks_like_text(const unsigned char *p, size_t n)
{
	size_t i = 0;

	if (n == 0)
		return 0;
	while (i < n) {
		size_t len = utf8_seq_len(p + i, n - i);

		if (len == 0)
			return n - i < 4 && p[i] >= 0xc2 && i > 0;
		if (p[i] < 0x20 && p[i] != '\n' && p[i] != '\r' && p[i] != '\t')
			return 0;
		if (p[i] == 0x7f)
			return 0;
		i += len;
	}
	return 1;
}

static int has_ext(const char *name, const char *ext)
{
	const char *dot = name ? strrchr(name, '.') : NULL;

	return dot && strcasecmp(dot + 1, ext) == 0;
}

struct mime_type mime_sniff(const void *head, size_t n, const char *name)
{
	const unsigned char *p = head;
	struct mime_type t = { "application/octet-stream", "document" };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		const struct sig *s = &sigs[i];

		if (n < s->off + s->len || memcmp(p + s->off, s->magic, s->len) != 0)
			continue;
		if (s->off == 8 && memcmp(p, "RIFF", 4) != 0)
			continue;
		t.mime = s->mime;
		t.memory_type = s->type;
		return t;
	}
	if (looks_like_text(p, n)) {
		if (has_ext(name, "md") || has_ext(name, "markdown")) {
			t.mime = "text/markdown";
		} else if (has_ext(name, "html") || has_ext(name, "htm")) {
			t.mime = "text/html";
			t.memory_type = "document";
			return t;
		} else {
			t.mime = "text/plain";
		}
		t.memory_type = "note";
	}
	return t;
}
