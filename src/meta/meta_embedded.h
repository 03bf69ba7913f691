/*
 * meta_embedded.h - the private PostgreSQL cluster of the embedded default.
 *
 * With no database configured, mvaultfs keeps its own cluster under the data
 * folder, reachable only through a unix socket in a 0700 folder, started
 * with the mount and stopped with it.  PostgreSQL refuses to run as root:
 * when the daemon is root, the cluster belongs to the unprivileged system
 * user "mvaultfs" (made on first use).  One daemon at a time owns a cluster
 * (DATA_DIR/embedded.lock); while it does, a watchdog restarts the cluster
 * when its postmaster dies.
 */
#ifndef MVFS_META_EMBEDDED_H
#define MVFS_META_EMBEDDED_H

#include <stddef.h>

struct meta_embedded;

/* Creates (first run) and starts the cluster in DATA_DIR/pg; writes a libpq
 * connection string for it into CONNINFO.  Waits (up to a minute) for a
 * previous daemon still stopping the cluster, and for a cluster still
 * shutting down; refuses a data folder another running daemon owns.  On
 * failure returns NULL with a one-line reason in ERR (the cluster's own log
 * is DATA_DIR/postgresql.log). */
struct meta_embedded *meta_embedded_start(const char *data_dir, char *conninfo, size_t len,
					  char *err, size_t errlen);
/* After the cluster's postmaster died, the watchdog gives its other
 * processes SECS (default 10) to exit by themselves before it ends them
 * and starts the cluster again (-o embedded_leftover_wait).  SECS <= 0
 * keeps the default; NULL is a no-op.  Call before meta_embedded_watch. */
void meta_embedded_set_leftover_wait(struct meta_embedded *e, int secs);
/* Starts the watchdog thread that restarts the cluster when its postmaster
 * dies.  Call after the daemon has forked away (a fork keeps no threads).
 * 0 or -errno; NULL is a no-op. */
int meta_embedded_watch(struct meta_embedded *e);
/* Tells a daemon starting meanwhile that this one is on its way out and
 * will let go of the cluster soon, so it waits instead of refusing.  Call
 * as soon as the mount has ended; NULL is a no-op. */
void meta_embedded_stopping(struct meta_embedded *e);
/* Ends the watchdog, stops the cluster (fast shutdown), lets go of it and
 * frees E; NULL is a no-op. */
void meta_embedded_stop(struct meta_embedded *e);

#endif
