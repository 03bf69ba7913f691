"""The embedded PostgreSQL's life (issue 11): the daemon keeps its private
cluster alive.

An immediate remount (fusermount3 -u, then a new daemon at once, as
scripts and systemd restarts do) waits for the old daemon to stop the
cluster instead of failing; a second daemon on the same data folder is
refused; a postmaster killed with SIGKILL is restarted by the daemon and
the mount answers again, with no closed file lost.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cachetest import make_sources, mvsync
from pgtest import default_bin, fusermount_u, is_mounted
from mvtest import poll
from test_embedded import assert_pg_stopped, embedded_env


@pytest.fixture
def home():
    """A folder for XDG_DATA_HOME outside pytest's: another pytest session
    starting meanwhile makes /tmp/pytest-of-root 0700 again, and the
    cluster's user "mvaultfs" could no longer reach its data.  Requested
    before mvfs, so it is removed after the daemons are gone (MVFS_KEEP=1
    keeps it, cluster log and all, for a look)."""
    d = Path(tempfile.mkdtemp(prefix="mvfs-life-", dir="/tmp"))
    d.chmod(0o711)
    yield d
    if not os.environ.get("MVFS_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


def data_of(base):
    return base / "xdg" / "mvaultfs"


def postmaster_pid(data):
    """The embedded postmaster's pid, from DATA/pg/postmaster.pid."""
    return int((data / "pg" / "postmaster.pid").read_text().split()[0])


def wait_answer(m, since, limit):
    """(seconds from since until a new file could be made and read back,
    tries); seconds is None if that did not happen within limit."""
    probes = 0
    while time.monotonic() - since < limit:
        probe = m.mnt / "library" / ("probe%d" % probes)
        probes += 1
        try:
            probe.write_bytes(b"p")
            if probe.read_bytes() == b"p":
                return time.monotonic() - since, probes
        except OSError:
            pass
        time.sleep(0.2)
    return None, probes


