/*
 * test_util.c - the pure helpers: name rules, type sniffing, SHA-256, the
 * values of the desktop attributes, the desktop's thumbnail files, what is
 * mounted where.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "util/mime.h"
#include "util/mounts.h"
#include "util/name.h"
#include "util/sha256.h"
#include "util/xdg.h"
#include "util/xdg_thumb.h"
#include <zlib.h>

static void test_name_accepts(void)
{
	char max[256];

	CHECK_EQ_INT(name_check("IMG_0001.jpg", NULL), 0);
	CHECK_EQ_INT(name_check("holiday photo.jpg", NULL), 0);
	CHECK_EQ_INT(name_check(" leading and trailing ", NULL), 0);
	CHECK_EQ_INT(name_check("\xc3\xa9t\xc3\xa9 \xf0\x9f\x93\xb7.jpg", NULL), 0); /* été 📷 */
	CHECK_EQ_INT(name_check(".hidden", NULL), 0);
	CHECK_EQ_INT(name_check("...", NULL), 0);
	memset(max, 'a', 255);
	max[255] = '\0';
	CHECK_EQ_INT(name_check(max, NULL), 0);
}

static void test_name_refuses(void)
{
	char big[257];
	const char *why = NULL;

	memset(big, 'a', 256);
	big[256] = '\0';
	CHECK_EQ_INT(name_check(big, &why), -ENAMETOOLONG);
	CHECK(why != NULL);
	CHECK_EQ_INT(name_check("", NULL), -EINVAL);
	CHECK_EQ_INT(name_check(".", NULL), -EINVAL);
	CHECK_EQ_INT(name_check("..", NULL), -EINVAL);
	CHECK_EQ_INT(name_check("a/b", NULL), -EINVAL);
	CHECK_EQ_INT(name_check("tab\there", NULL), -EINVAL);
	CHECK_EQ_INT(name_check("new\nline", NULL), -EINVAL);
	CHECK_EQ_INT(name_check("del\x7f", NULL), -EINVAL);
	CHECK_EQ_INT(name_check("bad\xff.jpg", NULL), -EINVAL);		/* not UTF-8 */
	CHECK_EQ_INT(name_check("\xc0\xaf", NULL), -EINVAL);		/* overlong '/' */
	CHECK_EQ_INT(name_check("\xed\xa0\x80", NULL), -EINVAL);	/* surrogate */
	CHECK_EQ_INT(name_check("\xf4\x90\x80\x80", NULL), -EINVAL);	/* > U+10FFFF */
	CHECK_EQ_INT(name_check("cut\xe2\x82", NULL), -EINVAL);		/* truncated */
}

static void test_twins(void)
{
	const char *id = "3f9a0c1e-1111-2222-3333-444455556666";
	char out[256], base[256], hex[5], longname[256];

	name_twin("IMG_0001.jpg", id, out);
	CHECK_STREQ(out, "IMG_0001~3f9a.jpg");
	CHECK_EQ_INT(name_twin_parse(out, base, hex), 1);
	CHECK_STREQ(base, "IMG_0001.jpg");
	CHECK_STREQ(hex, "3f9a");
	name_twin("README", id, out);
	CHECK_STREQ(out, "README~3f9a");
	CHECK_EQ_INT(name_twin_parse(out, base, hex), 1);
	CHECK_STREQ(base, "README");
	name_twin(".bashrc", id, out);			/* a leading dot is no extension */
	CHECK_STREQ(out, ".bashrc~3f9a");
	name_twin("archive.tar.gz", id, out);
	CHECK_STREQ(out, "archive.tar~3f9a.gz");
	CHECK_EQ_INT(name_twin_parse("IMG_0001.jpg", base, hex), 0);
	CHECK_EQ_INT(name_twin_parse("x~3F9A.jpg", base, hex), 0);	/* upper case: not ours */
	CHECK_EQ_INT(name_twin_parse("x~3f9.jpg", base, hex), 0);
	CHECK_EQ_INT(name_twin_parse("~3f9a", base, hex), 1);
	CHECK_STREQ(base, "");
	/* A name ending in a dot has no extension: its twin ends in the
	 * suffix, and is read back so (found by make fuzz). */
	name_twin("notes.", id, out);
	CHECK_STREQ(out, "notes.~3f9a");
	hex[0] = '\0';
	CHECK_EQ_INT(name_twin_parse(out, base, hex), 1);
	CHECK_STREQ(base, "notes.");
	CHECK_STREQ(hex, "3f9a");
	/* nor has one whose extension is too long to keep: cut, read back */
	longname[0] = 'x';
	longname[1] = '.';
	memset(longname + 2, 'e', 252);
	longname[254] = '\0';
	name_twin(longname, id, out);
	CHECK_EQ_INT(strlen(out), 255);
	hex[0] = '\0';
	CHECK_EQ_INT(name_twin_parse(out, base, hex), 1);
	CHECK_STREQ(hex, "3f9a");
	/* 255 bytes stay 255 bytes, and stay valid UTF-8 */
	memset(longname, 'a', 248);
	memcpy(longname + 248, "\xc3\xa9.jpg", 7);		/* 'é' across the cut */
	longname[255] = '\0';
	name_twin(longname, id, out);
	CHECK(strlen(out) <= 255);
	CHECK_EQ_INT(name_check(out, NULL), 0);
}

