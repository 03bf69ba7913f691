/*
 * test_conninfo.c - passwords found and hidden in connection strings, in
 * both of libpq's forms (meta_conninfo.c).
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "meta/meta_conninfo.h"

static void check_scrub(const char *in, const char *want)
{
	char *s = strdup(in);

	meta_conninfo_scrub(s, strlen(s));
	CHECK_STREQ(s, want);
	free(s);
}

static void test_scrub_uri(void)
{
	check_scrub("postgresql://u:secret@host/db", "postgresql://u:******@host/db");
	check_scrub("postgres://u:p%40ss@h:5432/db", "postgres://u:******@h:5432/db");
	check_scrub("postgresql://u:p?w@h/db?sslmode=disable", "postgresql://u:***@h/db?sslmode=disable");
	check_scrub("postgresql://h/db?sslmode=disable&password=xy&user=u",
		    "postgresql://h/db?sslmode=disable&password=**&user=u");
	check_scrub("postgresql://h/db?pass%77ord=xy", "postgresql://h/db?pass%77ord=**");
	check_scrub("postgresql://u@h/db", "postgresql://u@h/db");
	check_scrub("postgresql://h:5432/db", "postgresql://h:5432/db");
}

static void test_scrub_keyword(void)
{
	check_scrub("host=h password=secret dbname=d", "host=h password=****** dbname=d");
	check_scrub("host=h password = 'se cr\\'et' dbname=d", "host=h password = '*********' dbname=d");
	check_scrub("password=a\\ b", "password=****");
	check_scrub("host=h user=password", "host=h user=password");
	check_scrub("host=h dbname=d", "host=h dbname=d");
}

static void test_scrub_slice(void)
{
	char s[] = "db=host=h password=pw,store=/x";

	/* only the slice is touched, up to the comma */
	meta_conninfo_scrub(s + 3, 18);
	CHECK_STREQ(s, "db=host=h password=**,store=/x");
}

static void test_redact(void)
{
	char msg[256];

	strcpy(msg, "invalid URI: \"postgresql://u:p%40ss@[::1/db\"");
	meta_conninfo_redact("postgresql://u:p%40ss@[::1/db", msg, sizeof(msg));
	CHECK_STREQ(msg, "invalid URI: \"postgresql://u:***@[::1/db\"");
	strcpy(msg, "said p@ss and p@ss");
	meta_conninfo_redact("postgresql://u:p%40ss@h/db", msg, sizeof(msg));
	CHECK_STREQ(msg, "said *** and ***");
	strcpy(msg, "nothing here");
	meta_conninfo_redact("host=h", msg, sizeof(msg));
	CHECK_STREQ(msg, "nothing here");
}

static void test_prepare(void)
{
	char err[256] = "", *s;

	s = meta_conninfo_prepare("postgresql://u:p%40ss@h:5/d", "/tmp/pass file", err, sizeof(err));
	CHECK(s && strstr(s, "password='p@ss'") && strstr(s, "passfile='/tmp/pass file'"));
	CHECK(s && strstr(s, "host='h'") && strstr(s, "port='5'") && strstr(s, "dbname='d'"));
	free(s);
	s = meta_conninfo_prepare("host=h", NULL, err, sizeof(err));
	CHECK_STREQ(s, "host=h");
	free(s);
	s = meta_conninfo_prepare("postgresql://u:s3cr3t@[::1/db", NULL, err, sizeof(err));
	CHECK(s == NULL);
	CHECK(strstr(err, "invalid connection string") != NULL);
	CHECK(strstr(err, "s3cr3t") == NULL);
	free(s);
}

int main(void)
{
	TEST(test_scrub_uri);
	TEST(test_scrub_keyword);
	TEST(test_scrub_slice);
	TEST(test_redact);
	TEST(test_prepare);
	return unit_done();
}
