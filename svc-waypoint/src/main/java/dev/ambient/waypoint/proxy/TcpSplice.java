package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.StreamReading;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http2.Http2StreamChannel;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Moves bytes between two CONNECT streams (client tunnel and endpoint tunnel), both behind
 * {@link StreamBytes}, or a CONNECT stream and a socket to an endpoint outside the mesh (half-closure
 * on): END_STREAM is passed on as END_STREAM (or a FIN), a reset or close on one side closes
 * the other, and a side whose peer is not writable stops reading (the HTTP/2 windows push back).
 */
public final class TcpSplice extends ChannelInboundHandlerAdapter {

    private final Channel other;
    private final AtomicLong bytes;
    private boolean ended;
    private TcpSplice peerSide;
    private Channel self;

    private TcpSplice(Channel other, AtomicLong bytes) {
        this.other = other;
        this.bytes = bytes;
    }

    /** Joins two channels; each stream already has {@link StreamBytes} (a socket needs none); counters count bytes from a to b and back. */
    public static void join(Channel a, Channel b, AtomicLong aToB, AtomicLong bToA) {
        TcpSplice fromA = new TcpSplice(b, aToB);
        TcpSplice fromB = new TcpSplice(a, bToA);
        fromA.peerSide = fromB;
        fromB.peerSide = fromA;
        fromA.self = a;
        fromB.self = b;
        for (Channel ch : new Channel[] {a, b}) {
            TcpSplice side = ch == a ? fromA : fromB;
            ch.eventLoop().execute(() -> {
                ch.pipeline().addLast(side);
                // What arrived while the other side was being dialled goes first.
                dev.ambient.net.PendingReads.release(ch);
                ch.config().setAutoRead(true);
            });
        }
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf buf = (ByteBuf) msg;
        bytes.addAndGet(buf.readableBytes());
        other.write(buf);
        if (!other.isWritable()) {
            self.config().setAutoRead(false);
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        other.flush();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent && !ended) {
            ended = true;
            if (other instanceof Http2StreamChannel stream) {
                StreamBytes.endOutput(stream);
            } else if (other instanceof DuplexChannel socket) {
                // An endpoint outside the mesh: a FIN, as the client's END_STREAM, once what was
                // written before is out (shutdownOutput drops writes still pending).
                socket.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> socket.shutdownOutput());
            }
            if (peerSide.ended) {
                other.eventLoop().execute(() -> other.close());
                ctx.close();
            }
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (self.isWritable()) {
            StreamReading.set(other, true);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        other.close();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ctx.close();
        other.close();
    }
}
