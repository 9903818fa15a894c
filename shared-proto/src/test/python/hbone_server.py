#!/usr/bin/python3
"""An independent HBONE server (python-h2 + the stdlib ssl module), for interoperability tests.

TLS 1.3 only, ALPN h2 only, a client certificate is required and must chain to the given root.
Every CONNECT stream is answered 200 and echoed: each DATA byte is sent back on the same stream,
and the stream is ended once the client has ended its side and everything was echoed. A CONNECT
to port 7001 is told instead: 6 MiB (--told-bytes; bytes i % 251) at once, and 0.5 s after the last of it
END_STREAM, then RST_STREAM(NO_ERROR), without reading the request, as an HTTP/2 server whose
answer is complete may do (RFC 9113 8.1); the pause lets the client's side back up first. Port 7002
is told the same and then only RST_STREAM(NO_ERROR), without END_STREAM (an abort, by RFC 9113 8.1);
port 7003 END_STREAM, then RST_STREAM(CANCEL). A CONNECT to port 7004 is a workload that never
reads: answered 200, its DATA never acknowledged, so the windows toward it fill and stay full. A request
that is not a CONNECT (or has no :authority) is answered 400. One thread per connection; a
connection carries any number of concurrent streams.

stdout, one JSON object per line, flushed:
  {"event": "listening", "address": "ip:port"}                         once, when ready
  {"event": "stream", "connection": n, "stream_id": n, "status": 200, "method": "CONNECT",
   "authority": ..., "client_san": ..., "forwarded": ..., "baggage": ..., "bytes_received": n,
   "bytes_sent": n, "concurrent": n, "ended": "end_stream" | "reset:<code>" | "connection closed"}
  {"event": "refused", "connection": n, "peer": ..., "error": ...}    TLS/ALPN failures
"""

import argparse
import itertools
import json
import select
import socket
import ssl
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

_print_lock = threading.Lock()
# CONNECT ports told 6 MiB and then ended so: (END_STREAM first or not, RST_STREAM error code).
TOLD = {"7001": (True, 0), "7002": (False, 0), "7003": (True, 8)}
TOLD_BYTES = 6 << 20
_connection_ids = itertools.count(1)


def emit(obj):
    with _print_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def parse_address(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("expected ip:port, got %r" % text)
    return host.strip("[]"), int(port)


def uri_sans(cert):
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]


def request_problem(headers):
    """Why a request header block is not a valid HBONE CONNECT (RFC 9113 8.5), or None."""
    names = [name for name, _ in headers]
    pseudo = [n for n in names if n.startswith(":")]
    if names[:len(pseudo)] != pseudo:
        return "pseudo-header after a regular header"
    if len(set(pseudo)) != len(pseudo):
        return "repeated pseudo-header"
    hdrs = dict(headers)
    if hdrs.get(":method") != "CONNECT":
        return "method %r is not CONNECT" % hdrs.get(":method")
    if not hdrs.get(":authority"):
        return "CONNECT without :authority"
    extra = set(pseudo) - {":method", ":authority"}
    if extra:
        return "CONNECT with %s" % sorted(extra)
    for name in names:
        if name != name.lower():
            return "upper-case header name %r" % name
    return None


class Stream:
    def __init__(self, stream_id, method, authority, headers, concurrent):
        self.stream_id = stream_id
        self.method = method
        self.authority = authority
        self.headers = headers
        self.concurrent = concurrent
        self.pending = bytearray()   # received, not yet echoed
        self.tell = None             # told ports: (END_STREAM or not, then RST_STREAM with this code)
        self.tell_end_at = None      # time.monotonic() at which a told answer ends
        self.sink = False            # port 7004: DATA is never acknowledged
        self.unacked = 0             # flow-controlled bytes echoed but not yet acknowledged
        self.received = 0
        self.sent = 0
        self.remote_ended = False
        self.local_ended = False
        self.status = None
        self.problem = None
        self.reported = False


