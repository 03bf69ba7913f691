"""Write-back survives the daemon's death (issue 5): kill -9 in the middle of
copying 100 files loses none whose close returned; staged content changed
behind the daemon's back is set aside, never uploaded; an unmount with
uploads pending says so and the next mount finishes them."""

import hashlib
import os
import signal
import time

import pytest

from cachetest import (MiB, asset_rows, closed_names, local_stores, end_writer, make_sources,  # noqa: F401
                       mount_on, mvsync, read_all, start_writer, stats, stores, wait_for)
from mvtest import poll, q, sql

# rows as they are, not after the mount's records (conftest.Mount.settle): these tests are about crashes before and after records
RAW_SQL = True


def sha_of(data):
    return hashlib.sha256(data).hexdigest()


def check_uploaded(m, store, name, data):
    """name is in library/ with data, its asset completed on a blob of its
    hash, exactly one memory item and one original asset of that hash, and
    the object is in the store."""
    sha = sha_of(data)
    got = read_all(m.mnt / "library" / name)
    assert len(got) == len(data) and got == data, "%s: %d bytes, not the %d written" % (
        name, len(got), len(data))
    rows = asset_rows(m, name)
    assert rows == [("completed", sha, sha)], "%s: %r" % (name, rows)
    n = sql(m, "SELECT count(*) FROM memory_assets a JOIN memory_items i ON a.memory_item_id = i.id"
               " WHERE i.display_name = %s AND a.content_hash = %s" % (q(name), q(sha)))
    assert n == ["1"], "%s: %s assets of its content" % (name, n)
    assert store.has(sha), "%s: object %s is not in the store" % (name, sha)


def test_kill9_while_copying_100_files(stores, mvfs, tmp_path):
    """kill -9 of the daemon's process group after ~40 of 100 files of 256 KiB
    were closed; the dead mount is detached (fusermount3 -uz) and a new daemon
    mounts the same database, store and data_dir. Every file whose close
    returned is there, byte-identical, and after `mvaultfs sync` uploaded,
    once; a file whose close never returned is absent or whole."""
    store = stores(tmpfs_mb=64)
    src = tmp_path / "src"
    files = make_sources(src, 100, 256 * 1024)
    m = mount_on(mvfs, store)
    lib = m.mnt / "library"
    log = tmp_path / "writer.log"
    w = start_writer(src, lib, log)
    try:
        # after 20 closes the store goes away, so that many uploads are
        # still pending (journalled) when the daemon dies
        wait_for(lambda: len(closed_names(log)) >= 20 or w.poll() is not None, 60,
                 interval=0.005, what="20 closed files")
        store.outage()
        # files closed while outage() was filling the store may be uploaded
        # already: count from when it has returned (it raced: "only 0
        # uploads pending at the kill")
        after = max(len(closed_names(log)) + 15, 40)
        wait_for(lambda: len(closed_names(log)) >= after or w.poll() is not None, 60,
                 interval=0.005, what="%d closed files" % after)
        assert w.poll() is None, "the writer ended early: %s" % w.stderr.read()
        m.kill(signal.SIGKILL)
        t_kill = time.monotonic()
    finally:
        end_writer(w)
    closed = closed_names(log)
    assert 40 <= len(closed) < 100, "%d files closed before the kill: no crash mid-copy" % len(closed)
    assert time.monotonic() - t_kill < 30
    cache = m.data_dir / "cache"
    left = sorted(os.listdir(cache / "journal"))

    assert len(left) >= 10, "only %d uploads pending at the kill" % len(left)
    store.restore()
    m2 = mount_on(mvfs, store, db=m.db, data_dir=m.data_dir, mnt=m.mnt)
    r = mvsync(m2, 120)
    assert r.returncode == 0, "sync after the crash: %s\nlog:\n%s" % (r.stderr, m2.log_text())
    if left:
        assert "resuming" in m2.log_text(), "journal held %d entries; log:\n%s" % (len(left), m2.log_text())
    for name in closed:
        check_uploaded(m2, store, name, files[name])
    names = set(os.listdir(m2.mnt / "library"))
    assert set(closed) <= names
    extra = sorted(names - set(closed))
    print("closed before the kill: %d; journal entries left: %d; other files present: %r"
          % (len(closed), len(left), extra))
    for name in extra:
        # never closed (or closed but not logged before the kill): absent or whole
        assert name in files, "unexpected file %s" % name
        got = read_all(m2.mnt / "library" / name)
        assert got == files[name], "%s was never closed and is there with %d bytes (partial)" % (
            name, len(got))
    dups = sql(m2, "SELECT display_name, count(*) FROM memory_items GROUP BY display_name HAVING count(*) > 1")
    assert dups == [], "duplicate memory items: %r" % dups
    dup_blobs = sql(m2, "SELECT content_hash, count(*) FROM memory_assets WHERE lifecycle_status = 'active'"
                        " AND content_hash IS NOT NULL GROUP BY content_hash HAVING count(*) > 1")
    assert dup_blobs == [], "content uploaded twice under two assets: %r" % dup_blobs
    dangling = sql(m2, "SELECT b.content_hash FROM blobs b")
    objs = store.objects()
    missing = [h for h in dangling if h not in objs]
    assert missing == [], "blob rows without an object in the store: %r" % missing
    assert os.listdir(cache / "journal") == [], "journal not empty after sync"
    assert [p for p in os.listdir(cache / "staging")] == [], "staging not empty after sync"
    m2.unmount()


