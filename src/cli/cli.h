/*
 * cli.h - the subcommands, one file each in src/cli; src/main.c only picks
 * one.  Each takes its own argv (argv[0] is the subcommand's name, or the
 * program's for a mount) and returns the process's exit status.
 */
#ifndef MVFS_CLI_H
#define MVFS_CLI_H

/* `mvaultfs [options] [SOURCE] MOUNTPOINT` (mount.c). */
int cmd_mount(int argc, char **argv);
/* `mvaultfs status [--json] MOUNTPOINT`, `mvaultfs sync MOUNTPOINT
 * [--timeout SECS]`: a running mount's client (status.c). */
int cmd_status(int argc, char **argv);
int cmd_sync(int argc, char **argv);
/* `mvaultfs worker [-o ...]`: background jobs, no mount (worker.c). */
int cmd_worker(int argc, char **argv);
/* `mvaultfs import [--watch] DIR --to library/PATH|galleries/NAME` (import.c). */
int cmd_import(int argc, char **argv);
/* `mvaultfs db migrate`, `mvaultfs user add NAME` (db.c). */
int cmd_migrate(int argc, char **argv);
int cmd_user(int argc, char **argv);

/* The mvaultfs part of `mvaultfs --help` on stdout (help.c); libfuse's
 * options follow it (mount.c). */
void cli_usage(const char *prog);

#endif