def children(pid):
    """Pids whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def test_immediate_remount(home, mvfs, tmp_path):
    """fusermount3 -u, then a new daemon at once, 20 times: each mounts and
    shows the files (it used to exit 1: "the database system is shutting
    down")."""
    env = embedded_env(home)
    data = data_of(home)
    m = mvfs(embedded=True, env=env, timeout=60)
    files = {"a%d.bin" % i: os.urandom(50_000 + i) for i in range(3)}
    for name, payload in files.items():
        (m.mnt / "library" / name).write_bytes(payload)
    t0 = time.monotonic()
    times = []
    for i in range(20):
        rc, err = fusermount_u(m.mnt)
        assert rc == 0, "round %d: fusermount3 -u: %s" % (i, err)
        t = time.monotonic()
        m2 = mvfs(embedded=True, env=env, mnt=m.mnt, timeout=90)
        times.append(time.monotonic() - t)
        old = m.wait_exit(30)
        assert old == 0, "round %d: the old daemon exited with %s; log:\n%s" % (i, old, m.log_text())
        for name, payload in files.items():
            assert (m2.mnt / "library" / name).read_bytes() == payload, "round %d: %s" % (i, name)
        m = m2
    total = time.monotonic() - t0
    print("\nimmediate remount x20: %.1f s in all, longest %.1f s, mean %.2f s"
          % (total, max(times), sum(times) / len(times)))
    assert "waiting for the previous mvaultfs" in m.log_text(tail=100000), \
        "no remount had to wait: the test did not reach the race"
    m.unmount()
    assert_pg_stopped(m, data)


def test_second_daemon_on_same_data_folder(home, mvfs, tmp_path):
    """Two mounts on one data folder: the second is refused with a clear
    line; the first keeps working and its cluster is untouched."""
    env = embedded_env(home)
    m = mvfs(embedded=True, env=env, timeout=60)
    (m.mnt / "library" / "x.bin").write_bytes(b"first")
    pid = postmaster_pid(data_of(home))
    m2 = mvfs(embedded=True, env=env, wait=False)
    status = m2.wait_exit(30)
    assert status == 1, "the second daemon: status %s; log:\n%s" % (status, m2.log_text())
    assert "in use by another mvaultfs" in m2.daemon.log_text(), m2.daemon.log_text()
    assert not is_mounted(m2.mnt)
    assert postmaster_pid(data_of(home)) == pid
    assert (m.mnt / "library" / "x.bin").read_bytes() == b"first"
    (m.mnt / "library" / "y.bin").write_bytes(b"still")
    m.unmount()
    assert_pg_stopped(m, data_of(home))


# Copies src/* into dst one by one, as a user's script would that retries
# a failed copy: "CLOSED name secs" after a close(2) returned (secs: from
# the first try), "ERR name error" after each failed try, "GAVEUP name"
# after 90 s of failures.
WRITER = r"""
import os, sys, time
src, dst, log = sys.argv[1], sys.argv[2], sys.argv[3]
with open(log, "a") as lg:
    for n in sorted(os.listdir(src)):
        data = open(os.path.join(src, n), "rb").read()
        t = time.monotonic()
        while True:
            try:
                fd = os.open(os.path.join(dst, n), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
                try:
                    for i in range(0, len(data), 65536):
                        os.write(fd, data[i:i + 65536])
                finally:
                    os.close(fd)
            except OSError as e:
                lg.write("ERR %s %s\n" % (n, e)); lg.flush()
                if time.monotonic() - t > 90:
                    lg.write("GAVEUP %s\n" % n); lg.flush()
                    break
                time.sleep(0.2)
                continue
            lg.write("CLOSED %s %.3f\n" % (n, time.monotonic() - t)); lg.flush(); os.fsync(lg.fileno())
            break
"""


def test_postmaster_killed_during_ingest(home, mvfs, tmp_path):
    """kill -9 of the embedded postmaster while 100 files are written: the
    daemon restarts its cluster, the mount answers again, and every file
    whose close returned is there, byte for byte; the writer, which tries
    a failed copy again, gets every file in.  Its failed tries are
    counted, not forbidden: until operations wait for the database
    (db_timeout), those that meet the dead cluster fail with EIO.  On the
    old code the mount never answered again."""
    env = embedded_env(home)
    data = data_of(home)
    m = mvfs(embedded=True, env=env, timeout=60)
    src = tmp_path / "src"
    sources = make_sources(src, 100, 256 * 1024)
    dst = m.mnt / "library" / "in"
    dst.mkdir()
    log = tmp_path / "writer.log"
    w = subprocess.Popen([sys.executable, "-c", WRITER, str(src), str(dst), str(log)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert poll(lambda: len(log.read_text().splitlines()) >= 20 if log.exists() else False, 60), \
            "the writer did not get going; log:\n%s" % m.log_text()
        old = postmaster_pid(data)
        os.kill(old, signal.SIGKILL)
        killed = time.monotonic()

        answered, probes = wait_answer(m, killed, 60)
        assert answered is not None, "the mount did not answer within 60 s of kill -9; log:\n%s" % (
            m.log_text())
        w.wait(180)
    finally:
        if w.poll() is None:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait()
    text = log.read_text().splitlines()
    errors = [ln for ln in text if ln.startswith("ERR ")]
    closed = [ln.split()[1] for ln in text if ln.startswith("CLOSED ")]
    stall = max(float(ln.split()[2]) for ln in text if ln.startswith("CLOSED "))
    print("\nkill -9 of the postmaster: answered again after %.1f s (%d probes); writer: %d closed,"
          " %d failed tries, longest stall %.1f s" % (answered, probes, len(closed), len(errors), stall))
    for ln in errors[:5]:
        print("  " + ln)

    # The writer may be done before the watchdog finds the postmaster gone
    # (its children linger a moment, and files made here need no database
    # until their records): wait for the restart rather than expect it.
    assert poll(lambda: "embedded PostgreSQL restarted" in m.log_text(tail=100000), 60), m.log_text(tail=100000)
    assert "embedded PostgreSQL died; restarting it" in m.log_text(tail=100000)
    assert postmaster_pid(data) != old
    r = mvsync(m, 120)
    assert r.returncode == 0, "mvaultfs sync: %s %s" % (r.stdout, r.stderr)
    lost = [n for n in closed if not (dst / n).exists() or (dst / n).read_bytes() != sources[n]]
    assert not lost, "closed files lost or changed: %s" % lost
    assert sorted(closed) == sorted(sources), "the writer gave up on %s" % (
        sorted(set(sources) - set(closed)))
    m.unmount()
    assert_pg_stopped(m, data)

    # After a remount, too (read from the store, not the kernel's cache).
    m2 = mvfs(embedded=True, env=env, mnt=m.mnt, timeout=60)
    lost = [n for n in closed if (dst / n).read_bytes() != sources[n]]
    assert not lost, "closed files lost or changed after a remount: %s" % lost
    m2.unmount()
    assert_pg_stopped(m2, data)


LEFTOVER_WAIT = 2     # -o embedded_leftover_wait (default 10): the test's wait


def test_leftover_wait_option_is_checked(tmp_path):
    """-o embedded_leftover_wait takes seconds from 1 to 600; anything else
    is one line on stderr and exit status 1, before anything is started."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for bad in ("0", "-2", "601"):
        p = subprocess.run([default_bin(), "-f", "-o", "embedded_leftover_wait=" + bad, str(mnt)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg")))
        assert p.returncode == 1 and "embedded_leftover_wait=%s: give seconds" % bad in p.stderr, (bad, p.stderr)
        assert not (tmp_path / "xdg").exists()


def test_lingering_process_of_dead_cluster_is_ended(home, mvfs, tmp_path):
    """A process of the killed cluster that does not exit by itself (here:
    stopped) keeps its shared memory and PostgreSQL from starting: the
    daemon ends it after its wait, and only it, then restarts the cluster."""
    env = embedded_env(home)
    data = data_of(home)
    m = mvfs(embedded=True, env=env, timeout=60, extra_opts=["embedded_leftover_wait=%d" % LEFTOVER_WAIT])
    (m.mnt / "library" / "a.bin").write_bytes(b"before")
    pm = postmaster_pid(data)
    victim = children(pm)[0]
    os.kill(victim, signal.SIGSTOP)
    try:
        os.kill(pm, signal.SIGKILL)
        killed = time.monotonic()
        # stopped until the daemon ends it (continued, it would notice the
        # dead postmaster and exit by itself); the mount may answer before
        # that: a create in a folder it knows needs no database
        # (DECISIONS.md, "A create made here first")
        ended = poll(lambda: "did not exit; ending them" in m.log_text(tail=1000), 30)
        answered, _ = wait_answer(m, killed, 60)
    finally:
        try:
            os.kill(victim, signal.SIGCONT)
        except ProcessLookupError:
            pass
    print("\nkill -9 with a stopped leftover: ended after %.1f s, answered again after %s s" % (
        time.monotonic() - killed, answered and "%.1f" % answered))
    assert ended, m.log_text()
    assert answered is not None, "the mount did not answer within 60 s; log:\n%s" % m.log_text()
    assert poll(lambda: not os.path.exists("/proc/%d/cwd" % victim) or
                not os.path.exists(os.readlink("/proc/%d/cwd" % victim)), 5)
    # After sync: a file closed just before the crash may read empty until
    # its record, which met the dead server, is made after its upload.
    r = mvsync(m, 60)
    assert r.returncode == 0, "mvaultfs sync: %s %s" % (r.stdout, r.stderr)
    assert (m.mnt / "library" / "a.bin").read_bytes() == b"before"
    m.unmount()
    assert_pg_stopped(m, data)
