#!/usr/bin/env python3
"""Serves a JSON Web Key Set file, as an identity provider does: jwks.py PORT FILE.

GET /.well-known/jwks.json answers the file as it is now (read per request, so a rotated key set
is served at once); anything else is 404. Python's standard library only.
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.split("?", 1)[0] == "/.well-known/jwks.json":
            with open(sys.argv[2], "rb") as f:
                status, body = 200, f.read()
        else:
            status, body = 404, b"not found\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
