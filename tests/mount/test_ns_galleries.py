"""galleries/: albums; ln adds a memory (same inode, st_nlink counts its
places), rm removes only the membership, cp/rsync into a gallery make a
new memory there and in library/ (issue 3)."""

import errno
import hashlib
import os

from mvtest import (assert_errno, check_consistency, create_excl, fsync_path, memory_of, q, run,
                    sql)


def members(m, gallery):
    return sorted(sql(m, "SELECT i.display_name FROM gallery_items gi JOIN galleries g"
                         " ON g.id = gi.gallery_id JOIN memory_items i ON i.memory_id = gi.memory_id"
                         " WHERE g.name = %s" % q(gallery)))


def test_ln_same_inode_and_nlink(mvfs):
    m = mvfs()
    lib, gs = m.mnt / "library", m.mnt / "galleries"
    (lib / "a.jpg").write_bytes(b"a" * 5000)
    (lib / "b.jpg").write_bytes(b"b" * 5000)
    os.mkdir(m.mnt / "collections" / "Trips")
    run(["mv", lib / "a.jpg", m.mnt / "collections" / "Trips" / ""])
    for g in ("Summer", "Winter"):
        os.mkdir(gs / g)
        run(["ln", lib / "a.jpg", gs / g / ""])
    run(["ln", lib / "b.jpg", gs / "Summer" / ""])

    paths = [lib / "a.jpg", m.mnt / "collections" / "Trips" / "a.jpg",
             gs / "Summer" / "a.jpg", gs / "Winter" / "a.jpg"]
    inos = {run(["stat", "-c", "%i", p]).stdout.strip() for p in paths}
    assert len(inos) == 1, inos
    # library 1 + collection 1 + two galleries
    assert [os.stat(p).st_nlink for p in paths] == [4, 4, 4, 4]
    assert run(["stat", "-c", "%h", lib / "a.jpg"]).stdout.strip() == "4"
    # b: library 1 + one gallery
    assert os.stat(lib / "b.jpg").st_nlink == 2
    assert (gs / "Winter" / "a.jpg").read_bytes() == b"a" * 5000
    assert sorted(os.listdir(gs / "Summer")) == ["a.jpg", "b.jpg"]
    assert members(m, "Summer") == ["a.jpg", "b.jpg"]
    assert members(m, "Winter") == ["a.jpg"]
    # already there
    assert_errno(errno.EEXIST, os.link, lib / "a.jpg", gs / "Summer" / "a.jpg")
    assert members(m, "Summer") == ["a.jpg", "b.jpg"]
    check_consistency(m)
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert sorted(os.listdir(m2.mnt / "galleries" / "Summer")) == ["a.jpg", "b.jpg"]
    assert os.stat(m2.mnt / "library" / "a.jpg").st_nlink == 4
    m2.unmount()


def test_ln_under_another_name_is_eperm(mvfs):
    """What the model forbids is EPERM (README), with a log line."""
    m = mvfs()
    lib, g = m.mnt / "library", m.mnt / "galleries" / "G"
    (lib / "a.jpg").write_bytes(b"a")
    os.mkdir(g)
    assert_errno(errno.EPERM, os.link, lib / "a.jpg", g / "b.jpg")
    assert "under its own name" in m.log_text()
    assert os.listdir(g) == []
    assert sql(m, "SELECT count(*) FROM gallery_items") == ["0"]
    m.unmount()


