/*
 * mime.h - what kind of memory a file is, from its first bytes.
 *
 * The content decides, not the name: a JPEG called notes.txt is an image.
 * The name's extension is only used when the magic bytes say nothing
 * (plain text, unknown binary).
 */
#ifndef MVFS_MIME_H
#define MVFS_MIME_H

#include <stddef.h>

/* How many leading bytes mime_sniff wants to see. */
#define MIME_SNIFF_BYTES 64

struct mime_type {
	const char *mime;	/* e.g. "image/jpeg"; static string */
	const char *memory_type; /* memory_type_t: image, video, audio, document, note */
};

/* Classifies HEAD (the first N bytes, N may be short or 0) of a file named
 * NAME.  Never fails: unknown content is application/octet-stream, document. */
struct mime_type mime_sniff(const void *head, size_t n, const char *name);

#endif
