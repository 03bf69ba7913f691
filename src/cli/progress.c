/*
 * progress.c - the progress line (progress.h).
 */
#include "cli/progress.h"

#include <stdarg.h>
#include <unistd.h>

void progress_init(struct progress *p, FILE *out)
{
	p->out = out;
	p->tty = isatty(fileno(out));
	p->shown = 0;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	p->last = (struct timespec){ 0 };
}

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

double progress_elapsed(const struct progress *p)
{
	return since(&p->start);
}

void progress_show(struct progress *p, int force, const char *fmt, ...)
{
	va_list ap;

	if (!force && (p->last.tv_sec || p->last.tv_nsec) && since(&p->last) < (p->tty ? 0.25 : 5.0))
		return;
	clock_gettime(CLOCK_MONOTONIC, &p->last);
	/* \033[K: what the last, longer line left on the right goes */
	fputs(p->tty ? "\r" : "", p->out);
	va_start(ap, fmt);
	vfprintf(p->out, fmt, ap);
	va_end(ap);
	fputs(p->tty ? "\033[K" : "\n", p->out);
	fflush(p->out);
	p->shown = p->tty;
}

void progress_clear(struct progress *p)
{
	if (p->shown)
		fputs("\r\033[K", p->out);
	p->shown = 0;
	fflush(p->out);
}

void progress_say(struct progress *p, const char *fmt, ...)
{
	va_list ap;

	progress_clear(p);
	va_start(ap, fmt);
	vfprintf(p->out, fmt, ap);
	va_end(ap);
	fputc('\n', p->out);
	fflush(p->out);
	if (p->tty)
		p->last = (struct timespec){ 0 };	/* the next show draws it again */
}

void progress_bytes(double bytes, char *buf, size_t len)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

void progress_clock(double secs, char *buf, size_t len)
{
	long s = (long)(secs + 0.5);

	if (secs < 0 || secs > 86400)
		snprintf(buf, len, "?");
	else if (s >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
}
