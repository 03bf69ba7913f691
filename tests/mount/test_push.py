"""Issue 14, push invalidation: a change on mount A reaches mount B's kernel
caches (names, attributes, content pages) through NOTIFY and FUSE
invalidation, well within the kernel's 1 s timeouts that B would otherwise
wait out; announcements carry no names and reach only the user's own
sessions; a lost LISTEN connection recovers.

Each case first makes B's kernel cache the old state (a stat, a read),
then changes it on A, and measures how long B keeps showing the old state.
Without push that is about a second (the timeouts), so every bound here
(0.5 s, generous next to the ~10 ms push takes) fails without it."""
import errno
import os
import re
import subprocess
import time

import pytest

from mvtest import SANITIZED, fsync_path, run, user_id
from pgtest import PSQL, SUPERUSER, default_bin

# B must see A's change this fast: half the kernel's timeout (a bit more
# under the sanitizers, still under it).
BOUND = 0.8 if SANITIZED else 0.5


def seen_after(check, limit=3.0):
    """Seconds until check() is true, polling every 2 ms; None after limit."""
    t0 = time.monotonic()
    while True:
        if check():
            return time.monotonic() - t0
        if time.monotonic() - t0 > limit:
            return None
        time.sleep(0.002)


def exists(p):
    try:
        os.stat(p)
        return True
    except FileNotFoundError:
        return False


def read(p):
    try:
        with open(p, "rb") as f:
            return f.read()
    except OSError:
        return None


def wait_visible(p, timeout=20):
    t = seen_after(lambda: exists(p), timeout)
    assert t is not None, "%s never showed" % p


@pytest.fixture
def pair(mvfs):
    # MVFS_TEST_PUSH=off mounts both without push: the tests that use this
    # fixture must then fail (they measure push, not the timeouts)
    opts = ["push=" + os.environ.get("MVFS_TEST_PUSH", "on")]
    a = mvfs(extra_opts=opts)
    b = mvfs(db=a.db, store=a.store, extra_opts=opts)
    yield a, b
    a.unmount()
    b.unmount()


def put(path, data):
    path.write_bytes(data)
    fsync_path(path)         # in the store: any mount may read it


# --- one function per kind of change: (prepare on A, warm B, change on A,
# --- B shows it).  Shared by the tests here and test_netns.py.

def case_create(a, b, i):
    os.makedirs(a.mnt / "library" / "c", exist_ok=True)
    wait_visible(b.mnt / "library" / "c")
    before = os.stat(b.mnt / "library" / "c").st_mtime_ns      # B caches the folder's times
    put(a.mnt / "library" / "c" / ("new%d.jpg" % i), b"x" * 100)
    return lambda: (exists(b.mnt / "library" / "c" / ("new%d.jpg" % i))
                    and os.stat(b.mnt / "library" / "c").st_mtime_ns != before)


def case_delete(a, b, i):
    put(a.mnt / "library" / ("del%d.jpg" % i), b"d" * 100)
    wait_visible(b.mnt / "library" / ("del%d.jpg" % i))      # B caches the name
    os.unlink(a.mnt / "library" / ("del%d.jpg" % i))
    return lambda: not exists(b.mnt / "library" / ("del%d.jpg" % i))


def case_rename(a, b, i):
    put(a.mnt / "library" / ("old%d.jpg" % i), b"r" * 100)
    wait_visible(b.mnt / "library" / ("old%d.jpg" % i))
    os.rename(a.mnt / "library" / ("old%d.jpg" % i), a.mnt / "library" / ("renamed%d.jpg" % i))
    return lambda: (not exists(b.mnt / "library" / ("old%d.jpg" % i))
                    and exists(b.mnt / "library" / ("renamed%d.jpg" % i)))


def case_rewrite(a, b, i):
    p = "library/rw%d.jpg" % i
    put(a.mnt / p, b"1" * 4096)
    wait_visible(b.mnt / p)
    assert read(b.mnt / p) == b"1" * 4096                     # B's page cache holds it (keep_cache)
    put(a.mnt / p, b"2" * 4096)                                # same size: only the content differs
    return lambda: read(b.mnt / p) == b"2" * 4096


def case_mkdir(a, b, i):
    os.makedirs(a.mnt / "library" / "m", exist_ok=True)
    wait_visible(b.mnt / "library" / "m")
    before = os.stat(b.mnt / "library" / "m").st_nlink          # cached with the folder's attributes
    os.mkdir(a.mnt / "library" / "m" / ("d%d" % i))
    return lambda: (exists(b.mnt / "library" / "m" / ("d%d" % i))
                    and os.stat(b.mnt / "library" / "m").st_nlink == before + 1)


