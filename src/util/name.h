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

#endif
