"""rename, unlink (tombstone), dedup, as seen in the files, the database
and the store."""

import errno
import hashlib
import os

import pytest

from cachetest import stats
from mvtest import fsync_path, object_path, poll, q, run, sql, store_objects


def hash_where(h):
    return "position(%s in content_hash::text) > 0" % q(h)


def test_rename_over_existing(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    a, b = os.urandom(40_000), os.urandom(50_000)
    (lib / "a.bin").write_bytes(a)
    (lib / "b.bin").write_bytes(b)
    run(["mv", lib / "a.bin", lib / "b.bin"])
    assert (lib / "b.bin").read_bytes() == a
    assert os.stat(lib / "b.bin").st_size == len(a)
    assert not (lib / "a.bin").exists()
    assert sorted(os.listdir(lib)) == ["b.bin"]

    run(["mv", lib / "b.bin", lib / "c.bin"])
    assert sorted(os.listdir(lib)) == ["c.bin"]
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    lib = m2.mnt / "library"
    assert sorted(os.listdir(lib)) == ["c.bin"]
    assert (lib / "c.bin").read_bytes() == a
    m2.unmount()


def test_unlink_tombstones(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    data = os.urandom(300_000)
    h = hashlib.sha256(data).hexdigest()
    x = lib / "x.bin"
    x.write_bytes(data)
    fsync_path(x)

    mem = poll(lambda: sql(m, "SELECT memory_id FROM memory_items WHERE display_name = 'x.bin'"))
    assert len(mem) == 1, mem
    mem = mem[0]
    blob = poll(lambda: sql(m, "SELECT id, ref_count FROM blobs WHERE " + hash_where(h)))
    assert len(blob) == 1, blob
    blob_id, ref_before = blob[0].split("|")
    assert int(ref_before) == 1
    obj = object_path(m.store, h)
    assert poll(obj.exists), "no object at %s; store has %s" % (obj, store_objects(m.store))

    run(["rm", x])
    assert "x.bin" not in os.listdir(lib)
    with pytest.raises(OSError) as ei:
        os.stat(x)
    assert ei.value.errno == errno.ENOENT

    def statuses():
        return sql(m, "SELECT lifecycle_status FROM memory_assets WHERE memory_id = %s" % q(mem))
    assert poll(lambda: statuses() and all(s == "tombstoned" for s in statuses()), 5), statuses()
    ref_after = int(sql(m, "SELECT ref_count FROM blobs WHERE id = %s" % q(blob_id))[0])
    assert ref_after == int(ref_before) - 1
    if ref_after == 0:
        jobs = sql(m, "SELECT count(*) FROM asset_delete_jobs WHERE blob_id = %s OR asset_id IN "
                      "(SELECT id FROM memory_assets WHERE memory_id = %s)" % (q(blob_id), q(mem)))
        assert int(jobs[0]) >= 1
    assert obj.exists(), "object left the store before the grace period"
    m.unmount()


def test_dedup_same_bytes_two_names(mvfs, tmp_path):
    m = mvfs()
    lib = m.mnt / "library"
    data = os.urandom(500_000)
    h = hashlib.sha256(data).hexdigest()
    src = tmp_path / "same.bin"
    src.write_bytes(data)
    run(["cp", src, lib / "one.bin"])
    run(["cp", src, lib / "two.bin"])
    fsync_path(lib / "one.bin")
    fsync_path(lib / "two.bin")

    def refs():
        return sql(m, "SELECT ref_count FROM blobs WHERE " + hash_where(h))
    poll(lambda: refs() == ["2"])
    assert refs() == ["2"], "blobs rows for the content: %s" % refs()
    objs = store_objects(m.store, h)
    assert objs == [object_path(m.store, h)], objs
    assert (lib / "one.bin").read_bytes() == data
    assert (lib / "two.bin").read_bytes() == data
    m.unmount()


def test_second_writer_of_a_new_file_keeps_the_first_ones_bytes(mvfs):
    """A file being written for the first time, opened for writing a second
    time without O_TRUNC (an editor's second look, a copier that reopens):
    the first writer's bytes stay. The second open used to empty them."""
    m = mvfs()
    p = m.mnt / "library" / "two.txt"
    a = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(a, b"first writer's bytes\n")
    b = os.open(p, os.O_WRONLY)
    os.pwrite(b, b"F", 0)
    os.close(b)
    os.write(a, b"more\n")
    os.close(a)
    assert p.read_bytes() == b"First writer's bytes\nmore\n"
    m.unmount()



def test_a_write_only_descriptor_writes_past_the_page_cache(mvfs):
    """cp, tar, dd and Python's 'wb' open for writing only: their writes
    go to the daemon as they are (direct I/O), without the kernel's
    security.capability question before each one that the cached write
    path asks; a reader opening the file afterwards, or holding cached
    pages of it, reads the new bytes.  O_RDWR keeps the cached path (it
    may be mmap'ed)."""
    m = mvfs()
    p = m.mnt / "library" / "direct.bin"
    data = os.urandom(1 << 20)
    asked = stats(m.mnt)["capability_asked"]
    with open(p, "wb", buffering=0) as f:     # O_WRONLY|O_CREAT|O_TRUNC
        for i in range(16):
            f.write(data[i << 16:(i + 1) << 16])
    assert stats(m.mnt)["capability_asked"] - asked == 0   # the cached path: 16
    assert p.read_bytes() == data
    fd = os.open(p, os.O_WRONLY)              # an overwrite of cached pages
    os.pwrite(fd, b"X" * 5000, 4000)
    os.close(fd)
    want = data[:4000] + b"X" * 5000 + data[9000:]
    assert p.read_bytes() == want
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"tail")
    os.close(fd)
    assert os.stat(p).st_size == len(want) + 4
    assert p.read_bytes() == want + b"tail"
    rw = m.mnt / "library" / "rw.bin"
    asked = stats(m.mnt)["capability_asked"]
    with open(rw, "w+b", buffering=0) as f:
        f.write(data[:4096])
        f.write(data[4096:8192])
        f.seek(0)
        assert f.read() == data[:8192]
    assert stats(m.mnt)["capability_asked"] - asked >= 1
    m.unmount()
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    p = m2.mnt / "library" / "direct.bin"
    assert p.read_bytes() == want + b"tail"
    asked = stats(m2.mnt)["capability_asked"]
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)     # a file the database has
    for i in range(8):
        os.write(fd, data[i << 16:(i + 1) << 16])
    os.close(fd)
    assert stats(m2.mnt)["capability_asked"] - asked <= 1   # the open's truncate asks once; cached: 9
    assert p.read_bytes() == data[:8 << 16]
    m2.unmount()


def test_an_open_reader_reads_what_another_descriptor_wrote(mvfs):
    """As on a local disk: a descriptor opened before another one of this
    mount appended to the file, overwrote it or truncated it reads the
    bytes the file holds now, and so does a later open (tail -f of a file
    another process appends to, a viewer left open while a tool rewrites
    the file in place)."""
    m = mvfs()
    p = m.mnt / "library" / "log.txt"
    p.write_bytes(b"hello")
    r = os.open(p, os.O_RDONLY)
    try:
        assert os.pread(r, 100, 0) == b"hello"
        for flags, off, data, want in ((os.O_WRONLY | os.O_APPEND, None, b" world", b"hello world"),
                                       (os.O_WRONLY, 0, b"HELLO", b"HELLO world"),
                                       (os.O_RDWR | os.O_APPEND, None, b"!", b"HELLO world!"),
                                       (os.O_WRONLY | os.O_TRUNC, 0, b"bye", b"bye")):
            w = os.open(p, flags)
            if off is None:
                os.write(w, data)
            else:
                os.pwrite(w, data, off)
            os.close(w)
            assert os.pread(r, 100, 0) == want, (flags, want)
            assert p.read_bytes() == want
    finally:
        os.close(r)
    m.unmount()