def case_rmdir(a, b, i):
    os.mkdir(a.mnt / "library" / ("rd%d" % i))
    wait_visible(b.mnt / "library" / ("rd%d" % i))
    os.rmdir(a.mnt / "library" / ("rd%d" % i))
    return lambda: not exists(b.mnt / "library" / ("rd%d" % i))


def case_folder_rename(a, b, i):
    os.makedirs(a.mnt / "library" / ("fa%d" % i) / "inner")
    wait_visible(b.mnt / "library" / ("fa%d" % i) / "inner")
    os.rename(a.mnt / "library" / ("fa%d" % i), a.mnt / "library" / ("fb%d" % i))
    return lambda: (not exists(b.mnt / "library" / ("fa%d" % i) / "inner")
                    and exists(b.mnt / "library" / ("fb%d" % i) / "inner"))


def case_gallery_link(a, b, i):
    os.makedirs(a.mnt / "galleries" / "G", exist_ok=True)
    f = "library/g%d.jpg" % i
    put(a.mnt / f, b"g" * 100)
    wait_visible(b.mnt / f)
    wait_visible(b.mnt / "galleries" / "G")
    assert os.stat(b.mnt / f).st_nlink == 1                    # cached
    os.link(a.mnt / f, a.mnt / "galleries" / "G" / ("g%d.jpg" % i))
    return lambda: (os.stat(b.mnt / f).st_nlink == 2
                    and ("g%d.jpg" % i) in os.listdir(b.mnt / "galleries" / "G"))


def case_listing(a, b, i):
    # library/ itself: no folder row, so only the mount's own rule drops
    # B's kept listing of it (a new name names nothing B's kernel holds)
    name = "listed%d.jpg" % i
    assert name not in os.listdir(b.mnt / "library")
    assert name not in os.listdir(b.mnt / "library")             # B's kernel keeps the listing
    put(a.mnt / "library" / name, b"l" * 100)
    return lambda: name in os.listdir(b.mnt / "library")


def case_resize(a, b, i):
    p = "library/rs%d.jpg" % i
    put(a.mnt / p, b"1" * 100)
    wait_visible(b.mnt / p)
    assert os.stat(b.mnt / p).st_size == 100                   # B's kernel keeps the attributes
    put(a.mnt / p, b"2" * 200)
    return lambda: os.stat(b.mnt / p).st_size == 200


