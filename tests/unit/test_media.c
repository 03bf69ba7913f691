/*
 * test_media.c - the image helper process with real libvips: variants of
 * generated images, refusals before decoding, bad input, the time limit,
 * cancellation.  This program is its own helper (`test_media __media`), so
 * the test runs the same fork+exec path as the daemon.  (The test process
 * itself uses libvips to make its images; the daemon never does.)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vips/vips.h>

#include "unit.h"
#include "media/media.h"

static const struct media_recipe recipe = MEDIA_RECIPE_DEFAULT;

/* An unnamed temporary file holding a W x H PNG (a gradient, made with
 * libvips in this process: the test is not the daemon), cut to KEEP bytes
 * when KEEP > 0. */
static int png(int w, int h, long keep)
{
	VipsImage *xyz = NULL, *rgb = NULL, *u8 = NULL;
	VipsTarget *target;
	int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);

	if (fd < 0 || vips_xyz(&xyz, w, h, NULL) || vips_bandjoin_const1(xyz, &rgb, 128, NULL) ||
	    vips_cast(rgb, &u8, VIPS_FORMAT_UCHAR, NULL))
		abort();
	target = vips_target_new_to_descriptor(fd);
	if (!target || vips_pngsave_target(u8, target, "compression", 1, NULL))
		abort();
	g_object_unref(target);
	g_object_unref(u8);
	g_object_unref(rgb);
	g_object_unref(xyz);
	if (keep > 0 && ftruncate(fd, keep) != 0)
		abort();
	return fd;
}

static int out_file(void)
{
	int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);

	if (fd < 0)
		abort();
	return fd;
}

static int is_webp(int fd)
{
	unsigned char b[12];

	return pread(fd, b, 12, 0) == 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0;
}

static long fsize(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (long)st.st_size : -1;
}

struct run {
	int rc;
	struct media_result res;
	char why[512];
	int d, t;
};

static void make(struct media_helper *h, const struct media_recipe *r, int in, struct run *out)
{
	out->d = out_file();
	out->t = out_file();
	out->rc = media_make(h, r, in, out->d, out->t, &out->res, out->why, sizeof(out->why));
	close(in);
}

static void done(struct run *r)
{
	close(r->d);
	close(r->t);
}

static void test_variants_of_an_image(void *arg)
{
	struct media_helper *h = arg;
	struct run r;

	make(h, &recipe, png(3000, 2000, 0), &r);
	if (r.rc)
		fprintf(stderr, "media_make: %s\n", r.why);
	CHECK_EQ_INT(r.rc, 0);
	CHECK_EQ_INT(r.res.width, 3000);
	CHECK_EQ_INT(r.res.height, 2000);
	CHECK_EQ_INT(r.res.display_width, 2048);
	CHECK_EQ_INT(r.res.display_height, 1365);
	CHECK_EQ_INT(r.res.thumb_width, 512);
	CHECK_EQ_INT(r.res.thumb_height, 341);
	CHECK_STREQ(r.res.color_space, "srgb");
	CHECK_STREQ(r.res.loader, "pngload");
	CHECK(is_webp(r.d) && is_webp(r.t));
	CHECK(fsize(r.t) > 100 && fsize(r.t) < fsize(r.d));
	done(&r);

	/* smaller than the variants: never enlarged */
	make(h, &recipe, png(300, 100, 0), &r);
	CHECK_EQ_INT(r.rc, 0);
	CHECK_EQ_INT(r.res.display_width, 300);
	CHECK_EQ_INT(r.res.thumb_width, 300);
	done(&r);
}

