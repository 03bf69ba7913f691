/*
 * engine.c - the assembly every command shares (engine.h): options into
 * configurations, then database, store and cache opened in that order, and
 * released in reverse.
 */
#include "cli/engine.h"

#include <errno.h>
#include <glib.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs_thumbs.h"
#include "meta/meta_conninfo.h"
#include "meta/meta_embedded.h"
#include "meta/meta_s3conf.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/store_label.h"

#define OPT(t, p) { t, offsetof(struct mvfs_opts, p), 1 }
const struct fuse_opt mvfs_opt_spec[] = {
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
	OPT("embedded_leftover_wait=%d", leftover_wait),
	FUSE_OPT_END
};


#define COPT(t, p) { t, offsetof(struct cache_cli, p), 1 }
const struct fuse_opt cache_opt_spec[] = {
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


/* "1G" -> 1073741824; 0 with *OK 0 when it is not a size. */
uint64_t parse_size(const char *s, int *ok)
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
int cache_config_from(const struct cache_cli *cli, struct cache_config *cfg)
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



#define S3OPT(t, p, v) { t, offsetof(struct s3_cli, p), v }
const struct fuse_opt s3_opt_spec[] = {
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

/* The background jobs' options (issue 6): one table, one help text. */

#define JOPT(t, p) { t, offsetof(struct jobs_cli, p), 1 }
const struct fuse_opt jobs_opt_spec[] = {
	JOPT("workers=%s", workers),
	JOPT("display_format=%s", display_format),
	JOPT("media_timeout=%d", media_timeout),
	JOPT("media_memory=%d", media_memory),
	JOPT("media_threads=%d", media_threads),
	JOPT("jobs_interval=%lf", interval),
	JOPT("job_timeout=%s", job_timeout),
	FUSE_OPT_END
};

/* The worker configuration from the options; -1 after a line on stderr. */
int jobs_config_from(const struct jobs_cli *cli, int default_threads, struct worker_config *cfg)
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

enum { KEY_PIN_STORE = 1 };
const struct fuse_opt pin_opt_spec[] = {
	FUSE_OPT_KEY("pin_store=", KEY_PIN_STORE),
	FUSE_OPT_END
};

int pin_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
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

/* Opens the pin stores of P beside the primary store PRIMARY; 0, or -1
 * after a line on stderr. */
int pin_stores_open(struct pin_cli *p, const char *primary, const struct backend_config *cfg)
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

void pin_stores_release(struct pin_cli *p)
{
	for (int i = 0; i < p->n; i++) {
		backend_free(p->stores[i].backend);
		free(p->name[i]);
		free(p->url[i]);
	}
	memset(p, 0, sizeof(*p));
}

#define ICPOPT(t, p) { t, offsetof(struct icp_cli, p), 1 }
const struct fuse_opt icp_opt_spec[] = {
	ICPOPT("icp_identity=%s", identity),
	ICPOPT("icp_host=%s", host),
	FUSE_OPT_END
};

const struct fuse_opt vblob_opt_spec[] = {
	{ "vblob_token_file=%s", offsetof(struct vblob_cli, token_file), 1 },
	FUSE_OPT_END
};

int mount_opts_parse(struct mount *m, struct fuse_args *args)
{
	return fuse_opt_parse(args, &m->o, mvfs_opt_spec, NULL) != 0 ||
	       fuse_opt_parse(args, &m->s3, s3_opt_spec, NULL) != 0 ||
	       fuse_opt_parse(args, &m->icp, icp_opt_spec, NULL) != 0 ||
	       fuse_opt_parse(args, &m->vblob, vblob_opt_spec, NULL) != 0 ||
	       fuse_opt_parse(args, &m->cache_cli, cache_opt_spec, NULL) != 0 ||
	       fuse_opt_parse(args, &m->jobs, jobs_opt_spec, NULL) != 0 ||
	       fuse_opt_parse(args, &m->pins, pin_opt_spec, pin_opt_proc) != 0 ? -1 : 0;
}

char *default_data_dir(void)
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

char *default_user(void)
{
	struct passwd *pw = getpwuid(getuid());
	const char *u = getenv("USER");

	return strdup(pw ? pw->pw_name : u ? u : "mvaultfs");
}

int mount_data_dir(struct mount *m, mode_t mode)
{
	if (g_mkdir_with_parents(m->o.data_dir, mode) != 0) {
		fprintf(stderr, "mvaultfs: cannot make the data folder '%s': %s\n", m->o.data_dir, strerror(errno));
		return -1;
	}
	if (!m->o.log && asprintf(&m->o.log, "%s/mvaultfs.log", m->o.data_dir) < 0)
		return -1;
	if (log_open(m->o.log) != 0)
		fprintf(stderr, "mvaultfs: warning: cannot write the log '%s': %s\n", m->o.log, strerror(errno));
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
int db_options_settle(struct mvfs_opts *o, int argc, char **argv)
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


void mount_release_engines(struct mount *m)
{
	/* first: a daemon started right after the unmount waits for our cluster */
	meta_embedded_stopping(m->pg);
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
	free(m->mountpoint);
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
int mount_open_engines(struct mount *m)
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
		meta_embedded_set_leftover_wait(m->pg, m->o.leftover_wait);
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

/* The mount's job threads, for its user; 0, or -1 after a log line. */
int mount_start_worker(struct mount *m)
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

