#!/usr/bin/python3
"""A gRPC client on python-h2 (h2c, prior knowledge), for the waypoint's streaming tests. It says
what happened as one JSON line: the HTTP status, the grpc-status and whether it came trailers-only
(on HEADERS that end the stream), the messages received, and when each came (seconds since the
request started), so a test sees whether messages were streamed or held.

  h2c-grpc-client.py HOST PORT PATH KIND
    unary          one message, then the end of the request
    server-stream  one message, then the end; the answers are timed
    client-stream  3 messages 0.3 s apart, then the end
    bidi           a message, wait for its echo, 3 times, then the end
"""
import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events

host, port, path, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
start = time.monotonic()
sock = socket.create_connection((host, port), timeout=20)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
sid = 1
result = {"status": None, "grpc_status": None, "trailers_only": False, "messages": [], "times": [],
          "sent_at": [], "reset": None}
conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", host), (":path", path),
                        ("content-type", "application/grpc"), ("te", "trailers")])
inbox = bytearray()
done = False


def frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


def send(message, end=False):
    result["sent_at"].append(round(time.monotonic() - start, 3))
    conn.send_data(sid, frame(message), end_stream=end)
    sock.sendall(conn.data_to_send())


def pump(until):
    """Reads until until() is true or the stream is over."""
    global done
    while not done and not until():
        data = sock.recv(65535)
        if not data:
            done = True
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                h = dict(event.headers)
                result["status"] = h.get(":status")
                if "grpc-status" in h:
                    result["grpc_status"] = h["grpc-status"]
                    result["grpc_message"] = h.get("grpc-message")
                    result["trailers_only"] = event.stream_ended is not None
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                inbox.extend(event.data)
                while len(inbox) >= 5:
                    n = int.from_bytes(inbox[1:5], "big")
                    if len(inbox) < 5 + n:
                        break
                    result["messages"].append(inbox[5:5 + n].decode())
                    result["times"].append(round(time.monotonic() - start, 3))
                    del inbox[:5 + n]
            elif isinstance(event, h2.events.TrailersReceived):
                h = dict(event.headers)
                result["grpc_status"] = h.get("grpc-status")
                result["grpc_message"] = h.get("grpc-message")
            elif isinstance(event, h2.events.StreamEnded):
                done = True
            elif isinstance(event, h2.events.StreamReset):
                result["reset"] = event.error_code
                done = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                result["reset"] = "goaway %d" % event.error_code
                done = True
        out = conn.data_to_send()
        if out:
            sock.sendall(out)


try:
    if kind in ("unary", "server-stream"):
        send(b"hello", end=True)
    elif kind == "client-stream":
        for i in range(3):
            send(b"part %d" % (i + 1), end=i == 2)
            if i < 2:
                time.sleep(0.3)
    elif kind == "bidi":
        for i in range(3):
            send(b"ping %d" % (i + 1))
            pump(lambda i=i: len(result["messages"]) > i)
        conn.end_stream(sid)
        sock.sendall(conn.data_to_send())
    pump(lambda: False)
except socket.timeout:
    result["error"] = "timeout"
result["seconds"] = round(time.monotonic() - start, 3)
print(json.dumps(result), flush=True)
