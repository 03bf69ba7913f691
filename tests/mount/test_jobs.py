"""The background job queue and the jobs that keep the model's deferred
promises: deletion after the grace period (never under legal hold, never
for bytes still referenced), expiry of pending memories and workspace files,
hashes for content that came without one; workers that die, retries with
backoff, `mvaultfs worker` for every user."""

import hashlib
import os
import signal
import time

import pytest

from imgtest import JOBS_FAST, Worker, jobs, jpeg, listing, processing, wait_job, wait_listed
from mvtest import (check_consistency, fsync_path, object_path, poll, q, run, set_skew, sql,
                    store_objects, wait_until)


def s3_of(request, m):
    return request.getfixturevalue("s3_server") if str(m.store).startswith("s3://") else None


def asset_of(m, name):
    return sql(m, "SELECT primary_asset_id FROM memory_items WHERE display_name = %s" % q(name))[0]


# ------------------------------------------------------------------ the queue

def test_enqueue_is_idempotent(mvfs):
    m = mvfs(extra_opts=["workers=0"])
    uid = sql(m, "SELECT id FROM users LIMIT 1")[0]
    p1 = '{"memoryId": "6f1c0f8e-0000-4000-8000-000000000001", "x": 1}'
    p2 = '{"x": 1, "memoryId": "6f1c0f8e-0000-4000-8000-000000000001"}'   # same, keys reordered
    made = [sql(m, "SELECT mvault_job_enqueue('cleanup_pending', %s::jsonb, %s)" % (q(p), q(uid)))[0]
            for p in (p1, p2, p1)]
    assert made == ["t", "f", "f"]
    assert sql(m, "SELECT count(*), min(payload_hash) = max(payload_hash) FROM background_jobs") == ["1|t"]
    # another type with the same payload is another job
    assert sql(m, "SELECT mvault_job_enqueue('asset_delete', %s::jsonb, NULL)" % q(p1)) == ["t"]
    m.unmount()


def test_each_job_runs_once_across_workers(mvfs, tmp_path, request):
    """Three workers on one queue (the mount's and two processes of
    `mvaultfs worker` with two threads each): every image processed once."""
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    ws = [Worker(m, tmp_path, ["workers=2"], name="w%d" % i, s3=s3_of(request, m)) for i in range(2)]
    try:
        names = ["p%02d.jpg" % i for i in range(16)]
        for i, n in enumerate(names):
            (lib / n).write_bytes(jpeg(640, 480, seed=i))
        assert wait_listed(lib / ".thumb", [n + ".webp" for n in names], timeout=120) == \
            sorted(n + ".webp" for n in names)
        assert sql(m, "SELECT status, count(*), max(retry_count) FROM background_jobs GROUP BY 1") == \
            ["completed|16|0"]
        made = (m.data_dir / "mvaultfs.log").read_text().count("info: variants of") + \
            sum(w.text().count("info: variants of") for w in ws)
        assert made == 16
        assert sql(m, "SELECT count(*) FROM memory_assets WHERE variant_type IS NOT NULL") == ["32"]
    finally:
        for w in ws:
            assert w.stop() == 0, w.text()
    check_consistency(m)
    m.unmount()


def test_worker_killed_mid_job_is_claimed_again(mvfs, tmp_path, request):
    m = mvfs(extra_opts=["workers=0"])
    (m.mnt / "library" / "a.jpg").write_bytes(jpeg(800, 600))
    slow = Worker(m, tmp_path, ["workers=1"], env={"MVFS_TEST_MEDIA_DELAY": "60"}, name="slow",
                  s3=s3_of(request, m))
    try:
        assert poll(lambda: jobs(m, "status = 'processing'"), timeout=30), slow.text()
        locked_by = sql(m, "SELECT locked_by FROM background_jobs")[0]
        assert locked_by.split(":")[1] == str(slow.proc.pid)
    finally:
        slow.kill()                     # the worker and its image helper, mid-image
    assert sql(m, "SELECT status FROM background_jobs") == ["processing"]
    w = Worker(m, tmp_path, ["workers=1"], name="fresh", s3=s3_of(request, m))
    try:
        time.sleep(3)
        # still locked: its visibility timeout (300 s) has not passed
        assert sql(m, "SELECT status, retry_count FROM background_jobs") == ["processing|0"]
        set_skew(m, "301 seconds")
        assert wait_job(m, "true", statuses=("completed",), timeout=60), w.text()
        assert sql(m, "SELECT status, retry_count, locked_by FROM background_jobs") == ["completed|1|"]
        assert wait_listed(m.mnt / "library" / ".thumb", ["a.jpg.webp"]) == ["a.jpg.webp"]
    finally:
        assert w.stop() == 0, w.text()
    m.unmount()


