/*
 * name.h - which names a memory can have.
 *
 * A file name in the mount becomes a memory item's display_name (seed 000:
 * "sanitized filename").  We never change a name silently: a name that
 * cannot be stored as it is gets an errno, so `cp` reports it and the user
 * chooses another.
 */
#ifndef MVFS_NAME_H
#define MVFS_NAME_H

#define NAME_MAX_BYTES 255

/* Returns 0 when NAME can be a display name, or
 *   -ENAMETOOLONG  more than 255 bytes
 *   -EINVAL        empty, ".", "..", a '/', a control character (U+0000-U+001F,
 *                  U+007F) or bytes that are not valid UTF-8
 * WHY, when not NULL, receives a short reason for the log line. */
int name_check(const char *name, const char **why);

/*
 * Twins: two memories with the same display name in one folder (made by the
 * web app, which does not keep names unique).  The one with the lowest inode
 * keeps the plain name; each other one is shown with "~" and the first four
 * hex digits of its memory id before the extension:
 *   IMG_0001.jpg  ->  IMG_0001~3f9a.jpg
 * The same memory gets the same name on every listing and every mount.
 */
#define NAME_TWIN_HEX 4

/* The shown name of a twin with DISPLAY name and MEMORY_ID (a uuid) into
 * OUT.  A name too long for the suffix is shortened (at a UTF-8 boundary)
 * to stay within 255 bytes. */
void name_twin(const char *display, const char *memory_id, char out[NAME_MAX_BYTES + 1]);
/* The name a file with DISPLAY name and MEMORY_ID shows: DISPLAY itself;
 * its twin form when TWIN (an older file has that name); and, when DISPLAY
 * cannot be a file name (made by the web app: '/', control characters, '.',
 * '..', empty, over 255 bytes), DISPLAY with every such byte made '_', in
 * its twin form, so it is unique and can be found again by memory id. */
void name_shown(const char *display, const char *memory_id, int twin, char out[NAME_MAX_BYTES + 1]);

/* Whether NAME has a twin's form (stem~hhhh[.ext]): then 1, with the display
 * name in BASE and the hex digits in HEX; else 0. */
int name_twin_parse(const char *name, char base[NAME_MAX_BYTES + 1], char hex[NAME_TWIN_HEX + 1]);

/* Whether NAME is one that operating systems and editors leave in folders
 * (.DS_Store, ._* AppleDouble files, Thumbs.db, desktop.ini, KDE's
 * .directory, LibreOffice's and Office's lock files, vim's swap files, and
 * the temporary names they are written under): such a file is kept as a
 * plain file, never as a memory. */
int name_is_plain(const char *name);

/*
 * Replaced versions: in the trash, a version of a file that a newer one
 * replaced shows as its name with when it was replaced (UTC) before the
 * extension:
 *   IMG_0001.jpg  ->  IMG_0001 (replaced 2026-12-06 19.38.32).jpg
 */
#define NAME_VERSION_STAMP_LEN 19	/* YYYY-MM-DD HH.MM.SS */

/* The shown name of a version of DISPLAY replaced at STAMP into OUT,
 * shortened (at a UTF-8 boundary) to stay within 255 bytes. */
void name_version(const char *display, const char *stamp, char out[NAME_MAX_BYTES + 1]);
/* Whether NAME has a version's form: then 1, with the display name in BASE
 * and the stamp in STAMP; else 0. */
int name_version_parse(const char *name, char base[NAME_MAX_BYTES + 1],
		       char stamp[NAME_VERSION_STAMP_LEN + 1]);

#endif
