/*
 * main.c - the mvaultfs command line.
 *
 *   mvaultfs [options] [SOURCE] MOUNTPOINT   mount (daemonises unless -f)
 *   mvaultfs db migrate [-o db=...]    bring a database to this schema
 *
 * Mounting checks everything that can be checked before the mount exists
 * (mount point, database, store), so a failure is one line on stderr and
 * exit status 1, with nothing mounted and nothing left running.
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "cli/engine.h"
#include "cli/progress.h"
#include "cache/cache.h"
#include "fs/fs.h"
#include "fs/fs_thumbs.h"
#include "fs/fs_xdgtrash.h"
#include "meta/meta.h"
#include "meta/meta_conninfo.h"
#include "meta/meta_embedded.h"
#include "meta/meta_s3conf.h"
#include "backend/s3_creds.h"
#include "util/sdnotify.h"
#include "util/secret.h"
#include "util/log.h"
#include "util/store_label.h"
#include "worker/worker.h"


static void cache_usage(void)
{
	printf("cache options:\n"
	       "    -o cache_size=SIZE     block cache cap (default 10%% of its disk, at most 10G)\n"
	       "    -o cache_free_min=SIZE free space the cache leaves on its disk (default 5%%)\n"
	       "    -o block_size=SIZE     cache block size (default 1M)\n"
	       "    -o staging_max=SIZE    written bytes that may wait for upload; past it writes get\n"
	       "                           ENOSPC, but a bigger file passes when none wait\n"
	       "                           (default half the disk's free space at mount)\n"
	       "    -o uploaders=N         upload threads (default 4)\n"
	       "    -o fetchers=N          read-ahead threads (default as many as -o readahead)\n"
	       "    -o readahead=N         blocks read ahead of a sequential reader (default 8)\n"
	       "    -o io_timeout=SECS     a read of content not cached fails with EIO after (default 60)\n"
	       "    -o fsync_timeout=SECS  fsync(2) waits for the upload this long (default 300)\n"
	       "\n");
}

static void s3_usage(void)
{
	printf("S3 store options (with -o store=s3://BUCKET[/PREFIX]):\n"
	       "    -o s3_endpoint=URL     http(s)://host[:port] (default: AWS in the region)\n"
	       "    -o s3_region=NAME      region to sign for (default us-east-1)\n"
	       "    -o s3_path_style       https://host/BUCKET/key instead of https://BUCKET.host/key\n"
	       "    -o s3_ca_file=FILE     PEM file of the CAs to trust for an https endpoint, instead of\n"
	       "                           the system's (default: $AWS_CA_BUNDLE when set; this wins)\n"
	       "    -o s3_unsigned_payload send UNSIGNED-PAYLOAD instead of the body's SHA-256\n"
	       "                           (the default over https, where TLS checks the bytes)\n"
	       "    -o s3_signed_payload   sign each body's SHA-256 over https too (the default over http)\n"
	       "    -o s3_part_size=MIB    multipart part size (default 16)\n"
	       "    -o s3_multipart_threshold=MIB  larger files go multipart (default: the part size)\n"
	       "    -o s3_concurrency=N    parts sent in parallel per file (default 4)\n"
	       "    -o s3_retries=N        attempts per request (default 8; backoff with jitter)\n"
	       "    -o s3_timeout=SECS     a transfer may stall this long (default 30)\n"
	       "    -o keyfile=FILE        key that decrypts credentials kept in the database\n"
	       "                           (default DATA/s3.key, made with mode 0600 when missing)\n"
	       "    Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else\n"
	       "    ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), else the user's\n"
	       "    row of s3_configurations, whose keys are AES-256-GCM encrypted with the keyfile.\n"
	       "\n");
}

static void icp_usage(void)
{
	printf("Internet Computer store options (with -o store=icp://CANISTER_ID?host=URL):\n"
	       "    -o icp_identity=FILE   Ed25519 private key (PEM) to sign calls with; it must hold\n"
	       "                           the asset canister's Commit permission (see the README);\n"
	       "                           without one, calls are anonymous and the store read-only\n"
	       "    -o icp_host=URL        the replica or boundary node (overrides ?host=), e.g.\n"
	       "                           https://icp-api.io, or http://127.0.0.1:4943 for dfx start\n"
	       "    The canister is a stock asset canister (dfx's \"assets\" type).  Certificates\n"
	       "    are read but NOT BLS-verified: no BLS12-381 library is packaged in Debian.\n"
	       "\n");
}

static void vblob_usage(void)
{
	printf("Vercel Blob store options (with -o store=vblob://STORE_ID[/PREFIX][?access=public&...]):\n"
	       "    -o vblob_token_file=FILE  file holding the store's read-write token (default:\n"
	       "                           $BLOB_READ_WRITE_TOKEN; never give it in the options)\n"
	       "    The API is $VERCEL_BLOB_API_URL (default https://vercel.com/api/blob). In the URL:\n"
	       "    access=private|public (default private), part_size=8M, threshold=, concurrency=4,\n"
	       "    retries=8, timeout=30.\n"
	       "\n");
}


static void jobs_usage(void)
{
	printf("background jobs (variants, deletion after the grace period, expiry):\n"
	       "    -o workers=N           job threads (default 1 in a mount, 2 for `worker`; 0: none)\n"
	       "    -o display_format=F    webp (default) or avif for .display/ variants\n"
	       "    -o media_timeout=SECS  time limit per image (default 120)\n"
	       "    -o media_memory=MB     memory limit of an image helper process (default 2048)\n"
	       "    -o media_threads=N     libvips threads per image helper (default: libvips')\n"
	       "    -o jobs_interval=SECS  how often to look for due work (default 5)\n"
	       "    -o job_timeout=SECS    a job whose worker gives no sign of life this long (it\n"
	       "                           died, or lost the database) goes to another worker\n"
	       "                           (default: the job's own visibility timeout, 300)\n"
	       "\n");
}


static void pin_usage(void)
{
	printf("store forever (pins):\n"
	       "    -o pin_store=NAME=URL  a store that `setfattr -n user.mvault.pin -v NAME` copies to\n"
	       "                           (repeat for more); NAME is icp, vblob, s3 or local (seed\n"
	       "                           001's backend names), URL any store -o store= takes;\n"
	       "                           give it to `mvaultfs worker` too where that runs the jobs\n"
	       "    getfattr -n user.mvault.presence FILE|GALLERY   where it is, per backend; `mvaultfs\n"
	       "                           status` shows copies in progress\n"
	       "\n");
}

static void usage(const char *prog)
{
	printf("usage: %s [options] [SOURCE] MOUNTPOINT\n"
	       "       %s db migrate [-o db=CONNINFO]\n"
	       "       %s user add NAME [-o db=CONNINFO,role=ROLE,pgpass=FILE,no_password,worker]\n"
	       "                                             a login role for user NAME (as the owner);\n"
	       "                                             -o worker: role NAME for `mvaultfs worker`\n"
	       "       %s sync MOUNTPOINT [--timeout SECS]   wait until every closed file is uploaded\n"
	       "       %s status [--json] MOUNTPOINT         health, uploads waiting, cache, store, pins\n"
	       "                                             (--json: for scripts; the fields are in\n"
	       "                                             mvaultfs(1))\n"
	       "       %s worker [-o db=CONNINFO,...]        run background jobs for every user, no mount\n"
	       "       %s import [--watch] [--settle SECS] [--delete-after] [-o ...] DIR\n"
	       "              --to library[/PATH]|galleries/NAME   DIR's files into the library, no mount\n"
	       "                                             needed: as a copy through a mount, content\n"
	       "                                             already there skipped (a rerun costs nothing);\n"
	       "                                             --watch: then what is written into DIR, until\n"
	       "                                             SIGINT/SIGTERM; --delete-after: each source\n"
	       "                                             once its content is in the store\n"
	       "\n"
	       "Mounts a memories library: metadata in PostgreSQL, content in an object store.\n"
	       "With no database configured it runs a private PostgreSQL under the data folder\n"
	       "and keeps content in a local folder beside it (the embedded default).\n"
	       "SOURCE, when given (mount(8) passes an fstab line's first field), is a label\n"
	       "shown as the mount's source; options that are mount(8)'s own (_netdev, nofail,\n"
	       "noauto, user, users, defaults, x-*) are ignored. The mvaultfs(1) man page\n"
	       "has fstab and systemd examples.\n"
	       "\n"
	       "mvaultfs options:\n"
	       "    -o db=CONNINFO         PostgreSQL to use: postgres://user@host/db or key=value\n"
	       "                           (default: $MVAULT_DB, else the embedded default);\n"
	       "                           its password is hidden from ps once the options are read\n"
	       "    -o db_passfile=FILE    password file for the database, in ~/.pgpass format (mode\n"
	       "                           0600); without it libpq reads $PGPASSFILE, else ~/.pgpass\n"
	       "    -o store=DIR           folder that keeps content (default: DATA/store), or\n"
	       "                           s3://BUCKET[/PREFIX] or vblob://STORE_ID[/PREFIX]\n"
	       "    -o data_dir=DIR        embedded cluster, staging, log (default:\n"
	       "                           $XDG_DATA_HOME/mvaultfs or ~/.local/share/mvaultfs;\n"
	       "                           /var/lib/mvaultfs for root without XDG_DATA_HOME)\n"
	       "    -o user=NAME           whose library to show (default: the login name)\n"
	       "    -o log=FILE            log file (default: DATA/mvaultfs.log)\n"
	       "    -o attr_timeout=SECS   how long the kernel may cache attributes (default 1;\n"
	       "                           files in library/ and workspace/ 60, and their folders'\n"
	       "                           listings until changed, where every change reaches this\n"
	       "                           mount: push on, or the embedded default)\n"
	       "    -o entry_timeout=SECS  how long the kernel may cache names (default as above;\n"
	       "                           setting either one sets both for every file)\n"
	       "    -o db_connections=N    PostgreSQL connections kept open (default 8)\n"
	       "    -o db_timeout=SECS     how long an operation waits for an unreachable database\n"
	       "                           before it fails with EIO (default 60); also how long a\n"
	       "                           connection may go silent (libpq's tcp_user_timeout,\n"
	       "                           keepalives, connect_timeout, unless -o db= sets them)\n"
	       "    -o trash_days=N        how long removed files stay in .trash/ (default 30)\n"
	       "    -o version_min_age=SECS  a version replaced by a save is kept in .trash/ only when it\n"
	       "                           was current this long (default 300; 0 keeps every version)\n"
	       "    -o variants=hidden     folders do not list .display/ and .thumb/ (the default;\n"
	       "                           a path reaches them: ls library/.thumb/)\n"
	       "    -o variants=visible    folders list them (once a variant in them is ready)\n"
	       "    -o push=on|off         listen for changes of other mounts: they reach this\n"
	       "                           mount's kernel caches within ms, not after attr_timeout/\n"
	       "                           entry_timeout (default on with -o db=, off for the\n"
	       "                           embedded default, which no other mount can reach)\n"
	       "    -o desktop_thumbnails[=on|off]  write the desktop's thumbnails (~/.cache/\n"
	       "                           thumbnails/{normal,large}) of library/ and workspace/\n"
	       "                           files from their thumb variants, so file managers and\n"
	       "                           photo apps read no original (default on for the\n"
	       "                           embedded default, off with -o db=)\n"
	       "    -o read_ahead_kb=KIB   the kernel's readahead for this mount, set at mount in\n"
	       "                           /sys/class/bdi (root only; else it stays 128, with an\n"
	       "                           info line) (default 4096; 0: leave the kernel's)\n"
	       "    -V, --version          print the version\n"
	       "\n", prog, prog, prog, prog, prog, prog, prog);
	cache_usage();
	jobs_usage();
	pin_usage();
	s3_usage();
	icp_usage();
	vblob_usage();
	fuse_cmdline_help();
	fuse_lowlevel_help();
}


/* Decodes the octal escapes of /proc/self/mountinfo in place. */
static void unescape_mountinfo(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*w++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static int is_mount_point(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192], mnt[4096];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			unescape_mountinfo(mnt);
			found = strcmp(mnt, path) == 0;
		}
	}
	fclose(f);
	return found;
}

