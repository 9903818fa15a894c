#!/usr/bin/python3
"""A server "outside the mesh" (the mesh in a box's api.example.com, svc-waypoint's egress tests):
HTTP/1.1 on a port, with TLS when given a certificate.

Each request is answered 200 with "outside <scheme> <Host header> <path>" and logged on stdout,
so a test can tell what reached the outside world and whether it came in TLS.
usage: outside.py ADDRESS PORT [CERT KEY]
"""
import http.server
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        body = ("outside %s %s %s\n" % (scheme, self.headers.get("Host", "-"), self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print("request %s %s %s" % (scheme, self.headers.get("Host", "-"), self.path), flush=True)

    def log_message(self, fmt, *args):
        pass


address, port = sys.argv[1], int(sys.argv[2])
server = http.server.ThreadingHTTPServer((address, port), Handler)
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
