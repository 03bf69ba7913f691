#!/usr/bin/env python3
"""The daemon's hot statements on a library at 1/100 of the target scale
(docs/SCALE.md): 10,000 users, 1,000,000 memories.

Starts a throwaway PostgreSQL (tests/mount/pgtest.py: initdb under /tmp,
127.0.0.1 on a free port, as an unprivileged system user when run as
root), applies the project's migrations with `mvaultfs db migrate`,
generates the data set with set-based INSERT ... SELECT generate_series
(triggers off: every column the triggers would fill is filled here), runs
VACUUM ANALYZE, then logs in as users' own login roles (0014: not a
superuser, not the owner, row-level security in force) and prints
EXPLAIN (ANALYZE, BUFFERS) of the statements the daemon sends:

  lookup          meta_files.c find_entry (library folder: file and folder of a name)
  getattr         meta_files.c meta_find_ino (a file by inode)
  listing         meta_files.c meta_list (a page of 256 files of a folder)
  folder listing  meta_folders.c meta_folder_list (a page of subfolders)
  job claim       meta_jobs.c meta_jobs_claim (a mount's worker: its own user;
                  `mvaultfs worker`: any user), FOR UPDATE SKIP LOCKED
  create/close/upload  mvfs_create, mvfs_stage, mvfs_uploaded (0009, 0011,
                  0013, 0016), their inner statements by auto_explain

The statement texts are the C macros expanded (FILE_COLS, FILE_JOINS,
meta_place_sql, twin_test, META_TREE_COLS): keep them in step with the C.
Statements the daemon prepares (all but the listing) are shown with a
custom plan and with the generic plan PostgreSQL may switch to after five
runs.  Mutating statements run inside a transaction that is rolled back.

    /usr/bin/python3 tests/bench/scale_data.py [--users N] [--memories N]
        [--heavy N] [--jobs N] [--keep] [--out FILE]

Defaults: 10,000 users, 1,000,000 memories (one heavy user holding 50,000
of them, 22,000 in one folder), 100,000 jobs: 9.2 M rows, 4.5 GB, 5-8
minutes on 2 cores.  Also shown, for comparison: a listing page as it was
planned before 0021 (sorts allowed), the big folder's listing with the
folder's id as a parameter (an alternative not taken), and a mount's claim
in its text before issue 10 (docs/SCALE.md, "Findings").  Last, a mount's
sweep (mvault_jobs_sweep) as the heavy user, called ten times in one
session.  Needs build/mvaultfs
(`make`) or MVFS_BIN.  The server is stopped and its directory removed at
the end, whatever happens (--keep leaves it running for a look and prints
how to reach and stop it).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "mount"))
from pgtest import PSQL, SUPERUSER, PgServer, default_bin  # noqa: E402

DB = "memories"
PAGE = 256          # fs_ns.c LIST_PAGE

# --------------------------------------------------------------------------
# The daemon's SQL, as the C builds it (meta_files.c, meta_internal.h)
# --------------------------------------------------------------------------

FILE_COLS = (
    "i.ino, i.display_name, i.mode, floor(extract(epoch FROM i.mtime))::bigint, i.mtime_nsec,"
    " coalesce(i.ctime_ns, (extract(epoch FROM greatest(i.updated_at, a.updated_at, m.updated_at))"
    "  * 1000000)::bigint * 1000),"
    " (extract(epoch FROM i.created_at) * 1000000)::bigint,"
    " a.bytes, coalesce(a.content_hash, ''), coalesce(a.storage_key, ''), m.status, a.upload_status,"
    " m.id, i.id, a.id, a.lifecycle_status, a.processing_status, a.mime_type,"
    " CASE WHEN a.lifecycle_status <> 'active' THEN 1 ELSE"
    "  (SELECT count(*) + count(l2.collection_id) FROM user_library l2 WHERE l2.memory_id = i.memory_id)"
    "  + (SELECT count(*) FROM gallery_items g2 WHERE g2.memory_id = i.memory_id)"
    "  + (SELECT count(*) FROM workspace_assets w2 WHERE w2.memory_id = i.memory_id"
    "     AND w2.expires_at > mvault_now()) END,"
    " %s, to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " coalesce(i.atime_ns, floor(extract(epoch FROM i.mtime))::bigint * 1000000000 + i.mtime_nsec),"
    " ''")

FILE_JOINS = (" JOIN memories m ON m.id = i.memory_id"
              " JOIN memory_assets a ON a.id = i.primary_asset_id")

VERSION_COLS = (
    "a.version_ino, i.display_name, i.mode, floor(extract(epoch FROM a.created_at))::bigint,"
    " (extract(microseconds FROM a.created_at)::bigint % 1000000) * 1000,"
    " (extract(epoch FROM a.tombstoned_at) * 1000000)::bigint * 1000,"
    " (extract(epoch FROM a.created_at) * 1000000)::bigint,"
    " a.bytes, coalesce(a.content_hash, ''), coalesce(a.storage_key, ''), m.status, a.upload_status,"
    " m.id, i.id, a.id, a.lifecycle_status, a.processing_status, a.mime_type, 1, false,"
    " to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " (extract(epoch FROM a.created_at) * 1000000)::bigint * 1000,"
    " to_char(a.tombstoned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24.MI.SS')")

VERSION_FROM = " memory_assets a JOIN memory_items i ON i.id = a.memory_item_id JOIN memories m ON m.id = i.memory_id"

META_TREE_COLS = (
    "f.ino, f.id, f.name, f.mode, f.mtime_ns, f.ctime_ns, f.atime_ns,"
    " (extract(epoch FROM f.created_at) * 1000000)::bigint,"
    " 2 + (SELECT count(*) FROM folders s WHERE s.parent_id = f.id), f.place")

# twin_test(META_PLACE_LIBRARY)
TWIN_LIBRARY = (
    "EXISTS (SELECT 1 FROM memory_items t JOIN memory_assets ta ON ta.id = t.primary_asset_id"
    " WHERE t.user_id = i.user_id AND t.display_name = i.display_name AND t.ino < i.ino"
    " AND ta.lifecycle_status = 'active' AND EXISTS (SELECT 1 FROM user_library tl"
    " WHERE tl.memory_id = t.memory_id AND tl.folder_id = x.folder_id))")

# meta_place_sql(META_PLACE_LIBRARY)
LIB_FROM = "user_library x JOIN memory_items i ON i.memory_id = x.memory_id"
LIB_WHERE = ("x.user_id = $1 AND i.user_id = $1 AND x.folder_id = (SELECT id FROM folders WHERE ino = $2)"
             " AND a.lifecycle_status = 'active'")

# meta_files.c find_entry: $1 user, $2 folder inode, $3 name
SQL_LOOKUP = (
    "SELECT fi.*, fo.* FROM (SELECT 1) one"
    " LEFT JOIN LATERAL (SELECT " + (FILE_COLS % TWIN_LIBRARY) + " FROM " + LIB_FROM + FILE_JOINS
    + "   WHERE " + LIB_WHERE + " AND i.display_name = $3 ORDER BY i.ino) fi ON true"
    " LEFT JOIN LATERAL (SELECT " + META_TREE_COLS + " FROM folders f WHERE f.user_id = $1 AND f.name = $3"
    "   AND f.parent_id = (SELECT id FROM folders WHERE ino = $2)) fo ON true")

# meta_files.c meta_find_ino: $1 user, $2 inode
SQL_GETATTR = (
    "SELECT " + (FILE_COLS % "false") + " FROM memory_items i" + FILE_JOINS
    + " WHERE i.user_id = $1 AND i.ino = $2"
    " UNION ALL SELECT " + VERSION_COLS + " FROM" + VERSION_FROM + " WHERE i.user_id = $1 AND a.version_ino = $2")

# meta_files.c meta_list, the page's text: $1 user, $2 folder inode, $3/$4
# cursor (memory id, inode), $5 page.  Before 0021 it was sent on its own,
# planned per call (META_PLAN_PER_CALL); since, it is sent to
# mvault_list_page, which plans it per call with enable_sort off.
SQL_LISTING = (
    "SELECT " + (FILE_COLS % TWIN_LIBRARY) + " FROM " + LIB_FROM + FILE_JOINS
    + " WHERE " + LIB_WHERE + " AND x.memory_id >= $3::uuid AND (x.memory_id, i.ino) > ($3::uuid, $4::bigint)"
    " ORDER BY x.memory_id, i.ino LIMIT $5")

# meta_files.c FILE_COL_TYPES and the call meta_list sends (0021): $1 the
# page's text, then its parameters
FILE_COL_TYPES = (
    "ino bigint, display_name text, mode integer, mtime_s bigint, mtime_nsec integer, ctime_ns bigint,"
    " crtime_us bigint, bytes bigint, sha256 text, storage_key text, status memory_status_t,"
    " upload_status asset_upload_status_t, memory_id uuid, item_id uuid, asset_id uuid,"
    " lifecycle_status asset_lifecycle_status_t, processing_status processing_status_t, mime text,"
    " nlink bigint, older_twin boolean, created_at text, atime_ns bigint, stamp text")
SQL_LISTING_CALL = "SELECT * FROM mvault_list_page($1, $2, $3, $4, $5, $6) AS t(" + FILE_COL_TYPES + ")"

# Not the daemon's: meta_list with the folder's id as a parameter instead of
# a sub-select by inode, so that the planner sees which folder it lists
# (docs/SCALE.md, "Findings"): $2 is the folder's uuid.
SQL_LISTING_BY_ID = SQL_LISTING.replace("x.folder_id = (SELECT id FROM folders WHERE ino = $2)",
                                        "x.folder_id = $2::uuid")
assert SQL_LISTING_BY_ID != SQL_LISTING

# meta_folders.c meta_folder_list (tree): $1 user, $2 after, $3 page, $4 folder inode
SQL_FOLDERS = ("SELECT " + META_TREE_COLS + " FROM folders f WHERE f.user_id = $1 AND f.name > $2"
               " AND f.parent_id = (SELECT id FROM folders WHERE ino = $4) ORDER BY f.name LIMIT $3")

# meta_jobs.c meta_jobs_claim (CLAIM_SQL): $1 user, $2 worker id, $3
# visibility timeout (NULL: the job's own).  A mount says user_id = $1; the
# worker ($1 NULL) says ($1 IS NULL OR user_id = $1), as both did before
# issue 10.
def claim_sql(who):
    return (
        "WITH pick AS (SELECT id FROM background_jobs"
        "   WHERE status IN ('pending', 'retry') AND run_at <= mvault_now() AND " + who +
        "   ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " UPDATE background_jobs j SET status = 'processing', locked_at = mvault_now(),"
        "   locked_by = $2, started_at = mvault_now(),"
        "   visibility_timeout = coalesce($3::integer, j.visibility_timeout),"
        "   user_id = coalesce(j.user_id, mvault_job_owner(j.payload))"
        " FROM pick WHERE j.id = pick.id"
        " RETURNING j.id, j.type, coalesce(j.user_id::text, ''),"
        "   coalesce(j.payload->>'originalAssetId', j.payload->>'deleteJobId',"
        "            j.payload->>'memoryId', j.payload->>'assetId', ''),"
        "   coalesce(j.payload->>'recipeVersion', ''), j.retry_count, j.max_retries,"
        "   coalesce(j.visibility_timeout, 300)")


SQL_CLAIM_MINE = claim_sql("user_id = $1::uuid")
SQL_CLAIM_ANY = claim_sql("($1::uuid IS NULL OR user_id = $1::uuid)")

# --------------------------------------------------------------------------
# The data set
# --------------------------------------------------------------------------

GENERATE = r"""
\set ON_ERROR_STOP 1
\timing on
-- Bulk load: no row triggers and no foreign-key triggers (every column a
-- trigger would fill is filled here, and the ids below are consistent).
SET session_replication_role = replica;
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SET work_mem = '256MB';
CREATE SCHEMA syn;

