"""A change that meets a serialization failure or a deadlock is run again
(bounded, with jitter) before any errno reaches the caller (issue 10): both
a one-call change (a file rename: mvfs_move_tree) and a transaction of
several statements (a folder rename). The failures are injected by a
trigger that raises SQLSTATE 40001 while a sequence (which a rollback does
not reset) is below a count."""

import errno
import os

from mvtest import assert_errno

# rows as they are, not after the mount's records (conftest.Mount.settle): these tests are about failed statements and retries
RAW_SQL = True


def inject(m, table, times):
    m.sql("CREATE SEQUENCE t_fail_seq")
    m.sql("CREATE FUNCTION t_fail() RETURNS trigger AS $$ BEGIN"
          " IF nextval('t_fail_seq') <= %d THEN"
          "   RAISE EXCEPTION 'injected conflict' USING ERRCODE = '40001';"
          " END IF; RETURN NEW; END $$ LANGUAGE plpgsql SECURITY DEFINER" % times)
    m.sql("CREATE TRIGGER t_fail BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION t_fail()" % table)


def uninject(m, table):
    m.sql("DROP TRIGGER t_fail ON %s; DROP FUNCTION t_fail(); DROP SEQUENCE t_fail_seq" % table)


def tries(m):
    return int(m.sql("SELECT last_value FROM t_fail_seq")[0])


def test_file_rename_retried_through_conflicts(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    (lib / "a.jpg").write_bytes(b"photo")
    inject(m, "memory_items", 3)
    os.rename(lib / "a.jpg", lib / "b.jpg")
    assert tries(m) >= 4, "the rename succeeded without meeting the injected conflicts"
    uninject(m, "memory_items")
    assert sorted(os.listdir(lib)) == ["b.jpg"]
    assert (lib / "b.jpg").read_bytes() == b"photo"
    m.unmount()


def test_folder_rename_retried_through_conflicts(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    (lib / "2024").mkdir()
    (lib / "2024" / "a.jpg").write_bytes(b"photo")
    inject(m, "folders", 2)
    os.rename(lib / "2024", lib / "Holidays 2024")
    assert tries(m) >= 3
    uninject(m, "folders")
    assert sorted(os.listdir(lib)) == ["Holidays 2024"]
    assert (lib / "Holidays 2024" / "a.jpg").read_bytes() == b"photo"
    m.unmount()


def test_endless_conflicts_give_eagain_and_a_log_line(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    (lib / "a.jpg").write_bytes(b"photo")
    inject(m, "memory_items", 1000)
    assert_errno(errno.EAGAIN, os.rename, lib / "a.jpg", lib / "b.jpg")
    n = tries(m)
    uninject(m, "memory_items")
    assert 2 <= n <= 20, "%d tries: retries are not bounded" % n
    assert "kept conflicting" in m.log_text(), m.log_text()
    assert sorted(os.listdir(lib)) == ["a.jpg"]
    m.unmount()
