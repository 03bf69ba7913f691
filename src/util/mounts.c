/*
 * mounts.c - mounts_find (mounts.h) over libmount's table of
 * /proc/self/mountinfo.
 */
#include "util/mounts.h"

#include <errno.h>
#include <libmount.h>

int mounts_find(const char *path, dev_t *dev)
{
	struct libmnt_table *tb;
	struct libmnt_fs *fs;

	errno = 0;
	tb = mnt_new_table_from_file("/proc/self/mountinfo");
	if (!tb)
		return errno ? -errno : -EIO;
	/* backward: the last mount on a path is the one seen there; the
	 * table has no cache, so no path is canonicalised (stat'ed) */
	fs = mnt_table_find_target(tb, path, MNT_ITER_BACKWARD);
	if (fs && dev)
		*dev = mnt_fs_get_devno(fs);
	mnt_unref_table(tb);
	return fs ? 0 : -ENOENT;
}
