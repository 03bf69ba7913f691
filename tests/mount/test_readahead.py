"""The kernel's readahead for the mount (issue 16): set at mount in the FUSE
bdi's read_ahead_kb (/sys/class/bdi/MAJOR:MINOR of the mount's st_dev), the
default or -o read_ahead_kb; only root may, so the checks are root's."""

import os
from pathlib import Path

import pytest

from mvtest import MiB, fsync_path

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only root may write /sys/class/bdi")
DEFAULT_KB = 4096     # FS_READ_AHEAD_KB


def sys_read_only():
    """Some machines (containers, this one at times) mount /sys read-only."""
    return bool(os.statvfs("/sys/class/bdi").f_flag & os.ST_RDONLY)


def bdi_kb(mnt):
    st = os.stat(mnt)
    return int(Path("/sys/class/bdi/%d:%d/read_ahead_kb" % (os.major(st.st_dev), os.minor(st.st_dev)))
               .read_text())


def test_read_ahead_not_permitted_is_one_line(mvfs):
    """Where /sys cannot be written the mount still works, at the kernel's
    128 KiB, and says so once."""
    if not sys_read_only() and os.geteuid() == 0:
        pytest.skip("/sys/class/bdi is writable here: test_read_ahead_set_at_mount checks the setting")
    m = mvfs()
    assert bdi_kb(m.mnt) == 128
    lines = [ln for ln in (m.data_dir / "mvaultfs.log").read_text().splitlines()
             if "kernel readahead of the mount not raised to %d KiB" % DEFAULT_KB in ln]
    assert len(lines) == 1 and "cannot write" in lines[0], lines
    data = os.urandom(MiB + 3)
    (m.mnt / "library" / "b.bin").write_bytes(data)
    assert (m.mnt / "library" / "b.bin").read_bytes() == data
    m.unmount()


@root_only
@pytest.mark.skipif(sys_read_only(), reason="/sys is read-only here (test_read_ahead_not_permitted_is_one_line)")
def test_read_ahead_set_at_mount(mvfs, tmp_path):
    m = mvfs()
    # at once: set before the session loop served anything
    assert bdi_kb(m.mnt) == DEFAULT_KB
    assert "kernel readahead of the mount: %d KiB" % DEFAULT_KB in m.log_text()
    data = os.urandom(3 * MiB + 5)
    (m.mnt / "library" / "a.bin").write_bytes(data)
    assert (m.mnt / "library" / "a.bin").read_bytes() == data
    fsync_path(m.mnt / "library" / "a.bin")   # in the store: the next mounts have data folders of their own
    m.unmount()
    # a mount point /proc/self/mountinfo shows escaped ("\\040")
    m2 = mvfs(db=m.db, store=m.store, mnt=tmp_path / "mnt with space", extra_opts=["read_ahead_kb=1024"])
    assert bdi_kb(m2.mnt) == 1024
    assert (m2.mnt / "library" / "a.bin").read_bytes() == data
    m2.unmount()
    m3 = mvfs(db=m.db, store=m.store, mnt=m.mnt, extra_opts=["read_ahead_kb=0"])
    assert bdi_kb(m3.mnt) == 128      # the kernel's own
