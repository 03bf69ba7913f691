"""The store over HTTPS (issue 16): stunnel with a certificate from a test CA
in front of s3rver (tests/s3/tlsfront.py).  The CA is trusted through -o
s3_ca_file or AWS_CA_BUNDLE (the option wins); a certificate that no
trusted CA signed, or that is not for the endpoint's name, stops the mount
with one log line that says so and names the option, and is never retried.
Over https the payload goes unsigned by default (TLS checks the bytes)."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from mvtest import MiB, fsync_path, make_random, sha256_file, sql
from pgtest import default_bin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "s3"))
from tlsfront import TlsFront  # noqa: E402

FAST = ["s3_retries=3", "s3_timeout=5"]


@pytest.fixture(scope="module")
def tls(s3_server, tmp_path_factory):
    t = TlsFront(s3_server.port, tmp_path_factory.mktemp("tls")).start()
    yield t
    t.stop()


def stored(s3_server, m, prefix, sha):
    """The bytes s3rver holds for content SHA of M's user under PREFIX."""
    uid = sql(m, "SELECT id FROM users LIMIT 1")[0]
    key = "%s/u/%s/sha256/%s/%s/%s" % (prefix, uid, sha[:2], sha[2:4], sha)
    return s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)["Body"].read()


def file_log(m):
    return (m.data_dir / "mvaultfs.log").read_text(errors="replace")


def test_https_with_ca_option(mvfs, s3_server, tls, tmp_path):
    """-o s3_ca_file: a small file and a 20 MiB one (two parts, unsigned
    payload), written, synced, in s3rver byte for byte, and read back."""
    m = mvfs(store=s3_server.url("tls1"),
             extra_opts=["s3_endpoint=" + tls.endpoint, "s3_ca_file=%s" % tls.ca] + FAST,
             env={"AWS_CA_BUNDLE": None})
    small = b"over TLS\n" * 1000
    (m.mnt / "library" / "small.txt").write_bytes(small)
    src = tmp_path / "big.bin"
    h = make_random(src, 20 * MiB + 7)
    subprocess.run(["cp", str(src), str(m.mnt / "library" / "big.bin")], check=True)
    r = subprocess.run([default_bin(), "sync", str(m.mnt), "--timeout", "60"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert stored(s3_server, m, "tls1", hashlib.sha256(small).hexdigest()) == small
    assert hashlib.sha256(stored(s3_server, m, "tls1", h)).hexdigest() == h
    assert (m.mnt / "library" / "small.txt").read_bytes() == small
    log = file_log(m)
    assert "unsigned payloads, trusting the CAs in '%s' from -o s3_ca_file" % tls.ca in log, log
    m.unmount()
    # a fresh data folder: every byte comes from the store, over TLS
    m2 = mvfs(db=m.db, store=m.store, mnt=m.mnt,
              extra_opts=["s3_endpoint=" + tls.endpoint, "s3_ca_file=%s" % tls.ca] + FAST)
    assert sha256_file(m2.mnt / "library" / "big.bin") == h


def test_https_with_aws_ca_bundle(mvfs, s3_server, tls):
    """AWS_CA_BUNDLE alone is enough; -o s3_ca_file wins over it; and
    -o s3_signed_payload signs the body over https too."""
    m = mvfs(store=s3_server.url("tls2"), extra_opts=["s3_endpoint=" + tls.endpoint] + FAST,
             env={"AWS_CA_BUNDLE": tls.ca})
    f = m.mnt / "library" / "a.txt"
    f.write_bytes(b"bundle")
    fsync_path(f)
    assert stored(s3_server, m, "tls2", hashlib.sha256(b"bundle").hexdigest()) == b"bundle"
    assert "from AWS_CA_BUNDLE" in file_log(m)
    m.unmount()
    m2 = mvfs(db=m.db, store=m.store, mnt=m.mnt,
              extra_opts=["s3_endpoint=" + tls.endpoint, "s3_ca_file=%s" % tls.ca, "s3_signed_payload"] + FAST,
              env={"AWS_CA_BUNDLE": tls.other_ca})
    f = m2.mnt / "library" / "b.txt"
    f.write_bytes(b"option wins")
    fsync_path(f)
    assert stored(s3_server, m2, "tls2", hashlib.sha256(b"option wins").hexdigest()) == b"option wins"
    assert "signed payloads, trusting the CAs in '%s' from -o s3_ca_file" % tls.ca in file_log(m2)


def refused(mvfs, s3_server, endpoint, opts=(), env=None):
    m = mvfs(wait=False, store=s3_server.url("tlsbad"), extra_opts=["s3_endpoint=" + endpoint] + FAST + list(opts),
             env=dict({"AWS_CA_BUNDLE": None}, **(env or {})))
    status = m.wait_exit(60)
    assert status == 1, "exit status %s; log:\n%s" % (status, m.log_text())
    lines = [ln for ln in file_log(m).splitlines() if "s3" in ln and "ERROR" in ln.upper() or "not trusted" in ln]
    trusted = [ln for ln in lines if "not trusted" in ln]
    assert len(trusted) == 1, "want one line saying the certificate was not trusted:\n" + file_log(m)
    assert "-o s3_ca_file=FILE" in trusted[0] and "AWS_CA_BUNDLE" in trusted[0], trusted[0]
    assert "retry" not in file_log(m), file_log(m)
    return trusted[0]


def test_wrong_certificate_refused(mvfs, s3_server, tls):
    """A CA that did not sign the certificate (given by the option, by
    AWS_CA_BUNDLE, or none: the system's), and the right CA for a name the
    certificate does not hold: exit 1 at once, one line, no retries."""
    line = refused(mvfs, s3_server, tls.endpoint, ["s3_ca_file=%s" % tls.other_ca])
    assert "unable to get local issuer certificate" in line and "from -o s3_ca_file" in line, line
    line = refused(mvfs, s3_server, tls.endpoint, env={"AWS_CA_BUNDLE": tls.other_ca})
    assert "from AWS_CA_BUNDLE" in line, line
    line = refused(mvfs, s3_server, tls.endpoint)
    assert "the system's CAs" in line, line
    line = refused(mvfs, s3_server, tls.ip_endpoint, ["s3_ca_file=%s" % tls.ca])
    assert "127.0.0.1" in line and "name the endpoint as its certificate does" in line, line


def test_missing_ca_file(mvfs, s3_server, tls, tmp_path):
    m = mvfs(wait=False, store=s3_server.url("tlsbad"),
             extra_opts=["s3_endpoint=" + tls.endpoint, "s3_ca_file=%s" % (tmp_path / "nope.pem")] + FAST)
    assert m.wait_exit(60) == 1
    assert "cannot read the CA file '%s' from -o s3_ca_file: No such file" % (tmp_path / "nope.pem") \
        in file_log(m), file_log(m)
