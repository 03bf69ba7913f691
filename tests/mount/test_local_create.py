"""Files made here first (issue 10; DECISIONS.md, "A create made here
first"): create(2) answers without a round trip, the file's rows come with
its first close-time record after the close returned, and its name goes
into the journal with its bytes.  This mount finds it meanwhile; whatever
needs its rows first makes them; a crash before the record loses nothing
and makes nothing twice."""

import os
import signal
import time

from cachetest import stats
from mvtest import SANITIZED, check_consistency, poll, run, sql

# rows as they are, not after the mount's records (conftest.Mount.settle): these tests are about about when records are made
RAW_SQL = True


def names_in_db(m, like):
    return sql(m, "SELECT i.display_name FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id"
                  " WHERE i.display_name LIKE '%s' AND a.lifecycle_status = 'active' ORDER BY 1" % like)


def slow_creates(m, seconds):
    """Every file's rows wait SECONDS in the database before they are made."""
    sql(m, "CREATE OR REPLACE FUNCTION t_slow() RETURNS trigger LANGUAGE plpgsql AS"
           " $$BEGIN PERFORM pg_sleep(%g); RETURN NEW; END$$" % seconds)
    sql(m, "CREATE TRIGGER t_slow BEFORE INSERT ON memory_items FOR EACH ROW EXECUTE FUNCTION t_slow()")


def test_a_tree_made_here_is_there_at_once(mvfs):
    """Nested folders of new files: stat, read, listing and a second open
    right after each close; the rows, read without the mount, after."""
    m = mvfs(extra_opts=["entry_timeout=0", "attr_timeout=0"])
    want = {}
    for d in ("a", "a/b", "a/b/c", "w"):
        os.makedirs(m.mnt / "library" / d, exist_ok=True)
        for i in range(30):
            p = m.mnt / "library" / d / ("f%02d.jpg" % i)
            data = os.urandom(100 + 13 * i)
            with open(p, "xb") as f:          # O_EXCL, as cp and tar make a new file
                f.write(data)
            assert os.stat(p).st_size == len(data)
            assert p.read_bytes() == data
            want[p] = data
        assert sorted(os.listdir(m.mnt / "library" / d))[-30:] == ["f%02d.jpg" % i for i in range(30)]
    for p, data in want.items():
        assert p.read_bytes() == data, p
    check_consistency(m)
    m.unmount()
    assert len(names_in_db(m, "f__.jpg")) == 120


def test_what_needs_the_rows_makes_them_first(mvfs):
    """A file made here and still open: a second open, chmod, an xattr, a
    rename, a listing and an unlink of it all work, and its bytes follow it."""
    m = mvfs(extra_opts=["version_min_age=0"])
    lib = m.mnt / "library"
    cases = {
        "open": lambda p: open(p, "rb").close(),
        "chmod": lambda p: os.chmod(p, 0o600),
        "xattr": lambda p: os.getxattr(p, "user.mvault.id"),
        "setxattr": lambda p: os.setxattr(p, "user.tag", b"x"),
        "list": lambda p: os.listdir(p.parent),
        "rename": lambda p: os.rename(p, p.with_name(p.name + ".moved")),
    }
    for what, fn in cases.items():
        p = lib / ("%s.bin" % what)
        f = open(p, "wb")
        f.write(b"before " + what.encode())
        f.flush()
        fn(p)
        f.write(b" after")
        f.close()
        q = p if what != "rename" else p.with_name(p.name + ".moved")
        assert q.read_bytes() == b"before " + what.encode() + b" after", what
    # removed while open: its last writes do not bring it back
    p = lib / "gone.bin"
    f = open(p, "wb")
    f.write(b"x")
    f.flush()
    os.unlink(p)
    f.write(b"y")
    f.close()
    assert not p.exists()
    assert names_in_db(m, "gone.bin") == []
    check_consistency(m)
    m.unmount()


def test_a_name_another_mount_took_meanwhile_gets_a_conflict_copy(mvfs):
    """Mount A makes x.jpg here and holds it open; mount B makes x.jpg and
    closes it; A closes: A's bytes become a conflict copy beside B's."""
    a = mvfs()
    b = mvfs(db=a.db, store=a.store)
    fa = open(a.mnt / "library" / "x.jpg", "wb")
    fa.write(b"from a")
    fa.flush()
    (b.mnt / "library" / "x.jpg").write_bytes(b"from b")
    fa.close()
    names = poll(lambda: names_in_db(a, "x%") if len(names_in_db(a, "x%")) == 2 else None, timeout=20)
    assert names and "x.jpg" in names and any(n.startswith("x (conflict ") for n in names), names
    lib = b.mnt / "library"
    got = poll(lambda: sorted((lib / n).read_bytes() for n in os.listdir(lib) if n.startswith("x"))
               if len(os.listdir(lib)) == 2 else None, timeout=20)
    assert got == [b"from a", b"from b"], got
    a.unmount()
    b.unmount()


