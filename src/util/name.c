/*
 * name.c - display-name validation (see name.h for the rules).
 *
 * UTF-8 is checked strictly (util/utf8.h), so a name read back from
 * PostgreSQL (a UTF8 database) is byte-for-byte the name that was written.
 */
#include "name.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/* Where the extension of NAME starts (its last '.', not the first byte and
 * not the last), or the end of NAME. */
static size_t ext_start(const char *name, size_t len)
{
	const char *dot = strrchr(name, '.');

	if (!dot || dot == name || (size_t)(dot - name) == len - 1)
		return len;
	return (size_t)(dot - name);
}

void name_twin(const char *display, const char *memory_id, char out[NAME_MAX_BYTES + 1])
{
	size_t len = strlen(display), ext = ext_start(display, len), stem;

	if (len - ext + 1 + NAME_TWIN_HEX > NAME_MAX_BYTES)
		ext = len;		/* an extension that long is no extension */
	stem = ext;
	if (stem + 1 + NAME_TWIN_HEX + (len - ext) > NAME_MAX_BYTES) {
		stem = NAME_MAX_BYTES - 1 - NAME_TWIN_HEX - (len - ext);
		/* do not cut a UTF-8 sequence: back up to its lead byte */
		while (stem > 0 && ((unsigned char)display[stem] & 0xc0) == 0x80)
			stem--;
	}
	snprintf(out, NAME_MAX_BYTES + 1, "%.*s~%.*s%s", (int)stem, display, NAME_TWIN_HEX, memory_id,
		 display + ext);
}

/* Whether NAME is a twin with its suffix ending at EXT: then 1, with BASE
 * and HEX filled in. */
static int twin_at(const char *name, size_t ext, char base[NAME_MAX_BYTES + 1], char hex[NAME_TWIN_HEX + 1])
{
	const char *tilde;

	if (ext < NAME_TWIN_HEX + 1)
		return 0;
	tilde = name + ext - NAME_TWIN_HEX - 1;
	if (*tilde != '~')
		return 0;
	for (int i = 1; i <= NAME_TWIN_HEX; i++)
		if (!strchr("0123456789abcdef", tilde[i]) || !tilde[i])
			return 0;
	snprintf(base, NAME_MAX_BYTES + 1, "%.*s%s", (int)(tilde - name), name, name + ext);
	snprintf(hex, NAME_TWIN_HEX + 1, "%.*s", NAME_TWIN_HEX, tilde + 1);
	return 1;
}

int name_twin_parse(const char *name, char base[NAME_MAX_BYTES + 1], char hex[NAME_TWIN_HEX + 1])
{
	size_t len = strlen(name);

	/* Before the extension; or at the end, where name_twin puts it when
	 * the name has none it keeps: one ending in a dot ("notes." ->
	 * "notes.~3f9a", whose last dot is no longer the last byte) or one too
	 * long to keep. */
	return twin_at(name, ext_start(name, len), base, hex) || twin_at(name, len, base, hex);
}

void name_shown(const char *display, const char *memory_id, int twin, char out[NAME_MAX_BYTES + 1])
{
	const unsigned char *s = (const unsigned char *)display;
	size_t len = strlen(display), w = 0;
	char clean[1024];

	if (name_check(display, NULL) == 0) {
		if (twin)
			name_twin(display, memory_id, out);
		else
			snprintf(out, NAME_MAX_BYTES + 1, "%s", display);
		return;
	}
	/* Not a file name: '_' for what cannot be in one.  The result is
	 * always shown in twin form, found again by its memory id. */
	while (*s && w < sizeof(clean) - 5) {
		size_t n = utf8_seq_len(s, len - (size_t)(s - (const unsigned char *)display));

		if (n == 0 || *s < 0x20 || *s == 0x7f || *s == '/') {
			clean[w++] = '_';
			s += n ? n : 1;
		} else {
			memcpy(clean + w, s, n);
			w += n;
			s += n;
		}
	}
	clean[w] = '\0';
	if (strcmp(clean, "") == 0 || strcmp(clean, ".") == 0 || strcmp(clean, "..") == 0)
		snprintf(clean, sizeof(clean), "_");
	name_twin(clean, memory_id, out);
}

#define VERSION_OPEN " (replaced "

