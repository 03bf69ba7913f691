/*
 * utf8.h - strict UTF-8 (RFC 3629): no overlong forms, no surrogates,
 * nothing above U+10FFFF.
 */
#ifndef MVFS_UTF8_H
#define MVFS_UTF8_H

#include <stddef.h>

/* Length (1-4) of the valid sequence at S, which has AVAIL bytes left;
 * 0 when the bytes are not valid UTF-8 or the sequence is cut short. */
size_t utf8_seq_len(const unsigned char *s, size_t avail);
/* Whether the LEN bytes at S are all valid UTF-8. */
int utf8_valid(const char *s, size_t len);

#endif
