"""Fixtures for the mount tests: a real PostgreSQL for the session and a
factory that mounts mvaultfs for real (sshfs's test_sshfs.py and the
libfuse test runner are the model).

    def test_x(mvfs):
        m = mvfs()                       # fresh database, store, data dir
        (m.mnt / "library" / "a").write_bytes(b"x")
        m.unmount()                      # asserts exit status 0
        m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir)

Every daemon is started in its own process group. Whatever a test does,
its daemons are unmounted and, if still alive 10 s later, their process
group is killed. A watchdog kills a test's daemons shortly before the
pytest-timeout limit so that a test blocked on a wedged mount fails and
its finalizers still run.
"""

import itertools
import os
import re
import signal
import threading
import uuid
from pathlib import Path

import pytest

from pgtest import Daemon, PgServer, default_bin, is_mounted, stop_pg_under
import sys as _sys
_sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "s3"))
from s3server import S3rver  # noqa: E402
_sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "icp"))
from icpreplica import IcpReplica  # noqa: E402
_sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vblob"))
from vblobserver import VblobServer  # noqa: E402
from mvtest import SANITIZED, sql  # noqa: F401  (sql is re-exported for tests)

# MVFS_TEST_STORE=s3: every mount whose test does not pick a store keeps its
# content in s3rver (bucket mvtest, a fresh prefix per mount) instead of a
# local folder; tests that look at the local store's files are skipped.
# MVFS_TEST_STORE=vblob: the same on the Vercel Blob test server
# (tests/vblob/vblobserver.js, a fresh prefix per mount).
S3_MODE = os.environ.get("MVFS_TEST_STORE") == "s3"
# MVFS_TEST_STORE=icp: the same with an asset canister on the ICP test
# replica (tests/icp/replica.js), signed with an identity holding Commit.
ICP_MODE = os.environ.get("MVFS_TEST_STORE") == "icp"
VBLOB_MODE = os.environ.get("MVFS_TEST_STORE") == "vblob"
REMOTE_STORES = ("s3://", "vblob://", "icp://")
WATCHDOG_S = 270          # pytest-timeout is 300 s (pytest.ini)
_live = []                # daemons of the running test, for the watchdog


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test (rep_setup, rep_call, ...),
    for fixtures that add to a failure."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def pg_server():
    srv = PgServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def vblob_server():
    """The Vercel Blob test server on 127.0.0.1 (API and blob host), a temp folder."""
    with VblobServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def s3_server():
    """s3rver on 127.0.0.1 on a free port, bucket "mvtest", a temp folder."""
    with S3rver() as srv:
        yield srv


@pytest.fixture(scope="session")
def icp_server(tmp_path_factory):
    """The ICP test replica on 127.0.0.1 on a free port, one asset canister;
    .commit_pem is an identity that controls it and holds Commit."""
    d = tmp_path_factory.mktemp("icp")
    srv = IcpReplica(log=d / "replica.log")
    try:
        srv.start()
        srv.commit_pem = srv.identity(d / "commit.pem", controller=True)
        yield srv
    finally:
        srv.stop()


def _source(item):
    import inspect
    try:
        return inspect.getsource(item.function)
    except (OSError, TypeError):
        return ""


def _uses_local_store_layout(item):
    src = _source(item)
    return "object_path(" in src or "store_objects(" in src or "small_store" in src


def _makes_its_own_stores(item):
    """The test mounts only stores it makes itself (cachetest's local_stores,
    or an s3rver behind its own proxy): under MVFS_TEST_STORE it would run
    exactly as in make mount."""
    return "local_stores" in getattr(item, "fixturenames", ()) or "S3Store(" in _source(item)


def pytest_collection_modifyitems(config, items):
    if SANITIZED or S3_MODE or ICP_MODE or VBLOB_MODE:
        # what runs none of the daemon's code ran the same in the plain pass
        # (make mount); the sanitizers and the other stores would not change it
        outside = pytest.mark.skip(reason="runs none of the daemon's code: once, in the plain pass")
        for item in items:
            if item.get_closest_marker("outside"):
                item.add_marker(outside)
    if not (S3_MODE or ICP_MODE or VBLOB_MODE):
        return
    skip = pytest.mark.skip(reason="looks at the local store's files (MVFS_TEST_STORE=%s)"
                            % os.environ.get("MVFS_TEST_STORE"))
    # cachetest's `stores` fixture names its stores itself (local and s3):
    # make mount ran those tests on s3 already, and they would run the same
    twice = pytest.mark.skip(reason="picks its stores itself: run on local and s3 by make mount")
    # names and times only: another store would run the same code
    namespace = pytest.mark.skip(reason="sends no bytes to the store: run on a local folder by make mount")
    own = pytest.mark.skip(reason="mounts only stores it makes itself: run the same by make mount")
    for item in items:
        if _uses_local_store_layout(item):
            item.add_marker(skip)
        elif _makes_its_own_stores(item):
            item.add_marker(own)
        elif item.get_closest_marker("namespace"):
            item.add_marker(namespace)
        elif S3_MODE and "stores" in getattr(item, "fixturenames", ()):
            item.add_marker(twice)


