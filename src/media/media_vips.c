/*
 * media_vips.c - the helper process: libvips turns one image at a time into
 * its display and thumb variants.
 *
 * Runs as `mvaultfs __media` with its socket on fd 3 (media_helper.c starts
 * it).  Each request is one message, "make FORMAT DSIZE DQ TSIZE TQ MAXMP
 * TIMEOUT", carrying three descriptors: the image, the display output, the
 * thumb output.  FORMAT "png" makes both outputs PNG: the desktop's
 * thumbnails, made from a thumb variant (media_desktop).  Each answer is one message: "ok W H SPACE LOADER DW DH TW
 * TH" or "error CLASS REASON" (CLASS: bad, big, fail).
 *
 * For each image: the header first (sequential access decodes nothing), and
 * a refusal when width x height is over the megapixel limit; then one
 * vips_thumbnail per variant from the original (shrink-on-load, EXIF
 * auto-rotate, export to sRGB) saved with its metadata stripped.  Loaders
 * libvips marks untrusted (ImageMagick, PDF, ...) are blocked: a memories
 * library holds photos, not PostScript.  libvips' operation cache is off,
 * so nothing of one image stays for the next.
 */
#include "media/media.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#define SOCK_FD 3

struct request {
	char format[16];
	int dsize, dq, tsize, tq, max_mp, timeout;
	int fd[3];	/* image, display, thumb */
};

/* libvips and glib warnings (a truncated file, a bad ICC profile): the
 * last one goes into a failure's reason instead of onto stderr. */
static char last_warning[256];

static void on_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
	snprintf(last_warning, sizeof(last_warning), "%s", msg ? msg : "");
	last_warning[strcspn(last_warning, "\n")] = '\0';
}

/* The first line of libvips' error buffer, cleared, into WHY. */
static void vips_reason(const char *what, char *why, size_t len)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s", vips_error_buffer());
	vips_error_clear();
	buf[strcspn(buf, "\n")] = '\0';
	if (!buf[0] && last_warning[0])
		snprintf(buf, sizeof(buf), "%s", last_warning);
	snprintf(why, len, "%s: %.300s", what, buf[0] ? buf : "libvips gave no reason");
}

