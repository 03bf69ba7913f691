"""Issue 14, "Workers on many machines": several `mvaultfs worker`
processes, each logged in as a worker role of its own (`mvaultfs user add
NAME -o worker`), share one queue on the real PostgreSQL.

- no job runs twice, and never under two workers at once: every claim is
  recorded by a trigger the test adds, and the variants are counted;
- a worker killed with SIGKILL in the middle of a job loses it after the
  visibility timeout (-o job_timeout, short here), never before while it
  lives, and another worker completes it once, one attempt used;
- throughput with 1, 2 and 4 worker processes (MVFS_BENCH=1; printed, not
  asserted):

    MVFS_BENCH=1 /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \\
        tests/mount/test_workers.py -k throughput
"""

import os
import signal
import time
import uuid

import pytest

from imgtest import Worker, jpeg, wait_listed
from mvtest import check_consistency, poll, q, run, sql, wait_until
from pgtest import SUPERUSER, default_bin


def s3_of(request, m):
    return request.getfixturevalue("s3_server") if str(m.store).startswith("s3://") else None


class WorkerRole:
    """A login role for `mvaultfs worker`, made as the README says, and
    what Worker needs to start one logged in as it."""

    def __init__(self, m, tmp_path):
        self.role = "jobs_" + uuid.uuid4().hex[:8]        # roles are the cluster's
        self.passfile = tmp_path / (self.role + ".pgpass")
        r = run([default_bin(), "user", "add", self.role, "-o",
                 "db=%s,worker,pgpass=%s" % (m.dsn, self.passfile)], timeout=60)
        assert "is a role for mvaultfs worker" in r.stdout, r.stdout
        self.dsn = m.dsn.replace("//%s@" % SUPERUSER, "//%s@" % self.role, 1)
        assert self.role in self.dsn
        self.store = m.store

    def worker(self, tmp_path, name, opts=(), env=None, s3=None):
        e = {"PGPASSFILE": str(self.passfile)}
        e.update(env or {})
        return Worker(self, tmp_path, ["workers=1"] + list(opts), env=e, name=name, s3=s3)


def record_claims(m):
    """Every change of a job's status or holder, in commit order, into
    test_claims (as the superuser: the workers' role cannot see it)."""
    sql(m, "CREATE TABLE test_claims (n bigserial PRIMARY KEY, job text, old_status text, new_status text,"
           " old_by text, new_by text, retry_count integer, at timestamptz DEFAULT clock_timestamp());"
           " CREATE FUNCTION test_claim_log() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
           "  SET search_path = public AS $$ BEGIN"
           "  INSERT INTO test_claims (job, old_status, new_status, old_by, new_by, retry_count)"
           "  VALUES (NEW.id::text, OLD.status, NEW.status, OLD.locked_by, NEW.locked_by, NEW.retry_count);"
           "  RETURN NULL; END $$;"
           " CREATE TRIGGER test_claim_log AFTER UPDATE ON background_jobs FOR EACH ROW"
           "  WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.locked_by IS DISTINCT FROM NEW.locked_by)"
           "  EXECUTE FUNCTION test_claim_log()")


def claims(m, job=None):
    """[(job, old_status, new_status, old_by, new_by, retry_count)] in order."""
    rows = sql(m, "SELECT job, old_status, new_status, coalesce(old_by, ''), coalesce(new_by, ''), retry_count"
                  " FROM test_claims%s ORDER BY n" % (" WHERE job = %s" % q(job) if job else ""))
    return [tuple(r.split("|")) for r in rows]


def holders_never_overlap(rows):
    """Walks each job's transitions: a claim only of a job nobody holds, and
    only its holder ends a hold.  Returns the problems found."""
    held, bad = {}, []
    for job, old, new, old_by, new_by, _ in rows:
        if new == "processing" and old != "processing":
            if held.get(job):
                bad.append("%s claimed by %s while %s held it" % (job, new_by, held[job]))
            held[job] = new_by
        elif old == "processing" and new == "processing":
            bad.append("%s taken from %s by %s while processing" % (job, old_by, new_by))
            held[job] = new_by
        elif old == "processing":
            if held.get(job) != old_by:
                bad.append("%s released by %s, held by %s" % (job, old_by, held.get(job)))
            held[job] = None
    return bad


def pid_of(locked_by):
    """The process of a locked_by stamp host:pid:nonce:thread."""
    return int(locked_by.split(":")[1])


