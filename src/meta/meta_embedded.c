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
 *   embedded.lock        held (flock) by the daemon that owns the cluster;
 *                        holds "PID running" or "PID stopping"
 *
 * A cluster left running by a daemon that was killed is adopted as it is.
 *
 * DESIGN: the cluster's life.  One daemon at a time owns the cluster: it
 * takes embedded.lock before it touches pg/ and lets go only once its
 * postmaster is gone (pg_ctl stop -w returned).  A daemon that starts while
 * the lock is held reads why: "stopping" is a previous daemon on its way
 * out (an immediate remount, a systemd restart), waited for up to
 * WAIT_PREVIOUS_S; "running" is another mount on the same data folder,
 * which is refused after WAIT_RUNNING_S (the grace covers the moment
 * between fusermount3 -u and the old daemon marking itself "stopping").
 * With the lock taken, a cluster still shutting down or starting up is
 * waited for; one that is ready is adopted.
 *
 * A watchdog thread (meta_embedded_watch) looks at postmaster.pid twice a
 * second.  When the postmaster is gone (killed, crashed, stopped by hand)
 * it waits for the old cluster's leftover processes, which exit by
 * themselves once they notice, because a new postmaster refuses to start
 * while any still attaches the old shared memory; then it starts the
 * cluster again, with backoff while that fails.  The pool's connections
 * reconnect on their next use.  The only processes ever signalled are that
 * cluster's own: named postgres, owned by the cluster owner, working in
 * its data folder (cluster_process), and only while no postmaster serves
 * it.
 */
#include "meta/meta_embedded.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define CLUSTER_USER "mvaultfs"
#define DB_NAME "mvault"
#define DB_SUPERUSER "mvault"

#define WAIT_PREVIOUS_S 60	/* a previous daemon stopping, a cluster shutting down */
#define WAIT_RUNNING_S 5	/* a daemon marked running: it may have just been unmounted */
#define LEFTOVER_WAIT_S 10	/* a dead cluster's processes exit by themselves (the default) */
#define WATCH_MS 500
#define RESTART_BACKOFF_MAX_S 30

struct meta_embedded {
	char bindir[256];
	char pgdata[4096];
	char pgreal[PATH_MAX];	/* pgdata resolved: the cwd of the cluster's processes */
	char sockdir[108];
	char logfile[4096];
	uid_t uid;		/* cluster owner */
	gid_t gid;
	int lockfd;		/* embedded.lock, flocked while we own the cluster */
	int leftover_wait_s;	/* LEFTOVER_WAIT_S, or -o embedded_leftover_wait */
	pthread_t watcher;
	int watching;
	int quit;		/* under mu: the watcher is to end */
	pthread_mutex_t mu;
	pthread_cond_t wake;
};

enum pm_state { PM_NONE, PM_STARTING, PM_READY, PM_STOPPING };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

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
	int prewarm;

	/* pg_prewarm's autoprewarm: the blocks in shared buffers at the stop
	 * are read back at the start, in the background, in file order; so
	 * the first listing after a remount (or a reboot) finds its rows in
	 * memory, not in one random read of the disk each (PostgreSQL's
	 * contrib, part of Debian's server package: only when it is there) */
	snprintf(path, sizeof(path), "%s/../lib/pg_prewarm.so", e->bindir);
	prewarm = access(path, R_OK) == 0;
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
		   "autovacuum_naptime = 10s\n"
		   "%s", e->sockdir, prewarm ? "shared_preload_libraries = 'pg_prewarm'\n" : "");
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

/* Whether PID is a live process of this cluster: named postgres, owned by
 * the cluster owner, working in its data folder (the postmaster chdirs
 * there, its children inherit it).  A zombie, or another program that got
 * a recycled pid, fails the test. */
static int cluster_process(const struct meta_embedded *e, pid_t pid)
{
	char path[64], buf[PATH_MAX];
	struct stat st;
	ssize_t n;
	FILE *f;
	int named;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	named = fgets(buf, sizeof(buf), f) && strcmp(buf, "postgres\n") == 0;
	fclose(f);
	if (!named)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) != 0 || st.st_uid != e->uid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	return strcmp(buf, e->pgreal) == 0;
}

/* What the postmaster named in postmaster.pid is doing: line 1 is its pid,
 * line 8 the status it announces (PostgreSQL's LOCK_FILE_LINE_PM_STATUS).
 * PM_NONE when there is no such file or its postmaster is gone. */
