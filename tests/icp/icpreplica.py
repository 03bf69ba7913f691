"""The ICP test replica (tests/icp/replica.js) for the tests and benchmarks:
start it on 127.0.0.1 on a free port, make Ed25519 identities, stop it.

    with IcpReplica() as ic:                 # one asset canister
        pem = ic.identity(tmp / "id.pem", commit=True)   # holds Commit
        ic.url(pem)          # "icp://CANISTER?host=http://127.0.0.1:PORT&identity=PEM"
        ic.fail(503, times=2, path="/call")  # the next 2 calls answer 503
        ic.clock(600)        # the replica's clock 10 minutes ahead (expired requests)
        ic.stats()           # {"calls": {...}, "queries": {...}, "rejected": {...}}
"""

import base64
import hashlib
import json
import subprocess
import sys
import urllib.request
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "s3"))
from s3server import stop_proc  # noqa: E402
REPLICA = REPO / "tests" / "icp" / "replica.js"
CANISTER = "uxrrr-q7777-77774-qaaaq-cai"


def principal_text(raw):
    """The textual form of a principal's bytes (CRC-32, base32, groups of 5)."""
    b = zlib.crc32(raw).to_bytes(4, "big") + raw
    s = base64.b32encode(b).decode().lower().rstrip("=")
    return "-".join(s[i:i + 5] for i in range(0, len(s), 5))


def principal_of_pem(pem):
    """The self-authenticating principal of an Ed25519 PEM key."""
    der = subprocess.run(["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return principal_text(hashlib.sha224(der).digest() + b"\x02")


def make_identity(path):
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)],
                   check=True, capture_output=True)
    Path(path).chmod(0o600)
    return Path(path)


class IcpReplica:
    def __init__(self, commit=(), canister=CANISTER, log=None):
        self.canister = canister
        self.commit = list(commit)
        self.proc = None
        self.port = None
        self.log_path = log

    @property
    def host(self):
        return "http://127.0.0.1:%d" % self.port

    def url(self, identity=None, **opts):
        q = ["host=" + self.host] + (["identity=%s" % identity] if identity else [])
        q += ["%s=%s" % kv for kv in opts.items()]
        return "icp://%s?%s" % (self.canister, "&".join(q))

    def start(self):
        argv = ["node", str(REPLICA), "--canister", self.canister]
        for p in self.commit:
            argv += ["--commit", p]
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._log, start_new_session=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError("the ICP test replica exited with status %s" % self.proc.returncode)
        info = json.loads(line)
        self.port = info["port"]
        self.root_key = info["root_key"]
        return self

    def stop(self):
        stop_proc(self.proc)
        if self.proc:
            self.proc.stdout.close()
        self.proc = None
        if self.log_path and self._log:
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def identity(self, path, commit=True, controller=False):
        """A new Ed25519 identity at PATH.  COMMIT: it holds the Commit
        permission (what `dfx canister call ID grant_permission` gives; a
        test control request here).  CONTROLLER: it controls the canister,
        as its deployer does, and may grant permissions itself."""
        make_identity(path)
        if commit:
            self._control("/_test/grant", {"principal": principal_of_pem(path)})
        if controller:
            self._control("/_test/grant", {"principal": principal_of_pem(path), "controller": True})
        return Path(path)

    def fail(self, status, times=1, path=""):
        self._control("/_test/fail", {"status": status, "times": times, "path": path})

    def clock(self, offset_s):
        """Run the replica's clock OFFSET_S seconds ahead (0: back in step)."""
        self._control("/_test/clock", {"offset_s": offset_s})

    def assets(self):
        """{key: {"length": N, "sha256": HEX}} of the canister's assets."""
        with urllib.request.urlopen(self.host + "/_test/assets", timeout=10) as r:
            return json.loads(r.read())

    def stats(self):
        with urllib.request.urlopen(self.host + "/_test/stats", timeout=10) as r:
            return json.loads(r.read())

    def _control(self, path, body):
        req = urllib.request.Request(self.host + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
