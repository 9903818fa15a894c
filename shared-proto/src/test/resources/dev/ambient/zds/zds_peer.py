"""A ZDS peer that is not ours: python's socket module on AF_UNIX SOCK_SEQPACKET, SCM_RIGHTS.

The tests run it as another uid (setpriv) to play a hostile local process. Messages are given as
hex (the Java side serializes them), so no protobuf is needed here. Prints key=value lines.

  client --path P --hello HEX --ack HEX --seconds N
      connects, sends the hello, answers every packet with the ack; counts packets and fds received
  server --path P --request HEX --netns FILE --connections N --seconds N
      binds (replacing a socket file there), accepts connections; on each: waits for a hello, sends
      the request with FILE's fd as SCM_RIGHTS, waits for an answer; counts what it got
"""
import argparse
import array
import os
import socket
import sys
import time

MAX = 65536
FD_ROOM = socket.CMSG_SPACE(16 * array.array("i").itemsize)


def receive(s, deadline):
    """One packet: (data, fd count); (b"", 0) at end of stream; None at the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    s.settimeout(left)
    try:
        data, ancdata, _flags, _addr = s.recvmsg(MAX, FD_ROOM)
    except socket.timeout:
        return None
    except (ConnectionResetError, BrokenPipeError):
        return b"", 0
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    for fd in fds:
        os.close(fd)
    return data, len(fds)


def client(a):
    out = {"connected": "false", "packets": 0, "fds": 0, "eof": "false"}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(a.path)
    except OSError as e:
        out["error"] = type(e).__name__
        return out
    out["connected"] = "true"
    print("connected=true", flush=True)
    deadline = time.monotonic() + a.seconds
    try:
        s.send(bytes.fromhex(a.hello))
        while True:
            got = receive(s, deadline)
            if got is None:
                break
            data, fds = got
            if not data and not fds:
                out["eof"] = "true"
                break
            out["packets"] += 1
            out["fds"] += fds
            s.send(bytes.fromhex(a.ack))
    except OSError as e:
        out["eof"] = "true"
        out["error"] = type(e).__name__
    return out


def server(a):
    out = {"accepted": 0, "hellos": 0, "answers": 0}
    try:
        os.unlink(a.path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(a.path)
    listener.listen(8)
    print("listening=true", flush=True)
    deadline = time.monotonic() + a.seconds
    while out["accepted"] < a.connections:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        listener.settimeout(left)
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            break
        out["accepted"] += 1
        with conn:
            got = receive(conn, min(deadline, time.monotonic() + 5))
            if not got or not got[0]:
                continue
            out["hellos"] += 1
            fd = os.open(a.netns, os.O_RDONLY)
            try:
                conn.sendmsg([bytes.fromhex(a.request)],
                             [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
            except OSError:
                continue
            finally:
                os.close(fd)
            got = receive(conn, min(deadline, time.monotonic() + 10))
            if got and got[0]:
                out["answers"] += 1
    listener.close()
    os.unlink(a.path)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["client", "server"])
    p.add_argument("--path", required=True)
    p.add_argument("--hello")
    p.add_argument("--ack")
    p.add_argument("--request")
    p.add_argument("--netns")
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--seconds", type=float, default=5)
    a = p.parse_args()
    out = client(a) if a.mode == "client" else server(a)
    out["uid"] = os.getuid()
    out["pid"] = os.getpid()
    for k, v in out.items():
        print(f"{k}={v}")
    sys.stdout.flush()


main()
