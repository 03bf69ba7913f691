/*
 * import.c - `mvaultfs import [--watch] DIR --to library/PATH|galleries/NAME`:
 * a folder's files into the library, with no mount.
 *
 * The engine is a mount's (engine.h: database, store, cache, the
 * filesystem), and every file goes in through fs_import_write, which does
 * what the kernel's requests for `cp -p` through a mount do: the same
 * records, names, folders, journal, upload and variant jobs.  What import
 * adds is around that:
 *
 *  - Dedup by content.  Each file is hashed first; content the library
 *    already holds (meta_find_content: any library file of the user, where
 *    ever it was moved since) or that this run imported already costs no
 *    version, no blob row and no upload: a rerun does nothing.
 *  - The tree.  DIR's folders become folders under library/PATH (made as
 *    needed, with their mode and, for those made here, their mtime);
 *    into a gallery, which holds no folders, every file goes flat.
 *  - --watch (inotify, import_watch.c): after the pass over what is there, files closed
 *    after writing or moved in, and folders made or moved in (watched and
 *    read at once), are imported once they have settled: no event and no
 *    change of size or mtime for --settle seconds.  A queue overflow reads
 *    the whole tree again (what was imported is known by size and mtime,
 *    and not hashed again).  SIGINT or SIGTERM ends it.
 *  - --delete-after: a source file goes only once its content is in the
 *    store and recorded (as fsync(2) on a mount waits for), and only when it
 *    still has the size and mtime it was imported with.
 *  - At the end import waits for the uploads (the files of a data folder
 *    are uploaded by whoever opens it next, and other mounts list a file
 *    only once its upload is done); after a signal at most
 *    IMPORT_STOP_WAIT s, and a second one leaves the rest in the
 *    journal for the next import or mount.
 */
#include "cli/import.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/name.h"
#include "util/sha256.h"


static void import_usage(FILE *f)
{
	fprintf(f,
		"usage: mvaultfs import [--watch] [--settle SECS] [--delete-after] [-o OPTIONS] DIR\n"
		"                       --to library[/PATH] | --to galleries/NAME\n"
		"  Imports DIR's files (recursive) as a copy through a mount would: the same\n"
		"  records, names and folders, mtimes kept, variants queued.  Content the\n"
		"  library holds already is skipped (by SHA-256): a rerun costs nothing.\n"
		"  --to must be an existing folder of library/ or a gallery (files go flat).\n"
		"  --watch          then import what is written or moved into DIR (inotify)\n"
		"                   until SIGINT or SIGTERM\n"
		"  --settle SECS    a file is imported once unchanged this long (default 3)\n"
		"  --delete-after   remove each source file once its content is in the store\n"
		"  -o OPTIONS       as for a mount: db=, db_passfile=, store=, data_dir=, user=,\n"
		"                   S3, Vercel Blob, ICP and cache options (mvaultfs --help)\n");
}

/* Whether a signal came (without waiting); a second one while finishing
 * says: stop waiting for uploads. */
int import_signalled(struct import *im)
{
	struct signalfd_siginfo si;

	while (read(im->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (im->stopping++ == 0)
			im->stopped_at = progress_elapsed(&im->p);
	return im->stopping;
}

/* Whether to go on waiting for uploads: until a second signal, and after a
 * first one at most IMPORT_STOP_WAIT s (a store that is down must not keep
 * a stopping service from ending: what waits stays journalled). */
static int keep_waiting(struct import *im)
{
	int n = import_signalled(im);

	return n == 0 || (n == 1 && progress_elapsed(&im->p) - im->stopped_at < IMPORT_STOP_WAIT);
}

void import_line(struct import *im, const char *rel, const char *fmt, const char *why)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, why);
	progress_say(&im->p, "mvaultfs import: '%s': %s", rel, msg);
}

