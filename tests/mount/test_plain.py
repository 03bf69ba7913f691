"""Plain files: what operating systems and editors leave in folders
(.DS_Store, ._* AppleDouble files, Thumbs.db, desktop.ini, .directory, lock
and swap files) is kept as ordinary files of the folder, never as memories:
tools that write them work, and the web application's tables never see
them."""

import errno
import os
import subprocess

import pytest

from mvtest import run

CLUTTER = [".DS_Store", "._IMG_0001.jpg", "Thumbs.db", "desktop.ini", ".directory",
           ".~lock.report.odt#", "~$report.docx", ".notes.txt.swp"]


def memories_named(m, name):
    return m.sql("SELECT count(*) FROM memory_items WHERE display_name = '%s'"
                 % name.replace("'", "''"))


def test_plain_files_are_files_not_memories(mvfs):
    m = mvfs()
    d = m.mnt / "library" / "Trip"
    os.mkdir(d)
    for i, name in enumerate(CLUTTER):
        (d / name).write_bytes(b"%d" % i * 100)
    (d / "a.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(1000))
    assert sorted(os.listdir(d)) == sorted(CLUTTER + ["a.jpg"])
    for i, name in enumerate(CLUTTER):
        assert (d / name).read_bytes() == b"%d" % i * 100
        assert memories_named(m, name) == ["0"], name
    assert m.sql("SELECT count(*) FROM memories") == ["1"]
    assert m.sql("SELECT count(*) FROM user_library") == ["1"]
    assert m.sql("SELECT count(*) FROM plain_files") == [str(len(CLUTTER))]
    # rewrite, append, truncate: as on any disk
    ds = d / ".DS_Store"
    ds.write_bytes(b"new")
    with open(ds, "ab") as f:
        f.write(b"+more")
    assert ds.read_bytes() == b"new+more"
    os.truncate(ds, 3)
    assert ds.read_bytes() == b"new"
    os.utime(ds, ns=(1_600_000_000_000_000_001, 1_500_000_000_000_000_002))
    assert os.stat(ds).st_mtime_ns == 1_500_000_000_000_000_002
    os.setxattr(ds, "user.test", b"v")
    assert os.getxattr(ds, "user.test") == b"v"
    m.unmount()
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir)
    d = m2.mnt / "library" / "Trip"
    assert (d / ".DS_Store").read_bytes() == b"new"
    assert os.stat(d / ".DS_Store").st_mtime_ns == 1_500_000_000_000_000_002
    assert sorted(os.listdir(d)) == sorted(CLUTTER + ["a.jpg"])
    # removed at once: no memory, so nothing in .trash/
    os.unlink(d / "Thumbs.db")
    assert "Thumbs.db" not in os.listdir(d)
    assert os.listdir(m2.mnt / ".trash") == []
    m2.unmount()


def test_plain_files_renames_and_folders(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    os.mkdir(lib / "A")
    (lib / "A" / ".DS_Store").write_bytes(b"x")
    # a plain file moves and is replaced like any file
    os.mkdir(lib / "B")
    (lib / "B" / ".DS_Store").write_bytes(b"old")
    os.rename(lib / "A" / ".DS_Store", lib / "B" / ".DS_Store")
    assert (lib / "B" / ".DS_Store").read_bytes() == b"x"
    assert os.listdir(lib / "A") == []
    # a plain file does not turn into a memory by rename, nor back: EXDEV,
    # and mv copies instead
    with pytest.raises(OSError) as e:
        os.rename(lib / "B" / ".DS_Store", lib / "B" / "photo.jpg")
    assert e.value.errno == errno.EXDEV
    run(["mv", lib / "B" / ".DS_Store", lib / "B" / "photo.jpg"])
    assert (lib / "B" / "photo.jpg").read_bytes() == b"x"
    assert memories_named(m, "photo.jpg") == ["1"]
    # a folder holding a plain file is not empty; rm -r empties it
    (lib / "A" / "desktop.ini").write_bytes(b"[.ShellClassInfo]")
    with pytest.raises(OSError) as e:
        os.rmdir(lib / "A")
    assert e.value.errno == errno.ENOTEMPTY
    run(["rm", "-r", lib / "A"])
    assert "A" not in os.listdir(lib)
    # Finder writes .DS_Store into collections and galleries too
    os.mkdir(m.mnt / "collections" / "C")
    (m.mnt / "collections" / "C" / ".DS_Store").write_bytes(b"c")
    assert os.listdir(m.mnt / "collections" / "C") == [".DS_Store"]
    os.unlink(m.mnt / "collections" / "C" / ".DS_Store")
    os.rmdir(m.mnt / "collections" / "C")
    m.unmount()


def test_plain_file_size_limit(mvfs):
    """A plain file holds at most 32 MiB: more is EFBIG at close, one log
    line, and the file keeps what it had."""
    m = mvfs()
    p = m.mnt / "library" / "Thumbs.db"
    p.write_bytes(b"small")
    f = open(p, "r+b")
    f.seek(33 << 20)
    f.write(b"x")
    with pytest.raises(OSError) as e:
        f.close()
    assert e.value.errno == errno.EFBIG
    assert p.read_bytes() == b"small"
    assert "more than a folder's plain file may hold" in m.log_text()
    m.unmount()


def test_rsync_macos_tree(mvfs, tmp_path):
    """rsync from a tree a Mac or Windows machine left its files in: exit
    0, a rerun sends nothing, and none of them is a memory."""
    src = tmp_path / "src"
    (src / "Summer").mkdir(parents=True)
    for name in CLUTTER:
        (src / "Summer" / name).write_bytes(os.urandom(200))
    (src / "Summer" / "IMG_0001.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(3000))
    (src / ".DS_Store").write_bytes(os.urandom(100))
    m = mvfs()
    run(["rsync", "-a", "%s/" % src, "%s/" % (m.mnt / "library")])
    r = run(["rsync", "-ai", "%s/" % src, "%s/" % (m.mnt / "library")])
    assert r.stdout.strip() == "", r.stdout
    out = tmp_path / "out"
    run(["rsync", "-a", "%s/" % (m.mnt / "library"), "%s/" % out])
    assert subprocess.run(["diff", "-r", src, out]).returncode == 0
    assert m.sql("SELECT display_name FROM memory_items") == ["IMG_0001.jpg"]
    assert m.sql("SELECT count(*) FROM memories") == ["1"]
    m.unmount()
