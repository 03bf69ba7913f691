"""Extended attributes user.mvault.*."""

import hashlib
import os
import uuid

from mvtest import run


def getfattr(path, name):
    return run(["getfattr", "-n", name, "--only-values", "--absolute-names", path]).stdout.strip()


def test_xattrs(mvfs, tmp_path):
    m = mvfs()
    data = os.urandom(123_457)
    src = tmp_path / "x.jpg"
    src.write_bytes(data)
    f = m.mnt / "library" / "x.jpg"
    run(["cp", src, f])
    assert getfattr(f, "user.mvault.sha256") == hashlib.sha256(data).hexdigest()
    uuid.UUID(getfattr(f, "user.mvault.id"))
    assert getfattr(f, "user.mvault.status") == "active"
    m.unmount()


def test_listxattr_names_them(mvfs):
    m = mvfs()
    f = m.mnt / "library" / "y.txt"
    f.write_bytes(b"y")
    names = set(os.listxattr(f))
    assert {"user.mvault.id", "user.mvault.sha256", "user.mvault.status"} <= names, names
    m.unmount()