static void test_versions(void)
{
	char out[256], base[256], stamp[NAME_VERSION_STAMP_LEN + 1], longname[256];

	name_version("IMG_0001.jpg", "2026-12-06 19.38.32", out);
	CHECK_STREQ(out, "IMG_0001 (replaced 2026-12-06 19.38.32).jpg");
	CHECK_EQ_INT(name_version_parse(out, base, stamp), 1);
	CHECK_STREQ(base, "IMG_0001.jpg");
	CHECK_STREQ(stamp, "2026-12-06 19.38.32");
	name_version("notes", "2026-01-02 03.04.05", out);
	CHECK_STREQ(out, "notes (replaced 2026-01-02 03.04.05)");
	CHECK_EQ_INT(name_version_parse(out, base, stamp), 1);
	CHECK_STREQ(base, "notes");
	CHECK_EQ_INT(name_version_parse("a (replaced 2026-12-06 19:38:32).jpg", base, stamp), 0);
	CHECK_EQ_INT(name_version_parse("a (replaced 2026-12-06).jpg", base, stamp), 0);
	CHECK_EQ_INT(name_version_parse("IMG_0001.jpg", base, stamp), 0);
	memset(longname, 'b', 248);
	memcpy(longname + 248, "\xc3\xa9.jpg", 7);
	longname[255] = '\0';
	name_version(longname, "2026-12-06 19.38.32", out);
	CHECK(strlen(out) <= 255);
	CHECK_EQ_INT(name_check(out, NULL), 0);
	CHECK_EQ_INT(name_version_parse(out, base, stamp), 1);
}

static void test_plain_names(void)
{
	static const char *const plain[] = { ".DS_Store", "._IMG_0001.jpg", "Thumbs.db", "thumbs.db", "desktop.ini",
					     "Desktop.ini", ".directory", ".~lock.report.odt#", "~$report.docx",
					     ".notes.txt.swp", ".notes.txt.swx", "..DS_Store.Ab12Cd", ".Thumbs.db.x1y2z3",
					     ".notes.txt.swp.l1gMQH", ".directory.a1b2c3" };
	static const char *const memories[] = { "IMG_0001.jpg", "DS_Store", "notes.swp", ".bashrc", "photo.db",
						".IMG_0001.jpg.Ab12Cd", "Thumbs.dbx", "a.jpg.swp" };

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		CHECK_EQ_INT(name_is_plain(plain[i]), 1);
	for (size_t i = 0; i < sizeof(memories) / sizeof(memories[0]); i++)
		CHECK_EQ_INT(name_is_plain(memories[i]), 0);
	/* rsync's name for rsync's name for ...: as many levels as fit in 255
	 * bytes, answered at once (found by make fuzz: the tries were a tree,
	 * 2^36 of them for 255 dots); SIGALRM ends a run that hangs */
	{
		char deep[NAME_MAX_BYTES + 1];

		alarm(10);
		memset(deep, '.', sizeof(deep) - 1);
		deep[sizeof(deep) - 1] = '\0';
		CHECK_EQ_INT(name_is_plain(deep), 0);
		strcpy(deep, ".Thumbs.db");
		for (int i = 0; i < 30; i++)
			strcat(deep, ".a1B2c3");
		CHECK_EQ_INT(name_is_plain(deep), 1);
		deep[1] = 't';	/* thumbs.db: the same, as Windows sees it */
		CHECK_EQ_INT(name_is_plain(deep), 1);
		deep[2] = '_';
		CHECK_EQ_INT(name_is_plain(deep), 0);
		alarm(0);
	}
}

