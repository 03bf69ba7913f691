/*
 * main.c - the mvaultfs command line.
 *
 *   mvaultfs [options] [SOURCE] MOUNTPOINT   mount (daemonises unless -f)
 *   mvaultfs db migrate [-o db=...]    bring a database to this schema
 *
 * Mounting checks everything that can be checked before the mount exists
 * (mount point, database, store), so a failure is one line on stderr and
 * exit status 1, with nothing mounted and nothing left running.
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cache/cache.h"
#include "fs/fs.h"
#include "fs/fs_thumbs.h"
#include "fs/fs_variants.h"
#include "fs/fs_xdgtrash.h"
#include "meta/meta.h"
#include "meta/meta_conninfo.h"
#include "meta/meta_embedded.h"
#include "meta/meta_s3conf.h"
#include "backend/s3_creds.h"
#include "util/sdnotify.h"
#include "util/secret.h"
#include "util/log.h"
#include "util/store_label.h"
#include "worker/worker.h"

struct mvfs_opts {
	char *db;
	char *db_passfile;
	char *store;
	char *data_dir;
	char *user;
	char *log;
	char *variants;		/* hidden (NULL) or visible */
	char *push;		/* on (NULL) or off: listen for other mounts' changes */
	char *thumbs;		/* desktop_thumbnails=on|off; NULL: the default */
	int thumbs_flag;	/* plain -o desktop_thumbnails */
	double attr_timeout;
	double entry_timeout;
	int pool;
	int trash_days;
	int version_min_age;	/* -1: not given */
	int db_timeout;
	int read_ahead_kb;	/* -1: not given */
};

#define OPT(t, p) { t, offsetof(struct mvfs_opts, p), 1 }
static const struct fuse_opt mvfs_opt_spec[] = {
	OPT("db=%s", db),
	OPT("db_passfile=%s", db_passfile),
	OPT("store=%s", store),
	OPT("data_dir=%s", data_dir),
	OPT("user=%s", user),
	OPT("log=%s", log),
	OPT("variants=%s", variants),
	OPT("push=%s", push),
	OPT("desktop_thumbnails=%s", thumbs),
	OPT("desktop_thumbnails", thumbs_flag),
	OPT("attr_timeout=%lf", attr_timeout),
	OPT("entry_timeout=%lf", entry_timeout),
	OPT("db_connections=%d", pool),
	OPT("trash_days=%d", trash_days),
	OPT("version_min_age=%d", version_min_age),
	OPT("db_timeout=%d", db_timeout),
	OPT("read_ahead_kb=%d", read_ahead_kb),
	FUSE_OPT_END
};

/* The cache's options: sizes take K, M, G, T suffixes (powers of 1024). */
struct cache_cli {
	char *size_max, *free_min, *block_size, *staging_max;
	int uploaders, fetchers, readahead;
	double io_timeout, fsync_timeout;
};

#define COPT(t, p) { t, offsetof(struct cache_cli, p), 1 }
static const struct fuse_opt cache_opt_spec[] = {
	COPT("cache_size=%s", size_max),
	COPT("cache_free_min=%s", free_min),
	COPT("block_size=%s", block_size),
	COPT("staging_max=%s", staging_max),
	COPT("uploaders=%d", uploaders),
	COPT("fetchers=%d", fetchers),
	COPT("readahead=%d", readahead),
	COPT("io_timeout=%lf", io_timeout),
	COPT("fsync_timeout=%lf", fsync_timeout),
	FUSE_OPT_END
};

static void cache_usage(void)
{
	printf("cache options:\n"
	       "    -o cache_size=SIZE     block cache cap (default 10%% of its disk, at most 10G)\n"
	       "    -o cache_free_min=SIZE free space the cache leaves on its disk (default 5%%)\n"
	       "    -o block_size=SIZE     cache block size (default 1M)\n"
	       "    -o staging_max=SIZE    written bytes that may wait for upload; past it writes get\n"
	       "                           ENOSPC, but a bigger file passes when none wait\n"
	       "                           (default half the disk's free space at mount)\n"
	       "    -o uploaders=N         upload threads (default 4)\n"
	       "    -o fetchers=N          read-ahead threads (default as many as -o readahead)\n"
	       "    -o readahead=N         blocks read ahead of a sequential reader (default 8)\n"
	       "    -o io_timeout=SECS     a read of content not cached fails with EIO after (default 60)\n"
	       "    -o fsync_timeout=SECS  fsync(2) waits for the upload this long (default 300)\n"
	       "\n");
}

/* "1G" -> 1073741824; 0 with *OK 0 when it is not a size. */
static uint64_t parse_size(const char *s, int *ok)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	*ok = 1;
	if (!s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	switch (*end) {
	case 't': case 'T': shift += 10; /* fall through */
	case 'g': case 'G': shift += 10; /* fall through */
	case 'm': case 'M': shift += 10; /* fall through */
	case 'k': case 'K': shift += 10; end++; break;
	default: break;
	}
	if (errno || end == s || (*end && strcmp(end, "B") != 0 && strcmp(end, "iB") != 0)) {
		*ok = 0;
		return 0;
	}
	return (uint64_t)v << shift;
}

/* The cache's configuration from its options; -1 after a line on stderr. */
static int cache_config_from(const struct cache_cli *cli, struct cache_config *cfg)
{
	struct { const char *name, *text; uint64_t *out; } sizes[] = {
		{ "cache_size", cli->size_max, &cfg->size_max },
		{ "cache_free_min", cli->free_min, &cfg->free_min },
		{ "staging_max", cli->staging_max, &cfg->staging_max },
	};
	uint64_t bs;
	int ok;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		*sizes[i].out = parse_size(sizes[i].text, &ok);
		if (!ok) {
			fprintf(stderr, "mvaultfs: -o %s=%s: not a size (use e.g. 512M, 20G)\n", sizes[i].name,
				sizes[i].text);
			return -1;
		}
	}
	bs = parse_size(cli->block_size, &ok);
	if (!ok || (cli->block_size && (bs < 4096 || bs > (64 << 20)))) {
		fprintf(stderr, "mvaultfs: -o block_size=%s: give a size from 4K to 64M\n", cli->block_size);
		return -1;
	}
	cfg->block_size = (uint32_t)bs;
	cfg->uploaders = cli->uploaders;
	cfg->fetchers = cli->fetchers;
	cfg->readahead = cli->readahead;
	cfg->io_timeout = cli->io_timeout;
	return 0;
}

/* The S3 store's options: one table and one help text of their own. */
struct s3_cli {
	char *endpoint;
	char *region;
	char *keyfile;
	char *ca_file;
	int path_style;
	int unsigned_payload;
	unsigned part_mb;
	unsigned threshold_mb;
	int concurrency;
	int retries;
	int timeout;
};

#define S3OPT(t, p, v) { t, offsetof(struct s3_cli, p), v }
static const struct fuse_opt s3_opt_spec[] = {
	S3OPT("s3_endpoint=%s", endpoint, 1),
	S3OPT("s3_region=%s", region, 1),
	S3OPT("keyfile=%s", keyfile, 1),
	S3OPT("s3_path_style", path_style, 1),
	S3OPT("s3_virtual_host", path_style, -1),
	S3OPT("s3_unsigned_payload", unsigned_payload, 1),
	S3OPT("s3_signed_payload", unsigned_payload, -1),
	S3OPT("s3_ca_file=%s", ca_file, 1),
	S3OPT("s3_part_size=%u", part_mb, 1),
	S3OPT("s3_multipart_threshold=%u", threshold_mb, 1),
	S3OPT("s3_concurrency=%d", concurrency, 1),
	S3OPT("s3_retries=%d", retries, 1),
	S3OPT("s3_timeout=%d", timeout, 1),
	FUSE_OPT_END
};

