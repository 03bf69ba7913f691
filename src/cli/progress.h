/*
 * progress.h - the progress line of long commands (import, sync).
 *
 * On a terminal one line that rewrites itself in place (at most 4 times a
 * second); elsewhere (a log, a pipe, systemd's journal) a plain line every
 * few seconds, so a log gets neither carriage returns nor a line per file.
 */
#ifndef MVFS_CLI_PROGRESS_H
#define MVFS_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct progress {
	FILE *out;
	int tty;			/* OUT is a terminal: rewrite one line */
	int shown;			/* a line is on the terminal now */
	struct timespec start, last;
};

/* Starts the clock; lines go to OUT (stderr, usually). */
void progress_init(struct progress *p, FILE *out);
/* Seconds since progress_init. */
double progress_elapsed(const struct progress *p);
/* Shows the line FMT makes: on a terminal when a quarter second passed
 * since the last one (or FORCE), else as a plain line every 5 s (or
 * FORCE). */
void progress_show(struct progress *p, int force, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints a line of its own (an error, a skipped file) above the progress
 * line, which the next progress_show draws again. */
void progress_say(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears the terminal's progress line (before a summary). */
void progress_clear(struct progress *p);

/* BYTES as "12.3 MiB" into BUF. */
void progress_bytes(double bytes, char *buf, size_t len);
/* SECS as "0:07", "12:34" or "1:02:03"; "?" when unknown (negative or
 * beyond a day). */
void progress_clock(double secs, char *buf, size_t len);

#endif
