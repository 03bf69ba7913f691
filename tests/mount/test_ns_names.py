"""Names: one set for library/, collections and galleries; EEXIST with
O_EXCL, replace without; stable ~suffixes for two memories with the same
display name; bad names get a clear errno and make no row; concurrent
renames (issue 3)."""

import errno
import hashlib
import multiprocessing
import os

import pytest

from mvtest import (settle, assert_errno, check_consistency, create_excl, fsync_path, memory_of, oserror,
                    q, run, sql)

NO_CACHE = ["entry_timeout=0", "attr_timeout=0"]


def item_count(m):
    settle(m)
    return int(sql(m, "SELECT count(*) FROM memory_items")[0])


def folder_count(m):
    return sql(m, "SELECT (SELECT count(*) FROM user_collections) + (SELECT count(*) FROM galleries)")[0]


# ------------------------------------------------------------ existing names

def test_create_excl_on_existing_name(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    os.mkdir(m.mnt / "collections" / "C")
    os.mkdir(m.mnt / "galleries" / "G")
    create_excl(lib / "a.jpg", b"first")
    for d in (lib, m.mnt / "collections" / "C"):
        assert_errno(errno.EEXIST, create_excl, d / "a.jpg", b"second")
    assert (lib / "a.jpg").read_bytes() == b"first"
    assert item_count(m) == 1
    assert os.listdir(m.mnt / "collections" / "C") == []
    # a gallery shows only its members: there a.jpg is a new file (issue
    # 11, test_ns_galleries.py), and library/ keeps its a.jpg
    create_excl(m.mnt / "galleries" / "G" / "a.jpg", b"second")
    assert (lib / "a.jpg").read_bytes() == b"first"
    assert item_count(m) == 2
    check_consistency(m)
    m.unmount()


def test_cp_over_existing_is_copy_on_write(mvfs, tmp_path):
    m = mvfs()
    f = m.mnt / "library" / "a.jpg"
    d1, d2 = os.urandom(60_000), os.urandom(61_000)
    f.write_bytes(d1)
    fsync_path(f)
    ino = os.stat(f).st_ino
    [mem] = memory_of(m, "a.jpg")
    old_asset = sql(m, "SELECT primary_asset_id FROM memory_items WHERE memory_id = %s" % q(mem))[0]
    assert os.getxattr(f, "user.mvault.sha256").decode() == hashlib.sha256(d1).hexdigest()

    src = tmp_path / "a.jpg"
    src.write_bytes(d2)
    run(["cp", src, f])
    fsync_path(f)
    assert f.read_bytes() == d2
    assert os.stat(f).st_ino == ino
    assert os.getxattr(f, "user.mvault.sha256").decode() == hashlib.sha256(d2).hexdigest()
    assert memory_of(m, "a.jpg") == [mem]
    assert sql(m, "SELECT lifecycle_status FROM memory_assets WHERE id = %s" % q(old_asset)) == ["tombstoned"]
    assert sql(m, "SELECT a.lifecycle_status FROM memory_items i JOIN memory_assets a"
                  " ON a.id = i.primary_asset_id WHERE i.memory_id = %s" % q(mem)) == ["active"]
    assert os.listdir(m.mnt / "library") == ["a.jpg"]

    # append: another new version
    with open(f, "ab") as fh:
        fh.write(b"tail")
    fsync_path(f)
    assert f.read_bytes() == d2 + b"tail"
    assert os.getxattr(f, "user.mvault.sha256").decode() == hashlib.sha256(d2 + b"tail").hexdigest()
    assert os.stat(f).st_ino == ino
    check_consistency(m)
    m.unmount()


def test_rename_over_existing_makes_a_new_version(mvfs):
    """A fresh file (one version, in no gallery) renamed over another is a
    save: the replaced file keeps its memory and takes the new content and
    the moved file's inode; the old content is a version in .trash/."""
    m = mvfs(extra_opts=["version_min_age=0"])
    lib = m.mnt / "library"
    d1, d2 = os.urandom(10_000), os.urandom(11_000)
    (lib / "a.jpg").write_bytes(d1)
    (lib / "b.jpg").write_bytes(d2)
    ino_a = os.stat(lib / "a.jpg").st_ino
    [mb] = memory_of(m, "b.jpg")
    os.rename(lib / "a.jpg", lib / "b.jpg")
    assert os.listdir(lib) == ["b.jpg"]
    assert (lib / "b.jpg").read_bytes() == d1
    assert os.stat(lib / "b.jpg").st_ino == ino_a
    assert memory_of(m, "b.jpg") == [mb]
    assert sql(m, "SELECT count(*) FROM memories") == ["1"]
    [old] = os.listdir(m.mnt / ".trash")
    assert old.startswith("b (replaced ") and old.endswith(").jpg"), old
    assert (m.mnt / ".trash" / old).read_bytes() == d2
    check_consistency(m)
    m.unmount()


def test_rename_over_existing_tombstones_a_curated_one(mvfs):
    """A file with history of its own (here: in a gallery) renamed over
    another replaces it as on ext4: the replaced one goes to .trash/."""
    m = mvfs()
    lib = m.mnt / "library"
    d1, d2 = os.urandom(10_000), os.urandom(11_000)
    (lib / "a.jpg").write_bytes(d1)
    (lib / "b.jpg").write_bytes(d2)
    os.mkdir(m.mnt / "galleries" / "G")
    os.link(lib / "a.jpg", m.mnt / "galleries" / "G" / "a.jpg")
    ino_a = os.stat(lib / "a.jpg").st_ino
    [mb] = memory_of(m, "b.jpg")
    os.rename(lib / "a.jpg", lib / "b.jpg")
    assert os.listdir(lib) == ["b.jpg"]
    assert (lib / "b.jpg").read_bytes() == d1
    assert os.stat(lib / "b.jpg").st_ino == ino_a
    assert sql(m, "SELECT a.lifecycle_status FROM memory_items i JOIN memory_assets a"
                  " ON a.id = i.primary_asset_id WHERE i.memory_id = %s" % q(mb)) == ["tombstoned"]
    assert os.listdir(m.mnt / ".trash") == ["b.jpg"]
    assert (m.mnt / ".trash" / "b.jpg").read_bytes() == d2
    check_consistency(m)
    m.unmount()


# ------------------------------------------------------------ twins

def test_twins_get_stable_suffixes(mvfs):
    m = mvfs(extra_opts=NO_CACHE)
    lib, c = m.mnt / "library", m.mnt / "collections" / "C"
    da, db = os.urandom(1000), os.urandom(2000)
    (lib / "a.jpg").write_bytes(da)
    (lib / "b.jpg").write_bytes(db)
    ino_a, ino_b = os.stat(lib / "a.jpg").st_ino, os.stat(lib / "b.jpg").st_ino
    assert ino_a < ino_b
    os.mkdir(c)
    run(["mv", lib / "a.jpg", c / ""])
    run(["mv", lib / "b.jpg", c / ""])
    [ma] = memory_of(m, "a.jpg")
    [mb] = memory_of(m, "b.jpg")

    # as the web app would: a second memory with the same display name
    sql(m, "UPDATE memory_items SET display_name = 'a.jpg' WHERE display_name = 'b.jpg'")
    twin = "a~%s.jpg" % mb[:4]
    want = sorted(["a.jpg", twin])

    for _ in range(3):
        assert sorted(os.listdir(lib)) == want
        assert sorted(os.listdir(c)) == want
    inos = {e.name: e.inode() for e in os.scandir(lib)}
    assert inos == {"a.jpg": ino_a, twin: ino_b}
    for d in (lib, c):
        assert (d / "a.jpg").read_bytes() == da
        assert (d / twin).read_bytes() == db
        assert os.stat(d / "a.jpg").st_ino == ino_a
        assert os.stat(d / twin).st_ino == ino_b
    assert os.getxattr(lib / twin, "user.mvault.id").decode() == mb
    assert os.getxattr(lib / "a.jpg", "user.mvault.id").decode() == ma
    # the other suffixes are not names
    assert_errno(errno.ENOENT, os.stat, lib / ("a~%s.jpg" % ma[:4]))
    assert_errno(errno.ENOENT, os.stat, lib / "a~0000.jpg" if mb[:4] != "0000" else lib / "a~ffff.jpg")
    check_consistency(m)
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    lib = m2.mnt / "library"
    assert sorted(os.listdir(lib)) == want
    assert sorted(os.listdir(m2.mnt / "collections" / "C")) == want
    assert (lib / "a.jpg").read_bytes() == da
    assert (lib / twin).read_bytes() == db
    m2.unmount()


def test_names_from_the_web_app_are_sanitised(mvfs):
    """display_name is whatever the web app stored; a name that cannot be
    a file name (slash, '.', '..', control characters, over 255 bytes)
    is shown sanitised, so the listing never fails and every entry opens."""
    m = mvfs(extra_opts=NO_CACHE)
    lib = m.mnt / "library"
    bad = ["x/y.jpg", "..", ".", "ctl\x01.jpg", "n" * 300 + ".jpg"]
    data = {}
    for i, _ in enumerate(bad):
        d = os.urandom(500 + i)
        (lib / ("f%d.jpg" % i)).write_bytes(d)
        data[hashlib.sha256(d).hexdigest()] = d
    for i, name in enumerate(bad):
        sql(m, "UPDATE memory_items SET display_name = %s WHERE display_name = %s"
               % (q(name), q("f%d.jpg" % i)))
    err = oserror(os.listdir, lib)
    assert err is None, "listing library/ fails: %s" % errno.errorcode.get(err, err)
    names = os.listdir(lib)
    assert len(names) == len(bad) and len(set(names)) == len(bad), names
    seen = set()
    for n in names:
        assert "/" not in n and n not in (".", "..") and 0 < len(n.encode()) <= 255, repr(n)
        got = (lib / n).read_bytes()
        seen.add(hashlib.sha256(got).hexdigest())
    assert seen == set(data)
    m.unmount()


# ------------------------------------------------------------ bad names

CONTROL = ["ctl\x01.jpg", "tab\there.jpg", "new\nline.jpg", "esc\x1b.jpg", "del\x7f.jpg", "\x1f"]
BAD_UTF8 = [b"bad\xff.jpg", b"half\xc3.jpg", b"over\xc0\xaf.jpg", b"\xed\xa0\x80surrogate.jpg"]


def _bytes_path(p, name):
    return os.fsencode(str(p)) + b"/" + (name if isinstance(name, bytes) else name.encode())


@pytest.mark.parametrize("name", CONTROL + BAD_UTF8,
                         ids=lambda n: repr(n).replace("\\", "_"))
def test_bad_name_is_einval(mvfs, name):
    m = mvfs()
    lib = m.mnt / "library"
    (lib / "ok.jpg").write_bytes(b"ok")
    os.mkdir(m.mnt / "collections" / "C")
    os.mkdir(m.mnt / "galleries" / "G")
    before = item_count(m)
    for d in ("library", "workspace", "collections/C", "galleries/G"):
        assert_errno(errno.EINVAL, create_excl, _bytes_path(m.mnt / d, name), b"x")
    for d in ("collections", "galleries"):
        assert_errno(errno.EINVAL, os.mkdir, _bytes_path(m.mnt / d, name))
    assert_errno(errno.EINVAL, os.rename, _bytes_path(lib, "ok.jpg"), _bytes_path(lib, name))
    assert_errno(errno.EINVAL, os.rename, _bytes_path(m.mnt / "collections", "C"),
                 _bytes_path(m.mnt / "collections", name))
    assert item_count(m) == before
    assert folder_count(m) == "2"
    assert os.listdir(lib) == ["ok.jpg"]
    assert sql(m, "SELECT display_name FROM memory_items") == ["ok.jpg"]
    log = m.daemon.log_text()
    assert "refusing the name" in log, "no log line naming the rule; log ends:\n" + log[-600:]
    m.unmount()


def test_dot_dot_makes_nothing(mvfs):
    """'.' and '..' are resolved by the kernel; whatever the errno, no row
    is made and nothing changes."""
    m = mvfs()
    lib = m.mnt / "library"
    (lib / "ok.jpg").write_bytes(b"ok")
    for d in ("library", "workspace", "collections", "galleries"):
        for n in ("..", "."):
            assert oserror(create_excl, m.mnt / d / n, b"x") is not None
            assert oserror(os.mkdir, m.mnt / d / n) is not None
    assert oserror(os.rename, lib / "ok.jpg", lib / "..") is not None
    assert sorted(os.listdir(m.mnt)) == [".trash", "collections", "galleries", "library", "workspace"]
    assert os.listdir(lib) == ["ok.jpg"]
    assert item_count(m) == 1 and folder_count(m) == "0"
    m.unmount()


def test_spaces_and_255_bytes_are_kept(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    names = [" lead.jpg", "trail.jpg ", "  both  ", "a" * 251 + ".jpg", "é" * 127 + "x"]
    for n in names:
        assert len(n.encode()) <= 255
        create_excl(lib / n, n.encode())
    assert sorted(os.listdir(lib)) == sorted(names)
    assert sorted(sql(m, "SELECT display_name FROM memory_items")) == sorted(names)
    for n in names:
        assert (lib / n).read_bytes() == n.encode()
    long = "c" * 255
    os.mkdir(m.mnt / "collections" / long)
    os.mkdir(m.mnt / "galleries" / long)
    os.mkdir(m.mnt / "collections" / " spaced ")
    assert sorted(os.listdir(m.mnt / "collections")) == sorted([long, " spaced "])
    assert os.listdir(m.mnt / "galleries") == [long]
    os.link(lib / names[3], m.mnt / "galleries" / long / names[3])
    assert os.listdir(m.mnt / "galleries" / long) == [names[3]]
    m.unmount()
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert sorted(os.listdir(m2.mnt / "library")) == sorted(names)
    m2.unmount()


def test_256_bytes_is_enametoolong(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    (lib / "ok.jpg").write_bytes(b"ok")
    os.mkdir(m.mnt / "collections" / "C")
    os.mkdir(m.mnt / "galleries" / "G")
    for long in ("a" * 252 + ".jpg", "é" * 128):
        assert len(long.encode()) == 256
        for d in ("library", "workspace", "collections/C", "galleries/G"):
            assert_errno(errno.ENAMETOOLONG, create_excl, m.mnt / d / long, b"x")
        for d in ("collections", "galleries"):
            assert_errno(errno.ENAMETOOLONG, os.mkdir, m.mnt / d / long)
        assert_errno(errno.ENAMETOOLONG, os.rename, lib / "ok.jpg", lib / long)
        assert_errno(errno.ENAMETOOLONG, os.rename, m.mnt / "galleries" / "G", m.mnt / "galleries" / long)
    assert item_count(m) == 1 and folder_count(m) == "2"
    assert os.listdir(lib) == ["ok.jpg"]
    m.unmount()


def test_move_folder_into_itself(mvfs):
    m = mvfs()
    for d in ("collections", "galleries"):
        os.mkdir(m.mnt / d / "A")
        assert_errno(errno.EINVAL, os.rename, m.mnt / d / "A", m.mnt / d / "A" / "B")
        r = run(["mv", m.mnt / d / "A", m.mnt / d / "A" / ""], check=False)
        assert r.returncode != 0
        assert os.listdir(m.mnt / d) == ["A"]
        assert os.listdir(m.mnt / d / "A") == []
    assert folder_count(m) == "2"
    m.unmount()


# ------------------------------------------------------------ concurrent renames

ROUNDS = 30


def _racer(barrier, results, tag, src, dst):
    for r in range(ROUNDS):
        barrier.wait(60)
        try:
            os.rename(src, dst)
            results.put((r, tag, 0))
        except OSError as e:
            results.put((r, tag, e.errno))
        barrier.wait(60)
        barrier.wait(60)      # main checks and puts the file back


def _race(m, src, dsts, home, mounts):
    """Two processes rename src[i] to dsts[i] at once (i = 0, 1), ROUNDS
    times; dsts[i] lies under mounts[i]; home (on m) is where main puts
    the winner back as x.jpg."""
    data = os.urandom(33_333)
    (home / "x.jpg").write_bytes(data)
    fsync_path(home / "x.jpg")
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(3)
    results = ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(barrier, results, i, src[i], dsts[i])) for i in (0, 1)]
    for p in procs:
        p.start()
    try:
        for r in range(ROUNDS):
            barrier.wait(60)
            barrier.wait(60)
            got = sorted(results.get(timeout=30)[1:] for _ in (0, 1))
            oks = [tag for tag, e in got if e == 0]
            live = sql(m, "SELECT i.display_name FROM memory_items i JOIN memory_assets a"
                          " ON a.id = i.primary_asset_id WHERE a.lifecycle_status = 'active'")
            assert len(oks) == 1, ("round %d: (process, errno) %r: want one success and one"
                                   " ENOENT; active files in the database now: %r"
                                   % (r, got, live))
            assert [e for _, e in got if e != 0] == [errno.ENOENT], "round %d: %r" % (r, got)
            win = dsts[oks[0]]
            assert win.read_bytes() == data, "round %d: content changed" % r
            assert live == [win.name], "round %d: active files %r, winner %s" % (r, live, win)
            os.rename(m.mnt / win.relative_to(mounts[oks[0]]), home / "x.jpg")
            barrier.wait(60)
    finally:
        barrier.abort()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    assert sql(m, "SELECT count(*) FROM memory_items") == ["1"]
    assert sql(m, "SELECT count(*) FROM memory_assets WHERE lifecycle_status = 'tombstoned'") == ["0"]
    check_consistency(m)


def test_concurrent_renames_one_mount(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    _race(m, [lib / "x.jpg"] * 2, [lib / "p1.jpg", lib / "p2.jpg"], lib, [m.mnt] * 2)
    m.unmount()


def test_concurrent_moves_between_collections(mvfs):
    m = mvfs()
    cs = m.mnt / "collections"
    for c in ("A", "B", "C"):
        os.mkdir(cs / c)
    _race(m, [cs / "A" / "x.jpg"] * 2, [cs / "B" / "x.jpg", cs / "C" / "x.jpg"], cs / "A",
          [m.mnt] * 2)
    m.unmount()


def test_concurrent_renames_two_mounts(mvfs):
    """The same user mounted twice on one database: a rename from each
    mount at once; the database decides, exactly one wins."""
    m1 = mvfs(extra_opts=NO_CACHE)
    m2 = mvfs(db=m1.db, store=m1.store, extra_opts=NO_CACHE)
    l1, l2 = m1.mnt / "library", m2.mnt / "library"
    _race(m1, [l1 / "x.jpg", l2 / "x.jpg"], [l1 / "p1.jpg", l2 / "p2.jpg"], l1, [m1.mnt, m2.mnt])
    m2.unmount()
    m1.unmount()
