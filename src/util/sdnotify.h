/*
 * sdnotify.h - tell systemd the daemon is ready (Type=notify units).
 *
 * systemd starts a Type=notify service with $NOTIFY_SOCKET naming a unix
 * datagram socket, and waits for "READY=1" on it before it counts the unit
 * as started (sd_notify(3); the protocol is one datagram of KEY=VALUE
 * lines). mvaultfs says READY=1 once the mount answers, so a unit ordered
 * After= mvaultfs@... finds the files there.
 *
 * Why not libsystemd's sd_notify(): it reads $NOTIFY_SOCKET when called,
 * so the variable must stay in the environment until the mount is ready,
 * and everything started before then inherits it: the embedded PostgreSQL
 * speaks the same protocol (Debian builds it --with-systemd) and would say
 * READY=1 for us. sdnotify_init takes the address and removes the
 * variable at once, before any child is started.
 */
#ifndef MVFS_SDNOTIFY_H
#define MVFS_SDNOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

struct sdnotify {
	struct sockaddr_un addr;
	socklen_t len;		/* 0: not started by systemd, sends do nothing */
};

/* Takes $NOTIFY_SOCKET into N and unsets it. Call while the process has
 * one thread (unsetenv). A missing or unusable address leaves N inert. */
void sdnotify_init(struct sdnotify *n);

/* Sends MSG (e.g. "READY=1", "STOPPING=1"). Returns 0, or -errno; a
 * failure changes nothing but systemd's view, so callers may only log it. */
int sdnotify_send(const struct sdnotify *n, const char *msg);

#endif
