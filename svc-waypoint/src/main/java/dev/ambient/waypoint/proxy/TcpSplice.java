package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.FinishingTunnels;
import dev.ambient.hbone.StreamReading;
import dev.ambient.net.PendingReads;
import dev.ambient.net.SocketRelay;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http2.DefaultHttp2ResetFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * Moves bytes between two CONNECT streams (client tunnel and endpoint tunnel), both behind
 * {@link StreamBytes}, or a CONNECT stream and a socket to an endpoint outside the mesh (half-closure
 * on): END_STREAM is passed on as END_STREAM (or a FIN), and a side whose peer is not writable stops
 * reading (the HTTP/2 windows push back). A side that ended (END_STREAM or FIN) and then closed, at
 * most with RST_STREAM(NO_ERROR), ends the other after the bytes still on their way to it; an abort
 * (a reset with an error code, a reset or close before END_STREAM, an error) closes the other at once.
 * With an idle timeout, a splice that moves no byte either way for that long is closed (both sides).
 * A sniffed client's side may come with a {@link SniffedTcpHold}: what it sent while its endpoint
 * was dialled, kept past its stream's close if it ended cleanly then; that goes on as if read now,
 * then its END_STREAM, and the tunnel finishes when the endpoint ends its side too (its answer,
 * with nobody to take it, read and dropped), or at the idle timeout. It is not reset right after
 * our END_STREAM, as for a client that lets go once spliced: an endpoint's HBONE server may get
 * that reset ahead of the data it has not read yet, just after its 200, and take it for an abort.
 */
public final class TcpSplice extends ChannelInboundHandlerAdapter {

    private final Channel other;
    private final AtomicLong bytes;
    /** System.nanoTime() of the last byte either way, shared by both sides. */
    private final AtomicLong lastActivity;
    /** Read by the other side's loop. */
    private volatile boolean ended;
    /** This side failed (an exception on its channel); event loop only. */
    private boolean failed;
    /** Its close was handled (it may be seen twice: replayed from PendingReads, and in start()); event loop only. */
    private boolean closeHandled;
    private TcpSplice peerSide;
    private Channel self;
    /** What this side's client sent while its endpoint was dialled (a sniffed tunnel), or null. */
    private SniffedTcpHold held;
    /** Both sides closed. */
    private Future<?> done;

    private TcpSplice(Channel other, AtomicLong bytes, AtomicLong lastActivity) {
        this.other = other;
        this.bytes = bytes;
        this.lastActivity = lastActivity;
    }

    /**
     * Joins two channels; each stream already has {@link StreamBytes} (a socket needs none);
     * counters count bytes from a to b and back. With a non-zero {@code idle}, both are closed once
     * no byte moved either way for that long; the answer says whether that is how it ended.
     */
    public static BooleanSupplier join(Channel a, Channel b, AtomicLong aToB, AtomicLong bToA, Duration idle) {
        return join(a, null, b, aToB, bToA, idle);
    }

    /** As {@link #join(Channel, Channel, AtomicLong, AtomicLong, Duration)}, {@code a}'s first bytes in {@code aHeld}. */
    static BooleanSupplier join(Channel a, SniffedTcpHold aHeld, Channel b, AtomicLong aToB, AtomicLong bToA,
            Duration idle) {
        AtomicLong last = new AtomicLong(System.nanoTime());
        TcpSplice fromA = new TcpSplice(b, aToB, last);
        TcpSplice fromB = new TcpSplice(a, bToA, last);
        fromA.peerSide = fromB;
        fromB.peerSide = fromA;
        fromA.self = a;
        fromB.self = b;
        fromA.held = aHeld;
        fromA.done = SocketRelay.bothClosed(a, b);
        fromB.done = fromA.done;
        // Both handlers are in place before either side reads. A stream that starts reading
        // replays what it queued at once, pauses when the other side fills up, and flushes; if that
        // side drains before its handler is there, nobody hears it and nobody resumes the reader
        // (a sniffed tunnel whose client had sent ahead stalled so, its END_STREAM never read).
        a.eventLoop().execute(() -> {
            a.pipeline().addLast(fromA);
            b.eventLoop().execute(() -> {
                b.pipeline().addLast(fromB);
                fromB.start();
                a.eventLoop().execute(fromA::start);
            });
        });
        AtomicBoolean idledOut = new AtomicBoolean();
        if (!idle.isZero()) {
            a.eventLoop().execute(() -> watchIdle(a, b, last, idle.toNanos(), idledOut));
        }
        return idledOut::get;
    }

