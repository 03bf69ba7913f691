"""The Vercel Blob store against its test server (tests/vblob/vblobserver.js):
first the official @vercel/blob client against the server (so the server is
trusted for what the client does), then the backend conformance suite
(tests/unit/test_backend.c) on it, plain and with faults sprinkled in, the
backend's answers to each fault (tests/unit/test_vblob.c), and a mount
that refuses a bad token with one clear line."""

import os
import subprocess
from pathlib import Path

import pytest

from mvtest import MiB, fsync_path, make_random, sha256_file, sql

REPO = Path(__file__).resolve().parents[2]
FAST = "retries=3&retry_base_ms=5&retry_cap_ms=50&part_size=5M&threshold=4M"


def unit_bin(name):
    b = os.environ.get("MVFS_BIN", str(REPO / "build" / "mvaultfs"))
    return Path(b).parent / "tests" / name


def run_unit(name, vblob_server, **env_extra):
    env = dict(os.environ, **vblob_server.env(), **env_extra)
    r = subprocess.run([str(unit_bin(name))], capture_output=True, text=True, timeout=200, env=env)
    return r


@pytest.mark.outside
def test_official_client_against_the_server(vblob_server):
    """put (suffix, overwrite, ifMatch), head, get with ranges, list with a
    cursor and folded, multipart both ways, del, and the errors and faults
    the client sees: see tests/vblob/official_client.mjs."""
    env = dict(os.environ, **vblob_server.env())
    env["VBLOB_BLOB_ORIGIN"] = "http://127.0.0.1:%d" % vblob_server.blob_port
    r = subprocess.run(["node", str(REPO / "tests" / "vblob" / "official_client.mjs")], env=env,
                       capture_output=True, text=True, timeout=120)
    vblob_server.clear()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "official client: 28 checks passed" in r.stdout, r.stdout


def test_conformance_on_vblob(vblob_server):
    r = run_unit("test_backend", vblob_server, MVFS_TEST_BACKEND_URL=vblob_server.url("conf") + "?" + FAST)
    assert r.returncode == 0 and "conformance on the vercel-blob backend" in r.stdout, r.stdout + r.stderr


def test_conformance_through_faults(vblob_server):
    """503s, 429s with retry-after 0, resets and cut bodies on a share of
    requests: every operation still gives the right answer."""
    vblob_server.clear()
    vblob_server.fault("error", status=503, code="service_unavailable", every=5, port="api")
    vblob_server.fault("error", status=429, code="rate_limited", retryAfter=0, every=11, port="api")
    vblob_server.fault("reset", every=13)
    vblob_server.fault("cut", method="GET", port="blob", every=3)
    try:
        r = run_unit("test_backend", vblob_server,
                     MVFS_TEST_BACKEND_URL=vblob_server.url("faults") + "?" + FAST.replace("retries=3", "retries=10"))
        injected = vblob_server.injected()
    finally:
        vblob_server.clear()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert injected.get("error", 0) > 1 and injected.get("reset", 0) > 0 and injected.get("cut", 0) > 0, injected


def test_fault_answers(vblob_server):
    """5xx then success, 429 waits its retry-after, a 4xx is not retried,
    cut bodies are EIO and leave no blob, bad tokens are EACCES."""
    r = run_unit("test_vblob", vblob_server, MVFS_TEST_VBLOB_URL=vblob_server.url("fa") + "?" + FAST)
    vblob_server.clear()
    assert r.returncode == 0 and "test_cut_put_leaves_nothing" in r.stdout, r.stdout + r.stderr
    assert " 0 failed" in r.stdout.splitlines()[-1]


def test_mount_big_file_and_bad_token(mvfs, vblob_server, tmp_path):
    """A 19 MiB file goes up in parts and comes back; a mount with a wrong
    token stops at once with one line that says what to check (and never
    the token)."""
    m = mvfs(store=vblob_server.url("mnt"))
    src = tmp_path / "src.bin"
    h = make_random(src, 19 * MiB + 7)
    dst = m.mnt / "library" / "big.bin"
    subprocess.run(["cp", str(src), str(dst)], check=True)
    fsync_path(dst)
    uid = sql(m, "SELECT id FROM users LIMIT 1")[0]
    pathname = "mnt/u/%s/sha256/%s/%s/%s" % (uid, h[:2], h[2:4], h)
    assert vblob_server.blob_size(pathname) == 19 * MiB + 7
    m.unmount()
    m2 = mvfs(db=m.db, store=m.store, mnt=m.mnt)     # a fresh data folder: read from the store
    assert sha256_file(m2.mnt / "library" / "big.bin") == h
    m2.unmount()

    bad = "vercel_blob_rw_mvteststore_WRONGSECRET"
    m3 = mvfs(store=vblob_server.url("mnt"), wait=False, env={"BLOB_READ_WRITE_TOKEN": bad})
    assert m3.wait_exit(60) == 1
    log = m3.log_text()
    assert "forbidden" in log and "BLOB_READ_WRITE_TOKEN" in log and "WRONGSECRET" not in log, log
