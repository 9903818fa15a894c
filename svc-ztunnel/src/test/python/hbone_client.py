#!/usr/bin/python3
"""An independent HBONE client (python-h2 + the stdlib ssl module), for interoperability tests.

It opens one mutual-TLS 1.3 connection with ALPN h2 to an HBONE server, sends one CONNECT stream
and writes the payload as DATA right after the HEADERS, before reading anything from the server
("early data"), then half-closes (END_STREAM) and reads the response status and every DATA frame
until the server ends the stream.

The server certificate must chain to the given root; host names are not checked (HBONE peers are
identified by their SPIFFE id, reported as server_san).

Prints one JSON line:
  {"status": 200, "sent_sha256": ..., "received_sha256": ..., "sent_bytes": n, "received_bytes": n,
   "early_bytes": n, "alpn": "h2", "tls_version": "TLSv1.3", "server_san": "spiffe://...", ...}
Exit 0 when a response arrived and the server ended the stream; 2 on TLS/ALPN failures, 3 on
HTTP/2 protocol errors, resets or a connection closed early, 4 on timeouts.
"""

import argparse
import hashlib
import json
import os
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

EXIT_OK = 0
EXIT_TLS = 2
EXIT_PROTOCOL = 3
EXIT_TIMEOUT = 4


class Failure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def parse_address(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("expected ip:port, got %r" % text)
    return host.strip("[]"), int(port)


def uri_sans(cert):
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, type=parse_address, help="HBONE server ip:port")
    p.add_argument("--cert", required=True, help="client certificate chain (PEM, leaf first)")
    p.add_argument("--key", required=True, help="client private key (PEM)")
    p.add_argument("--ca", required=True, help="trusted root certificate(s) (PEM)")
    p.add_argument("--authority", required=True, help="CONNECT :authority, e.g. 10.0.0.1:8080")
    p.add_argument("--size", type=int, default=1024, help="payload bytes to send (random)")
    p.add_argument("--method", default="CONNECT", help="request method (anything but CONNECT must get 400)")
    p.add_argument("--source", default=None, help="local ip to bind the TCP connection to")
    p.add_argument("--forwarded", default=None, help="value of a Forwarded header to send, if any")
    p.add_argument("--timeout", type=float, default=20.0, help="overall deadline in seconds")
    args = p.parse_args()

    result = {
        "status": None,
        "sent_sha256": None,
        "received_sha256": None,
        "sent_bytes": 0,
        "received_bytes": 0,
        "early_bytes": 0,
        "alpn": None,
        "tls_version": None,
        "server_san": None,
        "response_headers": None,
        "reset": None,
        "error": None,
    }
    code = EXIT_OK
    try:
        run(args, result)
    except Failure as e:
        code = e.code
        result["error"] = str(e)
    except socket.timeout as e:
        code = EXIT_TIMEOUT
        result["error"] = "timeout: %s" % e
    except ssl.SSLError as e:
        code = EXIT_TLS
        result["error"] = "tls: %s" % e
    except h2.exceptions.H2Error as e:
        code = EXIT_PROTOCOL
        result["error"] = "http2: %r" % e
    except (ConnectionError, OSError) as e:
        code = EXIT_PROTOCOL
        result["error"] = "connection: %s" % e
    print(json.dumps(result), flush=True)
    return code


