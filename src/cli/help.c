/*
 * help.c - the text of `mvaultfs --help`: the mount's options, one section
 * per part (each part's -o table is in engine.c), then libfuse's own
 * (mount.c prints those after this).
 */
#include <stdio.h>

#include "cli/cli.h"

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
	       "    -o s3_concurrency=N    parts sent in parallel per file to begin with (default 4);\n"
	       "                           doubled while the upload's rate grows, up to 16\n"
	       "    -o s3_retries=N        attempts per request (default 8; backoff with jitter)\n"
	       "    -o s3_timeout=SECS     a transfer may stall this long (default 30)\n"
	       "    -o keyfile=FILE        key that decrypts credentials kept in the database\n"
	       "                           (default DATA/s3.key, made with mode 0600 when missing)\n"
	       "    Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else\n"
	       "    ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), else the user's\n"
	       "    row of s3_configurations, whose keys are AES-256-GCM encrypted with the keyfile.\n"
	       "\n");
}

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

void cli_usage(const char *prog)
{
	printf("usage: %s [options] [SOURCE] MOUNTPOINT\n"
	       "       %s db migrate [-o db=CONNINFO]\n"
	       "       %s user add NAME [-o db=CONNINFO,role=ROLE,pgpass=FILE,no_password,worker]\n"
	       "                                             a login role for user NAME (as the owner);\n"
	       "                                             -o worker: role NAME for `mvaultfs worker`\n"
	       "       %s sync MOUNTPOINT [--timeout SECS]   wait until every closed file is uploaded\n"
	       "       %s status [--json] MOUNTPOINT         health, uploads waiting, cache, store, pins\n"
	       "                                             (--json: for scripts; the fields are in\n"
	       "                                             mvaultfs(1))\n"
	       "       %s worker [-o db=CONNINFO,...]        run background jobs for every user, no mount\n"
	       "       %s import [--watch] [--settle SECS] [--delete-after] [-o ...] DIR\n"
	       "              --to library[/PATH]|galleries/NAME   DIR's files into the library, no mount\n"
	       "                                             needed: as a copy through a mount, content\n"
	       "                                             already there skipped (a rerun costs nothing);\n"
	       "                                             --watch: then what is written into DIR, until\n"
	       "                                             SIGINT/SIGTERM; --delete-after: each source\n"
	       "                                             once its content is in the store\n"
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
	       "    -o embedded_leftover_wait=SECS  when the embedded PostgreSQL died, how long its\n"
	       "                           other processes get to exit by themselves before they\n"
	       "                           are ended and it is started again (default 10)\n"
	       "    -V, --version          print the version\n"
	       "\n", prog, prog, prog, prog, prog, prog, prog);
	cache_usage();
	jobs_usage();
	pin_usage();
	s3_usage();
	icp_usage();
	vblob_usage();
}
