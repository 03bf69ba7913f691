/*
 * status.c - the client of a running mount, through its root folder's
 * xattrs (fs_xattr_stats, user.mvault.pins):
 *
 *   mvaultfs status [--json] MOUNTPOINT   health, uploads waiting, cache, store, pins
 *   mvaultfs sync MOUNTPOINT [--timeout SECS]   wait until every closed file is uploaded
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "fs/fs.h"

/* The mount's numbers (fs_xattr_stats), read from its root folder. */
struct mount_stats {
	unsigned long long staged_files, staged_bytes, set_aside, uploaded_files, uploaded_bytes;
	unsigned long long cache_bytes, cache_blocks, cache_max, hits, misses, store_gets, store_puts;
	unsigned long long db_down_secs, db_waiting, store_failing, record_waiting;
	double upload_rate;
};

static int read_stats(const char *mnt, struct mount_stats *st, char *text, size_t len)
{
	static const struct { const char *name; size_t off; } fields[] = {
#define F(n) { #n, offsetof(struct mount_stats, n) }
		F(staged_files), F(staged_bytes), F(set_aside), F(uploaded_files), F(uploaded_bytes),
		F(cache_bytes), F(cache_blocks), F(cache_max), F(hits), F(misses), F(store_gets), F(store_puts),
		F(db_down_secs), F(db_waiting), F(store_failing), F(record_waiting),
#undef F
	};
	ssize_t n = getxattr(mnt, FS_XATTR_STATS, text, len - 1);
	char *line, *save;

	if (n < 0) {
		fprintf(stderr, "mvaultfs: '%s' is not an mvaultfs mount (%s)\n", mnt, strerror(errno));
		return -1;
	}
	text[n] = '\0';
	memset(st, 0, sizeof(*st));
	char *copy = strdup(text);

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		double v;

		if (sscanf(line, "%63s %lf", name, &v) != 2)
			continue;
		if (strcmp(name, "upload_rate") == 0)
			st->upload_rate = v;
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (strcmp(name, fields[i].name) == 0)
				*(unsigned long long *)((char *)st + fields[i].off) = (unsigned long long)v;
	}
	free(copy);
	return 0;
}

/* Which side is down, and what waits for it, as one phrase into BUF; ""
 * when neither is known to be.  The database counts as down while the
 * daemon fails to reach it or an upload waits to be recorded in it; the
 * store while an upload is refused by it. */
static const char *down_sides(const struct mount_stats *st, char *buf, size_t len)
{
	int db = st->db_down_secs > 0 || st->record_waiting > 0, store = st->store_failing > 0;
	char what[160] = "";

	if (db)
		snprintf(what, sizeof(what), "%llu operation(s) wait for the database%s", st->db_waiting,
			 st->record_waiting ? ", upload records retry" : "");
	if (store)
		snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%llu upload(s) wait for the store",
			 db ? "; " : "", st->store_failing);
	snprintf(buf, len, "%s%s%s", db && store ? "the database and the store are unreachable"
				    : db ? "the database is unreachable" : store ? "the store is unreachable" : "",
		 *what ? ": " : "", what);
	return buf;
}

/* The one MOUNTPOINT of `status` and `sync`, with --json (when JSON is
 * not NULL) and --timeout SECS (when TIMEOUT is not NULL); NULL when the
 * arguments are not that. */
static const char *mountpoint_arg(int argc, char **argv, int *json, double *timeout)
{
	const char *mnt = NULL;

	for (int i = 1; i < argc; i++) {
		if (json && strcmp(argv[i], "--json") == 0)
			*json = 1;
		else if (timeout && strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			*timeout = atof(argv[++i]);
		else if (mnt || argv[i][0] == '-')
			return NULL;
		else
			mnt = argv[i];
	}
	return mnt;
}

/* S as a JSON string (quotes, backslashes and control characters escaped). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* One line of user.mvault.pins: copies for pins to BACKEND in progress,
 * the bytes they have left, failed ones, and the bytes copied in the last
 * RECENT_SECS (up to 10 minutes: the pace of the ETA). */
struct pin_line {
	const char *backend;
	unsigned long long copying, bytes, failed, recent, secs;
};

/* The copies for pins in progress, per backend (the root's
 * user.mvault.pins, from the database): "BACKEND COPYING BYTES FAILED
 * RECENT_BYTES RECENT_SECS" lines, handed one by one to FN; -errno when the
 * mount does not say. */
static int each_pin(const char *mnt, void (*fn)(void *arg, const struct pin_line *p), void *arg)
{
	char text[1024], *line, *save = NULL;
	ssize_t n = getxattr(mnt, FS_XATTR_PINS, text, sizeof(text) - 1);

	if (n < 0)
		return -errno;
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char backend[64];
		struct pin_line p = { .backend = backend };

		if (sscanf(line, "%63s %llu %llu %llu %llu %llu", backend, &p.copying, &p.bytes, &p.failed, &p.recent,
			   &p.secs) >= 4)
			fn(arg, &p);
	}
	return 0;
}

