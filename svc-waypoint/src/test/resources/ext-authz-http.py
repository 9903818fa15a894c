#!/usr/bin/python3
"""An ext_authz HTTP authorizer from the standard library, as Istio's sample: a request carrying
"x-ext-authz: allow" is allowed (200, with x-user and x-ext-authz-check-result for the waypoint to
pass on), any other is denied (403, or the status in x-deny-status, with headers and a body the
client must see). A path ending in /slow answers after 3 s; one ending in /huge denies with a 4 MiB body.
The check's body (includeRequestBodyInCheck) is read: an allow reports its SHA-256, its length and
x-envoy-auth-partial-body back as x-seen-* headers; a body holding "forbidden" is denied.
Usage: ext-authz-http.py HOST PORT"""
import hashlib
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Authorizer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def check(self):
        length = int(self.headers.get("content-length", "0") or "0")
        checked = self.rfile.read(length) if length > 0 else b""
        if self.path.endswith("/slow"):
            time.sleep(3)
        seen = ",".join(sorted(k.lower() for k in self.headers.keys()))
        if self.headers.get("x-ext-authz") == "allow" and b"forbidden" not in checked:
            self.send_response(200)
            self.send_header("x-ext-authz-check-result", "allowed")
            self.send_header("x-user", "alice")
            self.send_header("x-seen-path", self.path)
            self.send_header("x-seen-headers", seen)
            self.send_header("x-seen-from", self.headers.get("x-from", ""))
            self.send_header("x-seen-body-sha256", hashlib.sha256(checked).hexdigest())
            self.send_header("x-seen-body-length", str(len(checked)))
            self.send_header("x-seen-partial", self.headers.get("x-envoy-auth-partial-body", "-"))
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = ("denied by ext_authz for not found header `x-ext-authz: allow` in the request\n").encode()
        if b"forbidden" in checked:
            body = b"denied: the body says forbidden\n"
        if self.path.endswith("/huge"):
            body = b"x" * (4 << 20)  # a hostile authorizer: 4 MiB of deny body
        self.send_response(int(self.headers.get("x-deny-status", "403")))
        self.send_header("x-ext-authz-check-result", "denied")
        self.send_header("x-seen-path", self.path)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = check

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Authorizer)
server.daemon_threads = True
print("listening", flush=True)
server.serve_forever()