CASES = {
    "listing": case_listing, "resize": case_resize,
    "create": case_create, "delete": case_delete, "rename": case_rename, "rewrite": case_rewrite,
    "mkdir": case_mkdir, "rmdir": case_rmdir, "folder_rename": case_folder_rename,
    "gallery_link": case_gallery_link,
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_b_sees_a_change_within_half_the_timeout(pair, kind):
    a, b = pair
    times = []
    for i in range(3):
        check = CASES[kind](a, b, i)
        t = seen_after(check)
        assert t is not None, "%s on A: B still shows the old state after 3 s" % kind
        times.append(t)
    # the median of three: one trial slowed by the machine is not the mechanism
    assert sorted(times)[1] < BOUND, "%s on A reached B after %s s (kernel timeout: 1 s)" % (
        kind, ["%.3f" % t for t in times])


def test_without_push_b_waits_for_the_kernel_timeouts(mvfs):
    """The bound above means something: with -o push=off a delete on A
    shows on B only once B's cached name expires."""
    a = mvfs(extra_opts=["push=off"])
    b = mvfs(db=a.db, store=a.store, extra_opts=["push=off"])
    times = []
    for i in range(3):
        times.append(seen_after(case_delete(a, b, i)))
    assert sorted(times)[1] > BOUND, times
    a.unmount()
    b.unmount()


def test_no_listener_no_triggers(mvfs):
    """A database where no mount listens has no push triggers (each costs a
    small file's create and close some time even when it says nothing);
    the first mount that listens makes them, and the next finds them."""
    def triggers(h):
        return int(h.sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%\\_push\\_%'")[0])
    a = mvfs(extra_opts=["push=off"])
    (a.mnt / "library" / "x.txt").write_bytes(b"x")
    assert triggers(a) == 0
    assert a.sql("SELECT count(*) FROM mvault_push_channels") == ["0"]
    b = mvfs(db=a.db, store=a.store)       # push on: the default with -o db=
    made = triggers(b)
    assert made >= 17, made
    c = mvfs(db=a.db, store=a.store)
    assert triggers(c) == made
    assert "-o push=off" in a.log_text() and "cannot listen" not in b.log_text() + c.log_text()
    for h in (a, b, c):
        h.unmount()


def test_rewrite_drops_b_pages_of_an_open_file(pair):
    """B keeps the file open across A's rewrite: a read from offset 0 after
    it sees the new bytes (the pages were dropped), not the cached ones.
    (On the kernel of our CI this holds with push off too, as does the
    rewrite case above: DECISIONS.md, "Changes pushed to other mounts".)"""
    a, b = pair
    put(a.mnt / "library" / "open.jpg", b"A" * 8192)
    wait_visible(b.mnt / "library" / "open.jpg")
    fd = os.open(b.mnt / "library" / "open.jpg", os.O_RDONLY)
    try:
        assert os.pread(fd, 8192, 0) == b"A" * 8192
        put(a.mnt / "library" / "open.jpg", b"B" * 8192)
        t = seen_after(lambda: read(b.mnt / "library" / "open.jpg") == b"B" * 8192)
        assert t is not None and t < BOUND, t
    finally:
        os.close(fd)


def test_a_burst_is_coalesced(mvfs):
    """500 files made on A in a burst: B lists all 500, and its listener
    calls the kernel only for what B holds (the folder), in batches that
    each gather several announcements, not once per announcement (B's debug
    lines count them)."""
    a = mvfs()
    b = mvfs(db=a.db, store=a.store, args=["-d"])
    d = a.mnt / "library" / "burst"
    os.mkdir(d)
    wait_visible(b.mnt / "library" / "burst")
    os.stat(b.mnt / "library" / "burst")
    start = len(b.log_text(tail=10 ** 6))
    for i in range(500):
        (d / ("f%03d.jpg" % i)).write_bytes(b"%d" % i)
    run([default_bin(), "sync", str(a.mnt)], timeout=120)
    t = seen_after(lambda: len(os.listdir(b.mnt / "library" / "burst")) == 500, 20)
    assert t is not None
    time.sleep(0.2)
    lines = re.findall(r"push: (\d+) names, (\d+) attributes changed elsewhere: (\d+) kernel calls",
                       b.log_text(tail=10 ** 6)[start:])
    batches = len(lines)
    inodes = sum(int(n) + int(m) for n, m, _ in lines)
    calls = sum(int(c) for _, _, c in lines)
    print("burst of 500: %d batches, %d inodes announced, %d kernel calls" % (batches, inodes, calls))
    assert inodes >= 1000, lines[:5]          # each file: its create and its upload, at least
    assert batches < inodes / 2, (batches, inodes)
    assert calls <= 2 * batches, (calls, batches)
    a.unmount()
    b.unmount()


# --- isolation ------------------------------------------------------------

class Listener:
    """psql as ROLE, LISTENing on CHANNELS; .stop() returns the
    notifications it received: [(channel, payload)]."""

    def __init__(self, pg, db, role, channels):
        self.p = subprocess.Popen([PSQL, "-X", "-q", "-h", pg.host, "-p", str(pg.port), "-U", role,
                                   "-d", db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        for c in channels:
            self.p.stdin.write('LISTEN "%s";\n' % c)
        self.p.stdin.write("SELECT 'listening';\n")
        self.p.stdin.flush()
        while "listening" not in self.p.stdout.readline():
            pass

    def stop(self):
        out, _ = self.p.communicate("SELECT pg_sleep(0.2);\nSELECT 1;\n", timeout=30)
        return re.findall(r'Asynchronous notification "([^"]+)" with payload "([^"]*)" received', out)


def test_another_user_learns_nothing(mvfs, pg_server, tmp_path):
    """alice and bob each log in as their own role.  bob reads only his own
    channel's name; LISTENing as bob on his channel and on every name he
    could guess hears nothing of alice's changes, which her channel carries
    (as ids only)."""
    db = pg_server.create_db("t_push_iso_%d" % os.getpid())
    su = pg_server.dsn(db)
    tag = os.urandom(3).hex()
    alice, bob = "alice_" + tag, "bob_" + tag
    run([default_bin(), "db", "migrate", "-o", "db=" + su], timeout=120)
    for who in (alice, bob):
        run([default_bin(), "user", "add", who, "-o", "db=%s,no_password" % su], timeout=120)
    as_role = lambda r: "postgresql://%s@%s:%d/%s" % (r, pg_server.host, pg_server.port, db)
    a = mvfs(db=as_role(alice))
    b = mvfs(db=as_role(bob))
    lines = lambda role, q: subprocess.run(
        [PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", pg_server.host, "-p", str(pg_server.port),
         "-U", role, "-d", db, "-c", q], capture_output=True, text=True, check=True).stdout.split()
    alice_ch = pg_server.sql(db, "SELECT channel FROM mvault_push_channels c JOIN users u ON u.id = c.user_id"
                                 " WHERE u.name = '%s'" % alice)[0]
    bob_ch = lines(bob, "SELECT mvault_push_channel()")[0]
    assert lines(bob, "SELECT channel FROM mvault_push_channels") == [bob_ch]
    assert alice_ch != bob_ch and re.match(r"^mvfs_[0-9a-f]{40}$", alice_ch), alice_ch
    aid = pg_server.sql(db, "SELECT id FROM users WHERE name = '%s'" % alice)[0]
    guesses = [bob_ch, "mvfs_" + aid.replace("-", ""), "mvfs_" + alice, alice, aid, "mvault_push",
               "mvault_jobs", "mvfs_push", "mvfs"]
    spy = Listener(pg_server, db, bob, guesses)
    witness = Listener(pg_server, db, SUPERUSER, [alice_ch])
    try:
        lib = a.mnt / "library"
        os.mkdir(lib / "secret-folder")
        put(lib / "secret-folder" / "secret-name.jpg", b"s" * 100)
        os.rename(lib / "secret-folder" / "secret-name.jpg", lib / "secret-folder" / "other-secret.jpg")
        os.unlink(lib / "secret-folder" / "other-secret.jpg")
    finally:
        heard = spy.stop()
        seen = witness.stop()
    assert heard == [], heard
    assert seen, "alice's changes were not announced on her channel"
    for ch, payload in seen:
        for tok in payload.split():
            assert re.match(r"^([na]\d+|\*)$", tok), payload
    a.unmount()
    b.unmount()


# --- a lost LISTEN connection ----------------------------------------------

def test_listener_killed_recovers(pair):
    """pg_terminate_backend of the listening connections: each mount
    reconnects, invalidates what the kernel holds (it may have missed
    changes meanwhile), and pushes again."""
    a, b = pair
    lib_a, lib_b = a.mnt / "library", b.mnt / "library"
    put(lib_a / "k.jpg", b"k" * 100)
    wait_visible(lib_b / "k.jpg")
    pids = a.sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'mvaultfs push'"
                 " AND datname = current_database()")
    assert len(pids) == 2, pids
    # a change made while nobody listens: B learns of it when it listens again
    a.sql("SELECT " + ", ".join("pg_terminate_backend(%s)" % p for p in pids))
    os.unlink(lib_a / "k.jpg")
    t = seen_after(lambda: not exists(lib_b / "k.jpg"))
    assert t is not None
    new = lambda: a.sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'mvaultfs push'"
                        " AND datname = current_database()")
    assert seen_after(lambda: len(new()) == 2 and not set(new()) & set(pids), 20) is not None
    # pushed again: a delete reaches B well within the timeouts
    times = [seen_after(case_delete(a, b, 100 + i)) for i in range(3)]
    assert sorted(times)[1] < BOUND, times
    assert "listening again" in b.log_text()


# --- the latency table -----------------------------------------------------

def latencies(a, b, kind, trials):
    """Milliseconds B showed the old state in each of trials changes of
    kind on A, sorted (also test_netns.py's table)."""
    times = []
    for i in range(trials):
        t = seen_after(CASES[kind](a, b, 1000 + i))
        assert t is not None, (kind, i)
        times.append(t * 1000)
    return sorted(times)


def percentile(times, q):
    return times[min(len(times) - 1, int(round(q * (len(times) - 1))))]


@pytest.mark.skipif(os.environ.get("MVFS_PUSH_BENCH") != "1",
                    reason="the latency table: MVFS_PUSH_BENCH=1 (about 20 minutes)")
@pytest.mark.parametrize("push", ["on", "off"])
@pytest.mark.parametrize("kind", sorted(CASES))
def test_latency_table(mvfs, kind, push):
    """MVFS_PUSH_TRIALS (100) trials of one kind of change: how long B
    shows the old state after A's call returned; p50 and p99 appended to
    push_latency.txt beside the binary.  One kind per test: the conftest
    watchdog ends a test after 270 s."""
    trials = int(os.environ.get("MVFS_PUSH_TRIALS") or 100)
    a = mvfs(extra_opts=["push=" + push])
    b = mvfs(db=a.db, store=a.store, extra_opts=["push=" + push])
    times = latencies(a, b, kind, trials)
    row = "%-14s push=%-3s  n=%d  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms" % (
        kind, push, trials, percentile(times, 0.5), percentile(times, 0.99), times[-1])
    with open(os.path.join(os.path.dirname(default_bin()), "push_latency.txt"), "a") as f:
        f.write(row + "\n")
    print(row)
    a.unmount()
    b.unmount()