@pytest.fixture(autouse=True)
def _watchdog(request):
    # 30 s before pytest-timeout's limit: the test's own timeout mark, if any
    mark = request.node.get_closest_marker("timeout")
    limit = mark.args[0] - 30 if mark and mark.args else WATCHDOG_S

    def fire():
        for d in list(_live):
            with open(d.log, "a") as f:
                f.write("\n[test watchdog] test ran over %d s: killing the daemon\n" % limit)
            d.killpg(signal.SIGKILL)
    t = threading.Timer(limit, fire)
    t.daemon = True
    t.start()
    yield
    t.cancel()


class Mount:
    """A mounted (or mounting) mvaultfs daemon."""

    def __init__(self, daemon, pg, db, dsn, store, data_dir):
        self.daemon = daemon
        self.pg = pg
        self.db = db          # database name on pg_server (None if not on it)
        self.dsn = dsn
        self.store = (store if str(store).startswith(REMOTE_STORES) else Path(store)) if store else None
        self.data_dir = Path(data_dir) if data_dir else None
        self.done = False     # the test took care of the daemon's end
        self.settle_reads = True  # sql() waits for the records of closes (settle)
        self.log_files = [self.data_dir / "mvaultfs.log"] if self.data_dir else []
        self.private_pg = None    # an embedded cluster's data folder

    @property
    def mnt(self):
        return self.daemon.mnt

    @property
    def pid(self):
        return self.daemon.pid

    @property
    def mounted_after(self):
        """Seconds from start until the mount appeared."""
        return self.daemon.mounted_after

    def log_text(self, tail=200):
        """The daemon's stdout/stderr, then the end of its log file in the
        data dir (which may hold earlier mounts' lines too)."""
        text = self.daemon.log_text()
        for f in self.log_files:
            try:
                lines = Path(f).read_text(errors="replace").splitlines()
            except OSError:
                continue
            text += "\n--- %s (last %d lines) ---\n%s\n" % (f, tail, "\n".join(lines[-tail:]))
        return text

    def sql(self, query, settle=True):
        """QUERY's rows, once the records of the files closed on this mount
        are made (settle=False: as they are now)."""
        if settle and self.settle_reads:
            self.settle()
        return self.pg.sql(self.db, query)

    def settle(self, timeout=20):
        """Wait until the records of the files closed here are made: they
        are made after the closes return, and a listing waits for them.
        Nothing when the mount is gone; at most TIMEOUT s (a test that
        holds the database up does not hang here)."""
        if self.done or self.mnt is None or not os.path.ismount(self.mnt):
            return

        def list_library():
            try:
                os.listdir(os.path.join(self.mnt, "library"))
            except OSError:
                pass
        t = threading.Thread(target=list_library, daemon=True)
        t.start()
        t.join(timeout)

    def unmount(self, timeout=15):
        """fusermount3 -u, then assert the daemon exits 0 within timeout."""
        self.done = True
        try:
            status = self.daemon.unmount(timeout)
        except RuntimeError as e:
            pytest.fail("%s; log:\n%s" % (e, self.log_text()))
        assert status is not None, (
            "mvaultfs did not exit within %gs after fusermount3 -u; log:\n%s"
            % (timeout, self.log_text()))
        assert status == 0, "mvaultfs exited with status %d after unmount; log:\n%s" % (
            status, self.log_text())
        assert not is_mounted(self.mnt)
        return status

    def wait_exit(self, timeout=15):
        """For a daemon expected to stop by itself: its exit status, or
        None if it is still running after timeout."""
        self.done = True
        try:
            return self.daemon.proc.wait(timeout)
        except Exception:
            return None

    def kill(self, sig=signal.SIGKILL):
        """Signal the daemon's process group; for SIGKILL also reap it and
        detach the dead mount."""
        self.done = sig == signal.SIGKILL or self.done
        self.daemon.killpg(sig)
        if sig == signal.SIGKILL:
            try:
                self.daemon.proc.wait(15)
            except Exception:
                pass
            if is_mounted(self.mnt):
                from pgtest import fusermount_u
                fusermount_u(self.mnt, lazy=True)


def _db_name(request):
    base = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return "t_%s_%s" % (base, uuid.uuid4().hex[:8])


