"""The metadata engine's own suite (tests/unit/test_meta.c) against a
throwaway database: every meta operation's answer and errno, and its
statement budget. The test binary is taken from the build folder of
MVFS_BIN (build/tests/test_meta, or build-asan/tests/test_meta under the
sanitizers), so it runs with the same flags as the daemon under test."""

import os
import subprocess
import uuid
from pathlib import Path

from pgtest import default_bin


def meta_bin():
    return Path(default_bin()).parent / "tests" / "test_meta"


def test_meta_suite(pg_server):
    b = meta_bin()
    assert b.exists(), "%s is missing: make %s" % (b, os.path.relpath(b, Path(__file__).resolve().parents[2]))
    db = pg_server.create_db("t_meta_unit_%s" % uuid.uuid4().hex[:8])
    env = dict(os.environ, MVFS_TEST_DB=pg_server.dsn(db))
    r = subprocess.run([str(b)], capture_output=True, text=True, timeout=280, env=env,
                       stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "skipped" not in r.stdout, out
    lines = r.stdout.splitlines()
    assert lines and lines[-1].endswith(" 0 failed"), out


def migrated_db(pg_server, prefix):
    """A new database of pg_server, migrated by the daemon under test."""
    db = pg_server.create_db("%s_%s" % (prefix, uuid.uuid4().hex[:8]))
    r = subprocess.run([default_bin(), "db", "migrate", "-o", "db=" + pg_server.dsn(db)],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    return db


def same_pairs(rows, n):
    """The rows "old-K|..." and "new-K|..." (K < N) as {name: rest}, each
    new one the same as its old one."""
    got = {line.split("|", 1)[0]: line.split("|", 1)[1] for line in rows if line.startswith(("old-", "new-"))}
    assert len(got) == 2 * n, rows
    for c in range(n):
        assert got["new-%d" % c] == got["old-%d" % c], (c, got["old-%d" % c], got["new-%d" % c])
    return got


def upload_rows(inos, steps):
    """An upload-record comparison's statements: a user and its library,
    INOS inode numbers (temp table n, k from 1), a table `said` of the
    answers, STEPS, then for each name in `said` its answers and its rows
    (memory, item, versions with their blobs, upload sessions, edges,
    keys, deletion jobs), ids left out."""
    return ([
        "SELECT set_config('mvault.user_id', mvault_user_ensure('rows')::text, false);",
        "SELECT mvault_top_folder(mvault_uid(), 'library');",
        "CREATE TEMP TABLE t AS SELECT place, ino FROM folders WHERE parent_id IS NULL AND user_id = mvault_uid();",
        "CREATE TEMP TABLE n AS SELECT row_number() OVER () AS k, i FROM mvfs_inos(%d) i;" % inos,
        "CREATE TEMP TABLE said (name text, said text, at serial);"] + steps + [
        "SELECT s.name, (SELECT string_agg(x.said, ',' ORDER BY x.at) FROM said x WHERE x.name = s.name),"
        " to_jsonb(m) - '{id,title}'::text[],"
        " to_jsonb(i) - '{id,ino,memory_id,primary_asset_id,display_name}'::text[],"
        " (SELECT jsonb_agg((to_jsonb(a) - '{id,memory_id,memory_item_id,group_id,content_hash,storage_key,blob_id,version_ino}'::text[])"
        "    || jsonb_build_object('current', a.id = i.primary_asset_id,"
        "                          'blob', to_jsonb(b) - '{id,content_hash,storage_key}'::text[])"
        "    ORDER BY a.staged_seq, a.lifecycle_status)"
        "    FROM memory_assets a LEFT JOIN blobs b ON b.id = a.blob_id WHERE a.memory_item_id = i.id),"
        " (SELECT jsonb_agg(to_jsonb(u) - '{id,memory_id,session_token}'::text[]) FROM upload_sessions u"
        "   WHERE u.memory_id = m.id),"
        " (SELECT jsonb_agg(to_jsonb(e) - '{id,memory_id,location,content_hash}'::text[] ORDER BY e.artifact)"
        "    FROM storage_edges e WHERE e.memory_id = m.id),"
        " (SELECT string_agg(k.response->>'said', ',' ORDER BY k.key) FROM idempotency_keys k"
        "   WHERE k.route = 'mvfs_uploaded' AND split_part(k.key, ':', 1)::bigint = i.ino),"
        " (SELECT count(*) FROM asset_delete_jobs j JOIN memory_assets a ON a.id = j.asset_id"
        "   WHERE a.memory_item_id = i.id)"
        " FROM (SELECT DISTINCT name FROM said) s LEFT JOIN memory_items i ON i.display_name = s.name"
        " LEFT JOIN memories m ON m.id = i.memory_id ORDER BY s.name"])


def test_create_staged_rows_are_the_old_pairs(pg_server):
    """0029's mvfs_create_staged writes each row once; the rows are those of
    0023's form (mvfs_create then mvfs_stage, kept for the release before),
    then 0028's access time, column by column: in library/ and workspace/,
    with and without an access time."""
    db = migrated_db(pg_server, "t_staged")
    sha = "5" * 64
    args = "'%s', 4096, 'image/jpeg', 'image', 'local', 'ab/cd/%s', 1700000000, 5, 7, 60, 30, '1700000001000000'" % (sha, sha)
    made = []
    for c, (place, atime) in enumerate((p, a) for p in ("library", "workspace") for a in ("NULL", "1650000000000000007")):
        ino = "(SELECT i FROM n WHERE k = %d)"
        home = "(SELECT ino FROM t WHERE place = '%s')" % place
        made += ["SELECT mvfs_create_staged(mvault_uid(), %s, %s, 'old-%d', 416, %s);" % (ino % (2 * c + 1), home, c, args),
                 "UPDATE memory_items SET atime_ns = %s WHERE ino = %s AND %s IS NOT NULL;" % (atime, ino % (2 * c + 1), atime),
                 "SELECT mvfs_create_staged(mvault_uid(), %s, %s, 'new-%d', 416, %s, %s);" % (ino % (2 * c + 2), home, c, args, atime)]
    # one session and one transaction: now() is the same for every row
    rows = pg_server.sql(db, " ".join([
        "SELECT set_config('mvault.user_id', mvault_user_ensure('rows')::text, false);",
        "SELECT mvault_top_folder(mvault_uid(), 'library'), mvault_top_folder(mvault_uid(), 'workspace');",
        "CREATE TEMP TABLE t AS SELECT place, ino FROM folders WHERE parent_id IS NULL AND user_id = mvault_uid();",
        "CREATE TEMP TABLE n AS SELECT row_number() OVER () AS k, i FROM mvfs_inos(12) i;"] + made + [
        "SELECT i.display_name,"
        " to_jsonb(m) - '{id,title}'::text[],"
        " to_jsonb(i) - '{id,ino,memory_id,primary_asset_id,display_name}'::text[],"
        " to_jsonb(a) - '{id,memory_id,memory_item_id,group_id}'::text[],"
        " coalesce(to_jsonb(l) - '{id,memory_id}'::text[], to_jsonb(w) - '{id,memory_id,job_id}'::text[]),"
        " to_jsonb(u) - '{id,memory_id,session_token}'::text[],"
        " (SELECT jsonb_agg(to_jsonb(e) - '{id,memory_id,location}'::text[] ORDER BY e.artifact) FROM storage_edges e"
        "   WHERE e.memory_id = m.id)"
        " FROM memory_items i JOIN memories m ON m.id = i.memory_id JOIN memory_assets a ON a.id = i.primary_asset_id"
        " JOIN upload_sessions u ON u.memory_id = m.id LEFT JOIN user_library l ON l.memory_id = m.id"
        " LEFT JOIN workspace_assets w ON w.memory_id = m.id ORDER BY i.ino"]))
    same_pairs(rows, 4)


def test_uploaded_many_rows_are_mvfs_uploaded(pg_server):
    """0030's mvfs_uploaded_many makes each upload record as mvfs_uploaded
    (0011, 0023; kept for the release before) does: same answers and the
    same rows, column by column, for a file made here and its replay, a
    version replaced before its upload and then the newer one, a file whose
    close-time record was lost, one that is gone, a lost record replaced
    before its upload ('superseded'), and the same bytes closed twice."""
    db = migrated_db(pg_server, "t_uploaded")
    ino = "(SELECT i FROM n WHERE k = %d)"
    home = "(SELECT ino FROM t WHERE place = 'library')"
    at = "'1700000001000000'"
    steps = []
    for c, form in ((0, "old"), (1, "new")):
        def sha(case, version="a"):
            return "%064x" % (0x1000 * (case + 1) + 0x10 * (version == "b") + c)

        def record(name, case, seq, version="a", k=None):
            k = k if k is not None else 10 * case + c + 1
            args = (ino % k, sha(case, version), sha(case, version), seq)
            if form == "old":
                call = ("mvfs_uploaded(mvault_uid(), %s, '%s', 4096, 'image/jpeg', 'image', 'local', 'k/%s',"
                        " NULL, NULL, %d, 60, 30)" % args)
            else:
                call = ("(mvfs_uploaded_many(mvault_uid(), 60, 30, ARRAY[%s], ARRAY[%d::bigint], ARRAY['%s'],"
                        " ARRAY[4096::bigint], ARRAY['image/jpeg'], ARRAY['image'], ARRAY['local'], ARRAY['k/%s'],"
                        " ARRAY[NULL::bigint], ARRAY[NULL::integer]))[1]" % (args[0], args[3], args[1], args[2]))
            steps.append("INSERT INTO said SELECT '%s', %s;" % (name, call))

        def made(name, case, seq=7):
            steps.append("SELECT mvfs_create_staged(mvault_uid(), %s, %s, '%s', 416, '%s', 4096, 'image/jpeg',"
                         " 'image', 'local', 'k/%s', 1700000000, 5, %d, 60, 30, %s, NULL);"
                         % (ino % (10 * case + c + 1), home, name, sha(case), sha(case), seq, at))

        # a file made here, uploaded, and its record replayed
        made("%s-0" % form, 0)
        record("%s-0" % form, 0, 7)
        record("%s-0" % form, 0, 7)
        # a version replaced before its upload, then the newer one
        made("%s-1" % form, 1)
        steps.append("SELECT mvfs_stage(mvault_uid(), %s, '%s', 4096, 'image/jpeg', 'image', 'local', 'k/%s',"
                     " 1700000002, 0, 8, 60, 30, NULL);" % (ino % (10 + c + 1), sha(1, "b"), sha(1, "b")))
        record("%s-1" % form, 1, 7)
        record("%s-1" % form, 1, 8, "b")
        # its close-time record lost: the upload record makes it
        steps.append("SELECT 1 FROM mvfs_create(mvault_uid(), %s, '', 0, '%s-2', 416, 1700000000, 5, %s);"
                     % (home, form, ino % (20 + c + 1)))
        record("%s-2" % form, 2, 9)
        # gone
        record("%s-3" % form, 3, 9, k=30 + c + 1)
        # its close-time record lost, and a newer version recorded
        steps.append("SELECT 1 FROM mvfs_create(mvault_uid(), %s, '', 0, '%s-4', 416, 1700000000, 5, %s);"
                     % (home, form, ino % (40 + c + 1)))
        steps.append("SELECT mvfs_stage(mvault_uid(), %s, '%s', 4096, 'image/jpeg', 'image', 'local', 'k/%s',"
                     " 1700000002, 0, 8, 60, 30, NULL);" % (ino % (40 + c + 1), sha(4, "b"), sha(4, "b")))
        record("%s-4" % form, 4, 7)
        record("%s-4" % form, 4, 8, "b")
        # the same bytes closed again before the first upload: the later
        # entry's record completes the version, the earlier one's finds it so
        made("%s-5" % form, 5)
        steps.append("SELECT mvfs_stage(mvault_uid(), %s, '%s', 4096, 'image/jpeg', 'image', 'local', 'k/%s',"
                     " 1700000002, 0, 8, 60, 30, NULL);" % (ino % (50 + c + 1), sha(5), sha(5)))
        record("%s-5" % form, 5, 8)
        steps.append("INSERT INTO said SELECT '%s-5', upload_status::text FROM memory_assets"
                     " WHERE content_hash = '%s';" % (form, sha(5)))
        record("%s-5" % form, 5, 7)
    rows = pg_server.sql(db, " ".join(upload_rows(60, steps)))
    got = same_pairs(rows, 6)
    assert got["old-0"].split("|")[0] == ","
    assert got["old-3"].split("|")[0] == "gone"
    assert got["old-4"].split("|")[0] == "superseded,"
    assert got["old-5"].split("|")[0] == ",completed,"


def test_uploaded_many_batch_rows_are_one_by_one(pg_server):
    """0032's mvfs_uploaded_many makes the plain records of a batch at once
    (mvault_upload_records_plain) and the others one by one: the answers and
    rows of one call with a batch are those of mvfs_uploaded (0011, 0023)
    called for each entry in turn, column by column: plain files, two
    versions of one file in the batch, a file that is gone, a file whose
    bytes another file of the batch has, a replay, and bytes already in a
    blob from an earlier batch."""
    db = migrated_db(pg_server, "t_uploaded_batch")
    ino = "(SELECT i FROM n WHERE k = %d)"
    home = "(SELECT ino FROM t WHERE place = 'library')"
    steps = []
    for c, form in ((0, "old"), (1, "new")):
        def sha(case, version="a"):
            return "%064x" % (0x1000 * (case + 1) + 0x10 * (version == "b") + c)

        def made(name, k, digest, seq=7):
            steps.append("SELECT mvfs_create_staged(mvault_uid(), %s, %s, '%s', 416, '%s', 4096, 'image/jpeg',"
                         " 'image', 'local', 'k/%s', 1700000000, 5, %d, 60, 30, '1700000001000000', NULL);"
                         % (ino % k, home, name, digest, digest, seq))

        def batch(entries):
            # entries: (name, k, digest, seq)
            if form == "old":
                for name, k, digest, seq in entries:
                    steps.append("INSERT INTO said SELECT '%s', mvfs_uploaded(mvault_uid(), %s, '%s', 4096,"
                                 " 'image/jpeg', 'image', 'local', 'k/%s', NULL, NULL, %d, 60, 30);"
                                 % (name, ino % k, digest, digest, seq))
                return
            arr = lambda vals, typ: "ARRAY[%s]::%s[]" % (",".join(vals), typ)  # noqa: E731
            steps.append("INSERT INTO said SELECT e.name, e.said FROM unnest(%s, mvfs_uploaded_many(mvault_uid(), 60,"
                         " 30, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)) AS e(name, said);" % (
                             arr(["'%s'" % e[0] for e in entries], "text"),
                             arr([ino % e[1] for e in entries], "bigint"), arr(["%d" % e[3] for e in entries], "bigint"),
                             arr(["'%s'" % e[2] for e in entries], "text"), arr(["4096"] * len(entries), "bigint"),
                             arr(["'image/jpeg'"] * len(entries), "text"), arr(["'image'"] * len(entries), "text"),
                             arr(["'local'"] * len(entries), "text"), arr(["'k/%s'" % e[2] for e in entries], "text"),
                             arr(["NULL"] * len(entries), "bigint"), arr(["NULL"] * len(entries), "integer")))

        base = 20 * c
        for f in range(4):
            made("%s-%d" % (form, f), base + f + 1, sha(f))
        # two versions of one file, both in the batch
        made("%s-4" % form, base + 5, sha(4))
        steps.append("SELECT mvfs_stage(mvault_uid(), %s, '%s', 4096, 'image/jpeg', 'image', 'local', 'k/%s',"
                     " 1700000002, 0, 8, 60, 30, NULL);" % (ino % (base + 5), sha(4, "b"), sha(4, "b")))
        # the bytes of file 0 in another file
        made("%s-6" % form, base + 7, sha(0))
        # a file uploaded in an earlier batch, then the same bytes in a new file
        made("%s-7" % form, base + 8, sha(7))
        batch([("%s-7" % form, base + 8, sha(7), 7)])
        made("%s-8" % form, base + 9, sha(7))
        batch([("%s-0" % form, base + 1, sha(0), 7), ("%s-1" % form, base + 2, sha(1), 7),
               ("%s-4" % form, base + 5, sha(4), 7), ("%s-5" % form, base + 6, sha(5), 7),
               ("%s-2" % form, base + 3, sha(2), 7), ("%s-4" % form, base + 5, sha(4, "b"), 8),
               ("%s-6" % form, base + 7, sha(0), 7), ("%s-8" % form, base + 9, sha(7), 7),
               ("%s-3" % form, base + 4, sha(3), 7)])
        # the same batch again: every record a replay
        batch([("%s-0" % form, base + 1, sha(0), 7), ("%s-4" % form, base + 5, sha(4, "b"), 8)])
    rows = pg_server.sql(db, " ".join(upload_rows(40, steps)))
    got = same_pairs(rows, 9)
    assert got["old-0"].split("|")[0] == ",", got["old-0"]
    assert got["old-5"].split("|")[0] == "gone", got["old-5"]
    assert got["old-4"].split("|")[0] == ",,", got["old-4"]
    # the blobs of bytes two files hold count both
    assert '"ref_count": 2' in got["old-6"] and '"ref_count": 2' in got["old-8"], (got["old-6"], got["old-8"])
