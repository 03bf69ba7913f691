"""Storage edges (seed 001) kept true by create, upload and deletion; the
presence of a file and a gallery per backend as user.mvault.presence*; pins
("store forever", issue 13): setfattr user.mvault.pin copies a file or a
gallery to a second store (-o pin_store=icp=DIR: a local folder under the
ICP label), checked by its SHA-256 there, shown as migrating, complete or
failed; unpin drops the copy; the grace-period deletion keeps what a pin
needs."""

import errno
import hashlib
import json
import os
import re
import uuid
from pathlib import Path

from imgtest import JOBS_FAST
from mvtest import (assert_errno, fsync_path, log_lines_after, object_path, q, run, set_skew, sql,
                    wait_until)
from pgtest import default_bin

PRESENCE = "user.mvault.presence"


def xattr(path, name):
    return os.getxattr(str(path), name).decode()


def edges(m, where="true"):
    """'artifact|backend|present|sync_state|content_hash' of every edge, sorted."""
    return sql(m, "SELECT e.artifact, e.backend, e.present, e.sync_state, coalesce(e.content_hash, '')"
                  " FROM storage_edges e JOIN memory_items i ON i.memory_id = e.memory_id"
                  " WHERE %s ORDER BY e.artifact::text, e.backend::text, 5" % where)


def edges_of(m, name):
    return edges(m, "i.display_name = %s" % q(name))


def pinned_mount(mvfs, tmp_path, icp=None):
    icp = icp or tmp_path / "icp"
    icp.mkdir(exist_ok=True)
    return mvfs(extra_opts=JOBS_FAST + ["pin_store=icp=%s" % icp]), icp


def write(path, data):
    path.write_bytes(data)
    fsync_path(path)               # uploaded: its asset edge is made
    return hashlib.sha256(data).hexdigest()


