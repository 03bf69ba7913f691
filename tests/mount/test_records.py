"""Close-time records made after the close returned (issue 10; DECISIONS.md,
"Where a closed file is durable"): a close seals the bytes in the journal
and a recorder thread makes the database record.  Until it has, this mount
shows the closed version (stat, open, read); a change the record would
undo or miss (utime, chmod, unlink, rename, xattrs) waits for it first; an
unmount records what is queued before it ends."""

import hashlib
import os
import subprocess

from cachetest import asset_rows, local_stores, mount_on, mvsync, stats, stores  # noqa: F401
from mvtest import check_consistency, poll, sql


def sha_of(data):
    return hashlib.sha256(data).hexdigest()

# rows as they are, not after the mount's records (conftest.Mount.settle): these tests are about about when records are made
RAW_SQL = True


def rows_of(m, name):
    """(size, mtime seconds) of the current version of the file NAME, from
    the database."""
    r = sql(m, "SELECT a.bytes, extract(epoch FROM i.mtime)::bigint FROM memory_items i"
               " JOIN memory_assets a ON a.id = i.primary_asset_id"
               " WHERE i.display_name = '%s'" % name)
    return r


def test_a_rewrite_shows_at_once(mvfs):
    """Each version, of a new size, is what stat and a read see right after
    its close, whatever the rows say yet."""
    m = mvfs(extra_opts=["entry_timeout=0", "attr_timeout=0", "version_min_age=0"])
    f = m.mnt / "library" / "a.bin"
    for i in range(60):
        data = os.urandom(1000 + 37 * i)
        f.write_bytes(data)
        assert os.stat(f).st_size == len(data), i
        # a new handle right after the close reads the closed bytes
        with open(f, "rb") as r:
            assert r.read() == data, i
        if i % 3 == 0:         # and appending starts from them
            with open(f, "ab") as a:
                a.write(b"tail")
            assert f.read_bytes() == data + b"tail", i
    check_consistency(m)
    m.unmount()


def test_a_change_after_close_is_not_undone(mvfs):
    """utime and chmod right after a close (rsync, cp -p, tar) are what the
    rows keep, not the close's own mtime recorded afterwards."""
    m = mvfs(extra_opts=["entry_timeout=0", "attr_timeout=0"])
    d = m.mnt / "library" / "t"
    os.mkdir(d)
    want = {}
    for i in range(40):
        f = d / ("f%02d.bin" % i)
        f.write_bytes(os.urandom(3000))
        t = 1_500_000_000 + i * 1000
        os.utime(f, (t, t))
        os.chmod(f, 0o600 if i % 2 else 0o640)
        want[f.name] = (t, 0o600 if i % 2 else 0o640)
    m.unmount()
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    for name, (t, mode) in want.items():
        st = os.stat(d / name)
        assert (int(st.st_mtime), st.st_mode & 0o777) == (t, mode), name
        assert rows_of(m2, name) == ["3000|%d" % t], name
    m2.unmount()


def test_unlink_and_rename_after_close_keep_the_last_version(mvfs):
    """The trash keeps the version closed last when the file is removed right
    after that close; a rename over a file replaces its last version."""
    m = mvfs(extra_opts=["version_min_age=0"])
    lib = m.mnt / "library"
    for i in range(20):
        f = lib / ("u%02d.txt" % i)
        f.write_bytes(b"one %d" % i)
        f.write_bytes(b"two, longer %d" % i)
        os.unlink(f)
    trashed = sorted(os.listdir(m.mnt / ".trash"))
    current = [n for n in trashed if "replaced" not in n]
    assert len(current) == 20, trashed
    for n in current:
        assert (m.mnt / ".trash" / n).read_bytes().startswith(b"two, longer "), n
    g = lib / "g.txt"
    g.write_bytes(b"first")
    tmp = lib / ".g.txt.tmp"
    tmp.write_bytes(b"second, by rename")
    os.rename(tmp, g)
    assert g.read_bytes() == b"second, by rename"
    check_consistency(m)
    m.unmount()