def children(pid):
    """Pids of the living children of pid."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open("/proc/%s/stat" % d).read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(d))
    return out


def alive(pid):
    """Whether pid runs (a zombie does not)."""
    try:
        stat = open("/proc/%d/stat" % pid).read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def duplicate_variants(m):
    return sql(m, "SELECT variant_of_asset_id, variant_type, count(*) FROM memory_assets"
                  " WHERE variant_of_asset_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1")


def wait_enqueued(m, n, timeout=120):
    """Until n process_assets jobs exist (enqueued as uploads complete)."""
    wait_until(lambda: sql(m, "SELECT count(*) FROM background_jobs WHERE type = 'process_assets'") == [str(n)],
               lambda: "%d jobs to be enqueued: %s" % (n, sql(m, "SELECT status, count(*) FROM background_jobs"
                                                                 " GROUP BY 1")), timeout=timeout)


def stop_all(ws):
    """SIGTERM every worker (each by its pid), then the exit statuses."""
    return [w.stop() for w in ws]


# ------------------------------------------------------------ many workers

def test_three_workers_share_the_queue_each_job_once(mvfs, tmp_path, request):
    """Three `mvaultfs worker` processes (two threads each) on a backlog and
    on files written while they run: every job claimed once, completed by
    the worker that claimed it, variants made once per original and type."""
    m = mvfs(extra_opts=["workers=0"])
    record_claims(m)
    role = WorkerRole(m, tmp_path)
    lib = m.mnt / "library"
    names = ["p%02d.jpg" % i for i in range(30)]
    for i, n in enumerate(names[:20]):                  # a backlog
        (lib / n).write_bytes(jpeg(800, 600, seed=i))
    wait_enqueued(m, 20)
    ws = [role.worker(tmp_path, "w%d" % i, ["workers=2"], s3=s3_of(request, m)) for i in range(3)]
    try:
        for i, n in enumerate(names[20:], 20):          # and more while they work
            (lib / n).write_bytes(jpeg(800, 600, seed=i))
        thumbs = [n + ".webp" for n in names]
        assert wait_listed(lib / ".thumb", thumbs, timeout=180) == sorted(thumbs), \
            "\n".join(w.text() for w in ws)
        assert poll(lambda: sql(m, "SELECT status, count(*), max(retry_count) FROM background_jobs GROUP BY 1")
                    == ["completed|30|0"], timeout=30), sql(m, "SELECT status, count(*) FROM background_jobs"
                                                               " GROUP BY 1")
    finally:
        statuses = stop_all(ws)
    assert statuses == [0, 0, 0], "\n".join(w.text() for w in ws)
    texts = [w.text() for w in ws]

    # one claim per job, each ended by its holder with 'completed'
    rows = claims(m)
    assert holders_never_overlap(rows) == []
    per_job = {}
    for job, old, new, old_by, new_by, _ in rows:
        per_job.setdefault(job, []).append((old, new, old_by, new_by))
    assert len(per_job) == 30
    for job, ts in per_job.items():
        assert [(o, n) for o, n, _, _ in ts] == [("pending", "processing"), ("processing", "completed")], (job, ts)
        assert ts[0][3] == ts[1][2], (job, ts)          # completed by the claimer
    # the claims were shared (each worker stamps host:pid:nonce:thread)
    pids = {pid_of(ts[0][3]) for ts in per_job.values()}
    assert pids <= {w.proc.pid for w in ws}
    assert len(pids) >= 2, "one worker did everything: %s" % pids
    # each image decoded once, by whoever claimed it
    made = [t.count("info: variants of") for t in texts]
    assert sum(made) == 30, made
    for w, t in zip(ws, texts):
        assert t.count("info: variants of") == sum(1 for ts in per_job.values() if pid_of(ts[0][3]) == w.proc.pid)
        assert "taken over" not in t and "another worker made the variants first" not in t, t
        assert "stopped; %d done, 0 failed, 0 to be retried" % t.count("info: variants of") in t, t
    # variants once per original and type
    assert duplicate_variants(m) == []
    assert sql(m, "SELECT variant_type, count(*) FROM memory_assets WHERE variant_of_asset_id IS NOT NULL"
                  " GROUP BY 1 ORDER BY 1") == ["display|30", "thumb|30"]
    assert sql(m, "SELECT processing_status, count(*) FROM memory_assets WHERE variant_of_asset_id IS NULL"
                  " GROUP BY 1") == ["completed|30"]
    # the workers' logs name assets by id, never by name (their role cannot read names)
    assert not any(n in t for n in names for t in texts)
    print("jobs per worker process: %s" % {w.proc.pid: n for w, n in zip(ws, made)})
    check_consistency(m)
    m.unmount()


# ------------------------------------------------------ death and takeover

TIMEOUT = 4           # -o job_timeout in these tests, seconds


def test_killed_worker_job_taken_over_after_the_visibility_timeout(mvfs, tmp_path, request):
    """A worker in the middle of a slow image keeps its job while it lives,
    however long past job_timeout (it beats); killed with SIGKILL (with its
    image helper), its job is taken over once the timeout has passed and
    is completed once by another worker, with one attempt used."""
    m = mvfs(extra_opts=["workers=0"])
    record_claims(m)
    role = WorkerRole(m, tmp_path)
    (m.mnt / "library" / "slow.jpg").write_bytes(jpeg(1200, 900, seed=3))
    wait_enqueued(m, 1)
    s3 = s3_of(request, m)
    opts = ["job_timeout=%d" % TIMEOUT]
    slow = role.worker(tmp_path, "slow", opts, env={"MVFS_TEST_MEDIA_DELAY": "60"}, s3=s3)
    others = []
    try:
        wait_until(lambda: sql(m, "SELECT status FROM background_jobs") == ["processing"],
                   lambda: "the slow worker to claim the job: " + slow.text(), timeout=30)
        job, by, vt = sql(m, "SELECT id, locked_by, visibility_timeout FROM background_jobs")[0].split("|")
        assert pid_of(by) == slow.proc.pid and vt == str(TIMEOUT)
        others = [role.worker(tmp_path, "o%d" % i, opts, s3=s3) for i in range(2)]
        assert poll(lambda: all("worker running" in w.text() for w in others), timeout=20)
        # alive and busy for three timeouts: nobody takes the job
        time.sleep(3 * TIMEOUT)
        assert sql(m, "SELECT status, locked_by, retry_count FROM background_jobs") == ["processing|%s|0" % by]
        assert [r[2] for r in claims(m, job)] == ["processing"]
        # kill -9 of the worker alone, mid-image: its image helper follows it
        helpers = children(slow.proc.pid)
        assert helpers, "the slow worker has no image helper"
        killed_at = time.monotonic()
        os.kill(slow.proc.pid, signal.SIGKILL)
        slow.proc.wait(15)
        assert sql(m, "SELECT status FROM background_jobs") == ["processing"]
        assert poll(lambda: not any(alive(p) for p in helpers), timeout=10), helpers
        taken = wait_until(lambda: len(claims(m, job)) >= 3 and time.monotonic(),
                           lambda: "the job to be taken over: %s" % claims(m, job), timeout=30)
        took = taken - killed_at
        done = poll(lambda: sql(m, "SELECT status, retry_count, coalesce(locked_by, '') FROM background_jobs")
                    == ["completed|1|"], timeout=60)
        assert done, sql(m, "SELECT status, retry_count, error FROM background_jobs")
        assert wait_listed(m.mnt / "library" / ".thumb", ["slow.jpg.webp"]) == ["slow.jpg.webp"]
    finally:
        slow.kill(signal.SIGKILL)
        statuses = stop_all(others)
    assert statuses == [0, 0], "\n".join(w.text() for w in others)
    # not before the visibility timeout (less the time since its last beat)
    assert took >= TIMEOUT - 1.5, "taken over %.1f s after the kill" % took
    rows = claims(m, job)
    assert holders_never_overlap(rows) == []
    steps = [(o, n) for _, o, n, _, _, _ in rows]
    assert steps == [("pending", "processing"), ("processing", "retry"), ("retry", "processing"),
                     ("processing", "completed")], rows
    assert rows[1][3] == by and rows[1][5] == "1"       # given back: slow's attempt counted
    heir = rows[2][4]
    assert pid_of(heir) in {w.proc.pid for w in others} and rows[3][3] == heir
    texts = [w.text() for w in others]
    assert sum(t.count("info: variants of") for t in texts) == 1, texts
    assert duplicate_variants(m) == []
    assert sql(m, "SELECT count(*) FROM memory_assets WHERE variant_of_asset_id IS NOT NULL") == ["2"]
    print("taken over %.1f s after the kill (job_timeout=%d)" % (took, TIMEOUT))
    check_consistency(m)
    m.unmount()


def test_workers_alike_in_host_and_pid_are_told_apart(mvfs, tmp_path, request, monkeypatch):
    """Containers that share a hostname run their worker as pid 1 each.
    Three such workers: A and B busy with slow images, C idle.  A killed:
    B, still busy and beating, must not keep A's job alive, and C takes it
    over and completes it under a stamp of its own."""
    import imgtest
    m = mvfs(extra_opts=["workers=0"])
    record_claims(m)
    role = WorkerRole(m, tmp_path)
    for i in range(2):
        (m.mnt / "library" / ("s%d.jpg" % i)).write_bytes(jpeg(640, 480, seed=i))
    wait_enqueued(m, 2)
    pid1 = tmp_path / "as-pid-1"
    pid1.write_text('#!/bin/sh\nexec unshare --pid --fork --kill-child "%s" "$@"\n' % default_bin())
    pid1.chmod(0o755)
    monkeypatch.setattr(imgtest, "default_bin", lambda: str(pid1))
    s3 = s3_of(request, m)
    opts = ["job_timeout=%d" % TIMEOUT]
    slow = {"MVFS_TEST_MEDIA_DELAY": "60"}
    ws = []

    def processing():
        return sql(m, "SELECT id || '|' || locked_by FROM background_jobs WHERE status = 'processing'"
                      " ORDER BY locked_at")
    try:
        ws.append(role.worker(tmp_path, "a", opts, env=slow, s3=s3))
        wait_until(lambda: len(processing()) == 1, lambda: "A to claim a job: " + ws[0].text(), timeout=30)
        job, by = processing()[0].split("|")
        ws.append(role.worker(tmp_path, "b", opts, env=slow, s3=s3))
        wait_until(lambda: len(processing()) == 2, lambda: "B to claim a job: " + ws[1].text(), timeout=30)
        other, by_b = [r for r in processing() if not r.startswith(job)][0].split("|")
        assert pid_of(by) == pid_of(by_b) == 1
        ws.append(role.worker(tmp_path, "c", opts, s3=s3))
        assert poll(lambda: "worker running" in ws[2].text(), timeout=20), ws[2].text()
        ws[0].kill(signal.SIGKILL)
        done = poll(lambda: sql(m, "SELECT status, retry_count FROM background_jobs WHERE id = %s" % q(job))
                    == ["completed|1"], timeout=30)
        assert done, claims(m, job)
        # B kept its own job all along
        assert sql(m, "SELECT status, locked_by, retry_count FROM background_jobs WHERE id = %s" % q(other)) == \
            ["processing|%s|0" % by_b]
    finally:
        for w in ws:
            w.kill(signal.SIGKILL)
    rows = claims(m, job)
    assert holders_never_overlap(rows) == []
    heir = rows[2][4]
    assert pid_of(heir) == 1 and heir not in (by, by_b) and rows[1][3] == by, rows
    assert ws[2].text().count("info: variants of") == 1
    m.unmount()


def test_job_timeout_must_be_a_number_of_seconds(mvfs, tmp_path):
    m = mvfs(extra_opts=["workers=0"])
    for bad in ("0", "-5", "x", ""):
        r = run([default_bin(), "worker", "-o", "db=%s,store=%s,data_dir=%s,job_timeout=%s"
                 % (m.dsn, m.store, tmp_path / "wd", bad)], check=False, timeout=30)
        assert r.returncode == 1 and "job_timeout" in r.stderr, (bad, r.stderr)
    m.unmount()


# -------------------------------------------------------------- throughput

BENCH_IMAGES = int(os.environ.get("MVFS_BENCH_IMAGES") or 120)
_results = {}


def cpu_seconds(pid):
    """CPU seconds (user + system) of pid, of its children it reaped, and
    of its living children (the image helpers)."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(p, reaped=False):
        try:
            f = open("/proc/%d/stat" % p).read()
        except OSError:
            return 0.0, None
        rest = f[f.rindex(")") + 2:].split()
        ticks = int(rest[11]) + int(rest[12]) + (int(rest[13]) + int(rest[14]) if reaped else 0)
        return ticks / tick, int(rest[1])

    total, _ = of(pid, reaped=True)
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != pid:
            c, ppid = of(int(d))
            if ppid == pid:
                total += c
    return total