/* One line on stderr and a non-zero return when MNT cannot take a mount. */
static int check_mountpoint(const char *mnt)
{
	char real[PATH_MAX];
	struct stat st;
	struct dirent *de;
	DIR *d;

	if (stat(mnt, &st) != 0) {
		if (errno == ENOTCONN)
			fprintf(stderr, "mvaultfs: cannot mount on '%s': it is already mounted, by a filesystem"
				" that is gone (run: fusermount3 -u %s)\n", mnt, mnt);
		else
			fprintf(stderr, "mvaultfs: cannot mount on '%s': %s\n", mnt,
				errno == ENOENT ? "no such folder" : strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s': not a folder\n", mnt);
		return -1;
	}
	if (realpath(mnt, real) && is_mount_point(real)) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s': it is already mounted\n", mnt);
		return -1;
	}
	d = opendir(mnt);
	if (!d) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s': %s\n", mnt, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			break;
	closedir(d);
	if (de) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s': the folder is not empty\n", mnt);
		return -1;
	}
	return 0;
}


static int cmd_migrate(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mvfs_opts o = { 0 };
	char err[512] = "";
	const char *db;
	int rc;

	if (fuse_opt_parse(&args, &o, mvfs_opt_spec, NULL) != 0)
		return 1;
	rc = db_options_settle(&o, argc, argv);
	db = o.db;
	if (!rc && (!db || !*db)) {
		fprintf(stderr, "mvaultfs: db migrate needs -o db=CONNINFO or MVAULT_DB\n");
		rc = -1;
	}
	if (!rc) {
		rc = meta_migrate_only(db, err, sizeof(err));
		meta_conninfo_redact(db, err, sizeof(err));
		if (rc)
			fprintf(stderr, "mvaultfs: %s\n", err[0] ? err : strerror(-rc));
	}
	fuse_opt_free_args(&args);
	free(o.db);
	free(o.db_passfile);
	return rc ? 1 : 0;
}