static enum pm_state postmaster_state(const struct meta_embedded *e)
{
	char path[4200], line[256];
	enum pm_state state = PM_STARTING;
	int pid = 0, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/postmaster.pid", e->pgdata);
	f = fopen(path, "r");
	if (!f)
		return PM_NONE;
	while (fgets(line, sizeof(line), f)) {
		if (++n == 1)
			pid = atoi(line);
		if (n == 8) {
			if (strncmp(line, "ready", 5) == 0)
				state = PM_READY;
			else if (strncmp(line, "stopping", 8) == 0)
				state = PM_STOPPING;
		}
	}
	fclose(f);
	return pid > 0 && cluster_process(e, pid) ? state : PM_NONE;
}

/* Sends SIG (0: none) to every process of this cluster; their number. */
static int cluster_signal(const struct meta_embedded *e, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || !cluster_process(e, pid))
			continue;
		n++;
		if (sig)
			kill(pid, sig);
	}
	closedir(d);
	return n;
}

/* The pid in postmaster.pid when that process is a zombie: dead, but
 * PostgreSQL's check (kill(pid, 0)) finds it until its parent (init, or
 * whatever reaps orphans here) gets round to reaping it; else 0. */
static int pidfile_zombie(const struct meta_embedded *e)
{
	char path[4200], buf[512], *p;
	int pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/postmaster.pid", e->pgdata);
	if (!(f = fopen(path, "r")))
		return 0;
	if (fgets(buf, sizeof(buf), f))
		pid = atoi(buf);
	fclose(f);
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return p && p[1] == ' ' && p[2] == 'Z' ? pid : 0;
}

/* Once its postmaster is gone, waits for the cluster's other processes:
 * they exit by themselves when they notice, and a new postmaster refuses
 * to start while one still attaches the old shared memory.  Those still
 * there after e->leftover_wait_s get SIGQUIT, then SIGKILL.  A dead but
 * unreaped postmaster also makes PostgreSQL refuse; after the same wait,
 * with none of the cluster's processes alive, its postmaster.pid is stale
 * and removed.  Call only when postmaster_state() is PM_NONE and the lock
 * is ours.  0, or -EBUSY. */
static int leftovers_wait(const struct meta_embedded *e)
{
	double t0 = now_s();
	int said = 0, n, zombie, wait_s = e->leftover_wait_s;

	while ((n = cluster_signal(e, 0)) > 0 || (zombie = pidfile_zombie(e)) > 0) {
		double waited = now_s() - t0;

		if (n == 0 && waited > wait_s) {
			char path[4200];

			log_warn("the dead postmaster (pid %d) of '%s' was not reaped; removing its stale"
				 " postmaster.pid", zombie, e->pgdata);
			snprintf(path, sizeof(path), "%s/postmaster.pid", e->pgdata);
			return unlink(path) == 0 || errno == ENOENT ? 0 : -EBUSY;
		}
		if (waited > wait_s + 5)
			return -EBUSY;
		if (n > 0 && waited > wait_s) {
			if (!said)
				log_warn("%d processes of the dead embedded PostgreSQL in '%s' did not exit;"
					 " ending them", n, e->pgdata);
			said = 1;
			cluster_signal(e, waited > wait_s + 2 ? SIGKILL : SIGQUIT);
		}
		sleep_ms(100);
	}
	return 0;
}

static int pg_start(const struct meta_embedded *e)
{
	char pg_ctl[300];
	char *argv[] = { pg_ctl, "start", "-w", "-t", "60", "-s", "-D", (char *)e->pgdata,
			 "-l", (char *)e->logfile, NULL };

	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", e->bindir);
	return run_as_owner(e, argv);
}

/* "PID STATE" into the lock file, for a daemon that finds it taken. */
static void lock_note(const struct meta_embedded *e, const char *state)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "%d %s\n", (int)getpid(), state);

	if (pwrite(e->lockfd, buf, (size_t)n, 0) == n && ftruncate(e->lockfd, n) != 0)
		log_debug("cannot trim the lock file of '%s': %s", e->pgdata, strerror(errno));
}

/* Takes DATA_DIR/embedded.lock: waits for a previous daemon that is
 * stopping the cluster, refuses a daemon that runs on it (DESIGN above). */
