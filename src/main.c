/*
 * main.c - the mvaultfs command line: which subcommand, then that
 * subcommand's own file in src/cli (cli.h):
 *
 *   mvaultfs [options] [SOURCE] MOUNTPOINT   mount (daemonises unless -f)   mount.c
 *   mvaultfs status|sync ... MOUNTPOINT      a running mount's client       status.c
 *   mvaultfs worker [-o ...]                 background jobs, no mount      worker.c
 *   mvaultfs import ... DIR --to ...         files into the library         import.c
 *   mvaultfs db migrate | user add NAME      the shared database            db.c
 *   mvaultfs __media ...                     the image helper process       src/media
 */
#include <string.h>

#include "cli/cli.h"
#include "media/media.h"

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "sync") == 0)
		return cmd_sync(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "worker") == 0)
		return cmd_worker(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "__media") == 0)
		return media_helper_main(argc, argv);
	if (argc >= 3 && strcmp(argv[1], "db") == 0 && strcmp(argv[2], "migrate") == 0)
		return cmd_migrate(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "user") == 0)
		return cmd_user(argc - 1, argv + 1);
	return cmd_mount(argc, argv);
}
