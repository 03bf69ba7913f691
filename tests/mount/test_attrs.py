"""Listings and attributes: ls -l, stat, touch -d, cp -p, statfs, top level."""

import os
import stat
import time

import pytest

from mvtest import TOP_LEVEL, run


def test_top_level(mvfs):
    m = mvfs()
    r = run(["ls", m.mnt])
    assert set(r.stdout.split()) == TOP_LEVEL, r.stdout
    for name in TOP_LEVEL:
        assert stat.S_ISDIR(os.stat(m.mnt / name).st_mode), name
    r = run(["ls", "-ld", m.mnt / "library"])
    assert r.stdout.startswith("d"), r.stdout
    m.unmount()


def test_ls_l_and_stat(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    sizes = {"a.txt": 0, "b.bin": 1234, "c.jpg": 70_000}
    before = int(time.time()) - 2
    for name, size in sizes.items():
        (lib / name).write_bytes(os.urandom(size))
    after = int(time.time()) + 2

    r = run(["ls", "-l", "--time-style=+%s", lib])
    seen = {}
    for line in r.stdout.splitlines():
        if line.startswith("total"):
            continue
        perms, _links, _owner, _group, size, mtime, name = line.split(None, 6)
        assert perms.startswith("-"), line
        seen[name] = (int(size), int(mtime))
    assert set(seen) == set(sizes), r.stdout
    for name, size in sizes.items():
        assert seen[name][0] == size, r.stdout
        assert before <= seen[name][1] <= after, r.stdout
        assert seen[name][1] == int(os.stat(lib / name).st_mtime)

    r = run(["stat", "-c", "%n|%s|%F", lib / "b.bin"])
    assert r.stdout.strip() == "%s|1234|regular file" % (lib / "b.bin"), r.stdout
    m.unmount()


def test_touch_d_and_cp_p_keep_mtime(mvfs, tmp_path):
    m = mvfs()
    lib = m.mnt / "library"
    (lib / "t.txt").write_bytes(b"hello\n")
    run(["touch", "-d", "2001-02-03 04:05:06 UTC", lib / "t.txt"])
    assert int(os.stat(lib / "t.txt").st_mtime) == 981173106
    r = run(["stat", "-c", "%Y", lib / "t.txt"])
    assert r.stdout.strip() == "981173106"

    src = tmp_path / "old.bin"
    src.write_bytes(os.urandom(50_000))
    os.utime(src, (1_234_567_890, 1_234_567_890))
    run(["cp", "-p", src, lib / "old.bin"])
    assert int(os.stat(lib / "old.bin").st_mtime) == 1_234_567_890
    assert (lib / "old.bin").read_bytes() == src.read_bytes()
    m.unmount()


def test_statfs(mvfs):
    m = mvfs()
    r = run(["df", m.mnt])
    assert str(m.mnt) in r.stdout, r.stdout
    st = os.statvfs(m.mnt)
    assert st.f_bsize > 0 and st.f_blocks >= st.f_bfree >= st.f_bavail
    assert st.f_namemax == 255
    m.unmount()


def test_chown_is_accepted_and_not_kept_rsync_as_root(mvfs, tmp_path):
    """Files belong to the mount's user: chown succeeds and keeps nothing
    (README), so rsync -a as root of a tree owned by someone else exits 0,
    and a rerun transfers nothing (issue 11)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to own files as another uid")
    m = mvfs()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i, p in enumerate((src / "a.txt", src / "sub" / "b.jpg")):
        p.write_bytes(os.urandom(3000 + i))
        os.chown(p, 4321, 4321)
    os.chown(src / "sub", 4321, 4321)
    os.chown(m.mnt / "library", 0, 0)       # the top folders: no error either
    dst = m.mnt / "library" / "t"
    r = run(["rsync", "-a", "--stats", str(src) + "/", str(dst) + "/"], check=False)
    assert r.returncode == 0, r.stderr
    os.chown(dst / "a.txt", 4321, 4321)
    assert os.stat(dst / "a.txt").st_uid == os.stat(m.mnt / "library").st_uid
    r = run(["rsync", "-a", "--stats", str(src) + "/", str(dst) + "/"], check=False)
    assert r.returncode == 0, r.stderr
    assert "Number of regular files transferred: 0" in r.stdout, r.stdout
    m.unmount()