static void test_shown(void)
{
	const char *id = "3f9a0c1e-1111-2222-3333-444455556666";
	char out[256], long_name[400];

	name_shown("a.jpg", id, 0, out);
	CHECK_STREQ(out, "a.jpg");
	name_shown("a.jpg", id, 1, out);
	CHECK_STREQ(out, "a~3f9a.jpg");
	name_shown("x/y.jpg", id, 0, out);		/* not a file name: cleaned, twin form */
	CHECK_STREQ(out, "x_y~3f9a.jpg");
	name_shown("..", id, 0, out);
	CHECK_STREQ(out, "_~3f9a");
	name_shown("ctl\x01.jpg", id, 0, out);
	CHECK_STREQ(out, "ctl_~3f9a.jpg");
	memset(long_name, 'n', 300);
	strcpy(long_name + 300, ".jpg");
	name_shown(long_name, id, 0, out);
	CHECK_EQ_INT(strlen(out), 255);
	CHECK_EQ_INT(name_check(out, NULL), 0);
	CHECK_STREQ(out + 246, "~3f9a.jpg");
}

static void test_mime(void)
{
	static const unsigned char jpeg[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F' };
	static const unsigned char png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0 };
	static const char webp[] = "RIFF\x10\0\0\0WEBPVP8 ";
	static const char wav[] = "RIFF\x10\0\0\0WAVEfmt ";
	static const char heic[] = "\0\0\0\x18" "ftypheic\0\0\0\0";
	static const char mp4[] = "\0\0\0\x18" "ftypisom\0\0\0\0";
	struct mime_type t;

	t = mime_sniff(jpeg, sizeof(jpeg), "notes.txt");	/* content wins over name */
	CHECK_STREQ(t.mime, "image/jpeg");
	CHECK_STREQ(t.memory_type, "image");
	CHECK_STREQ(mime_sniff(png, sizeof(png), "x").mime, "image/png");
	CHECK_STREQ(mime_sniff(webp, sizeof(webp) - 1, "x").mime, "image/webp");
	CHECK_STREQ(mime_sniff(wav, sizeof(wav) - 1, "x").memory_type, "audio");
	CHECK_STREQ(mime_sniff(heic, sizeof(heic) - 1, "x").mime, "image/heic");
	CHECK_STREQ(mime_sniff(mp4, sizeof(mp4) - 1, "x").memory_type, "video");
	CHECK_STREQ(mime_sniff("%PDF-1.7", 8, "x").memory_type, "document");
	CHECK_STREQ(mime_sniff("dear diary\n", 11, "day.md").mime, "text/markdown");
	CHECK_STREQ(mime_sniff("dear diary\n", 11, "day.txt").memory_type, "note");
	CHECK_STREQ(mime_sniff("", 0, "empty.jpg").mime, "application/octet-stream");
	CHECK_STREQ(mime_sniff("\0\1\2\3", 4, "blob").memory_type, "document");
	CHECK_STREQ(mime_sniff(jpeg, 2, "short").mime, "application/octet-stream");
}

static void test_sha256(void)
{
	/* FIPS 180-2 vectors */
	char hex[SHA256_HEX_LEN + 1];
	struct sha256 s = { 0 };
	char path[] = "/tmp/mvfs-unit-XXXXXX";
	int fd;

	CHECK_EQ_INT(sha256_init(&s), 0);
	sha256_final(&s, hex);
	CHECK_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_update(&s, "ab", 2);
	sha256_update(&s, "c", 1);
	sha256_final(&s, hex);
	CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_release(&s);
	sha256_release(&s);	/* twice is harmless */

	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	CHECK_EQ_INT(write(fd, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56), 56);
	CHECK_EQ_INT(sha256_fd(fd, 56, hex), 0);
	CHECK_STREQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	CHECK_EQ_INT(sha256_fd(fd, 57, hex), -EIO);	/* file shorter than said */
	close(fd);
}