def test_edges_follow_create_upload_delete(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    data = os.urandom(120_000)
    h = write(lib / "a.bin", data)
    assert edges_of(m, "a.bin") == ["asset|local|t|idle|" + h, "metadata|neon-db|t|idle|"]
    key = sql(m, "SELECT location FROM storage_edges WHERE artifact = 'asset'")[0]
    assert Path(m.store, key) == object_path(m.store, h)
    # the seed's view agrees, and the xattrs read it
    assert sql(m, "SELECT meta_neon, asset_local, asset_icp, syncing FROM memory_presence") == ["t|t|f|f"]
    assert xattr(lib / "a.bin", PRESENCE) == "metadata=neon-db asset=local sync=idle"
    assert xattr(lib / "a.bin", PRESENCE + ".local") == \
        "metadata=absent asset=present sync=idle pinned=no"
    assert xattr(lib / "a.bin", PRESENCE + ".icp") == "metadata=absent asset=absent sync=idle pinned=no"
    assert_errno(errno.ENODATA, os.getxattr, str(lib / "a.bin"), PRESENCE + ".nosuch")

    # a new version moves the edge to the new bytes
    h2 = write(lib / "a.bin", data + b"more")
    assert edges_of(m, "a.bin") == ["asset|local|t|idle|" + h2, "metadata|neon-db|t|idle|"]

    # deleted by the outbox after the grace period: marked not present
    os.unlink(lib / "a.bin")
    set_skew(m, "31 days")
    wait_until(lambda: not object_path(m.store, h2).exists() and not object_path(m.store, h).exists(),
               "the deletion of both versions", timeout=30)
    wait_until(lambda: edges(m) == ["asset|local|f|idle|" + h2, "metadata|neon-db|t|idle|"],
               lambda: "the edge marked: %s" % edges(m), timeout=10)
    m.unmount()


def test_pin_gallery_copy_unpin(mvfs, tmp_path):
    """A gallery of three files pinned to a second store: copied, checked
    there, presence complete; a file linked in later follows; bad names are
    EINVAL; deletion keeps the pinned copy; unpin drops it except where
    another pin holds the same bytes."""
    m, icp = pinned_mount(mvfs, tmp_path)
    g = m.mnt / "galleries" / "Wedding"
    g.mkdir()
    blobs = {"p%d.bin" % i: os.urandom(50_000 + i * 70_000) for i in range(3)}
    sums = {n: write(g / n, d) for n, d in blobs.items()}
    assert xattr(g, PRESENCE) == "3/3 on local"

    os.setxattr(str(g), "user.mvault.pin", b"icp")
    assert xattr(g, "user.mvault.pin") == "icp-canister"
    wait_until(lambda: xattr(g, PRESENCE) == "3/3 on icp-canister, pinned, complete; 3/3 on local",
               lambda: "the copies: %s; %s" % (xattr(g, PRESENCE), m.log_text()), timeout=30)
    uid = sql(m, "SELECT id FROM users")[0]
    for n, h in sums.items():
        copy = object_path(icp, h)
        assert copy.parents[2] == icp / "u" / uid / "sha256"
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == h
        mem = sql(m, "SELECT memory_id FROM memory_items WHERE display_name = %s" % q(n))[0]
        doc = json.loads((icp / "u" / uid / "meta" / (mem + ".json")).read_text())
        assert (doc["memoryId"], doc["sha256"], doc["size"]) == (mem, h, len(blobs[n]))
        assert edges_of(m, n) == ["asset|icp-canister|t|idle|" + h, "asset|local|t|idle|" + h,
                                  "metadata|icp-canister|t|idle|", "metadata|neon-db|t|idle|"]
        assert xattr(g / n, PRESENCE) == ("metadata=neon-db,icp-canister asset=icp-canister,local"
                                          " sync=idle pinned=icp-canister")
    # seed 001's own gallery view says stored forever
    assert sql(m, "SELECT total_memories, icp_complete_memories, stored_forever FROM gallery_presence") == \
        ["3|3|t"]
    st = run([default_bin(), "status", m.mnt]).stdout
    assert "  pins      no copies in progress" in st, st
    # one copy in progress: the ETA is its bytes at the pace of the copies
    # made in the last 10 minutes (the two others here, over at least 10 s)
    sql(m, "UPDATE storage_edges SET sync_state = 'migrating' WHERE backend = 'icp-canister' AND artifact = 'asset'"
           " AND size_bytes = %d" % len(blobs["p2.bin"]))
    st = run([default_bin(), "status", m.mnt]).stdout
    pace = (len(blobs["p0.bin"]) + len(blobs["p1.bin"])) / 10
    assert re.search(r"  pins      icp-canister: 1 copy in progress, [0-9.]+ KiB left at [0-9.]+ [KM]iB/s,"
                     r" about \d+ s to go", st), st
    eta = int(re.search(r"about (\d+) s to go", st).group(1))
    assert eta <= round(len(blobs["p2.bin"]) / pace) + 1, (st, pace)
    sql(m, "UPDATE storage_edges SET sync_state = 'idle' WHERE sync_state = 'migrating'")

    # bad names: EINVAL and one line naming it; not a file or gallery: ENOTSUP
    def pin(path, value):
        return log_lines_after(m, lambda: os.setxattr(str(path), "user.mvault.pin", value))

    err, lines = pin(g / "p0.bin", b"arweave")
    assert err == errno.EINVAL and any("cannot pin 'p0.bin' to 'arweave'" in ln for ln in lines), lines
    err, lines = pin(g / "p0.bin", b"vblob")
    assert err == errno.EINVAL and any("no store of that name at this mount (this mount's pin stores: icp"
                                       in ln for ln in lines), lines
    err, lines = pin(g / "p0.bin", b"local")
    assert err == errno.EINVAL and any("the primary store" in ln for ln in lines), lines
    assert_errno(errno.ENOTSUP, os.setxattr, str(m.mnt / "library"), "user.mvault.pin", b"icp")
    (m.mnt / "collections" / "C").mkdir()
    assert_errno(errno.ENOTSUP, os.setxattr, str(m.mnt / "collections" / "C"), "user.mvault.pin", b"icp")
    assert_errno(errno.ENODATA, os.removexattr, str(m.mnt / "library" / "p0.bin"), "user.mvault.pin")

    # a file linked into the pinned gallery is copied; a file pinned by
    # itself with the same bytes as p0 keeps them there after the unpin
    lib = m.mnt / "library"
    h_new = write(lib / "later.bin", os.urandom(30_000))
    os.link(lib / "later.bin", g / "later.bin")
    twin = write(lib / "twin.bin", blobs["p0.bin"])
    os.setxattr(str(lib / "twin.bin"), "user.mvault.pin", b"icp-canister")
    wait_until(lambda: xattr(g, PRESENCE).startswith("4/4 on icp-canister, pinned, complete"),
               lambda: xattr(g, PRESENCE), timeout=30)
    assert object_path(icp, h_new).exists()

    # the grace period's deletion takes the primary's bytes, never the pin's
    os.unlink(lib / "p1.bin")
    set_skew(m, "31 days")
    wait_until(lambda: not object_path(m.store, sums["p1.bin"]).exists(), "p1's primary bytes deleted",
               timeout=30)
    wait_until(lambda: edges_of(m, "p1.bin")[:2] == ["asset|icp-canister|t|idle|" + sums["p1.bin"],
                                                     "asset|local|f|idle|" + sums["p1.bin"]],
               lambda: edges_of(m, "p1.bin"), timeout=10)
    assert object_path(icp, sums["p1.bin"]).exists()

    # unpin: every copy the gallery's pin held is dropped, p0's bytes stay
    # (twin.bin's own pin holds them)
    os.removexattr(str(g), "user.mvault.pin")
    assert_errno(errno.ENODATA, os.getxattr, str(g), "user.mvault.pin")
    wait_until(lambda: not object_path(icp, sums["p2.bin"]).exists() and not object_path(icp, h_new).exists()
               and not object_path(icp, sums["p1.bin"]).exists(), "the copies dropped", timeout=30)
    wait_until(lambda: sql(m, "SELECT count(*) FROM storage_edges WHERE backend = 'icp-canister'") == ["2"],
               lambda: edges(m, "e.backend = 'icp-canister'"), timeout=10)
    assert object_path(icp, twin).exists() and twin == sums["p0.bin"]
    mem0 = sql(m, "SELECT memory_id FROM memory_items WHERE display_name = 'p0.bin'")[0]
    assert not (icp / "u" / uid / "meta" / (mem0 + ".json")).exists()
    assert xattr(g, PRESENCE) == "3/4 on local"
    assert xattr(lib / "twin.bin", PRESENCE).endswith("pinned=icp-canister")

    # a removed file's own pin: not made in .trash/ (read-only), let go there
    os.unlink(lib / "twin.bin")
    trashed = m.mnt / ".trash" / "twin.bin"
    assert_errno(errno.EROFS, os.setxattr, str(trashed), "user.mvault.pin", b"icp")
    os.removexattr(str(trashed), "user.mvault.pin")
    wait_until(lambda: not object_path(icp, twin).exists(), "twin's copy dropped", timeout=30)
    m.unmount()


def test_pin_failure_shown_and_deletion_waits(mvfs, tmp_path):
    """A pinned store that refuses the copy: the file's presence says failed
    and why, `mvaultfs status` counts it, and the grace-period deletion keeps
    the primary's bytes the pin still needs; pinned again once the store
    works, the copy is made and the bytes may go."""
    icp = tmp_path / "icp"
    icp.mkdir()
    (icp / "u").write_bytes(b"")          # the user's folder cannot be made
    m, _ = pinned_mount(mvfs, tmp_path, icp)
    g = m.mnt / "galleries" / "G"
    g.mkdir()
    h = write(g / "x.bin", os.urandom(80_000))
    os.setxattr(str(g), "user.mvault.pin", b"icp")
    x = g / "x.bin"
    wait_until(lambda: "sync=failed" in xattr(x, PRESENCE), lambda: xattr(x, PRESENCE), timeout=30)
    assert "error=icp-canister: cannot store it on icp-canister: Not a directory" in xattr(x, PRESENCE)
    assert xattr(x, PRESENCE + ".icp").startswith("metadata=absent asset=absent sync=failed pinned=yes error=")
    assert xattr(g, PRESENCE) == "0/1 on icp-canister, pinned, failed (1); 1/1 on local"
    st = run([default_bin(), "status", m.mnt]).stdout
    assert "  pins      icp-canister: 0 copies in progress, 0 B left; 1 failed" in st, st

    os.unlink(m.mnt / "library" / "x.bin")
    set_skew(m, "31 days")
    wait_until(lambda: any("kept: a copy for a pin on icp-canister is not made yet" in r for r in
                           sql(m, "SELECT coalesce(error, '') FROM background_jobs WHERE type = 'asset_delete'")),
               "the deletion kept the bytes", timeout=30)
    assert object_path(m.store, h).exists()

    (icp / "u").unlink()
    os.setxattr(str(g), "user.mvault.pin", b"icp")     # again: the failed copy runs at once
    wait_until(lambda: object_path(icp, h).exists(), lambda: m.log_text(), timeout=30)
    wait_until(lambda: not object_path(m.store, h).exists(), "the primary's bytes deleted", timeout=30)
    # (the object goes before its transaction commits the edge)
    wait_until(lambda: xattr(g, PRESENCE) == "1/1 on icp-canister, pinned, complete; 0/1 on local",
               lambda: xattr(g, PRESENCE), timeout=10)
    m.unmount()


def test_pins_copied_by_a_worker_role(mvfs, tmp_path):
    """`mvaultfs worker` logged in as a worker role (no names, row-level
    security per job's user) runs the copies and the drops; the mount runs
    no jobs but knows the pin store's name."""
    from test_workers import WorkerRole

    icp = tmp_path / "icp"
    icp.mkdir()
    m = mvfs(extra_opts=["workers=0", "pin_store=icp=%s" % icp])
    w = WorkerRole(m, tmp_path).worker(tmp_path, "w1", ["pin_store=icp=%s" % icp])
    try:
        f = m.mnt / "library" / "solo.bin"
        h = write(f, os.urandom(40_000))
        os.setxattr(str(f), "user.mvault.pin", b"icp")
        wait_until(lambda: xattr(f, PRESENCE + ".icp") == "metadata=present asset=present sync=idle pinned=yes",
                   lambda: xattr(f, PRESENCE) + "\n" + w.text(), timeout=30)
        assert hashlib.sha256(object_path(icp, h).read_bytes()).hexdigest() == h
        assert "copied memory" in w.text()
        os.removexattr(str(f), "user.mvault.pin")
        wait_until(lambda: not object_path(icp, h).exists(), lambda: w.text(), timeout=30)
        wait_until(lambda: xattr(f, PRESENCE) == "metadata=neon-db asset=local sync=idle",
                   lambda: xattr(f, PRESENCE), timeout=10)
    finally:
        assert w.stop() == 0, w.text()
    m.unmount()


def test_pin_from_s3_to_vercel_blob(mvfs, s3_server, vblob_server):
    """The primary store in s3rver (label s3), the pin store on the Vercel
    Blob test server (tests/vblob/vblobserver.js): the copy is a blob there,
    and unpin deletes it."""
    prefix = "pins-" + uuid.uuid4().hex[:8]
    m = mvfs(store=s3_server.url("t-" + uuid.uuid4().hex[:12]), env=vblob_server.env(),
             extra_opts=JOBS_FAST + ["pin_store=vblob=%s" % vblob_server.url(prefix)])
    f = m.mnt / "library" / "s.bin"
    h = write(f, os.urandom(60_000))
    assert xattr(f, PRESENCE) == "metadata=neon-db asset=s3 sync=idle"
    os.setxattr(str(f), "user.mvault.pin", b"vblob")
    wait_until(lambda: xattr(f, PRESENCE) == "metadata=neon-db,vercel-blob asset=vercel-blob,s3 sync=idle"
               " pinned=vercel-blob", lambda: xattr(f, PRESENCE), timeout=30)
    uid = sql(m, "SELECT id FROM users")[0]
    pathname = "%s/u/%s/sha256/%s/%s/%s" % (prefix, uid, h[:2], h[2:4], h)
    assert hashlib.sha256(vblob_server.blob_bytes(pathname)).hexdigest() == h
    os.removexattr(str(f), "user.mvault.pin")
    wait_until(lambda: not vblob_server.keys(prefix + "/"),
               lambda: "the copy dropped: %s" % vblob_server.keys(prefix + "/"), timeout=30)
    m.unmount()


def test_pin_store_option_errors(mvfs, tmp_path):
    """A pin store that cannot be: one line on stderr, exit status 1."""
    db = None
    for opt, says in [("pin_store=arweave=%s" % tmp_path, "give the name of a store: icp, vblob, s3 or local"),
                      ("pin_store=local=%s" % tmp_path, "names the primary store's kind already"),
                      ("pin_store=icp", "give NAME=URL"),
                      ("pin_store=icp=%s,pin_store=icp-canister=%s" % (tmp_path, tmp_path), "given twice")]:
        m = mvfs(db=db, extra_opts=[opt], wait=False)
        assert m.wait_exit(30) == 1, m.log_text()
        assert says in m.log_text(), m.log_text()
        db = db or m.db
