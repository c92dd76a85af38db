#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/e2e/proxy_origin.py -- the origin server the proxy's end-to-end
tests run on 127.0.0.1: it counts every request per path and behaves as the
test tells it, so that no test depends on timing.

    proxy_origin.py READY_FILE [CERT_PEM]
                                   listens on 127.0.0.1, port 0 (HTTPS with
                                   the certificate and key in CERT_PEM);
                                   writes the port to READY_FILE (atomically)

Control (never counted):
    POST /__ctl     {"path": "/a", "size": 1024, "seed": "x", "status": 200,
                     "cc": "max-age=60", "expires": "...", "etag": true,
                     "last_modified": true, "chunked": false, "gate_at": N,
                     "fail_at": N, "hang": false, "rate": bytes/s,
                     "version": 1}
                    replaces the path's behaviour (unset keys: defaults);
                    gate_at: send N body bytes, then wait for /__open;
                    fail_at: send N body bytes of a longer body, then close;
                    hang: wait for /__open before the status line.
    POST /__open    {"path": "/a"}: releases the path's gate.
    GET  /__count?path=/a   {"get": n, "head": n, "conditional": n,
                             "not_modified": n, "bytes": n, "waiting": n}
    GET  /__digest?path=/a  {"size": n, "sha256": hex, "sha512": hex}
Any other path is served by its behaviour (defaults: 1024 bytes, status
200, no caching headers). The body is a function of seed (default: the
path) and version, so tests can ask for its digest.
"""
import hashlib
import json
import os
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
CONF = {}  # path -> dict
COUNTS = {}  # path -> dict
GATES = {}  # path -> threading.Event
BODIES = {}  # (seed, version, size) -> bytes
LAST_MODIFIED = formatdate(time.time() - 86400, usegmt=True)


def conf_of(path):
    with LOCK:
        return dict(CONF.get(path, {}))


def count(path, key, n=1):
    with LOCK:
        c = COUNTS.setdefault(path, {"get": 0, "head": 0, "conditional": 0,
                                     "not_modified": 0, "bytes": 0, "waiting": 0})
        c[key] += n


def body_of(path, conf):
    seed = conf.get("seed", path)
    version = conf.get("version", 1)
    size = int(conf.get("size", 1024))
    k = (seed, version, size)
    with LOCK:
        b = BODIES.get(k)
    if b is None:
        out = bytearray()
        h = hashlib.sha256(("%s#%s" % (seed, version)).encode()).digest()
        i = 0
        while len(out) < size:
            block = hashlib.sha256(h + i.to_bytes(8, "big")).digest()
            out += block * 32  # 1 KiB per hash: fast enough for tens of MiB
            i += 1
        b = bytes(out[:size])
        with LOCK:
            BODIES[k] = b
    return b


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply_json(self, obj, status=200):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        path = req.get("path", "/")
        if self.path == "/__ctl":
            with LOCK:
                CONF[path] = {k: v for k, v in req.items() if k != "path"}
                old = GATES.get(path)
                GATES[path] = threading.Event()
            if old:
                old.set()  # never leave a handler hanging on a dropped gate
            self.reply_json({"ok": True})
        elif self.path == "/__open":
            with LOCK:
                g = GATES.setdefault(path, threading.Event())
            g.set()
            self.reply_json({"ok": True})
        else:
            self.reply_json({"error": "no such control"}, 404)

    def control_get(self):
        u = urlsplit(self.path)
        q = parse_qs(u.query)
        path = q.get("path", ["/"])[0]
        if u.path == "/__count":
            with LOCK:
                c = dict(COUNTS.get(path, {"get": 0, "head": 0, "conditional": 0,
                                           "not_modified": 0, "bytes": 0, "waiting": 0}))
            self.reply_json(c)
        elif u.path == "/__digest":
            b = body_of(path, conf_of(path))
            self.reply_json({"size": len(b), "sha256": hashlib.sha256(b).hexdigest(),
                             "sha512": hashlib.sha512(b).hexdigest()})
        else:
            self.reply_json({"error": "no such control"}, 404)

    def wait_gate(self, path):
        with LOCK:
            g = GATES.setdefault(path, threading.Event())
        count(path, "waiting")
        g.wait(30)
        count(path, "waiting", -1)

    def serve(self, head):
        if self.path.startswith("/__"):
            return self.control_get()
        path = self.path
        conf = conf_of(path)
        count(path, "head" if head else "get")
        if conf.get("hang"):
            self.wait_gate(path)
        version = conf.get("version", 1)
        etag = '"v%s"' % version if conf.get("etag") else None
        lm = LAST_MODIFIED if conf.get("last_modified") else None
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if inm or ims:
            count(path, "conditional")
        if (etag and inm == etag) or (lm and not inm and ims == lm):
            count(path, "not_modified")
            self.send_response(304)
            if etag:
                self.send_header("ETag", etag)
            if conf.get("cc"):
                self.send_header("Cache-Control", conf["cc"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status = int(conf.get("status", 200))
        body = body_of(path, conf)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if conf.get("cc"):
            self.send_header("Cache-Control", conf["cc"])
        if conf.get("expires"):
            self.send_header("Expires", conf["expires"])
        if etag:
            self.send_header("ETag", etag)
        if lm:
            self.send_header("Last-Modified", lm)
        chunked = conf.get("chunked")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        gate_at = conf.get("gate_at")
        fail_at = conf.get("fail_at")
        rate = conf.get("rate")
        pos = 0
        step = 16384
        while pos < len(body):
            if gate_at is not None and pos == gate_at:
                self.wfile.flush()
                self.wait_gate(path)
                gate_at = None
            end = min(len(body), pos + step)
            if gate_at is not None and pos < gate_at < end:
                end = gate_at
            if fail_at is not None and end > fail_at:
                end = fail_at
            chunk = body[pos:end]
            if chunk:
                if chunked:
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                else:
                    self.wfile.write(chunk)
                count(path, "bytes", len(chunk))
            pos = end
            if fail_at is not None and pos >= fail_at:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if rate:
                time.sleep(len(chunk) / float(rate))
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        try:
            self.serve(False)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_HEAD(self):
        try:
            self.serve(True)
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    ready = sys.argv[1]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    if len(sys.argv) > 2:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = ready + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, ready)
    srv.serve_forever()


if __name__ == "__main__":
    main()