/* `mvaultfs user add NAME`: a login role for user NAME (DECISIONS.md,
 * "Who a connection acts for"). */
struct user_opts {
	char *role;
	char *pgpass;
	int no_password;
	int worker;		/* NAME is a role for `mvaultfs worker`, not a user */
};

static const struct fuse_opt user_opt_spec[] = {
	{ "role=%s", offsetof(struct user_opts, role), 0 },
	{ "pgpass=%s", offsetof(struct user_opts, pgpass), 0 },
	{ "no_password", offsetof(struct user_opts, no_password), 1 },
	{ "worker", offsetof(struct user_opts, worker), 1 },
	FUSE_OPT_END
};

static int cmd_user(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mvfs_opts o = { 0 };
	struct user_opts u = { 0 };
	char err[512] = "", pw[SECRET_PASSWORD_LEN + 1], pgpass[1024], uri[512];
	const char *db, *name = NULL;
	int rc = 1, fd;

	if (fuse_opt_parse(&args, &o, mvfs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &u, user_opt_spec, NULL) != 0)
		goto out;
	if (args.argc != 3 || strcmp(args.argv[1], "add") != 0) {
		fprintf(stderr, "usage: mvaultfs user add NAME [-o db=CONNINFO,role=ROLE,pgpass=FILE,no_password,worker]\n");
		goto out;
	}
	name = args.argv[2];
	if (db_options_settle(&o, argc, argv) != 0)
		goto out;
	db = o.db;
	if (!db || !*db) {
		fprintf(stderr, "mvaultfs: user add needs -o db=CONNINFO or MVAULT_DB (as the database's owner role)\n");
		goto out;
	}
	if (!u.no_password && secret_password(pw) != 0) {
		fprintf(stderr, "mvaultfs: cannot make a random password\n");
		goto out;
	}
	if (meta_user_add(db, u.worker ? NULL : name, u.role ? u.role : name, u.no_password ? NULL : pw, pgpass,
			  sizeof(pgpass), uri, sizeof(uri), err, sizeof(err)) != 0) {
		meta_conninfo_redact(db, err, sizeof(err));
		fprintf(stderr, "mvaultfs: %s\n", err);
		goto out;
	}
	if (u.worker)
		printf("'%s' is a role for mvaultfs worker: -o db=%s\n", u.role ? u.role : name, uri);
	else
		printf("user '%s' logs in as database role '%s': -o db=%s\n", name, u.role ? u.role : name, uri);
	if (u.no_password) {
		rc = 0;
	} else if (u.pgpass) {
		fd = open(u.pgpass, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || dprintf(fd, "%s\n", pgpass) < 0 || fsync(fd) != 0) {
			fprintf(stderr, "mvaultfs: cannot write the password to '%s': %s (the role has it now;"
				" run this again to set a new one)\n", u.pgpass, strerror(errno));
		} else {
			printf("its password is in '%s' (a ~/.pgpass line: -o db_passfile=%s)\n", u.pgpass, u.pgpass);
			rc = 0;
		}
		if (fd >= 0)
			close(fd);
	} else {
		printf("its password, as a ~/.pgpass line (mode 0600):\n%s\n", pgpass);
		rc = 0;
	}
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(pgpass, sizeof(pgpass));
out:
	fuse_opt_free_args(&args);
	free(o.db);
	free(o.db_passfile);
	free(u.role);
	free(u.pgpass);
	return rc;
}

/* What mount(8) and mount.fuse3(8) hand a FUSE program for an fstab line
 * of type fuse.mvaultfs: "mvaultfs SOURCE MOUNTPOINT -o OPTS". SOURCE, the
 * line's first field, is a label: it becomes the mount's fsname (the
 * source column of /proc/mounts, findmnt and df). OPTS may hold options
 * that are fstab's and mount(8)'s own; libmount removes x-* and comment=,
 * mount.fuse3 removes _netdev, nofail, user, users, auto and noauto, and
 * this table drops the rest (and those again, for a direct call), so a
 * line written for mount(8) never fails on them. rw, ro, suid, dev, exec,
 * noatime and the like are libfuse's and reach the kernel. */
struct helper_cli {
	char *first;		/* the first positional argument */
	int positional;
};

