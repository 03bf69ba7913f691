/*
 * import.h - what the parts of `mvaultfs import` share: import.c (the
 * command, one file, the tree, the end), import_dest.c (where files go)
 * and import_watch.c (--watch).
 */
#ifndef MVFS_CLI_IMPORT_H
#define MVFS_CLI_IMPORT_H

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/engine.h"
#include "cli/progress.h"

#define IMPORT_SETTLE_DEFAULT 3.0
/* Seconds import still waits for its uploads after SIGINT or SIGTERM. */
#define IMPORT_STOP_WAIT 30

/* A source file imported (or found in the library) that --delete-after
 * removes once its content is in the store. */
struct gone_later {
	char *path;
	char sha256[65];
	off_t size;
	struct timespec mtime;
};

/* What import knew of a source file the last time it looked: by size and
 * mtime, a file read again after a queue overflow needs no second hash. */
struct known {
	off_t size;
	struct timespec mtime;
};

struct import {
	struct mount m;
	char src[PATH_MAX];		/* DIR, absolute */
	const char *to;			/* --to as given */
	uint64_t root;			/* the folder it names (referenced) */
	int gallery;			/* --to galleries/NAME: files go flat */
	int watch, delete_after;
	double settle;
	int sigfd;			/* SIGINT, SIGTERM */
	int stopping;			/* signals so far: no new files after the first */
	double stopped_at;		/* when the first came (progress_elapsed) */
	GHashTable *dirs;		/* relative folder -> its inode (uint64_t *), referenced */
	GHashTable *made;		/* relative folders made by this run -> 1 */
	GHashTable *contents;		/* sha256 of content imported or found this run -> 1 */
	GHashTable *known;		/* relative path -> struct known */
	GPtrArray *gone_later;		/* struct gone_later * */
	struct progress p;
	uint64_t total_files, total_bytes;	/* of the first pass (0: not counted) */
	uint64_t files, bytes;		/* imported */
	uint64_t dups, dup_bytes;	/* already in the library */
	uint64_t failed, ignored, deleted;
	/* --watch: inotify */
	int ino_fd;
	GHashTable *wd_path;		/* watch descriptor -> relative folder */
	GHashTable *pending;		/* relative path -> due time (double *, monotonic s) */
};

/* import_dest.c */
/* The folder --to names, referenced in IM->root; -1 after a line. */
int import_open_dest(struct import *im);
/* The folder of the library for source folder REL ("" for DIR), made as
 * needed: 0 with *INO, or -errno. */
int import_dest_folder(struct import *im, const char *rel, uint64_t *ino);
/* Drops what the folder cache holds (a folder moved or removed on a mount
 * meanwhile is looked up again). */
void import_forget_folders(struct import *im);
/* Gives the folders made by this run the mtimes of their sources. */
void import_folder_times(struct import *im);
/* A free name for NAME in gallery DIR into OUT: NAME, else "NAME (2).EXT"
 * (3, ...), never a new version of another photo. */
void import_gallery_name(struct import *im, uint64_t dir, const char *name, char *out, size_t len);

/* import.c */
/* Whether a signal (SIGINT, SIGTERM) came, without waiting: how many so far. */
int import_signalled(struct import *im);
/* One line about source file REL above the progress line: FMT with WHY. */
void import_line(struct import *im, const char *rel, const char *fmt, const char *why);
/* The progress line (FORCE: now). */
void import_show(struct import *im, int force);
/* Removes the sources whose content is in the store (WAIT: for each). */
void import_delete_sources(struct import *im, int wait);
/* FN for each file below source folder REL ("": DIR), in name order; with
 * --watch each folder is watched before it is read.  COUNT: only adds up
 * IM->total_files and total_bytes. */
void import_walk(struct import *im, const char *rel, int count, void (*fn)(struct import *, const char *));
/* Imports source file REL now, then shows the progress. */
void import_now(struct import *im, const char *rel);

/* --watch (import_watch.c): watches source folder REL. */
void import_watch_folder(struct import *im, const char *rel);
/* Imports what is written or moved in until a signal. */
void import_watch_loop(struct import *im);

#endif