static void s3_usage(void)
{
	printf("S3 store options (with -o store=s3://BUCKET[/PREFIX]):\n"
	       "    -o s3_endpoint=URL     http(s)://host[:port] (default: AWS in the region)\n"
	       "    -o s3_region=NAME      region to sign for (default us-east-1)\n"
	       "    -o s3_path_style       https://host/BUCKET/key instead of https://BUCKET.host/key\n"
	       "    -o s3_ca_file=FILE     PEM file of the CAs to trust for an https endpoint, instead of\n"
	       "                           the system's (default: $AWS_CA_BUNDLE when set; this wins)\n"
	       "    -o s3_unsigned_payload send UNSIGNED-PAYLOAD instead of the body's SHA-256\n"
	       "                           (the default over https, where TLS checks the bytes)\n"
	       "    -o s3_signed_payload   sign each body's SHA-256 over https too (the default over http)\n"
	       "    -o s3_part_size=MIB    multipart part size (default 16)\n"
	       "    -o s3_multipart_threshold=MIB  larger files go multipart (default: the part size)\n"
	       "    -o s3_concurrency=N    parts sent in parallel per file (default 4)\n"
	       "    -o s3_retries=N        attempts per request (default 8; backoff with jitter)\n"
	       "    -o s3_timeout=SECS     a transfer may stall this long (default 30)\n"
	       "    -o keyfile=FILE        key that decrypts credentials kept in the database\n"
	       "                           (default DATA/s3.key, made with mode 0600 when missing)\n"
	       "    Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else\n"
	       "    ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), else the user's\n"
	       "    row of s3_configurations, whose keys are AES-256-GCM encrypted with the keyfile.\n"
	       "\n");
}

/* The Internet Computer store's options (issue 13). */
struct icp_cli {
	char *identity;
	char *host;
};

#define ICPOPT(t, p) { t, offsetof(struct icp_cli, p), 1 }
static const struct fuse_opt icp_opt_spec[] = {
	ICPOPT("icp_identity=%s", identity),
	ICPOPT("icp_host=%s", host),
	FUSE_OPT_END
};

static void icp_usage(void)
{
	printf("Internet Computer store options (with -o store=icp://CANISTER_ID?host=URL):\n"
	       "    -o icp_identity=FILE   Ed25519 private key (PEM) to sign calls with; it must hold\n"
	       "                           the asset canister's Commit permission (see the README);\n"
	       "                           without one, calls are anonymous and the store read-only\n"
	       "    -o icp_host=URL        the replica or boundary node (overrides ?host=), e.g.\n"
	       "                           https://icp-api.io, or http://127.0.0.1:4943 for dfx start\n"
	       "    The canister is a stock asset canister (dfx's \"assets\" type).  Certificates\n"
	       "    are read but NOT BLS-verified: no BLS12-381 library is packaged in Debian.\n"
	       "\n");
}

/* The Vercel Blob store's options: one table and one help text of their own
 * (the rest are in the store URL, see be_vblob.h). */
struct vblob_cli {
	char *token_file;
};

static const struct fuse_opt vblob_opt_spec[] = {
	{ "vblob_token_file=%s", offsetof(struct vblob_cli, token_file), 1 },
	FUSE_OPT_END
};

static void vblob_usage(void)
{
	printf("Vercel Blob store options (with -o store=vblob://STORE_ID[/PREFIX][?access=public&...]):\n"
	       "    -o vblob_token_file=FILE  file holding the store's read-write token (default:\n"
	       "                           $BLOB_READ_WRITE_TOKEN; never give it in the options)\n"
	       "    The API is $VERCEL_BLOB_API_URL (default https://vercel.com/api/blob). In the URL:\n"
	       "    access=private|public (default private), part_size=8M, threshold=, concurrency=4,\n"
	       "    retries=8, timeout=30.\n"
	       "\n");
}

/* The background jobs' options (issue 6): one table, one help text. */
struct jobs_cli {
	char *workers;			/* NULL: the default (1 in a mount, 2 in `worker`) */
	char *job_timeout;		/* NULL: each job's own visibility timeout */
	char *display_format;
	int media_timeout, media_memory, media_threads;
	double interval;
};

#define JOPT(t, p) { t, offsetof(struct jobs_cli, p), 1 }
static const struct fuse_opt jobs_opt_spec[] = {
	JOPT("workers=%s", workers),
	JOPT("display_format=%s", display_format),
	JOPT("media_timeout=%d", media_timeout),
	JOPT("media_memory=%d", media_memory),
	JOPT("media_threads=%d", media_threads),
	JOPT("jobs_interval=%lf", interval),
	JOPT("job_timeout=%s", job_timeout),
	FUSE_OPT_END
};

static void jobs_usage(void)
{
	printf("background jobs (variants, deletion after the grace period, expiry):\n"
	       "    -o workers=N           job threads (default 1 in a mount, 2 for `worker`; 0: none)\n"
	       "    -o display_format=F    webp (default) or avif for .display/ variants\n"
	       "    -o media_timeout=SECS  time limit per image (default 120)\n"
	       "    -o media_memory=MB     memory limit of an image helper process (default 2048)\n"
	       "    -o media_threads=N     libvips threads per image helper (default: libvips')\n"
	       "    -o jobs_interval=SECS  how often to look for due work (default 5)\n"
	       "    -o job_timeout=SECS    a job whose worker gives no sign of life this long (it\n"
	       "                           died, or lost the database) goes to another worker\n"
	       "                           (default: the job's own visibility timeout, 300)\n"
	       "\n");
}

/* The worker configuration from the options; -1 after a line on stderr. */
static int jobs_config_from(const struct jobs_cli *cli, int default_threads, struct worker_config *cfg)
{
	static const struct media_recipe recipe = MEDIA_RECIPE_DEFAULT;
	char *end = NULL;

	memset(cfg, 0, sizeof(*cfg));
	cfg->threads = default_threads;
	if (cli->workers) {
		long n = strtol(cli->workers, &end, 10);

		if (!*cli->workers || *end || n < 0 || n > 64) {
			fprintf(stderr, "mvaultfs: -o workers=%s: give a number from 0 to 64\n", cli->workers);
			return -1;
		}
		cfg->threads = (int)n;
	}
	cfg->recipe = recipe;
	if (cli->display_format) {
		if (strcmp(cli->display_format, "webp") != 0 && strcmp(cli->display_format, "avif") != 0) {
			fprintf(stderr, "mvaultfs: -o display_format=%s: give webp or avif\n", cli->display_format);
			return -1;
		}
		cfg->recipe.display_format = cli->display_format;
	}
	cfg->limits = (struct media_limits){ .timeout_s = cli->media_timeout, .memory_mb = cli->media_memory,
					     .threads = cli->media_threads };
	cfg->interval = cli->interval;
	if (cli->job_timeout) {
		long n = strtol(cli->job_timeout, &end, 10);

		if (!*cli->job_timeout || *end || n < 1 || n > 86400) {
			fprintf(stderr, "mvaultfs: -o job_timeout=%s: give seconds from 1 to 86400\n", cli->job_timeout);
			return -1;
		}
		cfg->job_timeout = (int)n;
	}
	return 0;
}

/* Stores that pins copy to (-o pin_store=NAME=URL, repeated): NAME is a
 * backend's name (icp, vblob, s3, local, or seed 001's label), which
 * user.mvault.pin and the storage edges use; URL is any store the mount
 * can open (a folder, s3://...).  One table, one help text. */
#define PIN_STORES_MAX 4
struct pin_cli {
	int n;
	char *name[PIN_STORES_MAX];
	char *url[PIN_STORES_MAX];
	const char *labels[PIN_STORES_MAX];
	struct worker_store stores[PIN_STORES_MAX];
};

enum { KEY_PIN_STORE = 1 };
static const struct fuse_opt pin_opt_spec[] = {
	FUSE_OPT_KEY("pin_store=", KEY_PIN_STORE),
	FUSE_OPT_END
};

static int pin_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct pin_cli *p = data;
	const char *eq;

	(void)outargs;
	if (key != KEY_PIN_STORE)
		return 1;
	arg += strlen("pin_store=");
	eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1]) {
		fprintf(stderr, "mvaultfs: -o pin_store=%s: give NAME=URL (e.g. pin_store=icp=/srv/forever)\n", arg);
		return -1;
	}
	if (p->n == PIN_STORES_MAX) {
		fprintf(stderr, "mvaultfs: -o pin_store: at most %d stores\n", PIN_STORES_MAX);
		return -1;
	}
	p->name[p->n] = strndup(arg, (size_t)(eq - arg));
	p->url[p->n] = strdup(eq + 1);
	if (!p->name[p->n] || !p->url[p->n])
		return -1;
	p->n++;
	return 0;
}

