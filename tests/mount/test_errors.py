"""Bad input: unreachable database, bad mountpoints, a full store, and
SIGTERM. Each gets a clear error and exit status, never a crash and never
a half-made memory."""

import errno
import os
import signal
import subprocess
import time

import pytest

from pgtest import default_bin, fusermount_u, is_mounted, mount_count
from mvtest import MiB, cmp_files, fsync_path, make_random, poll, q, run, sql


def run_daemon(tmp_path, opts, mnt, timeout=15):
    """Run mvaultfs -f, expected to exit by itself within timeout. Returns
    (status, stdout, stderr, seconds). Never leaves it running or mounted."""
    out, err = tmp_path / "daemon.out", tmp_path / "daemon.err"
    argv = [default_bin(), "-f", "-o", ",".join(opts), str(mnt)]
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    env.pop("MVAULT_DB", None)
    stacked = mount_count(mnt) if os.path.isdir(mnt) else 0
    t0 = time.monotonic()
    with open(out, "wb") as o, open(err, "wb") as e:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e, env=env,
                             start_new_session=True)
    try:
        status = p.wait(timeout)
    except subprocess.TimeoutExpired:
        status = None
    secs = time.monotonic() - t0
    if status is None:
        # it mounted, or hangs: clean up (only our own process group and
        # only a mount it stacked on top of mnt)
        if mount_count(mnt) > stacked:
            fusermount_u(mnt)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
    if os.path.isdir(mnt) and mount_count(mnt) > stacked:
        fusermount_u(mnt, lazy=True)
    return status, out.read_text(errors="replace"), err.read_text(errors="replace"), secs


def lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def good_opts(pg_server, tmp_path):
    db = pg_server.create_db("t_err_%d_%d" % (os.getpid(), time.monotonic_ns()))
    (tmp_path / "store").mkdir(exist_ok=True)
    (tmp_path / "data").mkdir(exist_ok=True)
    return ["db=" + pg_server.dsn(db), "store=%s" % (tmp_path / "store"),
            "data_dir=%s" % (tmp_path / "data")]


