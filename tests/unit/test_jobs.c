/*
 * test_jobs.c - the pure parts of the background jobs: retry backoff,
 * the inode numbers of variant folders and files, the transform spec.
 */
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "fs/fs_variants.h"
#include "media/media.h"
#include "meta/meta.h"
#include "meta/meta_jobs.h"

static void test_backoff_doubles_to_an_hour(void)
{
	CHECK(meta_jobs_backoff(0) == 0);
	CHECK(meta_jobs_backoff(-3) == 0);
	CHECK(meta_jobs_backoff(1) == 30);
	CHECK(meta_jobs_backoff(2) == 60);
	CHECK(meta_jobs_backoff(3) == 120);
	CHECK(meta_jobs_backoff(7) == 1920);
	CHECK(meta_jobs_backoff(8) == 3600);
	CHECK(meta_jobs_backoff(9) == 3600);
	CHECK(meta_jobs_backoff(1000000) == 3600);	/* no overflow, no endless loop */
	for (int i = 1; i < 40; i++)
		CHECK(meta_jobs_backoff(i + 1) >= meta_jobs_backoff(i));
}

static void test_vino_round_trip(void)
{
	static const uint64_t bases[] = { META_INO_LIBRARY, META_INO_WORKSPACE, META_INO_FIRST, 123456789,
					  FS_VINO_BASE_MAX };
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		for (int k = FS_V_DISPLAY_DIR; k <= FS_V_THUMB_FILE; k++) {
			enum fs_vkind kind;
			uint64_t base, ino = fs_vino((enum fs_vkind)k, bases[i]);

			CHECK(ino != 0);
			CHECK(ino >= FS_VINO_TAG && ino < (1ULL << 63));	/* st_ino stays positive */
			CHECK(fs_vino_split(ino, &kind, &base));
			CHECK_EQ_INT(kind, k);
			CHECK(base == bases[i]);
		}
	}
}

static void test_vino_never_a_database_number(void)
{
	enum fs_vkind kind;
	uint64_t base;

	/* the database's numbers (from 1000, far below 2^56) and the fixed ones */
	for (uint64_t ino = 1; ino < 5000; ino++)
		CHECK(!fs_vino_split(ino, &kind, &base));
	CHECK(!fs_vino_split(FS_VINO_BASE_MAX, &kind, &base));
	CHECK(!fs_vino_split(FS_VINO_TAG, &kind, &base));			/* kind 0 */
	CHECK(!fs_vino_split(FS_VINO_TAG | (5ULL << 56) | 1000, &kind, &base));	/* kind 5 */
	CHECK(!fs_vino_split(fs_vino(FS_V_THUMB_FILE, 1000) | (1ULL << 63), &kind, &base));
	CHECK(!fs_vino_split(fs_vino(FS_V_THUMB_FILE, 1000) | (1ULL << 60), &kind, &base));
	CHECK(fs_vino(FS_V_THUMB_FILE, FS_VINO_BASE_MAX + 1) == 0);
	CHECK(fs_vino((enum fs_vkind)0, 1000) == 0);
	/* one original: four distinct numbers */
	CHECK(fs_vino(FS_V_DISPLAY_FILE, 1000) != fs_vino(FS_V_THUMB_FILE, 1000));
	CHECK(fs_vino(FS_V_DISPLAY_DIR, 1000) != fs_vino(FS_V_DISPLAY_FILE, 1000));
}

static void test_transform_spec(void)
{
	struct media_recipe r = MEDIA_RECIPE_DEFAULT;
	char buf[256];

	media_transform_spec(&r, buf, sizeof(buf));
	CHECK_STREQ(buf, "{\"displayMaxSize\": 2048, \"thumbMaxSize\": 512, \"displayQuality\": 80,"
			 " \"thumbQuality\": 72, \"displayFormat\": \"webp\", \"thumbFormat\": \"webp\"}");
	CHECK(r.thumb_quality >= 70 && r.thumb_quality <= 75);	/* seed 000 */
	CHECK(r.display_quality >= 80 && r.display_quality <= 85);
	CHECK_EQ_INT(r.max_megapixels, 80);
	CHECK_STREQ(media_display_mime("webp"), "image/webp");
	CHECK_STREQ(media_display_mime("avif"), "image/avif");
}

int main(void)
{
	TEST(test_backoff_doubles_to_an_hour);
	TEST(test_vino_round_trip);
	TEST(test_vino_never_a_database_number);
	TEST(test_transform_spec);
	return unit_done();
}