static int lock_take(struct meta_embedded *e, const char *data_dir, char *err, size_t errlen)
{
	char path[4200];
	double t0 = now_s(), running_since = -1;
	int said = 0;

	snprintf(path, sizeof(path), "%s/embedded.lock", data_dir);
	/* O_CLOEXEC: a postmaster started with it open would hold the lock */
	e->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (e->lockfd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return -EIO;
	}
	while (flock(e->lockfd, LOCK_EX | LOCK_NB) != 0) {
		char buf[64] = "", state[16] = "";
		int pid = 0;
		ssize_t n;

		if (errno != EWOULDBLOCK && errno != EINTR) {
			snprintf(err, errlen, "cannot lock '%s': %s", path, strerror(errno));
			return -EIO;
		}
		n = pread(e->lockfd, buf, sizeof(buf) - 1, 0);
		if (n > 0 && sscanf(buf, "%d %15s", &pid, state) != 2)
			state[0] = '\0';
		if (strcmp(state, "running") == 0) {
			if (running_since < 0)
				running_since = now_s();
			if (now_s() - running_since > WAIT_RUNNING_S) {
				snprintf(err, errlen, "the data folder '%s' is in use by another mvaultfs (pid %d):"
					 " one data folder serves one mount; give this one -o data_dir=DIR",
					 data_dir, pid);
				return -EBUSY;
			}
		} else {
			running_since = -1;
			if (!said)
				log_info("waiting for the previous mvaultfs (pid %d) to stop the embedded PostgreSQL"
					 " in '%s'", pid, e->pgdata);
			said = 1;
		}
		if (now_s() - t0 > WAIT_PREVIOUS_S) {
			snprintf(err, errlen, "the previous mvaultfs (pid %d) did not finish stopping the embedded"
				 " PostgreSQL in '%s' within %d s (see '%s')", pid, e->pgdata, WAIT_PREVIOUS_S,
				 e->logfile);
			return -EBUSY;
		}
		sleep_ms(100);
	}
	lock_note(e, "running");
	return 0;
}

/* With the lock ours: adopts a ready cluster, waits (bounded) for one
 * shutting down or starting up, and starts one that is not running. */
