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


def test_create_staged_rows_are_the_old_pairs(pg_server):
    """0029's mvfs_create_staged writes each row once; the rows are those of
    0023's form (mvfs_create then mvfs_stage, kept for the release before),
    then 0028's access time, column by column: in library/ and workspace/,
    with and without an access time."""
    db = pg_server.create_db("t_staged_%s" % uuid.uuid4().hex[:8])
    r = subprocess.run([default_bin(), "db", "migrate", "-o", "db=" + pg_server.dsn(db)],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
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
    got = {line.split("|", 1)[0]: line.split("|", 1)[1] for line in rows if line.startswith(("old-", "new-"))}
    assert len(got) == 8, rows
    for c in range(4):
        assert got["new-%d" % c] == got["old-%d" % c], (c, got["old-%d" % c], got["new-%d" % c])
