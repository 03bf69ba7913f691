"""workspace/: temporary files that expire 7 days after creation, and
promotion into library/, a collection or a gallery (issue 3).

Expiry is tested with the database clock (mvault_clock.skew), not sleeps.
"""

import errno
import os
import time

from mvtest import (assert_errno, check_consistency, create_excl, fsync_path, memory_of, q,
                    run, set_skew, sql)

NO_CACHE = ["entry_timeout=0", "attr_timeout=0"]


def ws_rows(m, mem):
    return sql(m, "SELECT count(*) FROM workspace_assets WHERE memory_id = %s" % q(mem))[0]


def lib_rows(m, mem):
    return sql(m, "SELECT count(*) FROM user_library WHERE memory_id = %s" % q(mem))[0]


def test_workspace_file_expires_in_7_days(mvfs, tmp_path):
    m = mvfs()
    data = os.urandom(10_000)
    src = tmp_path / "shot.png"
    src.write_bytes(data)
    run(["cp", src, m.mnt / "workspace/"])
    f = m.mnt / "workspace" / "shot.png"
    fsync_path(f)
    assert f.read_bytes() == data
    assert os.listdir(m.mnt / "workspace") == ["shot.png"]
    assert os.stat(f).st_nlink == 1
    # temporary: not in library/
    assert os.listdir(m.mnt / "library") == []
    assert_errno(errno.ENOENT, os.stat, m.mnt / "library" / "shot.png")

    [mem] = memory_of(m, "shot.png")
    assert ws_rows(m, mem) == "1"
    assert lib_rows(m, mem) == "0"
    secs = float(sql(m, "SELECT extract(epoch FROM expires_at - mvault_now())"
                        " FROM workspace_assets WHERE memory_id = %s" % q(mem))[0])
    assert 7 * 86400 - 300 < secs <= 7 * 86400, "expires in %.0f s, want 7 days" % secs
    check_consistency(m)
    m.unmount()


def test_expired_file_disappears_at_once(mvfs):
    m = mvfs(extra_opts=NO_CACHE)
    ws = m.mnt / "workspace"
    (ws / "old.png").write_bytes(b"old")
    fsync_path(ws / "old.png")

    set_skew(m, "6 days 23 hours")
    assert os.listdir(ws) == ["old.png"]
    assert (ws / "old.png").read_bytes() == b"old"

    set_skew(m, "7 days 1 minute")
    assert os.listdir(ws) == []
    assert_errno(errno.ENOENT, os.stat, ws / "old.png")
    assert_errno(errno.ENOENT, open, ws / "old.png", "rb")

    # a file made now (on the moved clock) is there for its own 7 days
    (ws / "new.png").write_bytes(b"new")
    assert os.listdir(ws) == ["new.png"]
    # the expired name is free again
    create_excl(ws / "old.png", b"again")
    assert sorted(os.listdir(ws)) == ["new.png", "old.png"]
    assert (ws / "old.png").read_bytes() == b"again"

    set_skew(m, "8 days")
    assert sorted(os.listdir(ws)) == ["new.png", "old.png"]
    set_skew(m, "15 days")
    assert os.listdir(ws) == []
    check_consistency(m)
    m.unmount()


def test_expiry_with_kernel_caches(mvfs):
    """Default mount options: the listing drops an expired file at once; a
    cached lookup lasts at most the 1 s entry timeout."""
    m = mvfs()
    ws = m.mnt / "workspace"
    (ws / "x.png").write_bytes(b"x")
    os.stat(ws / "x.png")
    set_skew(m, "8 days")
    assert os.listdir(ws) == []
    time.sleep(1.1)
    assert_errno(errno.ENOENT, os.stat, ws / "x.png")
    m.unmount()


def test_promote_to_library(mvfs):
    m = mvfs()
    data = os.urandom(50_000)
    ws, lib = m.mnt / "workspace", m.mnt / "library"
    (ws / "shot.png").write_bytes(data)
    fsync_path(ws / "shot.png")
    ino = os.stat(ws / "shot.png").st_ino
    [mem] = memory_of(m, "shot.png")

    run(["mv", ws / "shot.png", lib / ""])
    assert os.listdir(ws) == []
    assert os.listdir(lib) == ["shot.png"]
    assert os.stat(lib / "shot.png").st_ino == ino
    assert (lib / "shot.png").read_bytes() == data
    assert ws_rows(m, mem) == "0"
    assert lib_rows(m, mem) == "1"
    # permanent: the clock moving past the old expiry changes nothing
    set_skew(m, "30 days")
    assert os.listdir(lib) == ["shot.png"]
    assert sql(m, "SELECT lifecycle_status FROM memory_assets a JOIN memory_items i"
                  " ON a.id = i.primary_asset_id WHERE i.memory_id = %s" % q(mem)) == ["active"]
    check_consistency(m)
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert os.listdir(m2.mnt / "library") == ["shot.png"]
    assert os.listdir(m2.mnt / "workspace") == []
    assert (m2.mnt / "library" / "shot.png").read_bytes() == data
    m2.unmount()