def test_staging_edited_behind_our_back(local_stores, mvfs, tmp_path):
    """A full store keeps a closed file staged; kill -9; one byte of
    staging/<sha> is changed; the store gets room; a new mount does not
    upload it but moves it to aside/, `mvaultfs sync` fails naming it, and
    the log says why. A good file staged beside it is uploaded."""
    store = local_stores(tmpfs_mb=4)
    m = mount_on(mvfs, store)
    store.outage()
    bad, good = os.urandom(300000), os.urandom(200000)
    (m.mnt / "library" / "bad.jpg").write_bytes(bad)
    (m.mnt / "library" / "good.jpg").write_bytes(good)
    assert stats(m.mnt)["staged_files"] == 2
    # the close-time records (made after the closes returned) are in
    for name in ("bad.jpg", "good.jpg"):
        wait_for(lambda: asset_rows(m, name) != [], 30, what=name + " recorded")
    m.kill(signal.SIGKILL)

    sha = sha_of(bad)
    staged = m.data_dir / "cache" / "staging" / sha
    assert staged.is_file(), os.listdir(staged.parent)
    with open(staged, "r+b") as f:
        f.seek(1234)
        b = f.read(1)
        f.seek(1234)
        f.write(bytes([b[0] ^ 0xFF]))
    store.restore()

    m2 = mount_on(mvfs, store, db=m.db, data_dir=m.data_dir, mnt=m.mnt)
    r = mvsync(m2, 60)
    log = m2.log_text()
    assert r.returncode != 0, "sync succeeded with a staged file that fails its hash"
    assert "set aside" in r.stderr and "aside" in r.stderr, r.stderr
    assert "does not match its hash" in log and sha in log, log
    assert not store.has(sha), "content that failed its check was uploaded"
    aside = os.listdir(m.data_dir / "cache" / "aside")
    assert any(sha in n and not n.endswith(".journal") for n in aside), aside
    assert not staged.exists()
    assert asset_rows(m2, "bad.jpg") == [("uploading", "", sha)], asset_rows(m2, "bad.jpg")
    assert sql(m2, "SELECT count(*) FROM blobs WHERE content_hash = %s" % q(sha)) == ["0"]
    wait_for(lambda: asset_rows(m2, "good.jpg") == [("completed", sha_of(good), sha_of(good))], 30,
             what="good.jpg uploaded")
    assert store.has(sha_of(good))
    st = stats(m2.mnt)
    assert st["set_aside"] == 1 and st["staged_files"] == 0, st
    m2.unmount()


