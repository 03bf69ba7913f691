/*
 * meta_ns.c - changing files in the namespace: create, unlink, move, link,
 * collections of a file, and its attributes.
 *
 * Every change is one transaction.  Names are unique within a folder of the
 * tree (library/, workspace/ and the folders below them), which no single
 * index can say (the name is on the item, the lifecycle on the asset, the
 * folder in a third table), so every change that takes or frees a name
 * first takes a transaction-level advisory lock on (user, folder, name)
 * (meta_lock_name): two creators of one name serialise, and the second sees
 * the first's row.  A file shown in a collection or gallery has its name in
 * its own folder of the tree ("home"); a file made in a collection or
 * gallery lives in library/ itself.
 *
 * Round trips (issue 10): create, unlink, link and a rename within one
 * place's tree are one call each of a server-side function (mvfs_create,
 * mvfs_unlink, mvfs_link, mvfs_move_tree: 0009, 0010), which takes the
 * same name locks there.  Moves through collections, galleries and the
 * trash still run here, statement by statement in one transaction, with
 * the same server-side pieces (mvfs_promote, mvfs_gallery_add/_remove,
 * mvfs_merge, mvfs_tombstone_file), so each rule is written once.
 *
 * Lifecycle: unlink tombstones (asset tombstoned, blob loses a reference, a
 * blob left with none gets a row in the deletion outbox); a move out of the
 * trash restores (the reverse, and a pending deletion is cancelled).  The
 * place rows (folder, collection, galleries) are kept while a file is in the
 * trash, so a restore puts it back where it was.
 *
 * Identity across saves: rsync, editors and exiftool write a new file and
 * rename it over the old one.  When the file moved is such a fresh one (one
 * version, in no gallery) its content becomes a new version of the file it
 * replaces, which keeps its memory, collection and galleries (mvfs_merge).
 * The merged file takes the moved file's inode number: after rename(2) the
 * kernel holds that number for the name, so its caches stay right with no
 * invalidation from inside the request.  The replaced number becomes the
 * replaced version's (in the trash), so a process that still holds it open
 * reads and stats what it opened, as on ext4.  The file's other names, in
 * collections and galleries, are entries the kernel does not cache
 * (fs_ns.c), so they find the new number at once.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/name.h"

#define u64s meta_u64s

static int is_tree(const struct meta_dir *d)
{
	return d->place == META_PLACE_LIBRARY || d->place == META_PLACE_WORKSPACE;
}

/* Locks two names in a fixed order, so crossing moves cannot deadlock. */
static int lock_names(struct meta *m, PGconn *c, uint64_t k1, const char *n1, uint64_t k2, const char *n2)
{
	int first = k1 < k2 || (k1 == k2 && strcmp(n1, n2) <= 0);
	int rc = first ? meta_lock_name(m, c, k1, n1) : meta_lock_name(m, c, k2, n2);

	if (rc == 0 && !(k1 == k2 && strcmp(n1, n2) == 0))
		rc = first ? meta_lock_name(m, c, k2, n2) : meta_lock_name(m, c, k1, n1);
	return rc;
}

/* The tree folder (place and database inode) that holds the name of F. */
static int home_of(struct meta *m, PGconn *c, const struct meta_file *f, enum meta_place *place, uint64_t *dbino)
{
	int rc = meta_home_of(c, f, place, dbino);

	if (rc == -ENOENT) {		/* made by the web application without a place */
		*place = META_PLACE_LIBRARY;
		*dbino = m->top_ino[0];
		rc = 0;
	}
	return rc;
}

/* --- lifecycle ----------------------------------------------------------- */

/* Tombstones a whole file: its current asset (blob reference dropped, a
 * blob left with none in the deletion outbox) and its memory, as
 * mvfs_tombstone_file (0009) does for every caller. */
static int tombstone_file(struct meta *m, PGconn *c, const struct meta_file *f)
{
	const char *p[] = { m->user_id, f->asset_id, f->memory_id };

	return meta_exec(c, "tombstone file", "SELECT mvfs_tombstone_file($1, $2, $3)", 3, p, NULL);
}

