"""A file is in its folder's listing the moment its close returns, for every
process, and stays there: never missing right after close, never vanishing
while its upload is being recorded (write-back: the upload and its record
happen in the background, after close).  On another mount of the library,
a file being rewritten keeps showing its last uploaded version until the new
one's upload is done."""

import hashlib
import os
import subprocess
import sys
import time

from cachetest import local_stores, mount_on  # noqa: F401 (fixture)
from mvtest import fsync_path, poll

N_CLOSE = 300       # create, write, close, then ask another process
N_WATCH = 200       # creates while a watcher lists the folder in a loop

# Another process: reads a name per line, answers whether it is in the
# folder's listing and whether stat finds it ("listed stat" / "missing ...").
CHECKER = r"""
import os, sys
d = sys.argv[1]
for line in sys.stdin:
    name = line.rstrip("\n")
    listed = name in os.listdir(d)
    try:
        os.stat(os.path.join(d, name))
        st = "stat"
    except OSError as e:
        st = "nostat:%d" % e.errno
    sys.stdout.write("%s %s\n" % ("listed" if listed else "missing", st))
    sys.stdout.flush()
"""

# Lists a folder in a loop until the file STOP appears in it; prints every
# name that left a listing after it had been in one.
WATCHER = r"""
import os, sys, time
d = sys.argv[1]
seen, gone, rounds = set(), set(), 0
while True:
    names = set(os.listdir(d))
    rounds += 1
    gone |= seen - names
    seen |= names
    if "STOP" in names:
        break
print("rounds %d seen %d" % (rounds, len(seen)))
for n in sorted(gone):
    print("gone " + n)
"""


def test_listed_when_close_returns(mvfs):
    """Hundreds of create-write-close (some left empty, like touch), each
    followed at once by a listing and a stat from another process: the name
    is always there."""
    m = mvfs()
    lib = m.mnt / "library"
    checker = subprocess.Popen([sys.executable, "-c", CHECKER, str(lib)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, bufsize=1)
    misses = []
    try:
        for i in range(N_CLOSE):
            name = "v%03d.bin" % i
            with open(lib / name, "wb") as f:
                if i % 3:       # every third stays empty: committed at release, after close returned
                    f.write(os.urandom(100 + i))
            checker.stdin.write(name + "\n")
            checker.stdin.flush()
            answer = checker.stdout.readline().strip()
            if answer != "listed stat":
                misses.append("%s: %s" % (name, answer))
            if i % 50 == 0:
                # and with ls, a process started after close
                r = subprocess.run(["ls", "-1", str(lib)], capture_output=True, text=True, check=True)
                if name not in r.stdout.split("\n"):
                    misses.append("%s: not in ls" % name)
    finally:
        checker.stdin.close()
        checker.wait(30)
    assert not misses, "%d of %d missing right after close:\n%s" % (len(misses), N_CLOSE,
                                                                  "\n".join(misses[:20]))
    assert len(os.listdir(lib)) == N_CLOSE
    m.unmount()


def test_never_vanishes_while_uploading(mvfs):
    """A watcher lists the folder in a loop while files are created: a name
    it saw once is in every later listing (its upload being recorded in the
    background never hides it for a moment)."""
    m = mvfs()
    lib = m.mnt / "library"
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(lib)], stdout=subprocess.PIPE,
                               text=True)
    try:
        for i in range(N_WATCH):
            (lib / ("w%03d.bin" % i)).write_bytes(os.urandom(1000 + i))
        # let the last uploads finish under the watcher's eyes
        time.sleep(1.0)
        (lib / "STOP").write_bytes(b"")
        out, _ = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    gone = [line for line in out.splitlines() if line.startswith("gone ")]
    assert out.startswith("rounds "), out
    assert not gone, "names that vanished after they were listed (%s):\n%s" % (
        out.splitlines()[0], "\n".join(gone[:20]))
    assert len(os.listdir(lib)) == N_WATCH + 1
    m.unmount()