    /**
     * On this side's loop: what arrived while the other side was being dialled goes first, then
     * reading is on unless the other side is already full (its handler resumes us when it drains).
     */
    private void start() {
        if (held == null) {
            PendingReads.release(self);
        } else {
            List<ByteBuf> upload = held.release(self);
            if (held.endedDuringDial()) {
                // Its stream closed before this handler was there: no pipeline to read it through.
                upload.forEach(this::forward);
                other.flush();
                endOfInput();
            }
        }
        if (!self.isActive()) {
            closed(); // closed before this handler was there to hear it
        } else if (other.isWritable() || !other.isActive()) {
            StreamReading.set(self, true);
        }
    }

    private static void watchIdle(Channel a, Channel b, AtomicLong last, long idleNanos, AtomicBoolean idledOut) {
        if (!a.isActive() && !b.isActive()) {
            return;
        }
        long wait = idleNanos - (System.nanoTime() - last.get());
        if (wait > 0) {
            ScheduledFuture<?> next = a.eventLoop().schedule(() -> watchIdle(a, b, last, idleNanos, idledOut), wait,
                    TimeUnit.NANOSECONDS);
            a.closeFuture().addListener(f -> next.cancel(false));
            return;
        }
        idledOut.set(true);
        a.close();
        b.close();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        forward((ByteBuf) msg);
    }

    private void forward(ByteBuf buf) {
        bytes.addAndGet(buf.readableBytes());
        lastActivity.lazySet(System.nanoTime());
        if (!other.isActive()) {
            buf.release(); // an answer to a client that is gone: dropped, and reading goes on to the end
            return;
        }
        other.write(buf);
        if (!other.isWritable()) {
            self.config().setAutoRead(false);
            // The other side may be on another loop and have drained between the test and the
            // pause, its handler seeing us still reading: look again, or we may never be resumed.
            if (other.isWritable()) {
                StreamReading.set(self, true);
            }
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        other.flush();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt == StreamBytes.ResetAfterEnd.EVENT) {
            // The client let go of its stream; the tunnel lives on outside its stream limit until
            // its last bytes are out, so it counts against its connection until both sides close.
            if (!FinishingTunnels.admit((Http2StreamChannel) self, done)) {
                failed = true;
                ctx.close();
            }
            return;
        }
        if (evt instanceof ChannelInputShutdownEvent) {
            endOfInput();
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    /** This side's END_STREAM (or FIN): passed on after what it sent; once. */
    private void endOfInput() {
        if (!ended) {
            ended = true;
            if (other instanceof Http2StreamChannel stream) {
                StreamBytes.endOutput(stream);
            } else if (other instanceof DuplexChannel socket) {
                // An endpoint outside the mesh: a FIN, as the client's END_STREAM, once what was
                // written before is out (shutdownOutput drops writes still pending).
                socket.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> socket.shutdownOutput());
            }
            if (peerSide.ended) {
                endAfterItsLastBytes(other);
                endAfterItsLastBytes(self);
            }
        }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (self.isWritable()) {
            SocketRelay.onLoop(other, () -> StreamReading.set(other, true));
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        closed();
    }

    private void closed() {
        if (closeHandled) {
            return;
        }
        closeHandled = true;
        if (ended && held != null && held.endedDuringDial()) {
            // Our END_STREAM toward the endpoint is on its way; its own end closes the tunnel.
            return;
        }
        if (ended && !failed && !StreamBytes.aborted(self)) {
            // This side ended its input, then closed, at most with RST_STREAM(NO_ERROR) (RFC 9113
            // 8.1): what it sent may still be on its way to the other side, queued there behind
            // flow control. End the other after it, as this side's own end would; closing it now
            // would throw that away and show its peer a reset.
            endAfterItsLastBytes(other);
        } else {
            other.close();
        }
    }

    /**
     * Ends {@code ch} once what was written to it is out: a stream with END_STREAM and then, if its
     * peer has not ended its side, RST_STREAM(NO_ERROR) (ours is complete, we want no more; a close
     * would send CANCEL, an abort); a socket with the FIN already asked for, then close.
     */
    private static void endAfterItsLastBytes(Channel ch) {
        SocketRelay.onLoop(ch, () -> {
            if (ch instanceof Http2StreamChannel stream) {
                StreamBytes.endOutput(stream).addListener(f -> {
                    Http2Stream.State state = stream.stream().state();
                    if (stream.isActive() && (state == Http2Stream.State.OPEN
                            || state == Http2Stream.State.HALF_CLOSED_LOCAL)) {
                        stream.writeAndFlush(new DefaultHttp2ResetFrame(Http2Error.NO_ERROR));
                    }
                    stream.close();
                });
            } else {
                ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
            }
        });
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        failed = true;
        ctx.close();
        other.close();
    }
}
