"""s3rver for the tests and benchmarks: start it on 127.0.0.1 on a free port
with a temp folder, talk to it with botocore, stop it.

    with S3rver() as s3:             # bucket "mvtest" exists
        s3.url("prefix")             # "s3://mvtest/prefix"
        s3.endpoint                  # "http://127.0.0.1:PORT"
        s3.env()                     # AWS_* variables for its credentials
        s3.client().list_objects_v2(Bucket="mvtest")

    python3 tests/s3/s3server.py run -- CMD...   runs CMD with MVFS_S3_* set
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "tests" / "node_modules" / ".bin" / "s3rver"
# s3rver with atomic object writes (see the file)
LAUNCHER = REPO / "tests" / "s3" / "s3rver-atomic.js"
KEY = SECRET = "S3RVER"      # s3rver's built-in account
BUCKET = "mvtest"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(argv, log, ports, timeout, name):
    """Starts `node ARGV` in a session of its own, output to the file LOG;
    returns the process once every port of PORTS on 127.0.0.1 listens (it
    is stopped and RuntimeError raised if that takes over TIMEOUT s)."""
    proc = subprocess.Popen(["node"] + list(argv), stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    waiting = list(ports)
    while waiting and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with status %d" % (name, proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", waiting[0]), 0.5):
                waiting.pop(0)
        except OSError:
            time.sleep(0.1)
    if waiting:
        stop_proc(proc)
        raise RuntimeError("%s did not listen on port %d within %d s" % (name, waiting[0], timeout))
    return proc


def stop_proc(proc):
    """SIGTERM, then SIGKILL after 10 s, and reap."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class NodeServer:
    """A test server in node with a temp folder (its own unless FOLDER is
    given) and a log file beside it; start() is the subclass's."""

    def __init__(self, folder, prefix):
        self.proc = None
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix=prefix))

    def open_log(self):
        self.log = open(self.folder.parent / (self.folder.name + ".log"), "wb")
        return self.log

    def stop(self):
        stop_proc(self.proc)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class S3rver(NodeServer):
    def __init__(self, bucket=BUCKET, folder=None):
        super().__init__(folder, "mvfs-s3rver.")
        self.bucket = bucket
        self.port = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def url(self, prefix=""):
        return "s3://%s/%s" % (self.bucket, prefix) if prefix else "s3://%s" % self.bucket

    def env(self):
        return {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}

    def start(self, timeout=30):
        if not BIN.exists():
            raise RuntimeError("s3rver is not installed: run make deps (npm ci in tests/)")
        self.port = free_port()
        self.proc = start_node(
            [str(LAUNCHER), "-d", str(self.folder), "-a", "127.0.0.1", "-p", str(self.port), "--silent",
             "--service-endpoint", "localhost", "--configure-bucket", self.bucket],
            self.open_log(), [self.port], timeout, "s3rver")
        return self

    def client(self, endpoint=None):
        """A botocore S3 client (path style) for checks and set-up."""
        import botocore.session
        from botocore.config import Config
        sess = botocore.session.get_session()
        return sess.create_client(
            "s3", region_name="us-east-1", endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=KEY, aws_secret_access_key=SECRET,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def create_bucket(self, name):
        self.client().create_bucket(Bucket=name)

    def keys(self, prefix=""):
        """{key: size} of the bucket's objects under prefix."""
        out = {}
        c = self.client()
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["Size"]
        return out


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        cmd = sys.argv[2:]
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        with S3rver() as s3:
            env = dict(os.environ)
            env.update(s3.env())
            env["MVFS_S3_ENDPOINT"] = s3.endpoint
            env["MVFS_S3_BUCKET"] = s3.bucket
            env["MVFS_S3_PORT"] = str(s3.port)
            cmd = [c.replace("@ENDPOINT@", s3.endpoint) for c in cmd]
            return subprocess.call(cmd, env=env)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
