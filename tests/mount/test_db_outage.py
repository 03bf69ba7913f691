"""A database outage (issue 11): each test runs a PostgreSQL of its own and
takes it away under a mount.  Operations wait for the database (reconnect
with backoff, bounded by -o db_timeout) instead of failing at once; a
statement is run again only when it provably did not take effect; sync and
status name the side that is down."""

import os
import subprocess
import sys
import time
from pathlib import Path

from cachetest import (end_writer, local_stores, make_sources, mount_on, mvstatus, mvsync, read_all, stats,  # noqa: F401
                       wait_for)
from pgtest import PgServer

# Copies the files of src into dst one by one, going on after a failure,
# and logs for each "CLOSED name secs" or "ERR name secs error": how long
# its create, writes and close took.
TIMED_WRITER = r"""
import os, sys, time

# rows as they are, not after the mount's records (conftest.Mount.settle): these tests take the database away
RAW_SQL = True
src, dst, log, pause = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
with open(log, "a") as lg:
    for n in sorted(os.listdir(src)):
        data = open(os.path.join(src, n), "rb").read()
        t = time.monotonic()
        try:
            fd = os.open(os.path.join(dst, n), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            for i in range(0, len(data), 65536):
                os.write(fd, data[i:i + 65536])
            os.close(fd)
            lg.write("CLOSED %s %.3f\n" % (n, time.monotonic() - t))
        except OSError as e:
            lg.write("ERR %s %.3f %s\n" % (n, time.monotonic() - t, e))
        lg.flush()
        time.sleep(pause)
"""