static const struct fuse_opt helper_opt_spec[] = {
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("owner", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("group", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("comment=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

static int helper_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct helper_cli *h = data;

	if (key == FUSE_OPT_KEY_OPT)	/* x-systemd.*, x-gvfs-show: fstab's */
		return strncasecmp(arg, "x-", 2) == 0 ? 0 : 1;
	if (key == FUSE_OPT_KEY_NONOPT && ++h->positional == 1) {
		/* held back: SOURCE if a second follows, else the mount point */
		h->first = strdup(arg);
		return h->first ? 0 : -1;
	}
	return 1;
}

/* Removes mount(8)'s options from ARGS and takes SOURCE out of "SOURCE
 * MOUNTPOINT" into fsname= and subtype= options (later ones given by the
 * caller win). Returns 0, or -1 after a line on stderr. */
static int helper_args_settle(struct fuse_args *args)
{
	struct helper_cli h = { 0 };
	char *fsname = NULL, *opt = NULL;
	int rc = -1;

	if (fuse_opt_parse(args, &h, helper_opt_spec, helper_opt_proc) != 0)
		goto out;
	if (h.positional == 1) {
		rc = fuse_opt_add_arg(args, h.first);
		goto out;
	}
	rc = 0;
	if (h.positional < 2)
		goto out;
	rc = -1;
	/* with an fsname libfuse no longer names the type after the program:
	 * subtype keeps it fuse.mvaultfs, as the fstab line says */
	if (asprintf(&fsname, "fsname=%s", h.first) < 0 || fuse_opt_add_opt(&opt, "subtype=mvaultfs") != 0)
		goto out;
	/* a comma or backslash in SOURCE must not start another option */
	if (fuse_opt_add_opt_escaped(&opt, fsname) != 0 ||
	    fuse_opt_insert_arg(args, 1, "-o") != 0 || fuse_opt_insert_arg(args, 2, opt) != 0)
		goto out;
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "mvaultfs: cannot read the command line: out of memory\n");
	free(h.first);
	free(fsname);
	free(opt);
	return rc;
}

/* Ends the FUSE session (unmounting), then releases the engines. */
static void mount_release(struct mount *m)
{
	/* first: a daemon started right after the unmount waits for our cluster */
	meta_embedded_stopping(m->pg);
	/* it tells the session's kernel what changed: stopped before the
	 * unmount, freed after it (fs_push.c, "Ending") and before the session */
	fs_push_stop(m->fs.push);
	if (m->mounted)
		fuse_session_unmount(m->se);
	fs_push_free(m->fs.push);
	m->fs.push = NULL;
	if (m->handlers)
		fuse_remove_signal_handlers(m->se);
	if (m->se)
		fuse_session_destroy(m->se);
	mount_release_engines(m);
}

/* The desktop's thumbnails (fs_thumbs.c): on by default for the embedded
 * default, a person's own library on their own desktop; with -o db= the
 * daemon often runs as a service (fstab, systemd) whose home is nobody's
 * desktop.  Without them the mount works as before: one log line. */
static void mount_start_thumbs(struct mount *m)
{
	char err[512];
	int on = m->o.thumbs ? strcmp(m->o.thumbs, "on") == 0 : m->o.thumbs_flag || m->pg;

	if (!on || fs_thumbs_start(&m->fs, m->mountpoint, err, sizeof(err)) == 0)
		return;
	if (m->o.thumbs || m->o.thumbs_flag)
		log_error("no desktop thumbnails (-o desktop_thumbnails): %s", err);
	else	/* a service without a home: nobody's desktop to write for */
		log_info("no desktop thumbnails: %s", err);
}

/* The kernel's readahead for the mount (fs_readahead.c): INIT answered
 * here, then the bdi raised.  Where it cannot be (not root), one info line:
 * reads still work, in smaller requests. */
static void mount_readahead(struct mount *m)
{
	char err[512];
	unsigned kb = m->fs.cfg.read_ahead_kb;
	int rc = fs_session_init(m->se);

	if (rc) {
		log_warn("cannot answer the kernel's INIT before the session loop: %s", strerror(-rc));
		return;
	}
	if (kb == 0)
		return;
	if (fs_readahead_set(m->mountpoint, kb, err, sizeof(err)) == 0)
		log_info("kernel readahead of the mount: %u KiB (%s)", kb, err);
	else
		log_info("kernel readahead of the mount not raised to %u KiB (-o read_ahead_kb): %s", kb, err);
}

static int cmd_mount(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mount m = { .o = { .attr_timeout = -1, .entry_timeout = -1, .pool = 8, .version_min_age = -1,
				  .read_ahead_kb = -1 } };
	struct fuse_cmdline_opts cmd = { 0 };
	struct fuse_loop_config *loop;
	struct fuse_lowlevel_ops ops;
	struct fs_config fc;
	int rc = 1;

	sdnotify_init(&m.notify);
	if (helper_args_settle(&args) != 0 ||
	    fuse_opt_parse(&args, &m.o, mvfs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.s3, s3_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.icp, icp_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.vblob, vblob_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.cache_cli, cache_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.jobs, jobs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.pins, pin_opt_spec, pin_opt_proc) != 0 ||
	    fuse_parse_cmdline(&args, &cmd) != 0)
		goto out;
	m.mountpoint = cmd.mountpoint;	/* freed with the rest */
	if (cmd.show_help) {
		usage(argv[0]);
		rc = 0;
		goto out;
	}
	if (cmd.show_version) {
		printf("mvaultfs %s (libfuse %s)\n", MVFS_VERSION, fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (!m.mountpoint) {
		fprintf(stderr, "usage: %s [options] [SOURCE] MOUNTPOINT (see --help)\n", argv[0]);
		goto out;
	}
	if (db_options_settle(&m.o, argc, argv) != 0)
		goto out;
	if (m.o.variants && strcmp(m.o.variants, "hidden") != 0 && strcmp(m.o.variants, "visible") != 0) {
		fprintf(stderr, "mvaultfs: -o variants=%s: give hidden or visible\n", m.o.variants);
		goto out;
	}
	if (m.o.push && strcmp(m.o.push, "on") != 0 && strcmp(m.o.push, "off") != 0) {
		fprintf(stderr, "mvaultfs: -o push=%s: give on or off\n", m.o.push);
		goto out;
	}
	if (m.o.thumbs && strcmp(m.o.thumbs, "on") != 0 && strcmp(m.o.thumbs, "off") != 0) {
		fprintf(stderr, "mvaultfs: -o desktop_thumbnails=%s: give on or off\n", m.o.thumbs);
		goto out;
	}
	if (m.o.read_ahead_kb < -1 || m.o.read_ahead_kb > (1 << 20)) {
		fprintf(stderr, "mvaultfs: -o read_ahead_kb=%d: give KiB from 0 (the kernel's default) to 1048576\n",
			m.o.read_ahead_kb);
		goto out;
	}
	if (check_mountpoint(m.mountpoint) != 0)
		goto out;
	if (!m.o.data_dir && !(m.o.data_dir = default_data_dir())) {
		fprintf(stderr, "mvaultfs: no data folder: set XDG_DATA_HOME or HOME, or give -o data_dir=DIR\n");
		goto out;
	}
	m.user_given = m.o.user != NULL;
	if (!m.o.user)
		m.o.user = default_user();
	/* As root the folder is 0711: the embedded cluster's user must pass. */
	if (mkdirs(m.o.data_dir, geteuid() == 0 ? 0711 : 0700) != 0) {
		fprintf(stderr, "mvaultfs: cannot make the data folder '%s': %s\n", m.o.data_dir, strerror(errno));
		goto out;
	}
	if (!m.o.log && asprintf(&m.o.log, "%s/mvaultfs.log", m.o.data_dir) < 0)
		goto out;
	if (log_open(m.o.log) != 0)
		fprintf(stderr, "mvaultfs: warning: cannot write the log '%s': %s\n", m.o.log, strerror(errno));
	if (cmd.debug)
		log_set_level(LOG_LVL_DEBUG);
	if (mount_open_engines(&m) != 0)
		goto out;
	/* set by neither: files of the tree are kept long where every change
	 * reaches the kernel (fs_ns_view_entry) */
	fc = (struct fs_config){ .attr_timeout = m.o.attr_timeout < 0 ? 1.0 : m.o.attr_timeout,
				 .entry_timeout = m.o.entry_timeout < 0 ? 1.0 : m.o.entry_timeout,
				 .tree_timeout = m.o.attr_timeout < 0 && m.o.entry_timeout < 0 ? FS_TREE_TIMEOUT : 0,
				 .fsync_timeout = m.cache_cli.fsync_timeout > 0 ? m.cache_cli.fsync_timeout : 300,
				 .variants_visible = m.o.variants && strcmp(m.o.variants, "visible") == 0,
				 .read_ahead_kb = m.o.read_ahead_kb < 0 ? FS_READ_AHEAD_KB : (unsigned)m.o.read_ahead_kb,
				 .store_label = store_label_of_url(m.o.store),
				 .pin_labels = m.pins.labels, .npin_labels = m.pins.n };
	if (fs_init(&m.fs, m.meta, m.cache, &fc) != 0)
		goto out;
	m.fs_ready = 1;
	ops = fs_ops;
	if (fs_xdgtrash_ops(&m.fs, &ops) != 0)
		goto out;
	m.se = fuse_session_new(&args, &ops, sizeof(ops), &m.fs);
	m.fs.se = m.se;
	if (!m.se)
		goto out;
	if (fuse_set_signal_handlers(m.se) != 0)
		goto out;
	m.handlers = 1;
	if (fuse_session_mount(m.se, m.mountpoint) != 0) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s' (see the line above)\n", m.mountpoint);
		goto out;
	}
	m.mounted = 1;
	log_info("mounted '%s' for user '%s', store '%s'", m.mountpoint, meta_user_name(m.meta), m.o.store);
	if (!cmd.foreground)
		log_set_stderr(0);
	fuse_daemonize(cmd.foreground);
	/* Threads only now: a daemon's fork keeps none. */
	if (cache_start(m.cache, fs_file_uploaded, &m.fs) != 0) {
		log_error("cannot start the cache's upload and fetch threads");
		goto out;
	}
	if (fs_record_start(&m.fs) != 0)
		log_warn("no recorder thread: closes record their versions themselves");
	mount_start_thumbs(&m);
	if (mount_start_worker(&m) != 0)
		goto out;
	/* The embedded cluster has no other client (one daemon, a private
	 * socket): nothing to listen for unless asked. */
	if (m.o.push ? strcmp(m.o.push, "off") != 0 : !m.pg) {
		char err[512];

		/* without it the mount is still right, only slower to see others' changes */
		if (!(m.fs.push = fs_push_start(&m.fs, err, sizeof(err))))
			log_error("changes of other mounts are seen only after the kernel's timeouts"
				  " (attr_timeout, entry_timeout): cannot listen for them: %s", err);
	} else if (m.o.push) {
		log_info("-o push=off: changes of other mounts are seen after the kernel's timeouts");
	}
	/* where no other writer can go unseen, a folder made here has only
	 * the names made here (fs_local.c, "folders whose every name is
	 * known here") */
	if ((m.pg || m.fs.push) && fs_known_start(&m.fs) != 0)
		log_warn("every lookup of a new name asks the database: out of memory");
	if (meta_embedded_watch(m.pg) != 0)
		log_error("cannot start the watchdog of the embedded PostgreSQL: it will not be restarted if it dies");
	mount_readahead(&m);
	loop = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(loop, cmd.clone_fd);
	if (cmd.max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(loop, cmd.max_idle_threads);
	fuse_loop_cfg_set_max_threads(loop, cmd.max_threads);
	if (sdnotify_send(&m.notify, "READY=1") != 0)
		log_warn("cannot tell systemd the mount is ready: %s", strerror(errno));
	rc = cmd.singlethread ? fuse_session_loop(m.se) : fuse_session_loop_mt(m.se, loop);
	fuse_loop_cfg_destroy(loop);
	sdnotify_send(&m.notify, "STOPPING=1");
	log_info("unmounting '%s'", m.mountpoint);
	rc = rc < 0 ? 1 : 0;
out:
	mount_release(&m);
	fuse_opt_free_args(&args);
	return rc;
}

/* The mount's numbers (fs_xattr_stats), read from its root folder. */
struct mount_stats {
	unsigned long long staged_files, staged_bytes, set_aside, uploaded_files, uploaded_bytes;
	unsigned long long cache_bytes, cache_blocks, cache_max, hits, misses, store_gets, store_puts;
	unsigned long long db_down_secs, db_waiting, store_failing, record_waiting;
	double upload_rate;
};

static int read_stats(const char *mnt, struct mount_stats *st, char *text, size_t len)
{
	static const struct { const char *name; size_t off; } fields[] = {
#define F(n) { #n, offsetof(struct mount_stats, n) }
		F(staged_files), F(staged_bytes), F(set_aside), F(uploaded_files), F(uploaded_bytes),
		F(cache_bytes), F(cache_blocks), F(cache_max), F(hits), F(misses), F(store_gets), F(store_puts),
		F(db_down_secs), F(db_waiting), F(store_failing), F(record_waiting),
#undef F
	};
	ssize_t n = getxattr(mnt, FS_XATTR_STATS, text, len - 1);
	char *line, *save;

	if (n < 0) {
		fprintf(stderr, "mvaultfs: '%s' is not an mvaultfs mount (%s)\n", mnt, strerror(errno));
		return -1;
	}
	text[n] = '\0';
	memset(st, 0, sizeof(*st));
	char *copy = strdup(text);

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		double v;

		if (sscanf(line, "%63s %lf", name, &v) != 2)
			continue;
		if (strcmp(name, "upload_rate") == 0)
			st->upload_rate = v;
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (strcmp(name, fields[i].name) == 0)
				*(unsigned long long *)((char *)st + fields[i].off) = (unsigned long long)v;
	}
	free(copy);
	return 0;
}

/* Which side is down, and what waits for it, as one phrase into BUF; ""
 * when neither is known to be.  The database counts as down while the
 * daemon fails to reach it or an upload waits to be recorded in it; the
 * store while an upload is refused by it. */
static const char *down_sides(const struct mount_stats *st, char *buf, size_t len)
{
	int db = st->db_down_secs > 0 || st->record_waiting > 0, store = st->store_failing > 0;
	char what[160] = "";

	if (db)
		snprintf(what, sizeof(what), "%llu operation(s) wait for the database%s", st->db_waiting,
			 st->record_waiting ? ", upload records retry" : "");
	if (store)
		snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%llu upload(s) wait for the store",
			 db ? "; " : "", st->store_failing);
	snprintf(buf, len, "%s%s%s", db && store ? "the database and the store are unreachable"
				    : db ? "the database is unreachable" : store ? "the store is unreachable" : "",
		 *what ? ": " : "", what);
	return buf;
}

/* The one MOUNTPOINT of `status` and `sync`, with --json (when JSON is
 * not NULL) and --timeout SECS (when TIMEOUT is not NULL); NULL when the
 * arguments are not that. */
static const char *mountpoint_arg(int argc, char **argv, int *json, double *timeout)
{
	const char *mnt = NULL;

	for (int i = 1; i < argc; i++) {
		if (json && strcmp(argv[i], "--json") == 0)
			*json = 1;
		else if (timeout && strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			*timeout = atof(argv[++i]);
		else if (mnt || argv[i][0] == '-')
			return NULL;
		else
			mnt = argv[i];
	}
	return mnt;
}

/* S as a JSON string (quotes, backslashes and control characters escaped). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* One line of user.mvault.pins: copies for pins to BACKEND in progress,
 * the bytes they have left, failed ones, and the bytes copied in the last
 * RECENT_SECS (up to 10 minutes: the pace of the ETA). */
struct pin_line {
	const char *backend;
	unsigned long long copying, bytes, failed, recent, secs;
};

/* The copies for pins in progress, per backend (the root's
 * user.mvault.pins, from the database): "BACKEND COPYING BYTES FAILED
 * RECENT_BYTES RECENT_SECS" lines, handed one by one to FN; -errno when the
 * mount does not say. */
static int each_pin(const char *mnt, void (*fn)(void *arg, const struct pin_line *p), void *arg)
{
	char text[1024], *line, *save = NULL;
	ssize_t n = getxattr(mnt, FS_XATTR_PINS, text, sizeof(text) - 1);

	if (n < 0)
		return -errno;
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char backend[64];
		struct pin_line p = { .backend = backend };

		if (sscanf(line, "%63s %llu %llu %llu %llu %llu", backend, &p.copying, &p.bytes, &p.failed, &p.recent,
			   &p.secs) >= 4)
			fn(arg, &p);
	}
	return 0;
}

static void pin_text(void *arg, const struct pin_line *p)
{
	char left[32], rate[32];

	progress_bytes((double)p->bytes, left, sizeof(left));
	printf("  pins      %s: %llu cop%s in progress, %s left", p->backend, p->copying, p->copying == 1 ? "y" : "ies",
	       left);
	if (p->copying && p->recent) {
		double pace = (double)p->recent / (double)(p->secs > 10 ? p->secs : 10), eta = (double)p->bytes / pace;

		progress_bytes(pace, rate, sizeof(rate));
		printf(" at %s/s, about %.0f %s to go", rate, eta >= 120 ? eta / 60 : eta, eta >= 120 ? "min" : "s");
	} else if (p->copying) {
		printf(" (no copy finished in the last 10 minutes: no ETA yet)");
	}
	if (p->failed)
		printf("; %llu failed (getfattr -n user.mvault.presence FILE says why)", p->failed);
	if (strcmp(p->backend, "icp-canister") == 0 || strcmp(p->backend, "icp") == 0)
		printf(" (its certificates are NOT BLS-verified)");
	printf("\n");
	++*(int *)arg;
}

static void pin_json(void *arg, const struct pin_line *p)
{
	printf("%s{\"backend\": ", (*(int *)arg)++ ? ", " : "");
	json_str(stdout, p->backend);
	printf(", \"copying\": %llu, \"bytes_left\": %llu, \"failed\": %llu, \"rate\": %.0f}", p->copying, p->bytes,
	       p->failed, p->copying && p->recent ? (double)p->recent / (double)(p->secs > 10 ? p->secs : 10) : 0.0);
}

/* `mvaultfs status --json`: the shape README.md documents ("mvaultfs
 * status"); fields are only ever added. */
static void status_json(const char *mnt, const struct mount_stats *st)
{
	int db = st->db_down_secs > 0 || st->record_waiting > 0, store = st->store_failing > 0;
	unsigned long long looked = st->hits + st->misses;

	printf("{\"mountpoint\": ");
	json_str(stdout, mnt);
	printf(", \"healthy\": %s, \"down\": [%s%s%s],\n", !db && !store && !st->set_aside ? "true" : "false",
	       db ? "\"database\"" : "", db && store ? ", " : "", store ? "\"store\"" : "");
	printf(" \"staged\": {\"files\": %llu, \"bytes\": %llu},\n", st->staged_files, st->staged_bytes);
	printf(" \"uploaded\": {\"files\": %llu, \"bytes\": %llu, \"rate\": %.0f},\n", st->uploaded_files,
	       st->uploaded_bytes, st->upload_rate);
	printf(" \"set_aside\": %llu,\n", st->set_aside);
	printf(" \"database\": {\"down_secs\": %llu, \"waiting\": %llu, \"records_waiting\": %llu},\n",
	       st->db_down_secs, st->db_waiting, st->record_waiting);
	printf(" \"cache\": {\"bytes\": %llu, \"blocks\": %llu, \"max\": %llu, \"hits\": %llu, \"misses\": %llu,"
	       " \"hit_rate\": %.4f},\n", st->cache_bytes, st->cache_blocks, st->cache_max, st->hits, st->misses,
	       looked ? (double)st->hits / (double)looked : 1.0);
	printf(" \"store\": {\"gets\": %llu, \"puts\": %llu, \"failing\": %llu},\n", st->store_gets,
	       st->store_puts, st->store_failing);
	if (st->db_down_secs > 0) {	/* not waited for: see status_text */
		printf(" \"pins\": null}\n");
		return;
	}
	printf(" \"pins\": [");
	each_pin(mnt, pin_json, &(int){ 0 });
	printf("]}\n");
}

/* `mvaultfs status`: one line that says whether all is well, then a line
 * per part, each a sentence. */
static void status_text(const char *mnt, const struct mount_stats *st, const char *text)
{
	char a[32], b[32], r[32], eta[32], down[256];
	int pins = 0, rc;

	if (*down_sides(st, down, sizeof(down)))
		printf("mvaultfs at %s: %s\n", mnt, down);
	else if (st->set_aside)
		printf("mvaultfs at %s: %llu staged file(s) failed their check and were set aside (see the log)\n",
		       mnt, st->set_aside);
	else
		printf("mvaultfs at %s: healthy\n", mnt);
	progress_bytes((double)st->staged_bytes, a, sizeof(a));
	progress_bytes(st->upload_rate, r, sizeof(r));
	progress_clock(st->upload_rate > 0 ? (double)st->staged_bytes / st->upload_rate : -1, eta, sizeof(eta));
	if (st->staged_files)
		printf("  waiting   %llu file(s), %s, to upload at %s/s (ETA %s)\n", st->staged_files, a, r, eta);
	else
		printf("  waiting   nothing: every closed file is in the store\n");
	progress_bytes((double)st->uploaded_bytes, a, sizeof(a));
	printf("  uploaded  %llu file(s), %s since mount\n", st->uploaded_files, a);
	progress_bytes((double)st->cache_bytes, a, sizeof(a));
	progress_bytes((double)st->cache_max, b, sizeof(b));
	printf("  cache     %s of %s (%llu block(s)), hit rate %.1f%% (%llu hits, %llu misses)\n", a, b,
	       st->cache_blocks, st->hits + st->misses ? 100.0 * (double)st->hits / (double)(st->hits + st->misses)
							: 100.0, st->hits, st->misses);
	printf("  store     %llu GET(s), %llu PUT(s) since mount\n", st->store_gets, st->store_puts);
	if (strstr(text, "\nstore icp-canister\n"))
		printf("  store     an ICP canister: its certificates are NOT BLS-verified (no BLS12-381\n"
		       "            library in Debian): the replica or boundary node is trusted (see the README)\n");
	/* the pins are read from the database: not while it is away (the read
	 * would wait for it, db_timeout) */
	if (st->db_down_secs > 0)
		printf("  pins      unknown while the database is unreachable\n");
	else if ((rc = each_pin(mnt, pin_text, &pins)) != 0)
		printf("  pins      unknown (%s)\n", strerror(-rc));
	else if (!pins)
		printf("  pins      no copies in progress\n");
}

static int cmd_status(int argc, char **argv)
{
	struct mount_stats st;
	char text[2048];
	const char *mnt = NULL;
	int json = 0;

	if (!(mnt = mountpoint_arg(argc, argv, &json, NULL))) {
		fprintf(stderr, "usage: mvaultfs status [--json] MOUNTPOINT\n");
		return 1;
	}
	if (read_stats(mnt, &st, text, sizeof(text)) != 0)
		return 1;
	if (json)
		status_json(mnt, &st);
	else
		status_text(mnt, &st, text);
	return 0;
}

/* Names what was set aside: each journal entry there says which inode and
 * which content; the file beside it holds the bytes. */
static void list_aside(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "    in %s\n", dir);
		return;
	}
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".journal"))
			fprintf(stderr, "    %s/%.*s\n", dir, (int)(strlen(de->d_name) - 8), de->d_name);
	closedir(d);
}

