/*
 * db.c - the commands on a shared database, with no mount:
 *
 *   mvaultfs db migrate [-o db=CONNINFO]      bring it to this schema
 *   mvaultfs user add NAME [-o ...]           a login role for user NAME
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/engine.h"
#include "meta/meta.h"
#include "meta/meta_conninfo.h"
#include "util/secret.h"

int cmd_migrate(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mvfs_opts o = { 0 };
	char err[512] = "";
	const char *db;
	int rc;

	if (fuse_opt_parse(&args, &o, mvfs_opt_spec, NULL) != 0)
		return 1;
	rc = db_options_settle(&o, argc, argv);
	db = o.db;
	if (!rc && (!db || !*db)) {
		fprintf(stderr, "mvaultfs: db migrate needs -o db=CONNINFO or MVAULT_DB\n");
		rc = -1;
	}
	if (!rc) {
		rc = meta_migrate_only(db, err, sizeof(err));
		meta_conninfo_redact(db, err, sizeof(err));
		if (rc)
			fprintf(stderr, "mvaultfs: %s\n", err[0] ? err : strerror(-rc));
	}
	fuse_opt_free_args(&args);
	free(o.db);
	free(o.db_passfile);
	return rc ? 1 : 0;
}

/* `mvaultfs user add NAME`: a login role for user NAME (DECISIONS.md,
 * "Who a connection acts for"). */
struct user_opts {
	char *role;
	char *pgpass;
	int no_password;
	int worker;		/* NAME is a role for `mvaultfs worker`, not a user */
};

static const struct fuse_opt user_opt_spec[] = {
	{ "role=%s", offsetof(struct user_opts, role), 0 },
	{ "pgpass=%s", offsetof(struct user_opts, pgpass), 0 },
	{ "no_password", offsetof(struct user_opts, no_password), 1 },
	{ "worker", offsetof(struct user_opts, worker), 1 },
	FUSE_OPT_END
};

int cmd_user(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mvfs_opts o = { 0 };
	struct user_opts u = { 0 };
	char err[512] = "", pw[SECRET_PASSWORD_LEN + 1], pgpass[1024], uri[512];
	const char *db, *name = NULL;
	int rc = 1, fd;

	if (fuse_opt_parse(&args, &o, mvfs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &u, user_opt_spec, NULL) != 0)
		goto out;
	if (args.argc != 3 || strcmp(args.argv[1], "add") != 0) {
		fprintf(stderr, "usage: mvaultfs user add NAME [-o db=CONNINFO,role=ROLE,pgpass=FILE,no_password,worker]\n");
		goto out;
	}
	name = args.argv[2];
	if (db_options_settle(&o, argc, argv) != 0)
		goto out;
	db = o.db;
	if (!db || !*db) {
		fprintf(stderr, "mvaultfs: user add needs -o db=CONNINFO or MVAULT_DB (as the database's owner role)\n");
		goto out;
	}
	if (!u.no_password && secret_password(pw) != 0) {
		fprintf(stderr, "mvaultfs: cannot make a random password\n");
		goto out;
	}
	if (meta_user_add(db, u.worker ? NULL : name, u.role ? u.role : name, u.no_password ? NULL : pw, pgpass,
			  sizeof(pgpass), uri, sizeof(uri), err, sizeof(err)) != 0) {
		meta_conninfo_redact(db, err, sizeof(err));
		fprintf(stderr, "mvaultfs: %s\n", err);
		goto out;
	}
	if (u.worker)
		printf("'%s' is a role for mvaultfs worker: -o db=%s\n", u.role ? u.role : name, uri);
	else
		printf("user '%s' logs in as database role '%s': -o db=%s\n", name, u.role ? u.role : name, uri);
	if (u.no_password) {
		rc = 0;
	} else if (u.pgpass) {
		fd = open(u.pgpass, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || dprintf(fd, "%s\n", pgpass) < 0 || fsync(fd) != 0) {
			fprintf(stderr, "mvaultfs: cannot write the password to '%s': %s (the role has it now;"
				" run this again to set a new one)\n", u.pgpass, strerror(errno));
		} else {
			printf("its password is in '%s' (a ~/.pgpass line: -o db_passfile=%s)\n", u.pgpass, u.pgpass);
			rc = 0;
		}
		if (fd >= 0)
			close(fd);
	} else {
		printf("its password, as a ~/.pgpass line (mode 0600):\n%s\n", pgpass);
		rc = 0;
	}
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(pgpass, sizeof(pgpass));
out:
	fuse_opt_free_args(&args);
	free(o.db);
	free(o.db_passfile);
	free(u.role);
	free(u.pgpass);
	return rc;
}