@pytest.fixture(scope="module")
def bench_photos():
    """BENCH_IMAGES JPEGs of 2 to 4 megapixels, made once."""
    sizes = [(1920, 1080), (2048, 1536), (2304, 1728)]    # 2.1, 3.1, 4.0 MP
    return [jpeg(*sizes[i % 3], seed=i) for i in range(BENCH_IMAGES)]


@pytest.mark.bench
@pytest.mark.skipif(os.environ.get("MVFS_BENCH") != "1", reason="benchmark: set MVFS_BENCH=1")
@pytest.mark.parametrize("procs", [1, 2, 4])
def test_throughput_with_more_workers(mvfs, tmp_path, request, bench_photos, procs):
    """BENCH_IMAGES photos written with no worker running, then PROCS worker
    processes of one thread each started at once: the time until every job
    is completed, and each process's CPU (with its image helper)."""
    m = mvfs(extra_opts=["workers=0"])
    role = WorkerRole(m, tmp_path)
    lib = m.mnt / "library"
    for i, data in enumerate(bench_photos):
        (lib / ("IMG_%04d.jpg" % i)).write_bytes(data)
    n = len(bench_photos)
    wait_enqueued(m, n, timeout=180)
    load = os.getloadavg()[0]          # others' work on the machine skews wall times
    t0 = time.monotonic()
    ws = [role.worker(tmp_path, "b%d" % i, s3=s3_of(request, m)) for i in range(procs)]
    try:
        done = poll(lambda: sql(m, "SELECT count(*) FROM background_jobs WHERE status = 'completed'") == [str(n)],
                    timeout=240, interval=0.25)
        wall = time.monotonic() - t0
        cpu = [cpu_seconds(w.proc.pid) for w in ws]
    finally:
        statuses = stop_all(ws)
    assert done, sql(m, "SELECT status, count(*) FROM background_jobs GROUP BY 1")
    assert statuses == [0] * procs
    per = [w.text().count("info: variants of") for w in ws]
    assert sum(per) == n and duplicate_variants(m) == []
    _results[procs] = (wall, n / wall, cpu, per, load)
    lines = ["", "process_assets throughput, %d photos of 2-4 MP, %d cores" % (n, os.cpu_count()),
             "%-9s %8s %10s %8s %6s  %s" % ("workers", "wall s", "images/s", "speedup", "load",
                                            "CPU s per process, its image helpers included (jobs)")]
    base = _results[1][1] if 1 in _results else None
    for k in sorted(_results):
        w_, r_, c_, p_, l_ = _results[k]
        lines.append("%-9d %8.1f %10.2f %8s %6.1f  %s" % (k, w_, r_, "%.2fx" % (r_ / base) if base else "-", l_,
                                                        ", ".join("%.1f (%d)" % (c, p) for c, p in zip(c_, p_))))
    print("\n".join(lines))
    m.unmount()


