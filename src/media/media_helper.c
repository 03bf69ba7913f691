/*
 * media_helper.c - starting, feeding and ending the image helper process.
 *
 * The helper is this binary in its hidden mode (`mvaultfs __media`),
 * started with fork+exec, so libvips and every image decoder run in a
 * fresh process and never in the FUSE daemon's address space.  Between
 * fork and exec the child only makes async-signal-safe calls (the parent
 * is multithreaded): set limits, move descriptors, exec.
 *
 * One helper serves one worker thread, an image at a time, and is reused
 * (starting libvips costs ~50 ms, a camera JPEG ~0.5 s) until it has made
 * images_per_helper images, crashed or run over a limit: then it is ended
 * and the next image starts a new one.  The parent waits for each answer
 * at most the per-image time limit plus a grace, then kills it.
 */
#include "media/media.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define MEDIA_NO_AS_LIMIT 1	/* ASan reserves terabytes of address space */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEDIA_NO_AS_LIMIT 1
#endif
#endif

struct media_helper {
	char *self;
	struct media_limits lim;
	pid_t pid;		/* 0: not running */
	int sock;		/* our end, -1 when not running */
	int served;		/* images made by the running process */
	long peak_kb;
	atomic_int cancelled;	/* set once, at shutdown */
};

extern char **environ;

struct media_helper *media_helper_new(const char *self, const struct media_limits *lim)
{
	struct media_helper *h = calloc(1, sizeof(*h));

	if (!h || !(h->self = strdup(self))) {
		free(h);
		return NULL;
	}
	h->lim = *lim;
	if (h->lim.timeout_s <= 0)
		h->lim.timeout_s = 120;
	if (h->lim.memory_mb <= 0)
		h->lim.memory_mb = 2048;
	if (h->lim.images_per_helper <= 0)
		h->lim.images_per_helper = 100;
	h->sock = -1;
	atomic_init(&h->cancelled, 0);
	return h;
}

/* Reaps the helper (which has exited or been killed): its peak RSS is
 * kept, and *STATUS (may be NULL) receives its wait status. */
static void reap(struct media_helper *h, int *status)
{
	struct rusage ru;
	int st = 0;

	memset(&ru, 0, sizeof(ru));
	if (h->pid <= 0)
		return;
	while (wait4(h->pid, &st, 0, &ru) < 0 && errno == EINTR)
		;
	if (ru.ru_maxrss > h->peak_kb)
		h->peak_kb = ru.ru_maxrss;
	if (status)
		*status = st;
	h->pid = 0;
}

static void stop(struct media_helper *h, int kill_it)
{
	if (h->sock >= 0) {
		close(h->sock);		/* the helper ends at EOF */
		h->sock = -1;
	}
	if (h->pid > 0 && kill_it)
		kill(h->pid, SIGKILL);
	reap(h, NULL);
	h->served = 0;
}

void media_helper_stop(struct media_helper *h)
{
	stop(h, 1);
}

void media_helper_free(struct media_helper *h)
{
	if (!h)
		return;
	stop(h, 1);
	free(h->self);
	free(h);
}

void media_helper_cancel(struct media_helper *h)
{
	pid_t pid = h->pid;

	atomic_store(&h->cancelled, 1);
	if (pid > 0)
		kill(pid, SIGKILL);
}

long media_helper_peak_kb(const struct media_helper *h)
{
	char path[64], line[256];
	long kb = 0, peak = h->peak_kb;
	FILE *f;

	/* a helper still running: its high-water mark so far */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)h->pid);
	if (h->pid > 0 && (f = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
				break;
		fclose(f);
	}
	return kb > peak ? kb : peak;
}

/* The helper's environment: ours, plus its thread count and a small malloc
 * arena count (each arena reserves address space the limit counts). */
