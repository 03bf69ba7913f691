/*
 * fs_readahead.c - the kernel's readahead for the mount.
 *
 * The kernel reads ahead of a sequential reader by the read_ahead_kb of the
 * mount's backing device; for FUSE that is the bdi the mount made, named
 * after the mount's device number (/sys/class/bdi/MAJOR:MINOR), 128 KiB by
 * default.  At 128 KiB a cold read of a big file reaches the daemon as
 * 128 KiB requests, a couple at a time, however fast the cache and store
 * behind them are (issue 16).
 *
 * DESIGN
 * The max_readahead a daemon asks for in INIT cannot raise it: the kernel
 * offers its bdi's value in INIT, libfuse takes the smaller of that and the
 * daemon's, and the kernel sets the bdi to the smaller again when the reply
 * comes.  Only root can write sysfs, and the write must come after that
 * reply or it is undone.  So fs_session_init() answers INIT on the calling
 * thread before the session loop starts (libfuse's custom event loop
 * calls), and fs_readahead_set() then writes sysfs: the first open already
 * reads ahead by the new value (a file takes its bdi's readahead at open).
 * The device number comes from /proc/self/mountinfo, not stat(2): a stat of
 * the mount point would be a FUSE request that nobody serves yet.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util/mounts.h"

int fs_session_init(struct fuse_session *se)
{
	struct fuse_buf buf = { .mem = NULL };
	int n;

	do
		n = fuse_session_receive_buf(se, &buf);
	while (n == -EINTR);
	if (n > 0)
		fuse_session_process_buf(se, &buf);
	free(buf.mem);
	return n > 0 ? 0 : n == 0 ? -ENODEV : n;
}

int fs_readahead_set(const char *mountpoint, unsigned kb, char *err, size_t errlen)
{
	char path[64], now[32] = "";
	dev_t dev = 0;
	ssize_t n;
	int fd, rc = mounts_find(mountpoint, &dev);

	if (rc) {
		snprintf(err, errlen, "cannot find the mount's device in /proc/self/mountinfo: %s", strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(dev), minor(dev));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || dprintf(fd, "%u\n", kb) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, now, sizeof(now) - 1) : -1;
		now[n > 0 ? n : 0] = '\0';
		now[strcspn(now, "\n")] = '\0';
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "cannot write %s: %s (it stays %s KiB; root may raise it)", path,
			 strerror(-rc), now[0] ? now : "at the kernel's default");
		return rc;
	}
	close(fd);
	snprintf(err, errlen, "%s", path);
	return 0;
}
