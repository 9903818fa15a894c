package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.StreamReading;
import dev.ambient.net.PendingReads;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http2.Http2StreamChannel;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * The endpoint's side of a sniffed TCP tunnel whose client ended cleanly (END_STREAM, then
 * RST_STREAM(NO_ERROR)) while the endpoint was dialled, its stream closed by then: what the client
 * sent goes to the endpoint, then END_STREAM (a FIN to an endpoint outside the mesh), as the splice
 * would have passed them on; what the endpoint answers has nobody to go to and is read and dropped
 * until it ends its side, and then the tunnel closes. An endpoint that never ends is closed after
 * the idle timeout; until the tunnel closes it counts among its client connection's finishing
 * tunnels ({@link SniffedTcpHold} admitted it).
 */
final class LateUpload extends ChannelInboundHandlerAdapter {

    private final AtomicLong received;
    private final AtomicLong lastActivity;

    private LateUpload(AtomicLong received, AtomicLong lastActivity) {
        this.received = received;
        this.lastActivity = lastActivity;
    }

    /**
     * Writes {@code upload} to {@code upstream} and ends it there, on its loop; counts bytes sent
     * and dropped. With a non-zero {@code idle}, closes it once no byte moved for that long; the
     * answer says whether that is how it ended.
     */
    static BooleanSupplier deliver(Channel upstream, List<ByteBuf> upload, AtomicLong sent, AtomicLong received,
            Duration idle) {
        AtomicLong last = new AtomicLong(System.nanoTime());
        AtomicBoolean idledOut = new AtomicBoolean();
        upstream.eventLoop().execute(() -> {
            if (upstream instanceof Http2StreamChannel) {
                upstream.pipeline().addLast(StreamBytes.NAME, new StreamBytes());
            }
            upstream.pipeline().addLast(new LateUpload(received, last));
            PendingReads.release(upstream); // what the endpoint sent first: dropped like the rest
            for (ByteBuf b : upload) {
                sent.addAndGet(b.readableBytes());
                upstream.write(b);
            }
            if (upstream instanceof Http2StreamChannel stream) {
                StreamBytes.endOutput(stream);
            } else if (upstream instanceof DuplexChannel socket) {
                // shutdownOutput drops writes still pending: the FIN once they are out.
                socket.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> socket.shutdownOutput());
            }
            StreamReading.set(upstream, true);
            if (!idle.isZero()) {
                TcpSplice.watchIdle(upstream, upstream, last, idle.toNanos(), idledOut);
            }
        });
        return idledOut::get;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf buf = (ByteBuf) msg;
        received.addAndGet(buf.readableBytes());
        lastActivity.lazySet(System.nanoTime());
        buf.release();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
            // The endpoint ended too: close once our END_STREAM (or FIN), behind the upload, is out.
            TcpSplice.endAfterItsLastBytes(ctx.channel());
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ctx.close();
    }
}
