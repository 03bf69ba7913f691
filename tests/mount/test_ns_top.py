"""The top level: five fixed folders; nothing else can be made, removed
or renamed there, and each refusal says which rule it broke (issue 3)."""

import errno
import os
import stat

import pytest

from mvtest import (TOP_ALL, assert_errno, check_consistency, create_excl, log_lines_after,
                    run, sql)


def test_top_level_folders(mvfs):
    m = mvfs()
    assert set(os.listdir(m.mnt)) == TOP_ALL
    for name in TOP_ALL:
        st = os.stat(m.mnt / name)
        assert stat.S_ISDIR(st.st_mode), name
    assert stat.S_IMODE(os.stat(m.mnt / ".trash").st_mode) == 0o555
    for name in TOP_ALL:
        assert os.listdir(m.mnt / name) == [], name
    m.unmount()


@pytest.mark.parametrize("name", sorted(TOP_ALL))
def test_top_level_folder_is_fixed(mvfs, name):
    m = mvfs()
    top = m.mnt / name
    assert_errno(errno.EPERM, os.rmdir, top)
    assert_errno(errno.EPERM, os.rename, top, m.mnt / (name.strip(".") + "2"))
    other = "collections" if name == "galleries" else "galleries"
    assert_errno(errno.EPERM, os.rename, top, m.mnt / other / "inner")
    assert set(os.listdir(m.mnt)) == TOP_ALL
    assert os.path.isdir(top)
    m.unmount()


def test_nothing_new_at_top_level(mvfs):
    m = mvfs()
    assert_errno(errno.EPERM, os.mkdir, m.mnt / "newtop")
    assert_errno(errno.EPERM, create_excl, m.mnt / "x.txt", b"x")
    assert_errno(errno.EPERM, open, m.mnt / "y.txt", "wb")
    (m.mnt / "library" / "a.jpg").write_bytes(b"a")
    assert_errno(errno.EPERM, os.rename, m.mnt / "library" / "a.jpg", m.mnt / "a.jpg")
    assert set(os.listdir(m.mnt)) == TOP_ALL
    assert os.listdir(m.mnt / "library") == ["a.jpg"]
    assert sql(m, "SELECT count(*) FROM memory_items") == ["1"]
    check_consistency(m)
    m.unmount()


def test_folders_only_where_folders_go(mvfs):
    """mkdir inside a collection or gallery is refused (they are one level
    deep); collections/ and galleries/ hold no files."""
    m = mvfs()
    os.mkdir(m.mnt / "collections" / "C")
    os.mkdir(m.mnt / "galleries" / "G")
    for d in ("collections/C", "galleries/G"):
        assert_errno(errno.EPERM, os.mkdir, m.mnt / d / "sub")
    assert_errno({errno.EPERM, errno.EROFS}, os.mkdir, m.mnt / ".trash" / "sub")
    for d in ("collections", "galleries"):
        assert_errno(errno.EPERM, create_excl, m.mnt / d / "file.jpg", b"x")
    (m.mnt / "library" / "a.jpg").write_bytes(b"a")
    for d in ("collections", "galleries"):
        assert_errno(errno.EPERM, os.rename, m.mnt / "library" / "a.jpg", m.mnt / d / "a.jpg")
    assert os.listdir(m.mnt / "library") == ["a.jpg"]
    assert sorted(os.listdir(m.mnt / "collections")) == ["C"]
    assert sorted(os.listdir(m.mnt / "galleries")) == ["G"]
    assert sql(m, "SELECT count(*) FROM memory_items") == ["1"]
    check_consistency(m)
    m.unmount()


def _one_rule_line(lines, word):
    warn = [ln for ln in lines if "warn" in ln or "error" in ln]
    assert len(warn) == 1, "want one log line naming the rule, got:\n" + "\n".join(lines)
    assert word in warn[0], "log line does not name the rule (%r):\n%s" % (word, warn[0])


def test_refusals_log_the_rule(mvfs):
    m = mvfs()
    (m.mnt / "library" / "a.jpg").write_bytes(b"a")
    os.mkdir(m.mnt / "galleries" / "G")

    err, lines = log_lines_after(m, lambda: create_excl(m.mnt / "top.txt"))
    assert err == errno.EPERM
    _one_rule_line(lines, "top level")

    err, lines = log_lines_after(m, lambda: os.mkdir(m.mnt / "galleries" / "G" / "sub"))
    assert err == errno.EPERM
    _one_rule_line(lines, "galleries")

    err, lines = log_lines_after(m, lambda: os.rename(m.mnt / "library" / "a.jpg",
                                                      m.mnt / "workspace" / "a.jpg"))
    assert err == errno.EPERM
    _one_rule_line(lines, "workspace/")

    err, lines = log_lines_after(m, lambda: os.link(m.mnt / "library" / "a.jpg",
                                                    m.mnt / "library" / "b.jpg"))
    assert err == errno.EPERM
    _one_rule_line(lines, "galler")

    err, lines = log_lines_after(m, lambda: os.rmdir(m.mnt / "library"))
    assert err == errno.EPERM
    _one_rule_line(lines, "top-level")
    check_consistency(m)
    m.unmount()


def test_symlink_and_special_files_refused(mvfs):
    """A memories library holds regular files only."""
    m = mvfs()
    (m.mnt / "library" / "a.jpg").write_bytes(b"a")
    r = run(["ln", "-s", "a.jpg", m.mnt / "library" / "s.jpg"], check=False)
    assert r.returncode != 0
    r = run(["mkfifo", m.mnt / "library" / "fifo"], check=False)
    assert r.returncode != 0
    assert os.listdir(m.mnt / "library") == ["a.jpg"]
    m.unmount()


def test_new_files_listed_at_once(mvfs):
    """A file closed through this mount is in its folder's listing at once
    (it is durable in staging when close returns), wherever it was made."""
    m = mvfs()
    os.mkdir(m.mnt / "collections" / "C")
    os.mkdir(m.mnt / "galleries" / "G")
    missing = []
    for d in ("library", "workspace", "collections/C", "galleries/G"):
        folder = m.mnt / d
        for i in range(25):
            name = "%s-%02d.jpg" % (d.replace("/", "-"), i)
            create_excl(folder / name, os.urandom(100 + i))
            if name not in os.listdir(folder):
                missing.append("%s/%s" % (d, name))
    status = sql(m, "SELECT a.upload_status, count(*) FROM memory_items i JOIN memory_assets a"
                    " ON a.id = i.primary_asset_id GROUP BY 1")
    assert not missing, "not listed right after close: %s (upload_status counts: %s)" % (
        missing, status)
    m.unmount()