def test_unmount_right_after_closes_records_them(mvfs):
    """An unmount right after many closes makes every queued record before
    the daemon ends: the rows, read without any mount, show every file."""
    m = mvfs()
    d = m.mnt / "library" / "burst"
    os.mkdir(d)
    for i in range(300):
        (d / ("b%03d.bin" % i)).write_bytes(b"%06d" % i * (1 + i % 7))
    m.unmount()
    sizes = sql(m, "SELECT i.display_name || ':' || a.bytes FROM memory_items i"
                   " JOIN memory_assets a ON a.id = i.primary_asset_id"
                   " WHERE i.display_name LIKE 'b%' AND a.content_hash IS NOT NULL ORDER BY 1")
    assert sizes == ["b%03d.bin:%d" % (i, 6 * (1 + i % 7)) for i in range(300)], sizes[:5]


def test_closes_do_not_wait_for_the_database(mvfs):
    """The record runs on its own thread: with every record of a close made
    to wait 0.3 s in the database, the 20 closes return while most of their
    records are still to come (counted in the rows, not timed), and the
    rows catch up afterwards."""
    m = mvfs()
    # a trigger that makes each close-time record slow
    sql(m, "CREATE FUNCTION slow_stage() RETURNS trigger LANGUAGE plpgsql AS"
           " $$BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END$$")
    sql(m, "CREATE TRIGGER slow_stage BEFORE UPDATE OF content_hash ON memory_assets"
           " FOR EACH ROW WHEN (NEW.content_hash IS NOT NULL AND OLD.content_hash IS NULL)"
           " EXECUTE FUNCTION slow_stage()")
    # a file made here first gets its asset row with its content (0029)
    sql(m, "CREATE TRIGGER slow_made BEFORE INSERT ON memory_assets"
           " FOR EACH ROW WHEN (NEW.content_hash IS NOT NULL) EXECUTE FUNCTION slow_stage()")
    d = m.mnt / "library" / "slow"
    os.mkdir(d)
    recorded = ("SELECT count(*) FROM memory_assets WHERE content_hash IS NOT NULL"
                " AND bytes BETWEEN 100 AND 119")
    for i in range(20):
        (d / ("s%02d.bin" % i)).write_bytes(b"x" * (100 + i))
    # a close that waited for its record would leave none to come
    assert int(sql(m, recorded)[0]) < 20
    for i in range(20):
        assert os.stat(d / ("s%02d.bin" % i)).st_size == 100 + i
    assert poll(lambda: sql(m, recorded) == ["20"], timeout=30)
    sql(m, "DROP TRIGGER slow_stage ON memory_assets; DROP TRIGGER slow_made ON memory_assets")
    m.unmount()


def test_a_batch_keeps_each_records_own_answer(local_stores, mvfs):
    """The records of one batch go to the database together (meta_records):
    one that fails takes its own way (kept, recorded after its upload), as
    do the rest of its batch (the database taken as away, as before; their
    rows were made by the batch all the same), and every file ends recorded
    with its bytes. The store is away meanwhile, so no upload
    record makes them first. A slow first record makes the next closes queue
    into one batch."""
    store = local_stores(tmpfs_mb=8)
    m = mount_on(mvfs, store)
    store.outage()
    d = m.mnt / "library" / "batch"
    os.mkdir(d)
    data = {"f%d.bin" % i: os.urandom(3000 + i) for i in range(6)}
    slow, bad = os.urandom(2000), data["f2.bin"]
    sql(m, "CREATE FUNCTION t_batch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN"
           " IF NEW.content_hash = '%s' THEN PERFORM pg_sleep(0.5); END IF;"
           " IF NEW.content_hash = '%s' THEN RAISE EXCEPTION 'injected failure'; END IF;"
           " RETURN NEW; END$$" % (sha_of(slow), sha_of(bad)))
    sql(m, "CREATE TRIGGER t_batch BEFORE INSERT OR UPDATE ON memory_assets FOR EACH ROW EXECUTE FUNCTION t_batch()")
    (d / "slow.bin").write_bytes(slow)
    for name, b in data.items():
        (d / name).write_bytes(b)
    said = lambda: m.log_text()  # noqa: E731
    assert poll(lambda: "cannot record 'f5.bin' yet" in said(), timeout=30), said()
    assert "cannot make 'f2.bin' in the database yet" in said()
    # the batch made every other record, in one round trip, before the
    # failed one was answered
    assert sql(m, "SELECT i.display_name FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id"
                  " WHERE a.content_hash IS NOT NULL ORDER BY 1") == [n for n in sorted(data) if n != "f2.bin"] + ["slow.bin"]
    sql(m, "DROP TRIGGER t_batch ON memory_assets")
    store.restore()
    r = mvsync(m, 60)
    assert r.returncode == 0, r.stderr
    for name, b in data.items():
        assert (d / name).read_bytes() == b
        assert asset_rows(m, name) == [("completed", sha_of(b), sha_of(b))], name
    check_consistency(m)
    m.unmount()