static int cluster_up(struct meta_embedded *e, char *err, size_t errlen)
{
	double t0 = now_s();
	enum pm_state st;
	int said = 0, rc;

	while ((st = postmaster_state(e)) != PM_NONE) {
		if (st == PM_READY) {
			log_warn("the embedded PostgreSQL in '%s' was still running (the last daemon did not"
				 " stop it); using it", e->pgdata);
			return 0;
		}
		if (now_s() - t0 > WAIT_PREVIOUS_S) {
			snprintf(err, errlen, "the embedded PostgreSQL in '%s' was still %s after %d s (see '%s')",
				 e->pgdata, st == PM_STOPPING ? "shutting down" : "starting up", WAIT_PREVIOUS_S,
				 e->logfile);
			return -EBUSY;
		}
		if (!said)
			log_info("waiting for the embedded PostgreSQL in '%s' to finish %s", e->pgdata,
				 st == PM_STOPPING ? "shutting down" : "starting up");
		said = 1;
		sleep_ms(100);
	}
	if (leftovers_wait(e) != 0) {
		snprintf(err, errlen, "processes of an earlier embedded PostgreSQL in '%s' did not exit",
			 e->pgdata);
		return -EBUSY;
	}
	rc = pg_start(e);
	if (rc != 0) {
		snprintf(err, errlen, "the embedded PostgreSQL in '%s' did not start (status %d, see '%s')",
			 e->pgdata, rc, e->logfile);
		return -EIO;
	}
	return 0;
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

static void embedded_free(struct meta_embedded *e)
{
	if (e->lockfd >= 0)
		close(e->lockfd);	/* lets the next daemon have the cluster */
	pthread_cond_destroy(&e->wake);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

struct meta_embedded *meta_embedded_start(const char *data_dir, char *conninfo, size_t len,
					  char *err, size_t errlen)
{
	struct meta_embedded *e = calloc(1, sizeof(*e));
	char path[4200];
	struct stat st;
	int rc;

	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->lockfd = -1;
	e->leftover_wait_s = LEFTOVER_WAIT_S;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->wake, NULL);
	snprintf(e->pgdata, sizeof(e->pgdata), "%s/pg", data_dir);
	snprintf(e->logfile, sizeof(e->logfile), "%s/postgresql.log", data_dir);
	if (find_bindir(e->bindir, sizeof(e->bindir)) != 0) {
		snprintf(err, errlen, "the embedded default needs the PostgreSQL server (Debian package"
			 " postgresql): no pg_ctl in /usr/lib/postgresql/*/bin; or give -o db=postgres://...");
		goto fail;
	}
	if ((rc = cluster_owner(e, err, errlen)) != 0)
		goto fail;
	/* before anything touches pg/: two daemons must not initdb or start it together */
	if (lock_take(e, data_dir, err, errlen) != 0)
		goto fail;
	if ((rc = private_dir(e, e->pgdata)) != 0) {
		snprintf(err, errlen, "cannot make '%s': %s", e->pgdata, strerror(-rc));
		goto fail;
	}
	if (!realpath(e->pgdata, e->pgreal)) {
		snprintf(err, errlen, "cannot resolve '%s': %s", e->pgdata, strerror(errno));
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
	if (cluster_up(e, err, errlen) != 0)
		goto fail;
	if (database_ensure(e, err, errlen) != 0) {
		meta_embedded_stop(e);
		return NULL;
	}
	snprintf(conninfo, len, "host=%s dbname=" DB_NAME " user=" DB_SUPERUSER
		 " application_name=mvaultfs", e->sockdir);
	return e;
fail:
	embedded_free(e);
	return NULL;
}

/* One look of the watchdog: restarts a cluster whose postmaster is gone.
 * DIED is when it was first found gone (0: it was not), NEXT when to try
 * again after a failed start, BACKOFF the pause after the next failure. */
static void watch_once(struct meta_embedded *e, double *died, double *next, int *backoff)
{
	int rc;

	/* a cluster stopping (pg_ctl stop by hand) is restarted once gone */
	if (postmaster_state(e) != PM_NONE || now_s() < *next)
		return;
	if (*died == 0) {
		*died = now_s();
		log_error("embedded PostgreSQL died; restarting it (its log: '%s')", e->logfile);
	}
	rc = leftovers_wait(e);
	if (rc == 0)
		rc = pg_start(e);
	if (rc == 0) {
		log_warn("embedded PostgreSQL restarted, %.1f s after it was found dead", now_s() - *died);
		*died = 0;
		*backoff = 1;
		return;
	}
	log_error("the embedded PostgreSQL in '%s' did not restart (%s, see '%s'); trying again in %d s",
		  e->pgdata, rc < 0 ? "its old processes did not exit" : "pg_ctl start failed", e->logfile,
		  *backoff);
	*next = now_s() + *backoff;
	*backoff = *backoff * 2 > RESTART_BACKOFF_MAX_S ? RESTART_BACKOFF_MAX_S : *backoff * 2;
}

static void *watch_main(void *arg)
{
	struct meta_embedded *e = arg;
	double died = 0, next = 0;
	int backoff = 1;

	pthread_mutex_lock(&e->mu);
	while (!e->quit) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += WATCH_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&e->wake, &e->mu, &ts);
		if (e->quit)
			break;
		pthread_mutex_unlock(&e->mu);
		watch_once(e, &died, &next, &backoff);
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

void meta_embedded_set_leftover_wait(struct meta_embedded *e, int secs)
{
	if (e && secs > 0)
		e->leftover_wait_s = secs;
}

int meta_embedded_watch(struct meta_embedded *e)
{
	int rc;

	if (!e || e->watching)
		return 0;
	lock_note(e, "running");	/* a daemon's pid changes when it forks away */
	rc = pthread_create(&e->watcher, NULL, watch_main, e);
	if (rc != 0)
		return -rc;
	e->watching = 1;
	return 0;
}

void meta_embedded_stopping(struct meta_embedded *e)
{
	if (e)
		lock_note(e, "stopping");
}

void meta_embedded_stop(struct meta_embedded *e)
{
	char pg_ctl[300];
	char *argv[] = { pg_ctl, "stop", "-D", NULL, "-m", "fast", "-w", "-t", "60", "-s", NULL };
	int rc;

	if (!e)
		return;
	if (e->watching) {
		pthread_mutex_lock(&e->mu);
		e->quit = 1;
		pthread_cond_signal(&e->wake);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->watcher, NULL);
	}
	lock_note(e, "stopping");
	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", e->bindir);
	argv[3] = e->pgdata;
	rc = run_as_owner(e, argv);
	if (rc != 0)
		log_error("the embedded PostgreSQL in '%s' did not stop cleanly (status %d, see '%s')",
			  e->pgdata, rc, e->logfile);
	if (strncmp(e->sockdir, "/tmp/mvaultfs-pg.", 17) == 0)
		rmdir(e->sockdir);
	embedded_free(e);
}
