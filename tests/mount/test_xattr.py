"""Extended attributes user.mvault.*."""

import hashlib
import os
import uuid

from mvtest import run
from pgtest import default_bin


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
    # written back: the memory is pending until its upload is recorded
    assert getfattr(f, "user.mvault.upload_status") in ("uploading", "completed")
    run([default_bin(), "sync", str(m.mnt), "--timeout", "60"])
    assert getfattr(f, "user.mvault.status") == "active"
    assert getfattr(f, "user.mvault.upload_status") == "completed"
    m.unmount()


def test_listxattr_names_them(mvfs):
    m = mvfs()
    f = m.mnt / "library" / "y.txt"
    f.write_bytes(b"y")
    names = set(os.listxattr(f))
    assert {"user.mvault.id", "user.mvault.sha256", "user.mvault.status"} <= names, names
    m.unmount()
