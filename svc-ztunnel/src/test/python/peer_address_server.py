#!/usr/bin/python3
"""An application that reports who connected: for each TCP connection on the given port it logs
"peer <ip>" on stdout and answers an HTTP/1.0 response whose body is the peer's address, then
half-closes and reads until the client is done (so unread data never turns the close into a reset).
Usage: peer_address_server.py PORT"""
import socket
import sys
import threading


def serve(conn, peer):
    with conn:
        print("peer %s" % peer[0], flush=True)
        body = (peer[0] + "\n").encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(10)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", int(sys.argv[1])))
    srv.listen(64)
    while True:
        conn, peer = srv.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


if __name__ == "__main__":
    main()
