/*
 * xdg_thumb.h - thumbnails as the freedesktop.org Thumbnail Managing
 * Standard keeps them: $XDG_CACHE_HOME/thumbnails/SIZE/<md5 of the URI>.png,
 * a PNG whose tEXt chunks Thumb::URI and Thumb::MTime (and Thumb::Size)
 * say which file, in which state, it shows.  A program that finds one whose
 * URI and MTime match the file uses it instead of reading the file.
 *
 * Pure file and byte work (no FUSE, no database): the URI of a path,
 * the file name of a URI's thumbnail, reading and replacing the Thumb::*
 * chunks of a PNG, and writing one as the standard asks (a temporary file
 * in the same folder, 0600, renamed over; folders 0700).
 */
#ifndef MVFS_XDG_THUMB_H
#define MVFS_XDG_THUMB_H

#include <stddef.h>
#include <stdint.h>

/* The sizes written: the standard's folder name and long edge. */
struct xdg_thumb_size {
	const char *dir;	/* "normal", "large" */
	int edge;		/* 128, 256 */
};
#define XDG_THUMB_NSIZES 2
extern const struct xdg_thumb_size xdg_thumb_sizes[XDG_THUMB_NSIZES];

#define XDG_THUMB_URI_MAX 12288		/* a 4 KiB path with every byte escaped */
#define XDG_THUMB_NAME_LEN 36		/* 32 hex digits and ".png" */
#define XDG_THUMB_FILE_MAX (8u << 20)	/* larger PNGs are not read */

/* What a thumbnail's chunks say. */
struct xdg_thumb_tags {
	char uri[XDG_THUMB_URI_MAX];	/* "" when it has none */
	int64_t mtime;			/* -1 when it has none */
	int64_t size;			/* -1 when it has none */
};

/* The file:// URI of absolute path PATH, escaped as GLib's
 * g_filename_to_uri escapes it (which is what GIO, GTK and gThumb look
 * thumbnails up by), into OUT: 0, or -EINVAL (not absolute), -ENAMETOOLONG. */
int xdg_thumb_uri(const char *path, char *out, size_t len);
/* The file name of URI's thumbnail: the MD5 of the URI in hex, ".png". */
void xdg_thumb_name(const char *uri, char out[XDG_THUMB_NAME_LEN + 1]);
/* The thumbnails folder: $XDG_CACHE_HOME/thumbnails, else
 * $HOME/.cache/thumbnails.  0, or -ENOENT when neither is set. */
int xdg_thumb_root(char *out, size_t len);

/* The Thumb::* chunks of PNG (LEN bytes) into T: 0, or -EINVAL when it is
 * no PNG. */
int xdg_thumb_tags_parse(const void *png, size_t len, struct xdg_thumb_tags *t);
/* PNG (LEN bytes) with its Thumb::* tEXt chunks replaced by URI, MTIME,
 * SIZE (< 0: none) and MIME (NULL: none), placed after IHDR: malloc'd,
 * *OUTLEN bytes.  NULL with errno EINVAL (no PNG) or ENOMEM. */
void *xdg_thumb_tag(const void *png, size_t len, const char *uri, int64_t mtime, int64_t size, const char *mime,
		    size_t *outlen);

/* The bytes of file PATH (at most XDG_THUMB_FILE_MAX): malloc'd, *LEN.
 * NULL with errno (ENOENT, EFBIG, ...). */
void *xdg_thumb_read(const char *path, size_t *len);
/* The chunks of thumbnail file PATH into T: 0, -ENOENT, -EINVAL. */
int xdg_thumb_file_tags(const char *path, struct xdg_thumb_tags *t);
/* Writes LEN bytes as file NAME of folder DIR, as the standard asks: DIR
 * made (0700, with its parents) when missing, the bytes into a new
 * temporary file beside NAME (0600), renamed over NAME.  0 or -errno;
 * nothing is left behind on failure. */
int xdg_thumb_write(const char *dir, const char *name, const void *buf, size_t len);

#endif
