"""Bytes in, same bytes out: through cp/cmp, and again after a remount."""

import os

import pytest

from mvtest import MiB, SANITIZED, cmp_files, fsync_path, make_random, run

SIZES = [
    pytest.param(0, id="0B"),
    pytest.param(1, id="1B"),
    pytest.param(MiB, id="1MiB"),
    pytest.param(100 * MiB, id="100MiB", marks=[
        pytest.mark.big,
        pytest.mark.skipif(SANITIZED, reason="100 MiB is too slow under sanitizers")]),
]


@pytest.mark.parametrize("size", SIZES)
def test_cp_roundtrip(mvfs, tmp_path, size):
    src = tmp_path / "src.bin"
    make_random(src, size)
    m = mvfs()
    dst = m.mnt / "library" / ("rt-%d.bin" % size)
    run(["cp", src, dst], timeout=600)
    assert dst.stat().st_size == size
    cmp_files(src, dst)
    assert dst.name in os.listdir(m.mnt / "library")
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    again = m2.mnt / "library" / dst.name
    assert again.stat().st_size == size
    cmp_files(src, again)
    m2.unmount()


def test_other_mount_reads_from_store(mvfs, tmp_path):
    """Once fsync returns the upload is done: a mount with a fresh data
    dir (another machine: same database and store, empty cache) reads it."""
    src = tmp_path / "src.bin"
    make_random(src, 3 * MiB + 17)
    m = mvfs()
    dst = m.mnt / "library" / "shared.bin"
    run(["cp", src, dst])
    fsync_path(dst)
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=tmp_path / "other-data")
    cmp_files(src, m2.mnt / "library" / "shared.bin")
    m2.unmount()