static void pin_usage(void)
{
	printf("store forever (pins):\n"
	       "    -o pin_store=NAME=URL  a store that `setfattr -n user.mvault.pin -v NAME` copies to\n"
	       "                           (repeat for more); NAME is icp, vblob, s3 or local (seed\n"
	       "                           001's backend names), URL any store -o store= takes;\n"
	       "                           give it to `mvaultfs worker` too where that runs the jobs\n"
	       "    getfattr -n user.mvault.presence FILE|GALLERY   where it is, per backend; `mvaultfs\n"
	       "                           status` shows copies in progress\n"
	       "\n");
}

/* Opens the pin stores of P beside the primary store PRIMARY; 0, or -1
 * after a line on stderr. */
static int pin_stores_open(struct pin_cli *p, const char *primary, const struct backend_config *cfg)
{
	for (int i = 0; i < p->n; i++) {
		const char *label = store_label(p->name[i]);

		if (!label || strcmp(label, "neon-db") == 0) {
			fprintf(stderr, "mvaultfs: -o pin_store=%s=...: give the name of a store: icp, vblob, s3 or local\n",
				p->name[i]);
			return -1;
		}
		if (strcmp(label, store_label_of_url(primary)) == 0) {
			fprintf(stderr, "mvaultfs: -o pin_store=%s=...: '%s' names the primary store's kind already;"
				" a pin store is another kind\n", p->name[i], label);
			return -1;
		}
		for (int k = 0; k < i; k++)
			if (strcmp(p->labels[k], label) == 0) {
				fprintf(stderr, "mvaultfs: -o pin_store=%s=...: given twice\n", p->name[i]);
				return -1;
			}
		p->labels[i] = label;
		p->stores[i].label = label;
		p->stores[i].backend = backend_open(p->url[i], cfg);
		if (!p->stores[i].backend) {
			fprintf(stderr, "mvaultfs: cannot open the pin store '%s' (%s): %s\n", p->url[i], p->name[i],
				strerror(errno));
			return -1;
		}
		log_info("pin store '%s' (%s): %s", p->name[i], label, p->url[i]);
	}
	return 0;
}

static void pin_stores_release(struct pin_cli *p)
{
	for (int i = 0; i < p->n; i++) {
		backend_free(p->stores[i].backend);
		free(p->name[i]);
		free(p->url[i]);
	}
	memset(p, 0, sizeof(*p));
}

static void usage(const char *prog)
{
	printf("usage: %s [options] [SOURCE] MOUNTPOINT\n"
	       "       %s db migrate [-o db=CONNINFO]\n"
	       "       %s user add NAME [-o db=CONNINFO,role=ROLE,pgpass=FILE,no_password,worker]\n"
	       "                                             a login role for user NAME (as the owner);\n"
	       "                                             -o worker: role NAME for `mvaultfs worker`\n"
	       "       %s sync MOUNTPOINT [--timeout SECS]   wait until every closed file is uploaded\n"
	       "       %s status MOUNTPOINT                  staged files, uploads, cache, pins\n"
	       "       %s worker [-o db=CONNINFO,...]        run background jobs for every user, no mount\n"
	       "\n"
	       "Mounts a memories library: metadata in PostgreSQL, content in an object store.\n"
	       "With no database configured it runs a private PostgreSQL under the data folder\n"
	       "and keeps content in a local folder beside it (the embedded default).\n"
	       "SOURCE, when given (mount(8) passes an fstab line's first field), is a label\n"
	       "shown as the mount's source; options that are mount(8)'s own (_netdev, nofail,\n"
	       "noauto, user, users, defaults, x-*) are ignored. The mvaultfs(1) man page\n"
	       "has fstab and systemd examples.\n"
	       "\n"
	       "mvaultfs options:\n"
	       "    -o db=CONNINFO         PostgreSQL to use: postgres://user@host/db or key=value\n"
	       "                           (default: $MVAULT_DB, else the embedded default);\n"
	       "                           its password is hidden from ps once the options are read\n"
	       "    -o db_passfile=FILE    password file for the database, in ~/.pgpass format (mode\n"
	       "                           0600); without it libpq reads $PGPASSFILE, else ~/.pgpass\n"
	       "    -o store=DIR           folder that keeps content (default: DATA/store), or\n"
	       "                           s3://BUCKET[/PREFIX] or vblob://STORE_ID[/PREFIX]\n"
	       "    -o data_dir=DIR        embedded cluster, staging, log (default:\n"
	       "                           $XDG_DATA_HOME/mvaultfs or ~/.local/share/mvaultfs;\n"
	       "                           /var/lib/mvaultfs for root without XDG_DATA_HOME)\n"
	       "    -o user=NAME           whose library to show (default: the login name)\n"
	       "    -o log=FILE            log file (default: DATA/mvaultfs.log)\n"
	       "    -o attr_timeout=SECS   how long the kernel may cache attributes (default 1;\n"
	       "                           files in library/ and workspace/ 60, and their folders'\n"
	       "                           listings until changed, where every change reaches this\n"
	       "                           mount: push on, or the embedded default)\n"
	       "    -o entry_timeout=SECS  how long the kernel may cache names (default as above;\n"
	       "                           setting either one sets both for every file)\n"
	       "    -o db_connections=N    PostgreSQL connections kept open (default 8)\n"
	       "    -o db_timeout=SECS     how long an operation waits for an unreachable database\n"
	       "                           before it fails with EIO (default 60); also how long a\n"
	       "                           connection may go silent (libpq's tcp_user_timeout,\n"
	       "                           keepalives, connect_timeout, unless -o db= sets them)\n"
	       "    -o trash_days=N        how long removed files stay in .trash/ (default 30)\n"
	       "    -o version_min_age=SECS  a version replaced by a save is kept in .trash/ only when it\n"
	       "                           was current this long (default 300; 0 keeps every version)\n"
	       "    -o variants=hidden     folders do not list .display/ and .thumb/ (the default;\n"
	       "                           a path reaches them: ls library/.thumb/)\n"
	       "    -o variants=visible    folders list them (once a variant in them is ready)\n"
	       "    -o push=on|off         listen for changes of other mounts: they reach this\n"
	       "                           mount's kernel caches within ms, not after attr_timeout/\n"
	       "                           entry_timeout (default on with -o db=, off for the\n"
	       "                           embedded default, which no other mount can reach)\n"
	       "    -o desktop_thumbnails[=on|off]  write the desktop's thumbnails (~/.cache/\n"
	       "                           thumbnails/{normal,large}) of library/ and workspace/\n"
	       "                           files from their thumb variants, so file managers and\n"
	       "                           photo apps read no original (default on for the\n"
	       "                           embedded default, off with -o db=)\n"
	       "    -o read_ahead_kb=KIB   the kernel's readahead for this mount, set at mount in\n"
	       "                           /sys/class/bdi (root only; else it stays 128, with an\n"
	       "                           info line) (default 4096; 0: leave the kernel's)\n"
	       "    -V, --version          print the version\n"
	       "\n", prog, prog, prog, prog, prog, prog);
	cache_usage();
	jobs_usage();
	pin_usage();
	s3_usage();
	icp_usage();
	vblob_usage();
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* mkdir -p with MODE for the folders it makes. */
static int mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, mode) != 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

static char *default_data_dir(void)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char *out = NULL;

	if (xdg && *xdg) {
		if (asprintf(&out, "%s/mvaultfs", xdg) < 0)
			out = NULL;
	} else if (geteuid() == 0) {
		/* root's home is private and the embedded cluster runs as an
		 * unprivileged user, which must reach its folder */
		out = strdup("/var/lib/mvaultfs");
	} else if (home && *home) {
		if (asprintf(&out, "%s/.local/share/mvaultfs", home) < 0)
			out = NULL;
	}
	return out;
}

static char *default_user(void)
{
	struct passwd *pw = getpwuid(getuid());
	const char *u = getenv("USER");

	return strdup(pw ? pw->pw_name : u ? u : "mvaultfs");
}

