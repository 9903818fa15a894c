#!/usr/bin/python3
"""An HTTP/2-only application (prior knowledge, cleartext) on python-h2, for the waypoint's
streaming tests: gRPC's four kinds of call, bulk bodies both ways, and WebSocket over extended
CONNECT (RFC 8441). It answers as it goes (never after collecting more than it must), respects
flow control, and refuses HTTP/1.1, so a test passes only if the waypoint streamed HTTP/2 to it.

  /demo.Greeter/SayHello       unary: each message echoed after the request ended, grpc-status 0
  /demo.Greeter/ServerStream   after the request: 3 messages 0.5 s apart, then grpc-status 0
  /demo.Greeter/ClientStream   after the request ended: one message "count=<n>", grpc-status 0
  /demo.Greeter/Bidi           headers at once, each message echoed as it arrives, grpc-status 0
                               when the client ends
  /demo.Greeter/NotFound       trailers-only: grpc-status 5
  /download?bytes=N            N bytes, content-length, paced by flow control
  /upload                      counts the body: {"bytes": n, "sha256": hex}
  CONNECT :protocol websocket  200, then WebSocket frames echoed (unmasked, as a server sends them)
  /refuse-once/<id>            the first request for an id: RST_STREAM(REFUSED_STREAM); then 200,
                               body "attempt <n>"
  /unavailable-once/<id>       the first request for an id: trailers-only grpc-status 14; then
                               trailers-only grpc-status 0, grpc-message "attempt <n>"

usage: h2c-streams-server.py HOST PORT   (prints "listening" once bound)
"""
import hashlib
import json
import selectors
import socket
import sys
import threading
import time
import urllib.parse

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

PATTERN = bytes(range(256)) * 256
TRIES = {}
TRIES_LOCK = threading.Lock()


def attempt(path):
    with TRIES_LOCK:
        TRIES[path] = TRIES.get(path, 0) + 1
        return TRIES[path]


def grpc_frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


