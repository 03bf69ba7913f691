"""Helpers every benchmark in tests/bench uses (stdlib only), so that each
runs commands, times them and drops the page cache the same way:

    out = sh("cp -r a b")          # a shell command's stdout; RuntimeError with its stderr's tail
    secs = timed("cat f > /dev/null")
    drop_caches()                  # True when the page cache was dropped (root only)
"""

import os
import subprocess
import time


def sh(cmd, **kw):
    """stdout of shell command CMD; RuntimeError naming it and the tail of
    what it said when it exits non-zero."""
    r = subprocess.run(cmd, shell=True, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (cmd, r.returncode, (r.stderr or r.stdout).strip()[-500:]))
    return r.stdout


def timed(cmd, **kw):
    """Wall seconds of sh(CMD)."""
    t = time.monotonic()
    sh(cmd, **kw)
    return time.monotonic() - t


def drop_caches(sync_dir=None):
    """Write dirty pages back and drop the page cache (root only; otherwise
    a no-op that returns False). With SYNC_DIR only that folder's file
    system is synced (syncfs): sync(2) also waits on every other FUSE mount
    of the machine, other people's included."""
    if sync_dir is None:
        os.sync()
    else:
        subprocess.run(["sync", "-f", str(sync_dir)], capture_output=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False