-- users 1..U; user 1 is the heavy one
CREATE UNLOGGED TABLE syn.u AS SELECT g AS n, gen_random_uuid() AS id FROM generate_series(1, :U) g;
CREATE UNIQUE INDEX ON syn.u (n);
INSERT INTO users (id, name, key_prefix, created_at)
  SELECT id, 'user' || n, 'u/' || id || '/', now() - interval '400 days' FROM syn.u;

-- folders: k = 0 library top, 1..9 library subfolders folder1..folder9, 10 workspace top
CREATE UNLOGGED TABLE syn.f AS
  SELECT u.n, u.id AS user_id, k, gen_random_uuid() AS fid FROM syn.u u, generate_series(0, 10) k;
CREATE UNIQUE INDEX ON syn.f (n, k);
INSERT INTO folders (id, user_id, place, parent_id, name, created_at)
  SELECT f.fid, f.user_id, CASE WHEN f.k = 10 THEN 'workspace' ELSE 'library' END,
         CASE WHEN f.k BETWEEN 1 AND 9 THEN t.fid END,
         CASE WHEN f.k BETWEEN 1 AND 9 THEN 'folder' || f.k ELSE '' END, now() - interval '400 days'
    FROM syn.f f JOIN syn.f t ON t.n = f.n AND t.k = 0;

