#!/usr/bin/env python3
"""A small httpbin for the mesh in a box: the program the sample server pods run.

GET /            "hello from <pod>"
GET /headers     the request headers as JSON (to see what the mesh added: traceparent, ...)
GET /status/<n>  answers with status n
GET /delay/<s>   answers after s seconds (timeouts)
GET /stream/<n>  n lines, one a second (a long-lived connection that carries data all along)
anything else    "hello from <pod>: <path>"
"""
import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POD = os.environ.get("POD_NAME", "httpbin")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        status, body, kind = 200, f"hello from {POD}\n" if path == "/" else f"hello from {POD}: {path}\n", "text/plain"
        if path == "/headers":
            body, kind = json.dumps({"pod": POD, "headers": dict(self.headers.items())}) + "\n", "application/json"
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        elif path.startswith("/delay/"):
            time.sleep(float(path.rsplit("/", 1)[1]))
        elif path.startswith("/stream/"):
            return self.stream(int(path.rsplit("/", 1)[1]))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Pod", POD)
        self.end_headers()
        self.wfile.write(data)

    def stream(self, lines):
        line = lambda i: f"{POD} line {i:06d}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(sum(len(line(i)) for i in range(1, lines + 1))))
        self.send_header("X-Pod", POD)
        self.end_headers()
        for i in range(1, lines + 1):
            self.wfile.write(line(i))
            self.wfile.flush()
            if i < lines:
                time.sleep(1)

    do_POST = do_GET

    def log_message(self, fmt, *args):
        client = self.client_address[0]
        sys.stderr.write("%s %s\n" % (client[7:] if client.startswith("::ffff:") else client, fmt % args))


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    host = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"   # "::": both families (a dual-stack pod)
    if ":" in host:
        ThreadingHTTPServer.address_family = socket.AF_INET6   # IPV6_V6ONLY is off by default on Linux
    ThreadingHTTPServer((host, int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Handler).serve_forever()