def test_unreachable_database(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (tmp_path / "store").mkdir()
    status, out, err, secs = run_daemon(
        tmp_path, ["db=postgresql://mvault@127.0.0.1:1/x", "store=%s" % (tmp_path / "store"),
                   "data_dir=%s" % (tmp_path / "data")], mnt)
    assert status == 1, "status %s after %.1fs\nstdout: %s\nstderr: %s" % (status, secs, out, err)
    assert secs < 15
    assert "127.0.0.1" in err, "stderr does not name the database:\n" + err
    assert not is_mounted(mnt)


def test_database_password_not_shown(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (tmp_path / "store").mkdir()
    status, out, err, secs = run_daemon(
        tmp_path, ["db=postgresql://mvault:s3cr3t-pw@127.0.0.1:1/x",
                   "store=%s" % (tmp_path / "store"), "data_dir=%s" % (tmp_path / "data")], mnt)
    assert status == 1, "status %s\nstdout: %s\nstderr: %s" % (status, out, err)
    assert "s3cr3t-pw" not in out + err, "the password is in the output:\n" + out + err


def check_one_line_error(status, out, err, mnt):
    assert status == 1, "status %s\nstdout: %s\nstderr: %s" % (status, out, err)
    assert len(lines(err)) == 1, "want a one-line error on stderr, got:\n" + err
    assert str(mnt) in err or os.path.basename(str(mnt)) in err, err


def test_mountpoint_missing(pg_server, tmp_path):
    mnt = tmp_path / "absent"
    status, out, err, _ = run_daemon(tmp_path, good_opts(pg_server, tmp_path), mnt)
    check_one_line_error(status, out, err, mnt)
    assert not mnt.exists() or not is_mounted(mnt)


def test_mountpoint_not_empty(pg_server, tmp_path):
    mnt = tmp_path / "full"
    mnt.mkdir()
    (mnt / "somebody's file").write_text("x")
    status, out, err, _ = run_daemon(tmp_path, good_opts(pg_server, tmp_path), mnt)
    check_one_line_error(status, out, err, mnt)
    assert not is_mounted(mnt)
    assert (mnt / "somebody's file").read_text() == "x"


def test_mountpoint_already_mounted(mvfs, pg_server, tmp_path):
    m = mvfs()
    status, out, err, _ = run_daemon(tmp_path, good_opts(pg_server, tmp_path), m.mnt)
    check_one_line_error(status, out, err, m.mnt)
    # the first mount is untouched
    (m.mnt / "library" / "still.txt").write_bytes(b"still here")
    assert (m.mnt / "library" / "still.txt").read_bytes() == b"still here"
    m.unmount()


@pytest.fixture
def small_store(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "smallstore"
    d.mkdir()
    run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", d])
    yield d
    if run(["umount", d], check=False).returncode != 0:
        run(["umount", "-l", d], check=False)


def mvaultfs_sync(m, timeout):
    """`mvaultfs sync MOUNTPOINT` with a time limit: its CompletedProcess."""
    return run([default_bin(), "sync", str(m.mnt), "--timeout", str(timeout)], check=False)


def test_store_full(small_store, mvfs, tmp_path):
    """A full store is an outage: writes keep succeeding into staging (the
    bytes are durable there), nothing is recorded as uploaded, and the upload
    drains once the store has room."""
    m = mvfs(store=small_store)
    lib = m.mnt / "library"
    big = tmp_path / "big.bin"
    make_random(big, 4 * MiB)

    run(["cp", big, lib / "big.bin"])
    cmp_files(big, lib / "big.bin")          # served from staging
    r = mvaultfs_sync(m, 3)
    assert r.returncode != 0, "sync claimed a 4 MiB file reached a 2 MiB store"
    status = sql(m, "SELECT a.upload_status, a.blob_id IS NULL FROM memory_items i"
                    " JOIN memory_assets a ON a.id = i.primary_asset_id WHERE i.display_name = 'big.bin'")
    assert status == ["uploading|t"], status
    assert sql(m, "SELECT count(*) FROM blobs") == ["0"], "a blob row points at an object the store lacks"
    assert "No space left on device" in m.log_text()

    run(["mount", "-o", "remount,size=16m", small_store])   # the store comes back
    r = mvaultfs_sync(m, 60)
    assert r.returncode == 0, r.stderr
    status = sql(m, "SELECT a.upload_status, b.ref_count FROM memory_items i"
                    " JOIN memory_assets a ON a.id = i.primary_asset_id JOIN blobs b ON b.id = a.blob_id"
                    " WHERE i.display_name = 'big.bin'")
    assert status == ["completed|1"], status
    cmp_files(big, lib / "big.bin")
    m.unmount()


def test_staging_full(mvfs, tmp_path):
    """Past the staging cap a write fails with ENOSPC, and nothing of that
    file stays in the database."""
    m = mvfs(extra_opts=["staging_max=2M"])
    lib = m.mnt / "library"
    big = tmp_path / "big.bin"
    make_random(big, 4 * MiB)

    r = run(["cp", big, lib / "big.bin"], check=False)
    assert r.returncode != 0, "cp of 4 MiB past a 2 MiB staging cap succeeded"
    with pytest.raises(OSError) as ei:
        with open(lib / "big2.bin", "wb") as f:
            f.write(big.read_bytes())
    assert ei.value.errno == errno.ENOSPC, ei.value
    for name in ("big.bin", "big2.bin"):
        def count():
            return sql(m, "SELECT count(*) FROM memory_items WHERE display_name = %s" % q(name))
        poll(lambda: count() == ["0"], 10)
        assert count() == ["0"], "a memory row stayed for %s; log:\n%s" % (name, m.log_text())
    assert "staging is full" in m.log_text()

    small = tmp_path / "small.txt"
    make_random(small, 1024)
    run(["cp", small, lib / "small.txt"])
    fsync_path(lib / "small.txt")
    cmp_files(small, lib / "small.txt")
    m.unmount()


def test_sigterm_unmounts(mvfs):
    m = mvfs()
    (m.mnt / "library" / "kept.txt").write_bytes(b"kept")
    os.kill(m.pid, signal.SIGTERM)
    status = m.wait_exit(15)
    assert status == 0, "exit status %s after SIGTERM; log:\n%s" % (status, m.log_text())
    assert poll(lambda: not is_mounted(m.mnt), 3), "still in mountinfo after SIGTERM"
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert (m2.mnt / "library" / "kept.txt").read_bytes() == b"kept"
    m2.unmount()
