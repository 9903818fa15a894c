package dev.ambient.waypoint.proxy;

import io.netty.buffer.ByteBuf;
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

    private boolean inputEnded;
    /** Set by whichever thread ends the output first (TcpSplice ends the other stream's); guarded by this. */
    private boolean outputEnded;

    /** Ends our side of the stream (END_STREAM), after what was written before; once. */
    public static void endOutput(Http2StreamChannel stream) {
        StreamBytes self = stream.pipeline().get(StreamBytes.class);
        if (self != null) {
            synchronized (self) {
                if (self.outputEnded) {
                    return;
                }
                self.outputEnded = true;
            }
        }
        if (stream.isActive()) {
            stream.writeAndFlush(new DefaultHttp2DataFrame(true));
        }
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
        if (evt instanceof Http2ResetFrame) {
            // The peer aborted the tunnel: nothing more can be sent or received.
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
