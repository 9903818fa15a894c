#!/usr/bin/python3
"""An HTTP/2 client on one cleartext connection (prior knowledge), built on python-h2, for the
waypoint's hostile-client tests. It says what happened, one line, and the seconds it took:

  get HOST PORT PATH         one GET with exactly this :path; prints "status <code> [location]"
  stall-body HOST PORT PATH  a POST announcing 100000 bytes that sends 100 and then nothing;
                             prints "status <code>", "reset <error code>" or "goaway <error code>"
  idle HOST PORT             the connection preface and SETTINGS, then no stream at all;
                             prints "goaway <error code>" or "closed"
Whatever happens, "... after <seconds>" ends the line; no answer within 20 s prints "nothing".
"""
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
path = sys.argv[4] if len(sys.argv) > 4 else "/"
start = time.monotonic()
sock = socket.create_connection((host, port), timeout=20)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
base = [(":scheme", "http"), (":authority", host), (":path", path)]
if mode == "get":
    conn.send_headers(1, [(":method", "GET")] + base, end_stream=True)
elif mode == "stall-body":
    conn.send_headers(1, [(":method", "POST")] + base + [("content-length", "100000")])
    conn.send_data(1, b"x" * 100)
sock.sendall(conn.data_to_send())


def done(what):
    print("%s after %.1f" % (what, time.monotonic() - start), flush=True)
    sys.exit(0)


try:
    while True:
        data = sock.recv(65535)
        if not data:
            done("closed")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                headers = dict(event.headers)
                location = headers.get(":status") in ("301", "302", "307", "308") and headers.get("location")
                done("status " + headers.get(":status", "?") + (" " + location if location else ""))
            elif isinstance(event, h2.events.StreamReset):
                done("reset %d" % event.error_code)
            elif isinstance(event, h2.events.ConnectionTerminated):
                done("goaway %d" % event.error_code)
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
except socket.timeout:
    done("nothing")
except ConnectionResetError:
    done("closed")
