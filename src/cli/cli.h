/*
 * cli.h - the subcommands that live in src/cli (the rest of the command
 * line is src/main.c).  Each takes its own argv (argv[0] is the subcommand's
 * name) and returns the process's exit status.
 */
#ifndef MVFS_CLI_H
#define MVFS_CLI_H

/* `mvaultfs import [--watch] DIR --to library/PATH|galleries/NAME` (import.c). */
int cmd_import(int argc, char **argv);

#endif
