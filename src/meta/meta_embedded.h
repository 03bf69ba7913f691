/*
 * meta_embedded.h - the private PostgreSQL cluster of the embedded default.
 *
 * With no database configured, mvaultfs keeps its own cluster under the data
 * folder, reachable only through a unix socket in a 0700 folder, started
 * with the mount and stopped with it.  PostgreSQL refuses to run as root:
 * when the daemon is root, the cluster belongs to the unprivileged system
 * user "mvaultfs" (made on first use).
 */
#ifndef MVFS_META_EMBEDDED_H
#define MVFS_META_EMBEDDED_H

#include <stddef.h>

struct meta_embedded;

/* Creates (first run) and starts the cluster in DATA_DIR/pg; writes a libpq
 * connection string for it into CONNINFO.  On failure returns NULL with a
 * one-line reason in ERR (the cluster's own log is DATA_DIR/postgresql.log). */
struct meta_embedded *meta_embedded_start(const char *data_dir, char *conninfo, size_t len,
					  char *err, size_t errlen);
/* Stops the cluster (fast shutdown) and frees E; NULL is a no-op. */
void meta_embedded_stop(struct meta_embedded *e);

#endif