void import_show(struct import *im, int force)
{
	char b[32], t[32], r[32], eta[32] = "?";
	uint64_t done = im->bytes + im->dup_bytes, seen = im->files + im->dups + im->failed + im->ignored;
	double secs = progress_elapsed(&im->p), rate = secs > 0 ? (double)done / secs : 0;

	/* the rates are of what was gone through (read and hashed; written when
	 * new), which is what the time left depends on */
	progress_bytes((double)done, b, sizeof(b));
	progress_bytes(rate, r, sizeof(r));
	if (im->total_files) {
		progress_bytes((double)im->total_bytes, t, sizeof(t));
		if (rate > 0)
			progress_clock((double)(im->total_bytes > done ? im->total_bytes - done : 0) / rate, eta,
				       sizeof(eta));
		progress_show(&im->p, force, "import: %llu/%llu files, %s/%s, %s/s, %.1f files/s, ETA %s",
			      (unsigned long long)seen, (unsigned long long)im->total_files, b, t, r,
			      secs > 0 ? (double)seen / secs : 0, eta);
	} else {
		progress_show(&im->p, force, "import: %llu imported, %llu already there, %s, %s/s%s",
			      (unsigned long long)im->files, (unsigned long long)im->dups, b, r,
			      im->watch ? "; watching" : "");
	}
}

/* --- one file ------------------------------------------------------------- */

static void delete_later(struct import *im, const char *path, const char *sha, const struct stat *st)
{
	struct gone_later *g = g_new0(struct gone_later, 1);

	g->path = g_strdup(path);
	snprintf(g->sha256, sizeof(g->sha256), "%s", sha);
	g->size = st->st_size;
	g->mtime = st->st_mtim;
	g_ptr_array_add(im->gone_later, g);
}

/* Removes the source files whose content is in the store by now (WAIT:
 * waiting for each as long as keep_waiting says). */
void import_delete_sources(struct import *im, int wait)
{
	for (guint i = 0; i < im->gone_later->len;) {
		struct gone_later *g = g_ptr_array_index(im->gone_later, i);
		struct stat st;
		int rc;

		wait = wait && keep_waiting(im);
		while ((rc = cache_wait_uploaded(im->m.cache, g->sha256, wait ? 1 : 0)) == -ETIMEDOUT && wait)
			wait = keep_waiting(im);
		if (rc == -ETIMEDOUT) {
			i++;
			continue;
		}
		if (rc) {
			import_line(im, g->path, "kept: its upload failed (%s)", strerror(-rc));
		} else if (lstat(g->path, &st) != 0 || st.st_size != g->size ||
			   st.st_mtim.tv_sec != g->mtime.tv_sec || st.st_mtim.tv_nsec != g->mtime.tv_nsec) {
			import_line(im, g->path, "kept: it changed after it was imported%s", "");
		} else if (unlink(g->path) != 0) {
			import_line(im, g->path, "cannot delete it: %s", strerror(errno));
		} else {
			im->deleted++;
		}
		g_free(g->path);
		g_free(g);
		g_ptr_array_remove_index_fast(im->gone_later, i);
	}
}

/* Opens source file REL (at PATH) for import, with *ST: the fd, or -1
 * (after a line when it is a file import cannot take; silently when it is
 * gone or ignored). */
