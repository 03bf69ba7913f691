"""HTTPS in front of s3rver for the tests and benchmarks: a test CA made
with openssl, a server certificate it signs for "localhost" only, and
stunnel (Debian's stunnel4) terminating TLS on 127.0.0.1 and passing the
plain HTTP on to s3rver.

    with TlsFront(s3.port, folder) as tls:
        tls.endpoint        # "https://localhost:PORT" (the certificate's name)
        tls.ip_endpoint     # "https://127.0.0.1:PORT" (same server, a name the certificate lacks)
        tls.ca              # the CA that signed the server's certificate (PEM)
        tls.other_ca        # a CA that signed nothing here

stunnel, not a Python proxy: it is what the benchmarks measure through too,
and a proxy in Python would cost more CPU than the TLS it stands for.  It
runs in the foreground in a session of its own and is stopped by its pid.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

from s3server import stop_proc


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_ca(folder, name):
    """A self-signed CA (P-256) in folder/NAME.pem and NAME.key."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", name + ".key", "-out", name + ".pem", "-days", "2", "-subj", "/CN=mvaultfs test " + name,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    return Path(folder) / (name + ".pem")


def make_server_cert(folder, ca, name="server", dns="localhost"):
    """A certificate for DNS name DNS (and nothing else), signed by CA."""
    folder = Path(folder)
    (folder / (name + ".ext")).write_text(
        "subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n" % dns)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + dns, cwd=folder)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", Path(ca).name, "-CAkey", Path(ca).stem + ".key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext", cwd=folder)
    return folder / (name + ".pem"), folder / (name + ".key")


class TlsFront:
    def __init__(self, upstream_port, folder):
        self.upstream = upstream_port
        self.folder = Path(folder)
        self.port = None
        self.proc = None

    @property
    def endpoint(self):
        return "https://localhost:%d" % self.port

    @property
    def ip_endpoint(self):
        return "https://127.0.0.1:%d" % self.port

    def start(self, timeout=20):
        exe = shutil.which("stunnel4") or shutil.which("stunnel")
        if not exe:
            raise RuntimeError("stunnel is not installed: run make deps (Debian's stunnel4)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca = make_ca(self.folder, "ca")
        self.other_ca = make_ca(self.folder, "other-ca")
        cert, key = make_server_cert(self.folder, self.ca)
        self.port = _free_port()
        conf = self.folder / "stunnel.conf"
        conf.write_text(
            "foreground = yes\npid =\ndebug = 4\noutput = %s\n"
            "[s3]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\ncert = %s\nkey = %s\n"
            % (self.folder / "stunnel.log", self.port, self.upstream, cert, key))
        self.proc = subprocess.Popen([exe, str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("stunnel exited with status %d; see %s"
                                   % (self.proc.returncode, self.folder / "stunnel.log"))
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("stunnel did not listen on port %d within %d s" % (self.port, timeout))

    def stop(self):
        stop_proc(self.proc)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