static void pin_text(void *arg, const struct pin_line *p)
{
	char left[32], rate[32];

	progress_bytes((double)p->bytes, left, sizeof(left));
	printf("  pins      %s: %llu cop%s in progress, %s left", p->backend, p->copying, p->copying == 1 ? "y" : "ies",
	       left);
	if (p->copying && p->recent) {
		double pace = (double)p->recent / (double)(p->secs > 10 ? p->secs : 10), eta = (double)p->bytes / pace;

		progress_bytes(pace, rate, sizeof(rate));
		printf(" at %s/s, about %.0f %s to go", rate, eta >= 120 ? eta / 60 : eta, eta >= 120 ? "min" : "s");
	} else if (p->copying) {
		printf(" (no copy finished in the last 10 minutes: no ETA yet)");
	}
	if (p->failed)
		printf("; %llu failed (getfattr -n user.mvault.presence FILE says why)", p->failed);
	if (strcmp(p->backend, "icp-canister") == 0 || strcmp(p->backend, "icp") == 0)
		printf(" (its certificates are NOT BLS-verified)");
	printf("\n");
	++*(int *)arg;
}

static void pin_json(void *arg, const struct pin_line *p)
{
	printf("%s{\"backend\": ", (*(int *)arg)++ ? ", " : "");
	json_str(stdout, p->backend);
	printf(", \"copying\": %llu, \"bytes_left\": %llu, \"failed\": %llu, \"rate\": %.0f}", p->copying, p->bytes,
	       p->failed, p->copying && p->recent ? (double)p->recent / (double)(p->secs > 10 ? p->secs : 10) : 0.0);
}

/* `mvaultfs status --json`: the shape README.md documents ("mvaultfs
 * status"); fields are only ever added. */
static void status_json(const char *mnt, const struct mount_stats *st)
{
	int db = st->db_down_secs > 0 || st->record_waiting > 0, store = st->store_failing > 0;
	unsigned long long looked = st->hits + st->misses;

	printf("{\"mountpoint\": ");
	json_str(stdout, mnt);
	printf(", \"healthy\": %s, \"down\": [%s%s%s],\n", !db && !store && !st->set_aside ? "true" : "false",
	       db ? "\"database\"" : "", db && store ? ", " : "", store ? "\"store\"" : "");
	printf(" \"staged\": {\"files\": %llu, \"bytes\": %llu},\n", st->staged_files, st->staged_bytes);
	printf(" \"uploaded\": {\"files\": %llu, \"bytes\": %llu, \"rate\": %.0f},\n", st->uploaded_files,
	       st->uploaded_bytes, st->upload_rate);
	printf(" \"set_aside\": %llu,\n", st->set_aside);
	printf(" \"database\": {\"down_secs\": %llu, \"waiting\": %llu, \"records_waiting\": %llu},\n",
	       st->db_down_secs, st->db_waiting, st->record_waiting);
	printf(" \"cache\": {\"bytes\": %llu, \"blocks\": %llu, \"max\": %llu, \"hits\": %llu, \"misses\": %llu,"
	       " \"hit_rate\": %.4f},\n", st->cache_bytes, st->cache_blocks, st->cache_max, st->hits, st->misses,
	       looked ? (double)st->hits / (double)looked : 1.0);
	printf(" \"store\": {\"gets\": %llu, \"puts\": %llu, \"failing\": %llu},\n", st->store_gets,
	       st->store_puts, st->store_failing);
	if (st->db_down_secs > 0) {	/* not waited for: see status_text */
		printf(" \"pins\": null}\n");
		return;
	}
	printf(" \"pins\": [");
	each_pin(mnt, pin_json, &(int){ 0 });
	printf("]}\n");
}

/* `mvaultfs status`: one line that says whether all is well, then a line
 * per part, each a sentence. */