def test_job_that_keeps_losing_its_worker_ends_failed(mvfs, tmp_path, request):
    m = mvfs(extra_opts=["workers=0"])
    (m.mnt / "library" / "a.jpg").write_bytes(jpeg(300, 200))
    # the job is enqueued when the upload (in the background) completes
    wait_until(lambda: jobs(m), "a.jpg's job to be enqueued")
    sql(m, "UPDATE background_jobs SET max_retries = 1")
    for i, skew in enumerate(["0", "301 seconds"]):
        set_skew(m, skew)
        w = Worker(m, tmp_path, ["workers=1"], env={"MVFS_TEST_MEDIA_DELAY": "60"}, name="k%d" % i,
                   s3=s3_of(request, m))
        mine = "%%:%d:%%" % w.proc.pid
        try:
            wait_until(lambda: sql(m, "SELECT status FROM background_jobs WHERE locked_by LIKE %s"
                                   % q(mine)) == ["processing"], lambda: "worker %s to take the job: %s" % (w.proc.pid, w.text()))
        finally:
            w.kill()
    set_skew(m, "602 seconds")
    sweeper = Worker(m, tmp_path, ["workers=1"], name="sweeper", s3=s3_of(request, m))
    try:
        rows = wait_until(lambda: jobs(m, "status = 'failed'"), "the sweep to fail the job")
        assert rows[0].startswith("process_assets|failed|2|its worker") and "gave no answer" in rows[0], rows
        p = wait_until(lambda: processing(m, "a.jpg") if processing(m, "a.jpg").startswith("failed") else None,
                       "a.jpg's processing_status to say failed")
        assert "gave no answer" in p, p
    finally:
        assert sweeper.stop() == 0
    m.unmount()


def test_retries_back_off_then_fail_with_the_error(mvfs, tmp_path):
    """content_hash_compute of an asset whose bytes are missing: retried
    after 30 s, then 60 s (the database clock moved), then failed."""
    m = mvfs(extra_opts=JOBS_FAST)
    uid = sql(m, "SELECT id FROM users LIMIT 1")[0]
    web_asset(m, uid, "lost.jpg", "uploads/lost.jpg", 1234, "image/jpeg")
    row = poll(lambda: jobs(m, "type = 'content_hash_compute' AND status = 'retry'"), timeout=30)
    assert row and row[0].startswith("content_hash_compute|retry|1|cannot read 'uploads/lost.jpg'"), row
    wait = float(sql(m, "SELECT extract(epoch FROM run_at - mvault_now()) FROM background_jobs")[0])
    assert 20 < wait <= 30
    time.sleep(2)
    assert sql(m, "SELECT retry_count FROM background_jobs") == ["1"]    # waits its turn
    set_skew(m, "31 seconds")
    assert poll(lambda: sql(m, "SELECT retry_count FROM background_jobs") == ["2"], timeout=30)
    wait = float(sql(m, "SELECT extract(epoch FROM run_at - mvault_now()) FROM background_jobs")[0])
    assert 50 < wait <= 60
    sql(m, "UPDATE background_jobs SET max_retries = 2")
    set_skew(m, "92 seconds")
    rows = poll(lambda: jobs(m, "status = 'failed'"), timeout=30)
    assert rows and rows[0].startswith("content_hash_compute|failed|3|cannot read"), rows
    m.unmount()


# ---------------------------------------------------------------- deletion