-- 3 collections and 2 galleries per user
INSERT INTO user_collections (user_id, name)
  SELECT u.id, 'Collection ' || c FROM syn.u u, generate_series(1, 3) c;
INSERT INTO galleries (user_id, name)
  SELECT u.id, 'Gallery ' || c FROM syn.u u, generate_series(1, 2) c;

-- memories: g <= H are user 1's; the rest go round users 2..U
CREATE UNLOGGED TABLE syn.m AS
  SELECT g,
         CASE WHEN g <= :H THEN 1 ELSE 2 + (g - :H - 1) % (:U - 1) END AS n,
         CASE WHEN g <= :H THEN g ELSE (g - :H - 1) / (:U - 1) + 1 END AS k,
         gen_random_uuid() AS mem, gen_random_uuid() AS item, gen_random_uuid() AS asset,
         gen_random_uuid() AS blob
    FROM generate_series(1, :M) g;
-- what each memory is: 40% images, 2% in the trash, 5% in workspace/;
-- user 1's first 20,000 in folder1 (a big folder), else spread over 10 folders
CREATE UNLOGGED TABLE syn.mm AS
  SELECT m.*, u.id AS user_id,
         (m.k % 5 < 2) AS img, (m.k % 50 = 7) AS tomb,
         CASE WHEN m.k % 20 = 0 THEN 10 WHEN m.n = 1 AND m.k <= 20000 THEN 1 ELSE m.k % 10 END AS fk,
         CASE WHEN m.k % 5 < 2 THEN 'IMG_' || lpad(m.k::text, 6, '0') || '.jpg'
              ELSE 'doc_' || lpad(m.k::text, 6, '0') || '.pdf' END AS name,
         encode(sha256(convert_to(m.mem::text, 'UTF8')), 'hex') AS sha,
         50000 + (m.g::bigint * 7919) % 5000000 AS bytes,
         now() - make_interval(mins => (m.g % 500000)) AS t
    FROM syn.m m JOIN syn.u u ON u.n = m.n;
DROP TABLE syn.m;

INSERT INTO memories (id, user_id, type, title, status, created_by, created_at, updated_at)
  SELECT mem, user_id, CASE WHEN img THEN 'image' ELSE 'document' END::memory_type_t, name,
         CASE WHEN tomb THEN 'tombstoned' ELSE 'active' END::memory_status_t, user_id, t, t
    FROM syn.mm;

INSERT INTO memory_items (id, memory_id, user_id, display_name, primary_asset_id, mode, mtime, mtime_nsec,
                          ctime_ns, atime_ns, created_at, updated_at)
  SELECT item, mem, user_id, name, asset, 420, date_trunc('second', t), 0,
         (extract(epoch FROM t) * 1000000)::bigint * 1000, (extract(epoch FROM t) * 1000000)::bigint * 1000, t, t
    FROM syn.mm;

INSERT INTO blobs (id, user_id, content_hash, storage_backend, storage_key, bytes, mime_type, ref_count,
                   created_at, last_accessed_at)
  SELECT blob, user_id, sha, 's3', mvault_blob_key('u/' || user_id || '/', sha), bytes,
         CASE WHEN img THEN 'image/jpeg' ELSE 'application/pdf' END, CASE WHEN tomb THEN 0 ELSE 1 END, t, t
    FROM syn.mm;

