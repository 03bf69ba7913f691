/*
 * unit_scratch.h - a test program's scratch folder, with the log in it.
 *
 *   static char scratch[64];
 *   if (unit_scratch(scratch, sizeof(scratch), "test-x") != 0) return 1;
 *
 * unit_scratch makes /tmp/mvfs-NAME.XXXXXX and sends the log (debug level)
 * to its file "log", and not to stderr unless MVFS_TEST_VERBOSE is set: 0,
 * or -1 after perror.  unit_src(dir, data, len) is an unlinked file in DIR
 * holding DATA, open for reading and writing; -1 on failure.
 */
#ifndef MVFS_UNIT_SCRATCH_H
#define MVFS_UNIT_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/log.h"

static inline int unit_scratch(char *dir, size_t len, const char *name)
{
	char logpath[256];

	snprintf(dir, len, "/tmp/mvfs-%s.XXXXXX", name);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	if (log_open(logpath) == 0 && !getenv("MVFS_TEST_VERBOSE"))
		log_set_stderr(0);
	log_set_level(LOG_LVL_DEBUG);
	return 0;
}

static inline int unit_src(const char *dir, const void *data, size_t len)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/src.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	if (len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

#endif