def test_upload_records_go_in_batches(stores, mvfs):
    """The upload records of many small files are made a batch at a time
    (mvfs_uploaded_many: one statement, one commit, up to 32 records):
    with the first record kept waiting (a lock on the blobs, which only
    upload records write), the 39 other uploads reach the store and their
    records take a few statements once it goes (main's build: its 4
    uploaders wait for their records, and the others for them). One whose record fails (a trigger refuses it) is
    undone alone: the others of its batch are recorded, it waits, and it is
    recorded once the trigger is gone."""
    store = stores()
    m = mount_on(mvfs, store)
    d = m.mnt / "library" / "many"
    os.mkdir(d)
    data = {"u%02d.bin" % i: os.urandom(4096) for i in range(40)}
    bad = sha_of(data["u07.bin"])
    sql(m, "CREATE FUNCTION t_refuse() RETURNS trigger LANGUAGE plpgsql AS"
           " $$BEGIN RAISE EXCEPTION 'injected failure'; END$$")
    sql(m, "CREATE TRIGGER t_refuse BEFORE UPDATE OF upload_status ON memory_assets FOR EACH ROW"
           " WHEN (NEW.content_hash = '%s' AND NEW.upload_status = 'completed') EXECUTE FUNCTION t_refuse()" % bad)
    lock = subprocess.Popen(["psql", "-X", "-q", "-At", m.pg.dsn(m.db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        lock.stdin.write("BEGIN; LOCK TABLE blobs IN SHARE ROW EXCLUSIVE MODE; SELECT 'locked';\n")
        lock.stdin.flush()
        assert lock.stdout.readline().strip() == "locked"
        for name, b in data.items():
            (d / name).write_bytes(b)
        rows = "SELECT count(*) FROM memory_assets WHERE bytes = 4096 AND upload_status = '%s'"
        assert poll(lambda: sql(m, rows % "uploading") == ["40"], timeout=30)
        # (a build whose uploaders each wait for their own record has 4 here)
        assert poll(lambda: stats(m.mnt)["store_puts"] >= 40, timeout=30), stats(m.mnt)["store_puts"]
        before = stats(m.mnt)["db_statements"]
    finally:
        lock.communicate("COMMIT;\n", timeout=30)
    assert poll(lambda: sql(m, rows % "completed") == ["39"], timeout=60), m.log_text()
    sent = stats(m.mnt)["db_statements"] - before
    assert sent < 20, sent
    assert asset_rows(m, "u07.bin") == [("uploading", "", bad)]
    sql(m, "DROP TRIGGER t_refuse ON memory_assets")
    r = mvsync(m, 90)
    assert r.returncode == 0, r.stderr
    for name, b in data.items():
        assert asset_rows(m, name) == [("completed", sha_of(b), sha_of(b))], name
        assert (d / name).read_bytes() == b
    check_consistency(m)
    m.unmount()
