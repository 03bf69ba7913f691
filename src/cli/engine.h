/*
 * engine.h - what every command that works on a library assembles: the
 * options, the database (a shared PostgreSQL or the embedded one), the
 * store, the cache, and the filesystem over them.  A mount (mount.c)
 * adds a FUSE session; `mvaultfs worker` adds job threads; `mvaultfs
 * import` (import.c) writes through the filesystem without the kernel.
 * One assembly, so that what import writes lands exactly as a copy through
 * a mount would.
 */
#ifndef MVFS_CLI_ENGINE_H
#define MVFS_CLI_ENGINE_H

#include <fuse_opt.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend/backend.h"
#include "backend/s3_creds.h"
#include "cache/cache.h"
#include "fs/fs.h"
#include "meta/meta.h"
#include "util/sdnotify.h"
#include "worker/worker.h"

struct fuse_session;
struct meta_embedded;

struct mvfs_opts {
	char *db;
	char *db_passfile;
	char *store;
	char *data_dir;
	char *user;
	char *log;
	char *variants;		/* hidden (NULL) or visible */
	char *push;		/* on (NULL) or off: listen for other mounts' changes */
	char *thumbs;		/* desktop_thumbnails=on|off; NULL: the default */
	int thumbs_flag;	/* plain -o desktop_thumbnails */
	double attr_timeout;
	double entry_timeout;
	int pool;
	int trash_days;
	int version_min_age;	/* -1: not given */
	int db_timeout;
	int read_ahead_kb;	/* -1: not given */
	int leftover_wait;	/* embedded_leftover_wait; <= 0: the default */
};

/* The cache's options: sizes take K, M, G, T suffixes (powers of 1024). */
struct cache_cli {
	char *size_max, *free_min, *block_size, *staging_max;
	int uploaders, fetchers, readahead;
	double io_timeout, fsync_timeout;
};

/* The S3 store's options: one table and one help text of their own. */
struct s3_cli {
	char *endpoint;
	char *region;
	char *keyfile;
	char *ca_file;
	int path_style;
	int unsigned_payload;
	unsigned part_mb;
	unsigned threshold_mb;
	int concurrency;
	int retries;
	int timeout;
};

struct jobs_cli {
	char *workers;			/* NULL: the default (1 in a mount, 2 in `worker`) */
	char *job_timeout;		/* NULL: each job's own visibility timeout */
	char *display_format;
	int media_timeout, media_memory, media_threads;
	double interval;
};

/* Stores that pins copy to (-o pin_store=NAME=URL, repeated): NAME is a
 * backend's name (icp, vblob, s3, local, or seed 001's label), which
 * user.mvault.pin and the storage edges use; URL is any store the mount
 * can open (a folder, s3://...).  One table, one help text. */
#define PIN_STORES_MAX 4
struct pin_cli {
	int n;
	char *name[PIN_STORES_MAX];
	char *url[PIN_STORES_MAX];
	const char *labels[PIN_STORES_MAX];
	struct worker_store stores[PIN_STORES_MAX];
};

/* The Internet Computer store's options (issue 13). */
struct icp_cli {
	char *identity;
	char *host;
};


/* The Vercel Blob store's options: one table and one help text of their own
 * (the rest are in the store URL, see be_vblob.h). */
struct vblob_cli {
	char *token_file;
};


/* Everything a mount, `mvaultfs worker` or `mvaultfs import` holds: options,
 * database, store, cache, and (a mount's, import's) the filesystem.  The
 * FUSE session is a mount's only (mount.c). */
struct mount {
	struct mvfs_opts o;
	char *mountpoint;		/* a mount's, or NULL */
	struct meta_embedded *pg;
	struct backend_config backend_cfg;
	struct backend *backend;
	struct cache *cache;
	struct meta *meta;
	struct mvfs fs;
	int fs_ready;
	int user_given;		/* -o user= was given, not the login name */
	int for_nobody;		/* `mvaultfs worker` for every user: meta acts for nobody */
	struct s3_cli s3;
	struct vblob_cli vblob;
	struct icp_cli icp;
	struct s3_creds s3_creds;	/* whatever credentials backend_cfg points at */
	struct cache_cli cache_cli;
	int cache_started;
	struct jobs_cli jobs;
	struct pin_cli pins;
	struct worker *worker;
	struct sdnotify notify;	/* systemd's Type=notify, when it started us */
};

/* The -o tables of each part (one table per subsystem). */
extern const struct fuse_opt mvfs_opt_spec[];
extern const struct fuse_opt cache_opt_spec[];
extern const struct fuse_opt s3_opt_spec[];
extern const struct fuse_opt jobs_opt_spec[];
extern const struct fuse_opt icp_opt_spec[];
extern const struct fuse_opt vblob_opt_spec[];
/* -o pin_store=NAME=URL, repeated: parse with pin_opt_proc into a pin_cli. */
extern const struct fuse_opt pin_opt_spec[];
int pin_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs);
/* Takes every part's -o options out of ARGS into M (the tables above, in
 * that order): 0, or -1 after libfuse's line on stderr.  A mount's and the
 * worker's; import takes fewer. */
int mount_opts_parse(struct mount *m, struct fuse_args *args);
/* Opens the pin stores of P beside the primary store PRIMARY; 0, or -1
 * after a line on stderr.  pin_stores_release frees them. */
int pin_stores_open(struct pin_cli *p, const char *primary, const struct backend_config *cfg);
void pin_stores_release(struct pin_cli *p);

/* "1G" -> 1073741824; 0 with *OK 0 when it is not a size. */
uint64_t parse_size(const char *s, int *ok);
/* The cache's / the worker's configuration from the options; -1 after a
 * line on stderr. */
int cache_config_from(const struct cache_cli *cli, struct cache_config *cfg);
int jobs_config_from(const struct jobs_cli *cli, int default_threads, struct worker_config *cfg);
/* The default data folder and user (malloc'd; NULL when none). */
char *default_data_dir(void);
char *default_user(void);
/* Makes M's data folder (and its missing parents) with MODE and opens the
 * log there (-o log= elsewhere): 0, or -1 after one line on stderr; a log
 * that cannot be written is a warning only.  A mount's and the worker's. */
int mount_data_dir(struct mount *m, mode_t mode);
/* Settles O->db after the options are parsed ($MVAULT_DB, db_passfile,
 * the password hidden from ps): 0, or -1 after one line on stderr. */
int db_options_settle(struct mvfs_opts *o, int argc, char **argv);
/* Opens database, store and cache; 0, or -1 after one line on stderr. */
int mount_open_engines(struct mount *m);
/* The mount's job threads, for its user; 0, or -1 after a log line. */
int mount_start_worker(struct mount *m);
/* Releases what M holds but a FUSE session (the caller ends that first):
 * job threads, the filesystem, the cache (uploads in flight finish), the
 * database, the embedded cluster, the options. */
void mount_release_engines(struct mount *m);

#endif
