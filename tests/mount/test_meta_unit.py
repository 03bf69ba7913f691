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
