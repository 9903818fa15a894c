#!/usr/bin/python3
"""An HTTP/1.1 application on Python's standard library, for the waypoint's streaming tests. It
reads request bodies as they come and writes responses as it produces them, so a test sees whether
the proxy in between streams:

  POST|PUT /upload...          reads the body (content-length or chunked) in pieces; answers
                               {"bytes": n, "sha256": hex, "seconds": s}
  GET /download?bytes=N        N bytes of a repeating pattern, streamed (content-length; &chunked=1
                               for chunked)
  GET .../events?n=N&gap=S     server-sent events: N events S seconds apart, chunked, each flushed
                               ("data: <i> <time>")
  GET /events-then-silence     one event, then nothing for 10 s, then the end
  GET /poll?wait=S             long polling: nothing for S seconds, then a short answer
  POST /flaky/<id>             reads the body; the first request for an id gets 503, the next 200
                               with {"bytes": n, "sha256": hex, "attempt": k}
  GET /ws                      a WebSocket echo (python3-websockets), on the port given as the 3rd
                               argument

usage: http1-streaming-server.py HOST PORT WSPORT   (prints "listening" once both are bound)
"""
import asyncio
import hashlib
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATTERN = bytes(range(256)) * 256  # 64 KiB
attempts = {}
attempts_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def body_pieces(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    piece = self.rfile.read(min(left, 65536))
                    if not piece:
                        return
                    left -= len(piece)
                    yield piece
                self.rfile.readline()
        else:
            left = int(self.headers.get("content-length", "0"))
            while left:
                piece = self.rfile.read(min(left, 65536))
                if not piece:
                    return
                left -= len(piece)
                yield piece

    def read_body(self):
        digest = hashlib.sha256()
        n = 0
        for piece in self.body_pieces():
            digest.update(piece)
            n += len(piece)
        return n, digest.hexdigest()

    def answer(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        path = urllib.parse.urlparse(self.path).path
        if path.startswith("/upload"):
            start = time.monotonic()
            n, sha = self.read_body()
            self.answer(200, json.dumps({"bytes": n, "sha256": sha, "seconds": round(time.monotonic() - start, 3)}))
        elif path.startswith("/flaky/"):
            n, sha = self.read_body()
            with attempts_lock:
                k = attempts.get(path, 0) + 1
                attempts[path] = k
            if k == 1:
                self.answer(503, json.dumps({"bytes": n, "attempt": k}))
            else:
                self.answer(200, json.dumps({"bytes": n, "sha256": sha, "attempt": k}))
        else:
            self.read_body()
            self.answer(404, "{}")

    do_PUT = do_POST

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/download":
            left = int(q.get("bytes", "0"))
            chunked = q.get("chunked") == "1"
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            if chunked:
                self.send_header("transfer-encoding", "chunked")
            else:
                self.send_header("content-length", str(left))
            self.end_headers()
            while left:
                piece = PATTERN[:min(left, len(PATTERN))]
                if chunked:
                    self.chunk(piece)
                else:
                    self.wfile.write(piece)
                left -= len(piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        elif url.path.endswith("/events") or url.path == "/events-then-silence":
            n = int(q.get("n", "3"))
            gap = float(q.get("gap", "1"))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            if url.path == "/events-then-silence":
                self.chunk(b"data: 1 %.3f\n\n" % time.time())
                time.sleep(10)
            else:
                for i in range(1, n + 1):
                    self.chunk(b"data: %d %.3f\n\n" % (i, time.time()))
                    if i < n:
                        time.sleep(gap)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        elif url.path == "/poll":
            time.sleep(float(q.get("wait", "2")))
            self.answer(200, "polled", "text/plain")
        else:
            self.answer(200, "hello", "text/plain")


def websocket_server(host, port, bound):
    import websockets

    async def echo(ws, path=None):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with websockets.serve(echo, host, port):
            bound.set()
            await asyncio.Future()

    asyncio.run(main())


def main():
    host, port, ws_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((host, port), Handler)
    bound = threading.Event()
    threading.Thread(target=websocket_server, args=(host, ws_port, bound), daemon=True).start()
    bound.wait(10)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
