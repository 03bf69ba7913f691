"""Helpers of the block cache and write-back tests (tests/mount/test_cache_*.py)
and of tests/bench/bench_cache.py (stdlib only, plus botocore for S3).

    st = stats(m.mnt)                      # the root's user.mvault.stats as ints
    r = mvsync(m, 30)                      # `mvaultfs sync MNT --timeout 30`
    rows = asset_rows(m, "a.bin")          # [(upload_status, blob hash or "")]

Stores a test can run on (the `store` fixture of the tests gives one):
LocalStore keeps objects in a folder, optionally on a small tmpfs it can fill
(an outage); S3Store runs a private s3rver behind a FaultProxy that counts
the object GETs at the server and can stop s3rver (an outage); VblobStore
runs a private Vercel Blob test server that counts the blob GETs and resets
every connection during an outage.  With MVFS_TEST_STORE=vblob the `stores`
fixture gives VblobStore only (make mount-vblob).
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pgtest import default_bin
from mvtest import SLACK, MiB, object_path, q, run, sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "s3"))
import s3server  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vblob"))
from vblobserver import VblobServer  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from benchutil import drop_caches  # noqa: E402,F401  (the benchmarks' one, re-exported)

STATS_XATTR = "user.mvault.stats"


# ---------------------------------------------------------------- numbers

def stats(mnt):
    """{name: number} from the mount root's user.mvault.stats."""
    text = os.getxattr(str(mnt), STATS_XATTR).decode()
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                v = float(parts[1])
            except ValueError:        # a word ("store local")
                out[parts[0]] = parts[1]
                continue
            out[parts[0]] = int(v) if v == int(v) else v
    return out


def mvsync(m, timeout=60):
    """`mvaultfs sync MNT --timeout S`: its CompletedProcess."""
    return run([default_bin(), "sync", str(m.mnt), "--timeout", str(timeout)],
               check=False, timeout=timeout + 30)


def mvstatus(m):
    return run([default_bin(), "status", str(m.mnt)], check=False)


def asset_rows(m, name):
    """[(upload_status, blob content hash or '')] of the primary assets of the
    memory items named name."""
    rows = sql(m, "SELECT a.upload_status, coalesce(b.content_hash, ''), coalesce(a.content_hash, '')"
                  " FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id"
                  " LEFT JOIN blobs b ON b.id = a.blob_id WHERE i.display_name = %s" % q(name))
    return [tuple(r.split("|")) for r in rows]


