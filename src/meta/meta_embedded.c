/*
 * meta_embedded.c - create, start and stop the private PostgreSQL cluster.
 *
 * The PostgreSQL tools (initdb, pg_ctl) run as child processes, as the
 * cluster's owner: the daemon's own user, or "mvaultfs" when the daemon is
 * root.  The postmaster gets a session of its own, so a Ctrl-C aimed at a
 * foreground daemon does not reach it; the daemon stops it on the way out.
 *
 * Layout under DATA_DIR:
 *   pg/                  the cluster (initdb -E UTF8 --locale=C: byte order)
 *   pg/mvaultfs.conf     rewritten at every start: socket folder, no TCP
 *   run/                 the unix socket (0700), or a short folder in /tmp
 *                        when DATA_DIR is too long for a socket path
 *   postgresql.log       the server's log
 *
 * A cluster left running by a daemon that was killed is adopted as it is.
 */
#include "meta/meta_embedded.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"

#define CLUSTER_USER "mvaultfs"
#define DB_NAME "mvault"
#define DB_SUPERUSER "mvault"

struct meta_embedded {
	char bindir[256];
	char pgdata[4096];
	char sockdir[108];
	char logfile[4096];
	uid_t uid;		/* cluster owner */
	gid_t gid;
};

/* The newest PostgreSQL's bin folder (Debian keeps them versioned), or the
 * folder of the pg_ctl found on PATH. */
static int find_bindir(char *out, size_t len)
{
	glob_t g;
	int found = 0;

	if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0) {
		/* glob sorts; versions 10..99 sort right as strings */
		snprintf(out, len, "%s", g.gl_pathv[g.gl_pathc - 1]);
		*strrchr(out, '/') = '\0';
		found = 1;
	}
	globfree(&g);
	if (!found && access("/usr/bin/pg_ctl", X_OK) == 0) {
		snprintf(out, len, "/usr/bin");
		found = 1;
	}
	return found ? 0 : -ENOENT;
}

/* The owner of the cluster; made when the daemon is root and it is missing. */
static int cluster_owner(struct meta_embedded *e, char *err, size_t errlen)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		e->uid = geteuid();
		e->gid = getegid();
		return 0;
	}
	pw = getpwnam(CLUSTER_USER);
	if (!pw) {
		int st = system("useradd --system --no-create-home --home-dir /nonexistent"
				" --shell /usr/sbin/nologin " CLUSTER_USER " >/dev/null 2>&1");

		pw = getpwnam(CLUSTER_USER);
		if (!pw) {
			snprintf(err, errlen, "cannot create the system user '%s' for the embedded PostgreSQL"
				 " (useradd exit %d)", CLUSTER_USER, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			return -EPERM;
		}
		log_info("created system user '%s' to own the embedded PostgreSQL", CLUSTER_USER);
	}
	e->uid = pw->pw_uid;
	e->gid = pw->pw_gid;
	return 0;
}

/* Runs ARGV as the cluster owner in a session of its own, output appended
 * to the log file; returns its exit status, or -errno. */
static int run_as_owner(const struct meta_embedded *e, char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(e->logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);

		setsid();
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		if (geteuid() == 0 && e->uid != 0) {
			if (setgroups(0, NULL) != 0 || setgid(e->gid) != 0 || setuid(e->uid) != 0)
				_exit(126);
		}
		if (chdir("/") != 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* mkdir -m 0700, owned by the cluster owner. */
static int private_dir(const struct meta_embedded *e, const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -errno;
	if (chmod(path, 0700) != 0)
		return -errno;
	if (geteuid() == 0 && chown(path, e->uid, e->gid) != 0)
		return -errno;
	return 0;
}

/* Can the cluster owner reach PATH?  Checked in a child that becomes the
 * owner, since access(2) as root proves nothing. */
static int owner_can_reach(const struct meta_embedded *e, const char *path)
{
	pid_t pid;
	int status;

	if (geteuid() != 0)
		return 1;
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setgid(e->gid) != 0 || setuid(e->uid) != 0)
			_exit(1);
		_exit(access(path, R_OK | W_OK | X_OK) == 0 ? 0 : 1);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int write_conf(const struct meta_embedded *e)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/mvaultfs.conf", e->pgdata);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "# written by mvaultfs at every start\n"
		   "listen_addresses = ''\n"
		   "unix_socket_directories = '%s'\n"
		   "unix_socket_permissions = 0700\n"
		   "max_connections = 40\n"
		   "shared_buffers = 32MB\n"
		   "autovacuum_naptime = 10s\n", e->sockdir);
	fclose(f);
	if (geteuid() == 0 && chown(path, e->uid, e->gid) != 0)
		return -errno;
	return 0;
}