/* Brings a tombstoned file back: asset and memory active, the blob's
 * reference back, and its pending deletion cancelled. */
static int restore_file(struct meta *m, PGconn *c, const struct meta_file *f)
{
	const char *q[] = { f->memory_id, m->user_id };
	char blob_id[META_UUID_LEN + 1];
	/* two statements, as in mvfs_tombstone_file */
	int rc = meta_restore_asset(c, f->asset_id, blob_id);

	if (rc == 0 && blob_id[0]) {
		const char *b[] = { blob_id };

		rc = meta_exec(c, "take blob back",
			       "WITH b AS (UPDATE blobs SET ref_count = ref_count + 1 WHERE id = $1 RETURNING id)"
			       " UPDATE asset_delete_jobs SET status = 'cancelled'"
			       " WHERE blob_id = (SELECT id FROM b) AND status = 'pending'", 1, b, NULL);
	}
	if (rc == 0)
		rc = meta_exec(c, "restore memory",
			       "UPDATE memories SET status = CASE WHEN EXISTS (SELECT 1 FROM memory_assets"
			       "   WHERE memory_id = $1 AND upload_status <> 'completed' AND lifecycle_status = 'active')"
			       "   THEN 'pending'::memory_status_t ELSE 'active' END, updated_by = $2"
			       " WHERE id = $1", 2, q, NULL);
	return rc;
}

/* --- places -------------------------------------------------------------- */

/* File F moves to tree folder FOLDER of its place. */
static int folder_set(PGconn *c, const struct meta_file *f, enum meta_place place, uint64_t folder)
{
	char folder_s[24];
	const char *p[] = { f->memory_id, folder_s };

	u64s(folder_s, sizeof(folder_s), folder);
	return meta_exec(c, "move to folder",
			 place == META_PLACE_WORKSPACE
			 ? "UPDATE workspace_assets SET folder_id = (SELECT id FROM folders WHERE ino = $2)"
			   " WHERE memory_id = $1"
			 : "UPDATE user_library SET folder_id = (SELECT id FROM folders WHERE ino = $2)"
			   " WHERE memory_id = $1", 2, p, NULL);
}

/* A place change that shows nowhere else changes the file's ctime. */
static int touch_file(PGconn *c, const struct meta_file *f)
{
	const char *p[] = { f->item_id };

	return meta_exec(c, "touch file", "UPDATE memory_items SET ctime_ns = mvault_ns() WHERE id = $1", 1, p, NULL);
}

static int collection_set(PGconn *c, const struct meta_file *f, uint64_t coll_ino)
{
	char ino_s[24];
	const char *p[] = { f->memory_id, coll_ino ? ino_s : NULL };
	int rc;

	u64s(ino_s, sizeof(ino_s), coll_ino);
	rc = meta_exec(c, "set collection",
		       "UPDATE user_library SET collection_id = (SELECT id FROM user_collections"
		       "                                          WHERE ino = $2::bigint)"
		       " WHERE memory_id = $1", 2, p, NULL);
	return rc ? rc : touch_file(c, f);
}

/* F joins / leaves gallery GALLERY_INO (mvfs_gallery_add, 0010). */
static int gallery_change(struct meta *m, PGconn *c, const struct meta_file *f, uint64_t gallery_ino, int add)
{
	char ino_s[24];
	const char *p[] = { m->user_id, f->memory_id, f->item_id, ino_s };

	u64s(ino_s, sizeof(ino_s), gallery_ino);
	return add ? meta_exec(c, "add to gallery", "SELECT mvfs_gallery_add($1, $2, $3, $4)", 4, p, NULL)
		   : meta_exec(c, "remove from gallery", "SELECT mvfs_gallery_remove($1, $2, $3, $4)", 4, p, NULL);
}

/* A workspace file becomes a library file in tree folder FOLDER: its
 * expiry goes with it (mvfs_promote, 0010).  1 when F was in the
 * workspace, 0 when it was not (nothing changed), or -errno. */