def proc_status(pid, field):
    """A kB field of /proc/PID/status (VmHWM, VmRSS) in bytes, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def tree_bytes(d):
    """Bytes of the regular files under d (and how many), skipping races."""
    total = n = 0
    for root, _, files in os.walk(str(d)):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
                n += 1
            except OSError:
                pass
    return total, n


def block_files(data_dir):
    """The cached block files under DATA/cache/blocks (no temporaries)."""
    d = Path(data_dir) / "cache" / "blocks"
    return sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))


class Poller:
    """Calls fn every interval seconds in a thread until stopped; keeps the
    values it returned (exceptions are kept as None)."""

    def __init__(self, fn, interval=0.02):
        self.fn, self.interval, self.values = fn, interval, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.values.append(self.fn())
            except Exception:
                self.values.append(None)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(10)


def read_all(path, chunk=1 << 20):
    """Read a file through; return its bytes."""
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- stores

class LocalStore:
    """The local backend: objects under a folder, optionally a tmpfs of
    tmpfs_mb (root only) that outage() fills and restore() grows."""

    kind = "local"

    def __init__(self, tmp_path, tmpfs_mb=None):
        self.path = Path(tmp_path) / "store"
        self.path.mkdir(parents=True, exist_ok=True)
        self.tmpfs = False
        self.filler = None
        if tmpfs_mb:
            run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % tmpfs_mb, "tmpfs", self.path])
            self.tmpfs = True

    def mount_kw(self):
        return dict(store=self.path)

    def objects(self):
        """{hash: size} of the objects in the store."""
        out = {}
        for p in self.path.rglob("*"):
            if p.is_file() and len(p.name) == 64 and "sha256" in p.parts:
                out[p.name] = p.stat().st_size
        return out

    def has(self, sha):
        return object_path(self.path, sha).is_file()

    def gets(self):
        return None     # the local store cannot count requests

    def outage(self):
        """Fill the tmpfs: every upload fails with ENOSPC."""
        assert self.tmpfs, "outage() needs a tmpfs store"
        self.filler = self.path / ".filler"
        fd = os.open(self.filler, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            for chunk in (b"\0" * (1 << 20), b"\0" * 4096):
                try:
                    while True:
                        os.write(fd, chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)

    def restore(self, size_mb=256):
        if self.filler:
            self.filler.unlink()
            self.filler = None
        run(["mount", "-o", "remount,size=%dm" % size_mb, self.path])

    def close(self):
        if self.tmpfs:
            if run(["umount", self.path], check=False).returncode != 0:
                run(["umount", "-l", self.path], check=False)
            self.tmpfs = False


def s3_available():
    """Why S3 variants cannot run, or None."""
    if not s3server.BIN.exists():
        return "s3rver is not installed (make deps)"
    try:
        import botocore  # noqa: F401
    except ImportError:
        return "botocore is not installed"
    return None


class S3Store:
    """A private s3rver (bucket mvtest) behind a FaultProxy; the daemon talks
    to the proxy, which counts the GETs of objects (keys under sha256/)."""

    kind = "s3"
    PREFIX = "t"

    def __init__(self, tmp_path):
        self.folder = Path(tmp_path) / "s3rver"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.srv = s3server.S3rver(folder=self.folder).start()
        self.proxy = FaultProxy(self.srv.port).start()
        self.proxy.add("delay", method="GET", path=r"/sha256/", seconds=0)   # counts GETs

    @property
    def url(self):
        return self.srv.url(self.PREFIX)

    def mount_kw(self):
        return dict(store=self.url, extra_opts=["s3_endpoint=" + self.proxy.endpoint,
                                                "s3_retries=2", "s3_timeout=5"],
                    env=self.srv.env())

    def objects(self):
        out = {}
        for k, size in self.srv.keys(self.PREFIX + "/").items():
            name = k.rsplit("/", 1)[-1]
            if len(name) == 64:
                out[name] = size
        return out

    def has(self, sha):
        return sha in self.objects()

    def gets(self):
        """Object GETs the server was sent since start (through the proxy)."""
        return self.proxy.injected.get("delay", 0)

    def outage(self):
        self.srv.stop()

    def restore(self):
        self.srv = s3server.S3rver(folder=self.folder).start()
        self.proxy.upstream_port = self.srv.port

    def close(self):
        self.proxy.stop()
        self.srv.stop()


class VblobStore(S3Store):
    """A private Vercel Blob test server (tests/vblob/vblobserver.js)."""

    kind = "vblob"

    def __init__(self, tmp_path):
        self.folder = Path(tmp_path) / "vblob"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.srv = VblobServer(folder=self.folder).start()
        self.srv.fault("count", method="GET", port="blob", path=r"/sha256/")

    def mount_kw(self):
        return dict(store=self.url + "?retries=2&timeout=5", env=self.srv.env())

    def gets(self):
        return self.srv.injected().get("count", 0)

    def outage(self):
        self.srv.fault("reset")

    def restore(self):
        self.srv._faults("DELETE")
        self.srv.fault("count", method="GET", port="blob", path=r"/sha256/")

    def close(self):
        self.srv.stop()


def mount_on(mvfs, store, **kw):
    """mvfs(...) on store, merging extra_opts and env."""
    base = store.mount_kw()
    opts = list(base.pop("extra_opts", [])) + list(kw.pop("extra_opts", []))
    env = dict(base.pop("env", {}) or {}, **(kw.pop("env", None) or {}))
    base.update(kw)
    return mvfs(extra_opts=opts, env=env or None, **base)


def _stores(request, tmp_path, kind):
    if kind == "s3":
        why = s3_available()
        if why:
            pytest.skip(why)
    made = []

    def make(tmpfs_mb=None, name="store%d"):
        d = tmp_path / (name % len(made))
        if kind == "local":
            if tmpfs_mb and os.geteuid() != 0:
                pytest.skip("a tmpfs store needs root")
            s = LocalStore(d, tmpfs_mb)
        elif kind == "vblob":
            s = VblobStore(d)
        else:
            s = S3Store(d)
        made.append(s)
        return s
    make.kind = kind
    return make, made


@pytest.fixture(params=["vblob"] if os.environ.get("MVFS_TEST_STORE") == "vblob" else ["local", "s3"])
def stores(request, tmp_path):
    """Factory of stores, once with the local backend and once with S3
    (skipped when s3rver is not installed): stores(tmpfs_mb=None) -> store.
    List it before mvfs in a test's arguments, so that the stores outlive the
    daemons."""
    make, made = _stores(request, tmp_path, request.param)
    yield make
    for s in made:
        s.close()


@pytest.fixture
def local_stores(request, tmp_path):
    """stores, the local backend only."""
    make, made = _stores(request, tmp_path, "local")
    yield make
    for s in made:
        s.close()


# ---------------------------------------------------------------- writing

WRITER = r"""
import os, sys
src, dst, log = sys.argv[1], sys.argv[2], sys.argv[3]
names = sorted(os.listdir(src))
with open(log, "a") as lg:
    for n in names:
        data = open(os.path.join(src, n), "rb").read()
        try:
            fd = os.open(os.path.join(dst, n), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            for i in range(0, len(data), 65536):
                os.write(fd, data[i:i + 65536])
            os.close(fd)
        except OSError as e:
            lg.write("ERR %s %s\n" % (n, e)); lg.flush()
            sys.exit(1)
        lg.write("CLOSED %s\n" % n); lg.flush(); os.fsync(lg.fileno())
"""


def start_writer(src, dst, log):
    """A background python that copies the files of src into dst one by one
    and logs "CLOSED name" to log after each close(2) returned."""
    return subprocess.Popen([sys.executable, "-c", WRITER, str(src), str(dst), str(log)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def end_writer(w, timeout=30, must_finish=False):
    """Wait for a writer of start_writer to end (its mount died or it is
    done); kill its process group if it does not (and fail, when it had to
    finish)."""
    try:
        w.wait(timeout)
    except Exception:
        os.killpg(w.pid, signal.SIGKILL)
        w.wait(10)
        assert not must_finish, "the writer did not finish within %gs" % timeout


def closed_names(log):
    try:
        text = Path(log).read_text()
    except OSError:
        return []
    return [ln.split(" ", 1)[1] for ln in text.splitlines() if ln.startswith("CLOSED ")]


def make_sources(d, n, size, prefix="f"):
    """n random files of size bytes in d; {name: bytes}."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(n):
        name = "%s%03d.bin" % (prefix, i)
        data = os.urandom(size)
        (d / name).write_bytes(data)
        out[name] = data
    return out


def wait_for(fn, timeout=10, interval=0.05, what="condition"):
    """fn() once it is true; fails after timeout * SLACK (as mvtest.poll)."""
    timeout *= SLACK
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(interval)


__all__ = ["MiB", "stats", "mvsync", "mvstatus", "asset_rows", "drop_caches", "proc_status",
           "tree_bytes", "block_files", "Poller", "read_all", "LocalStore", "S3Store", "VblobStore",
           "s3_available", "mount_on", "stores", "local_stores", "start_writer", "end_writer", "closed_names", "make_sources", "wait_for"]
