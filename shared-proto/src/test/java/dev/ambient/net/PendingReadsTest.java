package dev.ambient.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The hand-over of held reads to the relay that consumes them. An HTTP/2 stream channel delivers
 * its queued frames synchronously when reading is turned back on, so a relay that resumes the
 * stream from a callback of the replay (the other side drained on flush) makes the channel read
 * while the holder is still replaying: those reads must reach the relay too, in order.
 */
class PendingReadsTest {

    /** Records what reaches it; on the first read-complete, the channel reads its queue at once (as a stream does). */
    static final class Relay extends ChannelInboundHandlerAdapter {
        final List<String> seen = new ArrayList<>();
        final List<Object> queuedInTheStream;
        /** A stream whose remote end closed (END_STREAM both ways, or a reset) closes once its queue is read. */
        final boolean closesAfterTheQueue;
        boolean resumed;

        Relay(List<Object> queuedInTheStream) {
            this(queuedInTheStream, false);
        }

        Relay(List<Object> queuedInTheStream, boolean closesAfterTheQueue) {
            this.queuedInTheStream = queuedInTheStream;
            this.closesAfterTheQueue = closesAfterTheQueue;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf b = (ByteBuf) msg;
            seen.add(b.toString(StandardCharsets.US_ASCII));
            b.release();
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            if (!resumed) {
                resumed = true;
                for (Object m : queuedInTheStream) {
                    if (m instanceof ByteBuf) {
                        ctx.pipeline().fireChannelRead(m);
                    } else {
                        ctx.pipeline().fireUserEventTriggered(m);
                    }
                }
                ctx.pipeline().fireChannelReadComplete();
                if (closesAfterTheQueue) {
                    ctx.pipeline().fireChannelInactive();
                }
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            seen.add("<inactive>");
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            seen.add(evt == ChannelInputShutdownEvent.INSTANCE ? "<end>" : evt.toString());
        }
    }

    static ByteBuf text(String s) {
        return Unpooled.copiedBuffer(s, StandardCharsets.US_ASCII);
    }

    @Test
    void readsCausedByTheReplayAreReplayedInOrderWithTheEnd() {
        EmbeddedChannel ch = new EmbeddedChannel();
        PendingReads.install(ch, 1 << 20);
        ch.pipeline().fireChannelRead(text("early-1"));
        ch.pipeline().fireChannelRead(text("early-2"));
        ch.pipeline().fireChannelReadComplete();
        Relay relay = new Relay(List.of(text("queued-1"), text("queued-2"), ChannelInputShutdownEvent.INSTANCE));
        ch.pipeline().addLast(relay);

        PendingReads.release(ch);

        // Before: queued-1, queued-2 and the end were read into the holder during its last
        // read-complete and released with it; the relay never saw the stream end.
        assertEquals(List.of("early-1", "early-2", "queued-1", "queued-2", "<end>"), relay.seen);
        assertNull(ch.pipeline().get(PendingReads.NAME), "the holder has left");
        ch.pipeline().fireChannelRead(text("later"));
        assertEquals("later", relay.seen.getLast(), "later reads go straight to the relay");
        ch.finishAndReleaseAll();
    }

    /**
     * The stream's queue ends with END_STREAM and the stream closes as soon as it is read (as an
     * HTTP/2 stream channel does once both ends are closed): the close must reach the relay after
     * the queued data and the end, once. Before, it passed the holder at once: the relay heard
     * "closed" with the answer still held (TunnelRelay aborts then, and the answer is lost), and
     * heard it again at the end of the replay.
     */
    @Test
    void aCloseDuringTheReplayArrivesOnceAfterTheLastHeldRead() {
        EmbeddedChannel ch = new EmbeddedChannel();
        PendingReads.install(ch, 1 << 20);
        ch.pipeline().fireChannelRead(text("early"));
        ch.pipeline().fireChannelReadComplete();
        Relay relay = new Relay(List.of(text("answer"), ChannelInputShutdownEvent.INSTANCE), true);
        ch.pipeline().addLast(relay);

        PendingReads.release(ch);

        assertEquals(List.of("early", "answer", "<end>", "<inactive>"), relay.seen);
        ch.finishAndReleaseAll();
    }

    /**
     * A client that sent its request and FIN, then was closed (reset, or the channel closed) before
     * its relay started: the relay sees the request, the end, then the close, once.
     */
    @Test
    void aCloseBeforeTheRelayArrivesOnceAfterTheHeldRequestAndItsEnd() {
        EmbeddedChannel ch = new EmbeddedChannel();
        PendingReads.install(ch, 1 << 20);
        ch.pipeline().fireChannelRead(text("request"));
        ch.pipeline().fireChannelReadComplete();
        ch.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        ch.pipeline().fireChannelInactive();
        Relay relay = new Relay(List.of());
        ch.pipeline().addLast(relay);

        PendingReads.release(ch);

        assertEquals(List.of("request", "<end>", "<inactive>"), relay.seen);
        ch.finishAndReleaseAll();
    }
}