def _xattr(path, name):
    try:
        return os.getxattr(path, "user.mvault." + name).decode()
    except OSError as e:
        return "errno %d" % e.errno


def _state(path):
    """(size, mtime_ns, bytes, listed) of path as a fresh process sees it."""
    st = os.stat(path)
    with open(path, "rb") as f:
        data = f.read()
    return st.st_size, st.st_mtime_ns, data, path.name in os.listdir(path.parent)


def test_rewrite_elsewhere_shows_the_uploaded_version(local_stores, mvfs):  # noqa: F811
    """Mount A rewrites an existing file while its uploads are held back (the
    store is full): its new bytes are only on A's disk.  Mount B keeps
    showing the version before -- listing, stat (size, mtime), bytes,
    xattrs, a handle opened before -- and a new file of A's stays hidden;
    once the upload is done, B shows the new version.  The old version's
    bytes stay in the store meanwhile although its grace period is over (a
    quick re-save), and leave it once nobody shows them."""
    store = local_stores(tmpfs_mb=8)
    opts = ["push=on", "jobs_interval=1"]
    a = mount_on(mvfs, store, extra_opts=opts)
    b = mount_on(mvfs, store, db=a.db, extra_opts=opts)
    held = None
    try:
        old, new = b"o" * 3000, b"n" * 5000
        pa, pb = a.mnt / "library" / "x.jpg", b.mnt / "library" / "x.jpg"
        pa.write_bytes(old)
        os.utime(pa, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
        fsync_path(pa)
        old_sha = hashlib.sha256(old).hexdigest()
        old_state = (3000, 1_600_000_000_123_456_789, old, True)
        assert poll(lambda: _state(pb) == old_state, 10), _state(pb)
        held = open(pb, "rb")           # B has the old version open ...
        assert held.read(10) == old[:10]

        store.outage()
        with open(pa, "wb") as f:       # cp over: O_TRUNC, a new version
            f.write(new)
        (a.mnt / "library" / "fresh.jpg").write_bytes(b"f" * 100)
        rows = lambda: a.sql("SELECT a.upload_status, a.content_hash FROM memory_items i"
                             " JOIN memory_assets a ON a.id = i.primary_asset_id"
                             " WHERE i.display_name = 'x.jpg'")
        assert poll(lambda: rows() == ["uploading|" + hashlib.sha256(new).hexdigest()], 10), rows()
        # B's kernel caches run out (1 s) and every sweep of the deletion
        # jobs (1 s) has had its chance at the old bytes
        time.sleep(3)
        assert _state(pb) == old_state
        assert subprocess.run(["cat", str(pb)], capture_output=True, check=True).stdout == old
        assert _xattr(pb, "sha256") == old_sha
        assert _xattr(pb, "upload_status") == "completed"
        assert held.read() == old[10:]  # ... and reads it to its end
        held.close()
        held = None
        sa = _state(pa)                 # A shows its own
        assert (sa[0], sa[2]) == (5000, new)
        try:
            os.stat(b.mnt / "library" / "fresh.jpg")
            raise AssertionError("a new file shows on B before its upload")
        except FileNotFoundError:
            pass
        assert store.has(old_sha)

        store.restore()
        fsync_path(pa)                  # the upload is done
        assert poll(lambda: _state(pb)[::2] == (5000, new), 5), _state(pb)
        assert _state(pb)[1] == os.stat(pa).st_mtime_ns
        assert _xattr(pb, "sha256") == hashlib.sha256(new).hexdigest()
        assert (b.mnt / "library" / "fresh.jpg").read_bytes() == b"f" * 100
        # nobody shows the old version now: its bytes go (it was current
        # for less than version_min_age, so it keeps no trash entry)
        assert poll(lambda: not store.has(old_sha), 20), "the old version's bytes stayed"
    finally:
        if held:
            held.close()
        a.unmount()
        b.unmount()