def start_timed_writer(src, dst, log, pause):
    return subprocess.Popen([sys.executable, "-c", TIMED_WRITER, str(src), str(dst), str(log), str(pause)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def writer_lines(log):
    try:
        return [ln.split(" ", 3) for ln in Path(log).read_text().splitlines()]
    except OSError:
        return []


def own_mount(srv, mvfs, store, name, extra_opts=()):
    db = srv.create_db(name)
    m = mount_on(mvfs, store, db=srv.dsn(db), extra_opts=list(extra_opts))
    m.pg, m.db = srv, db
    return m


def ingest_through(srv, mvfs, local_stores, tmp_path, name, outage, pause):
    """100 files copied in the background; OUTAGE() runs once 20 are
    closed.  Returns (mount, files, writer log lines)."""
    store = local_stores()
    src = tmp_path / "src"
    files = make_sources(src, 100, 16 * 1024)
    m = own_mount(srv, mvfs, store, name)
    log = tmp_path / "writer.log"
    w = start_timed_writer(src, m.mnt / "library", log, pause)
    try:
        wait_for(lambda: len(writer_lines(log)) >= 20 or w.poll() is not None, 60, interval=0.002,
                 what="20 files written")
        assert w.poll() is None, "the writer ended before the outage"
        outage()
    finally:
        end_writer(w, 240, must_finish=True)
    return m, files, writer_lines(log)


def check_all_there(m, files):
    r = mvsync(m, 120)
    assert r.returncode == 0, "sync after the outage: %s\nlog:\n%s" % (r.stderr, m.log_text())
    for name, data in files.items():
        assert read_all(m.mnt / "library" / name) == data, name
    assert m.sql("SELECT display_name FROM memory_items GROUP BY display_name HAVING count(*) > 1") == []


def test_pg_restart_during_copy_of_100_files(local_stores, mvfs, tmp_path):
    srv = PgServer().start()
    try:
        m, files, lines = ingest_through(srv, mvfs, local_stores, tmp_path, "t_outage_restart",
                                         srv.restart_fast, 0.02)
        errors = [ln for ln in lines if ln[0] == "ERR"]
        print("pg_ctl restart -m fast: %d written, %d errors, longest stall %.2f s" % (
            len(lines), len(errors), max(float(ln[2]) for ln in lines)))
        print("\n".join(ln for ln in m.log_text().splitlines() if "database:" in ln))
        assert errors == [], "writer errors: %r\nlog:\n%s" % (errors[:5], m.log_text())
        assert len(lines) == 100
        check_all_there(m, files)
        m.unmount()
    finally:
        srv.stop()


# Long enough that a write's wait for the database stands out from any
# other pause (the reconnect's pause grows to 1 s), short for make check.
OUTAGE_S = 4


def test_pg_stopped_during_ingest(local_stores, mvfs, tmp_path):
    srv = PgServer().start()
    down = {}

    def outage():
        srv.stop_fast()
        down["at"] = time.monotonic()
        time.sleep(OUTAGE_S)
        srv.start_again()
        down["for"] = time.monotonic() - down["at"]

    try:
        m, files, lines = ingest_through(srv, mvfs, local_stores, tmp_path, "t_outage_stop", outage, 0.02)
        errors = [ln for ln in lines if ln[0] == "ERR"]
        stall = max(float(ln[2]) for ln in lines)
        print("server down %.1f s: %d written, %d errors, longest stall %.2f s" % (
            down["for"], len(lines), len(errors), stall))
        assert errors == [], "writer errors: %r\nlog:\n%s" % (errors[:5], m.log_text())
        assert len(lines) == 100
        assert stall > OUTAGE_S / 2, "no operation waited for the database (longest stall %.2f s)" % stall
        assert "operations wait for it" in m.log_text()
        check_all_there(m, files)
        m.unmount()
    finally:
        srv.stop()


def test_sync_and_status_name_the_database(local_stores, mvfs, tmp_path):
    srv = PgServer().start()
    try:
        store = local_stores(tmpfs_mb=16)
        m = own_mount(srv, mvfs, store, "t_outage_sync", ["db_timeout=600"])
        lib = m.mnt / "library"
        store.outage()
        files = {"s%d.bin" % i: os.urandom(20000) for i in range(5)}
        for name, data in files.items():
            (lib / name).write_bytes(data)
        wait_for(lambda: stats(m.mnt)["store_failing"] > 0, 30, what="an upload refused by the store")
        r = mvsync(m, 1)
        assert r.returncode == 1 and "the store is unreachable" in r.stderr, r.stderr

        srv.stop_fast()
        store.restore()
        # the uploaders' next try sends the bytes, then waits for the database
        wait_for(lambda: stats(m.mnt)["db_down_secs"] > 0, 90, what="the daemon to find the database down")
        r = mvsync(m, 1)
        assert r.returncode == 1, r.stderr
        assert "gave up after 1 s" in r.stderr and "the database is unreachable" in r.stderr, r.stderr
        assert "store is unreachable" not in r.stderr, r.stderr
        st = mvstatus(m)
        assert "the database is unreachable" in st.stdout.splitlines()[0], st.stdout
        print(r.stderr.strip())
        print(st.stdout.strip())

        srv.start_again()
        r = mvsync(m, 120)
        assert r.returncode == 0, "sync once the database is back: %s\nlog:\n%s" % (r.stderr, m.log_text())
        assert mvstatus(m).stdout.splitlines()[0].endswith(": healthy")
        for name, data in files.items():
            assert read_all(lib / name) == data, name
        m.unmount()
    finally:
        srv.stop()


def test_create_fails_after_db_timeout(local_stores, mvfs, tmp_path):
    srv = PgServer().start()
    try:
        store = local_stores()
        m = own_mount(srv, mvfs, store, "t_outage_timeout", ["db_timeout=2"])
        lib = m.mnt / "library"
        (lib / "before.txt").write_bytes(b"before")
        held = open(lib / "before.txt", "rb")
        srv.stop_fast()
        # an open file reads without the database (its bytes are content,
        # staged or cached); an open, a lookup or a stat needs its row
        t = time.monotonic()
        assert held.read() == b"before"
        held.close()
        assert time.monotonic() - t < 1.5
        # a change that needs the database (a file made in a folder whose
        # names this mount knows needs none: DECISIONS.md, "A create made
        # here first"; a folder is made by the database)
        t = time.monotonic()
        try:
            os.mkdir(lib / "during")
            err = None
        except OSError as e:
            err = e
        took = time.monotonic() - t
        print("mkdir with the database down: %s after %.2f s" % (err, took))
        assert err is not None and err.errno == 5, err      # EIO
        assert 1.5 < took < 20, took
        assert "database: unreachable for 2 s (db_timeout)" in m.log_text()

        srv.start_again()
        (lib / "after.txt").write_bytes(b"after")          # the mount recovers by itself
        assert read_all(lib / "after.txt") == b"after"
        m.unmount()
    finally:
        srv.stop()
