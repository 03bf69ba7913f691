/*
 * import_watch.c - `mvaultfs import --watch`: inotify on DIR and every
 * folder below it (import.c reads the tree first, watching each folder
 * before it reads it).
 *
 * Every event about a file (re)arms its settle timer: a file is imported
 * once --settle seconds passed with no event and its mtime is at least
 * that old, so a file written slowly, or copied in over seconds, is taken
 * once, whole.  A folder made or moved in is watched and read at once (a
 * moved-in tree makes no events for its files).  A queue overflow reads
 * the whole tree again (files taken before are known by size and mtime,
 * import.c).  A moved folder keeps its watch descriptor: watching it again
 * under its new path gives the same one, whose path is then updated.
 */
#include "cli/import.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static double now_mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void import_watch_folder(struct import *im, const char *rel)
{
	char path[PATH_MAX * 2];
	int wd;

	snprintf(path, sizeof(path), "%s%s%s", im->src, *rel ? "/" : "", rel);
	wd = inotify_add_watch(im->ino_fd, path, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_ONLYDIR);
	if (wd < 0) {
		import_line(im, *rel ? rel : ".", "not watched: %s", strerror(errno));
		return;
	}
	/* the same folder moved keeps its descriptor: its path is the new one */
	g_hash_table_replace(im->wd_path, GINT_TO_POINTER(wd), g_strdup(rel));
}

static void pend(struct import *im, const char *rel)
{
	double *due = g_new(double, 1);

	*due = now_mono() + im->settle;
	g_hash_table_replace(im->pending, g_strdup(rel), due);
}

/* The files of a folder made or moved in: watched, and each file pending. */
static void pend_folder(struct import *im, const char *rel)
{
	import_walk(im, rel, 0, pend);
}

static void events(struct import *im)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n = read(im->ino_fd, buf, sizeof(buf));

	for (char *p = buf; n > 0 && p < buf + n;) {
		struct inotify_event *ev = (struct inotify_event *)p;
		const char *dir = g_hash_table_lookup(im->wd_path, GINT_TO_POINTER(ev->wd));
		char rel[PATH_MAX];

		p += sizeof(*ev) + ev->len;
		if (ev->mask & IN_Q_OVERFLOW) {
			progress_say(&im->p, "mvaultfs import: too many changes at once (inotify queue overflow):"
				     " reading the whole folder again");
			pend_folder(im, "");
			continue;
		}
		if (ev->mask & IN_IGNORED) {
			g_hash_table_remove(im->wd_path, GINT_TO_POINTER(ev->wd));
			continue;
		}
		if (!dir || !ev->len)
			continue;
		snprintf(rel, sizeof(rel), "%s%s%s", dir, *dir ? "/" : "", ev->name);
		if (ev->mask & IN_ISDIR) {
			if (ev->mask & (IN_CREATE | IN_MOVED_TO))
				pend_folder(im, rel);
		} else {
			pend(im, rel);
		}
	}
}

/* Imports the pending files that settled; returns the seconds until the
 * next one is due (-1: none pending). */
static double settled(struct import *im)
{
	GHashTableIter it;
	gpointer k, v;
	double now = now_mono(), next = -1;
	GPtrArray *due = g_ptr_array_new_with_free_func(g_free);

	g_hash_table_iter_init(&it, im->pending);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		double *at = v;
		char path[PATH_MAX * 2];
		struct stat st;

		if (*at <= now) {
			/* changed within the settle time without an event (a
			 * writer whose events were merged): later */
			snprintf(path, sizeof(path), "%s/%s", im->src, (const char *)k);
			if (lstat(path, &st) == 0) {
				double age = (double)time(NULL) - (double)st.st_mtim.tv_sec;

				if (age >= 0 && age < im->settle - 1) {
					*at = now + im->settle - age;
					goto later;
				}
			}
			g_ptr_array_add(due, g_strdup(k));
			g_hash_table_iter_remove(&it);
			continue;
		}
later:
		if (next < 0 || *at - now < next)
			next = *at - now;
	}
	for (guint i = 0; i < due->len && !import_signalled(im); i++)
		import_now(im, g_ptr_array_index(due, i));
	g_ptr_array_free(due, TRUE);
	return next;
}

void import_watch_loop(struct import *im)
{
	while (!import_signalled(im)) {
		struct pollfd fds[2] = { { .fd = im->ino_fd, .events = POLLIN }, { .fd = im->sigfd, .events = POLLIN } };
		double next = settled(im);
		int timeout = next < 0 ? 1000 : (int)(next * 1000) + 1;

		if (im->delete_after)
			import_delete_sources(im, 0);
		import_show(im, 0);
		if (im->gone_later->len && timeout > 500)
			timeout = 500;
		if (poll(fds, 2, timeout) > 0 && (fds[0].revents & POLLIN))
			events(im);
	}
}
