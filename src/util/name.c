/*
 * name.c - display-name validation (see name.h for the rules).
 *
 * UTF-8 is checked strictly (RFC 3629): no overlong forms, no surrogates,
 * nothing above U+10FFFF, so a name read back from PostgreSQL (UTF8
 * database) is byte-for-byte the name that was written.
 */
#include "name.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at S, or 0 when it is not valid. */
static size_t utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
		       (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

int name_check(const char *name, const char **why)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len = strlen(name);
	const char *dummy;

	if (!why)
		why = &dummy;
	if (len > NAME_MAX_BYTES) {
		*why = "longer than 255 bytes";
		return -ENAMETOOLONG;
	}
	if (len == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		*why = "'.', '..' and the empty name are not file names";
		return -EINVAL;
	}
	while (*s) {
		size_t n;

		if (*s == '/') {
			*why = "contains '/'";
			return -EINVAL;
		}
		if (*s < 0x20 || *s == 0x7f) {
			*why = "contains a control character";
			return -EINVAL;
		}
		n = utf8_seq_len(s);
		if (n == 0) {
			*why = "is not valid UTF-8";
			return -EINVAL;
		}
		s += n;
	}
	*why = NULL;
	return 0;
}
