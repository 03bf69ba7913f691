/*
 * sdnotify.c - the sender side of systemd's notify protocol (sd_notify(3)).
 *
 * $NOTIFY_SOCKET is a path ("/run/systemd/notify") or, starting with '@',
 * a name in the abstract namespace. Each message is one datagram sent from
 * a fresh socket, as libsystemd does; systemd identifies the sender by its
 * credentials, so the message must come from the unit's main process
 * (NotifyAccess=main): run in the foreground (-f).
 */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void sdnotify_init(struct sdnotify *n)
{
	const char *s = getenv("NOTIFY_SOCKET");
	size_t l = s ? strlen(s) : 0;

	memset(n, 0, sizeof(*n));
	if (l >= 2 && l < sizeof(n->addr.sun_path) && (s[0] == '/' || s[0] == '@')) {
		n->addr.sun_family = AF_UNIX;
		memcpy(n->addr.sun_path, s, l);
		if (s[0] == '@')
			n->addr.sun_path[0] = '\0';
		/* an abstract name is exactly its length; a path ends at its NUL */
		n->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + (s[0] == '/'));
	}
	unsetenv("NOTIFY_SOCKET");
}

int sdnotify_send(const struct sdnotify *n, const char *msg)
{
	int fd, rc = 0;

	if (!n->len)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->len) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
