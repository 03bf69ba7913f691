/*
 * meta_trash.h - what the desktop trash (the freedesktop.org Trash
 * specification's .Trash-$UID/ at the mount's top, fs_xdgtrash.c) needs to
 * know of .trash/ beyond a listing: where a trashed file was, when it went,
 * and ending its grace period at once ("Empty trash").
 *
 * A whole trashed file only (a tombstoned item's current asset); replaced
 * versions are not the desktop trash's.  Conventions as in meta.h.
 */
#ifndef MVFS_META_TRASH_H
#define MVFS_META_TRASH_H

#include <stdint.h>
#include <time.h>

#include "meta/meta.h"

#define META_ORIGIN_MAX 4096

/* Where trashed file INO was and when it went to the trash. */
struct meta_origin {
	uint64_t ino;
	char path[META_ORIGIN_MAX];	/* relative to the mount's top: "library/2023/a.jpg" */
	struct timespec deleted;	/* tombstoned_at */
};

/* The origins of those of the N files INOS that are whole files in the
 * trash, into OUT (room for N), in no particular order; *GOT how many.
 * One statement.  A file whose folder rows are gone (the web application's)
 * is said to have been in library/ itself. */
int meta_trash_origins(struct meta *m, const uint64_t *inos, int n, struct meta_origin *out, int *got);

/* Ends the grace period of trashed file INO now: it leaves .trash/, and the
 * deletion job takes its bytes at its next sweep, as for any file whose
 * grace period is over (never under legal hold, never while another file
 * shares them).  One statement.  -ENOENT when INO is no whole file in the
 * trash. */
int meta_trash_purge(struct meta *m, uint64_t ino);

#endif
