"""The command line itself: --help, --version, the form mount(8) runs."""

import re

from pgtest import default_bin, mount_entry
from mvtest import run


def test_help():
    r = run([default_bin(), "--help"], timeout=15, check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "db=" in out and "store=" in out, out


def test_version():
    r = run([default_bin(), "--version"], timeout=15, check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert re.search(r"\d+\.\d+(\.\d+)?", out), out


def test_mount_helper_form(mvfs):
    """What mount(8) and mount.fuse3 run for an fstab line of type
    fuse.mvaultfs: `mvaultfs SOURCE MOUNTPOINT -o OPTS`, where OPTS may hold
    fstab's own options. SOURCE shows as the mount's source; those options
    are dropped, not refused."""
    m = mvfs(args=["memories,of alice"],
             extra_opts=["_netdev", "nofail", "noauto", "user", "users", "defaults",
                         "x-systemd.automount", "x-systemd.mount-timeout=30",
                         "comment=x", "rw", "noatime", "exec", "suid", "dev"])
    entry = mount_entry(m.mnt)
    assert entry is not None
    fstype, source = entry[entry.index("-") + 1:][:2]
    assert fstype == "fuse.mvaultfs", entry
    assert source == "memories,of\\040alice", entry      # mountinfo escapes the space
    (m.mnt / "library" / "a.txt").write_bytes(b"hello")
    assert (m.mnt / "library" / "a.txt").read_bytes() == b"hello"
