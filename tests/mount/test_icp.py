"""The Internet Computer store on the ICP test replica (tests/icp/replica.js).

The replica is trusted only once the official clients accept it:
@icp-sdk/core's HttpAgent (BLS-verified certificates, signed queries, the
v4 and v2 calls) and @dfinity/assets (the asset canister's own client,
small and batched uploads read back).  Then our side: the backend
conformance suite (tests/unit/test_backend.c), the unit and fault tests of
tests/unit/test_icp.c (over 2 MiB refused, a reject without Commit, an
expired request, 5xx, no v3 call), and a mount whose files go to the
canister and come back through a fresh data folder."""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from mvtest import MiB, fsync_path, make_random, sha256_file, wait_until
from pgtest import default_bin

REPO = Path(__file__).resolve().parents[2]


def unit(name):
    b = os.environ.get("MVFS_BIN", str(REPO / "build" / "mvaultfs"))
    return str(Path(b).parent / "tests" / name)


@pytest.mark.outside
def test_official_clients_accept_the_replica(icp_server, tmp_path):
    other = icp_server.identity(tmp_path / "other.pem", commit=False)
    r = subprocess.run(["node", str(REPO / "tests" / "icp" / "prove_clients.js"), icp_server.host,
                        icp_server.canister, str(icp_server.commit_pem), str(other)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "all proofs passed" in r.stdout, r.stdout + r.stderr
    # what the clients exercised, as the replica counted it
    ep = icp_server.stats()["endpoints"]
    for e in ("v4/call", "v3/call", "v2/call", "v3/read_state", "v2/read_state", "v3/query", "v2/query"):
        assert ep.get(e, 0) > 0, (e, ep)


def test_conformance_and_faults(icp_server, tmp_path):
    env = dict(os.environ, MVFS_TEST_BACKEND_URL=icp_server.url(icp_server.commit_pem))
    r = subprocess.run([unit("test_backend")], capture_output=True, text=True, timeout=200, env=env)
    assert r.returncode == 0 and "conformance on the icp-canister backend" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    other = icp_server.identity(tmp_path / "nocommit.pem", commit=False)
    env = dict(os.environ, MVFS_TEST_ICP_URL=icp_server.url(icp_server.commit_pem),
               MVFS_TEST_ICP_NOCOMMIT_URL=icp_server.url(other), MVFS_TEST_ICP_HOST=icp_server.host)
    r = subprocess.run([unit("test_icp")], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "test_v2_fallback" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def test_mount_on_a_canister(mvfs, icp_server, tmp_path):
    """A small file (one store) and one over a chunk (a batch) through the
    mount, then read by a second mount with a fresh data folder: every byte
    comes back from the canister."""
    m = mvfs(store=icp_server.url())
    small = os.urandom(70000)
    (m.mnt / "library" / "small.bin").write_bytes(small)
    src = tmp_path / "big.bin"
    h = make_random(src, 5 * MiB + 3)
    subprocess.run(["cp", str(src), str(m.mnt / "library" / "big.bin")], check=True)
    fsync_path(m.mnt / "library" / "big.bin")
    fsync_path(m.mnt / "library" / "small.bin")
    m.unmount()
    before = icp_server.stats()["calls"]
    assert before.get("store", 0) >= 1 and before.get("commit_batch", 0) >= 1, before
    m2 = mvfs(db=m.db, store=m.store)
    assert (m2.mnt / "library" / "small.bin").read_bytes() == small
    assert sha256_file(m2.mnt / "library" / "big.bin") == h
    assert icp_server.stats()["queries"].get("get_chunk", 0) >= 2
    r = subprocess.run([default_bin(), "status", str(m2.mnt)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "NOT BLS-verified" in r.stdout, r.stdout + r.stderr


def test_mount_without_commit_keeps_files_staged(mvfs, icp_server, tmp_path):
    """An identity the canister does not let write: close() still succeeds
    (the bytes are staged), the log says which permission is missing."""
    pem = icp_server.identity(tmp_path / "reader.pem", commit=False)
    m = mvfs(store=icp_server.url(), extra_opts=["icp_identity=%s" % pem])
    (m.mnt / "library" / "a.txt").write_bytes(b"hello")
    assert (m.mnt / "library" / "a.txt").read_bytes() == b"hello"
    from mvtest import poll
    assert poll(lambda: "needs the Commit permission" in m.log_text(), timeout=20), m.log_text()


def test_pin_to_a_canister(mvfs, icp_server):
    """Store forever on a real ICP store: a gallery pinned to the canister
    (-o pin_store=icp=icp://...) is copied there, byte-checked by the
    canister's SHA-256, and its presence says complete; status names the
    unverified certificates."""
    m = mvfs(extra_opts=["jobs_interval=1", "pin_store=icp=%s" % icp_server.url(),
                         "icp_identity=%s" % icp_server.commit_pem])
    g = m.mnt / "galleries" / "Forever"
    g.mkdir()
    data = os.urandom(3 * MiB + 5)
    (g / "a.bin").write_bytes(data)
    fsync_path(g / "a.bin")
    os.setxattr(str(g), "user.mvault.pin", b"icp")
    wait_until(lambda: os.getxattr(str(g), "user.mvault.presence").decode().startswith(
        "1/1 on icp-canister, pinned, complete"),
        lambda: "%s; %s" % (os.getxattr(str(g), "user.mvault.presence"), m.log_text()), timeout=60)
    h = hashlib.sha256(data).hexdigest()
    held = {k: v for k, v in icp_server.assets().items() if k.endswith("/sha256/%s/%s/%s" % (h[:2], h[2:4], h))}
    assert list(held.values()) == [{"length": len(data), "sha256": h}], held