/* Decodes the octal escapes of /proc/self/mountinfo in place. */
static void unescape_mountinfo(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*w++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static int is_mount_point(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192], mnt[4096];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			unescape_mountinfo(mnt);
			found = strcmp(mnt, path) == 0;
		}
	}
	fclose(f);
	return found;
}

/* One line on stderr and a non-zero return when MNT cannot take a mount. */
static int check_mountpoint(const char *mnt)
{
	char real[PATH_MAX];
	struct stat st;
	struct dirent *de;
	DIR *d;

	if (stat(mnt, &st) != 0) {
		if (errno == ENOTCONN)
			fprintf(stderr, "mvaultfs: cannot mount on '%s': it is already mounted, by a filesystem"
				" that is gone (run: fusermount3 -u %s)\n", mnt, mnt);
		else
			fprintf(stderr, "mvaultfs: cannot mount on '%s': %s\n", mnt,
				errno == ENOENT ? "no such folder" : strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s': not a folder\n", mnt);
		return -1;
	}
	if (realpath(mnt, real) && is_mount_point(real)) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s': it is already mounted\n", mnt);
		return -1;
	}
	d = opendir(mnt);
	if (!d) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s': %s\n", mnt, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			break;
	closedir(d);
	if (de) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s': the folder is not empty\n", mnt);
		return -1;
	}
	return 0;
}

/* Hides the password of each db= option in the -o list OPTS, in place.
 * Options end at a comma that no backslash escapes (libfuse's rule). */
static void scrub_db_options(char *opts)
{
	char *p = opts, *end;

	while (*p) {
		for (end = p; *end && *end != ','; end++)
			if (*end == '\\' && end[1])
				end++;
		if (strncmp(p, "db=", 3) == 0)
			meta_conninfo_scrub(p + 3, (size_t)(end - p - 3));
		p = *end ? end + 1 : end;
	}
}

/* Overwrites database passwords in our own argv strings, which ps and
 * /proc/PID/cmdline show to every local user.  Call after fuse_opt_parse:
 * it has copied every value it keeps. */
static void scrub_argv(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			scrub_db_options(argv[++i]);
		else if (strncmp(argv[i], "-o", 2) == 0)
			scrub_db_options(argv[i] + 2);
	}
}

/* Settles O->db after the options are parsed: $MVAULT_DB when no -o db=,
 * checked by libpq's parser, with -o db_passfile= added; then hides the
 * password in argv and in the environment (which only our user and root
 * can read, but children inherit).  0, or -1 after one line on stderr. */
static int db_options_settle(struct mvfs_opts *o, int argc, char **argv)
{
	char *env = getenv("MVAULT_DB"), err[512], *ready;

	if (!o->db && env && *env && !(o->db = strdup(env)))
		return -1;
	if (env)
		meta_conninfo_scrub(env, strlen(env));
	scrub_argv(argc, argv);
	if (o->db_passfile && (!o->db || !*o->db)) {
		fprintf(stderr, "mvaultfs: -o db_passfile= needs a database: -o db=CONNINFO or MVAULT_DB\n");
		return -1;
	}
	if (o->db_passfile && access(o->db_passfile, R_OK) != 0) {
		fprintf(stderr, "mvaultfs: cannot read -o db_passfile='%s': %s\n", o->db_passfile, strerror(errno));
		return -1;
	}
	if (!o->db)
		return 0;
	ready = meta_conninfo_prepare(o->db, o->db_passfile, err, sizeof(err));
	if (!ready) {
		fprintf(stderr, "mvaultfs: %s\n", err);
		return -1;
	}
	free(o->db);
	o->db = ready;
	return 0;
}

static int cmd_migrate(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mvfs_opts o = { 0 };
	char err[512] = "";
	const char *db;
	int rc;

	if (fuse_opt_parse(&args, &o, mvfs_opt_spec, NULL) != 0)
		return 1;
	rc = db_options_settle(&o, argc, argv);
	db = o.db;
	if (!rc && (!db || !*db)) {
		fprintf(stderr, "mvaultfs: db migrate needs -o db=CONNINFO or MVAULT_DB\n");
		rc = -1;
	}
	if (!rc) {
		rc = meta_migrate_only(db, err, sizeof(err));
		meta_conninfo_redact(db, err, sizeof(err));
		if (rc)
			fprintf(stderr, "mvaultfs: %s\n", err[0] ? err : strerror(-rc));
	}
	fuse_opt_free_args(&args);
	free(o.db);
	free(o.db_passfile);
	return rc ? 1 : 0;
}

/* `mvaultfs user add NAME`: a login role for user NAME (DECISIONS.md,
 * "Who a connection acts for"). */
struct user_opts {
	char *role;
	char *pgpass;
	int no_password;
	int worker;		/* NAME is a role for `mvaultfs worker`, not a user */
};

static const struct fuse_opt user_opt_spec[] = {
	{ "role=%s", offsetof(struct user_opts, role), 0 },
	{ "pgpass=%s", offsetof(struct user_opts, pgpass), 0 },
	{ "no_password", offsetof(struct user_opts, no_password), 1 },
	{ "worker", offsetof(struct user_opts, worker), 1 },
	FUSE_OPT_END
};

static int cmd_user(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mvfs_opts o = { 0 };
	struct user_opts u = { 0 };
	char err[512] = "", pw[SECRET_PASSWORD_LEN + 1], pgpass[1024], uri[512];
	const char *db, *name = NULL;
	int rc = 1, fd;

	if (fuse_opt_parse(&args, &o, mvfs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &u, user_opt_spec, NULL) != 0)
		goto out;
	if (args.argc != 3 || strcmp(args.argv[1], "add") != 0) {
		fprintf(stderr, "usage: mvaultfs user add NAME [-o db=CONNINFO,role=ROLE,pgpass=FILE,no_password,worker]\n");
		goto out;
	}
	name = args.argv[2];
	if (db_options_settle(&o, argc, argv) != 0)
		goto out;
	db = o.db;
	if (!db || !*db) {
		fprintf(stderr, "mvaultfs: user add needs -o db=CONNINFO or MVAULT_DB (as the database's owner role)\n");
		goto out;
	}
	if (!u.no_password && secret_password(pw) != 0) {
		fprintf(stderr, "mvaultfs: cannot make a random password\n");
		goto out;
	}
	if (meta_user_add(db, u.worker ? NULL : name, u.role ? u.role : name, u.no_password ? NULL : pw, pgpass,
			  sizeof(pgpass), uri, sizeof(uri), err, sizeof(err)) != 0) {
		meta_conninfo_redact(db, err, sizeof(err));
		fprintf(stderr, "mvaultfs: %s\n", err);
		goto out;
	}
	if (u.worker)
		printf("'%s' is a role for mvaultfs worker: -o db=%s\n", u.role ? u.role : name, uri);
	else
		printf("user '%s' logs in as database role '%s': -o db=%s\n", name, u.role ? u.role : name, uri);
	if (u.no_password) {
		rc = 0;
	} else if (u.pgpass) {
		fd = open(u.pgpass, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || dprintf(fd, "%s\n", pgpass) < 0 || fsync(fd) != 0) {
			fprintf(stderr, "mvaultfs: cannot write the password to '%s': %s (the role has it now;"
				" run this again to set a new one)\n", u.pgpass, strerror(errno));
		} else {
			printf("its password is in '%s' (a ~/.pgpass line: -o db_passfile=%s)\n", u.pgpass, u.pgpass);
			rc = 0;
		}
		if (fd >= 0)
			close(fd);
	} else {
		printf("its password, as a ~/.pgpass line (mode 0600):\n%s\n", pgpass);
		rc = 0;
	}
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(pgpass, sizeof(pgpass));
out:
	fuse_opt_free_args(&args);
	free(o.db);
	free(o.db_passfile);
	free(u.role);
	free(u.pgpass);
	return rc;
}

