/*
 * xdg.h - the values desktop tools give the three extended attributes that
 * carry the web application's tags, favourite flag and title
 * (0025_xdg_attrs.sql; docs/DECISIONS.md, "Tags, favourites and titles as
 * desktop attributes").
 *
 * KDE's KFileMetaData writes tags joined with ',' (older versions ", "),
 * reads them split at ',' dropping empty parts, and writes a rating 1-10
 * (stars x 2) as a decimal number, removing the attribute for 0.
 */
#ifndef MVFS_XDG_H
#define MVFS_XDG_H

#include <stddef.h>

#define XDG_TAGS "user.xdg.tags"	/* user_library.tags */
#define XDG_COMMENT "user.xdg.comment"	/* user_library.custom_title */
#define XDG_RATING "user.baloo.rating"	/* user_library.is_favorite */

#define XDG_TAGS_MAX 8192	/* bytes of a whole tags value */
#define XDG_TAG_MAX 255		/* bytes of one tag, without the blanks around it */
#define XDG_COMMENT_MAX 4096	/* bytes of a title */
#define XDG_RATING_MAX 10

/* Whether NAME is one of the three. */
int xdg_name(const char *name);

/* Returns 0 when the SIZE bytes at VALUE may be given to attribute NAME
 * (one of the three), or
 *   -EINVAL  not valid UTF-8; a control character (a title may hold tabs
 *            and line breaks); a rating that is not a whole number
 *   -E2BIG   past the limits above
 *   -ERANGE  a rating outside 0-10
 * WHY, when not NULL, receives a short reason for the log line. */
int xdg_check(const char *name, const char *value, size_t size, const char **why);

#endif
