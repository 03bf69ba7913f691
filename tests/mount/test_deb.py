"""The Debian package (issue 15): `make deb` builds it, dpkg -i installs it
on this machine, mount(8) mounts an fstab line of type fuse.mvaultfs (and
of type mvaultfs, through /sbin/mount.mvaultfs), umount(8) unmounts it,
and dpkg --purge takes it all away again.

It changes the machine (/usr/bin/mvaultfs, /sbin/mount.mvaultfs, units, the
system user mvaultfs), so it holds a lock against another run of itself,
refuses to touch an mvaultfs package someone installed, and puts things
back however it ends. The .deb is the one `make deb` made from this build
(make check makes it before the mount tests); nothing is compiled here.
"""

import fcntl
import os
import pwd
import shutil
import signal
import time
from pathlib import Path

import pytest

from mvtest import SANITIZED, run
from pgtest import REPO, is_mounted, mount_entry

pytestmark = [
    pytest.mark.skipif(SANITIZED, reason="the package holds the plain build, not the sanitized one"),
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i and mount(8) need root"),
    pytest.mark.skipif(not shutil.which("dpkg-buildpackage"), reason="no dpkg-dev (make deps)"),
]

LOCK = "/run/lock/mvaultfs-test-deb.lock"
UNITS = ["/lib/systemd/system/mvaultfs@.service", "/lib/systemd/system/mvaultfs-worker.service"]


def installed():
    r = run(["dpkg-query", "-W", "-f=${Status}", "mvaultfs"], check=False)
    return r.returncode == 0 and r.stdout.endswith(" installed")


def dpkg(*args):
    """dpkg, waiting while another dpkg or apt holds its lock."""
    deadline = time.monotonic() + 300
    while True:
        r = run(["dpkg"] + list(args), check=False, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if r.returncode == 0 or "lock" not in r.stderr or time.monotonic() > deadline:
            assert r.returncode == 0, "dpkg %s: %s%s" % (" ".join(args), r.stdout, r.stderr)
            return r
        time.sleep(1)


def the_deb():
    """The .deb of this build: made by make (a no-op when it is up to date)."""
    version = (REPO / "VERSION").read_text().strip()
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    run(["make", "-s", "-C", REPO, "deb"], timeout=600)
    deb = REPO / "build" / ("mvaultfs_%s_%s.deb" % (version, arch))
    assert deb.is_file(), deb
    return deb, version


def daemons_of(mnt):
    """Pids of the mvaultfs daemons serving mnt (mount(8) started them, in
    sessions of their own: found by their command line)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"mvaultfs") and str(mnt).encode() in argv:
            out.append(int(p.name))
    return out


def umount_and_wait(mnt, timeout=30):
    """umount(8), then wait for its daemon to finish and exit."""
    pids = daemons_of(mnt)
    run(["umount", mnt], timeout=30)
    deadline = time.monotonic() + timeout
    while any(Path("/proc/%d" % p).exists() for p in pids):
        assert time.monotonic() < deadline, "mvaultfs %s still running after umount" % pids
        time.sleep(0.05)
    assert not is_mounted(mnt)


@pytest.fixture
def machine(tmp_path):
    """Holds the lock; afterwards unmounts, stops daemons, purges the
    package and removes the system user if this test made them."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            pytest.skip("an mvaultfs package is installed here; this test would remove it")
        try:
            pwd.getpwnam("mvaultfs")
            had_user = True
        except KeyError:
            had_user = False
        mnts = []
        try:
            yield mnts
        finally:
            for mnt in mnts:
                if is_mounted(mnt):
                    run(["umount", "-l", mnt], check=False)
                for pid in daemons_of(mnt):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if installed() or run(["dpkg-query", "-W", "mvaultfs"], check=False).returncode == 0:
                dpkg("--purge", "mvaultfs")
            if not had_user:
                run(["userdel", "mvaultfs"], check=False)
                run(["groupdel", "mvaultfs"], check=False)


def test_install_mount_from_fstab_purge(machine, tmp_path, pg_server):
    deb, version = the_deb()
    t0 = time.monotonic()
    dpkg("-i", deb)
    assert installed()

    # the files, where Debian users look for them
    for f in ["/usr/bin/mvaultfs", "/sbin/mount.mvaultfs", "/usr/share/man/man1/mvaultfs.1.gz",
              "/usr/share/man/man8/mount.mvaultfs.8.gz", "/usr/share/doc/mvaultfs/copyright",
              "/usr/share/doc/mvaultfs/examples/fstab"] + UNITS:
        assert Path(f).exists(), f
    assert version in run(["/usr/bin/mvaultfs", "--version"]).stdout
    pwd.getpwnam("mvaultfs")   # the worker unit's user
    r = run(["systemd-analyze", "verify"] + UNITS, check=False)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr

    # an fstab line, mounted and unmounted by mount(8) and umount(8)
    dsn = pg_server.dsn(pg_server.create_db("t_deb_%d" % os.getpid()))
    store, data, mnt = tmp_path / "store", tmp_path / "data", tmp_path / "memories"
    for d in (store, data, mnt):
        d.mkdir()
    machine.append(mnt)
    opts = ("_netdev,nofail,noauto,nosuid,nodev,x-systemd.automount,x-systemd.mount-timeout=30,"
            "db=%s,store=%s,data_dir=%s" % (dsn, store, data))
    fstab = tmp_path / "fstab"
    fstab.write_text("# mvaultfs test\nmemories-test %s fuse.mvaultfs %s 0 0\n" % (mnt, opts))
    run(["mount", "--fstab", fstab, mnt], timeout=60)
    entry = mount_entry(mnt)
    fstype, source = entry[entry.index("-") + 1:][:2]
    assert (fstype, source) == ("fuse.mvaultfs", "memories-test"), entry
    assert "nosuid" in entry[5] and "nodev" in entry[5], entry
    (mnt / "library" / "hello.txt").write_bytes(b"from an fstab line\n")
    assert (mnt / "library" / "hello.txt").read_bytes() == b"from an fstab line\n"
    umount_and_wait(mnt)

    # type mvaultfs goes through /sbin/mount.mvaultfs, to the same place
    fstab.write_text("memories-test %s mvaultfs %s 0 0\n" % (mnt, opts))
    run(["mount", "--fstab", fstab, mnt], timeout=60)
    assert (mnt / "library" / "hello.txt").read_bytes() == b"from an fstab line\n"
    umount_and_wait(mnt)

    dpkg("--purge", "mvaultfs")
    assert not installed()
    for f in ["/usr/bin/mvaultfs", "/sbin/mount.mvaultfs"] + UNITS:
        assert not Path(f).exists(), f
    print("install, two mounts, purge: %.1f s" % (time.monotonic() - t0))

