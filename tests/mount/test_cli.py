"""The command line itself: --help, --version, the form mount(8) runs."""

import re
import socket

from pgtest import REPO, default_bin, mount_entry
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


def test_notify_ready(mvfs, tmp_path):
    """Under a Type=notify unit (mvaultfs@.service runs mvaultfs -f) the
    daemon says READY=1 on $NOTIFY_SOCKET once the mount answers, and
    STOPPING=1 when it ends."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        s.settimeout(30)
        m = mvfs(env={"NOTIFY_SOCKET": path})
        assert s.recv(4096) == b"READY=1"
        assert (m.mnt / "library").is_dir()
        assert m.unmount() == 0
        assert s.recv(4096) == b"STOPPING=1"


def test_man_page_has_every_option():
    """mvaultfs(1) documents every -o option of mvaultfs --help (libfuse's
    own, after the S3 section, are left to fuse(8))."""
    src = (REPO / "packaging" / "deb" / "mvaultfs.1.scd").read_text()
    out = run([default_bin(), "--help"]).stdout
    ours = out.split("\n    -h   --help")[0]
    names = set(re.findall(r"-o ([a-z0-9_]+)", ours))
    assert len(names) > 40, names
    missing = sorted(n for n in names if not re.search(r"\b%s\b" % n, src))
    assert not missing, "in --help, not in packaging/deb/mvaultfs.1.scd: %s" % missing
