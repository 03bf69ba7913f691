/*
 * fs_presence.c - where a file's or a gallery's content is, per backend,
 * and pins ("store forever"), as extended attributes:
 *
 *   user.mvault.presence          a file: "metadata=neon-db asset=local,
 *                                 icp-canister sync=idle pinned=icp-canister";
 *                                 a gallery: "3/3 on local; 2/3 on
 *                                 icp-canister, pinned, migrating, 1.2 MiB left"
 *   user.mvault.presence.NAME     the same for one backend (icp, vblob, s3,
 *                                 local, neon, or the label itself)
 *   user.mvault.pin               the backends the file or gallery itself is
 *                                 pinned to; set it to copy there (names
 *                                 joined by ','), remove it to let go
 *
 * Each read or change is one statement (meta_presence, meta_pin_set).
 * Backends are named by seed 001's labels (util/store_label.h); a pin may
 * name only a store this mount was given (-o pin_store=NAME=URL).
 */
#include "fs/fs_ns.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/store_label.h"

#define MAX_BACKENDS 8

/* Appends the formatted text to OUT (LEN bytes, *AT used so far). */
static void put(char *out, size_t len, size_t *at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *out, size_t len, size_t *at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*at >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(out + *at, len - *at, fmt, ap);
	va_end(ap);
	*at = n < 0 ? *at : *at + (size_t)n >= len ? len - 1 : *at + (size_t)n;
}

/* One backend of a file: "metadata=present asset=present sync=idle
 * pinned=yes[ error=...]". */
static void file_backend(const struct meta_presence *p, char *out, size_t len, size_t *at)
{
	put(out, len, at, "metadata=%s asset=%s sync=%s pinned=%s", p->meta_present ? "present" : "absent",
	    p->asset_present ? "present" : "absent", p->sync_state, p->pinned ? "yes" : "no");
	if (p->sync_error[0])
		put(out, len, at, " error=%s", p->sync_error);
}

/* The summary of a file: which backends hold each artifact, the sync
 * state over all of them (failed before migrating before idle) and the
 * pins that hold it (its own and its galleries'). */
static void file_summary(const struct meta_presence *p, int n, char *out, size_t len, size_t *at)
{
	const char *sync = "idle", *error = NULL, *error_at = NULL;
	int first;

	put(out, len, at, "metadata=");
	first = 1;
	for (int i = 0; i < n; i++)
		if (p[i].meta_present)
			put(out, len, at, "%s%s", first ? "" : ",", p[i].backend), first = 0;
	put(out, len, at, "%s asset=", first ? "none" : "");
	first = 1;
	for (int i = 0; i < n; i++)
		if (p[i].asset_present)
			put(out, len, at, "%s%s", first ? "" : ",", p[i].backend), first = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(p[i].sync_state, "failed") == 0) {
			sync = "failed";
			if (!error && p[i].sync_error[0])
				error = p[i].sync_error, error_at = p[i].backend;
		} else if (strcmp(p[i].sync_state, "migrating") == 0 && strcmp(sync, "failed") != 0) {
			sync = "migrating";
		}
	}
	put(out, len, at, "%s sync=%s", first ? "none" : "", sync);
	first = 1;
	for (int i = 0; i < n; i++)
		if (p[i].pinned)
			put(out, len, at, "%s%s", first ? " pinned=" : ",", p[i].backend), first = 0;
	if (error)
		put(out, len, at, " error=%s: %s", error_at, error);
}

/* One backend of a gallery: "2/3 on icp-canister, pinned, migrating, 1.2
 * MiB left"; "complete" once a pinned backend holds all of them. */
static void gallery_backend(const struct meta_presence *p, char *out, size_t len, size_t *at)
{
	put(out, len, at, "%llu/%llu on %s", (unsigned long long)p->present, (unsigned long long)p->total,
	    p->backend);
	if (p->pinned)
		put(out, len, at, ", pinned");
	if (p->failed)
		put(out, len, at, ", failed (%llu)", (unsigned long long)p->failed);
	if (p->migrating)
		put(out, len, at, ", migrating, %.1f MiB left", (double)p->bytes_left / (1 << 20));
	else if (p->pinned && !p->failed && p->present == p->total)
		put(out, len, at, ", complete");
}

