package dev.ambient.hbone;

import io.netty.channel.Channel;

/**
 * Turns reading of an HTTP/2 stream channel (an HBONE stream, or a stream of h2c in a tunnel) on
 * and off: the backpressure of the waypoint and of the tunnels (TunnelRelay). Resuming flushes: Netty's stream channel writes the
 * WINDOW_UPDATE for what it consumed while paused when reading resumes, but leaves it unflushed when
 * the stream's read loop is still marked in progress; the peer, out of window, then never sends
 * again (an h2c upload stalled after 3 x 64 KiB about once in 20 runs before this flush).
 */
public final class StreamReading {

    private StreamReading() {
    }

    /** Reads {@code channel} (true) or stops (false); event loop only. */
    public static void set(Channel channel, boolean read) {
        boolean was = channel.config().isAutoRead();
        channel.config().setAutoRead(read);
        if (read && !was) {
            channel.flush();
        }
    }
}
