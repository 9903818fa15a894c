#!/usr/bin/python3
"""An HTTP/2-only server (prior knowledge, cleartext) built on python-h2, as a gRPC server would
answer: each request's body comes back as the response body, with a trailers block carrying
grpc-status. It also says what it saw (protocol, te, :authority) in response headers. It refuses
HTTP/1.1, so a test passes only if the waypoint really spoke HTTP/2 to it.

usage: h2c-grpc-echo.py HOST PORT [NAME]   (prints "listening" once bound; NAME, if given, is
sent back in x-served-by so a test can tell its servers apart)
"""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


NAME = sys.argv[3] if len(sys.argv) > 3 else "-"


def serve(sock):
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    requests = {}
    try:
        while True:
            data = sock.recv(65535)
            if not data:
                return
            try:
                events = conn.receive_data(data)
            except Exception:
                # Not HTTP/2 (an HTTP/1.1 request, say): say so plainly and hang up.
                sock.sendall(b"HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-length: 0\r\n\r\n")
                return
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    requests[event.stream_id] = {"headers": dict((k.decode(), v.decode()) for k, v in event.headers),
                                                 "body": b""}
                elif isinstance(event, h2.events.DataReceived):
                    requests[event.stream_id]["body"] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    request = requests.pop(event.stream_id)
                    headers = request["headers"]
                    conn.send_headers(event.stream_id, [
                        (":status", "200"),
                        ("content-type", headers.get("content-type", "application/grpc")),
                        ("x-upstream-protocol", "h2"),
                        ("x-seen-te", headers.get("te", "-")),
                        ("x-seen-authority", headers.get(":authority", "-")),
                        ("x-seen-path", headers.get(":path", "-")),
                        ("x-served-by", NAME),
                    ])
                    conn.send_data(event.stream_id, request["body"])
                    conn.send_headers(event.stream_id, [("grpc-status", "0"), ("grpc-message", "echoed")],
                                      end_stream=True)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
    finally:
        sock.close()


def main():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((sys.argv[1], int(sys.argv[2])))
    server.listen(64)
    print("listening", flush=True)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