static int open_source(struct import *im, const char *rel, const char *path, struct stat *st)
{
	const char *slash = strrchr(rel, '/');
	int fd;

	if (name_is_plain(slash ? slash + 1 : rel)) {
		im->ignored++;	/* .DS_Store and the like: no memories */
		return -1;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return -1;	/* gone meanwhile (watch: moved on) */
	if (fd >= 0 && fstat(fd, st) == 0 && S_ISREG(st->st_mode))
		return fd;
	if (fd < 0 && errno == ELOOP)
		import_line(im, rel, "skipped: a symbolic link (a library holds files)%s", "");
	else if (fd >= 0 && !S_ISREG(st->st_mode))
		import_line(im, rel, "skipped: not a regular file%s", "");
	else
		import_line(im, rel, "skipped: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	im->failed++;
	return -1;
}

/* Writes FD (source REL, ST) into its folder of the library: 0 with the
 * hash of what was written in SHA, or -errno. */
static int write_source(struct import *im, const char *rel, int fd, const struct stat *st, char *sha)
{
	const char *slash = strrchr(rel, '/'), *name = slash ? slash + 1 : rel;
	char folder[PATH_MAX], as[256];
	uint64_t dir;
	int rc;

	snprintf(folder, sizeof(folder), "%.*s", slash ? (int)(slash - rel) : 0, rel);
	for (int again = 0; again < 2; again++) {
		rc = import_dest_folder(im, folder, &dir);
		if (rc == 0 && im->gallery)
			import_gallery_name(im, dir, name, as, sizeof(as));
		if (rc == 0)
			rc = fs_import_write(&im->m.fs, dir, im->gallery ? as : name, fd, (uint64_t)st->st_size,
					     st->st_mode, &st->st_mtim, sha);
		if (rc != -ENOENT)
			break;
		import_forget_folders(im);	/* a folder of the cache went meanwhile: look again */
	}
	return rc;
}

/* Imports source file REL (relative to DIR): 0 imported, 1 already
 * there, -1 not imported (after a line when it failed). */
static int import_file(struct import *im, const char *rel)
{
	char path[PATH_MAX * 2], sha[65], sealed[65];
	struct meta_file found;
	struct known *k;
	struct stat st;
	int fd, rc, result = 0;

	snprintf(path, sizeof(path), "%s/%s", im->src, rel);
	if ((fd = open_source(im, rel, path, &st)) < 0)
		return -1;
	k = g_hash_table_lookup(im->known, rel);
	if (k && k->size == st.st_size && k->mtime.tv_sec == st.st_mtim.tv_sec &&
	    k->mtime.tv_nsec == st.st_mtim.tv_nsec) {
		close(fd);	/* seen as it is (a rescan after an overflow) */
		return 1;
	}
	if ((rc = sha256_fd(fd, (uint64_t)st.st_size, sha)) != 0) {
		close(fd);
		import_line(im, rel, "skipped: cannot read it: %s", strerror(-rc));
		im->failed++;
		return -1;
	}
	if (g_hash_table_contains(im->contents, sha) ||
	    (rc = meta_find_content(im->m.meta, sha, &found)) == 0) {
		/* in the library already: this run's, or found completed (a file
		 * another mount still uploads keeps its source) */
		if (im->delete_after && (g_hash_table_contains(im->contents, sha) ||
					 found.upload == META_UPLOAD_COMPLETED))
			delete_later(im, path, sha, &st);
		im->dups++;
		im->dup_bytes += (uint64_t)st.st_size;
		result = 1;
	} else if (rc != -ENOENT) {
		close(fd);
		import_line(im, rel, "skipped: cannot ask the database: %s", strerror(-rc));
		im->failed++;
		return -1;
	} else if ((rc = write_source(im, rel, fd, &st, sealed)) == 0) {
		g_hash_table_add(im->contents, g_strdup(sealed));	/* written to while read: what was read last is in */
		if (im->delete_after)
			delete_later(im, path, sealed, &st);
		im->files++;
		im->bytes += (uint64_t)st.st_size;
	} else {
		close(fd);
		import_line(im, rel, "skipped: %s", rc == -EISDIR ? "a folder of the library has its name"
					     : rc == -EPERM ? "refused by the library's rules (see the log)"
					     : rc == -EINVAL || rc == -ENAMETOOLONG ? "its name cannot be a library name"
					       " (see the log)"
					     : strerror(-rc));
		im->failed++;
		return -1;
	}
	close(fd);
	k = g_new(struct known, 1);
	k->size = st.st_size;
	k->mtime = st.st_mtim;
	g_hash_table_replace(im->known, g_strdup(rel), k);
	return result;
}

/* --- the tree ------------------------------------------------------------- */

/* Calls FN for each file of folder REL (recursive, in name order); with
 * --watch each folder is watched before it is read, so nothing made in it
 * meanwhile is missed.  COUNT: only adds up the files and bytes. */
void import_walk(struct import *im, const char *rel, int count, void (*fn)(struct import *, const char *))
{
	char path[PATH_MAX * 2], sub[PATH_MAX];
	struct dirent **list;
	int n;

	if (!count && im->watch)
		import_watch_folder(im, rel);
	snprintf(path, sizeof(path), "%s%s%s", im->src, *rel ? "/" : "", rel);
	n = scandir(path, &list, NULL, alphasort);
	if (n < 0) {
		if (!count && errno != ENOENT) {
			import_line(im, *rel ? rel : ".", "folder skipped: %s", strerror(errno));
			im->failed++;
		}
		return;
	}
	for (int i = 0; i < n; i++) {
		struct dirent *de = list[i];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || (!count && import_signalled(im))) {
			free(de);
			continue;
		}
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		snprintf(path, sizeof(path), "%s/%s", im->src, sub);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			import_walk(im, sub, count, fn);
		} else if (count) {
			im->total_files++;
			im->total_bytes += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
		} else {
			fn(im, sub);
		}
		free(de);
	}
	free(list);
}