class Stream:
    def __init__(self, headers):
        self.headers = headers
        self.inbox = bytearray()  # gRPC bytes not yet a whole message, or WebSocket bytes
        self.messages = []
        self.out = bytearray()
        self.trailers = None
        self.end = False
        self.count = 0
        self.left = 0  # bytes of a download still to produce
        self.digest = hashlib.sha256()


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.h2 = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False,
                                                                              header_encoding="utf-8"))
        self.streams = {}
        self.timers = []

    def run(self):
        self.h2.initiate_connection()
        self.h2.update_settings({h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        self.flush()
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        while True:
            wait = None
            if self.timers:
                wait = max(0, min(t for t, _ in self.timers) - time.monotonic())
            if sel.select(wait):
                data = self.sock.recv(1 << 20)
                if not data:
                    return
                try:
                    events = self.h2.receive_data(data)
                except Exception:
                    self.sock.sendall(b"HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-length: 0\r\n\r\n")
                    return
                for event in events:
                    self.on(event)
            now = time.monotonic()
            due = [t for t in self.timers if t[0] <= now]
            self.timers = [t for t in self.timers if t[0] > now]
            for _, fn in sorted(due, key=lambda t: t[0]):
                fn()
            self.pump()
            self.flush()

    def flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def later(self, seconds, fn):
        self.timers.append((time.monotonic() + seconds, fn))

    def send(self, sid, data=b"", end=False, trailers=None):
        s = self.streams.get(sid)
        if s is None:
            return
        s.out += data
        if trailers is not None:
            s.trailers = trailers
        s.end = s.end or end or trailers is not None
        self.pump()

    def pump(self):
        for sid, s in list(self.streams.items()):
            # A download is produced as the window lets it go: never more than 1 MiB ahead.
            while s.left and len(s.out) < (1 << 20):
                piece = PATTERN[:min(s.left, len(PATTERN))]
                s.out += piece
                s.left -= len(piece)
                if s.left == 0:
                    s.end = True
            while s.out:
                try:
                    window = self.h2.local_flow_control_window(sid)
                except Exception:
                    s.out.clear()
                    break
                n = min(window, self.h2.max_outbound_frame_size, len(s.out))
                if n <= 0:
                    break
                self.h2.send_data(sid, bytes(s.out[:n]))
                del s.out[:n]
            if not s.out and s.end:
                if s.trailers is not None:
                    self.h2.send_headers(sid, s.trailers, end_stream=True)
                else:
                    self.h2.end_stream(sid)
                del self.streams[sid]

    def respond(self, sid, headers, end=False):
        self.h2.send_headers(sid, [(":status", "200")] + headers, end_stream=end)
        if end:
            self.streams.pop(sid, None)

    def on(self, event):
        if isinstance(event, h2.events.RequestReceived):
            headers = dict(event.headers)
            s = Stream(headers)
            self.streams[event.stream_id] = s
            self.started(event.stream_id, s)
        elif isinstance(event, h2.events.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            s = self.streams.get(event.stream_id)
            if s is not None:
                self.data(event.stream_id, s, event.data)
        elif isinstance(event, h2.events.StreamEnded):
            s = self.streams.get(event.stream_id)
            if s is not None:
                self.ended(event.stream_id, s)
        elif isinstance(event, h2.events.StreamReset):
            self.streams.pop(event.stream_id, None)

    def path(self, s):
        return urllib.parse.urlparse(s.headers.get(":path", "/")).path

    def started(self, sid, s):
        if s.headers.get(":method") == "CONNECT" and s.headers.get(":protocol") == "websocket":
            self.respond(sid, [("x-upstream-protocol", "h2")])
            return
        path = self.path(s)
        if path.startswith("/refuse-once/"):
            n = attempt(path)
            if n == 1:
                self.h2.reset_stream(sid, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
                self.streams.pop(sid, None)
            else:
                s.attempt = n
        elif path.startswith("/unavailable-once/"):
            n = attempt(path)
            self.respond(sid, [("content-type", "application/grpc"), ("grpc-status", "14" if n == 1 else "0"),
                               ("grpc-message", "attempt %d" % n)], end=True)
        elif path == "/demo.Greeter/Bidi":
            self.respond(sid, [("content-type", "application/grpc")])
        elif path == "/demo.Greeter/NotFound":
            self.respond(sid, [("content-type", "application/grpc"), ("grpc-status", "5"),
                               ("grpc-message", "no such thing")], end=True)
        elif path == "/download":
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(s.headers[":path"]).query))
            n = int(q.get("bytes", "0"))
            self.respond(sid, [("content-type", "application/octet-stream"), ("content-length", str(n))])
            s.left = n
            if n == 0:
                s.end = True

    def data(self, sid, s, data):
        if s.headers.get(":method") == "CONNECT":
            s.inbox += data
            self.websocket(sid, s)
            return
        path = self.path(s)
        if path == "/upload":
            s.count += len(data)
            s.digest.update(data)
            return
        s.inbox += data
        while len(s.inbox) >= 5:
            n = int.from_bytes(s.inbox[1:5], "big")
            if len(s.inbox) < 5 + n:
                break
            message = bytes(s.inbox[5:5 + n])
            del s.inbox[:5 + n]
            s.messages.append(message)
            if path == "/demo.Greeter/Bidi":
                self.send(sid, grpc_frame(message))

    def websocket(self, sid, s):
        while len(s.inbox) >= 2:
            b0, b1 = s.inbox[0], s.inbox[1]
            n = b1 & 0x7F
            i = 2
            if n == 126:
                if len(s.inbox) < 4:
                    return
                n = int.from_bytes(s.inbox[2:4], "big")
                i = 4
            elif n == 127:
                if len(s.inbox) < 10:
                    return
                n = int.from_bytes(s.inbox[2:10], "big")
                i = 10
            masked = b1 & 0x80
            key = s.inbox[i:i + 4] if masked else b""
            i += 4 if masked else 0
            if len(s.inbox) < i + n:
                return
            payload = bytes(s.inbox[i:i + n])
            if masked:
                payload = bytes(c ^ key[k % 4] for k, c in enumerate(payload))
            del s.inbox[:i + n]
            header = bytes([b0]) + (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big"))
            self.send(sid, header + payload, end=(b0 & 0x0F) == 8)

    def ended(self, sid, s):
        path = self.path(s)
        ok = [("grpc-status", "0"), ("grpc-message", "done")]
        if s.headers.get(":method") == "CONNECT":
            self.send(sid, end=True)
        elif path == "/demo.Greeter/SayHello":
            self.respond(sid, [("content-type", "application/grpc")])
            self.send(sid, b"".join(grpc_frame(m) for m in s.messages), trailers=ok)
        elif path == "/demo.Greeter/ServerStream":
            self.respond(sid, [("content-type", "application/grpc")])
            for i in range(3):
                last = i == 2
                self.later(0.5 * i, lambda i=i, last=last: self.send(
                    sid, grpc_frame(b"part %d at %.3f" % (i + 1, time.time())), trailers=ok if last else None))
        elif path == "/demo.Greeter/ClientStream":
            self.respond(sid, [("content-type", "application/grpc")])
            self.send(sid, grpc_frame(b"count=%d" % len(s.messages)), trailers=ok)
        elif path == "/demo.Greeter/Bidi":
            self.send(sid, trailers=ok)
        elif path == "/upload":
            body = json.dumps({"bytes": s.count, "sha256": s.digest.hexdigest()}).encode()
            self.respond(sid, [("content-type", "application/json"), ("content-length", str(len(body)))])
            self.send(sid, body, end=True)
        elif path.startswith("/refuse-once/"):
            self.respond(sid, [("content-type", "text/plain")])
            self.send(sid, b"attempt %d" % s.attempt, end=True)
        elif path != "/download":
            self.respond(sid, [("content-type", "text/plain")])
            self.send(sid, b"h2", end=True)


def main():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((sys.argv[1], int(sys.argv[2])))
    server.listen(64)
    print("listening", flush=True)
    while True:
        client, _ = server.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=lambda c=client: serve(c), daemon=True).start()


def serve(sock):
    try:
        Connection(sock).run()
    except (ConnectionError, OSError):
        pass
    finally:
        sock.close()


if __name__ == "__main__":
    main()
