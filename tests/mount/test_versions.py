"""Replaced versions: a save (rename over, cp over, O_TRUNC, rewrite) keeps
the file's memory and puts the content it replaced in .trash/ as
'NAME (replaced STAMP).ext' for the grace period; cp of it back over the
file restores it.  A version that was current for less than
-o version_min_age (default 300 s) is not kept: an editor saving every few
seconds does not keep every save for 30 days."""

import hashlib
import os
import time

from imgtest import JOBS_FAST
from mvtest import check_consistency, fsync_path, object_path, poll, run, sql


def mvid(p):
    return os.getxattr(p, "user.mvault.id")


def save(path, data):
    tmp = path.parent / (".%s.tmp" % path.name)
    tmp.write_bytes(data)
    os.rename(tmp, path)


def test_versions_listed_read_and_restored(mvfs):
    m = mvfs(extra_opts=["version_min_age=0"])
    d = m.mnt / "library" / "2024"
    os.mkdir(d)
    f = d / "a.jpg"
    v1, v2, v3 = os.urandom(5000), os.urandom(6000), os.urandom(7000)
    f.write_bytes(v1)
    mid = mvid(f)
    save(f, v2)
    time.sleep(1.1)                       # stamps have whole seconds
    f.write_bytes(v3)                     # O_TRUNC: a version too
    assert f.read_bytes() == v3 and mvid(f) == mid
    trash = sorted(os.listdir(m.mnt / ".trash"))
    assert len(trash) == 2, trash
    got = {(m.mnt / ".trash" / n).read_bytes(): n for n in trash}
    assert set(got) == {v1, v2}
    for n in trash:
        assert n.startswith("a (replaced ") and n.endswith(").jpg"), n
        st = os.stat(m.mnt / ".trash" / n)
        assert st.st_nlink == 1 and st.st_size in (5000, 6000)
    # one command brings a version back; it becomes the current one
    run(["cp", "-p", m.mnt / ".trash" / got[v1], f])
    assert f.read_bytes() == v1 and mvid(f) == mid
    assert sql(m, "SELECT count(*) FROM memories") == ["1"]
    # no new bytes for it: the blob is shared
    assert poll(lambda: sql(m, "SELECT count(*) FROM blobs") == ["3"]), sql(m, "SELECT * FROM blobs")
    # a version cannot be moved out, and the trash stays read-only
    try:
        os.rename(m.mnt / ".trash" / got[v2], d / "b.jpg")
        assert False, "moved a version out of .trash/"
    except OSError:
        pass
    check_consistency(m)
    m.unmount()


def test_brief_versions_not_kept(mvfs):
    """The default bound: versions replaced within 300 s are not listed and
    their bytes leave the store at the next deletion sweep; one that was
    current longer is kept."""
    m = mvfs(extra_opts=JOBS_FAST)
    f = m.mnt / "library" / "draft.jpg"
    saves = [os.urandom(20_000 + i) for i in range(5)]
    f.write_bytes(saves[0])
    fsync_path(f)
    for data in saves[1:]:
        save(f, data)
        fsync_path(f)
    assert f.read_bytes() == saves[-1]
    assert os.listdir(m.mnt / ".trash") == []
    for data in saves[:-1]:
        h = hashlib.sha256(data).hexdigest()
        assert poll(lambda: not object_path(m.store, h).exists(), timeout=30), m.log_text()
    # a version that was current for ten minutes is kept
    sql(m, "UPDATE memory_assets SET created_at = now() - interval '10 minutes'"
           " WHERE id = (SELECT primary_asset_id FROM memory_items WHERE display_name = 'draft.jpg')")
    save(f, os.urandom(1000))
    [kept] = os.listdir(m.mnt / ".trash")
    assert (m.mnt / ".trash" / kept).read_bytes() == saves[-1]
    check_consistency(m)
    m.unmount()


def test_open_file_survives_a_save(mvfs):
    """A reader that holds the file open while it is saved over keeps
    reading and stat-ing what it opened, as on ext4."""
    m = mvfs(extra_opts=["version_min_age=0"])
    f = m.mnt / "library" / "a.jpg"
    old, new = os.urandom(9000), os.urandom(4000)
    f.write_bytes(old)
    fd = os.open(f, os.O_RDONLY)
    try:
        save(f, new)
        assert os.pread(fd, 20000, 0) == old
        assert os.fstat(fd).st_size == 9000
    finally:
        os.close(fd)
    assert f.read_bytes() == new
    m.unmount()
