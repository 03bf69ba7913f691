/*
 * meta_conninfo.h - connection strings without their secrets showing.
 *
 * A libpq connection string (URI "postgresql://u:PW@host/db?password=PW"
 * or key=value "host=h password='PW'") may carry a password.  These calls
 * check and complete one with libpq's own parser, hide its password in the
 * process's command line and environment, and keep it out of messages.
 */
#ifndef MVFS_META_CONNINFO_H
#define MVFS_META_CONNINFO_H

#include <stddef.h>

/* Checks CONNINFO with libpq's parser and returns the string to connect
 * with: a malloc'd copy, with passfile=PASSFILE added when PASSFILE is not
 * NULL (then in key=value form).  On failure returns NULL with one line in
 * ERR that never holds the password (libpq's parse errors quote the URI). */
char *meta_conninfo_prepare(const char *conninfo, const char *passfile, char *err, size_t errlen);

/* Overwrites with '*', in place, every password value in the LEN bytes at
 * S (a connection string; need not end in NUL there): the password of a
 * URI's user info, a URI's password= parameter, a key=value password
 * (quoted or not).  The length stays, so S may be a slice of argv or of
 * the environment.  Returns how many bytes it overwrote. */
size_t meta_conninfo_scrub(char *s, size_t len);

/* Replaces each appearance of CONNINFO's password in MSG (a NUL-terminated
 * message in a buffer of SIZE bytes) with "***", as written in CONNINFO
 * and as libpq decodes it.  MSG stays NUL-terminated (truncated to fit). */
void meta_conninfo_redact(const char *conninfo, char *msg, size_t size);

#endif