def test_sync_names_the_file_set_aside(local_stores, mvfs, tmp_path):
    """`mvaultfs sync` that fails because staged content was set aside names
    it (the file's name or its hash), so a person knows what to look at."""
    store = local_stores(tmpfs_mb=4)
    m = mount_on(mvfs, store)
    store.outage()
    bad = os.urandom(100000)
    (m.mnt / "library" / "edited.jpg").write_bytes(bad)
    m.kill(signal.SIGKILL)
    staged = m.data_dir / "cache" / "staging" / sha_of(bad)
    with open(staged, "r+b") as f:
        f.write(b"X")
    store.restore()
    m2 = mount_on(mvfs, store, db=m.db, data_dir=m.data_dir, mnt=m.mnt)
    r = mvsync(m2, 30)
    assert r.returncode != 0
    assert "edited.jpg" in r.stderr or sha_of(bad)[:12] in r.stderr, r.stderr
    m2.unmount()


def test_unmount_with_uploads_pending(local_stores, mvfs, tmp_path):
    """With the store full, an unmount says how much is not uploaded yet and
    exits 0; the files stay readable from staging by the next mount, which,
    once the store has room, uploads them."""
    store = local_stores(tmpfs_mb=4)
    m = mount_on(mvfs, store)
    store.outage()
    files = {"p%d.bin" % i: os.urandom(150000 + i) for i in range(5)}
    for name, data in files.items():
        (m.mnt / "library" / name).write_bytes(data)
    assert stats(m.mnt)["staged_files"] == 5
    m.unmount()
    log = m.log_text()
    assert "5 file(s)" in log and "not uploaded yet" in log and "next mount" in log, log
    for name in files:
        assert asset_rows(m, name)[0][0] == "uploading", asset_rows(m, name)

    # still full: the next mount serves them from staging
    m2 = mount_on(mvfs, store, db=m.db, data_dir=m.data_dir, mnt=m.mnt)
    for name, data in files.items():
        assert read_all(m2.mnt / "library" / name) == data
    assert stats(m2.mnt)["staged_files"] == 5
    m2.unmount()

    store.restore()
    m3 = mount_on(mvfs, store, db=m.db, data_dir=m.data_dir, mnt=m.mnt)
    r = mvsync(m3, 60)
    assert r.returncode == 0, r.stderr
    for name, data in files.items():
        check_uploaded(m3, store, name, data)
    m3.unmount()


