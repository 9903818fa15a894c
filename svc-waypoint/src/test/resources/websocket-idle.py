#!/usr/bin/python3
"""A WebSocket client (python3-websockets, HTTP/1.1 Upgrade) for the waypoint's idle-timeout test:

  websocket-idle.py HOST PORT PATH active SECONDS   a message every 0.5 s for SECONDS, each echoed
  websocket-idle.py HOST PORT PATH idle SECONDS     one message echoed, then silence for up to SECONDS

One line out: "open after S s (N echoes)" if the connection lived through it, "closed after S s
(N echoes)" if it was closed under it, or what else happened. Pings are off: only the test's own
messages move bytes.
"""
import asyncio
import sys
import time

import websockets

host, port, path, mode, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])


async def run():
    echoes = 0
    async with websockets.connect("ws://%s:%d%s" % (host, port, path), open_timeout=10, ping_interval=None) as ws:
        start = time.monotonic()
        try:
            while time.monotonic() - start < seconds:
                if mode == "active" or echoes == 0:
                    await ws.send("tick %d" % echoes)
                    await asyncio.wait_for(ws.recv(), 5)
                    echoes += 1
                    await asyncio.sleep(0.5)
                else:
                    await asyncio.wait_for(ws.recv(), seconds - (time.monotonic() - start))
        except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError) as e:
            if isinstance(e, websockets.exceptions.ConnectionClosed):
                return "closed after %.1f s (%d echoes)" % (time.monotonic() - start, echoes)
        return "open after %.1f s (%d echoes)" % (time.monotonic() - start, echoes)


try:
    print(asyncio.run(run()), flush=True)
except Exception as e:  # noqa: BLE001 - a test wants to read what happened
    print("failed %s: %s" % (type(e).__name__, e), flush=True)