def run(args, result):
    deadline = time.monotonic() + args.timeout
    payload = os.urandom(args.size)
    result["sent_sha256"] = hashlib.sha256(payload).hexdigest()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False          # SPIFFE ids, not DNS names
    ctx.verify_mode = ssl.CERT_REQUIRED  # but the chain must lead to our root
    ctx.load_verify_locations(cafile=args.ca)
    ctx.load_cert_chain(certfile=args.cert, keyfile=args.key)
    ctx.set_alpn_protocols(["h2"])

    raw = socket.socket(socket.AF_INET6 if ":" in args.server[0] else socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(max(0.1, deadline - time.monotonic()))
    if args.source:
        raw.bind((args.source, 0))
    raw.connect(args.server)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = ctx.wrap_socket(raw, server_hostname=None)
    try:
        exchange(args, result, sock, payload, deadline)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def exchange(args, result, sock, payload, deadline):
    result["alpn"] = sock.selected_alpn_protocol()
    result["tls_version"] = sock.version()
    sans = uri_sans(sock.getpeercert() or {})
    result["server_san"] = sans[0] if len(sans) == 1 else sans
    if result["alpn"] != "h2":
        raise Failure(EXIT_TLS, "server negotiated ALPN %r, not h2" % result["alpn"])

    # python-h2 4.1 insists on :scheme and :path in every request, but a plain CONNECT must carry
    # neither (RFC 9113 8.5): our own request headers are not validated by h2; the responses are.
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=False))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    headers = [(":method", args.method), (":authority", args.authority)]
    if args.method != "CONNECT":
        headers += [(":scheme", "https"), (":path", "/")]
    if args.forwarded:
        headers.append(("forwarded", args.forwarded))
    conn.send_headers(stream_id, headers)

    sender = Sender(conn, stream_id, payload)
    sender.pump()  # early data: as much as the initial windows allow, before any read
    result["early_bytes"] = sender.offset
    result["early_end_stream"] = sender.ended
    sock.sendall(conn.data_to_send())

    received = hashlib.sha256()
    received_bytes = 0
    response_ended = False
    while not response_ended:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no END_STREAM within %.1f s" % args.timeout)
        sock.settimeout(remaining)
        data = sock.recv(65536)
        if not data:
            raise Failure(EXIT_PROTOCOL, "connection closed before the stream ended (status %s, %d bytes)"
                          % (result["status"], received_bytes))
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                hdrs = dict(event.headers)
                result["response_headers"] = hdrs
                result["status"] = int(hdrs[":status"])
            elif isinstance(event, h2.events.InformationalResponseReceived):
                pass
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                received.update(event.data)
                received_bytes += len(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                response_ended = True
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                result["reset"] = event.error_code
                if result["status"] is None or result["status"] == 200:
                    raise Failure(EXIT_PROTOCOL, "stream reset by server (error %s) before it ended"
                                  % event.error_code)
                response_ended = True  # an error status followed by a reset: the answer is complete
            elif isinstance(event, h2.events.ConnectionTerminated):
                raise Failure(EXIT_PROTOCOL, "GOAWAY from server (error %s, last stream %s)"
                              % (event.error_code, event.last_stream_id))
        if result["status"] is not None and result["status"] != 200:
            sender.abandon()  # no tunnel: stop sending (the server ended or reset the stream)
        sender.pump()
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    if result["status"] is None:
        raise Failure(EXIT_PROTOCOL, "stream ended without a response status")
    result["sent_bytes"] = sender.offset
    result["received_bytes"] = received_bytes
    result["received_sha256"] = received.hexdigest()
    # Close politely: GOAWAY, so the server sees an orderly end.
    try:
        conn.close_connection()
        sock.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.H2Error):
        pass


class Sender:
    """Writes the payload into the stream as fast as flow control allows, then ends the stream."""

    def __init__(self, conn, stream_id, payload):
        self.conn = conn
        self.stream_id = stream_id
        self.payload = payload
        self.offset = 0
        self.ended = False
        self.abandoned = False

    def abandon(self):
        self.abandoned = True

    def pump(self):
        if self.ended or self.abandoned:
            return
        while self.offset < len(self.payload):
            window = self.conn.local_flow_control_window(self.stream_id)
            n = min(window, self.conn.max_outbound_frame_size, len(self.payload) - self.offset)
            if n <= 0:
                return
            self.conn.send_data(self.stream_id, self.payload[self.offset:self.offset + n])
            self.offset += n
        self.conn.end_stream(self.stream_id)
        self.ended = True


if __name__ == "__main__":
    sys.exit(main())