void import_now(struct import *im, const char *rel)
{
	import_file(im, rel);
	if (im->delete_after)
		import_delete_sources(im, 0);
	import_show(im, 0);
}

/* --- finishing ------------------------------------------------------------ */

/* Waits until every imported file is in the store (or keep_waiting says no). */
static void finish_uploads(struct import *im)
{
	struct cache_stats st;

	for (;;) {
		char left[32], rate[32], eta[32];

		cache_stats(im->m.cache, &st);
		if (st.staged_files == 0 || !keep_waiting(im))
			break;
		progress_bytes((double)st.staged_bytes, left, sizeof(left));
		progress_bytes(st.upload_rate, rate, sizeof(rate));
		progress_clock(st.upload_rate > 0 ? (double)st.staged_bytes / st.upload_rate : -1, eta, sizeof(eta));
		progress_show(&im->p, 0, "import: uploading %llu file(s), %s left, %s/s, ETA %s",
			      (unsigned long long)st.staged_files, left, rate, eta);
		usleep(100000);
	}
	if (st.staged_files)
		progress_say(&im->p, "mvaultfs import: %llu file(s) not uploaded yet: they are kept, and the next"
			     " import (or mount) of this data folder uploads them", (unsigned long long)st.staged_files);
}

static void summary(struct import *im)
{
	char b[32], r[32], d[32];
	double secs = progress_elapsed(&im->p);

	progress_clear(&im->p);
	progress_bytes((double)im->bytes, b, sizeof(b));
	progress_bytes(secs > 0 ? (double)im->bytes / secs : 0, r, sizeof(r));
	progress_bytes((double)im->dup_bytes, d, sizeof(d));
	printf("imported %llu file(s), %s, in %.1f s (%.1f files/s, %s/s) into %s\n",
	       (unsigned long long)im->files, b, secs, secs > 0 ? (double)im->files / secs : 0, r, im->to);
	printf("already in the library: %llu file(s), %s (nothing written)\n", (unsigned long long)im->dups, d);
	if (im->ignored)
		printf("ignored: %llu system file(s) (.DS_Store, Thumbs.db and the like)\n",
		       (unsigned long long)im->ignored);
	if (im->delete_after)
		printf("deleted from %s: %llu file(s) whose content is in the store\n", im->src,
		       (unsigned long long)im->deleted);
	if (im->failed)
		printf("skipped: %llu file(s), each named above (the log: %s)\n", (unsigned long long)im->failed,
		       im->m.o.log);
	fflush(stdout);
}

/* --- the command ---------------------------------------------------------- */

/* DIR, checked to be a folder we can read, as IM->src: 0, or -1 after a line. */
static int source_folder(struct import *im, const char *dir)
{
	struct stat st;
	DIR *d;

	if (!realpath(dir, im->src)) {
		fprintf(stderr, "mvaultfs import: cannot read '%s': %s\n", dir,
			errno == ENOENT ? "no such folder" : strerror(errno));
		return -1;
	}
	if (stat(im->src, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mvaultfs import: '%s' is not a folder\n", dir);
		return -1;
	}
	if (!(d = opendir(im->src))) {
		fprintf(stderr, "mvaultfs import: cannot read '%s': %s\n", dir, strerror(errno));
		return -1;
	}
	closedir(d);
	return 0;
}

/* Our own arguments out of ARGV; the -o options go into ARGS.  0, or -1
 * after a line (1 for --help). */
static int parse_args(struct import *im, int argc, char **argv, struct fuse_args *args)
{
	const char *dir = NULL;

	fuse_opt_add_arg(args, argv[0]);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--watch") == 0) {
			im->watch = 1;
		} else if (strcmp(a, "--delete-after") == 0) {
			im->delete_after = 1;
		} else if (strcmp(a, "--to") == 0 && i + 1 < argc) {
			im->to = argv[++i];
		} else if (strcmp(a, "--settle") == 0 && i + 1 < argc) {
			char *end;

			im->settle = strtod(argv[++i], &end);
			if (*end || end == argv[i] || im->settle < 0 || im->settle > 3600) {
				fprintf(stderr, "mvaultfs import: --settle %s: give seconds from 0 to 3600\n", argv[i]);
				return -1;
			}
		} else if (strncmp(a, "--to=", 5) == 0) {
			im->to = a + 5;
		} else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
			fuse_opt_add_arg(args, a);
			fuse_opt_add_arg(args, argv[++i]);
		} else if (strncmp(a, "-o", 2) == 0) {
			fuse_opt_add_arg(args, a);
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			import_usage(stdout);
			return 1;
		} else if (a[0] == '-' || dir) {
			fprintf(stderr, "mvaultfs import: unexpected '%s'\n", a);
			import_usage(stderr);
			return -1;
		} else {
			dir = a;
		}
	}
	if (!dir || !im->to) {
		import_usage(stderr);
		return -1;
	}
	if (source_folder(im, dir) != 0)
		return -1;
	if (strncmp(im->to, "library", 7) != 0 && strncmp(im->to, "galleries/", 10) != 0) {
		fprintf(stderr, "mvaultfs import: --to %s: give library, library/PATH or galleries/NAME\n", im->to);
		return -1;
	}
	return 0;
}