static int reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int reply(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	return send(SOCK_FD, buf, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* Reads the header of PATH and checks it against the limits. */
static int probe(const char *path, const struct request *rq, struct media_result *res, char *why, size_t len)
{
	const char *op = vips_foreign_find_load(path);
	VipsImage *im;
	double mp;

	if (!op) {
		vips_error_clear();
		snprintf(why, len, "not an image libvips reads (unknown or blocked format)");
		return MEDIA_BAD_INPUT;
	}
	snprintf(res->loader, sizeof(res->loader), "%s", vips_nickname_find(g_type_from_name(op)));
	im = vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
	if (!im) {
		vips_reason("cannot read the image header", why, len);
		return MEDIA_BAD_INPUT;
	}
	mp = (double)vips_image_get_width(im) * vips_image_get_height(im) / 1e6;
	if (mp > rq->max_mp) {
		snprintf(why, len, "image is %dx%d = %.1f megapixels, over the %d megapixel limit:"
			 " refused before decoding (the original is kept)",
			 vips_image_get_width(im), vips_image_get_height(im), mp, rq->max_mp);
		g_object_unref(im);
		return MEDIA_TOO_BIG;
	}
	res->width = vips_image_get_width(im);
	res->height = vips_image_get_height(im);
	if (vips_image_get_orientation_swap(im)) {
		res->width = vips_image_get_height(im);
		res->height = vips_image_get_width(im);
	}
	snprintf(res->color_space, sizeof(res->color_space), "%s",
		 vips_enum_nick(VIPS_TYPE_INTERPRETATION, vips_image_guess_interpretation(im)));
	g_object_unref(im);
	return 0;
}

/* One variant: vips_thumbnail to SIZE on the long edge, never enlarged,
 * saved into FD as FORMAT at quality Q. */
static int variant(const char *path, int size, const char *format, int q, int fd, int *w, int *h,
		   char *why, size_t len)
{
	VipsImage *t = NULL;
	VipsTarget *target;
	int rc;

	VipsImage *m;

	if (vips_thumbnail(path, &t, size, "size", VIPS_SIZE_DOWN, "export_profile", "srgb",
			   "fail_on", VIPS_FAIL_ON_ERROR, NULL)) {
		vips_reason("cannot decode the image", why, len);
		return MEDIA_BAD_INPUT;
	}
	/* Decoding is lazy: run it now, into memory (the variant is small),
	 * so a broken image is told apart from a failing encoder or disk.
	 * T stays until the save: the copy's metadata (a HEIF's EXIF) may
	 * still point into buffers the loader behind T owns. */
	m = vips_image_copy_memory(t);
	if (!m) {
		g_object_unref(t);
		vips_reason("cannot decode the image", why, len);
		return MEDIA_BAD_INPUT;
	}
	*w = vips_image_get_width(m);
	*h = vips_image_get_height(m);
	target = vips_target_new_to_descriptor(fd);
	if (!target) {
		g_object_unref(m);
		g_object_unref(t);
		vips_reason("cannot write the variant", why, len);
		return MEDIA_FAILED;
	}
	if (strcmp(format, "avif") == 0)
		/* heif's Q scale runs lower than WebP's for a like result */
		rc = vips_heifsave_target(m, target, "Q", q > 30 ? q - 30 : q,
					  "compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "strip", TRUE, NULL);
	else if (strcmp(format, "png") == 0)
		rc = vips_pngsave_target(m, target, "strip", TRUE, NULL);
	else
		rc = vips_webpsave_target(m, target, "Q", q, "strip", TRUE, NULL);
	g_object_unref(target);
	g_object_unref(m);
	g_object_unref(t);
	if (rc) {
		vips_reason("cannot encode the variant", why, len);
		return MEDIA_FAILED;
	}
	return 0;
}

static void serve(const struct request *rq)
{
	struct media_result res = { 0 };
	char path[64], why[512];
	int rc;

	last_warning[0] = '\0';
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rq->fd[0]);
	alarm((unsigned)rq->timeout);
	/* Tests: a decoder that takes its time (killed workers, time limits). */
	if (getenv("MVFS_TEST_MEDIA_DELAY"))
		sleep((unsigned)atoi(getenv("MVFS_TEST_MEDIA_DELAY")));
	rc = probe(path, rq, &res, why, sizeof(why));
	if (rc == 0)
		rc = variant(path, rq->dsize, rq->format, rq->dq, rq->fd[1], &res.display_width,
			     &res.display_height, why, sizeof(why));
	if (rc == 0)
		rc = variant(path, rq->tsize, strcmp(rq->format, "png") == 0 ? "png" : "webp", rq->tq, rq->fd[2],
			     &res.thumb_width, &res.thumb_height, why, sizeof(why));
	alarm(0);
	if (rc == 0)
		reply("ok %d %d %s %s %d %d %d %d", res.width, res.height, res.color_space, res.loader,
		      res.display_width, res.display_height, res.thumb_width, res.thumb_height);
	else
		reply("error %s %s", rc == MEDIA_BAD_INPUT ? "bad" : rc == MEDIA_TOO_BIG ? "big" : "fail", why);
}

/* One request: 0 with RQ filled, 1 at the end (the socket closed), -1 on
 * a malformed one. */
static int receive(struct request *rq)
{
	char buf[256], ctl[CMSG_SPACE(3 * sizeof(int))];
	struct iovec iov = { buf, sizeof(buf) - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	ssize_t n;

	n = recvmsg(SOCK_FD, &msg, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(3 * sizeof(int)))
		return -1;
	memcpy(rq->fd, CMSG_DATA(cm), sizeof(rq->fd));
	if (sscanf(buf, "make %15s %d %d %d %d %d %d", rq->format, &rq->dsize, &rq->dq, &rq->tsize, &rq->tq,
		   &rq->max_mp, &rq->timeout) != 7) {
		for (int i = 0; i < 3; i++)
			close(rq->fd[i]);
		return -1;
	}
	return 0;
}

int media_helper_main(int argc, char **argv)
{
	struct request rq;
	int rc;

	if (VIPS_INIT(argv[0]))
		return 3;
	vips_cache_set_max(0);
	vips_block_untrusted_set(TRUE);
	g_log_set_default_handler(on_log, NULL);
	g_log_set_handler("VIPS", G_LOG_LEVEL_MASK, on_log, NULL);
	signal(SIGALRM, SIG_DFL);
	while ((rc = receive(&rq)) <= 0) {
		if (rc < 0) {
			reply("error fail malformed request");
			continue;
		}
		serve(&rq);
		for (int i = 0; i < 3; i++)
			close(rq.fd[i]);
	}
	/* No vips_shutdown: the process ends here, and _exit skips the
	 * exit-time work of every library it loaded. */
	_exit(0);
}