def test_ln_outside_galleries_is_eperm(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    (lib / "a.jpg").write_bytes(b"a")
    os.mkdir(m.mnt / "collections" / "C")
    os.mkdir(m.mnt / "galleries" / "G")
    os.link(lib / "a.jpg", m.mnt / "galleries" / "G" / "a.jpg")
    for dst in (lib / "b.jpg", m.mnt / "workspace" / "a.jpg", m.mnt / "collections" / "C" / "a.jpg",
                m.mnt / "a.jpg"):
        assert_errno(errno.EPERM, os.link, lib / "a.jpg", dst)
    # from a gallery into the library: also not a gallery
    assert_errno(errno.EPERM, os.link, m.mnt / "galleries" / "G" / "a.jpg", lib / "c.jpg")
    assert os.listdir(lib) == ["a.jpg"]
    assert os.listdir(m.mnt / "workspace") == []
    assert os.listdir(m.mnt / "collections" / "C") == []
    assert sql(m, "SELECT count(*) FROM memory_items") == ["1"]
    assert sql(m, "SELECT count(*) FROM user_library WHERE collection_id IS NOT NULL") == ["0"]
    log = m.daemon.log_text()
    assert "galler" in log, log
    check_consistency(m)
    m.unmount()


def test_rm_in_gallery_removes_membership_only(mvfs):
    m = mvfs()
    lib, g = m.mnt / "library", m.mnt / "galleries" / "Summer"
    data = os.urandom(20_000)
    (lib / "a.jpg").write_bytes(data)
    fsync_path(lib / "a.jpg")
    os.mkdir(g)
    os.link(lib / "a.jpg", g / "a.jpg")
    assert os.stat(lib / "a.jpg").st_nlink == 2
    [mem] = memory_of(m, "a.jpg")

    os.unlink(g / "a.jpg")
    assert os.listdir(g) == []
    assert os.listdir(lib) == ["a.jpg"]
    assert os.stat(lib / "a.jpg").st_nlink == 1
    assert (lib / "a.jpg").read_bytes() == data
    assert os.listdir(m.mnt / ".trash") == []
    assert sql(m, "SELECT count(*) FROM gallery_items") == ["0"]
    assert sql(m, "SELECT lifecycle_status FROM memory_assets WHERE memory_id = %s" % q(mem)) == ["active"]
    assert sql(m, "SELECT count(*) FROM asset_delete_jobs") == ["0"]
    # empty now
    os.rmdir(g)
    assert os.listdir(m.mnt / "galleries") == []
    check_consistency(m)
    m.unmount()


def test_cp_into_gallery_makes_a_memory(mvfs, tmp_path):
    m = mvfs()
    lib, g = m.mnt / "library", m.mnt / "galleries" / "G"
    os.mkdir(g)
    data = os.urandom(200_000)
    h = hashlib.sha256(data).hexdigest()
    src = tmp_path / "one.jpg"
    src.write_bytes(data)
    run(["cp", src, lib / "one.jpg"])
    run(["cp", src, g / "two.jpg"])
    fsync_path(g / "two.jpg")

    assert os.listdir(g) == ["two.jpg"]
    assert sorted(os.listdir(lib)) == ["one.jpg", "two.jpg"]
    assert os.stat(g / "two.jpg").st_ino == os.stat(lib / "two.jpg").st_ino
    assert os.stat(g / "two.jpg").st_ino != os.stat(lib / "one.jpg").st_ino
    assert os.stat(lib / "two.jpg").st_nlink == 2
    assert (lib / "two.jpg").read_bytes() == data
    assert members(m, "G") == ["two.jpg"]
    [mem] = memory_of(m, "two.jpg")
    assert sql(m, "SELECT count(*) FROM user_library WHERE memory_id = %s" % q(mem)) == ["1"]
    # identical bytes share one blob
    assert sql(m, "SELECT ref_count FROM blobs WHERE content_hash LIKE %s" % q("%" + h + "%")) == ["2"]
    assert os.getxattr(g / "two.jpg", "user.mvault.sha256").decode() == h
    check_consistency(m)
    m.unmount()


def test_create_in_gallery_name_only_library_has(mvfs):
    """galleries/G/a.jpg does not exist while library/a.jpg is outside G, so
    creating it there (O_CREAT, with or without O_EXCL) makes a new file
    (issue 11; it was EEXIST). G shows it as a.jpg; library/ shows both, the
    older keeping its name and the new one as a twin."""
    m = mvfs()
    lib, g = m.mnt / "library", m.mnt / "galleries" / "G"
    (lib / "a.jpg").write_bytes(b"a")
    os.mkdir(g)
    assert_errno(errno.ENOENT, os.stat, g / "a.jpg")
    create_excl(g / "a.jpg", b"other")
    assert os.listdir(g) == ["a.jpg"]
    assert (g / "a.jpg").read_bytes() == b"other"
    assert (lib / "a.jpg").read_bytes() == b"a"
    names = sorted(os.listdir(lib))
    assert len(names) == 2 and names[0] == "a.jpg" and names[1].startswith("a~"), names
    assert (lib / names[1]).read_bytes() == b"other"
    assert os.stat(lib / names[1]).st_ino == os.stat(g / "a.jpg").st_ino
    # plain O_CREAT (a shell's >) the same way, into a second gallery
    os.mkdir(m.mnt / "galleries" / "H")
    fd = os.open(m.mnt / "galleries" / "H" / "a.jpg", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b"third")
    os.close(fd)
    assert (m.mnt / "galleries" / "H" / "a.jpg").read_bytes() == b"third"
    assert (lib / "a.jpg").read_bytes() == b"a"
    assert len(os.listdir(lib)) == 3
    # a name the gallery shows: O_EXCL is EEXIST, O_CREAT opens it
    assert_errno(errno.EEXIST, create_excl, g / "a.jpg", b"x")
    with open(g / "a.jpg", "ab") as f:
        f.write(b"+")
    assert (g / "a.jpg").read_bytes() == b"other+"
    assert sql(m, "SELECT count(*) FROM memory_items") == ["3"]
    check_consistency(m)
    m.unmount()


def test_rsync_into_gallery(mvfs, tmp_path):
    m = mvfs()
    g = m.mnt / "galleries" / "Trip"
    os.mkdir(g)
    src = tmp_path / "src"
    src.mkdir()
    want = {}
    for name, size in (("p1.jpg", 100_000), ("p2.jpg", 3000), ("clip.mov", 1_500_000)):
        data = os.urandom(size)
        (src / name).write_bytes(data)
        want[name] = data
    run(["rsync", "-a", str(src) + "/", str(g) + "/"])
    assert sorted(os.listdir(g)) == sorted(want)
    assert sorted(os.listdir(m.mnt / "library")) == sorted(want)
    for name, data in want.items():
        assert (g / name).read_bytes() == data
    assert members(m, "Trip") == sorted(want)
    # rsync's temp files left nothing behind
    names = sql(m, "SELECT i.display_name FROM memory_items i JOIN memory_assets a"
                   " ON a.id = i.primary_asset_id WHERE a.lifecycle_status = 'active'")
    assert sorted(names) == sorted(want)
    # a second run changes nothing
    r = run(["rsync", "-a", "--itemize-changes", str(src) + "/", str(g) + "/"])
    assert [ln for ln in r.stdout.splitlines() if not ln.startswith(".d")] == [], r.stdout
    check_consistency(m)
    m.unmount()


def test_mv_between_galleries_and_out(mvfs):
    m = mvfs()
    lib, gs = m.mnt / "library", m.mnt / "galleries"
    (lib / "a.jpg").write_bytes(b"a")
    os.mkdir(gs / "G")
    os.mkdir(gs / "H")
    os.link(lib / "a.jpg", gs / "G" / "a.jpg")
    ino = os.stat(lib / "a.jpg").st_ino

    run(["mv", gs / "G" / "a.jpg", gs / "H" / ""])
    assert os.listdir(gs / "G") == []
    assert os.listdir(gs / "H") == ["a.jpg"]
    assert os.stat(gs / "H" / "a.jpg").st_ino == ino
    assert members(m, "G") == [] and members(m, "H") == ["a.jpg"]
    assert os.stat(lib / "a.jpg").st_nlink == 2
    check_consistency(m)
    m.unmount()


def test_leaving_a_gallery(mvfs):
    """A file leaves a gallery with rm there (it stays in library/).  `mv
    galleries/G/x library/` cannot: library/x is the same inode, and
    coreutils mv refuses ("are the same file") without touching anything."""
    m = mvfs()
    lib, g = m.mnt / "library", m.mnt / "galleries" / "G"
    (lib / "a.jpg").write_bytes(b"a")
    os.mkdir(g)
    os.link(lib / "a.jpg", g / "a.jpg")
    [mem] = memory_of(m, "a.jpg")

    r = run(["mv", g / "a.jpg", lib / ""], check=False)
    assert r.returncode != 0 and "same file" in r.stderr, r
    assert os.listdir(g) == ["a.jpg"] and members(m, "G") == ["a.jpg"]

    os.unlink(g / "a.jpg")
    assert os.listdir(g) == []
    assert members(m, "G") == []
    assert os.listdir(lib) == ["a.jpg"]
    assert sql(m, "SELECT lifecycle_status FROM memory_assets WHERE memory_id = %s" % q(mem)) == ["active"]
    check_consistency(m)
    m.unmount()


def test_gallery_mkdir_rmdir_rename(mvfs):
    m = mvfs()
    lib, gs = m.mnt / "library", m.mnt / "galleries"
    (lib / "a.jpg").write_bytes(b"a")
    os.mkdir(gs / "Summer")
    gid, gino = sql(m, "SELECT id, ino FROM galleries WHERE name = 'Summer'")[0].split("|")
    assert os.stat(gs / "Summer").st_ino == int(gino)
    assert os.getxattr(gs / "Summer", "user.mvault.id").decode() == gid
    assert_errno(errno.EEXIST, os.mkdir, gs / "Summer")
    os.link(lib / "a.jpg", gs / "Summer" / "a.jpg")
    assert_errno(errno.ENOTEMPTY, os.rmdir, gs / "Summer")

    run(["mv", gs / "Summer", gs / "Summer-2026"])
    assert os.listdir(gs) == ["Summer-2026"]
    assert os.listdir(gs / "Summer-2026") == ["a.jpg"]
    assert sql(m, "SELECT id, name FROM galleries") == ["%s|Summer-2026" % gid]
    assert members(m, "Summer-2026") == ["a.jpg"]

    os.unlink(gs / "Summer-2026" / "a.jpg")
    os.rmdir(gs / "Summer-2026")
    assert os.listdir(gs) == []
    assert sql(m, "SELECT count(*) FROM galleries") == ["0"]
    assert os.listdir(lib) == ["a.jpg"]
    check_consistency(m)
    m.unmount()


def test_gallery_and_file_with_the_same_name(mvfs):
    m = mvfs()
    lib, gs = m.mnt / "library", m.mnt / "galleries"
    (lib / "a.jpg").write_bytes(b"a")
    os.mkdir(gs / "a.jpg")
    os.mkdir(m.mnt / "collections" / "a.jpg")
    os.link(lib / "a.jpg", gs / "a.jpg" / "a.jpg")
    assert os.path.isdir(gs / "a.jpg")
    assert os.path.isfile(lib / "a.jpg")
    assert os.listdir(gs / "a.jpg") == ["a.jpg"]
    run(["mv", lib / "a.jpg", m.mnt / "collections" / "a.jpg" / ""])
    assert os.listdir(m.mnt / "collections" / "a.jpg") == ["a.jpg"]
    assert os.stat(lib / "a.jpg").st_nlink == 3
    check_consistency(m)
    m.unmount()
