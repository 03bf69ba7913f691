/*
 * media.h - display and thumb variants of images, made with libvips in a
 * process of their own.
 *
 * Images come from anyone and decoders have bugs, so decoding never runs in
 * the FUSE daemon: each worker thread has a helper process (`mvaultfs
 * __media`, the same binary re-executed) that takes one image at a time
 * over a socket, with the image and the two output files passed as file
 * descriptors.  The helper runs with an address-space limit, a time limit
 * per image (alarm, and a kill from the parent as a backstop), niced, and
 * dies with its parent.  A helper that crashes or runs over its limits
 * fails that image, never the worker; the next image gets a new helper.
 *
 * Before any pixel is decoded the helper reads the header and refuses
 * images over the megapixel limit (seed 000: 80 MP).
 */
#ifndef MVFS_MEDIA_H
#define MVFS_MEDIA_H

#include <stddef.h>

/* How variants are made (recipe_version v1). */
struct media_recipe {
	const char *display_format;	/* "webp" (default) or "avif" */
	int display_size;		/* long edge; 2048 */
	int display_quality;		/* 80 (seed 000: 80-85) */
	int thumb_size;			/* long edge; 512 */
	int thumb_quality;		/* 72 (seed 000: 70-75) */
	int max_megapixels;		/* 80 */
};

#define MEDIA_RECIPE_VERSION "v1"
#define MEDIA_RECIPE_DEFAULT { "webp", 2048, 80, 512, 72, 80 }

/* The limits of a helper process. */
struct media_limits {
	int timeout_s;		/* wall-clock seconds per image; 0: 120 */
	int memory_mb;		/* address space of the helper; 0: 2048 (not applied under ASan) */
	int threads;		/* libvips threads per helper; 0: libvips' default */
	int images_per_helper;	/* a helper is replaced after this many; 0: 100 */
};

/* What a made image is. */
struct media_result {
	int width, height;		/* the original, as shown (EXIF orientation applied) */
	char color_space[32];		/* the original's: "srgb", "cmyk", "b-w", "rgb16", ... */
	char loader[32];		/* libvips loader that read it: "jpegload", ... */
	int display_width, display_height;
	int thumb_width, thumb_height;
};

/* Why media_make failed (the reason text says more). */
enum media_failure {
	MEDIA_BAD_INPUT = 1,	/* not an image, truncated, corrupt: retrying will not help */
	MEDIA_TOO_BIG,		/* over the megapixel limit: refused before decoding */
	MEDIA_CRASHED,		/* the helper died or ran over a limit: may be retried */
	MEDIA_FAILED,		/* anything else (out of space, ...): may be retried */
};

struct media_helper;

/* A helper for one worker thread; the process starts with the first image.
 * SELF is the binary to run in helper mode ("/proc/self/exe").  NULL on
 * allocation failure. */
struct media_helper *media_helper_new(const char *self, const struct media_limits *lim);
/* Ends the process (if any); the next image starts a new one. */
void media_helper_stop(struct media_helper *h);
/* Ends the process (if any) and frees H.  NULL is a no-op. */
void media_helper_free(struct media_helper *h);
/* Stops H for good (from another thread, to stop fast): a helper busy
 * with an image is killed, and this and every later media_make fail with
 * MEDIA_CRASHED. */
void media_helper_cancel(struct media_helper *h);
/* Peak resident size of H's processes so far, in KiB. */
long media_helper_peak_kb(const struct media_helper *h);

/* Makes the variants of the image in IN_FD into DISPLAY_FD and THUMB_FD
 * (empty files; written from offset 0) per recipe R.  Returns 0 with OUT
 * filled, or a media_failure with a one-line REASON. */
int media_make(struct media_helper *h, const struct media_recipe *r, int in_fd, int display_fd,
	       int thumb_fd, struct media_result *out, char *reason, size_t reasonlen);

/* The desktop's thumbnails (xdg_thumb.h) of the image in IN_FD, a thumb
 * variant: its long edge scaled to LARGE and NORMAL pixels (never
 * enlarged), as PNG without metadata, into LARGE_FD and NORMAL_FD (empty
 * files).  In the helper, as media_make: 0 with OUT's display and thumb
 * sizes those of the large and normal PNG, or a media_failure. */
int media_desktop(struct media_helper *h, int in_fd, int large, int normal, int large_fd, int normal_fd,
		  struct media_result *out, char *reason, size_t reasonlen);

/* R as seed 000's transformSpec JSON object, into BUF. */
void media_transform_spec(const struct media_recipe *r, char *buf, size_t len);
/* The MIME type of display variants in FORMAT. */
const char *media_display_mime(const char *format);

/* The helper's main (`mvaultfs __media`): serves images on fd 3 until it
 * is closed. */
int media_helper_main(int argc, char **argv);

#endif