static int promote(struct meta *m, PGconn *c, const struct meta_file *f, uint64_t folder)
{
	char folder_s[24];
	const char *p[] = { m->user_id, f->memory_id, folder_s };

	u64s(folder_s, sizeof(folder_s), folder);
	return meta_query_bool(c, "promote", "SELECT mvfs_promote($1, $2, $3)", 3, p);
}

/* Puts F, which now is in library/ (unfiled or in a collection), into the
 * collection or gallery DIR. */
static int file_into(struct meta *m, PGconn *c, const struct meta_file *f, const struct meta_dir *dir)
{
	switch (dir->place) {
	case META_PLACE_COLLECTION:
		return collection_set(c, f, dir->ino);
	case META_PLACE_GALLERY:
		return gallery_change(m, c, f, dir->ino, 1);
	default:
		return 0;
	}
}

/* --- create -------------------------------------------------------------- */

int meta_create(struct meta *m, const struct meta_dir *dir, const char *name, uint32_t mode,
		const struct timespec *mtime, struct meta_file *out)
{
	char mode_s[16], sec_s[24], nsec_s[16], home_s[24], view_s[24];
	enum meta_place hp = dir->place == META_PLACE_WORKSPACE ? META_PLACE_WORKSPACE : META_PLACE_LIBRARY;
	uint64_t home = is_tree(dir) ? meta_tree_ino(m, dir) : m->top_ino[0];
	const char *view = dir->place == META_PLACE_COLLECTION ? "c" : dir->place == META_PLACE_GALLERY ? "g" : "";
	const char *p[] = { m->user_id, home_s, view, view_s, name, mode_s, sec_s, nsec_s };
	PGresult *r;
	int rc = 0;

	if (dir->place == META_PLACE_TRASH)
		return -EPERM;
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	snprintf(sec_s, sizeof(sec_s), "%lld", (long long)mtime->tv_sec);
	snprintf(nsec_s, sizeof(nsec_s), "%ld", mtime->tv_nsec);
	u64s(home_s, sizeof(home_s), home);
	u64s(view_s, sizeof(view_s), dir->ino);
	/* a collection or gallery shows files from many folders: the name must
	 * be free there too (rare: one more statement) */
	if (!is_tree(dir)) {
		rc = meta_lookup(m, dir, name, out);
		rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
	}
	if (rc == 0)
		rc = meta_call(m, "create file", "SELECT * FROM mvfs_create($1, $2, $3, $4, $5, $6, $7, $8)", 8, p, &r);
	if (rc == -EEXIST) {
		/* the caller wants the file in the way (an unfinished upload?) */
		int found = META_ON_CONN(m, c, meta_find_named(m, c, hp, home, name, out));

		rc = found == 0 || found == -ENOENT ? -EEXIST : found;
	}
	if (rc)
		return rc;
	/* what a new, empty file is: no second round trip to read it back */
	memset(out, 0, sizeof(*out));
	out->ino = meta_u64(r, 0, 0);
	META_COPY(out->memory_id, r, 0, 1);
	META_COPY(out->item_id, r, 0, 2);
	META_COPY(out->asset_id, r, 0, 3);
	out->ctime.tv_sec = (time_t)(meta_u64(r, 0, 4) / 1000000000ULL);
	out->ctime.tv_nsec = (long)(meta_u64(r, 0, 4) % 1000000000ULL);
	out->crtime.tv_sec = (time_t)(meta_u64(r, 0, 5) / 1000000ULL);
	out->crtime.tv_nsec = (long)(meta_u64(r, 0, 5) % 1000000ULL) * 1000;
	META_COPY(out->created_at, r, 0, 6);
	PQclear(r);
	snprintf(out->display_name, sizeof(out->display_name), "%s", name);
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->mode = mode & 07777;
	out->mtime = *mtime;
	out->atime = *mtime;
	out->nlink = 1 + (*view != '\0');
	snprintf(out->status, sizeof(out->status), "pending");
	out->upload = META_UPLOAD_PENDING;
	snprintf(out->processing_status, sizeof(out->processing_status), "pending");
	out->lifecycle = META_LIFE_ACTIVE;
	snprintf(out->mime, sizeof(out->mime), "application/octet-stream");
	return 0;
}

/* --- unlink -------------------------------------------------------------- */

