/*
 * unit.h - the smallest test harness that does the job.
 *
 *   static void test_sum(void) { CHECK_EQ_INT(sum(2, 2), 4); }
 *   static void test_on(void *arg) { CHECK(thing_ok(arg)); }
 *   int main(void) { TEST(test_sum); TEST_WITH(test_on, obj); return unit_done(); }
 *
 * A failed CHECK prints file:line and the expression, and the test goes on
 * (so one run shows every failure).  A test fails when any CHECK in it
 * failed.  unit_done() prints "N passed, N failed" on its own line and
 * returns the exit status: 0 when every test passed.
 *
 * Header-only with static state: include it from exactly one .c file per
 * test program.
 */
#ifndef MVFS_UNIT_H
#define MVFS_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_run_count, unit_fail_count, unit_cur_fails;

#define CHECK(cond) do { \
	if (!(cond)) { \
		unit_cur_fails++; \
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
	} \
} while (0)

#define CHECK_EQ_INT(a, b) do { \
	long long unit_a_ = (long long)(a), unit_b_ = (long long)(b); \
	if (unit_a_ != unit_b_) { \
		unit_cur_fails++; \
		fprintf(stderr, "%s:%d: CHECK_EQ_INT(%s, %s) failed: %lld != %lld\n", \
			__FILE__, __LINE__, #a, #b, unit_a_, unit_b_); \
	} \
} while (0)

#define CHECK_STREQ(a, b) do { \
	const char *unit_a_ = (a), *unit_b_ = (b); \
	if (!unit_a_ || !unit_b_ || strcmp(unit_a_, unit_b_) != 0) { \
		unit_cur_fails++; \
		fprintf(stderr, "%s:%d: CHECK_STREQ(%s, %s) failed: \"%s\" != \"%s\"\n", \
			__FILE__, __LINE__, #a, #b, unit_a_ ? unit_a_ : "(null)", \
			unit_b_ ? unit_b_ : "(null)"); \
	} \
} while (0)

/* Runs FN(void), or FN(ARG) with any pointer, as one named test. */
#define TEST(fn)		do { unit_cur_fails = 0; fn(); unit_end(#fn); } while (0)
#define TEST_WITH(fn, arg)	do { unit_cur_fails = 0; fn(arg); unit_end(#fn); } while (0)

static inline void unit_end(const char *name)
{
	unit_run_count++;
	if (unit_cur_fails)
		unit_fail_count++;
	printf("%s %s\n", unit_cur_fails ? "FAIL" : "ok  ", name);
	fflush(stdout);
}

static inline int unit_done(void)
{
	printf("%d passed, %d failed\n", unit_run_count - unit_fail_count, unit_fail_count);
	fflush(stdout);
	return unit_fail_count ? 1 : 0;
}

#endif