static void status_text(const char *mnt, const struct mount_stats *st, const char *text)
{
	char a[32], b[32], r[32], eta[32], down[256];
	int pins = 0, rc;

	if (*down_sides(st, down, sizeof(down)))
		printf("mvaultfs at %s: %s\n", mnt, down);
	else if (st->set_aside)
		printf("mvaultfs at %s: %llu staged file(s) failed their check and were set aside (see the log)\n",
		       mnt, st->set_aside);
	else
		printf("mvaultfs at %s: healthy\n", mnt);
	progress_bytes((double)st->staged_bytes, a, sizeof(a));
	progress_bytes(st->upload_rate, r, sizeof(r));
	progress_clock(st->upload_rate > 0 ? (double)st->staged_bytes / st->upload_rate : -1, eta, sizeof(eta));
	if (st->staged_files)
		printf("  waiting   %llu file(s), %s, to upload at %s/s (ETA %s)\n", st->staged_files, a, r, eta);
	else
		printf("  waiting   nothing: every closed file is in the store\n");
	progress_bytes((double)st->uploaded_bytes, a, sizeof(a));
	printf("  uploaded  %llu file(s), %s since mount\n", st->uploaded_files, a);
	progress_bytes((double)st->cache_bytes, a, sizeof(a));
	progress_bytes((double)st->cache_max, b, sizeof(b));
	printf("  cache     %s of %s (%llu block(s)), hit rate %.1f%% (%llu hits, %llu misses)\n", a, b,
	       st->cache_blocks, st->hits + st->misses ? 100.0 * (double)st->hits / (double)(st->hits + st->misses)
							: 100.0, st->hits, st->misses);
	printf("  store     %llu GET(s), %llu PUT(s) since mount\n", st->store_gets, st->store_puts);
	if (strstr(text, "\nstore icp-canister\n"))
		printf("  store     an ICP canister: its certificates are NOT BLS-verified (no BLS12-381\n"
		       "            library in Debian): the replica or boundary node is trusted (see the README)\n");
	/* the pins are read from the database: not while it is away (the read
	 * would wait for it, db_timeout) */
	if (st->db_down_secs > 0)
		printf("  pins      unknown while the database is unreachable\n");
	else if ((rc = each_pin(mnt, pin_text, &pins)) != 0)
		printf("  pins      unknown (%s)\n", strerror(-rc));
	else if (!pins)
		printf("  pins      no copies in progress\n");
}

int cmd_status(int argc, char **argv)
{
	struct mount_stats st;
	char text[2048];
	const char *mnt = NULL;
	int json = 0;

	if (!(mnt = mountpoint_arg(argc, argv, &json, NULL))) {
		fprintf(stderr, "usage: mvaultfs status [--json] MOUNTPOINT\n");
		return 1;
	}
	if (read_stats(mnt, &st, text, sizeof(text)) != 0)
		return 1;
	if (json)
		status_json(mnt, &st);
	else
		status_text(mnt, &st, text);
	return 0;
}

/* Names what was set aside: each journal entry there says which inode and
 * which content; the file beside it holds the bytes. */
static void list_aside(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "    in %s\n", dir);
		return;
	}
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".journal"))
			fprintf(stderr, "    %s/%.*s\n", dir, (int)(strlen(de->d_name) - 8), de->d_name);
	closedir(d);
}

int cmd_sync(int argc, char **argv)
{
	struct mount_stats st;
	struct progress p;
	char text[2048], a[32], r[32], eta[32];
	unsigned long long first_files = 0, first_bytes = 0;
	double timeout = 0;
	const char *mnt = NULL;

	if (!(mnt = mountpoint_arg(argc, argv, NULL, &timeout))) {
		fprintf(stderr, "usage: mvaultfs sync MOUNTPOINT [--timeout SECS]\n");
		return 1;
	}
	progress_init(&p, stderr);
	for (int round = 0;; round++) {
		if (read_stats(mnt, &st, text, sizeof(text)) != 0)
			return 1;
		if (round == 0) {
			first_files = st.uploaded_files;
			first_bytes = st.uploaded_bytes;
		}
		if (st.set_aside) {
			char dir[4096];
			ssize_t n = getxattr(mnt, FS_XATTR_ASIDE, dir, sizeof(dir) - 1);

			progress_say(&p, "mvaultfs: %llu staged file(s) failed their hash check and were set aside,"
				     " not uploaded (see the log):", st.set_aside);
			if (n > 0) {
				dir[n] = '\0';
				list_aside(dir);
			}
			return 1;
		}
		if (st.staged_files == 0) {
			progress_clear(&p);
			progress_bytes((double)(st.uploaded_bytes - first_bytes), a, sizeof(a));
			if (round)
				fprintf(stderr, "sync: every closed file is in the store (%llu file(s), %s uploaded"
					" in %.1f s)\n", st.uploaded_files - first_files, a, progress_elapsed(&p));
			else if (p.tty)
				fprintf(stderr, "sync: every closed file is in the store\n");
			return 0;
		}
		if (timeout > 0 && progress_elapsed(&p) > timeout) {
			char down[256];

			if (*down_sides(&st, down, sizeof(down)))
				progress_say(&p, "mvaultfs: sync gave up after %.0f s: %llu file(s) still waiting"
					     " (%s; see the log)", timeout, st.staged_files, down);
			else
				progress_say(&p, "mvaultfs: sync gave up after %.0f s: %llu file(s) still waiting"
					     " (is the store reachable? see the log)", timeout, st.staged_files);
			return 1;
		}
		progress_bytes((double)st.staged_bytes, a, sizeof(a));
		progress_bytes(st.upload_rate, r, sizeof(r));
		progress_clock(st.upload_rate > 0 ? (double)st.staged_bytes / st.upload_rate : -1, eta, sizeof(eta));
		progress_show(&p, 0, "sync: %llu file(s) uploaded, %llu waiting (%s), %s/s, ETA %s",
			      st.uploaded_files - first_files, st.staged_files, a, r, eta);
		usleep(250000);
	}
}