static void test_xdg_values(void)
{
	char big[XDG_TAGS_MAX + 2];
	const char *why = NULL;

	CHECK(xdg_name(XDG_TAGS) && xdg_name(XDG_COMMENT) && xdg_name(XDG_RATING));
	CHECK(!xdg_name("user.xdg.origin.url") && !xdg_name("user.xdg.tags2"));
	CHECK_EQ_INT(xdg_check(XDG_TAGS, "a,b, c ,,", 9, NULL), 0);
	CHECK_EQ_INT(xdg_check(XDG_TAGS, "", 0, NULL), 0);
	CHECK_EQ_INT(xdg_check(XDG_TAGS, "a\xff", 2, &why), -EINVAL);
	CHECK(why && strstr(why, "UTF-8"));
	CHECK_EQ_INT(xdg_check(XDG_TAGS, "a\nb", 3, NULL), -EINVAL);
	CHECK_EQ_INT(xdg_check(XDG_TAGS, "a\0b", 3, NULL), -EINVAL);
	memset(big, 't', sizeof(big));
	CHECK_EQ_INT(xdg_check(XDG_TAGS, big, XDG_TAG_MAX, NULL), 0);
	CHECK_EQ_INT(xdg_check(XDG_TAGS, big, XDG_TAG_MAX + 1, NULL), -E2BIG);
	big[0] = big[XDG_TAG_MAX + 1] = ' ';		/* blanks around a tag do not count */
	CHECK_EQ_INT(xdg_check(XDG_TAGS, big, XDG_TAG_MAX + 2, NULL), 0);
	for (size_t i = 1; i < sizeof(big); i += 2)
		big[i] = ',';
	CHECK_EQ_INT(xdg_check(XDG_TAGS, big, XDG_TAGS_MAX, NULL), 0);
	CHECK_EQ_INT(xdg_check(XDG_TAGS, big, XDG_TAGS_MAX + 1, NULL), -E2BIG);
	CHECK_EQ_INT(xdg_check(XDG_COMMENT, "two\nlines\tand a tab", 19, NULL), 0);
	CHECK_EQ_INT(xdg_check(XDG_COMMENT, "bell\a", 5, NULL), -EINVAL);
	CHECK_EQ_INT(xdg_check(XDG_COMMENT, big, XDG_COMMENT_MAX + 1, NULL), -E2BIG);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "0", 1, NULL), 0);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "10", 2, NULL), 0);
	CHECK_EQ_INT(xdg_check(XDG_RATING, " 7\n", 3, NULL), 0);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "-0", 2, NULL), 0);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "11", 2, NULL), -ERANGE);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "-1", 2, NULL), -ERANGE);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "999999999", 9, NULL), -ERANGE);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "9999999999", 10, NULL), -EINVAL);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "", 0, NULL), -EINVAL);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "5 stars", 7, NULL), -EINVAL);
	CHECK_EQ_INT(xdg_check(XDG_RATING, "4.5", 3, NULL), -EINVAL);
}

/* Whether every chunk of PNG has the CRC-32 of its type and data. */
static int png_crcs_ok(const unsigned char *p, size_t len)
{
	size_t off = 8;

	while (off + 12 <= len) {
		uint32_t n = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 | (uint32_t)p[off + 2] << 8 | p[off + 3];
		const unsigned char *c = p + off + 8 + n;
		uint32_t want = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];

		if (off + 12 + n > len || crc32(0L, p + off + 4, 4 + n) != want)
			return 0;
		off += 12 + n;
	}
	return off == len;
}