static char **helper_env(const struct media_helper *h, char *threads, size_t len)
{
	size_t n = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	n = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "VIPS_CONCURRENCY=", 17) != 0 && strncmp(*e, "MALLOC_ARENA_MAX=", 17) != 0)
			env[n++] = *e;
	env[n++] = "MALLOC_ARENA_MAX=2";
	if (h->lim.threads > 0) {
		snprintf(threads, len, "VIPS_CONCURRENCY=%d", h->lim.threads);
		env[n++] = threads;
	}
	env[n] = NULL;
	return env;
}

static int start(struct media_helper *h)
{
	char *argv[] = { "mvaultfs", "__media", NULL };
	char threads[48];
	char **env = helper_env(h, threads, sizeof(threads));
	struct rlimit as = { (rlim_t)h->lim.memory_mb << 20, (rlim_t)h->lim.memory_mb << 20 };
	struct rlimit core = { 0, 0 };
	struct rlimit fsize = { 1ULL << 30, 1ULL << 30 };	/* no variant is a gigabyte */
	sigset_t all;
	int sv[2];
	pid_t pid;

	if (!env)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		int err = errno;

		free(env);
		return -err;
	}
	sigemptyset(&all);
	pid = fork();
	if (pid == 0) {
		/* async-signal-safe calls only from here to execve */
		if (dup2(sv[1], 3) < 0)
			_exit(126);
		close_range(4, ~0U, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		/* A stop sent to the worker's process group (SIGTERM from a
		 * service manager, ^C) is the worker's to act on: it gives the
		 * job back and ends this helper itself (cancel, or PDEATHSIG).
		 * Killed by it first, the helper's death looked like the image's
		 * failure and used one of the job's attempts. */
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
#ifndef MEDIA_NO_AS_LIMIT
		setrlimit(RLIMIT_AS, &as);
#else
		(void)as;
#endif
		setrlimit(RLIMIT_CORE, &core);
		setrlimit(RLIMIT_FSIZE, &fsize);
		setpriority(PRIO_PROCESS, 0, 10);
		execve(h->self, argv, env);
		_exit(127);
	}
	free(env);
	close(sv[1]);
	if (pid < 0) {
		int err = errno;

		close(sv[0]);
		return -err;
	}
	h->pid = pid;
	h->sock = sv[0];
	h->served = 0;
	return 0;
}

