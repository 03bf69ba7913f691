/*
 * fs_session.c - the FUSE session of a mount: libfuse's own command line,
 * the session made, mounted, run and ended.
 *
 * src/cli/mount.c decides what a mount is (options, engines, threads, in
 * which order); this file is how it is put before the kernel, so that
 * only src/fs speaks libfuse's session API (`make layers`).  The session
 * is FS->se, which the push thread and the readahead use too.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

int fs_cmdline_parse(struct fuse_args *args, struct fs_cmdline *c)
{
	struct fuse_cmdline_opts o = { 0 };

	if (fuse_parse_cmdline(args, &o) != 0)
		return -EINVAL;
	*c = (struct fs_cmdline){ .mountpoint = o.mountpoint, .show_help = o.show_help,
				  .show_version = o.show_version, .foreground = o.foreground, .debug = o.debug,
				  .singlethread = o.singlethread, .clone_fd = o.clone_fd,
				  .max_idle_threads = o.max_idle_threads, .max_threads = o.max_threads };
	return 0;
}

void fs_cmdline_help(void)
{
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

const char *fs_fuse_version(void)
{
	return fuse_pkgversion();
}

int fs_session_open(struct mvfs *fs, struct fuse_args *args, const char *mountpoint)
{
	/* the kernel checks mode bits itself, as a mount other users may
	 * reach (allow_other) should; it keeps no ACLs (op_init) */
	if (fuse_opt_add_arg(args, "-odefault_permissions") != 0)
		return -ENOMEM;
	if (!(fs->se = fuse_session_new(args, &fs_ops, sizeof(fs_ops), fs)))
		return -EINVAL;		/* libfuse said why */
	if (fuse_set_signal_handlers(fs->se) != 0)
		return -EIO;
	fs->se_handlers = 1;
	if (fuse_session_mount(fs->se, mountpoint) != 0)
		return -EIO;
	fs->se_mounted = 1;
	return 0;
}

void fs_session_daemonize(int foreground)
{
	fuse_daemonize(foreground);
}

int fs_session_run(struct mvfs *fs, const struct fs_cmdline *c)
{
	struct fuse_loop_config *loop;
	int rc;

	if (c->singlethread)
		return fuse_session_loop(fs->se) < 0 ? -EIO : 0;
	if (!(loop = fuse_loop_cfg_create()))
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(loop, c->clone_fd);
	if (c->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(loop, c->max_idle_threads);
	fuse_loop_cfg_set_max_threads(loop, c->max_threads);
	rc = fuse_session_loop_mt(fs->se, loop);
	fuse_loop_cfg_destroy(loop);
	return rc < 0 ? -EIO : 0;
}

void fs_session_unmount(struct mvfs *fs)
{
	if (fs->se_mounted)
		fuse_session_unmount(fs->se);
	fs->se_mounted = 0;
}

void fs_session_close(struct mvfs *fs)
{
	fs_session_unmount(fs);
	if (fs->se_handlers)
		fuse_remove_signal_handlers(fs->se);
	fs->se_handlers = 0;
	if (fs->se)
		fuse_session_destroy(fs->se);
	fs->se = NULL;
}
