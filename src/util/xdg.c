/*
 * xdg.c - checks of the values of the desktop attributes (xdg.h).
 *
 * The database checks the same (mvfs_xdg_set) for callers other than the
 * daemon; here the daemon refuses before asking it, with a reason for the
 * one log line.
 */
#include "util/xdg.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "util/utf8.h"

int xdg_name(const char *name)
{
	return strcmp(name, XDG_TAGS) == 0 || strcmp(name, XDG_COMMENT) == 0 || strcmp(name, XDG_RATING) == 0;
}

static int refuse(int rc, const char *reason, const char **why)
{
	if (why)
		*why = reason;
	return rc;
}

/* Whether the SIZE bytes at S hold a control character other than the
 * ones ALLOWED lets through. */
static int has_control(const char *s, size_t size, const char *allowed)
{
	for (size_t i = 0; i < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 || c == 0x7f) && !(c && strchr(allowed, c)))
			return 1;
	}
	return 0;
}

static int check_tags(const char *v, size_t size, const char **why)
{
	if (size > XDG_TAGS_MAX)
		return refuse(-E2BIG, "the tags are over 8192 bytes", why);
	for (size_t i = 0; i < size;) {
		size_t end = i, a, b;

		while (end < size && v[end] != ',')
			end++;
		for (a = i; a < end && v[a] == ' '; a++)
			;
		for (b = end; b > a && v[b - 1] == ' '; b--)
			;
		if (b - a > XDG_TAG_MAX)
			return refuse(-E2BIG, "a tag is over 255 bytes", why);
		i = end + 1;
	}
	return 0;
}

static int check_rating(const char *v, size_t size, const char **why)
{
	size_t i = 0, digits = 0;
	long n = 0;
	int neg = 0;

	while (i < size && isspace((unsigned char)v[i]))
		i++;
	if (i < size && (v[i] == '+' || v[i] == '-'))
		neg = v[i++] == '-';
	for (; i < size && isdigit((unsigned char)v[i]) && digits < 10; i++, digits++)
		n = n * 10 + (v[i] - '0');
	while (i < size && isspace((unsigned char)v[i]))
		i++;
	if (digits == 0 || digits > 9 || i != size)
		return refuse(-EINVAL, "a rating is a whole number, 0-10", why);
	if (neg ? n != 0 : n > XDG_RATING_MAX)
		return refuse(-ERANGE, "a rating is 0-10 (stars x 2)", why);
	return 0;
}

int xdg_check(const char *name, const char *value, size_t size, const char **why)
{
	int rating = strcmp(name, XDG_RATING) == 0, comment = strcmp(name, XDG_COMMENT) == 0;

	if (!utf8_valid(value, size))
		return refuse(-EINVAL, "the value is not valid UTF-8", why);
	if (has_control(value, size, comment ? "\t\n\r" : rating ? "\t\n\r\v\f" : ""))
		return refuse(-EINVAL, "the value holds a control character", why);
	if (rating)
		return check_rating(value, size, why);
	if (comment && size > XDG_COMMENT_MAX)
		return refuse(-E2BIG, "a title is over 4096 bytes", why);
	return comment ? 0 : check_tags(value, size, why);
}
