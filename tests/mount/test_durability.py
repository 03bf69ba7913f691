"""Where a closed file is durable (issue 10): in the local journal, the
moment close returns. The close-time database record is committed without
waiting for PostgreSQL's WAL flush; the upload record, made from the
journal entry, commits durably before the entry goes and makes the
close-time record again if a crash lost it.

Proven here with kill -9 of PostgreSQL and of the daemon, together, in the
middle of an ingest, on a server that (unlike the suite's shared one) makes
synchronous commits: every file whose close returned is there afterwards,
byte for byte, once; no blob row names bytes the store lacks."""

import os
import signal

from cachetest import (asset_rows, closed_names, local_stores, end_writer, make_sources,  # noqa: F401
                       mount_on, mvsync, read_all, start_writer, wait_for)
from pgtest import PgServer

# rows as they are, not after the mount's records (conftest.Mount.settle): these tests are about crashes during ingest
RAW_SQL = True


class CrashablePg(PgServer):
    """A PostgreSQL of its own (the test kills it), committing synchronously
    like a real deployment (fsync stays off: a process crash, not a power
    loss, is what is simulated; WAL not yet written by the server is lost)."""

    def start(self):
        super().start()
        self.sql("postgres", "ALTER SYSTEM SET synchronous_commit = on")
        self.sql("postgres", "SELECT pg_reload_conf()")
        return self


def test_kill9_of_postgres_and_daemon_during_ingest(local_stores, mvfs, tmp_path):
    srv = CrashablePg().start()
    try:
        store = local_stores()
        src = tmp_path / "src"
        files = make_sources(src, 300, 16 * 1024)
        db = "t_durability"
        srv.create_db(db)
        m = mount_on(mvfs, store, db=srv.dsn(db), extra_opts=["uploaders=1"])
        m.pg, m.db = srv, db
        log = tmp_path / "writer.log"
        w = start_writer(src, m.mnt / "library", log)
        try:
            wait_for(lambda: len(closed_names(log)) >= 120 or w.poll() is not None, 120,
                     interval=0.002, what="120 closed files")
            assert w.poll() is None, "the writer ended early: %s" % w.stderr.read()
            srv.crash()
            m.kill(signal.SIGKILL)
        finally:
            end_writer(w)
        closed = closed_names(log)
        assert 120 <= len(closed) < 300, "%d closed: no crash mid-ingest" % len(closed)
        journal = m.data_dir / "cache" / "journal"
        left = len(os.listdir(journal))
        srv.start_again()
        unrecorded = [n for n in closed if asset_rows(m, n) in ([], [("pending", "", "")])]
        print("closed before the crash: %d; journal entries left: %d; closed files whose close-time"
              " record the crash lost: %d" % (len(closed), left, len(unrecorded)))

        m2 = mount_on(mvfs, store, db=srv.dsn(db), data_dir=m.data_dir, mnt=m.mnt)
        m2.pg, m2.db = srv, db
        r = mvsync(m2, 120)
        assert r.returncode == 0, "sync after the crash: %s\nlog:\n%s" % (r.stderr, m2.log_text())
        for name in closed:
            got = read_all(m2.mnt / "library" / name)
            assert got == files[name], "%s: %d bytes after the crash, not the %d closed" % (
                name, len(got), len(files[name]))
            rows = asset_rows(m2, name)
            assert len(rows) == 1 and rows[0][0] == "completed", "%s: %r" % (name, rows)
        assert m2.sql("SELECT display_name FROM memory_items GROUP BY display_name HAVING count(*) > 1") == []
        assert m2.sql("SELECT content_hash FROM memory_assets WHERE content_hash IS NOT NULL"
                      " GROUP BY content_hash HAVING count(*) > 1") == []
        objs = store.objects()
        missing = [h for h in m2.sql("SELECT content_hash FROM blobs") if h not in objs]
        assert missing == [], "blob rows without their bytes in the store: %r" % missing
        assert os.listdir(journal) == []
        m2.unmount()
    finally:
        srv.stop()
