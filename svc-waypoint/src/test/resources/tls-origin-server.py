#!/usr/bin/python3
"""An HTTPS server outside the mesh for the waypoint's TLS origination tests (Python's ssl, and
python-h2 for HTTP/2): it can require a client certificate from a CA, and offers by ALPN the
protocols it is given. Each request is answered 200 with
"origin <alpn or -> <HTTP version> client=<client certificate's CN or -> <path>", and logged, so a
test sees what the waypoint presented and spoke.

usage: tls-origin-server.py ADDRESS PORT CERT KEY CLIENT_CA|- ALPN[,ALPN...]|-   (prints "listening")
"""
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events

address, port, cert, key, client_ca, alpn = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.load_cert_chain(cert, key)
if client_ca != "-":
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(client_ca)
if alpn != "-":
    ctx.set_alpn_protocols(alpn.split(","))


def client_name(tls):
    peer = tls.getpeercert()
    if not peer:
        return "-"
    return dict(x[0] for x in peer["subject"]).get("commonName", "?")


def answer(tls, version, path):
    line = "origin %s %s client=%s %s" % (tls.selected_alpn_protocol() or "-", version, client_name(tls), path)
    print("request " + line, flush=True)
    return (line + "\n").encode()


def http1(tls):
    reader = tls.makefile("rb")
    while True:
        request = reader.readline()
        if not request:
            return
        while reader.readline() not in (b"\r\n", b"\n", b""):
            pass
        body = answer(tls, "HTTP/1.1", request.split()[1].decode())
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def http2(tls):
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    while True:
        data = tls.recv(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers).get(":path", "-")
                body = answer(tls, "HTTP/2", path)
                conn.send_headers(event.stream_id, [(":status", "200"), ("content-type", "text/plain"),
                                                    ("content-length", str(len(body)))])
                conn.send_data(event.stream_id, body, end_stream=True)
            elif isinstance(event, h2.events.ConnectionTerminated):
                tls.sendall(conn.data_to_send())
                return
        tls.sendall(conn.data_to_send())


def serve(raw):
    try:
        with ctx.wrap_socket(raw, server_side=True) as tls:
            (http2 if tls.selected_alpn_protocol() == "h2" else http1)(tls)
    except (ssl.SSLError, OSError) as e:
        print("refused %s" % e, flush=True)


listener = socket.create_server((address, int(port)))
print("listening", flush=True)
while True:
    raw, _ = listener.accept()
    threading.Thread(target=serve, args=(raw,), daemon=True).start()