def test_deletion_after_the_grace_period_not_before(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    data = os.urandom(200_000)
    h = hashlib.sha256(data).hexdigest()
    (lib / "x.bin").write_bytes(data)
    fsync_path(lib / "x.bin")
    assert object_path(m.store, h).exists()
    os.unlink(lib / "x.bin")
    set_skew(m, "29 days 23 hours")
    time.sleep(3)                                  # three sweeps
    assert object_path(m.store, h).exists()
    assert sql(m, "SELECT status FROM asset_delete_jobs") == ["pending"]
    assert listing(m.mnt / ".trash") == ["x.bin"]

    set_skew(m, "30 days 1 hour")
    assert poll(lambda: not object_path(m.store, h).exists(), timeout=30), m.log_text()
    assert poll(lambda: sql(m, "SELECT status FROM asset_delete_jobs") == ["completed"])
    assert sql(m, "SELECT a.lifecycle_status, a.blob_id IS NULL, mm.status FROM memory_assets a"
                  " JOIN memories mm ON mm.id = a.memory_id") == ["deleted|t|deleted"]
    assert sql(m, "SELECT count(*) FROM blobs") == ["0"]
    assert jobs(m, "type = 'asset_delete'")[0].startswith("asset_delete|completed|0|deleted u/")
    # the same bytes again: a fresh upload, a fresh blob
    (lib / "again.bin").write_bytes(data)
    assert (lib / "again.bin").read_bytes() == data
    assert poll(lambda: object_path(m.store, h).exists(), timeout=30)
    check_consistency(m)
    m.unmount()


def test_never_under_legal_hold(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    data = os.urandom(50_000)
    h = hashlib.sha256(data).hexdigest()
    (lib / "held.bin").write_bytes(data)
    assert poll(lambda: object_path(m.store, h).exists(), timeout=30)
    os.unlink(lib / "held.bin")
    sql(m, "UPDATE memory_assets SET legal_hold = true")
    set_skew(m, "40 days")
    time.sleep(3)
    assert object_path(m.store, h).exists()
    assert sql(m, "SELECT status FROM asset_delete_jobs") == ["pending"]
    sql(m, "UPDATE memory_assets SET legal_hold = false")
    assert poll(lambda: not object_path(m.store, h).exists(), timeout=30)
    m.unmount()


def test_never_bytes_still_referenced(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    data = os.urandom(70_000)
    h = hashlib.sha256(data).hexdigest()
    (lib / "one.bin").write_bytes(data)
    (lib / "two.bin").write_bytes(data)
    assert poll(lambda: sql(m, "SELECT ref_count FROM blobs") == ["2"], timeout=30)
    os.unlink(lib / "one.bin")
    set_skew(m, "31 days")
    time.sleep(3)
    assert object_path(m.store, h).exists()
    assert (lib / "two.bin").read_bytes() == data
    assert sql(m, "SELECT count(*) FROM asset_delete_jobs") == ["0"]
    # a deletion queued, then the bytes written again before it ran
    os.unlink(lib / "two.bin")
    (lib / "three.bin").write_bytes(data)
    set_skew(m, "62 days")
    time.sleep(3)
    assert object_path(m.store, h).exists()
    assert (lib / "three.bin").read_bytes() == data
    assert sql(m, "SELECT status FROM asset_delete_jobs") == ["cancelled"]
    check_consistency(m)
    m.unmount()


def test_restore_cancels_the_deletion(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    data = os.urandom(30_000)
    h = hashlib.sha256(data).hexdigest()
    (lib / "r.bin").write_bytes(data)
    assert poll(lambda: object_path(m.store, h).exists(), timeout=30)
    os.unlink(lib / "r.bin")
    set_skew(m, "20 days")
    os.rename(m.mnt / ".trash" / "r.bin", lib / "r.bin")
    set_skew(m, "60 days")
    time.sleep(3)
    assert object_path(m.store, h).exists()
    assert (lib / "r.bin").read_bytes() == data
    assert sql(m, "SELECT status FROM asset_delete_jobs") == ["cancelled"]
    m.unmount()


def test_variants_are_deleted_with_their_original(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    (lib / "v.jpg").write_bytes(jpeg(500, 400))
    wait_listed(lib / ".thumb", ["v.jpg.webp"])
    hashes = sql(m, "SELECT content_hash FROM memory_assets")
    assert len(hashes) == 3 and all(object_path(m.store, x).exists() for x in hashes)
    os.unlink(lib / "v.jpg")
    set_skew(m, "31 days")
    assert poll(lambda: not any(object_path(m.store, x).exists() for x in hashes), timeout=30)
    assert sql(m, "SELECT lifecycle_status, count(*) FROM memory_assets GROUP BY 1") == ["deleted|3"]
    assert store_objects(m.store) == []
    m.unmount()


# ------------------------------------------------------------------ expiry

def test_pending_memory_cleaned_after_24_hours(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    uid = sql(m, "SELECT id FROM users LIMIT 1")[0]
    # an upload the web application began and never finished
    mem = sql(m, "INSERT INTO memories (user_id, status, expires_at, created_by, title)"
                 " VALUES (%s, 'pending', now() + interval '24 hours', %s, 'abandoned') RETURNING id"
                 % (q(uid), q(uid)))[0]
    sql(m, "INSERT INTO memory_assets (memory_id, group_id) VALUES (%s, gen_random_uuid())" % q(mem))
    sql(m, "INSERT INTO upload_sessions (user_id, memory_id, session_token, total_files, expires_at)"
           " VALUES (%s, %s, 't1', 1, now() + interval '24 hours')" % (q(uid), q(mem)))
    (m.mnt / "library" / "kept.bin").write_bytes(b"kept")
    set_skew(m, "23 hours")
    time.sleep(3)
    assert sql(m, "SELECT count(*) FROM memories WHERE id = %s" % q(mem)) == ["1"]
    set_skew(m, "24 hours 1 minute")
    assert poll(lambda: sql(m, "SELECT count(*) FROM memories WHERE id = %s" % q(mem)) == ["0"], timeout=30)
    assert sql(m, "SELECT count(*) FROM memory_assets WHERE memory_id = %s" % q(mem)) == ["0"]
    assert sql(m, "SELECT count(*) FROM upload_sessions") == ["1"]       # kept.bin's
    assert (m.mnt / "library" / "kept.bin").read_bytes() == b"kept"
    assert jobs(m, "type = 'cleanup_pending'") == ["cleanup_pending|completed|0|removed pending memory 'abandoned'"]
    m.unmount()


def test_workspace_file_expires_into_the_trash(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    ws, lib, trash = m.mnt / "workspace", m.mnt / "library", m.mnt / ".trash"
    (ws / "draft.bin").write_bytes(b"draft")
    (ws / "young.bin").write_bytes(b"young")
    mem = sql(m, "SELECT memory_id FROM memory_items WHERE display_name = 'draft.bin'")[0]
    sql(m, "UPDATE workspace_assets SET expires_at = expires_at - interval '3 days'"
           " WHERE memory_id = %s" % q(mem))
    set_skew(m, "5 days")
    assert poll(lambda: listing(trash) == ["draft.bin"], timeout=30), m.log_text()
    assert listing(ws) == ["young.bin"]
    assert sql(m, "SELECT (SELECT count(*) FROM workspace_assets WHERE memory_id = %s),"
                  " (SELECT count(*) FROM user_library WHERE memory_id = %s)" % (q(mem), q(mem))) == ["0|1"]
    assert sql(m, "SELECT status FROM memories WHERE id = %s" % q(mem)) == ["tombstoned"]
    check_consistency(m)
    # mv out of the trash: back as a kept file
    os.rename(trash / "draft.bin", lib / "draft.bin")
    assert (lib / "draft.bin").read_bytes() == b"draft"
    assert listing(lib) == ["draft.bin"]
    check_consistency(m)
    m.unmount()


# ------------------------------------------------------------------ hashes

def web_asset(m, uid, name, key, size, mime):
    """A memory as the web application makes it: uploaded, no hash."""
    mem = sql(m, "INSERT INTO memories (user_id, type, status, created_by) VALUES (%s, 'image', 'active', %s)"
                 " RETURNING id" % (q(uid), q(uid)))[0]
    item, asset = sql(m, "SELECT gen_random_uuid(), gen_random_uuid()")[0].split("|")
    sql(m, "BEGIN;"
           " INSERT INTO memory_items (id, memory_id, user_id, display_name) VALUES (%s, %s, %s, %s);"
           " INSERT INTO memory_assets (id, memory_id, memory_item_id, group_id, storage_backend, storage_key,"
           "  bytes, mime_type, upload_status) VALUES (%s, %s, %s, gen_random_uuid(), %s, %s, %s, %s,"
           "  'completed');"
           " UPDATE memory_items SET primary_asset_id = %s WHERE id = %s;"
           " INSERT INTO user_library (user_id, memory_id, asset_type, storage_path, file_size_bytes, mime_type)"
           "  VALUES (%s, %s, 'image', %s, %s, %s); COMMIT"
           % (q(item), q(mem), q(uid), q(name), q(asset), q(mem), q(item),
              q("s3" if str(m.store).startswith("s3://") else "local"), q(key), size, q(mime),
              q(asset), q(item), q(uid), q(mem), q(key), size, q(mime)))
    return asset


def test_content_hash_compute_and_dedup(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    if str(m.store).startswith("s3://"):
        pytest.skip("puts an object into the local store's folder")
    uid = sql(m, "SELECT id FROM users LIMIT 1")[0]
    data = jpeg(640, 480, seed=9)
    h = hashlib.sha256(data).hexdigest()
    for key in ("uploads/web1.jpg", "uploads/web2.jpg"):
        (m.store / key).parent.mkdir(parents=True, exist_ok=True)
        (m.store / key).write_bytes(data)
    a1 = web_asset(m, uid, "web1.jpg", "uploads/web1.jpg", len(data), "image/jpeg")
    a2 = web_asset(m, uid, "web2.jpg", "uploads/web2.jpg", len(data), "image/jpeg")
    # a sweep between the two inserts gives the second its job at the next one
    def rows():
        return sql(m, "SELECT content_hash, computed_by, storage_key = %s, blob_id IS NOT NULL FROM memory_assets"
                      " WHERE id IN (%s, %s)" % (q("u/%s/sha256/%s/%s/%s" % (uid, h[:2], h[2:4], h)), q(a1), q(a2)))
    assert poll(lambda: rows() == ["%s|server|t|t" % h] * 2, timeout=60), rows()
    assert wait_job(m, "type = 'content_hash_compute'", statuses=("completed",), timeout=60)
    assert sql(m, "SELECT ref_count FROM blobs WHERE content_hash = %s" % q(h)) == ["2"]   # one blob
    assert object_path(m.store, h).read_bytes() == data
    # images get their variants, and the mount shows them
    lib = m.mnt / "library"
    assert wait_listed(lib / ".thumb", ["web1.jpg.webp", "web2.jpg.webp"]) == ["web1.jpg.webp", "web2.jpg.webp"]
    assert (lib / "web1.jpg").read_bytes() == data
    check_consistency(m)
    m.unmount()


# ---------------------------------------------------------- mvaultfs worker

def test_worker_command_serves_every_user(mvfs, tmp_path, request):
    """One `mvaultfs worker` for two users' mounts (which run none): it acts
    for each job's user, row-level security included."""
    a = mvfs(extra_opts=["workers=0", "user=alice"])
    b = mvfs(db=a.db, store=a.store, extra_opts=["workers=0", "user=bob"])
    (a.mnt / "library" / "a.jpg").write_bytes(jpeg(400, 300, seed=1))
    (b.mnt / "library" / "b.jpg").write_bytes(jpeg(300, 400, seed=2))
    # enqueued as each upload (in the background) completes
    wait_until(lambda: len(jobs(a)) == 2, "both jobs to be enqueued")
    w = Worker(a, tmp_path, ["workers=1"], s3=s3_of(request, a))
    try:
        assert wait_listed(a.mnt / "library" / ".thumb", ["a.jpg.webp"]) == ["a.jpg.webp"], w.text()
        assert wait_listed(b.mnt / "library" / ".thumb", ["b.jpg.webp"]) == ["b.jpg.webp"]
        # each job ran as its user; the worker's own role sees no user's rows
        assert sql(a, "SELECT count(DISTINCT user_id) FROM background_jobs") == ["2"]
    finally:
        assert w.stop() == 0, w.text()
    assert "every user" in w.text()
    assert "stopped; 2 done" in w.text()
    a.unmount()
    b.unmount()


def test_worker_command_needs_a_database(tmp_path):
    from pgtest import default_bin
    env = dict(os.environ)
    env.pop("MVAULT_DB", None)
    r = run([default_bin(), "worker"], check=False, env=env)
    assert r.returncode == 1 and "needs -o db=" in r.stderr
    r = run([default_bin(), "worker", "-o", "db=postgresql://nobody@127.0.0.1:1/x,data_dir=%s" % tmp_path],
            check=False, env=env)
    assert r.returncode == 1 and "cannot connect" in r.stderr, r.stderr


def test_stop_gives_the_job_back(mvfs, tmp_path, request):
    m = mvfs(extra_opts=["workers=0"])
    (m.mnt / "library" / "a.jpg").write_bytes(jpeg(300, 200))
    w = Worker(m, tmp_path, ["workers=1"], env={"MVFS_TEST_MEDIA_DELAY": "60"}, s3=s3_of(request, m))
    assert poll(lambda: jobs(m, "status = 'processing'"), timeout=30)
    t = time.monotonic()
    assert w.stop() == 0, w.text()
    assert time.monotonic() - t < 10
    assert sql(m, "SELECT status, retry_count, locked_by FROM background_jobs") == ["pending|0|"]
    m.unmount()


def test_worker_stops_on_sigint(mvfs, tmp_path, request):
    m = mvfs(extra_opts=["workers=0"])
    w = Worker(m, tmp_path, ["workers=3"], s3=s3_of(request, m))
    assert poll(lambda: "worker running" in w.text(), timeout=20), w.text()
    os.killpg(w.proc.pid, signal.SIGINT)
    assert w.proc.wait(15) == 0
    m.unmount()
