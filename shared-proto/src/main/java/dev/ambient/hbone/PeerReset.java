package dev.ambient.hbone;

import dev.ambient.net.PendingReads;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameStream;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2Stream;

/**
 * Whether a peer's RST_STREAM ends a tunnel cleanly or aborts it. RFC 9113 8.1: a peer whose side is
 * complete (END_STREAM sent) may reset with NO_ERROR to say it wants no more (Envoy and Go do after
 * an answer): a clean end, and what it sent must still be delivered. Any other code, or NO_ERROR
 * before END_STREAM, is an abort (RFC 9113 8.5 maps it to a TCP reset). Netty hands a reset to the
 * stream channel at once, ahead of frames still queued while the channel is paused, END_STREAM
 * among them, and closes the channel once they are read; so "ended" is also what the connection
 * already knows (the stream half-closed by the peer), not only what the channel has read. A reset
 * that arrived before the stream's consumer did was held by {@link PendingReads}, which noted that
 * state on arrival: replayed, the stream is closed and the END_STREAM may still be queued behind it
 * (a clean upload's tunnel was aborted, its bytes lost, about 3 in 96 before).
 */
public final class PeerReset {

    private PeerReset() {
    }

    /**
     * @param endStreamRead the channel has read the peer's END_STREAM
     * @return true for a clean end: keep reading what is queued, the channel's close comes after it
     */
    public static boolean endsCleanly(Http2ResetFrame reset, boolean endStreamRead) {
        if (reset.errorCode() != Http2Error.NO_ERROR.code()) {
            return false;
        }
        if (endStreamRead) {
            return true;
        }
        if (reset instanceof PendingReads.HeldReset held) {
            return held.peerEndedFirst();
        }
        Http2FrameStream stream = reset.stream();
        return stream != null && stream.state() == Http2Stream.State.HALF_CLOSED_REMOTE;
    }
}
