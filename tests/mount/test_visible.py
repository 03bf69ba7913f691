"""A file is in its folder's listing the moment its close returns, for every
process, and stays there: never missing right after close, never vanishing
while its upload is being recorded (write-back: the upload and its record
happen in the background, after close)."""

import os
import subprocess
import sys
import time

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