def test_promote_to_collection_and_gallery(mvfs):
    m = mvfs()
    ws = m.mnt / "workspace"
    os.mkdir(m.mnt / "collections" / "Trips")
    os.mkdir(m.mnt / "galleries" / "Summer")
    (ws / "c.png").write_bytes(b"c")
    (ws / "g.png").write_bytes(b"g")
    [mc] = memory_of(m, "c.png")
    [mg] = memory_of(m, "g.png")

    run(["mv", ws / "c.png", m.mnt / "collections" / "Trips" / ""])
    assert os.listdir(m.mnt / "collections" / "Trips") == ["c.png"]
    assert "c.png" in os.listdir(m.mnt / "library")
    assert ws_rows(m, mc) == "0"
    assert sql(m, "SELECT c.name FROM user_library l JOIN user_collections c"
                  " ON c.id = l.collection_id WHERE l.memory_id = %s" % q(mc)) == ["Trips"]

    run(["mv", ws / "g.png", m.mnt / "galleries" / "Summer" / ""])
    assert os.listdir(m.mnt / "galleries" / "Summer") == ["g.png"]
    assert sorted(os.listdir(m.mnt / "library")) == ["c.png", "g.png"]
    assert ws_rows(m, mg) == "0"
    assert lib_rows(m, mg) == "1"
    assert sql(m, "SELECT count(*) FROM gallery_items WHERE memory_id = %s" % q(mg)) == ["1"]
    assert os.listdir(ws) == []
    assert (m.mnt / "library" / "g.png").read_bytes() == b"g"
    check_consistency(m)
    m.unmount()


def test_rename_inside_workspace_keeps_it_temporary(mvfs):
    m = mvfs()
    ws = m.mnt / "workspace"
    (ws / "a.png").write_bytes(b"a")
    [mem] = memory_of(m, "a.png")
    os.rename(ws / "a.png", ws / "b.png")
    assert os.listdir(ws) == ["b.png"]
    assert ws_rows(m, mem) == "1"
    assert lib_rows(m, mem) == "0"
    assert os.listdir(m.mnt / "library") == []
    m.unmount()


def test_nothing_moves_into_workspace(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    os.mkdir(m.mnt / "collections" / "C")
    os.mkdir(m.mnt / "galleries" / "G")
    (lib / "a.jpg").write_bytes(b"a")
    (m.mnt / "collections" / "C" / "c.jpg").write_bytes(b"c")
    (lib / "g.jpg").write_bytes(b"g")
    os.link(lib / "g.jpg", m.mnt / "galleries" / "G" / "g.jpg")

    for src in (lib / "a.jpg", m.mnt / "collections" / "C" / "c.jpg",
                m.mnt / "galleries" / "G" / "g.jpg"):
        assert_errno(errno.EPERM, os.rename, src, m.mnt / "workspace" / src.name)
        assert src.exists()
    assert os.listdir(m.mnt / "workspace") == []
    assert sql(m, "SELECT count(*) FROM workspace_assets") == ["0"]
    assert sorted(os.listdir(lib)) == ["a.jpg", "c.jpg", "g.jpg"]
    log = m.daemon.log_text()
    assert "workspace/" in log, log
    check_consistency(m)
    m.unmount()


def test_workspace_has_its_own_names(mvfs):
    m = mvfs()
    create_excl(m.mnt / "library" / "a.jpg", b"library")
    create_excl(m.mnt / "workspace" / "a.jpg", b"workspace")
    assert_errno(errno.EEXIST, create_excl, m.mnt / "workspace" / "a.jpg", b"again")
    assert (m.mnt / "library" / "a.jpg").read_bytes() == b"library"
    assert (m.mnt / "workspace" / "a.jpg").read_bytes() == b"workspace"
    assert os.stat(m.mnt / "library" / "a.jpg").st_ino != os.stat(m.mnt / "workspace" / "a.jpg").st_ino
    check_consistency(m)
    m.unmount()