/* The data folder: the embedded default's own (whose lock keeps a mount
 * away meanwhile), or with -o db= one of import's own beside a mount's
 * (DATA/import), locked, so that no two processes share a cache. */
static int data_folder(struct import *im, int *lockfd)
{
	char *base, path[PATH_MAX];

	if (!im->m.o.data_dir) {
		if (!(base = default_data_dir())) {
			fprintf(stderr, "mvaultfs import: no data folder: give -o data_dir=DIR\n");
			return -1;
		}
		if (im->m.o.db && *im->m.o.db) {
			if (asprintf(&im->m.o.data_dir, "%s/import", base) < 0)
				im->m.o.data_dir = NULL;
			free(base);
		} else {
			im->m.o.data_dir = base;
		}
		if (!im->m.o.data_dir)
			return -1;
	}
	if (g_mkdir_with_parents(im->m.o.data_dir, geteuid() == 0 ? 0711 : 0700) != 0) {
		fprintf(stderr, "mvaultfs import: cannot make the data folder '%s': %s\n", im->m.o.data_dir,
			strerror(errno));
		return -1;
	}
	if (!im->m.o.db || !*im->m.o.db) {
		/* the embedded default: a mount of this library holds its cluster */
		char note[64] = "";
		int fd, pid = 0;

		snprintf(path, sizeof(path), "%s/embedded.lock", im->m.o.data_dir);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK &&
		    pread(fd, note, sizeof(note) - 1, 0) > 0 && sscanf(note, "%d running", &pid) == 1 &&
		    strstr(note, "running")) {
			fprintf(stderr, "mvaultfs import: the library in '%s' is mounted (mvaultfs pid %d): copy"
				" into that mount (rsync -a DIR/ MOUNTPOINT/library/...), or unmount it and import"
				" again\n", im->m.o.data_dir, pid);
			close(fd);
			return -1;
		}
		if (fd >= 0)
			close(fd);
	}
	snprintf(path, sizeof(path), "%s/import.lock", im->m.o.data_dir);
	*lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*lockfd < 0 || flock(*lockfd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr, "mvaultfs import: the data folder '%s' is in use by another mvaultfs import%s\n",
			im->m.o.data_dir, *lockfd < 0 ? "" : " (give this one -o data_dir=DIR)");
		return -1;
	}
	return 0;
}

