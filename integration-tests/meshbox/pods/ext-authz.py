#!/usr/bin/env python3
"""An external authorizer (Envoy's HTTP ext_authz protocol), as in Istio's ext-authz task:
ext-authz.py PORT HEALTH_PORT.

A check carrying the header `x-ext-authz: allow` gets 200 (allowed); any other gets 403 with a
body and the header `x-ext-authz-check-result: denied`, which the waypoint hands to the client.
Every method and path on PORT is a check (the waypoint sends the request's method and path);
HEALTH_PORT answers 200 to anything, for the readiness probe, so that no path is a way around the
check. Python's standard library only.
"""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def check(self):
        if self.headers.get("x-ext-authz", "") == "allow":
            status, result, body = 200, "allowed", b""
        else:
            status, result = 403, "denied"
            body = b"denied by ext_authz: the request lacks the header x-ext-authz: allow\n"
        self.send_response(status)
        self.send_header("x-ext-authz-check-result", result)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = check


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    health = ThreadingHTTPServer(("0.0.0.0", int(sys.argv[2])), Health)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
