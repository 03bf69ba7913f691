""".trash/: tombstoned files inside the grace period; read-only; mv out
restores (issue 3). The grace period is tested with the database clock."""

import errno
import hashlib
import os
import stat

from mvtest import (assert_errno, check_consistency, create_excl, fsync_path, memory_of, q, run,
                    set_skew, sql)

NO_CACHE = ["entry_timeout=0", "attr_timeout=0"]
READ_ONLY = {errno.EPERM, errno.EROFS, errno.EACCES}


def asset_state(m, mem):
    """lifecycle_status, tombstoned_at set?, blob ref_count of the memory's primary asset."""
    return sql(m, "SELECT a.lifecycle_status, a.tombstoned_at IS NOT NULL, b.ref_count"
                  " FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id"
                  " JOIN blobs b ON b.id = a.blob_id WHERE i.memory_id = %s" % q(mem))[0]


def jobs_of(m, mem):
    return sql(m, "SELECT j.status FROM asset_delete_jobs j JOIN memory_items i"
                  " ON i.primary_asset_id = j.asset_id WHERE i.memory_id = %s" % q(mem))


def test_rm_then_restore(mvfs):
    m = mvfs()
    lib, trash = m.mnt / "library", m.mnt / ".trash"
    data = os.urandom(80_000)
    (lib / "b.jpg").write_bytes(data)
    fsync_path(lib / "b.jpg")
    ino = os.stat(lib / "b.jpg").st_ino
    [mem] = memory_of(m, "b.jpg")
    assert asset_state(m, mem) == "active|f|1"

    run(["rm", lib / "b.jpg"])
    assert os.listdir(lib) == []
    assert os.listdir(trash) == ["b.jpg"]
    assert stat.S_IMODE(os.stat(trash).st_mode) == 0o555
    assert (trash / "b.jpg").read_bytes() == data
    assert asset_state(m, mem) == "tombstoned|t|0"
    assert jobs_of(m, mem) == ["pending"]
    assert os.getxattr(trash / "b.jpg", "user.mvault.lifecycle_status") == b"tombstoned"
    check_consistency(m)

    run(["mv", trash / "b.jpg", lib / ""])
    assert os.listdir(trash) == []
    assert os.listdir(lib) == ["b.jpg"]
    assert (lib / "b.jpg").read_bytes() == data
    assert os.stat(lib / "b.jpg").st_ino == ino
    assert asset_state(m, mem) == "active|f|1"
    assert jobs_of(m, mem) == ["cancelled"]
    assert os.getxattr(lib / "b.jpg", "user.mvault.lifecycle_status") == b"active"
    check_consistency(m)
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert os.listdir(m2.mnt / "library") == ["b.jpg"]
    assert (m2.mnt / "library" / "b.jpg").read_bytes() == data
    m2.unmount()


def test_restore_shared_blob(mvfs, tmp_path):
    """Two files with the same bytes: rm both, restore one; the blob is
    referenced once and its deletion job is cancelled."""
    m = mvfs()
    lib, trash = m.mnt / "library", m.mnt / ".trash"
    data = os.urandom(40_000)
    h = hashlib.sha256(data).hexdigest()
    (lib / "one.jpg").write_bytes(data)
    (lib / "two.jpg").write_bytes(data)
    os.unlink(lib / "one.jpg")
    check_consistency(m)
    os.unlink(lib / "two.jpg")
    assert sorted(os.listdir(trash)) == ["one.jpg", "two.jpg"]
    blob = "content_hash LIKE %s" % q("%" + h + "%")
    assert sql(m, "SELECT ref_count FROM blobs WHERE " + blob) == ["0"]
    assert "pending" in sql(m, "SELECT j.status FROM asset_delete_jobs j JOIN blobs b"
                               " ON b.id = j.blob_id WHERE b." + blob)
    check_consistency(m)

    os.rename(trash / "two.jpg", lib / "two.jpg")
    assert sql(m, "SELECT ref_count FROM blobs WHERE " + blob) == ["1"]
    assert "pending" not in sql(m, "SELECT j.status FROM asset_delete_jobs j JOIN blobs b"
                                   " ON b.id = j.blob_id WHERE b." + blob)
    assert os.listdir(trash) == ["one.jpg"]
    assert (lib / "two.jpg").read_bytes() == data
    check_consistency(m)
    m.unmount()