ssize_t fs_presence_get(struct mvfs *fs, uint64_t ino, int gallery, const char *which, char *buf, size_t size)
{
	struct meta_presence p[MAX_BACKENDS];
	const char *label = NULL;
	char text[2048] = "";
	size_t at = 0;
	int n;

	if (which && !(label = store_label(which)))
		return -ENODATA;	/* no such backend: no such attribute */
	if ((n = meta_presence(fs->meta, ino, gallery, p, MAX_BACKENDS)) < 0)
		return n;
	if (!label && gallery) {
		for (int i = 0; i < n; i++) {
			put(text, sizeof(text), &at, "%s", i ? "; " : "");
			gallery_backend(&p[i], text, sizeof(text), &at);
		}
		if (n == 0)
			put(text, sizeof(text), &at, "empty");
	} else if (!label) {
		file_summary(p, n, text, sizeof(text), &at);
	}
	if (!label)
		return fs_xattr_copy_out(text, at, buf, size);
	for (int i = 0; i < n; i++) {
		if (strcmp(p[i].backend, label) != 0)
			continue;
		if (gallery)
			gallery_backend(&p[i], text, sizeof(text), &at);
		else
			file_backend(&p[i], text, sizeof(text), &at);
		return fs_xattr_copy_out(text, at, buf, size);
	}
	put(text, sizeof(text), &at, gallery ? "0 on %s" : "metadata=absent asset=absent sync=idle pinned=no",
	    label);
	return fs_xattr_copy_out(text, at, buf, size);
}

/* Whether LABEL may be pinned to at this mount: 0, or -EINVAL after a log
 * line naming NAME (as given) and SUBJECT. */
static int pin_allowed(struct mvfs *fs, const char *subject, const char *name, const char *label)
{
	char known[256] = "";
	size_t at = 0;

	for (int i = 0; label && i < fs->cfg.npin_labels; i++)
		if (strcmp(fs->cfg.pin_labels[i], label) == 0)
			return 0;
	for (int i = 0; i < fs->cfg.npin_labels; i++)
		put(known, sizeof(known), &at, "%s%s", i ? ", " : "", store_label_short(fs->cfg.pin_labels[i]));
	if (label && fs->cfg.store_label && strcmp(label, fs->cfg.store_label) == 0)
		log_warn("cannot pin %s to '%s': that is the primary store, which holds it already", subject, name);
	else
		log_warn("cannot pin %s to '%s': %s (this mount's pin stores: %s; -o pin_store=NAME=URL adds one)",
			 subject, name, label ? "no store of that name at this mount" : "not a backend name",
			 at ? known : "none");
	return -EINVAL;
}

int fs_pin_set(struct mvfs *fs, uint64_t ino, const char *subject, const char *value, size_t size)
{
	const char *labels[MAX_BACKENDS];
	char text[256];
	int n = 0, rc;

	if (value && size >= sizeof(text)) {
		log_warn("cannot pin %s: the value is %zu bytes (names of backends joined by ',')", subject, size);
		return -EINVAL;
	}
	if (value) {
		char *save = NULL;

		memcpy(text, value, size);
		text[size] = '\0';
		for (char *name = strtok_r(text, ", \n", &save); name; name = strtok_r(NULL, ", \n", &save)) {
			const char *label = store_label(name);
			int dup = 0;

			if ((rc = pin_allowed(fs, subject, name, label)) != 0)
				return rc;
			for (int i = 0; i < n; i++)
				dup |= strcmp(labels[i], label) == 0;
			if (!dup && n < MAX_BACKENDS)
				labels[n++] = label;
		}
	}
	rc = meta_pin_set(fs->meta, ino, labels, n);
	if (rc == -ENODATA)
		log_info("cannot unpin %s: it is not pinned itself (a gallery's pin is removed on the gallery)",
			 subject);
	else if (rc == -ENOTSUP)
		log_warn("cannot pin %s: only files and galleries are pinned", subject);
	else if (rc < 0)
		log_error("cannot pin %s: %s", subject, strerror(-rc));
	else if (n)
		log_info("pinned %s to %s%s: %d memor%s", subject, labels[0], n > 1 ? " and more" : "", rc,
			 rc == 1 ? "y" : "ies");
	else
		log_info("unpinned %s", subject);
	return rc < 0 ? rc : 0;
}

ssize_t fs_xattr_pins(struct mvfs *fs, char *buf, size_t size)
{
	struct meta_pin_progress p[MAX_BACKENDS];
	char text[1024] = "";
	size_t at = 0;
	int n = meta_pin_progress(fs->meta, p, MAX_BACKENDS);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		put(text, sizeof(text), &at, "%s %llu %llu %llu %llu %llu\n", p[i].backend,
		    (unsigned long long)p[i].copying, (unsigned long long)p[i].bytes_left,
		    (unsigned long long)p[i].failed, (unsigned long long)p[i].recent_bytes,
		    (unsigned long long)p[i].recent_secs);
	return fs_xattr_copy_out(text, at, buf, size);
}
