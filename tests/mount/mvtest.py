"""Small helpers shared by the mount tests (stdlib only)."""

import hashlib
import os
import subprocess
import time
from pathlib import Path

SANITIZED = os.environ.get("MVFS_SANITIZED") == "1"
MiB = 1024 * 1024

TOP_LEVEL = {"library", "workspace", "collections", "galleries"}


def sql(handle, query):
    """Run query on the handle's database; return psql -At output lines."""
    return handle.sql(query)


def q(s):
    """A SQL string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def run(cmd, timeout=300, check=True, **kw):
    """Run a command; on failure raise with its output."""
    r = subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s"
                             % (" ".join(map(str, cmd)), r.returncode, r.stdout, r.stderr))
    return r


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_random(path, size):
    """Write size random bytes to path (a local file); return sha256 hex."""
    path = Path(path)
    if size > 16 * MiB:
        run(["dd", "if=/dev/urandom", "of=%s" % path, "bs=1M",
             "count=%d" % (size // MiB), "status=none"])
        rest = size % MiB
        if rest:
            with open(path, "ab") as f:
                f.write(os.urandom(rest))
    else:
        path.write_bytes(os.urandom(size))
    return sha256_file(path)


def fsync_path(path):
    """fsync(2) a file: for mvaultfs, waits until its upload is done."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def poll(fn, timeout=10, interval=0.1):
    """Call fn until it returns something true or timeout passes; return
    its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def object_path(store, hexhash):
    """Where the local backend keeps an object."""
    return Path(store) / "sha256" / hexhash[:2] / hexhash[2:4] / hexhash


def store_objects(store, hexhash=None):
    """Object files in the store (named by their hash), optionally only
    those named hexhash."""
    out = []
    for p in Path(store).rglob("*"):
        if p.is_file() and (hexhash is None or p.name == hexhash):
            out.append(p)
    return out


def tree_state(d, hashes=True):
    """{name: (size, mtime seconds, sha256)} of the regular files in d."""
    out = {}
    for e in os.scandir(d):
        st = e.stat(follow_symlinks=False)
        out[e.name] = (st.st_size, int(st.st_mtime), sha256_file(e.path) if hashes else None)
    return out


def cmp_files(a, b):
    r = run(["cmp", a, b], check=False)
    assert r.returncode == 0, "cmp %s %s: %s%s" % (a, b, r.stdout, r.stderr)
