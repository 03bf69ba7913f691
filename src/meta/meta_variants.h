/*
 * meta_variants.h - reading the display and thumb variants of originals,
 * for the .display/ and .thumb/ folders of the mount.
 *
 * A variant is a memory_assets row with variant_of_asset_id = the
 * original's id and variant_type 'display' or 'thumb' (seed 000).  It is
 * ready when its row is active and its bytes are in the store; only ready
 * variants are returned.  Conventions as in meta.h.
 */
#ifndef MVFS_META_VARIANTS_H
#define MVFS_META_VARIANTS_H

#include <stdint.h>
#include <time.h>

#include "meta/meta.h"

struct meta_variant {
	char original_id[META_UUID_LEN + 1];
	char type[16];			/* "display" or "thumb" */
	char sha256[65];
	char key[META_KEY_MAX];
	char mime[64];			/* image/webp, image/avif */
	uint64_t size;
	int width, height;
	struct timespec mtime;		/* when it was made */
};

/* The ready variant TYPE of original ORIGINAL_ID.  -ENOENT when it has none. */
int meta_variant_get(struct meta *m, const char *original_id, const char *type, struct meta_variant *out);

/* The ready variant TYPE of file INO, whose original must be active (not
 * in .trash/), in one statement.  -ENOENT when there is no such file or it
 * has none. */
int meta_variant_of_file(struct meta *m, uint64_t ino, const char *type, struct meta_variant *out);

/* The ready variants TYPE of the N originals IDS (one statement).  OUT
 * (N entries) receives them in any order; *NOUT how many there are. */
int meta_variants_of(struct meta *m, const char *const *ids, int n, const char *type,
		     struct meta_variant *out, int *nout);

/* Does folder DIR show an original with a ready variant TYPE?  1, 0, or
 * -errno.  (.trash/ shows originals only: always 0.) */
int meta_variants_any(struct meta *m, const struct meta_dir *dir, const char *type);

/* What processing found out about an original. */
struct meta_processing {
	char status[META_STATUS_MAX];	/* processing_status */
	char error[512];		/* processing_error, "" when none */
	int width, height;		/* 0 until processed */
	char color_space[32];
};
int meta_processing_get(struct meta *m, const char *asset_id, struct meta_processing *out);

#endif