INSERT INTO memory_assets (id, memory_id, memory_item_id, group_id, asset_type, blob_id, storage_backend,
                           storage_key, bytes, mime_type, upload_status, processing_status, lifecycle_status,
                           width, height, content_hash, computed_by, tombstoned_at, staged_seq,
                           created_at, updated_at)
  SELECT asset, mem, item, gen_random_uuid(), 'original', blob, 's3',
         mvault_blob_key('u/' || user_id || '/', sha), bytes,
         CASE WHEN img THEN 'image/jpeg' ELSE 'application/pdf' END, 'completed',
         CASE WHEN img THEN 'completed' ELSE 'pending' END::processing_status_t,
         CASE WHEN tomb THEN 'tombstoned' ELSE 'active' END::asset_lifecycle_status_t,
         CASE WHEN img THEN 4032 END, CASE WHEN img THEN 3024 END, sha, 'client',
         CASE WHEN tomb THEN now() - make_interval(days => k % 40) END, g, t, t
    FROM syn.mm;

-- display and thumb variants of every image, each with its blob
CREATE UNLOGGED TABLE syn.v AS
  SELECT mm.*, v.kind, gen_random_uuid() AS vasset, gen_random_uuid() AS vblob,
         encode(sha256(convert_to(mm.mem::text || v.kind, 'UTF8')), 'hex') AS vsha
    FROM syn.mm mm, (VALUES ('display'), ('thumb')) v(kind) WHERE mm.img;
INSERT INTO blobs (id, user_id, content_hash, storage_backend, storage_key, bytes, mime_type, ref_count,
                   created_at, last_accessed_at)
  SELECT vblob, user_id, vsha, 's3', mvault_blob_key('u/' || user_id || '/', vsha),
         CASE WHEN kind = 'thumb' THEN 12000 ELSE 300000 END, 'image/webp', CASE WHEN tomb THEN 0 ELSE 1 END, t, t
    FROM syn.v;
INSERT INTO memory_assets (id, memory_id, memory_item_id, group_id, asset_type, blob_id, storage_backend,
                           storage_key, bytes, mime_type, upload_status, processing_status, lifecycle_status,
                           variant_of_asset_id, variant_type, width, height, content_hash, computed_by,
                           tombstoned_at, created_at, updated_at)
  SELECT vasset, mem, item, gen_random_uuid(), kind, vblob, 's3',
         mvault_blob_key('u/' || user_id || '/', vsha), CASE WHEN kind = 'thumb' THEN 12000 ELSE 300000 END,
         'image/webp', 'completed', 'completed',
         CASE WHEN tomb THEN 'tombstoned' ELSE 'active' END::asset_lifecycle_status_t,
         asset, kind, CASE WHEN kind = 'thumb' THEN 256 ELSE 2048 END, CASE WHEN kind = 'thumb' THEN 192 ELSE 1536 END,
         vsha, 'server', CASE WHEN tomb THEN now() - make_interval(days => k % 40) END, t, t
    FROM syn.v;
DROP TABLE syn.v;

-- where each file shows: library rows (10% also in a collection), workspace rows
INSERT INTO user_library (user_id, memory_id, asset_type, storage_path, file_size_bytes, mime_type,
                          collection_id, folder_id, created_at, updated_at)
  SELECT mm.user_id, mm.mem, CASE WHEN mm.img THEN 'image' ELSE 'document' END,
         mvault_blob_key('u/' || mm.user_id || '/', mm.sha), mm.bytes,
         CASE WHEN mm.img THEN 'image/jpeg' ELSE 'application/pdf' END,
         CASE WHEN mm.k % 10 = 3 THEN (SELECT c.id FROM user_collections c
                                        WHERE c.user_id = mm.user_id AND c.name = 'Collection ' || (1 + mm.k % 3)) END,
         f.fid, mm.t, mm.t
    FROM syn.mm mm JOIN syn.f f ON f.n = mm.n AND f.k = mm.fk
   WHERE mm.fk <> 10;
INSERT INTO workspace_assets (user_id, memory_id, asset_type, temp_storage_path, file_size_bytes, mime_type,
                              expires_at, folder_id, created_at)
  SELECT mm.user_id, mm.mem, CASE WHEN mm.img THEN 'image' ELSE 'document' END,
         mvault_blob_key('u/' || mm.user_id || '/', mm.sha), mm.bytes,
         CASE WHEN mm.img THEN 'image/jpeg' ELSE 'application/pdf' END,
         now() + make_interval(days => mm.k % 7), f.fid, mm.t
    FROM syn.mm mm JOIN syn.f f ON f.n = mm.n AND f.k = 10
   WHERE mm.fk = 10;
UPDATE user_collections c SET asset_count = s.cnt
  FROM (SELECT collection_id, count(*) AS cnt FROM user_library WHERE collection_id IS NOT NULL
         GROUP BY collection_id) s
 WHERE c.id = s.collection_id;
-- 10% of the files in a gallery
INSERT INTO gallery_items (gallery_id, memory_id, user_id, position)
  SELECT g.id, mm.mem, mm.user_id, mm.k
    FROM syn.mm mm JOIN galleries g ON g.user_id = mm.user_id AND g.name = 'Gallery ' || (1 + mm.k % 2)
   WHERE mm.k % 10 = 5;

-- every memory's upload session (mvfs_create makes one; completed at upload)
INSERT INTO upload_sessions (user_id, memory_id, session_token, status, total_files, uploaded_files, expires_at,
                             created_at, updated_at)
  SELECT user_id, mem, mem::text, 'completed', 1, 1, t + interval '24 hours', t, t FROM syn.mm;
