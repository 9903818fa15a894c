#!/usr/bin/python3
"""A WebSocket client for the waypoint's tests, in two ways of opening:

  websocket-client.py h1 HOST PORT PATH   HTTP/1.1 Upgrade, with python3-websockets (Debian)
  websocket-client.py h2 HOST PORT PATH   HTTP/2 extended CONNECT (RFC 8441) over h2c, with
                                          python-h2 and WebSocket frames written here

It sends 3 text messages, one at a time, and waits for each echo. One line out: "echoed N" with
the round trips, or "refused <status>", or what else happened.
"""
import asyncio
import os
import socket
import sys
import time

mode, host, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def h1():
    import websockets

    async def run():
        try:
            async with websockets.connect("ws://%s:%d%s" % (host, port, path), open_timeout=10) as ws:
                times = []
                for i in range(3):
                    t = time.monotonic()
                    await ws.send("message %d" % (i + 1))
                    echo = await asyncio.wait_for(ws.recv(), 10)
                    if echo != "message %d" % (i + 1):
                        return "wrong echo %r" % echo
                    times.append(round((time.monotonic() - t) * 1000, 1))
                return "echoed 3 %s" % times
        except websockets.exceptions.InvalidStatusCode as e:
            return "refused %d" % e.status_code
        except Exception as e:  # noqa: BLE001 - a test wants to read what happened
            return "failed %s: %s" % (type(e).__name__, e)

    print(asyncio.run(run()), flush=True)


def ws_frame(text):
    payload = text.encode()
    key = os.urandom(4)
    masked = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + key + masked


def h2():
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings

    sock = socket.create_connection((host, port), timeout=10)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    # The server must allow extended CONNECT in its SETTINGS first.
    while not conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL):
        data = sock.recv(65535)
        if not data:
            print("closed before SETTINGS")
            return
        conn.receive_data(data)
        sock.sendall(conn.data_to_send())
    sid = 1
    conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                            (":path", path), (":authority", host), ("sec-websocket-version", "13")])
    sock.sendall(conn.data_to_send())
    status = None
    inbox = bytearray()
    echoes = []
    times = []
    sent = 0
    t = 0.0
    while True:
        if status == "200" and sent == len(echoes) and sent < 3:
            sent += 1
            t = time.monotonic()
            conn.send_data(sid, ws_frame("message %d" % sent))
            sock.sendall(conn.data_to_send())
        if len(echoes) == 3:
            print("echoed 3 %s" % times, flush=True)
            return
        data = sock.recv(65535)
        if not data:
            print("closed after %d echoes (status %s)" % (len(echoes), status), flush=True)
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(":status")
                if status != "200":
                    print("refused %s" % status, flush=True)
                    return
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
                inbox.extend(event.data)
                while len(inbox) >= 2 and len(inbox) >= 2 + (inbox[1] & 0x7F):
                    n = inbox[1] & 0x7F
                    echoes.append(bytes(inbox[2:2 + n]).decode())
                    times.append(round((time.monotonic() - t) * 1000, 1))
                    del inbox[:2 + n]
            elif isinstance(event, h2.events.StreamReset):
                print("reset %d after %d echoes" % (event.error_code, len(echoes)), flush=True)
                return
        out = conn.data_to_send()
        if out:
            sock.sendall(out)


h1() if mode == "h1" else h2()