static void test_xdg_thumb(void)
{
	/* a 1x1 PNG as PIL writes it */
	static const unsigned char png1[] = {
		0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
		0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x64, 0x62, 0x06,
		0x00, 0x00, 0x0e, 0x00, 0x07, 0xd7, 0x6f, 0xe4, 0x78, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
		0x44, 0xae, 0x42, 0x60, 0x82,
	};
	static struct xdg_thumb_tags t;
	char uri[256], name[XDG_THUMB_NAME_LEN + 1], dir[] = "/tmp/mvfs-thumbs.XXXXXX", sub[64], file[80];
	struct stat st;
	size_t len = 0, len2 = 0;
	unsigned char *a, *b;

	/* GLib's escaping and the standard's example name */
	CHECK_EQ_INT(xdg_thumb_uri("/home/jens/photos/me.png", uri, sizeof(uri)), 0);
	CHECK_STREQ(uri, "file:///home/jens/photos/me.png");
	xdg_thumb_name(uri, name);
	CHECK_STREQ(name, "c6ee772d9e49320e97ec29a7eb5b1697.png");
	CHECK_EQ_INT(xdg_thumb_uri("/m/a b;#\xc3\xa9,=&.jpg", uri, sizeof(uri)), 0);
	CHECK_STREQ(uri, "file:///m/a%20b%3B%23%C3%A9,=&.jpg");
	CHECK_EQ_INT(xdg_thumb_uri("relative/x.jpg", uri, sizeof(uri)), -EINVAL);
	CHECK_EQ_INT(xdg_thumb_uri("/m/x.jpg", uri, 10), -ENAMETOOLONG);

	/* tagged: after IHDR, every CRC right, read back */
	CHECK_EQ_INT(xdg_thumb_tags_parse(png1, sizeof(png1), &t), 0);
	CHECK_STREQ(t.uri, "");
	CHECK_EQ_INT(t.mtime, -1);
	a = xdg_thumb_tag(png1, sizeof(png1), "file:///m/x.jpg", 1700000000, 1234, "image/jpeg", &len);
	CHECK(a && png_crcs_ok(a, len));
	CHECK(a && memcmp(a + 33 + 4, "tEXt", 4) == 0);
	CHECK_EQ_INT(a ? xdg_thumb_tags_parse(a, len, &t) : -1, 0);
	CHECK_STREQ(t.uri, "file:///m/x.jpg");
	CHECK_EQ_INT(t.mtime, 1700000000);
	CHECK_EQ_INT(t.size, 1234);
	/* tagged again: replaced, not added to */
	b = a ? xdg_thumb_tag(a, len, "file:///m/y.jpg", 5, -1, NULL, &len2) : NULL;
	CHECK(b && png_crcs_ok(b, len2) && len2 < len);
	CHECK_EQ_INT(b ? xdg_thumb_tags_parse(b, len2, &t) : -1, 0);
	CHECK_STREQ(t.uri, "file:///m/y.jpg");
	CHECK_EQ_INT(t.mtime, 5);
	CHECK_EQ_INT(t.size, -1);
	free(a);
	free(b);

	/* written where the folders are missing: made, mode 0700 */
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/normal/x", dir);
	CHECK_EQ_INT(xdg_thumb_write(sub, "n.png", png1, sizeof(png1)), 0);
	snprintf(file, sizeof(file), "%s/n.png", sub);
	CHECK(stat(file, &st) == 0 && st.st_size == (off_t)sizeof(png1));
	CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700);
	snprintf(sub, sizeof(sub), "%s/normal", dir);
	CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700);
	unlink(file);
	snprintf(file, sizeof(file), "%s/normal/x", dir);
	CHECK(rmdir(file) == 0 && rmdir(sub) == 0 && rmdir(dir) == 0);

	/* not a PNG, or one cut short */
	CHECK(!xdg_thumb_tag("GIF89a", 6, "file:///x", 1, 1, NULL, &len) && errno == EINVAL);
	CHECK_EQ_INT(xdg_thumb_tags_parse(png1, sizeof(png1) - 20, &t), -EINVAL);
	CHECK(!xdg_thumb_tag(png1, sizeof(png1) - 20, "file:///x", 1, 1, NULL, &len) && errno == EINVAL);
}

/* mounts_find: mountinfo's escapes (a space, a tab, a backslash in the
 * path), the last of two mounts on one path, and nothing mounted. */
static void test_mounts(void)
{
	char dir[64] = "/tmp/mvfs mounts\t\\.XXXXXX";
	struct stat st;
	dev_t dev = 0, first = 0;

	CHECK_EQ_INT(mounts_find("/proc", &dev), 0);
	CHECK(stat("/proc", &st) == 0 && dev == st.st_dev);
	CHECK_EQ_INT(mounts_find("/proc/self", NULL), -ENOENT);
	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	CHECK_EQ_INT(mounts_find(dir, NULL), -ENOENT);
	if (mount("mvfs-test", dir, "tmpfs", 0, "size=64k") != 0) {
		/* the unit tests run as root in make check (FUSE needs it) */
		fprintf(stderr, "test_mounts: cannot mount a tmpfs: %s%s\n", strerror(errno),
			geteuid() ? " (not root: skipped)" : "");
		CHECK(geteuid() != 0);
		rmdir(dir);
		return;
	}
	CHECK_EQ_INT(mounts_find(dir, &first), 0);
	CHECK(stat(dir, &st) == 0 && first == st.st_dev);
	CHECK_EQ_INT(mount("mvfs-test", dir, "tmpfs", 0, "size=64k"), 0);
	CHECK_EQ_INT(mounts_find(dir, &dev), 0);
	CHECK(stat(dir, &st) == 0 && dev == st.st_dev && dev != first);
	while (umount2(dir, MNT_DETACH) == 0)
		;
	CHECK_EQ_INT(mounts_find(dir, NULL), -ENOENT);
	CHECK_EQ_INT(rmdir(dir), 0);
}

int main(void)
{
	TEST(test_name_accepts);
	TEST(test_name_refuses);
	TEST(test_twins);
	TEST(test_shown);
	TEST(test_versions);
	TEST(test_plain_names);
	TEST(test_mime);
	TEST(test_sha256);
	TEST(test_xdg_values);
	TEST(test_xdg_thumb);
	TEST(test_mounts);
	return unit_done();
}