def test_same_bytes_closed_while_their_upload_finishes(local_stores, mvfs, tmp_path):
    """B, with the same bytes as A, is closed just as A's upload finishes
    (while the daemon turns A's staging file into cached blocks): B's sealed
    staging file is the same file as A's. B must still be uploaded and
    recorded, not set aside as missing from staging. (One uploader: B's
    upload is taken by the thread that finishes A's, as with a backlog.)"""
    store = local_stores()
    m = mount_on(mvfs, store, extra_opts=["uploaders=1"])
    lib = m.mnt / "library"
    data = os.urandom(200 * MiB)
    sha = sha_of(data)
    fb = os.open(lib / "b.bin", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        for i in range(0, len(data), MiB):
            os.write(fb, data[i:i + MiB])
        os.sync()                       # B's staged bytes on disk: its seal is quick
        (lib / "a.bin").write_bytes(data)
        wait_for(lambda: stats(m.mnt)["staged_files"] == 0, 60, interval=0.001, what="a.bin uploaded")
    finally:
        os.close(fb)                    # seals B: staging/<sha> exists until A's import ends
    r = mvsync(m, 60)
    log = m.log_text()
    assert r.returncode == 0, "sync: %s\n%s" % (r.stderr, "\n".join(
        ln for ln in log.splitlines() if sha[:12] in ln or "staging" in ln))
    assert asset_rows(m, "a.bin") == [("completed", sha, sha)]
    assert asset_rows(m, "b.bin") == [("completed", sha, sha)], asset_rows(m, "b.bin")
    assert read_all(lib / "b.bin") == data
    m.unmount()


def test_orphan_staging_file_is_discarded(local_stores, mvfs, tmp_path):
    """kill -9 between naming a staging file and writing its journal entry
    (close never returned) leaves staging/<sha> with no journal entry and a
    journal/.tmp-* file. The next mount discards both (nothing refers to
    them); they must not stay in the cache folder forever."""
    store = local_stores()
    m = mount_on(mvfs, store)
    (m.mnt / "library" / "kept.txt").write_bytes(b"kept")
    assert mvsync(m, 30).returncode == 0
    m.kill(signal.SIGKILL)
    cache = m.data_dir / "cache"
    data = os.urandom(100000)
    sha = sha_of(data)
    (cache / "staging" / sha).write_bytes(data)
    (cache / "journal" / (".tmp-%020d-%s" % (time.time_ns(), sha))).write_text("ino=1000\n")
    m2 = mount_on(mvfs, store, db=m.db, data_dir=m.data_dir, mnt=m.mnt)
    assert mvsync(m2, 30).returncode == 0
    assert (m2.mnt / "library" / "kept.txt").read_bytes() == b"kept"
    assert os.listdir(cache / "journal") == [], os.listdir(cache / "journal")
    assert os.listdir(cache / "staging") == [], "staging/ keeps %r with no journal entry" % (
        os.listdir(cache / "staging"))
    m2.unmount()


def test_version_not_recorded_at_close_does_not_replace_a_newer_one(local_stores, mvfs, tmp_path):
    """v1 of a file is sealed but its database record fails at close (the
    daemon logs "recorded after its upload"); v2 is written and recorded;
    the store was unavailable meanwhile, so v1's upload finishes first. The
    file must end with v2's bytes: recording v1 after its upload must not
    make it the current version again."""
    store = local_stores(tmpfs_mb=8)
    m = mount_on(mvfs, store)
    store.outage()
    lib = m.mnt / "library"
    v1, v2 = os.urandom(100000), os.urandom(120000)
    m.sql("CREATE FUNCTION t_fail_v1() RETURNS trigger AS $$ BEGIN"
          " IF NEW.content_hash = '%s' THEN RAISE EXCEPTION 'injected failure'; END IF;"
          " RETURN NEW; END $$ LANGUAGE plpgsql" % sha_of(v1))
    # a file made here first gets its asset row with its content (0029): INSERT too
    m.sql("CREATE TRIGGER t_fail_v1 BEFORE INSERT OR UPDATE ON memory_assets FOR EACH ROW EXECUTE FUNCTION t_fail_v1()")
    (lib / "photo.jpg").write_bytes(v1)
    # the record is made after the close returned (fs_record.c)
    assert poll(lambda: "recorded after its upload" in m.log_text()), m.log_text()
    m.sql("DROP TRIGGER t_fail_v1 ON memory_assets")
    (lib / "photo.jpg").write_bytes(v2)
    assert read_all(lib / "photo.jpg") == v2
    store.restore()
    r = mvsync(m, 60)
    assert r.returncode == 0, r.stderr
    assert asset_rows(m, "photo.jpg") == [("completed", sha_of(v2), sha_of(v2))], (
        "the file's current version after both uploads: %r (v1 %s, v2 %s)" % (
            asset_rows(m, "photo.jpg"), sha_of(v1)[:12], sha_of(v2)[:12]))
    m.unmount()
    m2 = mount_on(mvfs, store, db=m.db, data_dir=tmp_path / "fresh")
    assert read_all(m2.mnt / "library" / "photo.jpg") == v2
    m2.unmount()


def test_same_bytes_again_recorded_after_upload(local_stores, mvfs, tmp_path):
    """A file saved as A, then B, then A again, while the store is away; the
    close-time record of the last save is lost (here: it fails, as an
    asynchronous commit lost in a crash would be missing). Its upload must
    make that record from the journal entry: the file ends as A. (The
    earlier test, "is there a version of these bytes?", found the first A
    and left the file at B.)"""
    store = local_stores(tmpfs_mb=8)
    m = mount_on(mvfs, store)
    store.outage()
    f = m.mnt / "library" / "note.txt"
    a, b = os.urandom(50000), os.urandom(60000)
    f.write_bytes(a)
    f.write_bytes(b)
    m.sql("CREATE FUNCTION t_fail_a() RETURNS trigger AS $$ BEGIN"
          " IF NEW.content_hash = '%s' THEN RAISE EXCEPTION 'injected failure'; END IF;"
          " RETURN NEW; END $$ LANGUAGE plpgsql" % sha_of(a))
    m.sql("CREATE TRIGGER t_fail_a BEFORE INSERT ON memory_assets FOR EACH ROW EXECUTE FUNCTION t_fail_a()")
    f.write_bytes(a)
    # the record is made after the close returned (fs_record.c)
    assert poll(lambda: "recorded after its upload" in m.log_text()), m.log_text()
    m.sql("DROP TRIGGER t_fail_a ON memory_assets")
    store.restore()
    r = mvsync(m, 60)
    assert r.returncode == 0, r.stderr
    assert asset_rows(m, "note.txt") == [("completed", sha_of(a), sha_of(a))], (
        "the file's current version: %r (a %s, b %s)" % (asset_rows(m, "note.txt"), sha_of(a)[:12],
                                                           sha_of(b)[:12]))
    m.unmount()
    m2 = mount_on(mvfs, store, db=m.db, data_dir=tmp_path / "fresh")
    assert read_all(m2.mnt / "library" / "note.txt") == a
    m2.unmount()


def test_upload_record_replayed_is_made_once(local_stores, mvfs, tmp_path):
    """The upload record of a journal entry, made again (a crash between its
    commit and the entry's removal replays it at the next start), changes
    nothing: the answer is remembered in idempotency_keys under the entry's
    name. Replayed here by putting the entry back in the journal."""
    store = local_stores()
    m = mount_on(mvfs, store)
    f = m.mnt / "library" / "once.bin"
    data = os.urandom(70000)
    f.write_bytes(data)
    journal = m.data_dir / "cache" / "journal"
    entries = os.listdir(journal)
    assert len(entries) == 1, entries
    saved = (journal / entries[0]).read_bytes()
    staged = (m.data_dir / "cache" / "staging" / sha_of(data)).read_bytes()
    r = mvsync(m, 60)
    assert r.returncode == 0, r.stderr
    keys = sql(m, "SELECT key FROM idempotency_keys WHERE route = 'mvfs_uploaded'")
    assert len(keys) == 1 and keys[0].endswith(":" + sha_of(data)), keys
    before = sql(m, "SELECT ref_count FROM blobs WHERE content_hash = %s" % q(sha_of(data)))
    m.unmount()
    # the entry and its bytes back, as a crash after the record would leave them
    (journal / entries[0]).write_bytes(saved)
    (m.data_dir / "cache" / "staging" / sha_of(data)).write_bytes(staged)
    m2 = mount_on(mvfs, store, db=m.db, data_dir=m.data_dir)
    r = mvsync(m2, 60)
    assert r.returncode == 0, r.stderr
    assert "resuming 1 upload" in m2.log_text(), m2.log_text()
    assert sql(m2, "SELECT ref_count FROM blobs WHERE content_hash = %s" % q(sha_of(data))) == before
    assert asset_rows(m2, "once.bin") == [("completed", sha_of(data), sha_of(data))]
    n = sql(m2, "SELECT count(*) FROM memory_assets WHERE content_hash = %s" % q(sha_of(data)))
    assert n == ["1"], n
    assert read_all(m2.mnt / "library" / "once.bin") == data
    m2.unmount()


def test_journal_entry_of_an_earlier_version_is_uploaded(local_stores, mvfs, tmp_path):
    """A journal entry as earlier versions wrote it (journal/<seq>-<sha256>,
    a key=value text file beside staging/<sha256>) left by an unmount with
    the store away: the next mount writes it anew, uploads and records it."""
    store = local_stores(tmpfs_mb=8)
    m = mount_on(mvfs, store)
    store.outage()
    data = os.urandom(90000)
    (m.mnt / "library" / "old.bin").write_bytes(data)
    m.unmount()
    journal = m.data_dir / "cache" / "journal"
    [entry] = os.listdir(journal)
    seq, sha, ino, size, mtime, typ, mime = entry.split("_", 6)
    assert sha == sha_of(data) and int(size) == len(data), entry
    os.unlink(journal / entry)
    (journal / ("%s-%s" % (seq, sha))).write_text(
        "ino=%s\nsha256=%s\nsize=%s\nmime=%s\ntype=%s\nmtime=%s\n" % (ino, sha, size, mime.replace("=", "/"),
                                                                    typ, mtime))
    assert (m.data_dir / "cache" / "staging" / sha).exists()
    store.restore()
    m2 = mount_on(mvfs, store, db=m.db, data_dir=m.data_dir)
    r = mvsync(m2, 60)
    assert r.returncode == 0, r.stderr
    assert "resuming 1 upload" in m2.log_text(), m2.log_text()
    assert asset_rows(m2, "old.bin") == [("completed", sha, sha)]
    assert store.has(sha)
    assert os.listdir(journal) == []
    m2.unmount()
    m3 = mount_on(mvfs, store, db=m.db, data_dir=tmp_path / "fresh")
    assert read_all(m3.mnt / "library" / "old.bin") == data
    m3.unmount()


def test_closed_file_reads_whole_while_its_record_is_missing(local_stores, mvfs, tmp_path):
    """A file's close-time record is missing (a database crash lost its
    asynchronous commit, or the database was away at close: here it fails)
    and the store is away, so its upload cannot make it yet. The file still
    shows its size and reads back whole (and can be appended to), from the
    content waiting in the cache; the upload makes the record later."""
    store = local_stores(tmpfs_mb=8)
    m = mount_on(mvfs, store)
    store.outage()
    data = os.urandom(70000)
    m.sql("CREATE FUNCTION t_fail_stage() RETURNS trigger AS $$ BEGIN"
          " IF NEW.content_hash = '%s' THEN RAISE EXCEPTION 'injected failure'; END IF;"
          " RETURN NEW; END $$ LANGUAGE plpgsql" % sha_of(data))
    m.sql("CREATE TRIGGER t_fail_stage BEFORE INSERT OR UPDATE ON memory_assets FOR EACH ROW"
          " EXECUTE FUNCTION t_fail_stage()")
    f = m.mnt / "library" / "waiting.bin"
    f.write_bytes(data)
    # the record is made after the close returned (fs_record.c)
    assert poll(lambda: "recorded after its upload" in m.log_text()), m.log_text()
    m.sql("DROP TRIGGER t_fail_stage ON memory_assets")
    # no rows yet (a file made here first: made with that record) or rows
    # without content (made at its create)
    assert asset_rows(m, "waiting.bin") in ([], [("pending", "", "")])
    time.sleep(1.2)     # past the kernel's attribute timeout: the row is asked again
    assert os.stat(f).st_size == len(data)
    assert read_all(f) == data
    with open(f, "ab") as fh:
        fh.write(b"tail")
    assert read_all(f) == data + b"tail"
    store.restore()
    r = mvsync(m, 60)
    assert r.returncode == 0, r.stderr
    assert read_all(f) == data + b"tail"
    sha = sha_of(data + b"tail")
    assert asset_rows(m, "waiting.bin") == [("completed", sha, sha)]
    m.unmount()


def test_same_bytes_saved_again_keep_a_later_mtime(local_stores, mvfs, tmp_path):
    """The same bytes saved again while the store is away (a second journal
    entry with nothing new to record), then the file's mtime set (touch -d,
    rsync): the upload record of that entry must not put back the mtime of
    its close, nor give the version's blob a second reference (both
    entries' records completed the one version: ref_count 2, a blob that
    could never be deleted; found by this test)."""
    store = local_stores(tmpfs_mb=8)
    m = mount_on(mvfs, store)
    store.outage()
    f = m.mnt / "library" / "same.txt"
    data = os.urandom(30000)
    f.write_bytes(data)
    f.write_bytes(data)
    os.utime(f, ns=(1500000000_123456789, 1500000000_123456789))
    store.restore()
    r = mvsync(m, 60)
    assert r.returncode == 0, r.stderr
    time.sleep(1.2)     # past the kernel's attribute timeout
    assert os.stat(f).st_mtime_ns == 1500000000_123456789
    # one version, one reference to its blob (not one per journal entry)
    assert sql(m, "SELECT ref_count FROM blobs WHERE content_hash = %s" % q(sha_of(data))) == ["1"]
    m.unmount()
    m2 = mount_on(mvfs, store, db=m.db, data_dir=tmp_path / "fresh")
    assert os.stat(m2.mnt / "library" / "same.txt").st_mtime_ns == 1500000000_123456789
    assert read_all(m2.mnt / "library" / "same.txt") == data
    m2.unmount()
