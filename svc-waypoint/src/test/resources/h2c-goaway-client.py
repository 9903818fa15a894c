#!/usr/bin/python3
"""An HTTP/2 client on one cleartext connection (prior knowledge), built on python-h2: sends one
GET, prints "response <status>", then keeps the connection open and prints "goaway error=<code>"
when the server says GOAWAY (or "no goaway" after 20 s, exit 1).

usage: h2c-goaway-client.py HOST PORT PATH
"""
import socket
import sys

import h2.config
import h2.connection
import h2.events

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = socket.create_connection((host, port), timeout=20)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
conn.send_headers(1, [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", host)],
                  end_stream=True)
sock.sendall(conn.data_to_send())
try:
    while True:
        data = sock.recv(65535)
        if not data:
            print("closed without goaway", flush=True)
            sys.exit(1)
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(b":status", b"?").decode()
                print("response " + status, flush=True)
            elif isinstance(event, h2.events.ConnectionTerminated):
                print("goaway error=%d" % event.error_code, flush=True)
                sys.exit(0)
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
except socket.timeout:
    print("no goaway", flush=True)
    sys.exit(1)