# ------------------------------------------------------ sweeps and claims

def test_a_sweep_hides_no_due_job_from_claims(mvfs, tmp_path):
    """Every worker process sweeps every jobs_interval.  A sweep that is
    running (here: held open) must not keep the jobs already queued from
    being claimed: a claim that finds nothing makes a worker idle until its
    next wake-up, and with a backlog of thousands and several workers the
    sweeps would take turns hiding all of it."""
    import subprocess
    from pgtest import PSQL
    m = mvfs(extra_opts=["workers=0"])
    (m.mnt / "library" / "a.jpg").write_bytes(jpeg(64, 48))
    wait_enqueued(m, 1)
    held = subprocess.Popen([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", m.dsn], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        held.stdin.write("BEGIN;\nSELECT mvault_jobs_sweep(30);\nSELECT 'swept';\n")
        held.stdin.flush()
        out = [held.stdout.readline().strip() for _ in range(3)]
        assert out == ["BEGIN", "0", "swept"], out              # nothing new to enqueue
        # what a claim sees meanwhile
        assert sql(m, "SELECT count(*) FROM (SELECT id FROM background_jobs WHERE status IN ('pending', 'retry')"
                      " FOR UPDATE SKIP LOCKED) x") == ["1"]
    finally:
        held.stdin.close()
        held.wait(15)
    m.unmount()