void name_version(const char *display, const char *stamp, char out[NAME_MAX_BYTES + 1])
{
	size_t len = strlen(display), ext = ext_start(display, len), stem, mark;

	mark = strlen(VERSION_OPEN) + NAME_VERSION_STAMP_LEN + 1;
	if (len - ext + mark > NAME_MAX_BYTES)
		ext = len;
	stem = ext;
	if (stem + mark + (len - ext) > NAME_MAX_BYTES) {
		stem = NAME_MAX_BYTES - mark - (len - ext);
		while (stem > 0 && ((unsigned char)display[stem] & 0xc0) == 0x80)
			stem--;
	}
	snprintf(out, NAME_MAX_BYTES + 1, "%.*s" VERSION_OPEN "%.*s)%s", (int)stem, display,
		 NAME_VERSION_STAMP_LEN, stamp, display + ext);
}

int name_version_parse(const char *name, char base[NAME_MAX_BYTES + 1],
		       char stamp[NAME_VERSION_STAMP_LEN + 1])
{
	const char *open = NULL, *p = name;
	size_t olen = strlen(VERSION_OPEN);

	while ((p = strstr(p, VERSION_OPEN)) != NULL)
		open = p++;
	if (!open || strlen(open + olen) < NAME_VERSION_STAMP_LEN + 1 || open[olen + NAME_VERSION_STAMP_LEN] != ')')
		return 0;
	for (int i = 0; i < NAME_VERSION_STAMP_LEN; i++) {
		char ch = open[olen + i];
		int digit = i != 4 && i != 7 && i != 10 && i != 13 && i != 16;

		if (digit && (ch < '0' || ch > '9'))
			return 0;
		if (!digit && ch != (i == 4 || i == 7 ? '-' : i == 10 ? ' ' : '.'))
			return 0;
	}
	memcpy(stamp, open + olen, NAME_VERSION_STAMP_LEN);
	stamp[NAME_VERSION_STAMP_LEN] = '\0';
	snprintf(base, NAME_MAX_BYTES + 1, "%.*s%s", (int)(open - name), name, open + olen + NAME_VERSION_STAMP_LEN + 1);
	return 1;
}

/* Whether the LEN bytes at NAME are a plain file's name by themselves. */
static int plain_itself(const char *name, size_t len)
{
	static const char *const exact[] = { ".DS_Store", ".directory", ".localized", "Thumbs.db", "ehthumbs.db",
					     "desktop.ini", ".hidden" };
	static const char *const prefix[] = { "._", ".~lock.", "~$", ".DS_Store.", ".directory.", "Thumbs.db.",
					      "desktop.ini." };

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strlen(exact[i]) == len && strncasecmp(name, exact[i], len) == 0)
			return 1;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (len >= strlen(prefix[i]) && strncmp(name, prefix[i], strlen(prefix[i])) == 0)
			return 1;
	/* vim: .NAME.swp, .swo, ..., .swx */
	return len > 5 && name[0] == '.' && name[len - 4] == '.' && name[len - 3] == 's' && name[len - 2] == 'w' &&
	       ((name[len - 1] >= 'a' && name[len - 1] <= 'p') || name[len - 1] == 'x');
}

int name_is_plain(const char *name)
{
	size_t len = strlen(name), end = len;
	uint64_t starts = 1;	/* bit S: the bytes [S, END) of NAME are a candidate */

	if (len > NAME_MAX_BYTES)	/* no file name: nothing leaves it in a folder */
		return plain_itself(name, len);
	/* rsync's temporary name for NAME is .NAME.XXXXXX (NAME.XXXXXX when
	 * NAME starts with a dot), and NAME may be one itself: each level
	 * takes a 7-byte suffix off, and maybe a leading dot.  The candidates
	 * are walked a level at a time, each start once (at most 255 / 7
	 * levels, so a start is under 64): tried as a tree, they took time
	 * exponential in the levels (found by make fuzz). */
	while (starts) {
		uint64_t next = 0;

		for (size_t s = 0; s < 64; s++) {
			if (!(starts >> s & 1))
				continue;
			if (plain_itself(name + s, end - s))
				return 1;
			if (end - s > 7 && name[end - 7] == '.') {
				next |= 1ull << s;
				if (name[s] == '.' && end - 7 - s >= 2)
					next |= 1ull << (s + 1);
			}
		}
		if (next)
			end -= 7;
		starts = next;
	}
	return 0;
}