def test_a_folder_removed_meanwhile_sends_the_file_to_library(mvfs):
    a = mvfs()
    b = mvfs(db=a.db, store=a.store)
    os.mkdir(a.mnt / "library" / "d")
    f = open(a.mnt / "library" / "d" / "kept.txt", "wb")
    f.write(b"still here")
    f.flush()
    poll(lambda: os.path.isdir(b.mnt / "library" / "d"))
    os.rmdir(b.mnt / "library" / "d")       # empty, as far as the database knows
    f.close()
    assert poll(lambda: names_in_db(a, "kept%"), timeout=20), "not made"
    assert poll(lambda: (b.mnt / "library" / "kept.txt").exists(), timeout=20)
    assert (b.mnt / "library" / "kept.txt").read_bytes() == b"still here"
    a.unmount()
    b.unmount()


def test_a_crash_before_the_records_loses_nothing_and_makes_nothing_twice(mvfs):
    """The records wait in the database when the daemon is killed; the next
    mount makes every file from its journal entry, once."""
    m = mvfs()
    d = m.mnt / "library" / "crash"
    os.mkdir(d)
    slow_creates(m, 0.5)
    for i in range(20):
        (d / ("c%02d.bin" % i)).write_bytes(b"%d" % i * 100)
    assert len(names_in_db(m, "c__.bin")) < 20     # most are still queued
    m.kill(signal.SIGKILL)
    sql(m, "DROP TRIGGER t_slow ON memory_items")
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert poll(lambda: len(names_in_db(m2, "c__.bin")) == 20, timeout=30), names_in_db(m2, "c__.bin")
    assert names_in_db(m2, "c__.bin") == ["c%02d.bin" % i for i in range(20)]
    for i in range(20):
        assert (m2.mnt / "library" / "crash" / ("c%02d.bin" % i)).read_bytes() == b"%d" % i * 100
    check_consistency(m2)
    m2.unmount()


def test_a_copy_into_a_folder_asks_the_database_nothing(mvfs):
    """The kernel asks for a folder's attributes again after every create in
    it (to check its permission): answered from the row read last, not one
    round trip a file.  The records wait 1 s each meanwhile, so what the
    loop sends is its own."""
    m = mvfs()
    d = m.mnt / "library" / "quiet"
    os.mkdir(d)
    (d / "first.bin").write_bytes(b"0")
    slow_creates(m, 1)
    before = stats(m.mnt)["db_statements"]
    times = [os.stat(d).st_mtime_ns]
    for i in range(40):
        made = time.time_ns()
        (d / ("q%02d.bin" % i)).write_bytes(b"q")
        times.append(os.stat(d).st_mtime_ns)
        assert times[-1] >= made - 10_000_000, (i, times[-1], made)   # its time, not the row's
    sent = stats(m.mnt)["db_statements"] - before
    sql(m, "DROP TRIGGER t_slow ON memory_items")
    assert sent <= 10, sent
    m.unmount()
    assert len(names_in_db(m, "q__.bin")) == 40


