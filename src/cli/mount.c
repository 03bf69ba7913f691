/*
 * mount.c - `mvaultfs [options] [SOURCE] MOUNTPOINT`: the mount.  It
 * checks everything that can be checked before the mount exists (mount
 * point, database, store), so a failure is one line on stderr and exit
 * status 1, with nothing mounted and nothing left running; then it adds a
 * FUSE session to the engines of engine.c and serves it (fs_session.c:
 * only src/fs talks to libfuse's session API, `make layers`; this file
 * reads only its option parser, fuse_opt.h).
 */
#include <errno.h>
#include <fuse_opt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/engine.h"
#include "fs/fs.h"
#include "fs/fs_thumbs.h"
#include "meta/meta.h"
#include "meta/meta_embedded.h"
#include "util/log.h"
#include "util/mounts.h"
#include "util/sdnotify.h"
#include "util/store_label.h"

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
	if (realpath(mnt, real) && mounts_find(real, NULL) == 0) {
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
	fs_session_unmount(&m->fs);
	fs_push_free(m->fs.push);
	m->fs.push = NULL;
	fs_session_close(&m->fs);
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
	int rc = fs_session_init(m->fs.se);

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

int cmd_mount(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mount m = { .o = { .attr_timeout = -1, .entry_timeout = -1, .pool = 8, .version_min_age = -1,
				  .read_ahead_kb = -1, .leftover_wait = -1 } };
	struct fs_cmdline cmd = { 0 };
	struct fs_config fc;
	int rc = 1, push;

	sdnotify_init(&m.notify);
	if (helper_args_settle(&args) != 0 ||
	    mount_opts_parse(&m, &args) != 0 ||
	    fs_cmdline_parse(&args, &cmd) != 0)
		goto out;
	m.mountpoint = cmd.mountpoint;	/* freed with the rest */
	if (cmd.show_help) {
		cli_usage(argv[0]);
		fs_cmdline_help();
		rc = 0;
		goto out;
	}
	if (cmd.show_version) {
		printf("mvaultfs %s (libfuse %s)\n", MVFS_VERSION, fs_fuse_version());
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
	if (m.o.leftover_wait < -1 || m.o.leftover_wait == 0 || m.o.leftover_wait > 600) {
		fprintf(stderr, "mvaultfs: -o embedded_leftover_wait=%d: give seconds from 1 to 600\n", m.o.leftover_wait);
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
	if (mount_data_dir(&m, geteuid() == 0 ? 0711 : 0700) != 0)
		goto out;
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
	if ((rc = fs_session_open(&m.fs, &args, m.mountpoint)) != 0) {
		rc = 1;
		if (m.fs.se_handlers)
			fprintf(stderr, "mvaultfs: cannot mount on '%s' (see the line above)\n", m.mountpoint);
		goto out;
	}
	log_info("mounted '%s' for user '%s', store '%s'", m.mountpoint, meta_user_name(m.meta), m.o.store);
	if (!cmd.foreground)
		log_set_stderr(0);
	fs_session_daemonize(cmd.foreground);
	/* Where no other writer can go unseen (the embedded cluster, or a
	 * mount told of others' changes), a folder made here has only the
	 * names made here (fs_known.c).  Started before the threads that make
	 * names (the uploads' records of files from the journal announce
	 * theirs), turned off below if push does not start. */
	push = m.o.push ? strcmp(m.o.push, "off") != 0 : !m.pg;
	if ((m.pg || push) && fs_known_start(&m.fs) != 0)
		log_warn("every lookup of a new name asks the database: out of memory");
	/* Threads only now: a daemon's fork keeps none. */
	if (cache_start(m.cache, fs_file_uploaded, fs_files_uploaded, &m.fs) != 0) {
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
	if (push) {
		char err[512];

		/* without it the mount is still right, only slower to see others' changes */
		if (!(m.fs.push = fs_push_start(&m.fs, err, sizeof(err)))) {
			log_error("changes of other mounts are seen only after the kernel's timeouts"
				  " (attr_timeout, entry_timeout): cannot listen for them: %s", err);
			if (!m.pg)
				fs_known_off(&m.fs);
		}
	} else if (m.o.push) {
		log_info("-o push=off: changes of other mounts are seen after the kernel's timeouts");
	}
	if (meta_embedded_watch(m.pg) != 0)
		log_error("cannot start the watchdog of the embedded PostgreSQL: it will not be restarted if it dies");
	mount_readahead(&m);
	if (sdnotify_send(&m.notify, "READY=1") != 0)
		log_warn("cannot tell systemd the mount is ready: %s", strerror(errno));
	rc = fs_session_run(&m.fs, &cmd);
	sdnotify_send(&m.notify, "STOPPING=1");
	log_info("unmounting '%s'", m.mountpoint);
	rc = rc < 0 ? 1 : 0;
out:
	mount_release(&m);
	fuse_opt_free_args(&args);
	return rc;
}