-- the deletion outbox of the files in the trash (their blobs have no reference left)
INSERT INTO asset_delete_jobs (asset_id, blob_id, backend, backend_key, status, created_at)
  SELECT asset, blob, 's3', mvault_blob_key('u/' || user_id || '/', sha), 'pending', t FROM syn.mm WHERE tomb;
-- recent upload records' answers (mvfs_uploaded, 7 days), a third of them expired
INSERT INTO idempotency_keys (user_id, route, key, response, expires_at, created_at)
  SELECT user_id, 'mvfs_uploaded', k || ':1:' || sha, '{"said": "", "asset": null}',
         now() + make_interval(days => k % 10 - 3), t
    FROM syn.mm WHERE k % 10 < 3;

-- the queue: J variant jobs, 95% completed, 3% pending, 1% retry, 1% failed
INSERT INTO background_jobs (type, payload, payload_hash, status, user_id, run_at, scheduled_at, created_at,
                             started_at, completed_at, locked_at, locked_by, retry_count, error)
  SELECT 'process_assets', p, mvault_payload_hash(p), st, user_id,
         CASE WHEN st IN ('pending', 'retry') THEN now() - make_interval(secs => r % 3600) ELSE t END,
         t, t, CASE WHEN st IN ('completed', 'failed') THEN t END,
         CASE WHEN st IN ('completed', 'failed') THEN t + interval '2 seconds' END,
         NULL, NULL, CASE WHEN st IN ('retry', 'failed') THEN 1 ELSE 0 END,
         CASE WHEN st IN ('retry', 'failed') THEN 'synthetic' END
    FROM (SELECT mm.*, jsonb_build_object('originalAssetId', mm.asset, 'recipeVersion', 'v1') AS p,
                 row_number() OVER (ORDER BY mm.g) AS r
            FROM syn.mm mm WHERE mm.img ORDER BY mm.g LIMIT :J) j,
         LATERAL (SELECT CASE WHEN j.r % 100 < 95 THEN 'completed' WHEN j.r % 100 < 98 THEN 'pending'
                              WHEN j.r % 100 = 98 THEN 'retry' ELSE 'failed' END AS st) s;

