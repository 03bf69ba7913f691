"""Helpers every benchmark in tests/bench uses (stdlib only), so that each
runs commands, times them and drops the page cache the same way:

    out = sh("cp -r a b")          # a shell command's stdout; RuntimeError with its stderr's tail
    secs = timed("cat f > /dev/null")
    drop_caches()                  # True when the page cache was dropped (root only)
    first_in_line()                # MVFS_BENCH_FIRST=1: the CPU before other work here
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


def first_in_line():
    """With MVFS_BENCH_FIRST=1 (root only), moves this process, and so what
    it starts after (mounts, their PostgreSQL, the tools), into a CPU cgroup
    of the highest share: on a machine shared with other work, every system
    of a run is then measured with the CPU it asks for, instead of with
    what the rest leaves at that moment (cgroup v2's cpu.weight, or v1's
    cpu.shares). Returns a line for the table's notes, or None."""
    if os.environ.get("MVFS_BENCH_FIRST") != "1":
        return None
    for root, knob, value in (("/sys/fs/cgroup", "cpu.weight", "10000"),
                              ("/sys/fs/cgroup/cpu", "cpu.shares", "262144")):
        if not os.path.exists(os.path.join(root, knob if root.endswith("/cpu") else "cgroup.controllers")):
            continue
        group = os.path.join(root, "mvfs-bench")
        try:
            if knob == "cpu.weight":    # v2: the cpu controller for the root's children
                with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                    f.write("+cpu")
            os.makedirs(group, exist_ok=True)
            with open(os.path.join(group, knob), "w") as f:
                f.write(value)
            with open(os.path.join(group, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError as e:
            return "MVFS_BENCH_FIRST: no CPU cgroup at %s: %s" % (group, e)
        return "run first in line for the CPU (cgroup %s, %s=%s)" % (group, knob, value)
    return "MVFS_BENCH_FIRST: no CPU cgroup controller found"