static int cmd_sync(int argc, char **argv)
{
	struct mount_stats st;
	struct progress p;
	char text[2048], a[32], r[32], eta[32];
	unsigned long long first_files = 0, first_bytes = 0;
	double timeout = 0;
	const char *mnt = NULL;

	if (!(mnt = mountpoint_arg(argc, argv, NULL, &timeout))) {
		fprintf(stderr, "usage: mvaultfs sync MOUNTPOINT [--timeout SECS]\n");
		return 1;
	}
	progress_init(&p, stderr);
	for (int round = 0;; round++) {
		if (read_stats(mnt, &st, text, sizeof(text)) != 0)
			return 1;
		if (round == 0) {
			first_files = st.uploaded_files;
			first_bytes = st.uploaded_bytes;
		}
		if (st.set_aside) {
			char dir[4096];
			ssize_t n = getxattr(mnt, FS_XATTR_ASIDE, dir, sizeof(dir) - 1);

			progress_say(&p, "mvaultfs: %llu staged file(s) failed their hash check and were set aside,"
				     " not uploaded (see the log):", st.set_aside);
			if (n > 0) {
				dir[n] = '\0';
				list_aside(dir);
			}
			return 1;
		}
		if (st.staged_files == 0) {
			progress_clear(&p);
			progress_bytes((double)(st.uploaded_bytes - first_bytes), a, sizeof(a));
			if (round)
				fprintf(stderr, "sync: every closed file is in the store (%llu file(s), %s uploaded"
					" in %.1f s)\n", st.uploaded_files - first_files, a, progress_elapsed(&p));
			else if (p.tty)
				fprintf(stderr, "sync: every closed file is in the store\n");
			return 0;
		}
		if (timeout > 0 && progress_elapsed(&p) > timeout) {
			char down[256];

			if (*down_sides(&st, down, sizeof(down)))
				progress_say(&p, "mvaultfs: sync gave up after %.0f s: %llu file(s) still waiting"
					     " (%s; see the log)", timeout, st.staged_files, down);
			else
				progress_say(&p, "mvaultfs: sync gave up after %.0f s: %llu file(s) still waiting"
					     " (is the store reachable? see the log)", timeout, st.staged_files);
			return 1;
		}
		progress_bytes((double)st.staged_bytes, a, sizeof(a));
		progress_bytes(st.upload_rate, r, sizeof(r));
		progress_clock(st.upload_rate > 0 ? (double)st.staged_bytes / st.upload_rate : -1, eta, sizeof(eta));
		progress_show(&p, 0, "sync: %llu file(s) uploaded, %llu waiting (%s), %s/s, ETA %s",
			      st.uploaded_files - first_files, st.staged_files, a, r, eta);
		usleep(250000);
	}
}

