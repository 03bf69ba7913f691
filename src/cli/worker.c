/*
 * worker.c - `mvaultfs worker`: the background jobs (variants, deletion
 * after the grace period, expiry, pins) for every user of a shared
 * database, with no mount: the engines of engine.c and job threads.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/engine.h"
#include "meta/meta_conninfo.h"
#include "meta/meta_embedded.h"
#include "util/log.h"
#include "util/sdnotify.h"
#include "worker/worker.h"

/* `mvaultfs worker`: job threads for every user (or -o user=NAME's only),
 * with no mount, until SIGTERM or SIGINT. */
int cmd_worker(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mount m = { .o = { .pool = 2 } };
	struct worker_config wc;
	char err[512] = "", *base;
	int user_given, rc = 1, sig;
	sigset_t stop;

	sdnotify_init(&m.notify);
	if (mount_opts_parse(&m, &args) != 0)
		goto out;
	if (args.argc > 1) {
		fprintf(stderr, "mvaultfs worker: unexpected '%s' (options go in -o)\n", args.argv[1]);
		goto out;
	}
	if (db_options_settle(&m.o, argc, argv) != 0)
		goto out;
	if (!m.o.db || !*m.o.db) {
		fprintf(stderr, "mvaultfs: worker needs -o db=CONNINFO or MVAULT_DB (a shared PostgreSQL)\n");
		goto out;
	}
	if (jobs_config_from(&m.jobs, 2, &wc) != 0)
		goto out;
	/* Its own data folder (cache, log): it must not share a mount's. */
	if (!m.o.data_dir) {
		if (!(base = default_data_dir()) || asprintf(&m.o.data_dir, "%s/worker", base) < 0)
			m.o.data_dir = NULL;
		free(base);
		if (!m.o.data_dir) {
			fprintf(stderr, "mvaultfs: no data folder: give -o data_dir=DIR\n");
			goto out;
		}
	}
	user_given = m.user_given = m.o.user != NULL;
	m.for_nobody = !user_given;
	if (!m.o.user)
		m.o.user = default_user();
	if (mount_data_dir(&m, 0700) != 0)
		goto out;
	if (mount_open_engines(&m) != 0)
		goto out;
	wc.threads = wc.threads > 0 ? wc.threads : 1;
	wc.meta = user_given ? m.meta : NULL;
	wc.conninfo = m.o.db;
	wc.trash_days = m.o.trash_days;
	wc.cache = m.cache;
	wc.backend = m.backend;
	wc.pin_stores = m.pins.stores;
	wc.npin_stores = m.pins.n;
	/* Signals are taken by sigwait below, not by the threads. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (meta_embedded_watch(m.pg) != 0)
		log_error("cannot start the watchdog of the embedded PostgreSQL: it will not be restarted if it dies");
	m.worker = worker_start(&wc, err, sizeof(err));
	if (!m.worker) {
		meta_conninfo_redact(m.o.db, err, sizeof(err));
		fprintf(stderr, "mvaultfs: %s\n", err);
		goto out;
	}
	log_info("worker running for %s, store '%s'", user_given ? m.o.user : "every user", m.o.store);
	sdnotify_send(&m.notify, "READY=1");
	while (sigwait(&stop, &sig) != 0)
		;
	sdnotify_send(&m.notify, "STOPPING=1");
	log_info("worker stopping (%s)", strsignal(sig));
	rc = 0;
out:
	mount_release_engines(&m);
	fuse_opt_free_args(&args);
	return rc;
}
