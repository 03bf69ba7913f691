"""The Vercel Blob test server (vblobserver.js) for the tests and benchmarks:
start it on 127.0.0.1 on two free ports (the API and the blob host) with a
temp folder, switch its faults on and off, stop it.

    with VblobServer() as vb:
        vb.url("prefix")            # "vblob://STORE/prefix"
        vb.env()                    # BLOB_READ_WRITE_TOKEN, VERCEL_BLOB_API_URL
        vb.fault("error", status=503, code="service_unavailable", times=2)
        vb.injected()               # {"error": 2}
        vb.clear()

    python3 tests/vblob/vblobserver.py run -- CMD...   runs CMD with the env set
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "s3"))
from s3server import NodeServer, free_port, start_node  # noqa: E402

HERE = Path(__file__).resolve().parent
SERVER = HERE / "vblobserver.js"
STORE = "mvteststore"
# the shape of a real read-write token: vercel_blob_rw_<store id>_<secret>
TOKEN = "vercel_blob_rw_%s_0123456789abcdefTESTSECRET" % STORE


class VblobServer(NodeServer):
    def __init__(self, folder=None):
        super().__init__(folder, "mvfs-vblob.")
        self.api_port = self.blob_port = None

    @property
    def api(self):
        return "http://127.0.0.1:%d" % self.api_port

    def url(self, prefix=""):
        return "vblob://%s/%s" % (STORE, prefix) if prefix else "vblob://%s" % STORE

    def env(self, token=TOKEN):
        return {"BLOB_READ_WRITE_TOKEN": token, "VERCEL_BLOB_API_URL": self.api}

    def start(self, timeout=30):
        self.api_port, self.blob_port = free_port(), free_port()
        self.proc = start_node([str(SERVER), "--dir", str(self.folder), "--api-port", str(self.api_port),
                                "--blob-port", str(self.blob_port), "--store", STORE, "--token", TOKEN],
                               self.open_log(), [self.api_port, self.blob_port], timeout, "vblobserver")
        return self

    def _faults(self, method, body=None):
        req = urllib.request.Request(self.api + "/__faults", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def fault(self, action, **rule):
        """Adds a fault rule (see vblobserver.js): action "error" (status,
        code, retryAfter), "cut" or "reset"; method, path (a regex), port
        ("api" or "blob"), times, every."""
        rule["action"] = action
        self._faults("POST", {"rules": [rule]})

    def injected(self):
        return self._faults("GET")["injected"]

    def state(self):
        return self._faults("GET")

    def clear(self):
        self._faults("DELETE")

    def _api_get(self, query):
        req = urllib.request.Request(self.api + "/?" + query,
                                     headers={"authorization": "Bearer " + TOKEN, "x-api-version": "12"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def keys(self, prefix=""):
        """{pathname: size} of the blobs under PREFIX, through the API's listing."""
        out, cursor = {}, None
        while True:
            q = {"prefix": prefix, "limit": "1000"}
            if cursor:
                q["cursor"] = cursor
            page = self._api_get(urllib.parse.urlencode(q))
            out.update({b["pathname"]: b["size"] for b in page["blobs"]})
            if not page["hasMore"]:
                return out
            cursor = page["cursor"]

    def blob_bytes(self, pathname):
        """The bytes of PATHNAME, read from the URL the API gives for it."""
        url = self._api_get("url=" + urllib.parse.quote(pathname, safe=""))["url"]
        req = urllib.request.Request(url, headers={"authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def blob_size(self, pathname):
        """The size the API gives for PATHNAME (head), None when missing."""
        try:
            return self._api_get("url=" + urllib.parse.quote(pathname, safe=""))["size"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        cmd = sys.argv[2:]
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        with VblobServer() as vb:
            env = dict(os.environ, **vb.env())
            return subprocess.call(cmd, env=env)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