def test_trash_is_read_only(mvfs):
    m = mvfs()
    lib, trash = m.mnt / "library", m.mnt / ".trash"
    (lib / "a.jpg").write_bytes(b"keep")
    (lib / "b.jpg").write_bytes(b"gone")
    os.unlink(lib / "b.jpg")
    [mem] = memory_of(m, "b.jpg")
    before = sql(m, "SELECT a.id, a.lifecycle_status, i.display_name FROM memory_items i"
                    " JOIN memory_assets a ON a.id = i.primary_asset_id ORDER BY i.ino")

    assert_errno(READ_ONLY, open, trash / "b.jpg", "r+b")
    assert_errno(READ_ONLY, open, trash / "b.jpg", "ab")
    assert_errno(READ_ONLY, os.truncate, trash / "b.jpg", 0)
    assert_errno(READ_ONLY, create_excl, trash / "new.jpg", b"x")
    assert_errno(READ_ONLY, open, trash / "b.jpg", "wb")
    assert_errno(READ_ONLY, os.unlink, trash / "b.jpg")
    assert_errno(READ_ONLY, os.rename, trash / "b.jpg", trash / "c.jpg")
    assert_errno(READ_ONLY, os.mkdir, trash / "d")
    # rm puts files there, mv does not
    assert_errno(errno.EPERM, os.rename, lib / "a.jpg", trash / "a.jpg")
    r = run(["mv", lib / "a.jpg", trash / ""], check=False)
    assert r.returncode != 0

    assert os.listdir(trash) == ["b.jpg"]
    assert os.listdir(lib) == ["a.jpg"]
    assert (trash / "b.jpg").read_bytes() == b"gone"
    assert (lib / "a.jpg").read_bytes() == b"keep"
    after = sql(m, "SELECT a.id, a.lifecycle_status, i.display_name FROM memory_items i"
                   " JOIN memory_assets a ON a.id = i.primary_asset_id ORDER BY i.ino")
    assert after == before
    assert asset_state(m, mem).startswith("tombstoned|t|")
    log = m.daemon.log_text()
    assert ".trash" in log, log
    check_consistency(m)
    m.unmount()


def test_grace_period_default_30_days(mvfs):
    m = mvfs(extra_opts=NO_CACHE)
    lib, trash = m.mnt / "library", m.mnt / ".trash"
    (lib / "a.jpg").write_bytes(b"a")
    os.unlink(lib / "a.jpg")
    set_skew(m, "29 days 23 hours")
    assert os.listdir(trash) == ["a.jpg"]
    set_skew(m, "30 days 1 hour")
    assert os.listdir(trash) == []
    assert_errno(errno.ENOENT, os.stat, trash / "a.jpg")
    # gone for good: it cannot be restored
    assert_errno(errno.ENOENT, os.rename, trash / "a.jpg", lib / "a.jpg")
    assert os.listdir(lib) == []
    m.unmount()


def test_grace_period_option(mvfs):
    m = mvfs(extra_opts=NO_CACHE + ["trash_days=2"])
    lib, trash = m.mnt / "library", m.mnt / ".trash"
    (lib / "a.jpg").write_bytes(b"a")
    os.unlink(lib / "a.jpg")
    set_skew(m, "1 day 23 hours")
    assert os.listdir(trash) == ["a.jpg"]
    assert (trash / "a.jpg").read_bytes() == b"a"
    set_skew(m, "2 days 1 hour")
    assert os.listdir(trash) == []
    assert_errno(errno.ENOENT, os.stat, trash / "a.jpg")
    m.unmount()


def test_rm_in_workspace_and_collection_go_to_trash(mvfs):
    m = mvfs()
    (m.mnt / "workspace" / "w.png").write_bytes(b"w")
    os.mkdir(m.mnt / "collections" / "C")
    (m.mnt / "collections" / "C" / "c.jpg").write_bytes(b"c")
    os.unlink(m.mnt / "workspace" / "w.png")
    os.unlink(m.mnt / "collections" / "C" / "c.jpg")
    assert sorted(os.listdir(m.mnt / ".trash")) == ["c.jpg", "w.png"]
    assert os.listdir(m.mnt / "workspace") == []
    assert os.listdir(m.mnt / "library") == []
    check_consistency(m)
    m.unmount()
