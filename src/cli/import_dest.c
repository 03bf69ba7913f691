/*
 * import_dest.c - where `mvaultfs import` puts files: the folder --to
 * names (library, library/PATH or galleries/NAME), the library folders
 * for DIR's folders (made as needed, looked up once, their source's mtime
 * given at the end), and a free name in a gallery, where every file goes
 * flat.
 */
#include "cli/import.h"

#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The folder --to names, referenced in IM->root; -1 after a line. */
int import_open_dest(struct import *im)
{
	char path[PATH_MAX], *save = NULL, *part;
	uint64_t ino = 0;
	int depth = 0, is_dir = 1, rc = 0;

	snprintf(path, sizeof(path), "%s", im->to);
	for (part = strtok_r(path, "/", &save); part; part = strtok_r(NULL, "/", &save), depth++) {
		uint64_t next;

		if (depth == 0) {
			if (strcmp(part, "library") == 0) {
				ino = META_INO_LIBRARY;
				continue;
			}
			if (strcmp(part, "galleries") == 0) {
				ino = META_INO_GALLERIES;
				im->gallery = 1;
				continue;
			}
			break;
		}
		if (im->gallery && depth > 1)
			break;
		if (strcmp(part, ".") == 0 || strcmp(part, "..") == 0)
			break;
		rc = fs_import_lookup(&im->m.fs, ino, part, &next, &is_dir);
		fs_import_put(&im->m.fs, ino);
		ino = rc ? 0 : next;
		if (rc || !is_dir)
			break;
	}
	if (!part && ino && !(im->gallery && depth != 2)) {
		im->root = ino;
		return 0;
	}
	fs_import_put(&im->m.fs, ino);
	if (rc == -ENOENT)
		fprintf(stderr, "mvaultfs import: --to %s: no such folder (make it first: mkdir on a mount)\n",
			im->to);
	else if (rc)
		fprintf(stderr, "mvaultfs import: --to %s: %s\n", im->to, strerror(-rc));
	else if (!is_dir)
		fprintf(stderr, "mvaultfs import: --to %s: not a folder\n", im->to);
	else
		fprintf(stderr, "mvaultfs import: --to %s: give library, library/PATH or galleries/NAME\n", im->to);
	return -1;
}

/* The folder of the library for source folder REL ("" for DIR), made as
 * needed: 0 with *INO, or -errno. */
int import_dest_folder(struct import *im, const char *rel, uint64_t *ino)
{
	char parent[PATH_MAX], src[PATH_MAX * 2];
	const char *slash = strrchr(rel, '/'), *name = slash ? slash + 1 : rel;
	uint64_t *cached, up;
	struct stat st;
	int rc;

	if (!*rel || im->gallery) {
		*ino = im->root;
		return 0;
	}
	if ((cached = g_hash_table_lookup(im->dirs, rel))) {
		*ino = *cached;
		return 0;
	}
	snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - rel) : 0, rel);
	if ((rc = import_dest_folder(im, parent, &up)) != 0)
		return rc;
	snprintf(src, sizeof(src), "%s/%s", im->src, rel);
	if (stat(src, &st) != 0)
		st.st_mode = 0755;
	rc = fs_import_lookup(&im->m.fs, up, name, ino, &(int){ 0 });
	if (rc == -ENOENT) {
		rc = fs_import_folder(&im->m.fs, up, name, st.st_mode, ino);
		if (rc == 0)
			g_hash_table_add(im->made, g_strdup(rel));
	}
	if (rc)
		return rc;
	cached = g_new(uint64_t, 1);
	*cached = *ino;
	g_hash_table_insert(im->dirs, g_strdup(rel), cached);
	return 0;
}

/* Drops what the folder cache holds (a folder moved or removed on a mount
 * meanwhile is looked up again). */
void import_forget_folders(struct import *im)
{
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, im->dirs);
	while (g_hash_table_iter_next(&it, NULL, &v))
		fs_import_put(&im->m.fs, *(uint64_t *)v);
	g_hash_table_remove_all(im->dirs);
}

/* Gives the folders made by this run the mtimes of their sources (rsync
 * -a does the same, after their files). */
void import_folder_times(struct import *im)
{
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, im->dirs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		char src[PATH_MAX * 2];
		struct stat st;

		snprintf(src, sizeof(src), "%s/%s", im->src, (const char *)k);
		if (!g_hash_table_contains(im->made, k) || stat(src, &st) != 0)
			continue;
		fs_import_times(&im->m.fs, *(uint64_t *)v, &st.st_mtim);
	}
}

/* Into a gallery, where the files of every source folder sit side by
 * side, a name another file there has becomes "NAME (2).EXT" (3, ...):
 * never a new version of another photo.  OUT gets NAME when it is free. */
void import_gallery_name(struct import *im, uint64_t dir, const char *name, char *out, size_t len)
{
	const char *dot = strrchr(name, '.');
	int stem = dot && dot != name ? (int)(dot - name) : (int)strlen(name);

	snprintf(out, len, "%s", name);
	for (int n = 2; n < 10000; n++) {
		uint64_t ino;
		int is_dir;

		if (fs_import_lookup(&im->m.fs, dir, out, &ino, &is_dir) != 0)
			return;
		fs_import_put(&im->m.fs, ino);
		snprintf(out, len, "%.*s (%d)%s", stem > 200 ? 200 : stem, name, n, stem < (int)strlen(name) ? dot : "");
	}
}
