"""Small helpers shared by the mount tests (stdlib only)."""

import hashlib
import os
import subprocess
import time
from pathlib import Path

SANITIZED = os.environ.get("MVFS_SANITIZED") == "1"
MiB = 1024 * 1024

TOP_LEVEL = {"library", "workspace", "collections", "galleries"}


def sql(handle, query, settle=True):
    """Run query on the handle's database; return psql -At output lines.  On
    a mount, once the records of the files closed there are made
    (settle=False: the rows as they are now)."""
    if not settle:
        return handle.sql(query, settle=False)
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


# Deadlines of waits for what the daemon does in its own time are
# stretched by this much: a wait returns as soon as its condition holds, so
# a generous bound costs nothing when a test passes, and a loaded machine
# (2 cores, the sanitizers) must not fail one.  MVFS_TEST_SLACK overrides.
SLACK = float(os.environ.get("MVFS_TEST_SLACK") or (6 if SANITIZED else 3))


def poll(fn, timeout=10, interval=0.1):
    """Call fn until it returns something true or timeout * SLACK passes;
    return its last value.  For positive waits only: never to show that
    something does not happen (that would wait the whole bound)."""
    deadline = time.monotonic() + timeout * SLACK
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def wait_until(fn, what, timeout=60, interval=0.1):
    """poll(fn, timeout), failing the test on timeout with what it waited
    for (what, or what() when it is a function: a log read at the end)."""
    v = poll(fn, timeout, interval)
    assert v, "waited %ds for %s" % (timeout * SLACK, what() if callable(what) else what)
    return v


def object_path(store, hexhash):
    """Where the local backend keeps an object: under a user's own prefix
    (u/<id>/sha256/..., users made since migration 0015) or the shared
    sha256/... of older users; the first that exists, else the shared path."""
    rel = Path("sha256") / hexhash[:2] / hexhash[2:4] / hexhash
    for p in sorted(Path(store).glob("u/*/" + str(rel))):
        return p
    return Path(store) / rel


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


# ---------------------------------------------------------------- namespace
# Helpers of the namespace tests (tests/mount/test_ns_*.py).

import errno as _errno

TOP_ALL = {"library", "workspace", "collections", "galleries", ".trash"}

# Each query lists the rows that break a rule; all must come back empty.
CONSISTENCY = {
    "collection asset_count != library rows in it":
        "SELECT c.name, c.asset_count, (SELECT count(*) FROM user_library l"
        " WHERE l.collection_id = c.id) FROM user_collections c"
        " WHERE c.asset_count <> (SELECT count(*) FROM user_library l WHERE l.collection_id = c.id)",
    "blob ref_count != active assets on it":
        "SELECT b.id, b.content_hash, b.ref_count, (SELECT count(*) FROM memory_assets a"
        " WHERE a.blob_id = b.id AND a.lifecycle_status = 'active') FROM blobs b"
        " WHERE b.ref_count <> (SELECT count(*) FROM memory_assets a"
        " WHERE a.blob_id = b.id AND a.lifecycle_status = 'active')",
    "pending delete job on a referenced blob":
        "SELECT j.id, j.blob_id, b.ref_count FROM asset_delete_jobs j JOIN blobs b ON b.id = j.blob_id"
        " WHERE j.status = 'pending' AND b.ref_count <> 0",
}


def consistency_problems(handle):
    out = {}
    for rule, query in CONSISTENCY.items():
        rows = sql(handle, query)
        if rows:
            out[rule] = rows
    return out


def check_consistency(handle, timeout=5):
    """Assert the counters agree with the rows (as the database superuser):
    every collection's asset_count, every blob's ref_count, and no pending
    deletion of a blob still referenced. Retries for timeout seconds, for
    work the daemon finishes in the background."""
    deadline = time.monotonic() + timeout
    while True:
        bad = consistency_problems(handle)
        if not bad or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not bad, "database inconsistent: %r" % bad


def oserror(fn, *args, **kw):
    """The errno fn(*args) fails with, or None if it succeeds."""
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    return None


def errname(n):
    return _errno.errorcode.get(n, str(n)) if n is not None else "success"


def assert_errno(want, fn, *args, **kw):
    """fn(*args) must fail with errno want (an int or a set of them)."""
    wants = want if isinstance(want, (set, frozenset, tuple, list)) else {want}
    got = oserror(fn, *args, **kw)
    assert got in wants, "%s%r: got %s, want %s" % (
        getattr(fn, "__name__", fn), args, errname(got), "/".join(errname(w) for w in wants))


def create_excl(path, data=b""):
    """open(O_CREAT|O_EXCL|O_WRONLY), write data, close."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


def set_skew(handle, interval):
    """Move the database clock (mvault_now()) by interval, e.g. '8 days'."""
    sql(handle, "UPDATE mvault_clock SET skew = interval %s" % q(interval))


def user_id(handle, name):
    rows = sql(handle, "SELECT id FROM users WHERE name = %s" % q(name))
    return rows[0] if rows else None


def settle(handle):
    """Wait until the records of the files closed on HANDLE's mount are
    made (conftest.Mount.settle)."""
    if hasattr(handle, "settle"):
        handle.settle()


def memory_of(handle, display_name, user=None):
    """memories.id of the memory items named display_name (a list), once
    the mount's closes are recorded."""
    settle(handle)
    where = "i.display_name = %s" % q(display_name)
    if user:
        where += " AND i.user_id = (SELECT id FROM users WHERE name = %s)" % q(user)
    return sql(handle, "SELECT i.memory_id FROM memory_items i WHERE %s ORDER BY i.ino" % where)


def log_lines_after(handle, fn, settle=0.2):
    """Run fn(); return (its errno or None, the daemon log lines it added)."""
    before = len(handle.daemon.log_text().splitlines())
    err = oserror(fn)
    time.sleep(settle)
    return err, handle.daemon.log_text().splitlines()[before:]