class Connection:
    """One accepted TLS connection, served by its own thread."""

    def __init__(self, sock, peer, cid):
        self.sock = sock
        self.peer = peer
        self.cid = cid
        self.client_san = None
        self.streams = {}
        self.h2 = None

    def serve(self):
        try:
            self.sock.settimeout(10)
            self.sock.do_handshake()
            alpn = self.sock.selected_alpn_protocol()
            if alpn != "h2":
                emit({"event": "refused", "connection": self.cid, "peer": self.peer,
                      "error": "ALPN %r, not h2" % alpn})
                return
            sans = uri_sans(self.sock.getpeercert() or {})
            self.client_san = sans[0] if len(sans) == 1 else sans
            self.sock.settimeout(None)
            # python-h2 4.1 rejects a plain CONNECT (no :scheme, no :path, RFC 9113 8.5) as malformed,
            # so request headers are checked here instead (see request_problem).
            self.h2 = h2.connection.H2Connection(config=h2.config.H2Configuration(
                client_side=False, header_encoding="utf-8", validate_inbound_headers=False))
            self.h2.initiate_connection()
            self.flush()
            self.loop()
        except (ssl.SSLError, socket.timeout, ConnectionError, OSError) as e:
            emit({"event": "refused" if self.h2 is None else "error", "connection": self.cid,
                  "peer": self.peer, "error": str(e)})
        except h2.exceptions.H2Error as e:
            emit({"event": "error", "connection": self.cid, "peer": self.peer, "error": "http2: %r" % e})
            try:
                self.flush()
            except OSError:
                pass
        finally:
            for s in self.streams.values():
                self.report(s, "connection closed")
            try:
                self.sock.close()
            except OSError:
                pass

    def flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def loop(self):
        while True:
            # SSL sockets may hold decrypted bytes select() cannot see.
            if not self.sock.pending():
                ends = [s.tell_end_at for s in self.streams.values() if s.tell_end_at and not s.local_ended]
                wait = max(0, min(ends) - time.monotonic()) if ends else 30
                readable, _, _ = select.select([self.sock], [], [], wait)
                if not readable:
                    self.echo()
                    self.flush()
                    continue
            data = self.sock.recv(1 << 16)
            if not data:
                return
            for event in self.h2.receive_data(data):
                if not self.on_event(event):
                    self.flush()
                    return
            self.echo()
            self.flush()

    def on_event(self, event):
        if isinstance(event, h2.events.RequestReceived):
            hdrs = dict(event.headers)
            method = hdrs.get(":method")
            authority = hdrs.get(":authority")
            open_streams = sum(1 for s in self.streams.values() if not s.reported) + 1
            s = Stream(event.stream_id, method, authority, hdrs, open_streams)
            self.streams[event.stream_id] = s
            problem = request_problem(event.headers)
            s.problem = problem
            if problem:
                s.status = 400
                self.h2.send_headers(event.stream_id, [(":status", "400")], end_stream=True)
                s.local_ended = True
                if event.stream_ended is not None:
                    s.remote_ended = True
                self.report_if_done(s)
            else:
                s.status = 200
                self.h2.send_headers(event.stream_id, [(":status", "200")])
                s.tell = TOLD.get(authority.rpartition(":")[2])
                s.sink = authority.endswith(":7004")
                if s.tell:
                    s.pending += (bytes(range(251)) * (TOLD_BYTES // 251 + 1))[:TOLD_BYTES]
        elif isinstance(event, h2.events.DataReceived):
            s = self.streams.get(event.stream_id)
            if s is not None and s.sink:
                s.received += len(event.data)   # kept unacknowledged: the sender's windows stay used
                return True
            if s is None or s.status != 200 or s.tell:
                # not a tunnel: give the window back, drop the bytes
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                return True
            s.pending += event.data
            s.received += len(event.data)
            # padding is acknowledged at once; data when it has been echoed (backpressure)
            padding = event.flow_controlled_length - len(event.data)
            if padding:
                self.h2.acknowledge_received_data(padding, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            s = self.streams.get(event.stream_id)
            if s is not None:
                s.remote_ended = True
                if s.status != 200:
                    self.report_if_done(s)
        elif isinstance(event, h2.events.StreamReset):
            s = self.streams.get(event.stream_id)
            if s is not None:
                self.report(s, "reset:%d" % event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            return False
        return True

    def echo(self):
        for s in list(self.streams.values()):
            if s.reported or s.status != 200:
                continue
            while s.pending:
                window = self.h2.local_flow_control_window(s.stream_id)
                n = min(window, self.h2.max_outbound_frame_size, len(s.pending))
                if n <= 0:
                    break
                self.h2.send_data(s.stream_id, bytes(s.pending[:n]))
                del s.pending[:n]
                s.sent += n
                if not s.tell:
                    self.h2.acknowledge_received_data(n, s.stream_id)
            if s.tell and not s.pending and s.tell_end_at is None:
                s.tell_end_at = time.monotonic() + 0.5
            if s.tell and not s.pending and not s.local_ended and time.monotonic() >= s.tell_end_at:
                end, code = s.tell
                if end:
                    self.h2.end_stream(s.stream_id)
                self.h2.reset_stream(s.stream_id, error_code=code)
                s.local_ended = True
                self.report(s, "told, then reset:%d%s" % (code, "" if end else " without END_STREAM"))
                continue
            if s.remote_ended and not s.pending and not s.local_ended:
                self.h2.end_stream(s.stream_id)
                s.local_ended = True
            self.report_if_done(s)

    def report_if_done(self, s):
        if s.local_ended and s.remote_ended:
            self.report(s, "end_stream")

    def report(self, s, how):
        if s.reported:
            return
        s.reported = True
        emit({
            "event": "stream",
            "connection": self.cid,
            "peer": self.peer,
            "stream_id": s.stream_id,
            "status": s.status,
            "method": s.method,
            "authority": s.authority,
            "client_san": self.client_san,
            "forwarded": s.headers.get("forwarded"),
            "baggage": s.headers.get("baggage"),
            "bytes_received": s.received,
            "bytes_sent": s.sent,
            "concurrent": s.concurrent,
            "problem": s.problem,
            "ended": how,
        })


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", required=True, type=parse_address, help="ip:port to listen on")
    p.add_argument("--cert", required=True, help="server certificate chain (PEM, leaf first)")
    p.add_argument("--key", required=True, help="server private key (PEM)")
    p.add_argument("--ca", required=True, help="root(s) client certificates must chain to (PEM)")
    p.add_argument("--told-bytes", type=int, default=6 << 20, help="what told ports are sent")
    args = p.parse_args()
    global TOLD_BYTES
    TOLD_BYTES = args.told_bytes

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=args.ca)
    ctx.load_cert_chain(certfile=args.cert, keyfile=args.key)
    ctx.set_alpn_protocols(["h2"])

    family = socket.AF_INET6 if ":" in args.listen[0] else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(args.listen)
    server.listen(128)
    emit({"event": "listening", "address": "%s:%d" % server.getsockname()[:2]})
    try:
        while True:
            raw, addr = server.accept()
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = "%s:%d" % addr[:2]
            cid = next(_connection_ids)
            try:
                tls = ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            except (ssl.SSLError, OSError) as e:
                emit({"event": "refused", "connection": cid, "peer": peer, "error": str(e)})
                raw.close()
                continue
            threading.Thread(target=Connection(tls, peer, cid).serve, daemon=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
