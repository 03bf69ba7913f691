"""Lookups that walk a folder read its next files ahead (issue 10;
DECISIONS.md, "Lookups read ahead"): rsync's rerun after a remount asks
the database a few times for a folder of files, not once a file, and rows
read ahead never answer for a file changed since."""

import os
import subprocess

import pytest

from cachetest import mvsync, stats

N = 300


def remount(mvfs, m):
    """The mount again, its uploads done first: upload records are changes
    too, and would end every row read ahead while they go on."""
    assert mvsync(m).returncode == 0
    m.unmount()
    return mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)


def test_rsync_rerun_after_a_remount_asks_a_few_times(mvfs, tmp_path):
    """rsync -a of 300 files, a remount, and the rerun: it stats every name
    and copies nothing; the lookups are answered from rows read ahead
    (main's build: a statement per file)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(N):
        (src / ("p%04d.jpg" % i)).write_bytes(os.urandom(64 + i))
    m = mvfs()
    dst = str(m.mnt / "library" / "roll") + "/"
    subprocess.run(["rsync", "-a", str(src) + "/", dst], check=True)
    m = remount(mvfs, m)
    before = stats(m.mnt)
    out = subprocess.run(["rsync", "-a", "--itemize-changes", str(src) + "/", dst], check=True,
                         capture_output=True, text=True).stdout
    after = stats(m.mnt)
    assert out.strip() == "", "the rerun copied: %s" % out[:500]
    sent = after["db_statements"] - before["db_statements"]
    ahead = after["lookups_ahead"] - before["lookups_ahead"]
    assert ahead >= N - 10, (ahead, sent)
    assert sent <= 20, (ahead, sent)
    m.unmount()


def test_a_change_ends_the_rows_read_ahead(mvfs, tmp_path):
    """Rows read ahead, then a file among them rewritten and renamed through
    the mount, and the kernel's names dropped: lookups show the new size and
    the new name, and the old name is gone."""
    m = mvfs()
    d = m.mnt / "library" / "walk"
    d.mkdir()
    for i in range(40):
        (d / ("w%02d.bin" % i)).write_bytes(b"x" * (10 + i))
    m = remount(mvfs, m)
    d = m.mnt / "library" / "walk"
    before = stats(m.mnt)["lookups_ahead"]
    for i in range(5):
        assert os.stat(d / ("w%02d.bin" % i)).st_size == 10 + i
    assert stats(m.mnt)["lookups_ahead"] > before, "nothing was read ahead"
    (d / "w20.bin").write_bytes(b"y" * 5000)
    os.rename(d / "w30.bin", d / "w30-moved.bin")
    m.settle()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2\n")      # the kernel forgets names, so it looks them up again
    except OSError as e:
        # the kernel would answer from its own names: the rows never asked
        pytest.skip("cannot drop the kernel's names here (%s)" % e)
    assert os.stat(d / "w20.bin").st_size == 5000
    assert not os.path.exists(d / "w30.bin")
    assert os.stat(d / "w30-moved.bin").st_size == 40
    for i in range(40):
        if i not in (20, 30):
            assert os.stat(d / ("w%02d.bin" % i)).st_size == 10 + i, i
    m.unmount()