static int start_engine(struct import *im, int argc, char **argv, struct fuse_args *args)
{
	if (fuse_opt_parse(args, &im->m.o, mvfs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(args, &im->m.s3, s3_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(args, &im->m.cache_cli, cache_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(args, &im->m.jobs, jobs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(args, &im->m.icp, icp_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(args, &im->m.vblob, vblob_opt_spec, NULL) != 0)
		return -1;
	if (args->argc > 1) {
		fprintf(stderr, "mvaultfs import: unknown option '%s' (see mvaultfs --help)\n",
			strcmp(args->argv[1], "-o") == 0 && args->argc > 2 ? args->argv[2] : args->argv[1]);
		return -1;
	}
	if (db_options_settle(&im->m.o, argc, argv) != 0)
		return -1;
	im->m.user_given = im->m.o.user != NULL;
	if (!im->m.o.user)
		im->m.o.user = default_user();
	return 0;
}

int cmd_import(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct import *im = calloc(1, sizeof(*im));
	struct fs_config fc = { .attr_timeout = 1, .entry_timeout = 1,
				.fsync_timeout = 300 };
	sigset_t sigs;
	int rc = 1, lockfd = -1, interrupted;

	if (!im)
		return 1;
	im->m.o = (struct mvfs_opts){ .pool = 4, .version_min_age = -1, .read_ahead_kb = -1 };
	im->settle = IMPORT_SETTLE_DEFAULT;
	im->sigfd = im->ino_fd = -1;
	rc = parse_args(im, argc, argv, &args);
	if (rc) {
		rc = rc > 0 ? 0 : 1;
		goto out_args;
	}
	rc = 1;
	if (start_engine(im, argc, argv, &args) != 0 || data_folder(im, &lockfd) != 0)
		goto out;	/* the options parsed so far are released there */
	/* Signals are read from a descriptor; every thread started from here
	 * on keeps them blocked. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	im->sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (!im->m.o.log && asprintf(&im->m.o.log, "%s/mvaultfs.log", im->m.o.data_dir) < 0)
		goto out;
	if (log_open(im->m.o.log) != 0)
		fprintf(stderr, "mvaultfs import: warning: cannot write the log '%s': %s\n", im->m.o.log,
			strerror(errno));
	log_set_stderr(0);	/* stderr is the progress line's; the log has the rest */
	if (mount_open_engines(&im->m) != 0)
		goto out;
	if (fs_init(&im->m.fs, im->m.meta, im->m.cache, &fc) != 0)
		goto out;
	im->m.fs_ready = 1;
	if (cache_start(im->m.cache, fs_file_uploaded, fs_files_uploaded, &im->m.fs) != 0) {
		fprintf(stderr, "mvaultfs import: cannot start the upload threads\n");
		goto out;
	}
	if (fs_record_start(&im->m.fs) != 0)
		log_warn("no recorder thread: each file records its version itself");
	if (import_open_dest(im) != 0)
		goto out;
	log_info("import of '%s' into %s for user '%s', store '%s'%s", im->src, im->to, meta_user_name(im->m.meta),
		 im->m.o.store, im->watch ? " (watching)" : "");
	im->dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	im->made = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	im->contents = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	im->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	im->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	im->wd_path = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	im->gone_later = g_ptr_array_new();
	if (im->watch && (im->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		fprintf(stderr, "mvaultfs import: cannot watch '%s': %s\n", im->src, strerror(errno));
		goto out;
	}
	progress_init(&im->p, stderr);
	import_walk(im, "", 1, NULL);
	import_walk(im, "", 0, import_now);
	interrupted = !im->watch && im->stopping;
	if (!im->gallery)
		import_folder_times(im);
	if (im->watch) {
		im->total_files = 0;	/* from here on no total is known */
		import_show(im, 1);
		import_watch_loop(im);
	}
	import_show(im, 1);
	if (im->delete_after)
		import_delete_sources(im, 1);
	finish_uploads(im);
	summary(im);
	if (interrupted)
		printf("interrupted: the files not looked at yet are taken by a rerun\n");
	rc = im->failed || interrupted ? 1 : 0;
out:
	if (im->dirs)
		import_forget_folders(im);
	if (im->root)
		fs_import_put(&im->m.fs, im->root);
	mount_release_engines(&im->m);
	if (im->ino_fd >= 0)
		close(im->ino_fd);
	if (im->sigfd >= 0)
		close(im->sigfd);
	if (im->dirs) {
		g_hash_table_destroy(im->dirs);
		g_hash_table_destroy(im->made);
		g_hash_table_destroy(im->contents);
		g_hash_table_destroy(im->known);
		g_hash_table_destroy(im->pending);
		g_hash_table_destroy(im->wd_path);
		for (guint i = 0; i < im->gone_later->len; i++) {
			struct gone_later *g = g_ptr_array_index(im->gone_later, i);

			g_free(g->path);
			g_free(g);
		}
		g_ptr_array_free(im->gone_later, TRUE);
	}
out_args:
	if (lockfd >= 0)
		close(lockfd);
	fuse_opt_free_args(&args);
	free(im);
	return rc;
}