/* The place argument of our functions (mvfs_shown, 0010). */
static const char *place_name(enum meta_place place)
{
	switch (place) {
	case META_PLACE_LIBRARY:
		return "library";
	case META_PLACE_WORKSPACE:
		return "workspace";
	case META_PLACE_COLLECTION:
		return "collection";
	case META_PLACE_GALLERY:
		return "gallery";
	default:
		return NULL;
	}
}

int meta_unlink(struct meta *m, const struct meta_dir *dir, const char *name, uint64_t *ino)
{
	char base[NAME_MAX_BYTES + 1], hex[NAME_TWIN_HEX + 1], dir_s[24], ino_s[24];
	const char *p[] = { m->user_id, place_name(dir->place), dir_s, name, NULL };
	struct meta_file f;
	PGresult *r;
	int rc;

	if (dir->place == META_PLACE_TRASH || !p[1])
		return -EPERM;
	u64s(dir_s, sizeof(dir_s), is_tree(dir) ? meta_tree_ino(m, dir) : dir->ino);
	/* A twin's name (or a web-app name shown cleaned up) says which file
	 * by the C name rules (util/name.c): found first, then named to the
	 * function by display name and inode number. */
	if (name_twin_parse(name, base, hex)) {
		if ((rc = meta_lookup(m, dir, name, &f)) != 0)
			return rc;
		u64s(ino_s, sizeof(ino_s), f.ino);
		p[3] = f.display_name;
		p[4] = ino_s;
	}
	rc = meta_call(m, "unlink", "SELECT mvfs_unlink($1, $2, $3, $4, $5)", 5, p, &r);
	if (rc)
		return rc;
	if (ino)
		*ino = meta_u64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* --- move ---------------------------------------------------------------- */

/* Whether F is a fresh file whose content may become a new version of the
 * file it replaces: one version, in no gallery.  1, 0 or -errno. */
static int is_fresh(PGconn *c, const struct meta_file *f)
{
	const char *p[] = { f->item_id, f->memory_id };

	return meta_query_bool(c, "fresh file?",
			       "SELECT (SELECT count(*) FROM memory_assets WHERE memory_item_id = $1"
			       "        AND variant_of_asset_id IS NULL) = 1"
			       " AND NOT EXISTS (SELECT 1 FROM gallery_items WHERE memory_id = $2)", 2, p);
}

/* Makes the content of fresh file F a new version of file T, which keeps
 * its memory, places and name and takes F's inode number, mode and times;
 * F's own rows go.  T's old content becomes a replaced version.  The one
 * save-merge, mvfs_merge (0010), which mvfs_move_tree calls too. */
static int merge_into(struct meta *m, PGconn *c, const struct meta_file *f, const struct meta_file *t)
{
	char age_s[16], days_s[16];
	const char *p[] = { m->user_id, f->item_id, t->item_id, age_s, days_s };

	snprintf(age_s, sizeof(age_s), "%d", m->version_min_age);
	snprintf(days_s, sizeof(days_s), "%d", m->trash_days);
	return meta_exec(c, "merge versions", "SELECT mvfs_merge($1, $2, $3, $4, $5)", 5, p, NULL);
}

/* Takes F out of view or trash FROM on its way to TO: restored from the
 * trash, out of a gallery, out of its collection (unless TO is another). */
static int file_out_of(struct meta *m, PGconn *c, const struct meta_file *f, const struct meta_dir *from,
		       const struct meta_dir *to)
{
	switch (from->place) {
	case META_PLACE_TRASH:
		return restore_file(m, c, f);
	case META_PLACE_COLLECTION:
		return to->place == META_PLACE_COLLECTION ? 0 : collection_set(c, f, 0);
	case META_PLACE_GALLERY:
		return gallery_change(m, c, f, from->ino, 0);
	default:
		return 0;
	}
}

/* Puts F, taken out of FROM, into TO, whose name lives in tree folder
 * NHOME of place NHP (F lived in HOME of HP). */
static int file_to(struct meta *m, PGconn *c, const struct meta_file *f, const struct meta_dir *to,
		   enum meta_place hp, uint64_t home, enum meta_place nhp, uint64_t nhome)
{
	int rc = 0;

	if (hp == META_PLACE_WORKSPACE && nhp == META_PLACE_LIBRARY && (rc = promote(m, c, f, nhome)) == 1)
		rc = 0;
	else if (rc == 0 && home != nhome)
		rc = folder_set(c, f, nhp, nhome);
	if (rc == 0 && !is_tree(to))
		rc = file_into(m, c, f, to);
	return rc;
}

static int move_any(struct meta *m, const struct meta_dir *from, const char *name,
		    const struct meta_dir *to, const char *newname, unsigned flags, uint64_t *replaced);

/* meta_move within one place's tree, for names that are no twin's: one
 * call of mvfs_move_tree (0009). */
static int move_in_tree(struct meta *m, const struct meta_dir *from, const char *name, const struct meta_dir *to,
			const char *newname, unsigned flags, uint64_t *replaced)
{
	char from_s[24], to_s[24], age_s[16], days_s[16];
	const char *p[] = { m->user_id, from_s, name, to_s, newname, (flags & META_MOVE_NOREPLACE) ? "t" : "f",
			    age_s, days_s };
	PGresult *r;
	int rc;

	u64s(from_s, sizeof(from_s), meta_tree_ino(m, from));
	u64s(to_s, sizeof(to_s), meta_tree_ino(m, to));
	snprintf(age_s, sizeof(age_s), "%d", m->version_min_age);
	snprintf(days_s, sizeof(days_s), "%d", m->trash_days);
	rc = meta_call(m, "move file", "SELECT mvfs_move_tree($1, $2, $3, $4, $5, $6, $7, $8)", 8, p, &r);
	if (rc)
		return rc;
	*replaced = meta_u64(r, 0, 0);
	PQclear(r);
	return 0;
}

int meta_move(struct meta *m, const struct meta_dir *from, const char *name,
	      const struct meta_dir *to, const char *newname, unsigned flags, uint64_t *replaced)
{
	char base[NAME_MAX_BYTES + 1], hex[NAME_TWIN_HEX + 1];

	if (is_tree(from) && is_tree(to) && from->place == to->place && !name_twin_parse(name, base, hex) &&
	    !name_twin_parse(newname, base, hex)) {
		*replaced = 0;
		return move_in_tree(m, from, name, to, newname, flags, replaced);
	}
	return move_any(m, from, name, to, newname, flags, replaced);
}

/* meta_move anywhere: views, the trash, twins. */
static int move_any(struct meta *m, const struct meta_dir *from, const char *name,
		    const struct meta_dir *to, const char *newname, unsigned flags, uint64_t *replaced)
{
	struct meta_file f, target;
	const char *newdisp = newname;
	enum meta_place hp = 0, nhp = 0;
	uint64_t home = 0, nhome = 0;
	int same_view = from->place == to->place && from->ino == to->ino;

	*replaced = 0;
	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find(m, c, from, name, &f);
	if (rc == 0 && f.is_version)
		rc = -EPERM;
	if (rc == 0)
		rc = home_of(m, c, &f, &hp, &home);
	if (rc == 0) {
		/* A name that stays as it is keeps its stored form (a twin's
		 * suffix is not written into it). */
		newdisp = strcmp(newname, f.name) == 0 ? f.display_name : newname;
		if (is_tree(to)) {
			nhp = to->place;
			nhome = meta_tree_ino(m, to);
		} else if (hp == META_PLACE_WORKSPACE) {
			nhp = META_PLACE_LIBRARY;	/* promoted into library/ */
			nhome = m->top_ino[0];
		} else {
			nhp = hp;
			nhome = home;
		}
		rc = lock_names(m, c, home, f.display_name, nhome, newdisp);
	}
	/* again, under the locks: a crossing move may have won meanwhile */
	if (rc == 0) {
		uint64_t was = f.ino;

		rc = meta_find(m, c, from, name, &f);
		if (rc == 0 && f.ino != was)
			rc = -ENOENT;	/* the file moved away; the name is another's now */
		if (rc == 0)
			newdisp = strcmp(newname, f.name) == 0 ? f.display_name : newname;
	}
	if (rc == 0 && same_view && newdisp == f.display_name)
		goto done;		/* mv a a */
	if (rc == 0 && (home != nhome || strcmp(newdisp, f.display_name) != 0)) {
		if ((rc = meta_has_subfolder(c, nhome, newdisp)) == 1)
			rc = (flags & META_MOVE_NOREPLACE) ? -EEXIST : -EISDIR;
		if (rc == 0)
			rc = meta_find_named(m, c, nhp, nhome, newdisp, &target);
		if (rc == 0 && target.ino != f.ino) {
			if (flags & META_MOVE_NOREPLACE) {
				rc = -EEXIST;
			} else if (from->place != META_PLACE_TRASH && target.upload != META_UPLOAD_PENDING &&
				   (rc = is_fresh(c, &f)) == 1) {
				rc = merge_into(m, c, &f, &target);
				*replaced = target.ino;
				if (rc == 0 && !is_tree(to)) {
					struct meta_file merged = target;

					merged.ino = f.ino;
					rc = file_into(m, c, &merged, to);
				}
				goto done;
			} else if (rc == 0 && (rc = tombstone_file(m, c, &target)) == 0) {
				*replaced = target.ino;
			}
		} else if (rc == -ENOENT || rc == 0) {
			rc = 0;
		}
	}
	if (rc == 0 && newdisp != f.display_name) {
		const char *p[] = { f.item_id, newdisp };

		rc = meta_exec(c, "rename", "UPDATE memory_items SET display_name = $2 WHERE id = $1", 2, p, NULL);
	}
	if (rc == 0 && !same_view)
		rc = file_out_of(m, c, &f, from, to);
	if (rc == 0 && !same_view)
		rc = file_to(m, c, &f, to, hp, home, nhp, nhome);
done:
	TX_END(m, c, rc);
}

/* --- link ------------------------------------------------------------------ */

int meta_link(struct meta *m, uint64_t ino, const struct meta_dir *dir, const char *newname,
	      struct meta_file *out)
{
	char base[NAME_MAX_BYTES + 1], hex[NAME_TWIN_HEX + 1], twin[NAME_MAX_BYTES + 1], ino_s[24], dir_s[24];
	const char *p[] = { m->user_id, ino_s, dir_s, newname };
	struct meta_file f, there;
	int rc;

	if (dir->place != META_PLACE_GALLERY)
		return -EPERM;
	u64s(ino_s, sizeof(ino_s), ino);
	u64s(dir_s, sizeof(dir_s), dir->ino);
	/* A name in a twin's form takes the C name rules (util/name.c): is it
	 * one of the file's names, and does the gallery show a file by it?
	 * Then the function is told the name was checked (NULL). */
	if (name_twin_parse(newname, base, hex)) {
		if ((rc = meta_file_get(m, ino, &f)) != 0)
			return rc;
		if (f.lifecycle != META_LIFE_ACTIVE || f.is_version)
			return -ENOENT;
		name_twin(f.display_name, f.memory_id, twin);
		if (strcmp(newname, f.display_name) != 0 && strcmp(newname, f.name) != 0 && strcmp(newname, twin) != 0)
			return -EPERM;
		rc = meta_lookup(m, dir, newname, &there);
		if (rc != -ENOENT)
			return rc == 0 ? -EEXIST : rc;
		if (strcmp(newname, f.display_name) != 0)
			p[3] = NULL;
	}
	rc = meta_call_file(m, "link", "SELECT * FROM mvfs_link($1, $2, $3, $4)", 4, p, out);
	/* mvfs_link (0010, deployed) raises MV022, EINVAL, for a name that is
	 * not the file's own; the README promises EPERM, what the model
	 * forbids.  Names were checked before, so no other EINVAL comes back. */
	return rc == -EINVAL ? -EPERM : rc;
}

/* --- collections of a file, attributes ----------------------------------- */

int meta_file_collection(struct meta *m, uint64_t ino, char *name, size_t len)
{
	char ino_s[24];
	const char *p[] = { m->user_id, ino_s };
	PGconn *c = meta_conn_get(m);
	PGresult *r;
	int rc;

	if (!c)
		return -EIO;
	u64s(ino_s, sizeof(ino_s), ino);
	rc = meta_exec(c, "collection of file",
		       "SELECT uc.name FROM memory_items i JOIN user_library l ON l.memory_id = i.memory_id"
		       " JOIN user_collections uc ON uc.id = l.collection_id WHERE i.user_id = $1 AND i.ino = $2",
		       2, p, &r);
	meta_conn_put(m, c);
	if (rc)
		return rc;
	rc = PQntuples(r) ? 0 : -ENODATA;
	if (rc == 0)
		snprintf(name, len, "%s", meta_val(r, 0, 0));
	PQclear(r);
	return rc;
}

int meta_file_set_collection(struct meta *m, uint64_t ino, const char *name)
{
	struct meta_folder coll;
	struct meta_file f;
	PGresult *r;

	TX_BEGIN(m, c, rc);
	if (rc == 0)
		rc = meta_find_ino(m, c, ino, &f);
	if (rc == 0 && f.lifecycle != META_LIFE_ACTIVE)
		rc = -EPERM;
	if (rc == 0 && name)
		rc = meta_find_folder(m, c, &(struct meta_dir){ META_PLACE_COLLECTION, META_INO_COLLECTIONS }, name,
				      &coll);
	if (rc == 0) {
		const char *p[] = { f.memory_id };

		rc = meta_exec(c, "in library?", "SELECT 1 FROM user_library WHERE memory_id = $1", 1, p, &r);
		if (rc == 0) {
			rc = PQntuples(r) ? 0 : -EPERM;
			PQclear(r);
		}
	}
	if (rc == 0)
		rc = collection_set(c, &f, name ? coll.ino : 0);
	TX_END(m, c, rc);
}

int meta_file_setattr(struct meta *m, uint64_t ino, unsigned flags, uint32_t mode,
		      const struct timespec *mtime, const struct timespec *atime, struct meta_file *out)
{
	char ino_s[24], mode_s[16], sec_s[24], nsec_s[16], at_s[32];
	const char *p[] = { m->user_id, ino_s, (flags & META_SET_MODE) ? mode_s : NULL,
			    (flags & META_SET_MTIME) ? sec_s : NULL, (flags & META_SET_MTIME) ? nsec_s : NULL,
			    (flags & META_SET_ATIME) ? at_s : NULL };

	u64s(ino_s, sizeof(ino_s), ino);
	snprintf(mode_s, sizeof(mode_s), "%u", mode & 07777);
	if (mtime) {
		snprintf(sec_s, sizeof(sec_s), "%lld", (long long)mtime->tv_sec);
		snprintf(nsec_s, sizeof(nsec_s), "%ld", mtime->tv_nsec);
	}
	if (atime)
		snprintf(at_s, sizeof(at_s), "%lld", (long long)atime->tv_sec * 1000000000LL + atime->tv_nsec);
	return META_ON_CONN(m, c, meta_change_file(c, "set attributes",
				"UPDATE memory_items SET mode = coalesce($3::integer, mode),"
				" mtime = coalesce(to_timestamp($4::bigint), mtime),"
				" mtime_nsec = coalesce($5::integer, mtime_nsec),"
				" atime_ns = coalesce($6::bigint, atime_ns), ctime_ns = mvault_ns()"
				" WHERE user_id = $1 AND ino = $2 RETURNING *", 6, p, out));
}

/* --- for the background jobs (meta_jobs_internal.h) ---------------------- */

/* The unlink path's tombstone of a whole file, for workspace expiry: on
 * the caller's connection and transaction, acting for USER_ID. */
int meta_ns_tombstone(PGconn *c, const char *user_id, const char *asset_id, const char *memory_id)
{
	struct meta m = { 0 };
	struct meta_file f = { 0 };

	snprintf(m.user_id, sizeof(m.user_id), "%s", user_id);
	snprintf(f.asset_id, sizeof(f.asset_id), "%s", asset_id);
	snprintf(f.memory_id, sizeof(f.memory_id), "%s", memory_id);
	return tombstone_file(&m, c, &f);
}
