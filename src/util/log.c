/*
 * log.c - timestamped log lines to stderr and/or a file.
 *
 * The sink is process state by nature (one daemon, one log), so it lives in
 * one small static struct guarded by a mutex; every write is one write(2) of
 * a whole line, so lines from threads never interleave.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	pthread_mutex_t lock;
	int fd;			/* log file, -1 when none */
	int to_stderr;
	enum log_level level;
} sink = { PTHREAD_MUTEX_INITIALIZER, -1, 1, LOG_LVL_INFO };

static const char *level_name[] = { "error", "warn", "info", "debug" };

int log_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&sink.lock);
	if (sink.fd >= 0)
		close(sink.fd);
	sink.fd = fd;
	pthread_mutex_unlock(&sink.lock);
	return 0;
}

void log_set_level(enum log_level level)
{
	sink.level = level;
}

void log_set_stderr(int on)
{
	sink.to_stderr = on;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;

	if (level > sink.level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, ".%03ldZ mvaultfs[%d] %s: ",
		      ts.tv_nsec / 1000000, (int)getpid(), level_name[level]);
	if (n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';

	pthread_mutex_lock(&sink.lock);
	if (sink.fd >= 0 && write(sink.fd, line, n) < 0) {
		/* nowhere better to report it */
	}
	if (sink.to_stderr && write(STDERR_FILENO, line, n) < 0) {
		/* stderr closed: nothing to do */
	}
	pthread_mutex_unlock(&sink.lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
