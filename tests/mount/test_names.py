"""File names: spaces, unicode, the 255-byte limit, missing folders."""

import errno
import os

import pytest

NAMES = ["with space.txt", "été 📷.jpg", "a" * 251 + ".txt", "é" * 127 + "x"]


def test_odd_names_work(mvfs):
    m = mvfs()
    lib = m.mnt / "library"
    for i, name in enumerate(NAMES):
        assert len(name.encode()) <= 255
        data = os.urandom(100 + i)
        (lib / name).write_bytes(data)
        assert (lib / name).read_bytes() == data
    assert set(os.listdir(lib)) == set(NAMES)
    m.unmount()
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert set(os.listdir(m2.mnt / "library")) == set(NAMES)
    m2.unmount()


def test_name_too_long(mvfs):
    m = mvfs()
    name = "a" * 252 + ".txt"
    assert len(name.encode()) == 256
    with pytest.raises(OSError) as ei:
        open(m.mnt / "library" / name, "wb").close()
    assert ei.value.errno == errno.ENAMETOOLONG, ei.value
    with pytest.raises(OSError) as ei:
        os.stat(m.mnt / "library" / name)
    assert ei.value.errno == errno.ENAMETOOLONG, ei.value
    assert os.listdir(m.mnt / "library") == []
    m.unmount()


@pytest.mark.parametrize("rel", ["library/nope/x", "nonexistent/x"])
def test_create_in_missing_folder(mvfs, rel):
    m = mvfs()
    with pytest.raises(OSError) as ei:
        open(m.mnt / rel, "wb").close()
    assert ei.value.errno == errno.ENOENT, ei.value
    m.unmount()
