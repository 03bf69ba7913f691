"""A fault-injecting HTTP proxy between mvaultfs and s3rver, for the tests.

    p = FaultProxy(upstream_port).start()
    p.add("503", every=3)                       # every 3rd request: 503 SlowDown
    p.add("reset", method="PUT", times=2)       # the next 2 PUTs: connection reset
    p.add("truncate", method="GET")             # every GET: body cut in half
    p.add("corrupt", method="GET")              # every GET: one byte flipped
    p.add("delay", seconds=0.5, every=5)
    p.add("html", status=502)                   # a proxy's HTML error page
    p.add("text200")                            # 200 with a body that is not XML
    p.add("skew")                               # 403 RequestTimeTooSkewed
    ... p.endpoint ... p.injected["503"] ... p.clear() ... p.stop()
    p.peak["PUT"]                               # most PUTs it held at once

It forwards requests verbatim (the Host header included, so SigV4 still
verifies upstream) and only ever listens on 127.0.0.1.
"""

import http.client
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


class Rule:
    def __init__(self, action, method=None, path=None, every=1, times=None, seconds=0.0,
                 status=None):
        self.action, self.method, self.every, self.times = action, method, every, times
        self.path = re.compile(path) if path else None
        self.seconds, self.status, self.seen = seconds, status, 0

    def take(self, method, path):
        if self.method and method != self.method:
            return False
        if self.path and not self.path.search(path):
            return False
        if self.times is not None and self.times <= 0:
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        if self.times is not None:
            self.times -= 1
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _any(self):
        proxy = self.server.proxy
        proxy.begin(self.command)
        try:
            self._forward(proxy)
        finally:
            proxy.end(self.command)

    def _forward(self, proxy):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        rule = proxy.pick(self.command, self.path)
        act = rule.action if rule else None
        if act == "reset":
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            except OSError:
                pass
            self.connection.close()
            return
        if act in ("503", "html", "text200", "skew"):
            if act == "503":
                status, ctype = rule.status or 503, "application/xml"
                data = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                        b'<Message>Please reduce your request rate.</Message></Error>')
            elif act == "skew":
                status, ctype = 403, "application/xml"
                data = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>RequestTimeTooSkewed'
                        b'</Code><Message>The difference between the request time and the current'
                        b' time is too large.</Message></Error>')
            elif act == "html":
                status, ctype = rule.status or 502, "text/html"
                data = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            else:
                status, ctype = 200, "text/plain"
                data = b"Welcome to nginx!"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if act == "503":
                self.send_header("Retry-After", "0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        if act == "delay":
            threading.Event().wait(rule.seconds)
        up = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
        try:
            up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP:
                    up.putheader(k, v)
            up.endheaders(body if body or n else None)
            r = up.getresponse()
            try:
                data = r.read()
            except http.client.IncompleteRead as e:   # s3rver on a range of an empty object
                data = e.partial
            status, headers = r.status, r.getheaders()
        finally:
            up.close()
        ok_get = self.command == "GET" and 200 <= status < 300 and data
        if act == "corrupt" and ok_get:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP and k.lower() not in ("content-length", "date", "server"):
                self.send_header(k, v)
        if self.command == "HEAD":
            cl = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
            self.send_header("Content-Length", cl)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if act == "truncate" and ok_get and len(data) > 1:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


class FaultProxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.rules = []
        self.lock = threading.Lock()
        self.injected = {}
        self.requests = 0
        self.in_flight, self.peak = {}, {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.proxy = self
        self.port = self.server.server_address[1]
        self.thread = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def add(self, action, **kw):
        with self.lock:
            self.rules.append(Rule(action, **kw))

    def clear(self):
        with self.lock:
            self.rules = []

    def begin(self, method):
        with self.lock:
            self.in_flight[method] = n = self.in_flight.get(method, 0) + 1
            self.peak[method] = max(self.peak.get(method, 0), n)

    def end(self, method):
        with self.lock:
            self.in_flight[method] -= 1

    def pick(self, method, path):
        with self.lock:
            self.requests += 1
            for r in self.rules:
                if r.take(method, path):
                    self.injected[r.action] = self.injected.get(r.action, 0) + 1
                    return r
        return None