@pytest.fixture
def mvfs(request, tmp_path, pg_server):
    """Factory: mvfs(db=None, store=None, data_dir=None, mnt=None,
    extra_opts=(), args=(), env=None, embedded=False, wait=True,
    timeout=20, wrap=()) -> Mount.

    db: None for a fresh database, a name on pg_server, or a whole
    conninfo (contains "://" or "="). embedded=True passes neither db= nor store=
    nor data_dir= (the daemon's embedded default). extra_opts are more -o
    options, args more command-line arguments. env replaces or removes
    (value None) variables of the daemon's environment. wait=False returns
    at once, for daemons expected to fail. wrap is a command that execs the
    rest in place (the daemon keeps its pid), e.g. nsenter into a network
    namespace (test_netns.py)."""
    handles = []
    fresh = []            # the databases made for this test, dropped after it
    seq = itertools.count()

    def start(db=None, store=None, data_dir=None, mnt=None, extra_opts=(), args=(),
              env=None, embedded=False, wait=True, timeout=20, wrap=()):
        n = next(seq)
        opts = []
        dsn = None
        if not embedded:
            if db is None:
                db = pg_server.create_db(_db_name(request), template=pg_server.migrated_template())
                fresh.append(db)
            if "://" in db or "=" in db:     # a whole conninfo, URI or key=value
                dsn, db = db, None
            else:
                dsn = pg_server.dsn(db)
            if store is None and S3_MODE:
                store = request.getfixturevalue("s3_server").url("t-" + uuid.uuid4().hex[:12])
            if store is None and ICP_MODE:
                store = request.getfixturevalue("icp_server").url()
            if store is None and VBLOB_MODE:
                store = request.getfixturevalue("vblob_server").url("t-" + uuid.uuid4().hex[:12])
            if str(store or "").startswith("icp://"):
                icp = request.getfixturevalue("icp_server")
                if not any(o.startswith("icp_identity=") for o in extra_opts):
                    extra_opts = ["icp_identity=%s" % icp.commit_pem] + list(extra_opts)
            elif str(store or "").startswith("s3://"):
                s3 = request.getfixturevalue("s3_server")
                if not any(o.startswith("s3_endpoint=") for o in extra_opts):
                    extra_opts = ["s3_endpoint=" + s3.endpoint] + list(extra_opts)
                env = dict(s3.env(), **(env or {}))
            elif str(store or "").startswith("vblob://"):
                # the token and the API from the environment, as the official client reads them
                env = dict(request.getfixturevalue("vblob_server").env(), **(env or {}))
            else:
                store = Path(store) if store else tmp_path / ("store%d" % n)
                store.mkdir(parents=True, exist_ok=True)
            data_dir = Path(data_dir) if data_dir else tmp_path / ("data%d" % n)
            data_dir.mkdir(parents=True, exist_ok=True)
            opts = ["db=" + dsn, "store=%s" % store, "data_dir=%s" % data_dir]
        opts += list(extra_opts)
        mnt = Path(mnt) if mnt else tmp_path / ("mnt%d" % n)
        argv = list(wrap) + [default_bin(), "-f"]
        if os.environ.get("MVFS_DEBUG") == "1":
            argv.append("-d")
        if opts:
            argv += ["-o", ",".join(opts)]
        argv += list(args) + [str(mnt)]

        e = dict(os.environ)
        e.pop("MVAULT_DB", None)
        e["XDG_DATA_HOME"] = str(tmp_path / "xdg")
        # the desktop's thumbnails (-o desktop_thumbnails) go to the test's own folder
        e["XDG_CACHE_HOME"] = str(tmp_path / "xdgcache")
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)

        d = Daemon(argv, mnt, tmp_path / ("mvaultfs%d.log" % n), env=e)
        if not mnt.exists():
            mnt.mkdir(parents=True)
        d.start()
        _live.append(d)
        h = Mount(d, pg_server, db, dsn, store, data_dir)
        # a module about the recorder's own timing reads rows as they are
        h.settle_reads = not getattr(request.module, "RAW_SQL", False)
        if embedded:
            xdg = Path(e.get("XDG_DATA_HOME") or Path(e.get("HOME", "/root")) / ".local/share")
            h.log_files.append(xdg / "mvaultfs" / "mvaultfs.log")
            h.private_pg = xdg / "mvaultfs"
        handles.append(h)
        if wait:
            err = None
            try:
                d.wait_mounted(timeout)
            except RuntimeError as e:
                err = str(e)
            if err:
                h.done = True     # reported here, not again at teardown
                pytest.fail(err, pytrace=False)
        return h

    yield start

    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        # what the daemons said, beside the failure (rare failures are
        # otherwise hard to read after the fact)
        for h in handles:
            print("--- mvaultfs (pid %d), the end of its log ---\n%s" % (h.daemon.pid, h.log_text(tail=60)))
    problems = []
    for h in reversed(handles):
        d = h.daemon
        was_running = d.alive()
        status = d.cleanup(grace=10)
        if h.private_pg:
            # the daemon's private postgres runs in a session of its own
            stop_pg_under(h.private_pg)
        if d in _live:
            _live.remove(d)
        if h.done:
            continue
        if not was_running:
            problems.append("mvaultfs (pid %d) exited during the test with status %s; log:\n%s"
                            % (d.pid, d.proc.returncode, d.log_text()))
            continue
        # The test left the daemon mounted: the finalizer's unmount must
        # still end in exit status 0 (sanitizer reports make it non-zero).
        if status is None:
            problems.append("mvaultfs (pid %d) did not exit within 10 s of fusermount3 -u; "
                            "killed. log:\n%s" % (d.pid, d.log_text()))
        elif status != 0:
            problems.append("mvaultfs (pid %d) exited with status %d at unmount; log:\n%s"
                            % (d.pid, status, d.log_text()))
    for db in fresh:      # its daemons are gone
        pg_server.drop_db_later(db)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