static int cluster_init(struct meta_embedded *e, char *err, size_t errlen)
{
	char initdb[300], path[4200];
	char *argv[] = { initdb, "-D", e->pgdata, "-U", DB_SUPERUSER, "-A", "trust", "-E", "UTF8",
			 "--locale=C", "--no-instructions", NULL };
	FILE *f;
	int rc;

	snprintf(initdb, sizeof(initdb), "%s/initdb", e->bindir);
	log_info("creating the embedded PostgreSQL cluster in '%s'", e->pgdata);
	rc = run_as_owner(e, argv);
	if (rc != 0) {
		snprintf(err, errlen, "initdb of the embedded PostgreSQL in '%s' failed (status %d, see '%s')",
			 e->pgdata, rc, e->logfile);
		return -EIO;
	}
	snprintf(path, sizeof(path), "%s/postgresql.conf", e->pgdata);
	f = fopen(path, "a");
	if (!f) {
		snprintf(err, errlen, "cannot configure '%s': %s", path, strerror(errno));
		return -EIO;
	}
	fprintf(f, "\ninclude_if_exists = 'mvaultfs.conf'\n");
	fclose(f);
	return 0;
}

static int cluster_running(const struct meta_embedded *e)
{
	char pg_ctl[300];
	char *argv[] = { pg_ctl, "status", "-D", (char *)e->pgdata, NULL };

	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", e->bindir);
	return run_as_owner(e, argv) == 0;
}

/* Makes the mvaultfs database on first start. */
static int database_ensure(const struct meta_embedded *e, char *err, size_t errlen)
{
	char ci[256];
	PGconn *c;
	PGresult *r;
	int rc = 0;

	snprintf(ci, sizeof(ci), "host=%s dbname=postgres user=" DB_SUPERUSER, e->sockdir);
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to the embedded PostgreSQL: %.200s", PQerrorMessage(c));
		PQfinish(c);
		return -EIO;
	}
	r = PQexec(c, "SELECT 1 FROM pg_database WHERE datname = '" DB_NAME "'");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0) {
		PQclear(r);
		r = PQexec(c, "CREATE DATABASE " DB_NAME);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "cannot create the embedded database: %.200s", PQresultErrorMessage(r));
			rc = -EIO;
		}
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

static int pick_sockdir(struct meta_embedded *e, const char *data_dir, char *err, size_t errlen)
{
	char tmpl[] = "/tmp/mvaultfs-pg.XXXXXX";
	int rc;

	if (strlen(data_dir) + strlen("/run/.s.PGSQL.5432") < sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(e->sockdir, sizeof(e->sockdir), "%s/run", data_dir);
		rc = private_dir(e, e->sockdir);
	} else if (mkdtemp(tmpl)) {
		snprintf(e->sockdir, sizeof(e->sockdir), "%s", tmpl);
		rc = private_dir(e, e->sockdir);
	} else {
		rc = -errno;
	}
	if (rc)
		snprintf(err, errlen, "cannot make the socket folder '%s': %s", e->sockdir, strerror(-rc));
	return rc;
}

