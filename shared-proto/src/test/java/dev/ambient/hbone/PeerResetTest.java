package dev.ambient.hbone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.net.PendingReads;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http2.DefaultHttp2ResetFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameStream;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2Stream;
import org.junit.jupiter.api.Test;

/**
 * A reset that arrives before the stream's relay is judged by what the connection knew when it
 * arrived, not when {@link PendingReads} replays it: by then the reset has closed the stream, and
 * the peer's END_STREAM may still be queued, unread, behind it. (The real thing, python-h2 against
 * the ztunnel's inbound: svc-ztunnel's HboneUploadThenResetTest.)
 */
class PeerResetTest {

    /** The stream's state as Netty's connection sees it; the reset moves it to CLOSED. */
    static final class Stream implements Http2FrameStream {
        Http2Stream.State state;

        Stream(Http2Stream.State state) {
            this.state = state;
        }

        @Override
        public int id() {
            return 3;
        }

        @Override
        public Http2Stream.State state() {
            return state;
        }
    }

    /** The relay's side: the reset it is given, and what PeerReset says of it with no END_STREAM read yet. */
    static final class Consumer extends ChannelInboundHandlerAdapter {
        Http2ResetFrame reset;

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            reset = (Http2ResetFrame) evt;
        }
    }

    private static Consumer heldThenReplayed(Http2Error code, Http2Stream.State onArrival) {
        EmbeddedChannel ch = new EmbeddedChannel();
        PendingReads.install(ch, 1 << 20);
        Stream stream = new Stream(onArrival);
        ch.pipeline().fireUserEventTriggered(new DefaultHttp2ResetFrame(code).stream(stream));
        stream.state = Http2Stream.State.CLOSED;
        Consumer consumer = new Consumer();
        ch.pipeline().addLast(consumer);
        PendingReads.release(ch);
        ch.finishAndReleaseAll();
        return consumer;
    }

    @Test
    void noErrorAfterTheEndStreamTheConnectionHadReadIsCleanThoughReplayedAfterTheClose() {
        Consumer relay = heldThenReplayed(Http2Error.NO_ERROR, Http2Stream.State.HALF_CLOSED_REMOTE);
        assertInstanceOf(Http2ResetFrame.class, relay.reset);
        assertEquals(Http2Error.NO_ERROR.code(), relay.reset.errorCode());
        assertEquals(3, relay.reset.stream().id());
        assertTrue(PeerReset.endsCleanly(relay.reset, false), "END_STREAM came first: a clean end, whatever the state now");
    }

    @Test
    void noErrorBeforeEndStreamAndAnyOtherCodeStayAborts() {
        assertFalse(PeerReset.endsCleanly(heldThenReplayed(Http2Error.NO_ERROR, Http2Stream.State.OPEN).reset, false),
                "NO_ERROR before the peer ended its side");
        assertFalse(PeerReset.endsCleanly(heldThenReplayed(Http2Error.CANCEL, Http2Stream.State.HALF_CLOSED_REMOTE).reset,
                false), "CANCEL after END_STREAM");
    }
}
