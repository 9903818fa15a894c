#!/usr/bin/env python3
"""Idle connections for ztunnel-bench.sh (standard library only).

  idle_conns.py serve HOST PORT
      Accepts connections and holds them open; answers each byte it reads with one byte, so a
      client can tell that its connection reached the server end to end (through both ztunnels).

  idle_conns.py open HOST PORT COUNT RELEASE_FILE [TIMEOUT_S]
      Opens COUNT connections to HOST:PORT (unbound: the kernel picks the source address),
      sends one byte on each and waits for the answer. Prints "established N of COUNT" once
      every connection answered (or TIMEOUT_S passed), then holds them all, idle, until
      RELEASE_FILE exists; then closes them and prints "closed". Exit status 0 when all answered.
"""
import os
import selectors
import socket
import sys
import time


def serve(host, port):
    sel = selectors.DefaultSelector()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(4096)
    srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ)
    print(f"holding connections on {host}:{port}", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is srv:
                try:
                    c, _ = srv.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
            else:
                try:
                    s.send(b"y" * len(data))
                except OSError:
                    pass


def open_conns(host, port, count, release, timeout):
    sel = selectors.DefaultSelector()
    socks = []
    deadline = time.monotonic() + timeout
    pending = 0
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(max(1.0, deadline - time.monotonic()))
        try:
            s.connect((host, port))
            s.sendall(b"x")
        except OSError as e:
            print(f"connection {i} failed: {e}", file=sys.stderr, flush=True)
            s.close()
            continue
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
        pending += 1
    answered = 0
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(16)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            sel.unregister(s)
            pending -= 1
            if data:
                answered += 1
    print(f"established {answered} of {count}", flush=True)
    while not os.path.exists(release):
        time.sleep(0.1)
    for s in socks:
        s.close()
    print("closed", flush=True)
    return 0 if answered == count else 1


def main(argv):
    if len(argv) >= 3 and argv[0] == "serve":
        serve(argv[1], int(argv[2]))
        return 0
    if len(argv) >= 5 and argv[0] == "open":
        timeout = float(argv[5]) if len(argv) > 5 else 30.0
        return open_conns(argv[1], int(argv[2]), int(argv[3]), argv[4], timeout)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
