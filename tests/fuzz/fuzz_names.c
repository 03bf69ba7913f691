/*
 * fuzz_names.c - libFuzzer target: any bytes as a file name and as a store
 * key (make fuzz).
 *
 * Names come from users (the mount) and from the web app (the database);
 * keys from the database and the store's own listings.  Besides what
 * AddressSanitizer and UBSan catch, it aborts when the name rules of
 * util/name.h or backend_key_valid() break their word: a name accepted is
 * a file name; every display name is shown as one, twin or not, and a
 * twin's name is read back as a twin's; a replaced version's name gives
 * back its stamp; a valid key never climbs out of its prefix, and is a
 * valid prefix once a '/' ends it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "util/name.h"

static const char memory_id[] = "3f9a0c1e-7b2d-4c55-9e1a-0d6f2b8c4e71";
static const char stamp[] = "2026-12-06 19.38.32";

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static void names(const char *in, size_t len)
{
	char out[NAME_MAX_BYTES + 1], base[NAME_MAX_BYTES + 1], st[NAME_VERSION_STAMP_LEN + 1];
	int valid = name_check(in, NULL) == 0, twin;

	if (valid && (len == 0 || len > NAME_MAX_BYTES || strchr(in, '/') || has_control(in) ||
		      strcmp(in, ".") == 0 || strcmp(in, "..") == 0))
		abort();
	for (twin = 0; twin <= 1; twin++) {
		name_shown(in, memory_id, twin, out);
		if (name_check(out, NULL) != 0 || (valid && !twin && strcmp(out, in) != 0))
			abort();
		if (twin && !name_twin_parse(out, base, st))	/* a twin is read back as one */
			abort();
	}
	if (valid && !strstr(in, " (replaced ")) {
		name_version(in, stamp, out);
		if (name_check(out, NULL) != 0 || !name_version_parse(out, base, st) || strcmp(st, stamp) != 0)
			abort();
		if (len + strlen(" (replaced ") + NAME_VERSION_STAMP_LEN + 1 <= NAME_MAX_BYTES && strcmp(base, in) != 0)
			abort();
	}
	name_is_plain(in);
	name_twin_parse(in, base, st);
	name_version_parse(in, base, st);
}

static void keys(const char *in, size_t len)
{
	char prefix[BACKEND_KEY_PREFIX_MAX + 2];

	if (!backend_key_valid(in))
		return;
	if (len == 0 || len > 1024 || in[0] == '/' || in[len - 1] == '/' || strstr(in, "//") ||
	    strcmp(in, "..") == 0 || strncmp(in, "../", 3) == 0 || strstr(in, "/../") ||
	    (len >= 3 && strcmp(in + len - 3, "/..") == 0))
		abort();
	if (len < BACKEND_KEY_PREFIX_MAX) {
		memcpy(prefix, in, len);
		prefix[len] = '/';
		prefix[len + 1] = '\0';
		/* the blobs' own folder is no prefix */
		if (!backend_key_prefix_valid(prefix) != (strncmp(prefix, "sha256/", 7) == 0))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);

	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';	/* a NUL inside ends the name, as it would in C */
	names(in, strlen(in));
	keys(in, strlen(in));
	free(in);
	return 0;
}