/* Why the helper ended, for a failed image's reason. */
static void death_reason(const struct media_helper *h, int rc, int st, char *why, size_t len)
{
	if (atomic_load(&h->cancelled))
		snprintf(why, len, "stopped: the worker is shutting down");
	else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		snprintf(why, len, "the decoder ran past its time limit of %d s", h->lim.timeout_s);
	else if (rc == -ETIMEDOUT)
		snprintf(why, len, "the decoder did not answer within %d s and was killed", h->lim.timeout_s + 10);
	else if (WIFSIGNALED(st) && (WTERMSIG(st) == SIGABRT || WTERMSIG(st) == SIGSEGV))
		snprintf(why, len, "the decoder crashed (%s; memory limit %d MB)", strsignal(WTERMSIG(st)),
			 h->lim.memory_mb);
	else if (WIFSIGNALED(st))
		snprintf(why, len, "the decoder was killed by %s", strsignal(WTERMSIG(st)));
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		snprintf(why, len, "cannot run the image helper '%s'", h->self);
	else
		snprintf(why, len, "the decoder exited with status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static int send_request(struct media_helper *h, const struct media_recipe *r, int in_fd, int dfd, int tfd)
{
	char buf[160], ctl[CMSG_SPACE(3 * sizeof(int))];
	int fds[3] = { in_fd, dfd, tfd };
	struct iovec iov = { buf, 0 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;

	memset(ctl, 0, sizeof(ctl));
	iov.iov_len = (size_t)snprintf(buf, sizeof(buf), "make %s %d %d %d %d %d %d", r->display_format,
				       r->display_size, r->display_quality, r->thumb_size, r->thumb_quality,
				       r->max_megapixels, h->lim.timeout_s);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	return sendmsg(h->sock, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Waits for the answer; 0 with it in BUF, or -errno (-ETIMEDOUT, -EPIPE
 * when the helper died). */
static int receive_answer(struct media_helper *h, char *buf, size_t len)
{
	struct pollfd p = { .fd = h->sock, .events = POLLIN };
	int waited = 0, limit = (h->lim.timeout_s + 10) * 1000;
	ssize_t n;

	for (;;) {
		int rc = poll(&p, 1, 1000);

		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc > 0)
			break;
		/* cancelled between our start and its kill: end it here */
		if (atomic_load(&h->cancelled))
			return -ECANCELED;
		waited += 1000;
		if (waited >= limit)
			return -ETIMEDOUT;
	}
	n = recv(h->sock, buf, len - 1, 0);
	if (n <= 0)
		return -EPIPE;
	buf[n] = '\0';
	return 0;
}

static int parse_answer(const char *buf, struct media_result *out, char *why, size_t len)
{
	char cls[8];
	int n = 0;

	memset(out, 0, sizeof(*out));
	if (sscanf(buf, "ok %d %d %31s %31s %d %d %d %d", &out->width, &out->height, out->color_space,
		   out->loader, &out->display_width, &out->display_height, &out->thumb_width,
		   &out->thumb_height) == 8)
		return 0;
	if (sscanf(buf, "error %7s %n", cls, &n) == 1 && n > 0) {
		snprintf(why, len, "%s", buf + n);
		return strcmp(cls, "bad") == 0 ? MEDIA_BAD_INPUT : strcmp(cls, "big") == 0 ? MEDIA_TOO_BIG
										     : MEDIA_FAILED;
	}
	snprintf(why, len, "the image helper answered something unexpected");
	return MEDIA_FAILED;
}

int media_make(struct media_helper *h, const struct media_recipe *r, int in_fd, int display_fd,
	       int thumb_fd, struct media_result *out, char *why, size_t len)
{
	char buf[1024];
	int rc, st = 0;

	if (atomic_load(&h->cancelled)) {
		snprintf(why, len, "stopped: the worker is shutting down");
		return MEDIA_CRASHED;
	}
	if (h->pid > 0 && h->served >= h->lim.images_per_helper)
		stop(h, 0);
	if (h->pid <= 0 && (rc = start(h)) != 0) {
		snprintf(why, len, "cannot start the image helper: %s", strerror(-rc));
		return MEDIA_FAILED;
	}
	rc = send_request(h, r, in_fd, display_fd, thumb_fd);
	if (rc == 0)
		rc = receive_answer(h, buf, sizeof(buf));
	if (rc) {
		/* dead, or wedged past the limit: end it and say why */
		if (h->pid > 0)
			kill(h->pid, SIGKILL);
		close(h->sock);
		h->sock = -1;
		reap(h, &st);
		death_reason(h, rc, st, why, len);
		return MEDIA_CRASHED;
	}
	h->served++;
	return parse_answer(buf, out, why, len);
}

int media_desktop(struct media_helper *h, int in_fd, int large, int normal, int large_fd, int normal_fd,
		  struct media_result *out, char *reason, size_t reasonlen)
{
	/* a thumb variant is small: no megapixel limit beyond the default's */
	const struct media_recipe r = { "png", large, 0, normal, 0, 80 };

	return media_make(h, &r, in_fd, large_fd, normal_fd, out, reason, reasonlen);
}

void media_transform_spec(const struct media_recipe *r, char *buf, size_t len)
{
	snprintf(buf, len,
		 "{\"displayMaxSize\": %d, \"thumbMaxSize\": %d, \"displayQuality\": %d, \"thumbQuality\": %d,"
		 " \"displayFormat\": \"%s\", \"thumbFormat\": \"webp\"}",
		 r->display_size, r->thumb_size, r->display_quality, r->thumb_quality, r->display_format);
}

const char *media_display_mime(const char *format)
{
	return strcmp(format, "avif") == 0 ? "image/avif" : "image/webp";
}
