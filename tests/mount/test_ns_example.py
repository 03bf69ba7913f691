"""Issue 3's example, line by line, with the shell commands a user types
(memories = the mount point)."""

import errno
import os

from mvtest import check_consistency, fsync_path, memory_of, q, run, sql


def sh(cwd, cmd, ok=True):
    r = run(["sh", "-c", cmd], cwd=cwd, check=False)
    if ok:
        assert r.returncode == 0, "%s: exit %d\n%s%s" % (cmd, r.returncode, r.stdout, r.stderr)
    return r


def test_issue_example(mvfs, tmp_path):
    m = mvfs(mnt=tmp_path / "memories")
    top = m.mnt.parent
    mem = m.mnt.name                 # "memories"
    (top / "shot.png").write_bytes(os.urandom(20_000))
    lib = m.mnt / "library"
    (lib / "a.jpg").write_bytes(os.urandom(30_000))
    (lib / "b.jpg").write_bytes(os.urandom(31_000))
    fsync_path(lib / "a.jpg")
    fsync_path(lib / "b.jpg")

    # cp shot.png memories/workspace/          # temporary: expires 7 days after creation
    sh(top, "cp shot.png %s/workspace/" % mem)
    assert os.listdir(m.mnt / "workspace") == ["shot.png"]
    [shot] = memory_of(m, "shot.png")
    assert sql(m, "SELECT expires_at > mvault_now() + interval '6 days 23 hours' FROM workspace_assets"
                  " WHERE memory_id = %s" % q(shot)) == ["t"]

    # mv memories/workspace/shot.png memories/library/     # promoted
    sh(top, "mv %s/workspace/shot.png %s/library/" % (mem, mem))
    assert os.listdir(m.mnt / "workspace") == []
    assert "shot.png" in os.listdir(lib)
    assert sql(m, "SELECT count(*) FROM workspace_assets WHERE memory_id = %s" % q(shot)) == ["0"]

    # mkdir memories/collections/Trips
    sh(top, "mkdir %s/collections/Trips" % mem)
    # mv memories/library/a.jpg memories/collections/Trips/  # at most one collection; stays in library/
    sh(top, "mv %s/library/a.jpg %s/collections/Trips/" % (mem, mem))
    assert os.listdir(m.mnt / "collections" / "Trips") == ["a.jpg"]
    assert "a.jpg" in os.listdir(lib)
    # mkdir memories/galleries/Summer
    sh(top, "mkdir %s/galleries/Summer" % mem)
    # ln memories/library/a.jpg memories/galleries/Summer/    # the same memory, the same inode
    sh(top, "ln %s/library/a.jpg %s/galleries/Summer/" % (mem, mem))
    i1 = sh(top, "stat -c %%i %s/library/a.jpg" % mem).stdout
    i2 = sh(top, "stat -c %%i %s/galleries/Summer/a.jpg" % mem).stdout
    assert i1 == i2
    # stat -c %h memories/library/a.jpg        # 3: library, collection, gallery
    assert sh(top, "stat -c %%h %s/library/a.jpg" % mem).stdout.strip() == "3"
    # rm memories/galleries/Summer/a.jpg       # out of the gallery only
    sh(top, "rm %s/galleries/Summer/a.jpg" % mem)
    assert os.listdir(m.mnt / "galleries" / "Summer") == []
    assert "a.jpg" in os.listdir(lib)
    assert sh(top, "stat -c %%h %s/library/a.jpg" % mem).stdout.strip() == "2"
    # rm memories/library/b.jpg                # tombstoned: appears in .trash/
    sh(top, "rm %s/library/b.jpg" % mem)
    assert "b.jpg" not in os.listdir(lib)
    assert os.listdir(m.mnt / ".trash") == ["b.jpg"]
    # mv memories/.trash/b.jpg memories/library/           # restored
    sh(top, "mv %s/.trash/b.jpg %s/library/" % (mem, mem))
    assert "b.jpg" in os.listdir(lib)
    assert os.listdir(m.mnt / ".trash") == []
    # rmdir memories/galleries/Summer          # only when empty, else ENOTEMPTY
    sh(top, "ln %s/library/b.jpg %s/galleries/Summer/" % (mem, mem))
    r = sh(top, "rmdir %s/galleries/Summer" % mem, ok=False)
    assert r.returncode != 0 and os.strerror(errno.ENOTEMPTY) in r.stderr, r.stderr
    # mv memories/galleries/Summer memories/galleries/Summer-2026   # renamed
    sh(top, "mv %s/galleries/Summer %s/galleries/Summer-2026" % (mem, mem))
    assert os.listdir(m.mnt / "galleries") == ["Summer-2026"]
    assert os.listdir(m.mnt / "galleries" / "Summer-2026") == ["b.jpg"]
    sh(top, "rm %s/galleries/Summer-2026/b.jpg" % mem)
    sh(top, "rmdir %s/galleries/Summer-2026" % mem)
    assert os.listdir(m.mnt / "galleries") == []
    assert sorted(os.listdir(lib)) == ["a.jpg", "b.jpg", "shot.png"]
    check_consistency(m)
    m.unmount()