def test_a_record_made_while_its_folder_is_learned_is_not_missed(mvfs):
    """A folder's names are learned at a lookup miss (read from the
    database, page by page).  A record from the journal after a crash,
    committed while they are read, is in neither the names read nor those
    made here: the folder must not be learned meanwhile, or the file is
    ENOENT here until the next forgetting."""
    opts = ["entry_timeout=0", "attr_timeout=0"]
    m = mvfs(extra_opts=opts)
    d = m.mnt / "library" / "replay"
    os.mkdir(d)
    slow_creates(m, 1)
    for i in range(4):
        (d / ("r%d.bin" % i)).write_bytes(b"%d" % i)
    m.kill(signal.SIGKILL)
    m = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt, extra_opts=opts)   # nothing known
    try:
        assert poll(lambda: sql(m, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
                    != ["0"], timeout=20)
        assert not (d / "nothing").exists()     # a miss: the folder's names are read now
    finally:
        sql(m, "DROP TRIGGER t_slow ON memory_items")
    assert poll(lambda: len(names_in_db(m, "r_.bin")) == 4, timeout=30)
    for i in range(4):
        assert (d / ("r%d.bin" % i)).read_bytes() == b"%d" % i
    m.unmount()


def test_an_inode_number_is_made_once(mvfs):
    """A record made again (after a lost connection or a crash) never makes
    a file that was made before, even when it is gone since."""
    m = mvfs()
    p = m.mnt / "library" / "once.txt"
    p.write_bytes(b"1")
    ino = os.stat(p).st_ino
    os.unlink(p)
    home = sql(m, "SELECT ino FROM folders WHERE parent_id IS NULL AND place = 'library'")[0]
    uid = sql(m, "SELECT id FROM users LIMIT 1")[0]
    try:
        sql(m, "SELECT mvfs_create('%s', %s, '', 0, 'once.txt', 420, 0, 0, %d)" % (uid, home, ino))
        assert False, "made twice"
    except RuntimeError as e:
        assert "MV114" in str(e) or "made before" in str(e), e
    assert not p.exists()
    m.unmount()



def test_mode_and_times_set_before_the_close_are_kept(mvfs, tmp_path):
    """cp -p sets mode and times on the open file before it closes it: they
    are kept with the file made here, and are what the rows say after."""
    m = mvfs()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(10):
        p = src / ("p%d.jpg" % i)
        p.write_bytes(os.urandom(5000 + i))
        os.chmod(p, 0o600 + i % 2 * 0o40)
        os.utime(p, ns=(1_400_000_000_123_456_789 + i, 1_500_000_000_987_654_321 + i * 1000))
    run(["cp", "-rp", str(src), str(m.mnt / "library" / "copied")])
    for i in range(10):
        st = os.stat(m.mnt / "library" / "copied" / ("p%d.jpg" % i))
        assert (st.st_mode & 0o777, st.st_mtime_ns) == (0o600 + i % 2 * 0o40, 1_500_000_000_987_654_321 + i * 1000)
    m.unmount()
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    for i in range(10):
        p = m2.mnt / "library" / "copied" / ("p%d.jpg" % i)
        st = os.stat(p)
        assert (st.st_mode & 0o777, st.st_mtime_ns) == (0o600 + i % 2 * 0o40, 1_500_000_000_987_654_321 + i * 1000)
        assert p.read_bytes() == (src / ("p%d.jpg" % i)).read_bytes()
    m2.unmount()


def test_rsync_renames_and_times_its_temporary_files_in_their_records(mvfs, tmp_path):
    """rsync closes its temporary file, then sets its times and mode and
    renames it: those go into the queued record (no wait for it), are shown
    at once, and survive a crash before the records (the name and mode in
    the note on the bytes, the time in the journal entry's name)."""
    src = tmp_path / "src"
    want = {}
    for d in ("a", "b/c"):
        (src / d).mkdir(parents=True)
        for i in range(5):
            p = src / d / ("r%d.jpg" % i)
            p.write_bytes(os.urandom(3000 + i))
            os.chmod(p, 0o640 if i % 2 else 0o604)
            os.utime(p, ns=(1_400_000_000_000_000_000, 1_500_000_000_123_456_789 + i))
            want["%s/r%d.jpg" % (d, i)] = p
    m = mvfs()
    slow_creates(m, 0.5)
    # -O: the folders' times, which rsync sets last, wait for the records
    # of the files in them (DECISIONS.md, "A create made here first")
    run(["rsync", "-aO", str(src) + "/", str(m.mnt / "library" / "r")])
    # no wait for the records: most are still queued when rsync is done
    # (a record waits 20 ms for what follows its close: under the
    # sanitizers rsync's next calls can come later than that, and then
    # wait for it, which is slower but right)
    if not SANITIZED:
        assert len(names_in_db(m, "r_.jpg")) < len(want), "rsync waited for the records"

    def attrs(root):
        out = {}
        for rel, p in want.items():
            st = os.stat(root / rel)
            out[rel] = (st.st_mode & 0o7777, st.st_mtime_ns, st.st_size)
        return out
    expect = {rel: (p.stat().st_mode & 0o7777, p.stat().st_mtime_ns, p.stat().st_size) for rel, p in want.items()}
    assert attrs(m.mnt / "library" / "r") == expect
    m.kill(signal.SIGKILL)
    sql(m, "DROP TRIGGER t_slow ON memory_items")
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert poll(lambda: len(names_in_db(m2, "r_.jpg")) == len(want), timeout=30), names_in_db(m2, "%r_.jpg%")
    assert names_in_db(m2, "%.r_.jpg.%") == [], "a temporary name was recorded"
    assert attrs(m2.mnt / "library" / "r") == expect
    for rel, p in want.items():
        assert (m2.mnt / "library" / "r" / rel).read_bytes() == p.read_bytes()
    assert sorted(os.listdir(m2.mnt / "library" / "r" / "b" / "c")) == ["r%d.jpg" % i for i in range(5)]
    check_consistency(m2)
    m2.unmount()