/* `mvaultfs worker`: job threads for every user (or -o user=NAME's only),
 * with no mount, until SIGTERM or SIGINT. */
static int cmd_worker(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mount m = { .o = { .pool = 2 } };
	struct worker_config wc;
	char err[512] = "", *base;
	int user_given, rc = 1, sig;
	sigset_t stop;

	sdnotify_init(&m.notify);
	if (fuse_opt_parse(&args, &m.o, mvfs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.s3, s3_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.icp, icp_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.vblob, vblob_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.cache_cli, cache_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.jobs, jobs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.pins, pin_opt_spec, pin_opt_proc) != 0)
		goto out;
	if (args.argc > 1) {
		fprintf(stderr, "mvaultfs worker: unexpected '%s' (options go in -o)\n", args.argv[1]);
		goto out;
	}
	if (db_options_settle(&m.o, argc, argv) != 0)
		goto out;
	if (!m.o.db || !*m.o.db) {
		fprintf(stderr, "mvaultfs: worker needs -o db=CONNINFO or MVAULT_DB (a shared PostgreSQL)\n");
		goto out;
	}
	if (jobs_config_from(&m.jobs, 2, &wc) != 0)
		goto out;
	/* Its own data folder (cache, log): it must not share a mount's. */
	if (!m.o.data_dir) {
		if (!(base = default_data_dir()) || asprintf(&m.o.data_dir, "%s/worker", base) < 0)
			m.o.data_dir = NULL;
		free(base);
		if (!m.o.data_dir) {
			fprintf(stderr, "mvaultfs: no data folder: give -o data_dir=DIR\n");
			goto out;
		}
	}
	user_given = m.user_given = m.o.user != NULL;
	m.for_nobody = !user_given;
	if (!m.o.user)
		m.o.user = default_user();
	if (mkdirs(m.o.data_dir, 0700) != 0) {
		fprintf(stderr, "mvaultfs: cannot make the data folder '%s': %s\n", m.o.data_dir, strerror(errno));
		goto out;
	}
	if (!m.o.log && asprintf(&m.o.log, "%s/mvaultfs.log", m.o.data_dir) < 0)
		goto out;
	if (log_open(m.o.log) != 0)
		fprintf(stderr, "mvaultfs: warning: cannot write the log '%s': %s\n", m.o.log, strerror(errno));
	if (mount_open_engines(&m) != 0)
		goto out;
	wc.threads = wc.threads > 0 ? wc.threads : 1;
	wc.meta = user_given ? m.meta : NULL;
	wc.conninfo = m.o.db;
	wc.trash_days = m.o.trash_days;
	wc.cache = m.cache;
	wc.backend = m.backend;
	wc.pin_stores = m.pins.stores;
	wc.npin_stores = m.pins.n;
	/* Signals are taken by sigwait below, not by the threads. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (meta_embedded_watch(m.pg) != 0)
		log_error("cannot start the watchdog of the embedded PostgreSQL: it will not be restarted if it dies");
	m.worker = worker_start(&wc, err, sizeof(err));
	if (!m.worker) {
		meta_conninfo_redact(m.o.db, err, sizeof(err));
		fprintf(stderr, "mvaultfs: %s\n", err);
		goto out;
	}
	log_info("worker running for %s, store '%s'", user_given ? m.o.user : "every user", m.o.store);
	sdnotify_send(&m.notify, "READY=1");
	while (sigwait(&stop, &sig) != 0)
		;
	sdnotify_send(&m.notify, "STOPPING=1");
	log_info("worker stopping (%s)", strsignal(sig));
	rc = 0;
out:
	mount_release(&m);
	fuse_opt_free_args(&args);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "sync") == 0)
		return cmd_sync(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "worker") == 0)
		return cmd_worker(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "__media") == 0)
		return media_helper_main(argc, argv);
	if (argc >= 3 && strcmp(argv[1], "db") == 0 && strcmp(argv[2], "migrate") == 0)
		return cmd_migrate(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "user") == 0)
		return cmd_user(argc - 1, argv + 1);
	return cmd_mount(argc, argv);
}
