#!/usr/bin/python3
"""A hostile gRPC peer built on python-h2 (not our HTTP/2 stack): over TLS 1.3 (it does not check
the server: it is the attacker), opens one gRPC call with a valid token and keeps it open, then
sends an HTTP/2 PING every 0.2 s. Prints one line: "goaway <error code> <debug data> after <n>
pings", or "no goaway after <n> pings" when 20 pings went unpunished.

  grpc-ping-flood.py HOST PORT SERVER_NAME METHOD_PATH TOKEN
"""
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events

host, port, server_name, path, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
sock = ctx.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname=server_name)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
conn.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":authority", server_name), (":path", path),
                      ("content-type", "application/grpc"), ("te", "trailers"),
                      ("authorization", "Bearer " + token)])
sock.sendall(conn.data_to_send())
sock.settimeout(0.2)
pings = 0
while pings < 20:
    conn.ping(b"%08d" % pings)
    pings += 1
    sock.sendall(conn.data_to_send())
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            print("closed after %d pings" % pings, flush=True)
            sys.exit(0)
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ConnectionTerminated):
                debug = (event.additional_data or b"").decode("utf-8", "replace")
                print("goaway %d %s after %d pings" % (event.error_code, debug, pings), flush=True)
                sys.exit(0)
        sock.sendall(conn.data_to_send())
print("no goaway after %d pings" % pings, flush=True)