static void test_refused_before_decoding(void *arg)
{
	struct media_helper *h = arg;
	struct timespec t0, t1;
	struct run r;

	/* 100 MP by its header, 100 bytes of file: nothing is decoded */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	make(h, &recipe, png(20000, 5000, 100), &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_EQ_INT(r.rc, MEDIA_TOO_BIG);
	CHECK(strstr(r.why, "100.0 megapixels") != NULL);
	CHECK(strstr(r.why, "80 megapixel limit") != NULL);
	CHECK(t1.tv_sec - t0.tv_sec < 5);
	CHECK_EQ_INT(fsize(r.d), 0);
	done(&r);
}

static void test_bad_input(void *arg)
{
	struct media_helper *h = arg;
	struct run r;
	int fd;

	make(h, &recipe, png(800, 600, 5000), &r);	/* cut short */
	CHECK_EQ_INT(r.rc, MEDIA_BAD_INPUT);
	CHECK(strstr(r.why, "cannot decode") != NULL);
	done(&r);

	fd = out_file();
	if (write(fd, "hello, not an image\n", 20) != 20)
		abort();
	make(h, &recipe, fd, &r);
	CHECK_EQ_INT(r.rc, MEDIA_BAD_INPUT);
	CHECK(strstr(r.why, "not an image") != NULL);
	done(&r);

	make(h, &recipe, out_file(), &r);		/* empty */
	CHECK_EQ_INT(r.rc, MEDIA_BAD_INPUT);
	done(&r);

	/* and the same helper still works */
	make(h, &recipe, png(64, 64, 0), &r);
	CHECK_EQ_INT(r.rc, 0);
	done(&r);
}

static void test_time_limit(void)
{
	struct media_limits lim = { .timeout_s = 1 };
	struct media_helper *h;
	struct run r;

	setenv("MVFS_TEST_MEDIA_DELAY", "3", 1);
	h = media_helper_new("/proc/self/exe", &lim);
	make(h, &recipe, png(64, 64, 0), &r);
	CHECK_EQ_INT(r.rc, MEDIA_CRASHED);
	CHECK(strstr(r.why, "time limit of 1 s") != NULL);
	done(&r);
	unsetenv("MVFS_TEST_MEDIA_DELAY");
	/* a new helper for the next image */
	make(h, &recipe, png(64, 64, 0), &r);
	CHECK_EQ_INT(r.rc, 0);
	done(&r);
	CHECK(media_helper_peak_kb(h) > 0);
	media_helper_free(h);
}

static void *cancel_later(void *arg)
{
	sleep(1);
	media_helper_cancel(arg);
	return NULL;
}

static void test_cancel(void)
{
	struct media_limits lim = { .timeout_s = 30 };
	struct media_helper *h;
	pthread_t t;
	struct run r;

	setenv("MVFS_TEST_MEDIA_DELAY", "20", 1);
	h = media_helper_new("/proc/self/exe", &lim);
	pthread_create(&t, NULL, cancel_later, h);
	make(h, &recipe, png(64, 64, 0), &r);
	pthread_join(t, NULL);
	CHECK_EQ_INT(r.rc, MEDIA_CRASHED);
	CHECK(strstr(r.why, "shutting down") != NULL);
	done(&r);
	unsetenv("MVFS_TEST_MEDIA_DELAY");
	media_helper_free(h);
}

static void test_avif(void *arg)
{
	struct media_helper *h = arg;
	struct media_recipe avif = recipe;
	unsigned char b[12];
	struct run r;

	avif.display_format = "avif";
	make(h, &avif, png(640, 480, 0), &r);
	CHECK_EQ_INT(r.rc, 0);
	CHECK(pread(r.d, b, 12, 0) == 12 && memcmp(b + 4, "ftypavif", 8) == 0);
	CHECK(is_webp(r.t));
	done(&r);
}

int main(int argc, char **argv)
{
	struct media_limits lim = { .timeout_s = 60 };
	struct media_helper *h;

	if (argc > 1 && strcmp(argv[1], "__media") == 0)
		return media_helper_main(argc, argv);
	if (VIPS_INIT(argv[0]))
		return 1;
	h = media_helper_new("/proc/self/exe", &lim);
	TEST_WITH(test_variants_of_an_image, h);
	TEST_WITH(test_refused_before_decoding, h);
	TEST_WITH(test_bad_input, h);
	TEST_WITH(test_avif, h);
	media_helper_free(h);
	TEST(test_time_limit);
	TEST(test_cancel);
	return unit_done();
}
