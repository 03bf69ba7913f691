/*
 * log.h - one place where the daemon says what happened.
 *
 * Lines go to stderr while the daemon runs in the foreground and to the log
 * file (log_open) once it is a daemon.  Each line carries a level and the
 * subject it is about; callers quote the subject themselves, e.g.
 *   log_error("cannot commit '%s': %s", name, strerror(-rc));
 * Never pass a secret (keys, tokens, passwords) to these functions.
 */
#ifndef MVFS_LOG_H
#define MVFS_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

/* Sends further lines to PATH (appended, created 0600).  Returns 0 or -errno;
 * on failure lines keep going where they went before. */
int log_open(const char *path);
/* Lines below LEVEL are dropped.  Default: LOG_LVL_INFO. */
void log_set_level(enum log_level level);
/* Also echo every line to stderr (foreground mode).  Default: on. */
void log_set_stderr(int on);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
