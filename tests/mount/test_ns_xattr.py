"""user.mvault.* on files, user.mvault.id on collections and galleries
(issue 3)."""

import datetime
import errno
import hashlib
import os
import uuid

from mvtest import assert_errno, fsync_path, memory_of, q, sql

FILE_XATTRS = ["user.mvault." + n for n in ("id", "sha256", "status", "upload_status",
                                            "processing_status", "lifecycle_status", "mime",
                                            "created_at")]
# a 1x1 PNG
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def test_file_xattrs(mvfs):
    m = mvfs()
    f = m.mnt / "library" / "dot.png"
    f.write_bytes(PNG)
    fsync_path(f)
    [mem] = memory_of(m, "dot.png")
    got = {n: os.getxattr(f, n).decode() for n in FILE_XATTRS}
    assert got["user.mvault.id"] == mem
    uuid.UUID(got["user.mvault.id"])
    assert got["user.mvault.sha256"] == hashlib.sha256(PNG).hexdigest()
    row = sql(m, "SELECT m.status, a.upload_status, a.processing_status, a.lifecycle_status,"
                 " a.mime_type FROM memory_items i JOIN memories m ON m.id = i.memory_id"
                 " JOIN memory_assets a ON a.id = i.primary_asset_id WHERE i.memory_id = %s" % q(mem))
    status, upload, processing, lifecycle, mime = row[0].split("|")
    assert got["user.mvault.status"] == status == "active"
    assert got["user.mvault.upload_status"] == upload == "completed"
    # background variant work may move it on between the two reads
    assert got["user.mvault.processing_status"] in ("pending", "processing", "completed", "failed")
    assert processing in ("pending", "processing", "completed", "failed")
    assert got["user.mvault.lifecycle_status"] == lifecycle == "active"
    assert got["user.mvault.mime"] == mime == "image/png"
    created = datetime.datetime.fromisoformat(got["user.mvault.created_at"].replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - created).total_seconds()) < 300, got["user.mvault.created_at"]

    # read by name, never listed (rsync -aX must not copy them)
    assert os.listxattr(f) == []

    # the same on every place the file shows
    os.mkdir(m.mnt / "galleries" / "G")
    os.link(f, m.mnt / "galleries" / "G" / "dot.png")
    assert os.getxattr(m.mnt / "galleries" / "G" / "dot.png", "user.mvault.id").decode() == mem
    m.unmount()


def test_folder_xattrs(mvfs):
    m = mvfs()
    os.mkdir(m.mnt / "collections" / "C")
    os.mkdir(m.mnt / "galleries" / "G")
    cid = sql(m, "SELECT id FROM user_collections WHERE name = 'C'")[0]
    gid = sql(m, "SELECT id FROM galleries WHERE name = 'G'")[0]
    for path, want in ((m.mnt / "collections" / "C", cid), (m.mnt / "galleries" / "G", gid)):
        assert os.getxattr(path, "user.mvault.id").decode() == want
        assert "user.mvault.id" not in os.listxattr(path)
        # computed: a write succeeds and changes nothing (rsync -aX writes them back)
        os.setxattr(path, "user.mvault.id", b"x")
        assert os.getxattr(path, "user.mvault.id").decode() == want
        assert_errno(errno.ENODATA, os.getxattr, path, "user.other")
        os.setxattr(path, "user.other", b"x")
        assert os.getxattr(path, "user.other") == b"x"
    m.unmount()


def test_setxattr_computed(mvfs):
    """Writing or removing a computed name succeeds and changes nothing;
    other user.* names are kept (tests/mount/test_xattr_user.py)."""
    m = mvfs()
    f = m.mnt / "library" / "a.jpg"
    f.write_bytes(b"a")
    fsync_path(f)       # the upload recorded: the statuses stay
    before = {}
    for n in FILE_XATTRS:
        try:
            before[n] = os.getxattr(f, n)
        except OSError:
            pass
    for n in FILE_XATTRS:
        os.setxattr(f, n, b"0" * 64)
    os.removexattr(f, "user.mvault.sha256")
    assert {n: os.getxattr(f, n) for n in before} == before
    assert_errno(errno.ENODATA, os.getxattr, f, "user.other")
    os.setxattr(f, "user.comment", b"x")
    assert os.getxattr(f, "user.comment") == b"x"
    assert "user.other" not in os.listxattr(f)
    assert_errno(errno.ENOTSUP, os.setxattr, f, "trusted.other", b"x")
    m.unmount()