/* What mount(8) and mount.fuse3(8) hand a FUSE program for an fstab line
 * of type fuse.mvaultfs: "mvaultfs SOURCE MOUNTPOINT -o OPTS". SOURCE, the
 * line's first field, is a label: it becomes the mount's fsname (the
 * source column of /proc/mounts, findmnt and df). OPTS may hold options
 * that are fstab's and mount(8)'s own; libmount removes x-* and comment=,
 * mount.fuse3 removes _netdev, nofail, user, users, auto and noauto, and
 * this table drops the rest (and those again, for a direct call), so a
 * line written for mount(8) never fails on them. rw, ro, suid, dev, exec,
 * noatime and the like are libfuse's and reach the kernel. */
struct helper_cli {
	char *first;		/* the first positional argument */
	int positional;
};

static const struct fuse_opt helper_opt_spec[] = {
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("owner", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("group", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("comment=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

static int helper_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct helper_cli *h = data;

	if (key == FUSE_OPT_KEY_OPT)	/* x-systemd.*, x-gvfs-show: fstab's */
		return strncasecmp(arg, "x-", 2) == 0 ? 0 : 1;
	if (key == FUSE_OPT_KEY_NONOPT && ++h->positional == 1) {
		/* held back: SOURCE if a second follows, else the mount point */
		h->first = strdup(arg);
		return h->first ? 0 : -1;
	}
	return 1;
}

/* Removes mount(8)'s options from ARGS and takes SOURCE out of "SOURCE
 * MOUNTPOINT" into fsname= and subtype= options (later ones given by the
 * caller win). Returns 0, or -1 after a line on stderr. */
static int helper_args_settle(struct fuse_args *args)
{
	struct helper_cli h = { 0 };
	char *fsname = NULL, *opt = NULL;
	int rc = -1;

	if (fuse_opt_parse(args, &h, helper_opt_spec, helper_opt_proc) != 0)
		goto out;
	if (h.positional == 1) {
		rc = fuse_opt_add_arg(args, h.first);
		goto out;
	}
	rc = 0;
	if (h.positional < 2)
		goto out;
	rc = -1;
	/* with an fsname libfuse no longer names the type after the program:
	 * subtype keeps it fuse.mvaultfs, as the fstab line says */
	if (asprintf(&fsname, "fsname=%s", h.first) < 0 || fuse_opt_add_opt(&opt, "subtype=mvaultfs") != 0)
		goto out;
	/* a comma or backslash in SOURCE must not start another option */
	if (fuse_opt_add_opt_escaped(&opt, fsname) != 0 ||
	    fuse_opt_insert_arg(args, 1, "-o") != 0 || fuse_opt_insert_arg(args, 2, opt) != 0)
		goto out;
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "mvaultfs: cannot read the command line: out of memory\n");
	free(h.first);
	free(fsname);
	free(opt);
	return rc;
}

/* Everything a mount holds, released in reverse order by mount_release. */
struct mount {
	struct mvfs_opts o;
	struct fuse_cmdline_opts cmd;
	struct meta_embedded *pg;
	struct backend_config backend_cfg;
	struct backend *backend;
	struct cache *cache;
	struct meta *meta;
	struct mvfs fs;
	int fs_ready;
	struct fuse_session *se;
	int mounted, handlers;
	int user_given;		/* -o user= was given, not the login name */
	int for_nobody;		/* `mvaultfs worker` for every user: meta acts for nobody */
	struct s3_cli s3;
	struct vblob_cli vblob;
	struct s3_creds s3_creds;	/* whatever credentials backend_cfg points at */
	struct icp_cli icp;
	struct cache_cli cache_cli;
	int cache_started;
	struct jobs_cli jobs;
	struct pin_cli pins;
	struct worker *worker;
	struct sdnotify notify;	/* systemd's Type=notify, when it started us */
};

static void mount_release(struct mount *m)
{
	/* first: a daemon started right after the unmount waits for our cluster */
	meta_embedded_stopping(m->pg);
	/* it tells the session's kernel what changed: stopped before the
	 * unmount, freed after it (fs_push.c, "Ending") and before the session */
	fs_push_stop(m->fs.push);
	if (m->mounted)
		fuse_session_unmount(m->se);
	fs_push_free(m->fs.push);
	m->fs.push = NULL;
	if (m->handlers)
		fuse_remove_signal_handlers(m->se);
	if (m->se)
		fuse_session_destroy(m->se);
	meta_stop_waiting(m->meta);
	worker_stop(m->worker);
	fs_thumbs_stop(&m->fs);
	if (m->fs_ready)
		fs_release(&m->fs);
	/* uploads in flight record themselves in the database first */
	if (m->cache)
		cache_stop(m->cache);
	if (m->fs_ready)
		fs_free(&m->fs);
	meta_free(m->meta);
	cache_free(m->cache);
	backend_free(m->backend);
	pin_stores_release(&m->pins);
	meta_embedded_stop(m->pg);
	free(m->cmd.mountpoint);
	free(m->o.db);
	free(m->o.db_passfile);
	free(m->o.store);
	free(m->o.data_dir);
	free(m->o.user);
	free(m->o.log);
	free(m->o.variants);
	free(m->o.push);
	free(m->o.thumbs);
	free(m->s3.endpoint);
	free(m->s3.region);
	free(m->s3.keyfile);
	free(m->s3.ca_file);
	free(m->icp.identity);
	free(m->icp.host);
	free(m->vblob.token_file);
	s3_creds_release(&m->s3_creds);
	free(m->cache_cli.size_max);
	free(m->cache_cli.free_min);
	free(m->cache_cli.block_size);
	free(m->cache_cli.staging_max);
	free(m->jobs.workers);
	free(m->jobs.display_format);
	free(m->jobs.job_timeout);
}

/* Decrypts the user's S3 keys from s3_configurations into M->s3_creds;
 * region, endpoint and addressing come from the row unless given. */
static int s3_creds_from_db(struct mount *m, const char *bucket)
{
	unsigned char key[SECRET_KEY_LEN];
	struct meta_s3conf row;
	char *path = NULL;
	int rc = meta_s3conf_get(m->meta, bucket, &row);

	if (rc)
		return rc;
	if (m->s3.keyfile)
		path = strdup(m->s3.keyfile);
	else if (asprintf(&path, "%s/s3.key", m->o.data_dir) < 0)
		path = NULL;
	rc = path ? secret_key_load(path, 1, key) : -ENOMEM;
	if (rc) {
		fprintf(stderr, "mvaultfs: cannot read the key file '%s': %s%s\n", path ? path : "",
			strerror(-rc), rc == -EPERM ? " (others may read it: chmod 600)" : "");
	} else {
		m->s3_creds.access_key = secret_decrypt(key, row.access_key_enc);
		m->s3_creds.secret_key = secret_decrypt(key, row.secret_key_enc);
		if (!m->s3_creds.access_key || !m->s3_creds.secret_key) {
			fprintf(stderr, "mvaultfs: cannot decrypt the S3 keys of configuration '%s' with '%s':"
				" another key file encrypted them, or they are not encrypted\n", row.name, path);
			rc = -EBADMSG;
		}
		snprintf(m->s3_creds.source, sizeof(m->s3_creds.source), "s3_configurations '%.100s'", row.name);
	}
	OPENSSL_cleanse(key, sizeof(key));
	if (!rc && !m->s3.region && row.region[0])
		m->s3.region = strdup(row.region);
	if (!rc && !m->s3.endpoint && row.endpoint[0])
		m->s3.endpoint = strdup(row.endpoint);
	if (!rc && !m->s3.path_style && row.path_style)
		m->s3.path_style = 1;
	meta_s3conf_release(&row);
	free(path);
	return rc;
}

/* Fills M->backend_cfg for an s3:// store; 0, or -1 after a line on stderr. */
static int mount_s3_config(struct mount *m)
{
	struct backend_config *c = &m->backend_cfg;
	char bucket[128];
	int rc;

	if (strncasecmp(m->o.store, "s3://", 5) != 0)
		return 0;
	snprintf(bucket, sizeof(bucket), "%.*s", (int)strcspn(m->o.store + 5, "/?"), m->o.store + 5);
	rc = s3_creds_lookup(&m->s3_creds);
	if (rc == -ENOENT)
		rc = s3_creds_from_db(m, bucket);
	if (rc == -ENOENT) {
		fprintf(stderr, "mvaultfs: no S3 credentials for '%s': set AWS_ACCESS_KEY_ID and"
			" AWS_SECRET_ACCESS_KEY, write ~/.aws/credentials, or add a row to s3_configurations\n",
			bucket);
		return -1;
	}
	if (rc == -EINVAL)
		fprintf(stderr, "mvaultfs: the S3 credentials in %s lack a key or a secret\n", m->s3_creds.source);
	if (rc)
		return -1;
	log_info("s3: credentials for '%s' from %s", bucket, m->s3_creds.source);
	c->s3_access_key = m->s3_creds.access_key;
	c->s3_secret_key = m->s3_creds.secret_key;
	c->s3_session_token = m->s3_creds.session_token;
	c->s3_endpoint = m->s3.endpoint;
	c->s3_region = m->s3.region;
	c->s3_path_style = m->s3.path_style;
	c->s3_unsigned_payload = m->s3.unsigned_payload;
	c->s3_ca_file = m->s3.ca_file;
	c->s3_part_size = (uint64_t)m->s3.part_mb << 20;
	c->s3_multipart_threshold = (uint64_t)m->s3.threshold_mb << 20;
	c->s3_concurrency = m->s3.concurrency;
	c->s3_retries = m->s3.retries;
	c->s3_timeout = m->s3.timeout;
	return 0;
}

/* Opens database, store and cache; 0, or -1 after one line on stderr.
 * The database comes first: it is the likeliest to be missing, and stores
 * may keep their credentials in it. */
static int mount_open_engines(struct mount *m)
{
	char conninfo[512], err[512] = "", *path = NULL, role[64], unused[8], as_user[512];
	struct meta_config mc;
	const char *db = m->o.db;
	int rc;

	if (!db || !*db) {
		m->pg = meta_embedded_start(m->o.data_dir, conninfo, sizeof(conninfo), err, sizeof(err));
		if (!m->pg) {
			fprintf(stderr, "mvaultfs: %s\n", err);
			return -1;
		}
		/* The cluster's superuser makes the user a login role of its own
		 * (no password: the socket is the data folder's owner's only), and
		 * the mount logs in as that role, as on a shared database. */
		snprintf(role, sizeof(role), "mvfs_%.58s", m->o.user);
		if (meta_user_add(conninfo, m->o.user, role, NULL, unused, sizeof(unused), as_user, sizeof(as_user),
				  err, sizeof(err)) != 0) {
			fprintf(stderr, "mvaultfs: %s\n", err);
			return -1;
		}
		db = as_user;
	}
	mc = (struct meta_config){ .conninfo = db, .user_name = m->o.user, .user_given = m->user_given,
				.for_nobody = m->for_nobody,
				.pool_size = m->o.pool,
				.trash_days = m->o.trash_days, .db_timeout = m->o.db_timeout,
				.version_min_age = m->o.version_min_age < 0 ? 0 : m->o.version_min_age == 0 ? -1
						 : m->o.version_min_age };
	m->meta = meta_open(&mc, err, sizeof(err));
	if (!m->meta) {
		meta_conninfo_redact(db, err, sizeof(err));
		fprintf(stderr, "mvaultfs: %s\n", err);
		return -1;
	}
	if (!m->o.store && asprintf(&m->o.store, "%s/store", m->o.data_dir) < 0)
		return -1;
	if (mount_s3_config(m) != 0)
		return -1;
	m->backend_cfg.icp_identity = m->icp.identity;
	m->backend_cfg.icp_host = m->icp.host;
	m->backend_cfg.vblob_token_file = m->vblob.token_file;
	m->backend = backend_open(m->o.store, &m->backend_cfg);
	if (!m->backend) {
		fprintf(stderr, "mvaultfs: cannot open the store '%s': %s\n", m->o.store, strerror(errno));
		return -1;
	}
	if (pin_stores_open(&m->pins, m->o.store, &m->backend_cfg) != 0)
		return -1;
	if (asprintf(&path, "%s/cache", m->o.data_dir) < 0)
		return -1;
	{
		struct cache_config cc;

		if (cache_config_from(&m->cache_cli, &cc) != 0) {
			free(path);
			return -1;
		}
		cc.key_prefix = meta_key_prefix(m->meta);	/* the user's own object keys */
		m->cache = cache_open(path, m->backend, &cc);
	}
	rc = m->cache ? 0 : -errno;
	if (rc)
		fprintf(stderr, "mvaultfs: cannot open the cache folder '%s': %s\n", path, strerror(-rc));
	free(path);
	return rc ? -1 : 0;
}

/* The desktop's thumbnails (fs_thumbs.c): on by default for the embedded
 * default, a person's own library on their own desktop; with -o db= the
 * daemon often runs as a service (fstab, systemd) whose home is nobody's
 * desktop.  Without them the mount works as before: one log line. */
static void mount_start_thumbs(struct mount *m)
{
	char err[512];
	int on = m->o.thumbs ? strcmp(m->o.thumbs, "on") == 0 : m->o.thumbs_flag || m->pg;

	if (!on || fs_thumbs_start(&m->fs, m->cmd.mountpoint, err, sizeof(err)) == 0)
		return;
	if (m->o.thumbs || m->o.thumbs_flag)
		log_error("no desktop thumbnails (-o desktop_thumbnails): %s", err);
	else	/* a service without a home: nobody's desktop to write for */
		log_info("no desktop thumbnails: %s", err);
}

/* The mount's job threads, for its user; 0, or -1 after a log line. */
static int mount_start_worker(struct mount *m)
{
	struct worker_config wc;
	char err[512] = "";

	if (jobs_config_from(&m->jobs, 1, &wc) != 0)
		return -1;
	if (wc.threads == 0)
		return 0;
	wc.meta = m->meta;
	wc.cache = m->cache;
	wc.backend = m->backend;
	wc.pin_stores = m->pins.stores;
	wc.npin_stores = m->pins.n;
	wc.made = fs_thumbs_made;
	wc.made_arg = &m->fs;
	m->worker = worker_start(&wc, err, sizeof(err));
	if (!m->worker)
		log_error("cannot start the background jobs: %s", err);
	return m->worker ? 0 : -1;
}

/* The kernel's readahead for the mount (fs_readahead.c): INIT answered
 * here, then the bdi raised.  Where it cannot be (not root), one info line:
 * reads still work, in smaller requests. */
static void mount_readahead(struct mount *m)
{
	char err[512];
	unsigned kb = m->fs.cfg.read_ahead_kb;
	int rc = fs_session_init(m->se);

	if (rc) {
		log_warn("cannot answer the kernel's INIT before the session loop: %s", strerror(-rc));
		return;
	}
	if (kb == 0)
		return;
	if (fs_readahead_set(m->cmd.mountpoint, kb, err, sizeof(err)) == 0)
		log_info("kernel readahead of the mount: %u KiB (%s)", kb, err);
	else
		log_info("kernel readahead of the mount not raised to %u KiB (-o read_ahead_kb): %s", kb, err);
}

static int cmd_mount(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mount m = { .o = { .attr_timeout = -1, .entry_timeout = -1, .pool = 8, .version_min_age = -1,
				  .read_ahead_kb = -1 } };
	struct fuse_loop_config *loop;
	struct fuse_lowlevel_ops ops;
	struct fs_config fc;
	char *logpath = NULL;
	int rc = 1;

	sdnotify_init(&m.notify);
	if (helper_args_settle(&args) != 0 ||
	    fuse_opt_parse(&args, &m.o, mvfs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.s3, s3_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.icp, icp_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.vblob, vblob_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.cache_cli, cache_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.jobs, jobs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.pins, pin_opt_spec, pin_opt_proc) != 0 ||
	    fuse_parse_cmdline(&args, &m.cmd) != 0)
		goto out;
	if (m.cmd.show_help) {
		usage(argv[0]);
		rc = 0;
		goto out;
	}
	if (m.cmd.show_version) {
		printf("mvaultfs %s (libfuse %s)\n", MVFS_VERSION, fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (!m.cmd.mountpoint) {
		fprintf(stderr, "usage: %s [options] [SOURCE] MOUNTPOINT (see --help)\n", argv[0]);
		goto out;
	}
	if (db_options_settle(&m.o, argc, argv) != 0)
		goto out;
	if (m.o.variants && strcmp(m.o.variants, "hidden") != 0 && strcmp(m.o.variants, "visible") != 0) {
		fprintf(stderr, "mvaultfs: -o variants=%s: give hidden or visible\n", m.o.variants);
		goto out;
	}
	if (m.o.push && strcmp(m.o.push, "on") != 0 && strcmp(m.o.push, "off") != 0) {
		fprintf(stderr, "mvaultfs: -o push=%s: give on or off\n", m.o.push);
		goto out;
	}
	if (m.o.thumbs && strcmp(m.o.thumbs, "on") != 0 && strcmp(m.o.thumbs, "off") != 0) {
		fprintf(stderr, "mvaultfs: -o desktop_thumbnails=%s: give on or off\n", m.o.thumbs);
		goto out;
	}
	if (m.o.read_ahead_kb < -1 || m.o.read_ahead_kb > (1 << 20)) {
		fprintf(stderr, "mvaultfs: -o read_ahead_kb=%d: give KiB from 0 (the kernel's default) to 1048576\n",
			m.o.read_ahead_kb);
		goto out;
	}
	if (check_mountpoint(m.cmd.mountpoint) != 0)
		goto out;
	if (!m.o.data_dir && !(m.o.data_dir = default_data_dir())) {
		fprintf(stderr, "mvaultfs: no data folder: set XDG_DATA_HOME or HOME, or give -o data_dir=DIR\n");
		goto out;
	}
	m.user_given = m.o.user != NULL;
	if (!m.o.user)
		m.o.user = default_user();
	/* As root the folder is 0711: the embedded cluster's user must pass. */
	if (mkdirs(m.o.data_dir, geteuid() == 0 ? 0711 : 0700) != 0) {
		fprintf(stderr, "mvaultfs: cannot make the data folder '%s': %s\n", m.o.data_dir, strerror(errno));
		goto out;
	}
	if (!m.o.log && asprintf(&m.o.log, "%s/mvaultfs.log", m.o.data_dir) < 0)
		goto out;
	if (log_open(m.o.log) != 0)
		fprintf(stderr, "mvaultfs: warning: cannot write the log '%s': %s\n", m.o.log, strerror(errno));
	if (m.cmd.debug)
		log_set_level(LOG_LVL_DEBUG);
	if (mount_open_engines(&m) != 0)
		goto out;
	/* set by neither: files of the tree are kept long where every change
	 * reaches the kernel (fs_ns_view_entry) */
	fc = (struct fs_config){ .attr_timeout = m.o.attr_timeout < 0 ? 1.0 : m.o.attr_timeout,
				 .entry_timeout = m.o.entry_timeout < 0 ? 1.0 : m.o.entry_timeout,
				 .tree_timeout = m.o.attr_timeout < 0 && m.o.entry_timeout < 0 ? FS_TREE_TIMEOUT : 0,
				 .fsync_timeout = m.cache_cli.fsync_timeout > 0 ? m.cache_cli.fsync_timeout : 300,
				 .variants_visible = m.o.variants && strcmp(m.o.variants, "visible") == 0,
				 .read_ahead_kb = m.o.read_ahead_kb < 0 ? FS_READ_AHEAD_KB : (unsigned)m.o.read_ahead_kb,
				 .store_label = store_label_of_url(m.o.store),
				 .pin_labels = m.pins.labels, .npin_labels = m.pins.n };
	if (fs_init(&m.fs, m.meta, m.cache, &fc) != 0)
		goto out;
	m.fs_ready = 1;
	fs_variants_ops(&ops);
	if (fs_xdgtrash_ops(&m.fs, &ops) != 0)
		goto out;
	m.se = fuse_session_new(&args, &ops, sizeof(ops), &m.fs);
	m.fs.se = m.se;
	if (!m.se)
		goto out;
	if (fuse_set_signal_handlers(m.se) != 0)
		goto out;
	m.handlers = 1;
	if (fuse_session_mount(m.se, m.cmd.mountpoint) != 0) {
		fprintf(stderr, "mvaultfs: cannot mount on '%s' (see the line above)\n", m.cmd.mountpoint);
		goto out;
	}
	m.mounted = 1;
	log_info("mounted '%s' for user '%s', store '%s'", m.cmd.mountpoint, meta_user_name(m.meta), m.o.store);
	if (!m.cmd.foreground)
		log_set_stderr(0);
	fuse_daemonize(m.cmd.foreground);
	/* Threads only now: a daemon's fork keeps none. */
	if (cache_start(m.cache, fs_file_uploaded, &m.fs) != 0) {
		log_error("cannot start the cache's upload and fetch threads");
		goto out;
	}
	if (fs_record_start(&m.fs) != 0)
		log_warn("no recorder thread: closes record their versions themselves");
	mount_start_thumbs(&m);
	if (mount_start_worker(&m) != 0)
		goto out;
	/* The embedded cluster has no other client (one daemon, a private
	 * socket): nothing to listen for unless asked. */
	if (m.o.push ? strcmp(m.o.push, "off") != 0 : !m.pg) {
		char err[512];

		/* without it the mount is still right, only slower to see others' changes */
		if (!(m.fs.push = fs_push_start(&m.fs, err, sizeof(err))))
			log_error("changes of other mounts are seen only after the kernel's timeouts"
				  " (attr_timeout, entry_timeout): cannot listen for them: %s", err);
	} else if (m.o.push) {
		log_info("-o push=off: changes of other mounts are seen after the kernel's timeouts");
	}
	/* where no other writer can go unseen, a folder made here has only
	 * the names made here (fs_local.c, "folders whose every name is
	 * known here") */
	if ((m.pg || m.fs.push) && fs_known_start(&m.fs) != 0)
		log_warn("every lookup of a new name asks the database: out of memory");
	if (meta_embedded_watch(m.pg) != 0)
		log_error("cannot start the watchdog of the embedded PostgreSQL: it will not be restarted if it dies");
	mount_readahead(&m);
	loop = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(loop, m.cmd.clone_fd);
	if (m.cmd.max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(loop, m.cmd.max_idle_threads);
	fuse_loop_cfg_set_max_threads(loop, m.cmd.max_threads);
	if (sdnotify_send(&m.notify, "READY=1") != 0)
		log_warn("cannot tell systemd the mount is ready: %s", strerror(errno));
	rc = m.cmd.singlethread ? fuse_session_loop(m.se) : fuse_session_loop_mt(m.se, loop);
	fuse_loop_cfg_destroy(loop);
	sdnotify_send(&m.notify, "STOPPING=1");
	log_info("unmounting '%s'", m.cmd.mountpoint);
	rc = rc < 0 ? 1 : 0;
out:
	mount_release(&m);
	fuse_opt_free_args(&args);
	free(logpath);
	return rc;
}

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

static void human(double bytes, char *buf, size_t len)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
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

/* The copies for pins in progress, per backend (the root's
 * user.mvault.pins, from the database): "BACKEND COPYING BYTES FAILED"
 * lines. */
static void print_pins(const char *mnt)
{
	char text[1024], *line, *save = NULL, left[32];
	ssize_t n = getxattr(mnt, FS_XATTR_PINS, text, sizeof(text) - 1);
	int any = 0;

	if (n < 0) {
		printf("pins:     unknown (%s)\n", strerror(errno));
		return;
	}
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char backend[64];
		unsigned long long copying, bytes, failed;

		if (sscanf(line, "%63s %llu %llu %llu", backend, &copying, &bytes, &failed) != 4)
			continue;
		human((double)bytes, left, sizeof(left));
		printf("pins:     %s: %llu cop%s in progress, %s left", backend, copying, copying == 1 ? "y" : "ies", left);
		if (failed)
			printf("; %llu failed (getfattr -n user.mvault.presence FILE says why)", failed);
		if (strcmp(backend, "icp-canister") == 0 || strcmp(backend, "icp") == 0)
			printf(" (its certificates are NOT BLS-verified)");
		printf("\n");
		any = 1;
	}
	if (!any)
		printf("pins:     no copies in progress\n");
}

static int cmd_status(int argc, char **argv)
{
	struct mount_stats st;
	char text[2048], a[32], b[32], r[32], down[256];

	if (argc != 2) {
		fprintf(stderr, "usage: mvaultfs status MOUNTPOINT\n");
		return 1;
	}
	if (read_stats(argv[1], &st, text, sizeof(text)) != 0)
		return 1;
	human((double)st.staged_bytes, a, sizeof(a));
	human(st.upload_rate, r, sizeof(r));
	printf("staged:   %llu file(s), %s waiting for upload\n", st.staged_files, a);
	human((double)st.uploaded_bytes, a, sizeof(a));
	printf("uploaded: %llu file(s), %s since mount, %s/s lately\n", st.uploaded_files, a, r);
	if (st.set_aside)
		printf("set aside: %llu staged file(s) failed their check (see the log)\n", st.set_aside);
	if (*down_sides(&st, down, sizeof(down)))
		printf("down:     %s\n", down);
	human((double)st.cache_bytes, a, sizeof(a));
	human((double)st.cache_max, b, sizeof(b));
	printf("cache:    %s in %llu block(s), cap %s\n", a, st.cache_blocks, b);
	printf("hit rate: %.1f%% (%llu hits, %llu misses); %llu GET(s), %llu PUT(s) to the store\n",
	       st.hits + st.misses ? 100.0 * (double)st.hits / (double)(st.hits + st.misses) : 100.0,
	       st.hits, st.misses, st.store_gets, st.store_puts);
	if (strstr(text, "\nstore icp-canister\n"))
		printf("store:    an ICP canister; its certificates are NOT BLS-verified (no BLS12-381\n"
		       "          library in Debian): the replica or boundary node is trusted (see the README)\n");
	print_pins(argv[1]);
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

static int cmd_sync(int argc, char **argv)
{
	struct mount_stats st;
	struct timespec start, now;
	char text[2048], a[32], r[32];
	double timeout = 0;
	const char *mnt = NULL;
	int tty = isatty(STDERR_FILENO);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout = atof(argv[++i]);
		else if (!mnt)
			mnt = argv[i];
		else
			mnt = NULL, i = argc;
	}
	if (!mnt) {
		fprintf(stderr, "usage: mvaultfs sync MOUNTPOINT [--timeout SECS]\n");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (read_stats(mnt, &st, text, sizeof(text)) != 0)
			return 1;
		if (st.set_aside) {
			char dir[4096];
			ssize_t n = getxattr(mnt, FS_XATTR_ASIDE, dir, sizeof(dir) - 1);

			fprintf(stderr, "%smvaultfs: %llu staged file(s) failed their hash check and were set aside,"
				" not uploaded (see the log):\n", tty ? "\n" : "", st.set_aside);
			if (n > 0) {
				dir[n] = '\0';
				list_aside(dir);
			}
			return 1;
		}
		if (st.staged_files == 0) {
			if (tty)
				fprintf(stderr, "\rsync: every closed file is in the store.%20s\n", "");
			return 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout > 0 && (double)(now.tv_sec - start.tv_sec) > timeout) {
			char down[256];

			if (*down_sides(&st, down, sizeof(down)))
				fprintf(stderr, "%smvaultfs: sync gave up after %.0f s: %llu file(s) still waiting"
					" (%s; see the log)\n", tty ? "\n" : "", timeout, st.staged_files, down);
			else
				fprintf(stderr, "%smvaultfs: sync gave up after %.0f s: %llu file(s) still waiting"
					" (is the store reachable? see the log)\n", tty ? "\n" : "", timeout,
					st.staged_files);
			return 1;
		}
		human((double)st.staged_bytes, a, sizeof(a));
		human(st.upload_rate, r, sizeof(r));
		fprintf(stderr, tty ? "\rsync: %llu file(s), %s left, %s/s   " : "sync: %llu file(s), %s left, %s/s\n",
			st.staged_files, a, r);
		usleep(tty ? 250000 : 1000000);
	}
}

/* `mvaultfs worker`: job threads for every user (or -o user=NAME's only),
 * with no mount, until SIGTERM or SIGINT. */
static int cmd_worker(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mount m = { .o = { .pool = 2 } };
	struct worker_config wc;
	char err[512] = "", *base;
	int user_given, rc = 1, sig;
	sigset_t stop;

	sdnotify_init(&m.notify);
	if (fuse_opt_parse(&args, &m.o, mvfs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.s3, s3_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.icp, icp_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.vblob, vblob_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.cache_cli, cache_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.jobs, jobs_opt_spec, NULL) != 0 ||
	    fuse_opt_parse(&args, &m.pins, pin_opt_spec, pin_opt_proc) != 0)
		goto out;
	if (args.argc > 1) {
		fprintf(stderr, "mvaultfs worker: unexpected '%s' (options go in -o)\n", args.argv[1]);
		goto out;
	}
	if (db_options_settle(&m.o, argc, argv) != 0)
		goto out;
	if (!m.o.db || !*m.o.db) {
		fprintf(stderr, "mvaultfs: worker needs -o db=CONNINFO or MVAULT_DB (a shared PostgreSQL)\n");
		goto out;
	}
	if (jobs_config_from(&m.jobs, 2, &wc) != 0)
		goto out;
	/* Its own data folder (cache, log): it must not share a mount's. */
	if (!m.o.data_dir) {
		if (!(base = default_data_dir()) || asprintf(&m.o.data_dir, "%s/worker", base) < 0)
			m.o.data_dir = NULL;
		free(base);
		if (!m.o.data_dir) {
			fprintf(stderr, "mvaultfs: no data folder: give -o data_dir=DIR\n");
			goto out;
		}
	}
	user_given = m.user_given = m.o.user != NULL;
	m.for_nobody = !user_given;
	if (!m.o.user)
		m.o.user = default_user();
	if (mkdirs(m.o.data_dir, 0700) != 0) {
		fprintf(stderr, "mvaultfs: cannot make the data folder '%s': %s\n", m.o.data_dir, strerror(errno));
		goto out;
	}
	if (!m.o.log && asprintf(&m.o.log, "%s/mvaultfs.log", m.o.data_dir) < 0)
		goto out;
	if (log_open(m.o.log) != 0)
		fprintf(stderr, "mvaultfs: warning: cannot write the log '%s': %s\n", m.o.log, strerror(errno));
	if (mount_open_engines(&m) != 0)
		goto out;
	wc.threads = wc.threads > 0 ? wc.threads : 1;
	wc.meta = user_given ? m.meta : NULL;
	wc.conninfo = m.o.db;
	wc.trash_days = m.o.trash_days;
	wc.cache = m.cache;
	wc.backend = m.backend;
	wc.pin_stores = m.pins.stores;
	wc.npin_stores = m.pins.n;
	/* Signals are taken by sigwait below, not by the threads. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (meta_embedded_watch(m.pg) != 0)
		log_error("cannot start the watchdog of the embedded PostgreSQL: it will not be restarted if it dies");
	m.worker = worker_start(&wc, err, sizeof(err));
	if (!m.worker) {
		meta_conninfo_redact(m.o.db, err, sizeof(err));
		fprintf(stderr, "mvaultfs: %s\n", err);
		goto out;
	}
	log_info("worker running for %s, store '%s'", user_given ? m.o.user : "every user", m.o.store);
	sdnotify_send(&m.notify, "READY=1");
	while (sigwait(&stop, &sig) != 0)
		;
	sdnotify_send(&m.notify, "STOPPING=1");
	log_info("worker stopping (%s)", strsignal(sig));
	rc = 0;
out:
	mount_release(&m);
	fuse_opt_free_args(&args);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "sync") == 0)
		return cmd_sync(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "worker") == 0)
		return cmd_worker(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "__media") == 0)
		return media_helper_main(argc, argv);
	if (argc >= 3 && strcmp(argv[1], "db") == 0 && strcmp(argv[2], "migrate") == 0)
		return cmd_migrate(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "user") == 0)
		return cmd_user(argc - 1, argv + 1);
	return cmd_mount(argc, argv);
}
