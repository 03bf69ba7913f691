"""The desktop trash (issue 15): the freedesktop.org Trash specification's
.Trash-$UID/ at the mount's top, a view of .trash/, driven by the real
`gio trash` (GLib's own trash code, as Nautilus, PCManFM and Thunar use it)
and, for the trash window's side (list, restore, empty), by gvfs's trash
backend under a private session bus (dbus-run-session)."""

import errno
import hashlib
import os
import stat
import subprocess
import time
from datetime import datetime

import pytest

from imgtest import JOBS_FAST
from mvtest import (TOP_ALL, assert_errno, check_consistency, fsync_path, memory_of, object_path, poll, q,
                    sql)

UID = os.getuid()
HAS_GVFS = os.path.exists("/usr/libexec/gvfsd-trash")


def gio(m, *args, bus=False, check=True):
    """gio ARGS in the mount's top folder; with BUS inside a session bus of
    its own (gvfs's trash:// needs one), else with GIO's local VFS only."""
    cmd = ["gio"] + [str(a) for a in args]
    env = dict(os.environ)
    if bus:
        cmd = ["dbus-run-session", "--"] + cmd
    else:
        env["GIO_USE_VFS"] = "local"
    r = subprocess.run(cmd, cwd=str(m.mnt), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    if check:
        assert r.returncode == 0, "gio %s: %s%s\nlog:\n%s" % (args, r.stdout, r.stderr, m.log_text(40))
    return r


def own_trash(m):
    """{trash:/// URI: original path} of this mount's trash as gvfs lists
    it.  gvfs lists the trash of every mount on the machine (other tests'
    too), so tests look at their own entries only, and never empty the
    whole trash."""
    lines = gio(m, "trash", "--list", bus=True).stdout.splitlines()
    return dict(ln.split("\t", 1) for ln in lines if ln.split("\t")[-1].startswith("%s/" % m.mnt))


def trash_dirs(m):
    top = m.mnt / (".Trash-%d" % UID)
    return top, top / "files", top / "info"


def info_of(path):
    """The [Trash Info] keys of a .trashinfo file."""
    lines = path.read_text().splitlines()
    assert lines[0] == "[Trash Info]", lines
    return dict(line.split("=", 1) for line in lines[1:] if line)


def asset_state(m, mem):
    return sql(m, "SELECT a.lifecycle_status, b.ref_count FROM memory_items i"
                  " JOIN memory_assets a ON a.id = i.primary_asset_id JOIN blobs b ON b.id = a.blob_id"
                  " WHERE i.memory_id = %s" % q(mem))[0]


def test_gio_trash_tombstones_like_rm(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    top, files, info = trash_dirs(m)
    (lib / "2023").mkdir()
    data = os.urandom(30_000)
    f = lib / "2023" / "a b.jpg"
    f.write_bytes(data)
    fsync_path(f)
    ino = os.stat(f).st_ino
    [mem] = memory_of(m, "a b.jpg")

    before = time.time()
    gio(m, "trash", "library/2023/a b.jpg")
    assert os.listdir(lib / "2023") == []
    # what rm does: tombstoned, its blob down to 0, a deletion queued
    assert asset_state(m, mem) == "tombstoned|0"
    assert sql(m, "SELECT j.status FROM asset_delete_jobs j JOIN memory_items i"
                  " ON i.primary_asset_id = j.asset_id WHERE i.memory_id = %s" % q(mem)) == ["pending"]
    assert os.listdir(m.mnt / ".trash") == ["a b.jpg"]
    # the view: same name, same inode, same bytes; its .trashinfo made from the tombstone
    assert os.listdir(files) == ["a b.jpg"]
    assert os.stat(files / "a b.jpg").st_ino == ino
    assert (files / "a b.jpg").read_bytes() == data
    assert os.listdir(info) == ["a b.jpg.trashinfo"]
    keys = info_of(info / "a b.jpg.trashinfo")
    assert keys["Path"] == "library/2023/a%20b.jpg"
    deleted = datetime.strptime(keys["DeletionDate"], "%Y-%m-%dT%H:%M:%S").timestamp()   # local time
    assert before - 2 <= deleted <= time.time() + 1, keys
    assert os.stat(info / "a b.jpg.trashinfo").st_size == len((info / "a b.jpg.trashinfo").read_bytes())
    # the trash folder as file managers check it, and out of the top's listing
    st = os.lstat(top)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == UID
    assert sorted(os.listdir(top)) == ["files", "info"]
    assert set(os.listdir(m.mnt)) == TOP_ALL
    assert not os.path.lexists(m.mnt / ".Trash")        # gio's first choice: absent, not refused
    check_consistency(m)
    m.unmount()

    # nothing was kept by the mount: the next one shows the same
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    _, files2, info2 = trash_dirs(m2)
    assert os.listdir(files2) == ["a b.jpg"]
    assert info_of(info2 / "a b.jpg.trashinfo")["Path"] == "library/2023/a%20b.jpg"
    m2.unmount()


def test_names_in_the_trash_stay_distinct(mvfs):
    """Two x.jpg trashed: gio asks for x.jpg, then x.2.jpg; the view shows
    them as .trash/ does (x.jpg, x~hhhh.jpg), each with its own .trashinfo."""
    m = mvfs()
    lib = m.mnt / "library"
    _, files, info = trash_dirs(m)
    (lib / "x.jpg").write_bytes(b"first")
    gio(m, "trash", "library/x.jpg")
    # the name is taken: O_EXCL on its .trashinfo says so, as gio needs
    assert_errno(errno.EEXIST, os.open, info / "x.jpg.trashinfo", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    (lib / "x.jpg").write_bytes(b"second")
    gio(m, "trash", "library/x.jpg")
    names = sorted(os.listdir(files))
    assert len(names) == 2 and names[0] == "x.jpg" and names[1].startswith("x~"), names
    assert names == sorted(os.listdir(m.mnt / ".trash"))
    assert sorted(os.listdir(info)) == [n + ".trashinfo" for n in names]
    assert {(files / n).read_bytes() for n in names} == {b"first", b"second"}
    assert {info_of(info / (n + ".trashinfo"))["Path"] for n in names} == {"library/x.jpg"}
    m.unmount()


@pytest.mark.skipif(not HAS_GVFS, reason="gvfs (the trash:// backend) is not installed: make deps")
def test_trash_window_lists_and_restores(mvfs):
    m = mvfs(extra_opts=["version_min_age=0"])
    lib = m.mnt / "library"
    _, files, info = trash_dirs(m)
    (lib / "2023" / "Wedding").mkdir(parents=True)
    data = os.urandom(20_000)
    (lib / "2023" / "Wedding" / "a b.jpg").write_bytes(data)
    (lib / "c.jpg").write_bytes(b"c")
    fsync_path(lib / "2023" / "Wedding" / "a b.jpg")
    ino = os.stat(lib / "2023" / "Wedding" / "a b.jpg").st_ino
    [mem] = memory_of(m, "a b.jpg")
    gio(m, "trash", "library/2023/Wedding/a b.jpg", "library/c.jpg")

    listed = own_trash(m)
    where = {path: uri for uri, path in listed.items()}
    assert set(where) == {"%s/library/2023/Wedding/a b.jpg" % m.mnt, "%s/library/c.jpg" % m.mnt}, listed
    mine = str(m.mnt).replace("/", "\\") + "\\"
    names = [n for n in gio(m, "list", "trash:///", bus=True).stdout.splitlines() if n.startswith(mine)]
    assert len(names) == 2, names

    gio(m, "trash", "--restore", where["%s/library/2023/Wedding/a b.jpg" % m.mnt], bus=True)
    f = lib / "2023" / "Wedding" / "a b.jpg"
    assert f.read_bytes() == data
    assert os.stat(f).st_ino == ino
    assert asset_state(m, mem) == "active|1"
    assert os.listdir(files) == ["c.jpg"] and os.listdir(info) == ["c.jpg.trashinfo"]
    assert os.listdir(m.mnt / ".trash") == ["c.jpg"]
    check_consistency(m)
    m.unmount()


@pytest.mark.skipif(not HAS_GVFS, reason="gvfs (the trash:// backend) is not installed: make deps")
def test_empty_trash_deletes_now_except_held(mvfs):
    """"Empty trash" ends the grace period at once: the files leave .trash/
    and the deletion job takes their bytes at its next sweep, never under
    legal hold."""
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    _, files, info = trash_dirs(m)
    gone, held = os.urandom(40_000), os.urandom(41_000)
    hg, hh = hashlib.sha256(gone).hexdigest(), hashlib.sha256(held).hexdigest()
    (lib / "gone.jpg").write_bytes(gone)
    (lib / "held.jpg").write_bytes(held)
    for n in ("gone.jpg", "held.jpg"):
        fsync_path(lib / n)
    sql(m, "UPDATE memory_assets a SET legal_hold = true FROM memory_items i"
           " WHERE i.primary_asset_id = a.id AND i.display_name = 'held.jpg'")
    gio(m, "trash", "library/gone.jpg", "library/held.jpg")
    assert sorted(os.listdir(files)) == ["gone.jpg", "held.jpg"]
    time.sleep(2)                                   # two sweeps: the grace period holds them
    assert object_path(m.store, hg).exists() and object_path(m.store, hh).exists()

    # what "Empty trash" does to each entry of this mount (`gio trash
    # --empty` would empty every trash on the machine, the user's own too)
    uris = own_trash(m)
    assert len(uris) == 2, uris
    for uri in uris:
        gio(m, "remove", uri, bus=True)
    assert os.listdir(files) == [] and os.listdir(info) == []
    assert os.listdir(m.mnt / ".trash") == []
    assert poll(lambda: not object_path(m.store, hg).exists(), timeout=30), m.log_text()
    assert object_path(m.store, hh).exists()        # legal hold
    assert sql(m, "SELECT status FROM asset_delete_jobs ORDER BY status") == ["completed", "pending"]
    check_consistency(m)
    m.unmount()


def test_rm_in_files_and_mv_out(mvfs):
    """Without gvfs: what other implementations (trash-cli, KIO, a shell)
    do -- rm in files/ deletes now, mv out restores."""
    m = mvfs()
    lib = m.mnt / "library"
    _, files, info = trash_dirs(m)
    (lib / "keep.jpg").write_bytes(b"k")
    (lib / "drop.jpg").write_bytes(b"d")
    gio(m, "trash", "library/keep.jpg", "library/drop.jpg")
    os.unlink(files / "drop.jpg")
    assert sql(m, "SELECT a.tombstoned_at < mvault_now() - interval '30 days' FROM memory_items i"
                  " JOIN memory_assets a ON a.id = i.primary_asset_id WHERE i.display_name = 'drop.jpg'") == ["t"]
    os.rename(files / "keep.jpg", lib / "keep.jpg")
    assert (lib / "keep.jpg").read_bytes() == b"k"
    assert os.listdir(files) == [] and os.listdir(info) == [] and os.listdir(m.mnt / ".trash") == []
    m.unmount()


def test_folders_are_not_trashed_whole(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    _, files, info = trash_dirs(m)
    (lib / "2023" / "sub").mkdir(parents=True)
    (lib / "2023" / "sub" / "a.jpg").write_bytes(b"a")
    (lib / "empty").mkdir()
    r = gio(m, "trash", "library/2023", check=False)
    assert r.returncode != 0 and "across filesystem boundaries" in r.stderr, r.stderr   # EXDEV
    assert (lib / "2023" / "sub" / "a.jpg").read_bytes() == b"a"
    assert "cannot trash folder '2023' whole" in m.log_text(20)
    assert os.listdir(files) == [] and os.listdir(info) == []     # gio took its .trashinfo back
    gio(m, "trash", "library/empty")
    assert sorted(os.listdir(lib)) == ["2023"]
    m.unmount()


def test_refusals(mvfs):
    """Trashing where nothing can be removed, writing where only a rename
    puts things: clear errnos, and nothing left behind in info/."""
    m = mvfs()
    lib = m.mnt / "library"
    top, files, info = trash_dirs(m)
    (lib / "a.jpg").write_bytes(b"a")
    os.unlink(lib / "a.jpg")                      # in .trash/, which is read-only
    r = gio(m, "trash", ".trash/a.jpg", check=False)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r.stderr
    r = gio(m, "trash", "library", check=False)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r.stderr
    assert os.listdir(info) == ["a.jpg.trashinfo"]   # the made one only
    assert_errno(errno.EPERM, (files / "new.jpg").write_bytes, b"x")
    assert_errno(errno.EPERM, os.unlink, info / "a.jpg.trashinfo")
    assert_errno(errno.EPERM, (info / "a.jpg.trashinfo").write_text, "x")
    assert_errno(errno.EPERM, os.mkdir, top / "more")
    assert_errno(errno.EPERM, os.rename, files / "a.jpg", info / "a.jpg")
    assert_errno(errno.ENOENT, os.stat, m.mnt / (".Trash-%d" % (UID + 4242)))
    assert os.listdir(files) == ["a.jpg"]
    m.unmount()


def test_trashinfo_written_by_hand(mvfs):
    m = mvfs()
    _, files, info = trash_dirs(m)
    good = "[Trash Info]\nPath=library/some%20where/x.jpg\nDeletionDate=2026-12-07T10:31:07\n"
    bad = {
        "garbage.trashinfo": "just some words\n",
        "nogroup.trashinfo": "Path=library/x.jpg\nDeletionDate=2026-12-07T10:31:07\n",
        "nopath.trashinfo": "[Trash Info]\nDeletionDate=2026-12-07T10:31:07\n",
        "escape.trashinfo": "[Trash Info]\nPath=library/%zz.jpg\nDeletionDate=2026-12-07T10:31:07\n",
        "date.trashinfo": "[Trash Info]\nPath=library/x.jpg\nDeletionDate=yesterday\n",
    }
    for name, text in bad.items():
        before = len(m.daemon.log_text().splitlines())
        fd = os.open(info / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.write(fd, text.encode())
        assert_errno(errno.EINVAL, os.close, fd)
        added = [line for line in m.daemon.log_text().splitlines()[before:] if name in line]
        assert len(added) == 1 and "refusing" in added[0], added
    assert os.listdir(info) == []                   # a refused one is not kept
    # a good one is kept (until its file is trashed under its name, or it is removed)
    (info / "x.jpg.trashinfo").write_text(good)
    assert (info / "x.jpg.trashinfo").read_text() == good
    assert os.listdir(info) == ["x.jpg.trashinfo"]
    os.unlink(info / "x.jpg.trashinfo")
    assert os.listdir(info) == []
    assert os.listdir(files) == []
    m.unmount()
