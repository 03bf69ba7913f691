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


def test_listxattr_leaves_computed_names_out(mvfs):
    """Computed names are read by name and not listed (their values change
    on their own and differ between libraries: rsync -aX must not copy
    them); the person's own user.* names are listed."""
    m = mvfs()
    f = m.mnt / "library" / "y.txt"
    f.write_bytes(b"y")
    assert os.listxattr(f) == []
    assert os.getxattr(f, "user.mvault.id")
    os.setxattr(f, "user.xdg.comment", b"hi")
    assert os.listxattr(f) == ["user.xdg.comment"]
    m.unmount()