struct meta_embedded *meta_embedded_start(const char *data_dir, char *conninfo, size_t len,
					  char *err, size_t errlen)
{
	struct meta_embedded *e = calloc(1, sizeof(*e));
	char pg_ctl[300], path[4200];
	char *argv[] = { pg_ctl, "start", "-w", "-t", "60", "-s", "-D", NULL, "-l", NULL, NULL };
	struct stat st;
	int rc;

	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(e->pgdata, sizeof(e->pgdata), "%s/pg", data_dir);
	snprintf(e->logfile, sizeof(e->logfile), "%s/postgresql.log", data_dir);
	if (find_bindir(e->bindir, sizeof(e->bindir)) != 0) {
		snprintf(err, errlen, "the embedded default needs the PostgreSQL server (Debian package"
			 " postgresql): no pg_ctl in /usr/lib/postgresql/*/bin; or give -o db=postgres://...");
		goto fail;
	}
	if ((rc = cluster_owner(e, err, errlen)) != 0)
		goto fail;
	if ((rc = private_dir(e, e->pgdata)) != 0) {
		snprintf(err, errlen, "cannot make '%s': %s", e->pgdata, strerror(-rc));
		goto fail;
	}
	if (!owner_can_reach(e, e->pgdata)) {
		snprintf(err, errlen, "the embedded PostgreSQL runs as '%s', which cannot reach '%s':"
			 " choose a data folder it can reach with -o data_dir=DIR", CLUSTER_USER, e->pgdata);
		goto fail;
	}
	/* The log file must be writable by the owner. */
	close(open(e->logfile, O_WRONLY | O_CREAT | O_APPEND, 0600));
	if (geteuid() == 0 && chown(e->logfile, e->uid, e->gid) != 0) {
		snprintf(err, errlen, "cannot give '%s' to '%s': %s", e->logfile, CLUSTER_USER, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/PG_VERSION", e->pgdata);
	if (stat(path, &st) != 0 && cluster_init(e, err, errlen) != 0)
		goto fail;
	if (pick_sockdir(e, data_dir, err, errlen) != 0)
		goto fail;
	if ((rc = write_conf(e)) != 0) {
		snprintf(err, errlen, "cannot write the configuration of '%s': %s", e->pgdata, strerror(-rc));
		goto fail;
	}
	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", e->bindir);
	argv[7] = e->pgdata;
	argv[9] = e->logfile;
	if (cluster_running(e)) {
		log_warn("the embedded PostgreSQL in '%s' was still running (the last daemon did not stop it); using it",
			 e->pgdata);
	} else if ((rc = run_as_owner(e, argv)) != 0) {
		snprintf(err, errlen, "the embedded PostgreSQL in '%s' did not start (status %d, see '%s')",
			 e->pgdata, rc, e->logfile);
		goto fail;
	}
	if (database_ensure(e, err, errlen) != 0) {
		meta_embedded_stop(e);
		return NULL;
	}
	snprintf(conninfo, len, "host=%s dbname=" DB_NAME " user=" DB_SUPERUSER
		 " application_name=mvaultfs", e->sockdir);
	return e;
fail:
	free(e);
	return NULL;
}

void meta_embedded_stop(struct meta_embedded *e)
{
	char pg_ctl[300];
	char *argv[] = { pg_ctl, "stop", "-D", NULL, "-m", "fast", "-w", "-t", "60", "-s", NULL };
	int rc;

	if (!e)
		return;
	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", e->bindir);
	argv[3] = e->pgdata;
	rc = run_as_owner(e, argv);
	if (rc != 0)
		log_error("the embedded PostgreSQL in '%s' did not stop cleanly (status %d, see '%s')",
			  e->pgdata, rc, e->logfile);
	if (strncmp(e->sockdir, "/tmp/mvaultfs-pg.", 17) == 0)
		rmdir(e->sockdir);
	free(e);
}
