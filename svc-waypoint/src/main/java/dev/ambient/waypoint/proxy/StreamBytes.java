package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.PeerReset;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;

/**
 * Makes a CONNECT stream look like a socket to the handlers above it: DATA frames in become bytes,
 * END_STREAM becomes a read-side shutdown (as a FIN would), bytes out become DATA frames. An HTTP
 * codec (HTTP/1.1 or HTTP/2) can then run on the tunnelled bytes unchanged. Flow control stays the
 * stream's: turning auto-read off stops window updates, which pushes back on the sender.
 */
public final class StreamBytes extends ChannelDuplexHandler {

    public static final String NAME = "stream-bytes";

    /** Passed on when the peer resets its stream after END_STREAM: a clean end, its stream's place freed. */
    public enum ResetAfterEnd {
        EVENT
    }

    private boolean inputEnded;
    /** The peer reset the stream as an abort ({@link PeerReset}); event loop only. */
    private boolean aborted;
    /** END_STREAM's write, by whichever thread ends the output first (TcpSplice ends the other stream's); guarded by this. */
    private ChannelFuture outputEnd;

    /**
     * Ends our side of the stream (END_STREAM), after what was written before; once. The future
     * completes when END_STREAM, and so all written before it, has gone out past flow control.
     */
    public static ChannelFuture endOutput(Http2StreamChannel stream) {
        StreamBytes self = stream.pipeline().get(StreamBytes.class);
        if (self == null) {
            return writeEndStream(stream);
        }
        synchronized (self) {
            if (self.outputEnd == null) {
                self.outputEnd = writeEndStream(stream);
            }
            return self.outputEnd;
        }
    }

    private static ChannelFuture writeEndStream(Http2StreamChannel stream) {
        return stream.isActive() ? stream.writeAndFlush(new DefaultHttp2DataFrame(true)) : stream.newSucceededFuture();
    }

    /** Whether {@code channel}'s peer aborted its stream with a reset; false for a channel without StreamBytes. Event loop only. */
    public static boolean aborted(Channel channel) {
        StreamBytes self = channel.pipeline().get(StreamBytes.class);
        return self != null && self.aborted;
    }

    public boolean inputEnded() {
        return inputEnded;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof Http2DataFrame data) {
            boolean end = data.isEndStream();
            ByteBuf content = data.content();
            if (content.isReadable()) {
                ctx.fireChannelRead(content.retain());
            }
            data.release();
            if (end) {
                endOfInput(ctx);
            }
        } else if (msg instanceof Http2HeadersFrame trailers) {
            if (trailers.isEndStream()) {
                endOfInput(ctx);
            }
        } else {
            ReferenceCountUtil.release(msg);
        }
    }

    private void endOfInput(ChannelHandlerContext ctx) {
        if (!inputEnded) {
            inputEnded = true;
            ctx.fireChannelReadComplete();
            ctx.fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof Http2ResetFrame reset) {
            if (PeerReset.endsCleanly(reset, inputEnded)) {
                // END_STREAM, then RST_STREAM(NO_ERROR): the peer's side is complete, and what it
                // sent may still be queued behind this reset while we pause; the stream closes
                // itself once that is read, and its handlers pass it on first.
                ctx.fireUserEventTriggered(ResetAfterEnd.EVENT);
                return;
            }
            // The peer aborted the tunnel: nothing more can be sent or received.
            aborted = true;
            ctx.close();
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        if (msg instanceof ByteBuf buf) {
            if (!buf.isReadable()) {
                // Codecs write empty buffers (e.g. an empty last content): no frame for them.
                buf.release();
                promise.trySuccess();
                return;
            }
            ctx.write(new DefaultHttp2DataFrame(buf), promise);
        } else {
            ctx.write(msg, promise);
        }
    }
}