DROP SCHEMA syn CASCADE;
RESET session_replication_role;
"""


def psql(pg, user, script, dbname=DB, timeout=1800, vars=None):
    """Run SCRIPT (text on stdin) as USER over TCP; return stdout."""
    args = [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.host, "-p", str(pg.port), "-U", user, "-d", dbname]
    for k, v in (vars or {}).items():
        args += ["-v", "%s=%s" % (k, v)]
    r = subprocess.run(args, input=script, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("psql as %s failed: %s\n%s" % (user, r.stderr.strip(), r.stdout[-2000:]))
    return r.stdout


def one(pg, query):
    rows = pg.sql(DB, query)
    return rows[0].split("|") if rows else None


def q(s):
    return "'" + str(s).replace("'", "''") + "'"


SCAN_RE = re.compile(r"((?:Parallel )?(?:Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan|Bitmap Heap Scan)"
                     r"(?: Backward)?)(?: using (\S+))? on (\S+)")


def scans(plan):
    out = []
    for kind, idx, rel in SCAN_RE.findall(plan):
        if kind.endswith("Bitmap Index Scan"):
            out.append("bitmap:" + rel)
        elif idx:
            out.append(idx)
        elif "Bitmap Heap" not in kind:
            out.append("SEQ SCAN " + rel)
    seen = []
    for s in out:
        if s not in seen:
            seen.append(s)
    return seen


def exec_ms(plan):
    m = re.findall(r"Execution Time: ([\d.]+) ms", plan)
    return float(m[-1]) if m else float("nan")


class Explainer:
    """EXPLAIN (ANALYZE, BUFFERS) of prepared statements in one session of
    a login role; each run three times (the first may read from disk)."""

    def __init__(self, pg, role):
        self.pg, self.role, self.parts, self.names = pg, role, [], []

    def add(self, name, sql, args, modes=("custom", "generic"), rollback=False, setting=None):
        stmt = "s%d" % len(self.names)
        self.parts.append("PREPARE %s AS %s;" % (stmt, sql))
        for mode in modes:
            self.parts.append("SET plan_cache_mode = force_%s_plan;" % mode)
            for run in range(3):
                self.parts.append("\\echo '@@@ %s|%s|%d'" % (name, mode, run))
                if rollback:
                    self.parts.append("BEGIN;")
                if setting:
                    self.parts.append("SET %s;" % setting)
                self.parts.append("EXPLAIN (ANALYZE, BUFFERS) EXECUTE %s(%s);" % (stmt, ", ".join(args)))
                if setting:
                    self.parts.append("RESET %s;" % setting.split("=")[0].strip())
                if rollback:
                    self.parts.append("ROLLBACK;")
        self.names.append(name)

    def run(self):
        head = ("\\pset pager off\n\\pset tuples_only on\n"
                "\\echo '@@@ session|-|0'\n"
                "SELECT 'session_user=' || session_user || ' superuser=' || r.rolsuper || ' bypassrls='"
                " || r.rolbypassrls || ' mvault_uid()=' || mvault_uid() || ' memories visible='"
                " || (SELECT count(*) FROM memories) || ' jobs visible=' || (SELECT count(*) FROM background_jobs)"
                " FROM pg_roles r WHERE r.rolname = session_user;\n")
        out = psql(self.pg, self.role, head + "\n".join(self.parts) + "\n")
        res = {}
        for block in out.split("@@@ ")[1:]:
            tag, _, body = block.partition("\n")
            name, mode, run = tag.split("|")
            res.setdefault((name, mode), []).append(body.rstrip())
        return res


# auto_explain's lines left out of the summary (not out of the listing):
# mvault_uid()'s and mvault_now()'s own lookups in tables of a few rows,
# and foreign-key checks
NOISE = ("pg_has_role(", "SELECT l.user_id FROM mvault_logins", "SELECT now() + coalesce", "SELECT 1 FROM ONLY")


def auto_explained(log_text):
    """The plans auto_explain wrote, as (duration ms, query, plan text)."""
    out = []
    for m in re.finditer(r"LOG:  duration: ([\d.]+) ms  plan:\n(.*?)(?=\n\S|\Z)", log_text, re.S):
        body = m.group(2)
        qm = re.search(r"Query Text: (.*)", body)
        out.append((float(m.group(1)), qm.group(1).strip() if qm else "?", body))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--memories", type=int, default=1000000)
    ap.add_argument("--heavy", type=int, default=50000, help="memories of user1, the heavy user")
    ap.add_argument("--jobs", type=int, default=100000)
    ap.add_argument("--keep", action="store_true", help="leave the server running")
    ap.add_argument("--out", help="also write the report to this file")
    a = ap.parse_args()
    report = []

    def say(s=""):
        print(s, flush=True)
        report.append(s)

    mvfs = default_bin()
    if not os.access(mvfs, os.X_OK):
        sys.exit("%s is missing: run make (or set MVFS_BIN)" % mvfs)
    pg = PgServer()
    t0 = time.monotonic()
    try:
        pg.start()
        with open(os.path.join(pg.data, "postgresql.conf"), "a") as f:
            f.write("\n# scale_data.py\nshared_buffers = 1GB\nmax_wal_size = 8GB\ncheckpoint_timeout = 30min\n"
                    "autovacuum = off\n"
                    # read only by sessions that load auto_explain: the login
                    # role user2_ae (session_preload_libraries, set below)
                    "auto_explain.log_min_duration = 0\nauto_explain.log_analyze = on\n"
                    "auto_explain.log_buffers = on\nauto_explain.log_nested_statements = on\n")
        pg.restart_fast()
        say("PostgreSQL %s on 127.0.0.1:%d, data in %s" % (
            pg.sql("postgres", "SHOW server_version")[0], pg.port, pg.dir))
        pg.create_db(DB)
        r = subprocess.run([mvfs, "db", "migrate", "-o", "db=" + pg.dsn(DB)], capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            raise RuntimeError("migrate failed: %s%s" % (r.stdout, r.stderr))
        say("migrations: %s" % ", ".join(pg.sql(DB, "SELECT count(*) || ' applied, last ' || max(version)"
                                                    " FROM schema_migrations")))

        t = time.monotonic()
        psql(pg, SUPERUSER, GENERATE, vars=dict(U=a.users, M=a.memories, H=a.heavy, J=a.jobs))
        gen_s = time.monotonic() - t
        t = time.monotonic()
        pg.sql(DB, "VACUUM (ANALYZE)", timeout=1800)
        vac_s = time.monotonic() - t
        say("generated in %.0f s, VACUUM ANALYZE %.0f s" % (gen_s, vac_s))
        say("rows: " + ", ".join(
            pg.sql(DB, "SELECT string_agg(relname || ' ' || n_live_tup, ', ' ORDER BY n_live_tup DESC)"
                       " FROM pg_stat_user_tables WHERE n_live_tup > 0")))
        say("database size: " + pg.sql(DB, "SELECT pg_size_pretty(pg_database_size(current_database()))")[0])

        # users' own login roles (0014), and a worker's (0018)
        pg.sql(DB, "SELECT mvault_login_add('user1', 'user1', NULL), mvault_login_add('user2', 'user2', NULL),"
                   " mvault_login_add('user2', 'user2_ae', NULL), mvault_worker_add('jobs1', NULL)")
        pg.sql(DB, "ALTER ROLE user2_ae SET session_preload_libraries = 'auto_explain'")

        # what to look up and list
        u1 = one(pg, "SELECT id FROM users WHERE name = 'user1'")[0]
        u2 = one(pg, "SELECT id FROM users WHERE name = 'user2'")[0]
        idle_name, u_idle = one(pg, "SELECT u.name, u.id FROM users u WHERE u.name NOT IN ('user1', 'user2')"
                                    " AND NOT EXISTS (SELECT 1 FROM background_jobs j WHERE j.user_id = u.id"
                                    " AND j.status IN ('pending', 'retry')) ORDER BY u.name LIMIT 1")
        pg.sql(DB, "SELECT mvault_login_add(%s, 'idle', NULL)" % q(idle_name))
        big = one(pg, "SELECT f.ino, count(*) FROM folders f JOIN user_library l ON l.folder_id = f.id"
                      " JOIN users u ON u.id = f.user_id WHERE u.name = 'user1' AND f.name = 'folder1'"
                      " GROUP BY f.ino")
        small = one(pg, "SELECT f.ino, count(*) FROM folders f JOIN user_library l ON l.folder_id = f.id"
                        " JOIN users u ON u.id = f.user_id WHERE u.name = 'user2' AND f.name = 'folder3'"
                        " GROUP BY f.ino")
        top2 = one(pg, "SELECT f.ino FROM folders f JOIN users u ON u.id = f.user_id WHERE u.name = 'user2'"
                       " AND f.place = 'library' AND f.parent_id IS NULL")[0]
        name_big = one(pg, "SELECT i.display_name, i.ino FROM user_library l JOIN memory_items i ON i.memory_id ="
                           " l.memory_id JOIN folders f ON f.id = l.folder_id WHERE f.ino = %s ORDER BY i.ino"
                           " OFFSET %d LIMIT 1" % (big[0], int(big[1]) * 2 // 3))
        name_small = one(pg, "SELECT i.display_name, i.ino FROM user_library l JOIN memory_items i ON i.memory_id"
                             " = l.memory_id JOIN memory_assets a ON a.id = i.primary_asset_id JOIN folders f ON"
                             " f.id = l.folder_id WHERE f.ino = %s AND a.lifecycle_status = 'active'"
                             " ORDER BY i.ino LIMIT 1" % small[0])
        mid_at = min(10000, int(big[1]) // 2) // PAGE * PAGE      # the start of a page
        mid = one(pg, "SELECT l.memory_id, i.ino FROM user_library l JOIN memory_items i ON i.memory_id ="
                      " l.memory_id JOIN folders f ON f.id = l.folder_id WHERE f.ino = %s"
                      " ORDER BY l.memory_id, i.ino OFFSET %d LIMIT 1" % (big[0], mid_at))
        pend = pg.sql(DB, "SELECT coalesce(u.name, '-') || ' ' || count(*) FROM background_jobs j LEFT JOIN users u"
                          " ON u.id = j.user_id WHERE j.status IN ('pending', 'retry')"
                          " GROUP BY ROLLUP (u.name) ORDER BY count(*) DESC LIMIT 3")
        say("user1 (heavy): folder1 inode %s holds %s files; user2: folder3 inode %s holds %s files" % (
            big[0], big[1], small[0], small[1]))
        say("due jobs (all, then the users with most): %s" % "; ".join(pend))
        say()

        zero = "00000000-0000-0000-0000-000000000000"
        stmts = []  # (role, name, sql, args, modes, rollback)
        for role, uid, tag, folder, name, ino in (
                ("user2", u2, "typical user, folder of %s" % small[1], small[0], name_small[0], name_small[1]),
                ("user1", u1, "heavy user, folder of %s" % big[1], big[0], name_big[0], name_big[1])):
            stmts.append((role, "lookup (find_entry) [%s]" % tag, SQL_LOOKUP, [q(uid), folder, q(name)],
                          ("custom", "generic"), False))
            stmts.append((role, "lookup, no such name [%s]" % tag, SQL_LOOKUP, [q(uid), folder, q("nothere.jpg")],
                          ("custom", "generic"), False))
            stmts.append((role, "getattr (meta_find_ino) [%s]" % tag, SQL_GETATTR, [q(uid), ino],
                          ("custom", "generic"), False))
            # the page as sent (the call's time includes planning the page),
            # its plan in mvault_list_page, and its plan before 0021
            page1 = [q(uid), folder, q(zero), "0", str(PAGE)]
            stmts.append((role, "listing page 1 (meta_list, as sent) [%s]" % tag, SQL_LISTING_CALL,
                          [q(SQL_LISTING)] + page1, ("custom",), False))
            stmts.append((role, "listing page 1, planned in mvault_list_page (enable_sort off) [%s]" % tag,
                          SQL_LISTING, page1, ("custom",), False, "enable_sort = off"))
            stmts.append((role, "listing page 1, BEFORE 0021 (sorts allowed) [%s]" % tag, SQL_LISTING,
                          page1, ("custom",), False))
            fid = one(pg, "SELECT id FROM folders WHERE ino = %s" % folder)[0]
            stmts.append((role, "listing page 1, NOT TAKEN folder id as parameter [%s]" % tag, SQL_LISTING_BY_ID,
                          [q(uid), q(fid), q(zero), "0", str(PAGE)], ("custom",), False))
            if role == "user1":
                n = mid_at // PAGE + 1
                pagen = [q(uid), folder, q(mid[0]), mid[1], str(PAGE)]
                stmts.append((role, "listing page %d (meta_list, as sent) [%s]" % (n, tag), SQL_LISTING_CALL,
                              [q(SQL_LISTING)] + pagen, ("custom",), False))
                stmts.append((role, "listing page %d, planned in mvault_list_page (enable_sort off) [%s]" % (n, tag),
                              SQL_LISTING, pagen, ("custom",), False, "enable_sort = off"))
                stmts.append((role, "listing page %d, BEFORE 0021 (sorts allowed) [%s]" % (n, tag), SQL_LISTING,
                              pagen, ("custom",), False))
                stmts.append((role, "listing page %d, NOT TAKEN folder id as parameter [%s]" % (n, tag),
                              SQL_LISTING_BY_ID, [q(uid), q(fid), q(mid[0]), mid[1], str(PAGE)], ("custom",), False))
            stmts.append((role, "job claim, own user (meta_jobs_claim) [%s]" % role, SQL_CLAIM_MINE,
                          [q(uid), q("scale-bench"), "NULL"], ("custom", "generic"), True))
            stmts.append((role, "job claim, own user, BEFORE issue 10 (the OR) [%s]" % role, SQL_CLAIM_ANY,
                          [q(uid), q("scale-bench"), "NULL"], ("custom", "generic"), True))
        # a mount whose user has no due job: what an idle poll costs
        stmts.append(("idle", "job claim, own user (meta_jobs_claim) [%s, no due job]" % idle_name, SQL_CLAIM_MINE,
                      [q(u_idle), q("scale-bench"), "NULL"], ("custom", "generic"), True))
        stmts.append(("idle", "job claim, own user, BEFORE issue 10 (the OR) [%s, no due job]" % idle_name,
                      SQL_CLAIM_ANY, [q(u_idle), q("scale-bench"), "NULL"], ("custom", "generic"), True))
        stmts.append(("user2", "folder listing (meta_folder_list) [library top of user2]", SQL_FOLDERS,
                      [q(u2), q(""), str(PAGE), top2], ("custom", "generic"), False))
        stmts.append(("jobs1", "job claim, any user (mvaultfs worker)", SQL_CLAIM_ANY,
                      ["NULL", q("scale-bench"), "NULL"], ("custom", "generic"), True))

        summary = []
        for role in ("user2", "user1", "idle", "jobs1"):
            ex = Explainer(pg, role)
            mine = [s for s in stmts if s[0] == role]
            for _, name, sql, args, modes, rb, *setting in mine:
                ex.add(name, sql, args, modes, rb, *setting)
            res = ex.run()
            say("=" * 100)
            say("as login role %s: %s" % (role, res[("session", "-")][0].strip()))
            for _, name, sql, args, modes, rb, *setting in mine:
                for mode in modes:
                    runs = res[(name, mode)]
                    times = [exec_ms(p) for p in runs]
                    plan = runs[-1]
                    say("-" * 100)
                    say("%s -- %s plan; execution %s ms" % (name, mode, " / ".join("%.3f" % x for x in times)))
                    say(plan)
                    summary.append((name, mode, min(times), scans(plan)))

        # a mount's sweep: the heavy user's, ten calls in one session (PL/pgSQL
        # keeps its plans for the session; PostgreSQL may go generic at the
        # sixth), then the same with 0021's plan_cache_mode taken away
        for label, alter in (("", None), (", BEFORE 0021 (plan_cache_mode auto)", "RESET plan_cache_mode")):
            if alter:
                pg.sql(DB, "ALTER FUNCTION mvault_jobs_sweep(integer) " + alter)
            try:
                out = psql(pg, "user1", "\\timing on\n" + "BEGIN;\nSELECT mvault_jobs_sweep(30);\nROLLBACK;\n" * 10)
            finally:
                if alter:
                    pg.sql(DB, "ALTER FUNCTION mvault_jobs_sweep(integer) SET plan_cache_mode = force_custom_plan")
            times = [float(x) for x in re.findall(r"Time: ([\d.]+) ms", out)][1::3]
            say("=" * 100)
            say("sweep (mvault_jobs_sweep) as user1%s, 10 calls in one session, rolled back: %s ms" % (
                label, " / ".join("%.1f" % t for t in times)))
            summary.append(("sweep [user1]%s, calls 1-5" % label, "median", statistics.median(times[:5]), []))
            summary.append(("sweep [user1]%s, calls 6-10" % label, "median", statistics.median(times[5:]), []))

        # create, close, upload record: the functions' inner statements
        say("=" * 100)
        say("mvfs_create, mvfs_stage, mvfs_uploaded as user2 (login role user2_ae, auto_explain of nested"
            " statements; rolled back)")
        sha = "ab" * 32
        log = Path(pg.dir) / "server.log"
        pos = log.stat().st_size
        script = ("\\set ON_ERROR_STOP 1\nBEGIN;\n"
                  "SELECT ino AS new_ino FROM mvfs_create(%(u)s, %(home)s, '', %(home)s, 'scale-new.jpg', 420,"
                  " 1700000000, 0) \\gset\n"
                  "SELECT mvfs_stage(%(u)s, :new_ino, %(sha)s, 123456, 'image/jpeg', 'image', 's3',"
                  " mvault_blob_key(%(pfx)s, %(sha)s), 1700000000, 0, 1, 60, 30, NULL)"
                  " FROM set_config('synchronous_commit', 'off', true);\n"
                  "SELECT mvfs_uploaded(%(u)s, :new_ino, %(sha)s, 123456, 'image/jpeg', 'image', 's3',"
                  " mvault_blob_key(%(pfx)s, %(sha)s), 1700000000, 0, 1, 60, 30)"
                  " FROM set_config('synchronous_commit', 'on', true);\n"
                  "ROLLBACK;\n") % dict(u=q(u2), home=small[0], sha=q(sha), pfx=q("u/%s/" % u2))
        psql(pg, "user2_ae", script)
        time.sleep(0.5)
        with open(log) as f:
            f.seek(pos)
            plans = auto_explained(f.read())
        for ms, query, body in plans:
            sc = scans(body)
            top = query.startswith("SELECT ino AS new_ino") or query.startswith("SELECT mvfs_")
            say("%s%8.3f ms  %-90.90s  %s" % ("* " if top else "  ", ms, " ".join(query.split()),
                                            ", ".join(sc) if sc else "-"))
            if not top and not " ".join(query.split()).startswith(NOISE):
                summary.append(("  in mvfs_*: " + " ".join(query.split())[:60], "fn", ms, sc))
        say("(* = the call the daemon sends; auto_explain logs a statement when it ends, so a call's time"
            " includes the nested lines above it, back to the previous *)")

        say("=" * 100)
        say("summary: best of 3 runs (execution time, server side), indexes used")
        for name, mode, ms, sc in summary:
            flag = " <-- SEQ SCAN" if any(s.startswith("SEQ") for s in sc) else ""
            say("%-70.70s %-7s %9.3f ms  %s%s" % (name, mode, ms, ", ".join(sc), flag))
        say("total %.0f s" % (time.monotonic() - t0))
    finally:
        if a.out:
            Path(a.out).write_text("\n".join(report) + "\n")
        if a.keep:
            print("kept: psql -h 127.0.0.1 -p %d -U %s %s; stop with the postmaster's pid in %s/postmaster.pid"
                  % (pg.port, SUPERUSER, DB, pg.data))
        else:
            pg.stop()


if __name__ == "__main__":
    main()
