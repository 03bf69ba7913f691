/*
 * meta_push.c - listening for the changes other sessions announce.
 *
 * 0019_push.sql's triggers send, in the transaction that makes a change of
 * a user's namespace, a NOTIFY on the user's channel: a channel name with
 * 154 random bits that only the user's own sessions can read
 * (mvault_push_channel()), because NOTIFY is not under row-level security
 * and any role may LISTEN on any name.  Payloads are space-separated
 * tokens: "n<ino>" (a name of the inode changed), "a<ino>" (its attributes
 * or content), "*" (anything).
 *
 * DESIGN: one connection outside the pool, made and re-established with the
 * pool's own helpers (meta_conn_open, meta_conn_reset), owned by the one
 * thread that calls meta_push_wait.  PostgreSQL keeps no announcements for
 * a listener that is away, so a lost connection is reported, once it
 * listens again, as META_PUSH_MISSED: the caller then assumes everything
 * changed.  A connection that says nothing for PING_MS is asked a SELECT 1,
 * so that one cut without a word (no RST) is noticed.
 */
#include "meta/meta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

#define PING_MS 10000
#define RETRY_MAX_MS 1000

struct meta_push {
	struct meta *m;
	PGconn *c;
	int down;		/* the connection is lost: reconnect, then report MISSED */
	int pause_ms;		/* between reconnect tries */
	long long quiet_since;	/* CLOCK_MONOTONIC ms of the last word from the server */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Asks for the user's channel (made on first use) and listens on it. */
static int listen_setup(struct meta_push *p)
{
	PGresult *r;
	char *id, sql[128];
	int rc;

	/* so that an operator (and the tests) can tell it in pg_stat_activity */
	rc = meta_exec(p->c, "push: name", "SET application_name = 'mvaultfs push'", 0, NULL, NULL);
	if (rc == 0)
		rc = meta_exec(p->c, "push: channel", "SELECT mvault_push_channel()", 0, NULL, &r);
	if (rc)
		return rc;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		log_error("push: this session acts for no user, so it has no channel to listen on");
		return -EACCES;
	}
	id = PQescapeIdentifier(p->c, meta_val(r, 0, 0), strlen(meta_val(r, 0, 0)));
	PQclear(r);
	if (!id)
		return -ENOMEM;
	snprintf(sql, sizeof(sql), "LISTEN %s", id);
	PQfreemem(id);
	/* not logged by name: the channel is the user's secret */
	rc = meta_exec(p->c, "push: listen", sql, 0, NULL, NULL);
	p->quiet_since = now_ms();
	return rc;
}

struct meta_push *meta_push_open(struct meta *m, char *err, size_t errlen)
{
	struct meta_push *p = calloc(1, sizeof(*p));
	int rc;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->m = m;
	p->pause_ms = 50;
	p->c = meta_conn_open(m, err, errlen);
	if (!p->c) {
		free(p);
		return NULL;
	}
	if ((rc = listen_setup(p)) != 0) {
		snprintf(err, errlen, "cannot listen for changes of other mounts: %s", strerror(-rc));
		meta_push_free(p);
		return NULL;
	}
	return p;
}

void meta_push_free(struct meta_push *p)
{
	if (!p)
		return;
	if (p->c) {
		meta_conn_forget(p->c);
		PQfinish(p->c);
	}
	free(p);
}

int meta_push_backend(const struct meta_push *p)
{
	return p->down ? 0 : PQbackendPID(p->c);
}

/* Hands the tokens of PAYLOAD to FN.  What is not a token (nobody but the
 * channel's holders can send here, so a bug) counts as "anything". */
static void parse(struct meta_push *p, const char *payload, meta_push_fn fn, void *arg)
{
	const char *s = payload;

	while (*s) {
		char *end;
		uint64_t ino;
		enum meta_push_kind kind;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		if (*s == '*') {
			fn(arg, META_PUSH_ALL, 0);
			s++;
			continue;
		}
		kind = *s == 'n' ? META_PUSH_NAME : *s == 'a' ? META_PUSH_ATTR : 0;
		errno = 0;
		ino = kind ? strtoull(s + 1, &end, 10) : 0;
		if (!kind || errno || end == s + 1 || (*end && *end != ' ')) {
			log_warn("push: an announcement that is not ours ('%.32s'): taking it as 'anything changed'",
				 s);
			fn(arg, META_PUSH_ALL, 0);
			return;
		}
		fn(arg, kind, meta_kernel_ino(p->m, ino));
		s = end;
	}
}

/* Hands what was received to FN: 1 when there was any, else 0. */
static int drain(struct meta_push *p, meta_push_fn fn, void *arg)
{
	PGnotify *n;
	int any = 0;

	while ((n = PQnotifies(p->c)) != NULL) {
		if (!meta_own_backend(p->m, n->be_pid)) {
			parse(p, n->extra, fn, arg);
			any = 1;
		}
		PQfreemem(n);
	}
	return any;
}

static int lost(struct meta_push *p, const char *why)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(p->c));
	msg[strcspn(msg, "\n")] = '\0';
	log_warn("push: the listening connection is lost (%s%s%s); changes of other mounts are seen"
		 " within the kernel's timeouts until it is back", why, *msg ? ": " : "", msg);
	p->down = 1;
	p->pause_ms = 50;
	return -EIO;
}

/* Waits for WAKE_FD for up to MS. */
static void pause_for(int wake_fd, int ms)
{
	struct pollfd w = { .fd = wake_fd, .events = POLLIN };

	poll(&w, wake_fd >= 0 ? 1 : 0, ms);
}

int meta_push_wait(struct meta_push *p, int timeout_ms, int wake_fd, meta_push_fn fn, void *arg)
{
	struct pollfd fds[2];
	int n = 0, rc;

	if (p->down) {
		if (meta_conn_reset(p->m, p->c) == 0 && listen_setup(p) == 0) {
			log_warn("push: listening again; everything the kernel holds is checked anew");
			p->down = 0;
			return META_PUSH_MISSED;
		}
		pause_for(wake_fd, p->pause_ms < timeout_ms ? p->pause_ms : timeout_ms);
		p->pause_ms = p->pause_ms * 2 < RETRY_MAX_MS ? p->pause_ms * 2 : RETRY_MAX_MS;
		return -EIO;
	}
	if (!PQconsumeInput(p->c) || PQstatus(p->c) != CONNECTION_OK)
		return lost(p, "reading");
	if (drain(p, fn, arg))
		return 1;
	if (now_ms() - p->quiet_since >= PING_MS) {
		if (meta_exec(p->c, "push: ping", "SELECT 1", 0, NULL, NULL) != 0 ||
		    PQstatus(p->c) != CONNECTION_OK)
			return lost(p, "no answer to a ping");
		p->quiet_since = now_ms();
		if (drain(p, fn, arg))
			return 1;
	}
	fds[n++] = (struct pollfd){ .fd = PQsocket(p->c), .events = POLLIN };
	if (wake_fd >= 0)
		fds[n++] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
	rc = poll(fds, (nfds_t)n, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc == 0 || !fds[0].revents)
		return 0;
	p->quiet_since = now_ms();
	if (!PQconsumeInput(p->c) || PQstatus(p->c) != CONNECTION_OK)
		return lost(p, "reading");
	return drain(p, fn, arg);
}
