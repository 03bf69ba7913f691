/*
 * name.c - display-name validation (see name.h for the rules).
 *
 * UTF-8 is checked strictly (util/utf8.h), so a name read back from
 * PostgreSQL (a UTF8 database) is byte-for-byte the name that was written.
 */
#include "name.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "util/utf8.h"

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
		n = utf8_seq_len(s, len - (size_t)(s - (const unsigned char *)name));
		if (n == 0) {
			*why = "is not valid UTF-8";
			return -EINVAL;
		}
		s += n;
	}
	*why = NULL;
	return 0;
}
